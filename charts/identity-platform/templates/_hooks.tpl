{{/*
Operator hooks shared by every pod of the project's image (the Deployments,
the migrations Job, the helm test pod): TLS to the data stores, extra env,
volumes, mounts, sidecars and init containers, pod labels and annotations,
affinity passthrough, service accounts, image overrides. Each takes
(dict "root" $ "values" <the workload's values>); the workload's values may
lack a hook (the migrations Job has no sidecars), which then adds nothing.
*/}}

{{/* The data stores' TLS files: [{name, secret, items: [{key, path}], dir}]. */}}
{{- define "identity.dataStoreTlsFiles" -}}
{{- $tls := .Values.dataStoreTls -}}
{{- $files := list -}}
{{- range $store := list "postgres" "redis" -}}
{{- $settings := index $tls $store -}}
{{- with $settings.caSecret -}}
{{- $files = append $files (dict "name" (printf "%s-ca" $store) "secret" . "items" (list (dict "key" $settings.caKey "path" "ca.crt"))) -}}
{{- end -}}
{{- with $settings.clientCertSecret -}}
{{- $files = append $files (dict "name" (printf "%s-client" $store) "secret" . "items" (list (dict "key" "tls.crt" "path" "tls.crt") (dict "key" "tls.key" "path" "tls.key"))) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "files" $files) -}}
{{- end -}}

{{/* Environment of every container of the project's image: libpq's
PGSSLROOTCERT/PGSSLCERT/PGSSLKEY (used by `sslmode=verify-full` URLs), then
global.extraEnv, then the workload's extraEnv. */}}
{{- define "identity.extraEnv" -}}
{{- $root := .root -}}
{{- $tls := $root.Values.dataStoreTls -}}
{{- $env := list -}}
{{- if $tls.postgres.caSecret -}}
{{- $env = append $env (dict "name" "PGSSLROOTCERT" "value" (printf "%s/postgres-ca/ca.crt" $tls.mountPath)) -}}
{{- end -}}
{{- if $tls.postgres.clientCertSecret -}}
{{- $env = append $env (dict "name" "PGSSLCERT" "value" (printf "%s/postgres-client/tls.crt" $tls.mountPath)) -}}
{{- $env = append $env (dict "name" "PGSSLKEY" "value" (printf "%s/postgres-client/tls.key" $tls.mountPath)) -}}
{{- end -}}
{{- $env = concat $env ($root.Values.global.extraEnv | default list) (.values.extraEnv | default list) -}}
{{- with $env }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "identity.extraVolumeMounts" -}}
{{- $root := .root -}}
{{- $mounts := list -}}
{{- range (include "identity.dataStoreTlsFiles" $root | fromJson).files -}}
{{- $mounts = append $mounts (dict "name" (printf "datastore-%s" .name) "mountPath" (printf "%s/%s" $root.Values.dataStoreTls.mountPath .name) "readOnly" true) -}}
{{- end -}}
{{- $mounts = concat $mounts ($root.Values.global.extraVolumeMounts | default list) (.values.extraVolumeMounts | default list) -}}
{{- with $mounts }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "identity.extraVolumes" -}}
{{- $root := .root -}}
{{- $volumes := list -}}
{{- range (include "identity.dataStoreTlsFiles" $root | fromJson).files -}}
{{- $volumes = append $volumes (dict "name" (printf "datastore-%s" .name) "secret" (dict "secretName" .secret "items" .items "defaultMode" 288)) -}}
{{- end -}}
{{- $volumes = concat $volumes ($root.Values.global.extraVolumes | default list) (.values.extraVolumes | default list) -}}
{{- with $volumes }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Extra containers next to the workload's own (log shippers, proxies). */}}
{{- define "identity.sidecars" -}}
{{- with .values.sidecars }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "identity.initContainers" -}}
{{- with .values.initContainers }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod labels: global.podLabels then the workload's podLabels (the chart's
own labels, rendered after these by the caller, always win). */}}
{{- define "identity.podLabels" -}}
{{- $labels := merge (deepCopy (.values.podLabels | default dict)) (.root.Values.global.podLabels | default dict) -}}
{{- include "identity.userLabels" $labels -}}
{{- end -}}

{{/* An operator's labels (global.commonLabels on every object,
podLabels on pods) without the keys the chart sets itself
(app.kubernetes.io/*, helm.sh/chart): those always stay the chart's. */}}
{{- define "identity.userLabels" -}}
{{- $labels := dict -}}
{{- range $key, $value := . -}}
{{- if not (or (hasPrefix "app.kubernetes.io/" $key) (eq $key "helm.sh/chart")) -}}
{{- $_ := set $labels $key $value -}}
{{- end -}}
{{- end -}}
{{- with $labels }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Affinity beyond the region's required node affinity: pod (anti-)affinity
and preferred node affinity, passed through. */}}
{{- define "identity.affinityExtra" -}}
{{- $affinity := .values.affinity | default dict -}}
{{- with $affinity.podAffinity }}
podAffinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $affinity.podAntiAffinity }}
podAntiAffinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "identity.preferredNodeAffinity" -}}
{{- $affinity := .values.affinity | default dict -}}
{{- with ($affinity.nodeAffinity | default dict).preferredDuringSchedulingIgnoredDuringExecution }}
preferredDuringSchedulingIgnoredDuringExecution:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount a workload runs as: (dict "root" $ "name" n "values" v).
serviceAccount.create false uses an existing one (serviceAccount.name). */}}
{{- define "identity.serviceAccountName" -}}
{{- $account := .values.serviceAccount | default dict -}}
{{- if and (hasKey $account "create") (not $account.create) -}}
{{- if not $account.name -}}
{{- fail (printf "%s.serviceAccount.create is false: set serviceAccount.name to the existing ServiceAccount" (include "identity.valuesPath" .)) -}}
{{- end -}}
{{- $account.name -}}
{{- else -}}
{{- default (include "identity.componentName" .) $account.name -}}
{{- end -}}
{{- end -}}

{{/* Image of a workload of the project's image: its own `image` overrides
(repository, tag, digest) over global.image; global.imageRegistry, when set,
replaces every image's registry (this one, Triton's, rclone's). */}}
{{- define "identity.projectImage" -}}
{{- $image := merge (deepCopy (.values.image | default dict)) (deepCopy .root.Values.global.image) -}}
{{- include "identity.registryImageRef" (dict "root" .root "image" $image "default" .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "identity.registryImageRef" -}}
{{- $image := deepCopy .image -}}
{{- with .root.Values.global.imageRegistry -}}
{{- $_ := set $image "registry" . -}}
{{- end -}}
{{- include "identity.imageRef" (dict "image" $image "default" .default) -}}
{{- end -}}

{{/* A component's PostgreSQL pool per pod: its config's DATABASE_POOL_SIZE,
else database.poolSize.<name>; empty when it holds no database URL.
(dict "root" $ "name" n) */}}
{{- define "identity.poolSize" -}}
{{- $catalogue := include "identity.catalogue" .root | fromJson -}}
{{- $component := index $catalogue.components .name -}}
{{- $values := include "identity.componentValues" . | fromJson -}}
{{- if and (hasKey $component.settings (printf "%s_DATABASE_POOL_SIZE" $component.prefix)) (hasKey ($values.secretEnv | default dict) "DATABASE_URL") -}}
{{- $pool := index ($values.config | default dict) "DATABASE_POOL_SIZE" | default (index .root.Values.database.poolSize .name) | default 5 -}}
{{- printf "%d" (int $pool) -}}
{{- end -}}
{{- end -}}

{{/* Whether Helm talks to a cluster: `lookup` answers there (kube-system
always exists), and returns nothing in `helm template`. */}}
{{- define "identity.online" -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}true{{- end -}}
{{- end -}}

{{/* Fail when the cluster does not serve an API the values ask for:
(dict "root" $ "api" "group/version/Kind" "for" "which values"). */}}
{{- define "identity.requireApi" -}}
{{- $mode := .root.Values.global.prerequisiteChecks -}}
{{- if or (eq $mode "strict") (and (eq $mode "auto") (include "identity.online" .root)) -}}
{{- if not (.root.Capabilities.APIVersions.Has .api) -}}
{{- fail (printf "%s needs %s, which the cluster does not serve (install it first; README \"Prerequisites\")" .for .api) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Matching's gallery (README "Gallery sizing"): the declared number of
stored faces must fit the startup budget (FAISS gallery rebuilt at start,
about capacity.rebuildSecondsPer100k per 100 000 faces) and the memory limit
(about capacity.bytesPerFace per face); over 80% of either limit NOTES.txt
warns, over the limit the render fails. Returns nothing; see
identity.gallerySizingReport. */}}
{{- define "identity.gallerySizing" -}}
{{- $report := include "identity.gallerySizingReport" . | fromJson -}}
{{- if gt (float64 $report.used) 1.0 -}}
{{- fail (printf "capacity.matching.expectedFaces %d exceeds matching's limit of %d faces (%s); raise services.matching resources or probes.startup, or shard the gallery" (int $report.faces) (int $report.limit) $report.bound) -}}
{{- end -}}
{{- end -}}

{{- define "identity.gallerySizingReport" -}}
{{- $capacity := .Values.capacity.matching -}}
{{- $matching := index .Values.services "matching" -}}
{{- $startup := mul (int $matching.probes.startup.periodSeconds) (int $matching.probes.startup.failureThreshold) -}}
{{- $byTime := divf (mulf $startup 100000.0) $capacity.rebuildSecondsPer100k | floor | int -}}
{{- $memory := include "identity.bytes" $matching.resources.limits.memory | float64 -}}
{{- $byMemory := divf (subf $memory (mulf (float64 $capacity.baseMemoryMi) 1048576.0)) (float64 $capacity.bytesPerFace) | floor | int -}}
{{- $limit := min $byTime $byMemory -}}
{{- $bound := ternary (printf "startup budget %ds at %vs per 100k faces" $startup $capacity.rebuildSecondsPer100k) (printf "memory limit %s at %d bytes per face" $matching.resources.limits.memory (int $capacity.bytesPerFace)) (lt $byTime $byMemory) -}}
{{- toJson (dict "faces" $capacity.expectedFaces "limit" $limit "used" (divf $capacity.expectedFaces (max $limit 1)) "bound" $bound) -}}
{{- end -}}

{{/* Bytes of a memory quantity ("6Gi", "512Mi", "4G", "1000000"). */}}
{{- define "identity.bytes" -}}
{{- $q := toString . -}}
{{- $units := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 -}}
{{- $bytes := 0.0 -}}
{{- $found := false -}}
{{- range $suffix := list "Ki" "Mi" "Gi" "Ti" "k" "M" "G" "T" -}}
{{- if and (not $found) (hasSuffix $suffix $q) -}}
{{- $bytes = mulf (trimSuffix $suffix $q | float64) (index $units $suffix) -}}
{{- $found = true -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}{{- $bytes = $q | float64 -}}{{- end -}}
{{- printf "%.0f" $bytes -}}
{{- end -}}

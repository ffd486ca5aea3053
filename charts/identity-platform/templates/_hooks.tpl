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

{{/*
Helpers shared by every template.

The mesh (components, prefixes, ports, call graph, console scripts) and each
component's settings come from files/mesh.json, generated from the code by
tools/chart.py: templates never hard-code a setting name or a call-graph edge.
*/}}

{{- define "identity.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide prefix of every object name; at most 40 characters so that
"<fullname>-capture-quality" stays a valid DNS label. */}}
{{- define "identity.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects: (dict "root" $ "name" "kyc-tier") */}}
{{- define "identity.componentName" -}}
{{- printf "%s-%s" (include "identity.fullname" .root) .name -}}
{{- end -}}

{{- define "identity.selectorLabels" -}}
app.kubernetes.io/name: {{ include "identity.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "identity.labels" -}}
{{ include "identity.selectorLabels" . }}
app.kubernetes.io/part-of: identity-platform
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with include "identity.userLabels" .root.Values.global.commonLabels }}
{{ . }}
{{- end }}
{{- end -}}

{{/* Selects every pod of this release (the default-deny policy's target). */}}
{{- define "identity.releaseSelector" -}}
app.kubernetes.io/name: {{ include "identity.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The catalogue generated from the code (see tools/chart.py). */}}
{{- define "identity.catalogue" -}}
{{- .Files.Get "files/mesh.json" -}}
{{- end -}}

{{/* An image reference: (dict "image" .Values.image "default" .Chart.AppVersion).
A digest wins over a tag. */}}
{{- define "identity.imageRef" -}}
{{- $image := .image -}}
{{- $repository := $image.repository -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" $image.registry $image.repository -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .default $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Values of a component: services.<name>, or gateway. */}}
{{- define "identity.componentValues" -}}
{{- if eq .name "gateway" -}}
{{- toJson .root.Values.gateway -}}
{{- else -}}
{{- toJson (index .root.Values.services .name) -}}
{{- end -}}
{{- end -}}

{{/* Where a component's values live, for error messages. */}}
{{- define "identity.valuesPath" -}}
{{- if eq .name "gateway" -}}gateway{{- else -}}services.{{ .name }}{{- end -}}
{{- end -}}

{{/* Name of a component's mesh TLS Secret (kubernetes.io/tls + ca.crt): (dict "root" $ "name" "kyc-tier") */}}
{{- define "identity.meshTlsSecret" -}}
{{- printf "%s-mesh-tls" (include "identity.componentName" .) -}}
{{- end -}}

{{/* host:port of a mesh service's gRPC Service, as its callers' *_ADDRESS settings. */}}
{{- define "identity.grpcAddress" -}}
{{- $catalogue := include "identity.catalogue" .root | fromJson -}}
{{- $component := index $catalogue.components .name -}}
{{- printf "%s.%s.svc.%s:%d" (include "identity.componentName" .) .root.Release.Namespace .root.Values.global.clusterDomain (int $component.containerPort) -}}
{{- end -}}

{{- define "identity.tritonAddress" -}}
{{- printf "%s.%s.svc.%s:%d" (include "identity.componentName" (dict "root" . "name" "triton")) .Release.Namespace .Values.global.clusterDomain (int .Values.triton.ports.grpc) -}}
{{- end -}}

{{/* A value as an environment variable: integral numbers without a decimal
point or exponent (values arrive as float64), everything else as text. */}}
{{- define "identity.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
The settings of one component, checked against its settings class:
(dict "root" $ "name" "kyc-tier") -> JSON
  {"config": {VAR: value}            the ConfigMap
   "secretEnv": [{env, secret, key}]  env from Secrets
   "secretMounts": [{id, secret}]     Secrets mounted as files
   "secretRefs": [id]                 every Secret it holds (for egress)
   "egressCA": {secret, configMap, key, mountPath}}  the CA bundle mounted
                                      for outbound TLS ({} when none)

Rendering fails, naming the value to fix, when a name is not a setting of
the component, a secret is given in plain config, a value is not one of the
allowed choices, the chart's own wiring is overridden, or a required setting
is left unset.
*/}}
{{- define "identity.settings" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $catalogue := include "identity.catalogue" $root | fromJson -}}
{{- $component := index $catalogue.components $name -}}
{{- $values := include "identity.componentValues" . | fromJson -}}
{{- $where := include "identity.valuesPath" . -}}
{{- $prefix := $component.prefix -}}
{{- $known := $component.settings -}}
{{- $declared := $component.declared -}}
{{- $config := dict -}}
{{- $owned := dict -}}
{{- $secretEnv := list -}}
{{- $secretMounts := list -}}
{{- $secretRefs := list -}}

{{- /* Wiring the chart owns; each of these must be a setting of the component. */ -}}
{{- $wiring := dict "HOST" $root.Values.global.listenHost "PORT" (printf "%d" (int $component.containerPort)) "METRICS_PORT" (printf "%d" (int $root.Values.observability.metricsPort)) -}}
{{- range $callee := $component.calls -}}
{{- $calleeComponent := index $catalogue.components $callee -}}
{{- $_ := set $wiring (printf "%s_ADDRESS" $calleeComponent.prefix) (include "identity.grpcAddress" (dict "root" $root "name" $callee)) -}}
{{- end -}}
{{- if and $root.Values.triton.enabled (hasKey $root.Values.triton.clients $name) -}}
{{- range $field := index $root.Values.triton.clients $name -}}
{{- $_ := set $wiring $field (include "identity.tritonAddress" $root) -}}
{{- end -}}
{{- end -}}
{{- if $values.models.enabled -}}
{{- $_ := set $wiring $values.models.setting $values.models.mountPath -}}
{{- end -}}
{{- /* Mutual TLS from the component's TLS Secret; probes use a plaintext health port. */ -}}
{{- $tls := $root.Values.meshTls -}}
{{- if $tls.enabled -}}
{{- $_ := set $wiring "MESH_TLS" "on" -}}
{{- $_ := set $wiring "MESH_TLS_CERT_FILE" (printf "%s/tls.crt" $tls.mountPath) -}}
{{- $_ := set $wiring "MESH_TLS_KEY_FILE" (printf "%s/tls.key" $tls.mountPath) -}}
{{- $_ := set $wiring "MESH_TLS_CA_FILE" (printf "%s/ca.crt" $tls.mountPath) -}}
{{- if eq $component.protocol "grpc" -}}
{{- $_ := set $wiring "HEALTH_PORT" (printf "%d" (int $tls.healthPort)) -}}
{{- end -}}
{{- else -}}
{{- $_ := set $wiring "MESH_TLS" "off" -}}
{{- end -}}
{{- range $field, $id := $values.secretFiles -}}
{{- $secret := index $root.Values.secrets $id | default dict -}}
{{- if not $secret.name -}}
{{- fail (printf "%s.secretFiles.%s refers to secrets.%s, which has no name" $where $field $id) -}}
{{- end -}}
{{- $_ := set $wiring $field (printf "%s/%s/%s" $root.Values.global.secretsMountPath $id $secret.key) -}}
{{- $secretMounts = append $secretMounts (dict "id" $id "secret" $secret.name) -}}
{{- $secretRefs = append $secretRefs $id -}}
{{- end -}}
{{- /* A CA bundle outbound TLS trusts on top of the system's (egressCA: a
partner's private CA for callbacks or webhooks), from an existing Secret or
ConfigMap; its `setting` names the file. */ -}}
{{- $egressCA := dict -}}
{{- with $values.egressCA -}}
{{- if and .secret .configMap -}}
{{- fail (printf "%s.egressCA: set secret or configMap, not both" $where) -}}
{{- end -}}
{{- if or .secret .configMap -}}
{{- $mountPath := printf "%s/egress-ca" $root.Values.global.secretsMountPath -}}
{{- $_ := set $wiring .setting (printf "%s/%s" $mountPath .key) -}}
{{- $egressCA = dict "secret" (.secret | default "") "configMap" (.configMap | default "") "key" .key "mountPath" $mountPath -}}
{{- end -}}
{{- end -}}
{{- range $field, $value := $wiring -}}
{{- $variable := printf "%s_%s" $prefix $field -}}
{{- if and $declared (not (hasKey $known $variable)) -}}
{{- fail (printf "%s: the chart sets %s, which is not a setting of %s (see SETTINGS.md)" $where $variable $name) -}}
{{- end -}}
{{- $_ := set $config $variable $value -}}
{{- $_ := set $owned $field true -}}
{{- end -}}

{{- /* Release-wide settings, applied where the component has them (its
settings class declares them); set through global values, not per component. */ -}}
{{- $managed := dict "LOG_FORMAT" "json" "LOG_LEVEL" $root.Values.global.logLevel "ENVIRONMENT" $root.Values.global.environment "SHUTDOWN_GRACE_SECONDS" (include "identity.envValue" $values.shutdownGraceSeconds) "DATA_REGION" $root.Values.residency.region "ALLOWED_REGIONS" (include "identity.allowedRegions" $root | fromJsonArray | join ",") -}}
{{- $storeRegions := list -}}
{{- range $host, $region := ($root.Values.residency.endpointRegions | default dict) -}}
{{- $storeRegions = append $storeRegions (printf "%s=%s" $host $region) -}}
{{- end -}}
{{- if $storeRegions -}}
{{- $_ := set $managed "ENDPOINT_REGIONS" (join "," $storeRegions) -}}
{{- end -}}
{{- if $root.Values.observability.otlpEndpoint -}}
{{- $_ := set $managed "OTLP_ENDPOINT" $root.Values.observability.otlpEndpoint -}}
{{- end -}}
{{- range $field, $value := $managed -}}
{{- $variable := printf "%s_%s" $prefix $field -}}
{{- if hasKey $known $variable -}}
{{- $_ := set $config $variable $value -}}
{{- $_ := set $owned $field true -}}
{{- end -}}
{{- end -}}

{{- /* Defaults derived from the pod, where the component has the setting;
the component's config may override them. ONNX Runtime threads follow the
CPU limit (its own default counts the node's cores, not the container's). */ -}}
{{- $defaults := dict "INTRA_OP_THREADS" (include "identity.cpuCores" $values.resources.limits.cpu) -}}
{{- with include "identity.poolSize" . -}}
{{- $_ := set $defaults "DATABASE_POOL_SIZE" . -}}
{{- end -}}
{{- range $field, $value := $defaults -}}
{{- $variable := printf "%s_%s" $prefix $field -}}
{{- if and (hasKey $known $variable) (not (hasKey $values.config $field)) -}}
{{- $_ := set $config $variable $value -}}
{{- end -}}
{{- end -}}

{{- /* The operator's config. */ -}}
{{- range $field, $value := $values.config -}}
{{- $variable := printf "%s_%s" $prefix $field -}}
{{- if hasKey $owned $field -}}
{{- fail (printf "%s.config.%s: %s is set by the chart (from global values, the mesh, models, secretFiles, egressCA or triton); remove it" $where $field $variable) -}}
{{- end -}}
{{- if hasKey $known $variable -}}
{{- $info := index $known $variable -}}
{{- if $info.secret -}}
{{- fail (printf "%s.config.%s: %s is a secret; reference a Secret through %s.secretEnv instead" $where $field $variable $where) -}}
{{- end -}}
{{- if and $info.choices (not (has (toString $value) $info.choices)) -}}
{{- fail (printf "%s.config.%s: %v is not one of %s" $where $field $value (join ", " $info.choices)) -}}
{{- end -}}
{{- else if $declared -}}
{{- fail (printf "%s.config.%s: %s is not a setting of %s (see SETTINGS.md)" $where $field $variable $name) -}}
{{- end -}}
{{- $_ := set $config $variable (include "identity.envValue" $value) -}}
{{- end -}}

{{- /* Settings read from Secrets. */ -}}
{{- $fromSecrets := dict -}}
{{- range $field, $id := $values.secretEnv -}}
{{- $variable := printf "%s_%s" $prefix $field -}}
{{- if or (hasKey $owned $field) (hasKey $values.config $field) -}}
{{- fail (printf "%s.secretEnv.%s: %s is also set elsewhere (config or the chart's wiring)" $where $field $variable) -}}
{{- end -}}
{{- if and $declared (not (hasKey $known $variable)) -}}
{{- fail (printf "%s.secretEnv.%s: %s is not a setting of %s (see SETTINGS.md)" $where $field $variable $name) -}}
{{- end -}}
{{- $secret := index $root.Values.secrets $id | default dict -}}
{{- if not $secret.name -}}
{{- fail (printf "%s.secretEnv.%s refers to secrets.%s, which has no name" $where $field $id) -}}
{{- end -}}
{{- $secretEnv = append $secretEnv (dict "env" $variable "secret" $secret.name "key" $secret.key) -}}
{{- $secretRefs = append $secretRefs $id -}}
{{- $_ := set $fromSecrets $variable true -}}
{{- end -}}

{{- /* Every required setting must be provided. */ -}}
{{- range $variable, $info := $known -}}
{{- if and $info.required (not (hasKey $config $variable)) (not (hasKey $fromSecrets $variable)) -}}
{{- $field := trimPrefix (printf "%s_" $prefix) $variable -}}
{{- if $info.secret -}}
{{- fail (printf "%s requires %s (%s): set %s.secretEnv.%s to a key of .Values.secrets" $name $variable $info.help $where $field) -}}
{{- else -}}
{{- fail (printf "%s requires %s (%s): set %s.config.%s" $name $variable $info.help $where $field) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "config" $config "secretEnv" $secretEnv "secretMounts" (uniq $secretMounts) "secretRefs" (uniq $secretRefs) "egressCA" $egressCA) -}}
{{- end -}}

{{/* The regions pods and stores may be in (residency.allowedRegions, default
the release's region), as a JSON list; the release's region must be one. */}}
{{- define "identity.allowedRegions" -}}
{{- $residency := .Values.residency -}}
{{- $allowed := $residency.allowedRegions | default (list $residency.region) -}}
{{- if not (has $residency.region $allowed) -}}
{{- fail (printf "residency.region %s must be one of residency.allowedRegions" $residency.region) -}}
{{- end -}}
{{- range $host, $region := ($residency.endpointRegions | default dict) -}}
{{- if not (has $region $allowed) -}}
{{- fail (printf "residency.endpointRegions: %s is outside residency.allowedRegions" $region) -}}
{{- end -}}
{{- end -}}
{{- toJson $allowed -}}
{{- end -}}

{{/* Required node affinity: the allowed regions (residency), the zones, and any extra
requirements, all in one term (terms are ORed, requirements ANDed), so that
nothing can widen placement beyond the region.
(dict "root" $ "extra" list) */}}
{{- define "identity.nodeAffinity" -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      - matchExpressions:
          - key: topology.kubernetes.io/region
            operator: In
            values:
              {{- range include "identity.allowedRegions" .root | fromJsonArray }}
              - {{ . | quote }}
              {{- end }}
          {{- with .root.Values.residency.zones }}
          - key: topology.kubernetes.io/zone
            operator: In
            values:
              {{- range . }}
              - {{ . | quote }}
              {{- end }}
          {{- end }}
          {{- with .extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
{{- end -}}

{{/* nodeSelector: the operator's, with the region label when there is one
allowed region (with several, the required affinity above pins them). */}}
{{- define "identity.nodeSelector" -}}
{{- $selector := deepCopy (.selector | default dict) -}}
{{- $regions := include "identity.allowedRegions" .root | fromJsonArray -}}
{{- if eq (len $regions) 1 -}}
{{- $_ := set $selector "topology.kubernetes.io/region" (first $regions) -}}
{{- end -}}
{{- toYaml $selector -}}
{{- end -}}

{{/* Spread over the region's zones (hard), then over nodes (soft). */}}
{{- define "identity.topologySpread" -}}
{{- $spread := .root.Values.topologySpread -}}
- maxSkew: {{ $spread.zones.maxSkew }}
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ $spread.zones.whenUnsatisfiable }}
  # Nodes that are tainted (a lost zone) or outside the affinity do not count.
  nodeAffinityPolicy: Honor
  nodeTaintsPolicy: Honor
  # Spread each ReplicaSet on its own, so a rollout is spread too.
  matchLabelKeys:
    - pod-template-hash
  labelSelector:
    matchLabels:
      {{- include "identity.selectorLabels" . | nindent 6 }}
{{- if $spread.nodes.enabled }}
- maxSkew: {{ $spread.nodes.maxSkew }}
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  matchLabelKeys:
    - pod-template-hash
  labelSelector:
    matchLabels:
      {{- include "identity.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "identity.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "identity.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod-level fields every workload of the project's image shares:
(dict "root" $ "name" component "values" componentValues) */}}
{{- define "identity.podCommon" -}}
{{- $root := .root -}}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.global.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
automountServiceAccountToken: false
# Service links would inject <NAME>_PORT-style variables that can collide
# with settings (KYC_TIER_PORT, ...).
enableServiceLinks: false
securityContext:
  {{- include "identity.podSecurityContext" $root.Values.global.podSecurityContext | nindent 2 }}
affinity:
  {{- include "identity.nodeAffinity" (dict "root" $root "extra" .values.extraNodeSelectorRequirements) | nindent 2 }}
  {{- with include "identity.preferredNodeAffinity" . }}
  {{- . | nindent 4 }}
  {{- end }}
  {{- with include "identity.affinityExtra" . }}
  {{- . | nindent 2 }}
  {{- end }}
nodeSelector:
  {{- include "identity.nodeSelector" (dict "root" $root "selector" .values.nodeSelector) | nindent 2 }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget: (dict "root" $ "name" component "values" componentValues).
A minAvailable as large as the smallest replica count would block every
node drain, so it is refused. */}}
{{- define "identity.pdb" -}}
{{- $values := .values -}}
{{- $pdb := $values.pdb -}}
{{- $floor := ternary $values.autoscaling.minReplicas $values.replicas $values.autoscaling.enabled | int -}}
{{- if and (hasKey $pdb "minAvailable") (kindIs "float64" $pdb.minAvailable) (ge (int $pdb.minAvailable) $floor) -}}
{{- fail (printf "%s.pdb.minAvailable %d would block every node drain with %d replica(s); lower it or use maxUnavailable" (ternary "triton" (include "identity.valuesPath" .) (eq .name "triton")) (int $pdb.minAvailable) $floor) -}}
{{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "identity.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "identity.labels" . | nindent 4 }}
spec:
  {{- if hasKey $pdb "minAvailable" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  # Pods that never became ready may always be evicted (a stuck rollout must not block drains).
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "identity.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "identity.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.to | nindent 4 }}
  ports:
    {{- toYaml .Values.networkPolicy.dns.ports | nindent 4 }}
{{- end -}}

{{/* An egress rule to something outside the chart: {to: [peers], ports: [...]};
no peers means any destination on those ports. */}}
{{- define "identity.externalEgress" -}}
- ports:
    {{- toYaml .ports | nindent 4 }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Whole cores of a CPU quantity, rounded up, at least 1: "500m" -> 1, "2" -> 2, "1500m" -> 2. */}}
{{- define "identity.cpuCores" -}}
{{- $quantity := toString . -}}
{{- $cores := 0.0 -}}
{{- if hasSuffix "m" $quantity -}}
{{- $cores = ceil (divf (trimSuffix "m" $quantity | float64) 1000) -}}
{{- else -}}
{{- $cores = ceil ($quantity | float64) -}}
{{- end -}}
{{- if lt $cores 1.0 -}}1{{- else -}}{{- printf "%d" (int64 $cores) -}}{{- end -}}
{{- end -}}

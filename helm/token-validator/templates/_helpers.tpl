{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "token-validator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; shortened so "-headless" still fits in 63 characters. */}}
{{- define "token-validator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "token-validator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "token-validator.labels" -}}
helm.sh/chart: {{ include "token-validator.chart" . }}
{{ include "token-validator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: token-validator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods (immutable on the Deployment). */}}
{{- define "token-validator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-validator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "token-validator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "token-validator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "token-validator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where tls.secretName is mounted. */}}
{{- define "token-validator.tlsDir" -}}
/var/run/secrets/token-validator/tls
{{- end }}

{{/* "true" when the gRPC port speaks TLS (from tls.secretName or config.tls). */}}
{{- define "token-validator.tlsEnabled" -}}
{{- if or .Values.tls.secretName .Values.config.tls }}true{{ end }}
{{- end }}

{{/*
The service's config file: `config` as given, with `listen`, `metrics.listen`,
`metrics.enabled` and (with gateway.enabled) `gateway.http_listen` from the
chart's own values (so the ports, probes and Service always agree; the other
`config.metrics` and `config.gateway` keys pass through), and the files of
tls.secretName wherever `config.tls` does not name its own.
*/}}
{{- define "token-validator.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "listen" (printf "%s:%d" .Values.listenAddress (int .Values.containerPorts.grpc)) }}
{{- $metrics := get $cfg "metrics" | default dict }}
{{- $_ = set $metrics "enabled" .Values.metrics.enabled }}
{{- $_ = set $metrics "listen" (printf "%s:%d" .Values.listenAddress (int .Values.containerPorts.metrics)) }}
{{- $_ = set $cfg "metrics" $metrics }}
{{- if .Values.gateway.enabled }}
{{- $gateway := get $cfg "gateway" | default dict }}
{{- $_ = set $gateway "http_listen" (printf "%s:%d" .Values.listenAddress (int .Values.containerPorts.gateway)) }}
{{- $_ = set $cfg "gateway" $gateway }}
{{- end }}
{{- if .Values.tls.secretName }}
{{- $dir := include "token-validator.tlsDir" . }}
{{- $tls := get $cfg "tls" | default dict }}
{{- $files := dict "cert_file" "tls.crt" "key_file" "tls.key" }}
{{- if .Values.tls.clientCA }}{{ $_ = set $files "client_ca_file" "ca.crt" }}{{ end }}
{{- range $key, $file := $files }}
{{- if not (hasKey $tls $key) }}{{ $_ = set $tls $key (printf "%s/%s" $dir $file) }}{{ end }}
{{- end }}
{{- $_ = set $cfg "tls" $tls }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Seconds the service takes to stop after SIGTERM: delay (rounded up) + drain (defaults 0 ms, 20 s). */}}
{{- define "token-validator.shutdownSecs" -}}
{{- $server := .Values.config.server | default dict }}
{{- $grace := 20 }}
{{- if hasKey $server "shutdown_grace_secs" }}{{ $grace = int $server.shutdown_grace_secs }}{{ end }}
{{- $delayMs := 0 }}
{{- if hasKey $server "shutdown_delay_ms" }}{{ $delayMs = int $server.shutdown_delay_ms }}{{ end }}
{{- add $grace (div (add $delayMs 999) 1000) }}
{{- end }}

{{/* Cross-field checks that values.schema.json cannot express. */}}
{{- define "token-validator.validateValues" -}}
{{- $stop := include "token-validator.shutdownSecs" . | int }}
{{- $needed := add $stop (int .Values.preStopSleepSeconds) }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + config.server.shutdown_delay_ms + config.server.shutdown_grace_secs (%d s together), or Kubernetes kills the pod before in-flight calls have drained" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $stop) }}
{{- end }}
{{- $names := dict }}
{{- range $i, $pool := .Values.config.pools }}
{{- if hasKey $names $pool.name }}
{{- fail (printf "config.pools[%d].name: %q is used by two pools" $i $pool.name) }}
{{- end }}
{{- $_ := set $names $pool.name true }}
{{- end }}
{{- if and (eq .Values.probes.liveness.type "http") (not .Values.metrics.enabled) }}
{{- fail "probes.liveness.type: http needs metrics.enabled: true (GET /healthz is served on the metrics port)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: true" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and (kindIs "invalid" .Values.autoscaling.targetCPUUtilizationPercentage) (kindIs "invalid" .Values.autoscaling.targetMemoryUtilizationPercentage) (empty .Values.autoscaling.customMetrics) }}
{{- fail "autoscaling.enabled needs targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or customMetrics" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.preStopSleepSeconds) 0) (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "preStopSleepSeconds needs Kubernetes >= 1.30 (native sleep preStop hook); this cluster is %s: set it to 0" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (include "token-validator.tlsEnabled" .) (not .Values.metrics.enabled) }}
{{- fail "TLS on the gRPC port (tls.secretName or config.tls) needs metrics.enabled: true: the kubelet's gRPC probes cannot speak TLS, so the probes use GET /readyz and /healthz on the metrics port" }}
{{- end }}
{{- if and .Values.tls.clientCA (not .Values.tls.secretName) }}
{{- fail "tls.clientCA needs tls.secretName (its ca.crt is the client CA); with your own files set config.tls.client_ca_file instead" }}
{{- end }}
{{- if eq (int .Values.containerPorts.grpc) (int .Values.containerPorts.metrics) }}
{{- fail "containerPorts.grpc and containerPorts.metrics must differ" }}
{{- end }}
{{- $gatewayCfg := .Values.config.gateway | default dict }}
{{- if and (hasKey $gatewayCfg "http_listen") (not (kindIs "invalid" (index $gatewayCfg "http_listen"))) }}
{{- fail "config.gateway.http_listen is written by the chart: set gateway.enabled: true (and containerPorts.gateway for the port, default 8081) instead, so the container port, Service and NetworkPolicy match it" }}
{{- end }}
{{- if .Values.gateway.enabled }}
{{- $port := int .Values.containerPorts.gateway }}
{{- if or (eq $port (int .Values.containerPorts.grpc)) (eq $port (int .Values.containerPorts.metrics)) }}
{{- fail "containerPorts.gateway must differ from containerPorts.grpc and containerPorts.metrics" }}
{{- end }}
{{- end }}
{{- end }}

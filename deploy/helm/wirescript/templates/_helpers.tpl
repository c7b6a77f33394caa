{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "wirescript.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: "<release>-<chart>", or the release name when it already contains
the chart name. Truncated to 47 characters: components append up to 14
("-script-runner", "-nats-headless") within the 63 of a DNS label, and the
NATS StatefulSet name ("<full>-nats") must leave room for its revision hash.
*/}}
{{- define "wirescript.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "wirescript.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object. Call with (dict "ctx" $ "component" "script-runner").
*/}}
{{- define "wirescript.labels" -}}
helm.sh/chart: {{ include "wirescript.chart" .ctx }}
{{ include "wirescript.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: wirescript
{{- end }}

{{/*
Selector labels of one component. Call with (dict "ctx" $ "component" "...").
*/}}
{{- define "wirescript.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wirescript.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/*
Name of the ServiceAccount the wirescript pods use.
*/}}
{{- define "wirescript.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wirescript.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The wirescript image reference.
*/}}
{{- define "wirescript.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/*
Name of the bundled NATS server's objects.
*/}}
{{- define "wirescript.nats.fullname" -}}
{{- printf "%s-nats" (include "wirescript.fullname" .) }}
{{- end }}

{{/*
Checks that exactly one NATS source is configured; fails the render otherwise.
*/}}
{{- define "wirescript.nats.validate" -}}
{{- $external := or .Values.nats.url .Values.nats.urlSecret.name }}
{{- if and .Values.nats.enabled $external }}
{{- fail "nats: set either nats.enabled=true (bundled server) or nats.url / nats.urlSecret.name (external server), not both" }}
{{- end }}
{{- if and (not .Values.nats.enabled) (not $external) }}
{{- fail "nats: no NATS server: keep nats.enabled=true, or set nats.url (or nats.urlSecret.name) to an external NATS server with JetStream" }}
{{- end }}
{{- end }}

{{/*
The NATS_URL env entry every wirescript service gets, as a YAML list.
*/}}
{{- define "wirescript.env.natsUrl" -}}
{{- include "wirescript.nats.validate" . }}
{{- $entry := dict "name" "NATS_URL" }}
{{- if .Values.nats.enabled }}
{{- $_ := set $entry "value" (printf "nats://%s.%s.svc:%s" (include "wirescript.nats.fullname" .) .Release.Namespace (include "wirescript.scalar" .Values.nats.clientPort)) }}
{{- else if .Values.nats.urlSecret.name }}
{{- $_ := set $entry "valueFrom" (dict "secretKeyRef" (dict "name" .Values.nats.urlSecret.name "key" .Values.nats.urlSecret.key)) }}
{{- else }}
{{- $_ := set $entry "value" (toString .Values.nats.url) }}
{{- end }}
{{- toYaml (list $entry) }}
{{- end }}

{{/*
Env entries from (list (list "NAME" value) ...), as a YAML list. An unset
value ("" or null) is left out, so the service's own default applies.
*/}}
{{- define "wirescript.env.values" -}}
{{- $env := list }}
{{- range $pair := . }}
{{- $value := index $pair 1 }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $env = append $env (dict "name" (index $pair 0) "value" (include "wirescript.scalar" $value)) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
A scalar value as text. Whole numbers from values files arrive as float64,
which would print as 1e+07: print them as integers.
*/}}
{{- define "wirescript.scalar" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Env entries every wirescript service gets, as a YAML list: NATS, identity
(downward API), logging and telemetry (packages/config/src/common.ts).
*/}}
{{- define "wirescript.env.common" -}}
{{- $t := .Values.telemetry }}
{{- $env := include "wirescript.env.natsUrl" . | fromYamlArray }}
{{- $env = append $env (dict "name" "NODE_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "spec.nodeName"))) }}
{{- $env = append $env (dict "name" "REPLICA_ID" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name"))) }}
{{- $pairs := list
  (list "LOG_LEVEL" .Values.logLevel)
  (list "OTEL_EXPORTER_OTLP_ENDPOINT" $t.otlpEndpoint)
  (list "OTEL_TRACES_EXPORTER" $t.tracesExporter)
  (list "OTEL_METRICS_EXPORTER" $t.metricsExporter)
  (list "OTEL_METRIC_EXPORT_INTERVAL" $t.metricExportInterval)
  (list "TRACE_SAMPLE_RATIO" $t.traceSampleRatio) }}
{{- if $t.prometheus.enabled }}
{{- $pairs = append $pairs (list "PROMETHEUS_PORT" $t.prometheus.port) }}
{{- end }}
{{- $env = concat $env (include "wirescript.env.values" $pairs | fromYamlArray) }}
{{- if $t.otlpHeadersSecret.name }}
{{- $env = append $env (dict "name" "OTEL_EXPORTER_OTLP_HEADERS" "valueFrom" (dict "secretKeyRef" (dict "name" $t.otlpHeadersSecret.name "key" $t.otlpHeadersSecret.key))) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
Script engine limits (packages/config/src/common.ts engineConfig) from a
service's `config` values, as a YAML list. Call with that config dict.
*/}}
{{- define "wirescript.env.engine" -}}
{{- include "wirescript.env.values" (list
  (list "HOOK_TIMEOUT" .hookTimeout)
  (list "JOB_TIMEOUT" .jobTimeout)
  (list "SCRIPT_MEMORY_LIMIT_MB" .scriptMemoryLimitMb)
  (list "SCRIPT_STACK_LIMIT_KB" .scriptStackLimitKb)
  (list "DISPATCH_BATCH_SIZE" .dispatchBatchSize)) }}
{{- end }}

{{/*
The metrics container port, when the Prometheus endpoint is on.
*/}}
{{- define "wirescript.metricsPort" -}}
{{- if .Values.telemetry.prometheus.enabled }}
- name: metrics
  containerPort: {{ include "wirescript.scalar" .Values.telemetry.prometheus.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{/*
Prometheus scrape annotations for a wirescript pod, when wanted.
*/}}
{{- define "wirescript.metricsAnnotations" -}}
{{- if and .Values.telemetry.prometheus.enabled .Values.telemetry.prometheus.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "wirescript.scalar" .Values.telemetry.prometheus.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
Name of a component's own ServiceAccount (hub, config-sync): `name` when
set, else "<fullname>-<component>". Call with (dict "ctx" $ "component"
"hub" "sa" .Values.hub.serviceAccount). Fails when the chart would bind RBAC
to a ServiceAccount that is not named (the namespace's "default" one would get
the rights of every pod that uses it).
*/}}
{{- define "wirescript.componentServiceAccountName" -}}
{{- if .sa.name }}
{{- .sa.name }}
{{- else if .sa.create }}
{{- printf "%s-%s" (include "wirescript.fullname" .ctx) .component }}
{{- else }}
{{- fail (printf "%s.serviceAccount.create is false: set %s.serviceAccount.name to the ServiceAccount the %s pod runs as" .key .key .component) }}
{{- end }}
{{- end }}

{{/*
Name of a cluster-scoped object (ClusterRole, ClusterRoleBinding) of one
component: "<fullname>-<component>-<namespace>", unique per release across
namespaces. Longer than 63 characters, it is cut to 54 and given the first 8
hex digits of its SHA-256, so it stays unique. Call with (dict "ctx" $
"component" "hub").
*/}}
{{- define "wirescript.clusterScopedName" -}}
{{- $full := printf "%s-%s-%s" (include "wirescript.fullname" .ctx) .component .ctx.Release.Namespace }}
{{- if le (len $full) 63 }}
{{- $full }}
{{- else }}
{{- printf "%s-%s" ($full | trunc 54 | trimSuffix "-") ($full | sha256sum | trunc 8) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds of a service that drains for DRAIN_TIMEOUT:
the value set, which must exceed the drain, or drain + 20 (telemetry flush,
NATS close). Call with (dict "key" "hub" "v" .Values.hub); fails on a drain
under 1 s or a grace period that would kill the service mid-drain.
*/}}
{{- define "wirescript.gracePeriod" -}}
{{- $drain := int .v.drainTimeoutSeconds }}
{{- if lt $drain 1 }}
{{- fail (printf "%s.drainTimeoutSeconds must be at least 1" .key) }}
{{- end }}
{{- $grace := add $drain 20 }}
{{- if not (kindIs "invalid" .v.terminationGracePeriodSeconds) }}
{{- $grace = int .v.terminationGracePeriodSeconds }}
{{- if le $grace $drain }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed %s.drainTimeoutSeconds (%d), or the service is killed mid-drain" .key $grace .key $drain) }}
{{- end }}
{{- end }}
{{- $grace }}
{{- end }}

{{/*
Checks the script storage names: config-sync's Role names exactly these
objects (resourceNames), so an empty or invalid name fails the render.
*/}}
{{- define "wirescript.scripting.validate" -}}
{{- range $key := list "configMapName" "secretName" }}
{{- $name := toString (index $.Values.scripting $key) }}
{{- if not (and (le (len $name) 253) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $name)) }}
{{- fail (printf "scripting.%s must be the name of a Kubernetes object (lower-case letters, digits, '-' and '.'), not %q" $key $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names, labels and the pieces every service's pod shares.
*/}}

{{- define "flowloom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name; service names are "<fullname>-<service>", so keep room for "-gateway-grpc". */}}
{{- define "flowloom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flowloom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flowloom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowloom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flowloom.labels" -}}
helm.sh/chart: {{ include "flowloom.chart" . }}
{{ include "flowloom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flowloom
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "gateway". */}}
{{- define "flowloom.componentSelectorLabels" -}}
{{ include "flowloom.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flowloom.componentLabels" -}}
{{ include "flowloom.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flowloom.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "flowloom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flowloom.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret every service loads as variables: the user's existingSecret or the chart's own. */}}
{{- define "flowloom.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else -}}
{{- include "flowloom.fullname" . -}}
{{- end -}}
{{- end -}}

{{/*
A service's flowloom.yaml: the global `config` with the service's own `config` merged over it; empty
collections are left out (the loader has defaults). With Kafka, how topics are created (kafka.topics).
dict "root" $ "component" "gateway".
*/}}
{{- define "flowloom.configFile" -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.config) (deepCopy (index .root.Values .component).config) -}}
{{- $out := dict -}}
{{- range $key, $value := $merged -}}
{{- if or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) (kindIs "bool" $value) $value -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- if .root.Values.kafka.brokers -}}
{{- $_ := set $out "kafkaTopics" (deepCopy .root.Values.kafka.topics) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
Variables that say where things are: config file, listen address, ports, data, log level, Kafka, and
the peers. dict "root" $ "component" "gateway".
*/}}
{{- /*
The audit ledger's role, the same for the migration Job (which creates it) and the audit pods (which
run their ledger under it).
*/ -}}
{{- define "flowloom.auditDbRoleEnv" }}
- name: FLOWLOOM_AUDIT_DB_ROLE
  value: {{ .Values.auditDbRole.name | quote }}
{{- with .Values.auditDbRole.members }}
- name: FLOWLOOM_AUDIT_DB_ROLE_MEMBERS
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{- define "flowloom.env" -}}
{{- $root := .root -}}
{{- $ports := $root.Values.containerPorts -}}
- name: FLOWLOOM_CONFIG
  value: /etc/flowloom/{{ .component }}.yaml
- name: FLOWLOOM_HOST
  value: "0.0.0.0"
- name: FLOWLOOM_HTTP_PORT
  value: {{ $ports.http | quote }}
- name: FLOWLOOM_GRPC_PORT
  value: {{ $ports.grpc | quote }}
- name: FLOWLOOM_DATA_DIR
  value: /data
- name: FLOWLOOM_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
{{- with $root.Values.kafka.brokers }}
- name: FLOWLOOM_KAFKA_BROKERS
  value: {{ join "," . | quote }}
{{- end }}
{{- if and (eq .component "gateway") $root.Values.policy.enabled }}
# Policy bundles stream from the policy service over gRPC.
- name: FLOWLOOM_POLICY_SERVICE_URL
  value: {{ printf "%s-policy-grpc.%s.svc:%v" (include "flowloom.fullname" $root) $root.Release.Namespace $root.Values.policy.service.grpcPort | quote }}
# One URL for everything: the gateway forwards the policy admin API to the policy HTTP Service.
- name: FLOWLOOM_POLICY_HTTP_URL
  value: {{ printf "http://%s-policy.%s.svc:%v" (include "flowloom.fullname" $root) $root.Release.Namespace $root.Values.policy.service.httpPort | quote }}
{{- end }}
{{- if and (eq .component "gateway") $root.Values.audit.enabled }}
# ... and /api/v1/audit/* to the audit HTTP Service, so the Ingress reaches them through the gateway.
- name: FLOWLOOM_AUDIT_HTTP_URL
  value: {{ printf "http://%s-audit.%s.svc:%v" (include "flowloom.fullname" $root) $root.Release.Namespace $root.Values.audit.service.httpPort | quote }}
{{- end }}
{{- if eq .component "audit" }}
# The standalone audit service has ports of its own (8081, 50052 by default); every pod uses the same.
- name: FLOWLOOM_AUDIT_HTTP_PORT
  value: {{ $ports.http | quote }}
- name: FLOWLOOM_AUDIT_GRPC_PORT
  value: {{ $ports.grpc | quote }}
{{- include "flowloom.auditDbRoleEnv" $root }}
# Every replica signs with the key of one Secret, read-only: a missing key stops the pod rather than
# a key of its own being generated, and a new key comes by replacing the Secret (recorded at start).
- name: FLOWLOOM_AUDIT_SIGNING_KEY_FILE
  value: /var/run/flowloom/audit-key/signing-key
- name: FLOWLOOM_AUDIT_SIGNING_KEY_MODE
  value: provided
{{- if not $root.Values.auditSigningKey.existingSecret }}
# The key derived from the chart's seed carries this name, so the ledger must have it too.
- name: FLOWLOOM_AUDIT_ORIGIN
  value: {{ include "flowloom.auditOrigin" $root | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $root.Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $name, $value := (index $root.Values .component).env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/*
True (non-empty) when a component keeps /data on a volume of its own per pod: the gateway with
gateway.persistence.enabled, whose outbox spool must outlive the pod. dict "root" $ "component" "gateway".
*/}}
{{- define "flowloom.persistentData" -}}
{{- if and (eq .component "gateway") .root.Values.gateway.persistence.enabled -}}true{{- end -}}
{{- end -}}

{{/* StatefulSet for a component with a volume per pod, Deployment otherwise. dict "root" $ "component" "gateway". */}}
{{- define "flowloom.workloadKind" -}}
{{- if include "flowloom.persistentData" . -}}StatefulSet{{- else -}}Deployment{{- end -}}
{{- end -}}

{{/* dict "root" $ "component" "gateway"; "component" may be "migrations". /data comes from a claim template when persistentData. */}}
{{- define "flowloom.volumes" -}}
{{- $values := .root.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $values.tmpVolume.sizeLimit }}
{{- if not (include "flowloom.persistentData" .) }}
- name: data
  emptyDir:
    sizeLimit: {{ $values.dataVolume.sizeLimit }}
{{- end }}
{{- with $values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "flowloom.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /data
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The audit signing key: the Secret holding it (yours, or the chart's seed) and the log's name the key
carries (config.audit.origin, per-service audit.config over it; by default named after the release).
*/}}
{{- define "flowloom.auditSigningKeySecret" -}}
{{- .Values.auditSigningKey.existingSecret | default (printf "%s-audit-signing-key" (include "flowloom.fullname" .)) -}}
{{- end -}}

{{- define "flowloom.auditOrigin" -}}
{{- $merged := mergeOverwrite (deepCopy .Values.config) (deepCopy .Values.audit.config) -}}
{{- dig "audit" "origin" "" $merged | default (printf "%s.%s/audit" (include "flowloom.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{/*
Expand the name of the chart.
*/}}
{{- define "dtask.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "dtask.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "dtask.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "dtask.labels" -}}
helm.sh/chart: {{ include "dtask.chart" . }}
{{ include "dtask.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dtask
{{- end }}

{{/*
Selector labels
*/}}
{{- define "dtask.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dtask.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Names of the two workloads.
*/}}
{{- define "dtask.operator.fullname" -}}
{{- printf "%s-operator" (include "dtask.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dtask.executor.fullname" -}}
{{- printf "%s-executor" (include "dtask.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Names of the service accounts to use.
*/}}
{{- define "dtask.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "dtask.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dtask.executor.serviceAccountName" -}}
{{- if .Values.executor.serviceAccount.create }}
{{- default (include "dtask.executor.fullname" .) .Values.executor.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.executor.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "dtask.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Environment shared by the operator and the executor: the Consul address, TLS files and log format.
The container defines HOST_IP (status.hostIP) before this block.
*/}}
{{- define "dtask.consulEnv" -}}
- name: CONSUL_HTTP_ADDR
{{- if .Values.consul.address }}
  value: {{ .Values.consul.address | quote }}
{{- else }}
  value: {{ printf "$(HOST_IP):%v" .Values.consul.agentPort | quote }}
{{- end }}
{{- if .Values.consul.ssl }}
- name: CONSUL_HTTP_SSL
  value: "true"
{{- end }}
{{- if .Values.consul.tls.secretName }}
- name: CONSUL_CACERT
  value: {{ printf "/etc/dtask/tls/%s" .Values.consul.tls.caKey | quote }}
{{- if .Values.consul.tls.certKey }}
- name: CONSUL_CLIENT_CERT
  value: {{ printf "/etc/dtask/tls/%s" .Values.consul.tls.certKey | quote }}
- name: CONSUL_CLIENT_KEY
  value: {{ printf "/etc/dtask/tls/%s" .Values.consul.tls.keyKey | quote }}
{{- end }}
{{- end }}
- name: DTASK_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}

{{/*
Security contexts: non-root, read-only root file system, no capabilities.
*/}}
{{- define "dtask.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "dtask.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
The executor's --labels argument from a map: k1=v1,k2=v2 (sorted by key).
*/}}
{{- define "dtask.executor.labelsArg" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%v" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* Names, labels and shared values of the Cairn chart. */}}

{{- define "cairn.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name: the release name, "cairn" added unless it already says so. */}}
{{- define "cairn.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cairn.labels" -}}
app.kubernetes.io/name: {{ include "cairn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: include "cairn.selector" (list . "storage"). */}}
{{- define "cairn.selector" -}}
{{- $top := index . 0 -}}
app.kubernetes.io/name: {{ include "cairn.name" $top }}
app.kubernetes.io/instance: {{ $top.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "cairn.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "cairn.sidecarImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* The Secret holding the cluster keys (created by the chart unless existingSecret). */}}
{{- define "cairn.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "cairn.fullname" .)) -}}
{{- end -}}

{{/* The provisioner's in-cluster URL (storaged registers there; the CSI controller calls it). */}}
{{- define "cairn.provisionerURL" -}}
{{- printf "http://%s-provisioner.%s.svc:%d" (include "cairn.fullname" .) .Release.Namespace (int .Values.provisioner.port) -}}
{{- end -}}

{{- define "cairn.logArgs" -}}
- --log-level={{ .Values.logLevel }}
{{- if .Values.logJson }}
- --log-json
{{- end }}
{{- end -}}

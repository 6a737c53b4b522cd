{{/* Namespace: Kaapana's services namespace (where Airflow runs) if known. */}}
{{- define "srcohort.namespace" -}}
{{- .Values.global.services_namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "srcohort.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Extension params arrive as global.<name>; defaults live in extension_params. */}}
{{- define "srcohort.kAnonymity" -}}
{{- $p := .Values.extension_params.k_anonymity_threshold -}}
{{- $k := .Values.global.k_anonymity_threshold | default $p.default | int -}}
{{- if lt $k 2 -}}
{{- fail "k_anonymity_threshold must be an integer >= 2" -}}
{{- end -}}
{{- $k -}}
{{- end -}}

{{- define "srcohort.indexPrefix" -}}
{{- $p := .Values.extension_params.opensearch_index_prefix -}}
{{- $prefix := .Values.global.opensearch_index_prefix | default $p.default | toString -}}
{{- if not (regexMatch "^[a-z0-9][a-z0-9._-]*$" $prefix) -}}
{{- fail "opensearch_index_prefix must be lowercase letters, digits, '.', '_' or '-'" -}}
{{- end -}}
{{- if hasPrefix "project" $prefix -}}
{{- fail "opensearch_index_prefix must not start with project (Kaapana's project_* indices)" -}}
{{- end -}}
{{- $prefix -}}
{{- end -}}

{{- define "srcohort.study" -}}
{{- $p := .Values.extension_params.study -}}
{{- $study := .Values.global.study | default $p.default | toString -}}
{{- if and $study (not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._/-]*$" $study)) -}}
{{- fail "study must name a shipped study or a folder in the srcohort image" -}}
{{- end -}}
{{- $study -}}
{{- end -}}

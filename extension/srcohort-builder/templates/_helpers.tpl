{{/* Where Kaapana routes a project's application (services/applications/*: ingress path). */}}
{{- define "builder.path" -}}
/applications/project/{{ required "global.project_id: install the builder from a project" .Values.global.project_id }}/release/{{ .Release.Name }}
{{- end -}}

{{- define "builder.namespace" -}}
{{- .Values.global.services_namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "builder.indexPrefix" -}}
{{- $prefix := .Values.global.opensearch_index_prefix | default .Values.extension_params.opensearch_index_prefix.default | toString -}}
{{- if or (not (regexMatch "^[a-z0-9][a-z0-9._-]*$" $prefix)) (hasPrefix "project" $prefix) -}}
{{- fail "opensearch_index_prefix must be lowercase letters, digits, '.', '_' or '-' and not start with project" -}}
{{- end -}}
{{- $prefix -}}
{{- end -}}

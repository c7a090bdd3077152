{{/* Labels shared by every catalog object. */}}
{{- define "kubedb-catalog.labels" -}}
app.kubernetes.io/name: kubedb-catalog
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

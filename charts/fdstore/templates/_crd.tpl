{{/* A CRD from files/crds/ (byte-equal to the repository's crds/, written by npm run
gen:crds): the file's text as it is, with the release's labels (and the keep policy)
inserted under its top-level metadata. Text, not fromYaml/toYaml: nothing of the
schema is re-encoded. dict "root" $ "file" PATH. */}}
{{- define "fdstore.crd" -}}
{{- $text := .root.Files.Get .file -}}
{{- if not (regexMatch "(?m)^metadata:\\n  name: " $text) -}}
{{- fail (printf "%s: expected a top-level metadata: with name first" .file) -}}
{{- end -}}
{{- $meta := include "fdstore.labels" (dict "root" .root "component" "crds") | nindent 4 | printf "metadata:\n  labels:%s\n" -}}
{{- if .root.Values.crds.keep -}}
{{- $meta = printf "%s  annotations:\n    helm.sh/resource-policy: keep\n" $meta -}}
{{- end }}
---
{{ regexReplaceAll "(?m)^metadata:\\n" $text $meta }}
{{- end -}}

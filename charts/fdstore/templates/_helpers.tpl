{{/*
Names, labels and the image of the chart's own objects.
*/}}

{{/* The image's version when image.tag is empty: the chart's appVersion. A constant, not
.Chart.AppVersion: the sidecar templates also run with a parent chart's context, whose
.Chart is the parent (test/chart/chart.test.ts checks it equals Chart.yaml). */}}
{{- define "fdstore.appVersion" -}}
0.1.0
{{- end -}}

{{- define "fdstore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fdstore.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fdstore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object of the release: dict "root" $ "component" NAME. */}}
{{- define "fdstore.labels" -}}
helm.sh/chart: {{ include "fdstore.chart" .root }}
{{ include "fdstore.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: fdstore
{{- end -}}

{{/* What selects a component's pods: dict "root" $ "component" NAME. */}}
{{- define "fdstore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fdstore.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fdstore.operator.fullname" -}}
{{- printf "%s-operator" (include "fdstore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fdstore.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "fdstore.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name: the existing ServiceAccount to use when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The name of an object from files/operator-rbac.yaml: its "fdstore" prefix becomes the
release's full name, so two releases do not share a ClusterRole (release "fdstore":
the names of the file). dict "root" $ "name" NAME-IN-THE-FILE. */}}
{{- define "fdstore.operator.rbacName" -}}
{{- printf "%s%s" (include "fdstore.fullname" .root) (trimPrefix "fdstore" .name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator's RBAC objects from files/operator-rbac.yaml (the single source), as a
list of objects (fromYamlArray of this). */}}
{{- define "fdstore.operator.rbacDocs" -}}
{{- $docs := list -}}
{{- range $doc := regexSplit "(?m)^---[ \\t]*$" (.Files.Get "files/operator-rbac.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if $obj.kind -}}
{{- $docs = append $docs $obj -}}
{{- end -}}
{{- end -}}
{{- if ne (len $docs) 2 -}}
{{- fail "files/operator-rbac.yaml: expected a ClusterRole and a Role" -}}
{{- end -}}
{{- toYaml $docs -}}
{{- end -}}

{{/* The rbac object of a kind (ClusterRole or Role): dict "root" $ "kind" KIND. */}}
{{- define "fdstore.operator.rbacDoc" -}}
{{- range $obj := include "fdstore.operator.rbacDocs" .root | fromYamlArray -}}
{{- if eq $obj.kind $.kind -}}
{{- toYaml $obj -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* image: repository:tag from a values map holding image (the chart's values). */}}
{{- define "fdstore.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default (include "fdstore.appVersion" .) | toString) -}}
{{- end -}}

{{/* A container security context: non-root uid, nothing to gain, nothing to write.
dict "uid" UID "root" $ (for the kube version: seccompProfile is a field since 1.19). */}}
{{- define "fdstore.securityContext" -}}
runAsUser: {{ int .uid }}
runAsGroup: {{ int .uid }}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- if semverCompare ">=1.19.0-0" .root.Capabilities.KubeVersion.Version }}
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- end -}}

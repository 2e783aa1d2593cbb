{{/*
Names of the injector's objects (templates/injector-*.yaml).
*/}}

{{- define "fdstore.injector.enabled" -}}
{{- if and .Values.operator.enabled .Values.injector.enabled -}}true{{- end -}}
{{- end -}}

{{/* The Secret with the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "fdstore.injector.secretName" -}}
{{- printf "%s-webhook-tls" (include "fdstore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The DNS names the API server reaches the webhook by: the operator's Service. */}}
{{- define "fdstore.injector.dnsNames" -}}
{{- $svc := include "fdstore.operator.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- toJson (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) -}}
{{- end -}}

{{/* The webhook's Service port: 443, the one port GKE-style private control planes may reach without a firewall rule. */}}
{{- define "fdstore.injector.servicePort" -}}443{{- end -}}

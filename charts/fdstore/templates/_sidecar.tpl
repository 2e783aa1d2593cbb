{{/*
The sidecar as named templates, for your own charts (README.md "The named templates")
and for the example. Every one takes the same dict:

  root        the template context ($): its .Capabilities pick the mode
  containers  the app containers the agent serves (list of names)
  values      optional: this chart's values (default: $.Values.fdstore in a chart that
              depends on this one, $.Values in this chart)
  options     optional: overrides of sidecar.* (e.g. dict "mode" "classic")
  container   (fdstore.app.*) the app container being written; one of containers
  command     (fdstore.app.command) the app's own command and args, as a list
  restartPolicy  optional: the pod's restartPolicy; Never or OnFailure (a Job's pod) in
              classic mode make the agent exit once the apps are done (--exit-when-done),
              and leave the keeper out (it would keep the Job running)

Pod side:       fdstore.sidecar.podLabels, .podSpec, .initContainers, .containers, .volumes
App container:  fdstore.app.command, .env, .volumeMounts, .probes
*/}}

{{/* The resolved settings, as YAML: the sidecar values with the options over them,
the image, and the mode picked for this API server. */}}
{{- define "fdstore.sidecar.settings" -}}
{{- $root := required "fdstore sidecar templates: the dict needs root ($)" .root -}}
{{- $vals := .values -}}
{{- if not $vals -}}
{{- if and (hasKey $root.Values "fdstore") (kindIs "map" $root.Values.fdstore) -}}
{{- $vals = $root.Values.fdstore -}}
{{- else if eq $root.Chart.Name "fdstore" -}}
{{- $vals = $root.Values -}}
{{- end -}}
{{- end -}}
{{- if not (and $vals (kindIs "map" $vals) (hasKey $vals "sidecar") (hasKey $vals "image")) -}}
{{- fail "fdstore sidecar templates: no fdstore values found: depend on the fdstore chart (its values are .Values.fdstore) or pass values" -}}
{{- end -}}
{{- $s := mergeOverwrite (deepCopy $vals.sidecar) (deepCopy (.options | default dict)) -}}
{{- $names := required "fdstore sidecar templates: the dict needs containers (a list of app container names)" .containers -}}
{{- if not (kindIs "slice" $names) -}}
{{- fail "fdstore sidecar templates: containers must be a list of names" -}}
{{- end -}}
{{- range $names -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" .) -}}
{{- fail (printf "fdstore sidecar templates: container name %q is not a DNS-1123 label" .) -}}
{{- end -}}
{{- end -}}
{{- $kube := $root.Capabilities.KubeVersion.Version -}}
{{- $nativeOk := semverCompare ">=1.29.0-0" $kube -}}
{{- $mode := $s.mode -}}
{{- if eq $mode "auto" -}}
{{- $mode = ternary "native" "classic" $nativeOk -}}
{{- else if and (eq $mode "native") (not $nativeOk) -}}
{{- fail (printf "fdstore: sidecar.mode native needs Kubernetes >= 1.29 (native sidecars); this API server is %s, which would drop restartPolicy: Always and leave the pod in Init:0/1: use auto or classic" $kube) -}}
{{- else if ne $mode "classic" -}}
{{- if ne $mode "native" -}}
{{- fail (printf "fdstore: sidecar.mode must be auto, native or classic, not %q" $mode) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $s "mode" $mode -}}
{{- /* A Job's pod in classic mode: no keeper. The agent exits once the apps are done
(--exit-when-done); a keeper would not, and would keep the Job running forever
(src/inject/pieces.ts keeperWanted). */}}
{{- if and (eq $mode "classic") (has (toString .restartPolicy) (list "Never" "OnFailure")) -}}
{{- $_ := set $s.keeper "enabled" false -}}
{{- end -}}
{{- $_ := set $s "image" (include "fdstore.image" $vals) -}}
{{- $_ := set $s "pullPolicy" $vals.image.pullPolicy -}}
{{- $_ := set $s "containers" $names -}}
{{- toYaml $s -}}
{{- end -}}

{{/* The sidecar values the operator's injector renders from (--inject-sidecar, JSON):
the same keys the templates above read, so a pod injected by the webhook gets what these
templates give a pod for the same values (test/chart/inject-equivalence.test.ts). mode
and appProbes.enabled are left out: the injector takes the mode from the API server's
version and the probes from the FdStorePolicy. */}}
{{- define "fdstore.sidecar.injectSettings" -}}
{{- $s := omit (deepCopy .Values.sidecar) "mode" -}}
{{- $_ := set $s "appProbes" (omit $s.appProbes "enabled") -}}
{{- $_ := set $s "image" (include "fdstore.image" .Values) -}}
{{- $_ := set $s "pullPolicy" .Values.image.pullPolicy -}}
{{- toJson $s -}}
{{- end -}}

{{/* The settings for one app container: fails when it is not among containers. */}}
{{- define "fdstore.app.settings" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
{{- $c := required "fdstore.app templates: the dict needs container (the app container's name)" .container -}}
{{- if not (has $c $s.containers) -}}
{{- fail (printf "fdstore.app templates: container %q is not in containers %v" $c $s.containers) -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}

{{/* Labels of the pod template: the operator follows enrolled pods only. */}}
{{- define "fdstore.sidecar.podLabels" -}}
fdstore.dev/enrolled: "true"
{{- end -}}

{{/* Pod spec fields: the agent sees the apps' pids (SCM_CREDENTIALS, pidfd). */}}
{{- define "fdstore.sidecar.podSpec" -}}
shareProcessNamespace: true
{{- end -}}

{{/* The agent container itself (one list item). Native: an init container that starts
before the apps (startupProbe /healthz) and outlives their restarts. */}}
{{- define "fdstore.sidecar" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
- name: fdstore
  image: {{ $s.image | quote }}
  imagePullPolicy: {{ $s.pullPolicy }}
  {{- if eq $s.mode "native" }}
  restartPolicy: Always
  {{- end }}
  args:
    - agent
    - --run-dir
    - {{ $s.runDir | quote }}
    {{- range $s.containers }}
    - --container
    - {{ . | quote }}
    {{- end }}
    - --config
    - /etc/fdstore/config
    - --config-poll
    - {{ $s.configPoll | quote }}
    - --http
    - {{ printf "0.0.0.0:%d" (int $s.port) | quote }}
    - --log-level
    - {{ $s.logLevel | quote }}
    {{- /* A Job's pod: a classic sidecar that never exits would keep it running forever. Never:
    no app restarts, so at once; OnFailure: after the kubelet's 5-minute CrashLoopBackOff cap
    (src/inject/pieces.ts EXIT_WHEN_DONE). Native sidecars are stopped by the kubelet. */}}
    {{- if and (eq $s.mode "classic") (has (toString .restartPolicy) (list "Never" "OnFailure")) }}
    - --exit-when-done
    - {{ ternary "0s" "330s" (eq (toString .restartPolicy) "Never") | quote }}
    {{- end }}
    {{- if $s.keeper.enabled }}
    - --keeper
    - {{ printf "%s/.keeper/keeper.sock" $s.runDir | quote }}
    {{- end }}
    {{- range $s.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    # fdstore ls / fdstore clean in this container (kubectl exec -c fdstore) find the agent
    - name: FDSTORE_RUN_DIR
      value: {{ $s.runDir | quote }}
  ports:
    - name: fdstore-http
      containerPort: {{ int $s.port }}
      protocol: TCP
  {{- if eq $s.mode "native" }}
  # The kubelet starts the app containers once this passes: the launcher and the
  # notify sockets are in place by then.
  startupProbe:
    httpGet: {path: /healthz, port: fdstore-http}
    periodSeconds: 1
    failureThreshold: 60
    timeoutSeconds: 2
  {{- end }}
  readinessProbe:
    httpGet: {path: /healthz, port: fdstore-http}
    periodSeconds: 5
    timeoutSeconds: 2
  # Generous: without the keeper restarting the agent loses every stored fd; only an
  # agent stuck for a minute is restarted.
  livenessProbe:
    httpGet: {path: /healthz, port: fdstore-http}
    periodSeconds: 10
    failureThreshold: 6
    timeoutSeconds: 5
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- include "fdstore.securityContext" (dict "uid" $s.uid "root" .root) | nindent 4 }}
  volumeMounts:
    - name: fdstore-run
      mountPath: {{ $s.runDir | quote }}
    - name: fdstore-config
      mountPath: /etc/fdstore
      readOnly: true
{{- end -}}

{{/* The keeper (docs/keeper.md): holds a mirror of the agent's stores in its own
container, so they outlive the agent's. Native: an init container with restartPolicy
Always listed before the agent, so it starts first and outlives it; classic: a plain
container before the agent. Same image, uid and run dir as the agent. */}}
{{- define "fdstore.sidecar.keeper" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
- name: fdstore-keeper
  image: {{ $s.image | quote }}
  imagePullPolicy: {{ $s.pullPolicy }}
  {{- if eq $s.mode "native" }}
  restartPolicy: Always
  {{- end }}
  command: ["/usr/local/bin/fdstore-keeper"]
  args:
    - --run-dir
    - {{ $s.runDir | quote }}
    {{- if gt (int $s.keeper.maxFds) 0 }}
    - --max-fds
    - {{ $s.keeper.maxFds | int | toString | quote }}
    {{- end }}
  resources:
    {{- toYaml $s.keeper.resources | nindent 4 }}
  securityContext:
    {{- include "fdstore.securityContext" (dict "uid" $s.uid "root" .root) | nindent 4 }}
  volumeMounts:
    - name: fdstore-run
      mountPath: {{ $s.runDir | quote }}
{{- end -}}

{{/* Classic mode's init container: each app's directory, owned by the agent's uid,
with the launcher in it, before any app starts. Without it the kubelet would make the
subPath directory root's (the agent refuses it), and the app would need a shell to
wait for the launcher; the launcher itself waits for the agent (--wait-ms). */}}
{{- define "fdstore.sidecar.prepare" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
- name: fdstore-prepare
  image: {{ $s.image | quote }}
  imagePullPolicy: {{ $s.pullPolicy }}
  args:
    - prepare
    - --run-dir
    - {{ $s.runDir | quote }}
    {{- range $s.containers }}
    - --container
    - {{ . | quote }}
    {{- end }}
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- include "fdstore.securityContext" (dict "uid" $s.uid "root" .root) | nindent 4 }}
  volumeMounts:
    - name: fdstore-run
      mountPath: {{ $s.runDir | quote }}
{{- end -}}

{{/* Items for the pod's initContainers (put yours after them): the keeper and the agent
(native) or fdstore prepare (classic). */}}
{{- define "fdstore.sidecar.initContainers" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
{{- if eq $s.mode "native" -}}
{{- if $s.keeper.enabled }}
{{ include "fdstore.sidecar.keeper" . }}
{{- end }}
{{ include "fdstore.sidecar" . }}
{{- else -}}
{{ include "fdstore.sidecar.prepare" . }}
{{- end -}}
{{- end -}}

{{/* Items for the pod's containers, before the apps: the keeper and the agent in classic
mode, nothing in native mode. */}}
{{- define "fdstore.sidecar.containers" -}}
{{- $s := include "fdstore.sidecar.settings" . | fromYaml -}}
{{- if eq $s.mode "classic" -}}
{{- if $s.keeper.enabled }}
{{ include "fdstore.sidecar.keeper" . }}
{{- end }}
{{ include "fdstore.sidecar" . }}
{{- end -}}
{{- end -}}

{{/* Items for the pod's volumes: the run dir and the agent's config file, the
fdstore.dev/config annotation the operator writes (empty while there is none). */}}
{{- define "fdstore.sidecar.volumes" -}}
- name: fdstore-run
  emptyDir: {}
- name: fdstore-config
  downwardAPI:
    items:
      - path: config
        fieldRef:
          fieldPath: "metadata.annotations['fdstore.dev/config']"
{{- end -}}

{{/* The app container's command: the launcher, then the app's own command (the image's
ENTRYPOINT is replaced, so give it whole). A flow list. */}}
{{- define "fdstore.app.command" -}}
{{- $s := include "fdstore.app.settings" . | fromYaml -}}
{{- $cmd := required "fdstore.app.command: the dict needs command (the app's command and args, a list)" .command -}}
{{- if not (kindIs "slice" $cmd) -}}
{{- fail "fdstore.app.command: command must be a list" -}}
{{- end -}}
{{- concat (list (printf "%s/fdstore-exec" $s.runDir) "--wait-ms" (toString (int $s.launcherWaitMs)) "--") $cmd | toJson -}}
{{- end -}}

{{/* Items for the app container's env: NOTIFY_SOCKET for processes started without the
launcher (the launcher sets it as well). */}}
{{- define "fdstore.app.env" -}}
{{- $s := include "fdstore.app.settings" . | fromYaml -}}
- name: NOTIFY_SOCKET
  value: {{ printf "%s/notify" $s.runDir | quote }}
{{- end -}}

{{/* Items for the app container's volumeMounts: only its own directory. */}}
{{- define "fdstore.app.volumeMounts" -}}
{{- $s := include "fdstore.app.settings" . | fromYaml -}}
- name: fdstore-run
  mountPath: {{ $s.runDir | quote }}
  subPath: {{ .container | quote }}
{{- end -}}

{{/* The app container's startupProbe, readinessProbe and livenessProbe, on the agent's
port (a number: a probe's named port is looked up in the probed container). */}}
{{- define "fdstore.app.probes" -}}
{{- $s := include "fdstore.app.settings" . | fromYaml -}}
{{- if $s.appProbes.enabled -}}
{{- $p := $s.appProbes -}}
startupProbe:
  httpGet: {path: {{ printf "/readyz/%s" .container | quote }}, port: {{ int $s.port }}}
  periodSeconds: {{ int $p.startup.periodSeconds }}
  failureThreshold: {{ int $p.startup.failureThreshold }}
  timeoutSeconds: {{ int $p.startup.timeoutSeconds }}
readinessProbe:
  httpGet: {path: {{ printf "/readyz/%s" .container | quote }}, port: {{ int $s.port }}}
  periodSeconds: {{ int $p.readiness.periodSeconds }}
  failureThreshold: {{ int $p.readiness.failureThreshold }}
  timeoutSeconds: {{ int $p.readiness.timeoutSeconds }}
livenessProbe:
  httpGet: {path: {{ printf "/livez/%s" .container | quote }}, port: {{ int $s.port }}}
  periodSeconds: {{ int $p.liveness.periodSeconds }}
  failureThreshold: {{ int $p.liveness.failureThreshold }}
  timeoutSeconds: {{ int $p.liveness.timeoutSeconds }}
{{- end -}}
{{- end -}}

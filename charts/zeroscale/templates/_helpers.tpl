{{/*
Shared named templates of the Zeroscale chart. Component templates call them with
`(dict "root" $ "component" "<operator|activator|autoscaler>")` where a component is involved.
*/}}

{{/*
zeroscale.name: the chart name (or nameOverride), the value of `app.kubernetes.io/name`.
*/}}
{{- define "zeroscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
zeroscale.fullname: the prefix of every object's name. The release name when it already contains the
chart name (release `zeroscale` gives `zeroscale-operator`, ...), else `<release>-zeroscale`.
Truncated to 40 characters so the longest derived name (`-activator-external`, 19) stays a valid
63-character DNS label.
*/}}
{{- define "zeroscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
zeroscale.componentName: `<fullname>-<component>`, the name of the component's Deployment, Service,
ServiceAccount, ClusterRole and Lease.
*/}}
{{- define "zeroscale.componentName" -}}
{{- printf "%s-%s" (include "zeroscale.fullname" .root) .component }}
{{- end }}

{{/*
zeroscale.selectorLabels: the immutable labels a component's Deployment selects its pods by.
*/}}
{{- define "zeroscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zeroscale.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
zeroscale.labels: the labels of every object of a component (selector labels plus version and owner).
`app.kubernetes.io/managed-by` is `Helm`, never `zeroscale`: the components watch objects labelled
`managed-by=zeroscale` as their own children.
*/}}
{{- define "zeroscale.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "zeroscale.selectorLabels" . }}
app.kubernetes.io/part-of: zeroscale
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
zeroscale.image: `<registry>/<repository>:<tag>` of a component (`<repository>:<tag>` when
image.registry is empty); the tag defaults to the chart's appVersion.
*/}}
{{- define "zeroscale.image" -}}
{{- $values := index .root.Values .component }}
{{- $repository := $values.image.repository }}
{{- with .root.Values.image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}

{{/*
zeroscale.addr: `<bindAddress>:<port>` for an address flag. Called with (dict "root" $ "port" N).
*/}}
{{- define "zeroscale.addr" -}}
{{- printf "%s:%s" .root.Values.bindAddress (include "zeroscale.scalar" .port) }}
{{- end }}

{{/*
zeroscale.scalar: a value as the flag text the binary parses. Helm reads numbers of values files as
float64, which plain printing would write as `3.3554432e+07`; whole numbers are printed as integers.
*/}}
{{- define "zeroscale.scalar" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/*
zeroscale.flags: one `--<kebab-case key>=<value>` list item per non-null key of a component's `args`
(keys in sorted order, so the output is stable). `false`, `0` and `""` are values, only null is
"leave the flag out".
*/}}
{{- define "zeroscale.flags" -}}
{{- range $key, $value := . }}
{{- if not (kindIs "invalid" $value) }}
- {{ printf "--%s=%s" (kebabcase $key) (include "zeroscale.scalar" $value) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
zeroscale.serviceHost: the in-cluster DNS name of a component's Service,
`<fullname>-<component>.<release namespace>.svc.<clusterDomain>`.
*/}}
{{- define "zeroscale.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "zeroscale.componentName" .) .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{/*
zeroscale.podEnv: the environment every component gets: its pod name (activator signal identity,
leader-election holder identity), then the user's `extraEnv`.
*/}}
{{- define "zeroscale.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with (index .root.Values .component).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
zeroscale.probes: readiness on `/ready` and liveness on `/live` of the admin port (named `admin`).
Readiness turns true once the component's watches have synced (a standby is ready while it waits for
the Lease); liveness only says the process answers, so a slow API server never restarts it.
*/}}
{{- define "zeroscale.probes" -}}
readinessProbe:
  httpGet:
    path: /ready
    port: admin
  periodSeconds: 2
  timeoutSeconds: 1
  failureThreshold: 2
livenessProbe:
  httpGet:
    path: /live
    port: admin
  initialDelaySeconds: 5
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
{{- end }}

{{/*
zeroscale.podScheduling: the pod-level settings shared by the three Deployments: service account,
security context (restricted Pod Security Standard), pull secrets, placement, grace period.
*/}}
{{- define "zeroscale.podScheduling" -}}
{{- $values := index .root.Values .component -}}
serviceAccountName: {{ include "zeroscale.componentName" . }}
automountServiceAccountToken: true
enableServiceLinks: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
zeroscale.podMetadata: labels (selector labels plus the user's podLabels) and annotations of a
component's pod template.
*/}}
{{- define "zeroscale.podMetadata" -}}
{{- $values := index .root.Values .component -}}
labels:
  {{- include "zeroscale.labels" . | nindent 2 }}
  {{- with $values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The guard around events and signals: flags and environment the component templates include, kept
here so those templates change by one line each. Values: `broker.auth`, `eventing.allowedHosts`,
`signals.auth` (docs/eventing.md, docs/signals.md).
*/}}

{{/*
zeroscale.guard.allowedHosts: the `--allowed-hosts` flag (operator and activator), when hosts are listed.
*/}}
{{- define "zeroscale.guard.allowedHosts" -}}
{{- with .Values.eventing.allowedHosts }}
- {{ printf "--allowed-hosts=%s" (join "," .) | quote }}
{{- end }}
{{- end }}

{{/*
zeroscale.guard.activatorArgs: broker authentication and the allow-list.
*/}}
{{- define "zeroscale.guard.activatorArgs" -}}
- {{ printf "--broker-auth=%t" .Values.broker.auth.enabled | quote }}
{{- include "zeroscale.guard.allowedHosts" . }}
{{- end }}

{{/*
zeroscale.guard.signalsSecret: name of the Secret holding the signal token.
*/}}
{{- define "zeroscale.guard.signalsSecret" -}}
{{- printf "%s-signals" (include "zeroscale.fullname" .) }}
{{- end }}

{{/*
zeroscale.guard.signalsEnv: the signal token as the environment variable `.env` (the activator's
`--autoscaler-token`, the autoscaler's `--events-token`), from the Secret. `optional` so that
manifests rendered without the Secret (deploy/) start without a token until one is created.
*/}}
{{- define "zeroscale.guard.signalsEnv" -}}
{{- if .root.Values.signals.auth.enabled }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "zeroscale.guard.signalsSecret" .root }}
      key: token
      optional: true
{{- end }}
{{- end }}

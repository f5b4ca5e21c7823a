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

{{/*
Platform events under broker authentication: the operator and the autoscaler POST their events to
the broker ingress, so with `broker.auth.enabled` they send a ServiceAccount token for the audience
`zeroscale-broker` from a projected volume the kubelet rotates (`--events-sink-token-file`), and
guard.yaml grants them `create` on `brokers.zeroscale.dev` in every namespace. Each helper takes
`root` and `sink` (the component's `args.eventsSink`: null derives the chart's broker, "" is off).
*/}}

{{/*
zeroscale.guard.sinkTokenOn: "true" when the component sends platform events with a broker token.
*/}}
{{- define "zeroscale.guard.sinkTokenOn" -}}
{{- if and .root.Values.broker.auth.enabled (or (kindIs "invalid" .sink) .sink) }}true{{ end }}
{{- end }}

{{/*
zeroscale.guard.sinkTokenDir: where the projected token is mounted (file `token`).
*/}}
{{- define "zeroscale.guard.sinkTokenDir" -}}
/var/run/secrets/zeroscale.dev/broker
{{- end }}

{{/*
zeroscale.guard.sinkTokenArgs: the `--events-sink-token-file` flag.
*/}}
{{- define "zeroscale.guard.sinkTokenArgs" -}}
{{- if include "zeroscale.guard.sinkTokenOn" . }}
- {{ printf "--events-sink-token-file=%s/token" (include "zeroscale.guard.sinkTokenDir" .) | quote }}
{{- end }}
{{- end }}

{{/*
zeroscale.guard.sinkTokenMount: the container's volumeMounts entry.
*/}}
{{- define "zeroscale.guard.sinkTokenMount" -}}
{{- if include "zeroscale.guard.sinkTokenOn" . }}
- name: broker-token
  mountPath: {{ include "zeroscale.guard.sinkTokenDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
zeroscale.guard.sinkTokenVolume: the pod's volumes entry: a token valid for an hour, which the kubelet
rewrites once 80% of that has passed; the senders read the file again when it changes.
*/}}
{{- define "zeroscale.guard.sinkTokenVolume" -}}
{{- if include "zeroscale.guard.sinkTokenOn" . }}
- name: broker-token
  projected:
    sources:
      - serviceAccountToken:
          audience: zeroscale-broker
          expirationSeconds: 3600
          path: token
{{- end }}
{{- end }}

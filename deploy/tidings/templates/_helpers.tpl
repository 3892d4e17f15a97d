{{/* Names: <release>-tidings unless the release name already says tidings. */}}
{{- define "tidings.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tidings.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels. Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "tidings.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidings.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tidings.labels" -}}
{{ include "tidings.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tidings
{{- end }}

{{- define "tidings.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "tidings.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "tidings.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/*
NATS_URL: nats.url, or the bundled nats chart's client Service (named as
that chart names it: the release name when it contains "nats", else
<release>-nats).
*/}}
{{- define "tidings.natsUrl" -}}
{{- if .Values.nats.url }}
{{- .Values.nats.url }}
{{- else if .Values.nats.enabled }}
{{- $svc := ternary .Release.Name (printf "%s-nats" .Release.Name) (contains "nats" .Release.Name) | trunc 63 | trimSuffix "-" }}
{{- printf "nats://%s:4222" $svc }}
{{- else }}
{{- fail "set nats.url to your NATS servers, or nats.enabled=true to install NATS with Tidings" }}
{{- end }}
{{- end }}

{{- define "tidings.appsSecretName" -}}
{{- .Values.apps.existingSecret | default (printf "%s-apps" (include "tidings.fullname" .)) }}
{{- end }}

{{/*
Renders files/<file> with tpl, then deep-merges `merge` over it (maps merge,
lists are replaced). Call with (dict "file" "gateway/service.yaml" "merge" .Values.gateway.service.merge "ctx" $).
*/}}
{{- define "tidings.render" -}}
{{- $obj := tpl (.ctx.Files.Get (printf "files/%s" .file)) .ctx | fromYaml }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "files/%s does not render to YAML: %s" .file $obj.Error) }}
{{- end }}
{{- $obj = mergeOverwrite $obj (deepCopy (.merge | default dict)) }}
{{- toYaml $obj }}
{{- end }}

{{/*
Env for every Tidings container. Call with (dict "ctx" $ "role" "gateway" "env" .Values.gateway.env).
Names must exist in shared/src/config/schema.ts (checked by shared/test/helm-chart.test.ts).
*/}}
{{- define "tidings.env" -}}
{{- $v := .ctx.Values }}
- name: TIDINGS_ROLE
  value: {{ .role | quote }}
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: NATS_URL
  value: {{ include "tidings.natsUrl" .ctx | quote }}
- name: NATS_REPLICAS
  value: {{ $v.nats.replicas | quote }}
{{- if or $v.apps.existingSecret $v.apps.json }}
- name: TIDINGS_APPS
  valueFrom:
    secretKeyRef:
      name: {{ include "tidings.appsSecretName" .ctx }}
      key: {{ if $v.apps.existingSecret }}{{ $v.apps.existingSecretKey }}{{ else }}TIDINGS_APPS{{ end }}
{{- else if not $v.apps.allowDevApp }}
{{- fail "set apps.existingSecret or apps.json (or apps.allowDevApp=true for a throwaway install)" }}
{{- end }}
{{- if $v.nats.credentials.existingSecret }}
- name: NATS_CREDS_FILE
  value: /etc/tidings/nats-creds/{{ $v.nats.credentials.key }}
{{- end }}
{{- if $v.nats.tls.caSecret }}
- name: NATS_TLS_CA
  value: /etc/tidings/nats-tls/{{ $v.nats.tls.caKey }}
{{- end }}
{{- with $v.nats.auth }}
{{- if and .existingSecret .userKey }}
- name: NATS_USER
  valueFrom:
    secretKeyRef: { name: {{ .existingSecret | quote }}, key: {{ .userKey | quote }} }
{{- end }}
{{- if and .existingSecret .passwordKey }}
- name: NATS_PASS
  valueFrom:
    secretKeyRef: { name: {{ .existingSecret | quote }}, key: {{ .passwordKey | quote }} }
{{- end }}
{{- if and .existingSecret .tokenKey }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef: { name: {{ .existingSecret | quote }}, key: {{ .tokenKey | quote }} }
{{- end }}
{{- end }}
{{- range $name, $value := merge (deepCopy (.env | default dict)) $v.config.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Volumes (and their mounts) for NATS credentials and CA, plus a writable /tmp. */}}
{{- define "tidings.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.nats.credentials.existingSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.nats.credentials.existingSecret }}
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: nats-tls
  secret:
    secretName: {{ .Values.nats.tls.caSecret }}
{{- end }}
{{- end }}

{{- define "tidings.volumeMounts" -}}
# A writable temp dir on a read-only root filesystem (Node and libraries may use it).
- name: tmp
  mountPath: /tmp
{{- if .Values.nats.credentials.existingSecret }}
- name: nats-creds
  mountPath: /etc/tidings/nats-creds
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: nats-tls
  mountPath: /etc/tidings/nats-tls
  readOnly: true
{{- end }}
{{- end }}

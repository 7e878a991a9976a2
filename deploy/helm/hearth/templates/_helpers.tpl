{{/* Names ---------------------------------------------------------------------------- */}}

{{- define "hearth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object: the release name, with the chart's unless it contains it. */}}
{{- define "hearth.fullname" -}}
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

{{/* A component's name: (dict "ctx" $ "component" "api") */}}
{{- define "hearth.componentName" -}}
{{- printf "%s-%s" (include "hearth.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hearth.secretName" -}}
{{- .Values.secret.existingSecret | default (include "hearth.fullname" .) }}
{{- end }}

{{- define "hearth.configMapName" -}}
{{- include "hearth.componentName" (dict "ctx" . "component" "config") }}
{{- end }}

{{- define "hearth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "hearth.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------- */}}

{{- define "hearth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hearth.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* (dict "ctx" $ "component" "api"); component may be empty. */}}
{{- define "hearth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hearth.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: hearth
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata: name, labels and the common annotations. (dict "ctx" $ "component" "api" "name" "…") */}}
{{- define "hearth.metadata" -}}
name: {{ .name }}
labels:
  {{- include "hearth.labels" . | nindent 2 }}
{{- with .ctx.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Images ---------------------------------------------------------------------------- */}}

{{- define "hearth.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Settings -------------------------------------------------------------------------- */}}

{{/* Where Hearth reads its secret files (HEARTH_SECRETS_DIR). */}}
{{- define "hearth.secretsDir" -}}/run/secrets/hearth{{- end }}

{{/* The bundled Redis's URL (no password: only Hearth's pods may reach it). */}}
{{- define "hearth.bundledRedisUrl" -}}
{{- printf "redis://%s:6379/0" (include "hearth.componentName" (dict "ctx" . "component" "redis")) }}
{{- end }}

{{/* The ConfigMap's data as a dict: the chart's plumbing, then .Values.config. */}}
{{- define "hearth.configData" -}}
{{- $data := dict "HOST" "0.0.0.0" "PORT" (toString .Values.api.port) }}
{{- if .Values.redis.enabled }}
{{- $_ := set $data "REDIS_URL" (include "hearth.bundledRedisUrl" .) }}
{{- end }}
{{- if .Values.migrations.initContainer }}
{{- $_ := set $data "MIGRATE_ON_START" "false" }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled }}
{{- $_ := set $data "SESSION_COOKIE_SECURE" "true" }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $_ := set $data "FORWARDED_ALLOW_IPS" (.Values.ingress.forwardedAllowIps | default "") }}
{{- end }}
{{- range $key, $value := .Values.config }}
{{- if not (kindIs "invalid" $value) }}
{{- if ne (toString $value) "" }}
{{- $_ := set $data $key (toString $value) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/* A value of the chart's Secret that Hearth can generate: the one given, else the one
     already in the cluster (so upgrades keep it), else a fresh random one.
     (dict "ctx" $ "key" "SECRET_KEY" "length" 48) */}}
{{- define "hearth.generatedSecret" -}}
{{- $given := index .ctx.Values.secret.values .key | default "" }}
{{- if $given }}
{{- $given }}
{{- else }}
{{- $previous := "" }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "hearth.secretName" .ctx) }}
{{- if and $existing $existing.data }}
{{- $previous = index $existing.data .key | default "" | b64dec }}
{{- end }}
{{- $previous | default (randAlphaNum .length) }}
{{- end }}
{{- end }}

{{/* Changes whenever a value that feeds a Secret changes, so pods roll. Generated values
     are left out: they do not change once made. */}}
{{- define "hearth.secretChecksum" -}}
{{- $inputs := dict "secret" .Values.secret "database" .Values.database "redis" .Values.redis.external "redisEnabled" .Values.redis.enabled }}
{{- toJson $inputs | sha256sum }}
{{- end }}

{{/* Pods ------------------------------------------------------------------------------ */}}

{{/* The annotations that roll pods when their configuration changes. */}}
{{- define "hearth.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include "hearth.secretChecksum" . }}
{{- end }}

{{/* The secret files: the chart's Secret (or yours), plus the database and Redis URLs when
     they come from Secrets of their own. */}}
{{- define "hearth.secretsVolume" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "hearth.secretName" . }}
      {{- with .Values.database.existingSecret }}
      {{- if not (and (eq . (include "hearth.secretName" $)) (eq $.Values.database.existingSecretKey "DATABASE_URL")) }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $.Values.database.existingSecretKey }}
              path: DATABASE_URL
      {{- end }}
      {{- end }}
      {{- if not .Values.redis.enabled }}
      {{- with .Values.redis.external.existingSecret }}
      {{- if not (and (eq . (include "hearth.secretName" $)) (eq $.Values.redis.external.existingSecretKey "REDIS_URL")) }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $.Values.redis.external.existingSecretKey }}
              path: REDIS_URL
      {{- end }}
      {{- end }}
      {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "hearth.volumeMounts" -}}
- name: secrets
  mountPath: {{ include "hearth.secretsDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* What every Hearth container is given: the ConfigMap, and where the secrets are. */}}
{{- define "hearth.environment" -}}
envFrom:
  - configMapRef:
      name: {{ include "hearth.configMapName" . }}
env:
  - name: HEARTH_SECRETS_DIR
    value: {{ include "hearth.secretsDir" . }}
{{- end }}

{{/* The init container that applies the migrations. (dict "ctx" $ "resources" …) */}}
{{- define "hearth.migrateInitContainer" -}}
- name: migrate
  image: {{ include "hearth.image" .ctx }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command: ["hearth"]
  args: ["migrate"]
  {{- include "hearth.environment" .ctx | nindent 2 }}
  securityContext:
    {{- toYaml .ctx.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    {{- include "hearth.volumeMounts" .ctx | nindent 4 }}
{{- end }}

{{/* Scheduling knobs of a component's pod: (dict "ctx" $ "values" .Values.api) */}}
{{- define "hearth.scheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Probe timing from values: (dict "timing" .Values.api.livenessProbe) */}}
{{- define "hearth.probeTiming" -}}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

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

{{/* A third-party image (.Values.redis.image, .Values.postgresql.image): repository:tag,
     and @digest when one is given (the runtime pulls by the digest; the tag tells people). */}}
{{- define "hearth.pinnedImage" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/* Settings -------------------------------------------------------------------------- */}}

{{/* Where Hearth reads its secret files (HEARTH_SECRETS_DIR). */}}
{{- define "hearth.secretsDir" -}}/run/secrets/hearth{{- end }}

{{/* "true" when the release runs its own PostgreSQL: wanted, and no external one given. */}}
{{- define "hearth.postgresqlEnabled" -}}
{{- if and .Values.postgresql.enabled (not .Values.database.url) (not .Values.database.existingSecret) }}true{{ end }}
{{- end }}

{{- define "hearth.postgresqlName" -}}
{{- include "hearth.componentName" (dict "ctx" . "component" "postgresql") }}
{{- end }}

{{- define "hearth.redisName" -}}
{{- include "hearth.componentName" (dict "ctx" . "component" "redis") }}
{{- end }}

{{/* Where Hearth's DATABASE_URL is, as JSON {"name": Secret, "key": key}: the chart's Secret
     (database.url), the operator's (database.existingSecret), or the bundled PostgreSQL's. */}}
{{- define "hearth.databaseUrlSource" -}}
{{- if .Values.database.url }}
{{- dict "name" (include "hearth.secretName" .) "key" "DATABASE_URL" | toJson }}
{{- else if .Values.database.existingSecret }}
{{- dict "name" .Values.database.existingSecret "key" .Values.database.existingSecretKey | toJson }}
{{- else }}
{{- dict "name" (include "hearth.postgresqlName" .) "key" "uri" | toJson }}
{{- end }}
{{- end }}

{{/* Where Hearth's REDIS_URL is, the same way: the bundled Redis's Secret, the chart's
     (redis.external.url) or the operator's (redis.external.existingSecret). */}}
{{- define "hearth.redisUrlSource" -}}
{{- if .Values.redis.enabled }}
{{- dict "name" (include "hearth.redisName" .) "key" "uri" | toJson }}
{{- else if .Values.redis.external.url }}
{{- dict "name" (include "hearth.secretName" .) "key" "REDIS_URL" | toJson }}
{{- else }}
{{- dict "name" .Values.redis.external.existingSecret "key" .Values.redis.external.existingSecretKey | toJson }}
{{- end }}
{{- end }}

{{/* The ConfigMap's data as a dict: the chart's plumbing, then .Values.config. */}}
{{- define "hearth.configData" -}}
{{- $data := dict "HOST" "0.0.0.0" "PORT" (toString .Values.api.port) }}
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

{{/* A secret value the chart can generate: the one given, else the one already in the
     cluster (so upgrades keep it), else a fresh random one. Letters and digits only, so it
     can go into a URL as it is.
     (dict "ctx" $ "secret" "<Secret name>" "key" "SECRET_KEY" "given" "" "length" 48) */}}
{{- define "hearth.generated" -}}
{{- if .given }}
{{- .given }}
{{- else }}
{{- $previous := "" }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret }}
{{- if and $existing $existing.data }}
{{- $previous = index $existing.data .key | default "" | b64dec }}
{{- end }}
{{- $previous | default (randAlphaNum .length) }}
{{- end }}
{{- end }}

{{/* A value of the chart's Secret that Hearth can generate (SECRET_KEY, ADMIN_PASSWORD).
     (dict "ctx" $ "key" "SECRET_KEY" "length" 48) */}}
{{- define "hearth.generatedSecret" -}}
{{- $given := index .ctx.Values.secret.values .key | default "" }}
{{- include "hearth.generated" (dict "ctx" .ctx "secret" (include "hearth.secretName" .ctx) "key" .key "given" $given "length" .length) }}
{{- end }}

{{/* Changes whenever a value that feeds a Secret changes, so pods roll. Generated values
     are left out: they do not change once made. */}}
{{- define "hearth.secretChecksum" -}}
{{- $inputs := dict "secret" .Values.secret "database" .Values.database "redis" .Values.redis.external "redisEnabled" .Values.redis.enabled "redisAuth" .Values.redis.auth "postgresqlEnabled" (include "hearth.postgresqlEnabled" .) "postgresqlAuth" .Values.postgresql.auth }}
{{- toJson $inputs | sha256sum }}
{{- end }}

{{/* Pods ------------------------------------------------------------------------------ */}}

{{/* The annotations that roll pods when their configuration changes. */}}
{{- define "hearth.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include "hearth.secretChecksum" . }}
{{- end }}

{{/* The secret files of a component's pod (dict "ctx" $ "component" "api"|"worker"): the
     api gets the whole of the chart's Secret (or yours); the worker only the keys it reads
     (SECRET_KEY, its settings require one; LLM_API_KEY for embedding runs, when there is
     one), never the operator's password, the MCP token, the mail or notification secrets.
     Both get DATABASE_URL and REDIS_URL from wherever they are. */}}
{{- define "hearth.secretsVolume" -}}
{{- $ctx := .ctx }}
{{- $secret := include "hearth.secretName" $ctx }}
{{- $api := eq .component "api" }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- if $api }}
      - secret:
          name: {{ $secret }}
      {{- else }}
      - secret:
          name: {{ $secret }}
          items:
            - key: SECRET_KEY
              path: SECRET_KEY
      - secret:
          name: {{ $secret }}
          items:
            - key: LLM_API_KEY
              path: LLM_API_KEY
          # A Secret without the key is fine: no LLM key, no file.
          optional: true
      {{- end }}
      {{- range $variable, $source := dict "DATABASE_URL" (include "hearth.databaseUrlSource" $ctx | fromJson) "REDIS_URL" (include "hearth.redisUrlSource" $ctx | fromJson) }}
      {{- /* The whole of the api's Secret already holds it under its own name. */}}
      {{- if not (and $api (eq $source.name $secret) (eq $source.key $variable)) }}
      - secret:
          name: {{ $source.name }}
          items:
            - key: {{ $source.key }}
              path: {{ $variable }}
      {{- end }}
      {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $ctx.Values.tmpSizeLimit }}
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

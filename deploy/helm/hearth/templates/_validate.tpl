{{/* Checks across values that values.schema.json cannot express with a clear message.
     Each failure says what is wrong and what to set instead. */}}
{{- define "hearth.validate" -}}
{{- $secretKeys := "(PASSWORD|SECRET|TOKEN|CREDENTIAL|(^|_)KEY$)" }}
{{- /* Variables the chart sets itself, and the values that set them. */}}
{{- $managed := dict
      "DATABASE_URL" "database.url or database.existingSecret"
      "REDIS_URL" "redis.enabled, or redis.external.url / redis.external.existingSecret"
      "PORT" "api.port"
      "MIGRATE_ON_START" "migrations.initContainer"
      "HEARTH_SECRETS_DIR" "secret.values / secret.existingSecret" }}
{{- range $key, $value := .Values.config }}
{{- if and (regexMatch $secretKeys (upper $key)) (not (hasSuffix "_FILE" (upper $key))) }}
{{- fail (printf "config.%s looks like a secret, and config goes into a ConfigMap: set it under secret.values (or in your secret.existingSecret) instead." $key) }}
{{- end }}
{{- if hasKey $managed (upper $key) }}
{{- fail (printf "config.%s is set by the chart: use %s instead." $key (get $managed (upper $key))) }}
{{- end }}
{{- if regexMatch "[A-Za-z][A-Za-z0-9+.-]*://[^/@\\s]*:[^/@\\s]*@" (toString $value) }}
{{- fail (printf "config.%s holds a URL with a password, and config goes into a ConfigMap: put the variable under secret.values (or in your secret.existingSecret) instead." $key) }}
{{- end }}
{{- end }}

{{- range $key := list "DATABASE_URL" "REDIS_URL" }}
{{- if index $.Values.secret.values $key }}
{{- fail (printf "secret.values.%s: set %s instead." $key (ternary "database.url" "redis.external.url (with redis.enabled=false)" (eq $key "DATABASE_URL"))) }}
{{- end }}
{{- end }}

{{- $db := .Values.database }}
{{- if and (not $db.url) (not $db.existingSecret) (not .Values.postgresql.enabled) }}
{{- fail "postgresql.enabled=false needs an external PostgreSQL: set database.url (postgresql://USER:PASSWORD@HOST:5432/DB) or database.existingSecret (a Secret holding that URL under database.existingSecretKey, e.g. CloudNativePG's <cluster>-app Secret with key uri), or set postgresql.enabled=true for the bundled one." }}
{{- end }}
{{- if and $db.url $db.existingSecret }}
{{- fail "Set database.url or database.existingSecret, not both." }}
{{- end }}
{{- if and $db.url .Values.secret.existingSecret }}
{{- fail "database.url goes into the Secret the chart creates, and with secret.existingSecret it creates none: put DATABASE_URL in your Secret and set database.existingSecret to its name." }}
{{- end }}

{{- $redis := .Values.redis.external }}
{{- if .Values.redis.enabled }}
{{- if or $redis.url $redis.existingSecret }}
{{- fail "redis.external is used only with redis.enabled=false: set redis.enabled=false to use your own Redis, or leave redis.external empty to use the bundled one." }}
{{- end }}
{{- else }}
{{- if and (not $redis.url) (not $redis.existingSecret) }}
{{- fail "redis.enabled=false needs an external Redis: set redis.external.url (redis://[:PASSWORD@]HOST:6379/0) or redis.external.existingSecret (a Secret holding that URL under redis.external.existingSecretKey)." }}
{{- end }}
{{- if and $redis.url $redis.existingSecret }}
{{- fail "Set redis.external.url or redis.external.existingSecret, not both." }}
{{- end }}
{{- if and $redis.url .Values.secret.existingSecret }}
{{- fail "redis.external.url goes into the Secret the chart creates, and with secret.existingSecret it creates none: put REDIS_URL in your Secret and set redis.external.existingSecret to its name." }}
{{- end }}
{{- end }}

{{- range $component := list "api" "worker" }}
{{- $values := index $.Values $component }}
{{- $pdb := $values.pdb }}
{{- $min := include "hearth.isSet" $pdb.minAvailable }}
{{- $max := include "hearth.isSet" $pdb.maxUnavailable }}
{{- if and $pdb.enabled $min $max }}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both (set the other to \"\")." $component) }}
{{- end }}
{{- if and $pdb.enabled (not $min) (not $max) }}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable." $component) }}
{{- end }}
{{- if and $values.autoscaling.enabled (gt (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling: minReplicas (%d) is above maxReplicas (%d)." $component (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}

{{- $api := .Values.api }}
{{- if ge (int $api.preStopSleepSeconds) (int $api.terminationGracePeriodSeconds) }}
{{- fail (printf "api.preStopSleepSeconds (%d) must be below api.terminationGracePeriodSeconds (%d): the pod is killed when the grace period ends, and needs time after the delay to finish its requests." (int $api.preStopSleepSeconds) (int $api.terminationGracePeriodSeconds)) }}
{{- end }}

{{- $keda := .Values.worker.keda }}
{{- if $keda.enabled }}
{{- if .Values.worker.autoscaling.enabled }}
{{- fail "worker.keda.enabled and worker.autoscaling.enabled both scale the workers (KEDA makes a HorizontalPodAutoscaler of its own): keep one, preferably KEDA, which sees the queue." }}
{{- end }}
{{- if not .Values.redis.enabled }}
{{- fail "worker.keda.enabled reads the queues in the bundled Redis (redis.enabled=true): with an external Redis, write a ScaledObject of your own (docs/deployment-kubernetes.md shows one)." }}
{{- end }}
{{- if gt (int $keda.minReplicas) (int $keda.maxReplicas) }}
{{- fail (printf "worker.keda: minReplicas (%d) is above maxReplicas (%d)." (int $keda.minReplicas) (int $keda.maxReplicas)) }}
{{- end }}
{{- end }}

{{- $monitor := .Values.metrics.serviceMonitor }}
{{- if $monitor.enabled }}
{{- if not $monitor.tokenSecret.name }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.serviceMonitor.tokenSecret.name: a Secret holding an API token with the metrics scope (hearth token create prometheus --scope=metrics), since /metrics refuses anonymous scrapes. See docs/monitoring.md." }}
{{- end }}
{{- if eq (lower (toString (index .Values.config "METRICS_ENABLED" | default "true"))) "false" }}
{{- fail "metrics.serviceMonitor.enabled scrapes /metrics, which config.METRICS_ENABLED=false switches off: remove one of them." }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" when a value is given (neither null nor ""), else "". */}}
{{- define "hearth.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") }}true{{ end }}
{{- end }}

{{/* Chart name, cut to 63 characters (a DNS label). */}}
{{- define "visionserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already holds the chart name. */}}
{{- define "visionserve.fullname" -}}
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

{{/* name-suffix, still within 63 characters. */}}
{{- define "visionserve.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "visionserve.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "visionserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A value rendered through tpl, Bitnami's tplvalues.render: a string as a template, anything else as its YAML. */}}
{{- define "visionserve.tpl" -}}
{{- $value := index . 0 }}
{{- $context := index . 1 }}
{{- if typeIs "string" $value }}
{{- tpl $value $context }}
{{- else }}
{{- tpl ($value | toYaml) $context }}
{{- end }}
{{- end }}

{{/* Standard labels on every object, and commonLabels. */}}
{{- define "visionserve.labels" -}}
helm.sh/chart: {{ include "visionserve.chart" . }}
{{ include "visionserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: visionserve
{{- with .Values.commonLabels }}
{{ include "visionserve.tpl" (list . $) }}
{{- end }}
{{- end }}

{{/* Selector labels: name + instance only, so they never change on upgrade. */}}
{{- define "visionserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "visionserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the helm test pod: not matched by the service's selectors (Service, PDB, HPA, NetworkPolicy). */}}
{{- define "visionserve.testLabels" -}}
helm.sh/chart: {{ include "visionserve.chart" . }}
app.kubernetes.io/name: {{ include "visionserve.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: test
{{- with .Values.commonLabels }}
{{ include "visionserve.tpl" (list . $) }}
{{- end }}
{{- end }}

{{- define "visionserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "visionserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference with global.imageRegistry in place of its registry: the first path component is a registry
when it holds a dot or a colon or is localhost (Docker's rule), as in ghcr.io/visionserve/visionserve.
*/}}
{{- define "visionserve.withRegistry" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- $registry := dig "imageRegistry" "" ($root.Values.global | default dict) }}
{{- if $registry }}
{{- $parts := splitList "/" $image }}
{{- $first := first $parts }}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $parts = rest $parts }}
{{- end }}
{{- printf "%s/%s" (trimSuffix "/" $registry) (join "/" $parts) }}
{{- else }}
{{- $image }}
{{- end }}
{{- end }}

{{/*
repository:tag or repository@digest; the tag defaults to appVersion, never latest, and takes gpu.imageTagSuffix on
GPU pods.
*/}}
{{- define "visionserve.image" -}}
{{- $repository := include "visionserve.withRegistry" (list . .Values.image.repository) }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- $suffix := ternary .Values.gpu.imageTagSuffix "" .Values.gpu.enabled }}
{{- printf "%s:%s%s" $repository (default .Chart.AppVersion .Values.image.tag) $suffix }}
{{- end }}
{{- end }}

{{/* Another image of the chart (init container, helm test): its own reference, or the service's image. */}}
{{- define "visionserve.otherImage" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- if $image }}
{{- include "visionserve.withRegistry" (list $root $image) }}
{{- else }}
{{- include "visionserve.image" $root }}
{{- end }}
{{- end }}

{{/* global.imagePullSecrets, then imagePullSecrets. */}}
{{- define "visionserve.imagePullSecrets" -}}
{{- $secrets := concat (dig "imagePullSecrets" list (.Values.global | default dict)) .Values.imagePullSecrets }}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The job label Prometheus gives this release's targets: the value, else what the chart's scrape object gives. */}}
{{- define "visionserve.metricsJob" -}}
{{- if .Values.monitoring.prometheusRule.job }}
{{- .Values.monitoring.prometheusRule.job }}
{{- else if .Values.monitoring.podMonitor.enabled }}
{{- printf "%s/%s" .Release.Namespace (include "visionserve.fullname" .) }}
{{- else if .Values.metrics.port }}
{{- include "visionserve.suffixed" (list . "metrics") }}
{{- else }}
{{- include "visionserve.fullname" . }}
{{- end }}
{{- end }}

{{/* PromQL label matchers of this release's own series: its namespace and job. */}}
{{- define "visionserve.promSelector" -}}
{{- printf "namespace=%q, job=%q" .Release.Namespace (include "visionserve.metricsJob" .) }}
{{- end }}

{{/* The HPA that scales the Deployment: the chart's, or the one KEDA makes for the ScaledObject. */}}
{{- define "visionserve.hpaName" -}}
{{- if .Values.autoscaling.keda.enabled }}
{{- printf "keda-hpa-%s" (include "visionserve.fullname" .) }}
{{- else }}
{{- include "visionserve.fullname" . }}
{{- end }}
{{- end }}

{{/* The update strategy: the value, else one that needs no spare GPU when gpu.enabled. */}}
{{- define "visionserve.updateStrategy" -}}
{{- if .Values.updateStrategy }}
{{- toYaml .Values.updateStrategy }}
{{- else }}
type: RollingUpdate
rollingUpdate:
  maxSurge: {{ ternary 0 1 .Values.gpu.enabled }}
  maxUnavailable: {{ ternary 1 0 .Values.gpu.enabled }}
{{- end }}
{{- end }}

{{/* topologySpreadConstraints, or the default spread over topologySpread.topologyKeys. */}}
{{- define "visionserve.topologySpreadConstraints" -}}
{{- if .Values.topologySpreadConstraints }}
{{- include "visionserve.tpl" (list .Values.topologySpreadConstraints .) }}
{{- else if ne .Values.topologySpread.mode "none" }}
{{- range .Values.topologySpread.topologyKeys }}
- maxSkew: {{ $.Values.topologySpread.maxSkew }}
  topologyKey: {{ . }}
  whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" (eq $.Values.topologySpread.mode "hard") }}
  labelSelector:
    matchLabels:
      {{- include "visionserve.selectorLabels" $ | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}
{{- end }}

{{/* Workers per pod: one per GPU, one on CPU. */}}
{{- define "visionserve.workers" -}}
{{- if .Values.gpu.enabled }}{{ .Values.gpu.count }}{{ else }}1{{ end }}
{{- end }}

{{/*
Torch threads per worker: the CPU limit (cores, or millicores "2500m") / workers, at least 1. Without a CPU limit, 0:
the service divides its CPU request (VISIONSERVE_CPU_REQUEST_MILLICORES, from the downward API) the same way.
*/}}
{{- define "visionserve.torchThreads" -}}
{{- if not (get .Values.resources.limits "cpu") }}
{{- 0 }}
{{- else }}
{{- $cpu := toString .Values.resources.limits.cpu }}
{{- $millis := 0 }}
{{- if hasSuffix "m" $cpu }}
{{- $millis = trimSuffix "m" $cpu | int }}
{{- else }}
{{- $millis = mulf (float64 $cpu) 1000 | int }}
{{- end }}
{{- max 1 (div $millis (mul 1000 (include "visionserve.workers" . | int))) }}
{{- end }}
{{- end }}

{{/* Where the API keys Secret is mounted (a directory: one file per data entry). */}}
{{- define "visionserve.apiKeysPath" -}}
/var/run/visionserve/api-keys
{{- end }}

{{/* The API keys Secret as a read-only volume: every entry, or only auth.apiKeys.key. */}}
{{- define "visionserve.apiKeysVolume" -}}
- name: api-keys
  secret:
    secretName: {{ .Values.auth.apiKeys.existingSecret | quote }}
    defaultMode: 288  # 0440: readable by the pod's group (fsGroup), writable by nobody
    {{- with .Values.auth.apiKeys.key }}
    items:
      - key: {{ . | quote }}
        path: {{ . | quote }}
    {{- end }}
{{- end }}

{{- define "visionserve.apiKeysMount" -}}
- name: api-keys
  mountPath: {{ include "visionserve.apiKeysPath" . }}
  readOnly: true
{{- end }}

{{/* Where a mounted CIFAR-10 head is in the pod (cifarHead.source configMap, secret or url). */}}
{{- define "visionserve.cifarHeadPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.cifarHead.mountPath) .Values.cifarHead.key }}
{{- end }}

{{/* The cifar-head volume: the key of a ConfigMap or Secret, or an emptyDir the init container fills. */}}
{{- define "visionserve.cifarHeadVolume" -}}
- name: cifar-head
  {{- if eq .Values.cifarHead.source "configMap" }}
  configMap:
    name: {{ .Values.cifarHead.name | quote }}
    items:
      - key: {{ .Values.cifarHead.key | quote }}
        path: {{ .Values.cifarHead.key | quote }}
  {{- else if eq .Values.cifarHead.source "secret" }}
  secret:
    secretName: {{ .Values.cifarHead.name | quote }}
    defaultMode: 288  # 0440: readable by the pod's group (fsGroup), writable by nobody
    items:
      - key: {{ .Values.cifarHead.key | quote }}
        path: {{ .Values.cifarHead.key | quote }}
  {{- else }}
  emptyDir:
    sizeLimit: 16Mi
  {{- end }}
{{- end }}

{{/* The init container of cifarHead.source url: fetch, check the sha256, only then write the file. */}}
{{- define "visionserve.cifarHeadInitContainer" -}}
- name: fetch-cifar-head
  image: {{ include "visionserve.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - visionserve
    - fetch-weights
  args:
    - --url
    - {{ .Values.cifarHead.url | quote }}
    - --sha256
    - {{ .Values.cifarHead.sha256 | quote }}
    - --output
    - {{ include "visionserve.cifarHeadPath" . | quote }}
  env:
    - name: HOME
      value: /tmp
  {{- with .Values.containerSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    requests:
      cpu: 50m
      memory: 64Mi
    limits:
      cpu: 500m
      memory: 256Mi
  volumeMounts:
    - name: cifar-head
      mountPath: {{ .Values.cifarHead.mountPath }}
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/* The service's config.yaml: the user's config plus the keys the chart owns. */}}
{{- define "visionserve.serviceConfig" -}}
{{- $owned := dict
  "host" "0.0.0.0"
  "port" (int .Values.containerPort)
  "metrics_port" (int .Values.metrics.port)
  "api_keys_file" (ternary (include "visionserve.apiKeysPath" .) "" (ne .Values.auth.apiKeys.existingSecret ""))
  "workers" (include "visionserve.workers" . | int)
  "device" (ternary "cuda" "cpu" .Values.gpu.enabled)
  "torch_threads" (include "visionserve.torchThreads" . | int)
  "drain_seconds" .Values.shutdown.drainSeconds
  "graceful_timeout" .Values.shutdown.gracefulTimeoutSeconds
  "cache_max_entries" (int64 .Values.cache.maxEntries)
  "cache_max_bytes" (int64 .Values.cache.maxBytes)
}}
{{- /* set, not merge: merge lets a user's value replace an owned one that is empty ("" or 0) */}}
{{- /* cpu_request_millicores is owned too, but set by a variable from the downward API (see deployment.yaml) */}}
{{- $config := omit (deepCopy .Values.config) "cpu_request_millicores" }}
{{- range $key, $value := $owned }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- if ne .Values.cifarHead.source "none" }}
{{- $_ := set $config "cifar_head" (include "visionserve.cifarHeadPath" .) }}
{{- $_ := set $config "cifar_head_sha256" (.Values.cifarHead.sha256 | default .Values.config.cifar_head_sha256) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Minimum replicas, whether the HPA or replicaCount sets them. */}}
{{- define "visionserve.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
Every check of the values that the schema cannot express (combinations of keys), Bitnami style:
each check yields a message or nothing, and one fail reports them all, so a wrong install is fixed in one go.
*/}}
{{- define "visionserve.validateValues" -}}
{{- $messages := list
  (include "visionserve.validateValues.startupProbe" .)
  (include "visionserve.validateValues.queue" .)
  (include "visionserve.validateValues.autoscaling" .)
  (include "visionserve.validateValues.initContainerWeights" .)
  (include "visionserve.validateValues.existingClaim" .)
  (include "visionserve.validateValues.metricsPort" .)
  (include "visionserve.validateValues.apiKeys" .)
  (include "visionserve.validateValues.cifarHead" .)
  (include "visionserve.validateValues.progressDeadline" .)
  (include "visionserve.validateValues.keda" .)
  (include "visionserve.validateValues.scrapedTwice" .)
  (include "visionserve.validateValues.vpa" .)
}}
{{- $messages = without $messages "" }}
{{- if $messages }}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail }}
{{- end }}
{{- end }}

{{/* The kubelet must not restart a pod that is still loading its model. */}}
{{- define "visionserve.validateValues.startupProbe" -}}
{{- $startup := mul .Values.probes.startup.periodSeconds .Values.probes.startup.failureThreshold }}
{{- if lt (int $startup) (int .Values.config.worker_timeout) }}
{{- printf "probes.startup allows %ds (periodSeconds x failureThreshold) but config.worker_timeout is %ds: the kubelet would restart a pod that is still loading its model" (int $startup) (int .Values.config.worker_timeout) }}
{{- end }}
{{- end }}

{{/* The service refuses a request size its queue cannot hold. */}}
{{- define "visionserve.validateValues.queue" -}}
{{- if ge (int .Values.config.max_images) (int .Values.config.max_queue) }}
{{- printf "config.max_images (%d) is not below config.max_queue (%d): the service refuses to start" (int .Values.config.max_images) (int .Values.config.max_queue) }}
{{- end }}
{{- end }}

{{- define "visionserve.validateValues.autoscaling" -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}

{{/* The init container fetches torchvision's weights only. */}}
{{- define "visionserve.validateValues.initContainerWeights" -}}
{{- if and (eq .Values.weights.source "initContainer") (not (has .Values.config.weights (list "imagenet" "IMAGENET1K_V1" "IMAGENET1K_V2"))) }}
{{- printf "weights.source initContainer fetches torchvision weights: config.weights must be imagenet, IMAGENET1K_V1 or IMAGENET1K_V2, not %q" .Values.config.weights }}
{{- end }}
{{- end }}

{{- define "visionserve.validateValues.existingClaim" -}}
{{- if and (eq .Values.weights.source "existingClaim") (not .Values.weights.existingClaim) }}
{{- print "weights.existingClaim is required when weights.source is existingClaim" }}
{{- end }}
{{- end }}

{{/* The metrics port is a second listener: it cannot be the API's port. */}}
{{- define "visionserve.validateValues.metricsPort" -}}
{{- if eq (int .Values.metrics.port) (int .Values.containerPort) }}
{{- printf "metrics.port (%d) is containerPort: give /metrics another port, or 0 to serve it on the http port" (int .Values.metrics.port) }}
{{- end }}
{{- end }}

{{- define "visionserve.validateValues.apiKeys" -}}
{{- if and .Values.auth.apiKeys.key (not .Values.auth.apiKeys.existingSecret) }}
{{- print "auth.apiKeys.key names an entry of auth.apiKeys.existingSecret, which is empty: name the Secret too" }}
{{- end }}
{{- end }}

{{/* A mounted head sets config.cifar_head itself; each source needs its own keys. */}}
{{- define "visionserve.validateValues.cifarHead" -}}
{{- $head := .Values.cifarHead }}
{{- if and (ne $head.source "none") (ne .Values.config.cifar_head "none") }}
{{- printf "cifarHead.source %s mounts the head and points config.cifar_head at it: leave config.cifar_head at none, not %q" $head.source .Values.config.cifar_head }}
{{- else if and (has $head.source (list "configMap" "secret")) (not $head.name) }}
{{- printf "cifarHead.name is required when cifarHead.source is %s: the %s holding the head under cifarHead.key" $head.source $head.source }}
{{- else if and (eq $head.source "url") (not (and $head.url $head.sha256)) }}
{{- print "cifarHead.source url needs cifarHead.url and cifarHead.sha256 (the head's full sha256, printed by make train-cifar-head)" }}
{{- end }}
{{- end }}

{{/* A rollout is reported failed when a pod takes longer to start and count as available than this. */}}
{{- define "visionserve.validateValues.progressDeadline" -}}
{{- $startup := add (mul .Values.probes.startup.periodSeconds .Values.probes.startup.failureThreshold) .Values.minReadySeconds }}
{{- if le (int .Values.progressDeadlineSeconds) (int $startup) }}
{{- printf "progressDeadlineSeconds (%d) is not above the startup probe's allowance plus minReadySeconds (%ds): a rollout of pods that load their model slowly would be reported failed" (int .Values.progressDeadlineSeconds) (int $startup) }}
{{- end }}
{{- end }}

{{- define "visionserve.validateValues.keda" -}}
{{- if and .Values.autoscaling.keda.enabled (not .Values.autoscaling.enabled) }}
{{- print "autoscaling.keda.enabled needs autoscaling.enabled (the ScaledObject takes minReplicas, maxReplicas and behavior from it)" }}
{{- end }}
{{- end }}

{{- define "visionserve.validateValues.scrapedTwice" -}}
{{- if and .Values.monitoring.serviceMonitor.enabled .Values.monitoring.podMonitor.enabled }}
{{- print "monitoring.serviceMonitor and monitoring.podMonitor are both enabled: every pod would be scraped twice, under two jobs; enable one" }}
{{- end }}
{{- end }}

{{/* A VPA that changes CPU requests fights an HPA that scales on CPU utilization (a share of the request). */}}
{{- define "visionserve.validateValues.vpa" -}}
{{- $vpa := .Values.verticalPodAutoscaler }}
{{- $hpaOnCpu := and .Values.autoscaling.enabled (not .Values.autoscaling.keda.enabled) (not .Values.gpu.enabled) (not .Values.autoscaling.metrics) }}
{{- if and $vpa.enabled (ne $vpa.updateMode "Off") (has "cpu" $vpa.controlledResources) $hpaOnCpu }}
{{- printf "verticalPodAutoscaler.updateMode %s changes CPU requests while the HPA scales on CPU utilization: use updateMode Off, leave cpu out of controlledResources, or scale on other metrics (autoscaling.metrics or autoscaling.keda)" $vpa.updateMode }}
{{- end }}
{{- end }}

{{/*
The HPA's metrics: autoscaling.metrics when set; else CPU utilization on CPU pods and the per-pod custom metric when
enabled, and on GPU pods the custom metric alone (their CPU says little about how busy the GPU is).
*/}}
{{- define "visionserve.hpaMetrics" -}}
{{- if .Values.autoscaling.metrics }}
{{- include "visionserve.tpl" (list .Values.autoscaling.metrics .) }}
{{- else }}
{{- if not .Values.gpu.enabled }}
- type: Resource
  resource:
    name: cpu
    target:
      type: Utilization
      averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if or .Values.autoscaling.customMetric.enabled .Values.gpu.enabled }}
- type: Pods
  pods:
    metric:
      name: {{ .Values.autoscaling.customMetric.name }}
    target:
      type: AverageValue
      averageValue: {{ .Values.autoscaling.customMetric.targetAverageValue | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The KEDA trigger's PromQL: autoscaling.keda.query, else the metric summed over this release's pods. */}}
{{- define "visionserve.kedaQuery" -}}
{{- if .Values.autoscaling.keda.query }}
{{- tpl .Values.autoscaling.keda.query . }}
{{- else }}
{{- printf "sum(%s{%s})" .Values.autoscaling.keda.metric (include "visionserve.promSelector" .) }}
{{- end }}
{{- end }}

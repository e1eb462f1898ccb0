{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "ctsguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix. Kept to 40 characters: a CronJob's Jobs append 11 characters
("-<minutes since epoch>") and their pods 6 more, within the 63 allowed for labels, and
"-backfill-<hash>" fits too.
*/}}
{{- define "ctsguard.fullname" -}}
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

{{- define "ctsguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ctsguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ctsguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ctsguard.labels" -}}
helm.sh/chart: {{ include "ctsguard.chart" . }}
{{ include "ctsguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ctsguard
{{- end }}

{{- define "ctsguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ctsguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ctsguard.secretName" -}}
{{- if .Values.credentials.existingSecret }}
{{- .Values.credentials.existingSecret }}
{{- else if .Values.credentials.create }}
{{- include "ctsguard.fullname" . }}
{{- end }}
{{- end }}

{{- define "ctsguard.image" -}}
{{- $repo := required "image.repository is required: build the image from the repository's Dockerfile and push it to a registry the cluster can pull from (README \"Deploying on Kubernetes\")" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The checkpoint location of the scan: scan.checkpoint, else a file on its volume. */}}
{{- define "ctsguard.checkpoint" -}}
{{- if .Values.scan.checkpoint }}
{{- .Values.scan.checkpoint }}
{{- else if .Values.scan.persistence.enabled }}
{{- "/var/lib/ctsguard/checkpoint.json" }}
{{- else }}
{{- fail "scan.checkpoint is required (an s3://bucket/key URL; production state belongs in the bucket), or set scan.persistence.enabled=true for a file on a volume; an emptyDir checkpoint would be lost after every run" }}
{{- end }}
{{- end }}

{{/* Configuration -------------------------------------------------------------------- */}}

{{/*
The TOML config file. Strings and lists are written with toJson: a JSON string is a valid
TOML basic string (same escapes), and a JSON array of strings a valid TOML array.
*/}}
{{- define "ctsguard.configToml" -}}
{{- $c := .Values.config -}}
# ctsguard configuration, rendered by the Helm chart from the release's values.
# Credentials are never in this file: they come from a Secret as environment variables.
source = {{ required "config.source is required: the CTS bucket as s3://bucket[/prefix]" $c.source | toJson }}
{{- with $c.regions }}
regions = {{ toJson . }}
{{- end }}
{{- with $c.trackers }}
trackers = {{ toJson . }}
{{- end }}
{{- with $c.services }}
services = {{ toJson . }}
{{- end }}
allow = {{ toJson (default (list) $c.allow) }}
{{- with $c.actions }}
actions = {{ toJson . }}
{{- end }}
message_template = {{ toJson $c.messageTemplate }}
integrity = {{ toJson $c.integrity }}
parse = {{ toJson $c.parse }}
{{- if $c.publicKey }}
public_key = "/etc/ctsguard/public-key.pem"
{{- end }}
concurrency = {{ int $c.concurrency }}
max_decompressed_size = {{ toJson (toString $c.maxDecompressedSize) }}
{{- with $c.extraToml }}

# config.extraToml
{{ trim . }}
{{- end }}

[s3]
{{- with $c.endpoint }}
endpoint = {{ toJson . }}
{{- end }}
path_style = {{ $c.pathStyle }}
{{- with $c.s3Region }}
region = {{ toJson . }}
{{- end }}
{{- if .Values.scan.enabled }}

[scan]
checkpoint = {{ include "ctsguard.checkpoint" . | toJson }}
{{- with .Values.scan.since }}
since = {{ toJson (toString .) }}
{{- end }}
lateness = {{ toJson .Values.scan.lateness }}
lease_ttl = {{ toJson .Values.scan.leaseTtl }}
commit_interval = {{ toJson .Values.scan.commitInterval }}
{{- end }}
{{- end }}

{{/* Pods ----------------------------------------------------------------------------- */}}

{{/*
The pod template of every job. Arguments: a dict with
  root      the chart's root context
  command   the job's name in labels and the metrics file (scan, verify, backfill)
  args      the container's arguments
  env       more environment variables (a list of EnvVar)
  volumes   more volumes; mounts: more volume mounts
  resources the job's own resources (empty: the top-level ones)
  indexed   whether the pod belongs to an Indexed Job (one pod per shard)
*/}}
{{- define "ctsguard.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "ctsguard.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .command }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "ctsguard.configToml" $root | sha256sum }}
    {{- if and $v.credentials.create (not $v.credentials.existingSecret) }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "ctsguard.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  containers:
    - name: ctsguard
      image: {{ include "ctsguard.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      # Where the Dockerfile installs the binary.
      command:
        - /usr/local/bin/ctsguard
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        - name: CTSGUARD_CONFIG
          value: /etc/ctsguard/config.toml
        - name: CTSGUARD_LOG_FORMAT
          value: {{ $v.logFormat | quote }}
        - name: CTSGUARD_LOG
          value: {{ $v.logLevel | quote }}
        - name: TMPDIR
          value: /tmp
        {{- with $v.metrics.pushgateway }}
        - name: CTSGUARD_METRICS_PUSH
          value: {{ . | quote }}
        {{- end }}
        {{- if $v.metrics.file.enabled }}
        {{- if .indexed }}
        # The pod's completion index, the same value the Job controller puts in
        # JOB_COMPLETION_INDEX, defined here so the next value can refer to it.
        - name: POD_COMPLETION_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
        - name: CTSGUARD_METRICS_FILE
          value: {{ printf "/var/lib/ctsguard-metrics/%s-%s-shard-$(POD_COMPLETION_INDEX).prom" (include "ctsguard.fullname" $root) .command | quote }}
        {{- else }}
        - name: CTSGUARD_METRICS_FILE
          value: {{ printf "/var/lib/ctsguard-metrics/%s-%s.prom" (include "ctsguard.fullname" $root) .command | quote }}
        {{- end }}
        {{- end }}
        {{- with (include "ctsguard.secretName" $root) }}
        {{- $secret := . }}
        {{- $keys := $v.credentials.keys }}
        - name: AWS_ACCESS_KEY_ID
          valueFrom:
            secretKeyRef:
              name: {{ $secret }}
              key: {{ $keys.accessKeyId }}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ $secret }}
              key: {{ $keys.secretAccessKey }}
        {{- range $env, $field := dict "CTSGUARD_SMN_TOKEN" "smnToken" "CTSGUARD_SMN_ACCESS_KEY" "smnAccessKey" "CTSGUARD_SMN_SECRET_KEY" "smnSecretKey" "CTSGUARD_SMTP_PASSWORD" "smtpPassword" "CTSGUARD_WEBHOOK_SECRET" "webhookSecret" }}
        - name: {{ $env }}
          valueFrom:
            secretKeyRef:
              name: {{ $secret }}
              key: {{ index $keys $field }}
              optional: true
        {{- end }}
        {{- end }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml (default $v.resources .resources) | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/ctsguard
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $v.metrics.file.enabled }}
        - name: metrics
          mountPath: /var/lib/ctsguard-metrics
        {{- end }}
        {{- with .mounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "ctsguard.fullname" $root }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ $v.tmpSizeLimit }}
    {{- if $v.metrics.file.enabled }}
    - name: metrics
      hostPath:
        path: {{ $v.metrics.file.hostPath }}
        type: Directory
    {{- end }}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
podFailurePolicy of a Job: the listed exit codes fail the Job at once; pods disrupted by the
cluster (eviction, node drain, preemption) are retried without counting against backoffLimit.
*/}}
{{- define "ctsguard.podFailurePolicy" -}}
podFailurePolicy:
  rules:
    {{- with . }}
    - action: FailJob
      onExitCodes:
        containerName: ctsguard
        operator: In
        values:
          {{- toYaml . | nindent 10 }}
    {{- end }}
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end }}

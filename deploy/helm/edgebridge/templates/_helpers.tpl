{{/*
The name of the bridge's objects: the release's name when it holds the
chart's (so `helm install edgebridge` names them as the kustomize
manifests do), else <release>-edgebridge.
*/}}
{{- define "edgebridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "edgebridge.admissionName" -}}
{{- printf "%s-admission" (include "edgebridge.fullname" .) -}}
{{- end -}}

{{/* Labels every object carries; the first is the kustomize manifests' own. */}}
{{- define "edgebridge.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ include "edgebridge.tag" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* What selects a component's pods: never changes across upgrades. */}}
{{- define "edgebridge.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "edgebridge.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "edgebridge.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "edgebridge.tag" .) -}}
{{- end -}}

{{/*
The bridge's pod template, shared by the Deployment and the YurtAppSet so
that the two cannot differ but for --nodepool.
*/}}
{{- define "edgebridge.podTemplate" -}}
{{- $edgex := .Values.edgex -}}
metadata:
  labels:
    {{- include "edgebridge.selectorLabels" (dict "name" "edgebridge" "root" .) | nindent 4 }}
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "8080"
spec:
  serviceAccountName: {{ include "edgebridge.fullname" . }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: devicecontroller
      image: {{ include "edgebridge.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- if eq .Values.workload.kind "Deployment" }}
        - --nodepool={{ required "workload.nodePool is required when workload.kind is Deployment" .Values.workload.nodePool }}
        {{- end }}
        {{- if $edgex.addressesSecret }}
        - --core-metadata-url=$(EDGEX_CORE_METADATA_URL)
        - --core-command-url=$(EDGEX_CORE_COMMAND_URL)
        - --mqtt-broker=$(EDGEX_MQTT_BROKER)
        {{- else }}
        - --core-metadata-url={{ required "edgex.coreMetadataURL is required" $edgex.coreMetadataURL }}
        - --core-command-url={{ required "edgex.coreCommandURL is required" $edgex.coreCommandURL }}
        - --mqtt-broker={{ required "edgex.mqttBroker is required" $edgex.mqttBroker }}
        {{- end }}
        {{- if $edgex.tokenSecret }}
        - --edgex-token-file=/var/run/secrets/edgex/token/token
        {{- end }}
        {{- if $edgex.mqttCredentialsSecret }}
        - --mqtt-username-file=/var/run/secrets/edgex/mqtt/username
        - --mqtt-password-file=/var/run/secrets/edgex/mqtt/password
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        # The leader beacon names the pod: a replica restarted in it during
        # a cloud outage may take the lead its predecessor had.
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        # The garbage collector works harder as the heap nears the
        # container's limit, rather than the process being killed.
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              resource: limits.memory
        {{- if $edgex.addressesSecret }}
        {{- range $env, $key := dict "EDGEX_CORE_METADATA_URL" "core-metadata-url" "EDGEX_CORE_COMMAND_URL" "core-command-url" "EDGEX_MQTT_BROKER" "mqtt-broker" }}
        - name: {{ $env }}
          valueFrom:
            secretKeyRef:
              name: {{ $edgex.addressesSecret }}
              key: {{ $key }}
        {{- end }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: 8080
        - name: health
          containerPort: 8081
      livenessProbe:
        httpGet:
          path: /healthz
          port: health
        periodSeconds: 20
      readinessProbe:
        httpGet:
          path: /readyz
          port: health
        periodSeconds: 10
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      {{- if or $edgex.tokenSecret $edgex.mqttCredentialsSecret }}
      volumeMounts:
        {{- if $edgex.tokenSecret }}
        - name: edgex-token
          mountPath: /var/run/secrets/edgex/token
          readOnly: true
        {{- end }}
        {{- if $edgex.mqttCredentialsSecret }}
        - name: mqtt-credentials
          mountPath: /var/run/secrets/edgex/mqtt
          readOnly: true
        {{- end }}
      {{- end }}
  {{- if or $edgex.tokenSecret $edgex.mqttCredentialsSecret }}
  volumes:
    {{- if $edgex.tokenSecret }}
    - name: edgex-token
      secret:
        secretName: {{ $edgex.tokenSecret }}
    {{- end }}
    {{- if $edgex.mqttCredentialsSecret }}
    - name: mqtt-credentials
      secret:
        secretName: {{ $edgex.mqttCredentialsSecret }}
    {{- end }}
  {{- end }}
{{- end -}}

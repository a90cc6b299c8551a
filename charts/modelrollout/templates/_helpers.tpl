{{/* Names, labels and the operator's RBAC rules, shared by the templates. */}}

{{- define "modelrollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name, suffixed with the chart's unless it holds it. */}}
{{- define "modelrollout.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modelrollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelrollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelrollout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "modelrollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelrollout
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "modelrollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelrollout.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelrollout.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "modelrollout.subject" -}}
- kind: ServiceAccount
  name: {{ include "modelrollout.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/*
What the operator does in a namespace it watches, and nothing more: it reads and patches
ModelDeployments (never creates or deletes them) and writes their status; it owns the
Deployments, Services, HTTPRoutes and VirtualServices of each rollout; it relabels pods to move
them between tracks; it posts Events (kopf does too).
*/}}
{{- define "modelrollout.namespacedRules" -}}
{{- $owned := list "get" "list" "watch" "create" "patch" "update" "delete" -}}
- apiGroups: ["modelrollout.io"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["modelrollout.io"]
  resources: ["modeldeployments/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: {{ toJson $owned }}
- apiGroups: [""]
  resources: ["services"]
  verbs: {{ toJson $owned }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: {{ toJson $owned }}
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: {{ toJson $owned }}
{{- /* modelrollout-notifications: each namespace's default notification receiver */}}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson (concat (list "modelrollout-notifications") .Values.modelDeploymentSecrets | uniq) }}
  verbs: ["get"]
{{- end -}}

{{/* Cluster-scoped reads: GPU pool capacity, always. */}}
{{- define "modelrollout.capacityRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/* kopf follows namespaces coming and going when it watches all of them. */}}
{{- define "modelrollout.namespaceRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

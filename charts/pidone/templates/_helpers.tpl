{{/* Chart name. */}}
{{- define "pidone.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-pidone, or the release name when it already contains the chart name. */}}
{{- define "pidone.fullname" -}}
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

{{- define "pidone.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pidone.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pidone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pidone.labels" -}}
helm.sh/chart: {{ include "pidone.chart" . }}
{{ include "pidone.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: pidone
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "pidone.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pidone.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "pidone.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding tls.crt/tls.key (and ca.crt unless existingSecret). */}}
{{- define "pidone.tlsSecretName" -}}
{{- if and (not .Values.certManager.enabled) .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "pidone.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The DNS names of the Service, which the serving certificate must carry. */}}
{{- define "pidone.dnsNames" -}}
{{- $svc := include "pidone.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end -}}

{{/* The configuration file: the config block, with the release namespace added to the exemptions
     and the pidone image filled in for init injection. */}}
{{- define "pidone.configFile" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $ex := default (dict) $cfg.exemptions -}}
{{- $nss := default (list) $ex.namespaces -}}
{{- if not (has .Release.Namespace $nss) -}}
{{- $nss = append $nss .Release.Namespace -}}
{{- end -}}
{{- $_ := set $ex "namespaces" $nss -}}
{{- $_ = set $cfg "exemptions" $ex -}}
{{- $ii := default (dict) $cfg.initInjection -}}
{{- if not $ii.image -}}
{{- $_ = set $ii "image" (include "pidone.image" .) -}}
{{- end -}}
{{- $_ = set $cfg "initInjection" $ii -}}
{{- /* scripts.configMaps follows the chart's switch, which also grants the RBAC. */ -}}
{{- $sc := default (dict) $cfg.scripts -}}
{{- $_ = unset $sc "configMaps" -}}
{{- $cms := .Values.scripts.configMaps -}}
{{- if $cms.enabled -}}
{{- if $cms.namespaces -}}
{{- $_ = set $sc "configMaps" $cms.namespaces -}}
{{- else -}}
{{- $_ = set $sc "configMaps" true -}}
{{- end -}}
{{- end -}}
{{- if $sc -}}
{{- $_ = set $cfg "scripts" $sc -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Namespaces excluded from every webhook entry. */}}
{{- define "pidone.excludedNamespaces" -}}
{{- $nss := list .Release.Namespace -}}
{{- range .Values.webhooks.excludeNamespaces -}}
{{- if not (has . $nss) -}}
{{- $nss = append $nss . -}}
{{- end -}}
{{- end -}}
{{- toJson $nss -}}
{{- end -}}

{{/*
namespaceSelector of the entry for one mode. Arguments: (dict "ctx" $ "mode" "enforce").
- The entry of the global mode (config.mode) takes namespaces whose pidone.io/mode label is not one
  of the other modes: unlabelled namespaces, and namespaces labelled with that mode.
  (NotIn matches namespaces without the label.)
- The entry of any other mode takes only namespaces labelled with it.
- Namespaces labelled `off` match no entry. With config.mode=off only labelled namespaces are seen.
Every entry also excludes the release namespace and webhooks.excludeNamespaces by name.
*/}}
{{- define "pidone.namespaceSelector" -}}
{{- $ctx := .ctx -}}
{{- $mode := .mode -}}
{{- $global := $ctx.Values.config.mode -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "pidone.excludedNamespaces" $ctx }}
{{- if eq $mode $global }}
  - key: pidone.io/mode
    operator: NotIn
    values: {{ without (list "enforce" "audit" "off") $mode | toJson }}
{{- else }}
  - key: pidone.io/mode
    operator: In
    values: [{{ $mode | quote }}]
{{- end }}
{{- end -}}

{{/*
The admission rules of one webhook entry; ctx is the root context, kind "mutate" or "validate".
The validating webhook sees Pods and every ownerless workload (denials and apply-time warnings).
The mutating webhook patches where Kubernetes' controllers never compare: Pods only, and
workload templates on CREATE when config.mutations.workloads is true (DESIGN section 5.1).
The server never patches or denies objects with a controller owner (a Deployment's ReplicaSet,
a CronJob's Job) whatever these rules send it.
*/}}
{{- define "pidone.webhookRules" -}}
{{- $workloads := and (eq .kind "mutate") (dig "mutations" "workloads" false .ctx.Values.config) -}}
{{- $ops := ternary (list "CREATE") (list "CREATE" "UPDATE") (eq .kind "mutate") | toJson -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE"]
  resources: ["pods"]
  scope: Namespaced
{{- if or (eq .kind "validate") $workloads }}
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: {{ $ops }}
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: {{ $ops }}
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: {{ $ops }}
  resources: ["replicationcontrollers", "podtemplates"]
  scope: Namespaced
{{- end }}
{{- end -}}

{{/*
CEL: true unless the request is an UPDATE that leaves the pod template as it was. pidone never
changes or denies such an UPDATE (container fields are judged when the template changes), so
the apiserver need not call it. Each kind keeps its template elsewhere; `has()` guards keep
a missing field from being an evaluation error (which the failure policy would turn into a
rejection under Fail).
*/}}
{{- define "pidone.templateChangedCEL" -}}
request.operation != 'UPDATE' || oldObject == null ||
(request.resource.resource == 'cronjobs'
  ? !has(object.spec) || !has(oldObject.spec) || !has(object.spec.jobTemplate) || !has(oldObject.spec.jobTemplate)
    || object.spec.jobTemplate != oldObject.spec.jobTemplate
  : request.resource.resource == 'podtemplates'
    ? !has(object.template) || !has(oldObject.template) || object.template != oldObject.template
    : !has(object.spec) || !has(oldObject.spec) || !has(object.spec.template) || !has(oldObject.spec.template)
      || object.spec.template != oldObject.spec.template)
{{- end -}}

{{/* matchConditions of every webhook entry: the built-in skip, then webhooks.matchConditions. */}}
{{- define "pidone.matchConditions" -}}
{{- $conditions := list -}}
{{- if .Values.webhooks.skipUnchangedUpdates -}}
{{- $conditions = append $conditions (dict "name" "pidone-pod-template-changed" "expression" (include "pidone.templateChangedCEL" .)) -}}
{{- end -}}
{{- $conditions = concat $conditions (default (list) .Values.webhooks.matchConditions) -}}
{{- if $conditions -}}
{{- toYaml $conditions -}}
{{- end -}}
{{- end -}}

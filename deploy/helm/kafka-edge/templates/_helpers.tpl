{{/* Names and labels. */}}
{{- define "kafka-edge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kafka-edge.fullname" -}}
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

{{- define "kafka-edge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka-edge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "kafka-edge.labels" -}}
{{ include "kafka-edge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "kafka-edge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The environment variable the gateway's SASL password reaches it in, from upstream.sasl.passwordSecretName. */}}
{{- define "kafka-edge.saslPasswordEnv" -}}
KAFKA_EDGE_UPSTREAM_SASL_PASSWORD
{{- end -}}

{{/* SNI mode: one port for the whole cluster. */}}
{{- define "kafka-edge.sniMode" -}}
{{- if .Values.sni.domain -}}true{{- end -}}
{{- end -}}

{{- define "kafka-edge.advertisedHost" -}}
{{- if .Values.gateway.advertisedHost -}}
{{- .Values.gateway.advertisedHost -}}
{{- else if .Values.sni.domain -}}
{{- printf "%s.%s" .Values.sni.bootstrapLabel .Values.sni.domain -}}
{{- else -}}
{{- fail "gateway.advertisedHost is required in port mode: the DNS name (or IP) of the LoadBalancer that clients reach" -}}
{{- end -}}
{{- end -}}

{{/*
The broker ports, as a JSON list of {"id", "port", "name"}, in the order of
brokers.nodeIds. A node id's port follows the gateway's own rule: an explicit
brokers.ports entry, else the range that holds it, else portBase + id up to
portBaseMaxNodeId. Names
are broker-<id>, or b-<id> where that would pass the 15 characters a port name
may have. Empty in SNI mode. Fails on a port outside 1-65535, a port used
twice, or one that collides with the bootstrap or admin port.
*/}}
{{- define "kafka-edge.brokerPorts" -}}
{{- $b := .Values.brokers -}}
{{- $out := list -}}
{{- if not .Values.sni.domain -}}
{{- if not $b.nodeIds -}}
{{- fail "brokers.nodeIds is empty: list the node id of every broker (port mode needs one port per broker)" -}}
{{- end -}}
{{- $seen := dict (toString (int64 .Values.gateway.port)) "the bootstrap port" (toString (int64 .Values.admin.port)) "the admin port" -}}
{{- range $raw := $b.nodeIds -}}
{{- $id := int64 $raw -}}
{{- if lt $id 0 -}}
{{- fail (printf "brokers.nodeIds: %d is not a node id" $id) -}}
{{- end -}}
{{- $port := -1 -}}
{{- if le $id (int64 $b.portBaseMaxNodeId) -}}
{{- $port = add (int64 $b.portBase) $id -}}
{{- end -}}
{{- range $r := $b.ranges -}}
{{- if and (ge $id (int64 $r.firstNodeId)) (le $id (int64 $r.lastNodeId)) -}}
{{- $port = add (int64 $r.firstPort) (sub $id (int64 $r.firstNodeId)) -}}
{{- end -}}
{{- end -}}
{{- if hasKey ($b.ports | default dict) (toString $id) -}}
{{- $port = int64 (get $b.ports (toString $id)) -}}
{{- end -}}
{{- if lt $port 0 -}}
{{- fail (printf "brokers: node %d is above brokers.portBaseMaxNodeId (%d) and in no range: add a range or an explicit port" $id (int64 $b.portBaseMaxNodeId)) -}}
{{- end -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "brokers: node %d maps to port %d, outside 1-65535 (add a range or an explicit port)" $id $port) -}}
{{- end -}}
{{- if hasKey $seen (toString $port) -}}
{{- fail (printf "brokers: node %d maps to port %d, which is already %s" $id $port (get $seen (toString $port))) -}}
{{- end -}}
{{- $_ := set $seen (toString $port) (printf "node %d's port" $id) -}}
{{- $name := printf "broker-%d" $id -}}
{{- if gt (len $name) 15 -}}
{{- $name = printf "b-%d" $id -}}
{{- end -}}
{{- $out = append $out (dict "id" $id "port" $port "name" $name) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The gateway's TOML configuration. Strings go through toJson: a JSON string is a TOML basic string. */}}
{{- define "kafka-edge.config" -}}
{{- $v := .Values -}}
{{- if not $v.upstream.bootstrapServers -}}
{{- fail "upstream.bootstrapServers is required: the cluster's bootstrap brokers, HOST:PORT" -}}
{{- end -}}
{{- if and $v.sni.domain (not $v.tls.secretName) -}}
{{- fail "sni.domain needs tls.secretName: the server name comes from the TLS handshake" -}}
{{- end -}}
{{- if and $v.tls.clientCaSecretName (not $v.tls.secretName) -}}
{{- fail "tls.clientCaSecretName needs tls.secretName" -}}
{{- end -}}
{{- if and $v.upstream.tls.enabled (not $v.upstream.tls.secretName) -}}
{{- fail "upstream.tls.enabled needs upstream.tls.secretName (the Secret holding the brokers' CA)" -}}
{{- end -}}
{{- if ne (empty $v.upstream.tls.certKey) (empty $v.upstream.tls.keyKey) -}}
{{- fail "upstream.tls.certKey and upstream.tls.keyKey go together" -}}
{{- end -}}
{{- if and $v.upstream.sasl.enabled (not $v.upstream.sasl.username) -}}
{{- fail "upstream.sasl.enabled needs upstream.sasl.username (the user the gateway logs in as)" -}}
{{- end -}}
{{- if and $v.upstream.sasl.enabled (not $v.upstream.sasl.passwordSecretName) -}}
{{- fail "upstream.sasl.enabled needs upstream.sasl.passwordSecretName (the Secret holding the gateway's password)" -}}
{{- end -}}
{{- $ca := $v.clientAuth -}}
{{- $passwords := false -}}
{{- range $ca.mechanisms }}{{ if ne . "OAUTHBEARER" }}{{ $passwords = true }}{{ end }}{{ end -}}
{{- if and $passwords (not $ca.credentialsSecretName) -}}
{{- fail "clientAuth.mechanisms with PLAIN or SCRAM needs clientAuth.credentialsSecretName (the Secret holding the credential file)" -}}
{{- end -}}
{{- if has "OAUTHBEARER" $ca.mechanisms -}}
{{- if not $ca.oauthbearer.jwksConfigMapName -}}
{{- fail "clientAuth.mechanisms with OAUTHBEARER needs clientAuth.oauthbearer.jwksConfigMapName (the identity provider's keys)" -}}
{{- end -}}
{{- if not $ca.oauthbearer.audience -}}
{{- fail "clientAuth.mechanisms with OAUTHBEARER needs clientAuth.oauthbearer.audience" -}}
{{- end -}}
{{- end -}}
{{- if and $ca.mtls.rules (not $v.tls.clientCaSecretName) -}}
{{- fail "clientAuth.mtls.rules needs tls.clientCaSecretName (client certificates are what they map)" -}}
{{- end -}}
{{- if and (eq $v.upstreamIdentity.default "service") (not $v.upstream.sasl.enabled) -}}
{{- fail "upstreamIdentity.default service needs upstream.sasl.enabled (the gateway's own login)" -}}
{{- end -}}
[gateway]
listen = {{ printf "0.0.0.0:%d" (int64 $v.gateway.port) | toJson }}
advertised_host = {{ include "kafka-edge.advertisedHost" . | toJson }}
max_connections = {{ int64 $v.gateway.maxConnections }}
buffer_bytes = {{ int64 $v.gateway.bufferBytes }}
splice = {{ $v.gateway.splice }}
{{- if $v.gateway.threads }}
threads = {{ int64 $v.gateway.threads }}
{{- end }}
max_frame_bytes = {{ int64 $v.gateway.maxFrameBytes }}
idle_timeout_ms = {{ int64 $v.gateway.idleTimeoutMs }}
shutdown_grace_ms = {{ int64 $v.gateway.shutdownGraceMs }}
proxy_protocol = {{ $v.gateway.proxyProtocol | toString | toJson }}

[upstream]
bootstrap_servers = {{ $v.upstream.bootstrapServers | toJson }}
{{- with $v.upstream.allow }}
allow = {{ . | toJson }}
{{- end }}
connect_timeout_ms = {{ int64 $v.upstream.connectTimeoutMs }}
metadata_refresh_ms = {{ int64 $v.upstream.metadataRefreshMs }}
{{- if $v.upstream.tls.enabled }}

[upstream.tls]
ca = {{ printf "/etc/kafka-edge/upstream-tls/%s" $v.upstream.tls.caKey | toJson }}
{{- if $v.upstream.tls.certKey }}
cert = {{ printf "/etc/kafka-edge/upstream-tls/%s" $v.upstream.tls.certKey | toJson }}
key = {{ printf "/etc/kafka-edge/upstream-tls/%s" $v.upstream.tls.keyKey | toJson }}
{{- end }}
verify_hostname = {{ $v.upstream.tls.verifyHostname }}
{{- end }}
{{- if $v.upstream.sasl.enabled }}

[upstream.sasl]
mechanism = {{ $v.upstream.sasl.mechanism | toJson }}
username = {{ $v.upstream.sasl.username | toJson }}
password_env = {{ include "kafka-edge.saslPasswordEnv" . | toJson }}
{{- end }}

{{- if not $v.sni.domain }}

[brokers]
port_base = {{ int64 $v.brokers.portBase }}
port_base_max_node_id = {{ int64 $v.brokers.portBaseMaxNodeId }}
retire_after_ms = {{ int64 $v.brokers.retireAfterMs }}
{{- with $v.brokers.ranges }}
ranges = [
{{- range . }}
  { first_node_id = {{ int64 .firstNodeId }}, last_node_id = {{ int64 .lastNodeId }}, first_port = {{ int64 .firstPort }} },
{{- end }}
]
{{- end }}
{{- with $v.brokers.ports }}

[brokers.ports]
{{- range $id, $port := . }}
{{ $id | toString | toJson }} = {{ int64 $port }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.tls.secretName }}

[tls]
cert = "/etc/kafka-edge/tls/tls.crt"
key = "/etc/kafka-edge/tls/tls.key"
{{- if $v.tls.clientCaSecretName }}
client_ca = {{ printf "/etc/kafka-edge/client-ca/%s" $v.tls.clientCaKey | toJson }}
{{- end }}
handshake_timeout_ms = {{ int64 $v.tls.handshakeTimeoutMs }}
reload_check_ms = {{ int64 $v.tls.reloadCheckMs }}
{{- end }}
{{- if $v.sni.domain }}

[sni]
domain = {{ $v.sni.domain | toJson }}
bootstrap = {{ $v.sni.bootstrapLabel | toJson }}
broker = {{ $v.sni.brokerLabel | toJson }}
{{- end }}
{{- if or $ca.mechanisms $ca.mtls.rules }}

[client_auth]
mechanisms = {{ $ca.mechanisms | toJson }}
{{- if $ca.credentialsSecretName }}
credentials_file = {{ printf "/etc/kafka-edge/credentials/%s" $ca.credentialsKey | toJson }}
{{- end }}
{{- if $ca.maxSessionMs }}
max_session_ms = {{ int64 $ca.maxSessionMs }}
{{- end }}
{{- if has "OAUTHBEARER" $ca.mechanisms }}

[client_auth.oauthbearer]
jwks_file = {{ printf "/etc/kafka-edge/jwks/%s" $ca.oauthbearer.jwksKey | toJson }}
{{- with $ca.oauthbearer.issuer }}
issuer = {{ . | toJson }}
{{- end }}
audience = {{ $ca.oauthbearer.audience | toJson }}
principal_claim = {{ $ca.oauthbearer.principalClaim | toJson }}
{{- end }}
{{- with $ca.mtls.rules }}

[client_auth.mtls]
rules = {{ . | toJson }}
{{- end }}
{{- end }}
{{- if or $v.upstreamIdentity.principals (ne $v.upstreamIdentity.default "as_is") }}

[upstream_identity.default]
mode = {{ $v.upstreamIdentity.default | toJson }}
{{- range $i, $name := keys $v.upstreamIdentity.principals | sortAlpha }}
{{- $p := get $v.upstreamIdentity.principals $name }}

[upstream_identity.principals.{{ $name | toJson }}]
mode = "sasl"
mechanism = {{ $p.mechanism | toJson }}
username = {{ $p.username | toJson }}
password_file = {{ printf "/etc/kafka-edge/upstream-identity/%d/%s" $i ($p.passwordKey | default "password") | toJson }}
{{- end }}
{{- end }}
{{- range $v.policy.grants }}

[[policy.grants]]
principals = {{ .principals | toJson }}
operations = {{ .operations | toJson }}
topics = {{ .topics | default list | toJson }}
groups = {{ .groups | default list | toJson }}
transactional_ids = {{ .transactionalIds | default list | toJson }}
{{- end }}
{{- if $v.audit.enabled }}

[audit]
file = "/var/log/kafka-edge/audit.log"
{{- end }}

[admin]
listen = {{ printf "0.0.0.0:%d" (int64 $v.admin.port) | toJson }}

[log]
level = {{ $v.gateway.logLevel | toJson }}
{{- end -}}

//! Every key of the configuration file, with its default, flag and meaning: the one source
//! of `docs/configuration.md` and of the commented `config/kafka-edge.toml`, both rendered
//! here (`kafka-edge config reference`, `kafka-edge config example`). Tests check that the
//! checked-in files are what this renders, that the documented defaults are the ones
//! [`Config::resolve`](super::Config::resolve) applies, and that an example with every key
//! set deserializes and leaves nothing unset, so a key the schema accepts cannot be missing
//! here.

use std::fmt::Write;

/// One table of the file, such as `[gateway]` or `[upstream.tls]`.
pub struct Section {
    pub name: &'static str,
    /// An entry of a list of tables (`[[name]]`), written once per entry.
    pub array: bool,
    /// Off unless the file has it: its keys are shown commented out in the example.
    pub optional: bool,
    pub doc: &'static str,
    pub keys: &'static [Key],
}

/// One key of a section.
pub struct Key {
    pub name: &'static str,
    /// The default as a TOML value; `None` when the key has none, or one worked out at
    /// startup (then `default_note` says which).
    pub default: Option<&'static str>,
    /// What the default is when it is not a fixed value.
    pub default_note: &'static str,
    /// Must be set (in its section, when the section is optional).
    pub required: bool,
    /// A value as an operator might write it: the example with every key set uses it.
    pub example: &'static str,
    /// The command-line flag that overrides the key.
    pub flag: Option<&'static str>,
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    default: &'static str,
    example: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        default: Some(default),
        default_note: "",
        required: false,
        example,
        flag: None,
        doc,
    }
}

/// A key with no fixed default: `note` says what happens without it.
const fn unset(
    name: &'static str,
    note: &'static str,
    example: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        default: None,
        default_note: note,
        required: false,
        example,
        flag: None,
        doc,
    }
}

const fn required(name: &'static str, example: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        default: None,
        default_note: "required",
        required: true,
        example,
        flag: None,
        doc,
    }
}

const fn flag(key: Key, flag: &'static str) -> Key {
    Key {
        flag: Some(flag),
        ..key
    }
}

pub const SECTIONS: &[Section] = &[
    Section {
        array: false,
        name: "gateway",
        optional: false,
        doc: "Where clients connect, and the limits every client connection works within.",
        keys: &[
            flag(
                key(
                    "listen",
                    "\"127.0.0.1:9092\"",
                    "\"0.0.0.0:9092\"",
                    "Where clients bootstrap (`IP:PORT`). Every broker listener binds on the same IP.",
                ),
                "--listen",
            ),
            flag(
                unset(
                    "advertised_host",
                    "the listen IP",
                    "\"kafka.example.com\"",
                    "The host name or IP clients are told, for the bootstrap and for every broker. Required when `listen` is a wildcard such as `0.0.0.0`.",
                ),
                "--advertised-host",
            ),
            key(
                "max_connections",
                "10000",
                "20000",
                "Client connections open at once, over all listeners (1 to 4294967295). Beyond it a new connection is closed at once, counted in `kafka_edge_refused_connections_total{kind=\"connection_limit\"}` and logged.",
            ),
            key(
                "buffer_bytes",
                "65536",
                "131072",
                "Bytes each direction of a connection reads at a time (4096 to 67108864). Larger frames stream through without being held whole, so this bounds the memory of a connection.",
            ),
            key(
                "splice",
                "true",
                "false",
                "Where the client and the broker connection are both plain TCP, the unread rest of a frame larger than 32 KiB moves from socket to socket through a kernel pipe (Linux `splice(2)`) instead of being copied through the gateway's memory: about half the CPU per byte. `false` copies everything; TLS connections always copy.",
            ),
            unset(
                "threads",
                "one per CPU this process may use",
                "2",
                "Threads sessions run on (1 to 1024). Each connection stays on the thread it was handed at accept, so its events never wake another thread.",
            ),
            key(
                "max_frame_bytes",
                "104857600",
                "209715200",
                "Largest frame accepted from either side (Kafka's own default `socket.request.max.bytes`), 1024 or more. A larger or negative size closes that connection.",
            ),
            key(
                "max_rewrite_bytes",
                "67108864",
                "33554432",
                "The most of an answer that names brokers held before its last address is rewritten (1024 or more): the memory one connection may take for a moment beyond its buffers. A Metadata answer holds only its broker list (the topics stream after it); DescribeConfigs and DescribeGroups answers are held whole. More closes that connection. Every other frame streams through, and only `max_frame_bytes` applies to it.",
            ),
            key(
                "idle_timeout_ms",
                "600000",
                "300000",
                "A connection closes when the client sends nothing, a broker owes a response and sends nothing, or a peer reads nothing, for this long (at least 100). Brokers close idle connections after 10 minutes too (`connections.max.idle.ms`).",
            ),
            key(
                "proxy_protocol",
                "\"off\"",
                "\"optional\"",
                "PROXY protocol (v1 and v2) on client connections, as load balancers send it, so that logs and `/connections` name the real client: `\"off\"`, `\"optional\"` (read a header when there is one, lose no byte otherwise) or `\"required\"` (refuse connections without one).",
            ),
            key(
                "shutdown_grace_ms",
                "10000",
                "20000",
                "On SIGTERM or SIGINT: how long in-flight requests may take to finish before the remaining connections close.",
            ),
        ],
    },
    Section {
        array: false,
        name: "upstream",
        optional: false,
        doc: "The cluster the gateway fronts. It connects only to these bootstrap servers and to the broker addresses they report.",
        keys: &[
            flag(
                required(
                    "bootstrap_servers",
                    "[\"kafka-0.kafka.svc.cluster.local:9092\", \"kafka-1.kafka.svc.cluster.local:9092\"]",
                    "The cluster's bootstrap brokers, `HOST:PORT`. The flag may be given several times.",
                ),
                "--bootstrap-server",
            ),
            unset(
                "allow",
                "not set (any address the cluster reports)",
                "[\"10.0.0.0/8\", \".kafka.svc.cluster.local\"]",
                "Where brokers may be. When set, every broker address the cluster reports, and every address the gateway dials (the bootstrap servers included, checked at startup), must match one entry: a network (`\"10.0.0.0/8\"`, `\"fd00::/8\"`: IP addresses only, names are not resolved to match it), a DNS suffix (`\".kafka.svc.cluster.local\"`: any name under it) or one exact host. A broker reported outside gets no port, the answer that named it is not passed on, and `kafka_edge_broker_addresses_refused_total` counts it.",
            ),
            key(
                "connect_timeout_ms",
                "5000",
                "3000",
                "How long a connection to a broker (TCP, and TLS when configured) may take before the client connection is closed.",
            ),
            key(
                "metadata_refresh_ms",
                "30000",
                "60000",
                "How often the gateway asks the cluster for its brokers itself (at least 100). It also learns them from every Metadata answer it relays.",
            ),
        ],
    },
    Section {
        array: false,
        name: "upstream.tls",
        optional: true,
        doc: "TLS to the brokers: on when the section is present.",
        keys: &[
            required(
                "ca",
                "\"/etc/kafka-edge/upstream-tls/ca.crt\"",
                "PEM CA bundle that signed the brokers' certificates.",
            ),
            unset(
                "cert",
                "none",
                "\"/etc/kafka-edge/upstream-tls/user.crt\"",
                "PEM client certificate chain, for brokers that require mutual TLS; goes with `key`.",
            ),
            unset(
                "key",
                "none",
                "\"/etc/kafka-edge/upstream-tls/user.key\"",
                "PEM private key of that client certificate.",
            ),
            key(
                "verify_hostname",
                "true",
                "false",
                "A broker certificate must name the host the gateway dialled (as the cluster advertises it). `false` keeps the CA check but accepts any name, and logs a warning.",
            ),
        ],
    },
    Section {
        array: false,
        name: "upstream.sasl",
        optional: true,
        doc: "The gateway's own SASL login to the brokers, on when the section is present, for clusters whose listeners require authentication before they answer anything: the gateway's metadata refresh (readiness, broker ports) and `kafka-edge diagnose` log in with it. Client connections are never touched: clients log in to the brokers end to end, with their own credentials. With `[upstream.tls]` as well, this is SASL_SSL.",
        keys: &[
            required(
                "mechanism",
                "\"SCRAM-SHA-512\"",
                "`\"PLAIN\"`, `\"SCRAM-SHA-256\"` or `\"SCRAM-SHA-512\"`.",
            ),
            required(
                "username",
                "\"kafka-edge\"",
                "The user the gateway logs in as. It only asks for the broker list (Metadata with no topics), which needs no ACL of its own.",
            ),
            unset(
                "password_file",
                "none",
                "\"/etc/kafka-edge/sasl/password\"",
                "A file holding the password; trailing line breaks are dropped. It is read again at every login, so a rotated secret is picked up without a restart. Give exactly one of `password_file` and `password_env`: the password itself never goes in this file, nor in a log.",
            ),
            unset(
                "password_env",
                "none",
                "\"KAFKA_EDGE_SASL_PASSWORD\"",
                "The name of an environment variable holding the password.",
            ),
        ],
    },
    Section {
        array: false,
        name: "brokers",
        optional: false,
        doc: "The port plan: which gateway port serves which broker node id. It is a pure function of the configuration, so replicas started alike tell clients the same thing. It is checked as a whole at startup: two node ids on one port, or a node on the bootstrap or admin port, is a configuration error naming every clash, never a surprise when a broker joins.",
        keys: &[
            flag(
                key(
                    "port_base",
                    "19000",
                    "30000",
                    "Broker with node id N is served at port `port_base + N`, unless a range or an explicit port says otherwise.",
                ),
                "--broker-port-base",
            ),
            key(
                "port_base_max_node_id",
                "9999",
                "999",
                "The highest node id `port_base` serves (ports `port_base` to `port_base + port_base_max_node_id`); higher ids need a range or an explicit port. Lower it when a range, an explicit port, or the bootstrap or admin port sits among those ports.",
            ),
            key(
                "retire_after_ms",
                "300000",
                "600000",
                "How long the cluster may stop reporting a broker before its port closes (`kafka_edge_brokers_retired_total`). A restarting broker drops out of the cluster's broker list for a while; a decommissioned one for good. Connections already made to it go on until they end; reported again, it is served again.",
            ),
            key(
                "ranges",
                "[]",
                "[{ first_node_id = 1000, last_node_id = 1099, first_port = 20000 }]",
                "Blocks of node ids on blocks of ports, for large or sparse ids: node N in `first_node_id..=last_node_id` is served at `first_port + (N - first_node_id)`. Ranges may share neither node ids nor ports.",
            ),
            key(
                "ports",
                "{}",
                "{ \"111\" = 19111 }",
                "Explicit ports for single node ids (keys are node ids, quoted). They win over ranges and the base.",
            ),
        ],
    },
    Section {
        array: false,
        name: "tls",
        optional: true,
        doc: "Client-facing TLS, on when `cert` and `key` are set: every listener speaks TLS (rustls, TLS 1.2 and 1.3), the handshake runs in each connection's own task.",
        keys: &[
            required(
                "cert",
                "\"/etc/kafka-edge/tls/tls.crt\"",
                "PEM certificate chain, the leaf first, then its intermediates.",
            ),
            required(
                "key",
                "\"/etc/kafka-edge/tls/tls.key\"",
                "PEM private key (PKCS#8, PKCS#1 or SEC1).",
            ),
            unset(
                "client_ca",
                "none",
                "\"/etc/kafka-edge/client-ca/ca.crt\"",
                "PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS).",
            ),
            key(
                "handshake_timeout_ms",
                "10000",
                "5000",
                "How long a client may take to complete the TLS handshake.",
            ),
            key(
                "reload_check_ms",
                "2000",
                "5000",
                "How often the three files are checked for a rotation (50 at least; a Kubernetes Secret update included). Changed files are re-read: new connections get the new certificate, existing ones keep theirs. Files caught half-written are retried at the next check while the old certificate stays in use.",
            ),
        ],
    },
    Section {
        array: false,
        name: "sni",
        optional: true,
        doc: "SNI mode (needs `[tls]`): one TLS port for the whole cluster. Clients bootstrap at `bootstrap.<domain>` on the listen port; broker N is told `broker-N.<domain>` on the same port, and the gateway routes each connection by the server name it asks for. One wildcard certificate (`*.<domain>`) covers every name; per-broker ports are not opened.",
        keys: &[
            required(
                "domain",
                "\"kafka.example.com\"",
                "The DNS domain under which clients find the bootstrap and every broker.",
            ),
            key(
                "bootstrap",
                "\"bootstrap\"",
                "\"kafka\"",
                "The bootstrap label: one DNS label.",
            ),
            key(
                "broker",
                "\"broker-{id}\"",
                "\"b{id}\"",
                "The broker label: one DNS label with `{id}` once, replaced by the node id.",
            ),
        ],
    },
    Section {
        array: false,
        name: "client_auth",
        optional: true,
        doc: "Clients log in to the gateway itself (see docs/security.md): it answers SaslHandshake and SaslAuthenticate, offers them in ApiVersions even when the cluster has no SASL, and relays nothing before a login succeeds. Off unless set: authentication then passes through to the brokers.",
        keys: &[
            key(
                "mechanisms",
                "[]",
                "[\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\", \"OAUTHBEARER\"]",
                "SASL mechanisms offered: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`. May be empty when `[client_auth.mtls]` names clients by their certificates.",
            ),
            unset(
                "credentials_file",
                "none; required for PLAIN and SCRAM",
                "\"/etc/kafka-edge/users.json\"",
                "The users PLAIN and SCRAM check against: salted SCRAM credentials and password hashes, never clear text (`kafka-edge credentials add` writes it). Read again when it changes.",
            ),
            key(
                "reload_check_ms",
                "2000",
                "5000",
                "How often the credential file and key files are checked for changes (at least 50).",
            ),
            unset(
                "max_session_ms",
                "sessions last as long as the connection",
                "3600000",
                "KIP-368: the longest a login lasts. Clients are told it and log in again before it ends; a connection that does not is closed. An OAUTHBEARER session also ends when its token expires.",
            ),
        ],
    },
    Section {
        array: false,
        name: "client_auth.oauthbearer",
        optional: true,
        doc: "How OAUTHBEARER tokens (JWTs) are checked: signature, issuer, audience, expiry. Required when `mechanisms` has OAUTHBEARER.",
        keys: &[
            unset(
                "jwks_file",
                "none; this or `public_keys`",
                "\"/etc/kafka-edge/jwks.json\"",
                "A JWKS document holding the identity provider's public keys (RSA, EC, Ed25519). Read again when it changes.",
            ),
            unset(
                "issuer",
                "any issuer",
                "\"https://idp.example.com\"",
                "The `iss` every token must carry.",
            ),
            required(
                "audience",
                "[\"kafka\"]",
                "Audiences accepted: a token's `aud` must name one, so a token minted for another service opens nothing here.",
            ),
            key(
                "clock_skew_s",
                "30",
                "60",
                "Seconds of clock difference allowed on `exp` and `nbf` (at most 600).",
            ),
            key(
                "principal_claim",
                "\"sub\"",
                "\"preferred_username\"",
                "The claim that names the principal.",
            ),
        ],
    },
    Section {
        array: true,
        name: "client_auth.oauthbearer.public_keys",
        optional: true,
        doc: "Public keys as PEM files, instead of `jwks_file`: one entry per key.",
        keys: &[
            required(
                "file",
                "\"/etc/kafka-edge/idp.pem\"",
                "A PEM public key (RSA, EC or Ed25519). Read again when it changes.",
            ),
            unset(
                "kid",
                "the key checks tokens of any `kid`",
                "\"k1\"",
                "The key id tokens signed with this key carry.",
            ),
        ],
    },
    Section {
        array: false,
        name: "client_auth.mtls",
        optional: true,
        doc: "Clients named by their TLS certificate (needs `tls.client_ca`): the first rule that matches gives the principal.",
        keys: &[key(
            "rules",
            "[\"DEFAULT\"]",
            "[\"RULE:^CN=([^,]+),OU=clients(,.*)?$/$1/L\", \"SAN:DNS:DEFAULT\"]",
            "Rules over the subject, as Kafka's `ssl.principal.mapping.rules` writes them (`RULE:pattern/replacement/[LU]`, `DEFAULT`: the whole subject), each optionally after `SAN:DNS:`, `SAN:URI:` or `SAN:EMAIL:` to match that kind of subject alternative name instead. A certificate no rule matches is refused.",
        )],
    },
    Section {
        array: false,
        name: "upstream_identity.default",
        optional: true,
        doc: "How the gateway logs in to brokers for a client it authenticated, unless a principal has its own entry below. Without it: `as_is`.",
        keys: UPSTREAM_IDENTITY_KEYS,
    },
    Section {
        array: false,
        name: "upstream_identity.principals.\"team-a\"",
        optional: true,
        doc: "How the gateway logs in to brokers for one principal (here `team-a`): one such section per principal, so broker ACLs and quotas see one identity per team.",
        keys: UPSTREAM_IDENTITY_KEYS,
    },
    Section {
        array: true,
        name: "policy.grants",
        optional: true,
        doc: "Who may do what (see docs/security.md). Once any grant is set, everything no grant allows is denied, answered by the gateway with the error a broker would give and never forwarded. One entry per grant.",
        keys: &[
            required(
                "principals",
                "[\"team-a\", \"team-a-ci\"]",
                "The principals the grant is for; `\"*\"` is every authenticated principal.",
            ),
            required(
                "operations",
                "[\"read\", \"write\", \"describe\"]",
                "Operation classes granted: `read`, `write`, `describe`, `create`, `delete`, `alter`, `cluster_admin`.",
            ),
            key(
                "topics",
                "[]",
                "[\"team-a.*\", \"shared-events\"]",
                "Topics the operations apply to: a name, or a prefix ending in `*`.",
            ),
            key(
                "groups",
                "[]",
                "[\"team-a.*\"]",
                "Consumer, share and streams groups, as `topics` writes them.",
            ),
            key(
                "transactional_ids",
                "[]",
                "[\"team-a.*\"]",
                "Transactional ids, as `topics` writes them.",
            ),
        ],
    },
    Section {
        array: false,
        name: "audit",
        optional: true,
        doc: "The audit log: one JSON line per login and per denial (time, principal, client address, mechanism or API, resource, decision), apart from the operational log.",
        keys: &[
            required(
                "file",
                "\"/var/log/kafka-edge/audit.log\"",
                "The file lines are appended to.",
            ),
            key(
                "queue",
                "10000",
                "50000",
                "Lines waiting to be written; beyond it lines are dropped and counted, so a slow disk never stalls clients.",
            ),
        ],
    },
    Section {
        array: false,
        name: "admin",
        optional: false,
        doc: "The admin endpoint: `/livez`, `/readyz`, `/metrics` and `/connections` (see docs/operations.md). It needs no credentials: keep it on loopback or a private interface.",
        keys: &[flag(
            key(
                "listen",
                "\"off\"",
                "\"0.0.0.0:9191\"",
                "Where the admin endpoint listens (`IP:PORT`), or `\"off\"`. Off by default, so that two gateways on one host never fight over a port.",
            ),
            "--admin-listen",
        )],
    },
    Section {
        array: false,
        name: "log",
        optional: false,
        doc: "What the gateway logs (to stderr, as text or JSON lines: `--log-format`).",
        keys: &[flag(
            unset(
                "level",
                "`RUST_LOG`, else `info`",
                "\"info,kafka_edge::proxy=debug\"",
                "The log filter: a level (`error`, `warn`, `info`, `debug`: every connection, `trace`) or a tracing filter such as `info,kafka_edge::proxy=debug`. The flag wins over it.",
            ),
            "--log-level",
        )],
    },
];

/// `[upstream_identity.default]` and each `[upstream_identity.principals."NAME"]`.
const UPSTREAM_IDENTITY_KEYS: &[Key] = &[
    required(
        "mode",
        "\"sasl\"",
        "`as_is` (no login of the gateway's: for a cluster without authentication), `service` (the gateway's own `[upstream.sasl]` login) or `sasl` (the login below).",
    ),
    unset(
        "mechanism",
        "none; required with `sasl`",
        "\"SCRAM-SHA-512\"",
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.",
    ),
    unset(
        "username",
        "none; required with `sasl`",
        "\"team-a\"",
        "The broker user.",
    ),
    unset(
        "password_file",
        "none; this or `password_env` with `sasl`",
        "\"/etc/kafka-edge/team-a.password\"",
        "A file holding the password (read at every login, so a rotated file is used by the next connection).",
    ),
    unset(
        "password_env",
        "none; this or `password_file` with `sasl`",
        "\"TEAM_A_PASSWORD\"",
        "An environment variable holding the password.",
    ),
];

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(MARKDOWN_HEAD);
    for section in SECTIONS {
        let _ = write!(out, "\n## `[{}]`\n\n{}", section.name, section.doc);
        out.push_str(restart_note(section));
        out.push_str("\n\n| key | default | flag | on reload | meaning |\n|---|---|---|---|---|\n");
        for key in section.keys {
            let default = match key.default {
                Some(value) => format!("`{value}`"),
                None => key.default_note.to_owned(),
            };
            let flag = key.flag.map_or(String::new(), |f| format!("`{f}`"));
            let reload = if restart_only(&format!("{}.{}", section.name, key.name)) {
                "restart"
            } else {
                "applied"
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                key.name,
                escape_cell(&default),
                flag,
                reload,
                escape_cell(key.doc)
            );
        }
    }
    out.push_str(
        "\n## Every key at once\n\nA file with every key set (values as an operator might write them, not defaults; \
         some only make sense apart, such as `password_file` and `password_env`). A test reads it with the gateway's own \
         schema, so it names every key the gateway accepts and nothing else.\n\n```toml\n",
    );
    out.push_str(&complete_example());
    out.push_str("```\n");
    out
}

const MARKDOWN_HEAD: &str = "<!-- Generated by `kafka-edge config reference` from src/config/reference.rs; a test fails when it is stale. -->
# Configuration reference

kafka-edge reads one TOML file, given with `--config FILE`. Every key is optional unless
it says *required*; a few flags override the file (`--listen`, `--advertised-host`,
`--bootstrap-server`, `--broker-port-base`, `--admin-listen`, `--log-level`), so a gateway
can also run with flags alone. The whole configuration is checked at once: a bad one exits
with code 64 and one line naming every problem. A key the gateway does not know is a
problem too.

The gateway reads the file again on SIGHUP and when it changes. *On reload* says what
happens to a key then: *applied* to new connections (existing ones keep what they started
with), or kept at its running value until a *restart*, which the reload names in its log
([operations.md](operations.md#reloading-the-configuration)). A flag keeps its value
across reloads.

`config/kafka-edge.toml` is the same reference as a commented file (`kafka-edge config
example` prints it); `kafka-edge config reference` prints this page.
";

/// Whether a reload leaves this key (`section.key`) or section (`[section]`) to a restart:
/// named itself, or under a section whose every key needs one (`S.*`).
fn restart_only(name: &str) -> bool {
    super::RESTART_ONLY
        .iter()
        .any(|entry| match entry.strip_suffix(".*") {
            Some(section) => {
                let name = name.trim_start_matches('[').trim_end_matches(']');
                name == section || name.starts_with(&format!("{section}."))
            }
            None => *entry == name,
        })
}

/// What the reference says of a section on reload.
fn restart_note(section: &Section) -> &'static str {
    if restart_only(&format!("{}.*", section.name)) {
        " Any change to it needs a restart."
    } else if restart_only(&format!("[{}]", section.name)) {
        " Turning the section on or off needs a restart; its settings reload."
    } else {
        ""
    }
}

/// The TOML header of a section.
fn header(section: &Section) -> String {
    if section.array {
        format!("[[{}]]", section.name)
    } else {
        format!("[{}]", section.name)
    }
}

/// Markdown table cells hold no line breaks and no bare `|`.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A TOML file with every key set to its example value.
pub fn complete_example() -> String {
    let mut out = String::new();
    for section in SECTIONS {
        let _ = writeln!(out, "{}", header(section));
        for key in section.keys {
            let _ = writeln!(out, "{} = {}", key.name, key.example);
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// The commented `config/kafka-edge.toml`: sections on by default with their defaults (and
/// required keys with an example), optional sections commented out.
pub fn example_file() -> String {
    let mut out = String::from(
        "# kafka-edge configuration: every key, its default, and what it does. Generated by\n\
         # `kafka-edge config example` from src/config/reference.rs; docs/configuration.md is the\n\
         # same reference as a page. Every key is optional unless it says Required; the value\n\
         # shown is the default, or an example where there is none. Flags win over this file:\n\
         #   --listen, --advertised-host, --bootstrap-server (repeatable), --broker-port-base,\n\
         #   --admin-listen, --log-level.\n\
         # The gateway reads this file again on SIGHUP and when it changes: new connections get\n\
         # the new settings, existing ones keep theirs, and what needs a restart says so.\n",
    );
    for section in SECTIONS {
        out.push('\n');
        let off = if section.optional { "# " } else { "" };
        let mut doc = section.doc.to_owned();
        doc.push_str(restart_note(section));
        comment(&mut out, &doc);
        let _ = writeln!(out, "{off}{}", header(section));
        for key in section.keys {
            let mut doc = key.doc.to_owned();
            if key.required {
                doc.push_str(" Required.");
            } else if key.default.is_none() {
                let _ = write!(doc, " Default: {}.", key.default_note);
            }
            if let Some(flag) = key.flag {
                let _ = write!(doc, " Flag: {flag}.");
            }
            if restart_only(&format!("{}.{}", section.name, key.name)) {
                doc.push_str(" A change needs a restart.");
            }
            comment(&mut out, &doc);
            // An empty list is no setting at all: its example says more.
            let (value, on) = match key.default {
                Some("[]" | "{}") => (key.example, false),
                Some(value) => (value, !section.optional),
                None => (key.example, key.required && !section.optional),
            };
            let hash = if on { "" } else { "# " };
            let _ = writeln!(out, "{hash}{} = {value}", key.name);
        }
    }
    out
}

/// Appends `text` as `# ` comment lines of at most 92 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 92 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError, File, Overrides};

    fn resolve(text: &str) -> Config {
        match Config::resolve(toml::from_str(text).unwrap(), Overrides::default()) {
            Ok(config) => config,
            Err(ConfigError::Invalid { problems }) => panic!("{text}\n{problems:#?}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// Every key the schema accepts is documented: an example with every documented key set
    /// deserializes (so each is a key the schema knows, with a value of its type) and leaves
    /// no field of the schema unset.
    #[test]
    fn the_example_with_every_key_sets_every_field_of_the_schema() {
        let file: File = toml::from_str(&complete_example()).unwrap();
        let debug = format!("{file:#?}");
        for unset in ["None", "[]", "{}"] {
            assert!(
                !debug.contains(unset),
                "a field is left {unset}: a key of the schema is missing from src/config/reference.rs:\n{debug}"
            );
        }
    }

    /// The example values are valid ones: the complete example resolves once the two
    /// password sources are one, naming a file that exists, and the token keys come from
    /// the JWKS file alone.
    #[test]
    fn every_example_value_is_valid() {
        let secret =
            std::env::temp_dir().join(format!("kafka-edge-reference-{}", std::process::id()));
        std::fs::write(&secret, "pencil").unwrap();
        let mut in_public_keys = false;
        let mut text = String::new();
        for line in complete_example().lines() {
            if line.starts_with('[') {
                in_public_keys = line == "[[client_auth.oauthbearer.public_keys]]";
            }
            if in_public_keys || line.starts_with("password_env") {
                continue;
            }
            match line.strip_prefix("password_file = ") {
                Some(_) => text.push_str(&format!("password_file = {:?}\n", secret)),
                None => text.push_str(&format!("{line}\n")),
            }
        }
        let config = resolve(&text);
        std::fs::remove_file(&secret).unwrap();
        assert!(
            config.tls.is_some() && config.plan.sni.is_some() && config.upstream_sasl.is_some()
        );
        let identity = config.identity.expect("the example sets edge identity");
        assert!(
            identity.client_auth.is_some() && identity.policy.is_some() && identity.audit.is_some()
        );
    }

    /// The defaults the reference names are those the gateway applies: a file setting every
    /// key to its documented default resolves to the same configuration as one leaving them
    /// out. Optional sections are turned on by their required keys in both.
    #[test]
    fn the_documented_defaults_are_the_applied_ones() {
        let mut bare = String::new();
        let mut defaults = String::new();
        // An optional section is compared where its required keys alone turn it on: not an
        // entry of a list (a grant names resources beside its defaults), and not under another
        // optional section (`[client_auth.oauthbearer]` needs `[client_auth]` to offer it).
        let under_optional = |section: &Section| {
            section
                .name
                .rsplit_once('.')
                .is_some_and(|(parent, _)| SECTIONS.iter().any(|s| s.optional && s.name == parent))
        };
        for section in SECTIONS {
            if section.optional
                && (section.keys.iter().all(|k| k.default.is_none())
                    || !section.keys.iter().any(|k| k.required)
                    || section.array
                    || under_optional(section))
            {
                continue;
            }
            bare.push_str(&format!("{}\n", header(section)));
            defaults.push_str(&format!("{}\n", header(section)));
            for key in section.keys {
                match (key.required, key.default) {
                    (true, _) => {
                        let line = format!("{} = {}\n", key.name, key.example);
                        bare.push_str(&line);
                        defaults.push_str(&line);
                    }
                    (false, Some(value)) => defaults.push_str(&format!("{} = {value}\n", key.name)),
                    (false, None) => {}
                }
            }
        }
        assert_eq!(resolve(&bare), resolve(&defaults), "{defaults}");
        // The comparison sees a default that is not the applied one.
        let wrong = defaults.replace("max_connections = 10000", "max_connections = 10001");
        assert_ne!(resolve(&bare), resolve(&wrong));
    }

    #[test]
    fn the_example_file_runs_as_it_is() {
        let file: File = toml::from_str(&example_file()).unwrap();
        let config = Config::resolve(file, Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), crate::config::DEFAULT_LISTEN);
    }
}

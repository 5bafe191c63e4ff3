//! Configuration: the TOML schema, command-line overrides, and validation.
//!
//! Validation is one pure function that reports every problem at once, so an operator fixes a
//! bad file in one pass. Every key is described in [`reference`](mod@reference), from which
//! `docs/configuration.md` and the commented `config/kafka-edge.toml` are rendered.

pub mod reference;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cluster::allow::AllowList;
use crate::cluster::route::{host_of, AddressPlan, NodeRange, SniNames};
use crate::cluster::sasl::{Mechanism, PasswordSource, SaslSettings};
use crate::edge::auth::config as auth;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
pub const DEFAULT_PORT_BASE: u16 = 19000;
/// Node ids the base rule serves by default: every id real clusters hand out (KRaft clusters
/// number from 0 or 1, some charts from 100, clusters once on ZooKeeper from 1001), and a
/// block of ports small enough to keep clear of other listeners.
pub const DEFAULT_PORT_BASE_MAX_NODE_ID: i32 = 9999;

/// A validated configuration, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where clients bootstrap. Broker listeners bind on the same IP.
    pub listen: SocketAddr,
    pub plan: AddressPlan,
    pub bootstrap_servers: Vec<String>,
    /// Where brokers may be: when set, every address learned or dialled must match.
    pub upstream_allow: Option<AllowList>,
    pub connect_timeout: Duration,
    pub metadata_refresh: Duration,
    /// How long the cluster may go without reporting a broker before its listener closes.
    pub retire_after: Duration,
    pub max_frame_bytes: usize,
    /// The most of an answer that names brokers held before its last address: the memory one
    /// connection may take for a moment, apart from its buffers.
    pub max_rewrite_bytes: usize,
    pub max_connections: usize,
    pub buffer_bytes: usize,
    /// Whether large frames between plain TCP sockets move with `splice(2)`.
    pub splice: bool,
    /// Worker threads sessions run on.
    pub threads: usize,
    pub shutdown_grace: Duration,
    pub idle_timeout: Duration,
    /// Client-facing TLS, when configured.
    pub tls: Option<TlsSettings>,
    /// TLS to the brokers, when configured.
    pub upstream_tls: Option<UpstreamTlsSettings>,
    /// The gateway's own SASL login to brokers, when configured. Holds where the password
    /// is, never the password.
    pub upstream_sasl: Option<SaslSettings>,
    /// Where the admin endpoint listens; `None` when turned off.
    pub admin_listen: Option<SocketAddr>,
    /// Whether client connections start with a PROXY protocol header.
    pub proxy_protocol: crate::edge::proxy_protocol::Mode,
    /// Edge identity, when any of its sections is configured; `None`: clients authenticate
    /// end to end with the brokers, as without a gateway.
    pub identity: Option<auth::EdgeIdentity>,
    /// The log filter of `[log] level`. The binary's `--log-level` wins over it; without
    /// either, `RUST_LOG` or `info` decides.
    pub log_level: Option<String>,
}

/// How the gateway speaks TLS to brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTlsSettings {
    /// CA bundle that signed the brokers' certificates.
    pub ca: PathBuf,
    /// A client certificate and key, for brokers that require mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Whether a broker certificate must name the host it was dialled at.
    pub verify_hostname: bool,
}

/// Where the client-facing certificate, its key and the client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by one of these (mutual TLS).
    pub client_ca: Option<PathBuf>,
    pub handshake_timeout: Duration,
    /// How often the files are checked for a rotation.
    pub reload_check: Duration,
}

/// The file as written. Every field is optional so that flags can fill what the file leaves out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub brokers: BrokersSection,
    #[serde(default)]
    pub tls: TlsSection,
    pub sni: Option<SniSection>,
    #[serde(default)]
    pub admin: AdminSection,
    /// Edge identity (src/edge/auth/config.rs): how clients log in at the gateway, as whom
    /// the gateway logs in to brokers, what each principal may do, and the audit log.
    pub client_auth: Option<auth::ClientAuthSection>,
    pub upstream_identity: Option<auth::UpstreamIdentitySection>,
    pub policy: Option<auth::PolicySection>,
    pub audit: Option<auth::AuditSection>,
    #[serde(default)]
    pub log: LogSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniSection {
    pub domain: String,
    pub bootstrap: Option<String>,
    pub broker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub handshake_timeout_ms: Option<u64>,
    pub reload_check_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub listen: Option<String>,
    pub advertised_host: Option<String>,
    pub max_connections: Option<usize>,
    pub buffer_bytes: Option<usize>,
    pub max_frame_bytes: Option<usize>,
    pub max_rewrite_bytes: Option<usize>,
    pub shutdown_grace_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub proxy_protocol: Option<crate::edge::proxy_protocol::Mode>,
    pub splice: Option<bool>,
    pub threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub bootstrap_servers: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub connect_timeout_ms: Option<u64>,
    pub metadata_refresh_ms: Option<u64>,
    pub tls: Option<UpstreamTlsSection>,
    pub sasl: Option<UpstreamSaslSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSaslSection {
    pub mechanism: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSection {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify_hostname: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokersSection {
    pub port_base: Option<u16>,
    pub port_base_max_node_id: Option<i32>,
    pub retire_after_ms: Option<u64>,
    #[serde(default)]
    pub ranges: Vec<RangeEntry>,
    /// Node id (as a string: TOML keys are strings) -> port.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeEntry {
    pub first_node_id: i32,
    pub last_node_id: i32,
    pub first_port: u16,
}

/// Settings given on the command line; each wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bootstrap_servers: Vec<String>,
    pub listen: Option<String>,
    pub advertised_host: Option<String>,
    pub broker_port_base: Option<u16>,
    pub admin_listen: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{}", .problems.join("; "))]
    Invalid { problems: Vec<String> },
}

impl File {
    pub fn load(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

impl Config {
    /// Merges flags over the file, fills defaults, and checks everything.
    pub fn resolve(file: File, flags: Overrides) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let g = file.gateway;
        let u = file.upstream;
        let b = file.brokers;
        let tls = match (file.tls.cert, file.tls.key) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert,
                key,
                client_ca: file.tls.client_ca,
                handshake_timeout: Duration::from_millis(
                    file.tls.handshake_timeout_ms.unwrap_or(10_000),
                ),
                reload_check: Duration::from_millis(
                    file.tls.reload_check_ms.unwrap_or(2_000).max(50),
                ),
            }),
            (None, None) => {
                if file.tls.client_ca.is_some() {
                    problems.push("tls.client_ca needs tls.cert and tls.key".into());
                }
                None
            }
            _ => {
                problems.push("tls.cert and tls.key go together".into());
                None
            }
        };

        let listen_text = flags
            .listen
            .or(g.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                problems.push(format!(
                    "listen address `{listen_text}` is not IP:PORT (e.g. 0.0.0.0:9092)"
                ));
                SocketAddr::from(([127, 0, 0, 1], 9092))
            }
        };

        let advertised_host = match flags.advertised_host.or(g.advertised_host) {
            Some(host) if host.trim().is_empty() => {
                problems.push("advertised host is empty".into());
                String::new()
            }
            Some(host) => host,
            None if listen.ip().is_unspecified() => {
                problems.push(format!(
                    "listen address {listen} is a wildcard: set --advertised-host (gateway.advertised_host) to the name clients reach"
                ));
                String::new()
            }
            None => listen.ip().to_string(),
        };

        let bootstrap_servers = if flags.bootstrap_servers.is_empty() {
            u.bootstrap_servers.unwrap_or_default()
        } else {
            flags.bootstrap_servers
        };
        if bootstrap_servers.is_empty() {
            problems.push("no bootstrap server: give --bootstrap-server HOST:PORT (upstream.bootstrap_servers)".into());
        }
        for server in &bootstrap_servers {
            if !is_host_port(server) {
                problems.push(format!("bootstrap server `{server}` is not HOST:PORT"));
            }
        }

        let upstream_allow = match u.allow.as_deref().map(AllowList::parse) {
            None => None,
            Some(Ok(allow)) => {
                for server in bootstrap_servers.iter().filter(|s| is_host_port(s)) {
                    if !allow.permits(host_of(server)) {
                        problems.push(format!(
                            "bootstrap server `{server}` is outside upstream.allow"
                        ));
                    }
                }
                Some(allow)
            }
            Some(Err(bad)) => {
                problems.extend(bad);
                None
            }
        };

        let port_base = flags
            .broker_port_base
            .or(b.port_base)
            .unwrap_or(DEFAULT_PORT_BASE);
        let ranges: Vec<NodeRange> = b
            .ranges
            .iter()
            .map(|r| NodeRange {
                first_node_id: r.first_node_id,
                last_node_id: r.last_node_id,
                first_port: r.first_port,
            })
            .collect();
        check_ranges(&ranges, &mut problems);
        let mut overrides = BTreeMap::new();
        for (id, port) in &b.ports {
            match id.parse::<i32>() {
                Ok(node_id) if node_id >= 0 => {
                    if *port == 0 {
                        problems.push(format!("brokers.ports: node {node_id} cannot use port 0"));
                    }
                    overrides.insert(node_id, *port);
                }
                _ => problems.push(format!(
                    "brokers.ports: `{id}` is not a node id (a non-negative integer)"
                )),
            }
        }

        let upstream_tls = u.tls.and_then(|section| {
            let client_cert = match (section.cert, section.key) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => {
                    problems.push("upstream.tls.cert and upstream.tls.key go together".into());
                    None
                }
            };
            let Some(ca) = section.ca else {
                problems.push("upstream.tls.ca is required: the CA bundle that signed the brokers' certificates".into());
                return None;
            };
            Some(UpstreamTlsSettings {
                ca,
                client_cert,
                verify_hostname: section.verify_hostname.unwrap_or(true),
            })
        });
        let upstream_sasl = u
            .sasl
            .and_then(|section| check_sasl(section, &mut problems));
        // Off unless asked for: two gateways on one host must not fight over a default port.
        let admin_listen = match flags.admin_listen.or(file.admin.listen).as_deref() {
            None | Some("off") => None,
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    problems.push(format!(
                        "admin listen address `{text}` is not IP:PORT or `off`"
                    ));
                    None
                }
            },
        };
        let sni = file.sni.map(|s| SniNames {
            domain: s.domain.trim_end_matches('.').to_owned(),
            bootstrap: s.bootstrap.unwrap_or_else(|| "bootstrap".into()),
            broker: s.broker.unwrap_or_else(|| "broker-{id}".into()),
        });
        if let Some(names) = &sni {
            check_sni(names, tls.is_some(), &mut problems);
        }

        let max_frame_bytes = g.max_frame_bytes.unwrap_or(100 * 1024 * 1024);
        if !(1024..=i32::MAX as usize).contains(&max_frame_bytes) {
            problems.push(format!(
                "gateway.max_frame_bytes {max_frame_bytes} is outside 1024..={}",
                i32::MAX
            ));
        }
        let max_rewrite_bytes = g.max_rewrite_bytes.unwrap_or(64 * 1024 * 1024);
        if !(1024..=i32::MAX as usize).contains(&max_rewrite_bytes) {
            problems.push(format!(
                "gateway.max_rewrite_bytes {max_rewrite_bytes} is outside 1024..={}",
                i32::MAX
            ));
        }
        let buffer_bytes = g.buffer_bytes.unwrap_or(64 * 1024);
        if !(4096..=64 * 1024 * 1024).contains(&buffer_bytes) {
            problems.push(format!(
                "gateway.buffer_bytes {buffer_bytes} is outside 4096..=67108864"
            ));
        }
        let threads = g.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if !(1..=1024).contains(&threads) {
            problems.push(format!("gateway.threads {threads} is outside 1..=1024"));
        }
        let max_connections = g.max_connections.unwrap_or(10_000);
        if !(1..=u32::MAX as usize).contains(&max_connections) {
            problems.push(format!(
                "gateway.max_connections {max_connections} is outside 1..={}",
                u32::MAX
            ));
        }
        let connect_timeout = Duration::from_millis(u.connect_timeout_ms.unwrap_or(5_000));
        if connect_timeout.is_zero() {
            problems.push("upstream.connect_timeout_ms must be at least 1".into());
        }
        let idle_timeout = Duration::from_millis(g.idle_timeout_ms.unwrap_or(600_000));
        if idle_timeout < Duration::from_millis(100) {
            problems.push("gateway.idle_timeout_ms must be at least 100".into());
        }
        let metadata_refresh = Duration::from_millis(u.metadata_refresh_ms.unwrap_or(30_000));
        if metadata_refresh < Duration::from_millis(100) {
            problems.push("upstream.metadata_refresh_ms must be at least 100".into());
        }

        let retire_after = Duration::from_millis(b.retire_after_ms.unwrap_or(300_000));
        let plan = AddressPlan {
            advertised_host,
            bootstrap_port: listen.port(),
            port_base: Some(port_base),
            port_base_max_node_id: b
                .port_base_max_node_id
                .unwrap_or(DEFAULT_PORT_BASE_MAX_NODE_ID),
            ranges,
            overrides,
            sni,
        };
        if plan.port_base_max_node_id < 0 {
            problems.push("brokers.port_base_max_node_id must not be negative".into());
        }
        problems.extend(port_clashes(&plan, listen, admin_listen));
        let log_level = file.log.level;
        if let Some(level) = &log_level {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(level) {
                problems.push(format!("log level `{level}` is not a log filter: {e}"));
            }
        }

        let sections = auth::Sections {
            client_auth: file.client_auth,
            upstream_identity: file.upstream_identity,
            policy: file.policy,
            audit: file.audit,
        };
        let any = sections.client_auth.is_some()
            || sections.upstream_identity.is_some()
            || sections.policy.is_some()
            || sections.audit.is_some();
        let context = auth::Context {
            client_certificates: tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            service_identity: upstream_sasl.is_some(),
        };
        let identity = match any.then(|| auth::validate(sections, context)) {
            None => None,
            Some(Ok(identity)) => Some(identity),
            Some(Err(found)) => {
                problems.extend(found);
                None
            }
        };

        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        Ok(Config {
            listen,
            plan,
            bootstrap_servers,
            upstream_allow,
            connect_timeout,
            metadata_refresh,
            retire_after,
            max_frame_bytes,
            max_rewrite_bytes,
            max_connections,
            buffer_bytes,
            splice: g.splice.unwrap_or(true),
            threads,
            shutdown_grace: Duration::from_millis(g.shutdown_grace_ms.unwrap_or(10_000)),
            idle_timeout,
            tls,
            upstream_tls,
            upstream_sasl,
            admin_listen,
            proxy_protocol: g.proxy_protocol.unwrap_or_default(),
            identity,
            log_level,
        })
    }

    /// The IP every listener binds.
    pub fn bind_ip(&self) -> IpAddr {
        self.listen.ip()
    }
}

/// What a reload cannot change on a running gateway: it keeps its running values of these
/// until restarted. `[tls]` and `[sni]` cannot be turned on or off (what every client must
/// speak on the gateway's ports would change under them); their settings reload. `S.*` is
/// every key of section `S` and of the sections under it: client logins and the audit log
/// are opened once, at start.
pub const RESTART_ONLY: [&str; 8] = [
    "gateway.listen",
    "gateway.threads",
    "gateway.splice",
    "admin.listen",
    "[tls]",
    "[sni]",
    "client_auth.*",
    "audit.*",
];

/// A configuration read again, set against the running one.
#[derive(Debug)]
pub struct Reread {
    /// What the gateway applies: the new configuration, with the running values of what
    /// needs a restart.
    pub config: Config,
    /// What changed and applies to new connections, named as the file names it.
    pub applied: Vec<&'static str>,
    /// What changed and waits for a restart (from [`RESTART_ONLY`]).
    pub restart: Vec<&'static str>,
}

impl Config {
    /// Sets `new` (resolved from the file read again) against this running configuration:
    /// what needs a restart keeps its running value, and the port plan is checked again
    /// against the ports still in use. Fails, changing nothing, when that check does.
    pub fn reread(&self, mut new: Config) -> Result<Reread, ConfigError> {
        let mut restart = Vec::new();
        let mut keeps = |changed: bool, name: &'static str| {
            if changed {
                restart.push(name);
            }
            changed
        };
        if keeps(new.listen != self.listen, "gateway.listen") {
            new.listen = self.listen;
            new.plan.bootstrap_port = self.plan.bootstrap_port;
        }
        if keeps(new.threads != self.threads, "gateway.threads") {
            new.threads = self.threads;
        }
        if keeps(new.splice != self.splice, "gateway.splice") {
            new.splice = self.splice;
        }
        if keeps(new.admin_listen != self.admin_listen, "admin.listen") {
            new.admin_listen = self.admin_listen;
        }
        if keeps(new.tls.is_some() != self.tls.is_some(), "[tls]") {
            new.tls = self.tls.clone();
        }
        if keeps(new.plan.sni.is_some() != self.plan.sni.is_some(), "[sni]") {
            new.plan.sni = self.plan.sni.clone();
        }
        // Client logins and the audit log are opened once, at start; the policy and the
        // upstream identities are read by each new connection, so they change live.
        let fixed = |c: &Config| {
            c.identity
                .as_ref()
                .map(|i| (i.client_auth.clone(), i.audit.clone()))
                .unwrap_or_default()
        };
        let (client_auth, audit) = fixed(self);
        let (new_client_auth, new_audit) = fixed(&new);
        let auth_kept = keeps(new_client_auth != client_auth, "client_auth.*");
        let audit_kept = keeps(new_audit != audit, "audit.*");
        if auth_kept || audit_kept {
            let identity = new.identity.get_or_insert_with(Default::default);
            identity.client_auth = client_auth;
            identity.audit = audit;
            if *identity == auth::EdgeIdentity::default() {
                new.identity = None;
            }
        }
        let clashes = port_clashes(&new.plan, new.listen, new.admin_listen);
        if !clashes.is_empty() {
            return Err(ConfigError::Invalid {
                problems: clashes
                    .into_iter()
                    .map(|c| format!("{c} (with the ports the running gateway listens on)"))
                    .collect(),
            });
        }
        let applied = self.changes(&new);
        Ok(Reread {
            config: new,
            applied,
            restart,
        })
    }

    /// The settings that differ in `new`, named as the file names them. Every field is
    /// named below, so a new one cannot be forgotten here.
    fn changes(&self, new: &Config) -> Vec<&'static str> {
        fn part<'a, T>(
            identity: &'a Option<auth::EdgeIdentity>,
            pick: impl Fn(&'a auth::EdgeIdentity) -> &'a T,
        ) -> Option<&'a T> {
            identity.as_ref().map(pick)
        }
        let Config {
            listen,
            plan,
            bootstrap_servers,
            upstream_allow,
            connect_timeout,
            metadata_refresh,
            retire_after,
            max_frame_bytes,
            max_rewrite_bytes,
            max_connections,
            buffer_bytes,
            splice,
            threads,
            shutdown_grace,
            idle_timeout,
            tls,
            upstream_tls,
            upstream_sasl,
            admin_listen,
            proxy_protocol,
            identity,
            log_level,
        } = new;
        let old = self;
        [
            (*listen != old.listen, "gateway.listen"),
            (
                plan.advertised_host != old.plan.advertised_host,
                "gateway.advertised_host",
            ),
            (plan.port_base != old.plan.port_base, "brokers.port_base"),
            (
                plan.port_base_max_node_id != old.plan.port_base_max_node_id,
                "brokers.port_base_max_node_id",
            ),
            (plan.ranges != old.plan.ranges, "brokers.ranges"),
            (plan.overrides != old.plan.overrides, "brokers.ports"),
            (plan.sni != old.plan.sni, "sni"),
            (
                *bootstrap_servers != old.bootstrap_servers,
                "upstream.bootstrap_servers",
            ),
            (*upstream_allow != old.upstream_allow, "upstream.allow"),
            (
                *connect_timeout != old.connect_timeout,
                "upstream.connect_timeout_ms",
            ),
            (
                *metadata_refresh != old.metadata_refresh,
                "upstream.metadata_refresh_ms",
            ),
            (*retire_after != old.retire_after, "brokers.retire_after_ms"),
            (
                *max_frame_bytes != old.max_frame_bytes,
                "gateway.max_frame_bytes",
            ),
            (
                *max_rewrite_bytes != old.max_rewrite_bytes,
                "gateway.max_rewrite_bytes",
            ),
            (
                *max_connections != old.max_connections,
                "gateway.max_connections",
            ),
            (*buffer_bytes != old.buffer_bytes, "gateway.buffer_bytes"),
            (*splice != old.splice, "gateway.splice"),
            (*threads != old.threads, "gateway.threads"),
            (
                *shutdown_grace != old.shutdown_grace,
                "gateway.shutdown_grace_ms",
            ),
            (*idle_timeout != old.idle_timeout, "gateway.idle_timeout_ms"),
            (*tls != old.tls, "tls"),
            (*upstream_tls != old.upstream_tls, "upstream.tls"),
            (*upstream_sasl != old.upstream_sasl, "upstream.sasl"),
            (*admin_listen != old.admin_listen, "admin.listen"),
            (
                *proxy_protocol != old.proxy_protocol,
                "gateway.proxy_protocol",
            ),
            (*log_level != old.log_level, "log.level"),
            (
                part(identity, |i| &i.client_auth) != part(&old.identity, |i| &i.client_auth),
                "client_auth",
            ),
            (
                part(identity, |i| &i.upstream) != part(&old.identity, |i| &i.upstream),
                "upstream_identity",
            ),
            (
                part(identity, |i| &i.policy) != part(&old.identity, |i| &i.policy),
                "policy",
            ),
            (
                part(identity, |i| &i.audit) != part(&old.identity, |i| &i.audit),
                "audit",
            ),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }
}

/// The bootstrap address clients are told, `host:port`.
pub fn advertised_bootstrap(config: &Config) -> String {
    config.plan.bootstrap_address()
}

/// `[upstream.sasl]`: a known mechanism, a user, and exactly one password source that can be
/// read now (it is read again at every login, so a rotated file is picked up).
fn check_sasl(section: UpstreamSaslSection, problems: &mut Vec<String>) -> Option<SaslSettings> {
    let before = problems.len();
    let names = || Mechanism::ALL.map(Mechanism::name).join(", ");
    let mechanism = match section.mechanism.as_deref() {
        None => {
            problems.push(format!(
                "upstream.sasl.mechanism is required: one of {}",
                names()
            ));
            None
        }
        Some(name) => {
            let parsed = Mechanism::parse(name);
            if parsed.is_none() {
                problems.push(format!(
                    "upstream.sasl.mechanism `{name}` is not one of {}",
                    names()
                ));
            }
            parsed
        }
    };
    let username = section.username.unwrap_or_default();
    if username.is_empty() {
        problems.push("upstream.sasl.username is required".into());
    } else if mechanism == Some(Mechanism::Plain) && username.contains('\0') {
        problems.push("upstream.sasl.username cannot contain a NUL character with PLAIN".into());
    }
    let password = match (section.password_file, section.password_env) {
        (Some(path), None) => Some(PasswordSource::File(path)),
        (None, Some(name)) if name.is_empty() || name.contains(['=', '\0']) => {
            problems.push(format!(
                "upstream.sasl.password_env `{name}` is not an environment variable name"
            ));
            None
        }
        (None, Some(name)) => Some(PasswordSource::Env(name)),
        (Some(_), Some(_)) => {
            problems.push("upstream.sasl: give password_file or password_env, not both".into());
            None
        }
        (None, None) => {
            problems.push("upstream.sasl needs password_file (a file holding the password) or password_env (the name of an environment variable holding it)".into());
            None
        }
    };
    if let Some(source) = &password {
        match source.read() {
            Ok(secret) if mechanism == Some(Mechanism::Plain) && secret.contains_nul() => {
                problems.push(format!(
                    "{}: a PLAIN password cannot contain a NUL character",
                    source.describe()
                ));
            }
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    match (mechanism, password) {
        (Some(mechanism), Some(password)) if problems.len() == before => Some(SaslSettings {
            mechanism,
            username,
            password,
        }),
        _ => None,
    }
}

fn check_sni(names: &SniNames, tls: bool, problems: &mut Vec<String>) {
    if !tls {
        problems.push("sni needs [tls]: the server name comes from the TLS handshake".into());
    }
    let dns = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !dns(&names.domain) {
        problems.push(format!("sni.domain `{}` is not a DNS name", names.domain));
    }
    if !dns(&names.bootstrap) || names.bootstrap.contains('.') {
        problems.push(format!(
            "sni.bootstrap `{}` is not a single DNS label",
            names.bootstrap
        ));
    }
    let without_id = names.broker.replacen("{id}", "0", 1);
    if names.broker.matches("{id}").count() != 1 || !dns(&without_id) || without_id.contains('.') {
        problems.push(format!(
            "sni.broker `{}` must be a single DNS label with `{{id}}` once, like broker-{{id}}",
            names.broker
        ));
    }
}

fn check_ranges(ranges: &[NodeRange], problems: &mut Vec<String>) {
    for (i, r) in ranges.iter().enumerate() {
        let name = format!("brokers.ranges[{i}]");
        if r.first_node_id < 0 || r.last_node_id < r.first_node_id {
            problems.push(format!(
                "{name}: node ids {}..={} are not a non-negative, ascending range",
                r.first_node_id, r.last_node_id
            ));
            continue;
        }
        let (first, last) = r.ports();
        if first == 0 || last > i64::from(u16::MAX) {
            problems.push(format!(
                "{name}: ports {first}..={last} do not fit 1..=65535"
            ));
        }
        for (j, other) in ranges.iter().enumerate().skip(i + 1) {
            if r.first_node_id <= other.last_node_id && other.first_node_id <= r.last_node_id {
                problems.push(format!("{name} and brokers.ranges[{j}] share node ids"));
            }
        }
    }
}

/// Every port the plan would hand to two owners, the bootstrap and admin ports included.
fn port_clashes(plan: &AddressPlan, listen: SocketAddr, admin: Option<SocketAddr>) -> Vec<String> {
    let mut reserved = vec![(listen.port(), "the bootstrap port (gateway.listen)")];
    if let Some(admin) = admin.filter(|a| shares_ports(a.ip(), listen.ip())) {
        reserved.push((admin.port(), "the admin port (admin.listen)"));
    }
    plan.collisions(&reserved)
}

/// Whether listeners on these two IPs compete for ports: the same IP, or either a wildcard.
fn shares_ports(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// `host:port` with a numeric port; IPv6 literals in brackets.
fn is_host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p > 0)
                && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Overrides {
        Overrides {
            bootstrap_servers: vec!["10.0.0.5:9092".into()],
            ..Overrides::default()
        }
    }

    #[test]
    fn defaults_work_out_of_the_box() {
        let config = Config::resolve(File::default(), flags()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.plan.advertised_host, "127.0.0.1");
        assert_eq!(config.plan.port_for(3), Ok(19003));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: File = toml::from_str(
            r#"
            [gateway]
            listen = "0.0.0.0:9000"
            advertised_host = "file.example.com"
            [upstream]
            bootstrap_servers = ["a:1"]
            [brokers]
            port_base = 30000
            ranges = [{ first_node_id = 1001, last_node_id = 1003, first_port = 31001 }]
            ports = { "111" = 31111 }
            "#,
        )
        .unwrap();
        let config = Config::resolve(
            file,
            Overrides {
                advertised_host: Some("flag.example.com".into()),
                broker_port_base: Some(40000),
                ..flags()
            },
        )
        .unwrap();
        assert_eq!(config.plan.advertised_host, "flag.example.com");
        assert_eq!(config.bootstrap_servers, vec!["10.0.0.5:9092"]);
        assert_eq!(config.plan.port_for(1), Ok(40001));
        assert_eq!(config.plan.port_for(1002), Ok(31002));
        assert_eq!(config.plan.port_for(111), Ok(31111));
        assert_eq!(config.listen.port(), 9000);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let file: File = toml::from_str(
            r#"
            [gateway]
            listen = "0.0.0.0:9092"
            max_frame_bytes = 10
            threads = 0
            [brokers]
            ranges = [
              { first_node_id = 5, last_node_id = 1, first_port = 20000 },
              { first_node_id = 10, last_node_id = 20, first_port = 9090 },
              { first_node_id = 15, last_node_id = 30, first_port = 9097 },
            ]
            ports = { "x" = 1 }
            "#,
        )
        .unwrap();
        let Err(ConfigError::Invalid { problems }) = Config::resolve(
            file,
            Overrides {
                bootstrap_servers: vec!["nohost".into()],
                ..Overrides::default()
            },
        ) else {
            panic!("expected invalid config");
        };
        let all = problems.join("\n");
        for needle in [
            "wildcard",
            "`nohost` is not HOST:PORT",
            "ranges[0]",
            "the bootstrap port (gateway.listen) and brokers.ranges[1] both claim port 9092",
            "brokers.ranges[1] and brokers.ranges[2] both claim 4 ports in 9097..=9100",
            "share node ids",
            "`x` is not a node id",
            "max_frame_bytes",
            "gateway.threads 0 is outside 1..=1024",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn the_port_plan_is_checked_for_collisions_at_startup() {
        let resolve = |toml: &str| {
            let file: File = toml::from_str(toml).unwrap();
            Config::resolve(file, flags())
        };
        let problems = |toml: &str| match resolve(toml) {
            Err(ConfigError::Invalid { problems }) => problems.join("\n"),
            other => panic!("expected invalid config, got {other:?}"),
        };
        // Aligned with the base rule (the reference file's own example): no collision.
        assert!(resolve(
            "[brokers]\nranges = [{ first_node_id = 1000, last_node_id = 1099, first_port = 20000 }]\nports = { \"111\" = 19111 }"
        )
        .is_ok());
        // A range that the base rule also hands out, to other node ids.
        let all = problems(
            "[brokers]\nranges = [{ first_node_id = 5000, last_node_id = 5009, first_port = 20000 }]",
        );
        assert!(
            all.contains("brokers.ranges[0] and brokers.port_base both claim 10 ports in 20000..=20009 (port 20000: node 5000 by brokers.ranges[0] and node 1000 by brokers.port_base); lower brokers.port_base_max_node_id"),
            "{all}"
        );
        // ... which a narrower base rule resolves.
        assert!(resolve(
            "[brokers]\nport_base_max_node_id = 999\nranges = [{ first_node_id = 5000, last_node_id = 5009, first_port = 20000 }]"
        )
        .is_ok());
        // Two explicit ports alike, and the admin port among the broker ports.
        let all = problems(
            "[brokers]\nports = { \"1\" = 19500, \"2\" = 19500 }\n[admin]\nlisten = \"127.0.0.1:19003\"",
        );
        assert!(all.contains("brokers.ports and brokers.ports both claim port 19500 (port 19500: node 1 by brokers.ports and node 2 by brokers.ports)"), "{all}");
        assert!(
            all.contains(
                "the admin port (admin.listen) and brokers.port_base both claim port 19003"
            ),
            "{all}"
        );
        assert!(
            all.contains("brokers.ports and brokers.port_base both claim port 19500"),
            "{all}"
        );
        // An admin port on another IP does not compete.
        assert!(resolve("[admin]\nlisten = \"127.0.0.2:19003\"").is_ok());
    }

    #[test]
    fn sni_needs_tls_and_sane_names() {
        let file: File =
            toml::from_str("[sni]\ndomain = \"kafka example\"\nbroker = \"b-{id}-{id}\"").unwrap();
        let Err(ConfigError::Invalid { problems }) = Config::resolve(file, flags()) else {
            panic!("expected invalid config");
        };
        let all = problems.join("\n");
        for needle in ["sni needs [tls]", "sni.domain", "sni.broker"] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let file: File = toml::from_str(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[sni]\ndomain = \"kafka.example.com\"",
        )
        .unwrap();
        let config = Config::resolve(file, flags()).unwrap();
        assert_eq!(
            config.plan.bootstrap_address(),
            "bootstrap.kafka.example.com:9092"
        );
        assert_eq!(
            config.plan.advertise(3).unwrap().0,
            "broker-3.kafka.example.com"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<File>("[gateway]\nlisten_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"));
    }

    /// A file of its own for one test, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> TempFile {
            let path = std::env::temp_dir()
                .join(format!("kafka-edge-config-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn with_sasl(section: &str) -> Result<Config, Vec<String>> {
        let file: File = toml::from_str(&format!("[upstream.sasl]\n{section}")).unwrap();
        match Config::resolve(file, flags()) {
            Ok(config) => Ok(config),
            Err(ConfigError::Invalid { problems }) => Err(problems),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn sasl_reads_the_password_from_a_file_or_the_environment() {
        let secret = TempFile::new("sasl-ok", "pencil-1\n");
        let config = with_sasl(&format!(
            "mechanism = \"scram-sha-512\"\nusername = \"edge\"\npassword_file = {:?}",
            secret.0
        ))
        .unwrap();
        let sasl = config.upstream_sasl.clone().unwrap();
        assert_eq!(sasl.mechanism, Mechanism::ScramSha512);
        assert_eq!(sasl.username, "edge");
        assert_eq!(sasl.password, PasswordSource::File(secret.0.clone()));
        // The trailing newline is not part of the password, which never shows in Debug.
        let password = sasl.password.read().unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        assert!(!format!("{config:?}").contains("pencil"));

        // cargo sets CARGO_PKG_NAME for the test process too: an environment variable
        // that is there without this test setting one.
        let config = with_sasl(
            "mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_env = \"CARGO_PKG_NAME\"",
        )
        .unwrap();
        let sasl = config.upstream_sasl.unwrap();
        assert_eq!(sasl.password, PasswordSource::Env("CARGO_PKG_NAME".into()));
        assert!(sasl.password.read().is_ok());
    }

    #[test]
    fn sasl_problems_are_reported_together() {
        let empty = TempFile::new("sasl-empty", "\n");
        let cases: Vec<(String, &[&str])> = vec![
            (
                "username = \"edge\"\npassword_env = \"CARGO_PKG_NAME\"".into(),
                &["upstream.sasl.mechanism is required: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"],
            ),
            (
                "mechanism = \"GSSAPI\"\npassword_env = \"CARGO_PKG_NAME\"".into(),
                &[
                    "upstream.sasl.mechanism `GSSAPI` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                    "upstream.sasl.username is required",
                ],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"edge\"".into(),
                &["upstream.sasl needs password_file (a file holding the password) or password_env"],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_env = \"A\"\npassword_file = \"/p\"".into(),
                &["upstream.sasl: give password_file or password_env, not both"],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_file = \"/nonexistent/kafka-edge-pw\"".into(),
                &["upstream.sasl.password_file /nonexistent/kafka-edge-pw: cannot read it: No such file"],
            ),
            (
                format!("mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_file = {:?}", empty.0),
                &["the password is empty"],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_env = \"KAFKA_EDGE_TEST_NEVER_SET_4711\"".into(),
                &["upstream.sasl.password_env: environment variable KAFKA_EDGE_TEST_NEVER_SET_4711: environment variable not found"],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"edge\"\npassword_env = \"A=B\"".into(),
                &["upstream.sasl.password_env `A=B` is not an environment variable name"],
            ),
            (
                "mechanism = \"PLAIN\"\nusername = \"a\\u0000b\"\npassword_env = \"CARGO_PKG_NAME\"".into(),
                &["upstream.sasl.username cannot contain a NUL character with PLAIN"],
            ),
        ];
        for (section, needles) in cases {
            let problems = with_sasl(&section).unwrap_err();
            let all = problems.join("\n");
            for needle in needles {
                assert!(
                    all.contains(needle),
                    "missing {needle:?} for\n{section}\nin:\n{all}"
                );
            }
        }
        let err = toml::from_str::<File>("[upstream.sasl]\npassword = \"x\"").unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }

    /// A configuration from a file alone (no flags, which would win over it).
    fn resolved(toml: &str) -> Config {
        match Config::resolve(toml::from_str(toml).unwrap(), Overrides::default()) {
            Ok(config) => config,
            Err(e) => panic!("{toml}\n{e}"),
        }
    }

    /// A file as sections of `key = value` lines, so that a test can set one key in it.
    type Sections = BTreeMap<String, Vec<(String, String)>>;

    fn render(sections: &Sections) -> String {
        sections
            .iter()
            .map(|(name, keys)| {
                let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                format!("[{name}]\n{body}")
            })
            .collect()
    }

    fn with(mut sections: Sections, section: &str, key: &str, value: &str) -> String {
        let keys = sections.entry(section.to_owned()).or_default();
        keys.retain(|(k, _)| k != key);
        keys.push((key.to_owned(), value.to_owned()));
        render(&sections)
    }

    /// A running configuration with TLS on, so that `[sni]` can be turned on against it.
    fn running() -> Sections {
        let mut sections = Sections::new();
        sections.insert("gateway".into(), vec![("threads".into(), "2".into())]);
        sections.insert(
            "upstream".into(),
            vec![("bootstrap_servers".into(), "[\"10.0.0.5:9092\"]".into())],
        );
        sections.insert(
            "tls".into(),
            vec![
                ("cert".into(), "\"c.pem\"".into()),
                ("key".into(), "\"k.pem\"".into()),
            ],
        );
        sections
    }

    #[test]
    fn a_reread_keeps_what_needs_a_restart_and_names_it() {
        let old = resolved(&render(&running()));
        let without_tls = {
            let mut s = running();
            s.remove("tls");
            render(&s)
        };
        let cases = [
            (
                with(running(), "gateway", "listen", "\"127.0.0.1:9093\""),
                "gateway.listen",
            ),
            (
                with(running(), "gateway", "threads", "3"),
                "gateway.threads",
            ),
            (
                with(running(), "gateway", "splice", "false"),
                "gateway.splice",
            ),
            (
                with(running(), "admin", "listen", "\"127.0.0.1:9191\""),
                "admin.listen",
            ),
            (without_tls, "[tls]"),
            (
                with(running(), "sni", "domain", "\"kafka.example.com\""),
                "[sni]",
            ),
            (
                {
                    let mut s = running();
                    s.insert(
                        "client_auth".into(),
                        vec![
                            ("mechanisms".into(), "[\"PLAIN\"]".into()),
                            ("credentials_file".into(), "\"users.json\"".into()),
                        ],
                    );
                    render(&s)
                },
                "client_auth.*",
            ),
            (with(running(), "audit", "file", "\"audit.log\""), "audit.*"),
        ];
        let named: Vec<&str> = cases.iter().map(|(_, name)| *name).collect();
        assert_eq!(named, RESTART_ONLY, "every restart-only setting has a case");
        for (toml, name) in cases {
            // Alongside a change that does apply.
            let toml = toml.replace("[gateway]\n", "[gateway]\nidle_timeout_ms = 1000\n");
            let reread = old.reread(resolved(&toml)).unwrap();
            assert_eq!(reread.restart, [name], "{toml}");
            assert_eq!(reread.applied, ["gateway.idle_timeout_ms"], "{toml}");
            let mut kept = reread.config.clone();
            kept.idle_timeout = old.idle_timeout;
            assert_eq!(kept, old, "{name} keeps its running value");
        }
    }

    /// Every key the reference says a reload applies is applied, and named, when it changes
    /// (from its default, or from another value for a required key, to its example).
    #[test]
    fn every_key_a_reload_applies_is_named_when_it_changes() {
        let mut base = Sections::new();
        base.insert(
            "upstream".into(),
            vec![("bootstrap_servers".into(), "[\"10.0.0.5:9092\"]".into())],
        );
        let old = resolved(&render(&base));
        let mut checked = 0;
        for section in reference::SECTIONS.iter().filter(|s| !s.optional) {
            for key in section.keys {
                let name = format!("{}.{}", section.name, key.name);
                if RESTART_ONLY.contains(&name.as_str()) {
                    continue;
                }
                let toml = with(base.clone(), section.name, key.name, key.example);
                let reread = old.reread(resolved(&toml)).unwrap();
                assert_eq!(reread.applied, [name.as_str()], "{toml}");
                assert_eq!(reread.restart, Vec::<&str>::new(), "{toml}");
                assert_eq!(reread.config, resolved(&toml), "{toml}");
                checked += 1;
            }
        }
        assert!(checked >= 18, "{checked}");
    }

    #[test]
    fn a_reread_refuses_a_plan_that_takes_a_running_port() {
        let upstream = "[upstream]\nbootstrap_servers = [\"10.0.0.5:9092\"]\n";
        let old = resolved(&format!("{upstream}[gateway]\nlisten = \"127.0.0.1:9092\""));
        // Valid on its own (the bootstrap moves to 9093), but the running gateway keeps
        // listening on 9092, which broker 92 would take.
        let new = resolved(&format!(
            "{upstream}[gateway]\nlisten = \"127.0.0.1:9093\"\n\
             [brokers]\nport_base = 9000\nport_base_max_node_id = 92"
        ));
        let Err(ConfigError::Invalid { problems }) = old.reread(new) else {
            panic!("expected a refusal");
        };
        assert!(
            problems[0].contains("both claim port 9092")
                && problems[0].contains("with the ports the running gateway listens on"),
            "{problems:?}"
        );
    }

    #[test]
    fn host_port_forms() {
        assert!(is_host_port("kafka:9092"));
        assert!(is_host_port("[::1]:9092"));
        assert!(!is_host_port("::1:9092"));
        assert!(!is_host_port("kafka"));
        assert!(!is_host_port("kafka:0"));
    }
}

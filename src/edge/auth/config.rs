//! The configuration of edge identity, as TOML sections, and one validation that reports
//! every problem at once (the style of [`crate::config`]). Nothing here reads the files the
//! sections name: the credential file and key sets are opened where the gateway starts, with
//! [`crate::edge::auth::credentials::open`] and [`KeySource::open`].
//!
//! ```toml
//! [client_auth]                     # of a listener
//! mechanisms = ["SCRAM-SHA-512", "PLAIN", "OAUTHBEARER"]
//! credentials_file = "/etc/kafka-edge/users.json"
//! max_session_ms = 3600000          # KIP-368: clients log in again within this
//!
//! [client_auth.oauthbearer]
//! jwks_file = "/etc/kafka-edge/jwks.json"   # or public_keys = [{ file = "idp.pem", kid = "k1" }]
//! issuer = "https://idp.example.com"
//! audience = ["kafka"]
//! principal_claim = "sub"
//!
//! [client_auth.mtls]
//! rules = ["RULE:^CN=([^,]+),OU=clients(,.*)?$/$1/L", "SAN:DNS:DEFAULT"]
//!
//! [upstream_identity.default]       # how the gateway logs in to brokers for a principal
//! mode = "as_is"                    # as_is | service | sasl
//! [upstream_identity.principals.alice]
//! mode = "sasl"
//! mechanism = "SCRAM-SHA-512"
//! username = "team-a"
//! password_file = "/etc/kafka-edge/team-a.password"
//!
//! [[policy.grants]]
//! principals = ["alice"]            # "*": every principal
//! operations = ["read", "write", "describe"]
//! topics = ["team-a.*"]
//! groups = ["team-a.*"]
//! transactional_ids = ["team-a.*"]
//!
//! [audit]
//! file = "/var/log/kafka-edge/audit.log"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::cluster::sasl::{Mechanism as LoginMechanism, PasswordSource, SaslSettings};
use crate::edge::auth::jwt::{JwtSettings, DEFAULT_CLOCK_SKEW_S, DEFAULT_PRINCIPAL_CLAIM};
use crate::edge::auth::keys::KeySet;
use crate::edge::auth::mtls::PrincipalMapper;
use crate::edge::auth::policy::{Grant, Operation, Patterns, Policy};
use crate::edge::auth::sasl::Mechanism;
use crate::edge::auth::watch::{LoadError, Watched};

/// The longest clock skew accepted: more hides a broken clock.
const MAX_CLOCK_SKEW_S: u64 = 600;
const DEFAULT_AUDIT_QUEUE: usize = 10_000;

/// The sections of edge identity, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sections {
    pub client_auth: Option<ClientAuthSection>,
    pub upstream_identity: Option<UpstreamIdentitySection>,
    pub policy: Option<PolicySection>,
    pub audit: Option<AuditSection>,
}

/// How clients of a listener authenticate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSection {
    /// SASL mechanisms offered: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER.
    #[serde(default)]
    pub mechanisms: Vec<String>,
    /// The credential file of PLAIN and SCRAM.
    pub credentials_file: Option<PathBuf>,
    /// How often the credential file and key files are checked for changes.
    pub reload_check_ms: Option<u64>,
    /// The longest session before a client must log in again (Kafka's
    /// `connections.max.reauth.ms`); a token's expiry shortens it.
    pub max_session_ms: Option<u64>,
    pub oauthbearer: Option<OAuthBearerSection>,
    pub mtls: Option<MtlsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthBearerSection {
    pub jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub public_keys: Vec<PublicKeySection>,
    pub issuer: Option<String>,
    #[serde(default)]
    pub audience: Vec<String>,
    pub clock_skew_s: Option<u64>,
    pub principal_claim: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySection {
    pub file: PathBuf,
    pub kid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsSection {
    pub rules: Option<Vec<String>>,
}

/// How the gateway logs in to brokers for each principal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIdentitySection {
    pub default: Option<IdentitySection>,
    #[serde(default)]
    pub principals: BTreeMap<String, IdentitySection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// `as_is` (no login: a cluster without authentication), `service` (the gateway's own
    /// `[upstream.sasl]` login) or `sasl` (the login below).
    pub mode: String,
    pub mechanism: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    #[serde(default)]
    pub grants: Vec<GrantSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSection {
    /// Principal names; `*` is every principal.
    pub principals: Vec<String>,
    pub operations: Vec<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub transactional_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub file: PathBuf,
    /// Lines that may wait for the disk before new ones are dropped (and counted).
    pub queue: Option<usize>,
}

/// What the rest of the configuration tells these sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Client-facing TLS asks for client certificates (`tls.client_ca`).
    pub client_certificates: bool,
    /// The gateway has its own broker login (`[upstream.sasl]`).
    pub service_identity: bool,
}

/// Validated edge identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeIdentity {
    pub client_auth: Option<ClientAuth>,
    pub upstream: UpstreamIdentities,
    /// `None`: no policy, every request passes as before. `Some`: deny unless granted.
    /// Shared by the connections admitted under this configuration.
    pub policy: Option<Arc<Policy>>,
    pub audit: Option<Audit>,
}

/// How clients of a listener authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    pub mechanisms: Vec<Mechanism>,
    pub credentials_file: Option<PathBuf>,
    pub reload_check: Duration,
    pub max_session_ms: Option<u64>,
    pub oauthbearer: Option<OAuthBearer>,
    pub mtls: Option<PrincipalMapper>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearer {
    pub keys: KeySource,
    pub jwt: JwtSettings,
}

/// Where JWT verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Jwks(PathBuf),
    /// PEM files, each with the `kid` its keys answer to.
    Pem(Vec<(PathBuf, Option<String>)>),
}

impl KeySource {
    /// Reads the keys, to be re-read when the files change.
    pub fn open(&self) -> Result<Watched<KeySet>, LoadError> {
        match self {
            KeySource::Jwks(path) => Watched::load(
                vec![path.clone()],
                Box::new(|files| {
                    let mut problems = Vec::new();
                    let mut set = None;
                    for (path, bytes) in files {
                        match KeySet::from_jwks(bytes) {
                            Ok(keys) => set = Some(keys),
                            Err(found) => problems.extend(
                                found
                                    .into_iter()
                                    .map(|p| format!("{}: {p}", path.display())),
                            ),
                        }
                    }
                    set.filter(|_| problems.is_empty()).ok_or(problems)
                }),
            ),
            KeySource::Pem(files) => {
                let kids: Vec<Option<String>> = files.iter().map(|(_, kid)| kid.clone()).collect();
                Watched::load(
                    files.iter().map(|(path, _)| path.clone()).collect(),
                    Box::new(move |contents| {
                        let named: Vec<(&Path, &[u8], Option<&str>)> = contents
                            .iter()
                            .zip(&kids)
                            .map(|((path, bytes), kid)| (*path, bytes.as_slice(), kid.as_deref()))
                            .collect();
                        KeySet::from_pem(&named)
                    }),
                )
            }
        }
    }
}

/// How the gateway logs in to brokers for one principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UpstreamIdentity {
    /// No login: the cluster does not authenticate.
    #[default]
    AsIs,
    /// The gateway's own login (`[upstream.sasl]`).
    Service,
    /// A login of its own, for this principal.
    Sasl(SaslSettings),
}

/// By default, every principal's broker connection logs in as nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamIdentities {
    default: UpstreamIdentity,
    principals: HashMap<String, UpstreamIdentity>,
}

impl UpstreamIdentities {
    /// The identity the broker connection of `principal` logs in as.
    pub fn for_principal(&self, principal: &str) -> &UpstreamIdentity {
        self.principals.get(principal).unwrap_or(&self.default)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub file: PathBuf,
    pub queue: usize,
}

/// Checks the sections; every problem is reported, each naming its key.
pub fn validate(sections: Sections, context: Context) -> Result<EdgeIdentity, Vec<String>> {
    let mut problems = Vec::new();
    let client_auth = sections
        .client_auth
        .and_then(|s| client_auth(s, "client_auth", context, &mut problems));
    let upstream = upstream_identities(
        sections.upstream_identity.unwrap_or_default(),
        context,
        &mut problems,
    );
    let policy = sections.policy.map(|s| Arc::new(policy(s, &mut problems)));
    let audit = sections.audit.map(|s| {
        let queue = s.queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
        if queue == 0 {
            problems.push("audit.queue must be at least 1".into());
        }
        Audit {
            file: s.file,
            queue,
        }
    });
    if problems.is_empty() {
        Ok(EdgeIdentity {
            client_auth,
            upstream,
            policy,
            audit,
        })
    } else {
        Err(problems)
    }
}

/// Checks a listener's `client_auth` section; `key` is where it sits, for messages.
pub fn client_auth(
    section: ClientAuthSection,
    key: &str,
    context: Context,
    problems: &mut Vec<String>,
) -> Option<ClientAuth> {
    let before = problems.len();
    let mut mechanisms = Vec::new();
    for name in &section.mechanisms {
        match Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
        {
            Some(m) if mechanisms.contains(&m) => {
                problems.push(format!("{key}.mechanisms: {m} is listed twice"))
            }
            Some(m) => mechanisms.push(m),
            None => problems.push(format!(
                "{key}.mechanisms: {name:?} is not one of {}",
                Mechanism::ALL.map(Mechanism::name).join(", ")
            )),
        }
    }
    let passwords = mechanisms.iter().any(|m| *m != Mechanism::OAuthBearer);
    match (&section.credentials_file, passwords) {
        (None, true) => problems.push(format!(
            "{key}.credentials_file is required for PLAIN and SCRAM (make one with `kafka-edge credentials add`)"
        )),
        (Some(_), false) => problems.push(format!(
            "{key}.credentials_file is set but no PLAIN or SCRAM mechanism is offered"
        )),
        _ => {}
    }
    let offers_oauth = mechanisms.contains(&Mechanism::OAuthBearer);
    let oauthbearer = match (section.oauthbearer, offers_oauth) {
        (Some(oauth), true) => oauthbearer(oauth, &format!("{key}.oauthbearer"), problems),
        (None, true) => {
            problems.push(format!("OAUTHBEARER needs a [{key}.oauthbearer] section"));
            None
        }
        (Some(_), false) => {
            problems.push(format!(
                "[{key}.oauthbearer] is set but OAUTHBEARER is not in {key}.mechanisms"
            ));
            None
        }
        (None, false) => None,
    };
    let mtls = section.mtls.and_then(|mtls| {
        if !context.client_certificates {
            problems.push(format!(
                "[{key}.mtls] needs client certificates: set tls.client_ca"
            ));
        }
        let rules = mtls.rules.unwrap_or_else(|| vec!["DEFAULT".into()]);
        PrincipalMapper::parse(&rules)
            .map_err(|found| {
                problems.extend(found.into_iter().map(|p| format!("{key}.mtls.rules: {p}")))
            })
            .ok()
    });
    if mechanisms.is_empty() && mtls.is_none() && problems.len() == before {
        problems.push(format!(
            "[{key}] offers no mechanism and no mtls: clients could not authenticate"
        ));
    }
    if section.max_session_ms == Some(0) {
        problems.push(format!(
            "{key}.max_session_ms must be at least 1 (leave it out for sessions that last)"
        ));
    }
    (problems.len() == before).then(|| ClientAuth {
        mechanisms,
        credentials_file: section.credentials_file,
        reload_check: Duration::from_millis(section.reload_check_ms.unwrap_or(2_000).max(50)),
        max_session_ms: section.max_session_ms,
        oauthbearer,
        mtls,
    })
}

fn oauthbearer(
    section: OAuthBearerSection,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<OAuthBearer> {
    let before = problems.len();
    let keys = match (section.jwks_file, section.public_keys.is_empty()) {
        (Some(path), true) => Some(KeySource::Jwks(path)),
        (None, false) => Some(KeySource::Pem(
            section
                .public_keys
                .into_iter()
                .map(|k| (k.file, k.kid))
                .collect(),
        )),
        (Some(_), false) => {
            problems.push(format!("{key}: give jwks_file or public_keys, not both"));
            None
        }
        (None, true) => {
            problems.push(format!(
                "{key}: give jwks_file (a JWKS document) or public_keys (PEM files) to check token signatures"
            ));
            None
        }
    };
    if section.audience.is_empty() || section.audience.iter().any(|a| a.trim().is_empty()) {
        problems.push(format!(
            "{key}.audience: name the audience tokens must be for (a token minted for another service must not open the cluster)"
        ));
    }
    if section
        .issuer
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        problems.push(format!("{key}.issuer is empty"));
    }
    let clock_skew_s = section.clock_skew_s.unwrap_or(DEFAULT_CLOCK_SKEW_S);
    if clock_skew_s > MAX_CLOCK_SKEW_S {
        problems.push(format!(
            "{key}.clock_skew_s {clock_skew_s} is over {MAX_CLOCK_SKEW_S}"
        ));
    }
    let principal_claim = section
        .principal_claim
        .unwrap_or_else(|| DEFAULT_PRINCIPAL_CLAIM.into());
    if principal_claim.trim().is_empty() {
        problems.push(format!("{key}.principal_claim is empty"));
    }
    let keys = keys.filter(|_| problems.len() == before)?;
    Some(OAuthBearer {
        keys,
        jwt: JwtSettings {
            issuer: section.issuer,
            audiences: section.audience,
            clock_skew_s,
            principal_claim,
        },
    })
}

/// Checks `[upstream_identity]`.
pub fn upstream_identities(
    section: UpstreamIdentitySection,
    context: Context,
    problems: &mut Vec<String>,
) -> UpstreamIdentities {
    let mut identity = |entry: IdentitySection, key: String| {
        upstream_identity(entry, &key, context, problems).unwrap_or(UpstreamIdentity::AsIs)
    };
    let default = section.default.map_or(UpstreamIdentity::AsIs, |entry| {
        identity(entry, "upstream_identity.default".into())
    });
    let principals = section
        .principals
        .into_iter()
        .map(|(principal, entry)| {
            let key = format!("upstream_identity.principals.{principal:?}");
            (principal, identity(entry, key))
        })
        .collect();
    UpstreamIdentities {
        default,
        principals,
    }
}

fn upstream_identity(
    entry: IdentitySection,
    key: &str,
    context: Context,
    problems: &mut Vec<String>,
) -> Option<UpstreamIdentity> {
    let sasl_fields = entry.mechanism.is_some()
        || entry.username.is_some()
        || entry.password_file.is_some()
        || entry.password_env.is_some();
    match entry.mode.as_str() {
        "as_is" | "service" if sasl_fields => {
            problems.push(format!(
                "{key}: mechanism, username and password_* go with mode = \"sasl\""
            ));
            None
        }
        "as_is" => Some(UpstreamIdentity::AsIs),
        "service" if !context.service_identity => {
            problems.push(format!(
                "{key}: mode = \"service\" needs the gateway's own login, [upstream.sasl]"
            ));
            None
        }
        "service" => Some(UpstreamIdentity::Service),
        "sasl" => {
            let before = problems.len();
            let mechanism = match entry.mechanism.as_deref().map(LoginMechanism::parse) {
                Some(Some(mechanism)) => Some(mechanism),
                Some(None) => {
                    problems.push(format!(
                        "{key}.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    ));
                    None
                }
                None => {
                    problems.push(format!("{key}.mechanism is required"));
                    None
                }
            };
            let username = entry.username.unwrap_or_default();
            if username.is_empty() {
                problems.push(format!("{key}.username is required"));
            } else if username.contains('\0') {
                problems.push(format!("{key}.username cannot contain a NUL character"));
            }
            let password = match (entry.password_file, entry.password_env) {
                (Some(path), None) => Some(PasswordSource::File(path)),
                (None, Some(name)) if !name.is_empty() => Some(PasswordSource::Env(name)),
                (None, Some(_)) => {
                    problems.push(format!("{key}.password_env is empty"));
                    None
                }
                (Some(_), Some(_)) => {
                    problems.push(format!(
                        "{key}: give password_file or password_env, not both"
                    ));
                    None
                }
                (None, None) => {
                    problems.push(format!("{key} needs password_file or password_env"));
                    None
                }
            };
            match (mechanism, password) {
                (Some(mechanism), Some(password)) if problems.len() == before => {
                    Some(UpstreamIdentity::Sasl(SaslSettings {
                        mechanism,
                        username,
                        password,
                    }))
                }
                _ => None,
            }
        }
        other => {
            problems.push(format!(
                "{key}.mode {other:?} is not as_is, service or sasl"
            ));
            None
        }
    }
}

/// Checks `[policy]`.
pub fn policy(section: PolicySection, problems: &mut Vec<String>) -> Policy {
    let mut grants = Vec::new();
    let mut everyone = Vec::new();
    for (index, entry) in section.grants.into_iter().enumerate() {
        let key = format!("policy.grants[{index}]");
        let before = problems.len();
        if entry.principals.is_empty() {
            problems.push(format!(
                "{key}.principals: name at least one principal, or \"*\""
            ));
        }
        if entry.principals.iter().any(String::is_empty) {
            problems.push(format!("{key}.principals: an empty name"));
        }
        let mut operations = Vec::new();
        for name in &entry.operations {
            match Operation::from_name(name) {
                Some(op) => operations.push(op),
                None => problems.push(format!(
                    "{key}.operations: {name:?} is not one of {}",
                    Operation::ALL.map(Operation::name).join(", ")
                )),
            }
        }
        if entry.operations.is_empty() {
            problems.push(format!("{key}.operations: grant at least one operation"));
        }
        let topics = Patterns::parse(&entry.topics, &format!("{key}.topics"), problems);
        let groups = Patterns::parse(&entry.groups, &format!("{key}.groups"), problems);
        let transactional_ids = Patterns::parse(
            &entry.transactional_ids,
            &format!("{key}.transactional_ids"),
            problems,
        );
        let on_resources = operations.iter().any(|op| *op != Operation::ClusterAdmin);
        let names_none = entry.topics.is_empty()
            && entry.groups.is_empty()
            && entry.transactional_ids.is_empty();
        if on_resources && names_none {
            problems.push(format!(
                "{key}: grants {} but names no topic, group or transactional id",
                operations
                    .iter()
                    .filter(|op| **op != Operation::ClusterAdmin)
                    .map(|op| op.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if problems.len() > before {
            continue;
        }
        let grant = Grant::new(&operations, topics, groups, transactional_ids);
        for principal in entry.principals {
            if principal == "*" {
                everyone.push(grant.clone());
            } else {
                grants.push((principal, grant.clone()));
            }
        }
    }
    Policy::new(grants, everyone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::auth::policy::Resource;

    const FULL: &str = r#"
[client_auth]
mechanisms = ["SCRAM-SHA-512", "plain", "OAUTHBEARER"]
credentials_file = "/etc/kafka-edge/users.json"
max_session_ms = 3600000

[client_auth.oauthbearer]
public_keys = [{ file = "idp.pem", kid = "k1" }, { file = "old.pem" }]
issuer = "https://idp.example.com"
audience = ["kafka"]

[client_auth.mtls]
rules = ["RULE:^CN=([^,]+),OU=clients(,.*)?$/$1/L", "SAN:DNS:DEFAULT"]

[upstream_identity.default]
mode = "service"

[upstream_identity.principals.alice]
mode = "sasl"
mechanism = "SCRAM-SHA-512"
username = "team-a"
password_env = "TEAM_A_PASSWORD"

[upstream_identity.principals.legacy]
mode = "as_is"

[[policy.grants]]
principals = ["alice", "bob"]
operations = ["read", "write", "describe"]
topics = ["team-a.*"]
groups = ["team-a.*"]

[[policy.grants]]
principals = ["*"]
operations = ["describe"]
topics = ["public.*"]

[audit]
file = "/var/log/kafka-edge/audit.log"
"#;

    fn parse(text: &str, context: Context) -> Result<EdgeIdentity, Vec<String>> {
        let sections: Sections = toml::from_str(text).unwrap();
        validate(sections, context)
    }

    #[test]
    fn a_full_configuration_validates() {
        let context = Context {
            client_certificates: true,
            service_identity: true,
        };
        let identity = parse(FULL, context).unwrap();
        let auth = identity.client_auth.unwrap();
        assert_eq!(
            auth.mechanisms,
            vec![
                Mechanism::Scram(crate::cluster::scram::Hash::Sha512),
                Mechanism::Plain,
                Mechanism::OAuthBearer
            ]
        );
        assert_eq!(auth.max_session_ms, Some(3_600_000));
        assert_eq!(auth.reload_check, Duration::from_secs(2));
        let oauth = auth.oauthbearer.unwrap();
        assert_eq!(
            oauth.keys,
            KeySource::Pem(vec![
                ("idp.pem".into(), Some("k1".into())),
                ("old.pem".into(), None)
            ])
        );
        assert_eq!(oauth.jwt.clock_skew_s, 30);
        assert_eq!(oauth.jwt.principal_claim, "sub");
        assert!(auth.mtls.is_some());
        assert_eq!(
            identity.upstream.for_principal("carol"),
            &UpstreamIdentity::Service
        );
        assert_eq!(
            identity.upstream.for_principal("legacy"),
            &UpstreamIdentity::AsIs
        );
        let UpstreamIdentity::Sasl(alice) = identity.upstream.for_principal("alice") else {
            panic!("alice logs in as team-a");
        };
        assert_eq!(alice.username, "team-a");
        assert_eq!(
            alice.password,
            PasswordSource::Env("TEAM_A_PASSWORD".into())
        );
        let policy = identity.policy.unwrap();
        assert!(policy
            .decide("bob", Operation::Read, Resource::Group("team-a.x"))
            .is_allowed());
        assert!(policy
            .decide("eve", Operation::Describe, Resource::Topic("public.x"))
            .is_allowed());
        assert!(!policy
            .decide("eve", Operation::Read, Resource::Topic("public.x"))
            .is_allowed());
        assert_eq!(identity.audit.unwrap().queue, 10_000);
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let identity = parse("", Context::default()).unwrap();
        assert!(identity.client_auth.is_none());
        assert!(identity.policy.is_none());
        assert_eq!(
            identity.upstream.for_principal("x"),
            &UpstreamIdentity::AsIs
        );
        // An empty policy section is a policy: deny everything.
        let identity = parse("[policy]", Context::default()).unwrap();
        assert!(!identity
            .policy
            .unwrap()
            .decide("x", Operation::Describe, Resource::Topic("t"))
            .is_allowed());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[client_auth]
mechanisms = ["SCRAM-SHA-512", "GSSAPI", "SCRAM-SHA-512", "OAUTHBEARER"]
max_session_ms = 0

[client_auth.oauthbearer]
jwks_file = "jwks.json"
public_keys = [{ file = "a.pem" }]
clock_skew_s = 3600
principal_claim = " "

[client_auth.mtls]
rules = ["RULE:(/x/"]

[upstream_identity.default]
mode = "service"
username = "x"

[upstream_identity.principals.alice]
mode = "sasl"
mechanism = "GSSAPI"
password_file = "a"
password_env = "B"

[upstream_identity.principals.bob]
mode = "whatever"

[[policy.grants]]
principals = []
operations = ["read", "fly"]
topics = ["a*b"]

[[policy.grants]]
principals = ["x"]
operations = ["write"]

[audit]
file = "audit.log"
queue = 0
"#;
        let problems = parse(text, Context::default()).unwrap_err();
        let expected = [
            "client_auth.mechanisms: \"GSSAPI\" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
            "client_auth.mechanisms: SCRAM-SHA-512 is listed twice",
            "client_auth.credentials_file is required for PLAIN and SCRAM",
            "client_auth.oauthbearer: give jwks_file or public_keys, not both",
            "client_auth.oauthbearer.audience: name the audience",
            "client_auth.oauthbearer.clock_skew_s 3600 is over 600",
            "client_auth.oauthbearer.principal_claim is empty",
            "[client_auth.mtls] needs client certificates: set tls.client_ca",
            "client_auth.mtls.rules: rule \"RULE:(/x/\": the pattern is not a regular expression",
            "client_auth.max_session_ms must be at least 1",
            "upstream_identity.default: mechanism, username and password_* go with mode = \"sasl\"",
            "upstream_identity.principals.\"alice\".mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            "upstream_identity.principals.\"alice\".username is required",
            "upstream_identity.principals.\"alice\": give password_file or password_env, not both",
            "upstream_identity.principals.\"bob\".mode \"whatever\" is not as_is, service or sasl",
            "policy.grants[0].principals: name at least one principal, or \"*\"",
            "policy.grants[0].operations: \"fly\" is not one of read, write, describe, create, delete, alter, cluster_admin",
            "policy.grants[0].topics: \"a*b\" has a * that is not at its end",
            "policy.grants[1]: grants write but names no topic, group or transactional id",
            "audit.queue must be at least 1",
        ];
        for want in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn mismatched_sections_are_reported() {
        let problems = parse(
            "[client_auth]\nmechanisms = [\"PLAIN\"]\ncredentials_file = \"u.json\"\n[client_auth.oauthbearer]\njwks_file = \"j\"\naudience = [\"k\"]\n[upstream_identity.default]\nmode = \"service\"",
            Context::default(),
        )
        .unwrap_err();
        assert_eq!(
            problems,
            vec![
                "[client_auth.oauthbearer] is set but OAUTHBEARER is not in client_auth.mechanisms",
                "upstream_identity.default: mode = \"service\" needs the gateway's own login, [upstream.sasl]",
            ]
        );
        let problems = parse(
            "[client_auth]\ncredentials_file = \"u.json\"",
            Context::default(),
        )
        .unwrap_err();
        assert_eq!(
            problems,
            vec!["client_auth.credentials_file is set but no PLAIN or SCRAM mechanism is offered"]
        );
        let problems = parse("[client_auth]", Context::default()).unwrap_err();
        assert_eq!(
            problems,
            vec!["[client_auth] offers no mechanism and no mtls: clients could not authenticate"]
        );
        let problems = parse(
            "[client_auth]\nmechanisms = [\"OAUTHBEARER\"]",
            Context::default(),
        )
        .unwrap_err();
        assert_eq!(
            problems,
            vec!["OAUTHBEARER needs a [client_auth.oauthbearer] section"]
        );
        // Unknown keys are refused by the parser, as in the main configuration.
        assert!(toml::from_str::<Sections>("[client_auth]\nmechanism = []").is_err());
    }

    #[test]
    fn key_sources_open_and_reload() {
        let dir = std::env::temp_dir().join(format!("kafka-edge-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let vectors = crate::edge::auth::keys::tests::pyjwt();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, vectors["jwks"].to_string()).unwrap();
        let watched = KeySource::Jwks(jwks.clone()).open().unwrap();
        assert_eq!(watched.current().keys().len(), 4);
        std::fs::write(&jwks, "{\"keys\": []}").unwrap();
        let err = watched.reload_if_changed().unwrap_err();
        assert_eq!(
            err.problems,
            vec![format!(
                "{}: no key that verifies signatures",
                jwks.display()
            )]
        );
        assert_eq!(watched.current().keys().len(), 4);

        let pem = dir.join("ed.pem");
        std::fs::write(&pem, vectors["pem"]["ed-1"].as_str().unwrap()).unwrap();
        let watched = KeySource::Pem(vec![(pem, Some("ed".into()))])
            .open()
            .unwrap();
        assert_eq!(watched.current().keys()[0].kid.as_deref(), Some("ed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

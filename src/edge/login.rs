//! Client logins at the gateway (`[client_auth]`). The gateway answers ApiVersions,
//! SaslHandshake and SaslAuthenticate itself, with the mechanisms of `src/edge/auth/`, and
//! only once a client has proved who it is does it dial a broker, logged in as the identity
//! that principal maps to. A login is a conversation with no broker in it, so it is a pure
//! state machine ([`Login`]): a request frame in, the answer out, and when the client is
//! through, who it is.
//!
//! The same machine answers re-authentication (KIP-368) while the connection relays: the
//! exchange hands it those requests instead of forwarding them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::cluster::scram;
use crate::edge::auth::config::{ClientAuth, EdgeIdentity};
use crate::edge::auth::credentials::{self, CredentialStore};
use crate::edge::auth::jwt::Validator;
use crate::edge::auth::keys::KeySet;
use crate::edge::auth::mtls::CertIdentity;
use crate::edge::auth::sasl::{
    self, AuthFailure, Authenticated, Context, Mechanism, ServerExchange, Step,
};
use crate::edge::auth::watch::{LoadError, Watched};
use crate::edge::versions::ClusterVersions;
use crate::proxy::frame::{self, RequestHead};
use crate::rewrite::api_versions;

/// The principal of a client that does not log in, where a policy applies all the same.
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Kafka's ILLEGAL_SASL_STATE: a SaslAuthenticate before its SaslHandshake.
const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's SASL_AUTHENTICATION_FAILED.
const AUTHENTICATION_FAILED: i16 = 58;

/// What a gateway that authenticates clients keeps for every login: the listener's
/// settings and the files they name, re-read when they change.
pub struct EdgeAuth {
    pub settings: ClientAuth,
    credentials: Option<CredentialStore>,
    keys: Option<Watched<KeySet>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {what}: {}", .error.problems.join("; "))]
pub struct OpenError {
    what: &'static str,
    error: LoadError,
}

impl EdgeAuth {
    /// Reads the credential file and the token keys the settings name.
    pub fn open(identity: &EdgeIdentity) -> Result<Option<Arc<EdgeAuth>>, OpenError> {
        let Some(settings) = identity.client_auth.clone() else {
            return Ok(None);
        };
        let credentials = settings
            .credentials_file
            .clone()
            .map(credentials::open)
            .transpose()
            .map_err(|error| OpenError {
                what: "client_auth.credentials_file",
                error,
            })?;
        let keys = settings
            .oauthbearer
            .as_ref()
            .map(|o| o.keys.open())
            .transpose()
            .map_err(|error| OpenError {
                what: "client_auth.oauthbearer keys",
                error,
            })?;
        Ok(Some(Arc::new(EdgeAuth {
            settings,
            credentials,
            keys,
        })))
    }

    /// Whether clients log in with SASL; otherwise only a client certificate names them.
    pub fn uses_sasl(&self) -> bool {
        !self.settings.mechanisms.is_empty()
    }

    /// Whether client certificates name principals (`client_auth.mtls`).
    pub fn checks_certificates(&self) -> bool {
        self.settings.mtls.is_some()
    }

    /// The principal a client certificate names by the mapping rules, when rules are set.
    pub fn certificate_principal(&self, der: &[u8]) -> Option<Result<String, String>> {
        let mapper = self.settings.mtls.as_ref()?;
        Some(
            CertIdentity::from_der(der)
                .map_err(|e| e.to_string())
                .and_then(|id| mapper.principal(&id).map_err(|e| e.to_string())),
        )
    }

    /// Re-reads the credential file and key files that changed since they were last read;
    /// says what was reloaded or why not.
    pub fn reload_if_changed(&self) -> Vec<Result<&'static str, String>> {
        let mut outcomes = Vec::new();
        if let Some(store) = &self.credentials {
            match store.reload_if_changed() {
                Ok(true) => outcomes.push(Ok("credentials")),
                Ok(false) => {}
                Err(e) => outcomes.push(Err(format!("credentials: {}", e.problems.join("; ")))),
            }
        }
        if let Some(keys) = &self.keys {
            match keys.reload_if_changed() {
                Ok(true) => outcomes.push(Ok("token keys")),
                Ok(false) => {}
                Err(e) => outcomes.push(Err(format!("token keys: {}", e.problems.join("; ")))),
            }
        }
        outcomes
    }

    pub fn reload_check(&self) -> Duration {
        self.settings.reload_check
    }
}

/// What the client gets for one request of its login.
#[derive(Debug)]
pub enum Answer {
    /// Send this; the login goes on.
    Reply(Bytes),
    /// Send this (if anything), then close: the login failed, or the request has no place
    /// in one.
    Refuse { reply: Option<Bytes>, why: Refused },
    /// Send this: the client is who it says, until `expires_at_ms` (`None`: for good).
    LoggedIn {
        reply: Bytes,
        who: Authenticated,
        expires_at_ms: Option<u64>,
    },
}

/// Why a login ended without success.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Failed(AuthFailure),
    #[error(transparent)]
    Unsupported(#[from] sasl::UnsupportedMechanism),
    #[error("SaslAuthenticate before SaslHandshake")]
    OutOfOrder,
    #[error("the client sent api key {api_key} before logging in")]
    NotLoggedIn { api_key: i16 },
    #[error("a malformed {what} request")]
    Malformed { what: &'static str },
    #[error("the gateway has not yet heard the cluster's API versions")]
    NoVersions,
}

impl Refused {
    /// The metric and audit label of the mechanism involved.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Refused::Failed(f) => f.mechanism.name(),
            _ => "none",
        }
    }

    /// The audit reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Failed(f) => f.refusal.code(),
            Refused::Unsupported(_) => "unsupported_mechanism",
            Refused::OutOfOrder => "illegal_sasl_state",
            Refused::NotLoggedIn { .. } => "not_logged_in",
            Refused::Malformed { .. } => "malformed",
            Refused::NoVersions => "not_ready",
        }
    }
}

/// One connection's login: a first one, then any re-authentication.
pub struct Login {
    auth: Arc<EdgeAuth>,
    exchange: Option<ServerExchange>,
    /// Who the connection logged in as, once it has.
    who: Option<Authenticated>,
}

impl Login {
    pub fn new(auth: Arc<EdgeAuth>) -> Login {
        Login {
            auth,
            exchange: None,
            who: None,
        }
    }

    pub fn who(&self) -> Option<&Authenticated> {
        self.who.as_ref()
    }

    /// Answers one whole request frame. Only ApiVersions, SaslHandshake and SaslAuthenticate
    /// have a place in a login; `versions` is the cluster's answer to ApiVersions.
    pub fn handle(
        &mut self,
        head: &RequestHead,
        frame: &[u8],
        versions: Option<&ClusterVersions>,
    ) -> Answer {
        match ApiKey::try_from(head.api_key) {
            Ok(ApiKey::ApiVersions) => self.api_versions(head, versions),
            Ok(ApiKey::SaslHandshake) => self.handshake(head, frame),
            Ok(ApiKey::SaslAuthenticate) => self.authenticate(head, frame),
            _ => Answer::Refuse {
                reply: None,
                why: Refused::NotLoggedIn {
                    api_key: head.api_key,
                },
            },
        }
    }

    fn api_versions(&self, head: &RequestHead, versions: Option<&ClusterVersions>) -> Answer {
        let max = api_versions::api_versions_max();
        if head.api_version > max {
            // As a broker does: the v0 layout, so the client retries lower.
            return Answer::Reply(api_versions::unsupported_version(head.correlation_id, max));
        }
        match versions {
            Some(versions) => Answer::Reply(versions.answer(head.api_version, head.correlation_id)),
            None => Answer::Refuse {
                reply: None,
                why: Refused::NoVersions,
            },
        }
    }

    fn handshake(&mut self, head: &RequestHead, frame: &[u8]) -> Answer {
        let Some(name) = body(frame, false).and_then(classic_string) else {
            return malformed("SaslHandshake");
        };
        let offered = &self.auth.settings.mechanisms;
        let names: Vec<StrBytes> = offered
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let chosen = sasl::select_mechanism(&name, offered).map_err(Refused::from);
        let chosen = chosen.and_then(|mechanism| match &self.who {
            Some(who) => sasl::check_reauthentication_mechanism(who, mechanism)
                .map(|()| mechanism)
                .map_err(Refused::Failed),
            None => Ok(mechanism),
        });
        let error_code = match &chosen {
            Ok(_) => 0,
            Err(Refused::Unsupported(_)) => sasl::UnsupportedMechanism::ERROR_CODE,
            Err(_) => AUTHENTICATION_FAILED,
        };
        let reply = encode(
            head,
            0,
            &SaslHandshakeResponse::default()
                .with_error_code(error_code)
                .with_mechanisms(names),
        );
        match chosen {
            Ok(mechanism) => match scram::nonce() {
                Ok(nonce) => {
                    self.exchange = Some(ServerExchange::new(mechanism, nonce));
                    Answer::Reply(reply)
                }
                Err(_) => Answer::Refuse {
                    reply: None,
                    why: Refused::Failed(AuthFailure::new(mechanism, sasl::Refusal::Unavailable)),
                },
            },
            Err(why) => Answer::Refuse {
                reply: Some(reply),
                why,
            },
        }
    }

    fn authenticate(&mut self, head: &RequestHead, frame: &[u8]) -> Answer {
        let flexible = head.api_version >= 2;
        let header_version = if flexible { 1 } else { 0 };
        let Some(exchange) = self.exchange.as_mut() else {
            let reply = encode(
                head,
                header_version,
                &SaslAuthenticateResponse::default()
                    .with_error_code(ILLEGAL_SASL_STATE)
                    .with_error_message(Some(StrBytes::from_static_str(
                        "SaslAuthenticate before SaslHandshake",
                    ))),
            );
            return Answer::Refuse {
                reply: Some(reply),
                why: Refused::OutOfOrder,
            };
        };
        let Some(message) = body(frame, flexible).and_then(|b| auth_bytes(b, flexible)) else {
            return malformed("SaslAuthenticate");
        };
        let now_ms = now_ms();
        let credentials = self.auth.credentials.as_ref().map(|c| c.current());
        let keys = self.auth.keys.as_ref().map(|k| k.current());
        let jwt = match (&keys, &self.auth.settings.oauthbearer) {
            (Some(keys), Some(oauth)) => Some(Validator {
                keys,
                settings: &oauth.jwt,
            }),
            _ => None,
        };
        let context = Context {
            credentials: credentials.as_deref(),
            jwt,
            now_ms,
        };
        let reauthenticating = self.who.is_some();
        match exchange.step(&message, &context) {
            Ok(Step::Continue(bytes)) => Answer::Reply(encode(
                head,
                header_version,
                &SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
            )),
            Ok(Step::Done {
                response,
                authenticated,
            }) => {
                if let Some(previous) = &self.who {
                    if let Err(failure) = sasl::check_reauthentication(previous, &authenticated) {
                        return self.refuse(head, header_version, failure, true);
                    }
                }
                let lifetime = sasl::session_lifetime(
                    now_ms,
                    authenticated.expires_at_ms,
                    self.auth.settings.max_session_ms,
                );
                self.exchange = None;
                self.who = Some(authenticated.clone());
                Answer::LoggedIn {
                    reply: encode(
                        head,
                        header_version,
                        &SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(response))
                            .with_session_lifetime_ms(lifetime.client_ms),
                    ),
                    who: authenticated,
                    expires_at_ms: lifetime.expires_at_ms,
                }
            }
            Err(failure) => self.refuse(head, header_version, failure, reauthenticating),
        }
    }

    fn refuse(
        &mut self,
        head: &RequestHead,
        header_version: i16,
        failure: AuthFailure,
        reauthenticating: bool,
    ) -> Answer {
        self.exchange = None;
        let reply = encode(
            head,
            header_version,
            &SaslAuthenticateResponse::default()
                .with_error_code(AUTHENTICATION_FAILED)
                .with_error_message(Some(StrBytes::from_string(
                    failure.client_message(reauthenticating),
                ))),
        );
        Answer::Refuse {
            reply: Some(reply),
            why: Refused::Failed(failure),
        }
    }
}

fn malformed(what: &'static str) -> Answer {
    Answer::Refuse {
        reply: None,
        why: Refused::Malformed { what },
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An answer frame: the response header (v0, or v1 with its tagged fields), then `body` at
/// the request's version. Encoding values built right here cannot fail.
fn encode<T: Encodable>(head: &RequestHead, header_version: i16, body: &T) -> Bytes {
    let mut out = frame::begin(64);
    let encoded = ResponseHeader::default()
        .with_correlation_id(head.correlation_id)
        .encode(&mut out, header_version)
        .and_then(|_| body.encode(&mut out, head.api_version));
    debug_assert!(encoded.is_ok());
    frame::seal(out)
}

/// A request's body: after the size, key, version, correlation id, the client id (a classic
/// nullable string in every header version) and, in header v2, tagged fields.
fn body(frame: &[u8], flexible: bool) -> Option<&[u8]> {
    let mut at = frame::SIZE_PREFIX + 8;
    let client_id = i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    at += 2 + usize::try_from(client_id).unwrap_or(0);
    let mut rest = frame.get(at..)?;
    if flexible {
        rest = skip_tags(rest)?;
    }
    Some(rest)
}

fn uvarint(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

fn skip_tags(bytes: &[u8]) -> Option<&[u8]> {
    let (count, mut rest) = uvarint(bytes)?;
    for _ in 0..count {
        let (_, after_tag) = uvarint(rest)?;
        let (size, after_size) = uvarint(after_tag)?;
        rest = after_size.get(size as usize..)?;
    }
    Some(rest)
}

/// A classic (i16-length) string, lossily as text: mechanism names are ASCII.
fn classic_string(bytes: &[u8]) -> Option<String> {
    let len = usize::try_from(i16::from_be_bytes(bytes.get(..2)?.try_into().ok()?)).ok()?;
    let text = bytes.get(2..2 + len)?;
    Some(String::from_utf8_lossy(text).into_owned())
}

/// SaslAuthenticate's `AuthBytes`: i32-length bytes, or compact bytes from v2.
fn auth_bytes(bytes: &[u8], flexible: bool) -> Option<BytesMut> {
    let (len, rest) = if flexible {
        let (n, rest) = uvarint(bytes)?;
        (usize::try_from(n.checked_sub(1)?).ok()?, rest)
    } else {
        let n = i32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        (usize::try_from(n).ok()?, &bytes[4..])
    };
    Some(BytesMut::from(rest.get(..len)?))
}

/// The mechanisms a listener offers, as names, for log lines.
pub fn offered(auth: &EdgeAuth) -> String {
    auth.settings
        .mechanisms
        .iter()
        .map(|m: &Mechanism| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

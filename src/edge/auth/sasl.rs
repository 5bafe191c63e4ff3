//! What the edge's SASL mechanisms share: their names, the shape of one exchange (client
//! message in, answer out, a principal or a refusal at the end), what a refused client is
//! told, and the KIP-368 session lifetime of a login.
//!
//! The data path owns the Kafka framing: it answers SaslHandshake with [`select_mechanism`],
//! feeds each SaslAuthenticate request's `AuthBytes` to [`ServerExchange::step`], and answers
//! with the step's bytes (error code 0), or with [`AuthFailure::ERROR_CODE`] and
//! [`AuthFailure::client_message`] before closing the connection, as a broker does.

use crate::cluster::sasl::Mechanism as LoginMechanism;
use crate::cluster::scram::Hash;
use crate::edge::auth::credentials::Credentials;
use crate::edge::auth::jwt::{JwtError, Validator};
use crate::edge::auth::oauthbearer::OAuthBearerServer;
use crate::edge::auth::plain;
use crate::edge::auth::scram_server::ScramServer;

/// The longest SASL message a mechanism reads. RFC 4616 asks for 255-byte fields and tokens
/// from identity providers run to a few KiB; anything near this is hostile, and every byte
/// read costs hashing or parsing.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A SASL mechanism a client can authenticate with at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(Hash),
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::Scram(Hash::Sha256),
        Mechanism::Scram(Hash::Sha512),
        Mechanism::OAuthBearer,
    ];

    /// The name clients ask for in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => LoginMechanism::Plain.name(),
            Mechanism::Scram(Hash::Sha256) => LoginMechanism::ScramSha256.name(),
            Mechanism::Scram(Hash::Sha512) => LoginMechanism::ScramSha512.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism a client names: exactly, as brokers compare them.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A SaslHandshake naming a mechanism the listener does not offer: the broker's
/// UNSUPPORTED_SASL_MECHANISM, with the offered names in the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the client asked for SASL mechanism {requested:?}; this listener offers {}", .offered.join(", "))]
pub struct UnsupportedMechanism {
    pub requested: String,
    pub offered: Vec<&'static str>,
}

impl UnsupportedMechanism {
    /// UNSUPPORTED_SASL_MECHANISM.
    pub const ERROR_CODE: i16 = 33;
}

/// The mechanism of a SaslHandshake request, if the listener offers it.
pub fn select_mechanism(
    requested: &str,
    offered: &[Mechanism],
) -> Result<Mechanism, UnsupportedMechanism> {
    Mechanism::from_name(requested)
        .filter(|m| offered.contains(m))
        .ok_or_else(|| UnsupportedMechanism {
            requested: requested.chars().take(100).collect(),
            offered: offered.iter().map(|m| m.name()).collect(),
        })
}

/// The GS2 header (RFC 5801) SCRAM and OAUTHBEARER messages begin with: a channel-binding
/// flag and an optional authorization identity, `n,,` or `y,a=name,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs2Header<'a> {
    /// The header as sent, both commas included.
    pub text: &'a str,
    /// The authorization identity, unescaped.
    pub authzid: Option<String>,
}

/// Splits the GS2 header off a message. `p=` (channel binding) is refused: the edge offers
/// no `-PLUS` mechanism. `y` (the client could bind but believes the server cannot) is
/// accepted, as RFC 5802 allows when no `-PLUS` mechanism is offered.
pub(crate) fn split_gs2_header<'a>(
    text: &'a str,
    message: &'static str,
) -> Result<(Gs2Header<'a>, &'a str), Refusal> {
    let bad = |detail| Refusal::Malformed { message, detail };
    let (flag, rest) = text.split_once(',').ok_or(bad("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err(Refusal::ChannelBinding),
        _ => {
            return Err(bad(
                "the gs2 header's channel binding flag is not n, y or p=",
            ))
        }
    }
    let (authzid, rest) = rest.split_once(',').ok_or(bad("no gs2 header"))?;
    let authzid = match authzid {
        "" => None,
        _ => Some(
            authzid
                .strip_prefix("a=")
                .and_then(unescape_saslname)
                .ok_or(bad("the authorization identity is not a=saslname"))?,
        ),
    };
    let header = Gs2Header {
        text: &text[..text.len() - rest.len()],
        authzid,
    };
    Ok((header, rest))
}

/// A saslname (RFC 5802) with `=2C` and `=3D` turned back into `,` and `=`; `None` when it is
/// empty or holds any other `=`.
pub(crate) fn unescape_saslname(saslname: &str) -> Option<String> {
    if saslname.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(at) = rest.find('=') {
        name.push_str(&rest[..at]);
        name.push(match rest.get(at..at + 3)? {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    name.push_str(rest);
    Some(name)
}

/// Who a client proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The principal name policies and upstream identities are keyed by.
    pub principal: String,
    pub mechanism: Mechanism,
    /// When the credential stops being valid, in milliseconds since the Unix epoch: a
    /// token's `exp`. `None` for passwords, which do not expire.
    pub expires_at_ms: Option<u64>,
}

/// What to answer a client's message with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// Send these bytes (possibly none) with a session lifetime from [`session_lifetime`]:
    /// the client is authenticated.
    Done {
        response: Vec<u8>,
        authenticated: Authenticated,
    },
}

/// Why a login was refused. For logs, metrics and the audit line: never shown to the client,
/// which learns only that its credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed {message}: {detail}")]
    Malformed {
        message: &'static str,
        detail: &'static str,
    },
    #[error("a message of {len} bytes, over the limit of {MAX_MESSAGE_BYTES}")]
    TooLong { len: usize },
    #[error("no credentials for this mechanism are configured")]
    Unavailable,
    #[error("unknown user")]
    UnknownUser,
    #[error("the password or proof does not match the stored credentials")]
    BadCredentials,
    #[error("the client asked to act as {authzid:?}, not as itself ({principal:?})")]
    AuthorizationId { authzid: String, principal: String },
    #[error("the client asked for channel binding, which the edge does not offer")]
    ChannelBinding,
    #[error("the channel binding attribute does not repeat the client's gs2 header")]
    ChannelBindingMismatch,
    #[error("the client sent a mandatory extension (m=) the edge does not know")]
    MandatoryExtension,
    #[error(
        "the client asked for a delegation token login (tokenauth), which the edge does not offer"
    )]
    TokenAuth,
    #[error("the nonce is not this exchange's: a replayed or foreign message")]
    Nonce,
    #[error("invalid token: {0}")]
    InvalidToken(JwtError),
    #[error("a message after the exchange ended")]
    Finished,
    #[error("re-authentication as {next:?} on a connection of {previous:?}")]
    PrincipalChanged { previous: String, next: String },
    #[error("re-authentication with {next} on a connection that logged in with {previous}")]
    MechanismChanged {
        previous: Mechanism,
        next: Mechanism,
    },
}

impl Refusal {
    /// A short stable name for metrics labels and audit lines.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "malformed",
            Refusal::TooLong { .. } => "too_long",
            Refusal::Unavailable => "unavailable",
            Refusal::UnknownUser => "unknown_user",
            Refusal::BadCredentials => "bad_credentials",
            Refusal::AuthorizationId { .. } => "authorization_id",
            Refusal::ChannelBinding | Refusal::ChannelBindingMismatch => "channel_binding",
            Refusal::MandatoryExtension => "mandatory_extension",
            Refusal::TokenAuth => "token_auth",
            Refusal::Nonce => "nonce",
            Refusal::InvalidToken(_) => "invalid_token",
            Refusal::Finished => "finished",
            Refusal::PrincipalChanged { .. } => "principal_changed",
            Refusal::MechanismChanged { .. } => "mechanism_changed",
        }
    }
}

/// A refused login: the mechanism, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{mechanism} login refused: {refusal}")]
pub struct AuthFailure {
    pub mechanism: Mechanism,
    pub refusal: Refusal,
}

impl AuthFailure {
    /// SASL_AUTHENTICATION_FAILED: what a broker answers every refused SaslAuthenticate with.
    pub const ERROR_CODE: i16 = 58;

    pub fn new(mechanism: Mechanism, refusal: Refusal) -> AuthFailure {
        AuthFailure { mechanism, refusal }
    }

    /// The error message of the SaslAuthenticate answer. A broker sends one text for every
    /// credential problem, so that a client cannot tell an unknown user from a wrong password
    /// or a malformed message; OAUTHBEARER repeats the RFC 7628 error status instead.
    pub fn client_message(&self, reauthenticating: bool) -> String {
        if let (Mechanism::OAuthBearer, Refusal::InvalidToken(_)) = (self.mechanism, &self.refusal)
        {
            return crate::edge::auth::oauthbearer::INVALID_TOKEN.to_owned();
        }
        let during = if reauthenticating {
            "re-authentication"
        } else {
            "authentication"
        };
        format!(
            "Authentication failed during {during} due to invalid credentials with SASL mechanism {}",
            self.mechanism
        )
    }
}

/// What a mechanism may need to check a client: the credential file (PLAIN, SCRAM) and the
/// JWT validator (OAUTHBEARER), read once per message so that a reload takes effect at once,
/// and the time.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub credentials: Option<&'a Credentials>,
    pub jwt: Option<Validator<'a>>,
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
}

/// One client's SASL exchange, from its first SaslAuthenticate to its last.
#[derive(Debug)]
pub enum ServerExchange {
    Plain { finished: bool },
    Scram(ScramServer),
    OAuthBearer(OAuthBearerServer),
}

impl ServerExchange {
    /// Starts an exchange for the mechanism of the client's SaslHandshake. `scram_nonce` is
    /// the server's part of the SCRAM nonce, fresh for every exchange (see
    /// [`crate::cluster::scram::nonce`]); other mechanisms ignore it.
    pub fn new(mechanism: Mechanism, scram_nonce: String) -> ServerExchange {
        match mechanism {
            Mechanism::Plain => ServerExchange::Plain { finished: false },
            Mechanism::Scram(hash) => ServerExchange::Scram(ScramServer::new(hash, scram_nonce)),
            Mechanism::OAuthBearer => ServerExchange::OAuthBearer(OAuthBearerServer::default()),
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        match self {
            ServerExchange::Plain { .. } => Mechanism::Plain,
            ServerExchange::Scram(server) => Mechanism::Scram(server.hash()),
            ServerExchange::OAuthBearer(_) => Mechanism::OAuthBearer,
        }
    }

    /// Reads the client's next message. After a refusal or a success, every further message
    /// is refused: a new login starts with a new exchange.
    pub fn step(&mut self, message: &[u8], context: &Context<'_>) -> Result<Step, AuthFailure> {
        let mechanism = self.mechanism();
        let fail = |refusal| AuthFailure::new(mechanism, refusal);
        if self.is_finished() {
            return Err(fail(Refusal::Finished));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            self.finish();
            return Err(fail(Refusal::TooLong { len: message.len() }));
        }
        let step = match self {
            ServerExchange::Plain { finished } => {
                *finished = true;
                let credentials = context.credentials.ok_or(Refusal::Unavailable);
                credentials.and_then(|credentials| plain::authenticate(message, credentials))
            }
            ServerExchange::Scram(server) => match context.credentials {
                Some(credentials) => server.step(message, credentials),
                None => Err(Refusal::Unavailable),
            },
            ServerExchange::OAuthBearer(server) => match &context.jwt {
                Some(validator) => server.step(message, validator, context.now_ms),
                None => Err(Refusal::Unavailable),
            },
        };
        if step.is_err() {
            self.finish();
        }
        step.map_err(fail)
    }

    fn is_finished(&self) -> bool {
        match self {
            ServerExchange::Plain { finished } => *finished,
            ServerExchange::Scram(server) => server.is_finished(),
            ServerExchange::OAuthBearer(server) => server.is_finished(),
        }
    }

    fn finish(&mut self) {
        match self {
            ServerExchange::Plain { finished } => *finished = true,
            ServerExchange::Scram(server) => server.finish(),
            ServerExchange::OAuthBearer(server) => server.finish(),
        }
    }
}

/// The session a login opens, as KIP-368 has brokers compute it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// The SaslAuthenticate answer's `SessionLifetimeMs`: 0 tells the client the session does
    /// not expire, anything else when to log in again (clients do at 85 to 95% of it).
    pub client_ms: i64,
    /// When the gateway closes the connection unless the client has logged in again, in
    /// milliseconds since the Unix epoch. `None`: never.
    pub expires_at_ms: Option<u64>,
}

/// The session lifetime of a login completed at `now_ms`: the time left on the credential,
/// capped by `max_session_ms` (the listener's `connections.max.reauth.ms`), as a broker
/// computes it. A credential already past its expiry (accepted within the clock skew) gives
/// the client 0 and a session that ends now, as with a broker: the connection closes at its
/// next request.
pub fn session_lifetime(
    now_ms: u64,
    expires_at_ms: Option<u64>,
    max_session_ms: Option<u64>,
) -> SessionLifetime {
    let left = expires_at_ms.map(|at| at.saturating_sub(now_ms));
    let lifetime = match (left, max_session_ms.filter(|max| *max > 0)) {
        (None, None) => {
            return SessionLifetime {
                client_ms: 0,
                expires_at_ms: None,
            }
        }
        (Some(left), None) => left,
        (None, Some(max)) => max,
        (Some(left), Some(max)) => left.min(max),
    };
    SessionLifetime {
        client_ms: i64::try_from(lifetime).unwrap_or(i64::MAX),
        expires_at_ms: Some(now_ms.saturating_add(lifetime)),
    }
}

/// The SaslHandshake of a re-authentication (KIP-368) must name the mechanism the connection
/// first logged in with.
pub fn check_reauthentication_mechanism(
    previous: &Authenticated,
    next: Mechanism,
) -> Result<(), AuthFailure> {
    if previous.mechanism == next {
        return Ok(());
    }
    Err(AuthFailure::new(
        next,
        Refusal::MechanismChanged {
            previous: previous.mechanism,
            next,
        },
    ))
}

/// A re-authentication must prove the principal the connection already has: its requests
/// were authorized as that principal, and its upstream connection logged in for it.
pub fn check_reauthentication(
    previous: &Authenticated,
    next: &Authenticated,
) -> Result<(), AuthFailure> {
    check_reauthentication_mechanism(previous, next.mechanism)?;
    if previous.principal == next.principal {
        return Ok(());
    }
    Err(AuthFailure::new(
        next.mechanism,
        Refusal::PrincipalChanged {
            previous: previous.principal.clone(),
            next: next.principal.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(principal: &str, mechanism: Mechanism) -> Authenticated {
        Authenticated {
            principal: principal.into(),
            mechanism,
            expires_at_ms: None,
        }
    }

    #[test]
    fn mechanism_names_round_trip_and_are_case_sensitive() {
        for mechanism in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        }
        assert_eq!(Mechanism::from_name("scram-sha-256"), None);
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
    }

    #[test]
    fn gs2_headers_split_and_saslnames_unescape() {
        let (header, rest) = split_gs2_header("y,a=a=2Cb=3Dc,n=u,r=x", "m").unwrap();
        assert_eq!(header.text, "y,a=a=2Cb=3Dc,");
        assert_eq!(header.authzid.as_deref(), Some("a,b=c"));
        assert_eq!(rest, "n=u,r=x");
        let (header, rest) = split_gs2_header("n,,", "m").unwrap();
        assert_eq!((header.text, header.authzid, rest), ("n,,", None, ""));
        assert_eq!(
            split_gs2_header("p=tls-unique,,x", "m"),
            Err(Refusal::ChannelBinding)
        );
        for bad in ["", "n", "n,", "x,,", "n,b=c,", "n,a=,", "n,a=x=41,"] {
            assert!(
                matches!(
                    split_gs2_header(bad, "m"),
                    Err(Refusal::Malformed { message: "m", .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(unescape_saslname("=3D=2C=3D").as_deref(), Some("=,="));
        for bad in ["", "=", "=2", "=2c", "a=b", "=3Dx="] {
            assert_eq!(unescape_saslname(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn handshakes_pick_only_offered_mechanisms() {
        let offered = [Mechanism::Scram(Hash::Sha512), Mechanism::OAuthBearer];
        assert_eq!(
            select_mechanism("OAUTHBEARER", &offered),
            Ok(Mechanism::OAuthBearer)
        );
        let refused = select_mechanism("PLAIN", &offered).unwrap_err();
        assert_eq!(refused.offered, vec!["SCRAM-SHA-512", "OAUTHBEARER"]);
        assert_eq!(
            refused.to_string(),
            "the client asked for SASL mechanism \"PLAIN\"; this listener offers SCRAM-SHA-512, OAUTHBEARER"
        );
        let long = "X".repeat(5000);
        assert_eq!(
            select_mechanism(&long, &offered)
                .unwrap_err()
                .requested
                .len(),
            100
        );
    }

    #[test]
    fn clients_learn_nothing_about_what_was_wrong() {
        let unknown = AuthFailure::new(Mechanism::Scram(Hash::Sha256), Refusal::UnknownUser);
        let wrong = AuthFailure::new(Mechanism::Scram(Hash::Sha256), Refusal::BadCredentials);
        let malformed = AuthFailure::new(
            Mechanism::Scram(Hash::Sha256),
            Refusal::Malformed {
                message: "client-first-message",
                detail: "no nonce",
            },
        );
        let text = unknown.client_message(false);
        assert_eq!(
            text,
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(wrong.client_message(false), text);
        assert_eq!(malformed.client_message(false), text);
        assert!(wrong
            .client_message(true)
            .starts_with("Authentication failed during re-authentication"));
        let token = AuthFailure::new(
            Mechanism::OAuthBearer,
            Refusal::InvalidToken(JwtError::BadSignature),
        );
        assert_eq!(token.client_message(false), r#"{"status":"invalid_token"}"#);
        // Logs and audit lines do say why.
        assert_eq!(unknown.refusal.code(), "unknown_user");
        assert_eq!(
            token.to_string(),
            "OAUTHBEARER login refused: invalid token: the signature does not verify with any configured key"
        );
    }

    #[test]
    fn session_lifetime_follows_kip_368() {
        let now = 1_000_000;
        let none = session_lifetime(now, None, None);
        assert_eq!(none.client_ms, 0);
        assert_eq!(none.expires_at_ms, None);
        // The cap alone, as connections.max.reauth.ms for passwords.
        let capped = session_lifetime(now, None, Some(60_000));
        assert_eq!(
            (capped.client_ms, capped.expires_at_ms),
            (60_000, Some(1_060_000))
        );
        // The token's time left, capped.
        let token = session_lifetime(now, Some(now + 300_000), None);
        assert_eq!(token.client_ms, 300_000);
        let both = session_lifetime(now, Some(now + 300_000), Some(60_000));
        assert_eq!(both.client_ms, 60_000);
        let short = session_lifetime(now, Some(now + 5_000), Some(60_000));
        assert_eq!(
            (short.client_ms, short.expires_at_ms),
            (5_000, Some(now + 5_000))
        );
        // A cap of 0 means none, as in Kafka.
        assert_eq!(session_lifetime(now, Some(now + 10), Some(0)).client_ms, 10);
        // Past its expiry (within the clock skew): the session ends now.
        let late = session_lifetime(now, Some(now - 10), Some(60_000));
        assert_eq!((late.client_ms, late.expires_at_ms), (0, Some(now)));
    }

    #[test]
    fn reauthentication_keeps_principal_and_mechanism() {
        let first = login("alice", Mechanism::Plain);
        check_reauthentication(&first, &login("alice", Mechanism::Plain)).unwrap();
        let other = check_reauthentication(&first, &login("bob", Mechanism::Plain)).unwrap_err();
        assert_eq!(other.refusal.code(), "principal_changed");
        let switched =
            check_reauthentication(&first, &login("alice", Mechanism::OAuthBearer)).unwrap_err();
        assert_eq!(switched.refusal.code(), "mechanism_changed");
        assert!(check_reauthentication_mechanism(&first, Mechanism::Plain).is_ok());
    }

    #[test]
    fn oversized_messages_end_the_exchange() {
        let context = Context {
            credentials: None,
            jwt: None,
            now_ms: 0,
        };
        for mechanism in Mechanism::ALL {
            let mut exchange = ServerExchange::new(mechanism, "servernonce".into());
            let err = exchange
                .step(&vec![b'a'; MAX_MESSAGE_BYTES + 1], &context)
                .unwrap_err();
            assert_eq!(err.refusal.code(), "too_long");
            assert_eq!(err.mechanism, mechanism);
            let err = exchange
                .step(b"n,,\x01auth=Bearer x\x01\x01", &context)
                .unwrap_err();
            assert_eq!(err.refusal, Refusal::Finished, "{mechanism}");
        }
    }

    #[test]
    fn mechanisms_without_their_credentials_refuse() {
        let context = Context {
            credentials: None,
            jwt: None,
            now_ms: 0,
        };
        for mechanism in Mechanism::ALL {
            let mut exchange = ServerExchange::new(mechanism, "servernonce".into());
            let err = exchange.step(b"anything", &context).unwrap_err();
            assert_eq!(err.refusal, Refusal::Unavailable, "{mechanism}");
        }
    }
}

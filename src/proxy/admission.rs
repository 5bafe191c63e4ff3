//! What happens between a client's first byte and the relay, when the gateway knows who its
//! clients are (edge identity): the client logs in at the edge, with no broker in the
//! conversation (a client that cannot prove who it is never makes the gateway dial); then
//! the broker connection is opened and logged in as the identity that principal maps to,
//! before any request of the client reaches it.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cluster::route::Route;
use crate::cluster::sasl::{self, SaslSettings};
use crate::cluster::upstream::{self, BrokerStream};
use crate::config::Config;
use crate::edge::auth::audit::{self, Event};
use crate::edge::auth::config::UpstreamIdentity;
use crate::edge::login::{self, Answer, EdgeAuth, Login, Refused};
use crate::gateway::Gateway;
use crate::proxy::frame;
use crate::proxy::session::{SessionError, Side};

/// How long a client may take to log in, from its first byte to its last login request.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A client that may relay.
pub struct Admitted {
    /// Who the client is (its login, its certificate, or [`login::ANONYMOUS`]); `None`
    /// without edge identity, when clients authenticate with the brokers end to end.
    pub principal: Option<String>,
    /// The login, which answers the client's re-authentication while it relays.
    pub login: Option<Login>,
    /// When the session ends unless the client logs in again (ms since the epoch).
    pub expires_at_ms: Option<u64>,
    /// What the client sent after its login, for the relay to go on with.
    pub buffered: BytesMut,
}

impl Admitted {
    fn as_is(principal: Option<String>) -> Admitted {
        Admitted {
            principal,
            login: None,
            expires_at_ms: None,
            buffered: BytesMut::new(),
        }
    }
}

/// Admits a client: without edge identity at once; with it, once it has logged in (SASL at
/// the gateway, or its certificate by the mapping rules).
pub async fn admit<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    certificate: Option<&[u8]>,
    peer: SocketAddr,
    config: &Config,
    gw: &Gateway,
) -> Result<Admitted, SessionError> {
    if config.identity.is_none() {
        return Ok(Admitted::as_is(None));
    }
    let Some(auth) = gw.edge_auth() else {
        // A policy or upstream identities, but no client login: every client is anonymous.
        return Ok(Admitted::as_is(Some(login::ANONYMOUS.to_owned())));
    };
    let from_certificate = match (certificate, auth.checks_certificates()) {
        (_, false) => None,
        (Some(der), true) => match auth.certificate_principal(der) {
            Some(Ok(principal)) => Some(principal),
            Some(Err(reason)) => {
                record(gw, peer, None, "mtls", false, "no_matching_rule");
                return Err(SessionError::Certificate(reason));
            }
            None => None,
        },
        (None, true) if !auth.uses_sasl() => {
            record(gw, peer, None, "mtls", false, "no_certificate");
            return Err(SessionError::Certificate(
                "the client presented no certificate".into(),
            ));
        }
        (None, true) => None,
    };
    if !auth.uses_sasl() {
        record(gw, peer, from_certificate.as_deref(), "mtls", true, "ok");
        return Ok(Admitted::as_is(from_certificate));
    }
    log_in(client, &auth, peer, config, gw).await
}

/// The login conversation: the edge answers ApiVersions, SaslHandshake and SaslAuthenticate
/// until the client has logged in, failed, or sent anything else.
async fn log_in<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    auth: &std::sync::Arc<EdgeAuth>,
    peer: SocketAddr,
    config: &Config,
    gw: &Gateway,
) -> Result<Admitted, SessionError> {
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let mut login = Login::new(auth.clone());
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head = loop {
            let peeked = frame::peek_request(&buf, config.max_frame_bytes).map_err(|source| {
                SessionError::Exchange(crate::proxy::exchange::ExchangeError::Frame {
                    side: Side::Client,
                    source,
                })
            })?;
            match peeked {
                Some(head) => break head,
                None => read_more(client, &mut buf, deadline).await?,
            }
        };
        if head.frame_len > MAX_LOGIN_FRAME {
            return Err(SessionError::Login(Refused::Malformed {
                what: "oversized login",
            }));
        }
        while buf.len() < head.frame_len {
            read_more(client, &mut buf, deadline).await?;
        }
        let frame = buf.split_to(head.frame_len).freeze();
        let versions = gw.cluster_versions();
        // PLAIN derives a key from the password (thousands of hash rounds): off the thread
        // that runs the sessions.
        let answer;
        (login, answer) = tokio::task::spawn_blocking(move || {
            let answer = login.handle(&head, &frame, versions.as_deref());
            (login, answer)
        })
        .await
        .map_err(|e| SessionError::Interrupted(e.to_string()))?;
        match answer {
            Answer::Reply(reply) => write(client, &reply).await?,
            Answer::Refuse { reply, why } => {
                if let Some(reply) = reply {
                    write(client, &reply).await?;
                }
                if matches!(why, Refused::Failed(_) | Refused::Unsupported(_)) {
                    record(gw, peer, None, why.mechanism(), false, why.code());
                }
                return Err(SessionError::Login(why));
            }
            Answer::LoggedIn {
                reply,
                who,
                expires_at_ms,
            } => {
                write(client, &reply).await?;
                record(
                    gw,
                    peer,
                    Some(&who.principal),
                    who.mechanism.name(),
                    true,
                    "ok",
                );
                return Ok(Admitted {
                    principal: Some(who.principal),
                    login: Some(login),
                    expires_at_ms,
                    buffered: buf,
                });
            }
        }
    }
}

/// The largest request a login reads: SASL messages are small.
const MAX_LOGIN_FRAME: usize = 1024 * 1024;

async fn read_more<S: AsyncRead + Unpin>(
    client: &mut S,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
) -> Result<(), SessionError> {
    buf.reserve(4096);
    match tokio::time::timeout_at(deadline, client.read_buf(buf)).await {
        Ok(Ok(0)) => Err(SessionError::Closed {
            side: Side::Client,
            when: "while logging in",
        }),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(SessionError::Io {
            side: Side::Client,
            source,
        }),
        Err(_) => Err(SessionError::Idle {
            side: Side::Client,
            after: LOGIN_TIMEOUT,
            when: "while logging in",
        }),
    }
}

async fn write<S: AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) -> Result<(), SessionError> {
    let written = async {
        client.write_all(bytes).await?;
        client.flush().await
    };
    written.await.map_err(|source| SessionError::Io {
        side: Side::Client,
        source,
    })
}

/// A login's outcome, counted, audited and (when refused) logged, a few lines a minute.
pub(crate) fn record(
    gw: &Gateway,
    peer: SocketAddr,
    principal: Option<&str>,
    mechanism: &'static str,
    allowed: bool,
    reason: &str,
) {
    gw.metrics.authentication(mechanism, allowed);
    if let Some(log) = gw.audit() {
        log.record(audit::line(
            &Event::Authentication {
                principal,
                client: peer,
                mechanism,
                allowed,
                reason,
            },
            SystemTime::now(),
        ));
    }
    if !allowed {
        if let Some(quiet) = gw.log_throttle.admit("login_failed", Instant::now()) {
            tracing::warn!(client.addr = %peer, mechanism, reason, side = "client", "client {} failed to log in with {mechanism}: {reason}{}", peer.ip(), crate::ops::throttle::unlogged(quiet));
        }
    }
}

/// Dials the broker of `route` and logs in as the identity the client's principal maps to,
/// before any request of the client goes to it.
pub async fn dial(
    route: Route,
    admitted: &Admitted,
    config: &Config,
    gw: &Gateway,
) -> Result<(BrokerStream, String), SessionError> {
    let (mut broker, addr) = upstream::dial(route, gw)
        .await
        .inspect_err(|_| gw.metrics.connect_failure())?;
    if let Some(settings) = upstream_login(admitted, config) {
        sasl::authenticate(&mut broker, settings, config.max_frame_bytes)
            .await
            .map_err(|e| SessionError::UpstreamLogin(e.to_string()))?;
    }
    Ok((broker, addr))
}

/// The login the broker connection of this client takes, if any.
fn upstream_login<'a>(admitted: &Admitted, config: &'a Config) -> Option<&'a SaslSettings> {
    let identity = config.identity.as_ref()?;
    let principal = admitted.principal.as_deref()?;
    match identity.upstream.for_principal(principal) {
        UpstreamIdentity::AsIs => None,
        UpstreamIdentity::Service => config.upstream_sasl.as_ref(),
        UpstreamIdentity::Sasl(settings) => Some(settings),
    }
}

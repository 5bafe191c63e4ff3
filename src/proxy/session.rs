//! One client connection paired with one broker connection, and the two pumps between them.
//!
//! The pumps only do I/O: read, hand the bytes to the [`Exchange`], carry out the step it
//! returns, arm timers. Both stream: bytes of a frame are forwarded as they arrive, so a
//! connection never holds more than its buffer, however large the frame; the only frames held
//! whole are the answers the exchange hands out to be rewritten.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tracing::Instrument;

use crate::cluster::route::Route;
use crate::cluster::upstream::UpstreamError;
use crate::config::Config;
use crate::edge::auth::audit::{self, AuditLog, Event};
use crate::edge::auth::verdict::Denial;
use crate::edge::login::{self, Answer, Login, Refused};
use crate::edge::proxy_protocol::{self, ProxyError};
use crate::edge::sniff::{self, Heard, Mistake};
use crate::gateway::Gateway;
use crate::ops::metrics::{Metrics, Refusal, RouteCounters};
use crate::ops::throttle;
use crate::proxy::admission::{self, Admitted};
use crate::proxy::deadline::Deadline;
pub use crate::proxy::exchange::Side;
use crate::proxy::exchange::{Authorizer, Exchange, ExchangeError, Idle, Limits, Observer, Step};
use crate::proxy::frame;
use crate::proxy::splice::{self, Stop};
use crate::proxy::transport::{Connection, Reader, Writer};
use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] UpstreamError),
    #[error("{side} i/o: {source}")]
    Io { side: Side, source: io::Error },
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("{side} sent nothing for {after:?} {when}")]
    Idle {
        side: Side,
        after: Duration,
        when: &'static str,
    },
    #[error("{side} read nothing for {after:?}")]
    Stalled { side: Side, after: Duration },
    #[error("{side} closed the connection {when}")]
    Closed { side: Side, when: &'static str },
    #[error(transparent)]
    Tls(TlsError),
    #[error("{}", .0.explain())]
    Mistake(Mistake),
    #[error("client login refused: {0}")]
    Login(Refused),
    #[error("client certificate refused: {0}")]
    Certificate(String),
    #[error("cannot log in to the broker as the client's identity: {0}")]
    UpstreamLogin(String),
    #[error("the client's session expired without it logging in again")]
    SessionExpired,
    #[error("a blocking task was interrupted: {0}")]
    Interrupted(String),
}

impl SessionError {
    pub fn side(&self) -> Side {
        match self {
            SessionError::Connect(_) => Side::Broker,
            SessionError::Io { side, .. }
            | SessionError::Idle { side, .. }
            | SessionError::Stalled { side, .. }
            | SessionError::Closed { side, .. } => *side,
            SessionError::Exchange(e) => e.side(),
            SessionError::Tls(_)
            | SessionError::Mistake(_)
            | SessionError::Login(_)
            | SessionError::Certificate(_)
            | SessionError::SessionExpired => Side::Client,
            SessionError::UpstreamLogin(_) => Side::Broker,
            SessionError::Interrupted(_) => Side::Gateway,
        }
    }

    /// A client going away, or falling silent, is ordinary life for a proxy, and so is a
    /// broker closing a connection that owes nothing; an operator need not see them. A broker
    /// that vanishes or stalls with a response due is worth a warning.
    pub fn is_hangup(&self) -> bool {
        match self {
            SessionError::Closed { side, when } => *side == Side::Client || *when == BROKER_IDLE,
            SessionError::Idle { side, .. } => *side == Side::Client,
            SessionError::Io { side, source } => {
                *side == Side::Client
                    && matches!(
                        source.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    )
            }
            _ => false,
        }
    }

    /// The client mistake behind this error, when it is one worth telling the operator about
    /// in words (and counting by kind).
    fn mistake(&self) -> Option<Mistake> {
        match self {
            SessionError::Login(Refused::NotLoggedIn { .. }) => Some(Mistake::NotLoggedIn),
            SessionError::Mistake(mistake) => Some(*mistake),
            SessionError::Exchange(ExchangeError::SaslHandshakeV0) => {
                Some(Mistake::SaslHandshakeV0)
            }
            SessionError::Tls(
                TlsError::Handshake(_)
                | TlsError::HandshakeTimeout(_)
                | TlsError::NoServerName
                | TlsError::UnknownName { .. }
                | TlsError::UnknownNode { .. },
            ) => Some(Mistake::TlsHandshake),
            _ => None,
        }
    }
}

/// How a broker's close reads when nothing was due.
const BROKER_IDLE: &str = "while idle";

fn io_error(side: Side) -> impl FnOnce(io::Error) -> SessionError {
    move |source| SessionError::Io { side, source }
}

/// How long a PROXY protocol header, and the first bytes that tell a wrong protocol, may take
/// to arrive.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one client connection to completion and logs how it ended. With client TLS on, the
/// handshake happens here, in the connection's own task and under its own timeout, so a
/// slow handshake holds up no one else; in SNI mode it also decides the route.
pub async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    route: Route,
    gw: Arc<Gateway>,
    _permit: OwnedSemaphorePermit,
) {
    // The rules this connection lives by, whatever a reload changes meanwhile.
    let config = gw.config();
    // Behind a load balancer, the real client is in the PROXY header, not the socket.
    let header = proxy_protocol::read_header(&mut client, config.proxy_protocol);
    let peer = match tokio::time::timeout(HEADER_TIMEOUT, header).await {
        Ok(Ok(real)) => real.unwrap_or(peer),
        Ok(Err(ProxyError::Io(e))) => {
            tracing::debug!(client.addr = %peer, %route, "connection failed before its PROXY protocol header: {e}");
            return;
        }
        Ok(Err(ProxyError::Missing)) => {
            return refuse(&gw, peer, route, Mistake::ProxyHeaderMissing, None);
        }
        Ok(Err(e @ ProxyError::Malformed(_))) => {
            return refuse(&gw, peer, route, Mistake::ProxyHeaderMalformed, Some(e));
        }
        Err(_) => {
            tracing::debug!(client.addr = %peer, %route, "no PROXY protocol header within {HEADER_TIMEOUT:?}");
            return;
        }
    };
    // Judged before dialing any broker: a wrong or silent client costs the cluster nothing.
    let (judge, limit) = match gw.client_tls() {
        None => (sniff::plaintext as fn(&[u8]) -> _, config.idle_timeout),
        Some(tls) => (sniff::tls as fn(&[u8]) -> _, tls.handshake_timeout()),
    };
    match sniff::first_bytes(&client, judge, limit).await {
        Ok(Heard::Fine) => {}
        Ok(Heard::Nothing) => {
            tracing::debug!(client.addr = %peer, %route, "client sent nothing for {limit:?}");
            return;
        }
        Err(mistake) => return refuse(&gw, peer, route, mistake, None),
    }
    let span = tracing::debug_span!("session", client.addr = %peer, %route);
    async move {
        let (route, ended) = match gw.client_tls() {
            None => (route, counted(client, None, peer, route, &config, &gw).await),
            Some(tls) => match tls.accept(client, route, |id| gw.upstream_of(id).is_some()).await {
                Ok((stream, route)) => {
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| leaf.to_vec());
                    (route, counted(stream, certificate, peer, route, &config, &gw).await)
                }
                Err(e) => (route, Err(SessionError::Tls(e))),
            },
        };
        match ended {
            Ok(()) => tracing::debug!("session ended"),
            Err(e) if e.is_hangup() => tracing::debug!(side = %e.side(), "session ended: {e}"),
            // Counted, audited and logged (throttled) where the login failed.
            Err(SessionError::Login(Refused::Failed(_) | Refused::Unsupported(_))) => {}
            // A refusal that closed the connection: audited and counted where it was
            // decided; logged a few lines a minute, so a client retrying cannot flood it.
            Err(e @ SessionError::Exchange(
                ExchangeError::Denied { .. }
                | ExchangeError::Refused { .. }
                | ExchangeError::NotLoggedIn { .. },
            )) => {
                gw.metrics.error(e.side());
                if let Some(quiet) = gw.log_throttle.admit("policy_close", Instant::now()) {
                    tracing::warn!(client.addr = %peer, %route, side = %e.side(), "closing connection: {e}{}", throttle::unlogged(quiet));
                }
            }
            Err(e) => {
                gw.metrics.error(e.side());
                match e.mistake() {
                    Some(mistake) => log_mistake(&gw, peer, route, mistake, &e),
                    None => {
                        tracing::warn!(client.addr = %peer, %route, side = %e.side(), "closing connection: {e}");
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Closes a connection that went wrong before its first Kafka byte, saying why.
fn refuse(
    gw: &Gateway,
    peer: SocketAddr,
    route: Route,
    mistake: Mistake,
    detail: Option<ProxyError>,
) {
    gw.metrics.error(Side::Client);
    let detail = detail.map_or(String::new(), |d| format!(" ({d})"));
    log_mistake(gw, peer, route, mistake, &detail);
}

/// One line per mistake, a few per kind and minute at most, and always a count by kind.
fn log_mistake(
    gw: &Gateway,
    peer: SocketAddr,
    route: Route,
    mistake: Mistake,
    detail: &dyn std::fmt::Display,
) {
    gw.metrics.refused(Refusal::Mistake(mistake));
    let Some(quiet) = gw.log_throttle.admit(mistake.kind(), Instant::now()) else {
        return;
    };
    let detail = detail.to_string();
    let detail = if detail.is_empty() || detail == mistake.explain() {
        String::new()
    } else {
        format!(": {detail}")
    };
    tracing::warn!(
        client.addr = %peer,
        %route,
        side = "client",
        kind = mistake.kind(),
        "{}{detail}{}",
        sniff::describe(mistake, peer),
        throttle::unlogged(quiet)
    );
}

/// [`run`], counted in the connection metrics by route and by the side that ended it, and
/// listed in `/connections` while it runs.
async fn counted<C: Connection + AsyncRead + AsyncWrite + Unpin>(
    client: C,
    certificate: Option<Vec<u8>>,
    peer: SocketAddr,
    route: Route,
    config: &Config,
    gw: &Gateway,
) -> Result<(), SessionError> {
    gw.metrics.connection_opened(route);
    let counters = gw.metrics.open_connection(peer, route);
    let ended = run(
        client,
        certificate.as_deref(),
        peer,
        route,
        &counters,
        config,
        gw,
    )
    .await;
    let side = ended
        .as_ref()
        .err()
        .map_or(Side::Client, SessionError::side);
    gw.metrics.connection_closed(route, side);
    ended
}

async fn run<C: Connection + AsyncRead + AsyncWrite + Unpin>(
    mut client: C,
    certificate: Option<&[u8]>,
    peer: SocketAddr,
    route: Route,
    counters: &RouteCounters,
    config: &Config,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let admitted = admission::admit(&mut client, certificate, peer, config, gw).await?;
    if let Some(principal) = &admitted.principal {
        counters.set_principal(principal);
    }
    let (broker, broker_addr) = admission::dial(route, &admitted, config, gw).await?;
    tracing::debug!(broker.addr = %broker_addr, principal = admitted.principal.as_deref(), "connected upstream");
    pumps(client, broker, counters, config, gw, admitted, peer).await
}

/// What the two pumps of a session share: the exchange, and a way for each to wake the other
/// when the exchange changed in a way it waits on.
struct Shared {
    exchange: Mutex<Exchange>,
    /// The response pump: an answer of the gateway's own is due, or requests closed.
    wake_responses: Notify,
    /// The request pump: answers went out, so a full client may send again.
    wake_requests: Notify,
    /// The client's login at the edge, which answers its re-authentication; taken out while
    /// it answers one request.
    login: Mutex<Option<Login>>,
    /// When the session ends unless the client logs in again (ms since the epoch).
    expires_at_ms: Mutex<Option<u64>>,
    expiry_moved: Notify,
    /// Why the edge refused the client mid-session: the session ends once that answer is out.
    refused: Mutex<Option<Refused>>,
    peer: SocketAddr,
}

/// Both pumps run on one task, so these locks are never contended; they only make the
/// shared state `Send` for the worker threads.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn exchange(&self) -> MutexGuard<'_, Exchange> {
        lock(&self.exchange)
    }
}

/// The metrics of one route, as the exchange reports frames going by, and the audit log of
/// the requests the policy refuses.
struct Counting<'a> {
    metrics: &'a Metrics,
    counters: &'a RouteCounters,
    audit: Option<&'a AuditLog>,
    principal: Option<&'a str>,
    peer: SocketAddr,
}

impl Observer for Counting<'_> {
    fn request(&self, api_key: i16, bytes: usize) {
        self.metrics.request(self.counters, api_key, bytes);
    }

    fn response(&self, api_key: i16, bytes: usize, waited: Duration) {
        self.metrics.response(self.counters, api_key, bytes, waited);
    }

    fn rewrite(&self, api_key: i16, ok: bool) {
        self.metrics.rewrite(api_key, ok);
    }

    fn client_id(&self, id: &str) {
        self.counters.set_client_id(id);
    }

    fn denied(&self, api_key: i16, denial: &Denial<'_>, answered: bool) {
        self.metrics.authorization_denied(api_key, &denial.target);
        let api = api_name(api_key);
        tracing::debug!(
            principal = self.principal,
            api_key,
            reason = denial.reason,
            answered,
            "request refused by the policy"
        );
        if let Some(log) = self.audit {
            log.record(audit::line(
                &Event::Denial {
                    principal: self.principal.unwrap_or_default(),
                    client: self.peer,
                    api: &api,
                    operation: denial.operation,
                    target: denial.target,
                    reason: denial.reason,
                    error_code: answered.then_some(denial.error),
                },
                SystemTime::now(),
            ));
        }
    }
}

/// An API's name as Kafka's specs spell it (`Produce`), for audit lines.
fn api_name(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| format!("ApiKey{api_key}"), |api| format!("{api:?}"))
}

/// The two pumps between a client and the broker of its route, until either side ends.
/// Public so that benchmarks can run it over in-memory streams.
pub async fn relay<C: Connection, B: Connection>(
    client: C,
    broker: B,
    route: Route,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let counters = gw.metrics.route_counters(route);
    let admitted = Admitted {
        principal: None,
        login: None,
        expires_at_ms: None,
        buffered: BytesMut::new(),
    };
    let nobody = SocketAddr::from(([0, 0, 0, 0], 0));
    pumps(
        client,
        broker,
        &counters,
        &gw.config(),
        gw,
        admitted,
        nobody,
    )
    .await
}

async fn pumps<C: Connection, B: Connection>(
    client: C,
    broker: B,
    counters: &RouteCounters,
    config: &Config,
    gw: &Gateway,
    admitted: Admitted,
    peer: SocketAddr,
) -> Result<(), SessionError> {
    let counting = Counting {
        metrics: &gw.metrics,
        counters,
        audit: gw.audit(),
        principal: admitted.principal.as_deref(),
        peer,
    };
    let limits = Limits {
        max_frame: config.max_frame_bytes,
        max_held: config.max_rewrite_bytes,
        max_in_flight: MAX_IN_FLIGHT,
    };
    let mut exchange = Exchange::new(limits, Instant::now());
    if admitted.login.is_some() {
        exchange = exchange.with_edge_login();
    }
    // The policy of the configuration this connection was admitted under, to its end.
    if let Some(policy) = config.identity.as_ref().and_then(|i| i.policy.clone()) {
        exchange = exchange.with_authorizer(Authorizer {
            policy,
            principal: admitted.principal.clone(),
            topics: gw.topic_ids.clone(),
        });
    }
    let shared = Shared {
        exchange: Mutex::new(exchange),
        wake_responses: Notify::new(),
        wake_requests: Notify::new(),
        login: Mutex::new(admitted.login),
        expires_at_ms: Mutex::new(admitted.expires_at_ms),
        expiry_moved: Notify::new(),
        refused: Mutex::new(None),
        peer,
    };
    let (client_rd, client_wr) = client.into_halves();
    let (broker_rd, broker_wr) = broker.into_halves();
    // Two pumps on one task: a session never needs more than one core.
    let relayed = async {
        tokio::try_join!(
            requests(
                client_rd,
                broker_wr,
                admitted.buffered,
                &shared,
                &counting,
                config,
                gw
            ),
            responses(broker_rd, client_wr, &shared, &counting, config, gw)
        )
    };
    tokio::select! {
        relayed = relayed => relayed?,
        expired = expiry(&shared) => return Err(expired),
    };
    let refused = lock(&shared.refused).take();
    match refused {
        Some(why) => Err(SessionError::Login(why)),
        None => Ok(()),
    }
}

/// Ends the session when the client's login expires without it logging in again (KIP-368);
/// never, for a login that does not expire.
async fn expiry(shared: &Shared) -> SessionError {
    loop {
        let at = *lock(&shared.expires_at_ms);
        let Some(at_ms) = at else {
            shared.expiry_moved.notified().await;
            continue;
        };
        let left = Duration::from_millis(at_ms.saturating_sub(login::now_ms()));
        if left.is_zero() {
            return SessionError::SessionExpired;
        }
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = shared.expiry_moved.notified() => {}
        }
    }
}

/// Answers a login request the exchange intercepted (re-authentication, ApiVersions) with
/// the client's login, and hands the answer back to the exchange.
async fn answer_login(frame: Bytes, shared: &Shared, gw: &Gateway) -> Result<(), SessionError> {
    let head = frame::peek_request(&frame, usize::MAX)
        .ok()
        .flatten()
        .ok_or(ExchangeError::NotRewritten)?;
    let login = lock(&shared.login)
        .take()
        .ok_or_else(|| SessionError::Interrupted("no login to answer with".into()))?;
    let versions = gw.cluster_versions();
    // PLAIN derives a key from the password: off the thread that runs the sessions.
    let (login, answer) = tokio::task::spawn_blocking(move || {
        let mut login = login;
        let answer = login.handle(&head, &frame, versions.as_deref());
        (login, answer)
    })
    .await
    .map_err(|e| SessionError::Interrupted(e.to_string()))?;
    *lock(&shared.login) = Some(login);
    let reply = match answer {
        Answer::Reply(reply) => reply,
        Answer::LoggedIn {
            reply,
            who,
            expires_at_ms,
        } => {
            *lock(&shared.expires_at_ms) = expires_at_ms;
            shared.expiry_moved.notify_one();
            admission::record(
                gw,
                shared.peer,
                Some(&who.principal),
                who.mechanism.name(),
                true,
                "ok",
            );
            reply
        }
        Answer::Refuse { reply, why } => {
            admission::record(gw, shared.peer, None, why.mechanism(), false, why.code());
            *lock(&shared.refused) = Some(why);
            reply.unwrap_or_default()
        }
    };
    shared.exchange().answer_intercepted(reply);
    shared.wake_responses.notify_one();
    Ok(())
}

/// Answers a client may be owed before the gateway stops reading its requests. Clients keep
/// about five in flight; the rest is headroom for pipelining tools.
const MAX_IN_FLIGHT: usize = 1024;

/// A pump's idle limit, and the one timer that enforces it on every read and write.
struct Watch {
    idle: Duration,
    deadline: Deadline,
}

impl Watch {
    fn new(idle: Duration) -> Watch {
        Watch {
            idle,
            deadline: Deadline::new(),
        }
    }

    /// Reads from `side` into `buf`. When the peer stays silent for a while, `silence` says
    /// whether that is idleness (the read fails) or how much longer to wait: only the
    /// exchange knows whether the peer owes anything.
    async fn read<R: AsyncRead + Unpin>(
        &mut self,
        side: Side,
        rd: &mut R,
        buf: &mut BytesMut,
        silence: impl Fn(Instant, Duration) -> Result<Duration, Idle>,
    ) -> Result<usize, SessionError> {
        let idle = self.idle;
        let read = rd.read_buf(buf);
        tokio::pin!(read);
        let mut limit = idle;
        loop {
            match self.deadline.within(limit, &mut read).await {
                Ok(done) => return done.map_err(io_error(side)),
                Err(_) => {
                    limit = silence(Instant::now(), idle).map_err(|stop| SessionError::Idle {
                        side: stop.side,
                        after: idle,
                        when: stop.when,
                    })?;
                }
            }
        }
    }

    /// Writes all of `bytes` to `side`, failing when the peer reads nothing for the idle limit.
    async fn write<W: AsyncWrite + Unpin>(
        &mut self,
        side: Side,
        wr: &mut W,
        bytes: &[u8],
    ) -> Result<(), SessionError> {
        // The flush is free on TCP and pushes out what TLS still holds in its record buffer.
        let write = async {
            wr.write_all(bytes).await?;
            wr.flush().await
        };
        let idle = self.idle;
        self.deadline
            .within(idle, write)
            .await
            .map_err(|_| SessionError::Stalled { side, after: idle })?
            .map_err(io_error(side))
    }

    /// Writes the first `ready` bytes of `buf` and drops them from it.
    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        side: Side,
        wr: &mut W,
        buf: &mut BytesMut,
        ready: &mut usize,
    ) -> Result<(), SessionError> {
        if *ready > 0 {
            self.write(side, wr, &buf[..*ready]).await?;
            buf.advance(*ready);
            *ready = 0;
        }
        Ok(())
    }
}

/// The two ends of a pump, for errors in a transfer between them.
struct Ends {
    sender: Side,
    receiver: Side,
    /// How a sender's close reads.
    when: &'static str,
}

/// Moves the unread `left` bytes of a frame socket to socket when both ends are plain TCP and
/// the rest is large enough to pay for it; says whether it did. Only with nothing buffered:
/// then the frame's next byte is the next one in the socket.
async fn splice_rest<A, B>(
    rd: &Reader<A>,
    wr: &Writer<B>,
    buf: &BytesMut,
    left: usize,
    ends: Ends,
    watch: &mut Watch,
    gw: &Gateway,
) -> Result<bool, SessionError> {
    if left < splice::MIN_BYTES || !buf.is_empty() {
        return Ok(false);
    }
    let (Some(from), Some(to)) = (rd.tcp(), wr.tcp()) else {
        return Ok(false);
    };
    let Some(mut pipe) = gw.pipes.take() else {
        return Ok(false);
    };
    let idle = watch.idle;
    pipe.transfer(from, to, left, idle, &mut watch.deadline)
        .await
        .map_err(|stop| match stop {
            Stop::SenderIdle => SessionError::Idle {
                side: ends.sender,
                after: idle,
                when: ends.when,
            },
            Stop::SenderClosed => SessionError::Closed {
                side: ends.sender,
                when: ends.when,
            },
            Stop::Sender(e) => io_error(ends.sender)(e),
            Stop::ReceiverStalled => SessionError::Stalled {
                side: ends.receiver,
                after: idle,
            },
            Stop::Receiver(e) => io_error(ends.receiver)(e),
        })?;
    gw.pipes.put(pipe);
    gw.metrics.spliced(left);
    Ok(true)
}

/// Client -> broker. Every byte is forwarded as it arrives, with the gateway's correlation id
/// in each request head, apart from requests the gateway answers itself.
async fn requests<A: AsyncRead, B: AsyncWrite>(
    mut rd: Reader<A>,
    mut wr: Writer<B>,
    buffered: BytesMut,
    shared: &Shared,
    counting: &Counting<'_>,
    config: &Config,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let mut watch = Watch::new(config.idle_timeout);
    // When the bytes in `buf` came: read once per read, not once per frame (the clock is
    // the largest per-frame cost in the pump benchmark).
    let mut arrived = Instant::now();
    let mut buf = buffered;
    buf.reserve(config.buffer_bytes);
    loop {
        let mut ready = 0;
        let full = loop {
            let step = shared
                .exchange()
                .on_client(&mut buf[ready..], arrived, counting)?;
            match step {
                Step::Forward(n) => ready += n,
                Step::Replace { consumed, with } => {
                    watch
                        .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
                        .await?;
                    if !with.is_empty() {
                        watch.write(Side::Broker, &mut wr, &with).await?;
                    }
                    buf.advance(consumed);
                    // An answer of the gateway's own may now be due.
                    shared.wake_responses.notify_one();
                }
                Step::Wait { need } => {
                    buf.reserve(need.saturating_sub(buf.len()));
                    break false;
                }
                Step::Full => break true,
                Step::Intercept { len } => {
                    watch
                        .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
                        .await?;
                    let frame = buf.split_to(len).freeze();
                    answer_login(frame, shared, gw).await?;
                    if lock(&shared.refused).is_some() {
                        return close_requests(shared);
                    }
                }
                Step::Rewrite { .. } | Step::Pause => {
                    return Err(ExchangeError::NotRewritten.into())
                }
            }
        };
        watch
            .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
            .await?;
        let left = shared.exchange().request_passthrough();
        let ends = Ends {
            sender: Side::Client,
            receiver: Side::Broker,
            when: "in the middle of a request",
        };
        if splice_rest(&rd, &wr, &buf, left, ends, &mut watch, gw).await? {
            shared.exchange().request_passed(left, Instant::now());
            continue;
        }
        if full {
            // Answers going out make room; the client's bytes wait in its socket meanwhile.
            shared.wake_requests.notified().await;
            continue;
        }

        let at_boundary = shared.exchange().at_request_boundary();
        buf.reserve(config.buffer_bytes);
        // Shutdown stops new requests only between frames, after forwarding what the client
        // had already sent; the response pump then drains what is in flight. An incomplete
        // head left in the buffer was never forwarded, so the broker stays in step.
        if at_boundary && gw.shutdown.is_cancelled() {
            // A zero timeout polls the read once: bytes already here, or nothing.
            match tokio::time::timeout(Duration::ZERO, rd.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                Ok(Ok(_)) | Err(_) => return close_requests(shared),
                Ok(Err(e)) => return Err(io_error(Side::Client)(e)),
            }
        }
        let read = tokio::select! {
            _ = gw.shutdown.cancelled(), if at_boundary => continue,
            read = watch.read(Side::Client, &mut rd, &mut buf, |now, limit| {
                shared.exchange().client_silence(now, limit)
            }) => read?,
        };
        if read == 0 {
            if !buf.is_empty() || !at_boundary {
                return Err(SessionError::Closed {
                    side: Side::Client,
                    when: "in the middle of a request",
                });
            }
            // A client that shuts down its sending side still gets every answer it is owed.
            return close_requests(shared);
        }
        arrived = Instant::now();
    }
}

/// No more requests: the response pump delivers what is owed and ends the session.
fn close_requests(shared: &Shared) -> Result<(), SessionError> {
    shared.exchange().close_requests();
    shared.wake_responses.notify_one();
    Ok(())
}

/// Broker -> client. Each answer is attributed by the gateway's correlation id, streamed
/// through with the client's id put back, or held and rewritten when it names brokers.
async fn responses<A: AsyncRead, B: AsyncWrite>(
    mut rd: Reader<A>,
    mut wr: Writer<B>,
    shared: &Shared,
    counting: &Counting<'_>,
    config: &Config,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let mut watch = Watch::new(config.idle_timeout);
    let mut arrived = Instant::now();
    let mut buf = BytesMut::with_capacity(config.buffer_bytes);
    loop {
        let mut ready = 0;
        // The next answer due is one the edge has not given yet: the broker's wait.
        let mut paused = false;
        loop {
            let step = shared
                .exchange()
                .on_broker(&mut buf[ready..], arrived, counting)?;
            match step {
                Step::Forward(n) => ready += n,
                Step::Replace { consumed, with } => {
                    watch
                        .flush(Side::Client, &mut wr, &mut buf, &mut ready)
                        .await?;
                    if !with.is_empty() {
                        watch.write(Side::Client, &mut wr, &with).await?;
                    }
                    buf.advance(consumed);
                }
                Step::Rewrite { len } => {
                    watch
                        .flush(Side::Client, &mut wr, &mut buf, &mut ready)
                        .await?;
                    let held = buf.split_to(len).freeze();
                    let rewritten = shared
                        .exchange()
                        .rewrite_held(held, arrived, gw, counting)?;
                    watch.write(Side::Client, &mut wr, &rewritten).await?;
                    if len > config.buffer_bytes {
                        // Let go of the room a large answer took: idle connections hold only
                        // their usual buffer.
                        buf = refit(buf, config.buffer_bytes);
                    }
                }
                Step::Wait { need } => {
                    buf.reserve(need.saturating_sub(buf.len()));
                    break;
                }
                Step::Pause => {
                    paused = true;
                    break;
                }
                Step::Full | Step::Intercept { .. } => break,
            }
            shared.wake_requests.notify_one();
        }
        watch
            .flush(Side::Client, &mut wr, &mut buf, &mut ready)
            .await?;
        let left = shared.exchange().response_passthrough();
        let ends = Ends {
            sender: Side::Broker,
            receiver: Side::Client,
            when: "with a response due",
        };
        if splice_rest(&rd, &wr, &buf, left, ends, &mut watch, gw).await? {
            shared.exchange().response_passed(left, Instant::now());
            shared.wake_requests.notify_one();
            continue;
        }
        if shared.exchange().finished() {
            return Ok(());
        }

        buf.reserve(config.buffer_bytes);
        let read = tokio::select! {
            _ = shared.wake_responses.notified() => continue,
            read = watch.read(Side::Broker, &mut rd, &mut buf, |now, limit| {
                shared.exchange().broker_silence(now, limit)
            }), if !paused => read?,
        };
        if read == 0 {
            let owes = shared.exchange().broker_owes();
            return Err(SessionError::Closed {
                side: Side::Broker,
                when: if owes {
                    "with a response due"
                } else {
                    BROKER_IDLE
                },
            });
        }
        arrived = Instant::now();
    }
}

/// A buffer of the usual size holding what `buf` still holds, so that the allocation a large
/// answer grew is freed.
fn refit(buf: BytesMut, capacity: usize) -> BytesMut {
    let mut fresh = BytesMut::with_capacity(capacity.max(buf.len()));
    fresh.extend_from_slice(&buf);
    fresh
}

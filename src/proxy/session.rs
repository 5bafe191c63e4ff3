//! One client connection paired with one broker connection, and the two pumps between them.
//!
//! Both pumps stream: bytes of a frame are forwarded as they arrive, so a connection never
//! holds more than its buffer, however large the frame. The only frames held whole are the
//! responses that name brokers, which must be decoded to be rewritten.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_protocol::protocol::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::Instrument;

use crate::cluster::route::Route;
use crate::cluster::upstream::{self, UpstreamError};
use crate::edge::proxy_protocol;
use crate::gateway::Gateway;
use crate::ops::metrics::{Refusal, RouteCounters};
use crate::proxy::deadline::Deadline;
use crate::proxy::frame::{self, FrameError};
use crate::proxy::inflight::{self, Expect, Owed, Unanswered};
use crate::proxy::splice::{self, Stop};
use crate::proxy::transport::{Connection, Reader, Writer};
use crate::rewrite::{self, api_versions, Rewrite, RewriteError};
use crate::tls::TlsError;

/// Whose side a failure came from, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Broker,
    Gateway,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Broker => "broker",
            Side::Gateway => "gateway",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] UpstreamError),
    #[error("{side} i/o: {source}")]
    Io { side: Side, source: io::Error },
    #[error("{side} sent a bad frame: {source}")]
    Frame { side: Side, source: FrameError },
    #[error("{side} sent nothing for {after:?}")]
    Idle { side: Side, after: Duration },
    #[error("{side} read nothing for {after:?}")]
    Stalled { side: Side, after: Duration },
    #[error("{side} closed the connection {when}")]
    Closed { side: Side, when: &'static str },
    #[error("client sent api key {api_key} v{api_version}, which the gateway does not offer")]
    NotOffered { api_key: i16, api_version: i16 },
    #[error("broker answered correlation id {got} while {expected} (api key {api_key}) was due: stream out of sync")]
    Desync {
        expected: i32,
        got: i32,
        api_key: i16,
    },
    #[error("broker sent a response with no request outstanding")]
    Unsolicited,
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error(transparent)]
    Tls(TlsError),
}

impl SessionError {
    pub fn side(&self) -> Side {
        match self {
            SessionError::Connect(_) | SessionError::Desync { .. } | SessionError::Unsolicited => {
                Side::Broker
            }
            SessionError::Io { side, .. }
            | SessionError::Idle { side, .. }
            | SessionError::Stalled { side, .. }
            | SessionError::Frame { side, .. }
            | SessionError::Closed { side, .. } => *side,
            SessionError::NotOffered { .. } => Side::Client,
            SessionError::Rewrite(RewriteError::Decode { .. }) => Side::Broker,
            SessionError::Tls(_) => Side::Client,
            SessionError::Rewrite(_) => Side::Gateway,
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
}

/// How a broker's close reads when nothing was due.
const BROKER_IDLE: &str = "while idle";

fn io_error(side: Side) -> impl FnOnce(io::Error) -> SessionError {
    move |source| SessionError::Io { side, source }
}

/// How long a PROXY protocol header may take to arrive.
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
    // Behind a load balancer, the real client is in the PROXY header, not the socket.
    let header = proxy_protocol::read_header(&mut client, gw.config().proxy_protocol);
    let peer = match tokio::time::timeout(HEADER_TIMEOUT, header).await {
        Ok(Ok(real)) => real.unwrap_or(peer),
        Ok(Err(e)) => {
            gw.metrics.error(Side::Client);
            gw.metrics.refused(Refusal::ProxyHeader);
            tracing::warn!(client.addr = %peer, %route, side = "client", "closing connection: {e}");
            return;
        }
        Err(_) => {
            gw.metrics.refused(Refusal::ProxyHeader);
            tracing::debug!(client.addr = %peer, %route, "no PROXY protocol header within {HEADER_TIMEOUT:?}");
            return;
        }
    };
    let span = tracing::debug_span!("session", client.addr = %peer, %route);
    async move {
        let (route, ended) = match gw.client_tls() {
            None => (route, counted(client, peer, route, &gw).await),
            Some(tls) => match tls.accept(client, route, |id| gw.upstream_of(id).is_some()).await {
                Ok((stream, route)) => (route, counted(stream, peer, route, &gw).await),
                Err(e) => (route, Err(SessionError::Tls(e))),
            },
        };
        match ended {
            Ok(()) => tracing::debug!("session ended"),
            Err(e) if e.is_hangup() => tracing::debug!(side = %e.side(), "session ended: {e}"),
            Err(e) => {
                gw.metrics.error(e.side());
                tracing::warn!(client.addr = %peer, %route, side = %e.side(), "closing connection: {e}");
            }
        }
    }
    .instrument(span)
    .await
}

/// [`run`], counted in the connection metrics by route and by the side that ended it, and
/// listed in `/connections` while it runs.
async fn counted<C: Connection>(
    client: C,
    peer: SocketAddr,
    route: Route,
    gw: &Gateway,
) -> Result<(), SessionError> {
    gw.metrics.connection_opened(route);
    let counters = gw.metrics.open_connection(peer, route);
    let ended = run(client, route, &counters, gw).await;
    let side = ended
        .as_ref()
        .err()
        .map_or(Side::Client, SessionError::side);
    gw.metrics.connection_closed(route, side);
    ended
}

async fn run<C: Connection>(
    client: C,
    route: Route,
    counters: &RouteCounters,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let (broker, broker_addr) = upstream::dial(route, gw)
        .await
        .inspect_err(|_| gw.metrics.connect_failure())?;
    tracing::debug!(broker.addr = %broker_addr, "connected upstream");
    pumps(client, broker, counters, gw).await
}

/// The two pumps between a client and the broker of its route, until either side ends.
/// Public so that benchmarks can run it over in-memory streams.
pub async fn relay<C: Connection, B: Connection>(
    client: C,
    broker: B,
    route: Route,
    gw: &Gateway,
) -> Result<(), SessionError> {
    pumps(client, broker, &gw.metrics.route_counters(route), gw).await
}

async fn pumps<C: Connection, B: Connection>(
    client: C,
    broker: B,
    counters: &RouteCounters,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let (client_rd, client_wr) = client.into_halves();
    let (broker_rd, broker_wr) = broker.into_halves();
    let (tx, rx) = inflight::channel();
    // Two pumps on one task: they share nothing but the in-flight queue and its count, and
    // a session never needs more than one core.
    let owed = Owed::default();
    let unanswered = Unanswered::default();
    tokio::try_join!(
        requests(client_rd, broker_wr, tx, &owed, &unanswered, counters, gw),
        responses(broker_rd, client_wr, rx, &owed, &unanswered, counters, gw)
    )?;
    Ok(())
}

/// What to do with the rest of a request whose head has been read.
#[derive(Debug, Clone, Copy)]
enum Request {
    /// Stream this many more bytes through.
    Forward(usize),
    /// Swallow this many more bytes (a request the gateway answers itself).
    Drop(usize),
}

/// What to do with the rest of a response whose head has been read.
#[derive(Debug, Clone, Copy)]
enum Response {
    /// Stream this many more bytes through.
    Forward(usize),
    /// Stream this many more bytes through: an answer to `acks=0`, which no client waits for.
    Unasked(usize),
    /// Hold the whole frame of this length, then rewrite it.
    Rewrite {
        kind: Rewrite,
        version: i16,
        len: usize,
    },
}

/// Counts `available` bytes against the `left` of a streamed frame: how many to forward now,
/// and what remains of the frame after them.
fn stream(left: usize, available: usize) -> (usize, Option<usize>) {
    let n = left.min(available);
    (n, (n < left).then_some(left - n))
}

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

    /// Runs one read from `side`, failing it when the peer sends nothing for `limit`.
    async fn read<T>(
        &mut self,
        limit: Duration,
        side: Side,
        io: impl Future<Output = io::Result<T>>,
    ) -> Result<T, SessionError> {
        self.deadline
            .within(limit, io)
            .await
            .map_err(|_| SessionError::Idle { side, after: limit })?
            .map_err(io_error(side))
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

/// Client -> broker. Reads only request heads; every byte is forwarded as it arrives, apart
/// from ApiVersions requests too new to parse, which the gateway answers itself.
async fn requests<A: AsyncRead, B: AsyncWrite>(
    mut rd: Reader<A>,
    mut wr: Writer<B>,
    tx: mpsc::Sender<Expect>,
    owed: &Owed,
    unanswered: &Unanswered,
    counters: &RouteCounters,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let config = gw.config();
    let mut watch = Watch::new(config.idle_timeout);
    // When the bytes in `buf` came: read once per read, not once per frame (the clock is
    // the largest per-frame cost in the pump benchmark).
    let mut arrived = Instant::now();
    let mut buf = BytesMut::with_capacity(config.buffer_bytes);
    let mut current: Option<Request> = None;
    loop {
        let mut ready = 0;
        loop {
            match current {
                Some(Request::Forward(left)) => {
                    let (n, rest) = stream(left, buf.len() - ready);
                    ready += n;
                    current = rest.map(Request::Forward);
                    if current.is_some() {
                        break;
                    }
                }
                Some(Request::Drop(left)) => {
                    watch
                        .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
                        .await?;
                    let (n, rest) = stream(left, buf.len());
                    buf.advance(n);
                    current = rest.map(Request::Drop);
                    if current.is_some() {
                        break;
                    }
                }
                None => {
                    let head = frame::peek_request(&buf[ready..], config.max_frame_bytes).map_err(
                        |source| SessionError::Frame {
                            side: Side::Client,
                            source,
                        },
                    )?;
                    let Some(head) = head else { break };
                    let (expect, next) = admit(&head, arrived)?;
                    gw.metrics.request(counters, head.api_key, head.frame_len);
                    if !head.expects_response() {
                        unanswered.push(head.correlation_id);
                    }
                    if let Some(expect) = expect {
                        owed.add();
                        // Flush before waiting on a full queue: the responses that would
                        // drain it may be waiting on exactly these bytes.
                        match tx.try_send(expect) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(expect)) => {
                                watch
                                    .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
                                    .await?;
                                tx.send(expect).await.map_err(|_| closed(Side::Client))?;
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => {
                                return Err(closed(Side::Client))
                            }
                        }
                    }
                    current = Some(next);
                }
            }
        }
        watch
            .flush(Side::Broker, &mut wr, &mut buf, &mut ready)
            .await?;
        if let Some(Request::Forward(left)) = current {
            let ends = Ends {
                sender: Side::Client,
                receiver: Side::Broker,
                when: "in the middle of a request",
            };
            if splice_rest(&rd, &wr, &buf, left, ends, &mut watch, gw).await? {
                current = None;
                continue;
            }
        }

        let at_boundary = current.is_none() && buf.is_empty();
        buf.reserve(config.buffer_bytes);
        // Shutdown stops new requests only between frames, after forwarding what the client
        // had already sent; the response pump then drains what is in flight. An incomplete
        // head left in the buffer was never forwarded, so the broker stays in step.
        if current.is_none() && gw.shutdown.is_cancelled() {
            // A zero timeout polls the read once: bytes already here, or nothing.
            match tokio::time::timeout(Duration::ZERO, rd.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                Ok(Ok(_)) | Err(_) => return Ok(()),
                Ok(Err(e)) => return Err(io_error(Side::Client)(e)),
            }
        }
        let read = tokio::select! {
            _ = gw.shutdown.cancelled(), if current.is_none() => continue,
            // Silence is idleness only when the client is owed nothing, or stopped mid-request.
            read = watch.read(
                if current.is_some() || owed.is_none() { watch.idle } else { Duration::MAX },
                Side::Client,
                rd.read_buf(&mut buf),
            ) => read?,
        };
        if read == 0 {
            // As a broker does, a client's hang-up ends the session at once: nobody is left
            // to read the responses still due.
            return Err(SessionError::Closed {
                side: Side::Client,
                when: if at_boundary {
                    "between requests"
                } else {
                    "in the middle of a request"
                },
            });
        }
        arrived = Instant::now();
    }
}

fn closed(side: Side) -> SessionError {
    SessionError::Closed {
        side,
        when: "while requests were in flight",
    }
}

/// Decides what a request needs: the response to expect, and how to pass its bytes on.
fn admit(
    head: &frame::RequestHead,
    arrived: Instant,
) -> Result<(Option<Expect>, Request), SessionError> {
    let limit = api_versions::limit(head.api_key);
    let rewrite = Rewrite::for_api(head.api_key);
    if !limit.allows(head.api_version) {
        if rewrite == Some(Rewrite::ApiVersions) && head.api_version > 0 {
            // As a broker does: answer in the v0 layout so the client can retry lower.
            let ours = kafka_protocol::messages::ApiVersionsResponse::VERSIONS.max;
            let answer = api_versions::unsupported_version(head.correlation_id, ours);
            return Ok((Some(Expect::Local(answer)), Request::Drop(head.frame_len)));
        }
        return Err(SessionError::NotOffered {
            api_key: head.api_key,
            api_version: head.api_version,
        });
    }
    let expect = head.expects_response().then(|| Expect::Response {
        correlation_id: head.correlation_id,
        api_key: head.api_key,
        api_version: head.api_version,
        rewrite,
        sent: arrived,
    });
    Ok((expect, Request::Forward(head.frame_len)))
}

/// Broker -> client. Matches each response to the request it answers, streams it through,
/// or holds and rewrites it when it names brokers.
async fn responses<A: AsyncRead, B: AsyncWrite>(
    mut rd: Reader<A>,
    mut wr: Writer<B>,
    mut rx: mpsc::Receiver<Expect>,
    owed: &Owed,
    unanswered: &Unanswered,
    counters: &RouteCounters,
    gw: &Gateway,
) -> Result<(), SessionError> {
    let config = gw.config();
    let mut watch = Watch::new(config.idle_timeout);
    // When the bytes in `buf` came: read once per read, not once per frame (the clock is
    // the largest per-frame cost in the pump benchmark).
    let mut arrived = Instant::now();
    let mut buf = BytesMut::with_capacity(config.buffer_bytes);
    let mut current: Option<Response> = None;
    // At most one expectation is taken off the queue ahead of its response, so the queue's
    // bound is the bound on what this session holds.
    let mut due: Option<Expect> = None;
    let mut requests_open = true;
    loop {
        let mut ready = 0;
        loop {
            match current {
                Some(Response::Forward(left)) => {
                    let (n, rest) = stream(left, buf.len() - ready);
                    ready += n;
                    current = rest.map(Response::Forward);
                    if current.is_some() {
                        break;
                    }
                    owed.settle();
                }
                Some(Response::Unasked(left)) => {
                    let (n, rest) = stream(left, buf.len() - ready);
                    ready += n;
                    current = rest.map(Response::Unasked);
                    if current.is_some() {
                        break;
                    }
                }
                Some(Response::Rewrite { kind, version, len }) => {
                    watch
                        .flush(Side::Client, &mut wr, &mut buf, &mut ready)
                        .await?;
                    if buf.len() < len {
                        buf.reserve(len - buf.len());
                        break;
                    }
                    let original = buf.split_to(len).freeze();
                    let rewritten = rewrite::response(kind, version, original, gw);
                    gw.metrics.rewrite(kind.api_key() as i16, rewritten.is_ok());
                    let rewritten = rewritten?;
                    watch.write(Side::Client, &mut wr, &rewritten).await?;
                    owed.settle();
                    current = None;
                }
                None => {
                    if due.is_none() {
                        due = match rx.try_recv() {
                            Ok(expect) => Some(expect),
                            Err(mpsc::error::TryRecvError::Empty) => None,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                requests_open = false;
                                None
                            }
                        };
                    }
                    match due.take() {
                        Some(Expect::Local(answer)) => {
                            watch
                                .flush(Side::Client, &mut wr, &mut buf, &mut ready)
                                .await?;
                            watch.write(Side::Client, &mut wr, &answer).await?;
                            owed.settle();
                        }
                        Some(Expect::Response {
                            correlation_id,
                            api_key,
                            api_version,
                            rewrite,
                            sent,
                        }) => {
                            let head = frame::peek_response(&buf[ready..], config.max_frame_bytes)
                                .map_err(|source| SessionError::Frame {
                                    side: Side::Broker,
                                    source,
                                })?;
                            let Some(head) = head else {
                                due = Some(Expect::Response {
                                    correlation_id,
                                    api_key,
                                    api_version,
                                    rewrite,
                                    sent,
                                });
                                break;
                            };
                            if head.correlation_id != correlation_id {
                                if unanswered.take(head.correlation_id) {
                                    // An answer to acks=0 ahead of this one: pass it on.
                                    due = Some(Expect::Response {
                                        correlation_id,
                                        api_key,
                                        api_version,
                                        rewrite,
                                        sent,
                                    });
                                    current = Some(Response::Unasked(head.frame_len));
                                    continue;
                                }
                                return Err(SessionError::Desync {
                                    expected: correlation_id,
                                    got: head.correlation_id,
                                    api_key,
                                });
                            }
                            gw.metrics.response(
                                counters,
                                api_key,
                                head.frame_len,
                                arrived.saturating_duration_since(sent),
                            );
                            current = Some(match rewrite {
                                Some(kind) => Response::Rewrite {
                                    kind,
                                    version: api_version,
                                    len: head.frame_len,
                                },
                                None => Response::Forward(head.frame_len),
                            });
                        }
                        None => {
                            let head = frame::peek_response(&buf[ready..], config.max_frame_bytes)
                                .map_err(|source| SessionError::Frame {
                                    side: Side::Broker,
                                    source,
                                })?;
                            match head {
                                None => break,
                                Some(head) if unanswered.take(head.correlation_id) => {
                                    current = Some(Response::Unasked(head.frame_len));
                                }
                                Some(_) => return Err(SessionError::Unsolicited),
                            }
                        }
                    }
                }
            }
        }
        watch
            .flush(Side::Client, &mut wr, &mut buf, &mut ready)
            .await?;
        if let Some(Response::Forward(left) | Response::Unasked(left)) = current {
            let ends = Ends {
                sender: Side::Broker,
                receiver: Side::Client,
                when: "with a response due",
            };
            if splice_rest(&rd, &wr, &buf, left, ends, &mut watch, gw).await? {
                if let Some(Response::Forward(_)) = current {
                    owed.settle();
                }
                current = None;
                continue;
            }
        }

        if !requests_open && due.is_none() && current.is_none() && buf.is_empty() {
            return Ok(());
        }
        buf.reserve(config.buffer_bytes);
        tokio::select! {
            expect = rx.recv(), if due.is_none() && requests_open => match expect {
                Some(expect) => due = Some(expect),
                None => requests_open = false,
            },
            // A broker is idle only when it owes a response; otherwise silence is normal.
            read = watch.read(
                if current.is_some() || due.is_some() { watch.idle } else { Duration::MAX },
                Side::Broker,
                rd.read_buf(&mut buf),
            ) => {
                if read? == 0 {
                    return Err(SessionError::Closed {
                        side: Side::Broker,
                        when: if current.is_some() || due.is_some() { "with a response due" } else { BROKER_IDLE },
                    });
                }
                arrived = Instant::now();
            }
        }
    }
}

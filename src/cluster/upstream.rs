//! Dialing brokers, under the rule that the gateway connects only to the cluster it fronts:
//! the configured bootstrap servers, and addresses the cluster itself reported for a node id.
//! Nothing a client sends can name an address to dial.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use crate::cluster::route::{host_of, Route};
use crate::gateway::Gateway;
use crate::proxy::frame::{self, FrameError};
use crate::proxy::transport::{self, Connection, Reader, Writer};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no bootstrap server reachable (last tried {addr}: {reason})")]
    BootstrapUnreachable { addr: String, reason: String },
    #[error("broker {node_id} at {addr} unreachable: {reason}")]
    BrokerUnreachable {
        node_id: i32,
        addr: String,
        reason: String,
    },
    #[error("node id {node_id} has not been reported by the cluster")]
    UnknownNode { node_id: i32 },
}

/// Connects to the upstream of a route; returns the stream and the address it reached.
pub async fn dial(route: Route, gw: &Gateway) -> Result<(BrokerStream, String), UpstreamError> {
    match route {
        Route::Bootstrap => dial_bootstrap(gw).await,
        Route::Broker(node_id) => {
            let addr = gw
                .upstream_of(node_id)
                .ok_or(UpstreamError::UnknownNode { node_id })?;
            connect(gw, &addr)
                .await
                .map(|s| (s, addr.clone()))
                .map_err(|reason| UpstreamError::BrokerUnreachable {
                    node_id,
                    addr,
                    reason,
                })
        }
    }
}

/// Tries the bootstrap servers in turn, starting one further along each time so load and
/// failures spread across them.
pub async fn dial_bootstrap(gw: &Gateway) -> Result<(BrokerStream, String), UpstreamError> {
    let servers = &gw.config().bootstrap_servers;
    let start = gw.next_bootstrap_index();
    let mut last = UpstreamError::BootstrapUnreachable {
        addr: String::new(),
        reason: "no bootstrap servers configured".into(),
    };
    for i in 0..servers.len() {
        let addr = &servers[(start + i) % servers.len()];
        match connect(gw, addr).await {
            Ok(stream) => return Ok((stream, addr.clone())),
            Err(reason) => {
                tracing::debug!(broker.addr = %addr, %reason, "bootstrap server unreachable");
                last = UpstreamError::BootstrapUnreachable {
                    addr: addr.clone(),
                    reason,
                };
            }
        }
    }
    Err(last)
}

/// Whether a broker address can be reached from here (TCP, and TLS when configured). Sends
/// nothing: a broker that requires SASL accepts the connection all the same.
pub async fn probe(gw: &Gateway, addr: &str) -> Result<(), String> {
    connect(gw, addr).await.map(drop)
}

/// A new connection to one configured bootstrap server, for a second look at a server that
/// just failed a request of the gateway's own.
pub(crate) async fn redial_bootstrap(gw: &Gateway, addr: &str) -> Option<BrokerStream> {
    if !gw.config().bootstrap_servers.iter().any(|s| s == addr) {
        return None;
    }
    connect(gw, addr).await.ok()
}

/// TCP, then TLS when `[upstream.tls]` is configured, all within the connect timeout; never
/// to an address outside `[upstream] allow`, whoever named it.
async fn connect(gw: &Gateway, addr: &str) -> Result<BrokerStream, String> {
    if !gw.may_dial(host_of(addr)) {
        return Err("outside upstream.allow; not dialled".to_owned());
    }
    let limit = gw.config().connect_timeout;
    let dial = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        // Kafka requests are small and latency-bound: never let Nagle hold one back.
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        match gw.upstream_tls() {
            None => Ok(BrokerStream::Plain(tcp)),
            Some(tls) => tls
                .connect(tcp, host_of(addr))
                .await
                .map(|s| BrokerStream::Tls(Box::new(s)))
                .map_err(|e| format!("TLS: {e}")),
        }
    };
    timeout(limit, dial)
        .await
        .map_err(|_| format!("timed out after {limit:?}"))?
}

/// A connection to a broker, plain or TLS.
pub enum BrokerStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a request of the gateway's own got no usable answer. The cause is part of the
/// message and not also a `source`, so a printed error chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("i/o: {0}")]
    Io(io::Error),
    #[error("bad frame: {0}")]
    Frame(FrameError),
}

impl From<io::Error> for CallError {
    fn from(e: io::Error) -> CallError {
        CallError::Io(e)
    }
}

impl From<FrameError> for CallError {
    fn from(e: FrameError) -> CallError {
        CallError::Frame(e)
    }
}

impl BrokerStream {
    /// Sends one request frame of the gateway's own and reads the whole answer, size prefix
    /// included. A size above `max_frame` is refused before anything is allocated for it.
    /// The connection stays usable for the next request (a SASL login, then Metadata).
    pub async fn call(&mut self, request: &[u8], max_frame: usize) -> Result<Bytes, CallError> {
        match self {
            BrokerStream::Plain(tcp) => exchange(tcp, request, max_frame).await,
            BrokerStream::Tls(tls) => exchange(&mut **tls, request, max_frame).await,
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    max_frame: usize,
) -> Result<Bytes, CallError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut size = [0u8; frame::SIZE_PREFIX];
    stream.read_exact(&mut size).await?;
    let len = frame::frame_len(&size, max_frame)?.unwrap_or(frame::SIZE_PREFIX);
    let mut whole = vec![0u8; len];
    whole[..frame::SIZE_PREFIX].copy_from_slice(&size);
    stream.read_exact(&mut whole[frame::SIZE_PREFIX..]).await?;
    Ok(Bytes::from(whole))
}

impl Connection for BrokerStream {
    type Layered = Box<TlsStream<TcpStream>>;

    fn into_halves(self) -> (Reader<Self::Layered>, Writer<Self::Layered>) {
        match self {
            BrokerStream::Plain(tcp) => transport::plain(tcp),
            BrokerStream::Tls(tls) => transport::layered(tls),
        }
    }
}

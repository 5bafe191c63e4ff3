//! Accept loops: one per route, each handing connections to a session under the
//! connection limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cluster::route::Route;
use crate::gateway::Gateway;
use crate::ops::metrics::Refusal;
use crate::ops::throttle;
use crate::proxy::session;

/// Binds a broker listener. Synchronous on purpose: it runs while a response that names the
/// broker is held back, and must be done before that response goes out.
pub fn bind(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let socket = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}

/// Accepts until `stop` (shutdown, or the broker's retirement). A connection over the limit
/// is closed at once: a client retries sooner against a closed socket than against a full
/// backlog.
pub async fn accept(
    listener: TcpListener,
    route: Route,
    gw: Arc<Gateway>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => match gw.connections.clone().try_acquire_owned() {
                Ok(permit) => {
                    // Kafka requests are small and latency-bound: never let Nagle hold one.
                    if let Err(e) = socket.set_nodelay(true) {
                        tracing::debug!(client.addr = %peer, "cannot set TCP_NODELAY: {e}");
                    }
                    // Counted from here, so a shutdown waits for it even before it starts.
                    let tracked = gw.tasks.token();
                    let owner = gw.clone();
                    let session = move |socket| async move {
                        session::serve(socket, peer, route, owner, permit).await;
                        drop(tracked);
                    };
                    if let Err(e) = gw.workers.spawn(socket, session) {
                        tracing::warn!(client.addr = %peer, "cannot hand the connection to a worker: {e}");
                    }
                }
                Err(_) => {
                    let why = Refusal::ConnectionLimit;
                    gw.metrics.refused(why);
                    if let Some(quiet) = gw.log_throttle.admit(why.kind(), Instant::now()) {
                        tracing::warn!(client.addr = %peer, %route, limit = gw.config().max_connections, "connection limit reached; closing new connection{}", throttle::unlogged(quiet));
                    }
                }
            },
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::error!(%route, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

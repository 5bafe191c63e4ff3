//! Dialing brokers, under the rule that the gateway connects only to the cluster it fronts:
//! the configured bootstrap servers, and addresses the cluster itself reported for a node id.
//! Nothing a client sends can name an address to dial.

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::gateway::Gateway;
use crate::route::Route;

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
pub async fn dial(route: Route, gw: &Gateway) -> Result<(TcpStream, String), UpstreamError> {
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
pub async fn dial_bootstrap(gw: &Gateway) -> Result<(TcpStream, String), UpstreamError> {
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

async fn connect(gw: &Gateway, addr: &str) -> Result<TcpStream, String> {
    let stream = timeout(gw.config().connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("timed out after {:?}", gw.config().connect_timeout))?
        .map_err(|e| e.to_string())?;
    // Kafka requests are small and latency-bound: never let Nagle hold one back.
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

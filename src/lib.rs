//! kafka-edge: one external endpoint in front of a Kafka cluster whose brokers advertise
//! addresses clients cannot reach.
//!
//! The data path, top to bottom:
//!
//! - [`listener`] accepts client connections, one accept loop per [`route::Route`]: the
//!   bootstrap port, and one port per broker node id, bound the moment the node is learned.
//! - [`session`] pairs each client connection with one broker connection and runs two
//!   pumps between them.
//! - [`frame`] peeks at frame heads without I/O; [`inflight`] remembers which response each
//!   request awaits.
//! - [`rewrite`] replaces every broker address in the responses that carry one; everything
//!   else streams through untouched.
//! - [`upstream`] dials brokers, only ever those of the cluster.
//! - [`tls`] terminates client TLS inside each session's task.
//!
//! Around it: [`config`] (schema and validation), [`gateway`] (shared state), [`route`]
//! (address plan and broker table), [`discovery`] (the gateway's own metadata refresh, with
//! its own SASL login in [`sasl`] and [`scram`] when brokers require one), and [`admin`] with
//! [`metrics`] (health, readiness, Prometheus).

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod deadline;
pub mod diagnose;
pub mod discovery;
pub mod frame;
pub mod gateway;
pub mod inflight;
pub mod listener;
pub mod metrics;
pub mod proxy_protocol;
pub mod rewrite;
pub mod route;
pub mod sasl;
pub mod scram;
pub mod session;
pub mod splice;
pub mod tls;
pub mod transport;
pub mod upstream;
pub mod workers;

use std::future::Future;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The listeners a caller binds before `run`: clients' bootstrap port, and the admin port.
pub struct Listeners {
    pub bootstrap: TcpListener,
    pub admin: Option<TcpListener>,
}
pub use gateway::Gateway;

/// Serves clients on the already-bound bootstrap listener (and the admin endpoint on its own,
/// if given) until `shutdown` completes, then
/// stops accepting, lets sessions finish their in-flight requests for up to the configured
/// grace period, and returns.
///
/// Broker listeners are bound by the gateway itself, on the bootstrap listener's IP, as the
/// cluster reports node ids.
///
/// Fails before serving anything when the configured TLS files cannot be used.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), gateway::StartError> {
    let token = CancellationToken::new();
    let gw = Gateway::new(config, token.clone())?;
    let bootstrap = route::Route::Bootstrap;
    gw.tasks
        .spawn(listener::accept(listeners.bootstrap, bootstrap, gw.clone()));
    if let Some(admin) = listeners.admin {
        gw.tasks.spawn(admin::serve(admin, gw.clone()));
    }
    gw.tasks.spawn(discovery::run(gw.clone()));
    if gw.client_tls().is_some() {
        gw.tasks.spawn(tls_reload(gw.clone()));
    }

    shutdown.await;
    tracing::info!(grace = ?gw.config().shutdown_grace, "shutting down: no new connections, finishing in-flight requests");
    token.cancel();
    gw.tasks.close();
    if tokio::time::timeout(gw.config().shutdown_grace, gw.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing the remaining connections");
    }
    gw.workers.stop();
    Ok(())
}

/// Picks up rotated client-facing certificates until shutdown.
async fn tls_reload(gw: std::sync::Arc<Gateway>) {
    let Some(tls) = gw.client_tls() else { return };
    let mut failing = false;
    loop {
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tokio::time::sleep(tls.reload_check()) => {}
        }
        match tls.reload_if_changed() {
            Ok(true) => {
                failing = false;
                tracing::info!("client TLS certificate reloaded; new connections use it");
            }
            Ok(false) => {}
            // Once per bad state: a rotation may be caught half-written, and is retried.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    "client TLS files changed but cannot be used yet; keeping the old ones: {e}"
                );
            }
            Err(_) => {}
        }
    }
}

//! kafka-edge: one external endpoint in front of a Kafka cluster whose brokers advertise
//! addresses clients cannot reach.
//!
//! The crate is laid out as the data path runs:
//!
//! - [`edge`]: what happens before a client's first Kafka byte: TLS and SNI, the PROXY
//!   protocol header.
//! - [`proxy`]: accepting a client on a [`cluster::route::Route`] (the bootstrap port, or one
//!   port per broker node id, bound the moment the node is learned), pairing it with one
//!   broker connection, and the two pumps between them. Bytes stream through untouched,
//!   large frames socket to socket.
//! - [`rewrite`]: every broker address in the responses that carry one, replaced by the
//!   gateway's own; the versions clients may negotiate.
//! - [`cluster`]: the address plan and the broker table, discovery (the gateway's own
//!   metadata refresh, with its own SASL login when brokers require one), and dialing
//!   brokers, only ever those of the cluster.
//! - [`ops`]: the admin endpoint, metrics, `diagnose`.
//!
//! Around them: [`config`] (schema and validation) and [`gateway`] (the shared state of a
//! running gateway).

#![forbid(unsafe_code)]

pub mod cluster;
pub mod config;
pub mod edge;
pub mod gateway;
pub mod ops;
pub mod proxy;
pub mod rewrite;
pub mod tls;

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
    let bootstrap = cluster::route::Route::Bootstrap;
    gw.tasks.spawn(proxy::listener::accept(
        listeners.bootstrap,
        bootstrap,
        gw.clone(),
        token.clone(),
    ));
    if let Some(admin) = listeners.admin {
        gw.tasks.spawn(ops::admin::serve(admin, gw.clone()));
    }
    gw.tasks.spawn(cluster::discovery::run(gw.clone()));
    if gw.client_tls().is_some() {
        gw.tasks.spawn(tls_reload(gw.clone()));
    }
    if let Some(auth) = gw.edge_auth() {
        gw.tasks.spawn(edge_auth_reload(gw.clone(), auth));
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

/// Picks up changed credential and token key files until shutdown. A file caught
/// half-written, or wrong, keeps the last good one in use and is tried again.
async fn edge_auth_reload(
    gw: std::sync::Arc<Gateway>,
    auth: std::sync::Arc<edge::login::EdgeAuth>,
) {
    let mut failing = Vec::new();
    loop {
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tokio::time::sleep(auth.reload_check()) => {}
        }
        let mut problems = Vec::new();
        for outcome in auth.reload_if_changed() {
            match outcome {
                Ok(what) => tracing::info!("client_auth: {what} reloaded; new logins use them"),
                Err(problem) => problems.push(problem),
            }
        }
        // Once per bad state, not at every check.
        for problem in problems.iter().filter(|p| !failing.contains(*p)) {
            tracing::warn!(
                "client_auth: cannot use the changed file yet, keeping the old one: {problem}"
            );
        }
        failing = problems;
    }
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

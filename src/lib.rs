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
//! Around them: [`config`] (schema, validation, the reference of every key) and [`gateway`]
//! (the shared state of a running gateway, and applying a new configuration to it).
//! [`run_reloading`] watches the configuration and feeds it to the gateway.

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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use config::ConfigError;

/// The listeners a caller binds before `run`: clients' bootstrap port, and the admin port.
pub struct Listeners {
    pub bootstrap: TcpListener,
    pub admin: Option<TcpListener>,
}
pub use gateway::Gateway;

/// How a running gateway learns of a new configuration: the caller owns the file and the
/// signals, the library applies what they yield.
pub struct Reloads {
    /// Reads and checks the configuration again, the way it was read at startup.
    pub load: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
    /// The configuration file: its change (size, modification time or inode, through
    /// symbolic links, so a Kubernetes ConfigMap update counts) asks for a reload, and so
    /// does a change to the `[upstream.tls]` files the configuration names.
    pub watch: Option<PathBuf>,
    /// How often `watch` is looked at.
    pub check_every: Duration,
    /// A notification asks for a reload now (the binary's SIGHUP).
    pub asked: Arc<Notify>,
    /// Applies what lives outside the gateway (the binary's log filter), once the gateway
    /// took the new configuration.
    pub apply: Box<dyn Fn(&Config) + Send + Sync>,
}

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
    serve(listeners, config, None, shutdown).await
}

/// [`run`], taking a new configuration whenever `reloads` yields one: it applies to new
/// connections, open ones keep theirs (see [`Gateway::reconfigure`]).
pub async fn run_reloading(
    listeners: Listeners,
    config: Config,
    reloads: Reloads,
    shutdown: impl Future<Output = ()>,
) -> Result<(), gateway::StartError> {
    serve(listeners, config, Some(reloads), shutdown).await
}

async fn serve(
    listeners: Listeners,
    config: Config,
    reloads: Option<Reloads>,
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
    if let Some(reloads) = reloads {
        gw.tasks.spawn(reload(gw.clone(), reloads));
    }

    shutdown.await;
    let grace = gw.config().shutdown_grace;
    tracing::info!(
        ?grace,
        "shutting down: no new connections, finishing in-flight requests"
    );
    token.cancel();
    gw.tasks.close();
    if tokio::time::timeout(grace, gw.tasks.wait()).await.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
    gw.workers.stop();
    Ok(())
}

/// Picks up changed credential and token key files until shutdown. A file caught
/// half-written, or wrong, keeps the last good one in use and is tried again.
async fn edge_auth_reload(gw: Arc<Gateway>, auth: Arc<edge::login::EdgeAuth>) {
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

/// Picks up rotated client-facing certificates until shutdown. Client TLS is on for the
/// gateway's whole life or not at all; a reload may replace it with other settings, which
/// the next check follows.
async fn tls_reload(gw: Arc<Gateway>) {
    let mut failing = false;
    loop {
        let Some(tls) = gw.client_tls() else { return };
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tokio::time::sleep(tls.reload_check()) => {}
        }
        let Some(tls) = gw.client_tls() else { return };
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

/// What identifies a file's contents well enough to notice a new one: size, modification
/// time and inode, of the file a symbolic link leads to.
type FileId = Option<(u64, SystemTime, u64)>;

fn file_id(path: &std::path::Path) -> FileId {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok()?, inode))
}

/// The files whose change asks for a reload: the configuration file, and the TLS files
/// to brokers it names (client TLS files have a watcher of their own, which also keeps
/// the connections a certificate rotation would not need to touch).
fn watched(reloads: &Reloads, config: &Config) -> Vec<PathBuf> {
    let upstream_tls = config.upstream_tls.iter().flat_map(|tls| {
        let client = tls
            .client_cert
            .iter()
            .flat_map(|(c, k)| [c.clone(), k.clone()]);
        std::iter::once(tls.ca.clone()).chain(client)
    });
    reloads.watch.iter().cloned().chain(upstream_tls).collect()
}

fn file_ids(files: &[PathBuf]) -> Vec<FileId> {
    files.iter().map(|f| file_id(f)).collect()
}

/// Reloads the configuration whenever asked or a watched file changes, until shutdown.
async fn reload(gw: Arc<Gateway>, reloads: Reloads) {
    let mut files = watched(&reloads, &gw.config());
    let mut seen = file_ids(&files);
    loop {
        let why = tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = reloads.asked.notified() => "asked to",
            _ = tokio::time::sleep(reloads.check_every), if !files.is_empty() => {
                if file_ids(&files) == seen {
                    continue;
                }
                "a watched file changed"
            }
        };
        // What is read now is the latest: a change the watch had yet to see is in it.
        seen = file_ids(&files);
        let reloaded = match (reloads.load)() {
            Ok(config) => gw.reconfigure(config).await,
            Err(e) => Err(e),
        };
        match reloaded {
            Ok(done) => {
                gw.metrics.reload(true);
                (reloads.apply)(&gw.config());
                if done.applied.is_empty() {
                    tracing::info!("configuration reloaded ({why}): nothing changed");
                } else {
                    tracing::info!(
                        "configuration reloaded ({why}); new connections get: {}",
                        done.applied.join(", ")
                    );
                }
                if !done.restart.is_empty() {
                    tracing::warn!(
                        "configuration changes that need a restart, not applied: {}",
                        done.restart.join(", ")
                    );
                }
            }
            Err(e) => {
                gw.metrics.reload(false);
                let problems = match e {
                    ConfigError::Invalid { problems } => problems,
                    other => vec![other.to_string()],
                };
                tracing::error!(
                    "configuration not reloaded ({why}); the running one stays: {} problem(s)",
                    problems.len()
                );
                for problem in problems {
                    tracing::error!("configuration not reloaded: {problem}");
                }
            }
        }
        // The new configuration may name other files.
        let now = watched(&reloads, &gw.config());
        if now != files {
            seen = file_ids(&now);
            files = now;
        }
    }
}

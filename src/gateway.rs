//! The shared state of a running gateway: configuration, the broker table, the listeners it
//! has started, and the shutdown signal every task watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Instant;

use kafka_protocol::protocol::StrBytes;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::route::{host_port, BrokerTable, Learned, Route, RouteError};
use crate::cluster::tls::UpstreamTls;
use crate::config::Config;
use crate::edge::auth::audit::AuditLog;
use crate::edge::login::EdgeAuth;
use crate::edge::tls::ClientTls;
use crate::edge::versions::ClusterVersions;
use crate::ops::metrics::Metrics;
use crate::ops::throttle::LogThrottle;
use crate::proxy::listener;
use crate::proxy::splice::{Pipes, PIPE_BYTES};
use crate::proxy::workers::Workers;
use crate::rewrite::{AddressBook, Advertised};
use crate::tls::TlsError;

/// Why a gateway could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start client TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot start the worker threads: {0}")]
    Workers(#[source] std::io::Error),
    #[error(transparent)]
    EdgeAuth(#[from] crate::edge::login::OpenError),
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        path: String,
        source: std::io::Error,
    },
}

/// At most this many log lines per kind of client mistake or refusal per window.
const LOG_BURST: u32 = 5;
const LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Gateway {
    config: Config,
    client_tls: Option<ClientTls>,
    upstream_tls: Option<UpstreamTls>,
    table: Mutex<BrokerTable>,
    /// Stops the listener of each broker served on a port of its own.
    broker_listeners: Mutex<HashMap<i32, CancellationToken>>,
    pub(crate) metrics: Metrics,
    /// Client logins at the gateway, when `[client_auth]` is configured.
    edge_auth: Option<Arc<EdgeAuth>>,
    /// The audit log of logins and denials, when `[audit]` is configured.
    audit: Option<AuditLog>,
    /// The cluster's ApiVersions answer, from the last refresh: what the edge answers
    /// clients that log in at the gateway.
    cluster_versions: RwLock<Option<Arc<ClusterVersions>>>,
    /// Keeps client mistakes and refusals from flooding the log.
    pub(crate) log_throttle: LogThrottle,
    /// Client connections still allowed; each session holds one permit.
    pub(crate) connections: Arc<Semaphore>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// Pipes for moving large frames socket to socket.
    pub(crate) pipes: Pipes,
    /// The threads sessions run on.
    pub(crate) workers: Workers,
    next_bootstrap: AtomicUsize,
    /// Lets `learn`, which runs inside sessions, hand a listener task its own `Arc`.
    me: Weak<Gateway>,
}

impl Gateway {
    /// Builds the shared state and starts the worker threads; fails when the TLS files
    /// cannot be used or no thread can be started.
    pub fn new(config: Config, shutdown: CancellationToken) -> Result<Arc<Gateway>, StartError> {
        let client_tls = config
            .tls
            .as_ref()
            .map(|tls| ClientTls::load(tls, config.plan.sni.clone()))
            .transpose()?;
        let upstream_tls = config
            .upstream_tls
            .as_ref()
            .map(UpstreamTls::load)
            .transpose()?;
        let pipes = Pipes::new(config.splice, PIPE_BYTES);
        let workers = Workers::start(config.threads).map_err(StartError::Workers)?;
        let edge_auth = match &config.identity {
            Some(identity) => EdgeAuth::open(identity)?,
            None => None,
        };
        let audit = config
            .identity
            .as_ref()
            .and_then(|identity| identity.audit.as_ref())
            .map(|a| {
                AuditLog::open(&a.file, a.queue).map_err(|source| StartError::Audit {
                    path: a.file.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        Ok(Arc::new_cyclic(|me| Gateway {
            client_tls,
            upstream_tls,
            metrics: Metrics::default(),
            log_throttle: LogThrottle::new(LOG_WINDOW, LOG_BURST),
            edge_auth,
            audit,
            cluster_versions: RwLock::default(),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config,
            table: Mutex::default(),
            broker_listeners: Mutex::default(),
            shutdown,
            tasks: TaskTracker::new(),
            pipes,
            workers,
            next_bootstrap: AtomicUsize::new(0),
            me: me.clone(),
        }))
    }

    /// Ready once the cluster has answered a Metadata request, and until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.metrics.is_ready() && !self.shutdown.is_cancelled()
    }

    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.client_tls.as_ref()
    }

    pub fn upstream_tls(&self) -> Option<&UpstreamTls> {
        self.upstream_tls.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The upstream address the cluster last reported for a node.
    pub fn upstream_of(&self, node_id: i32) -> Option<String> {
        self.table().get(node_id).map(|b| b.upstream.clone())
    }

    pub fn edge_auth(&self) -> Option<Arc<EdgeAuth>> {
        self.edge_auth.clone()
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// The cluster's ApiVersions answer, as the last refresh heard it.
    pub fn cluster_versions(&self) -> Option<Arc<ClusterVersions>> {
        self.cluster_versions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_cluster_versions(&self, versions: ClusterVersions) {
        *self
            .cluster_versions
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(versions));
    }

    /// Whether a broker host may be dialled: inside `[upstream] allow`, when that is set.
    /// A refusal is counted, whoever asked.
    pub fn may_dial(&self, host: &str) -> bool {
        let allowed = self
            .config
            .upstream_allow
            .as_ref()
            .is_none_or(|allow| allow.permits(host));
        if !allowed {
            self.metrics.broker_address_refused();
        }
        allowed
    }

    /// Retires every broker the cluster's broker list (`reported`, all node ids, from the
    /// gateway's own refresh) has gone without for the configured grace period: its listener
    /// closes, and its port opens again if the cluster reports it once more. Connections
    /// already made to it go on until they end.
    pub fn retire_unreported(&self, reported: &[i32]) {
        let grace = self.config.retire_after;
        let retired = self.table().retire(reported, Instant::now(), grace);
        for node_id in retired {
            if let Some(stop) = self.listeners().remove(&node_id) {
                stop.cancel();
            }
            self.metrics.broker_retired();
            tracing::info!(
                broker.id = node_id,
                "broker retired: the cluster has not reported it for {grace:?}"
            );
        }
    }

    fn listeners(&self) -> MutexGuard<'_, HashMap<i32, CancellationToken>> {
        self.broker_listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_bootstrap_index(&self) -> usize {
        self.next_bootstrap.fetch_add(1, Ordering::Relaxed)
    }

    fn table(&self) -> MutexGuard<'_, BrokerTable> {
        // The table stays consistent across a panic elsewhere: every update is one insert.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AddressBook for Gateway {
    fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError> {
        let (gateway_host, gateway_port) = self.config.plan.advertise(node_id)?;
        let upstream = host_port(host, port);
        if !self.may_dial(host) {
            return Err(RouteError::NotAllowed {
                node_id,
                address: upstream,
            });
        }
        let advertised = host_port(&gateway_host, gateway_port);
        let mut table = self.table();
        let learned = table.learn(node_id, upstream.clone(), advertised.clone())?;
        match learned {
            Learned::Unchanged => {}
            Learned::Moved => {
                tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %advertised, "broker moved; new connections go to the new address");
            }
            Learned::New if !self.config.plan.port_per_broker() => {
                tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %advertised, "serving broker");
            }
            Learned::New => {
                // Bound here, before the response naming this node reaches any client, so the
                // client's first connection to the advertised port finds it open.
                let started = match (
                    self.me.upgrade(),
                    listener::bind(self.config.bind_ip(), gateway_port),
                ) {
                    (Some(gw), Ok(socket)) => {
                        let stop = self.shutdown.child_token();
                        self.listeners().insert(node_id, stop.clone());
                        self.tasks.spawn(listener::accept(
                            socket,
                            Route::Broker(node_id),
                            gw,
                            stop,
                        ));
                        Ok(())
                    }
                    (None, _) => Err("the gateway is shutting down".to_owned()),
                    (_, Err(e)) => Err(e.to_string()),
                };
                if let Err(reason) = started {
                    table.forget(node_id);
                    return Err(RouteError::Bind {
                        node_id,
                        port: gateway_port,
                        reason,
                    });
                }
                tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %advertised, "serving broker");
            }
        }
        Ok(Advertised {
            host: StrBytes::from_string(gateway_host),
            port: gateway_port,
        })
    }

    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
        let (host, port) = self.config.plan.advertise(node_id)?;
        Ok(Advertised {
            host: StrBytes::from_string(host),
            port,
        })
    }
}

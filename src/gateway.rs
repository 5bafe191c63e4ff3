//! The shared state of a running gateway: configuration, the broker table, the listeners it
//! has started, and the shutdown signal every task watches.
//!
//! The configuration can change while the gateway runs ([`Gateway::reconfigure`]). It is held
//! as an `Arc` behind a lock and read by taking a copy of the `Arc`: a session takes one when
//! it starts and keeps it to its end, so a reload never changes the rules under a connection,
//! and new connections get the new ones. Reads happen once per connection or dial, never per
//! frame, so a plain `RwLock` costs nothing measurable and needs no extra crate; writes are
//! reloads, made under the broker table's lock so that a broker is always served by the plan
//! in force.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Instant;

use kafka_protocol::protocol::StrBytes;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::route::{host_of, host_port, BrokerTable, Learned, Route, RouteError};
use crate::cluster::tls::UpstreamTls;
use crate::config::{Config, ConfigError};
use crate::edge::auth::audit::AuditLog;
use crate::edge::auth::topic_ids::TopicIds;
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
    config: RwLock<Arc<Config>>,
    client_tls: RwLock<Option<Arc<ClientTls>>>,
    upstream_tls: RwLock<Option<Arc<UpstreamTls>>>,
    /// The brokers learned, and the listener of each served on a port of its own.
    brokers: Mutex<Brokers>,
    pub(crate) metrics: Metrics,
    /// Client logins at the gateway, when `[client_auth]` is configured.
    edge_auth: Option<Arc<EdgeAuth>>,
    /// The audit log of logins and denials, when `[audit]` is configured.
    audit: Option<AuditLog>,
    /// Topic names by id, learned from the answers of every connection under a policy:
    /// requests that name topics by id are decided by name.
    pub(crate) topic_ids: Arc<TopicIds>,
    /// The cluster's ApiVersions answer, from the last refresh: what the edge answers
    /// clients that log in at the gateway.
    cluster_versions: RwLock<Option<Arc<ClusterVersions>>>,
    /// Keeps client mistakes and refusals from flooding the log.
    pub(crate) log_throttle: LogThrottle,
    /// Client connections still allowed; each session holds one permit.
    pub(crate) connections: Arc<Semaphore>,
    limit: Mutex<Limit>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
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

#[derive(Default)]
struct Brokers {
    table: BrokerTable,
    /// Every node id of the table, with its accept loop when it has a port of its own (port
    /// mode).
    served: HashMap<i32, Option<Listening>>,
}

/// A broker's accept loop.
struct Listening {
    port: u16,
    stop: CancellationToken,
    /// Ends once the loop has let go of its socket.
    ended: JoinHandle<()>,
}

/// What the connection semaphore stands for.
struct Limit {
    /// Permits the semaphore holds, handed out or not: the limit in force, once any
    /// shrink under way has taken its permits.
    permits: Arc<AtomicUsize>,
    /// A shrink waiting for connections to end so that it can take their permits away.
    shrinking: Option<JoinHandle<()>>,
}

/// What a reload changed.
#[derive(Debug)]
pub struct Reloaded {
    /// Settings applied to new connections, named as the file names them.
    pub applied: Vec<&'static str>,
    /// Settings that changed but keep their running values until a restart.
    pub restart: Vec<&'static str>,
}

/// One part of the running state a reload rebuilds from the configuration: from the running
/// and the new configuration, what to swap in (`None`: nothing to do), built before anything
/// changes. A part that cannot be built fails the whole reload; the rest commit together.
type Part = fn(&Gateway, &Config, &Config) -> Result<Option<Commit>, String>;
type Commit = Box<dyn FnOnce(&Gateway) + Send>;

/// Every part, in order. A new section of the configuration with state of its own (edge
/// identity's credentials and policy) plugs in here with one function.
const PARTS: [Part; 2] = [client_tls, upstream_tls];

/// Client TLS is rebuilt when its settings or the SNI names change (turning it on or off
/// waits for a restart); rotated files are its own watcher's business.
fn client_tls(_: &Gateway, old: &Config, new: &Config) -> Result<Option<Commit>, String> {
    if new.tls == old.tls && new.plan.sni == old.plan.sni {
        return Ok(None);
    }
    let Some(settings) = &new.tls else {
        return Ok(None);
    };
    let tls = ClientTls::load(settings, new.plan.sni.clone()).map_err(|e| format!("tls: {e}"))?;
    Ok(Some(Box::new(move |gw: &Gateway| {
        *write(&gw.client_tls) = Some(Arc::new(tls));
    })))
}

/// TLS to brokers is built again at every reload, so a reload also picks up rotated files.
fn upstream_tls(_: &Gateway, _: &Config, new: &Config) -> Result<Option<Commit>, String> {
    let tls = new
        .upstream_tls
        .as_ref()
        .map(UpstreamTls::load)
        .transpose()
        .map_err(|e| format!("upstream.tls: {e}"))?;
    Ok(Some(Box::new(move |gw: &Gateway| {
        *write(&gw.upstream_tls) = tls.map(Arc::new);
    })))
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
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
            client_tls: RwLock::new(client_tls.map(Arc::new)),
            upstream_tls: RwLock::new(upstream_tls.map(Arc::new)),
            metrics: Metrics::default(),
            log_throttle: LogThrottle::new(LOG_WINDOW, LOG_BURST),
            edge_auth,
            audit,
            topic_ids: Arc::default(),
            cluster_versions: RwLock::default(),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            limit: Mutex::new(Limit {
                permits: Arc::new(AtomicUsize::new(config.max_connections)),
                shrinking: None,
            }),
            reloading: tokio::sync::Mutex::new(()),
            config: RwLock::new(Arc::new(config)),
            brokers: Mutex::default(),
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

    pub fn client_tls(&self) -> Option<Arc<ClientTls>> {
        read(&self.client_tls)
    }

    pub fn upstream_tls(&self) -> Option<Arc<UpstreamTls>> {
        read(&self.upstream_tls)
    }

    /// The configuration in force now. Keep the copy for as long as one set of rules must
    /// hold (a session keeps it to its end).
    pub fn config(&self) -> Arc<Config> {
        read(&self.config)
    }

    /// The upstream address the cluster last reported for a node.
    pub fn upstream_of(&self, node_id: i32) -> Option<String> {
        self.brokers()
            .table
            .get(node_id)
            .map(|b| b.upstream.clone())
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
            .config()
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
        let grace = self.config().retire_after;
        let mut brokers = self.brokers();
        let retired = brokers.table.retire(reported, Instant::now(), grace);
        for node_id in retired {
            if let Some(Some(listening)) = brokers.served.remove(&node_id) {
                listening.stop.cancel();
            }
            self.metrics.broker_retired();
            tracing::info!(
                broker.id = node_id,
                "broker retired: the cluster has not reported it for {grace:?}"
            );
        }
    }

    /// Applies a configuration read again ([`Config::resolve`]) to new connections, leaving
    /// open ones as they are: what needs a restart keeps its running value (and is named in
    /// the answer), the rest takes effect. Fails, changing nothing, when the new
    /// configuration cannot work with the running gateway (its port plan takes a port in
    /// use, its TLS files cannot be read).
    ///
    /// Brokers already served whose address changes under the new port plan get a listener
    /// on their new port, and their old one closes; brokers the plan no longer maps, or that
    /// `[upstream] allow` no longer permits, stop being served. Metadata answers name the new
    /// addresses from the moment the configuration is swapped.
    pub async fn reconfigure(&self, new: Config) -> Result<Reloaded, ConfigError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.config();
        let reread = old.reread(new)?;
        let mut commits = Vec::new();
        let mut problems = Vec::new();
        for part in PARTS {
            match part(self, &old, &reread.config) {
                Ok(commit) => commits.extend(commit),
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        let new = Arc::new(reread.config);
        let moves = self.swap(new.clone());
        for commit in commits {
            commit(self);
        }
        self.resize_limit(new.max_connections).await;
        self.move_brokers(moves).await;
        Ok(Reloaded {
            applied: reread.applied,
            restart: reread.restart,
        })
    }

    /// Puts `new` in force and takes out of the broker table every broker whose address
    /// changes: in one step under the table's lock, so that no broker is learned by one plan
    /// and served by the other. Brokers that keep their port (only the advertised host or
    /// SNI name changes) are learned again at once; those moving to another port are
    /// returned, to be served again once their old listener has let go of its socket.
    fn swap(&self, new: Arc<Config>) -> Vec<Move> {
        let mut brokers = self.brokers();
        *write(&self.config) = new.clone();
        let mut node_ids: Vec<i32> = brokers.served.keys().copied().collect();
        node_ids.sort_unstable();
        let mut moves = Vec::new();
        let mut in_place = Vec::new();
        for node_id in node_ids {
            let Some(broker) = brokers.table.get(node_id).cloned() else {
                continue;
            };
            let allowed = new
                .upstream_allow
                .as_ref()
                .is_none_or(|allow| allow.permits(host_of(&broker.upstream)));
            let planned = new.plan.advertise(node_id);
            let advertised = planned
                .as_ref()
                .map(|(host, port)| host_port(host, *port))
                .ok();
            if allowed && advertised.as_deref() == Some(broker.advertised.as_str()) {
                continue;
            }
            brokers.table.forget(node_id);
            let listening = brokers.served.remove(&node_id).flatten();
            let reason = match (&planned, allowed) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(_), false) => Some(format!(
                    "its address {} is outside upstream.allow",
                    broker.upstream
                )),
                (Ok(_), true) => None,
            };
            if let Some(reason) = reason {
                tracing::warn!(broker.id = node_id, "broker no longer served: {reason}");
                moves.push(Move::Close(listening));
                continue;
            }
            let port = planned.map_or(0, |(_, port)| port);
            match listening {
                Some(listening) if listening.port != port => {
                    moves.push(Move::Rebind {
                        node_id,
                        upstream: broker.upstream,
                        was: broker.advertised,
                        listening,
                    });
                }
                listening => in_place.push((node_id, broker, advertised, listening)),
            }
        }
        // After every changed broker is out, so that two brokers trading names never clash.
        for (node_id, broker, advertised, listening) in in_place {
            let Some(advertised) = advertised else {
                continue;
            };
            match brokers
                .table
                .learn(node_id, broker.upstream.clone(), advertised.clone())
            {
                Ok(_) => {
                    brokers.served.insert(node_id, listening);
                    tracing::info!(broker.id = node_id, broker.addr = %broker.upstream, advertised = %advertised, was = %broker.advertised, "broker now advertised at a new address");
                }
                Err(e) => {
                    tracing::warn!(broker.id = node_id, "broker no longer served: {e}");
                    moves.push(Move::Close(listening));
                }
            }
        }
        moves
    }

    /// Closes the listeners that [`swap`](Gateway::swap) took out and waits for their
    /// sockets to close, then serves the moved brokers on their new ports. A session that
    /// learns one of them in between (from a Metadata answer) binds it itself, or, while the
    /// old socket still holds the port, fails that one answer, which its client retries.
    async fn move_brokers(&self, moves: Vec<Move>) {
        let mut rebind = Vec::new();
        for m in moves {
            let listening = match m {
                Move::Close(listening) => listening,
                Move::Rebind {
                    node_id,
                    upstream,
                    was,
                    listening,
                } => {
                    rebind.push((node_id, upstream, was));
                    Some(listening)
                }
            };
            if let Some(listening) = listening {
                listening.stop.cancel();
                let _ = listening.ended.await;
            }
        }
        for (node_id, upstream, was) in rebind {
            let Some((host, port)) = upstream
                .rsplit_once(':')
                .and_then(|(_, port)| Some((host_of(&upstream), port.parse::<i32>().ok()?)))
            else {
                continue;
            };
            match self.learn(node_id, host, port) {
                Ok(now) => {
                    tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %host_port(&now.host, now.port), %was, "broker moved to a new port; connections made through the old one go on")
                }
                Err(e) => tracing::warn!(
                    broker.id = node_id,
                    "broker not served on its new port: {e}"
                ),
            }
        }
    }

    /// Sets the connection limit for new connections. Raising it admits more at once;
    /// lowering it closes nothing: permits are taken away as connections end, and new
    /// connections are refused until fewer than the new limit are open.
    async fn resize_limit(&self, limit: usize) {
        let (permits, pending) = {
            let mut state = self.limit.lock().unwrap_or_else(PoisonError::into_inner);
            (state.permits.clone(), state.shrinking.take())
        };
        if let Some(pending) = pending {
            // Whatever it had taken goes back; `permits` says what it had finished.
            pending.abort();
            let _ = pending.await;
        }
        let have = permits.load(Ordering::SeqCst);
        if limit >= have {
            self.connections.add_permits(limit - have);
            permits.store(limit, Ordering::SeqCst);
            return;
        }
        let taken = self.connections.forget_permits(have - limit);
        permits.fetch_sub(taken, Ordering::SeqCst);
        let owed = have - limit - taken;
        let Ok(owed) = u32::try_from(owed) else {
            return;
        };
        if owed == 0 {
            return;
        }
        let semaphore = self.connections.clone();
        let shutdown = self.shutdown.clone();
        let shrinking = tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                taken = semaphore.acquire_many_owned(owed) => {
                    if let Ok(taken) = taken {
                        taken.forget();
                        permits.fetch_sub(owed as usize, Ordering::SeqCst);
                    }
                }
            }
        });
        self.limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shrinking = Some(shrinking);
    }

    pub(crate) fn next_bootstrap_index(&self) -> usize {
        self.next_bootstrap.fetch_add(1, Ordering::Relaxed)
    }

    fn brokers(&self) -> MutexGuard<'_, Brokers> {
        // The table stays consistent across a panic elsewhere: every update is one insert
        // or removal.
        self.brokers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A broker the new port plan moves.
enum Move {
    /// Not served any more: its listener, if it had one, closes.
    Close(Option<Listening>),
    /// Served on another port: the old listener closes, then a new one opens.
    Rebind {
        node_id: i32,
        upstream: String,
        was: String,
        listening: Listening,
    },
}

impl AddressBook for Gateway {
    fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError> {
        let mut brokers = self.brokers();
        // Read under the table's lock, under which a reload swaps it.
        let config = self.config();
        let (gateway_host, gateway_port) = config.plan.advertise(node_id)?;
        let upstream = host_port(host, port);
        if !self.may_dial(host) {
            return Err(RouteError::NotAllowed {
                node_id,
                address: upstream,
            });
        }
        let advertised = host_port(&gateway_host, gateway_port);
        let learned = brokers
            .table
            .learn(node_id, upstream.clone(), advertised.clone())?;
        match learned {
            Learned::Unchanged => {}
            Learned::Moved => {
                tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %advertised, "broker moved; new connections go to the new address");
            }
            Learned::New if !config.plan.port_per_broker() => {
                brokers.served.insert(node_id, None);
                tracing::info!(broker.id = node_id, broker.addr = %upstream, advertised = %advertised, "serving broker");
            }
            Learned::New => {
                // Bound here, before the response naming this node reaches any client, so the
                // client's first connection to the advertised port finds it open.
                let started = match (
                    self.me.upgrade(),
                    listener::bind(config.bind_ip(), gateway_port),
                ) {
                    (Some(gw), Ok(socket)) => {
                        let stop = self.shutdown.child_token();
                        let ended = self.tasks.spawn(listener::accept(
                            socket,
                            Route::Broker(node_id),
                            gw,
                            stop.clone(),
                        ));
                        brokers.served.insert(
                            node_id,
                            Some(Listening {
                                port: gateway_port,
                                stop,
                                ended,
                            }),
                        );
                        Ok(())
                    }
                    (None, _) => Err("the gateway is shutting down".to_owned()),
                    (_, Err(e)) => Err(e.to_string()),
                };
                if let Err(reason) = started {
                    brokers.table.forget(node_id);
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
        let (host, port) = self.config().plan.advertise(node_id)?;
        Ok(Advertised {
            host: StrBytes::from_string(host),
            port,
        })
    }
}

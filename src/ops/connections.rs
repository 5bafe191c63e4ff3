//! The client connections open now, for `/connections`, and the bytes every connection
//! moved, for `kafka_edge_bytes_total`.
//!
//! The data path adds to its own connection's counters (one relaxed atomic add, on a
//! cache line no other session writes) and never takes the table's lock: that is taken
//! when a connection opens or closes and when someone reads the table. Closing folds a
//! connection's bytes into the totals under the same lock a scrape sums under, so the
//! totals never go backwards, which Prometheus would read as a counter reset.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use serde::Serialize;

use crate::cluster::route::Route;

/// One connection's figures, shared by its session and the table.
#[derive(Debug)]
pub(crate) struct Stats {
    /// `None` for a connection that is counted but not listed.
    client: Option<SocketAddr>,
    route: Route,
    opened: Instant,
    /// Bytes of the requests relayed to the broker.
    pub(crate) to_broker: AtomicU64,
    /// Bytes of the responses relayed to the client.
    pub(crate) to_client: AtomicU64,
    /// The `client.id` of the client's first request: set once, by the session, and read
    /// by `/connections` without a lock.
    client_id: OnceLock<String>,
    /// Who the client authenticated as at the gateway: set once, when it is admitted (a
    /// re-authentication must keep the principal, as in Kafka).
    principal: OnceLock<String>,
}

impl Stats {
    /// Keeps the first client id told; the session tells one at most.
    pub(crate) fn set_client_id(&self, id: &str) {
        let _ = self.client_id.set(id.to_owned());
    }

    pub(crate) fn set_principal(&self, principal: &str) {
        let _ = self.principal.set(principal.to_owned());
    }
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: BTreeMap<u64, Arc<Stats>>,
    /// The bytes of the connections no longer open (and of those never listed).
    closed_to_broker: u64,
    closed_to_client: u64,
}

#[derive(Debug, Default)]
pub struct Connections {
    table: Mutex<Table>,
}

/// Keeps a connection in the table; dropping it takes the connection off and keeps its
/// bytes in the totals.
#[derive(Debug)]
pub(crate) struct Listed {
    id: Option<u64>,
    stats: Arc<Stats>,
    connections: Arc<Connections>,
}

impl Drop for Listed {
    fn drop(&mut self) {
        let mut table = self.connections.table();
        if let Some(id) = self.id {
            table.open.remove(&id);
        }
        table.closed_to_broker += self.stats.to_broker.load(Ordering::Relaxed);
        table.closed_to_client += self.stats.to_client.load(Ordering::Relaxed);
    }
}

/// A connection as `/connections` shows it.
#[derive(Debug, Serialize, PartialEq)]
pub struct Connection {
    pub client: String,
    /// Who the client authenticated as at the gateway (`[client_auth]`); `None` when the
    /// gateway does not authenticate clients, or before the login.
    pub principal: Option<String>,
    pub route: String,
    /// The `client.id` of the client's first request (at most 256 bytes of it); `None`
    /// until that request arrives, or when the client sends none.
    pub client_id: Option<String>,
    pub bytes_to_broker: u64,
    pub bytes_to_client: u64,
    pub age_seconds: f64,
}

impl Connections {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Every update under the lock is one insert, one removal or an add.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts counting a connection; lists it when its client is known.
    pub(crate) fn open(
        self: &Arc<Self>,
        client: Option<SocketAddr>,
        route: Route,
    ) -> (Arc<Stats>, Listed) {
        let stats = Arc::new(Stats {
            client,
            route,
            opened: Instant::now(),
            to_broker: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            client_id: OnceLock::new(),
            principal: OnceLock::new(),
        });
        let id = client.map(|_| {
            let mut table = self.table();
            table.next_id += 1;
            let id = table.next_id;
            table.open.insert(id, stats.clone());
            id
        });
        let listed = Listed {
            id,
            stats: stats.clone(),
            connections: self.clone(),
        };
        (stats, listed)
    }

    /// Bytes relayed by every connection, open or closed: (to brokers, to clients).
    pub fn bytes(&self) -> (u64, u64) {
        let table = self.table();
        table.open.values().fold(
            (table.closed_to_broker, table.closed_to_client),
            |(b, c), s| {
                (
                    b + s.to_broker.load(Ordering::Relaxed),
                    c + s.to_client.load(Ordering::Relaxed),
                )
            },
        )
    }

    /// The open connections, oldest first.
    pub fn snapshot(&self) -> Vec<Connection> {
        let open: Vec<Arc<Stats>> = self.table().open.values().cloned().collect();
        let now = Instant::now();
        open.iter()
            .filter_map(|s| {
                Some(Connection {
                    client: s.client?.to_string(),
                    principal: s.principal.get().cloned(),
                    route: s.route.to_string(),
                    client_id: s.client_id.get().cloned(),
                    bytes_to_broker: s.to_broker.load(Ordering::Relaxed),
                    bytes_to_client: s.to_client.load(Ordering::Relaxed),
                    // Milliseconds are plenty for an age.
                    age_seconds: (now.saturating_duration_since(s.opened).as_millis() as f64) / 1e3,
                })
            })
            .collect()
    }
}

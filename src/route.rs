//! Routes, the address plan (which gateway port serves which node id) and the broker table
//! (which upstream address each known node id has).
//!
//! The plan is a pure function of configuration, so every replica of the gateway started
//! with the same configuration tells clients the same thing without talking to the others.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Which upstream a client connection is for. Everything after the listener sees only this,
/// whatever told the routes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Any reachable bootstrap server of the cluster.
    Bootstrap,
    /// Exactly the broker with this node id.
    Broker(i32),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Bootstrap => f.write_str("bootstrap"),
            Route::Broker(id) => write!(f, "broker-{id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("node id {node_id} fits no configured port range or override; add one to `[brokers]`")]
    Unmapped { node_id: i32 },
    #[error("node id {node_id} maps to port {port}, which is already the {taken_by} port")]
    PortTaken {
        node_id: i32,
        port: u16,
        taken_by: String,
    },
    #[error("cannot bind the listener for node id {node_id} on port {port}: {reason}")]
    Bind {
        node_id: i32,
        port: u16,
        reason: String,
    },
}

/// A block of node ids served on a block of consecutive ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRange {
    pub first_node_id: i32,
    pub last_node_id: i32,
    pub first_port: u16,
}

impl NodeRange {
    fn port_for(&self, node_id: i32) -> Option<u16> {
        if !(self.first_node_id..=self.last_node_id).contains(&node_id) {
            return None;
        }
        let offset = i64::from(node_id) - i64::from(self.first_node_id);
        u16::try_from(i64::from(self.first_port) + offset).ok()
    }

    /// The ports this range can hand out, as an inclusive pair.
    pub fn ports(&self) -> (i64, i64) {
        let first = i64::from(self.first_port);
        (
            first,
            first + i64::from(self.last_node_id) - i64::from(self.first_node_id),
        )
    }
}

/// Where clients are told to find each node: one host, one port per node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    pub advertised_host: String,
    /// The port clients bootstrap on.
    pub bootstrap_port: u16,
    /// Node id N is served at `port_base + N` when no range or override says otherwise.
    pub port_base: Option<u16>,
    pub ranges: Vec<NodeRange>,
    pub overrides: BTreeMap<i32, u16>,
}

impl AddressPlan {
    /// The gateway port for a node id: explicit override first, then ranges, then the base.
    pub fn port_for(&self, node_id: i32) -> Result<u16, RouteError> {
        let port = self
            .overrides
            .get(&node_id)
            .copied()
            .or_else(|| self.ranges.iter().find_map(|r| r.port_for(node_id)))
            .or_else(|| {
                let base = self.port_base?;
                if node_id < 0 {
                    return None;
                }
                u16::try_from(i64::from(base) + i64::from(node_id)).ok()
            })
            .ok_or(RouteError::Unmapped { node_id })?;
        if port == self.bootstrap_port {
            return Err(RouteError::PortTaken {
                node_id,
                port,
                taken_by: "bootstrap".into(),
            });
        }
        Ok(port)
    }
}

/// A node the gateway has learned from the cluster's own responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// `host:port` as the cluster advertises it; the only address this route ever dials.
    pub upstream: String,
    /// The gateway port that serves it.
    pub port: u16,
}

/// What learning an address changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    New,
    Moved,
    Unchanged,
}

/// Node id -> upstream address, for every node the cluster has reported.
#[derive(Debug, Default)]
pub struct BrokerTable {
    brokers: HashMap<i32, Broker>,
}

impl BrokerTable {
    pub fn get(&self, node_id: i32) -> Option<&Broker> {
        self.brokers.get(&node_id)
    }

    /// Records an address the cluster reported. Refuses a port that another node already
    /// holds, which only happens when ranges and overrides are configured to overlap.
    pub fn learn(
        &mut self,
        node_id: i32,
        upstream: String,
        port: u16,
    ) -> Result<Learned, RouteError> {
        if let Some((other, _)) = self
            .brokers
            .iter()
            .find(|(id, b)| **id != node_id && b.port == port)
        {
            return Err(RouteError::PortTaken {
                node_id,
                port,
                taken_by: format!("node id {other}"),
            });
        }
        match self.brokers.get_mut(&node_id) {
            Some(known) if known.upstream == upstream => Ok(Learned::Unchanged),
            Some(known) => {
                known.upstream = upstream;
                Ok(Learned::Moved)
            }
            None => {
                self.brokers.insert(node_id, Broker { upstream, port });
                Ok(Learned::New)
            }
        }
    }

    /// Drops a node whose listener could not be started, so the next response retries it.
    pub fn forget(&mut self, node_id: i32) {
        self.brokers.remove(&node_id);
    }
}

/// Formats `host:port`, bracketing IPv6 literals so the result parses as a socket address.
pub fn host_port(host: &str, port: impl fmt::Display) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AddressPlan {
        AddressPlan {
            advertised_host: "kafka.example.com".into(),
            bootstrap_port: 9092,
            port_base: Some(19000),
            ranges: vec![NodeRange {
                first_node_id: 1000,
                last_node_id: 1099,
                first_port: 20000,
            }],
            overrides: BTreeMap::from([(111, 19500)]),
        }
    }

    #[test]
    fn override_then_range_then_base() {
        let plan = plan();
        assert_eq!(plan.port_for(111), Ok(19500));
        assert_eq!(plan.port_for(1000), Ok(20000));
        assert_eq!(plan.port_for(1099), Ok(20099));
        assert_eq!(plan.port_for(1100), Ok(20100)); // falls back to the base
        assert_eq!(plan.port_for(3), Ok(19003));
    }

    #[test]
    fn unmappable_ids_are_errors() {
        let mut plan = plan();
        assert_eq!(plan.port_for(-1), Err(RouteError::Unmapped { node_id: -1 }));
        assert_eq!(
            plan.port_for(46536),
            Err(RouteError::Unmapped { node_id: 46536 })
        );
        plan.port_base = None;
        assert_eq!(plan.port_for(3), Err(RouteError::Unmapped { node_id: 3 }));
        plan.port_base = Some(9090);
        assert!(matches!(
            plan.port_for(2),
            Err(RouteError::PortTaken { .. })
        ));
    }

    #[test]
    fn table_tracks_new_moved_and_conflicting_nodes() {
        let mut table = BrokerTable::default();
        assert_eq!(
            table.learn(1, "10.0.0.1:9092".into(), 19001),
            Ok(Learned::New)
        );
        assert_eq!(
            table.learn(1, "10.0.0.1:9092".into(), 19001),
            Ok(Learned::Unchanged)
        );
        assert_eq!(
            table.learn(1, "10.0.0.9:9092".into(), 19001),
            Ok(Learned::Moved)
        );
        assert_eq!(table.get(1).unwrap().upstream, "10.0.0.9:9092");
        assert!(matches!(
            table.learn(2, "10.0.0.2:9092".into(), 19001),
            Err(RouteError::PortTaken { node_id: 2, .. })
        ));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("::1", 9092), "[::1]:9092");
        assert_eq!(host_port("10.0.0.1", 9092), "10.0.0.1:9092");
        assert_eq!(host_port("kafka-0.svc", 9092), "kafka-0.svc:9092");
    }
}

//! Routes, the address plan (which gateway port serves which node id) and the broker table
//! (which upstream address each known node id has).
//!
//! The plan is a pure function of configuration, so every replica of the gateway started
//! with the same configuration tells clients the same thing without talking to the others.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

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
    #[error("node id {node_id} would be told {address}, which is already the {taken_by} address")]
    Collision {
        node_id: i32,
        address: String,
        taken_by: String,
    },
    #[error("node id {node_id} was reported at {address}, outside upstream.allow: not served")]
    NotAllowed { node_id: i32, address: String },
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
    /// The highest node id the base rule serves; higher ids need a range or an override.
    pub port_base_max_node_id: i32,
    pub ranges: Vec<NodeRange>,
    pub overrides: BTreeMap<i32, u16>,
    /// SNI mode, when set: brokers are told apart by name on the bootstrap port.
    pub sni: Option<SniNames>,
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
                if !(0..=self.port_base_max_node_id).contains(&node_id) {
                    return None;
                }
                u16::try_from(i64::from(base) + i64::from(node_id)).ok()
            })
            .ok_or(RouteError::Unmapped { node_id })?;
        if port == self.bootstrap_port {
            return Err(RouteError::Collision {
                node_id,
                address: format!("port {port}"),
                taken_by: "bootstrap".into(),
            });
        }
        Ok(port)
    }

    /// The host and port clients are told for a node.
    pub fn advertise(&self, node_id: i32) -> Result<(String, u16), RouteError> {
        match &self.sni {
            Some(names) => Ok((names.broker_host(node_id)?, self.bootstrap_port)),
            None => Ok((self.advertised_host.clone(), self.port_for(node_id)?)),
        }
    }

    /// Whether each broker gets a port of its own (port mode) or shares the bootstrap port
    /// and is told apart by its TLS server name (SNI mode).
    pub fn port_per_broker(&self) -> bool {
        self.sni.is_none()
    }

    /// The bootstrap address clients are told, `host:port`.
    pub fn bootstrap_address(&self) -> String {
        match &self.sni {
            Some(names) => host_port(&names.bootstrap_host(), self.bootstrap_port),
            None => host_port(&self.advertised_host, self.bootstrap_port),
        }
    }
}

/// Who a port of the plan belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Claimant {
    /// A port the gateway listens on for something else (bootstrap, admin).
    Reserved(usize),
    Override,
    Range(usize),
    Base,
}

/// One clash between two rules of the plan, over a run of ports.
struct Clash {
    first: u16,
    last: u16,
    count: usize,
    /// The first port's two claims: (node id or -1, rule).
    example: ((i32, Claimant), (i32, Claimant)),
}

impl AddressPlan {
    /// Every port that two rules of the plan would hand to different owners (two node ids,
    /// or a node id and one of the `reserved` ports: bootstrap, admin), as one line per pair
    /// of rules. Empty in SNI mode, where brokers share the bootstrap port.
    pub fn collisions(&self, reserved: &[(u16, &str)]) -> Vec<String> {
        if self.sni.is_some() {
            return Vec::new();
        }
        let mut claims: Vec<(u16, i32, Claimant)> = reserved
            .iter()
            .enumerate()
            .map(|(i, (port, _))| (*port, -1, Claimant::Reserved(i)))
            .collect();
        let covered = |node_id: i32| {
            self.overrides.contains_key(&node_id)
                || self
                    .ranges
                    .iter()
                    .any(|r| (r.first_node_id..=r.last_node_id).contains(&node_id))
        };
        for (node_id, port) in &self.overrides {
            claims.push((*port, *node_id, Claimant::Override));
        }
        for (i, range) in self.ranges.iter().enumerate() {
            for node_id in range.first_node_id..=range.last_node_id {
                if let Some(port) = range.port_for(node_id) {
                    if !self.overrides.contains_key(&node_id) {
                        claims.push((port, node_id, Claimant::Range(i)));
                    }
                }
            }
        }
        if let Some(base) = self.port_base {
            let last = self
                .port_base_max_node_id
                .min(i32::from(u16::MAX) - i32::from(base));
            for node_id in (0..=last).filter(|id| !covered(*id)) {
                claims.push((base + node_id as u16, node_id, Claimant::Base));
            }
        }
        claims.sort_unstable();
        let mut clashes: BTreeMap<(Claimant, Claimant), Clash> = BTreeMap::new();
        for pair in claims.windows(2) {
            let ((port, a_node, a), (other_port, b_node, b)) = (pair[0], pair[1]);
            if port != other_port || (a_node == b_node && a_node >= 0) {
                continue;
            }
            // One order per pair of rules, the more specific first.
            let ((a_node, a), (b_node, b)) = if a <= b {
                ((a_node, a), (b_node, b))
            } else {
                ((b_node, b), (a_node, a))
            };
            clashes
                .entry((a, b))
                .and_modify(|c| {
                    c.last = port;
                    c.count += 1;
                })
                .or_insert(Clash {
                    first: port,
                    last: port,
                    count: 1,
                    example: ((a_node, a), (b_node, b)),
                });
        }
        let name = |claimant: Claimant| match claimant {
            Claimant::Reserved(i) => reserved
                .get(i)
                .map_or("a reserved port", |r| r.1)
                .to_owned(),
            Claimant::Override => "brokers.ports".to_owned(),
            Claimant::Range(i) => format!("brokers.ranges[{i}]"),
            Claimant::Base => "brokers.port_base".to_owned(),
        };
        let who = |(node, claimant): (i32, Claimant)| match claimant {
            Claimant::Reserved(_) => name(claimant),
            _ => format!("node {node} by {}", name(claimant)),
        };
        clashes
            .into_iter()
            .map(|((a, b), clash)| {
                let ports = if clash.count == 1 {
                    format!("port {}", clash.first)
                } else {
                    format!("{} ports in {}..={}", clash.count, clash.first, clash.last)
                };
                let hint = if b == Claimant::Base || a == Claimant::Base {
                    "; lower brokers.port_base_max_node_id or move the other rule"
                } else {
                    ""
                };
                format!(
                    "{} and {} both claim {ports} (port {}: {} and {}){hint}",
                    name(a),
                    name(b),
                    clash.first,
                    who(clash.example.0),
                    who(clash.example.1)
                )
            })
            .collect()
    }
}

/// SNI mode's names: `bootstrap.<domain>` for the bootstrap route, and one name per broker
/// from a pattern such as `broker-{id}`, all under one domain (and one wildcard certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniNames {
    pub domain: String,
    /// The bootstrap label, `bootstrap` by default.
    pub bootstrap: String,
    /// The broker label, with `{id}` where the node id goes: `broker-{id}` by default.
    pub broker: String,
}

impl SniNames {
    pub fn bootstrap_host(&self) -> String {
        format!("{}.{}", self.bootstrap, self.domain)
    }

    pub fn broker_host(&self, node_id: i32) -> Result<String, RouteError> {
        if node_id < 0 {
            return Err(RouteError::Unmapped { node_id });
        }
        Ok(format!(
            "{}.{}",
            self.broker.replace("{id}", &node_id.to_string()),
            self.domain
        ))
    }

    /// The route a TLS server name asks for, if it is one of ours. Names compare without
    /// regard to case, as DNS names do.
    pub fn route(&self, server_name: &str) -> Option<Route> {
        let name = server_name.to_ascii_lowercase();
        let label = name.strip_suffix(&format!(".{}", self.domain.to_ascii_lowercase()))?;
        if label == self.bootstrap.to_ascii_lowercase() {
            return Some(Route::Bootstrap);
        }
        let pattern = self.broker.to_ascii_lowercase();
        let (prefix, suffix) = pattern.split_once("{id}")?;
        let id = label.strip_prefix(prefix)?.strip_suffix(suffix)?;
        // Digits only: "+7" or "07" would parse, but are not names this gateway hands out.
        if id.is_empty()
            || !id.bytes().all(|b| b.is_ascii_digit())
            || (id.len() > 1 && id.starts_with('0'))
        {
            return None;
        }
        id.parse().ok().map(Route::Broker)
    }
}

/// A node the gateway has learned from the cluster's own responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// `host:port` as the cluster advertises it; the only address this route ever dials.
    pub upstream: String,
    /// `host:port` clients are told.
    pub advertised: String,
    /// Since when the cluster's broker list has gone without this node, if it has.
    pub missing_since: Option<Instant>,
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

    /// Records an address the cluster reported. Refuses to tell two nodes the same address,
    /// which only happens when ranges and overrides are configured to overlap.
    pub fn learn(
        &mut self,
        node_id: i32,
        upstream: String,
        advertised: String,
    ) -> Result<Learned, RouteError> {
        if let Some((other, _)) = self
            .brokers
            .iter()
            .find(|(id, b)| **id != node_id && b.advertised == advertised)
        {
            return Err(RouteError::Collision {
                node_id,
                address: advertised,
                taken_by: format!("node id {other}"),
            });
        }
        match self.brokers.get_mut(&node_id) {
            Some(known) if known.upstream == upstream => {
                known.missing_since = None;
                Ok(Learned::Unchanged)
            }
            Some(known) => {
                known.upstream = upstream;
                known.missing_since = None;
                Ok(Learned::Moved)
            }
            None => {
                self.brokers.insert(
                    node_id,
                    Broker {
                        upstream,
                        advertised,
                        missing_since: None,
                    },
                );
                Ok(Learned::New)
            }
        }
    }

    /// Drops a node whose listener could not be started, so the next response retries it.
    pub fn forget(&mut self, node_id: i32) {
        self.brokers.remove(&node_id);
    }

    /// Given the cluster's whole broker list at `now`, forgets every node it has gone without
    /// for at least `grace`, and returns them. A node missing from one list only (a broker
    /// restarting is fenced out of Metadata for a while) starts the clock; one that comes
    /// back stops it.
    pub fn retire(&mut self, reported: &[i32], now: Instant, grace: Duration) -> Vec<i32> {
        let mut retired = Vec::new();
        for (node_id, broker) in &mut self.brokers {
            if reported.contains(node_id) {
                broker.missing_since = None;
                continue;
            }
            let since = *broker.missing_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= grace {
                retired.push(*node_id);
            }
        }
        for node_id in &retired {
            self.brokers.remove(node_id);
        }
        retired.sort_unstable();
        retired
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

/// The host part of `host:port`, without IPv6 brackets: the name a broker's certificate
/// must carry, and what the allow-list judges.
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AddressPlan {
        AddressPlan {
            advertised_host: "kafka.example.com".into(),
            bootstrap_port: 9092,
            port_base: Some(19000),
            port_base_max_node_id: 46535,
            ranges: vec![NodeRange {
                first_node_id: 1000,
                last_node_id: 1099,
                first_port: 20000,
            }],
            overrides: BTreeMap::from([(111, 19500)]),
            sni: None,
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
            Err(RouteError::Collision { .. })
        ));
    }

    #[test]
    fn table_tracks_new_moved_and_conflicting_nodes() {
        let mut table = BrokerTable::default();
        assert_eq!(
            table.learn(1, "10.0.0.1:9092".into(), "gw:19001".into()),
            Ok(Learned::New)
        );
        assert_eq!(
            table.learn(1, "10.0.0.1:9092".into(), "gw:19001".into()),
            Ok(Learned::Unchanged)
        );
        assert_eq!(
            table.learn(1, "10.0.0.9:9092".into(), "gw:19001".into()),
            Ok(Learned::Moved)
        );
        assert_eq!(table.get(1).unwrap().upstream, "10.0.0.9:9092");
        assert!(matches!(
            table.learn(2, "10.0.0.2:9092".into(), "gw:19001".into()),
            Err(RouteError::Collision { node_id: 2, .. })
        ));
    }

    #[test]
    fn nodes_the_cluster_stops_reporting_retire_after_the_grace_period() {
        let mut table = BrokerTable::default();
        for id in [1, 2, 3] {
            table
                .learn(id, format!("10.0.0.{id}:9092"), format!("gw:1900{id}"))
                .unwrap();
        }
        let grace = Duration::from_secs(60);
        let t0 = Instant::now();
        // Broker 2 restarts: gone from one list, back in the next. Nothing retires.
        assert!(table.retire(&[1, 3], t0, grace).is_empty());
        assert!(table.retire(&[1, 2, 3], t0 + grace, grace).is_empty());
        // Broker 3 is decommissioned: gone for the whole grace period.
        assert!(table.retire(&[1, 2], t0 + grace, grace).is_empty());
        assert!(table.get(3).is_some());
        assert_eq!(table.retire(&[1, 2], t0 + grace * 2, grace), vec![3]);
        assert!(table.get(3).is_none());
        // Reported again later, it is new again.
        assert_eq!(
            table.learn(3, "10.0.0.3:9092".into(), "gw:19003".into()),
            Ok(Learned::New)
        );
    }

    #[test]
    fn sni_names_route_both_ways() {
        let names = SniNames {
            domain: "kafka.example.com".into(),
            bootstrap: "bootstrap".into(),
            broker: "broker-{id}".into(),
        };
        let plan = AddressPlan {
            sni: Some(names.clone()),
            ..plan()
        };
        assert_eq!(
            plan.advertise(7),
            Ok(("broker-7.kafka.example.com".into(), 9092))
        );
        assert_eq!(plan.bootstrap_address(), "bootstrap.kafka.example.com:9092");
        assert!(!plan.port_per_broker());
        assert_eq!(
            names.route("bootstrap.kafka.example.com"),
            Some(Route::Bootstrap)
        );
        assert_eq!(
            names.route("Broker-1001.KAFKA.example.com"),
            Some(Route::Broker(1001))
        );
        for refused in [
            "broker-.kafka.example.com",
            "broker-07.kafka.example.com",
            "broker-+7.kafka.example.com",
            "broker-7.other.example.com",
            "broker-7.kafka.example.com.evil",
            "evil-broker-7.kafka.example.com",
            "kafka.example.com",
            "broker-99999999999.kafka.example.com",
        ] {
            assert_eq!(names.route(refused), None, "{refused}");
        }
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("kafka-0.svc:9093"), "kafka-0.svc");
        assert_eq!(host_of("10.0.0.5:9093"), "10.0.0.5");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("::1", 9092), "[::1]:9092");
        assert_eq!(host_port("10.0.0.1", 9092), "10.0.0.1:9092");
        assert_eq!(host_port("kafka-0.svc", 9092), "kafka-0.svc:9092");
    }
}

//! Counters the data path bumps and the admin endpoint renders in the Prometheus text format.
//!
//! Per-request figures live in fixed arrays indexed by API key, so the hot path touches one
//! atomic and takes no lock; per-route figures change only when connections open and close,
//! and sit behind a mutex. Labels stay low-cardinality: API keys, node ids, sides.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::cluster::route::Route;
use crate::edge::sniff::Mistake;
use crate::proxy::session::Side;

/// Why a connection was refused or closed before it carried Kafka: a client mistake, or the
/// connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Mistake(Mistake),
    ConnectionLimit,
}

impl Refusal {
    const COUNT: usize = Mistake::ALL.len() + 1;

    fn all() -> impl Iterator<Item = Refusal> {
        Mistake::ALL
            .into_iter()
            .map(Refusal::Mistake)
            .chain([Refusal::ConnectionLimit])
    }

    pub fn kind(self) -> &'static str {
        match self {
            Refusal::Mistake(mistake) => mistake.kind(),
            Refusal::ConnectionLimit => "connection_limit",
        }
    }

    fn slot(self) -> usize {
        Refusal::all().position(|r| r == self).unwrap_or(0)
    }
}

/// API keys below this get their own series; higher (vendor) keys share one.
const KEYS: usize = 128;
/// Upper bounds of the request latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct PerRoute {
    opened: u64,
    active: i64,
    /// Closed connections by the side that ended them.
    closed: BTreeMap<&'static str, u64>,
}

struct PerKey {
    requests: AtomicU64,
    responses: AtomicU64,
    /// Cumulative counts per bucket, then the +Inf count.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

impl Default for PerKey {
    fn default() -> PerKey {
        PerKey {
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_micros: AtomicU64::new(0),
        }
    }
}

/// The per-API counters of one route. A session takes its route's once, at the start, so
/// the data path itself takes no lock.
#[derive(Clone)]
pub struct RouteCounters(Arc<Vec<PerKey>>);

pub struct Metrics {
    routes: Mutex<BTreeMap<String, PerRoute>>,
    /// Per-API counters by route label.
    keys: Mutex<BTreeMap<String, RouteCounters>>,
    bytes_to_broker: AtomicU64,
    bytes_to_client: AtomicU64,
    /// Of the bytes relayed, those moved socket to socket without a copy.
    bytes_spliced: AtomicU64,
    rewrites_ok: Vec<AtomicU64>,
    rewrites_failed: Vec<AtomicU64>,
    errors: [AtomicU64; 3],
    connect_failures: AtomicU64,
    /// Broker addresses refused by `[upstream] allow`, when learned or dialled.
    broker_addresses_refused: AtomicU64,
    /// Brokers retired after the cluster stopped reporting them.
    brokers_retired: AtomicU64,
    /// Connections refused before their first Kafka byte, by [`Refusal`].
    refused: [AtomicU64; Refusal::COUNT],
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            routes: Mutex::default(),
            keys: Mutex::default(),
            bytes_to_broker: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
            bytes_spliced: AtomicU64::new(0),
            rewrites_ok: (0..=KEYS).map(|_| AtomicU64::new(0)).collect(),
            rewrites_failed: (0..=KEYS).map(|_| AtomicU64::new(0)).collect(),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            connect_failures: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            broker_addresses_refused: AtomicU64::new(0),
            brokers_retired: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }
}

fn slot(api_key: i16) -> usize {
    usize::try_from(api_key).map_or(KEYS, |k| k.min(KEYS))
}

fn route_label(route: Route) -> String {
    match route {
        Route::Bootstrap => "bootstrap".to_owned(),
        Route::Broker(id) => id.to_string(),
    }
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Broker => "broker",
        Side::Gateway => "gateway",
    }
}

impl Metrics {
    pub fn connection_opened(&self, route: Route) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = routes.entry(route_label(route)).or_default();
        entry.opened += 1;
        entry.active += 1;
    }

    /// A connection ended; `side` is whose doing it was (the client for a clean hang-up).
    pub fn connection_closed(&self, route: Route, side: Side) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = routes.entry(route_label(route)).or_default();
        entry.active -= 1;
        *entry.closed.entry(side_label(side)).or_default() += 1;
    }

    /// The counters of `route`, made on first use.
    pub fn route_counters(&self, route: Route) -> RouteCounters {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.entry(route_label(route))
            .or_insert_with(|| {
                RouteCounters(Arc::new((0..=KEYS).map(|_| PerKey::default()).collect()))
            })
            .clone()
    }

    pub fn request(&self, counters: &RouteCounters, api_key: i16, bytes: usize) {
        counters.0[slot(api_key)]
            .requests
            .fetch_add(1, Ordering::Relaxed);
        self.bytes_to_broker
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A response began; `waited` is the time since its request was read.
    pub fn response(&self, counters: &RouteCounters, api_key: i16, bytes: usize, waited: Duration) {
        let key = &counters.0[slot(api_key)];
        key.responses.fetch_add(1, Ordering::Relaxed);
        let seconds = waited.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        key.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        key.latency_micros
            .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        self.bytes_to_client
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn spliced(&self, bytes: usize) {
        self.bytes_spliced
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn rewrite(&self, api_key: i16, ok: bool) {
        let counters = if ok {
            &self.rewrites_ok
        } else {
            &self.rewrites_failed
        };
        counters[slot(api_key)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, side: Side) {
        let index = match side {
            Side::Client => 0,
            Side::Broker => 1,
            Side::Gateway => 2,
        };
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn broker_address_refused(&self) {
        self.broker_addresses_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn broker_retired(&self) {
        self.brokers_retired.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why.slot()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connect_failure(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let key_label = |slot: usize| match i16::try_from(slot).ok().filter(|_| slot < KEYS) {
            Some(key) => match ApiKey::try_from(key) {
                Ok(api) => format!("api_key=\"{key}\",api=\"{api:?}\""),
                Err(_) => format!("api_key=\"{key}\",api=\"unknown\""),
            },
            None => "api_key=\"other\",api=\"unknown\"".to_owned(),
        };

        header(
            &mut out,
            "kafka_edge_build_info",
            "gauge",
            "Build of this kafka-edge.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "kafka_edge_ready",
            "gauge",
            "1 once the cluster answered a Metadata request and while not draining.",
        );
        let _ = writeln!(out, "kafka_edge_ready {}", u8::from(self.is_ready()));

        {
            let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            header(
                &mut out,
                "kafka_edge_connections_opened_total",
                "counter",
                "Client connections accepted, by route.",
            );
            for (route, r) in routes.iter() {
                let _ = writeln!(
                    out,
                    "kafka_edge_connections_opened_total{{route=\"{route}\"}} {}",
                    r.opened
                );
            }
            header(
                &mut out,
                "kafka_edge_connections_active",
                "gauge",
                "Client connections open now, by route.",
            );
            for (route, r) in routes.iter() {
                let _ = writeln!(
                    out,
                    "kafka_edge_connections_active{{route=\"{route}\"}} {}",
                    r.active
                );
            }
            header(
                &mut out,
                "kafka_edge_connections_closed_total",
                "counter",
                "Client connections closed, by route and the side that ended them.",
            );
            for (route, r) in routes.iter() {
                for (side, n) in &r.closed {
                    let _ = writeln!(out, "kafka_edge_connections_closed_total{{route=\"{route}\",side=\"{side}\"}} {n}");
                }
            }
        }

        header(
            &mut out,
            "kafka_edge_requests_total",
            "counter",
            "Requests relayed to brokers, by route and API.",
        );
        header(
            &mut out,
            "kafka_edge_responses_total",
            "counter",
            "Responses relayed to clients, by route and API.",
        );
        header(
            &mut out,
            "kafka_edge_request_duration_seconds",
            "histogram",
            "Time from a request's head to its response's head, by route and API.",
        );
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        for (slot, (route, key)) in keys.iter().flat_map(|(route, counters)| {
            counters
                .0
                .iter()
                .enumerate()
                .map(move |(slot, key)| (slot, (route, key)))
        }) {
            let requests = load(&key.requests);
            if requests == 0 {
                continue;
            }
            let label = format!("route=\"{route}\",{}", key_label(slot));
            let _ = writeln!(out, "kafka_edge_requests_total{{{label}}} {requests}");
            let _ = writeln!(
                out,
                "kafka_edge_responses_total{{{label}}} {}",
                load(&key.responses)
            );
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += load(&key.buckets[i]);
                let _ = writeln!(out, "kafka_edge_request_duration_seconds_bucket{{{label},le=\"{bound}\"}} {cumulative}");
            }
            cumulative += load(&key.buckets[BUCKETS.len()]);
            let _ = writeln!(
                out,
                "kafka_edge_request_duration_seconds_bucket{{{label},le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "kafka_edge_request_duration_seconds_sum{{{label}}} {}",
                load(&key.latency_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "kafka_edge_request_duration_seconds_count{{{label}}} {cumulative}"
            );
        }

        header(
            &mut out,
            "kafka_edge_bytes_total",
            "counter",
            "Bytes relayed, by direction.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_bytes_total{{direction=\"to_broker\"}} {}",
            load(&self.bytes_to_broker)
        );
        let _ = writeln!(
            out,
            "kafka_edge_bytes_total{{direction=\"to_client\"}} {}",
            load(&self.bytes_to_client)
        );
        header(
            &mut out,
            "kafka_edge_spliced_bytes_total",
            "counter",
            "Of the bytes relayed, those moved socket to socket by splice, never copied.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_spliced_bytes_total {}",
            load(&self.bytes_spliced)
        );

        header(
            &mut out,
            "kafka_edge_rewrites_total",
            "counter",
            "Responses whose broker addresses were rewritten, by API and result.",
        );
        for slot in 0..=KEYS {
            for (result, counters) in [("ok", &self.rewrites_ok), ("error", &self.rewrites_failed)]
            {
                let n = load(&counters[slot]);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "kafka_edge_rewrites_total{{{},result=\"{result}\"}} {n}",
                        key_label(slot)
                    );
                }
            }
        }

        header(
            &mut out,
            "kafka_edge_errors_total",
            "counter",
            "Connections closed on an error, by the side at fault.",
        );
        for (side, counter) in ["client", "broker", "gateway"].iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "kafka_edge_errors_total{{side=\"{side}\"}} {}",
                load(counter)
            );
        }
        header(
            &mut out,
            "kafka_edge_upstream_connect_failures_total",
            "counter",
            "Broker connections that could not be made.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_upstream_connect_failures_total {}",
            load(&self.connect_failures)
        );
        header(
            &mut out,
            "kafka_edge_broker_addresses_refused_total",
            "counter",
            "Broker addresses outside upstream.allow, refused when learned or dialled.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_broker_addresses_refused_total {}",
            load(&self.broker_addresses_refused)
        );
        header(
            &mut out,
            "kafka_edge_brokers_retired_total",
            "counter",
            "Brokers whose listener closed after the cluster stopped reporting them.",
        );
        let _ = writeln!(
            out,
            "kafka_edge_brokers_retired_total {}",
            load(&self.brokers_retired)
        );
        header(
            &mut out,
            "kafka_edge_refused_connections_total",
            "counter",
            "Client connections refused or closed before they carried Kafka, by why: a protocol mistake the log names, or the connection limit.",
        );
        for why in Refusal::all() {
            let _ = writeln!(
                out,
                "kafka_edge_refused_connections_total{{kind=\"{}\"}} {}",
                why.kind(),
                load(&self.refused[why.slot()])
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::default();
        m.connection_opened(Route::Bootstrap);
        m.connection_opened(Route::Broker(3));
        m.connection_closed(Route::Broker(3), Side::Client);
        let bootstrap = m.route_counters(Route::Bootstrap);
        m.request(&bootstrap, 3, 100);
        m.response(&bootstrap, 3, 4000, Duration::from_micros(700));
        m.rewrite(3, true);
        m.spliced(70_000);
        m.request(&m.route_counters(Route::Broker(3)), 31000, 10);
        m.error(Side::Broker);
        m.set_ready(true);
        let text = m.render();
        for line in [
            "kafka_edge_ready 1",
            "kafka_edge_connections_opened_total{route=\"bootstrap\"} 1",
            "kafka_edge_connections_active{route=\"3\"} 0",
            "kafka_edge_connections_closed_total{route=\"3\",side=\"client\"} 1",
            "kafka_edge_requests_total{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_request_duration_seconds_bucket{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\",le=\"0.0005\"} 0",
            "kafka_edge_request_duration_seconds_bucket{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\",le=\"0.001\"} 1",
            "kafka_edge_request_duration_seconds_count{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_requests_total{route=\"3\",api_key=\"other\",api=\"unknown\"} 1",
            "kafka_edge_bytes_total{direction=\"to_client\"} 4000",
            "kafka_edge_spliced_bytes_total 70000",
            "kafka_edge_rewrites_total{api_key=\"3\",api=\"Metadata\",result=\"ok\"} 1",
            "kafka_edge_errors_total{side=\"broker\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}

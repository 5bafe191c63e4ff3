//! Counters the data path bumps, exposed through prometheus-client.
//!
//! The data path pays a relaxed atomic add per figure and takes no lock: per-request figures
//! live in fixed arrays indexed by API key, shared by the connections of a route; bytes are
//! counted on the connection's own counters (see [`crate::ops::connections`]), which no
//! other thread writes. Labels are attached only at scrape time, by a
//! [`Collector`] that reads the atomics and hands them to prometheus-client's encoder, so
//! no request pays for a label lookup. Per-route figures change only when connections open
//! and close, and sit behind a mutex. Labels stay low-cardinality: API keys, node ids,
//! sides, kinds.
//!
//! prometheus-client writes OpenMetrics; the Prometheus text format, which scrapers get
//! unless they ask for OpenMetrics, is derived from it by [`prometheus_text`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::cluster::route::Route;
use crate::edge::auth::policy::Resource;
use crate::edge::auth::resources::Target;
use crate::edge::sniff::Mistake;
use crate::ops::connections::{Connections, Listed, Stats};
use crate::proxy::session::Side;

/// API keys below this get their own series; higher (vendor) keys share one.
const KEYS: usize = 128;
/// Upper bounds of the request latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SIDES: [Side; 3] = [Side::Client, Side::Broker, Side::Gateway];

/// Why a connection was refused or closed before it carried Kafka: a client mistake, or the
/// connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Mistake(Mistake),
    ConnectionLimit,
}

impl Refusal {
    const COUNT: usize = Mistake::ALL.len() + 1;

    /// Every kind, each always exported (at 0 until it happens) so that alerts and rates
    /// see a series from the start.
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

/// The exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Default)]
struct PerRoute {
    opened: u64,
    active: i64,
    /// Closed connections by the side that ended them.
    closed: BTreeMap<&'static str, u64>,
}

#[derive(Debug)]
struct PerKey {
    requests: AtomicU64,
    /// Responses by latency bucket, then those above the last bound. Their sum is the
    /// response count, so responses need no counter of their own.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

impl Default for PerKey {
    fn default() -> PerKey {
        PerKey {
            requests: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_micros: AtomicU64::new(0),
        }
    }
}

/// What a session counts on: its route's per-API counters, and its own connection's
/// bytes. A session takes them once, at the start, so the data path itself takes no lock.
#[derive(Clone)]
pub struct RouteCounters {
    keys: Arc<[PerKey]>,
    stats: Arc<Stats>,
    /// Lists the connection in `/connections` while any clone lives.
    _listed: Arc<Listed>,
}

impl RouteCounters {
    /// The client id this connection's client sent, for `/connections`; the first one
    /// stays.
    pub fn set_client_id(&self, id: &str) {
        self.stats.set_client_id(id);
    }

    /// The principal this connection's client logged in as, for `/connections`.
    pub fn set_principal(&self, principal: &str) {
        self.stats.set_principal(principal);
    }
}

pub struct Metrics {
    counters: Arc<Counters>,
    registry: Registry,
}

/// Everything counted, shared by the data path and the collector that exports it.
#[derive(Debug)]
struct Counters {
    routes: Mutex<BTreeMap<String, PerRoute>>,
    /// Per-API counters by route label.
    keys: Mutex<BTreeMap<String, Arc<[PerKey]>>>,
    /// Client connections open now, with the bytes each moved; and the bytes of those
    /// closed.
    connections: Arc<Connections>,
    /// Of the bytes relayed, those moved socket to socket without a copy.
    bytes_spliced: AtomicU64,
    rewrites_ok: Vec<AtomicU64>,
    rewrites_failed: Vec<AtomicU64>,
    errors: [AtomicU64; SIDES.len()],
    connect_failures: AtomicU64,
    /// Connections refused before their first Kafka byte, by [`Refusal`].
    refused: [AtomicU64; Refusal::COUNT],
    /// Reloads that took, then reloads that failed.
    reloads: [AtomicU64; 2],
    brokers_retired: AtomicU64,
    broker_addresses_refused: AtomicU64,
    /// Authentications by mechanism and success; once per connection, so a lock is fine.
    authentications: Mutex<BTreeMap<(&'static str, bool), u64>>,
    /// Requests the policy refused, by API key slot and resource kind; a refused request
    /// costs a round of policy checks anyway, so a lock is fine.
    denials: Mutex<BTreeMap<(usize, &'static str), u64>>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let counters = Arc::new(Counters {
            routes: Mutex::default(),
            keys: Mutex::default(),
            connections: Arc::default(),
            bytes_spliced: AtomicU64::new(0),
            rewrites_ok: (0..=KEYS).map(|_| AtomicU64::new(0)).collect(),
            rewrites_failed: (0..=KEYS).map(|_| AtomicU64::new(0)).collect(),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            connect_failures: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            reloads: std::array::from_fn(|_| AtomicU64::new(0)),
            brokers_retired: AtomicU64::new(0),
            broker_addresses_refused: AtomicU64::new(0),
            authentications: Mutex::default(),
            denials: Mutex::default(),
            ready: AtomicBool::new(false),
        });
        let mut registry = Registry::with_prefix("kafka_edge");
        registry.register_collector(Box::new(counters.clone()));
        Metrics { counters, registry }
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

/// The kind of what a denial was over: a handful of values, whatever the names.
fn resource_label(target: &Target<'_>) -> &'static str {
    match target {
        Target::Resource(Resource::Topic(_) | Resource::AnyTopic) => "topic",
        Target::Resource(Resource::Group(_)) => "group",
        Target::Resource(Resource::TransactionalId(_)) => "transactional_id",
        Target::Resource(Resource::Cluster) => "cluster",
        Target::UnknownTopicId(_) => "topic_id",
        Target::UnknownResourceType(_) | Target::Null => "other",
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update under these locks is a single insert or add: a panic elsewhere leaves
    // them consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Metrics {
    pub fn connection_opened(&self, route: Route) {
        let mut routes = lock(&self.counters.routes);
        let entry = routes.entry(route_label(route)).or_default();
        entry.opened += 1;
        entry.active += 1;
    }

    /// A connection ended; `side` is whose doing it was (the client for a clean hang-up).
    pub fn connection_closed(&self, route: Route, side: Side) {
        let mut routes = lock(&self.counters.routes);
        let entry = routes.entry(route_label(route)).or_default();
        entry.active -= 1;
        *entry.closed.entry(side_label(side)).or_default() += 1;
    }

    /// The counters of a client connection from `client` on `route`, which lists it in
    /// `/connections` until the last clone is dropped.
    pub fn open_connection(&self, client: SocketAddr, route: Route) -> RouteCounters {
        let (stats, listed) = self.counters.connections.open(Some(client), route);
        RouteCounters {
            keys: self.keys(route),
            stats,
            _listed: Arc::new(listed),
        }
    }

    /// The counters of a connection on `route` that is not listed in `/connections` (its
    /// bytes count in the totals once it ends).
    pub fn route_counters(&self, route: Route) -> RouteCounters {
        let (stats, listed) = self.counters.connections.open(None, route);
        RouteCounters {
            keys: self.keys(route),
            stats,
            _listed: Arc::new(listed),
        }
    }

    /// The per-API counters of `route`, made on first use.
    fn keys(&self, route: Route) -> Arc<[PerKey]> {
        lock(&self.counters.keys)
            .entry(route_label(route))
            .or_insert_with(|| (0..=KEYS).map(|_| PerKey::default()).collect())
            .clone()
    }

    /// The open client connections, as `/connections` shows them.
    pub fn connections(&self) -> &Connections {
        &self.counters.connections
    }

    pub fn request(&self, counters: &RouteCounters, api_key: i16, bytes: usize) {
        counters.keys[slot(api_key)]
            .requests
            .fetch_add(1, Ordering::Relaxed);
        counters
            .stats
            .to_broker
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A response began; `waited` is the time since its request was read.
    pub fn response(&self, counters: &RouteCounters, api_key: i16, bytes: usize, waited: Duration) {
        let key = &counters.keys[slot(api_key)];
        let seconds = waited.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        key.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        key.latency_micros
            .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        counters
            .stats
            .to_client
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn spliced(&self, bytes: usize) {
        self.counters
            .bytes_spliced
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn rewrite(&self, api_key: i16, ok: bool) {
        let counters = if ok {
            &self.counters.rewrites_ok
        } else {
            &self.counters.rewrites_failed
        };
        counters[slot(api_key)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, side: Side) {
        let index = SIDES.iter().position(|s| *s == side).unwrap_or(0);
        self.counters.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connect_failure(&self) {
        self.counters
            .connect_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A client connection turned away before its first Kafka byte.
    pub fn refused(&self, why: Refusal) {
        self.counters.refused[why.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// A reload of the configuration was applied (`ok`) or kept the running one.
    pub fn reload(&self, ok: bool) {
        self.counters.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// A broker left the cluster and its route was closed.
    pub fn broker_retired(&self) {
        self.counters
            .brokers_retired
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The cluster reported a broker address that the allow-list refuses.
    pub fn broker_address_refused(&self) {
        self.counters
            .broker_addresses_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A client authenticated to the gateway with `mechanism`, or failed to.
    pub fn authentication(&self, mechanism: &'static str, ok: bool) {
        *lock(&self.counters.authentications)
            .entry((mechanism, ok))
            .or_default() += 1;
    }

    /// The policy refused a request of `api_key` over `target`.
    pub fn authorization_denied(&self, api_key: i16, target: &Target<'_>) {
        *lock(&self.counters.denials)
            .entry((slot(api_key), resource_label(target)))
            .or_default() += 1;
    }

    pub fn set_ready(&self, ready: bool) {
        self.counters.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.counters.ready.load(Ordering::Relaxed)
    }

    /// The exposition of every series in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut openmetrics = String::with_capacity(8192);
        // Writing to a String cannot fail, and our collector returns only the writer's
        // errors.
        let _ = prometheus_client::encoding::text::encode(&mut openmetrics, &self.registry);
        match format {
            Format::OpenMetrics => openmetrics,
            Format::Text => prometheus_text(&openmetrics),
        }
    }
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition. The two share their
/// line grammar; what differs is metadata: a counter family is named with its `_total`
/// (`# TYPE x_total counter` over `x_total` samples, where OpenMetrics says `x`), an info
/// family is a gauge named with its `_info`, and there is no `# UNIT` and no `# EOF`.
/// Only the types this module exports are mapped; any other is written as `untyped`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 512);
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "gauge" | "histogram" | "summary" => ("", kind),
                _ => ("", "untyped"),
            };
            if let Some((_, text)) = help.take().and_then(|h| h.split_once(' ')) {
                let _ = writeln!(out, "# HELP {name}{suffix} {text}");
            }
            let _ = writeln!(out, "# TYPE {name}{suffix} {kind}");
        } else if !line.starts_with("# UNIT ") && line != "# EOF" {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

// === impl Counters ===

/// The labels of an API key's series.
fn key_labels(slot: usize) -> [(&'static str, String); 2] {
    match i16::try_from(slot).ok().filter(|_| slot < KEYS) {
        Some(key) => {
            let api =
                ApiKey::try_from(key).map_or_else(|_| "unknown".to_owned(), |a| format!("{a:?}"));
            [("api_key", key.to_string()), ("api", api)]
        }
        None => [
            ("api_key", "other".to_owned()),
            ("api", "unknown".to_owned()),
        ],
    }
}

fn counter(encoder: MetricEncoder<'_>, value: u64) -> std::fmt::Result {
    ConstCounter::new(value).encode(encoder)
}

impl Collector for Counters {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> std::fmt::Result {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        out.encode_descriptor("build", "Build of this kafka-edge.", None, MetricType::Info)?
            .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        ConstGauge::new(i64::from(self.ready.load(Ordering::Relaxed))).encode(
            out.encode_descriptor(
                "ready",
                "1 once the cluster answered a Metadata request and while not draining.",
                None,
                MetricType::Gauge,
            )?,
        )?;

        {
            let routes = lock(&self.routes);
            let mut family = out.encode_descriptor(
                "connections_opened",
                "Client connections accepted, by route.",
                None,
                MetricType::Counter,
            )?;
            for (route, r) in routes.iter() {
                counter(family.encode_family(&[("route", route)])?, r.opened)?;
            }
            let mut family = out.encode_descriptor(
                "connections_active",
                "Client connections open now, by route.",
                None,
                MetricType::Gauge,
            )?;
            for (route, r) in routes.iter() {
                ConstGauge::new(r.active).encode(family.encode_family(&[("route", route)])?)?;
            }
            let mut family = out.encode_descriptor(
                "connections_closed",
                "Client connections closed, by route and the side that ended them.",
                None,
                MetricType::Counter,
            )?;
            for (route, r) in routes.iter() {
                for (side, n) in &r.closed {
                    let labels = [("route", route.as_str()), ("side", side)];
                    counter(family.encode_family(&labels)?, *n)?;
                }
            }
        }
        let mut family = out.encode_descriptor(
            "refused_connections",
            "Client connections refused or closed before they carried Kafka, by why: a protocol mistake the log names, or the connection limit.",
            None,
            MetricType::Counter,
        )?;
        for why in Refusal::all() {
            let labels = [("kind", why.kind())];
            counter(
                family.encode_family(&labels)?,
                load(&self.refused[why.slot()]),
            )?;
        }

        // The per-API series of every route, one family at a time: (labels, counters) of
        // each API key a request was seen for.
        let keys = lock(&self.keys).clone();
        let seen: Vec<_> = keys
            .iter()
            .flat_map(|(route, counters)| {
                counters.iter().enumerate().filter_map(move |(slot, key)| {
                    let [api_key, api] = key_labels(slot);
                    (load(&key.requests) > 0)
                        .then(|| ([("route", route.clone()), api_key, api], key))
                })
            })
            .collect();
        let mut family = out.encode_descriptor(
            "requests",
            "Requests relayed to brokers, by route and API.",
            None,
            MetricType::Counter,
        )?;
        for (labels, key) in &seen {
            counter(family.encode_family(labels)?, load(&key.requests))?;
        }
        let mut family = out.encode_descriptor(
            "responses",
            "Responses relayed to clients, by route and API.",
            None,
            MetricType::Counter,
        )?;
        for (labels, key) in &seen {
            counter(
                family.encode_family(labels)?,
                key.buckets.iter().map(load).sum(),
            )?;
        }
        let mut family = out.encode_descriptor(
            "request_duration",
            "Time from a request's head to its response's head, by route and API.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, key) in &seen {
            // The last bound stands for +Inf to the encoder.
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .chain(&[f64::MAX])
                .zip(&key.buckets)
                .map(|(bound, n)| (*bound, load(n)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = load(&key.latency_micros) as f64 / 1e6;
            family.encode_family(labels)?.encode_histogram(
                sum,
                count,
                &buckets,
                None::<&HashMap<usize, Exemplar<Vec<(String, String)>, f64>>>,
            )?;
        }

        let (to_broker, to_client) = self.connections.bytes();
        let mut family = out.encode_descriptor(
            "bytes",
            "Bytes relayed, by direction.",
            None,
            MetricType::Counter,
        )?;
        counter(
            family.encode_family(&[("direction", "to_broker")])?,
            to_broker,
        )?;
        counter(
            family.encode_family(&[("direction", "to_client")])?,
            to_client,
        )?;
        counter(
            out.encode_descriptor(
                "spliced_bytes",
                "Of the bytes relayed, those moved socket to socket by splice, never copied.",
                None,
                MetricType::Counter,
            )?,
            load(&self.bytes_spliced),
        )?;

        let mut family = out.encode_descriptor(
            "rewrites",
            "Responses whose broker addresses were rewritten, by API and result.",
            None,
            MetricType::Counter,
        )?;
        // Both results of every API rewritten at least once, so that the first failure
        // is an increase from 0 and not a new series.
        for slot in 0..=KEYS {
            let (ok, failed) = (
                load(&self.rewrites_ok[slot]),
                load(&self.rewrites_failed[slot]),
            );
            if ok + failed == 0 {
                continue;
            }
            for (result, n) in [("ok", ok), ("error", failed)] {
                let [api_key, api] = key_labels(slot);
                let labels = [api_key, api, ("result", result.to_owned())];
                counter(family.encode_family(&labels)?, n)?;
            }
        }

        let mut family = out.encode_descriptor(
            "errors",
            "Connections closed on an error, by the side at fault.",
            None,
            MetricType::Counter,
        )?;
        for (side, n) in SIDES.iter().zip(&self.errors) {
            counter(
                family.encode_family(&[("side", side_label(*side))])?,
                load(n),
            )?;
        }
        counter(
            out.encode_descriptor(
                "upstream_connect_failures",
                "Broker connections that could not be made.",
                None,
                MetricType::Counter,
            )?,
            load(&self.connect_failures),
        )?;
        counter(
            out.encode_descriptor(
                "broker_addresses_refused",
                "Broker addresses outside upstream.allow, refused when learned or dialled.",
                None,
                MetricType::Counter,
            )?,
            load(&self.broker_addresses_refused),
        )?;
        counter(
            out.encode_descriptor(
                "brokers_retired",
                "Brokers whose listener closed after the cluster stopped reporting them.",
                None,
                MetricType::Counter,
            )?,
            load(&self.brokers_retired),
        )?;
        let mut family = out.encode_descriptor(
            "reloads",
            "Configuration reloads, by result: ok (applied) or error (the running one kept).",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in ["ok", "error"].iter().zip(&self.reloads) {
            counter(family.encode_family(&[("result", *result)])?, load(n))?;
        }
        let mut family = out.encode_descriptor(
            "authentications",
            "Client authentications to the gateway, by mechanism and result.",
            None,
            MetricType::Counter,
        )?;
        for ((mechanism, ok), n) in lock(&self.authentications).iter() {
            let labels = [
                ("mechanism", *mechanism),
                ("result", if *ok { "ok" } else { "failed" }),
            ];
            counter(family.encode_family(&labels)?, *n)?;
        }
        // Only a gateway with a policy refuses requests: the family appears with the first
        // refusal, so a gateway without one exports nothing about a policy.
        let denials = lock(&self.denials);
        if !denials.is_empty() {
            let mut family = out.encode_descriptor(
                "authorization_denials",
                "Requests the edge policy refused, by API and by the kind of resource refused.",
                None,
                MetricType::Counter,
            )?;
            for ((slot, resource), n) in denials.iter() {
                let [_, api] = key_labels(*slot);
                let labels = [api, ("resource", (*resource).to_owned())];
                counter(family.encode_family(&labels)?, *n)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::default();
        m.connection_opened(Route::Bootstrap);
        m.connection_opened(Route::Broker(3));
        m.connection_closed(Route::Broker(3), Side::Client);
        let bootstrap = m.open_connection("192.0.2.7:50000".parse().unwrap(), Route::Bootstrap);
        m.request(&bootstrap, 3, 100);
        m.response(&bootstrap, 3, 4000, Duration::from_micros(700));
        m.rewrite(3, true);
        m.spliced(70_000);
        m.request(&m.route_counters(Route::Broker(3)), 31000, 10);
        m.error(Side::Broker);
        m.set_ready(true);
        let text = m.render(Format::Text);
        for line in [
            "# TYPE kafka_edge_build_info gauge",
            "kafka_edge_ready 1",
            "# TYPE kafka_edge_connections_opened_total counter",
            "kafka_edge_connections_opened_total{route=\"bootstrap\"} 1",
            "kafka_edge_connections_active{route=\"3\"} 0",
            "kafka_edge_connections_closed_total{route=\"3\",side=\"client\"} 1",
            "kafka_edge_requests_total{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_responses_total{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "# TYPE kafka_edge_request_duration_seconds histogram",
            "kafka_edge_request_duration_seconds_bucket{le=\"0.0005\",route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 0",
            "kafka_edge_request_duration_seconds_bucket{le=\"0.001\",route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_request_duration_seconds_bucket{le=\"+Inf\",route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_request_duration_seconds_count{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
            "kafka_edge_request_duration_seconds_sum{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 0.0007",
            "kafka_edge_requests_total{route=\"3\",api_key=\"other\",api=\"unknown\"} 1",
            // The broker-3 counters above were dropped at once: their bytes are in the
            // totals; the bootstrap connection's still open ones are too.
            "kafka_edge_bytes_total{direction=\"to_broker\"} 110",
            "kafka_edge_bytes_total{direction=\"to_client\"} 4000",
            "kafka_edge_spliced_bytes_total 70000",
            "kafka_edge_rewrites_total{api_key=\"3\",api=\"Metadata\",result=\"ok\"} 1",
            "kafka_edge_rewrites_total{api_key=\"3\",api=\"Metadata\",result=\"error\"} 0",
            "kafka_edge_errors_total{side=\"broker\"} 1",
            "kafka_edge_errors_total{side=\"gateway\"} 0",
        ] {
            assert!(lines(&text).contains(&line), "missing {line:?} in\n{text}");
        }
        for absent in ["# UNIT", "# EOF", "_created"] {
            assert!(
                !text.contains(absent),
                "{absent} in the text format:\n{text}"
            );
        }
        let openmetrics = m.render(Format::OpenMetrics);
        for line in [
            "# TYPE kafka_edge_build info",
            "kafka_edge_build_info{version=\"0.1.0\"} 1",
            "# TYPE kafka_edge_requests counter",
            "# UNIT kafka_edge_request_duration_seconds seconds",
            "kafka_edge_requests_total{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
        ] {
            assert!(
                lines(&openmetrics).contains(&line),
                "missing {line:?} in\n{openmetrics}"
            );
        }
        assert_eq!(openmetrics.lines().last(), Some("# EOF"));
    }

    #[test]
    fn refusals_reloads_retirements_and_authentications_are_exported() {
        let m = Metrics::default();
        let text = m.render(Format::Text);
        for why in Refusal::all() {
            let line = format!(
                "kafka_edge_refused_connections_total{{kind=\"{}\"}} 0",
                why.kind()
            );
            assert!(
                lines(&text).contains(&line.as_str()),
                "missing {line:?} in\n{text}"
            );
        }
        for (i, why) in Refusal::all().enumerate() {
            for _ in 0..=i {
                m.refused(why);
            }
        }
        m.reload(true);
        m.reload(false);
        m.reload(false);
        m.broker_retired();
        m.broker_address_refused();
        m.broker_address_refused();
        m.authentication("SCRAM-SHA-512", true);
        m.authentication("SCRAM-SHA-512", false);
        m.authentication("PLAIN", true);
        m.authentication("SCRAM-SHA-512", true);
        assert!(
            !m.render(Format::Text).contains("authorization_denials"),
            "no policy refusal, no family"
        );
        m.authorization_denied(0, &Target::Resource(Resource::Topic("b")));
        m.authorization_denied(0, &Target::Resource(Resource::Topic("c")));
        m.authorization_denied(1, &Target::UnknownTopicId([1; 16]));
        m.authorization_denied(11, &Target::Resource(Resource::Group("g")));
        m.authorization_denied(9000, &Target::Resource(Resource::Cluster));
        let text = m.render(Format::Text);
        for (i, why) in Refusal::all().enumerate() {
            let line = format!(
                "kafka_edge_refused_connections_total{{kind=\"{}\"}} {}",
                why.kind(),
                i + 1
            );
            assert!(
                lines(&text).contains(&line.as_str()),
                "missing {line:?} in\n{text}"
            );
        }
        for line in [
            "kafka_edge_reloads_total{result=\"ok\"} 1",
            "kafka_edge_reloads_total{result=\"error\"} 2",
            "kafka_edge_brokers_retired_total 1",
            "kafka_edge_broker_addresses_refused_total 2",
            "kafka_edge_authentications_total{mechanism=\"PLAIN\",result=\"ok\"} 1",
            "kafka_edge_authentications_total{mechanism=\"SCRAM-SHA-512\",result=\"failed\"} 1",
            "kafka_edge_authentications_total{mechanism=\"SCRAM-SHA-512\",result=\"ok\"} 2",
            "kafka_edge_authorization_denials_total{api=\"Produce\",resource=\"topic\"} 2",
            "kafka_edge_authorization_denials_total{api=\"Fetch\",resource=\"topic_id\"} 1",
            "kafka_edge_authorization_denials_total{api=\"JoinGroup\",resource=\"group\"} 1",
            "kafka_edge_authorization_denials_total{api=\"unknown\",resource=\"cluster\"} 1",
        ] {
            assert!(lines(&text).contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn bytes_stay_counted_when_their_connection_closes() {
        let m = Metrics::default();
        let first = m.open_connection("192.0.2.1:1".parse().unwrap(), Route::Bootstrap);
        m.request(&first, 18, 50);
        let second = first.clone();
        drop(first);
        m.response(&second, 18, 70, Duration::ZERO);
        assert_eq!(m.connections().bytes(), (50, 70));
        assert_eq!(m.connections().snapshot().len(), 1, "a clone keeps it open");
        drop(second);
        assert_eq!(m.connections().snapshot().len(), 0);
        assert_eq!(m.connections().bytes(), (50, 70));
    }

    #[test]
    fn the_text_format_names_counters_and_infos_by_their_samples() {
        let openmetrics = "# HELP x_bytes Bytes.\n# TYPE x_bytes counter\n# UNIT x_bytes bytes\n\
            x_bytes_total 3\n# HELP x_build Build.\n# TYPE x_build info\nx_build_info{v=\"1\"} 1\n\
            # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# TYPE x_odd stateset\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\nx_bytes_total 3\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{v=\"1\"} 1\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# TYPE x_odd untyped\n"
        );
    }
}

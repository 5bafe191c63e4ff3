//! The admin endpoint through real sockets, in front of a fake cluster: every route and
//! method, `/metrics` read by the official Prometheus parsers (tests/ops/exposition.py),
//! `/connections`; and the dashboard and alerts of deploy/ against what `/metrics` exports.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_edge::config::Overrides;
use kafka_protocol::messages::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// One HTTP exchange: what came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the reply to the end of the connection, which the admin
/// endpoint closes after each answer.
async fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: admin\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("the admin endpoint closes the connection after its answer")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn ready(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while http(gw.admin, "GET", "/readyz", &[]).await.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway in front of a two-broker cluster that has served Metadata on the bootstrap
/// route and on broker 2's, so the per-route and per-API families have samples; returned
/// once both sessions have ended, so that two scrapes in a row see the same figures.
async fn busy_gateway() -> (FakeCluster, Gateway) {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = Gateway::front(&cluster, base).await;
    ready(&gw).await;
    metadata(gw.addr, 12).await;
    metadata(("127.0.0.1", base + 2), 12).await;
    let deadline = Instant::now() + TIMEOUT;
    while !connections(gw.admin).await.is_empty() {
        assert!(Instant::now() < deadline, "the sessions never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (cluster, gw)
}

/// Label name -> the values seen.
type Labels = BTreeMap<String, BTreeSet<String>>;

/// What tests/ops/exposition.py found in a scrape, in both formats.
#[derive(Debug)]
struct Exported {
    families: u64,
    type_lines: u64,
    /// Sample name -> its labels.
    samples: BTreeMap<String, Labels>,
}

fn exposition_script() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ops/exposition.py"
    ))
}

/// Scrapes `/metrics` in both formats and has the Python parsers check them.
async fn scrape_and_check(admin: SocketAddr) -> Exported {
    let text = http(
        admin,
        "GET",
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .await;
    let openmetrics = http(admin, "GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!((text.status, openmetrics.status), (200, 200));
    let dir = std::env::temp_dir().join(format!("kafka-edge-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (text_path, om_path) = (dir.join("metrics.txt"), dir.join("metrics.om"));
    std::fs::write(&text_path, &text.body).unwrap();
    std::fs::write(&om_path, &openmetrics.body).unwrap();
    let out = Command::new("python3")
        .arg(exposition_script())
        .arg("check")
        .args([&text_path, &om_path])
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exposition.py check failed: {stderr}\n--- text ---\n{}\n--- OpenMetrics ---\n{}",
        text.body,
        openmetrics.body
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Exported {
        families: summary["families"].as_u64().unwrap(),
        type_lines: summary["type_lines"].as_u64().unwrap(),
        samples: serde_json::from_value(summary["exported"].clone()).unwrap(),
    }
}

/// Every family the gateway exports, whatever it has seen, as the text format names them.
const FAMILIES: [&str; 18] = [
    "kafka_edge_build_info",
    "kafka_edge_ready",
    "kafka_edge_connections_opened_total",
    "kafka_edge_connections_active",
    "kafka_edge_connections_closed_total",
    "kafka_edge_refused_connections_total",
    "kafka_edge_requests_total",
    "kafka_edge_responses_total",
    "kafka_edge_request_duration_seconds",
    "kafka_edge_bytes_total",
    "kafka_edge_spliced_bytes_total",
    "kafka_edge_rewrites_total",
    "kafka_edge_errors_total",
    "kafka_edge_upstream_connect_failures_total",
    "kafka_edge_broker_addresses_refused_total",
    "kafka_edge_brokers_retired_total",
    "kafka_edge_reloads_total",
    "kafka_edge_authentications_total",
];

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_openmetrics() {
    let (_cluster, gw) = busy_gateway().await;
    let exported = scrape_and_check(gw.admin).await;
    assert_eq!(exported.families, exported.type_lines);
    assert_eq!(exported.type_lines, FAMILIES.len() as u64);
    for sample in [
        "kafka_edge_requests_total",
        "kafka_edge_responses_total",
        "kafka_edge_request_duration_seconds_bucket",
        "kafka_edge_request_duration_seconds_count",
        "kafka_edge_request_duration_seconds_sum",
        "kafka_edge_rewrites_total",
        "kafka_edge_refused_connections_total",
    ] {
        assert!(
            exported.samples.contains_key(sample),
            "no {sample} in {exported:?}"
        );
    }
    println!(
        "both parsers: {} families for {} TYPE lines, {} sample names",
        exported.families,
        exported.type_lines,
        exported.samples.len()
    );

    // The content types say which format came back; with no Accept, the text format.
    let text = http(gw.admin, "GET", "/metrics", &[]).await;
    assert_eq!(text.header("Content-Type"), Some(TEXT));
    let declared: Vec<_> = text
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(declared, FAMILIES);
    let openmetrics = http(
        gw.admin,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text")],
    )
    .await;
    assert_eq!(openmetrics.header("Content-Type"), Some(OPENMETRICS));
    assert!(openmetrics.body.ends_with("# EOF\n"));
}

#[test]
fn the_exposition_checker_refuses_what_it_exists_to_catch() {
    let out = Command::new("python3")
        .arg(exposition_script())
        .arg("self-test")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_route_answers_get_and_head_and_nothing_else() {
    let (_cluster, gw) = busy_gateway().await;
    for path in ["/livez", "/readyz", "/metrics", "/connections"] {
        let get = http(gw.admin, "GET", path, &[]).await;
        assert_eq!(get.status, 200, "GET {path}");
        assert!(!get.body.is_empty(), "GET {path}");
        let head = http(gw.admin, "HEAD", path, &[]).await;
        assert_eq!(head.status, 200, "HEAD {path}");
        assert_eq!(head.body, "", "HEAD {path} sends no body");
        assert_eq!(head.header("Content-Type"), get.header("Content-Type"));
        let length: usize = head
            .header("Content-Length")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("HEAD {path} has a Content-Length: {head:?}"));
        if path != "/metrics" && path != "/connections" {
            // The other two change between requests (the scrapes count themselves).
            assert_eq!(length, get.body.len(), "HEAD {path}");
        }
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let refused = http(gw.admin, method, path, &[("Content-Length", "0")]).await;
            assert_eq!(refused.status, 405, "{method} {path}");
            assert_eq!(
                refused.header("Allow"),
                Some("GET, HEAD"),
                "{method} {path}"
            );
        }
        // A query string is not part of the path.
        let with_query = http(gw.admin, "GET", &format!("{path}?x=1&y"), &[]).await;
        assert_eq!(with_query.status, 200, "GET {path}?x=1&y");
        assert_eq!(
            with_query.header("Content-Type"),
            get.header("Content-Type")
        );
    }
    assert_eq!(
        http(gw.admin, "GET", "/livez?verbose", &[]).await.body,
        "ok\n"
    );
    let metrics = http(gw.admin, "GET", "/metrics?name[]=kafka_edge_ready", &[]).await;
    assert!(metrics.body.lines().any(|l| l == "kafka_edge_ready 1"));
    for path in ["/", "/nope", "/metrics/", "/livez/x", "/METRICS"] {
        for method in ["GET", "HEAD", "POST"] {
            let reply = http(gw.admin, method, path, &[("Content-Length", "0")]).await;
            assert_eq!(reply.status, 404, "{method} {path}");
            assert_eq!(reply.header("Allow"), None, "{method} {path}");
        }
    }
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Listed {
    client: String,
    principal: Option<String>,
    route: String,
    client_id: Option<String>,
    bytes_to_broker: u64,
    bytes_to_client: u64,
    age_seconds: f64,
}

async fn connections(admin: SocketAddr) -> Vec<Listed> {
    let reply = http(admin, "GET", "/connections", &[]).await;
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    serde_json::from_str(&reply.body).unwrap()
}

#[tokio::test]
async fn connections_lists_each_open_client_with_its_bytes() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = Gateway::front(&cluster, base).await;
    ready(&gw).await;
    assert_eq!(connections(gw.admin).await, []);

    let request = MetadataRequest::default().with_topics(None);
    let mut bootstrap = Client::connect(gw.addr).await.unwrap();
    let request_len = bootstrap.frame(ApiKey::Metadata, 12, &request).1.len() as u64;
    let (raw, _): (_, MetadataResponse) = bootstrap
        .call(ApiKey::Metadata, 12, &request)
        .await
        .unwrap();
    let mut broker = Client::connect(("127.0.0.1", base + 2)).await.unwrap();
    let (raw2, _): (_, MetadataResponse) =
        broker.call(ApiKey::Metadata, 12, &request).await.unwrap();

    let listed = connections(gw.admin).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first = &listed[0];
    assert_eq!(
        first.client,
        bootstrap.stream.local_addr().unwrap().to_string()
    );
    assert_eq!(first.route, "bootstrap");
    assert_eq!(
        (first.principal.as_deref(), first.client_id.as_deref()),
        (None, Some("test"))
    );
    assert_eq!(first.bytes_to_broker, request_len);
    assert_eq!(first.bytes_to_client, raw.len() as u64);
    assert!((0.0..60.0).contains(&first.age_seconds), "{first:?}");
    let second = &listed[1];
    assert_eq!(
        second.client,
        broker.stream.local_addr().unwrap().to_string()
    );
    assert_eq!(second.route, "broker-2");
    assert_eq!(second.bytes_to_client, raw2.len() as u64);

    // Gone once closed, its bytes still in the totals.
    drop(bootstrap);
    let deadline = Instant::now() + TIMEOUT;
    while connections(gw.admin).await.len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the closed connection is still listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = http(gw.admin, "GET", "/metrics", &[]).await.body;
    let line = format!(
        "kafka_edge_bytes_total{{direction=\"to_client\"}} {}",
        raw.len() + raw2.len()
    );
    assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
}

/// A Metadata v12 request (header v2) with `client_id` as its client id, raw.
fn metadata_with_client_id(client_id: Option<&str>, correlation_id: i32) -> Vec<u8> {
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut out = bytes::BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|id| StrBytes::from_string(id.to_owned())))
        .encode(&mut out, 2)
        .unwrap();
    MetadataRequest::default()
        .with_topics(None)
        .encode(&mut out, 12)
        .unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

/// Sends a raw request and reads its answer.
async fn call(client: &mut Client, frame: Vec<u8>) {
    client.stream.write_all(&frame).await.unwrap();
    client.read_frame().await.unwrap();
}

/// The client id `/connections` shows for the connection from `client`, once it is listed.
async fn listed_client_id(admin: SocketAddr, client: &Client) -> Option<String> {
    let me = client.stream.local_addr().unwrap().to_string();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(entry) = connections(admin)
            .await
            .into_iter()
            .find(|c| c.client == me)
        {
            return entry.client_id;
        }
        assert!(Instant::now() < deadline, "{me} is never listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_show_the_client_id_of_the_first_request() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = Gateway::front(&cluster, free_port_base(&[1])).await;
    ready(&gw).await;
    // The first request's id stays, whatever the later ones say.
    let mut named = Client::connect(gw.addr).await.unwrap();
    call(&mut named, metadata_with_client_id(Some("orders-7"), 1)).await;
    call(&mut named, metadata_with_client_id(Some("other"), 2)).await;
    assert_eq!(
        listed_client_id(gw.admin, &named).await.as_deref(),
        Some("orders-7")
    );

    // A null client id stays null, even when a later request has one.
    let mut anonymous = Client::connect(gw.addr).await.unwrap();
    call(&mut anonymous, metadata_with_client_id(None, 1)).await;
    call(&mut anonymous, metadata_with_client_id(Some("late"), 2)).await;
    assert_eq!(listed_client_id(gw.admin, &anonymous).await, None);

    // An empty one is shown as sent.
    let mut empty = Client::connect(gw.addr).await.unwrap();
    call(&mut empty, metadata_with_client_id(Some(""), 1)).await;
    assert_eq!(
        listed_client_id(gw.admin, &empty).await.as_deref(),
        Some("")
    );

    // A long one is cut to 256 bytes, and never in the middle of a character: 255 ASCII
    // bytes, then a 2-byte character across the cut.
    let long = format!("{}é{}", "a".repeat(255), "b".repeat(100));
    let mut verbose = Client::connect(gw.addr).await.unwrap();
    call(&mut verbose, metadata_with_client_id(Some(&long), 1)).await;
    assert_eq!(
        listed_client_id(gw.admin, &verbose).await,
        Some("a".repeat(255))
    );
    let long = "c".repeat(300);
    let mut verbose = Client::connect(gw.addr).await.unwrap();
    call(&mut verbose, metadata_with_client_id(Some(&long), 1)).await;
    assert_eq!(
        listed_client_id(gw.admin, &verbose).await,
        Some("c".repeat(256))
    );

    // A first request whose header arrives in two pieces, the client id in the second, is
    // forwarded as it comes: the id is read from the next request.
    let mut split = Client::connect(gw.addr).await.unwrap();
    let first = metadata_with_client_id(Some("split-1"), 1);
    split.stream.write_all(&first[..14]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(listed_client_id(gw.admin, &split).await, None);
    split.stream.write_all(&first[14..]).await.unwrap();
    split.read_frame().await.unwrap();
    assert_eq!(listed_client_id(gw.admin, &split).await, None);
    call(&mut split, metadata_with_client_id(Some("split-2"), 2)).await;
    assert_eq!(
        listed_client_id(gw.admin, &split).await.as_deref(),
        Some("split-2")
    );
}

/// The value of one sample line of the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn refused_connections_are_counted_by_kind() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let overrides = || Overrides {
        bootstrap_servers: vec![cluster.bootstrap()],
        broker_port_base: Some(free_port_base(&[1])),
        ..Overrides::default()
    };
    let limited = Gateway::start(
        toml::from_str("[gateway]\nmax_connections = 1").unwrap(),
        overrides(),
        "127.0.0.1",
    )
    .await;
    ready(&limited).await;
    let mut first = Client::connect(limited.addr).await.unwrap();
    let _: (_, MetadataResponse) = first
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    let mut second = Client::connect(limited.addr).await.unwrap();
    second.expect_closed().await;
    let text = http(limited.admin, "GET", "/metrics", &[]).await.body;
    assert_eq!(
        sample(
            &text,
            "kafka_edge_refused_connections_total{kind=\"connection_limit\"}"
        ),
        Some(1.0),
        "{text}"
    );

    let proxied = Gateway::start(
        toml::from_str("[gateway]\nproxy_protocol = \"required\"").unwrap(),
        overrides(),
        "127.0.0.1",
    )
    .await;
    let mut bare = Client::connect(proxied.addr).await.unwrap();
    bare.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    bare.expect_closed().await;
    let text = http(proxied.admin, "GET", "/metrics", &[]).await.body;
    assert_eq!(
        sample(
            &text,
            "kafka_edge_refused_connections_total{kind=\"proxy_header_missing\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kafka_edge_refused_connections_total{kind=\"connection_limit\"}"
        ),
        Some(0.0),
        "{text}"
    );
}

/// Labels Prometheus attaches to every target it scrapes (the Prometheus Operator's
/// ServiceMonitor targets have all of these), which a query may use though no gateway
/// exports them.
const TARGET_LABELS: [&str; 7] = [
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "container",
    "endpoint",
];

/// A label matcher: the label, and the value when the matcher is `=`.
type Matcher = (String, Option<String>);

/// What one expression asks of the exposition.
#[derive(Default)]
struct Asked {
    /// Metric names and their matchers.
    selectors: Vec<(String, Vec<Matcher>)>,
    /// Labels that aggregations group by or drop.
    grouping: Vec<String>,
}

fn walk(expr: &promql_parser::parser::Expr, asked: &mut Asked) {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::Expr;
    let mut select = |vs: &promql_parser::parser::VectorSelector| {
        let matchers = vs
            .matchers
            .matchers
            .iter()
            .chain(vs.matchers.or_matchers.iter().flatten())
            .map(|m| {
                let exact = matches!(m.op, MatchOp::Equal).then(|| m.value.clone());
                (m.name.clone(), exact)
            })
            .collect();
        let name = vs.name.clone().expect("every selector names its metric");
        asked.selectors.push((name, matchers));
    };
    match expr {
        Expr::VectorSelector(vs) => select(vs),
        Expr::MatrixSelector(ms) => select(&ms.vs),
        Expr::Aggregate(a) => {
            if let Some(modifier) = &a.modifier {
                asked
                    .grouping
                    .extend(modifier.labels().labels.iter().cloned());
            }
            walk(&a.expr, asked);
            if let Some(param) = &a.param {
                walk(param, asked);
            }
        }
        Expr::Unary(u) => walk(&u.expr, asked),
        Expr::Binary(b) => {
            walk(&b.lhs, asked);
            walk(&b.rhs, asked);
        }
        Expr::Paren(p) => walk(&p.expr, asked),
        Expr::Subquery(s) => walk(&s.expr, asked),
        Expr::Call(c) => c.args.args.iter().for_each(|arg| walk(arg, asked)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Every problem of one expression against the exposition.
fn problems(expr: &str, exported: &BTreeMap<String, Labels>) -> Vec<String> {
    let parsed = match promql_parser::parser::parse(expr) {
        Ok(parsed) => parsed,
        Err(e) => return vec![format!("not PromQL: {e}")],
    };
    let mut asked = Asked::default();
    walk(&parsed, &mut asked);
    let mut problems = Vec::new();
    if asked.selectors.is_empty() {
        problems.push("selects no metric".to_owned());
    }
    let mut seen_labels: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
    for (name, matchers) in &asked.selectors {
        let Some(labels) = exported.get(name) else {
            problems.push(format!("{name} is not exported"));
            continue;
        };
        seen_labels.extend(labels.keys().map(String::as_str));
        for (label, exact) in matchers {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            match (labels.get(label), exact) {
                (None, _) => problems.push(format!("{name} has no label {label}")),
                (Some(values), Some(value)) if !values.contains(value) => problems.push(format!(
                    "{name} never has {label}=\"{value}\" (it has {values:?})"
                )),
                _ => {}
            }
        }
    }
    for label in &asked.grouping {
        if !seen_labels.contains(label.as_str()) {
            problems.push(format!("groups by {label}, which no selected metric has"));
        }
    }
    problems
}

#[test]
fn the_query_check_finds_unknown_metrics_labels_and_values() {
    let exported: BTreeMap<String, Labels> = serde_json::from_str(
        r#"{"kafka_edge_requests_total": {"api": ["Metadata"], "route": ["bootstrap"]},
            "kafka_edge_request_duration_seconds_bucket": {"le": ["0.25", "+Inf"]}}"#,
    )
    .unwrap();
    let ok = [
        r#"sum by (api, pod) (rate(kafka_edge_requests_total{route="bootstrap", namespace=~".*"}[5m]))"#,
        r#"histogram_quantile(0.99, sum by (le) (rate(kafka_edge_request_duration_seconds_bucket[5m])))"#,
        r#"sum(rate(kafka_edge_request_duration_seconds_bucket{le="0.25"}[5m])) > 0"#,
    ];
    for expr in ok {
        assert_eq!(problems(expr, &exported), Vec::<String>::new(), "{expr}");
    }
    let bad = [
        ("rate(kafka_edge_request_total[5m])", "not exported"),
        (
            r#"kafka_edge_requests_total{rout="bootstrap"}"#,
            "no label rout",
        ),
        (
            r#"kafka_edge_requests_total{api="Produce"}"#,
            "never has api",
        ),
        (
            r#"kafka_edge_request_duration_seconds_bucket{le="0.3"}"#,
            "never has le",
        ),
        (
            "sum by (side) (kafka_edge_requests_total)",
            "groups by side",
        ),
        ("sum(rate(kafka_edge_requests_total[5m])", "not PromQL"),
        ("vector(1)", "selects no metric"),
    ];
    for (expr, expected) in bad {
        let found = problems(expr, &exported);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expr}: expected {expected:?}, found {found:?}"
        );
    }
}

#[tokio::test]
async fn dashboards_and_alerts_query_only_what_the_gateway_exports() {
    let files = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/helm/kafka-edge/files"
    ));
    let out = Command::new("python3")
        .arg(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/ops/queries.py"
        )))
        .arg(files.join("kafka-edge-dashboard.json"))
        .arg(files.join("kafka-edge-alerts.yaml"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "queries.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queries: Vec<BTreeMap<String, String>> = serde_json::from_slice(&out.stdout).unwrap();

    // A gateway that has seen the traffic the panels show: Metadata (requests, responses,
    // latency, rewrites) on two routes.
    let (_cluster, gw) = busy_gateway().await;
    let exported = scrape_and_check(gw.admin).await;
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    for query in &queries {
        let (origin, expr) = (&query["origin"], &query["expr"]);
        for problem in problems(expr, &exported.samples) {
            failures.push(format!("{origin}: {problem}\n    {expr}"));
        }
        if let Ok(parsed) = promql_parser::parser::parse(expr) {
            let mut asked = Asked::default();
            walk(&parsed, &mut asked);
            names.extend(asked.selectors.into_iter().map(|(name, _)| name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} expressions name {} metrics, all exported: {names:?}",
        queries.len(),
        names.len()
    );
}

//! The gateway library in front of a fake cluster (kafka-protocol), driven by a raw client.

mod support;

use std::time::{Duration, Instant};

use kafka_edge::config::{File, Overrides};
use kafka_protocol::messages::*;
use support::*;

const HOST: &str = "kafka.gateway.test";

async fn gateway(cluster: &FakeCluster, port_base: u16) -> Gateway {
    Gateway::start(
        File::default(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(port_base),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await
}

/// Every broker in `metadata` is at HOST on its planned port, and nothing upstream shows.
fn assert_rewritten(raw: &[u8], metadata: &MetadataResponse, expected: &[(i32, u16)]) {
    let brokers: Vec<_> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|(id, port)| (*id, HOST.to_owned(), i32::from(*port)))
        .collect();
    assert_eq!(brokers, want);
    assert_absent(raw, "127.0.0.1");
}

#[tokio::test]
async fn metadata_names_only_gateway_addresses_and_broker_ports_reach_their_broker() {
    let cluster = FakeCluster::start(&[1, 2, 3], Quirk::None).await;
    let base = free_port_base(&[1, 2, 3]);
    let gw = gateway(&cluster, base).await;
    for version in 0..=12 {
        let (raw, response) = metadata(gw.addr, version).await;
        assert_rewritten(
            &raw,
            &response,
            &[(1, base + 1), (2, base + 2), (3, base + 3)],
        );
    }
    for id in [1, 2, 3] {
        let (_, response) = metadata(("127.0.0.1", base + id as u16), 12).await;
        assert_eq!(
            response.cluster_id.as_deref(),
            Some(format!("broker-{id}").as_str()),
            "port of node {id} reaches it"
        );
    }
}

/// A broker's configuration names its own address; through the gateway that value is
/// withheld as Kafka withholds a password, and the rest passes.
#[tokio::test]
async fn broker_configs_that_name_addresses_are_withheld() {
    async fn describe(addr: std::net::SocketAddr) -> (bytes::Bytes, DescribeConfigsResponse) {
        let mut client = Client::connect(addr).await.unwrap();
        let request = DescribeConfigsRequest::default();
        client
            .call(ApiKey::DescribeConfigs, 4, &request)
            .await
            .unwrap()
    }
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let upstream = cluster.brokers[0].addr.to_string();
    let (raw, _) = describe(cluster.brokers[0].addr).await;
    assert!(
        raw.windows(upstream.len())
            .any(|w| w == upstream.as_bytes()),
        "the fake names its address"
    );
    let (raw, r) = describe(gw.addr).await;
    assert_absent(&raw, &upstream);
    let configs = &r.results[0].configs;
    assert_eq!(configs[0].name.as_str(), "advertised.listeners");
    assert_eq!(
        (configs[0].value.as_deref(), configs[0].is_sensitive),
        (None, true)
    );
    assert_eq!(configs[1].value.as_deref(), Some("168"));
}

#[tokio::test]
async fn find_coordinator_and_describe_cluster_are_rewritten() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = gateway(&cluster, base).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    for version in 0..=6 {
        let (raw, r): (_, FindCoordinatorResponse) = client
            .call(
                ApiKey::FindCoordinator,
                version,
                &FindCoordinatorRequest::default(),
            )
            .await
            .unwrap();
        // v0-3 name one node at the top level, v4+ a list of coordinators.
        let named = match r.coordinators.first() {
            Some(c) => (c.node_id.0, c.host.to_string(), c.port),
            None => (r.node_id.0, r.host.to_string(), r.port),
        };
        assert_eq!(
            r.coordinators.len(),
            usize::from(version >= 4),
            "v{version}"
        );
        assert_eq!(
            named,
            (1, HOST.to_owned(), i32::from(base) + 1),
            "v{version}"
        );
        assert_absent(&raw, "127.0.0.1");
    }
    for version in 0..=1 {
        let (raw, r): (_, DescribeClusterResponse) = client
            .call(
                ApiKey::DescribeCluster,
                version,
                &DescribeClusterRequest::default(),
            )
            .await
            .unwrap();
        let ports: Vec<_> = r
            .brokers
            .iter()
            .map(|b| (b.host.to_string(), b.port))
            .collect();
        assert_eq!(
            ports,
            vec![
                (HOST.to_owned(), i32::from(base) + 1),
                (HOST.to_owned(), i32::from(base) + 2)
            ]
        );
        assert_absent(&raw, "127.0.0.1");
    }
}

#[tokio::test]
async fn sparse_node_ids_use_ranges_and_overrides_and_late_nodes_are_served_at_once() {
    let mut cluster = FakeCluster::start(&[1001], Quirk::None).await;
    let first_port = free_port_base(&[0, 4, 5]);
    let file: File = toml::from_str(&format!(
        "[brokers]\nport_base_max_node_id = 999\nranges = [{{ first_node_id = 1000, last_node_id = 1004, first_port = {first_port} }}]\nports = {{ \"111\" = {} }}",
        first_port + 5
    ))
    .unwrap();
    let gw = Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    let (raw, response) = metadata(gw.addr, 9).await;
    assert_rewritten(&raw, &response, &[(1001, first_port + 1)]);

    // Node 111 appears later. The response naming it must not reach the client before its
    // listener is up: connect at once, without any retry.
    cluster.add(111, "broker-111", Quirk::None).await;
    let (raw, response) = metadata(gw.addr, 9).await;
    assert_rewritten(
        &raw,
        &response,
        &[(1001, first_port + 1), (111, first_port + 5)],
    );
    let (_, direct) = metadata(("127.0.0.1", first_port + 5), 9).await;
    assert_eq!(direct.cluster_id.as_deref(), Some("broker-111"));
}

#[tokio::test]
async fn node_outside_every_range_closes_the_connection_without_leaking() {
    let mut cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1]);
    let gw = gateway(&cluster, base).await;
    cluster.add(70000, "broker-70000", Quirk::None).await; // base + 70000 > 65535
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;
    // The gateway itself keeps serving: FindCoordinator names only node 1.
    let mut other = Client::connect(gw.addr).await.unwrap();
    let (_, r): (_, FindCoordinatorResponse) = other
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.host.as_str(), HOST);
}

#[tokio::test]
async fn moved_broker_gets_new_connections() {
    let mut cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = gateway(&cluster, base).await;
    metadata(gw.addr, 12).await;
    let (_, before) = metadata(("127.0.0.1", base + 2), 12).await;
    assert_eq!(before.cluster_id.as_deref(), Some("broker-2"));

    cluster.add(2, "broker-2-replaced", Quirk::None).await;
    let (raw, response) = metadata(gw.addr, 12).await;
    assert_rewritten(&raw, &response, &[(1, base + 1), (2, base + 2)]);
    let (_, after) = metadata(("127.0.0.1", base + 2), 12).await;
    assert_eq!(after.cluster_id.as_deref(), Some("broker-2-replaced"));
}

#[tokio::test]
async fn two_replicas_with_one_config_answer_byte_for_byte_alike() {
    let cluster = FakeCluster::start(&[1, 2, 3], Quirk::None).await;
    let base = free_port_base(&[1, 2, 3]);
    // Same configuration; only the bind IP differs, as two pods would have.
    let a = gateway(&cluster, base).await;
    let b = Gateway::start(
        File::default(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(base),
            ..Overrides::default()
        },
        "127.0.0.2",
    )
    .await;
    for version in [1, 9, 12] {
        let (raw_a, _) = metadata(a.addr, version).await;
        let (raw_b, _) = metadata(b.addr, version).await;
        assert_eq!(raw_a, raw_b, "Metadata v{version}");
    }
}

#[tokio::test]
async fn api_versions_are_capped_and_too_new_requests_answered_locally() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    let (_, r): (_, ApiVersionsResponse) = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await
        .unwrap();
    let ranges: Vec<_> = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(
        ranges,
        vec![
            (0, 3, 9),
            (1, 4, 15),
            (3, 0, 12),
            (10, 0, 6),
            (18, 0, 4),
            (60, 0, 1),
            // DescribeConfigs: the broker's v0 is not offered, its layout is not walked.
            (32, 1, 4)
        ]
    );

    // A version from the future: answered like a broker would, and the connection lives on.
    let correlation_id = client.send_bare(ApiKey::ApiVersions as i16, 77).await;
    let frame = client.read_frame().await.unwrap();
    let refused: ApiVersionsResponse =
        decode_response(ApiKey::ApiVersions, 0, correlation_id, frame);
    assert_eq!(refused.error_code, 35);
    let (_, again): (_, ApiVersionsResponse) = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await
        .unwrap();
    assert_eq!(again.error_code, 0);
}

#[tokio::test]
async fn request_above_the_offered_version_is_refused() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    for (api, version) in [
        (ApiKey::Metadata, 14),
        (ApiKey::Produce, 10),
        (ApiKey::Fetch, 16),
        (ApiKey::Vote, 0),
    ] {
        let mut client = Client::connect(gw.addr).await.unwrap();
        client.send_bare(api as i16, version).await;
        client.expect_closed().await;
    }
}

#[tokio::test]
async fn produce_with_acks_zero_does_not_wait_for_a_response() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    for version in [3, 8, 9] {
        client
            .send(
                ApiKey::Produce,
                version,
                &ProduceRequest::default().with_acks(0),
            )
            .await;
    }
    let (_, ack): (_, ProduceResponse) = client
        .call(ApiKey::Produce, 9, &ProduceRequest::default().with_acks(-1))
        .await
        .unwrap();
    assert!(ack.responses.is_empty());
    let (_, m): (_, MetadataResponse) = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(m.brokers.len(), 1);
}

#[tokio::test]
async fn large_responses_stream_through_unchanged() {
    let size = 8 << 20;
    let cluster = FakeCluster::start(&[1], Quirk::BigFetch(size)).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let mut direct = Client::connect(cluster.brokers[0].addr).await.unwrap();
    let (expected, _): (_, FetchResponse) = direct
        .call(ApiKey::Fetch, 12, &FetchRequest::default())
        .await
        .unwrap();
    let mut client = Client::connect(gw.addr).await.unwrap();
    let (got, r): (_, FetchResponse) = client
        .call(ApiKey::Fetch, 12, &FetchRequest::default())
        .await
        .unwrap();
    assert_eq!(
        r.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(size)
    );
    assert!(
        got == expected,
        "fetch response differs from the broker's bytes"
    );
}

#[tokio::test]
async fn bytes_past_the_last_address_are_copied_as_they_came() {
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;
    // librdkafka's mock appends a byte to Metadata v13; the rewrite edits only addresses.
    let cluster = FakeCluster::start(&[1], Quirk::TrailingByte).await;
    let base = free_port_base(&[1]);
    let gw = gateway(&cluster, base).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    let frame = client.read_frame().await.unwrap();
    let mut body = frame.slice(4..);
    ResponseHeader::decode(&mut body, 1).unwrap();
    let response = MetadataResponse::decode(&mut body, 12).unwrap();
    assert_eq!(body.chunk(), &[0u8], "the extra byte, unchanged");
    assert_rewritten(&frame, &response, &[(1, base + 1)]);
}

#[tokio::test]
async fn out_of_order_response_closes_the_connection() {
    let cluster = FakeCluster::start(&[1], Quirk::WrongCorrelationId).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    use tokio::io::AsyncWriteExt;
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1]);
    let gw = gateway(&cluster, base).await;
    let bad: [&[u8]; 4] = [
        &(-5i32).to_be_bytes(),                   // negative size
        &(200i32 << 20).to_be_bytes(),            // above max_frame_bytes
        &[0, 0, 0, 3, 1, 2, 3],                   // too short for a header
        b"GET / HTTP/1.1\r\nHost: kafka\r\n\r\n", // not Kafka at all
    ];
    for bytes in bad {
        let mut client = Client::connect(gw.addr).await.unwrap();
        client.stream.write_all(bytes).await.unwrap();
        client.expect_closed().await;
    }
    let (raw, response) = metadata(gw.addr, 12).await;
    assert_rewritten(&raw, &response, &[(1, base + 1)]);
}

#[tokio::test]
async fn unreachable_cluster_closes_clients_promptly_and_gateway_survives() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Gateway::start(
        File::default(),
        Overrides {
            bootstrap_servers: vec![closed_port.to_string()],
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    for _ in 0..3 {
        let started = Instant::now();
        let mut client = Client::connect(gw.addr).await.unwrap();
        client
            .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await;
        client.expect_closed().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "closed after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn unknown_node_ports_are_never_opened() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = gateway(&cluster, base).await;
    metadata(gw.addr, 12).await;
    assert!(Client::connect(("127.0.0.1", base + 1)).await.is_ok());
    assert!(
        Client::connect(("127.0.0.1", base + 2)).await.is_err(),
        "node 2 was never reported"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    let correlation_id = client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    let addr = gw.addr;
    gw.stop().await;
    let frame = client.read_frame().await.unwrap();
    let response: MetadataResponse = decode_response(ApiKey::Metadata, 12, correlation_id, frame);
    assert_eq!(response.brokers.len(), 1);
    client.expect_closed().await;
    assert!(Client::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn sasl_exchanges_pass_through_byte_for_byte() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1])).await;
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(kafka_protocol::protocol::StrBytes::from_static_str("PLAIN"));
    let token = bytes::Bytes::from_static(b"\0alice\0alice-secret");
    for (handshake_version, authenticate_version) in [(1, 0), (1, 1), (1, 2)] {
        let mut exchanges = Vec::new();
        for addr in [cluster.brokers[0].addr, gw.addr] {
            let mut client = Client::connect(addr).await.unwrap();
            let (shake, _): (_, SaslHandshakeResponse) = client
                .call(ApiKey::SaslHandshake, handshake_version, &handshake)
                .await
                .unwrap();
            let (auth, reply): (_, SaslAuthenticateResponse) = client
                .call(
                    ApiKey::SaslAuthenticate,
                    authenticate_version,
                    &SaslAuthenticateRequest::default().with_auth_bytes(token.clone()),
                )
                .await
                .unwrap();
            assert_eq!(reply.auth_bytes.len(), token.len());
            exchanges.push((shake, auth));
        }
        assert_eq!(
            exchanges[0], exchanges[1],
            "SaslHandshake v{handshake_version} / SaslAuthenticate v{authenticate_version}"
        );
    }
}

#[tokio::test]
async fn admin_endpoint_reports_health_readiness_and_metrics() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = gateway(&cluster, base).await;
    assert_eq!(http_get(gw.admin, "/livez").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(gw.admin, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    metadata(gw.addr, 12).await;
    metadata(("127.0.0.1", base + 2), 12).await;
    let (status, text) = http_get(gw.admin, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "kafka_edge_requests_total{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
        "kafka_edge_requests_total{route=\"2\",api_key=\"3\",api=\"Metadata\"} 1",
        "kafka_edge_responses_total{route=\"2\",api_key=\"3\",api=\"Metadata\"} 1",
        "kafka_edge_rewrites_total{api_key=\"3\",api=\"Metadata\",result=\"ok\"} 2",
        "kafka_edge_connections_opened_total{route=\"bootstrap\"} 1",
        "kafka_edge_connections_opened_total{route=\"2\"} 1",
        "kafka_edge_request_duration_seconds_count{route=\"bootstrap\",api_key=\"3\",api=\"Metadata\"} 1",
        "kafka_edge_ready 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(http_get(gw.admin, "/nope").await.0, 404);
}

#[tokio::test]
async fn not_ready_until_the_cluster_answers() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Gateway::start(
        File::default(),
        Overrides {
            bootstrap_servers: vec![closed_port.to_string()],
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = http_get(gw.admin, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "cluster not reached yet\n"));
    let (_, text) = http_get(gw.admin, "/metrics").await;
    assert!(
        text.contains("kafka_edge_upstream_connect_failures_total"),
        "{text}"
    );
}

#[tokio::test]
async fn diagnose_reports_the_map_clients_would_get() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let config = kafka_edge::Config::resolve(
        File::default(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(30000),
            ..Overrides::default()
        },
    )
    .unwrap();
    let report = kafka_edge::ops::diagnose::diagnose(config).await.unwrap();
    assert!(report.healthy());
    assert_eq!(report.cluster_id.as_deref(), Some("broker-1"));
    let lines: Vec<_> = report
        .brokers
        .iter()
        .map(|b| (b.node_id, b.advertised.clone().unwrap()))
        .collect();
    assert_eq!(
        lines,
        vec![(1, format!("{HOST}:30001")), (2, format!("{HOST}:30002"))]
    );
    let offered = report.api_versions.as_ref().unwrap();
    assert!(
        offered.contains(&(0, 3, 9)) && !offered.iter().any(|r| r.0 == 52),
        "{offered:?}"
    );
    let text = report.to_string();
    assert!(
        text.contains(&format!("bootstrap.servers={HOST}:9092")),
        "{text}"
    );

    // A node the plan cannot serve makes the diagnosis unhealthy, and says why.
    let mut cluster = cluster;
    cluster.add(70000, "far", Quirk::None).await;
    let config = kafka_edge::Config::resolve(
        File::default(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            ..Overrides::default()
        },
    )
    .unwrap();
    let report = kafka_edge::ops::diagnose::diagnose(config).await.unwrap();
    assert!(!report.healthy());
    assert!(report.to_string().contains("NOT SERVED"));
}

/// `[upstream.sasl]` with PLAIN, the password in a file of its own (removed when dropped).
struct SaslFile {
    path: std::path::PathBuf,
}

impl SaslFile {
    fn new(name: &str, password: &str) -> SaslFile {
        let path =
            std::env::temp_dir().join(format!("kafka-edge-gw-{}-{name}", std::process::id()));
        std::fs::write(&path, format!("{password}\n")).unwrap();
        SaslFile { path }
    }

    fn section(&self, mechanism: &str) -> File {
        toml::from_str(&format!(
            "[upstream.sasl]\nmechanism = \"{mechanism}\"\nusername = \"{PLAIN_USER}\"\npassword_file = {:?}",
            self.path
        ))
        .unwrap()
    }
}

impl Drop for SaslFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn diagnose_config(cluster: &FakeCluster, file: File) -> kafka_edge::Config {
    kafka_edge::Config::resolve(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            ..Overrides::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn logs_in_to_a_cluster_that_requires_sasl_and_becomes_ready() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::RequiresPlain).await;
    let base = free_port_base(&[1, 2]);
    let secret = SaslFile::new("ready", PLAIN_PASSWORD);
    let gw = Gateway::start(
        secret.section("PLAIN"),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(base),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(gw.admin, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Broker ports are open before any client has bootstrapped.
    for id in [1, 2] {
        tokio::net::TcpStream::connect(("127.0.0.1", base + id))
            .await
            .unwrap_or_else(|e| panic!("broker {id} port not bound: {e}"));
    }
    assert!(!format!("{:?}", gw.config).contains(PLAIN_PASSWORD));
    gw.stop().await;
}

#[tokio::test]
async fn sasl_failures_say_what_is_wrong() {
    let cluster = FakeCluster::start(&[1], Quirk::RequiresPlain).await;
    let fails = |file: File| {
        let config = diagnose_config(&cluster, file);
        async move {
            let err = kafka_edge::ops::diagnose::diagnose(config)
                .await
                .unwrap_err();
            // The whole chain, as the binary prints it.
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(e) = source {
                text = format!("{text}: {e}");
                source = e.source();
            }
            text
        }
    };

    let wrong = SaslFile::new("wrong", "not-the-password");
    let text = fails(wrong.section("PLAIN")).await;
    assert!(
        text.contains("the broker refused the login of user \"edge\" with PLAIN: SaslAuthenticationFailed: Invalid username or password"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");

    let right = SaslFile::new("unoffered", PLAIN_PASSWORD);
    let text = fails(right.section("SCRAM-SHA-512")).await;
    assert!(
        text.contains("the broker does not offer SCRAM-SHA-512 (upstream.sasl.mechanism); it offers: PLAIN, SCRAM-SHA-256"),
        "{text}"
    );

    // Without [upstream.sasl], the closed connection is explained.
    let text = fails(File::default()).await;
    assert!(
        text.contains("closed the connection at the Metadata request and answers SASL handshakes: its listener requires authentication; configure [upstream.sasl]"),
        "{text}"
    );
    assert!(
        text.contains("the broker offers: PLAIN, SCRAM-SHA-256"),
        "{text}"
    );

    // The right login reads the cluster, and the report tells clients to log in too.
    let report =
        kafka_edge::ops::diagnose::diagnose(diagnose_config(&cluster, right.section("PLAIN")))
            .await
            .unwrap();
    assert!(report.healthy());
    assert!(
        report
            .to_string()
            .contains("security.protocol=SASL_PLAINTEXT"),
        "{report}"
    );
}

#[tokio::test]
async fn a_login_to_a_broker_without_sasl_authenticate_stops_clearly() {
    // The plain fake lists no SaslAuthenticate in ApiVersions.
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let secret = SaslFile::new("no-authenticate", PLAIN_PASSWORD);
    let err =
        kafka_edge::ops::diagnose::diagnose(diagnose_config(&cluster, secret.section("PLAIN")))
            .await
            .unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains("does not offer SaslHandshake v1 and SaslAuthenticate"),
        "{text}"
    );
}

#[tokio::test]
async fn a_broken_broker_is_not_taken_for_one_that_requires_sasl() {
    // Metadata fails on a reset connection; so does the SaslHandshake asked to explain it.
    let cluster = FakeCluster::start(&[1], Quirk::ResetMidResponse).await;
    let err = kafka_edge::ops::diagnose::diagnose(diagnose_config(&cluster, File::default()))
        .await
        .unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(!text.contains("[upstream.sasl]"), "{text}");
    assert!(text.contains("asking"), "{text}");
}

async fn proxied_gateway(cluster: &FakeCluster, mode: &str) -> Gateway {
    Gateway::start(
        toml::from_str(&format!("[gateway]\nproxy_protocol = \"{mode}\"")).unwrap(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(free_port_base(&[1])),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await
}

/// A version 2 PROXY header for a TCP over IPv4 client.
fn proxy_v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&client);
    header.extend_from_slice(&[10, 0, 0, 1]);
    header.extend_from_slice(&port.to_be_bytes());
    header.extend_from_slice(&9092u16.to_be_bytes());
    header
}

#[tokio::test]
async fn proxy_protocol_headers_are_consumed_and_required_when_asked() {
    use tokio::io::AsyncWriteExt;
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let required = proxied_gateway(&cluster, "required").await;
    for header in [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9092\r\n".to_vec(),
        proxy_v2([198, 51, 100, 9], 40000),
    ] {
        let mut client = Client::connect(required.addr).await.unwrap();
        client.stream.write_all(&header).await.unwrap();
        let (_, r): (_, MetadataResponse) = client
            .call(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await
            .unwrap();
        assert_eq!(r.brokers.len(), 1);
    }
    let mut bare = Client::connect(required.addr).await.unwrap();
    bare.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    bare.expect_closed().await;

    // Optional: with or without a header, and no byte of a headerless client is lost.
    let optional = proxied_gateway(&cluster, "optional").await;
    let (_, r) = metadata(optional.addr, 12).await;
    assert_eq!(r.brokers.len(), 1);
    let mut client = Client::connect(optional.addr).await.unwrap();
    client
        .stream
        .write_all(&proxy_v2([192, 0, 2, 1], 1234))
        .await
        .unwrap();
    let (_, r): (_, MetadataResponse) = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(r.brokers.len(), 1);
}

/// Pseudo-random bytes (xorshift): a pattern no off-by-one or reordering could preserve.
fn noise(len: usize, seed: u64) -> bytes::Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn produce(records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str("t"),
            ))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])])
}

/// Large requests and responses, pipelined between small ones, arrive byte for byte and in
/// order, whether the gateway moves them socket to socket (`splice`) or copies them.
#[tokio::test]
async fn large_frames_pipelined_with_small_ones_arrive_intact_spliced_or_copied() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetched = 3 << 20;
    for splice in [true, false] {
        let cluster = FakeCluster::start(&[1], Quirk::BigFetch(fetched)).await;
        let file = kafka_edge::config::File {
            gateway: kafka_edge::config::GatewaySection {
                splice: Some(splice),
                ..Default::default()
            },
            ..Default::default()
        };
        let overrides = Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(free_port_base(&[1])),
            ..Overrides::default()
        };
        let gw = Gateway::start(file, overrides, "127.0.0.1").await;
        let mut client = Client::connect(gw.addr).await.unwrap();
        let sent = [
            noise(5 << 20, 1),
            noise(100, 2),
            noise(40 << 10, 3),
            noise(7 << 20, 4),
        ];
        let mut frames = Vec::new();
        let mut expect = Vec::new();
        for (i, records) in sent.iter().enumerate() {
            let (id, frame) = client.frame(ApiKey::Produce, 9, &produce(records.clone()));
            frames.push(frame);
            expect.push((id, Some(records.clone())));
            if i == 1 {
                let (id, frame) = client.frame(ApiKey::Fetch, 12, &FetchRequest::default());
                frames.push(frame);
                expect.push((id, None));
            }
        }
        let (mut rd, mut wr) = client.stream.split();
        let write = async {
            for frame in &frames {
                wr.write_all(frame).await.unwrap();
            }
        };
        let read = async {
            let mut answers = Vec::new();
            for _ in 0..expect.len() {
                let size = rd.read_i32().await.unwrap();
                let mut frame = vec![0u8; 4 + size as usize];
                frame[..4].copy_from_slice(&size.to_be_bytes());
                rd.read_exact(&mut frame[4..]).await.unwrap();
                answers.push(bytes::Bytes::from(frame));
            }
            answers
        };
        let (_, answers) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
                .await
                .expect("pipelined large frames did not come back");
        for ((id, records), frame) in expect.into_iter().zip(answers) {
            match records {
                Some(records) => {
                    let r: ProduceResponse = decode_response(ApiKey::Produce, 9, id, frame);
                    let p = &r.responses[0].partition_responses[0];
                    assert_eq!(p.base_offset, records.len() as i64, "splice={splice}");
                    assert_eq!(
                        p.log_append_time_ms,
                        digest(&records),
                        "records of {} bytes changed on the way (splice={splice})",
                        records.len()
                    );
                }
                None => {
                    let r: FetchResponse = decode_response(ApiKey::Fetch, 12, id, frame);
                    let got = r.responses[0].partitions[0].records.clone().unwrap();
                    assert_eq!(got.len(), fetched, "splice={splice}");
                    assert!(got.chunks(16).all(|c| c == b"kafka-edge-bytes"));
                }
            }
        }
        let (_, metrics) = http_get(gw.admin, "/metrics").await;
        let spliced: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("kafka_edge_spliced_bytes_total "))
            .and_then(|v| v.parse().ok())
            .expect("no spliced bytes counter");
        // Most of the 15 MiB moved socket to socket, or none did when splice is off.
        if splice {
            assert!(spliced > 12 << 20, "only {spliced} bytes spliced");
        } else {
            assert_eq!(spliced, 0);
        }
    }
}

/// Polls until `cond` holds, for up to five seconds.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !cond().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn listening(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test]
async fn brokers_outside_the_allow_list_are_never_served_and_the_rest_are() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    // Node 7 is reported at an address outside the allowed network; node 2 inside it.
    cluster
        .advertised
        .lock()
        .unwrap()
        .insert(0, (7, "192.0.2.7".into(), 9092));
    let base = free_port_base(&[1, 2, 7]);
    let file: File =
        toml::from_str("[upstream]\nallow = [\"127.0.0.0/8\"]\nmetadata_refresh_ms = 100\n")
            .unwrap();
    let gw = Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(base),
            advertised_host: Some(HOST.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    // Discovery goes on past node 7: node 1 is served, and ready is reported.
    eventually("node 1 served", async || listening(base + 1).await).await;
    assert!(!listening(base + 7).await, "a port opened for node 7");
    let (status, _) = http_get(gw.admin, "/readyz").await;
    assert_eq!(status, 200);
    // A client's Metadata naming node 7 is refused whole, never passed on.
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;
    let (_, metrics) = http_get(gw.admin, "/metrics").await;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kafka_edge_broker_addresses_refused_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(refused >= 2, "refusals counted: {metrics}");
}

#[tokio::test]
async fn brokers_the_cluster_stops_reporting_are_retired_and_come_back() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let file: File =
        toml::from_str("[upstream]\nmetadata_refresh_ms = 100\n[brokers]\nretire_after_ms = 300\n")
            .unwrap();
    let gw = Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(base),
            advertised_host: Some(HOST.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    eventually("node 2 served", async || listening(base + 2).await).await;
    // A connection made before the retirement lives on.
    let mut before = Client::connect(("127.0.0.1", base + 2)).await.unwrap();
    let (_, _): (_, MetadataResponse) = before
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    let decommissioned = cluster.advertised.lock().unwrap().remove(1);
    eventually("node 2 retired", async || !listening(base + 2).await).await;
    assert!(listening(base + 1).await, "node 1 kept its port");
    let (_, m): (_, MetadataResponse) = before
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(m.brokers.len(), 1);
    let (_, metrics) = http_get(gw.admin, "/metrics").await;
    assert!(
        metrics.contains("kafka_edge_brokers_retired_total 1"),
        "{metrics}"
    );
    // Reported again, served again.
    cluster.advertised.lock().unwrap().push(decommissioned);
    eventually("node 2 served again", async || listening(base + 2).await).await;
}

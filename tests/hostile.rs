//! Hostile and broken peers against the real `kafka-edge` binary. Each case checks what the
//! peer sees, that the gateway says why in its log, and that it keeps serving other clients.

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use support::process::{free_port, GatewayProcess};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The gateway binary in front of `bootstrap`, with extra `[gateway]` and `[upstream]` keys.
fn binary(
    bootstrap: &str,
    port_base: u16,
    gateway_extra: &str,
    upstream_extra: &str,
) -> GatewayProcess {
    let port = free_port();
    GatewayProcess::with_config(
        port,
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\nadvertised_host = \"kafka.gateway.test\"\n{gateway_extra}\n\
             [upstream]\nbootstrap_servers = [\"{bootstrap}\"]\n{upstream_extra}\n\
             [brokers]\nport_base = {port_base}\n"
        ),
    )
}

/// The gateway still answers a fresh client, and is still running.
async fn assert_serving(gw: &mut GatewayProcess) {
    assert!(gw.is_running(), "gateway exited:\n{}", gw.log());
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    let (_, response): (_, MetadataResponse) = match client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
    {
        Ok(answer) => answer,
        Err(e) => panic!("gateway stopped serving ({e}):\n{}", gw.log()),
    };
    assert!(response
        .brokers
        .iter()
        .all(|b| b.host.as_str() == "kafka.gateway.test"));
}

async fn cluster_and_gateway(quirk: Quirk, gateway_extra: &str) -> (FakeCluster, GatewayProcess) {
    let cluster = FakeCluster::start(&[1], quirk).await;
    let base = free_port_base(&[1]);
    let gw = binary(&cluster.bootstrap(), base, gateway_extra, "");
    (cluster, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frame_sizes_truncation_and_garbage() {
    let (_cluster, mut gw) = cluster_and_gateway(Quirk::None, "max_frame_bytes = 1048576").await;
    let cases: [(&str, &[u8]); 5] = [
        ("negative", &(-1i32).to_be_bytes()),
        ("zero", &0i32.to_be_bytes()),
        ("above the maximum", &(1_048_577i32).to_be_bytes()),
        (
            "garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 random bytes, not kafka",
        ),
        ("truncated", &[0, 0, 0, 100, 0, 3, 0, 12, 0, 0, 0, 1, 0, 0]),
    ];
    for (what, bytes) in cases {
        let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
        client.stream.write_all(bytes).await.unwrap();
        if what == "truncated" {
            // Half a request, then the client hangs up: the gateway just ends the session.
            client.stream.shutdown().await.unwrap();
        }
        client.expect_closed().await;
    }
    gw.expect_log("frame size -1 is negative");
    gw.expect_log("frame of 0 bytes is too short");
    gw.expect_log("frame size 1048577 exceeds the limit of 1048576 bytes");
    assert_serving(&mut gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_not_offered_are_refused_and_unknown_apis_pass_through() {
    let (_cluster, mut gw) = cluster_and_gateway(Quirk::None, "").await;
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client.send_bare(ApiKey::Metadata as i16, 14).await;
    client.expect_closed().await;
    gw.expect_log("api key 3 v14, which the gateway does not offer");

    // A vendor API key the gateway has never heard of goes through, both ways.
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    let correlation_id = client.send_bare(31000, 2).await;
    let frame = client.read_frame().await.unwrap();
    assert_eq!(&frame[4..8], &correlation_id.to_be_bytes());
    assert_serving(&mut gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_is_closed() {
    let (_cluster, mut gw) = cluster_and_gateway(Quirk::None, "idle_timeout_ms = 500").await;
    let started = Instant::now();
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client.expect_closed().await;
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "closed too early: {:?}",
        started.elapsed()
    );
    assert_serving(&mut gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_closed_and_others_are_served() {
    let (_cluster, mut gw) =
        cluster_and_gateway(Quirk::BigFetch(32 << 20), "idle_timeout_ms = 1000").await;
    let mut slow = Client::connect_small_window(gw.addr.parse().unwrap())
        .await
        .unwrap();
    slow.send(ApiKey::Fetch, 12, &FetchRequest::default()).await;
    // Never read: the gateway fills the socket buffers, then gives up on this client.
    assert_serving(&mut gw).await;
    gw.expect_log("client read nothing for 1s");
    let mut drained = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(TIMEOUT, slow.stream.read(&mut chunk))
            .await
            .unwrap()
        {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    assert!(
        drained < 32 << 20,
        "the slow client got the whole response anyway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_holds_and_admitted_clients_keep_working() {
    let limit = 200;
    let (_cluster, gw) =
        cluster_and_gateway(Quirk::None, &format!("max_connections = {limit}")).await;
    let mut admitted = Vec::new();
    for _ in 0..limit {
        let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
        let (_, _): (_, ApiVersionsResponse) = client
            .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await
            .unwrap();
        admitted.push(client);
    }
    // Past the limit, a thousand more are closed at once rather than left hanging.
    let started = Instant::now();
    for _ in 0..1000 {
        let mut extra = Client::connect(gw.addr.as_str()).await.unwrap();
        extra.expect_closed().await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refusals took {:?}",
        started.elapsed()
    );
    gw.expect_log("connection limit reached");
    for client in admitted.iter_mut().step_by(50) {
        let (_, r): (_, MetadataResponse) = client
            .call(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await
            .unwrap();
        assert_eq!(r.brokers.len(), 1);
    }
    drop(admitted);
    // Freed permits are reusable.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
        if let Ok((_, r)) = client
            .call::<_, MetadataResponse>(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await
        {
            assert_eq!(r.brokers.len(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "permits never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_that_never_answers() {
    let (_cluster, mut gw) = cluster_and_gateway(Quirk::Silent, "idle_timeout_ms = 700").await;
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;
    gw.expect_log("broker sent nothing for 700ms");
    assert!(gw.is_running());
    // Other clients still get their connection closed promptly, not hung.
    let mut other = Client::connect(gw.addr.as_str()).await.unwrap();
    other
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    other.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_reset_in_the_middle_of_a_response() {
    let (_cluster, gw) = cluster_and_gateway(Quirk::ResetMidResponse, "").await;
    for _ in 0..2 {
        let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
        client
            .send(ApiKey::Fetch, 12, &FetchRequest::default())
            .await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, client.stream.read_to_end(&mut got))
            .await
            .unwrap();
        // What streamed through before the reset is cut short, then the connection closes:
        // the client never holds a whole frame it could mistake for the broker's answer.
        assert!(
            got.len() < 4
                || got.len() < 4 + i32::from_be_bytes(got[..4].try_into().unwrap()) as usize
        );
    }
    gw.expect_log("side=broker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_down_at_startup_then_up() {
    let port = free_port();
    let base = free_port_base(&[1]);
    let mut gw = binary(
        &format!("127.0.0.1:{port}"),
        base,
        "",
        "metadata_refresh_ms = 200",
    );
    gw.expect_log("cannot read cluster metadata");
    let started = Instant::now();
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    gw.expect_log("no bootstrap server reachable");

    // The cluster comes up on the configured address: clients are served, broker ports open.
    let advertised = Advertised::default();
    let broker = FakeBroker::start_on(port, 1, "late", advertised.clone(), Quirk::None).await;
    advertised
        .lock()
        .unwrap()
        .push((1, "127.0.0.1".into(), broker.addr.port()));
    gw.expect_log("serving broker broker.id=1");
    assert_serving(&mut gw).await;
    let (_, direct) = metadata(("127.0.0.1", base + 1), 12).await;
    assert_eq!(direct.cluster_id.as_deref(), Some("late"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_of_unreported_nodes_are_closed() {
    let (_cluster, gw) = cluster_and_gateway(Quirk::None, "").await;
    gw.expect_log("serving broker broker.id=1");
    let base = gw
        .log()
        .split("advertised=kafka.gateway.test:")
        .nth(1)
        .unwrap()[..5]
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse::<u16>()
        .unwrap()
        - 1;
    for node in [0u16, 2, 3, 100] {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", base + node))
                .await
                .is_err(),
            "port of unreported node {node} accepted a connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_name_the_client_from_the_proxy_header() {
    let (_cluster, gw) = cluster_and_gateway(Quirk::None, "proxy_protocol = \"required\"").await;
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client
        .stream
        .write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9092\r\n")
        .await
        .unwrap();
    client
        .stream
        .write_all(&(-7i32).to_be_bytes())
        .await
        .unwrap();
    client.expect_closed().await;
    gw.expect_log("client.addr=203.0.113.7:51234");
    let mut bare = Client::connect(gw.addr.as_str()).await.unwrap();
    bare.send_bare(ApiKey::ApiVersions as i16, 3).await;
    bare.expect_closed().await;
    gw.expect_log(
        "sent no PROXY protocol header, which gateway.proxy_protocol = \"required\" demands",
    );
}

/// The first bytes of a TLS 1.2 ClientHello, as a client with security.protocol=SSL sends
/// them to a plaintext port.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5a, 0x5a,
];

/// Sends `bytes` on a fresh connection and waits for the gateway to close it.
async fn send_and_expect_closed(addr: &str, bytes: &[u8]) {
    let mut client = Client::connect(addr).await.unwrap();
    client.stream.write_all(bytes).await.unwrap();
    client.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_protocol_on_a_port_is_named_with_its_fix() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1]);
    let admin = free_port();
    let port = free_port();
    let mut gw = GatewayProcess::with_config(
        port,
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\nadvertised_host = \"kafka.gateway.test\"\n\
             [upstream]\nbootstrap_servers = [\"{}\"]\n[brokers]\nport_base = {base}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            cluster.bootstrap()
        ),
    );
    let cases: [(&[u8], &str); 4] = [
        (
            CLIENT_HELLO,
            "client 127.0.0.1 spoke TLS to a plaintext listener: set security.protocol=PLAINTEXT (or SASL_PLAINTEXT) on the client, or enable [tls] on the gateway",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "client 127.0.0.1 sent HTTP to a Kafka listener",
        ),
        (
            b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9092\r\n",
            "client 127.0.0.1 sent a PROXY protocol header, but gateway.proxy_protocol is off",
        ),
        (
            // SaslHandshake v0 (key 17), then the raw token it would be followed by.
            &[0, 0, 0, 16, 0, 17, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 5, b'P', b'L', b'A', b'I'],
            "client 127.0.0.1 sent SaslHandshake v0, after which SASL tokens travel outside Kafka framing",
        ),
    ];
    for (bytes, line) in cases {
        send_and_expect_closed(&gw.addr, bytes).await;
        gw.expect_log(line);
    }
    assert!(
        !gw.log().contains("369295617"),
        "the ClientHello was read as a frame size:\n{}",
        gw.log()
    );
    assert_serving(&mut gw).await;

    // A scanner: many mistakes of one kind, a few lines, every one counted.
    for _ in 0..30 {
        send_and_expect_closed(&gw.addr, CLIENT_HELLO).await;
    }
    let (_, metrics) = http_get(format!("127.0.0.1:{admin}").parse().unwrap(), "/metrics").await;
    assert!(
        metrics.contains("kafka_edge_refused_connections_total{kind=\"tls_to_plaintext\"} 31"),
        "{metrics}"
    );
    assert!(metrics.contains("kafka_edge_refused_connections_total{kind=\"http\"} 1"));
    let lines = gw
        .log()
        .matches("spoke TLS to a plaintext listener")
        .count();
    assert_eq!(lines, 5, "the log was not throttled:\n{}", gw.log());
    assert_serving(&mut gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_kafka_and_http_on_a_tls_port_are_named_with_their_fix() {
    let pki = support::pki::Pki::new("hostile");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1]);
    let port = free_port();
    let gw = GatewayProcess::with_config(
        port,
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\nadvertised_host = \"localhost\"\n\
             [upstream]\nbootstrap_servers = [\"{}\"]\n[brokers]\nport_base = {base}\n{}",
            cluster.bootstrap(),
            pki.toml("")
        ),
    );
    let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
    client
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    client.expect_closed().await;
    gw.expect_log("client 127.0.0.1 spoke plaintext Kafka to a TLS listener: set security.protocol=SSL (or SASL_SSL) on the client");
    send_and_expect_closed(&gw.addr, b"GET / HTTP/1.1\r\n\r\n").await;
    gw.expect_log("client 127.0.0.1 sent plain HTTP to a TLS Kafka listener");
}

//! Client-facing TLS: real TLS clients (tokio-rustls) against the gateway library with
//! certificates generated here (rcgen), never committed.

mod support;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_edge::config::{File, Overrides};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use rustls::pki_types::ServerName;
use support::pki::Pki;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const HOST: &str = "kafka.gateway.test";

/// A throwaway CA, a server certificate for localhost, and a client certificate, as PEM files.
async fn tls_gateway(cluster: &FakeCluster, base: u16, toml: &str) -> Gateway {
    Gateway::start(
        toml::from_str(toml).unwrap(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(base),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: impl tokio::net::ToSocketAddrs,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    tls_connect_as(connector, addr, "localhost").await
}

async fn tls_connect_as(
    connector: &TlsConnector,
    addr: impl tokio::net::ToSocketAddrs,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    connector.connect(name, tcp).await
}

/// One Metadata v12 exchange over any stream.
async fn metadata_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> std::io::Result<(Bytes, MetadataResponse)> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(5)
        .with_client_id(Some(StrBytes::from_static_str("tls-test")))
        .encode(&mut out, MetadataRequest::header_version(12))
        .unwrap();
    MetadataRequest::default().encode(&mut out, 12).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&out).await?;
    stream.flush().await?;
    let size = tokio::time::timeout(TIMEOUT, stream.read_i32()).await??;
    let mut frame = vec![0u8; 4 + size as usize];
    frame[..4].copy_from_slice(&size.to_be_bytes());
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut frame[4..])).await??;
    let frame = Bytes::from(frame);
    Ok((
        frame.clone(),
        decode_response(ApiKey::Metadata, 12, 5, frame),
    ))
}

#[tokio::test]
async fn tls_clients_get_rewritten_metadata_and_tls_broker_ports() {
    let pki = Pki::new("basic");
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let base = free_port_base(&[1, 2]);
    let gw = tls_gateway(&cluster, base, &pki.toml("")).await;
    let connector = pki.connector(false);

    let mut stream = tls_connect(&connector, gw.addr).await.unwrap();
    let (raw, response) = metadata_over(&mut stream).await.unwrap();
    let brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    assert_eq!(
        brokers,
        vec![
            (1, HOST.into(), i32::from(base) + 1),
            (2, HOST.into(), i32::from(base) + 2)
        ]
    );
    assert_absent(&raw, "127.0.0.1");

    let mut broker = tls_connect(&connector, ("127.0.0.1", base + 2))
        .await
        .unwrap();
    let (_, direct) = metadata_over(&mut broker).await.unwrap();
    assert_eq!(direct.cluster_id.as_deref(), Some("broker-2"));
}

#[tokio::test]
async fn plaintext_on_a_tls_port_is_refused() {
    let pki = Pki::new("plain");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = tls_gateway(&cluster, free_port_base(&[1]), &pki.toml("")).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    // Refused before any TLS: nothing comes back but the close (a reset, with the request
    // unread). The log line naming the mistake is checked against the binary (hostile.rs).
    let mut got = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, client.stream.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(got.is_empty(), "answered plaintext with {got:?} ({read:?})");
}

#[tokio::test]
async fn a_silent_client_times_out_in_the_handshake() {
    let pki = Pki::new("silent");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = tls_gateway(
        &cluster,
        free_port_base(&[1]),
        &pki.toml("handshake_timeout_ms = 300"),
    )
    .await;
    let started = Instant::now();
    let mut client = Client::connect(gw.addr).await.unwrap();
    client.expect_closed().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new("mutual");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let ca = pki.dir.join("ca.pem");
    let gw = tls_gateway(
        &cluster,
        free_port_base(&[1]),
        &pki.toml(&format!("client_ca = \"{}\"", ca.display())),
    )
    .await;

    // Without a certificate the handshake may complete on the client's side (TLS 1.3), but
    // the gateway rejects it before any Kafka byte is exchanged.
    let refused = match tls_connect(&pki.connector(false), gw.addr).await {
        Err(_) => true,
        Ok(mut stream) => metadata_over(&mut stream).await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");

    let mut stream = tls_connect(&pki.connector(true), gw.addr).await.unwrap();
    let (_, response) = metadata_over(&mut stream).await.unwrap();
    assert_eq!(response.brokers.len(), 1);
}

#[tokio::test]
async fn unusable_tls_files_stop_the_gateway_before_it_serves() {
    let pki = Pki::new("broken");
    std::fs::write(pki.dir.join("server.key"), "not a key").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let file: File = toml::from_str(&pki.toml("")).unwrap();
    let config = kafka_edge::Config::resolve(
        file,
        Overrides {
            bootstrap_servers: vec!["127.0.0.1:1".into()],
            ..Overrides::default()
        },
    )
    .unwrap();
    let listeners = kafka_edge::Listeners {
        bootstrap: listener,
        admin: None,
    };
    let err = kafka_edge::run(listeners, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
}

#[tokio::test]
async fn sni_mode_serves_the_whole_cluster_on_one_port() {
    let pki = Pki::new("sni");
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let gw = tls_gateway(
        &cluster,
        free_port_base(&[1, 2]),
        &pki.toml("[sni]\ndomain = \"kafka.test\""),
    )
    .await;
    let connector = pki.connector(false);
    let port = i32::from(gw.addr.port());

    let mut bootstrap = tls_connect_as(&connector, gw.addr, "bootstrap.kafka.test")
        .await
        .unwrap();
    let (raw, response) = metadata_over(&mut bootstrap).await.unwrap();
    let brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    assert_eq!(
        brokers,
        vec![
            (1, "broker-1.kafka.test".into(), port),
            (2, "broker-2.kafka.test".into(), port)
        ]
    );
    assert_absent(&raw, "127.0.0.1");

    for id in [1, 2] {
        let name = format!("broker-{id}.kafka.test");
        let mut broker = tls_connect_as(&connector, gw.addr, &name).await.unwrap();
        let (_, direct) = metadata_over(&mut broker).await.unwrap();
        assert_eq!(
            direct.cluster_id.as_deref(),
            Some(format!("broker-{id}").as_str())
        );
    }

    // Names that are not ours, and brokers the cluster never reported, get no connection.
    for name in [
        "other.kafka.test",
        "broker-9.kafka.test",
        "broker-1.kafka.test.evil.test",
    ] {
        let refused = match tls_connect_as(&connector, gw.addr, name).await {
            Err(_) => true,
            Ok(mut stream) => metadata_over(&mut stream).await.is_err(),
        };
        assert!(refused, "{name} was served");
    }
}

/// Gateway B speaks plain TCP to clients and TLS to gateway A, which fronts the cluster with
/// TLS as if it were a TLS-only cluster advertising `localhost`.
async fn chained(
    pki: &Pki,
    cluster: &FakeCluster,
    b_upstream: impl Fn(u16) -> String,
    verify: bool,
) -> (Gateway, Gateway, u16) {
    let a_base = free_port_base(&[1]);
    let a = Gateway::start(
        toml::from_str(&pki.toml("")).unwrap(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some("localhost".into()),
            broker_port_base: Some(a_base),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    let b_base = free_port_base(&[1]);
    let b = Gateway::start(
        toml::from_str(&format!(
            "[upstream.tls]\nca = \"{}\"\nverify_hostname = {verify}\n",
            pki.dir.join("ca.pem").display()
        ))
        .unwrap(),
        Overrides {
            bootstrap_servers: vec![b_upstream(a.addr.port())],
            advertised_host: Some(HOST.into()),
            broker_port_base: Some(b_base),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    (a, b, b_base)
}

#[tokio::test]
async fn upstream_tls_verifies_brokers_and_carries_every_route() {
    let pki = Pki::new("upstream");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let (_a, b, b_base) = chained(&pki, &cluster, |port| format!("localhost:{port}"), true).await;

    let (raw, response) = metadata(b.addr, 12).await;
    let brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|x| (x.host.to_string(), x.port))
        .collect();
    assert_eq!(brokers, vec![(HOST.to_owned(), i32::from(b_base) + 1)]);
    assert_absent(&raw, "localhost");
    // The broker route too goes through TLS, to the address gateway A advertised.
    let (_, direct) = metadata(("127.0.0.1", b_base + 1), 12).await;
    assert_eq!(direct.cluster_id.as_deref(), Some("broker-1"));
}

#[tokio::test]
async fn upstream_tls_refuses_a_certificate_for_another_name_unless_told_not_to_check() {
    let pki = Pki::new("hostname");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    // The certificate names localhost, not 127.0.0.1.
    let (_a, strict, _) = chained(&pki, &cluster, |port| format!("127.0.0.1:{port}"), true).await;
    let mut client = Client::connect(strict.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;

    let (_a, lax, _) = chained(&pki, &cluster, |port| format!("127.0.0.1:{port}"), false).await;
    let (_, response) = metadata(lax.addr, 12).await;
    assert_eq!(response.brokers.len(), 1);
}

#[tokio::test]
async fn rotated_certificates_are_used_for_new_connections_and_old_ones_live_on() {
    let old = Pki::new("rotate-old");
    let new = Pki::new("rotate-new");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = tls_gateway(
        &cluster,
        free_port_base(&[1]),
        &old.toml("reload_check_ms = 100"),
    )
    .await;
    let mut before = tls_connect(&old.connector(false), gw.addr).await.unwrap();
    metadata_over(&mut before).await.unwrap();

    // Rotate: the new chain and key (from another CA) replace the files in place.
    for file in ["server.pem", "server.key"] {
        std::fs::copy(new.dir.join(file), old.dir.join(file)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut after) = tls_connect(&new.connector(false), gw.addr).await {
            if metadata_over(&mut after).await.is_ok() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tls_connect(&old.connector(false), gw.addr).await.is_err(),
        "new connections still get the old certificate"
    );
    // The connection made before the rotation keeps working.
    let (_, response) = metadata_over(&mut before).await.unwrap();
    assert_eq!(response.brokers.len(), 1);
}

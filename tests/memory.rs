//! Memory a connection keeps after a large answer that names brokers: it goes back to its
//! buffers. Connections each receive a 20 MB Metadata answer (only its broker list is held;
//! the topics stream), then a 20 MB DescribeConfigs answer (held whole: any config may name
//! an address), then sit idle; the gateway's resident memory must come back near where it
//! started. 40 connections by default (seconds); `KAFKA_EDGE_MEMORY_CONNECTIONS=200` for the
//! full measurement. Figures are printed (`--no-capture`).

mod support;

use std::time::Duration;

use kafka_protocol::messages::*;
use support::process::{free_port, GatewayProcess};
use support::*;
use tokio::io::AsyncReadExt;

const ANSWER_BYTES: usize = 20 << 20;

/// Resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_let_go_of_large_rewritten_answers() {
    let cluster = FakeCluster::start(&[1], Quirk::BigAnswers(ANSWER_BYTES)).await;
    let base = free_port_base(&[1]);
    let port = free_port();
    let gw = GatewayProcess::with_config(
        port,
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\nadvertised_host = \"kafka.gateway.test\"\n\
             [upstream]\nbootstrap_servers = [\"{}\"]\n[brokers]\nport_base = {base}\n",
            cluster.bootstrap()
        ),
    );
    let pid = gw.child.id();
    let connections: usize = std::env::var("KAFKA_EDGE_MEMORY_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    // The connections, open and idle: what they cost before any large answer.
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut client = Client::connect(gw.addr.as_str()).await.unwrap();
        let (_, _): (_, ApiVersionsResponse) = client
            .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await
            .unwrap();
        clients.push(client);
    }
    let before = rss_kib(pid);
    let mut report = format!("{connections} idle connections: {before} KiB");
    for api in [ApiKey::Metadata, ApiKey::DescribeConfigs] {
        // Ten at a time, each gets its 20 MB answer, rewritten.
        let mut peak = 0;
        let mut done = Vec::new();
        while !clients.is_empty() {
            let mut batch = tokio::task::JoinSet::new();
            for mut client in clients.drain(..clients.len().min(10)) {
                batch.spawn(async move {
                    large_answer(&mut client, api).await;
                    client
                });
            }
            while let Some(client) = batch.join_next().await {
                done.push(client.unwrap());
            }
            peak = peak.max(rss_kib(pid));
        }
        clients = done;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(pid);
        report += &format!("; {api:?}: peak {peak} KiB, then {after} KiB idle");
        // Each connection may keep its two 64 KiB buffers, not a 20 MB answer.
        let allowed = before + (connections as u64 * 128) + 32 * 1024;
        assert!(
            after <= allowed,
            "{report}: connections kept what the answers took"
        );
    }
    println!("gateway RSS: {report}");
}

/// Asks for `api` and reads the whole 20 MB answer, checking it was rewritten.
async fn large_answer(client: &mut Client, api: ApiKey) {
    let correlation_id = match api {
        ApiKey::Metadata => {
            client
                .send(api, 12, &MetadataRequest::default().with_topics(None))
                .await
        }
        _ => {
            client
                .send(api, 4, &DescribeConfigsRequest::default())
                .await
        }
    };
    let read = async {
        let size = client.stream.read_i32().await.unwrap();
        assert_eq!(client.stream.read_i32().await.unwrap(), correlation_id);
        let mut rest = vec![0u8; size as usize - 4];
        client.stream.read_exact(&mut rest).await.unwrap();
        // What names brokers comes first; the rest is topic names or filler configs.
        assert_absent(&rest[..4096], "127.0.0.1");
        size as usize
    };
    let size = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the large answer arrived");
    assert!(
        size > ANSWER_BYTES * 9 / 10,
        "{api:?} answer of {size} bytes"
    );
}

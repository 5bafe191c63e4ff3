//! The exchange core against hostile clients: each case here was found by trying, as a client,
//! what the broker allows directly, and each failed before the gateway owned its correlation
//! ids (see the commit that added it).

mod support;

use std::time::{Duration, Instant};

use kafka_edge::config::{File, Overrides};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADVERTISED: &str = "gw.exchange.test";

/// A gateway that tells clients `ADVERTISED`, so any upstream `127.0.0.1` reaching a client
/// is a leak, with `gateway_extra` keys (TOML) in `[gateway]`.
async fn gateway(cluster: &FakeCluster, port_base: u16, gateway_extra: &str) -> Gateway {
    let file: File = toml::from_str(&format!("[gateway]\n{gateway_extra}\n")).unwrap();
    Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(port_base),
            advertised_host: Some(ADVERTISED.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await
}

/// Encodes a request with a correlation id the test chooses.
fn request<T: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    use bytes::BufMut;
    use kafka_protocol::protocol::Encodable;
    let mut out = bytes::BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("hostile")))
        .encode(&mut out, T::header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

/// An acks=0 Produce to one partition of `topic`.
fn acks0_produce(topic: &str, correlation_id: i32) -> Vec<u8> {
    let body = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(
                vec![PartitionProduceData::default().with_index(0)],
            )]);
    request(ApiKey::Produce, 9, correlation_id, &body)
}

/// A topic name that, echoed in a Produce v9 answer and read as a Metadata v12 answer, is a
/// broker list naming `node_id` at 127.0.0.1:32639.
fn broker_shaped_topic(node_id: u8) -> String {
    let mut name = vec![b'x', b'x']; // the rest of what reads as throttle_time_ms
    name.push(2); // one broker
    name.extend_from_slice(&[0, 0, 0, node_id]);
    name.push(10); // host: 9 bytes
    name.extend_from_slice(b"127.0.0.1");
    name.extend_from_slice(&[0, 0, 0x7f, 0x7f]); // port 32639
    name.extend_from_slice(&[0, 0, 0]); // null rack, no tags, null cluster id
    String::from_utf8(name).unwrap()
}

/// Reads frames until one answers `correlation_id`, collecting every byte received.
async fn read_until(client: &mut Client, correlation_id: i32, seen: &mut Vec<u8>) -> bytes::Bytes {
    loop {
        let frame = client.read_frame().await.expect("the gateway answered");
        seen.extend_from_slice(&frame);
        if frame[4..8] == correlation_id.to_be_bytes() {
            return frame;
        }
    }
}

/// Whole frames back out of bytes read one frame at a time.
fn split_frames(mut bytes: &[u8]) -> Vec<bytes::Bytes> {
    let mut frames = Vec::new();
    while bytes.len() >= 4 {
        let len = 4 + i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        frames.push(bytes::Bytes::copy_from_slice(&bytes[..len]));
        bytes = &bytes[len..];
    }
    frames
}

/// Whether something listens on 127.0.0.1:`port`.
async fn listening(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test]
async fn a_reused_correlation_id_cannot_pass_an_answer_on_unrewritten_or_teach_a_broker() {
    for crafted_node in [9u8, 1] {
        let cluster = FakeCluster::start(&[1], Quirk::AnswersAcksZero).await;
        let base = free_port_base(&[1, 9]);
        let gw = gateway(&cluster, base, "").await;
        let mut client = Client::connect(gw.addr).await.unwrap();
        // The broker answers the acks=0 Produce; the Metadata request reuses its id.
        let mut attack = acks0_produce(&broker_shaped_topic(crafted_node), 7);
        attack.extend(request(
            ApiKey::Metadata,
            12,
            7,
            &MetadataRequest::default().with_topics(None),
        ));
        // A last request marks the end of what the client is owed.
        attack.extend(request(
            ApiKey::Metadata,
            12,
            99,
            &MetadataRequest::default(),
        ));
        client.stream.write_all(&attack).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut client, 99, &mut seen).await;
        assert_absent(&seen, "127.0.0.1");
        // Nothing was learned from the Produce answer: no port for node 9, and broker 1 still
        // reaches broker 1.
        assert!(!listening(base + 9).await, "a port opened for node 9");
        let (_, direct): (_, MetadataResponse) = metadata_via(base + 1).await;
        assert_eq!(direct.cluster_id.as_deref(), Some("broker-1"));
        // Directly, the client would read the Produce answer, then the Metadata answer; the
        // gateway drops the answer to acks=0, so the one frame with id 7 is Metadata's.
        let frames = split_frames(&seen);
        assert_eq!(frames.len(), 2, "answers to ids 7 and 99");
        let metadata: MetadataResponse =
            decode_response(ApiKey::Metadata, 12, 7, frames[0].clone());
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].host.as_str(), ADVERTISED);
        assert_eq!(metadata.brokers[0].port, i32::from(base + 1));
        drop(client);
        gw.stop().await;
    }
}

async fn metadata_via(port: u16) -> (bytes::Bytes, MetadataResponse) {
    metadata(("127.0.0.1", port), 12).await
}

#[tokio::test]
async fn any_number_of_answered_acks0_requests_keeps_the_session_in_step() {
    let cluster = FakeCluster::start(&[1], Quirk::AnswersAcksZero).await;
    let gw = gateway(&cluster, free_port_base(&[1]), "").await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    let mut burst = Vec::new();
    for id in 0..2000 {
        burst.extend(acks0_produce("t", id));
    }
    burst.extend(request(
        ApiKey::Metadata,
        12,
        5000,
        &MetadataRequest::default(),
    ));
    client.stream.write_all(&burst).await.unwrap();
    let frame = read_until(&mut client, 5000, &mut Vec::new()).await;
    let metadata: MetadataResponse = decode_response(ApiKey::Metadata, 12, 5000, frame);
    assert_eq!(metadata.brokers[0].host.as_str(), ADVERTISED);
}

#[tokio::test]
async fn answers_to_acks0_are_dropped_and_the_rest_arrive_with_the_client_ids() {
    // Kafka never answers acks=0; librdkafka's mock and tansu do, and the Java and Python
    // clients fail on an answer they did not ask for. Through the gateway the client gets
    // exactly the answers it waits for, with its own (here: repeated) correlation ids.
    let cluster = FakeCluster::start(&[1], Quirk::AnswersAcksZero).await;
    let gw = gateway(&cluster, free_port_base(&[1]), "").await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    let mut burst = Vec::new();
    for _ in 0..3 {
        burst.extend(acks0_produce("t", 3));
    }
    for _ in 0..2 {
        burst.extend(request(
            ApiKey::Metadata,
            12,
            3,
            &MetadataRequest::default(),
        ));
    }
    client.stream.write_all(&burst).await.unwrap();
    for _ in 0..2 {
        let frame = client.read_frame().await.unwrap();
        let metadata: MetadataResponse = decode_response(ApiKey::Metadata, 12, 3, frame);
        assert_eq!(metadata.brokers[0].host.as_str(), ADVERTISED);
    }
    // And nothing else: the next thing read is the answer to the next request.
    let (_, m): (_, MetadataResponse) = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(m.brokers.len(), 1);
}

#[tokio::test]
async fn the_idle_limit_applies_after_an_answer() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1]), "idle_timeout_ms = 500").await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    let (_, _): (_, MetadataResponse) = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    // Silent from here on: closed about the idle limit after the answer.
    let start = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(4), client.stream.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a silent client kept its connection: {read:?}"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(2000),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_client_waiting_on_a_slow_answer_is_not_idle() {
    // The broker takes longer than the idle limit to answer (no answer at all), and is
    // blamed; the client, which sent its request and waits, is not.
    let cluster = FakeCluster::start(&[1], Quirk::Silent).await;
    let gw = gateway(&cluster, free_port_base(&[1]), "idle_timeout_ms = 500").await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    let start = Instant::now();
    client.expect_closed().await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(2000),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_client_that_shuts_down_its_sending_side_gets_its_answers() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, free_port_base(&[1]), "").await;
    for version in [1, 12] {
        let mut client = Client::connect(gw.addr).await.unwrap();
        let first = client
            .send(ApiKey::Metadata, version, &MetadataRequest::default())
            .await;
        let second = client
            .send(ApiKey::Metadata, version, &MetadataRequest::default())
            .await;
        client.stream.shutdown().await.unwrap();
        for id in [first, second] {
            let frame = client
                .read_frame()
                .await
                .expect("the answer after a half-close");
            let metadata: MetadataResponse = decode_response(ApiKey::Metadata, version, id, frame);
            assert_eq!(metadata.brokers[0].host.as_str(), ADVERTISED);
        }
        // Then the gateway closes its side too.
        client.expect_closed().await;
    }
}

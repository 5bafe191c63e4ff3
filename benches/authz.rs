//! What authorization costs per request on the hot path: finding the topics a Produce or a
//! Fetch names (by name, or by id through the gateway's map) and deciding each against the
//! policy, from the frame's bytes (`verdict::authorize`, which is all the data path calls).
//! `peek_request/*` is what every request already pays (the head peek), for scale. Each case
//! is checked once before timing: allowed, and naming the topics it should.

use std::collections::HashMap;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use kafka_edge::edge::auth::policy::{Grant, Operation, Patterns, Policy};
use kafka_edge::edge::auth::resources::{resources, Needs, TopicId};
use kafka_edge::edge::auth::verdict::{authorize, Verdict};
use kafka_edge::proxy::frame::peek_request;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn frame(api: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    out.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench-producer")))
        .encode(&mut out, api.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

fn id(topic: usize) -> TopicId {
    let mut id = [0x5a; 16];
    id[..8].copy_from_slice(&(topic as u64).to_be_bytes());
    id
}

fn name(topic: usize) -> String {
    format!("team-a.orders-{topic}")
}

/// Produce of `topics` topics × `partitions` partitions of `batch` bytes of records each.
fn produce(version: i16, topics: usize, partitions: i32, batch: usize) -> Vec<u8> {
    let records = Bytes::from(vec![0u8; batch]);
    let body = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(
            (0..topics)
                .map(|t| {
                    let topic = TopicProduceData::default().with_partition_data(
                        (0..partitions)
                            .map(|p| {
                                PartitionProduceData::default()
                                    .with_index(p)
                                    .with_records(Some(records.clone()))
                            })
                            .collect(),
                    );
                    if version >= 13 {
                        topic.with_topic_id(uuid::Uuid::from_bytes(id(t)))
                    } else {
                        topic.with_name(TopicName(StrBytes::from_string(name(t))))
                    }
                })
                .collect(),
        );
    frame(ApiKey::Produce, version, &body)
}

/// A consumer's Fetch of `topics` topics × `partitions` partitions.
fn fetch(version: i16, topics: usize, partitions: i32) -> Vec<u8> {
    let body = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_topics(
            (0..topics)
                .map(|t| {
                    let topic = FetchTopic::default().with_partitions(
                        (0..partitions)
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(1_000_000)
                                    .with_partition_max_bytes(1 << 20)
                            })
                            .collect(),
                    );
                    if version >= 13 {
                        topic.with_topic_id(uuid::Uuid::from_bytes(id(t)))
                    } else {
                        topic.with_topic(TopicName(StrBytes::from_string(name(t))))
                    }
                })
                .collect(),
        );
    frame(ApiKey::Fetch, version, &body)
}

/// `team-a` reads, writes and describes `team-a.*`, as a platform team's grant would.
fn policy() -> Policy {
    let topics = Patterns::parse(&["team-a.*".to_owned()], "topics", &mut Vec::new());
    let grant = Grant::new(
        &[Operation::Read, Operation::Write, Operation::Describe],
        topics,
        Patterns::default(),
        Patterns::default(),
    );
    Policy::new(vec![("team-a".into(), grant)], vec![])
}

fn authz(c: &mut Criterion) {
    let policy = policy();
    // The gateway's id map: what it learned from Metadata answers of a 1,000-topic cluster.
    let ids: HashMap<TopicId, String> = (0..1000).map(|t| (id(t), name(t))).collect();
    let cases = [
        ("produce_v9/1x1x16KiB", produce(9, 1, 1, 16 << 10), 1),
        ("produce_v9/10x10x1KiB", produce(9, 10, 10, 1 << 10), 10),
        ("produce_v12/1x1x1MiB", produce(12, 1, 1, 1 << 20), 1),
        ("produce_v13/1x1x16KiB", produce(13, 1, 1, 16 << 10), 1),
        ("produce_v13/10x10x1KiB", produce(13, 10, 10, 1 << 10), 10),
        ("fetch_v12/1x10", fetch(12, 1, 10), 1),
        ("fetch_v17/1x10", fetch(17, 1, 10), 1),
        ("fetch_v17/100x10", fetch(17, 100, 10), 100),
    ];
    for (case, frame, topics) in &cases {
        let Ok(Needs::Checked(needs)) = resources(frame, &ids) else {
            panic!("{case}")
        };
        assert_eq!(needs.len(), *topics, "{case}");
        assert!(
            matches!(
                authorize(&policy, "team-a", frame, &ids),
                Verdict::Forward {
                    edited: None,
                    filter: None
                }
            ),
            "{case}"
        );
    }
    for (case, frame, _) in &cases {
        c.bench_function(&format!("authorize/{case}"), |b| {
            b.iter(|| {
                matches!(
                    authorize(&policy, "team-a", black_box(frame), &ids),
                    Verdict::Forward { .. }
                )
            })
        });
    }
    for (case, frame, _) in &cases[..2] {
        c.bench_function(&format!("peek_request/{case}"), |b| {
            b.iter(|| peek_request(black_box(frame), usize::MAX))
        });
    }
}

criterion_group!(benches, authz);
criterion_main!(benches);

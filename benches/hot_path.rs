//! Micro-benchmarks of the per-frame work: the request head peek every request pays, and the
//! Metadata rewrite every bootstrap pays (100 brokers, 1,000 partitions).

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_edge::route::RouteError;
use kafka_protocol::messages::metadata_response::*;
use kafka_protocol::messages::{ApiKey, BrokerId, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use std::hint::black_box;

struct Plan;

impl AddressBook for Plan {
    fn learn(&self, node_id: i32, _host: &str, _port: i32) -> Result<Advertised, RouteError> {
        self.planned(node_id)
    }
    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
        Ok(Advertised {
            host: StrBytes::from_static_str("kafka.example.com"),
            port: 19000 + node_id as u16,
        })
    }
}

fn metadata_frame(brokers: i32, partitions: i32, version: i16) -> Bytes {
    let response = MetadataResponse::default()
        .with_brokers(
            (0..brokers)
                .map(|id| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(format!(
                            "kafka-{id}.kafka.svc.cluster.local"
                        )))
                        .with_port(9092)
                })
                .collect(),
        )
        .with_topics(
            (0..partitions / 10)
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(format!("topic-{t}")))))
                        .with_partitions(
                            (0..10)
                                .map(|p| {
                                    let leader = (t * 10 + p) % brokers;
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(leader))
                                        .with_replica_nodes(vec![
                                            BrokerId(leader),
                                            BrokerId((leader + 1) % brokers),
                                        ])
                                        .with_isr_nodes(vec![BrokerId(leader)])
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let mut payload = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(7)
        .encode(
            &mut payload,
            ApiKey::Metadata.response_header_version(version),
        )
        .expect("header encodes");
    response
        .encode(&mut payload, version)
        .expect("metadata encodes");
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.extend_from_slice(&payload);
    frame.freeze()
}

fn benches(c: &mut Criterion) {
    let produce_head: Vec<u8> = {
        // Produce v9 header: flexible, client id "bench-client", null transactional id, acks -1.
        let mut f = BytesMut::new();
        f.put_i32(1_048_576);
        f.put_i16(0);
        f.put_i16(9);
        f.put_i32(42);
        f.put_i16(12);
        f.put_slice(b"bench-client");
        f.put_u8(0);
        f.put_u8(0);
        f.put_i16(-1);
        f.to_vec()
    };
    c.bench_function("peek_request/produce_v9", |b| {
        b.iter(|| kafka_edge::frame::peek_request(black_box(&produce_head), 100 << 20))
    });

    let frame = metadata_frame(100, 1000, 12);
    c.bench_function("rewrite/metadata_v12_100_brokers_1000_partitions", |b| {
        b.iter(|| {
            rewrite::response(Rewrite::Metadata, 12, black_box(frame.clone()), &Plan)
                .map(|r| r.len())
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);

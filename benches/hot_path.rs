//! Micro-benchmarks of the work the gateway does per frame and per byte.
//!
//! - `peek_request/produce_v9`: the request head peek every request pays.
//! - `rewrite/*`: each response rewrite, at the highest version the gateway offers for it
//!   (Metadata also at v12 with 100 brokers and 1,000 partitions, the figure quoted so far, and
//!   with 100 brokers and 50,000 partitions).
//!   Metadata at 3 brokers and 10 partitions is what every client pays at bootstrap; the
//!   ShareFetch pair shows what a response that names no broker costs against one that does.
//!   The group descriptions (classic, KIP-848 consumer, share and streams) describe one group
//!   of 20 members, as `kafka-consumer-groups --describe --members` asks for it.
//!   Each frame is rewritten once before timing, and must come back Ok and changed exactly
//!   when it names a broker, so no bench measures an error path.
//! - `pump/*`: one session's two pumps (`session::relay`) between an in-memory client and a
//!   fake broker answering Produce v8, pipelined: 16 requests of 1 MiB (the cost per byte)
//!   and 1,000 requests of 100 B (the cost per frame). Throughput counts the bytes of both
//!   directions.
//! - `pump_baseline/*`: the same traffic through `tokio::io::copy_bidirectional` with the
//!   gateway's buffer size, so the difference is what the session costs over a raw copy.

use std::hint::black_box;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_edge::cluster::route::{Route, RouteError};
use kafka_edge::config::{self, Config};
use kafka_edge::gateway::Gateway;
use kafka_edge::rewrite::api_versions::{self, Limit};
use kafka_edge::rewrite::wire::put_uvarint;
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    describe_configs_response as configs, describe_groups_response as groups, ApiKey,
    ApiVersionsResponse, BrokerId, DescribeClusterResponse, DescribeConfigsResponse,
    DescribeGroupsResponse, DescribeQuorumResponse, FindCoordinatorResponse, GroupId,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{
    AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, DuplexStream, ReadHalf, WriteHalf,
};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Frames

/// Frames kafka-protocol cannot encode, shared with the unit tests.
#[path = "../src/rewrite/test_frames.rs"]
mod test_frames;

/// One frame: size prefix, header, body.
fn frame(
    header: &impl Encodable,
    header_version: i16,
    body: &impl Encodable,
    version: i16,
) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(0);
    header
        .encode(&mut out, header_version)
        .expect("header encodes");
    body.encode(&mut out, version).expect("body encodes");
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// A response frame as a broker sends it.
fn response_frame(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Bytes {
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    frame(&header, header_version, body, version)
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn broker_host(id: i32) -> StrBytes {
    s(&format!("kafka-{id}.kafka.svc.cluster.local"))
}

// ---------------------------------------------------------------------------------------------
// Request head peek

fn peek(c: &mut Criterion) {
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
        b.iter(|| kafka_edge::proxy::frame::peek_request(black_box(&produce_head), 100 << 20))
    });
}

// ---------------------------------------------------------------------------------------------
// Rewrites

/// Node N is served at `kafka.example.com:19000+N`.
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

/// The highest version of an API the gateway lets clients negotiate.
fn highest_offered(kind: Rewrite) -> i16 {
    match api_versions::limit(kind.api_key()) {
        Limit::Range { max, .. } => max,
        other => panic!("{kind:?} is in the rewrite set but limited to {other:?}"),
    }
}

/// One response to rewrite, and whether it names a node (so the rewrite must change it).
struct Case {
    name: String,
    kind: Rewrite,
    version: i16,
    frame: Bytes,
    names_nodes: bool,
}

impl Case {
    fn new(name: String, kind: Rewrite, version: i16, body: &impl Encodable) -> Case {
        let header = ResponseHeader::default().with_correlation_id(7);
        let frame = frame(
            &header,
            kind.response_header_version(version),
            body,
            version,
        );
        Case::of_frame(name, kind, version, frame)
    }

    /// A case of a frame built by hand, for what kafka-protocol cannot encode.
    fn of_frame(name: String, kind: Rewrite, version: i16, frame: Bytes) -> Case {
        Case {
            name,
            kind,
            version,
            frame,
            names_nodes: true,
        }
    }

    fn naming_no_node(self) -> Case {
        Case {
            names_nodes: false,
            ..self
        }
    }

    fn rewrite(&self) -> Result<Bytes, rewrite::RewriteError> {
        rewrite::response(
            self.kind,
            self.version,
            black_box(self.frame.clone()),
            &Plan,
        )
    }
}

fn metadata(brokers: i32, partitions: i32) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(
            (0..brokers)
                .map(|id| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(broker_host(id))
                        .with_port(9092)
                })
                .collect(),
        )
        .with_topics(
            (0..partitions / 10)
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(s(&format!("topic-{t}")))))
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
        )
}

/// What a broker that supports every API kafka-protocol knows answers: Produce and Fetch
/// get capped, so the rewrite always edits the list. With `features`, also what a Kafka 4.4.0
/// broker of a new cluster lists as supported and finalized, transaction.version 2 among
/// them: the feature levels are walked, and capped where the offered versions need it.
fn api_versions_case(features: bool) -> Case {
    let keys: Vec<ApiVersion> = ApiKey::iter()
        .map(|api| {
            let range = api.valid_versions();
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    // v5's answer is laid out as v4's, the last one kafka-protocol encodes.
    let version = highest_offered(Rewrite::ApiVersions)
        .min(<ApiVersionsResponse as kafka_protocol::protocol::Message>::VERSIONS.max);
    let mut name = format!("api_versions_v{version}_{}_keys", keys.len());
    let mut supported = vec![("metadata.version", 1, 27)];
    let mut finalized = vec![];
    if features {
        supported = vec![
            ("eligible.leader.replicas.version", 0, 1),
            ("group.version", 0, 1),
            ("kraft.version", 0, 1),
            ("metadata.version", 7, 29),
            ("share.version", 0, 2),
            ("streams.version", 0, 1),
            ("transaction.version", 0, 2),
        ];
        finalized = vec![
            ("group.version", 1),
            ("kraft.version", 1),
            ("metadata.version", 29),
            ("share.version", 1),
            ("streams.version", 1),
            ("transaction.version", 2),
        ];
        name += &format!("_{}_features", supported.len() + finalized.len());
    }
    let body = ApiVersionsResponse::default()
        .with_api_keys(keys)
        .with_supported_features(
            supported
                .into_iter()
                .map(|(feature, min, max)| {
                    SupportedFeatureKey::default()
                        .with_name(s(feature))
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
        .with_finalized_features_epoch(if features { 1234 } else { -1 })
        .with_finalized_features(
            finalized
                .into_iter()
                .map(|(feature, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(s(feature))
                        .with_max_version_level(level)
                        .with_min_version_level(level)
                })
                .collect(),
        );
    Case::new(name, Rewrite::ApiVersions, version, &body)
}

/// Three partitions of 16 KiB records, and with `moved` a fourth whose leader moved, which
/// names its new leader. Built by hand: kafka-protocol 0.18 stops at v1.
fn share_fetch_case(moved: bool) -> Case {
    use test_frames::{share_fetch, SharePartition};
    let version = highest_offered(Rewrite::ShareFetch);
    let mut partitions: Vec<SharePartition> = (0..3)
        .map(|p| SharePartition {
            partition_index: p,
            records: vec![0u8; 16 * 1024],
            acquired_records: vec![(1000 * i64::from(p), 1000 * i64::from(p) + 99, 1)],
            ..SharePartition::default()
        })
        .collect();
    let mut endpoints = vec![];
    if moved {
        partitions.push(moved_partition(3));
        endpoints.push(broker_2_endpoint());
    }
    let name = format!(
        "share_fetch_v{version}_3x16KiB{}",
        if moved { "_1_moved" } else { "" }
    );
    let frame = share_fetch(&[([7; 16], partitions)], &endpoints);
    let case = Case::of_frame(name, Rewrite::ShareFetch, version, frame);
    if moved {
        case
    } else {
        case.naming_no_node()
    }
}

/// Three partitions acknowledged, and a fourth whose leader moved to broker 2.
fn share_acknowledge_case() -> Case {
    use test_frames::{share_acknowledge, SharePartition};
    let version = highest_offered(Rewrite::ShareAcknowledge);
    let partitions = (0..3)
        .map(|p| SharePartition {
            partition_index: p,
            ..SharePartition::default()
        })
        .chain([moved_partition(3)])
        .collect();
    let frame = share_acknowledge(version, &[([7; 16], partitions)], &[broker_2_endpoint()]);
    Case::of_frame(
        format!("share_acknowledge_v{version}_4_partitions_1_moved"),
        Rewrite::ShareAcknowledge,
        version,
        frame,
    )
}

fn moved_partition(index: i32) -> test_frames::SharePartition {
    test_frames::SharePartition {
        partition_index: index,
        error_code: 6, // NOT_LEADER_OR_FOLLOWER
        current_leader: (2, 0),
        ..test_frames::SharePartition::default()
    }
}

fn broker_2_endpoint() -> test_frames::NodeEndpoint {
    test_frames::NodeEndpoint {
        node_id: 2,
        host: broker_host(2).to_string(),
        port: 9092,
        rack: None,
    }
}

/// One group of 20 members as each KIP-848 describe API answers it: every member subscribed
/// to two topics with three partitions of each assigned.
fn group_description_cases() -> Vec<Case> {
    use kafka_protocol::messages::{
        consumer_group_describe_response as consumer, share_group_describe_response as share,
        ConsumerGroupDescribeResponse, ShareGroupDescribeResponse,
    };
    use test_frames::{StreamsGroup, StreamsMember, Tasks, Topology};
    const TOPICS: [&str; 2] = ["orders", "audit"];
    let partitions = |i: i32| vec![3 * i, 3 * i + 1, 3 * i + 2];
    let host = |i: i32| s(&format!("/10.0.3.{i}"));

    let version = highest_offered(Rewrite::ConsumerGroupDescribe);
    let assigned = |i: i32| {
        consumer::Assignment::default().with_topic_partitions(
            TOPICS
                .iter()
                .map(|t| {
                    consumer::TopicPartitions::default()
                        .with_topic_name(TopicName(s(t)))
                        .with_partitions(partitions(i))
                })
                .collect(),
        )
    };
    let consumers = ConsumerGroupDescribeResponse::default().with_groups(vec![
        consumer::DescribedGroup::default()
            .with_group_id(GroupId(s("orders-app")))
            .with_group_state(s("Stable"))
            .with_assignor_name(s("uniform"))
            .with_members(
                (0..20)
                    .map(|i| {
                        consumer::Member::default()
                            .with_member_id(s(&format!("consumer-{i}-5f0c2a")))
                            .with_client_id(s("orders-app"))
                            .with_client_host(host(i))
                            .with_subscribed_topic_names(
                                TOPICS.iter().map(|t| TopicName(s(t))).collect(),
                            )
                            .with_assignment(assigned(i))
                            .with_target_assignment(assigned(i))
                    })
                    .collect(),
            ),
    ]);
    let mut cases = vec![Case::new(
        format!("consumer_group_describe_v{version}_1_group_20_members"),
        Rewrite::ConsumerGroupDescribe,
        version,
        &consumers,
    )];

    let version = highest_offered(Rewrite::ShareGroupDescribe);
    let shares =
        ShareGroupDescribeResponse::default().with_groups(vec![share::DescribedGroup::default()
            .with_group_id(GroupId(s("jobs-app")))
            .with_group_state(s("Stable"))
            .with_assignor_name(s("simple"))
            .with_members(
                (0..20)
                    .map(|i| {
                        share::Member::default()
                            .with_member_id(s(&format!("share-{i}-5f0c2a")))
                            .with_client_id(s("jobs-app"))
                            .with_client_host(host(i))
                            .with_subscribed_topic_names(
                                TOPICS.iter().map(|t| TopicName(s(t))).collect(),
                            )
                            .with_assignment(
                                share::Assignment::default().with_topic_partitions(
                                    TOPICS
                                        .iter()
                                        .map(|t| {
                                            share::TopicPartitions::default()
                                                .with_topic_name(TopicName(s(t)))
                                                .with_partitions(partitions(i))
                                        })
                                        .collect(),
                                ),
                            )
                    })
                    .collect(),
            )]);
    cases.push(Case::new(
        format!("share_group_describe_v{version}_1_group_20_members"),
        Rewrite::ShareGroupDescribe,
        version,
        &shares,
    ));

    let version = highest_offered(Rewrite::StreamsGroupDescribe);
    let tasks = |i: i32| Tasks {
        active: TOPICS
            .iter()
            .map(|t| (t.to_string(), partitions(i)))
            .collect(),
        ..Tasks::default()
    };
    let streams = StreamsGroup {
        group_id: "clicks-app".into(),
        group_state: "Stable".into(),
        topology: Some(Topology::default()),
        members: (0..20)
            .map(|i| StreamsMember {
                member_id: format!("streams-{i}-5f0c2a"),
                client_id: "clicks-app-StreamThread-1".into(),
                client_host: format!("/10.0.3.{i}"),
                process_id: format!("process-{i}"),
                user_endpoint: Some((format!("clicks-{i}.apps.example"), 7070)),
                assignment: tasks(i),
                target_assignment: tasks(i),
                ..StreamsMember::default()
            })
            .collect(),
        ..StreamsGroup::default()
    };
    cases.push(Case::of_frame(
        format!("streams_group_describe_v{version}_1_group_20_members"),
        Rewrite::StreamsGroupDescribe,
        version,
        test_frames::streams_group_describe(version, 0, &[streams]),
    ));
    cases
}

fn rewrite_cases() -> Vec<Case> {
    let metadata_version = highest_offered(Rewrite::Metadata);
    let cluster_version = highest_offered(Rewrite::DescribeCluster);
    let quorum_version = highest_offered(Rewrite::DescribeQuorum);
    let coordinator_version = highest_offered(Rewrite::FindCoordinator);
    let configs_version = highest_offered(Rewrite::DescribeConfigs);
    let groups_version = highest_offered(Rewrite::DescribeGroups);
    let groups =
        DescribeGroupsResponse::default().with_groups(vec![groups::DescribedGroup::default()
            .with_group_id(GroupId(s("orders-app")))
            .with_group_state(s("Stable"))
            .with_protocol_type(s("consumer"))
            .with_protocol_data(s("range"))
            .with_members(
                (0..20)
                    .map(|i| {
                        groups::DescribedGroupMember::default()
                            .with_member_id(s(&format!("consumer-{i}-5f0c2a")))
                            .with_client_id(s("orders-app"))
                            .with_client_host(s(&format!("/10.0.3.{i}")))
                            .with_member_assignment(Bytes::from(vec![0; 64]))
                    })
                    .collect(),
            )]);

    // One broker's configuration as `kafka-configs --describe --all` asks for it: a few
    // hundred entries, two of which name addresses.
    let broker_configs = DescribeConfigsResponse::default().with_results(vec![
        configs::DescribeConfigsResult::default()
            .with_resource_type(4)
            .with_resource_name(s("1"))
            .with_configs(
                ["advertised.listeners", "listeners"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain((0..300).map(|i| format!("some.setting.{i}")))
                    .map(|name| {
                        configs::DescribeConfigsResourceResult::default()
                            .with_name(s(&name))
                            .with_value(Some(s("PLAINTEXT://kafka-1.kafka.svc.cluster.local:9092")))
                            .with_documentation(Some(s("What this setting does.")))
                    })
                    .collect(),
            ),
    ]);

    let quorum = DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default()
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(5)
                .with_high_watermark(123_456)
                .with_current_voters(
                    (1..=3)
                        .map(|id| ReplicaState::default().with_replica_id(BrokerId(id)))
                        .collect(),
                )
                .with_observers(
                    (4..=6)
                        .map(|id| ReplicaState::default().with_replica_id(BrokerId(id)))
                        .collect(),
                )])])
        .with_nodes(
            (1..=3)
                .map(|id| {
                    Node::default()
                        .with_node_id(BrokerId(id))
                        .with_listeners(vec![Listener::default()
                            .with_name(s("CONTROLLER"))
                            .with_host(s(&format!("controller-{id}.kafka.svc.cluster.local")))
                            .with_port(9093)])
                })
                .collect(),
        );

    vec![
        api_versions_case(false),
        api_versions_case(true),
        // Kept at v12 under its old name, so figures stay comparable with earlier runs.
        Case::new(
            "metadata_v12_100_brokers_1000_partitions".into(),
            Rewrite::Metadata,
            12,
            &metadata(100, 1000),
        ),
        // Issue 13's scale case: 100 brokers, 50,000 partitions (a 2 MB answer).
        Case::new(
            "metadata_v12_100_brokers_50000_partitions".into(),
            Rewrite::Metadata,
            12,
            &metadata(100, 50_000),
        ),
        Case::new(
            format!("metadata_v{metadata_version}_3_brokers_10_partitions"),
            Rewrite::Metadata,
            metadata_version,
            &metadata(3, 10),
        ),
        // v3 is the last version with the single, top-level coordinator.
        Case::new(
            "find_coordinator_v3".into(),
            Rewrite::FindCoordinator,
            3,
            &FindCoordinatorResponse::default()
                .with_node_id(BrokerId(2))
                .with_host(broker_host(2))
                .with_port(9092),
        ),
        Case::new(
            format!("find_coordinator_v{coordinator_version}_1_key"),
            Rewrite::FindCoordinator,
            coordinator_version,
            &FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(s("orders-consumer"))
                .with_node_id(BrokerId(2))
                .with_host(broker_host(2))
                .with_port(9092)]),
        ),
        Case::new(
            format!("describe_cluster_v{cluster_version}_3_brokers"),
            Rewrite::DescribeCluster,
            cluster_version,
            &DescribeClusterResponse::default()
                .with_cluster_id(s("Xq2nLk1bS0uZ9mD4cV7wYg"))
                .with_controller_id(BrokerId(1))
                .with_brokers(
                    (0..3)
                        .map(|id| {
                            DescribeClusterBroker::default()
                                .with_broker_id(BrokerId(id))
                                .with_host(broker_host(id))
                                .with_port(9092)
                                .with_rack(Some(s(&format!("zone-{id}"))))
                        })
                        .collect(),
                ),
        ),
        Case::new(
            format!("describe_quorum_v{quorum_version}_3_controllers"),
            Rewrite::DescribeQuorum,
            quorum_version,
            &quorum,
        ),
        Case::new(
            format!("describe_configs_v{configs_version}_broker_302_entries"),
            Rewrite::DescribeConfigs,
            configs_version,
            &broker_configs,
        ),
        Case::new(
            format!("describe_groups_v{groups_version}_1_group_20_members"),
            Rewrite::DescribeGroups,
            groups_version,
            &groups,
        ),
    ]
    .into_iter()
    .chain(group_description_cases())
    .chain([
        share_fetch_case(false),
        share_fetch_case(true),
        share_acknowledge_case(),
    ])
    .collect()
}

fn rewrites(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite");
    for case in rewrite_cases() {
        let out = case
            .rewrite()
            .unwrap_or_else(|e| panic!("rewrite/{} fails: {e}", case.name));
        assert_eq!(
            out != case.frame,
            case.names_nodes,
            "rewrite/{}: the output should differ from the input exactly when it names a node",
            case.name
        );
        group.throughput(Throughput::Bytes(case.frame.len() as u64));
        group.bench_function(&case.name, |b| b.iter(|| case.rewrite().map(|r| r.len())));
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Pumps

/// Produce v8: the last version before the flexible encodings, answered with header v0.
const PRODUCE_VERSION: i16 = 8;
/// Room in each in-memory pipe: enough that neither end waits on the other's small reads.
const DUPLEX_BYTES: usize = 1 << 20;

/// A Produce request frame of exactly `frame_len` bytes: one partition whose records (opaque
/// to the gateway) fill whatever the headers leave.
fn produce_request(correlation_id: i32, frame_len: usize) -> Bytes {
    let encode = |records: usize| {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(PRODUCE_VERSION)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(s("bench-client")));
        let body = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(s("bench")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_records(Some(Bytes::from(vec![0u8; records])))])]);
        let header_version = ApiKey::Produce.request_header_version(PRODUCE_VERSION);
        frame(&header, header_version, &body, PRODUCE_VERSION)
    };
    let overhead = encode(0).len();
    assert!(
        frame_len >= overhead,
        "a Produce frame needs {overhead} bytes"
    );
    encode(frame_len - overhead)
}

/// The fake broker's answer to every request, correlation id 0: patch bytes 4..8.
fn produce_answer() -> Bytes {
    response_frame(
        ApiKey::Produce,
        PRODUCE_VERSION,
        0,
        &ProduceResponse::default(),
    )
}

/// A broker that answers each Produce request as soon as it has read it, and sends its
/// answers whenever it has no more requests buffered.
async fn fake_broker(end: DuplexStream) -> io::Result<()> {
    let (rd, wr) = tokio::io::split(end);
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut answer = produce_answer().to_vec();
    let mut request = Vec::new();
    loop {
        let size = match rd.read_i32().await {
            Ok(size) => size,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match usize::try_from(size) {
            Ok(size) if size >= 8 => request.resize(size, 0),
            _ => return Err(io::Error::other(format!("request of {size} bytes"))),
        }
        rd.read_exact(&mut request).await?;
        let (api_key, version) = (&request[0..2], &request[2..4]);
        if api_key != (ApiKey::Produce as i16).to_be_bytes()
            || version != PRODUCE_VERSION.to_be_bytes()
        {
            return Err(io::Error::other("fake broker answers Produce v8 only"));
        }
        answer[4..8].copy_from_slice(&request[4..8]);
        wr.write_all(&answer).await?;
        if rd.buffer().is_empty() {
            wr.flush().await?;
        }
    }
}

/// What carries the bytes between client and broker.
#[derive(Debug, Clone, Copy)]
enum Middle {
    /// The gateway's session.
    Session,
    /// `tokio::io::copy_bidirectional`, with the session's buffer size each way.
    Copy,
}

/// The requests a client sends in one go, and room for their answers.
struct Batch {
    requests: Bytes,
    answers: Vec<u8>,
}

impl Batch {
    fn new(count: usize, frame_len: usize) -> Batch {
        let mut requests = BytesMut::with_capacity(count * frame_len);
        for id in 0..count {
            requests.extend_from_slice(&produce_request(id as i32, frame_len));
        }
        Batch {
            requests: requests.freeze(),
            answers: vec![0; count * produce_answer().len()],
        }
    }

    /// Bytes through the middle, both directions.
    fn bytes(&self) -> u64 {
        (self.requests.len() + self.answers.len()) as u64
    }

    /// Whether the answers are the fake broker's, one per request, in order.
    fn answered(&self) -> bool {
        let answer_len = produce_answer().len();
        self.answers
            .chunks(answer_len)
            .enumerate()
            .all(|(id, answer)| {
                answer[..4] == ((answer_len - 4) as i32).to_be_bytes()
                    && answer[4..8] == (id as i32).to_be_bytes()
            })
    }
}

/// The client's end of one session, kept open across iterations.
struct Pump {
    to_gateway: WriteHalf<DuplexStream>,
    from_gateway: ReadHalf<DuplexStream>,
    middle: JoinHandle<Result<(), String>>,
}

impl Pump {
    /// Starts `middle` and a fake broker behind it.
    fn start(rt: &Runtime, middle: Middle, gw: &Arc<Gateway>) -> Pump {
        let (client, mut gateway_client_side) = tokio::io::duplex(DUPLEX_BYTES);
        let (mut gateway_broker_side, broker) = tokio::io::duplex(DUPLEX_BYTES);
        let middle = match middle {
            Middle::Session => {
                let gw = Arc::clone(gw);
                rt.spawn(async move {
                    let session = kafka_edge::proxy::session::relay(
                        gateway_client_side,
                        gateway_broker_side,
                        Route::Broker(1),
                        &gw,
                    );
                    session.await.map_err(|e| e.to_string())
                })
            }
            Middle::Copy => {
                let buffer = gw.config().buffer_bytes;
                rt.spawn(async move {
                    tokio::io::copy_bidirectional_with_sizes(
                        &mut gateway_client_side,
                        &mut gateway_broker_side,
                        buffer,
                        buffer,
                    )
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                })
            }
        };
        rt.spawn(fake_broker(broker));
        let (from_gateway, to_gateway) = tokio::io::split(client);
        Pump {
            to_gateway,
            from_gateway,
            middle,
        }
    }

    /// Sends the whole batch while reading its answers, as a pipelining client does. Writer
    /// and reader are joined on one task: on a current-thread runtime two tasks would take
    /// the very same turns.
    async fn exchange(&mut self, batch: &mut Batch) -> io::Result<()> {
        let (sent, answered) = tokio::join!(
            self.to_gateway.write_all(&batch.requests),
            self.from_gateway.read_exact(&mut batch.answers),
        );
        sent?;
        answered.map(drop)
    }

    /// One exchange before timing: every request answered, in order, within seconds.
    fn check(&mut self, rt: &Runtime, batch: &mut Batch, name: &str) {
        // The timer needs the runtime: the timeout is made inside it.
        let exchange =
            async { tokio::time::timeout(Duration::from_secs(10), self.exchange(batch)).await };
        match rt.block_on(exchange) {
            Ok(Ok(())) if batch.answered() => {}
            Ok(Ok(())) => panic!("{name}: answers out of order or malformed"),
            Ok(Err(e)) if self.middle.is_finished() => {
                let ended = rt.block_on(&mut self.middle);
                panic!("{name}: the middle ended ({ended:?}), so the client saw: {e}")
            }
            Ok(Err(e)) => panic!("{name}: {e}"),
            Err(_) => panic!("{name}: no answers within 10 s"),
        }
    }
}

fn gateway() -> Arc<Gateway> {
    let overrides = config::Overrides {
        bootstrap_servers: vec!["127.0.0.1:9".into()],
        advertised_host: Some("kafka.example.com".into()),
        broker_port_base: Some(19000),
        ..Default::default()
    };
    let config =
        Config::resolve(config::File::default(), overrides).expect("bench config is valid");
    Gateway::new(config, CancellationToken::new()).expect("no TLS to load")
}

fn pumps(c: &mut Criterion) {
    // One thread for everything: client, session and fake broker take turns on the bench
    // thread, so the figures are the CPU cost of moving the bytes, without cross-thread
    // wake-ups or a third thread fighting for this machine's two cores. A session runs both
    // pumps on one task anyway.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let gw = gateway();
    let loads = [
        ("produce_1MiB", 16, 1 << 20),
        ("produce_100B_x1000", 1000, 100),
    ];
    for (name, count, frame_len) in loads {
        for (group_name, middle) in [("pump", Middle::Session), ("pump_baseline", Middle::Copy)] {
            let mut batch = Batch::new(count, frame_len);
            let mut pump = Pump::start(&rt, middle, &gw);
            pump.check(&rt, &mut batch, &format!("{group_name}/{name}"));
            let mut group = c.benchmark_group(group_name);
            // An iteration moves up to 16 MiB: the fewest samples criterion allows keeps a
            // run within its measurement time.
            group.sample_size(10);
            group.throughput(Throughput::Bytes(batch.bytes()));
            group.bench_function(name, |b| {
                b.iter(|| {
                    rt.block_on(pump.exchange(&mut batch))
                        .expect("the pump kept answering after its check")
                })
            });
            group.finish();
        }
    }
}

criterion_group!(hot_path, peek, rewrites, pumps);
criterion_main!(hot_path);

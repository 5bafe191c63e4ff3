//! Property tests: for any valid response of the rewrite set, at any version the gateway
//! offers, the rewritten frame decodes exactly and names no upstream host.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_edge::cluster::route::RouteError;
use kafka_edge::rewrite::describe_groups::THROUGH_GATEWAY;
use kafka_edge::rewrite::wire::put_uvarint;
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use proptest::prelude::*;

/// Frames kafka-protocol cannot encode, shared with the unit tests.
#[path = "../src/rewrite/test_frames.rs"]
mod test_frames;

const GATEWAY: &str = "gw.example.com";
/// Every upstream host ends with this, and the gateway's host does not contain it.
const UPSTREAM_SUFFIX: &str = ".cluster.internal";

struct Book;

impl AddressBook for Book {
    fn learn(&self, node_id: i32, _host: &str, _port: i32) -> Result<Advertised, RouteError> {
        self.planned(node_id)
    }
    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
        Ok(Advertised {
            host: StrBytes::from_static_str(GATEWAY),
            port: 19000 + node_id as u16,
        })
    }
}

#[derive(Debug, Clone)]
struct Node {
    id: i32,
    host: String,
    port: i32,
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(
        (0..5000i32, "[a-z][a-z0-9-]{0,20}", 1..65536i32).prop_map(|(id, name, port)| Node {
            id,
            host: format!("{name}{UPSTREAM_SUFFIX}"),
            port,
        }),
        0..20,
    )
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn frame<T: Encodable>(kind: Rewrite, version: i16, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(99)
        .encode(&mut out, kind.response_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// Rewrites a frame and checks that no upstream host survived.
fn rewritten_frame(kind: Rewrite, version: i16, frame: Bytes) -> Bytes {
    let out = rewrite::response(kind, version, frame, &Book).unwrap();
    assert!(
        !out.windows(UPSTREAM_SUFFIX.len())
            .any(|w| w == UPSTREAM_SUFFIX.as_bytes()),
        "an upstream host survived the rewrite"
    );
    out
}

/// Checks that the walk of a group description ends where its last group does: just before
/// the response's own tagged fields (none: one byte). A walk that lost its place inside a
/// group could still find the right bytes to edit, but not this end.
fn assert_walks_every_group(kind: Rewrite, version: i16, frame: &Bytes) {
    let end = rewrite::extent(kind, version, frame).unwrap();
    assert_eq!(end, Some(frame.len() - 1), "{kind:?} v{version}");
}

/// Rewrites, checks the raw bytes, and decodes the result.
fn rewritten<T: Encodable + Decodable>(kind: Rewrite, version: i16, body: &T) -> T {
    let out = rewritten_frame(kind, version, frame(kind, version, body));
    let mut body = out.slice(4..);
    let header = ResponseHeader::decode(&mut body, kind.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 99);
    let decoded = T::decode(&mut body, version).unwrap();
    assert!(body.is_empty());
    decoded
}

fn assert_gateway(host: &str, id: i32, port: i32) {
    assert_eq!((host, port), (GATEWAY, 19000 + id));
}

/// The versions of an API the gateway offers clients.
fn offered(kind: Rewrite) -> std::ops::RangeInclusive<i16> {
    match rewrite::api_versions::limit(kind.api_key()) {
        rewrite::api_versions::Limit::Range { min, max } => min..=max,
        other => panic!("{kind:?} is in the rewrite set but limited to {other:?}"),
    }
}

/// Feature names: those clients act on, brokers' own, and any other.
fn feature_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("transaction.version".to_owned()),
        Just("group.version".to_owned()),
        Just("share.version".to_owned()),
        Just("streams.version".to_owned()),
        Just("metadata.version".to_owned()),
        Just("kraft.version".to_owned()),
        "[a-z.]{1,24}",
    ]
}

/// The highest level of a feature that clients act on, given the API versions the gateway
/// offers: transaction.version 2 needs Produce v12+, TxnOffsetCommit v5+ and EndTxn v5+;
/// the group, share and streams APIs are offered at their stable versions.
fn feature_cap(name: &str) -> Option<i16> {
    let offered =
        |api: ApiKey, version: i16| rewrite::api_versions::limit(api as i16).allows(version);
    let tv2 = offered(ApiKey::Produce, 12)
        && offered(ApiKey::TxnOffsetCommit, 5)
        && offered(ApiKey::EndTxn, 5);
    match name {
        "transaction.version" => Some(if tv2 { 2 } else { 1 }),
        "group.version" | "streams.version" => Some(1),
        "share.version" => Some(2),
        _ => None,
    }
}

/// A member of a KIP-848 group: id, the host the broker saw it connect from (upstream),
/// subscribed topics, and the partitions of each topic assigned to it.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    host: String,
    topics: Vec<String>,
    partitions: Vec<i32>,
}

/// Groups of members.
fn groups() -> impl Strategy<Value = Vec<Vec<Member>>> {
    let member = (
        "[a-z0-9-]{1,12}",
        "[a-z]{1,8}",
        prop::collection::vec("[a-z]{1,8}", 0..3),
        prop::collection::vec(0..1000i32, 0..6),
    )
        .prop_map(|(id, host, topics, partitions)| Member {
            id,
            host: format!("/{host}{UPSTREAM_SUFFIX}"),
            topics,
            partitions,
        });
    prop::collection::vec(prop::collection::vec(member, 0..6), 0..4)
}

/// Streams groups with members, topologies (null, without subtopologies, or with) and from
/// v1 on topology descriptions, each member with or without its own user endpoint.
fn streams_groups() -> impl Strategy<Value = Vec<test_frames::StreamsGroup>> {
    use test_frames::*;
    let member = (
        "[a-z0-9-]{1,12}",
        "[a-z]{1,8}",
        prop::option::of(("[a-z]{1,8}\\.apps\\.example", any::<u16>())),
        prop::option::of("[a-z]{1,6}"),
        prop::collection::vec(0..100i32, 0..4),
    )
        .prop_map(
            |(id, host, user_endpoint, instance_id, partitions)| StreamsMember {
                member_id: id,
                client_host: format!("/{host}{UPSTREAM_SUFFIX}"),
                user_endpoint,
                instance_id,
                client_tags: vec![("zone".into(), "a".into())],
                task_offsets: partitions.iter().map(|p| ("0".into(), *p, 10)).collect(),
                assignment: Tasks {
                    active: vec![("0".into(), partitions.clone())],
                    ..Tasks::default()
                },
                target_assignment: Tasks {
                    warmup: vec![("1".into(), partitions)],
                    ..Tasks::default()
                },
                ..StreamsMember::default()
            },
        );
    let topology = prop::option::of(prop::option::of(prop::collection::vec("[a-z]{1,8}", 0..3)));
    let description = prop::option::of(prop::collection::vec(
        ("[A-Z-]{1,12}", prop::option::of("[a-z]{1,8}")),
        0..4,
    ));
    let group = (
        prop::collection::vec(member, 0..5),
        topology,
        description,
        prop::option::of("[a-z]{1,8}"),
    )
        .prop_map(
            |(members, topology, description, assignor_name)| StreamsGroup {
                group_id: "app".into(),
                topology: topology.map(|subtopologies| Topology {
                    epoch: 1,
                    subtopologies: subtopologies.map(|topics| {
                        vec![Subtopology {
                            subtopology_id: "0".into(),
                            source_topics: topics.clone(),
                            state_changelog_topics: topics
                                .iter()
                                .map(|t| TopicInfo {
                                    name: format!("{t}-changelog"),
                                    topic_configs: vec![("k".into(), "v".into())],
                                    ..TopicInfo::default()
                                })
                                .collect(),
                            ..Subtopology::default()
                        }]
                    }),
                }),
                members,
                topology_description_status: if description.is_some() { 3 } else { 0 },
                topology_description: description.map(|nodes| {
                    let nodes: Vec<TopologyNode> = nodes
                        .into_iter()
                        .map(|(name, sink_topic)| TopologyNode {
                            name,
                            node_type: 3,
                            sink_topic,
                            successors: vec!["next".into()],
                            ..TopologyNode::default()
                        })
                        .collect();
                    TopologyDescription {
                        global_stores: nodes
                            .first()
                            .map(|n| (n.clone(), n.clone()))
                            .into_iter()
                            .collect(),
                        subtopologies: vec![("0".into(), nodes)],
                    }
                }),
                assignor_name,
                ..StreamsGroup::default()
            },
        );
    prop::collection::vec(group, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn metadata(nodes in nodes(), version in 0..=MetadataResponse::VERSIONS.max) {
        let body = MetadataResponse::default().with_brokers(
            nodes.iter().map(|n| metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)).collect());
        let out = rewritten(Rewrite::Metadata, version, &body);
        prop_assert_eq!(out.brokers.len(), nodes.len());
        out.brokers.iter().for_each(|b| assert_gateway(&b.host, b.node_id.0, b.port));
    }

    #[test]
    fn find_coordinator(nodes in nodes(), version in 0..=FindCoordinatorResponse::VERSIONS.max) {
        let body = if version < 4 {
            let n = nodes.first().cloned().unwrap_or(Node { id: 0, host: format!("x{UPSTREAM_SUFFIX}"), port: 1 });
            FindCoordinatorResponse::default().with_node_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)
        } else {
            FindCoordinatorResponse::default().with_coordinators(nodes.iter().map(|n| find_coordinator_response::Coordinator::default()
                .with_key(s("k")).with_node_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)).collect())
        };
        let out = rewritten(Rewrite::FindCoordinator, version, &body);
        if version < 4 {
            assert_gateway(&out.host, out.node_id.0, out.port);
        }
        out.coordinators.iter().for_each(|c| assert_gateway(&c.host, c.node_id.0, c.port));
    }

    #[test]
    fn describe_cluster(nodes in nodes(), version in 0..=DescribeClusterResponse::VERSIONS.max, controllers: bool) {
        let body = DescribeClusterResponse::default()
            .with_endpoint_type(if controllers && version >= 1 { 2 } else { 1 })
            .with_brokers(nodes.iter().map(|n| describe_cluster_response::DescribeClusterBroker::default()
                .with_broker_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)).collect());
        let out = rewritten(Rewrite::DescribeCluster, version, &body);
        out.brokers.iter().for_each(|b| assert_gateway(&b.host, b.broker_id.0, b.port));
    }

    #[test]
    fn describe_quorum(nodes in nodes()) {
        let body = DescribeQuorumResponse::default().with_nodes(nodes.iter().map(|n| describe_quorum_response::Node::default()
            .with_node_id(BrokerId(n.id))
            .with_listeners(vec![describe_quorum_response::Listener::default()
                .with_name(s("CONTROLLER")).with_host(s(&n.host)).with_port(n.port as u16)])).collect());
        let out = rewritten(Rewrite::DescribeQuorum, 2, &body);
        for node in &out.nodes {
            node.listeners.iter().for_each(|l| assert_gateway(&l.host, node.node_id.0, i32::from(l.port)));
        }
    }

    #[test]
    fn share_fetch_and_acknowledge(nodes in nodes()) {
        let fetch = ShareFetchResponse::default().with_node_endpoints(nodes.iter().map(|n| share_fetch_response::NodeEndpoint::default()
            .with_node_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)).collect());
        rewritten(Rewrite::ShareFetch, 1, &fetch).node_endpoints.iter().for_each(|e| assert_gateway(&e.host, e.node_id.0, e.port));
        let ack = ShareAcknowledgeResponse::default().with_node_endpoints(nodes.iter().map(|n| share_acknowledge_response::NodeEndpoint::default()
            .with_node_id(BrokerId(n.id)).with_host(s(&n.host)).with_port(n.port)).collect());
        rewritten(Rewrite::ShareAcknowledge, 1, &ack).node_endpoints.iter().for_each(|e| assert_gateway(&e.host, e.node_id.0, e.port));
    }

    /// At every version offered, v2 included (which kafka-protocol cannot encode): the
    /// rewritten frame is the broker's with each endpoint replaced.
    #[test]
    fn share_fetch_and_acknowledge_at_every_offered_version(
        nodes in nodes(),
        records in prop::collection::vec(any::<u8>(), 0..64),
        fetch_version in offered(Rewrite::ShareFetch),
        ack_version in offered(Rewrite::ShareAcknowledge),
    ) {
        use test_frames::{share_acknowledge, share_fetch, NodeEndpoint, SharePartition};
        let endpoints = |gateway: bool| nodes.iter().map(|n| NodeEndpoint {
            node_id: n.id,
            host: if gateway { GATEWAY.to_owned() } else { n.host.clone() },
            port: if gateway { 19000 + n.id } else { n.port },
            rack: Some("zone".to_owned()),
        }).collect::<Vec<_>>();
        let topics = vec![([9; 16], nodes.iter().enumerate().map(|(i, n)| SharePartition {
            partition_index: i as i32,
            error_code: 6,
            current_leader: (n.id, 1),
            records: records.clone(),
            acquired_records: vec![(0, 1, 1)],
        }).collect())];
        let out = rewritten_frame(Rewrite::ShareFetch, fetch_version, share_fetch(&topics, &endpoints(false)));
        prop_assert_eq!(out, share_fetch(&topics, &endpoints(true)));
        let out = rewritten_frame(Rewrite::ShareAcknowledge, ack_version, share_acknowledge(ack_version, &topics, &endpoints(false)));
        prop_assert_eq!(out, share_acknowledge(ack_version, &topics, &endpoints(true)));
    }

    /// Any groups of members, whose hosts the broker saw as upstream addresses: every member
    /// host becomes the gateway marker, and everything else decodes as it was.
    #[test]
    fn describe_groups(
        groups in prop::collection::vec(prop::collection::vec(("[a-z0-9-]{1,12}", "[a-z]{1,8}"), 0..6), 0..4),
        version in DescribeGroupsResponse::VERSIONS.min..=DescribeGroupsResponse::VERSIONS.max,
    ) {
        let body = DescribeGroupsResponse::default().with_groups(groups.iter().enumerate().map(|(g, members)| {
            describe_groups_response::DescribedGroup::default().with_group_id(GroupId(s(&format!("g{g}")))).with_members(
                members.iter().map(|(id, host)| describe_groups_response::DescribedGroupMember::default()
                    .with_member_id(s(id)).with_client_host(s(&format!("/{host}{UPSTREAM_SUFFIX}")))).collect())
        }).collect());
        let out = rewritten(Rewrite::DescribeGroups, version, &body);
        prop_assert_eq!(out.groups.len(), groups.len());
        for (got, want) in out.groups.iter().zip(&groups) {
            prop_assert_eq!(got.members.len(), want.len());
            for (m, (id, _)) in got.members.iter().zip(want) {
                prop_assert_eq!(m.member_id.as_str(), id.as_str());
                prop_assert_eq!(m.client_host.as_str(), THROUGH_GATEWAY);
            }
        }
    }

    /// Broker configurations whose values name upstream hosts, among others that do not:
    /// the first are withheld (null, sensitive), the others pass unchanged.
    #[test]
    fn describe_configs(
        nodes in nodes(),
        others in prop::collection::vec(("[a-z]{1,8}\\.[a-z]{1,8}", "[a-z0-9]{0,12}"), 0..8),
        version in DescribeConfigsResponse::VERSIONS.min..=DescribeConfigsResponse::VERSIONS.max,
    ) {
        let listeners = nodes.iter().map(|n| format!("PLAINTEXT://{}:{}", n.host, n.port)).collect::<Vec<_>>().join(",");
        let entry = |name: &str, value: &str| describe_configs_response::DescribeConfigsResourceResult::default()
            .with_name(s(name)).with_value(Some(s(value)))
            .with_synonyms(vec![describe_configs_response::DescribeConfigsSynonym::default().with_name(s(name)).with_value(Some(s(value)))]);
        let mut configs = vec![entry("advertised.listeners", &listeners), entry("listeners", &listeners)];
        configs.extend(others.iter().map(|(name, value)| entry(name, value)));
        let body = DescribeConfigsResponse::default().with_results(vec![describe_configs_response::DescribeConfigsResult::default()
            .with_resource_type(4).with_resource_name(s("1")).with_configs(configs)]);
        let out = rewritten(Rewrite::DescribeConfigs, version, &body);
        let got = &out.results[0].configs;
        for hidden in &got[..2] {
            prop_assert!(hidden.value.is_none() && hidden.is_sensitive && hidden.synonyms[0].value.is_none());
        }
        for (kept, (_, value)) in got[2..].iter().zip(&others) {
            prop_assert_eq!(kept.value.as_deref(), Some(value.as_str()));
        }
    }
    /// ConsumerGroupDescribe: every member host becomes the gateway marker, and everything
    /// else (subscriptions, assignments) decodes as it was.
    #[test]
    fn consumer_group_describe(groups in groups(), version in offered(Rewrite::ConsumerGroupDescribe)) {
        use consumer_group_describe_response as c;
        let assignment = |m: &Member| c::Assignment::default().with_topic_partitions(m.topics.iter().map(|t| c::TopicPartitions::default()
            .with_topic_name(TopicName(s(t))).with_partitions(m.partitions.clone())).collect());
        let body = |host: &dyn Fn(&Member) -> String| ConsumerGroupDescribeResponse::default().with_groups(groups.iter().enumerate().map(|(g, members)| {
            c::DescribedGroup::default().with_group_id(GroupId(s(&format!("g{g}")))).with_members(members.iter().map(|m| c::Member::default()
                .with_member_id(s(&m.id)).with_client_host(s(&host(m)))
                .with_subscribed_topic_names(m.topics.iter().map(|t| TopicName(s(t))).collect())
                .with_assignment(assignment(m)).with_target_assignment(assignment(m))).collect())
        }).collect());
        let upstream = body(&|m| m.host.clone());
        assert_walks_every_group(Rewrite::ConsumerGroupDescribe, version, &frame(Rewrite::ConsumerGroupDescribe, version, &upstream));
        let out = rewritten(Rewrite::ConsumerGroupDescribe, version, &upstream);
        prop_assert_eq!(out, body(&|_| THROUGH_GATEWAY.to_owned()));
    }

    #[test]
    fn share_group_describe(groups in groups(), version in offered(Rewrite::ShareGroupDescribe)) {
        use share_group_describe_response as sh;
        let body = |host: &dyn Fn(&Member) -> String| ShareGroupDescribeResponse::default().with_groups(groups.iter().enumerate().map(|(g, members)| {
            sh::DescribedGroup::default().with_group_id(GroupId(s(&format!("g{g}")))).with_members(members.iter().map(|m| sh::Member::default()
                .with_member_id(s(&m.id)).with_client_host(s(&host(m)))
                .with_subscribed_topic_names(m.topics.iter().map(|t| TopicName(s(t))).collect())
                .with_assignment(sh::Assignment::default().with_topic_partitions(m.topics.iter().map(|t| sh::TopicPartitions::default()
                    .with_topic_name(TopicName(s(t))).with_partitions(m.partitions.clone())).collect()))).collect())
        }).collect());
        let upstream = body(&|m| m.host.clone());
        assert_walks_every_group(Rewrite::ShareGroupDescribe, version, &frame(Rewrite::ShareGroupDescribe, version, &upstream));
        let out = rewritten(Rewrite::ShareGroupDescribe, version, &upstream);
        prop_assert_eq!(out, body(&|_| THROUGH_GATEWAY.to_owned()));
    }

    /// StreamsGroupDescribe, which kafka-protocol cannot decode: the rewritten frame is byte
    /// for byte the broker's with each member host replaced, user endpoints kept.
    #[test]
    fn streams_group_describe(groups in streams_groups(), version in offered(Rewrite::StreamsGroupDescribe)) {
        let frame = test_frames::streams_group_describe(version, 0, &groups);
        assert_walks_every_group(Rewrite::StreamsGroupDescribe, version, &frame);
        let out = rewritten_frame(Rewrite::StreamsGroupDescribe, version, frame);
        let mut want = groups.clone();
        want.iter_mut().flat_map(|g| &mut g.members).for_each(|m| m.client_host = THROUGH_GATEWAY.into());
        prop_assert_eq!(out, test_frames::streams_group_describe(version, 0, &want));
    }
    /// ApiVersions from v3: every feature level a client could act on is capped to what the
    /// gateway's offered API versions support, any other feature passes as it is, and no
    /// range is left with its minimum above its maximum.
    #[test]
    fn api_versions_features(
        features in prop::collection::vec((feature_name(), 0..4i16, 0..40i16), 0..8),
        version in 3..=rewrite::api_versions::api_versions_max(),
    ) {
        use api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
        let body = |features: &[(String, i16, i16)]| ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default().with_api_key(ApiKey::Produce as i16).with_min_version(3).with_max_version(13)])
            .with_supported_features(features.iter().map(|(name, min, max)| SupportedFeatureKey::default()
                .with_name(s(name)).with_min_version(*min).with_max_version(*max)).collect())
            .with_finalized_features_epoch(7)
            .with_finalized_features(features.iter().map(|(name, min, max)| FinalizedFeatureKey::default()
                .with_name(s(name)).with_max_version_level(*max).with_min_version_level(*min)).collect());
        let features: Vec<(String, i16, i16)> = features.into_iter().map(|(name, min, span)| (name, min, min + span)).collect();
        let want: Vec<(String, i16, i16)> = features.iter().map(|(name, min, max)| match feature_cap(name) {
            Some(cap) if *max > cap => (name.clone(), (*min).min(cap), cap),
            _ => (name.clone(), *min, *max),
        }).collect();
        // v5 is laid out as v4, the last version kafka-protocol encodes.
        let layout = version.min(ApiVersionsResponse::VERSIONS.max);
        let out = rewritten_frame(Rewrite::ApiVersions, version, frame(Rewrite::ApiVersions, layout, &body(&features)));
        let mut decoded = out.slice(4..);
        ResponseHeader::decode(&mut decoded, 0).unwrap();
        let got = ApiVersionsResponse::decode(&mut decoded, layout).unwrap();
        prop_assert!(decoded.is_empty());
        let wanted = body(&want);
        prop_assert_eq!(got.supported_features, wanted.supported_features);
        prop_assert_eq!(got.finalized_features, wanted.finalized_features);
    }
}

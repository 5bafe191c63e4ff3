//! Property tests: for any valid response of the rewrite set, at any version the gateway
//! offers, the rewritten frame decodes exactly and names no upstream host.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_edge::cluster::route::RouteError;
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use proptest::prelude::*;

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
        .encode(&mut out, kind.api_key().response_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// Rewrites, checks the raw bytes, and decodes the result.
fn rewritten<T: Encodable + Decodable>(kind: Rewrite, version: i16, body: &T) -> T {
    let out = rewrite::response(kind, version, frame(kind, version, body), &Book).unwrap();
    assert!(
        !out.windows(UPSTREAM_SUFFIX.len())
            .any(|w| w == UPSTREAM_SUFFIX.as_bytes()),
        "an upstream host survived the rewrite"
    );
    let mut body = out.slice(4..);
    let header =
        ResponseHeader::decode(&mut body, kind.api_key().response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 99);
    let decoded = T::decode(&mut body, version).unwrap();
    assert!(body.is_empty());
    decoded
}

fn assert_gateway(host: &str, id: i32, port: i32) {
    assert_eq!((host, port), (GATEWAY, 19000 + id));
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
                prop_assert_eq!(m.client_host.as_str(), rewrite::describe_groups::THROUGH_GATEWAY);
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
}

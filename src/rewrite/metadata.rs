//! Metadata (key 3): the broker list every client bootstraps from.

use std::cell::RefCell;

use bytes::Bytes;

use super::wire::Walk;
use super::{learn_node, AddressBook, Advertised, Failure, Rewrite, RewriteError};
use crate::cluster::route::RouteError;

/// Rewrites the broker list, which comes first. What follows (cluster id, controller id,
/// topics) names no address and is copied as it is.
pub(super) fn rewrite(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    if version >= 3 {
        walk.i32()?; // throttle time
    }
    for _ in 0..walk.array()? {
        let node_id = walk.i32()?;
        learn_node(walk, book, node_id)?;
        if version >= 1 {
            walk.string()?; // rack
        }
        walk.flexible_tags()?;
    }
    Ok(())
}

/// What a Metadata response says about the cluster itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster_id: Option<String>,
    /// `(node id, host, port)` as the cluster advertises them.
    pub brokers: Vec<(i32, String, i32)>,
}

/// Reads the brokers and cluster id of a whole Metadata response frame (v2 and later carry
/// a cluster id), with the same bounds-checked walk the rewrite uses.
pub fn view(frame: &Bytes, version: i16) -> Result<ClusterView, RewriteError> {
    let failed = |reason: String| RewriteError::Decode {
        api: Rewrite::Metadata.api_key(),
        version,
        reason,
    };
    let header_version = Rewrite::Metadata.response_header_version(version);
    let mut walk =
        Walk::new(frame, header_version, header_version >= 1).map_err(|e| failed(e.to_string()))?;
    let seen = Collect::default();
    rewrite(&mut walk, version, &seen).map_err(|e| match e {
        Failure::Wire(e) => failed(e.to_string()),
        Failure::Route(e) => RewriteError::Route(e),
    })?;
    let cluster_id = if version >= 2 {
        walk.string()
            .map_err(|e| failed(e.to_string()))?
            .map(|id| String::from_utf8_lossy(id).into_owned())
    } else {
        None
    };
    Ok(ClusterView {
        cluster_id,
        brokers: seen.0.into_inner(),
    })
}

/// An address book that only writes down what it is told.
#[derive(Default)]
struct Collect(RefCell<Vec<(i32, String, i32)>>);

impl AddressBook for Collect {
    fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError> {
        self.0.borrow_mut().push((node_id, host.to_owned(), port));
        self.planned(node_id)
    }

    fn planned(&self, _node_id: i32) -> Result<Advertised, RouteError> {
        Ok(Advertised {
            host: kafka_protocol::protocol::StrBytes::from_static_str(""),
            port: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::metadata_response::*;
    use kafka_protocol::messages::MetadataResponse;
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::Message;

    fn upstream() -> MetadataResponse {
        MetadataResponse::default()
            .with_throttle_time_ms(7)
            .with_cluster_id(Some(s("cluster-x")))
            .with_controller_id(BrokerId(2))
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(s("10.1.2.3"))
                    .with_port(9092)
                    .with_rack(Some(s("rack-a"))),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(s("kafka-2.kafka.svc.cluster.local"))
                    .with_port(9093),
            ])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(s("orders"))))
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(2))
                    .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                    .with_isr_nodes(vec![BrokerId(2)])])])
    }

    #[test]
    fn every_version_advertises_only_gateway_addresses() {
        for version in MetadataResponse::VERSIONS.min..=MetadataResponse::VERSIONS.max {
            let book = Book::default();
            let original = upstream();
            let out = round_trip(Rewrite::Metadata, version, &original, &book).unwrap();
            let ports: Vec<_> = out.brokers.iter().map(|b| (b.node_id.0, b.port)).collect();
            assert_eq!(ports, vec![(1, 19001), (2, 19002)], "v{version}");
            assert!(out.brokers.iter().all(|b| b.host.as_str() == GATEWAY_HOST));
            // Everything except the addresses survives, as the version can carry it.
            let mut expected = at_version(&original, version);
            for b in &mut expected.brokers {
                b.host = s(GATEWAY_HOST);
                b.port = 19000 + b.node_id.0;
            }
            assert_eq!(out, expected, "v{version}");
            assert_eq!(
                book.learned.borrow().get(&2),
                Some(&("kafka-2.kafka.svc.cluster.local".to_owned(), 9093))
            );
        }
    }

    #[test]
    fn view_reads_brokers_and_cluster_id() {
        for version in [1, 4, 9, 12] {
            let frame = frame(Rewrite::Metadata, version, 1, &upstream());
            let view = super::view(&frame, version).unwrap();
            assert_eq!(
                view.cluster_id.as_deref(),
                (version >= 2).then_some("cluster-x")
            );
            assert_eq!(
                view.brokers,
                vec![
                    (1, "10.1.2.3".to_owned(), 9092),
                    (2, "kafka-2.kafka.svc.cluster.local".to_owned(), 9093)
                ]
            );
        }
    }

    #[test]
    fn only_the_broker_list_is_held_and_the_topics_stream() {
        use super::super::{extent, prefix};
        for version in [1, 9, 12] {
            let whole = frame(Rewrite::Metadata, version, 1, &upstream());
            // Every beginning short of the broker list's end asks for more; past it, the
            // extent is the list's end, whatever follows.
            let mut ends = Vec::new();
            for cut in 8..=whole.len() {
                ends.push(extent(Rewrite::Metadata, version, &whole[..cut]).unwrap());
            }
            let end = ends.last().copied().flatten().unwrap();
            assert!(end < whole.len(), "v{version}: the topics are not held");
            for (cut, found) in (8..=whole.len()).zip(&ends) {
                assert_eq!(*found, (cut >= end).then_some(end), "v{version} at {cut}");
            }
            // The rewritten beginning, then the rest as it came, is the whole rewrite.
            let book = Book::default();
            let head = prefix(Rewrite::Metadata, version, &whole.slice(..end), &book)
                .unwrap()
                .unwrap();
            assert_eq!(head.consumed, end);
            let mut streamed = head.out.to_vec();
            streamed.extend_from_slice(&whole[end..]);
            let at_once =
                super::super::response(Rewrite::Metadata, version, whole.clone(), &Book::default())
                    .unwrap();
            assert_eq!(streamed, at_once.to_vec(), "v{version}");
        }
    }

    #[test]
    fn unmappable_node_fails_the_whole_response() {
        let response = upstream().with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(5000))
            .with_host(s("10.9.9.9"))
            .with_port(9092)]);
        let err = round_trip(Rewrite::Metadata, 12, &response, &Book::default()).unwrap_err();
        assert!(err.to_string().contains("5000"), "{err}");
    }
}

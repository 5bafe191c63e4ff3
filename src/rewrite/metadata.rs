//! Metadata (key 3): the broker list every client bootstraps from.

use super::wire::Walk;
use super::{learn_node, AddressBook, Failure};

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
    fn unmappable_node_fails_the_whole_response() {
        let response = upstream().with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(5000))
            .with_host(s("10.9.9.9"))
            .with_port(9092)]);
        let err = round_trip(Rewrite::Metadata, 12, &response, &Book::default()).unwrap_err();
        assert!(err.to_string().contains("5000"), "{err}");
    }
}

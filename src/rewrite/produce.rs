//! Produce (key 0), v10 and later: KIP-951's leader hints. A partition whose leader moved
//! answers NOT_LEADER_OR_FOLLOWER with the new leader's id (`CurrentLeader`, a tagged field
//! per partition, ids only) and the address of each node so named (`NodeEndpoints`, a tagged
//! field after everything else). The addresses become the gateway's, and a node seen there
//! first is served at once, as from Metadata. Produce answers are small, so one is held whole.

use super::share::node_endpoints;
use super::wire::Walk;
use super::{AddressBook, Failure};

/// The tag of `NodeEndpoints` among a Produce answer's own tagged fields.
const NODE_ENDPOINTS: u32 = 0;

pub(super) fn rewrite(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    for _ in 0..walk.array()? {
        if version >= 13 {
            walk.skip(16)?; // topic id
        } else {
            walk.string()?; // topic name
        }
        for _ in 0..walk.array()? {
            // Index, error code, base offset, log append time, log start offset.
            walk.skip(4 + 2 + 8 + 8 + 8)?;
            for _ in 0..walk.array()? {
                walk.i32()?; // batch index
                walk.string()?; // its error message
                walk.tags()?;
            }
            walk.string()?; // error message
            walk.tags()?; // CurrentLeader: ids only
        }
        walk.tags()?;
    }
    walk.i32()?; // throttle time
    walk.tagged(|walk, tag| {
        if tag != NODE_ENDPOINTS {
            return Ok(false);
        }
        node_endpoints(walk, book)?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::produce_response::*;
    use kafka_protocol::messages::{BrokerId, ProduceResponse, TopicName};
    use kafka_protocol::protocol::Message;

    fn moved(version: i16) -> ProduceResponse {
        let partition = |index: i32, error: i16| {
            PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(error)
                .with_base_offset(41)
                .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index_error_message(Some(s("bad")))])
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(7),
                )
        };
        let mut topic = TopicProduceResponse::default()
            .with_partition_responses(vec![partition(0, 6), partition(1, 0)]);
        if version >= 13 {
            topic = topic.with_topic_id(Default::default());
        } else {
            topic = topic.with_name(TopicName(s("orders")));
        }
        ProduceResponse::default()
            .with_responses(vec![topic])
            .with_throttle_time_ms(3)
            .with_node_endpoints(vec![
                NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(s("kafka-2.kafka-headless.kafka.svc.cluster.local"))
                    .with_port(9092)
                    .with_rack(Some(s("rack-b"))),
                NodeEndpoint::default()
                    .with_node_id(BrokerId(300))
                    .with_host(s("10.0.0.3"))
                    .with_port(9093),
            ])
    }

    #[test]
    fn leader_hints_name_only_the_gateway_at_every_version() {
        for version in 10..=ProduceResponse::VERSIONS.max {
            let book = Book::default();
            let original = moved(version);
            let out = round_trip(Rewrite::Produce, version, &original, &book).unwrap();
            let mut expected = original.clone();
            for node in &mut expected.node_endpoints {
                node.host = s(GATEWAY_HOST);
                node.port = 19000 + node.node_id.0;
            }
            assert_eq!(out, expected, "v{version}");
            assert_eq!(
                book.learned.borrow().get(&2),
                Some(&(
                    "kafka-2.kafka-headless.kafka.svc.cluster.local".to_owned(),
                    9092
                ))
            );
        }
    }

    #[test]
    fn an_answer_without_hints_is_the_same_bytes() {
        for version in 10..=ProduceResponse::VERSIONS.max {
            let plain = moved(version).with_node_endpoints(vec![]);
            let bytes = frame(Rewrite::Produce, version, 5, &plain);
            let out =
                super::super::response(Rewrite::Produce, version, bytes.clone(), &Book::default())
                    .unwrap();
            assert_eq!(out.as_ptr(), bytes.as_ptr(), "v{version}");
        }
    }
}

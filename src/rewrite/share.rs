//! ShareFetch (key 78) and ShareAcknowledge (key 79), KIP-932: both name the new leaders of
//! partitions that moved, in `NodeEndpoints`.
//!
//! Version 2 of both (KIP-1206 acquire modes, KIP-1222 renewed acknowledgements) changes the
//! requests; of the responses, only ShareAcknowledge's gains a field, the acquisition lock
//! timeout after the error message.

use super::wire::Walk;
use super::{learn_node, AddressBook, Failure};

/// ShareFetch v1-2: the node endpoints come last, after every partition's records.
pub(super) fn rewrite_fetch(walk: &mut Walk<'_>, book: &dyn AddressBook) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    walk.i16()?; // error code
    walk.string()?; // error message
    walk.i32()?; // acquisition lock timeout
    for _ in 0..walk.array()? {
        walk.skip(16)?; // topic id
        for _ in 0..walk.array()? {
            walk.i32()?; // partition index
            walk.i16()?; // error code
            walk.string()?; // error message
            walk.i16()?; // acknowledge error code
            walk.string()?; // acknowledge error message
            current_leader(walk)?;
            walk.skip_bytes()?; // records
            for _ in 0..walk.array()? {
                walk.skip(8 + 8 + 2)?; // first offset, last offset, delivery count
                walk.tags()?;
            }
            walk.tags()?;
        }
        walk.tags()?;
    }
    node_endpoints(walk, book)
}

/// ShareAcknowledge v1-2: the node endpoints come after every partition's result.
pub(super) fn rewrite_acknowledge(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    walk.i16()?; // error code
    walk.string()?; // error message
    if version >= 2 {
        walk.i32()?; // acquisition lock timeout
    }
    for _ in 0..walk.array()? {
        walk.skip(16)?; // topic id
        for _ in 0..walk.array()? {
            walk.i32()?; // partition index
            walk.i16()?; // error code
            walk.string()?; // error message
            current_leader(walk)?;
            walk.tags()?;
        }
        walk.tags()?;
    }
    node_endpoints(walk, book)
}

fn current_leader(walk: &mut Walk<'_>) -> Result<(), Failure> {
    walk.skip(4 + 4)?; // leader id, leader epoch
    walk.tags()?;
    Ok(())
}

/// KIP-951 node endpoints: id, host, port, rack. Shared with Produce and Fetch.
pub(super) fn node_endpoints(walk: &mut Walk<'_>, book: &dyn AddressBook) -> Result<(), Failure> {
    for _ in 0..walk.array()? {
        let node_id = walk.i32()?;
        learn_node(walk, book, node_id)?;
        walk.string()?; // rack
        walk.tags()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_frames::{self, NodeEndpoint, SharePartition};
    use super::super::testing::*;
    use super::super::{response, walked_versions, Rewrite};
    use bytes::Bytes;
    use kafka_protocol::messages::{
        share_acknowledge_response as ack, share_fetch_response as fetch, BrokerId,
    };
    use kafka_protocol::protocol::Message;

    #[test]
    fn share_fetch_endpoints_decode_with_kafka_protocol() {
        for version in
            fetch::ShareFetchResponse::VERSIONS.min..=fetch::ShareFetchResponse::VERSIONS.max
        {
            let records = Bytes::from_static(b"opaque record batch bytes");
            let response = fetch::ShareFetchResponse::default()
                .with_responses(vec![fetch::ShareFetchableTopicResponse::default()
                    .with_partitions(vec![fetch::PartitionData::default()
                        .with_partition_index(3)
                        .with_records(Some(records.clone()))])])
                .with_node_endpoints(vec![fetch::NodeEndpoint::default()
                    .with_node_id(BrokerId(6))
                    .with_host(s("10.6.6.6"))
                    .with_port(9092)]);
            let out =
                round_trip(Rewrite::ShareFetch, version, &response, &Book::default()).unwrap();
            let node = &out.node_endpoints[0];
            assert_eq!((node.host.as_str(), node.port), (GATEWAY_HOST, 19006));
            assert_eq!(out.responses[0].partitions[0].records, Some(records));
        }
    }

    #[test]
    fn share_acknowledge_endpoints_decode_with_kafka_protocol() {
        for version in ack::ShareAcknowledgeResponse::VERSIONS.min
            ..=ack::ShareAcknowledgeResponse::VERSIONS.max
        {
            let response = ack::ShareAcknowledgeResponse::default().with_node_endpoints(vec![
                ack::NodeEndpoint::default()
                    .with_node_id(BrokerId(7))
                    .with_host(s("10.7.7.7"))
                    .with_port(9092),
            ]);
            let out = round_trip(
                Rewrite::ShareAcknowledge,
                version,
                &response,
                &Book::default(),
            )
            .unwrap();
            let node = &out.node_endpoints[0];
            assert_eq!((node.host.as_str(), node.port), (GATEWAY_HOST, 19007));
        }
    }

    /// Two topics: partitions with records, and one whose leader moved to node 6.
    fn topics() -> Vec<([u8; 16], Vec<SharePartition>)> {
        let partition = |index: i32| SharePartition {
            partition_index: index,
            current_leader: (1, 3),
            records: b"record batch".to_vec(),
            acquired_records: vec![(100, 109, 1), (110, 110, 2)],
            ..SharePartition::default()
        };
        let moved = SharePartition {
            partition_index: 2,
            error_code: 6, // NOT_LEADER_OR_FOLLOWER
            current_leader: (6, 4),
            ..SharePartition::default()
        };
        vec![
            ([1; 16], vec![partition(0), partition(1), moved]),
            ([2; 16], vec![partition(0)]),
        ]
    }

    fn endpoints(gateway: bool) -> Vec<NodeEndpoint> {
        [
            (6, "kafka-6.kafka.svc.cluster.local", Some("zone-b")),
            (7, "10.7.7.7", None),
        ]
        .into_iter()
        .map(|(node_id, host, rack)| NodeEndpoint {
            node_id,
            host: if gateway { GATEWAY_HOST } else { host }.to_owned(),
            port: if gateway { 19000 + node_id } else { 9092 },
            rack: rack.map(str::to_owned),
        })
        .collect()
    }

    fn claimed(kind: Rewrite) -> std::ops::RangeInclusive<i16> {
        let (min, max) = walked_versions(kind.api_key()).unwrap();
        min..=max
    }

    #[test]
    fn share_fetch_endpoints_at_every_version() {
        assert_eq!(claimed(Rewrite::ShareFetch), 1..=2);
        for version in claimed(Rewrite::ShareFetch) {
            let book = Book::default();
            let upstream = test_frames::share_fetch(&topics(), &endpoints(false));
            let out = response(Rewrite::ShareFetch, version, upstream, &book).unwrap();
            assert_eq!(
                out,
                test_frames::share_fetch(&topics(), &endpoints(true)),
                "v{version}"
            );
            assert_eq!(book.learned.borrow().len(), 2, "v{version}");
        }
    }

    #[test]
    fn share_acknowledge_endpoints_at_every_version() {
        assert_eq!(claimed(Rewrite::ShareAcknowledge), 1..=2);
        for version in claimed(Rewrite::ShareAcknowledge) {
            let book = Book::default();
            let upstream = test_frames::share_acknowledge(version, &topics(), &endpoints(false));
            let out = response(Rewrite::ShareAcknowledge, version, upstream, &book).unwrap();
            let want = test_frames::share_acknowledge(version, &topics(), &endpoints(true));
            assert_eq!(out, want, "v{version}");
            assert_eq!(book.learned.borrow().len(), 2, "v{version}");
        }
    }

    /// The hand-built frames are what kafka-protocol writes, at the version both know.
    #[test]
    fn hand_built_frames_match_kafka_protocol_at_v1() {
        let fetched = fetch::ShareFetchResponse::default()
            .with_acquisition_lock_timeout_ms(30_000)
            .with_responses(
                topics()
                    .into_iter()
                    .map(|(_, partitions)| {
                        fetch::ShareFetchableTopicResponse::default().with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    fetch::PartitionData::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(p.error_code)
                                        .with_current_leader(
                                            fetch::LeaderIdAndEpoch::default()
                                                .with_leader_id(p.current_leader.0)
                                                .with_leader_epoch(p.current_leader.1),
                                        )
                                        .with_records(Some(Bytes::from(p.records)))
                                        .with_acquired_records(
                                            p.acquired_records
                                                .into_iter()
                                                .map(|(first, last, count)| {
                                                    fetch::AcquiredRecords::default()
                                                        .with_first_offset(first)
                                                        .with_last_offset(last)
                                                        .with_delivery_count(count)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
            .with_node_endpoints(
                endpoints(false)
                    .iter()
                    .map(|e| {
                        fetch::NodeEndpoint::default()
                            .with_node_id(BrokerId(e.node_id))
                            .with_host(s(&e.host))
                            .with_port(e.port)
                            .with_rack(e.rack.as_deref().map(s))
                    })
                    .collect(),
            );
        let acknowledged = ack::ShareAcknowledgeResponse::default()
            .with_responses(
                topics()
                    .into_iter()
                    .map(|(_, partitions)| {
                        ack::ShareAcknowledgeTopicResponse::default().with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    ack::PartitionData::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(p.error_code)
                                        .with_current_leader(
                                            ack::LeaderIdAndEpoch::default()
                                                .with_leader_id(p.current_leader.0)
                                                .with_leader_epoch(p.current_leader.1),
                                        )
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
            .with_node_endpoints(
                endpoints(false)
                    .iter()
                    .map(|e| {
                        ack::NodeEndpoint::default()
                            .with_node_id(BrokerId(e.node_id))
                            .with_host(s(&e.host))
                            .with_port(e.port)
                            .with_rack(e.rack.as_deref().map(s))
                    })
                    .collect(),
            );
        // kafka-protocol cannot build a topic id other than nil without the uuid crate.
        let nil_ids: Vec<_> = topics().into_iter().map(|(_, p)| ([0; 16], p)).collect();
        assert_eq!(
            test_frames::share_fetch(&nil_ids, &endpoints(false)),
            frame(Rewrite::ShareFetch, 1, 42, &fetched)
        );
        assert_eq!(
            test_frames::share_acknowledge(1, &nil_ids, &endpoints(false)),
            frame(Rewrite::ShareAcknowledge, 1, 42, &acknowledged)
        );
    }
}

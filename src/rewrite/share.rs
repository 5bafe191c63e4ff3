//! ShareFetch (key 78) and ShareAcknowledge (key 79), KIP-932: both name the new leaders of
//! partitions that moved, in `NodeEndpoints`.

use super::wire::Walk;
use super::{learn_node, AddressBook, Failure};

/// ShareFetch v1: the node endpoints come last, after every partition's records.
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

/// ShareAcknowledge v1: the node endpoints come after every partition's result.
pub(super) fn rewrite_acknowledge(
    walk: &mut Walk<'_>,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    walk.i16()?; // error code
    walk.string()?; // error message
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
    use super::super::testing::*;
    use super::super::Rewrite;
    use bytes::Bytes;
    use kafka_protocol::messages::{
        share_acknowledge_response as ack, share_fetch_response as fetch, BrokerId,
    };
    use kafka_protocol::protocol::Message;

    #[test]
    fn share_fetch_endpoints_at_every_version() {
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
    fn share_acknowledge_endpoints_at_every_version() {
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
}

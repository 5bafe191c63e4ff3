//! ShareFetch (key 78) and ShareAcknowledge (key 79), KIP-932: both name the new leaders of
//! partitions that moved, in `NodeEndpoints`.

use kafka_protocol::messages::{ShareAcknowledgeResponse, ShareFetchResponse};

use super::{learn_all, AddressBook};
use crate::route::RouteError;

pub(super) fn rewrite_fetch(
    response: &mut ShareFetchResponse,
    book: &dyn AddressBook,
    _version: i16,
) -> Result<(), RouteError> {
    learn_all(
        book,
        response
            .node_endpoints
            .iter_mut()
            .map(|n| (n.node_id.0, &mut n.host, &mut n.port)),
    )
}

pub(super) fn rewrite_acknowledge(
    response: &mut ShareAcknowledgeResponse,
    book: &dyn AddressBook,
    _version: i16,
) -> Result<(), RouteError> {
    learn_all(
        book,
        response
            .node_endpoints
            .iter_mut()
            .map(|n| (n.node_id.0, &mut n.host, &mut n.port)),
    )
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

//! DescribeQuorum (key 55): from v2 it lists the KRaft controllers' listeners. Controllers are
//! told their planned gateway address and never routed to (see `AddressBook::planned`).

use kafka_protocol::messages::DescribeQuorumResponse;

use super::AddressBook;
use crate::route::RouteError;

pub(super) fn rewrite(
    response: &mut DescribeQuorumResponse,
    book: &dyn AddressBook,
    _version: i16,
) -> Result<(), RouteError> {
    for node in &mut response.nodes {
        for listener in &mut node.listeners {
            let planned = book.planned(node.node_id.0)?;
            listener.host = planned.host;
            listener.port = planned.port;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::describe_quorum_response::*;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::Message;

    #[test]
    fn controller_listeners_at_every_version() {
        for version in DescribeQuorumResponse::VERSIONS.min..=DescribeQuorumResponse::VERSIONS.max {
            let response = DescribeQuorumResponse::default().with_nodes(if version >= 2 {
                vec![Node::default()
                    .with_node_id(BrokerId(9))
                    .with_listeners(vec![Listener::default()
                        .with_name(s("CONTROLLER"))
                        .with_host(s("10.3.3.9"))
                        .with_port(9093)])]
            } else {
                vec![]
            });
            let book = Book::default();
            let out = round_trip(Rewrite::DescribeQuorum, version, &response, &book).unwrap();
            for listener in out.nodes.iter().flat_map(|n| &n.listeners) {
                assert_eq!(
                    (
                        listener.name.as_str(),
                        listener.host.as_str(),
                        listener.port
                    ),
                    ("CONTROLLER", GATEWAY_HOST, 19009)
                );
            }
            assert_eq!(out.nodes.len(), usize::from(version >= 2));
            assert!(book.learned.borrow().is_empty());
        }
    }
}

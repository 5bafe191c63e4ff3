//! DescribeQuorum (key 55): from v2 it lists the KRaft controllers' listeners. Controllers are
//! told their planned gateway address and never routed to (see `AddressBook::planned`).

use super::wire::Walk;
use super::{plan_node, AddressBook, Failure};

/// The node list, with listener addresses, exists from v2 and comes after every topic.
pub(super) fn rewrite(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    walk.i16()?; // error code
    if version >= 2 {
        walk.string()?; // error message
    }
    for _ in 0..walk.array()? {
        walk.string()?; // topic name
        for _ in 0..walk.array()? {
            walk.i32()?; // partition index
            walk.i16()?; // error code
            if version >= 2 {
                walk.string()?; // error message
            }
            walk.skip(4 + 4 + 8)?; // leader id, leader epoch, high watermark
            for _voters_then_observers in 0..2 {
                for _ in 0..walk.array()? {
                    walk.i32()?; // replica id
                    if version >= 2 {
                        walk.skip(16)?; // replica directory id
                    }
                    walk.skip(8)?; // log end offset
                    if version >= 1 {
                        walk.skip(16)?; // last fetch and last caught-up timestamps
                    }
                    walk.tags()?;
                }
            }
            walk.tags()?;
        }
        walk.tags()?;
    }
    if version >= 2 {
        for _ in 0..walk.array()? {
            let node_id = walk.i32()?;
            for _ in 0..walk.array()? {
                walk.string()?; // listener name
                plan_node(walk, book, node_id, Walk::port_u16)?;
                walk.tags()?;
            }
            walk.tags()?;
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
    use kafka_protocol::messages::DescribeQuorumResponse;
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

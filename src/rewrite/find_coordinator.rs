//! FindCoordinator (key 10): where a group's or transaction's coordinator lives. Up to v3 the
//! answer is one top-level node; from v4 it is a list, one entry per requested key.

use super::wire::Walk;
use super::{learn_node, AddressBook, Failure};

/// The first version that answers with a list of coordinators instead of one node.
const BATCHED: i16 = 4;

/// Kafka's "no coordinator": node id -1, empty host, port -1. Nothing to rewrite.
fn names_a_node(node_id: i32) -> bool {
    node_id >= 0
}

pub(super) fn rewrite(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    if version >= 1 {
        walk.i32()?; // throttle time
    }
    if version < BATCHED {
        walk.i16()?; // error code
        if version >= 1 {
            walk.string()?; // error message
        }
        node(walk, book)?;
    } else {
        for _ in 0..walk.array()? {
            walk.string()?; // key
            node(walk, book)?;
            walk.i16()?; // error code
            walk.string()?; // error message
            walk.flexible_tags()?;
        }
    }
    Ok(())
}

fn node(walk: &mut Walk<'_>, book: &dyn AddressBook) -> Result<(), Failure> {
    let node_id = walk.i32()?;
    if names_a_node(node_id) {
        learn_node(walk, book, node_id)
    } else {
        walk.string()?;
        walk.i32()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::find_coordinator_response::*;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::FindCoordinatorResponse;
    use kafka_protocol::protocol::Message;

    #[test]
    fn single_form_up_to_v3() {
        for version in 0..=3 {
            let response = FindCoordinatorResponse::default()
                .with_node_id(BrokerId(3))
                .with_host(s("10.0.0.3"))
                .with_port(9092);
            let out = round_trip(
                Rewrite::FindCoordinator,
                version,
                &response,
                &Book::default(),
            )
            .unwrap();
            assert_eq!(
                (out.node_id.0, out.host.as_str(), out.port),
                (3, GATEWAY_HOST, 19003),
                "v{version}"
            );
        }
    }

    #[test]
    fn batched_form_from_v4_leaves_missing_coordinators_alone() {
        for version in 4..=FindCoordinatorResponse::VERSIONS.max {
            let response = FindCoordinatorResponse::default().with_coordinators(vec![
                Coordinator::default()
                    .with_key(s("group-a"))
                    .with_node_id(BrokerId(1))
                    .with_host(s("10.0.0.1"))
                    .with_port(9092),
                Coordinator::default()
                    .with_key(s("group-b"))
                    .with_node_id(BrokerId(-1))
                    .with_host(s(""))
                    .with_port(-1)
                    .with_error_code(15),
            ]);
            let book = Book::default();
            let out = round_trip(Rewrite::FindCoordinator, version, &response, &book).unwrap();
            let found = &out.coordinators[0];
            assert_eq!(
                (found.host.as_str(), found.port),
                (GATEWAY_HOST, 19001),
                "v{version}"
            );
            let missing = &out.coordinators[1];
            assert_eq!(
                (
                    missing.node_id.0,
                    missing.host.as_str(),
                    missing.port,
                    missing.error_code
                ),
                (-1, "", -1, 15)
            );
            assert_eq!(book.learned.borrow().len(), 1);
        }
    }
}

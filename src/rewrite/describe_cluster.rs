//! DescribeCluster (key 60): the admin view of the cluster. From v1 a client may ask for
//! controllers instead of brokers (`EndpointType` 2); those are told their planned gateway
//! address but are not routed to, because a controller can share its node id with a broker.

use super::wire::Walk;
use super::{learn_node, plan_node, AddressBook, Failure};

const ENDPOINT_TYPE_CONTROLLER: i8 = 2;

pub(super) fn rewrite(
    walk: &mut Walk<'_>,
    version: i16,
    book: &dyn AddressBook,
) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    walk.i16()?; // error code
    walk.string()?; // error message
    let controllers = version >= 1 && walk.i8()? == ENDPOINT_TYPE_CONTROLLER;
    walk.string()?; // cluster id
    walk.i32()?; // controller id
    for _ in 0..walk.array()? {
        let node_id = walk.i32()?;
        if controllers {
            plan_node(walk, book, node_id, Walk::port_i32)?;
        } else {
            learn_node(walk, book, node_id)?;
        }
        walk.string()?; // rack
        if version >= 2 {
            walk.i8()?; // is fenced
        }
        walk.tags()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::describe_cluster_response::*;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::DescribeClusterResponse;
    use kafka_protocol::protocol::Message;

    fn response(endpoint_type: i8) -> DescribeClusterResponse {
        DescribeClusterResponse::default()
            .with_cluster_id(s("c1"))
            .with_endpoint_type(endpoint_type)
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(4))
                .with_host(s("192.168.7.4"))
                .with_port(9092)
                .with_rack(Some(s("r1")))])
    }

    #[test]
    fn brokers_at_every_version() {
        for version in DescribeClusterResponse::VERSIONS.min..=DescribeClusterResponse::VERSIONS.max
        {
            let book = Book::default();
            let out = round_trip(Rewrite::DescribeCluster, version, &response(1), &book).unwrap();
            let b = &out.brokers[0];
            assert_eq!(
                (b.host.as_str(), b.port, b.rack.as_deref()),
                (GATEWAY_HOST, 19004, Some("r1")),
                "v{version}"
            );
            assert_eq!(out.cluster_id.as_str(), "c1");
            assert_eq!(book.learned.borrow().len(), 1);
        }
    }

    #[test]
    fn controllers_are_renamed_but_not_routed() {
        let book = Book::default();
        let out = round_trip(Rewrite::DescribeCluster, 1, &response(2), &book).unwrap();
        assert_eq!(
            (out.brokers[0].host.as_str(), out.brokers[0].port),
            (GATEWAY_HOST, 19004)
        );
        assert!(book.learned.borrow().is_empty());
    }
}

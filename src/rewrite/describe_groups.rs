//! DescribeGroups (key 15): each member's `client_host` is where the broker saw its
//! connection come from, which through the gateway is the gateway's own address on the
//! cluster's network. It is replaced by [`THROUGH_GATEWAY`], so admin tools show that the
//! member connects through the gateway and never an address inside the cluster.

use super::wire::Walk;
use super::Failure;

/// What clients are told a member connects from.
pub const THROUGH_GATEWAY: &str = "/kafka-edge";

pub(super) fn rewrite(walk: &mut Walk<'_>, version: i16) -> Result<(), Failure> {
    if version >= 1 {
        walk.i32()?; // throttle time
    }
    for _ in 0..walk.array()? {
        walk.i16()?; // error code
        if version >= 6 {
            walk.string()?; // error message
        }
        walk.string()?; // group id
        walk.string()?; // group state
        walk.string()?; // protocol type
        walk.string()?; // protocol data
        for _ in 0..walk.array()? {
            walk.string()?; // member id
            if version >= 4 {
                walk.string()?; // group instance id
            }
            walk.string()?; // client id
            let host = walk.string_field()?;
            walk.set_host(&host, THROUGH_GATEWAY);
            walk.skip_bytes()?; // member metadata
            walk.skip_bytes()?; // member assignment
            walk.flexible_tags()?;
        }
        if version >= 3 {
            walk.i32()?; // authorized operations
        }
        walk.flexible_tags()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use super::THROUGH_GATEWAY;
    use bytes::Bytes;
    use kafka_protocol::messages::describe_groups_response::*;
    use kafka_protocol::messages::{DescribeGroupsResponse, GroupId};
    use kafka_protocol::protocol::Message;

    #[test]
    fn member_hosts_become_the_gateway_at_every_version() {
        let member = |id: &str| {
            DescribedGroupMember::default()
                .with_member_id(s(id))
                .with_client_id(s("app"))
                .with_client_host(s("/10.213.7.1"))
                .with_member_metadata(Bytes::from_static(b"meta"))
                .with_member_assignment(Bytes::from_static(b"assigned"))
        };
        let body = DescribeGroupsResponse::default().with_groups(vec![
            DescribedGroup::default()
                .with_group_id(GroupId(s("g1")))
                .with_group_state(s("Stable"))
                .with_members(vec![member("m1"), member("m2")]),
            DescribedGroup::default()
                .with_group_id(GroupId(s("g2")))
                .with_members(vec![member("m3")]),
        ]);
        for version in DescribeGroupsResponse::VERSIONS.min..=DescribeGroupsResponse::VERSIONS.max {
            let out =
                round_trip(Rewrite::DescribeGroups, version, &body, &Book::default()).unwrap();
            let members: Vec<_> = out.groups.iter().flat_map(|g| &g.members).collect();
            assert_eq!(members.len(), 3, "v{version}");
            for m in members {
                assert_eq!(m.client_host.as_str(), THROUGH_GATEWAY, "v{version}");
                assert_eq!(m.client_id.as_str(), "app");
                assert_eq!(&m.member_assignment[..], b"assigned");
            }
            assert_eq!(out.groups[1].group_id.as_str(), "g2");
        }
    }
}

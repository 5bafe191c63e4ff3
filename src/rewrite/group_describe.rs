//! ConsumerGroupDescribe (key 69, KIP-848) and ShareGroupDescribe (key 77, KIP-932): as in
//! DescribeGroups, each member's `ClientHost` is where the broker saw its connection come
//! from, which through the gateway is the gateway's own address on the cluster's network. It
//! is replaced by [`THROUGH_GATEWAY`]. Each member is walked whole (subscriptions and
//! assignments) to reach the next one; what follows the last group is copied.

use super::describe_groups::THROUGH_GATEWAY;
use super::wire::{Walk, WireError};
use super::Failure;

/// ConsumerGroupDescribe v0-1 (v1 adds each member's type).
pub(super) fn rewrite_consumer(walk: &mut Walk<'_>, version: i16) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    for _ in 0..walk.array()? {
        group_head(walk)?;
        walk.string()?; // assignor name
        for _ in 0..walk.array()? {
            walk.string()?; // member id
            walk.string()?; // instance id
            walk.string()?; // rack id
            walk.i32()?; // member epoch
            walk.string()?; // client id
            client_host(walk)?;
            strings(walk)?; // subscribed topic names
            walk.string()?; // subscribed topic regex
            assignment(walk)?;
            assignment(walk)?; // target assignment
            if version >= 1 {
                walk.i8()?; // member type
            }
            walk.tags()?;
        }
        walk.i32()?; // authorized operations
        walk.tags()?;
    }
    Ok(())
}

/// ShareGroupDescribe v1 (v0, the early access of Kafka 4.0, is gone from 4.1 on).
pub(super) fn rewrite_share(walk: &mut Walk<'_>) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    for _ in 0..walk.array()? {
        group_head(walk)?;
        walk.string()?; // assignor name
        for _ in 0..walk.array()? {
            walk.string()?; // member id
            walk.string()?; // rack id
            walk.i32()?; // member epoch
            walk.string()?; // client id
            client_host(walk)?;
            strings(walk)?; // subscribed topic names
            assignment(walk)?;
            walk.tags()?;
        }
        walk.i32()?; // authorized operations
        walk.tags()?;
    }
    Ok(())
}

/// The fields every group of the KIP-848 describe family begins with.
pub(super) fn group_head(walk: &mut Walk<'_>) -> Result<(), WireError> {
    walk.i16()?; // error code
    walk.string()?; // error message
    walk.string()?; // group id
    walk.string()?; // group state
    walk.i32()?; // group epoch
    walk.i32()?; // assignment epoch
    Ok(())
}

/// A member's `ClientHost`, replaced.
pub(super) fn client_host(walk: &mut Walk<'_>) -> Result<(), WireError> {
    let host = walk.string_field()?;
    walk.set_host(&host, THROUGH_GATEWAY);
    Ok(())
}

/// An array of strings, skipped.
pub(super) fn strings(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.string()?;
    }
    Ok(())
}

/// An array of int32, skipped.
pub(super) fn int32s(walk: &mut Walk<'_>) -> Result<(), WireError> {
    let count = walk.array()?;
    walk.skip(count.saturating_mul(4))
}

/// An `Assignment`: topic partitions, each a topic id, a name and partition numbers.
fn assignment(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.skip(16)?; // topic id
        walk.string()?; // topic name
        int32s(walk)?;
        walk.tags()?;
    }
    walk.tags()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{extent, Rewrite};
    use super::THROUGH_GATEWAY;
    use bytes::Bytes;
    use kafka_protocol::messages::{
        consumer_group_describe_response as consumer, share_group_describe_response as share,
        ConsumerGroupDescribeResponse, GroupId, ShareGroupDescribeResponse, TopicName,
    };
    use kafka_protocol::protocol::Message;
    use std::collections::BTreeMap;

    /// A tagged field the broker might add in a later release: readers skip it.
    fn unknown_tag() -> BTreeMap<i32, Bytes> {
        BTreeMap::from([(7, Bytes::from_static(b"later"))])
    }

    fn topics(names: &[&str]) -> Vec<TopicName> {
        names.iter().map(|n| TopicName(s(n))).collect()
    }

    fn consumer_member(id: &str, host: &str) -> consumer::Member {
        let assigned = |partitions: Vec<i32>| {
            consumer::Assignment::default().with_topic_partitions(vec![
                consumer::TopicPartitions::default()
                    .with_topic_name(TopicName(s("orders")))
                    .with_partitions(partitions),
                consumer::TopicPartitions::default().with_topic_name(TopicName(s("audit"))),
            ])
        };
        consumer::Member::default()
            .with_member_id(s(id))
            .with_instance_id(Some(s("instance-1")))
            .with_rack_id(Some(s("rack-a")))
            .with_member_epoch(12)
            .with_client_id(s("orders-app"))
            .with_client_host(s(host))
            .with_subscribed_topic_names(topics(&["orders", "audit"]))
            .with_subscribed_topic_regex(Some(s("orders-.*")))
            .with_assignment(assigned(vec![0, 1, 2]))
            .with_target_assignment(assigned(vec![3]))
            .with_member_type(1)
            .with_unknown_tagged_fields(unknown_tag())
    }

    fn consumer_body(hosts: &[&[&str]]) -> ConsumerGroupDescribeResponse {
        ConsumerGroupDescribeResponse::default()
            .with_throttle_time_ms(5)
            .with_groups(
                hosts
                    .iter()
                    .enumerate()
                    .map(|(g, hosts)| {
                        consumer::DescribedGroup::default()
                            .with_error_message((g == 1).then(|| s("odd")))
                            .with_group_id(GroupId(s(&format!("group-{g}"))))
                            .with_group_state(s("Stable"))
                            .with_group_epoch(4)
                            .with_assignment_epoch(3)
                            .with_assignor_name(s("uniform"))
                            .with_members(
                                hosts
                                    .iter()
                                    .enumerate()
                                    .map(|(m, host)| consumer_member(&format!("m{g}-{m}"), host))
                                    .collect(),
                            )
                            .with_authorized_operations(0x0fff)
                            .with_unknown_tagged_fields(unknown_tag())
                    })
                    .collect(),
            )
    }

    #[test]
    fn consumer_group_member_hosts_become_the_gateway_at_every_version() {
        let hosts: &[&[&str]] = &[&["/10.1.0.7", "/10.1.0.8"], &[], &["/10.1.0.9"]];
        let gateway: &[&[&str]] = &[&[THROUGH_GATEWAY; 2], &[], &[THROUGH_GATEWAY]];
        let body = consumer_body(hosts);
        for version in ConsumerGroupDescribeResponse::VERSIONS.min
            ..=ConsumerGroupDescribeResponse::VERSIONS.max
        {
            let out = round_trip(
                Rewrite::ConsumerGroupDescribe,
                version,
                &body,
                &Book::default(),
            )
            .unwrap();
            // Every other field, the unknown tagged ones included, is as the broker sent it.
            assert_eq!(
                out,
                at_version(&consumer_body(gateway), version),
                "v{version}"
            );
        }
    }

    fn share_member(id: &str, host: &str) -> share::Member {
        share::Member::default()
            .with_member_id(s(id))
            .with_rack_id(Some(s("rack-b")))
            .with_member_epoch(2)
            .with_client_id(s("share-app"))
            .with_client_host(s(host))
            .with_subscribed_topic_names(topics(&["jobs"]))
            .with_assignment(share::Assignment::default().with_topic_partitions(vec![
                share::TopicPartitions::default()
                    .with_topic_name(TopicName(s("jobs")))
                    .with_partitions(vec![0, 5]),
            ]))
            .with_unknown_tagged_fields(unknown_tag())
    }

    fn share_body(hosts: &[&[&str]]) -> ShareGroupDescribeResponse {
        ShareGroupDescribeResponse::default().with_groups(
            hosts
                .iter()
                .enumerate()
                .map(|(g, hosts)| {
                    share::DescribedGroup::default()
                        .with_group_id(GroupId(s(&format!("share-{g}"))))
                        .with_group_state(s("Stable"))
                        .with_assignor_name(s("simple"))
                        .with_members(
                            hosts
                                .iter()
                                .enumerate()
                                .map(|(m, host)| share_member(&format!("s{g}-{m}"), host))
                                .collect(),
                        )
                        .with_authorized_operations(-2147483648)
                })
                .collect(),
        )
    }

    #[test]
    fn share_group_member_hosts_become_the_gateway_at_every_version() {
        let body = share_body(&[&["/10.2.0.1"], &["/10.2.0.2", "/10.2.0.3"]]);
        let want = share_body(&[&[THROUGH_GATEWAY], &[THROUGH_GATEWAY; 2]]);
        for version in
            ShareGroupDescribeResponse::VERSIONS.min..=ShareGroupDescribeResponse::VERSIONS.max
        {
            let out = round_trip(
                Rewrite::ShareGroupDescribe,
                version,
                &body,
                &Book::default(),
            )
            .unwrap();
            assert_eq!(out, at_version(&want, version), "v{version}");
        }
    }

    /// The walk holds the frame up to the last group's end, and no further: a frame cut short
    /// anywhere before that asks for more bytes rather than failing.
    #[test]
    fn every_prefix_asks_for_more_until_the_last_group() {
        let cases = [
            (
                Rewrite::ConsumerGroupDescribe,
                1,
                frame(
                    Rewrite::ConsumerGroupDescribe,
                    1,
                    42,
                    &consumer_body(&[&["/h1"], &["/h2"]]),
                ),
            ),
            (
                Rewrite::ShareGroupDescribe,
                1,
                frame(
                    Rewrite::ShareGroupDescribe,
                    1,
                    42,
                    &share_body(&[&["/h1", "/h2"]]),
                ),
            ),
        ];
        for (kind, version, whole) in cases {
            // The response's own tagged fields (one byte, none) follow the last group.
            let end = whole.len() - 1;
            for cut in 0..end {
                assert_eq!(
                    extent(kind, version, &whole[..cut]).unwrap(),
                    None,
                    "{kind:?} cut at {cut}"
                );
            }
            assert_eq!(
                extent(kind, version, &whole).unwrap(),
                Some(end),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_count_beyond_the_frame_is_an_error() {
        let body = ConsumerGroupDescribeResponse::default()
            .with_groups(vec![consumer::DescribedGroup::default()]);
        let mut whole = frame(Rewrite::ConsumerGroupDescribe, 0, 42, &body).to_vec();
        // After the member count: authorized operations, the group's tags, the response's.
        let members_at = whole.len() - 1 - 1 - 4 - 1;
        assert_eq!(whole[members_at], 1, "an empty member array");
        whole[members_at] = 0x7f; // 126 members in the 6 bytes left
        let err = super::super::response(
            Rewrite::ConsumerGroupDescribe,
            0,
            Bytes::from(whole),
            &Book::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot decode ConsumerGroupDescribe v0"),
            "{err}"
        );
    }
}

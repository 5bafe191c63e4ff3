//! StreamsGroupDescribe (key 89, KIP-1071): each member's `ClientHost` is replaced by
//! [`THROUGH_GATEWAY`](super::describe_groups::THROUGH_GATEWAY), as in DescribeGroups. A
//! member's `UserEndpoint` is the host and port the application itself serves interactive
//! queries on, not an address the broker saw: it is kept.
//!
//! To reach the next group's members, the walk reads every group whole: the topology before
//! the members, and from v1 on the topology description after them (nested nodes, nullable
//! structures). A nullable structure is preceded by one byte, read as Kafka reads it: negative
//! for null, anything else for present.

use super::group_describe::{client_host, group_head, int32s, strings};
use super::wire::{Walk, WireError};
use super::Failure;

/// StreamsGroupDescribe v0-1 (v1 adds the topology description, its status and the
/// assignor after the members).
pub(super) fn rewrite(walk: &mut Walk<'_>, version: i16) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    for _ in 0..walk.array()? {
        group_head(walk)?;
        if present(walk)? {
            topology(walk)?;
        }
        for _ in 0..walk.array()? {
            member(walk)?;
        }
        walk.i32()?; // authorized operations
        if version >= 1 {
            if present(walk)? {
                topology_description(walk)?;
            }
            walk.i8()?; // topology description status
            walk.string()?; // assignor name
        }
        walk.tags()?;
    }
    Ok(())
}

/// The marker of a nullable structure: whether the structure follows.
fn present(walk: &mut Walk<'_>) -> Result<bool, WireError> {
    Ok(walk.i8()? >= 0)
}

fn topology(walk: &mut Walk<'_>) -> Result<(), WireError> {
    walk.i32()?; // epoch
    for _ in 0..walk.array()? {
        walk.string()?; // subtopology id
        strings(walk)?; // source topics
        strings(walk)?; // repartition sink topics
        topic_infos(walk)?; // state changelog topics
        topic_infos(walk)?; // repartition source topics
        walk.tags()?;
    }
    walk.tags()
}

fn topic_infos(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.string()?; // name
        walk.i32()?; // partitions
        walk.i16()?; // replication factor
        key_values(walk)?; // topic configs
        walk.tags()?;
    }
    Ok(())
}

fn key_values(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.string()?; // key
        walk.string()?; // value
        walk.tags()?;
    }
    Ok(())
}

fn member(walk: &mut Walk<'_>) -> Result<(), WireError> {
    walk.string()?; // member id
    walk.i32()?; // member epoch
    walk.string()?; // instance id
    walk.string()?; // rack id
    walk.string()?; // client id
    client_host(walk)?;
    walk.i32()?; // topology epoch
    walk.string()?; // process id
    if present(walk)? {
        // The user endpoint, kept as the application set it.
        walk.string()?; // host
        walk.u16()?; // port
        walk.tags()?;
    }
    key_values(walk)?; // client tags
    task_offsets(walk)?;
    task_offsets(walk)?; // task end offsets
    tasks(walk)?; // assignment
    tasks(walk)?; // target assignment
    walk.i8()?; // is classic
    walk.tags()
}

fn task_offsets(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.string()?; // subtopology id
        walk.skip(4 + 8)?; // partition, offset
        walk.tags()?;
    }
    Ok(())
}

/// An `Assignment`: active, standby and warm-up tasks.
fn tasks(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _kind in 0..3 {
        for _ in 0..walk.array()? {
            walk.string()?; // subtopology id
            int32s(walk)?; // partitions
            walk.tags()?;
        }
    }
    walk.tags()
}

fn topology_description(walk: &mut Walk<'_>) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        walk.string()?; // subtopology id
        for _ in 0..walk.array()? {
            node(walk)?;
        }
        walk.tags()?;
    }
    for _ in 0..walk.array()? {
        node(walk)?; // the global store's source
        node(walk)?; // its processor
        walk.tags()?;
    }
    walk.tags()
}

fn node(walk: &mut Walk<'_>) -> Result<(), WireError> {
    walk.string()?; // name
    walk.i8()?; // node type
    strings(walk)?; // source topics
    walk.string()?; // sink topic
    strings(walk)?; // stores
    strings(walk)?; // successors
    walk.tags()
}

#[cfg(test)]
mod tests {
    use super::super::describe_groups::THROUGH_GATEWAY;
    use super::super::test_frames::*;
    use super::super::testing::Book;
    use super::super::{extent, response, walked_versions, Rewrite, STREAMS_GROUP_DESCRIBE};

    fn node(name: &str, node_type: i8, sink: Option<&str>) -> TopologyNode {
        TopologyNode {
            name: name.into(),
            node_type,
            source_topics: vec!["clicks".into()],
            sink_topic: sink.map(Into::into),
            stores: vec!["counts-store".into()],
            successors: vec!["KSTREAM-SINK-0000000003".into()],
        }
    }

    fn member(id: &str, host: &str, endpoint: bool) -> StreamsMember {
        let tasks = |p: Vec<i32>| Tasks {
            active: vec![("0".into(), p.clone())],
            standby: vec![("1".into(), p)],
            warmup: vec![],
        };
        StreamsMember {
            member_id: id.into(),
            member_epoch: 9,
            instance_id: endpoint.then(|| "static-1".into()),
            rack_id: Some("rack-c".into()),
            client_id: "clicks-app-StreamThread-1".into(),
            client_host: host.into(),
            topology_epoch: 2,
            process_id: "5b2c7e8e-process".into(),
            // The application's own endpoint, which must come through unchanged.
            user_endpoint: endpoint.then(|| ("clicks-app-0.apps.example".into(), 7070)),
            client_tags: vec![("zone".into(), "eu-1a".into())],
            task_offsets: vec![("0".into(), 1, 1_000)],
            task_end_offsets: vec![("0".into(), 1, 1_200)],
            assignment: tasks(vec![0, 1]),
            target_assignment: tasks(vec![0, 1, 2]),
            is_classic: false,
        }
    }

    /// Three groups: one with everything present, one with every nullable part null (as
    /// a describe error leaves it), and one uninitialized (topology without subtopologies).
    fn groups(hosts: [&str; 3]) -> Vec<StreamsGroup> {
        let info = |name: &str| TopicInfo {
            name: name.into(),
            partitions: 3,
            replication_factor: 2,
            topic_configs: vec![("cleanup.policy".into(), "compact".into())],
        };
        vec![
            StreamsGroup {
                group_id: "clicks-app".into(),
                group_state: "Stable".into(),
                group_epoch: 7,
                assignment_epoch: 7,
                topology: Some(Topology {
                    epoch: 2,
                    subtopologies: Some(vec![Subtopology {
                        subtopology_id: "0".into(),
                        source_topics: vec!["clicks".into()],
                        repartition_sink_topics: vec!["clicks-app-repartition".into()],
                        state_changelog_topics: vec![info("clicks-app-counts-changelog")],
                        repartition_source_topics: vec![info("clicks-app-repartition")],
                    }]),
                }),
                members: vec![member("a", hosts[0], true), member("b", hosts[1], false)],
                authorized_operations: 0x0fff,
                topology_description: Some(TopologyDescription {
                    subtopologies: vec![(
                        "0".into(),
                        vec![
                            node("KSTREAM-SOURCE-0000000000", 1, None),
                            node("KSTREAM-SINK-0000000003", 3, Some("counts")),
                        ],
                    )],
                    global_stores: vec![(
                        node("KSTREAM-SOURCE-0000000004", 1, None),
                        node("KTABLE-SOURCE-0000000005", 2, None),
                    )],
                }),
                topology_description_status: 3,
                assignor_name: Some("sticky".into()),
                ..StreamsGroup::default()
            },
            StreamsGroup {
                error_code: 69, // GROUP_ID_NOT_FOUND
                error_message: Some("no such group".into()),
                group_id: "gone".into(),
                topology_description_status: 1,
                ..StreamsGroup::default()
            },
            StreamsGroup {
                group_id: "new-app".into(),
                group_state: "NotReady".into(),
                topology: Some(Topology {
                    epoch: 0,
                    subtopologies: None,
                }),
                members: vec![member("c", hosts[2], true)],
                assignor_name: Some("sticky".into()),
                ..StreamsGroup::default()
            },
        ]
    }

    fn claimed() -> std::ops::RangeInclusive<i16> {
        let (min, max) = walked_versions(STREAMS_GROUP_DESCRIBE).unwrap();
        min..=max
    }

    #[test]
    fn member_hosts_become_the_gateway_at_every_version() {
        let upstream = groups(["/10.3.0.1", "/10.3.0.2", "/10.3.0.3"]);
        let gateway = groups([THROUGH_GATEWAY; 3]);
        assert_eq!(claimed(), 0..=1);
        for version in claimed() {
            let frame = streams_group_describe(version, 25, &upstream);
            let out = response(
                Rewrite::StreamsGroupDescribe,
                version,
                frame,
                &Book::default(),
            )
            .unwrap();
            // Byte for byte what the broker would have sent with the gateway's marker as each
            // member's host: every other field, user endpoints included, is untouched.
            assert_eq!(
                out,
                streams_group_describe(version, 25, &gateway),
                "v{version}"
            );
        }
    }

    #[test]
    fn every_prefix_asks_for_more_until_the_last_group() {
        for version in claimed() {
            let whole = streams_group_describe(version, 0, &groups(["/h1", "/h2", "/h3"]));
            let end = whole.len() - 1; // the response's own tagged fields follow
            for cut in 0..end {
                let got = extent(Rewrite::StreamsGroupDescribe, version, &whole[..cut]).unwrap();
                assert_eq!(got, None, "v{version} cut at {cut}");
            }
            let got = extent(Rewrite::StreamsGroupDescribe, version, &whole).unwrap();
            assert_eq!(got, Some(end), "v{version}");
        }
    }
}

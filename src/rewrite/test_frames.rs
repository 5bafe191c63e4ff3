//! Response frames that kafka-protocol 0.18 cannot encode, written by hand from Kafka 4.4.0's
//! message specs: StreamsGroupDescribe (KIP-1071, every version), ShareFetch v2 and
//! ShareAcknowledge v2. The unit tests in `src/rewrite` and the property tests in
//! `tests/properties.rs` both use them; the latter includes this file by path, so it names
//! nothing of the crate but `put_uvarint`, which each includer brings into the parent module.
//!
//! All of these are flexible versions: compact strings and arrays (length + 1 as an unsigned
//! varint, 0 for null), a tagged-field count (always 0 here) ending every structure, and a
//! nullable structure preceded by a byte, -1 for null and 1 for present.

use bytes::{BufMut, Bytes, BytesMut};

use super::put_uvarint;

/// A response body in the compact encodings of flexible versions.
#[derive(Default)]
pub struct Writer(BytesMut);

impl Writer {
    pub fn i8(&mut self, value: i8) -> &mut Self {
        self.0.put_i8(value);
        self
    }

    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.0.put_i16(value);
        self
    }

    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.0.put_i32(value);
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.0.put_i64(value);
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.0.put_u16(value);
        self
    }

    pub fn uuid(&mut self, value: [u8; 16]) -> &mut Self {
        self.0.put_slice(&value);
        self
    }

    pub fn string(&mut self, value: &str) -> &mut Self {
        self.nullable_string(Some(value))
    }

    pub fn nullable_string(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => {
                self.length(value.len());
                self.0.put_slice(value.as_bytes());
            }
            None => {
                self.null();
            }
        }
        self
    }

    /// A null compact array or string.
    pub fn null(&mut self) -> &mut Self {
        put_uvarint(&mut self.0, 0);
        self
    }

    /// The length of a compact array (or string) that is not null.
    pub fn length(&mut self, len: usize) -> &mut Self {
        put_uvarint(&mut self.0, len as u32 + 1);
        self
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.length(value.len());
        self.0.put_slice(value);
        self
    }

    pub fn strings(&mut self, values: &[String]) -> &mut Self {
        self.length(values.len());
        for value in values {
            self.string(value);
        }
        self
    }

    /// The marker before a nullable structure.
    pub fn present(&mut self, present: bool) -> &mut Self {
        self.i8(if present { 1 } else { -1 })
    }

    /// No tagged fields.
    pub fn tags(&mut self) -> &mut Self {
        put_uvarint(&mut self.0, 0);
        self
    }

    /// The whole frame: size prefix, response header v1 (correlation id, no tagged fields),
    /// then this body.
    pub fn frame(&self, correlation_id: i32) -> Bytes {
        let mut out = BytesMut::with_capacity(self.0.len() + 9);
        out.put_i32(self.0.len() as i32 + 5);
        out.put_i32(correlation_id);
        put_uvarint(&mut out, 0);
        out.put_slice(&self.0);
        out.freeze()
    }
}

// === StreamsGroupDescribe (key 89) ===

#[derive(Debug, Clone, Default)]
pub struct StreamsGroup {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub group_id: String,
    pub group_state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub topology: Option<Topology>,
    pub members: Vec<StreamsMember>,
    pub authorized_operations: i32,
    /// v1 and later.
    pub topology_description: Option<TopologyDescription>,
    /// v1 and later.
    pub topology_description_status: i8,
    /// v1 and later.
    pub assignor_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub epoch: i32,
    /// Null when the group is not initialized.
    pub subtopologies: Option<Vec<Subtopology>>,
}

#[derive(Debug, Clone, Default)]
pub struct Subtopology {
    pub subtopology_id: String,
    pub source_topics: Vec<String>,
    pub repartition_sink_topics: Vec<String>,
    pub state_changelog_topics: Vec<TopicInfo>,
    pub repartition_source_topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub topic_configs: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct StreamsMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topology_epoch: i32,
    pub process_id: String,
    /// The application's own endpoint for interactive queries (host, port).
    pub user_endpoint: Option<(String, u16)>,
    pub client_tags: Vec<(String, String)>,
    /// (subtopology id, partition, offset).
    pub task_offsets: Vec<(String, i32, i64)>,
    pub task_end_offsets: Vec<(String, i32, i64)>,
    pub assignment: Tasks,
    pub target_assignment: Tasks,
    pub is_classic: bool,
}

/// Tasks as (subtopology id, partitions).
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    pub active: Vec<(String, Vec<i32>)>,
    pub standby: Vec<(String, Vec<i32>)>,
    pub warmup: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, Default)]
pub struct TopologyDescription {
    /// (subtopology id, nodes).
    pub subtopologies: Vec<(String, Vec<TopologyNode>)>,
    /// (source, processor) of each global store.
    pub global_stores: Vec<(TopologyNode, TopologyNode)>,
}

#[derive(Debug, Clone, Default)]
pub struct TopologyNode {
    pub name: String,
    pub node_type: i8,
    pub source_topics: Vec<String>,
    pub sink_topic: Option<String>,
    pub stores: Vec<String>,
    pub successors: Vec<String>,
}

/// A StreamsGroupDescribe response frame at `version`, as a 4.4.0 broker writes it.
pub fn streams_group_describe(
    version: i16,
    throttle_time_ms: i32,
    groups: &[StreamsGroup],
) -> Bytes {
    let mut w = Writer::default();
    w.i32(throttle_time_ms).length(groups.len());
    for group in groups {
        w.i16(group.error_code)
            .nullable_string(group.error_message.as_deref())
            .string(&group.group_id)
            .string(&group.group_state)
            .i32(group.group_epoch)
            .i32(group.assignment_epoch);
        w.present(group.topology.is_some());
        if let Some(topology) = &group.topology {
            w.i32(topology.epoch);
            match &topology.subtopologies {
                None => {
                    w.null();
                }
                Some(subtopologies) => {
                    w.length(subtopologies.len());
                    for sub in subtopologies {
                        w.string(&sub.subtopology_id)
                            .strings(&sub.source_topics)
                            .strings(&sub.repartition_sink_topics);
                        topic_infos(&mut w, &sub.state_changelog_topics);
                        topic_infos(&mut w, &sub.repartition_source_topics);
                        w.tags();
                    }
                }
            }
            w.tags();
        }
        w.length(group.members.len());
        for member in &group.members {
            streams_member(&mut w, member);
        }
        w.i32(group.authorized_operations);
        if version >= 1 {
            w.present(group.topology_description.is_some());
            if let Some(description) = &group.topology_description {
                w.length(description.subtopologies.len());
                for (id, nodes) in &description.subtopologies {
                    w.string(id).length(nodes.len());
                    for node in nodes {
                        topology_node(&mut w, node);
                    }
                    w.tags();
                }
                w.length(description.global_stores.len());
                for (source, processor) in &description.global_stores {
                    topology_node(&mut w, source);
                    topology_node(&mut w, processor);
                    w.tags();
                }
                w.tags();
            }
            w.i8(group.topology_description_status)
                .nullable_string(group.assignor_name.as_deref());
        }
        w.tags();
    }
    w.tags();
    w.frame(42)
}

fn key_values(w: &mut Writer, pairs: &[(String, String)]) {
    w.length(pairs.len());
    for (key, value) in pairs {
        w.string(key).string(value).tags();
    }
}

fn topic_infos(w: &mut Writer, topics: &[TopicInfo]) {
    w.length(topics.len());
    for topic in topics {
        w.string(&topic.name)
            .i32(topic.partitions)
            .i16(topic.replication_factor);
        key_values(w, &topic.topic_configs);
        w.tags();
    }
}

fn streams_member(w: &mut Writer, member: &StreamsMember) {
    w.string(&member.member_id)
        .i32(member.member_epoch)
        .nullable_string(member.instance_id.as_deref())
        .nullable_string(member.rack_id.as_deref())
        .string(&member.client_id)
        .string(&member.client_host)
        .i32(member.topology_epoch)
        .string(&member.process_id);
    w.present(member.user_endpoint.is_some());
    if let Some((host, port)) = &member.user_endpoint {
        w.string(host).u16(*port).tags();
    }
    key_values(w, &member.client_tags);
    for offsets in [&member.task_offsets, &member.task_end_offsets] {
        w.length(offsets.len());
        for (subtopology, partition, offset) in offsets {
            w.string(subtopology).i32(*partition).i64(*offset).tags();
        }
    }
    for tasks in [&member.assignment, &member.target_assignment] {
        for list in [&tasks.active, &tasks.standby, &tasks.warmup] {
            w.length(list.len());
            for (subtopology, partitions) in list {
                w.string(subtopology).length(partitions.len());
                for partition in partitions {
                    w.i32(*partition);
                }
                w.tags();
            }
        }
        w.tags();
    }
    w.i8(i8::from(member.is_classic)).tags();
}

fn topology_node(w: &mut Writer, node: &TopologyNode) {
    w.string(&node.name)
        .i8(node.node_type)
        .strings(&node.source_topics)
        .nullable_string(node.sink_topic.as_deref())
        .strings(&node.stores)
        .strings(&node.successors)
        .tags();
}

// === ShareFetch (key 78) and ShareAcknowledge (key 79) ===

#[derive(Debug, Clone, Default)]
pub struct SharePartition {
    pub partition_index: i32,
    pub error_code: i16,
    /// (leader id, leader epoch).
    pub current_leader: (i32, i32),
    /// ShareFetch only.
    pub records: Vec<u8>,
    /// ShareFetch only: (first offset, last offset, delivery count).
    pub acquired_records: Vec<(i64, i64, i16)>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// A ShareFetch response frame (v1 and v2 lay it out alike).
pub fn share_fetch(
    topics: &[([u8; 16], Vec<SharePartition>)],
    endpoints: &[NodeEndpoint],
) -> Bytes {
    let mut w = Writer::default();
    w.i32(0).i16(0).nullable_string(None).i32(30_000);
    w.length(topics.len());
    for (topic_id, partitions) in topics {
        w.uuid(*topic_id).length(partitions.len());
        for p in partitions {
            w.i32(p.partition_index)
                .i16(p.error_code)
                .nullable_string(None)
                .i16(0)
                .nullable_string(None)
                .i32(p.current_leader.0)
                .i32(p.current_leader.1)
                .tags()
                .bytes(&p.records)
                .length(p.acquired_records.len());
            for (first, last, count) in &p.acquired_records {
                w.i64(*first).i64(*last).i16(*count).tags();
            }
            w.tags();
        }
        w.tags();
    }
    node_endpoints(&mut w, endpoints);
    w.frame(42)
}

/// A ShareAcknowledge response frame at `version` (v2 adds the acquisition lock timeout).
pub fn share_acknowledge(
    version: i16,
    topics: &[([u8; 16], Vec<SharePartition>)],
    endpoints: &[NodeEndpoint],
) -> Bytes {
    let mut w = Writer::default();
    w.i32(0).i16(0).nullable_string(None);
    if version >= 2 {
        w.i32(30_000);
    }
    w.length(topics.len());
    for (topic_id, partitions) in topics {
        w.uuid(*topic_id).length(partitions.len());
        for p in partitions {
            w.i32(p.partition_index)
                .i16(p.error_code)
                .nullable_string(None)
                .i32(p.current_leader.0)
                .i32(p.current_leader.1)
                .tags()
                .tags();
        }
        w.tags();
    }
    node_endpoints(&mut w, endpoints);
    w.frame(42)
}

fn node_endpoints(w: &mut Writer, endpoints: &[NodeEndpoint]) {
    w.length(endpoints.len());
    for e in endpoints {
        w.i32(e.node_id)
            .string(&e.host)
            .i32(e.port)
            .nullable_string(e.rack.as_deref())
            .tags();
    }
    w.tags();
}

//! Topic names by id, as the gateway learns them from the answers it attributes: Metadata
//! and DescribeTopicPartitions, which name each topic with its id. Fetch (v13+), Produce
//! (v13+) and the KIP-848 group APIs name topics by id alone, and a policy is written over
//! names, so the gateway needs this map to decide them; an id it has never seen is refused
//! with UNKNOWN_TOPIC_ID, after which a client refreshes its metadata, through the gateway,
//! which then learns the id.
//!
//! One map serves the whole gateway: ids are facts of the cluster, and every connection's
//! answers teach it. Only answers the exchange attributed by the gateway's own correlation
//! id reach it, so a client cannot teach it a name of its choosing (the same guarantee the
//! broker table rests on). It is capped: when full, it starts over, and clients whose ids it
//! forgot refresh their metadata and teach it again, so a cluster that churns topics cannot
//! grow it without bound.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use crate::edge::auth::fields::{self, FieldError, Value};
use crate::edge::auth::resources::{TopicId, TopicNames, MAX_VALUES};

const METADATA: i16 = 3;
const DESCRIBE_TOPIC_PARTITIONS: i16 = 75;

/// The ids of more topics than this start the map over. Far above the topics of a large
/// cluster; at most about 40 MiB of names (topic names are at most 249 bytes).
pub const MAX_TOPICS: usize = 150_000;

/// Topic names by id, shared by every connection of a gateway.
#[derive(Debug)]
pub struct TopicIds {
    names: RwLock<HashMap<TopicId, Arc<str>>>,
    cap: usize,
}

impl Default for TopicIds {
    fn default() -> TopicIds {
        TopicIds::with_cap(MAX_TOPICS)
    }
}

impl<S: BuildHasher> TopicNames for HashMap<TopicId, Arc<str>, S> {
    fn topic_name(&self, id: &TopicId) -> Option<&str> {
        self.get(id).map(|name| &**name)
    }
}

impl TopicIds {
    pub fn with_cap(cap: usize) -> TopicIds {
        TopicIds {
            names: RwLock::default(),
            cap,
        }
    }

    /// The map as it stands, for one decision. Held only while a request is decided.
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<TopicId, Arc<str>>> {
        self.names.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Learns the topics a Metadata or DescribeTopicPartitions answer (`frame`: size prefix,
    /// header, body, whole, at `version`) names with their ids; says how many were new.
    /// Answers of other APIs teach nothing. A topic without an id (the all-zero id of an
    /// error entry) or without a name is skipped.
    pub fn learn(&self, api_key: i16, version: i16, frame: &[u8]) -> Result<usize, FieldError> {
        if api_key != METADATA && api_key != DESCRIBE_TOPIC_PARTITIONS {
            return Ok(0);
        }
        const PATHS: [&str; 2] = ["Topics[].Name", "Topics[].TopicId"];
        let walked = fields::response(api_key, version, frame, &PATHS, MAX_VALUES)?;
        let mut pairs: Vec<(TopicId, &str)> = Vec::new();
        for found in walked.at(0) {
            let Value::Str(name) = found.value else {
                continue;
            };
            let id = walked
                .at(1)
                .find(|id| id.at == found.at)
                .and_then(|id| match id.value {
                    Value::Uuid(id) if id != [0; 16] => Some(id),
                    _ => None,
                });
            if let Some(id) = id {
                pairs.push((id, name));
            }
        }
        Ok(self.insert(&pairs))
    }

    /// Adds the pairs not already known; says how many were new.
    fn insert(&self, pairs: &[(TopicId, &str)]) -> usize {
        let known = {
            let names = self.read();
            pairs
                .iter()
                .all(|(id, name)| names.get(id).is_some_and(|known| &**known == *name))
        };
        if known {
            return 0;
        }
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        let mut new = 0;
        for (id, name) in pairs {
            if names.get(id).is_some_and(|known| &**known == *name) {
                continue;
            }
            if names.len() >= self.cap {
                names.clear();
            }
            names.insert(*id, Arc::from(*name));
            new += 1;
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn answer(api_key: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        out.extend_from_slice(&[0; 4]);
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut out, api_key.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        let size = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&size.to_be_bytes());
        out.to_vec()
    }

    fn metadata(version: i16, topics: &[(&str, TopicId)]) -> Vec<u8> {
        let body = MetadataResponse::default().with_topics(
            topics
                .iter()
                .map(|(name, id)| {
                    metadata_response::MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
                        .with_topic_id(uuid::Uuid::from_bytes(*id))
                })
                .collect(),
        );
        answer(ApiKey::Metadata, version, &body)
    }

    #[test]
    fn metadata_and_describe_topic_partitions_teach_ids() {
        let ids = TopicIds::default();
        let frame = metadata(12, &[("a", [1; 16]), ("b", [2; 16]), ("gone", [0; 16])]);
        assert_eq!(ids.learn(3, 12, &frame), Ok(2));
        assert_eq!(
            ids.learn(3, 12, &frame),
            Ok(0),
            "nothing new the second time"
        );
        assert_eq!(ids.read().topic_name(&[1; 16]), Some("a"));
        assert_eq!(ids.read().topic_name(&[0; 16]), None);
        // Before v10, Metadata has no ids: nothing to learn, and no error.
        assert_eq!(ids.learn(3, 9, &metadata(9, &[("c", [3; 16])])), Ok(0));
        let body = DescribeTopicPartitionsResponse::default().with_topics(vec![
            describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("d"))))
                .with_topic_id(uuid::Uuid::from_bytes([4; 16])),
        ]);
        let frame = answer(ApiKey::DescribeTopicPartitions, 0, &body);
        assert_eq!(ids.learn(75, 0, &frame), Ok(1));
        assert_eq!(ids.read().topic_name(&[4; 16]), Some("d"));
        // Other answers teach nothing; a broken answer is an error.
        assert_eq!(ids.learn(0, 9, &frame), Ok(0));
        assert!(ids.learn(3, 12, &frame[..frame.len() - 3]).is_err());
    }

    #[test]
    fn a_recreated_topic_is_learned_again_and_a_full_map_starts_over() {
        let ids = TopicIds::with_cap(2);
        assert_eq!(ids.learn(3, 12, &metadata(12, &[("a", [1; 16])])), Ok(1));
        assert_eq!(ids.learn(3, 12, &metadata(12, &[("a", [5; 16])])), Ok(1));
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.learn(3, 12, &metadata(12, &[("b", [2; 16])])), Ok(1));
        assert_eq!(ids.len(), 1, "full: started over");
        assert_eq!(ids.read().topic_name(&[2; 16]), Some("b"));
        assert_eq!(ids.read().topic_name(&[1; 16]), None);
    }
}

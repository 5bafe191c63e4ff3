//! The answers the gateway gives, in a broker's stead, to a request it refuses whole: the
//! response of the request's API and version, with its correlation id, every entry the
//! request named answered with the error (each partition of each topic of a Produce or a
//! Fetch, each group of a DescribeGroups, each resource of a DescribeConfigs), and the
//! request-wide error code set where the API has one. Everything else takes the spec's
//! defaults, as in a broker's error answers (offsets -1, no coordinator, no brokers).
//!
//! One recipe per API says which response fields carry the error and which mirror the
//! request ([`recipe`]); [`answerable`] is the one place that says which requests can be
//! answered this way. Those that cannot (an API with no recipe, a version whose answer has
//! nowhere to put an error, Produce with `acks=0`, which a broker never answers) are
//! refused by closing the connection, as a broker closes it on an `acks=0` Produce it
//! refuses.

use bytes::Bytes;

use crate::edge::auth::fields::{self, FieldError};
use crate::edge::auth::resources::MAX_VALUES;
use crate::edge::auth::schema::{self, Type};
use crate::edge::auth::write::{Fill, Mirrors, Recipe, WriteError, Writer};

use Fill::{Error, Int, Mirror, RequestError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyError {
    #[error("api key {api_key} v{version} has no answer the gateway can give")]
    Unanswerable { api_key: i16, version: i16 },
    #[error(transparent)]
    Request(#[from] FieldError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Whether a request of this API and version can be refused with an answer; if not, the
/// gateway closes the connection instead. Produce with `acks=0` never can, whatever this
/// says: the data path knows `acks` from the request's head.
pub fn answerable(api_key: i16, version: i16) -> bool {
    let (Some(recipe), Some(message)) = (recipe(api_key, version), schema::response(api_key))
    else {
        return false;
    };
    message.versions.contains(version)
        && recipe.iter().any(|(path, fill)| {
            matches!(fill, Error | RequestError) && present(message.fields, path, version)
        })
}

/// Whether every field along `path` is in the message at `version`, outside tagged fields.
fn present(mut fields: &'static [schema::Field], path: &str, version: i16) -> bool {
    for segment in path.split('.') {
        let name = segment.strip_suffix("[]").unwrap_or(segment);
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            return false;
        };
        if !field.present(version) || field.tag.is_some() {
            return false;
        }
        fields = match field.ty {
            Type::Struct(inner) => inner,
            Type::Array(Type::Struct(inner)) => *inner,
            _ => &[],
        };
    }
    true
}

/// The answer refusing the request in `frame` (size prefix, header, body) with `error`.
pub fn answer(frame: &[u8], error: i16) -> Result<Bytes, DenyError> {
    let head = frame
        .get(4..8)
        .ok_or(FieldError::Incomplete { at: frame.len() })?;
    let api_key = i16::from_be_bytes([head[0], head[1]]);
    let version = i16::from_be_bytes([head[2], head[3]]);
    let unanswerable = DenyError::Unanswerable { api_key, version };
    if !answerable(api_key, version) {
        return Err(unanswerable);
    }
    let (Some(recipe), Some(message)) = (recipe(api_key, version), schema::response(api_key))
    else {
        return Err(unanswerable);
    };
    let paths: Vec<&'static str> = recipe
        .iter()
        .filter_map(|(_, fill)| match fill {
            Mirror(path) => Some(*path),
            _ => None,
        })
        .fold(Vec::new(), |mut paths, path| {
            if !paths.contains(&path) {
                paths.push(path);
            }
            paths
        });
    let walked = fields::request(frame, &paths, MAX_VALUES)?;
    let mirrors = Mirrors::new(&paths, &walked.found);
    let writer = Writer::new(message, version, error, &mirrors);
    Ok(writer.response(message, walked.correlation_id, recipe)?)
}

/// Answers whose only error is request-wide.
const TOP: Recipe = &[("ErrorCode", Error)];

/// Which response fields carry the error and which mirror the request, by API and version.
fn recipe(api_key: i16, version: i16) -> Option<Recipe> {
    Some(match api_key {
        0 => &[
            ("Responses", Mirror("TopicData[]")),
            ("Responses[].Name", Mirror("TopicData[].Name")),
            ("Responses[].TopicId", Mirror("TopicData[].TopicId")),
            (
                "Responses[].PartitionResponses",
                Mirror("TopicData[].PartitionData[]"),
            ),
            (
                "Responses[].PartitionResponses[].Index",
                Mirror("TopicData[].PartitionData[].Index"),
            ),
            ("Responses[].PartitionResponses[].ErrorCode", Error),
            ("Responses[].PartitionResponses[].BaseOffset", Int(-1)),
        ],
        1 => &[
            ("ErrorCode", RequestError),
            ("Responses", Mirror("Topics[]")),
            ("Responses[].Topic", Mirror("Topics[].Topic")),
            ("Responses[].TopicId", Mirror("Topics[].TopicId")),
            ("Responses[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Responses[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].Partition"),
            ),
            ("Responses[].Partitions[].ErrorCode", Error),
            ("Responses[].Partitions[].HighWatermark", Int(-1)),
        ],
        2 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        3 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].TopicId", Mirror("Topics[].TopicId")),
            ("Topics[].ErrorCode", Error),
        ],
        8 | 28 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].TopicId", Mirror("Topics[].TopicId")),
            ("Topics[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        9 => &[
            // v1-7: one group.
            ("ErrorCode", RequestError),
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].Partitions", Mirror("Topics[].PartitionIndexes[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].PartitionIndexes[]"),
            ),
            ("Topics[].Partitions[].CommittedOffset", Int(-1)),
            ("Topics[].Partitions[].ErrorCode", Error),
            // v8+: groups.
            ("Groups", Mirror("Groups[]")),
            ("Groups[].GroupId", Mirror("Groups[].GroupId")),
            ("Groups[].ErrorCode", RequestError),
            ("Groups[].Topics", Mirror("Groups[].Topics[]")),
            ("Groups[].Topics[].Name", Mirror("Groups[].Topics[].Name")),
            (
                "Groups[].Topics[].TopicId",
                Mirror("Groups[].Topics[].TopicId"),
            ),
            (
                "Groups[].Topics[].Partitions",
                Mirror("Groups[].Topics[].PartitionIndexes[]"),
            ),
            (
                "Groups[].Topics[].Partitions[].PartitionIndex",
                Mirror("Groups[].Topics[].PartitionIndexes[]"),
            ),
            ("Groups[].Topics[].Partitions[].CommittedOffset", Int(-1)),
            ("Groups[].Topics[].Partitions[].ErrorCode", Error),
        ],
        10 => &[
            // v0-3: one key.
            ("ErrorCode", Error),
            ("NodeId", Int(-1)),
            ("Port", Int(-1)),
            // v4+: a batch of keys.
            ("Coordinators", Mirror("CoordinatorKeys[]")),
            ("Coordinators[].Key", Mirror("CoordinatorKeys[]")),
            ("Coordinators[].NodeId", Int(-1)),
            ("Coordinators[].Port", Int(-1)),
            ("Coordinators[].ErrorCode", Error),
        ],
        // JoinGroup, Heartbeat, LeaveGroup, SyncGroup, AddOffsetsToTxn, EndTxn, and the
        // group heartbeats of KIP-848, KIP-932 and KIP-1071.
        11..=14 | 25 | 26 | 68 | 76 | 88 | 93 => TOP,
        15 => &[
            ("Groups", Mirror("Groups[]")),
            ("Groups[].GroupId", Mirror("Groups[]")),
            ("Groups[].ErrorCode", Error),
        ],
        19 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].ErrorCode", Error),
        ],
        20 if version <= 5 => &[
            ("Responses", Mirror("TopicNames[]")),
            ("Responses[].Name", Mirror("TopicNames[]")),
            ("Responses[].ErrorCode", Error),
        ],
        20 => &[
            ("Responses", Mirror("Topics[]")),
            ("Responses[].Name", Mirror("Topics[].Name")),
            ("Responses[].TopicId", Mirror("Topics[].TopicId")),
            ("Responses[].ErrorCode", Error),
        ],
        21 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Topics[].Partitions[].LowWatermark", Int(-1)),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        22 => &[("ErrorCode", Error), ("ProducerEpoch", Int(-1))],
        23 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Topic", Mirror("Topics[].Topic")),
            ("Topics[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Topics[].Partitions[].Partition",
                Mirror("Topics[].Partitions[].Partition"),
            ),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        24 => &[
            // v0-3, from clients.
            ("ResultsByTopicV3AndBelow", Mirror("V3AndBelowTopics[]")),
            (
                "ResultsByTopicV3AndBelow[].Name",
                Mirror("V3AndBelowTopics[].Name"),
            ),
            (
                "ResultsByTopicV3AndBelow[].ResultsByPartition",
                Mirror("V3AndBelowTopics[].Partitions[]"),
            ),
            (
                "ResultsByTopicV3AndBelow[].ResultsByPartition[].PartitionIndex",
                Mirror("V3AndBelowTopics[].Partitions[]"),
            ),
            (
                "ResultsByTopicV3AndBelow[].ResultsByPartition[].PartitionErrorCode",
                Error,
            ),
            // v4+, from brokers.
            ("ErrorCode", Error),
        ],
        30 => &[
            ("Results", Mirror("Creations[]")),
            ("Results[].ErrorCode", Error),
        ],
        31 => &[
            ("FilterResults", Mirror("Filters[]")),
            ("FilterResults[].ErrorCode", Error),
        ],
        32 => &[
            ("Results", Mirror("Resources[]")),
            ("Results[].ErrorCode", Error),
            ("Results[].ResourceType", Mirror("Resources[].ResourceType")),
            ("Results[].ResourceName", Mirror("Resources[].ResourceName")),
        ],
        33 | 44 => &[
            ("Responses", Mirror("Resources[]")),
            ("Responses[].ErrorCode", Error),
            (
                "Responses[].ResourceType",
                Mirror("Resources[].ResourceType"),
            ),
            (
                "Responses[].ResourceName",
                Mirror("Resources[].ResourceName"),
            ),
        ],
        37 => &[
            ("Results", Mirror("Topics[]")),
            ("Results[].Name", Mirror("Topics[].Name")),
            ("Results[].ErrorCode", Error),
        ],
        42 => &[
            ("Results", Mirror("GroupsNames[]")),
            ("Results[].GroupId", Mirror("GroupsNames[]")),
            ("Results[].ErrorCode", Error),
        ],
        47 => &[
            ("ErrorCode", RequestError),
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        61 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].Partitions", Mirror("Topics[].PartitionIndexes[]")),
            (
                "Topics[].Partitions[].PartitionIndex",
                Mirror("Topics[].PartitionIndexes[]"),
            ),
            ("Topics[].Partitions[].ErrorCode", Error),
        ],
        65 => &[
            ("TransactionStates", Mirror("TransactionalIds[]")),
            (
                "TransactionStates[].TransactionalId",
                Mirror("TransactionalIds[]"),
            ),
            ("TransactionStates[].ErrorCode", Error),
        ],
        69 | 77 | 89 => &[
            ("Groups", Mirror("GroupIds[]")),
            ("Groups[].GroupId", Mirror("GroupIds[]")),
            ("Groups[].ErrorCode", Error),
        ],
        75 => &[
            ("Topics", Mirror("Topics[]")),
            ("Topics[].Name", Mirror("Topics[].Name")),
            ("Topics[].ErrorCode", Error),
        ],
        78 | 79 => &[
            ("ErrorCode", RequestError),
            ("Responses", Mirror("Topics[]")),
            ("Responses[].TopicId", Mirror("Topics[].TopicId")),
            ("Responses[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Responses[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Responses[].Partitions[].ErrorCode", Error),
        ],
        90 => &[
            ("Groups", Mirror("Groups[]")),
            ("Groups[].GroupId", Mirror("Groups[].GroupId")),
            ("Groups[].ErrorCode", RequestError),
            ("Groups[].Topics", Mirror("Groups[].Topics[]")),
            (
                "Groups[].Topics[].TopicName",
                Mirror("Groups[].Topics[].TopicName"),
            ),
            (
                "Groups[].Topics[].Partitions",
                Mirror("Groups[].Topics[].Partitions[]"),
            ),
            (
                "Groups[].Topics[].Partitions[].PartitionIndex",
                Mirror("Groups[].Topics[].Partitions[]"),
            ),
            ("Groups[].Topics[].Partitions[].ErrorCode", Error),
        ],
        91 => &[
            ("ErrorCode", RequestError),
            ("Responses", Mirror("Topics[]")),
            ("Responses[].TopicName", Mirror("Topics[].TopicName")),
            ("Responses[].Partitions", Mirror("Topics[].Partitions[]")),
            (
                "Responses[].Partitions[].PartitionIndex",
                Mirror("Topics[].Partitions[].PartitionIndex"),
            ),
            ("Responses[].Partitions[].ErrorCode", Error),
        ],
        92 => &[
            ("ErrorCode", RequestError),
            ("Responses", Mirror("Topics[]")),
            ("Responses[].TopicName", Mirror("Topics[].TopicName")),
            ("Responses[].ErrorCode", Error),
        ],
        // Cluster administration: DescribeAcls, DescribeLogDirs (v3+), the delegation
        // tokens, ElectLeaders (v1+), reassignments, quotas (describe), SCRAM users
        // (describe), DescribeQuorum, UpdateFeatures, UnregisterBroker,
        // ListConfigResources, Raft voters, UnregisterController.
        29 | 35 | 38..=41 | 43 | 45 | 46 | 48 | 50 | 55 | 57 | 64 | 74 | 80 | 81 | 94 => TOP,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::edge::auth::apis::{self, Access};
    use crate::edge::auth::fields::Value;
    use crate::edge::auth::schema::sample::{self, encoded, Rng};

    const TOPIC: i16 = 29;
    const GROUP: i16 = 30;

    /// A request path's values by entry, and the response's, compared as the recipe says.
    /// Returns how many error codes the answer holds.
    fn check_answer(key: i16, version: i16, request: &[u8], answer: &[u8], error: i16) -> usize {
        let recipe = recipe(key, version).unwrap();
        let message = schema::response(key).unwrap();
        let response_paths: Vec<&'static str> = recipe.iter().map(|(path, _)| *path).collect();
        let request_paths: Vec<&'static str> = recipe
            .iter()
            .filter_map(|(_, fill)| match fill {
                Mirror(from) => Some(*from),
                _ => None,
            })
            .collect();
        let got = fields::response(key, version, answer, &response_paths, usize::MAX)
            .unwrap_or_else(|e| panic!("{} v{version}: {e}", message.name));
        let asked = fields::request(request, &request_paths, usize::MAX).unwrap();
        assert_eq!(got.correlation_id, asked.correlation_id);
        let mut errors = 0;
        for found in &got.found {
            let (path, fill) = recipe[found.path];
            let spec = message.field(path).unwrap();
            match fill {
                Error => {
                    assert_eq!(found.value, Value::Int(i64::from(error)), "{path}");
                    errors += 1;
                }
                RequestError => {
                    let want = if error == TOPIC { 0 } else { error };
                    assert_eq!(found.value, Value::Int(i64::from(want)), "{path}");
                }
                Int(n) => assert_eq!(found.value, Value::Int(n), "{path}"),
                Mirror(from) => {
                    let from_index = request_paths.iter().position(|p| *p == from).unwrap();
                    let mirrored: Vec<Value<'_>> = asked
                        .at(from_index)
                        .filter(|f| {
                            if from.ends_with("[]") && matches!(found.value, Value::Array(_)) {
                                f.at.truncated(f.at.depth() - 1) == found.at
                            } else {
                                f.at == found.at
                            }
                        })
                        .map(|f| f.value)
                        .collect();
                    match found.value {
                        Value::Array(n) => assert_eq!(n, mirrored.len(), "{path}"),
                        value => {
                            let want = match mirrored.first() {
                                Some(Value::Null) if !spec.nullable.contains(version) => {
                                    Value::Str("")
                                }
                                Some(v) => *v,
                                None => panic!("{path}: nothing at {from}"),
                            };
                            assert_eq!(value, want, "{} v{version} {path}", message.name);
                        }
                    }
                }
            }
        }
        errors
    }

    /// Every answerable request of every version, random entries: the answer reads as its
    /// schema says, carries the request's correlation id, the error and the request's
    /// entries where the recipe puts them, and kafka-protocol decodes it, to its last byte,
    /// at every version it knows.
    #[test]
    fn every_answer_reads_back_with_the_error_and_the_entries() {
        let (mut answered, mut decoded) = (0, 0);
        for key in 0..95i16 {
            let message = schema::request(key).unwrap();
            for version in message.versions.lo..=message.versions.hi {
                if !answerable(key, version) {
                    continue;
                }
                let mut errors = 0;
                for seed in 0..12 {
                    let error = if seed % 2 == 0 { TOPIC } else { GROUP };
                    let request = sample::request(message, version, &mut Rng::new(seed), true);
                    let answer = answer(&request.frame, error)
                        .unwrap_or_else(|e| panic!("{} v{version}: {e}", message.name));
                    errors += check_answer(key, version, &request.frame, &answer, error);
                    if let Ok(api) = ApiKey::try_from(key) {
                        let mut body = Bytes::from(answer.to_vec()).split_off(4);
                        let header =
                            ResponseHeader::decode(&mut body, api.response_header_version(version))
                                .unwrap();
                        match ResponseKind::decode(api, &mut body, version) {
                            Ok(_) => {
                                assert!(body.is_empty(), "{api:?} v{version}: bytes left");
                                assert_eq!(
                                    header.correlation_id,
                                    i32::from_be_bytes(request.frame[8..12].try_into().unwrap())
                                );
                                decoded += 1;
                            }
                            Err(e) if format!("{e:#}").contains("version not supported") => {}
                            Err(e) => panic!("{api:?} v{version}: {e:#}"),
                        }
                    }
                }
                assert!(
                    errors > 0,
                    "{} v{version}: no error in 12 answers",
                    message.name
                );
                answered += 1;
            }
        }
        println!("{answered} API versions answered, {decoded} answers decoded by kafka-protocol");
        assert!(answered >= 150 && decoded >= 1500, "{answered} {decoded}");
    }

    /// What cannot be answered: said in one place, and every client API but a few
    /// administrative ones can be.
    #[test]
    fn unanswerable_requests_are_the_inter_broker_ones_and_a_few_admin_ones() {
        let mut unanswerable = Vec::new();
        for key in 0..95i16 {
            let api = apis::api(key).unwrap();
            if !matches!(api.access, Access::Checked(_)) {
                continue;
            }
            let message = schema::request(key).unwrap();
            for version in message.versions.lo..=message.versions.hi {
                if !answerable(key, version) {
                    unanswerable.push(format!("{} v{version}", api.name));
                }
            }
        }
        assert_eq!(
            unanswerable,
            [
                "AlterReplicaLogDirs v1",
                "AlterReplicaLogDirs v2",
                "DescribeLogDirs v1",
                "DescribeLogDirs v2",
                "ElectLeaders v0",
                "AlterClientQuotas v0",
                "AlterClientQuotas v1",
                "AlterUserScramCredentials v0",
            ]
        );
        assert!(!answerable(4, 0) && !answerable(0, 2) && !answerable(0, 14) && !answerable(95, 0));
        let frame = encoded(
            ApiKey::AlterClientQuotas,
            1,
            1,
            &AlterClientQuotasRequest::default(),
        );
        assert_eq!(
            answer(&frame, 31),
            Err(DenyError::Unanswerable {
                api_key: 49,
                version: 1
            })
        );
    }

    fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }

    fn decode<T: Decodable>(answer: &[u8], api: ApiKey, version: i16) -> (i32, T) {
        let mut body = Bytes::from(answer.to_vec()).split_off(4);
        let header =
            ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
        let decoded = T::decode(&mut body, version).unwrap();
        assert!(body.is_empty());
        (header.correlation_id, decoded)
    }

    #[test]
    fn produce_answers_every_partition_of_every_topic() {
        for version in 3..=13 {
            let partitions = |n: i32| {
                (0..n)
                    .map(|i| produce_request::PartitionProduceData::default().with_index(i * 10))
                    .collect()
            };
            let topic = |name: &str, id: u8, n| {
                let t =
                    produce_request::TopicProduceData::default().with_partition_data(partitions(n));
                if version >= 13 {
                    t.with_topic_id(uuid::Uuid::from_bytes([id; 16]))
                } else {
                    t.with_name(TopicName(s(name)))
                }
            };
            let body = ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(vec![topic("a", 1, 3), topic("b", 2, 1)]);
            let frame = encoded(ApiKey::Produce, version, 77, &body);
            let (id, response): (i32, ProduceResponse) =
                decode(&answer(&frame, 53).unwrap(), ApiKey::Produce, version);
            assert_eq!(id, 77);
            type Partitions = Vec<(i32, i16, i64)>;
            let got: Vec<(String, [u8; 16], Partitions)> = response
                .responses
                .iter()
                .map(|t| {
                    (
                        t.name.to_string(),
                        *t.topic_id.as_bytes(),
                        t.partition_responses
                            .iter()
                            .map(|p| (p.index, p.error_code, p.base_offset))
                            .collect(),
                    )
                })
                .collect();
            let (a, b) = if version >= 13 { ("", "") } else { ("a", "b") };
            let (ida, idb) = if version >= 13 {
                ([1; 16], [2; 16])
            } else {
                ([0; 16], [0; 16])
            };
            assert_eq!(
                got,
                vec![
                    (
                        a.to_owned(),
                        ida,
                        vec![(0, 53, -1), (10, 53, -1), (20, 53, -1)]
                    ),
                    (b.to_owned(), idb, vec![(0, 53, -1)]),
                ],
                "v{version}"
            );
        }
    }

    #[test]
    fn find_coordinator_answers_one_key_or_each_key() {
        for version in 0..=6 {
            let body = if version <= 3 {
                FindCoordinatorRequest::default().with_key(s("g"))
            } else {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")])
            };
            let frame = encoded(ApiKey::FindCoordinator, version, 5, &body);
            let (_, r): (i32, FindCoordinatorResponse) = decode(
                &answer(&frame, GROUP).unwrap(),
                ApiKey::FindCoordinator,
                version,
            );
            if version <= 3 {
                assert_eq!((r.error_code, r.node_id.0, r.port), (GROUP, -1, -1));
            } else {
                let keys: Vec<_> = r
                    .coordinators
                    .iter()
                    .map(|c| (c.key.to_string(), c.error_code, c.node_id.0))
                    .collect();
                assert_eq!(
                    keys,
                    [("g1".to_owned(), GROUP, -1), ("g2".to_owned(), GROUP, -1)]
                );
            }
        }
    }

    #[test]
    fn group_and_offset_answers() {
        for version in 0..=9 {
            let frame = encoded(
                ApiKey::JoinGroup,
                version,
                1,
                &JoinGroupRequest::default().with_group_id(GroupId(s("g"))),
            );
            let (_, r): (i32, JoinGroupResponse) =
                decode(&answer(&frame, GROUP).unwrap(), ApiKey::JoinGroup, version);
            assert_eq!((r.error_code, r.generation_id), (GROUP, -1));
        }
        for version in 1..=9 {
            let body = if version <= 7 {
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partition_indexes(vec![4, 5]),
                    ]))
            } else {
                OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("g")))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(TopicName(s("t")))
                                .with_partition_indexes(vec![4, 5]),
                        ])),
                ])
            };
            let frame = encoded(ApiKey::OffsetFetch, version, 1, &body);
            let (_, r): (i32, OffsetFetchResponse) = decode(
                &answer(&frame, GROUP).unwrap(),
                ApiKey::OffsetFetch,
                version,
            );
            let partitions: Vec<(i32, i16, i64)> = if version <= 7 {
                assert_eq!(r.error_code, if version >= 2 { GROUP } else { 0 });
                r.topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code, p.committed_offset))
                    .collect()
            } else {
                assert_eq!(
                    (r.groups[0].group_id.to_string(), r.groups[0].error_code),
                    ("g".to_owned(), GROUP)
                );
                r.groups[0].topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code, p.committed_offset))
                    .collect()
            };
            assert_eq!(partitions, [(4, GROUP, -1), (5, GROUP, -1)], "v{version}");
        }
    }

    #[test]
    fn topic_errors_leave_request_wide_codes_at_zero() {
        for version in 4..=18 {
            let topic = fetch_request::FetchTopic::default()
                .with_topic(if version <= 12 {
                    TopicName(s("t"))
                } else {
                    TopicName::default()
                })
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition(3)
                ]);
            let frame = encoded(
                ApiKey::Fetch,
                version,
                1,
                &FetchRequest::default().with_topics(vec![topic]),
            );
            let (_, r): (i32, FetchResponse) =
                decode(&answer(&frame, TOPIC).unwrap(), ApiKey::Fetch, version);
            assert_eq!(r.error_code, 0);
            let p = &r.responses[0].partitions[0];
            assert_eq!(
                (p.partition_index, p.error_code, p.high_watermark),
                (3, TOPIC, -1)
            );
            let (_, r): (i32, FetchResponse) =
                decode(&answer(&frame, 31).unwrap(), ApiKey::Fetch, version);
            assert_eq!(r.error_code, if version >= 7 { 31 } else { 0 });
        }
    }

    #[test]
    fn configs_answer_each_resource_with_its_type_and_name() {
        for version in 1..=4 {
            let body = DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
            ]);
            let frame = encoded(ApiKey::DescribeConfigs, version, 1, &body);
            let (_, r): (i32, DescribeConfigsResponse) = decode(
                &answer(&frame, 31).unwrap(),
                ApiKey::DescribeConfigs,
                version,
            );
            let got: Vec<_> = r
                .results
                .iter()
                .map(|x| (x.resource_type, x.resource_name.to_string(), x.error_code))
                .collect();
            assert_eq!(got, [(2, "t".to_owned(), 31), (4, "1".to_owned(), 31)]);
        }
    }

    #[test]
    fn malformed_requests_get_no_answer() {
        let frame = encoded(ApiKey::Heartbeat, 4, 1, &HeartbeatRequest::default());
        let mut short = frame.clone();
        short.truncate(frame.len() - 1);
        assert!(matches!(
            answer(&short, GROUP),
            Err(DenyError::Request(FieldError::Incomplete { .. }))
        ));
        assert!(matches!(
            answer(&frame[..3], GROUP),
            Err(DenyError::Request(FieldError::Incomplete { .. }))
        ));
        // A Produce naming a billion topics in a few bytes is an error, not an allocation.
        let mut huge = encoded(
            ApiKey::Produce,
            8,
            1,
            &ProduceRequest::default().with_acks(1),
        );
        let len = huge.len();
        huge[len - 4..].copy_from_slice(&0x3fff_ffffi32.to_be_bytes());
        assert!(matches!(
            answer(&huge, TOPIC),
            Err(DenyError::Request(FieldError::TooLong { .. }))
        ));
    }
}

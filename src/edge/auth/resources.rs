//! What a request needs from the policy, read from its bytes: [`crate::edge::auth::apis`]
//! says which fields name what, [`crate::edge::auth::fields`] finds them in the frame, and
//! this module turns each value into an operation on a resource, with the error a broker
//! would answer. Topic ids become names through a map the caller keeps (the gateway learns
//! it from Metadata answers); an id it cannot map is denied.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::edge::auth::apis::{self, Access, Check, Named, Scope, When};
use crate::edge::auth::fields::{self, FieldError, Found, Indices, Value, Walked};
use crate::edge::auth::policy::{Operation, Resource};

/// The most values one request may name: a request naming more is refused. Far above what a
/// client sends (a producer names the topics of one batch), far below what would make the
/// list of values a memory burden (about 64 bytes each).
pub const MAX_VALUES: usize = 100_000;

/// A topic id, as its 16 bytes.
pub type TopicId = [u8; 16];

/// Topic names by id, as the gateway learned them.
pub trait TopicNames {
    fn topic_name(&self, id: &TopicId) -> Option<&str>;
}

impl<S: BuildHasher> TopicNames for HashMap<TopicId, String, S> {
    fn topic_name(&self, id: &TopicId) -> Option<&str> {
        self.get(id).map(String::as_str)
    }
}

/// What one need is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Resource(Resource<'a>),
    /// A topic id the gateway has no name for.
    UnknownTopicId(TopicId),
    /// A `ConfigResource` of a type [`apis::config_resource`] does not know.
    UnknownResourceType(i8),
    /// A null where a name belongs.
    Null,
}

/// One operation on one resource that a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need<'a> {
    pub operation: Operation,
    pub target: Target<'a>,
    /// The error code a broker answers with when it is refused.
    pub error: i16,
    pub scope: Scope,
    /// A boolean request field to clear instead of refusing ([`Check::fallback`]).
    pub fallback: Option<&'static str>,
}

/// How a request is authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs<'a> {
    /// It names nothing to check.
    Open,
    /// Only brokers and controllers send it.
    InterBroker,
    /// An API key the table does not know (a vendor's, or one after Kafka 4.4's).
    Unknown,
    /// Each of these, in the order the request names them.
    Checked(Vec<Need<'a>>),
}

/// What the request in `frame` (size prefix, header, body) needs, by the API key and version
/// of its header. A frame that does not read as its schema says is an error.
pub fn resources<'a, N: TopicNames + ?Sized>(
    frame: &'a [u8],
    topics: &'a N,
) -> Result<Needs<'a>, FieldError> {
    let head = frame
        .get(4..8)
        .ok_or(FieldError::Incomplete { at: frame.len() })?;
    let api_key = i16::from_be_bytes([head[0], head[1]]);
    let version = i16::from_be_bytes([head[2], head[3]]);
    let Some(api) = apis::api(api_key) else {
        return Ok(Needs::Unknown);
    };
    match api.access {
        Access::Open => Ok(Needs::Open),
        Access::InterBroker => Ok(Needs::InterBroker),
        Access::Checked(_) => {
            let checks: Vec<&Check> = api.checks(version).collect();
            let paths = paths(&checks);
            let walked = fields::request(frame, &paths, MAX_VALUES)?;
            let mut needs = Vec::new();
            for check in checks {
                needs_of(check, &walked, &paths, topics, &mut needs);
            }
            Ok(Needs::Checked(needs))
        }
    }
}

/// Every path the checks read: their fields, the fields of their conditions, and the
/// `ResourceType` beside each `ConfigResource` name.
fn paths(checks: &[&Check]) -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Vec::new();
    let mut add = |path: &'static str| {
        if !path.is_empty() && !paths.contains(&path) {
            paths.push(path);
        }
    };
    for check in checks {
        add(check.field);
        if check.named == Named::ConfigResources {
            add(resource_type_path(check.field));
        }
        for condition in check.when {
            add(condition.field());
        }
    }
    paths
}

/// `Resources[].ResourceType` for `Resources[].ResourceName`: the two are declared together
/// in every `ConfigResource` entry of Kafka's specs.
fn resource_type_path(name_path: &'static str) -> &'static str {
    match name_path {
        "Resources[].ResourceName" => "Resources[].ResourceType",
        _ => "",
    }
}

fn index(paths: &[&'static str], path: &str) -> Option<usize> {
    paths.iter().position(|p| *p == path)
}

fn needs_of<'a, N: TopicNames + ?Sized>(
    check: &Check,
    walked: &Walked<'a>,
    paths: &[&'static str],
    topics: &'a N,
    out: &mut Vec<Need<'a>>,
) {
    let need = |target, operation, error| Need {
        operation,
        target,
        error,
        scope: check.scope,
        fallback: check.fallback,
    };
    let whole = Indices::default();
    match check.named {
        Named::Cluster | Named::AnyTopic => {
            if holds(check.when, &whole, walked, paths) {
                let resource = match check.named {
                    Named::Cluster => Resource::Cluster,
                    _ => Resource::AnyTopic,
                };
                out.push(need(
                    Target::Resource(resource),
                    check.operation,
                    check.error,
                ));
            }
        }
        named => {
            let Some(path) = index(paths, check.field) else {
                return;
            };
            for found in walked.at(path) {
                if !holds(check.when, &found.at, walked, paths) {
                    continue;
                }
                let (operation, target, error) = target(check, named, found, walked, paths, topics);
                let need = need(target, operation, error);
                // Consecutive entries often repeat a name (a topic per partition batch).
                if out.last() != Some(&need) {
                    out.push(need);
                }
            }
        }
    }
}

fn target<'a, N: TopicNames + ?Sized>(
    check: &Check,
    named: Named,
    found: &Found<'a>,
    walked: &Walked<'a>,
    paths: &[&'static str],
    topics: &'a N,
) -> (Operation, Target<'a>, i16) {
    let plain = |target| (check.operation, target, check.error);
    match (named, found.value) {
        (Named::TopicIds, Value::Uuid(id)) => plain(match topics.topic_name(&id) {
            Some(name) => Target::Resource(Resource::Topic(name)),
            None => Target::UnknownTopicId(id),
        }),
        (Named::TopicNames, Value::Str(name)) => plain(Target::Resource(Resource::Topic(name))),
        (Named::Groups, Value::Str(name)) => plain(Target::Resource(Resource::Group(name))),
        (Named::TransactionalIds, Value::Str(name)) => {
            plain(Target::Resource(Resource::TransactionalId(name)))
        }
        (Named::ConfigResources, Value::Str(name)) => {
            let resource_type = index(paths, resource_type_path(check.field))
                .and_then(|path| walked.at(path).find(|f| f.at == found.at).map(|f| f.value))
                .and_then(|value| match value {
                    Value::Int(t) => i8::try_from(t).ok(),
                    _ => None,
                });
            match resource_type {
                Some(t) => match apis::config_resource(t, name, check.operation) {
                    Some((operation, resource, error)) => {
                        (operation, Target::Resource(resource), error)
                    }
                    None => plain(Target::UnknownResourceType(t)),
                },
                None => plain(Target::Null),
            }
        }
        _ => plain(Target::Null),
    }
}

/// Whether every condition holds for the value at `at`: on the values of the condition's
/// field in the same entry (any of them, should a tagged field come twice), or on the
/// field's default when the request has none.
fn holds(conditions: &[When], at: &Indices, walked: &Walked<'_>, paths: &[&'static str]) -> bool {
    conditions.iter().all(|condition| {
        let field = condition.field();
        let depth = field.matches("[]").count();
        let entry = at.truncated(depth);
        let mut values = index(paths, field)
            .into_iter()
            .flat_map(|path| walked.at(path))
            .filter(|f| f.at.truncated(depth) == entry)
            .map(|f| f.value)
            .peekable();
        if values.peek().is_none() {
            let Some(spec) = walked.message.field(field) else {
                return false;
            };
            let default = if spec.null_default {
                Value::Null
            } else {
                Value::Int(spec.default)
            };
            return test(*condition, default);
        }
        values.any(|value| test(*condition, value))
    })
}

fn test(condition: When, value: Value<'_>) -> bool {
    match (condition, value) {
        (When::Null(_), value) => value.is_null(),
        (When::NotNull(_), value) => !value.is_null(),
        (When::Is(_, expected), Value::Int(v)) => v == expected,
        (When::AtLeast(_, least), Value::Int(v)) => v >= least,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    use super::*;
    use crate::edge::auth::schema::sample::encoded;

    const A: TopicId = [0xa; 16];
    const B: TopicId = [0xb; 16];
    const UNMAPPED: TopicId = [0xc; 16];

    fn ids() -> HashMap<TopicId, String> {
        HashMap::from([(A, "a".to_owned()), (B, "b".to_owned())])
    }

    fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }

    fn uuid(id: TopicId) -> uuid::Uuid {
        uuid::Uuid::from_bytes(id)
    }

    /// The needs of a request as `operation resource error` lines.
    fn needs(frame: &[u8]) -> Vec<String> {
        let ids = ids();
        match resources(frame, &ids).unwrap() {
            Needs::Checked(needs) => needs.iter().map(line).collect(),
            other => vec![format!("{other:?}")],
        }
    }

    fn line(need: &Need<'_>) -> String {
        let target = match need.target {
            Target::Resource(Resource::Topic(t)) => format!("topic:{t}"),
            Target::Resource(Resource::Group(g)) => format!("group:{g}"),
            Target::Resource(Resource::TransactionalId(t)) => format!("txn:{t}"),
            Target::Resource(Resource::Cluster) => "cluster".to_owned(),
            Target::Resource(Resource::AnyTopic) => "any-topic".to_owned(),
            Target::UnknownTopicId(id) => format!("unknown-id:{:x}", id[0]),
            Target::UnknownResourceType(t) => format!("unknown-type:{t}"),
            Target::Null => "null".to_owned(),
        };
        let fallback = need
            .fallback
            .map(|f| format!(" else {f}=false"))
            .unwrap_or_default();
        format!(
            "{} {target} {}{fallback}",
            need.operation.name(),
            need.error
        )
    }

    fn produce(version: i16, txn: Option<&str>) -> Vec<u8> {
        let topic = |name: &str, id, partitions: i32| {
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s(name)))
                .with_topic_id(uuid(id))
                .with_partition_data(
                    (0..partitions)
                        .map(|i| {
                            produce_request::PartitionProduceData::default()
                                .with_index(i)
                                .with_records(Some(bytes::Bytes::from(vec![7u8; 100])))
                        })
                        .collect(),
                )
        };
        let body = ProduceRequest::default()
            .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
            .with_acks(-1)
            .with_topic_data(vec![
                topic("a", A, 3),
                topic("b", B, 1),
                topic("c", UNMAPPED, 1),
            ]);
        encoded(ApiKey::Produce, version, 1, &body)
    }

    #[test]
    fn produce_names_its_topics_by_name_then_by_id() {
        for version in 3..=13 {
            let want_topics: Vec<String> = if version <= 12 {
                vec![
                    "write topic:a 29".into(),
                    "write topic:b 29".into(),
                    "write topic:c 29".into(),
                ]
            } else {
                vec![
                    "write topic:a 29".into(),
                    "write topic:b 29".into(),
                    "write unknown-id:c 29".into(),
                ]
            };
            assert_eq!(needs(&produce(version, None)), want_topics, "v{version}");
            let mut want = vec!["write txn:tx 53".to_owned()];
            want.extend(want_topics);
            assert_eq!(needs(&produce(version, Some("tx"))), want, "v{version}");
        }
    }

    #[test]
    fn fetch_names_topics_and_a_follower_needs_the_cluster() {
        for version in 4..=18 {
            let topic = |name: &str, id| {
                fetch_request::FetchTopic::default()
                    .with_topic(TopicName(s(name)))
                    .with_topic_id(uuid(id))
                    .with_partitions(vec![fetch_request::FetchPartition::default(); 2])
            };
            let consumer = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![topic("a", A), topic("b", B)]);
            let want = vec!["read topic:a 29".to_owned(), "read topic:b 29".to_owned()];
            assert_eq!(
                needs(&encoded(ApiKey::Fetch, version, 1, &consumer)),
                want,
                "v{version}"
            );
            let follower = if version <= 14 {
                consumer.with_replica_id(BrokerId(2))
            } else {
                consumer.with_replica_state(
                    fetch_request::ReplicaState::default().with_replica_id(BrokerId(2)),
                )
            };
            let got = needs(&encoded(ApiKey::Fetch, version, 1, &follower));
            assert_eq!(got[0], "cluster_admin cluster 31", "v{version}");
            assert_eq!(got[1..], want[..], "v{version}");
        }
    }

    #[test]
    fn metadata_needs_create_only_where_a_broker_would_create() {
        for version in 0..=13 {
            let by_id = if version >= 10 {
                metadata_request::MetadataRequestTopic::default()
                    .with_name(None)
                    .with_topic_id(uuid(B))
            } else {
                metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("b"))))
            };
            let topics = vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(s("a")))),
                by_id,
            ];
            for auto in [false, true] {
                if version <= 3 && !auto {
                    continue;
                }
                let body = MetadataRequest::default()
                    .with_topics(Some(topics.clone()))
                    .with_allow_auto_topic_creation(auto);
                let got = needs(&encoded(ApiKey::Metadata, version, 1, &body));
                let mut want: Vec<String> = Vec::new();
                if version <= 3 {
                    // Always created then, and the client cannot ask otherwise.
                    want = vec!["create topic:a 29".into(), "create topic:b 29".into()];
                } else if auto {
                    want.push("create topic:a 29 else AllowAutoTopicCreation=false".into());
                    if version < 10 {
                        want.push("create topic:b 29 else AllowAutoTopicCreation=false".into());
                    }
                }
                assert_eq!(got, want, "v{version} auto={auto}");
            }
            if version >= 1 {
                // Every topic: the answer is filtered, the request names nothing.
                let all = MetadataRequest::default().with_topics(None);
                assert_eq!(
                    needs(&encoded(ApiKey::Metadata, version, 1, &all)),
                    Vec::<String>::new()
                );
            }
        }
    }

    #[test]
    fn find_coordinator_reads_the_key_type() {
        for version in 0..=6 {
            for (key_type, want) in [
                (0, "describe group:k 30"),
                (1, "describe txn:k 53"),
                (2, "cluster_admin cluster 31"),
                (5, "cluster_admin cluster 31"),
            ] {
                if version == 0 && key_type != 0 {
                    continue;
                }
                let body = if version <= 3 {
                    FindCoordinatorRequest::default()
                        .with_key(s("k"))
                        .with_key_type(key_type)
                } else {
                    FindCoordinatorRequest::default()
                        .with_key_type(key_type)
                        .with_coordinator_keys(vec![s("k")])
                };
                let got = needs(&encoded(ApiKey::FindCoordinator, version, 1, &body));
                assert_eq!(got, vec![want.to_owned()], "v{version} type {key_type}");
            }
        }
    }

    #[test]
    fn init_producer_id_is_a_transactional_id_or_any_topic() {
        for version in 0..=5 {
            let body = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx"))));
            assert_eq!(
                needs(&encoded(ApiKey::InitProducerId, version, 1, &body)),
                ["write txn:tx 53"]
            );
            let body = InitProducerIdRequest::default().with_transactional_id(None);
            assert_eq!(
                needs(&encoded(ApiKey::InitProducerId, version, 1, &body)),
                ["write any-topic 31"]
            );
        }
    }

    #[test]
    fn config_resources_map_by_their_type() {
        let resource = |t: i8, name: &str| {
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(s(name))
        };
        for version in 1..=4 {
            let body = DescribeConfigsRequest::default().with_resources(vec![
                resource(2, "t"),
                resource(32, "g"),
                resource(4, "1"),
                resource(99, "x"),
            ]);
            assert_eq!(
                needs(&encoded(ApiKey::DescribeConfigs, version, 1, &body)),
                [
                    "describe topic:t 29",
                    "describe group:g 30",
                    "cluster_admin cluster 31",
                    "describe unknown-type:99 29"
                ],
                "v{version}"
            );
        }
        for version in 0..=1 {
            let body = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ]);
            assert_eq!(
                needs(&encoded(ApiKey::IncrementalAlterConfigs, version, 1, &body)),
                ["alter topic:t 29"]
            );
        }
    }

    #[test]
    fn delete_topics_by_name_or_by_id() {
        for version in 1..=6 {
            let body = if version <= 5 {
                DeleteTopicsRequest::default()
                    .with_topic_names(vec![TopicName(s("a")), TopicName(s("b"))])
            } else {
                DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(TopicName(s("a")))),
                    delete_topics_request::DeleteTopicState::default().with_topic_id(uuid(B)),
                    delete_topics_request::DeleteTopicState::default()
                        .with_topic_id(uuid(UNMAPPED)),
                ])
            };
            let want: &[&str] = if version <= 5 {
                &["delete topic:a 29", "delete topic:b 29"]
            } else {
                &[
                    "delete topic:a 29",
                    "delete topic:b 29",
                    "delete unknown-id:c 29",
                ]
            };
            assert_eq!(
                needs(&encoded(ApiKey::DeleteTopics, version, 1, &body)),
                want,
                "v{version}"
            );
        }
    }

    #[test]
    fn offsets_name_the_group_and_its_topics() {
        for version in 2..=9 {
            let body = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("a")))
                        .with_partitions(vec![Default::default(); 2]),
                ]);
            assert_eq!(
                needs(&encoded(ApiKey::OffsetCommit, version, 1, &body)),
                ["read group:g 30", "read topic:a 29"]
            );
        }
        for version in 1..=9 {
            let topic = |name: &str| {
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s(name)))
                    .with_partition_indexes(vec![0, 1])
            };
            let body = if version <= 7 {
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s("a")))
                            .with_partition_indexes(vec![0]),
                    ]))
            } else {
                OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("g1")))
                        .with_topics(Some(vec![topic("a")])),
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("g2")))
                        .with_topics(None),
                ])
            };
            let want: &[&str] = if version <= 7 {
                &["describe group:g 30", "describe topic:a 29"]
            } else {
                &[
                    "describe group:g1 30",
                    "describe group:g2 30",
                    "describe topic:a 29",
                ]
            };
            assert_eq!(
                needs(&encoded(ApiKey::OffsetFetch, version, 1, &body)),
                want,
                "v{version}"
            );
        }
    }

    #[test]
    fn group_heartbeats_name_their_subscriptions() {
        for version in 0..=1 {
            let body = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_subscribed_topic_names(Some(vec![TopicName(s("a")), TopicName(s("b"))]));
            assert_eq!(
                needs(&encoded(ApiKey::ConsumerGroupHeartbeat, version, 1, &body)),
                [
                    "read group:g 30",
                    "describe topic:a 29",
                    "describe topic:b 29"
                ]
            );
            let body = body.with_subscribed_topic_names(None);
            assert_eq!(
                needs(&encoded(ApiKey::ConsumerGroupHeartbeat, version, 1, &body)),
                ["read group:g 30"]
            );
        }
    }

    #[test]
    fn transactions_name_the_transactional_id_the_group_and_the_topics() {
        for version in 0..=3 {
            let body = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("a")))
                        .with_partitions(vec![0, 1]),
                ]);
            assert_eq!(
                needs(&encoded(ApiKey::AddPartitionsToTxn, version, 1, &body)),
                ["write txn:tx 53", "write topic:a 29"]
            );
        }
        let body = AddPartitionsToTxnRequest::default();
        assert_eq!(
            needs(&encoded(ApiKey::AddPartitionsToTxn, 4, 1, &body)),
            ["cluster_admin cluster 31"]
        );
        for version in 0..=5 {
            let body = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("tx")))
                .with_group_id(GroupId(s("g")))
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("a"))),
                ]);
            assert_eq!(
                needs(&encoded(ApiKey::TxnOffsetCommit, version, 1, &body)),
                ["write txn:tx 53", "read group:g 30", "read topic:a 29"]
            );
        }
    }

    #[test]
    fn open_inter_broker_and_unknown_keys() {
        let ids = ids();
        let frame = encoded(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
        assert_eq!(resources(&frame, &ids).unwrap(), Needs::Open);
        let frame = encoded(ApiKey::Vote, 0, 1, &VoteRequest::default());
        assert_eq!(resources(&frame, &ids).unwrap(), Needs::InterBroker);
        let mut frame = encoded(ApiKey::Heartbeat, 0, 1, &HeartbeatRequest::default());
        frame[4..6].copy_from_slice(&1000i16.to_be_bytes());
        assert_eq!(resources(&frame, &ids).unwrap(), Needs::Unknown);
        // A version Kafka 4.4 does not have cannot be read.
        let frame = encoded(ApiKey::Heartbeat, 0, 1, &HeartbeatRequest::default());
        let mut future = frame.clone();
        future[6..8].copy_from_slice(&99i16.to_be_bytes());
        assert!(matches!(
            resources(&future, &ids),
            Err(FieldError::Version { version: 99, .. })
        ));
        assert_eq!(needs(&frame), ["read group: 30"]);
    }

    proptest! {
        /// Whatever the topic names, a Produce needs exactly them, in order.
        #[test]
        fn produce_needs_exactly_its_topic_names(names in proptest::collection::vec("\\PC{0,40}", 1..20), version in 3i16..=12) {
            let body = ProduceRequest::default().with_acks(1).with_topic_data(
                names.iter().map(|n| produce_request::TopicProduceData::default().with_name(TopicName(s(n)))).collect(),
            );
            let frame = encoded(ApiKey::Produce, version, 1, &body);
            let ids = ids();
            let Needs::Checked(got) = resources(&frame, &ids).unwrap() else { panic!() };
            let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
            want.dedup();
            let got: Vec<&str> = got.iter().map(|n| match n.target {
                Target::Resource(Resource::Topic(t)) => t,
                _ => "?",
            }).collect();
            prop_assert_eq!(got, want);
        }
    }
}

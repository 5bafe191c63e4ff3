//! The decision on one request of an authenticated principal, from the request's bytes: what
//! it needs ([`resources`]), what the policy says of each need, and what the gateway does:
//! forward it (perhaps with a fallback field cleared, perhaps with its answer to filter),
//! refuse it with a broker's answer ([`deny`]), or close the connection.

use base64::Engine;
use bytes::Bytes;

use crate::edge::auth::deny;
use crate::edge::auth::fields::{self, FieldError, Value};
use crate::edge::auth::filter::{self, Filter};
use crate::edge::auth::policy::{Decision, Operation, Policy};
use crate::edge::auth::resources::{resources, Needs, Target, TopicId, TopicNames};

const PRODUCE: i16 = 0;
/// Kafka's UNKNOWN_TOPIC_ID.
pub const UNKNOWN_TOPIC_ID: i16 = 100;

/// What to do with a request.
#[derive(Debug, PartialEq)]
pub enum Verdict<'a> {
    /// Forward it: as it came, or these bytes instead (the same request with a fallback
    /// field cleared). With a filter, its answer goes through [`Filter::apply`].
    Forward {
        edited: Option<Bytes>,
        filter: Option<Filter>,
    },
    /// Refuse it: send `answer` in the broker's stead; without one (an API or version with
    /// no answer, an `acks=0` Produce), close the connection. Either way, audit `denial`.
    Deny {
        denial: Denial<'a>,
        answer: Option<Bytes>,
    },
    /// Close the connection without an answer.
    Close(Refusal),
}

/// The first need of a request the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial<'a> {
    pub operation: Operation,
    pub target: Target<'a>,
    pub error: i16,
    /// For audit lines: [`crate::edge::auth::policy::DenyReason::code`], or
    /// `unmapped_topic_id`, `unknown_resource_type`, `null_name`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("an inter-broker API, which clients never send")]
    InterBroker,
    #[error("an API key the gateway does not know")]
    UnknownApi,
    #[error("a request that does not read as its schema says: {0}")]
    Malformed(#[from] FieldError),
}

impl Refusal {
    /// For audit lines.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InterBroker => "inter_broker",
            Refusal::UnknownApi => "unknown_api",
            Refusal::Malformed(_) => "malformed",
        }
    }
}

/// The decision on the request in `frame` (size prefix, header, body, whole) of `principal`.
pub fn authorize<'a, N: TopicNames + ?Sized>(
    policy: &Policy,
    principal: &str,
    frame: &'a [u8],
    topics: &'a N,
) -> Verdict<'a> {
    let needs = match resources(frame, topics) {
        Ok(Needs::Open) => Vec::new(),
        Ok(Needs::Checked(needs)) => needs,
        Ok(Needs::InterBroker) => return Verdict::Close(Refusal::InterBroker),
        Ok(Needs::Unknown) => return Verdict::Close(Refusal::UnknownApi),
        Err(e) => return Verdict::Close(Refusal::Malformed(e)),
    };
    let mut fallbacks: Vec<&'static str> = Vec::new();
    for need in needs {
        let mut error = need.error;
        let reason = match need.target {
            Target::Resource(resource) => {
                match policy.decide(principal, need.operation, resource) {
                    Decision::Allow => continue,
                    Decision::Deny(reason) => reason.code(),
                }
            }
            Target::UnknownTopicId(_) => {
                // What a broker says of an id it does not know: the client refreshes its
                // metadata, which teaches the gateway the id.
                error = UNKNOWN_TOPIC_ID;
                "unmapped_topic_id"
            }
            Target::UnknownResourceType(_) => "unknown_resource_type",
            Target::Null => "null_name",
        };
        if let Some(field) = need.fallback {
            if !fallbacks.contains(&field) {
                fallbacks.push(field);
            }
            continue;
        }
        let denial = Denial {
            operation: need.operation,
            target: need.target,
            error,
            reason,
        };
        return Verdict::Deny {
            answer: answer(frame, denial.error),
            denial,
        };
    }
    let edited = match cleared(frame, &fallbacks) {
        Ok(edited) => edited,
        Err(e) => return Verdict::Close(Refusal::Malformed(e)),
    };
    match filter::for_request(frame) {
        Ok(filter) => Verdict::Forward { edited, filter },
        Err(e) => Verdict::Close(Refusal::Malformed(e)),
    }
}

/// The answer refusing the request, unless it gets none.
fn answer(frame: &[u8], error: i16) -> Option<Bytes> {
    if frame.get(4..6) == Some(&PRODUCE.to_be_bytes()[..]) {
        // A broker never answers acks=0: it closes the connection on a refusal.
        let acks = fields::request(frame, &["Acks"], 1).ok()?;
        if acks.found.first().map(|f| f.value) == Some(Value::Int(0)) {
            return None;
        }
    }
    deny::answer(frame, error).ok()
}

/// The request with each boolean field of `fields` set false; `None` when there are none.
fn cleared(frame: &[u8], fields: &[&'static str]) -> Result<Option<Bytes>, FieldError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let walked = fields::request(frame, fields, fields.len())?;
    let mut out = frame[..walked.end.min(frame.len())].to_vec();
    for found in &walked.found {
        if let Some(byte) = out.get_mut(found.span.start) {
            *byte = 0;
        }
    }
    Ok(Some(Bytes::from(out)))
}

/// A topic id as Kafka prints it (URL-safe base64, no padding), for audit lines.
pub fn topic_id_text(id: &TopicId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::edge::auth::policy::{Grant, Patterns, Resource};
    use crate::edge::auth::schema::sample::encoded;

    fn patterns(p: &[&str]) -> Patterns {
        let entries: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        Patterns::parse(&entries, "test", &mut Vec::new())
    }

    /// `p` reads, writes and describes `a*` topics and `g*` groups; it creates nothing.
    fn policy() -> Policy {
        use Operation::*;
        Policy::new(
            vec![(
                "p".into(),
                Grant::new(
                    &[Read, Write, Describe],
                    patterns(&["a*"]),
                    patterns(&["g*"]),
                    patterns(&[]),
                ),
            )],
            vec![],
        )
    }

    fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }

    fn produce(version: i16, acks: i16, topic: &str) -> Vec<u8> {
        let body = ProduceRequest::default()
            .with_acks(acks)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(s(topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default(),
                ])]);
        encoded(ApiKey::Produce, version, 3, &body)
    }

    #[test]
    fn allowed_requests_go_on_untouched() {
        let ids: HashMap<TopicId, String> = HashMap::new();
        let frame = produce(9, -1, "a.orders");
        assert_eq!(
            authorize(&policy(), "p", &frame, &ids),
            Verdict::Forward {
                edited: None,
                filter: None
            }
        );
        let frame = encoded(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
        assert_eq!(
            authorize(&policy(), "nobody", &frame, &ids),
            Verdict::Forward {
                edited: None,
                filter: None
            }
        );
    }

    #[test]
    fn denied_requests_get_a_broker_answer_or_none_for_acks_0() {
        let ids: HashMap<TopicId, String> = HashMap::new();
        let frame = produce(9, -1, "b.orders");
        let Verdict::Deny { denial, answer } = authorize(&policy(), "p", &frame, &ids) else {
            panic!()
        };
        assert_eq!(
            denial,
            Denial {
                operation: Operation::Write,
                target: Target::Resource(Resource::Topic("b.orders")),
                error: 29,
                reason: "resource_not_granted",
            }
        );
        let mut body = answer.unwrap().split_off(4);
        assert_eq!(
            ResponseHeader::decode(&mut body, 1).unwrap().correlation_id,
            3
        );
        let r = ProduceResponse::decode(&mut body, 9).unwrap();
        assert_eq!(r.responses[0].partition_responses[0].error_code, 29);
        let frame = produce(9, 0, "b.orders");
        let Verdict::Deny { answer, .. } = authorize(&policy(), "p", &frame, &ids) else {
            panic!()
        };
        assert_eq!(answer, None);
    }

    #[test]
    fn topic_ids_map_to_names_or_are_denied() {
        let ids: HashMap<TopicId, String> = HashMap::from([([1; 16], "a.x".to_owned())]);
        let fetch = |id: TopicId| {
            let body = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic_id(uuid::Uuid::from_bytes(id))
                    .with_partitions(vec![fetch_request::FetchPartition::default()])]);
            encoded(ApiKey::Fetch, 17, 1, &body)
        };
        let frame = fetch([1; 16]);
        assert!(matches!(
            authorize(&policy(), "p", &frame, &ids),
            Verdict::Forward { .. }
        ));
        let frame = fetch([2; 16]);
        let Verdict::Deny { denial, answer } = authorize(&policy(), "p", &frame, &ids) else {
            panic!()
        };
        assert_eq!(
            (denial.target, denial.reason, denial.error),
            (Target::UnknownTopicId([2; 16]), "unmapped_topic_id", 100)
        );
        let mut body = answer.unwrap().split_off(4);
        ResponseHeader::decode(&mut body, 1).unwrap();
        let r = FetchResponse::decode(&mut body, 17).unwrap();
        // As a broker answers an id it does not know: on the partition, not request-wide.
        assert_eq!(r.error_code, 0);
        assert_eq!(r.responses[0].topic_id, uuid::Uuid::from_bytes([2; 16]));
        assert_eq!(r.responses[0].partitions[0].error_code, 100);
        assert_eq!(topic_id_text(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn metadata_without_create_goes_on_without_auto_creation() {
        let ids: HashMap<TopicId, String> = HashMap::new();
        for version in 4..=13 {
            let body = MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(s("a.new"))))]))
                .with_allow_auto_topic_creation(true);
            let frame = encoded(ApiKey::Metadata, version, 1, &body);
            let Verdict::Forward {
                edited: Some(mut edited),
                filter: Some(_),
            } = authorize(&policy(), "p", &frame, &ids)
            else {
                panic!("v{version}")
            };
            let mut bytes = edited.split_off(4);
            RequestHeader::decode(&mut bytes, ApiKey::Metadata.request_header_version(version))
                .unwrap();
            let got = MetadataRequest::decode(&mut bytes, version).unwrap();
            assert_eq!(
                got,
                body.with_allow_auto_topic_creation(false),
                "v{version}"
            );
        }
        // Before v4, a broker creates what it is asked about: refused.
        let body = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(s("a.new"))))]));
        let frame = encoded(ApiKey::Metadata, 3, 1, &body);
        let Verdict::Deny {
            denial,
            answer: Some(_),
        } = authorize(&policy(), "p", &frame, &ids)
        else {
            panic!()
        };
        assert_eq!(
            (denial.operation, denial.reason),
            (Operation::Create, "operation_not_granted")
        );
    }

    #[test]
    fn librdkafkas_all_topics_metadata_goes_on() {
        // As confluent-kafka 2.16.1 (librdkafka 2.16.0) sends it, captured: three bytes
        // after the v12 body, which Kafka ignores.
        let frame: Vec<u8> = (0..29)
            .map(|i| {
                let hex = "000000190003000c00000004000772646b61666b610000000000010000";
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
            })
            .collect();
        let ids: HashMap<TopicId, String> = HashMap::new();
        assert!(matches!(
            authorize(&policy(), "p", &frame, &ids),
            Verdict::Forward {
                edited: None,
                filter: Some(_)
            }
        ));
    }

    #[test]
    fn inter_broker_unknown_and_malformed_requests_close() {
        let ids: HashMap<TopicId, String> = HashMap::new();
        let frame = encoded(ApiKey::Vote, 1, 1, &VoteRequest::default());
        assert_eq!(
            authorize(&policy(), "p", &frame, &ids),
            Verdict::Close(Refusal::InterBroker)
        );
        let mut frame = produce(9, 1, "a");
        frame[4..6].copy_from_slice(&4000i16.to_be_bytes());
        assert_eq!(
            authorize(&policy(), "p", &frame, &ids),
            Verdict::Close(Refusal::UnknownApi)
        );
        // Cut short inside the message.
        let mut frame = produce(9, 1, "a");
        frame.truncate(frame.len() - 3);
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let Verdict::Close(refusal) = authorize(&policy(), "p", &frame, &ids) else {
            panic!()
        };
        assert_eq!(refusal.code(), "malformed");
    }
}

//! Answers that list what a principal may not see: Metadata's topics, ListGroups' groups,
//! ListTransactions' transactional ids, DescribeTopicPartitions' topics and cursor
//! ([`ResponseFilter`]). The entries naming what the principal may not describe are dropped
//! (and their arrays' counts rewritten), or, where the request named them, replaced by an
//! entry holding only the name and the error, as a broker answers. The answer is walked by
//! its schema, bounds-checked; one that does not read as its schema says is an error, never
//! forwarded.

use bytes::{BufMut, Bytes, BytesMut};

use crate::edge::auth::apis::{self, Named, ResponseFilter};
use crate::edge::auth::fields::{self, FieldError, Found, Value};
use crate::edge::auth::policy::{DenyReason, Policy, Resource};
use crate::edge::auth::resources::{Target, MAX_VALUES};
use crate::edge::auth::schema::{self, Type};
use crate::edge::auth::verdict::Denial;
use crate::edge::auth::write::{Fill, Mirrors, WriteError, Writer};
use crate::proxy::frame::SIZE_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Frame(#[from] FieldError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A filter path that does not fit the schema: a mistake in a table, not input.
    #[error("{path} cannot be filtered in {message}")]
    Path {
        path: &'static str,
        message: &'static str,
    },
}

/// An answer after its filter: the new bytes when anything had to go, and the names the
/// request asked for that the principal may not describe (each a refusal to audit; the
/// entries merely dropped from a listing are not).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    pub frame: Option<Bytes>,
    pub refused: Vec<String>,
}

/// The filter of one request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub api_key: i16,
    pub version: i16,
    spec: ResponseFilter,
    /// Whether the request named the entries: those the principal may not see are then
    /// marked with the error instead of dropped.
    mark: bool,
}

/// The filter the answer to the request in `frame` needs, if its API has one.
pub fn for_request(frame: &[u8]) -> Result<Option<Filter>, FieldError> {
    let head = frame
        .get(4..8)
        .ok_or(FieldError::Incomplete { at: frame.len() })?;
    let api_key = i16::from_be_bytes([head[0], head[1]]);
    let version = i16::from_be_bytes([head[2], head[3]]);
    let Some(spec) = apis::api(api_key).and_then(|api| api.filter) else {
        return Ok(None);
    };
    let mark = match spec.named_by {
        Some(path) => fields::request(frame, &[path], 1)?
            .found
            .first()
            .is_some_and(|f| matches!(f.value, Value::Array(n) if n > 0)),
        None => false,
    };
    Ok(Some(Filter {
        api_key,
        version,
        spec,
        mark,
    }))
}

/// Where the entries of one name path lie: the array element around the name, with the
/// array, or the nullable struct around it.
enum Entry {
    Element {
        name: usize,
        element: usize,
        array: usize,
        depth: usize,
        /// The element's fields, the name's path, and its path inside the element.
        fields: &'static [schema::Field],
        field: &'static str,
        inner: &'static str,
    },
    Struct {
        name: usize,
        parent: usize,
    },
}

impl Filter {
    /// The answer without what `principal` may not see.
    pub fn apply(
        &self,
        frame: &[u8],
        policy: &Policy,
        principal: &str,
    ) -> Result<Filtered, FilterError> {
        let message = schema::response(self.api_key).ok_or(FieldError::UnknownApi {
            api_key: self.api_key,
        })?;
        let mut paths: Vec<&'static str> = Vec::new();
        let mut entries = Vec::new();
        for &field in self.spec.fields {
            entries.push(entry(field, &mut paths, message)?);
        }
        let walked = fields::response(self.api_key, self.version, frame, &paths, MAX_VALUES)?;
        let found = &walked.found;
        let visible = |value: &Value<'_>| match value {
            Value::Str(name) => policy
                .decide(principal, self.spec.operation, self.resource(name))
                .is_allowed(),
            _ => false,
        };
        let mirrors = Mirrors::new(&paths, found);
        let writer = Writer::new(message, self.version, self.spec.error, &mirrors);
        let mut edits: Vec<(usize, usize, Bytes)> = Vec::new();
        let mut refused = Vec::new();
        // Per array: (its entry in `found`, elements dropped).
        let mut shrunk: Vec<(usize, usize)> = Vec::new();
        for entry in &entries {
            let name = match entry {
                Entry::Element { name, .. } | Entry::Struct { name, .. } => *name,
            };
            for hidden in walked.at(name).filter(|f| !visible(&f.value)) {
                match *entry {
                    Entry::Struct { parent, .. } => {
                        let Some(parent) = walked.at(parent).find(|f| f.at == hidden.at) else {
                            continue;
                        };
                        edits.push((
                            parent.span.start,
                            parent.span.end,
                            Bytes::from_static(&[0xff]),
                        ));
                    }
                    Entry::Element {
                        element,
                        array,
                        depth,
                        fields,
                        field,
                        inner,
                        ..
                    } => {
                        let at = hidden.at.truncated(depth);
                        let Some(element) = walked.at(element).find(|f| f.at == at) else {
                            continue;
                        };
                        if self.mark {
                            if let Value::Str(name) = hidden.value {
                                refused.push(name.to_owned());
                            }
                            let entry = (fields, field, inner);
                            edits.push(Self::marked(
                                &writer,
                                message.name,
                                entry,
                                element,
                                hidden,
                            )?);
                            continue;
                        }
                        edits.push((element.span.start, element.span.end, Bytes::new()));
                        let outer = at.truncated(depth - 1);
                        let Some(array) =
                            found.iter().position(|f| f.path == array && f.at == outer)
                        else {
                            continue;
                        };
                        match shrunk.iter_mut().find(|(a, _)| *a == array) {
                            Some((_, dropped)) => *dropped += 1,
                            None => shrunk.push((array, 1)),
                        }
                    }
                }
            }
        }
        for (array, dropped) in shrunk {
            let array = &found[array];
            let Value::Array(count) = array.value else {
                continue;
            };
            let mut head = BytesMut::with_capacity(5);
            writer.length(Some(count - dropped), 4, &mut head);
            edits.push((array.span.start, array.head_end, head.freeze()));
        }
        if edits.is_empty() {
            return Ok(Filtered::default());
        }
        // The walk read the whole frame, as its size prefix declares it.
        let declared = frame.len().min(walked.end);
        Ok(Filtered {
            frame: Some(splice(&frame[..declared], edits)),
            refused,
        })
    }

    /// The refusal an entry marked for `name` stands for, for the audit log and metric.
    pub fn denial<'a>(&self, name: &'a str) -> Denial<'a> {
        Denial {
            operation: self.spec.operation,
            target: Target::Resource(self.resource(name)),
            error: self.spec.error,
            reason: DenyReason::Resource.code(),
        }
    }

    fn resource<'a>(&self, name: &'a str) -> Resource<'a> {
        match self.spec.named {
            Named::Groups => Resource::Group(name),
            Named::TransactionalIds => Resource::TransactionalId(name),
            _ => Resource::Topic(name),
        }
    }

    /// An entry with only the name and the error, in place of `element`.
    fn marked(
        writer: &Writer<'_, '_>,
        message: &'static str,
        entry: (&'static [schema::Field], &'static str, &'static str),
        element: &Found<'_>,
        name: &Found<'_>,
    ) -> Result<(usize, usize, Bytes), FilterError> {
        let (fields, field, inner) = entry;
        let recipe = [("ErrorCode", Fill::Error), (inner, Fill::Mirror(field))];
        let mut out = BytesMut::new();
        writer.message_struct(fields, message, &recipe, name.at, &mut out)?;
        Ok((element.span.start, element.span.end, out.freeze()))
    }
}

fn entry(
    field: &'static str,
    paths: &mut Vec<&'static str>,
    message: &'static schema::Message,
) -> Result<Entry, FilterError> {
    let bad = FilterError::Path {
        path: field,
        message: message.name,
    };
    let mut add = |path: &'static str| match paths.iter().position(|p| *p == path) {
        Some(i) => i,
        None => {
            paths.push(path);
            paths.len() - 1
        }
    };
    let name = add(field);
    if let Some(cut) = field.rfind("[].") {
        let (array_path, inner) = (&field[..cut], &field[cut + 3..]);
        let Some(Type::Array(Type::Struct(fields))) = message.field(array_path).map(|f| f.ty)
        else {
            return Err(bad);
        };
        // A name directly in the element, so that a marked entry can hold it.
        if inner.contains('.') {
            return Err(bad);
        }
        return Ok(Entry::Element {
            name,
            element: add(&field[..cut + 2]),
            array: add(array_path),
            depth: field[..cut + 2].matches("[]").count(),
            fields,
            field,
            inner,
        });
    }
    match field.rsplit_once('.') {
        Some((parent, _)) => Ok(Entry::Struct {
            name,
            parent: add(parent),
        }),
        None => Err(bad),
    }
}

/// `frame` with each edit's bytes in place of its range, and its size prefix recomputed.
/// An edit inside a range another edit replaces (an entry inside a dropped entry) goes
/// with it.
fn splice(frame: &[u8], mut edits: Vec<(usize, usize, Bytes)>) -> Bytes {
    edits.sort_by_key(|(start, end, _)| (*start, std::cmp::Reverse(*end)));
    let mut out = BytesMut::with_capacity(frame.len());
    out.put_i32(0);
    let mut copied = SIZE_PREFIX;
    for (start, end, with) in edits {
        if start < copied {
            continue;
        }
        out.put_slice(&frame[copied..start]);
        out.put_slice(&with);
        copied = end;
    }
    out.put_slice(&frame[copied..]);
    let size = (out.len() - SIZE_PREFIX) as i32;
    out[..SIZE_PREFIX].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::*;
    use crate::edge::auth::policy::{Grant, Operation, Patterns};
    use crate::edge::auth::schema::sample::{self, encoded, Rng};

    /// `p` may describe topics `a*`, groups `g*` and transactional ids `t*`.
    fn policy() -> Policy {
        let patterns = |p: &str| Patterns::parse(&[p.to_owned()], "test", &mut Vec::new());
        Policy::new(
            vec![(
                "p".into(),
                Grant::new(
                    &[Operation::Describe],
                    patterns("a*"),
                    patterns("g*"),
                    patterns("t*"),
                ),
            )],
            vec![],
        )
    }

    fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }

    fn response<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(9)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        let size = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&size.to_be_bytes());
        out.to_vec()
    }

    fn decode<T: Decodable>(frame: &[u8], api: ApiKey, version: i16) -> T {
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4, "size prefix");
        let mut body = Bytes::from(frame.to_vec()).split_off(4);
        let header =
            ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 9);
        let decoded = T::decode(&mut body, version).unwrap();
        assert!(body.is_empty(), "bytes left");
        decoded
    }

    fn metadata_answer(version: i16) -> MetadataResponse {
        let topic = |name: &str, partitions: i32| {
            metadata_response::MetadataResponseTopic::default()
                .with_name(Some(TopicName(s(name))))
                .with_topic_id(if version >= 10 {
                    uuid::Uuid::from_bytes([7; 16])
                } else {
                    uuid::Uuid::nil()
                })
                .with_partitions(vec![
                    metadata_response::MetadataResponsePartition::default()
                        .with_leader_id(BrokerId(1))
                        .with_replica_nodes(vec![BrokerId(1)]);
                    partitions as usize
                ])
        };
        MetadataResponse::default()
            .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(s("broker-1.internal"))
                .with_port(9092)])
            .with_topics(vec![
                topic("a1", 2),
                topic("secret", 3),
                topic("a2", 1),
                topic("hidden", 1),
            ])
    }

    fn names(r: &MetadataResponse) -> Vec<(String, i16, usize)> {
        r.topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                (name, t.error_code, t.partitions.len())
            })
            .collect()
    }

    #[test]
    fn metadata_for_every_topic_drops_what_the_principal_may_not_describe() {
        for version in 0..=13 {
            let request = MetadataRequest::default().with_topics(if version == 0 {
                Some(vec![])
            } else {
                None
            });
            let filter = for_request(&encoded(ApiKey::Metadata, version, 9, &request))
                .unwrap()
                .unwrap();
            let answer = response(ApiKey::Metadata, version, &metadata_answer(version));
            let out = filter
                .apply(&answer, &policy(), "p")
                .unwrap()
                .frame
                .unwrap();
            let r: MetadataResponse = decode(&out, ApiKey::Metadata, version);
            assert_eq!(
                names(&r),
                [("a1".to_owned(), 0, 2), ("a2".to_owned(), 0, 1)],
                "v{version}"
            );
            assert_eq!(r.brokers.len(), 1);
            // Another principal sees nothing; nothing is dropped for a principal who may
            // see everything.
            let none: MetadataResponse = decode(
                &filter
                    .apply(&answer, &policy(), "q")
                    .unwrap()
                    .frame
                    .unwrap(),
                ApiKey::Metadata,
                version,
            );
            assert!(none.topics.is_empty());
            let everyone = Policy::new(
                vec![],
                vec![Grant::new(
                    &[Operation::Describe],
                    Patterns::parse(&["*".into()], "t", &mut vec![]),
                    Patterns::default(),
                    Patterns::default(),
                )],
            );
            assert_eq!(
                filter.apply(&answer, &everyone, "p").unwrap(),
                Filtered::default()
            );
        }
    }

    #[test]
    fn metadata_for_named_topics_answers_the_forbidden_ones_with_the_error() {
        for version in 1..=13 {
            let request = MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(s("a1")))),
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(s("secret")))),
            ]));
            let filter = for_request(&encoded(ApiKey::Metadata, version, 9, &request))
                .unwrap()
                .unwrap();
            let answer = response(ApiKey::Metadata, version, &metadata_answer(version));
            let filtered = filter.apply(&answer, &policy(), "p").unwrap();
            // What the request named and may not see is each a refusal to audit.
            assert_eq!(filtered.refused, ["secret", "hidden"], "v{version}");
            let out = filtered.frame.unwrap();
            let r: MetadataResponse = decode(&out, ApiKey::Metadata, version);
            assert_eq!(
                names(&r),
                [
                    ("a1".to_owned(), 0, 2),
                    ("secret".to_owned(), 29, 0),
                    ("a2".to_owned(), 0, 1),
                    ("hidden".to_owned(), 29, 0)
                ],
                "v{version}"
            );
            // The forbidden entries keep nothing but their name: no id, no partitions.
            assert!(r.topics[1].topic_id.is_nil() && !r.topics[1].is_internal);
            if version >= 8 {
                assert_eq!(r.topics[1].topic_authorized_operations, i32::MIN);
            }
        }
    }

    #[test]
    fn lists_of_groups_and_transactions_drop_the_forbidden() {
        for version in 0..=5 {
            let group = |id: &str| {
                list_groups_response::ListedGroup::default().with_group_id(GroupId(s(id)))
            };
            let body = ListGroupsResponse::default().with_groups(vec![
                group("g1"),
                group("x"),
                group("g2"),
            ]);
            let filter = for_request(&encoded(
                ApiKey::ListGroups,
                version,
                9,
                &ListGroupsRequest::default(),
            ))
            .unwrap()
            .unwrap();
            let out = filter
                .apply(
                    &response(ApiKey::ListGroups, version, &body),
                    &policy(),
                    "p",
                )
                .unwrap()
                .frame
                .unwrap();
            let r: ListGroupsResponse = decode(&out, ApiKey::ListGroups, version);
            let ids: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
            assert_eq!(ids, ["g1", "g2"], "v{version}");
        }
        for version in 0..=2 {
            let txn = |id: &str| {
                list_transactions_response::TransactionState::default()
                    .with_transactional_id(TransactionalId(s(id)))
            };
            let body = ListTransactionsResponse::default().with_transaction_states(vec![
                txn("x"),
                txn("t1"),
                txn("y"),
            ]);
            let filter = for_request(&encoded(
                ApiKey::ListTransactions,
                version,
                9,
                &ListTransactionsRequest::default(),
            ))
            .unwrap()
            .unwrap();
            let out = filter
                .apply(
                    &response(ApiKey::ListTransactions, version, &body),
                    &policy(),
                    "p",
                )
                .unwrap()
                .frame
                .unwrap();
            let r: ListTransactionsResponse = decode(&out, ApiKey::ListTransactions, version);
            let ids: Vec<String> = r
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.to_string())
                .collect();
            assert_eq!(ids, ["t1"], "v{version}");
        }
    }

    #[test]
    fn describe_topic_partitions_drops_topics_and_a_forbidden_cursor() {
        let topic = |name: &str| {
            describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(s(name))))
        };
        let cursor = |name: &str| {
            describe_topic_partitions_response::Cursor::default()
                .with_topic_name(TopicName(s(name)))
        };
        let filter = for_request(&encoded(
            ApiKey::DescribeTopicPartitions,
            0,
            9,
            &DescribeTopicPartitionsRequest::default(),
        ))
        .unwrap()
        .unwrap();
        for (next, kept) in [("zz", None), ("a9", Some("a9"))] {
            let body = DescribeTopicPartitionsResponse::default()
                .with_topics(vec![topic("b"), topic("a1")])
                .with_next_cursor(Some(cursor(next)));
            let out = filter
                .apply(
                    &response(ApiKey::DescribeTopicPartitions, 0, &body),
                    &policy(),
                    "p",
                )
                .unwrap()
                .frame
                .unwrap();
            let r: DescribeTopicPartitionsResponse =
                decode(&out, ApiKey::DescribeTopicPartitions, 0);
            let names: Vec<String> = r
                .topics
                .iter()
                .map(|t| t.name.as_ref().unwrap().to_string())
                .collect();
            assert_eq!(names, ["a1"]);
            assert_eq!(
                r.next_cursor.map(|c| c.topic_name.to_string()).as_deref(),
                kept
            );
        }
    }

    #[test]
    fn apis_without_a_filter_have_none_and_malformed_answers_are_errors() {
        assert_eq!(
            for_request(&encoded(ApiKey::Produce, 9, 1, &ProduceRequest::default())).unwrap(),
            None
        );
        let filter = for_request(&encoded(
            ApiKey::ListGroups,
            4,
            9,
            &ListGroupsRequest::default(),
        ))
        .unwrap()
        .unwrap();
        let body = ListGroupsResponse::default()
            .with_groups(vec![list_groups_response::ListedGroup::default()]);
        let mut answer = response(ApiKey::ListGroups, 4, &body);
        answer.pop();
        let size = (answer.len() - 4) as i32;
        answer[..4].copy_from_slice(&size.to_be_bytes());
        assert!(matches!(
            filter.apply(&answer, &policy(), "p"),
            Err(FilterError::Frame(FieldError::Short { .. }))
        ));
        // A count of a billion groups in a few bytes.
        let mut huge = response(ApiKey::ListGroups, 2, &ListGroupsResponse::default());
        let len = huge.len();
        huge[len - 4..].copy_from_slice(&0x3fff_ffffi32.to_be_bytes());
        let filter = for_request(&encoded(
            ApiKey::ListGroups,
            2,
            9,
            &ListGroupsRequest::default(),
        ))
        .unwrap()
        .unwrap();
        assert!(matches!(
            filter.apply(&huge, &policy(), "p"),
            Err(FilterError::Frame(FieldError::TooLong { .. }))
        ));
    }

    /// Random answers of every version of every filtered API: what comes out reads as its
    /// schema says, decodes with kafka-protocol, and names nothing the principal may not
    /// see (but as a marked entry).
    #[test]
    fn random_answers_come_out_well_formed_and_clean() {
        let (mut filtered, mut edited) = (0, 0);
        for (key, allowed) in [(3i16, 'a'), (16, 'g'), (66, 't'), (75, 'a')] {
            let api = ApiKey::try_from(key).unwrap();
            let spec = apis::api(key).unwrap().filter.unwrap();
            let message = schema::response(key).unwrap();
            for version in message.versions.lo..=message.versions.hi {
                for seed in 0..40 {
                    for mark in [false, true] {
                        let filter = Filter {
                            api_key: key,
                            version,
                            spec,
                            mark: mark && spec.named_by.is_some(),
                        };
                        let answer =
                            sample::response(message, version, &mut Rng::new(seed), true).frame;
                        // The sample's names are drawn from a few letters: about one in
                        // eleven starts with `a`.
                        let out = match filter.apply(&answer, &policy(), "p").unwrap().frame {
                            Some(out) => {
                                edited += 1;
                                out
                            }
                            None => Bytes::from(answer.clone()),
                        };
                        let paths = spec.fields;
                        let walked = fields::response(key, version, &out, paths, usize::MAX)
                            .unwrap_or_else(|e| panic!("{api:?} v{version} seed {seed}: {e}"));
                        for found in &walked.found {
                            if let Value::Str(name) = found.value {
                                assert!(
                                    name.starts_with(allowed) || filter.mark,
                                    "{api:?} v{version}: {name}"
                                );
                            }
                        }
                        let mut body = out.clone().split_off(4);
                        ResponseHeader::decode(&mut body, api.response_header_version(version))
                            .unwrap();
                        match ResponseKind::decode(api, &mut body, version) {
                            Ok(_) => assert!(body.is_empty(), "{api:?} v{version}"),
                            Err(e) => assert!(
                                format!("{e:#}").contains("version not supported"),
                                "{api:?} v{version}: {e:#}"
                            ),
                        }
                        filtered += 1;
                    }
                }
            }
        }
        assert!(
            filtered > 1000 && edited > filtered / 2,
            "{filtered} {edited}"
        );
    }
}

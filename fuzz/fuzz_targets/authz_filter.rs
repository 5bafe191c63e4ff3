//! Arbitrary bytes as the body of an answer the gateway filters (Metadata, ListGroups,
//! ListTransactions, DescribeTopicPartitions), at any version, for a request that asked for
//! everything or named entries: filtering never panics, what comes out reads as its schema
//! says with its size prefix right, names nothing the principal may not see but in entries
//! marked with the error, and filtering it again drops nothing more.
#![no_main]

use bytes::{BufMut, BytesMut};
use kafka_edge::edge::auth::fields::{self, Value};
use kafka_edge::edge::auth::filter;
use kafka_edge::edge::auth::policy::{Grant, Operation, Patterns, Policy};
use kafka_edge::edge::auth::schema;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeTopicPartitionsRequest, ListGroupsRequest, ListTransactionsRequest,
    MetadataRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use libfuzzer_sys::fuzz_target;

/// The filtered APIs and the paths that name their entries, with the prefix `p` may see.
const APIS: [(i16, &str, &str); 4] = [
    (3, "Topics[].Name", "a"),
    (16, "Groups[].GroupId", "g"),
    (66, "TransactionStates[].TransactionalId", "t"),
    (75, "Topics[].Name", "a"),
];

fn policy() -> Policy {
    let p = |p: &str| Patterns::parse(&[p.to_owned()], "fuzz", &mut Vec::new());
    Policy::new(
        vec![(
            "p".into(),
            Grant::new(&[Operation::Describe], p("a*"), p("g*"), p("t*")),
        )],
        vec![],
    )
}

/// A request of the API: Metadata asking for every topic, or naming one; the others as
/// their defaults (no filters, every topic).
fn request(key: i16, version: i16, named: bool) -> Vec<u8> {
    let api = ApiKey::try_from(key).expect("a known API");
    let mut out = BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .encode(&mut out, api.request_header_version(version))
        .expect("encodes");
    let encoded = match api {
        ApiKey::Metadata => {
            let topic = MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("x"))));
            let topics = match (named, version) {
                (true, _) => Some(vec![topic]),
                (false, 0) => Some(vec![]),
                (false, _) => None,
            };
            MetadataRequest::default()
                .with_topics(topics)
                .encode(&mut out, version)
        }
        ApiKey::ListGroups => ListGroupsRequest::default().encode(&mut out, version),
        ApiKey::ListTransactions => ListTransactionsRequest::default().encode(&mut out, version),
        _ => DescribeTopicPartitionsRequest::default().encode(&mut out, version),
    };
    encoded.expect("encodes");
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

fuzz_target!(|data: &[u8]| {
    let [which, version, named, rest @ ..] = data else {
        return;
    };
    let (key, path, visible) = APIS[usize::from(*which) % APIS.len()];
    let message = schema::response(key).expect("a Kafka 4.4 API");
    let span = message.versions.hi - message.versions.lo + 1;
    let version = message.versions.lo + i16::from(*version) % span;
    let named = key == 3 && version > 0 && named % 2 == 1;
    let request = request(key, version, named);
    let filter = filter::for_request(&request)
        .expect("the request reads")
        .expect("a filtered API");

    let mut frame = ((rest.len() + 4) as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&9i32.to_be_bytes());
    frame.extend_from_slice(rest);
    let Ok(filter::Filtered {
        frame: Some(out),
        refused,
    }) = filter.apply(&frame, &policy(), "p")
    else {
        return;
    };
    let size = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
    assert_eq!(size as usize, out.len() - 4, "size prefix");
    let walked = fields::response(key, version, &out, &[path], usize::MAX)
        .expect("filtered answers read back");
    assert_eq!(walked.correlation_id, 9);
    if !named {
        for found in &walked.found {
            if let Value::Str(name) = found.value {
                assert!(name.starts_with(visible), "{name} was left in");
            } else {
                panic!("an entry without a name was left in");
            }
        }
        assert!(refused.is_empty(), "a listing refuses nothing: {refused:?}");
        assert_eq!(
            filter.apply(&out, &policy(), "p").expect("filters again"),
            filter::Filtered::default(),
            "idempotent"
        );
    }
});

//! The exchange state machine under a policy, with no sockets: requests are decided whole
//! before any byte goes on; refused ones are answered by the gateway, in their turn among the
//! broker's answers, and never reach the broker; answers that list topics reach the client
//! with only what it may see, and with the gateway's broker addresses; topics named by id are
//! decided by the names the gateway learned.

mod support;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_edge::edge::auth::config::{policy, PolicySection};
use kafka_edge::edge::auth::topic_ids::TopicIds;
use kafka_edge::edge::auth::verdict::Denial;
use kafka_edge::proxy::exchange::{Authorizer, Exchange, ExchangeError, Limits, Observer, Step};
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use proptest::prelude::*;
use support::conversation::{assert_no_internal, Book, GATEWAY_HOST};

const A_ID: [u8; 16] = [0xa; 16];
const B_ID: [u8; 16] = [0xb; 16];

/// `alice` reads, writes and describes `team-a.*` topics and groups; nothing else.
fn authorizer(principal: Option<&str>, topics: Arc<TopicIds>) -> Authorizer {
    let section: PolicySection = toml::from_str(
        r#"
        [[grants]]
        principals = ["alice"]
        operations = ["read", "write", "describe"]
        topics = ["team-a.*"]
        groups = ["team-a.*"]
        "#,
    )
    .unwrap();
    let mut problems = Vec::new();
    let policy = policy(section, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    Authorizer {
        policy: Arc::new(policy),
        principal: principal.map(str::to_owned),
        topics,
    }
}

fn exchange(principal: Option<&str>, topics: Arc<TopicIds>) -> Exchange {
    let limits = Limits {
        max_frame: 1 << 20,
        max_held: 1 << 20,
        max_in_flight: 16,
    };
    Exchange::new(limits, Instant::now()).with_authorizer(authorizer(principal, topics))
}

/// Counts what the exchange reports; keeps each denial as `api reason error answered`.
#[derive(Default)]
struct Seen {
    denials: RefCell<Vec<String>>,
}

impl Observer for Seen {
    fn request(&self, _: i16, _: usize) {}
    fn response(&self, _: i16, _: usize, _: Duration) {}
    fn rewrite(&self, _: i16, _: bool) {}
    fn denied(&self, api_key: i16, denial: &Denial<'_>, answered: bool) {
        self.denials.borrow_mut().push(format!(
            "{api_key} {} {} {answered}",
            denial.reason, denial.error
        ));
    }
}

fn encode<T: Encodable + HeaderVersion>(
    header: impl FnOnce(&mut BytesMut),
    body: &T,
    version: i16,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    header(&mut out);
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

fn request<T: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    encode(
        |out| {
            RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id)
                .with_client_id(Some(StrBytes::from_static_str("authz-test")))
                .encode(out, T::header_version(version))
                .unwrap()
        },
        body,
        version,
    )
}

fn answer<T: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    encode(
        |out| {
            ResponseHeader::default()
                .with_correlation_id(correlation_id)
                .encode(out, api.response_header_version(version))
                .unwrap()
        },
        body,
        version,
    )
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

fn produce(correlation_id: i32, acks: i16, topic: &str) -> Vec<u8> {
    let body = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from_static(b"records of the batch")))])]);
    request(ApiKey::Produce, 9, correlation_id, &body)
}

fn produce_answer(correlation_id: i32, topic: &str) -> Vec<u8> {
    let body = ProduceResponse::default().with_responses(vec![
        produce_response::TopicProduceResponse::default()
            .with_name(name(topic))
            .with_partition_responses(vec![
                produce_response::PartitionProduceResponse::default().with_base_offset(42)
            ]),
    ]);
    answer(ApiKey::Produce, 9, correlation_id, &body)
}

fn fetch(correlation_id: i32, id: [u8; 16]) -> Vec<u8> {
    let body = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic_id(uuid::Uuid::from_bytes(id))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(7)])]);
    request(ApiKey::Fetch, 17, correlation_id, &body)
}

/// What a conversation did: bytes to the broker and to the client, and the bytes of each
/// side not yet passed on (as a pump's buffer holds them).
#[derive(Default)]
struct Wire {
    to_broker: Vec<u8>,
    to_client: Vec<u8>,
    from_client: Vec<u8>,
    from_broker: Vec<u8>,
}

impl Wire {
    /// The client sends `bytes`; the exchange passes on what it can.
    fn client(&mut self, exchange: &mut Exchange, bytes: &[u8], seen: &Seen) {
        self.try_client(exchange, bytes, seen).unwrap();
    }

    fn try_client(
        &mut self,
        exchange: &mut Exchange,
        bytes: &[u8],
        seen: &Seen,
    ) -> Result<(), ExchangeError> {
        self.from_client.extend_from_slice(bytes);
        let input = &mut self.from_client;
        loop {
            match exchange.on_client(input, Instant::now(), seen)? {
                Step::Forward(n) => {
                    self.to_broker.extend(input.drain(..n));
                }
                Step::Replace { consumed, with } => {
                    self.to_broker.extend_from_slice(&with);
                    input.drain(..consumed);
                }
                Step::Wait { .. } | Step::Full => return Ok(()),
                step => panic!("unexpected request step {step:?}"),
            }
        }
    }

    /// The broker sends `bytes`; the exchange passes on what it can, and any answers of the
    /// gateway's own that are due.
    fn broker(&mut self, exchange: &mut Exchange, bytes: &[u8], seen: &Seen) {
        let book = Book::new();
        self.from_broker.extend_from_slice(bytes);
        let input = &mut self.from_broker;
        loop {
            match exchange.on_broker(input, Instant::now(), seen).unwrap() {
                Step::Forward(n) => {
                    self.to_client.extend(input.drain(..n));
                }
                Step::Replace { consumed, with } => {
                    self.to_client.extend_from_slice(&with);
                    input.drain(..consumed);
                }
                Step::Rewrite { len } => {
                    let held = Bytes::from(input.drain(..len).collect::<Vec<u8>>());
                    let out = exchange
                        .rewrite_held(held, Instant::now(), &book, seen)
                        .unwrap();
                    self.to_client.extend_from_slice(&out);
                }
                Step::Wait { .. } => return,
                step => panic!("unexpected answer step {step:?}"),
            }
        }
    }
}

/// The frames in `bytes`, each with its correlation id.
fn frames(mut bytes: &[u8]) -> Vec<(i32, Bytes)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = 4 + i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let frame = Bytes::copy_from_slice(&bytes[..len]);
        out.push((i32::from_be_bytes(frame[4..8].try_into().unwrap()), frame));
        bytes = &bytes[len..];
    }
    out
}

/// Request frames as the broker got them: each with the gateway's id at bytes 8..12.
fn gateway_id(request: &[u8]) -> i32 {
    i32::from_be_bytes(request[8..12].try_into().unwrap())
}

fn decode<T: Decodable>(api: ApiKey, version: i16, frame: &Bytes) -> T {
    let mut body = frame.slice(4..);
    ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
    let decoded = T::decode(&mut body, version).unwrap();
    assert!(body.is_empty(), "bytes after the {api:?} answer");
    decoded
}

#[test]
fn an_allowed_request_goes_on_byte_for_byte_but_the_id() {
    let seen = Seen::default();
    let mut ex = exchange(Some("alice"), Arc::default());
    let mut wire = Wire::default();
    let sent = produce(5, -1, "team-a.orders");
    // In pieces: nothing goes on until the request is whole.
    wire.client(&mut ex, &sent[..20], &seen);
    assert!(
        wire.to_broker.is_empty(),
        "part of an undecided request went on"
    );
    wire.client(&mut ex, &sent[20..sent.len() - 1], &seen);
    assert!(
        wire.to_broker.is_empty(),
        "part of an undecided request went on"
    );
    wire.client(&mut ex, &sent[sent.len() - 1..], &seen);
    assert!(wire.from_client.is_empty());
    assert_eq!(wire.to_broker.len(), sent.len());
    assert_eq!(wire.to_broker[..8], sent[..8]);
    assert_eq!(wire.to_broker[12..], sent[12..]);
    assert_eq!(gateway_id(&wire.to_broker), 0, "the gateway's id");
    wire.broker(&mut ex, &produce_answer(0, "team-a.orders"), &seen);
    let answers = frames(&wire.to_client);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, 5, "the client's id is back");
    let r: ProduceResponse = decode(ApiKey::Produce, 9, &answers[0].1);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 42);
    assert!(seen.denials.borrow().is_empty());
}

#[test]
fn a_refused_request_is_answered_in_its_turn_and_never_forwarded() {
    let seen = Seen::default();
    let mut ex = exchange(Some("alice"), Arc::default());
    let mut wire = Wire::default();
    // Pipelined: allowed, refused, allowed, refused (a group of another team).
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("team-b.readers")))
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    let mut sent = produce(1, -1, "team-a.orders");
    sent.extend(produce(2, -1, "team-b.orders"));
    sent.extend(produce(3, -1, "team-a.orders"));
    sent.extend(request(ApiKey::JoinGroup, 9, 4, &join));
    wire.client(&mut ex, &sent, &seen);
    // Only the allowed two reached the broker, as ids 0 and 1.
    let forwarded = frames(&wire.to_broker);
    assert_eq!(forwarded.len(), 2);
    assert_eq!(
        forwarded
            .iter()
            .map(|(_, f)| gateway_id(f))
            .collect::<Vec<_>>(),
        [0, 1]
    );
    for (_, frame) in &forwarded {
        let mut body = frame.slice(4..);
        RequestHeader::decode(&mut body, ApiKey::Produce.request_header_version(9)).unwrap();
        let r = ProduceRequest::decode(&mut body, 9).unwrap();
        assert_eq!(r.topic_data[0].name.as_str(), "team-a.orders");
    }
    // The refusal of id 2 waits for the answer to id 1; the one of id 4 for id 3's.
    assert!(wire.to_client.is_empty(), "a refusal overtook an answer");
    wire.broker(&mut ex, &produce_answer(0, "team-a.orders"), &seen);
    let answers = frames(&wire.to_client);
    assert_eq!(
        answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2]
    );
    wire.broker(&mut ex, &produce_answer(1, "team-a.orders"), &seen);
    let answers = frames(&wire.to_client);
    assert_eq!(
        answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let refused: ProduceResponse = decode(ApiKey::Produce, 9, &answers[1].1);
    assert_eq!(refused.responses[0].name.as_str(), "team-b.orders");
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code, 29,
        "TOPIC_AUTHORIZATION_FAILED"
    );
    let joined: JoinGroupResponse = decode(ApiKey::JoinGroup, 9, &answers[3].1);
    assert_eq!(joined.error_code, 30, "GROUP_AUTHORIZATION_FAILED");
    assert_eq!(
        *seen.denials.borrow(),
        [
            "0 resource_not_granted 29 true",
            "11 resource_not_granted 30 true"
        ]
    );
    assert!(!ex.broker_owes(), "nothing more is owed");
}

#[test]
fn a_refused_acks0_produce_closes_the_connection() {
    let seen = Seen::default();
    let mut ex = exchange(Some("alice"), Arc::default());
    let mut wire = Wire::default();
    let mut sent = produce(1, 0, "team-a.orders");
    sent.extend(produce(2, 0, "team-b.orders"));
    let err = wire.try_client(&mut ex, &sent, &seen).unwrap_err();
    assert!(
        matches!(err, ExchangeError::Denied { api_key: 0, .. }),
        "{err}"
    );
    assert_eq!(frames(&wire.to_broker).len(), 1, "the allowed one went on");
    assert_eq!(*seen.denials.borrow(), ["0 resource_not_granted 29 false"]);
}

#[test]
fn before_a_login_only_the_login_requests_pass() {
    let seen = Seen::default();
    let mut ex = exchange(None, Arc::default());
    let mut wire = Wire::default();
    let versions = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    wire.client(&mut ex, &versions, &seen);
    assert_eq!(frames(&wire.to_broker).len(), 1);
    let metadata = request(ApiKey::Metadata, 12, 2, &MetadataRequest::default());
    let err = wire.try_client(&mut ex, &metadata, &seen).unwrap_err();
    assert!(
        matches!(err, ExchangeError::NotLoggedIn { api_key: 3 }),
        "{err}"
    );
    assert_eq!(
        frames(&wire.to_broker).len(),
        1,
        "nothing more reached the broker"
    );
}

/// A Metadata v12 answer naming two brokers at internal addresses and three topics.
fn metadata_answer(correlation_id: i32) -> Vec<u8> {
    let topic = |n: &str, id: [u8; 16]| {
        MetadataResponseTopic::default()
            .with_name(Some(name(n)))
            .with_topic_id(uuid::Uuid::from_bytes(id))
    };
    let body = MetadataResponse::default()
        .with_brokers(
            [(1, "10.99.0.1"), (2, "10.99.0.2")]
                .into_iter()
                .map(|(id, host)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_static_str(host))
                        .with_port(9092)
                })
                .collect(),
        )
        .with_topics(vec![
            topic("team-b.payments", B_ID),
            topic("team-a.orders", A_ID),
            topic("team-b.secrets", [0xc; 16]),
        ]);
    answer(ApiKey::Metadata, 12, correlation_id, &body)
}

#[test]
fn metadata_lists_only_what_the_principal_may_describe_and_teaches_topic_ids() {
    let seen = Seen::default();
    let topics = Arc::new(TopicIds::default());
    let mut ex = exchange(Some("alice"), topics.clone());
    let mut wire = Wire::default();
    // Before any Metadata, an id is unknown: refused with UNKNOWN_TOPIC_ID, never forwarded.
    wire.client(&mut ex, &fetch(1, A_ID), &seen);
    assert!(wire.to_broker.is_empty());
    wire.broker(&mut ex, &[], &seen);
    let unknown: FetchResponse = decode(ApiKey::Fetch, 17, &frames(&wire.to_client)[0].1);
    assert_eq!(unknown.error_code, 0);
    assert_eq!(unknown.responses[0].partitions[0].error_code, 100);
    assert_eq!(*seen.denials.borrow(), ["1 unmapped_topic_id 100 true"]);

    let mut wire = Wire::default();
    let all = MetadataRequest::default().with_topics(None);
    wire.client(&mut ex, &request(ApiKey::Metadata, 12, 2, &all), &seen);
    assert_eq!(frames(&wire.to_broker).len(), 1);
    // In pieces, as the broker's bytes come: nothing goes out until the answer is whole.
    let sent = metadata_answer(0);
    wire.broker(&mut ex, &sent[..40], &seen);
    assert!(
        wire.to_client.is_empty(),
        "part of an unfiltered answer went out"
    );
    wire.broker(&mut ex, &sent[40..], &seen);
    let answers = frames(&wire.to_client);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, 2);
    let r: MetadataResponse = decode(ApiKey::Metadata, 12, &answers[0].1);
    let listed: Vec<&str> = r
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(listed, ["team-a.orders"]);
    assert_eq!(r.brokers.len(), 2);
    assert!(r.brokers.iter().all(|b| b.host.as_str() == GATEWAY_HOST));
    assert_no_internal(&wire.to_client);
    let raw = String::from_utf8_lossy(&wire.to_client);
    assert!(!raw.contains("team-b"), "a hidden name went out: {raw}");
    // Every id of the answer was learned, the hidden topics' too: ids are facts of the
    // cluster, and requests by id are decided by name.
    assert_eq!(topics.len(), 3);

    let mut wire = Wire::default();
    wire.client(&mut ex, &fetch(3, A_ID), &seen);
    assert_eq!(
        frames(&wire.to_broker).len(),
        1,
        "a mapped, allowed id goes on"
    );
    wire.client(&mut ex, &fetch(4, B_ID), &seen);
    assert_eq!(
        frames(&wire.to_broker).len(),
        1,
        "another team's id does not"
    );
    let fetch_answer = FetchResponse::default().with_responses(vec![
        fetch_response::FetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_bytes(A_ID))
            .with_partitions(vec![fetch_response::PartitionData::default()]),
    ]);
    wire.broker(&mut ex, &answer(ApiKey::Fetch, 17, 1, &fetch_answer), &seen);
    let answers = frames(&wire.to_client);
    assert_eq!(
        answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [3, 4]
    );
    let refused: FetchResponse = decode(ApiKey::Fetch, 17, &answers[1].1);
    assert_eq!(refused.responses[0].partitions[0].error_code, 29);
    assert_eq!(
        seen.denials.borrow().last().map(String::as_str),
        Some("1 resource_not_granted 29 true")
    );
}

#[test]
fn a_metadata_request_naming_hidden_topics_gets_them_marked_refused() {
    let seen = Seen::default();
    let mut ex = exchange(Some("alice"), Arc::default());
    let mut wire = Wire::default();
    let named = MetadataRequest::default()
        .with_topics(Some(
            ["team-a.orders", "team-b.payments"]
                .into_iter()
                .map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(true);
    let sent = request(ApiKey::Metadata, 12, 9, &named);
    wire.client(&mut ex, &sent, &seen);
    // Forwarded with auto-creation off: alice may not create topics.
    let forwarded = frames(&wire.to_broker);
    let mut body = forwarded[0].1.slice(4..);
    RequestHeader::decode(&mut body, 2).unwrap();
    let r = MetadataRequest::decode(&mut body, 12).unwrap();
    assert!(!r.allow_auto_topic_creation);
    assert_eq!(r.topics, named.topics);
    wire.broker(&mut ex, &metadata_answer(0), &seen);
    let r: MetadataResponse = decode(ApiKey::Metadata, 12, &frames(&wire.to_client)[0].1);
    let listed: Vec<(&str, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().as_str(), t.error_code))
        .collect();
    assert_eq!(
        listed,
        [
            ("team-b.payments", 29),
            ("team-a.orders", 0),
            ("team-b.secrets", 29)
        ]
    );
    assert!(r.topics[0].partitions.is_empty());
    assert_eq!(
        r.topics[0].topic_id,
        uuid::Uuid::nil(),
        "no id of a hidden topic"
    );
    assert_no_internal(&wire.to_client);
    // Each marked topic is a refusal the audit log and the denial metric see.
    assert_eq!(
        *seen.denials.borrow(),
        [
            "3 resource_not_granted 29 true",
            "3 resource_not_granted 29 true"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any pipeline of allowed and refused requests, cut anywhere on both sides: the broker
    /// gets exactly the allowed ones, and the client every answer, once, in order, with its
    /// own correlation id, the refused ones carrying the error.
    #[test]
    fn refusals_keep_their_place_in_any_pipeline(
        requests in prop::collection::vec((any::<bool>(), any::<i32>()), 1..40),
        client_cuts in prop::collection::vec(1usize..300, 1..8),
        broker_cuts in prop::collection::vec(1usize..300, 1..8),
    ) {
        let seen = Seen::default();
        let mut ex = exchange(Some("alice"), Arc::default());
        let mut wire = Wire::default();
        let stream: Vec<u8> = requests
            .iter()
            .flat_map(|(allowed, id)| {
                produce(*id, -1, if *allowed { "team-a.orders" } else { "team-b.orders" })
            })
            .collect();
        let (mut sent, mut answered, mut broker_sent) = (0, 0, 0);
        let mut broker_stream = Vec::new();
        for turn in 0.. {
            prop_assert!(turn < 100_000, "stuck");
            let n = client_cuts[turn % client_cuts.len()].min(stream.len() - sent);
            wire.client(&mut ex, &stream[sent..sent + n], &seen);
            sent += n;
            // The broker answers each whole request it has, by the gateway's id.
            let forwarded = frames(&wire.to_broker);
            for (_, request) in &forwarded[answered..] {
                broker_stream.extend(produce_answer(gateway_id(request), "team-a.orders"));
            }
            answered = forwarded.len();
            let n = broker_cuts[turn % broker_cuts.len()].min(broker_stream.len() - broker_sent);
            wire.broker(&mut ex, &broker_stream[broker_sent..broker_sent + n], &seen);
            broker_sent += n;
            if sent == stream.len() && broker_sent == broker_stream.len() && !ex.broker_owes()
                && !ex.local_answer_due() && wire.from_client.is_empty()
            {
                break;
            }
        }
        let forwarded = frames(&wire.to_broker);
        prop_assert_eq!(forwarded.len(), requests.iter().filter(|(a, _)| *a).count());
        for (_, frame) in &forwarded {
            let mut body = frame.slice(4..);
            RequestHeader::decode(&mut body, ApiKey::Produce.request_header_version(9)).unwrap();
            let r = ProduceRequest::decode(&mut body, 9).unwrap();
            prop_assert_eq!(r.topic_data[0].name.as_str(), "team-a.orders");
        }
        let answers = frames(&wire.to_client);
        prop_assert_eq!(answers.len(), requests.len());
        for ((allowed, id), (got, frame)) in requests.iter().zip(&answers) {
            prop_assert_eq!(*id, *got);
            let r: ProduceResponse = decode(ApiKey::Produce, 9, frame);
            let partition = &r.responses[0].partition_responses[0];
            if *allowed {
                prop_assert_eq!((partition.error_code, partition.base_offset), (0, 42));
            } else {
                prop_assert_eq!(partition.error_code, 29);
            }
        }
    }
}

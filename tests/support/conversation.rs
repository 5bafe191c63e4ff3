//! Whole conversations through the exchange state machine, with no sockets: a scripted client,
//! a simulated broker, and the steps in between, cut and interleaved as a script says. Shared
//! by the property tests (`tests/properties.rs`) and the conversation fuzz target
//! (`fuzz/fuzz_targets/conversation.rs`, which includes this file by path), so both check the
//! same promises:
//!
//! - every answer the client waits for reaches it exactly once, in order, with its own
//!   correlation id, and nothing else reaches it;
//! - no answer that names a broker reaches the client unrewritten: no internal address in any
//!   byte it receives;
//! - the gateway learns only brokers the cluster has, at the addresses it has them;
//! - the broker gets every forwarded request byte for byte, bar the correlation id.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_edge::cluster::route::RouteError;
use kafka_edge::proxy::exchange::{Exchange, Limits, Observer, Step};
use kafka_edge::rewrite::{AddressBook, Advertised};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

/// What the simulated cluster has: node id, internal host, port.
pub const CLUSTER: [(i32, &str, i32); 3] = [
    (1, "10.99.0.1", 9092),
    (2, "10.99.0.2", 9092),
    (3, "10.99.0.3", 9093),
];
/// What no byte the client receives may contain.
pub const INTERNAL: &str = "10.99.0.";
pub const GATEWAY_HOST: &str = "gw.sim";

/// One request of the client's script.
#[derive(Debug, Clone)]
pub enum Request {
    Metadata {
        version: i16,
    },
    /// At `version` 9 to 13; from 10 the broker's answer names the partition's new leader
    /// (KIP-951) at an internal address.
    Produce {
        version: i16,
        acks: i16,
        topic: String,
    },
    /// ApiVersions at a version the gateway offers (3) or one too new (answered locally).
    ApiVersions {
        version: i16,
    },
    /// A Fetch whose answer carries this many record bytes: streamed, never held. From
    /// `version` 16 the answer ends with a new leader's internal address (KIP-951).
    Fetch {
        version: i16,
        record_bytes: usize,
    },
    /// A key the gateway does not know: passed through both ways.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Script {
    /// The client's requests, each with the correlation id it chooses (repeats welcome).
    pub requests: Vec<(Request, i32)>,
    /// Sizes the client's bytes arrive in, cycled (0 counts as 1).
    pub client_cuts: Vec<usize>,
    /// Sizes the broker's bytes arrive in, cycled.
    pub broker_cuts: Vec<usize>,
    /// Who moves next, cycled: true the client side, false the broker side.
    pub turns: Vec<bool>,
    /// Whether the broker answers acks=0 Produce (librdkafka's mock and tansu do).
    pub broker_answers_acks0: bool,
    /// Whether the client shuts down its sending side after its last request.
    pub half_close: bool,
    pub max_in_flight: usize,
    /// Whether clients log in at the gateway: their ApiVersions requests are then answered
    /// by the edge (here, a turn after they arrive), in order among the broker's answers.
    pub edge_login: bool,
}

/// The gateway's address for every node, and what it learned.
pub struct Book {
    learned: RefCell<BTreeSet<(i32, String, i32)>>,
}

impl Book {
    pub fn new() -> Book {
        Book {
            learned: RefCell::default(),
        }
    }
}

impl AddressBook for Book {
    fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError> {
        self.learned
            .borrow_mut()
            .insert((node_id, host.to_owned(), port));
        self.planned(node_id)
    }

    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
        if !(0..=1000).contains(&node_id) {
            return Err(RouteError::Unmapped { node_id });
        }
        Ok(Advertised {
            host: StrBytes::from_static_str(GATEWAY_HOST),
            port: 19000 + node_id as u16,
        })
    }
}

pub struct Quiet;

impl Observer for Quiet {
    fn request(&self, _: i16, _: usize) {}
    fn response(&self, _: i16, _: usize, _: Duration) {}
    fn rewrite(&self, _: i16, _: bool) {}
}

/// How a conversation ended, for the caller to judge.
#[derive(Debug)]
pub struct Outcome {
    /// Every byte the client received.
    pub to_client: Vec<u8>,
    /// The exchange stopped the conversation, if it did.
    pub error: Option<String>,
}

fn encode_request<T: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sim")))
        .encode(&mut out, T::header_version(version))
        .expect("encodable request header");
    body.encode(&mut out, version).expect("encodable request");
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

/// A frame of just a request header (v1, null client id): enough for keys and versions no
/// library encodes.
fn bare_request(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(10);
    out.put_i16(api_key);
    out.put_i16(version);
    out.put_i32(correlation_id);
    out.put_i16(-1);
    out.to_vec()
}

/// ApiVersions versions the gateway offers; above them it answers itself.
fn api_versions_offered(version: i16) -> bool {
    kafka_edge::rewrite::api_versions::limit(ApiKey::ApiVersions as i16).allows(version)
}

impl Request {
    fn encode(&self, correlation_id: i32) -> Vec<u8> {
        match self {
            Request::Metadata { version } => encode_request(
                ApiKey::Metadata,
                *version,
                correlation_id,
                &MetadataRequest::default().with_topics(None),
            ),
            Request::Produce {
                version,
                acks,
                topic,
            } => {
                let body = ProduceRequest::default()
                    .with_acks(*acks)
                    .with_timeout_ms(1000)
                    .with_topic_data(vec![produce_request::TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partition_data(vec![
                            produce_request::PartitionProduceData::default().with_index(0),
                        ])]);
                encode_request(ApiKey::Produce, *version, correlation_id, &body)
            }
            Request::ApiVersions { version } if api_versions_offered(*version) => encode_request(
                ApiKey::ApiVersions,
                *version,
                correlation_id,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("sim"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            ),
            Request::ApiVersions { version } => {
                bare_request(ApiKey::ApiVersions as i16, *version, correlation_id)
            }
            Request::Fetch { version, .. } => encode_request(
                ApiKey::Fetch,
                *version,
                correlation_id,
                &FetchRequest::default(),
            ),
            Request::Unknown => bare_request(31000, 0, correlation_id),
        }
    }

    /// Whether the client waits for an answer.
    fn answered(&self) -> bool {
        !matches!(self, Request::Produce { acks: 0, .. })
    }

    /// Whether the broker sees it (the gateway answers too-new ApiVersions itself, and
    /// every ApiVersions when clients log in at the edge).
    fn forwarded(&self, edge_login: bool) -> bool {
        match self {
            Request::ApiVersions { version } => !edge_login && api_versions_offered(*version),
            _ => true,
        }
    }
}

fn answer_frame<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let mut out = BytesMut::new();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, header_version)
        .expect("encodable response header");
    if body.encode(&mut out, version).is_err() {
        // A version kafka-protocol does not encode (a fuzzed client's Produce v2, say): an
        // answer of just the header, so the conversation goes on in order.
        out.truncate(4);
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut out, header_version)
            .expect("encodable response header");
    }
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}

/// Leader hints naming every broker of the cluster at its internal address, as a broker's
/// KIP-951 answer to a request sent to a partition's old leader does (versions without the
/// field drop it when encoding).
fn hints<E>(new: fn() -> E, fill: fn(E, i32, StrBytes, i32) -> E) -> Vec<E> {
    CLUSTER
        .iter()
        .map(|(node, host, port)| fill(new(), *node, StrBytes::from_static_str(host), *port))
        .collect()
}

/// The simulated broker's answer to one whole request frame it received, if it answers.
fn broker_answer(frame: &[u8], script: &Script, fetch_bytes: usize) -> Option<Vec<u8>> {
    let api_key = i16::from_be_bytes([frame[4], frame[5]]);
    let version = i16::from_be_bytes([frame[6], frame[7]]);
    let id = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
    let Ok(api) = ApiKey::try_from(api_key) else {
        let mut out = BytesMut::new();
        out.put_i32(4);
        out.put_i32(id);
        return Some(out.to_vec());
    };
    Some(match api {
        ApiKey::Metadata => {
            let brokers = CLUSTER
                .iter()
                .map(|(node, host, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(*node))
                        .with_host(StrBytes::from_static_str(host))
                        .with_port(*port)
                })
                .collect();
            answer_frame(
                api,
                version,
                id,
                &MetadataResponse::default().with_brokers(brokers),
            )
        }
        ApiKey::Produce => {
            // acks as the gateway reads it: bounds-checked, whatever the bytes.
            let acks = kafka_edge::proxy::frame::peek_request(frame, usize::MAX)
                .ok()
                .flatten()?
                .acks;
            if acks == Some(0) && !script.broker_answers_acks0 {
                return None;
            }
            // Only the simulator's own requests are decoded to echo their topics: kafka-protocol
            // allocates from the counts a request claims, which a fuzzed client's bytes make
            // huge (this very harness aborted on 412 GB once).
            let request = if script.requests.is_empty() {
                ProduceRequest::default()
            } else {
                let mut body = Bytes::copy_from_slice(&frame[4..]);
                RequestHeader::decode(&mut body, api.request_header_version(version)).ok()?;
                ProduceRequest::decode(&mut body, version).ok()?
            };
            // The topic comes back in the answer, as a broker's does (by id from v13).
            let topics = request
                .topic_data
                .iter()
                .map(|t| {
                    produce_response::TopicProduceResponse::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                })
                .collect();
            answer_frame(
                api,
                version,
                id,
                &ProduceResponse::default()
                    .with_responses(topics)
                    .with_node_endpoints(hints(
                        produce_response::NodeEndpoint::default,
                        |e, n, h, p| e.with_node_id(BrokerId(n)).with_host(h).with_port(p),
                    )),
            )
        }
        // v5's answer is laid out as v4's, the last one kafka-protocol encodes.
        ApiKey::ApiVersions => answer_frame(
            api,
            version.min(4),
            id,
            &ApiVersionsResponse::default().with_api_keys(vec![
                api_versions_response::ApiVersion::default()
                    .with_api_key(ApiKey::Metadata as i16)
                    .with_max_version(12),
            ]),
        ),
        ApiKey::Fetch => {
            let records = Bytes::from(
                (0..fetch_bytes)
                    .map(|i| (i % 251) as u8)
                    .collect::<Vec<u8>>(),
            );
            answer_frame(
                api,
                version,
                id,
                &FetchResponse::default()
                    .with_responses(vec![fetch_response::FetchableTopicResponse::default()
                        .with_partitions(vec![
                            fetch_response::PartitionData::default().with_records(Some(records))
                        ])])
                    .with_node_endpoints(hints(
                        fetch_response::NodeEndpoint::default,
                        |e, n, h, p| e.with_node_id(BrokerId(n)).with_host(h).with_port(p),
                    )),
            )
        }
        // Anything else a real client sends: an answer of just the header, so the
        // conversation goes on in order (a rewritten API's walk refuses it, and stops it).
        _ => {
            let mut out = BytesMut::new();
            let header_version = api.response_header_version(version);
            out.put_i32(if header_version >= 1 { 5 } else { 4 });
            out.put_i32(id);
            if header_version >= 1 {
                out.put_u8(0);
            }
            out.to_vec()
        }
    })
}

/// Runs a script to its end and checks every promise; panics on a broken one.
pub fn run(script: &Script) -> Outcome {
    let book = Book::new();
    let now = Instant::now();
    let limits = Limits {
        max_frame: 1 << 24,
        max_held: 1 << 22,
        max_in_flight: script.max_in_flight.max(1),
    };
    let mut exchange = Exchange::new(limits, now);
    if script.edge_login {
        exchange = exchange.with_edge_login();
    }
    // Requests the edge holds, answered on the client's next turn.
    let mut intercepted: Vec<Vec<u8>> = Vec::new();

    // The client's whole stream, and what it must get back.
    let mut client_stream = Vec::new();
    let mut forwarded = Vec::new();
    let mut fetch_sizes = Vec::new();
    for (request, id) in &script.requests {
        let bytes = request.encode(*id);
        client_stream.extend_from_slice(&bytes);
        if request.forwarded(script.edge_login) {
            forwarded.extend_from_slice(&bytes);
        }
        if let Request::Fetch { record_bytes, .. } = request {
            fetch_sizes.push(*record_bytes);
        }
    }
    let expected: Vec<_> = script
        .requests
        .iter()
        .filter(|(request, _)| request.answered())
        .collect();

    let mut client_sent = 0; // bytes of client_stream handed to the gateway
    let mut client_buf: Vec<u8> = Vec::new();
    let mut to_broker: Vec<u8> = Vec::new();
    let mut broker_read = 0; // bytes of to_broker the broker has consumed
    let mut broker_stream: Vec<u8> = Vec::new();
    let mut broker_sent = 0;
    let mut broker_buf: Vec<u8> = Vec::new();
    let mut to_client: Vec<u8> = Vec::new();
    let mut fetches_answered = 0;
    let mut closed = false;

    let cut =
        |cuts: &[usize], i: usize| cuts.get(i % cuts.len().max(1)).copied().unwrap_or(7).max(1);
    let mut error = None;
    let mut turn = 0;
    let mut stuck = false;
    while error.is_none() && !stuck {
        let first = script
            .turns
            .get(turn % script.turns.len().max(1))
            .copied()
            .unwrap_or(true);
        turn += 1;
        // The scripted side moves first; the other only when the first could not.
        let mut moved = false;
        for client_turn in [first, !first] {
            if moved || error.is_some() {
                break;
            }
            if client_turn {
                for request in intercepted.drain(..) {
                    exchange.answer_intercepted(edge_answer(&request));
                    moved = true;
                }
                // The client sends its next piece, and the gateway passes what it can.
                if client_sent < client_stream.len() {
                    let n = cut(&script.client_cuts, turn).min(client_stream.len() - client_sent);
                    client_buf.extend_from_slice(&client_stream[client_sent..client_sent + n]);
                    client_sent += n;
                    moved = true;
                } else if script.half_close
                    && !closed
                    && exchange.at_request_boundary()
                    && client_buf.is_empty()
                {
                    exchange.close_requests();
                    closed = true;
                    moved = true;
                }
                loop {
                    match exchange.on_client(&mut client_buf, now, &Quiet) {
                        Ok(Step::Forward(n)) => {
                            to_broker.extend_from_slice(&client_buf[..n]);
                            client_buf.drain(..n);
                            moved = true;
                        }
                        Ok(Step::Replace { consumed, with }) => {
                            to_broker.extend_from_slice(&with);
                            client_buf.drain(..consumed);
                            moved = true;
                        }
                        Ok(Step::Intercept { len }) => {
                            intercepted.push(client_buf.drain(..len).collect());
                            moved = true;
                        }
                        Ok(Step::Wait { .. } | Step::Full) => break,
                        Ok(Step::Rewrite { .. } | Step::Pause) => {
                            panic!("a request step that is not one")
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
            } else {
                // The broker answers every whole request it has, then sends a piece.
                while to_broker.len() - broker_read >= 4 {
                    let size = i32::from_be_bytes(
                        to_broker[broker_read..broker_read + 4].try_into().unwrap(),
                    ) as usize;
                    if to_broker.len() - broker_read < 4 + size {
                        break;
                    }
                    let frame = to_broker[broker_read..broker_read + 4 + size].to_vec();
                    broker_read += 4 + size;
                    let is_fetch = i16::from_be_bytes([frame[4], frame[5]]) == ApiKey::Fetch as i16;
                    let fetch_bytes = if is_fetch {
                        let n = fetch_sizes.get(fetches_answered).copied().unwrap_or(0);
                        fetches_answered += 1;
                        n
                    } else {
                        0
                    };
                    if let Some(answer) = broker_answer(&frame, script, fetch_bytes) {
                        broker_stream.extend_from_slice(&answer);
                    }
                    moved = true;
                }
                if broker_sent < broker_stream.len() {
                    let n = cut(&script.broker_cuts, turn).min(broker_stream.len() - broker_sent);
                    broker_buf.extend_from_slice(&broker_stream[broker_sent..broker_sent + n]);
                    broker_sent += n;
                    moved = true;
                }
                loop {
                    match exchange.on_broker(&mut broker_buf, now, &Quiet) {
                        Ok(Step::Forward(n)) => {
                            to_client.extend_from_slice(&broker_buf[..n]);
                            broker_buf.drain(..n);
                            moved = true;
                        }
                        Ok(Step::Replace { consumed, with }) => {
                            to_client.extend_from_slice(&with);
                            broker_buf.drain(..consumed);
                            moved = true;
                        }
                        Ok(Step::Rewrite { len }) => {
                            let held = Bytes::copy_from_slice(&broker_buf[..len]);
                            broker_buf.drain(..len);
                            match exchange.rewrite_held(held, now, &book, &Quiet) {
                                Ok(out) => to_client.extend_from_slice(&out),
                                Err(e) => {
                                    error = Some(e.to_string());
                                    break;
                                }
                            }
                            moved = true;
                        }
                        Ok(Step::Wait { .. } | Step::Pause) => break,
                        Ok(Step::Full | Step::Intercept { .. }) => {
                            panic!("an answer step that is not one")
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
        }
        stuck = !moved;
    }

    if let Some(error) = error {
        return Outcome {
            to_client,
            error: Some(error),
        };
    }

    // Everything the client sent reached the broker, bar the ids and local answers.
    assert_eq!(
        client_sent,
        client_stream.len(),
        "the client could not send everything"
    );
    assert!(client_buf.is_empty(), "client bytes left unforwarded");
    assert!(broker_buf.is_empty(), "broker bytes left undelivered");
    check_forwarded(&forwarded, &to_broker);

    // The client got exactly the answers it waits for, in order, with its ids.
    let mut at = 0;
    for (request, id) in &expected {
        assert!(
            to_client.len() >= at + 8,
            "answer to id {id} ({request:?}) missing"
        );
        let size = i32::from_be_bytes(to_client[at..at + 4].try_into().unwrap()) as usize;
        let frame = Bytes::copy_from_slice(&to_client[at..at + 4 + size]);
        at += 4 + size;
        assert_eq!(
            &frame[4..8],
            &id.to_be_bytes(),
            "answer to {request:?} has the wrong id"
        );
        check_answer(&frame, request);
    }
    assert_eq!(
        at,
        to_client.len(),
        "the client received bytes nobody asked for"
    );
    assert_no_internal(&to_client);

    // Only the cluster's own brokers were learned.
    for learned in book.learned.borrow().iter() {
        assert!(
            CLUSTER
                .iter()
                .any(|(n, h, p)| (*n, h.to_string(), *p) == *learned),
            "learned {learned:?}, which the cluster never reported"
        );
    }
    if script.half_close {
        assert!(
            exchange.finished(),
            "a closed conversation that never finished"
        );
    }
    Outcome {
        to_client,
        error: None,
    }
}

/// Every internal address is absent from what the client received.
pub fn assert_no_internal(to_client: &[u8]) {
    assert!(
        !to_client
            .windows(INTERNAL.len())
            .any(|w| w == INTERNAL.as_bytes()),
        "an internal address reached the client"
    );
}

/// The broker received the forwarded requests in order and byte for byte, apart from the
/// correlation id, which the gateway chose afresh for each.
fn check_forwarded(forwarded: &[u8], to_broker: &[u8]) {
    let frames = |mut bytes: &[u8]| {
        let mut out = Vec::new();
        while bytes.len() >= 4 {
            let len = 4 + i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            out.push(bytes[..len].to_vec());
            bytes = &bytes[len..];
        }
        out
    };
    let sent = frames(forwarded);
    let got = frames(to_broker);
    assert_eq!(
        sent.len(),
        got.len(),
        "requests lost or invented on the way"
    );
    let mut ids = BTreeSet::new();
    for (s, g) in sent.iter().zip(&got) {
        assert_eq!(s[..8], g[..8], "request head changed");
        assert_eq!(s[12..], g[12..], "request body changed");
        assert!(ids.insert(g[8..12].to_vec()), "the gateway reused an id");
    }
}

/// The answer decodes as what the request asked for, and says what it should.
fn check_answer(frame: &Bytes, request: &Request) {
    let mut body = frame.slice(4..);
    let (api, version) = match request {
        // A bare header in both directions: checked by its id alone.
        Request::Unknown => return,
        Request::Metadata { version } => (ApiKey::Metadata, *version),
        Request::Produce { version, .. } => (ApiKey::Produce, *version),
        Request::ApiVersions { .. } => (ApiKey::ApiVersions, 0),
        Request::Fetch { version, .. } => (ApiKey::Fetch, *version),
    };
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    ResponseHeader::decode(&mut body, header_version).expect("answer header decodes");
    match request {
        Request::Metadata { .. } => {
            let m = MetadataResponse::decode(&mut body, version).expect("Metadata decodes");
            assert_eq!(m.brokers.len(), CLUSTER.len());
            for b in &m.brokers {
                assert_eq!(b.host.as_str(), GATEWAY_HOST);
                assert_eq!(b.port, 19000 + b.node_id.0);
            }
        }
        Request::Produce { topic, .. } => {
            let p = ProduceResponse::decode(&mut body, version).expect("Produce decodes");
            assert_eq!(p.responses.len(), 1);
            if version < 13 {
                assert_eq!(p.responses[0].name.0.as_str(), topic);
            }
            assert_hints(
                p.node_endpoints
                    .iter()
                    .map(|e| (e.node_id.0, e.host.as_str(), e.port)),
                version >= 10,
            );
        }
        Request::ApiVersions { version } => {
            let refused = !api_versions_offered(*version);
            // A refusal is in the v0 layout, whatever was asked; an answer at the version asked.
            let layout = if refused { 0 } else { *version };
            let a = ApiVersionsResponse::decode(&mut body, layout).expect("ApiVersions decodes");
            assert_eq!(
                a.error_code == 35,
                refused,
                "UNSUPPORTED_VERSION exactly when too new"
            );
        }
        Request::Fetch { record_bytes, .. } => {
            let f = FetchResponse::decode(&mut body, version).expect("Fetch decodes");
            // Rewritten in place, or withheld when the gateway's addresses do not fit.
            if !f.node_endpoints.is_empty() {
                assert_hints(
                    f.node_endpoints
                        .iter()
                        .map(|e| (e.node_id.0, e.host.as_str(), e.port)),
                    true,
                );
            }
            let records = f.responses[0].partitions[0]
                .records
                .clone()
                .unwrap_or_default();
            assert_eq!(records.len(), *record_bytes);
            assert!(records
                .iter()
                .enumerate()
                .all(|(i, b)| *b == (i % 251) as u8));
        }
        Request::Unknown => {}
    }
}

/// Leader hints an answer carries: every node, at the gateway's address; or none at all when
/// the version has no such field.
fn assert_hints<'a>(hints: impl Iterator<Item = (i32, &'a str, i32)>, expected: bool) {
    let hints: Vec<_> = hints.collect();
    assert_eq!(hints.len(), if expected { CLUSTER.len() } else { 0 });
    for (node, host, port) in hints {
        assert_eq!((host, port), (GATEWAY_HOST, 19000 + node));
    }
}

/// What the edge answers an intercepted ApiVersions request with: what the gateway would
/// (a refusal for a version too new, an answer in the v0 layout otherwise).
fn edge_answer(request: &[u8]) -> Bytes {
    let version = i16::from_be_bytes([request[6], request[7]]);
    let correlation_id = i32::from_be_bytes([request[8], request[9], request[10], request[11]]);
    if !api_versions_offered(version) {
        return kafka_edge::rewrite::api_versions::unsupported_version(correlation_id, 3);
    }
    Bytes::from(answer_frame(
        ApiKey::ApiVersions,
        version,
        correlation_id,
        &ApiVersionsResponse::default(),
    ))
}

/// Feeds raw bytes to the exchange, as a client and a broker would send them (`client` and
/// `broker` cut into pieces of the given sizes, taking turns), with no promise about what
/// they are. Returns what reached the client, or the error that stopped the conversation.
/// Whatever the bytes, the exchange must neither panic nor step outside its input.
pub fn replay(
    client: &[u8],
    broker: &[u8],
    client_cut: usize,
    broker_cut: usize,
) -> Result<Vec<u8>, String> {
    let book = Book::new();
    let now = Instant::now();
    let limits = Limits {
        max_frame: 1 << 20,
        max_held: 1 << 16,
        max_in_flight: 8,
    };
    let mut exchange = Exchange::new(limits, now);
    let (mut client_at, mut broker_at) = (0, 0);
    let (mut client_buf, mut broker_buf) = (Vec::new(), Vec::new());
    let mut to_client = Vec::new();
    loop {
        let mut moved = false;
        if client_at < client.len() {
            let n = client_cut.max(1).min(client.len() - client_at);
            client_buf.extend_from_slice(&client[client_at..client_at + n]);
            client_at += n;
            moved = true;
        }
        loop {
            match exchange
                .on_client(&mut client_buf, now, &Quiet)
                .map_err(|e| e.to_string())?
            {
                Step::Forward(n) => {
                    client_buf.drain(..n);
                }
                Step::Replace { consumed, .. } => {
                    client_buf.drain(..consumed);
                }
                Step::Wait { need } => {
                    let head = kafka_edge::proxy::frame::MAX_REQUEST_HEAD;
                    assert!(
                        need <= head + 16,
                        "asked to buffer {need} bytes of a request head"
                    );
                    break;
                }
                Step::Full => break,
                Step::Intercept { len } => {
                    client_buf.drain(..len);
                    exchange.answer_intercepted(Bytes::new());
                }
                Step::Rewrite { .. } | Step::Pause => panic!("a request step that is not one"),
            }
        }
        if broker_at < broker.len() {
            let n = broker_cut.max(1).min(broker.len() - broker_at);
            broker_buf.extend_from_slice(&broker[broker_at..broker_at + n]);
            broker_at += n;
            moved = true;
        }
        loop {
            match exchange
                .on_broker(&mut broker_buf, now, &Quiet)
                .map_err(|e| e.to_string())?
            {
                Step::Forward(n) => {
                    to_client.extend_from_slice(&broker_buf[..n]);
                    broker_buf.drain(..n);
                }
                Step::Replace { consumed, with } => {
                    to_client.extend_from_slice(&with);
                    broker_buf.drain(..consumed);
                }
                Step::Rewrite { len } => {
                    assert!(len <= limits.max_held, "held {len} bytes, above the limit");
                    let held = Bytes::copy_from_slice(&broker_buf[..len]);
                    broker_buf.drain(..len);
                    let out = exchange
                        .rewrite_held(held, now, &book, &Quiet)
                        .map_err(|e| e.to_string())?;
                    to_client.extend_from_slice(&out);
                }
                Step::Wait { need } => {
                    assert!(
                        need <= limits.max_held,
                        "asked to hold {need} bytes, above the limit"
                    );
                    break;
                }
                Step::Full | Step::Pause | Step::Intercept { .. } => break,
            }
        }
        if !moved {
            return Ok(to_client);
        }
    }
}

/// Feeds a client's captured bytes (a real client's, through a real gateway) to the exchange,
/// cut into pieces of `client_cut` bytes, while the simulated broker answers each request the
/// exchange forwards (naming its brokers at internal addresses), its bytes cut into pieces of
/// `broker_cut`. Whatever the bytes, the exchange must neither panic nor step outside its
/// input, and no internal address may reach the client.
pub fn replay_client(
    client: &[u8],
    client_cut: usize,
    broker_cut: usize,
    broker_answers_acks0: bool,
) -> Result<Vec<u8>, String> {
    let script = Script {
        requests: Vec::new(),
        client_cuts: vec![client_cut],
        broker_cuts: vec![broker_cut],
        turns: vec![true, false],
        broker_answers_acks0,
        half_close: false,
        max_in_flight: 8,
        edge_login: false,
    };
    let book = Book::new();
    let now = Instant::now();
    let limits = Limits {
        max_frame: 1 << 20,
        max_held: 1 << 20,
        max_in_flight: 8,
    };
    let mut exchange = Exchange::new(limits, now);
    let (mut client_at, mut client_buf) = (0, Vec::new());
    let (mut to_broker, mut broker_read) = (Vec::new(), 0);
    let (mut broker_stream, mut broker_at, mut broker_buf) = (Vec::new(), 0, Vec::new());
    let mut to_client = Vec::new();
    let outcome = loop {
        let mut moved = false;
        if client_at < client.len() {
            let n = client_cut.max(1).min(client.len() - client_at);
            client_buf.extend_from_slice(&client[client_at..client_at + n]);
            client_at += n;
            moved = true;
        }
        let stepped = (|| -> Result<(), String> {
            loop {
                match exchange
                    .on_client(&mut client_buf, now, &Quiet)
                    .map_err(|e| e.to_string())?
                {
                    Step::Forward(n) => {
                        to_broker.extend(client_buf.drain(..n));
                    }
                    Step::Replace { consumed, .. } => {
                        client_buf.drain(..consumed);
                    }
                    Step::Wait { .. } | Step::Full => return Ok(()),
                    other => panic!("a request step that is not one: {other:?}"),
                }
            }
        })();
        if let Err(e) = stepped {
            break Err(e);
        }
        while to_broker.len() - broker_read >= 4 {
            let size =
                i32::from_be_bytes(to_broker[broker_read..broker_read + 4].try_into().unwrap());
            let end = broker_read + 4 + size as usize;
            if to_broker.len() < end {
                break;
            }
            if let Some(answer) = broker_answer(&to_broker[broker_read..end], &script, 64) {
                broker_stream.extend_from_slice(&answer);
            }
            broker_read = end;
            moved = true;
        }
        if broker_at < broker_stream.len() {
            let n = broker_cut.max(1).min(broker_stream.len() - broker_at);
            broker_buf.extend_from_slice(&broker_stream[broker_at..broker_at + n]);
            broker_at += n;
            moved = true;
        }
        let stepped = (|| -> Result<(), String> {
            loop {
                match exchange
                    .on_broker(&mut broker_buf, now, &Quiet)
                    .map_err(|e| e.to_string())?
                {
                    Step::Forward(n) => to_client.extend(broker_buf.drain(..n)),
                    Step::Replace { consumed, with } => {
                        to_client.extend_from_slice(&with);
                        broker_buf.drain(..consumed);
                    }
                    Step::Rewrite { len } => {
                        let held = Bytes::copy_from_slice(&broker_buf[..len]);
                        broker_buf.drain(..len);
                        let out = exchange
                            .rewrite_held(held, now, &book, &Quiet)
                            .map_err(|e| e.to_string())?;
                        to_client.extend_from_slice(&out);
                    }
                    Step::Wait { .. } | Step::Pause | Step::Full => return Ok(()),
                    other => panic!("an answer step that is not one: {other:?}"),
                }
            }
        })();
        if let Err(e) = stepped {
            break Err(e);
        }
        if !moved {
            break Ok(());
        }
    };
    assert_no_internal(&to_client);
    outcome.map(|()| to_client)
}

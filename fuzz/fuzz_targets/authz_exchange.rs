//! Requests of any API and version with arbitrary bodies, pipelined and cut anywhere, through
//! the exchange under a policy: it never panics, and every byte it passes to the broker is a
//! whole request the policy allows as it is (a refused request never reaches the broker, and
//! an edited one is edited into one the policy allows).
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_edge::edge::auth::policy::{Grant, Operation, Patterns, Policy};
use kafka_edge::edge::auth::schema;
use kafka_edge::edge::auth::topic_ids::TopicIds;
use kafka_edge::edge::auth::verdict::{authorize, Verdict};
use kafka_edge::proxy::exchange::{Authorizer, Exchange, Limits, Observer, Step};
use libfuzzer_sys::fuzz_target;

fn policy() -> Policy {
    let p = |p: &str| Patterns::parse(&[p.to_owned()], "fuzz", &mut Vec::new());
    Policy::new(
        vec![(
            "p".into(),
            Grant::new(
                &[Operation::Read, Operation::Write, Operation::Describe],
                p("a*"),
                p("g*"),
                p("t*"),
            ),
        )],
        vec![],
    )
}

struct Quiet;

impl Observer for Quiet {
    fn request(&self, _: i16, _: usize) {}
    fn response(&self, _: i16, _: usize, _: Duration) {}
    fn rewrite(&self, _: i16, _: bool) {}
}

/// Frames from the input: per frame, a key, a version, a body length and the body.
fn frames(mut data: &[u8]) -> Vec<u8> {
    let mut stream = Vec::new();
    while let [key, version, len, rest @ ..] = data {
        let key = i16::from(*key) % 95;
        let len = usize::from(*len).min(rest.len());
        let (body, next) = rest.split_at(len);
        data = next;
        let Some(message) = schema::request(key) else {
            continue;
        };
        if message.versions.lo > message.versions.hi {
            continue;
        }
        let span = message.versions.hi - message.versions.lo + 1;
        let version = message.versions.lo + i16::from(*version) % span;
        let mut frame = Vec::new();
        frame.extend_from_slice(&key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&[0, 1, b'f']);
        if message.is_flexible(version) {
            frame.push(0);
        }
        frame.extend_from_slice(body);
        stream.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        stream.extend_from_slice(&frame);
    }
    stream
}

fuzz_target!(|data: &[u8]| {
    let [cut, data @ ..] = data else {
        return;
    };
    let cut = usize::from(*cut).max(1);
    let policy = Arc::new(policy());
    let limits = Limits {
        max_frame: 1 << 20,
        max_held: 1 << 20,
        max_in_flight: 1 << 20,
    };
    let mut exchange = Exchange::new(limits, Instant::now()).with_authorizer(Authorizer {
        policy: policy.clone(),
        principal: Some("p".into()),
        topics: Arc::new(TopicIds::default()),
    });
    let stream = frames(data);
    let mut input: Vec<u8> = Vec::new();
    let mut to_broker: Vec<u8> = Vec::new();
    'feed: for piece in stream.chunks(cut) {
        input.extend_from_slice(piece);
        loop {
            match exchange.on_client(&mut input, Instant::now(), &Quiet) {
                Ok(Step::Forward(n)) => to_broker.extend(input.drain(..n)),
                Ok(Step::Replace { consumed, with }) => {
                    to_broker.extend_from_slice(&with);
                    input.drain(..consumed);
                }
                Ok(Step::Wait { .. } | Step::Full) => break,
                Ok(step) => panic!("a request step that is not one: {step:?}"),
                Err(_) => break 'feed,
            }
        }
    }
    let ids = TopicIds::default();
    let names = ids.read();
    let mut at = 0;
    while at < to_broker.len() {
        let size = to_broker.get(at..at + 4).expect("a whole size prefix");
        let len = 4 + i32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let frame = to_broker.get(at..at + len).expect("a whole request");
        assert!(
            matches!(
                authorize(&policy, "p", frame, &*names),
                Verdict::Forward { edited: None, .. }
            ),
            "the broker got a request the policy does not allow as it is"
        );
        at += len;
    }
});

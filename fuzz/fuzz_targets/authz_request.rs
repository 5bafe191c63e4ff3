//! Arbitrary bytes as the body of a request of any API and version Kafka 4.4 has: what the
//! gateway reads from it (resources, verdict, denial answer, answer filter) never panics, a
//! frame that walks when values are asked for also walks when none are, and every answer the
//! gateway would send in a broker's stead reads back as its schema says.
#![no_main]

use std::collections::HashMap;

use kafka_edge::edge::auth::fields;
use kafka_edge::edge::auth::policy::{Grant, Operation, Patterns, Policy};
use kafka_edge::edge::auth::resources::{resources, Needs, TopicId, MAX_VALUES};
use kafka_edge::edge::auth::schema;
use kafka_edge::edge::auth::verdict::{authorize, Verdict};
use kafka_edge::edge::auth::{apis, deny, filter};
use libfuzzer_sys::fuzz_target;

fn policy() -> Policy {
    let all = |p: &str| Patterns::parse(&[p.to_owned()], "fuzz", &mut Vec::new());
    Policy::new(
        vec![(
            "p".into(),
            Grant::new(
                &[Operation::Read, Operation::Describe],
                all("a*"),
                all("*"),
                all("t*"),
            ),
        )],
        vec![],
    )
}

fuzz_target!(|data: &[u8]| {
    let [key, version, flexible_header, rest @ ..] = data else {
        return;
    };
    let key = i16::from(*key) % 95;
    let Some(message) = schema::request(key) else {
        return;
    };
    if message.versions.lo > message.versions.hi {
        return;
    }
    let span = message.versions.hi - message.versions.lo + 1;
    let version = message.versions.lo + i16::from(*version) % span;
    // The header as its version says, or (one time in four) the other way, as a broken
    // client would send it.
    let flexible = message.is_flexible(version) != (*flexible_header % 4 == 0);
    let mut body = Vec::with_capacity(rest.len() + 16);
    body.extend_from_slice(&key.to_be_bytes());
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&0x1234_5678i32.to_be_bytes());
    body.extend_from_slice(&[0, 1, b'f']);
    if flexible {
        body.push(0);
    }
    body.extend_from_slice(rest);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);

    let ids: HashMap<TopicId, String> = HashMap::from([([0xaa; 16], "a.topic".to_owned())]);
    if let Ok(Needs::Checked(_)) = resources(&frame, &ids) {
        // Asking for values never makes a malformed frame readable.
        fields::request(&frame, &[], MAX_VALUES).expect("a frame read with paths reads without");
    }
    let _ = filter::for_request(&frame);
    if let Verdict::Deny {
        answer: Some(answer),
        ..
    } = authorize(&policy(), "p", &frame, &ids)
    {
        let walked = fields::response(key, version, &answer, &[], usize::MAX)
            .expect("the gateway's answers read as their schema says");
        assert_eq!(walked.correlation_id, 0x1234_5678);
    }
    // Whatever the error, an answerable request's answer is well formed.
    if matches!(
        apis::api(key).map(|a| a.access),
        Some(apis::Access::Checked(_))
    ) && deny::answerable(key, version)
    {
        if let Ok(answer) = deny::answer(&frame, 31) {
            fields::response(key, version, &answer, &[], usize::MAX).expect("answers read back");
        }
    }
});

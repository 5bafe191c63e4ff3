//! Arbitrary bytes as an OAUTHBEARER client initial response: the parser and the server
//! never panic, an accepted token is part of the message, and no made-up token logs in.
#![no_main]

use kafka_edge::edge::auth::jwt::Validator;
use kafka_edge::edge::auth::oauthbearer::{parse_initial_response, OAuthBearerServer};
use kafka_edge::edge::auth::sasl::Step;
use libfuzzer_sys::fuzz_target;

#[path = "fixtures.rs"]
mod fixtures;
use fixtures::{keys, NOW_MS};

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = parse_initial_response(data) {
        let text = std::str::from_utf8(data).expect("accepted messages are text");
        assert!(text.contains(response.token) && !response.token.is_empty());
    }
    let (keys, settings) = keys();
    let validator = Validator { keys, settings };
    let mut server = OAuthBearerServer::default();
    match server.step(data, &validator, NOW_MS) {
        Ok(Step::Done { .. }) => panic!("a made-up token logged in: {data:?}"),
        Ok(Step::Continue(_)) => {
            // The error answer: the next message, whatever it is, fails.
            assert!(server.step(b"\x01", &validator, NOW_MS).is_err());
        }
        Err(_) => {}
    }
    assert!(server.is_finished());
});

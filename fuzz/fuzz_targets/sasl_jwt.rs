//! Arbitrary text as a JWT: the parser and the validator never panic, an accepted header
//! names a supported algorithm and its signing input is the start of the token, and no
//! made-up token validates.
#![no_main]

use kafka_edge::edge::auth::jwt::{parse, Validator};
use libfuzzer_sys::fuzz_target;

#[path = "fixtures.rs"]
mod fixtures;
use fixtures::{keys, NOW_MS};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = parse(token) {
        assert!(token.starts_with(jws.signing_input));
        assert!(jws.signing_input.ends_with(jws.payload));
    }
    let (keys, settings) = keys();
    let validator = Validator { keys, settings };
    assert!(validator.validate(token, NOW_MS).is_err(), "forged token: {token:?}");
});

//! Arbitrary bytes as a SASL PLAIN message: the parser never panics, and what it accepts
//! is exactly three NUL-separated fields that put back together give the message.
#![no_main]

use kafka_edge::edge::auth::plain::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse(data) {
        assert!(!message.username.is_empty() && !message.password.is_empty());
        assert!(!message.password.contains(&0));
        let mut again = Vec::new();
        again.extend_from_slice(message.authzid.as_bytes());
        again.push(0);
        again.extend_from_slice(message.username.as_bytes());
        again.push(0);
        again.extend_from_slice(message.password);
        assert_eq!(again, data);
    }
});

//! Arbitrary bytes as a SCRAM client-first-message: the parser and the server never panic,
//! an accepted message is its gs2 header followed by its bare part, and the server's
//! answer carries the client's nonce followed by its own.
#![no_main]

use kafka_edge::cluster::scram::Hash;
use kafka_edge::edge::auth::sasl::Step;
use kafka_edge::edge::auth::scram_server::{parse_client_first, ScramServer};
use libfuzzer_sys::fuzz_target;

#[path = "fixtures.rs"]
mod fixtures;
use fixtures::credentials;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_client_first(data);
    if let Ok(first) = &parsed {
        assert_eq!(format!("{}{}", first.gs2_header, first.bare).as_bytes(), data);
        assert!(first.bare.starts_with("n="));
        assert!(first.nonce.bytes().all(|b| b.is_ascii_graphic() && b != b','));
    }
    let mut server = ScramServer::new(Hash::Sha256, "fuzzservernonce".into());
    match server.step(data, credentials()) {
        Ok(Step::Continue(server_first)) => {
            let first = parsed.expect("the server answered a message the parser refused");
            let text = String::from_utf8(server_first).expect("server-first is text");
            assert!(text.starts_with(&format!("r={}fuzzservernonce,s=", first.nonce)));
        }
        Ok(Step::Done { .. }) => panic!("a client-first-message cannot finish SCRAM"),
        Err(_) => assert!(server.is_finished()),
    }
});

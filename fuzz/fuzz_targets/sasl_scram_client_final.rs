//! Arbitrary bytes as the SCRAM client-final-message of an exchange whose client-first was
//! well formed: the parser and the server never panic, and no input the fuzzer makes up
//! ever passes the proof check (that would be a forged login).
#![no_main]

use kafka_edge::cluster::scram::Hash;
use kafka_edge::edge::auth::scram_server::{parse_client_final, ScramServer};
use libfuzzer_sys::fuzz_target;

#[path = "fixtures.rs"]
mod fixtures;
use fixtures::credentials;

fuzz_target!(|data: &[u8]| {
    if let Ok(last) = parse_client_final(data) {
        assert!(data.starts_with(last.without_proof.as_bytes()));
        assert!(last.without_proof.starts_with("c="));
    }
    let mut server = ScramServer::new(Hash::Sha256, "fuzzservernonce".into());
    server
        .step(b"n,,n=user,r=fuzzclientnonce", credentials())
        .expect("a well-formed client-first");
    assert!(server.step(data, credentials()).is_err(), "forged login: {data:?}");
    assert!(server.is_finished());
});

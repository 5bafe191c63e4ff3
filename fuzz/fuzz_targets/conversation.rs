//! Whole conversations through the exchange state machine (tests/support/conversation.rs).
//! The first byte picks how the rest is read:
//! - 0 (mod 3): a script (requests with repeated ids, acks=0 answered or not, cuts, turns,
//!   half-close), run against the simulated broker with every promise checked: answers
//!   exactly once, in order, with the client's ids; no internal address reaches the client;
//!   only the cluster's brokers are learned; requests arrive byte for byte;
//! - 1 (mod 3): raw client bytes and raw broker bytes, which must never make the exchange
//!   panic or step outside its input;
//! - 2 (mod 3): a client's bytes (seeded from captured real-client traffic, fuzz/seeds/)
//!   answered by the simulated broker: no panic, and no internal address reaches the client.
#![no_main]

#[path = "../../tests/support/conversation.rs"]
#[allow(dead_code)]
mod conversation;

use conversation::{Request, Script};
use libfuzzer_sys::fuzz_target;

/// Reads the fuzzer's bytes as choices; runs dry as zeros.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
}

fn request(c: &mut Choices) -> Request {
    match c.byte() % 8 {
        0 | 1 => Request::Metadata {
            version: i16::from(c.byte() % 13),
        },
        2 | 3 => Request::Produce {
            version: 9 + i16::from(c.byte() % 5),
            acks: [0, 1, -1][usize::from(c.byte() % 3)],
            topic: format!("t{}", c.byte()),
        },
        4 => Request::ApiVersions {
            version: [0, 3, 9][usize::from(c.byte() % 3)],
        },
        5 | 6 => Request::Fetch {
            version: [12, 16, 17, 18][usize::from(c.byte() % 4)],
            record_bytes: usize::from(c.u16()),
        },
        _ => Request::Unknown,
    }
}

fn script(c: &mut Choices) -> Script {
    let count = 1 + usize::from(c.byte() % 24);
    let requests = (0..count)
        .map(|_| (request(c), i32::from(c.byte() % 4)))
        .collect();
    let cuts = |c: &mut Choices| (0..1 + c.byte() % 4).map(|_| usize::from(c.u16()) + 1).collect();
    let client_cuts = cuts(c);
    let broker_cuts = cuts(c);
    let bits = c.byte();
    let turns = (0..1 + bits % 8).map(|i| bits & (1 << i) != 0).collect();
    let flags = c.byte();
    Script {
        requests,
        client_cuts,
        broker_cuts,
        turns,
        broker_answers_acks0: flags & 1 != 0,
        half_close: flags & 2 != 0,
        max_in_flight: 1 + usize::from(flags >> 2) % 6,
        edge_login: flags & 0x80 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices(data);
    let mode = c.byte() % 3;
    if mode == 0 {
        let outcome = conversation::run(&script(&mut c));
        assert!(outcome.error.is_none(), "a well-formed conversation stopped: {:?}", outcome.error);
    } else if mode == 2 {
        let client_cut = usize::from(c.u16());
        let broker_cut = usize::from(c.u16());
        let acks0 = c.byte() & 1 != 0;
        let _ = conversation::replay_client(c.0, client_cut, broker_cut, acks0);
    } else {
        let client_cut = usize::from(c.u16());
        let broker_cut = usize::from(c.u16());
        let split = usize::from(c.u16()).min(c.0.len());
        let (client, broker) = c.0.split_at(split);
        let _ = conversation::replay(client, broker, client_cut, broker_cut);
    }
});

//! Property tests over whole conversations through the exchange state machine: random
//! pipelines of requests with repeated correlation ids, acks=0 answered or not, half-closes,
//! rewritten answers between streamed ones, and every byte boundary a cut can fall on. The
//! promises checked are listed in `support/conversation.rs`.

mod support;

use proptest::prelude::*;
use support::conversation::{self, Request, Script};

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        3 => (0i16..=12).prop_map(|version| Request::Metadata { version }),
        3 => (9i16..=13, prop_oneof![Just(0i16), Just(1), Just(-1)], "[a-z]{1,12}")
            .prop_map(|(version, acks, topic)| Request::Produce { version, acks, topic }),
        1 => prop_oneof![Just(0i16), Just(3), Just(9)]
            .prop_map(|version| Request::ApiVersions { version }),
        2 => (prop_oneof![Just(12i16), 16i16..=18], prop_oneof![0usize..64, 30_000usize..70_000])
            .prop_map(|(version, record_bytes)| Request::Fetch { version, record_bytes }),
        1 => Just(Request::Unknown),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        // Correlation ids from a small range: clients that reuse them are the hostile case.
        prop::collection::vec((request(), 0i32..4), 1..24),
        prop::collection::vec(prop_oneof![1usize..4, 1usize..200, 1usize..70_000], 1..6),
        prop::collection::vec(prop_oneof![1usize..4, 1usize..200, 1usize..70_000], 1..6),
        prop::collection::vec(any::<bool>(), 1..8),
        any::<bool>(),
        any::<bool>(),
        1usize..6,
        any::<bool>(),
    )
        .prop_map(
            |(
                requests,
                client_cuts,
                broker_cuts,
                turns,
                answers,
                half_close,
                in_flight,
                edge_login,
            )| Script {
                requests,
                client_cuts,
                broker_cuts,
                turns,
                broker_answers_acks0: answers,
                half_close,
                max_in_flight: in_flight,
                edge_login,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_conversation_keeps_every_promise(script in script()) {
        let outcome = conversation::run(&script);
        prop_assert!(outcome.error.is_none(), "stopped: {:?}", outcome.error);
    }
}

/// Cuts at every single byte, both ways, for one conversation of every kind of request.
#[test]
fn a_conversation_cut_at_every_byte() {
    let requests = vec![
        (Request::ApiVersions { version: 3 }, 1),
        (Request::ApiVersions { version: 9 }, 1),
        (Request::Metadata { version: 12 }, 1),
        (
            Request::Produce {
                version: 9,
                acks: 0,
                topic: "a".into(),
            },
            1,
        ),
        (
            Request::Fetch {
                version: 12,
                record_bytes: 300,
            },
            1,
        ),
        (
            Request::Fetch {
                version: 18,
                record_bytes: 40,
            },
            1,
        ),
        (Request::Metadata { version: 1 }, 2),
        (
            Request::Produce {
                version: 13,
                acks: -1,
                topic: "b".into(),
            },
            2,
        ),
        (Request::Unknown, 2),
    ];
    for (answers, edge_login) in [(false, false), (true, false), (false, true)] {
        let outcome = conversation::run(&Script {
            requests: requests.clone(),
            client_cuts: vec![1],
            broker_cuts: vec![1],
            turns: vec![true, false],
            broker_answers_acks0: answers,
            half_close: true,
            max_in_flight: 2,
            edge_login,
        });
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
    }
}

/// Real clients' opening requests, captured through a real gateway (scripts/fuzz-seeds writes
/// them as the fuzz target's seeds): each replays against the simulated broker with no
/// internal address reaching the client, and most run to their end.
#[test]
fn captured_client_conversations_replay_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/conversation");
    let mut seeds = 0;
    let mut finished = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed directory") {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        // Mode byte, two cut sizes, a flag byte, then the client's bytes.
        let (cuts, client) = seed.split_at(6);
        assert_eq!(cuts[0], 2, "a client-replay seed");
        let client_cut = usize::from(u16::from_be_bytes([cuts[1], cuts[2]]));
        let broker_cut = usize::from(u16::from_be_bytes([cuts[3], cuts[4]]));
        for cut in [1, client_cut, client.len()] {
            if conversation::replay_client(client, cut, broker_cut, cuts[5] & 1 != 0).is_ok() {
                finished += 1;
            }
        }
        seeds += 1;
    }
    assert!(seeds >= 10, "only {seeds} seeds in {}", dir.display());
    // Answers of just a header stop conversations whose rewritten APIs refuse them.
    assert!(
        finished * 2 >= seeds * 3,
        "{finished} of {} replays finished",
        seeds * 3
    );
}

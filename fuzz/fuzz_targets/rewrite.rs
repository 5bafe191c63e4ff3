//! Arbitrary bytes as a response of each rewritten API and version: the rewrite never panics,
//! and whatever it returns has every address already rewritten.
#![no_main]

use bytes::Bytes;
use kafka_edge::rewrite::api_versions::{limit, Limit};
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_edge::cluster::route::RouteError;
use kafka_protocol::protocol::StrBytes;
use libfuzzer_sys::fuzz_target;

const HOST: &str = "gw.fuzz";

struct Book;

impl AddressBook for Book {
    fn learn(&self, node_id: i32, _host: &str, _port: i32) -> Result<Advertised, RouteError> {
        self.planned(node_id)
    }
    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
        u16::try_from(node_id)
            .ok()
            .and_then(|id| id.checked_add(10000))
            .map(|port| Advertised { host: StrBytes::from_static_str(HOST), port })
            .ok_or(RouteError::Unmapped { node_id })
    }
}

const KINDS: [Rewrite; 12] = [
    Rewrite::ApiVersions,
    Rewrite::Metadata,
    Rewrite::FindCoordinator,
    Rewrite::DescribeCluster,
    Rewrite::DescribeQuorum,
    Rewrite::DescribeConfigs,
    Rewrite::DescribeGroups,
    Rewrite::ConsumerGroupDescribe,
    Rewrite::ShareGroupDescribe,
    Rewrite::StreamsGroupDescribe,
    Rewrite::ShareFetch,
    Rewrite::ShareAcknowledge,
];

fuzz_target!(|data: &[u8]| {
    let [selector, version, rest @ ..] = data else { return };
    let kind = KINDS[usize::from(*selector) % KINDS.len()];
    let Limit::Range { min, max } = limit(kind.api_key()) else { return };
    let version = min + i16::from(*version) % (max - min + 1);
    let mut frame = (rest.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(rest);
    let Ok(out) = rewrite::response(kind, version, Bytes::from(frame), &Book) else { return };
    let size = i32::from_be_bytes(out[..4].try_into().unwrap());
    assert_eq!(size as usize, out.len() - 4, "size prefix matches the frame");
    // A rewritten frame is a fixed point: every address in it is already the gateway's, so
    // rewriting it again changes nothing. An address the first pass missed would change.
    let again = rewrite::response(kind, version, out.clone(), &Book).expect("a rewritten frame rewrites again");
    assert_eq!(again, out, "rewriting is idempotent");
});

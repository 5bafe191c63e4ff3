//! Arbitrary bytes as a response of each rewritten API and version: the rewrite never panics,
//! and whatever it returns decodes again with every broker address the gateway's.
#![no_main]

use bytes::Bytes;
use kafka_edge::rewrite::{self, AddressBook, Advertised, Rewrite};
use kafka_edge::route::RouteError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
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

const KINDS: [Rewrite; 7] = [
    Rewrite::ApiVersions,
    Rewrite::Metadata,
    Rewrite::FindCoordinator,
    Rewrite::DescribeCluster,
    Rewrite::DescribeQuorum,
    Rewrite::ShareFetch,
    Rewrite::ShareAcknowledge,
];

fn decoded<T: Decodable>(kind: Rewrite, version: i16, frame: &Bytes) -> T {
    let mut body = frame.slice(4..);
    let header_version = if kind == Rewrite::ApiVersions { 0 } else { kind.api_key().response_header_version(version) };
    ResponseHeader::decode(&mut body, header_version).expect("rewritten header decodes");
    let message = T::decode(&mut body, version).expect("rewritten body decodes");
    assert!(body.is_empty(), "rewritten frame decodes exactly");
    message
}

fn gateway(host: &str) {
    assert!(host == HOST || host.is_empty(), "address {host:?} left unrewritten");
}

fuzz_target!(|data: &[u8]| {
    let [selector, version, rest @ ..] = data else { return };
    let kind = KINDS[usize::from(*selector) % KINDS.len()];
    let range = rewrite::api_versions::limit(kind.api_key() as i16);
    let rewrite::api_versions::Limit::Range { min, max } = range else { return };
    let version = min + i16::from(*version) % (max - min + 1);
    let mut frame = (rest.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(rest);
    let Ok(out) = rewrite::response(kind, version, Bytes::from(frame), &Book) else { return };
    let size = i32::from_be_bytes(out.frame[..4].try_into().unwrap());
    assert_eq!(size as usize, out.frame.len() - 4);
    match kind {
        Rewrite::ApiVersions => {
            // A refusal is re-issued in the v0 layout; anything else keeps the version.
            let refused = out.frame.get(8..10) == Some(&35i16.to_be_bytes()[..]);
            decoded::<ApiVersionsResponse>(kind, if refused { 0 } else { version }, &out.frame);
        }
        Rewrite::Metadata => decoded::<MetadataResponse>(kind, version, &out.frame).brokers.iter().for_each(|b| gateway(&b.host)),
        Rewrite::FindCoordinator => {
            let r: FindCoordinatorResponse = decoded(kind, version, &out.frame);
            if r.node_id.0 >= 0 {
                gateway(&r.host);
            }
            r.coordinators.iter().filter(|c| c.node_id.0 >= 0).for_each(|c| gateway(&c.host));
        }
        Rewrite::DescribeCluster => decoded::<DescribeClusterResponse>(kind, version, &out.frame).brokers.iter().for_each(|b| gateway(&b.host)),
        Rewrite::DescribeQuorum => decoded::<DescribeQuorumResponse>(kind, version, &out.frame)
            .nodes
            .iter()
            .flat_map(|n| &n.listeners)
            .for_each(|l| gateway(&l.host)),
        Rewrite::ShareFetch => decoded::<ShareFetchResponse>(kind, version, &out.frame).node_endpoints.iter().for_each(|n| gateway(&n.host)),
        Rewrite::ShareAcknowledge => {
            decoded::<ShareAcknowledgeResponse>(kind, version, &out.frame).node_endpoints.iter().for_each(|n| gateway(&n.host))
        }
    }
});

//! Responses that name brokers: decoded whole, every address replaced by the gateway's own
//! address for that node, re-encoded with a fresh size prefix.
//!
//! Only the APIs of [`Rewrite`] come here; every other response streams through untouched.
//! Which versions of those APIs a client may use is decided in [`api_versions`], so nothing
//! reaches this module at a version it cannot decode.

pub mod api_versions;
mod describe_cluster;
mod describe_configs;
pub mod describe_groups;
mod describe_quorum;
pub mod fetch;
mod find_coordinator;
mod group_describe;
pub mod metadata;
mod produce;
mod share;
mod streams_group_describe;
#[cfg(test)]
mod test_frames;
pub mod wire;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::route::RouteError;
#[cfg(test)]
use wire::put_uvarint;
pub use wire::Rewritten;
use wire::{Walk, WireError};

/// The address clients are told for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub host: StrBytes,
    pub port: u16,
}

/// Where the gateway serves each node. The running gateway implements it by recording the
/// node and starting its listener; tests implement it with a plain map.
pub trait AddressBook {
    /// A broker the cluster reported at `host:port`: remember it, make sure the gateway
    /// serves it, and return what clients must be told instead.
    fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError>;

    /// The address clients are told for a node id, without routing anything to it. Used for
    /// controller endpoints, which share node ids with brokers in combined mode and must not
    /// re-point a broker's route.
    fn planned(&self, node_id: i32) -> Result<Advertised, RouteError>;
}

/// The responses the gateway rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Produce from v10 (KIP-951 leader hints).
    Produce,
    /// Fetch from v16 (KIP-951 leader hints): streamed, never held (see [`fetch`]).
    Fetch,
    ApiVersions,
    Metadata,
    FindCoordinator,
    DescribeCluster,
    DescribeQuorum,
    DescribeConfigs,
    DescribeGroups,
    ConsumerGroupDescribe,
    ShareGroupDescribe,
    StreamsGroupDescribe,
    ShareFetch,
    ShareAcknowledge,
}

/// StreamsGroupDescribe (KIP-1071), which kafka-protocol 0.18 predates: its `ApiKey` has no
/// name for it, so the rewrite set names APIs by their keys.
const STREAMS_GROUP_DESCRIBE: i16 = 89;

impl Rewrite {
    /// The rewrite a response to this API, at this version, needs, if any.
    pub fn for_api(api_key: i16, version: i16) -> Option<Rewrite> {
        if api_key == STREAMS_GROUP_DESCRIBE {
            return Some(Rewrite::StreamsGroupDescribe);
        }
        Some(match ApiKey::try_from(api_key).ok()? {
            ApiKey::Produce if version >= 10 => Rewrite::Produce,
            ApiKey::Fetch if version >= 16 => Rewrite::Fetch,
            ApiKey::ApiVersions => Rewrite::ApiVersions,
            ApiKey::Metadata => Rewrite::Metadata,
            ApiKey::FindCoordinator => Rewrite::FindCoordinator,
            ApiKey::DescribeCluster => Rewrite::DescribeCluster,
            ApiKey::DescribeQuorum => Rewrite::DescribeQuorum,
            ApiKey::DescribeConfigs => Rewrite::DescribeConfigs,
            ApiKey::DescribeGroups => Rewrite::DescribeGroups,
            ApiKey::ConsumerGroupDescribe => Rewrite::ConsumerGroupDescribe,
            ApiKey::ShareGroupDescribe => Rewrite::ShareGroupDescribe,
            ApiKey::ShareFetch => Rewrite::ShareFetch,
            ApiKey::ShareAcknowledge => Rewrite::ShareAcknowledge,
            _ => return None,
        })
    }

    pub fn api_key(self) -> i16 {
        match self {
            Rewrite::Produce => ApiKey::Produce as i16,
            Rewrite::Fetch => ApiKey::Fetch as i16,
            Rewrite::ApiVersions => ApiKey::ApiVersions as i16,
            Rewrite::Metadata => ApiKey::Metadata as i16,
            Rewrite::FindCoordinator => ApiKey::FindCoordinator as i16,
            Rewrite::DescribeCluster => ApiKey::DescribeCluster as i16,
            Rewrite::DescribeQuorum => ApiKey::DescribeQuorum as i16,
            Rewrite::DescribeConfigs => ApiKey::DescribeConfigs as i16,
            Rewrite::DescribeGroups => ApiKey::DescribeGroups as i16,
            Rewrite::ConsumerGroupDescribe => ApiKey::ConsumerGroupDescribe as i16,
            Rewrite::ShareGroupDescribe => ApiKey::ShareGroupDescribe as i16,
            Rewrite::StreamsGroupDescribe => STREAMS_GROUP_DESCRIBE,
            Rewrite::ShareFetch => ApiKey::ShareFetch as i16,
            Rewrite::ShareAcknowledge => ApiKey::ShareAcknowledge as i16,
        }
    }

    /// The response header version at `version` of this API: v1 (with tagged fields) from
    /// the version the API turned flexible, except for ApiVersions, whose header stays v0 so
    /// that any client can read it before versions are agreed.
    pub fn response_header_version(self, version: i16) -> i16 {
        match ApiKey::try_from(self.api_key()) {
            Ok(api) => api.response_header_version(version),
            // StreamsGroupDescribe, flexible from its first version.
            Err(()) => 1,
        }
    }
}

/// The versions of each API that names brokers whose responses the rewrite reads: clients
/// are offered no others (see [`api_versions::limit`]).
pub(crate) fn walked_versions(api_key: i16) -> Option<(i16, i16)> {
    if api_key == STREAMS_GROUP_DESCRIBE {
        return Some((0, 1));
    }
    Some(match ApiKey::try_from(api_key).ok()? {
        ApiKey::Produce => (0, 13),
        ApiKey::Fetch => (0, 18),
        ApiKey::Metadata => (0, 13),
        ApiKey::FindCoordinator => (0, 6),
        ApiKey::DescribeGroups => (0, 6),
        ApiKey::ApiVersions => (0, 5),
        ApiKey::DescribeConfigs => (1, 4),
        ApiKey::DescribeQuorum => (0, 2),
        ApiKey::DescribeCluster => (0, 2),
        ApiKey::ConsumerGroupDescribe => (0, 1),
        ApiKey::ShareGroupDescribe => (1, 1),
        ApiKey::ShareFetch => (1, 2),
        ApiKey::ShareAcknowledge => (1, 2),
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("cannot decode {} v{version} response: {reason}", Named(*api))]
    Decode {
        api: i16,
        version: i16,
        reason: String,
    },
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// An API key, named in messages by its rewrite.
struct Named(i16);

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Rewrite::for_api(self.0, i16::MAX) {
            Some(kind) => write!(f, "{kind:?}"),
            None => write!(f, "API key {}", self.0),
        }
    }
}

/// Rewrites one whole response frame (size prefix included) to the request's `version`.
/// Only the address fields change; every other byte is copied as it came, and a frame that
/// names no broker comes back as the very same bytes.
pub fn response(
    kind: Rewrite,
    version: i16,
    frame: Bytes,
    book: &dyn AddressBook,
) -> Result<Bytes, RewriteError> {
    match prefix(kind, version, &frame, book)? {
        Some(rewritten) => Ok(rewritten.whole(&frame)),
        None => Err(RewriteError::Decode {
            api: kind.api_key(),
            version,
            reason: WireError::Short { at: frame.len() }.to_string(),
        }),
    }
}

/// Rewrites the beginning of a response frame, as far as its last field that names a broker:
/// what goes out instead of those bytes (with the whole frame's new size), and how many they
/// were. The rest of the frame follows as it came, so it need never be held. `held` may be
/// only the frame's first bytes: `None` means the walk needs more of them.
pub fn prefix(
    kind: Rewrite,
    version: i16,
    held: &Bytes,
    book: &dyn AddressBook,
) -> Result<Option<Rewritten>, RewriteError> {
    if kind == Rewrite::Fetch {
        // Streamed in the data path; here, whole, for callers that have it all.
        let Some(whole) = whole_frame(held) else {
            return Ok(None);
        };
        let frame = held.slice(..whole);
        return match fetch::rewrite_whole(&frame, book) {
            Ok(out) => Ok(Some(Rewritten {
                edited: out != frame,
                out,
                consumed: whole,
            })),
            Err(failure) => settle(kind, version, failure).map(|_| None),
        };
    }
    if kind == Rewrite::ApiVersions {
        // Small, and rewritten as a whole: wait for all of it.
        let Some(whole) = whole_frame(held) else {
            return Ok(None);
        };
        let whole = held.slice(..whole);
        return match api_versions::rewrite(&whole, version) {
            Ok(out) => Ok(Some(Rewritten {
                edited: out != whole,
                out,
                consumed: whole.len(),
            })),
            Err(e) => settle(kind, version, e.into()).map(|_| None),
        };
    }
    Ok(walk(kind, version, held, book)?.map(|walk| walk.finish(held)))
}

/// How far the rewrite of a response walks, found without learning anything: the bytes to
/// hold before the rewrite can be done, or `None` while `held` is not enough to tell.
pub fn extent(kind: Rewrite, version: i16, held: &[u8]) -> Result<Option<usize>, RewriteError> {
    if matches!(kind, Rewrite::ApiVersions | Rewrite::Fetch) {
        return Ok(whole_frame(held));
    }
    Ok(walk(kind, version, held, &Measure)?.map(|walk| walk.position()))
}

/// The length of the frame `held` begins with, once all of it is there.
fn whole_frame(held: &[u8]) -> Option<usize> {
    let size = held.get(..4)?;
    let len = 4 + usize::try_from(i32::from_be_bytes([size[0], size[1], size[2], size[3]])).ok()?;
    (held.len() >= len).then_some(len)
}

/// Walks a response of the rewrite set (not ApiVersions) to its last address, recording
/// the edits; `None` when `held` ends before that.
fn walk<'a>(
    kind: Rewrite,
    version: i16,
    held: &'a [u8],
    book: &dyn AddressBook,
) -> Result<Option<Walk<'a>>, RewriteError> {
    // Every API here switched its response header and its body to the flexible encodings at
    // the same version.
    let header_version = kind.response_header_version(version);
    let mut walk = match Walk::new(held, header_version, header_version >= 1) {
        Ok(walk) => walk,
        Err(e) => return settle(kind, version, e.into()).map(|_| None),
    };
    let walked = match kind {
        Rewrite::Produce => produce::rewrite(&mut walk, version, book),
        Rewrite::Metadata => metadata::rewrite(&mut walk, version, book),
        Rewrite::FindCoordinator => find_coordinator::rewrite(&mut walk, version, book),
        Rewrite::DescribeCluster => describe_cluster::rewrite(&mut walk, version, book),
        Rewrite::DescribeQuorum => describe_quorum::rewrite(&mut walk, version, book),
        Rewrite::DescribeConfigs => describe_configs::rewrite(&mut walk, version),
        Rewrite::DescribeGroups => describe_groups::rewrite(&mut walk, version),
        Rewrite::ConsumerGroupDescribe => group_describe::rewrite_consumer(&mut walk, version),
        Rewrite::ShareGroupDescribe => group_describe::rewrite_share(&mut walk),
        Rewrite::StreamsGroupDescribe => streams_group_describe::rewrite(&mut walk, version),
        Rewrite::ShareFetch => share::rewrite_fetch(&mut walk, book),
        Rewrite::ShareAcknowledge => share::rewrite_acknowledge(&mut walk, version, book),
        Rewrite::ApiVersions | Rewrite::Fetch => Ok(()),
    };
    match walked {
        Ok(()) => Ok(Some(walk)),
        Err(failure) => settle(kind, version, failure).map(|_| None),
    }
}

/// A walk that stopped: for want of bytes (`Ok`: wait for more), or for good.
fn settle(kind: Rewrite, version: i16, failure: Failure) -> Result<(), RewriteError> {
    match failure {
        Failure::Wire(WireError::Incomplete { .. }) => Ok(()),
        Failure::Wire(e) => Err(RewriteError::Decode {
            api: kind.api_key(),
            version,
            reason: e.to_string(),
        }),
        Failure::Route(e) => Err(RewriteError::Route(e)),
    }
}

/// An address book that learns nothing and plans every node alike: walking with it finds
/// where a rewrite ends, and nothing else.
struct Measure;

impl AddressBook for Measure {
    fn learn(&self, node_id: i32, _host: &str, _port: i32) -> Result<Advertised, RouteError> {
        self.planned(node_id)
    }

    fn planned(&self, _node_id: i32) -> Result<Advertised, RouteError> {
        Ok(Advertised {
            host: StrBytes::from_static_str(""),
            port: 0,
        })
    }
}

/// What a per-API rewrite can fail with, before the dispatcher names the API.
#[derive(Debug)]
pub enum Failure {
    Wire(WireError),
    Route(RouteError),
}

impl Failure {
    /// The failure, named by the API and version it happened in.
    pub fn into_rewrite_error(self, kind: Rewrite, version: i16) -> RewriteError {
        match self {
            Failure::Wire(e) => RewriteError::Decode {
                api: kind.api_key(),
                version,
                reason: e.to_string(),
            },
            Failure::Route(e) => RewriteError::Route(e),
        }
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Failure {
        Failure::Wire(e)
    }
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Failure {
        Failure::Route(e)
    }
}

/// One broker's `host` and i32 `port`, learned and replaced by the gateway's address.
fn learn_node(walk: &mut Walk<'_>, book: &dyn AddressBook, node_id: i32) -> Result<(), Failure> {
    let host = walk.host()?;
    let port = walk.port_i32()?;
    let advertised = book.learn(node_id, host.value, port.value)?;
    walk.set_host(&host, &advertised.host);
    walk.set_port(&port, advertised.port);
    Ok(())
}

/// One controller's `host` and port (i32 or u16, as read by `port`), replaced by the
/// gateway's planned address for its node id without routing anything to it.
fn plan_node<'a, T>(
    walk: &mut Walk<'a>,
    book: &dyn AddressBook,
    node_id: i32,
    port: impl FnOnce(&mut Walk<'a>) -> Result<wire::Field<T>, WireError>,
) -> Result<(), Failure> {
    let host = walk.host()?;
    let port = port(walk)?;
    let planned = book.planned(node_id)?;
    walk.set_host(&host, &planned.host);
    walk.set_port(&port, planned.port);
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the per-API tests: a recording address book and frame builders.

    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    pub const GATEWAY_HOST: &str = "gw.example.com";
    pub const PORT_BASE: u16 = 19000;

    /// Maps node N to `GATEWAY_HOST:PORT_BASE+N` and remembers every address it was told.
    #[derive(Default)]
    pub struct Book {
        pub learned: RefCell<BTreeMap<i32, (String, i32)>>,
    }

    impl AddressBook for Book {
        fn learn(&self, node_id: i32, host: &str, port: i32) -> Result<Advertised, RouteError> {
            let advertised = self.planned(node_id)?;
            self.learned
                .borrow_mut()
                .insert(node_id, (host.to_owned(), port));
            Ok(advertised)
        }

        fn planned(&self, node_id: i32) -> Result<Advertised, RouteError> {
            if !(0..=1000).contains(&node_id) {
                return Err(RouteError::Unmapped { node_id });
            }
            Ok(Advertised {
                host: StrBytes::from(GATEWAY_HOST),
                port: PORT_BASE + node_id as u16,
            })
        }
    }

    /// A response frame as a broker would send it.
    pub fn frame<T: Encodable>(
        kind: Rewrite,
        version: i16,
        correlation_id: i32,
        body: &T,
    ) -> Bytes {
        let header_version = kind.response_header_version(version);
        let header = ResponseHeader::default().with_correlation_id(correlation_id);
        let mut payload = BytesMut::new();
        header.encode(&mut payload, header_version).unwrap();
        body.encode(&mut payload, version).unwrap();
        let mut out = BytesMut::new();
        out.put_i32(payload.len() as i32);
        out.extend_from_slice(&payload);
        out.freeze()
    }

    /// Rewrites `body` at `version` and decodes the result again.
    pub fn round_trip<T: Encodable + Decodable>(
        kind: Rewrite,
        version: i16,
        body: &T,
        book: &Book,
    ) -> Result<T, RewriteError> {
        let mut bytes = response(kind, version, frame(kind, version, 42, body), book)?;
        let size = i32::from_be_bytes(bytes[..4].try_into().unwrap());
        assert_eq!(size as usize, bytes.len() - 4, "size prefix recomputed");
        let mut body = bytes.split_off(4);
        let header =
            ResponseHeader::decode(&mut body, kind.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 42);
        let decoded = T::decode(&mut body, version).unwrap();
        assert!(body.is_empty(), "rewritten frame decodes exactly");
        Ok(decoded)
    }

    /// What survives of `message` at `version`: fields the version lacks are dropped.
    pub fn at_version<T: Encodable + Decodable>(message: &T, version: i16) -> T {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).unwrap();
        T::decode(&mut buf.freeze(), version).unwrap()
    }

    pub fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }
}

#[cfg(test)]
mod regressions {
    //! Inputs the fuzzer found, kept so they never come back.

    use super::testing::Book;
    use super::*;

    /// Metadata v2 whose broker count claims about a billion brokers in an 8-byte body. Decoding
    /// it with kafka-protocol allocated 79 GB up front and aborted the process.
    #[test]
    fn billion_broker_metadata_is_an_error_not_an_abort() {
        let rest = [0x3b, 0x21, 0xd8, 0xd8, 0x31, 0x3e, 0xd8, 0xd8];
        let mut frame = (rest.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&rest);
        let err = response(Rewrite::Metadata, 2, Bytes::from(frame), &Book::default()).unwrap_err();
        assert!(matches!(err, RewriteError::Decode { .. }), "{err}");
    }
}

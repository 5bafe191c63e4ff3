//! Responses that name brokers: decoded whole, every address replaced by the gateway's own
//! address for that node, re-encoded with a fresh size prefix.
//!
//! Only the APIs of [`Rewrite`] come here; every other response streams through untouched.
//! Which versions of those APIs a client may use is decided in [`api_versions`], so nothing
//! reaches this module at a version it cannot decode.

pub mod api_versions;
mod describe_cluster;
mod describe_quorum;
mod find_coordinator;
mod metadata;
mod share;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::frame::SIZE_PREFIX;
use crate::route::RouteError;

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
    ApiVersions,
    Metadata,
    FindCoordinator,
    DescribeCluster,
    DescribeQuorum,
    ShareFetch,
    ShareAcknowledge,
}

impl Rewrite {
    /// The rewrite a response to this API needs, if any.
    pub fn for_api(api_key: i16) -> Option<Rewrite> {
        Some(match ApiKey::try_from(api_key).ok()? {
            ApiKey::ApiVersions => Rewrite::ApiVersions,
            ApiKey::Metadata => Rewrite::Metadata,
            ApiKey::FindCoordinator => Rewrite::FindCoordinator,
            ApiKey::DescribeCluster => Rewrite::DescribeCluster,
            ApiKey::DescribeQuorum => Rewrite::DescribeQuorum,
            ApiKey::ShareFetch => Rewrite::ShareFetch,
            ApiKey::ShareAcknowledge => Rewrite::ShareAcknowledge,
            _ => return None,
        })
    }

    pub fn api_key(self) -> ApiKey {
        match self {
            Rewrite::ApiVersions => ApiKey::ApiVersions,
            Rewrite::Metadata => ApiKey::Metadata,
            Rewrite::FindCoordinator => ApiKey::FindCoordinator,
            Rewrite::DescribeCluster => ApiKey::DescribeCluster,
            Rewrite::DescribeQuorum => ApiKey::DescribeQuorum,
            Rewrite::ShareFetch => ApiKey::ShareFetch,
            Rewrite::ShareAcknowledge => ApiKey::ShareAcknowledge,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("cannot decode {api:?} v{version} response: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode rewritten {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// A rewritten response frame, size prefix included.
#[derive(Debug)]
pub struct Rewritten {
    pub frame: Bytes,
    /// Bytes the decoder left unread at the end of the original frame. They are never
    /// forwarded (the frame is re-encoded from what was decoded), so they cannot leak; the
    /// count is reported so the session can log it. librdkafka's mock broker, for one,
    /// appends a byte to Metadata v13.
    pub trailing: usize,
}

/// Rewrites one whole response frame (size prefix included) to the request's `version`.
pub fn response(
    kind: Rewrite,
    version: i16,
    frame: Bytes,
    book: &dyn AddressBook,
) -> Result<Rewritten, RewriteError> {
    use kafka_protocol::messages::*;
    let body = frame.slice(SIZE_PREFIX.min(frame.len())..);
    let api = kind.api_key();
    match kind {
        Rewrite::ApiVersions => match api_versions::refused(&body, version) {
            Some((correlation_id, max)) => Ok(Rewritten {
                frame: api_versions::unsupported_version(correlation_id, max),
                trailing: 0,
            }),
            // ApiVersions responses always use the v0 response header.
            None => recode::<ApiVersionsResponse>(api, 0, version, body, book, |r, _, _| {
                api_versions::cap(r);
                Ok(())
            }),
        },
        Rewrite::Metadata => recode::<MetadataResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            metadata::rewrite,
        ),
        Rewrite::FindCoordinator => recode::<FindCoordinatorResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            find_coordinator::rewrite,
        ),
        Rewrite::DescribeCluster => recode::<DescribeClusterResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            describe_cluster::rewrite,
        ),
        Rewrite::DescribeQuorum => recode::<DescribeQuorumResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            describe_quorum::rewrite,
        ),
        Rewrite::ShareFetch => recode::<ShareFetchResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            share::rewrite_fetch,
        ),
        Rewrite::ShareAcknowledge => recode::<ShareAcknowledgeResponse>(
            api,
            header_version(api, version),
            version,
            body,
            book,
            share::rewrite_acknowledge,
        ),
    }
}

fn header_version(api: ApiKey, version: i16) -> i16 {
    api.response_header_version(version)
}

/// Decode, edit, encode: the one path every rewrite takes.
fn recode<T: Decodable + Encodable>(
    api: ApiKey,
    header_version: i16,
    version: i16,
    mut body: Bytes,
    book: &dyn AddressBook,
    edit: impl FnOnce(&mut T, &dyn AddressBook, i16) -> Result<(), RouteError>,
) -> Result<Rewritten, RewriteError> {
    let decode_error = |e: anyhow::Error| RewriteError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let header = ResponseHeader::decode(&mut body, header_version).map_err(decode_error)?;
    let mut message = T::decode(&mut body, version).map_err(decode_error)?;
    let trailing = body.len();
    edit(&mut message, book, version)?;

    let encode_error = |e: anyhow::Error| RewriteError::Encode {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + message.compute_size(version)?))
        .map_err(encode_error)?;
    let mut out = BytesMut::with_capacity(SIZE_PREFIX + size);
    out.put_i32(i32::try_from(size).map_err(|_| RewriteError::Encode {
        api,
        version,
        reason: format!("{size} bytes do not fit a frame"),
    })?);
    header
        .encode(&mut out, header_version)
        .map_err(encode_error)?;
    message.encode(&mut out, version).map_err(encode_error)?;
    Ok(Rewritten {
        frame: out.freeze(),
        trailing,
    })
}

/// Replaces one `(node_id, host, port)` triple with the gateway's address for that node.
fn learn_into(
    book: &dyn AddressBook,
    node_id: i32,
    host: &mut StrBytes,
    port: &mut i32,
) -> Result<(), RouteError> {
    let advertised = book.learn(node_id, host, *port)?;
    *host = advertised.host;
    *port = i32::from(advertised.port);
    Ok(())
}

/// [`learn_into`] for every node of a list.
fn learn_all<'a>(
    book: &dyn AddressBook,
    nodes: impl Iterator<Item = (i32, &'a mut StrBytes, &'a mut i32)>,
) -> Result<(), RouteError> {
    nodes
        .into_iter()
        .try_for_each(|(node_id, host, port)| learn_into(book, node_id, host, port))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the per-API tests: a recording address book and frame builders.

    use super::*;
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
    pub fn frame<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
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
        let api = kind.api_key();
        let rewritten = response(kind, version, frame(api, version, 42, body), book)?;
        assert_eq!(rewritten.trailing, 0);
        let mut bytes = rewritten.frame;
        let size = i32::from_be_bytes(bytes[..4].try_into().unwrap());
        assert_eq!(size as usize, bytes.len() - 4, "size prefix recomputed");
        let mut body = bytes.split_off(4);
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, 42);
        let decoded = T::decode(&mut body, version).unwrap();
        assert!(body.is_empty(), "re-encoded frame decodes exactly");
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

//! The ApiVersions answer the gateway gives itself when it authenticates clients: before a
//! client has logged in there is no broker connection to ask, and the answer must offer
//! SaslHandshake and SaslAuthenticate whether or not the cluster has SASL.
//!
//! It is made from the cluster's own answer, which the gateway's metadata refresh asks for
//! (ApiVersions v3, already capped to what the gateway offers): its version ranges, with the
//! SASL entries set to what the gateway answers, and for v3 and later its tagged fields (the
//! supported and finalized features, which clients act on) as they came.

use bytes::{BufMut, Bytes};

use crate::proxy::frame;
use crate::rewrite::wire::{put_uvarint, Walk, WireError};

/// The version of ApiVersions the refresh asks for, whose answer is kept here.
pub const CLUSTER_VERSION: i16 = 3;

/// What the gateway answers itself when it authenticates clients: (api key, min, max).
/// SaslHandshake v0 is not offered: its tokens would travel outside Kafka framing.
pub const SASL_ENTRIES: [(i16, i16, i16); 2] = [(17, 1, 1), (36, 0, 2)];

/// The cluster's ApiVersions answer, read for answering clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterVersions {
    /// (api key, min, max), as offered to clients.
    ranges: Vec<(i16, i16, i16)>,
    /// The answer's tagged fields, for v3 and later answers.
    tags: Bytes,
}

impl ClusterVersions {
    /// Reads an ApiVersions v3 answer (a whole frame), as rewritten for clients.
    pub fn read(frame: &Bytes) -> Result<ClusterVersions, WireError> {
        let mut walk = Walk::new(frame, 0, true)?;
        walk.i16()?; // error code
        let mut ranges = Vec::new();
        for _ in 0..walk.array()? {
            let (key, min, max) = (walk.i16()?, walk.i16()?, walk.i16()?);
            walk.tags()?;
            if !SASL_ENTRIES.iter().any(|(sasl, _, _)| *sasl == key) {
                ranges.push((key, min, max));
            }
        }
        ranges.extend(SASL_ENTRIES);
        walk.i32()?; // throttle time
        let tags_at = walk.position();
        walk.tags()?;
        Ok(ClusterVersions {
            ranges,
            tags: frame.slice(tags_at..walk.position()),
        })
    }

    /// The answer to an ApiVersions request at `version` (which the gateway offers).
    pub fn answer(&self, version: i16, correlation_id: i32) -> Bytes {
        let flexible = version >= 3;
        let mut out = frame::begin(16 + self.ranges.len() * 7 + self.tags.len());
        // Header v0 at every version, so a client can read it before versions are agreed.
        out.put_i32(correlation_id);
        out.put_i16(0); // error code
        if flexible {
            put_uvarint(&mut out, self.ranges.len() as u32 + 1);
        } else {
            out.put_i32(self.ranges.len() as i32);
        }
        for (key, min, max) in &self.ranges {
            out.put_i16(*key);
            out.put_i16(*min);
            out.put_i16(*max);
            if flexible {
                out.put_u8(0);
            }
        }
        if version >= 1 {
            out.put_i32(0); // throttle time
        }
        if flexible {
            out.put_slice(&self.tags);
        }
        frame::seal(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::testing::frame as response_frame;
    use crate::rewrite::Rewrite;
    use kafka_protocol::messages::api_versions_response::*;
    use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn cluster() -> ClusterVersions {
        let entry = |key: ApiKey, min, max| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        };
        let answer = ApiVersionsResponse::default()
            .with_api_keys(vec![
                entry(ApiKey::Produce, 3, 13),
                entry(ApiKey::SaslHandshake, 0, 1),
                entry(ApiKey::Metadata, 0, 13),
            ])
            .with_finalized_features(vec![FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str("transaction.version"))
                .with_max_version_level(2)
                .with_min_version_level(2)])
            .with_finalized_features_epoch(7);
        ClusterVersions::read(&response_frame(Rewrite::ApiVersions, 3, 1, &answer)).unwrap()
    }

    #[test]
    fn answers_offer_sasl_and_keep_the_clusters_versions_and_features() {
        let cluster = cluster();
        for version in 0..=4 {
            let out = cluster.answer(version, 42);
            let mut body = out.slice(4..);
            assert_eq!(
                ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
                42
            );
            let got = ApiVersionsResponse::decode(&mut body, version).unwrap();
            assert!(body.is_empty(), "v{version} decodes exactly");
            let ranges: Vec<_> = got
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect();
            assert_eq!(ranges, vec![(0, 3, 13), (3, 0, 13), (17, 1, 1), (36, 0, 2)]);
            if version >= 3 {
                assert_eq!(got.finalized_features_epoch, 7);
                assert_eq!(got.finalized_features[0].max_version_level, 2);
            }
        }
    }
}

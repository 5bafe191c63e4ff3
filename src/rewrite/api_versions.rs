//! ApiVersions (key 18): the gateway offers clients only what it can rewrite.
//!
//! Each API is offered up to the highest version reviewed for fields that name brokers, and
//! each API in the rewrite set only up to the highest version whose response the gateway
//! rewrites, so no client negotiates a version that would slip an address through, whatever
//! the broker supports. Produce (v10+) and Fetch (v16+) answers carry KIP-951 leader hints
//! (`NodeEndpoints`) in a tagged tail after the records: the records stream through as before
//! and only that tail is rewritten, so the latest versions keep the zero-copy path. The KRaft
//! quorum APIs that carry controller endpoints are not offered at all: clients never need
//! them on a broker listener.
//!
//! Capping versions has a second half: a client that sees a feature finalized at some level
//! uses behaviour that needs certain API versions (transaction.version 2 makes the Java
//! producer rely on Produce v12+). So the finalized features, and the broker's supported
//! ones, are capped to the highest level whose API versions the gateway offers
//! ([`FEATURE_LEVELS`]).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::wire::{put_uvarint, Walk, WireError};
use crate::proxy::frame;

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The highest version of every API Apache Kafka serves to clients on a broker listener, as
/// read in the message specs of 4.4.0 (kafka-clients-4.4.0.jar, `common/message/*Response.json`)
/// for fields that name a broker. Versions are reviewed, not inherited: a release that adds
/// an address at a new version cannot slip it through, since clients are offered no version
/// above these. Of the keys Kafka 4.4.0 knows (up to [`LAST_REVIEWED_KEY`]), those missing
/// here are not offered: the ZooKeeper-era inter-broker APIs, and the controller's own APIs
/// (Vote, BeginQuorumEpoch, EndQuorumEpoch, FetchSnapshot and UpdateRaftVoter name
/// controllers; AlterPartition, Envelope, BrokerRegistration, BrokerHeartbeat,
/// AllocateProducerIds, ControllerRegistration, AssignReplicasToDirs).
///
/// Of these, only the responses in the rewrite set name brokers: Produce (from 10), Fetch
/// (from 16), Metadata, FindCoordinator, DescribeGroups, DescribeConfigs (broker settings),
/// DescribeQuorum, DescribeCluster, ConsumerGroupDescribe, ShareGroupDescribe, ShareFetch,
/// ShareAcknowledge, StreamsGroupDescribe. (DescribeAcls and DeleteAcls carry ACL host
/// patterns, and StreamsGroupHeartbeat the application's own endpoints: neither is a
/// broker.)
const REVIEWED: [(i16, i16); 79] = [
    (0, 13), // Produce
    (1, 18), // Fetch
    (2, 11), // ListOffsets
    (3, 13), // Metadata
    (8, 10), // OffsetCommit
    (9, 10), // OffsetFetch
    (10, 6), // FindCoordinator
    (11, 9), // JoinGroup
    (12, 4), // Heartbeat
    (13, 5), // LeaveGroup
    (14, 5), // SyncGroup
    (15, 6), // DescribeGroups
    (16, 5), // ListGroups
    (17, 1), // SaslHandshake
    (18, 5), // ApiVersions
    (19, 7), // CreateTopics
    (20, 6), // DeleteTopics
    (21, 2), // DeleteRecords
    (22, 6), // InitProducerId
    (23, 4), // OffsetForLeaderEpoch
    (24, 5), // AddPartitionsToTxn
    (25, 4), // AddOffsetsToTxn
    (26, 5), // EndTxn
    (27, 2), // WriteTxnMarkers
    (28, 6), // TxnOffsetCommit
    (29, 3), // DescribeAcls
    (30, 3), // CreateAcls
    (31, 3), // DeleteAcls
    (32, 4), // DescribeConfigs
    (33, 2), // AlterConfigs
    (34, 2), // AlterReplicaLogDirs
    (35, 5), // DescribeLogDirs
    (36, 2), // SaslAuthenticate
    (37, 3), // CreatePartitions
    (38, 3), // CreateDelegationToken
    (39, 2), // RenewDelegationToken
    (40, 2), // ExpireDelegationToken
    (41, 3), // DescribeDelegationToken
    (42, 3), // DeleteGroups
    (43, 2), // ElectLeaders
    (44, 1), // IncrementalAlterConfigs
    (45, 1), // AlterPartitionReassignments
    (46, 0), // ListPartitionReassignments
    (47, 0), // OffsetDelete
    (48, 1), // DescribeClientQuotas
    (49, 1), // AlterClientQuotas
    (50, 0), // DescribeUserScramCredentials
    (51, 0), // AlterUserScramCredentials
    (55, 2), // DescribeQuorum
    (57, 2), // UpdateFeatures
    (60, 2), // DescribeCluster
    (61, 0), // DescribeProducers
    (64, 0), // UnregisterBroker
    (65, 0), // DescribeTransactions
    (66, 2), // ListTransactions
    (68, 1), // ConsumerGroupHeartbeat
    (69, 1), // ConsumerGroupDescribe
    (71, 0), // GetTelemetrySubscriptions
    (72, 0), // PushTelemetry
    (74, 1), // ListConfigResources
    (75, 0), // DescribeTopicPartitions
    (76, 1), // ShareGroupHeartbeat
    (77, 1), // ShareGroupDescribe
    (78, 2), // ShareFetch
    (79, 2), // ShareAcknowledge
    (80, 1), // AddRaftVoter
    (81, 0), // RemoveRaftVoter
    (83, 0), // InitializeShareGroupState
    (84, 0), // ReadShareGroupState
    (85, 1), // WriteShareGroupState
    (86, 0), // DeleteShareGroupState
    (87, 1), // ReadShareGroupStateSummary
    (88, 1), // StreamsGroupHeartbeat
    (89, 1), // StreamsGroupDescribe
    (90, 1), // DescribeShareGroupOffsets
    (91, 0), // AlterShareGroupOffsets
    (92, 0), // DeleteShareGroupOffsets
    (93, 0), // StreamsGroupTopologyDescriptionUpdate
    (94, 0), // UnregisterController
];

/// The highest API key Kafka 4.4.0 defines. Keys above it (a newer release's, or a vendor's)
/// pass through untouched.
pub const LAST_REVIEWED_KEY: i16 = 94;

/// StreamsGroupHeartbeat (KIP-1071), which kafka-protocol 0.18 predates.
const STREAMS_GROUP_HEARTBEAT: i16 = 88;

/// One level of a finalized feature, and the API versions a client may rely on once it
/// sees that level finalized: `(api key, lowest version)`.
struct FeatureLevel {
    feature: &'static str,
    level: i16,
    needs: &'static [(i16, i16)],
}

/// The features whose finalized levels tell clients what they may use, with what each level
/// needs, read from Kafka 4.4.0: the `*Version` enums of kafka-server-common-4.4.0.jar
/// (`org.apache.kafka.server.common`, which also define eligible.leader.replicas.version and
/// the test features), the clients of kafka-clients-4.4.0.jar, the broker's `KafkaApis`, and
/// the message specs' version notes. Levels of one feature come in ascending order; a level
/// also needs what the levels below it need.
///
/// - transaction.version (KIP-890 part 2): at 2, the Java producer (`TransactionManager`,
///   from the finalized level alone) stops sending AddPartitionsToTxn and AddOffsetsToTxn:
///   Produce v12+ (`ProduceRequest.LAST_STABLE_VERSION_BEFORE_TRANSACTION_V2` is 11) and
///   TxnOffsetCommit v5+ (`TxnOffsetCommitRequest.Builder` caps at 4 otherwise) add the
///   partitions to the transaction themselves, and EndTxn v5+ (`EndTxnRequest.Builder` caps
///   at 4 otherwise) bumps the epoch on every transaction. Level 1 changes only the
///   broker's transaction log.
/// - group.version (KIP-848): at 1 the broker serves the consumer group protocol,
///   ConsumerGroupHeartbeat and ConsumerGroupDescribe.
/// - share.version (KIP-932): at 1 share groups, whose APIs are stable from v1 (v0 was 4.0's
///   early access); level 2 adds dead-letter queues, on the broker alone.
/// - streams.version (KIP-1071): at 1, StreamsGroupHeartbeat and StreamsGroupDescribe.
///
/// Other features (metadata.version, kraft.version, eligible.leader.replicas.version) are
/// the brokers' and controllers' own: they pass as they are.
const FEATURE_LEVELS: [FeatureLevel; 6] = [
    FeatureLevel {
        feature: "transaction.version",
        level: 1,
        needs: &[],
    },
    FeatureLevel {
        feature: "transaction.version",
        level: 2,
        needs: &[
            (ApiKey::Produce as i16, 12),
            (ApiKey::TxnOffsetCommit as i16, 5),
            (ApiKey::EndTxn as i16, 5),
        ],
    },
    FeatureLevel {
        feature: "group.version",
        level: 1,
        needs: &[
            (ApiKey::ConsumerGroupHeartbeat as i16, 0),
            (ApiKey::ConsumerGroupDescribe as i16, 0),
        ],
    },
    FeatureLevel {
        feature: "share.version",
        level: 1,
        needs: &[
            (ApiKey::ShareGroupHeartbeat as i16, 1),
            (ApiKey::ShareGroupDescribe as i16, 1),
            (ApiKey::ShareFetch as i16, 1),
            (ApiKey::ShareAcknowledge as i16, 1),
        ],
    },
    FeatureLevel {
        feature: "share.version",
        level: 2,
        needs: &[],
    },
    FeatureLevel {
        feature: "streams.version",
        level: 1,
        needs: &[
            (STREAMS_GROUP_HEARTBEAT, 0),
            (super::STREAMS_GROUP_DESCRIBE, 0),
        ],
    },
];

/// The highest level of `feature` whose API versions are all offered, as `offers` tells
/// them; `None` for a feature of no concern to clients, which passes as it is. A level above
/// those reviewed in [`FEATURE_LEVELS`] (a newer release's) is not passed on.
fn feature_cap(feature: &[u8], offers: &dyn Fn(i16) -> Limit) -> Option<i16> {
    let mut levels = FEATURE_LEVELS
        .iter()
        .filter(|l| l.feature.as_bytes() == feature)
        .peekable();
    levels.peek()?;
    let mut cap = 0;
    for level in levels {
        if !level
            .needs
            .iter()
            .all(|&(key, version)| offers(key).allows(version))
        {
            break;
        }
        cap = level.level;
    }
    Some(cap)
}

/// The versions of one API that the gateway lets clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Whatever the broker supports: a key this gateway does not know.
    Any,
    /// Only these versions (inclusive).
    Range { min: i16, max: i16 },
    /// Not offered.
    Hidden,
}

impl Limit {
    /// Whether a request at `version` is one the gateway offered.
    pub fn allows(self, version: i16) -> bool {
        match self {
            Limit::Any => true,
            Limit::Range { min, max } => (min..=max).contains(&version),
            Limit::Hidden => false,
        }
    }
}

/// The highest reviewed version of an API key, if it is offered at all.
pub fn reviewed(api_key: i16) -> Option<i16> {
    REVIEWED
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, max)| *max)
}

/// The gateway's limit for one API key: the reviewed versions, narrowed for the rewrite set
/// to those its walk reads.
pub fn limit(api_key: i16) -> Limit {
    let Some(max) = reviewed(api_key) else {
        return if (0..=LAST_REVIEWED_KEY).contains(&api_key) {
            Limit::Hidden
        } else {
            Limit::Any
        };
    };
    match super::walked_versions(api_key) {
        Some((walk_min, walk_max)) => Limit::Range {
            min: walk_min,
            max: walk_max.min(max),
        },
        None => Limit::Range { min: 0, max },
    }
}

/// The highest ApiVersions version the gateway reads.
pub fn api_versions_max() -> i16 {
    match limit(ApiKey::ApiVersions as i16) {
        Limit::Range { max, .. } => max,
        Limit::Any | Limit::Hidden => 0,
    }
}

/// The range of one API the gateway offers, given the broker's: `None` drops the API.
pub fn capped(api_key: i16, min: i16, max: i16) -> Option<(i16, i16)> {
    match limit(api_key) {
        Limit::Any => Some((min, max)),
        Limit::Hidden => None,
        Limit::Range {
            min: ours_min,
            max: ours_max,
        } => {
            let (min, max) = (min.max(ours_min), max.min(ours_max));
            (min <= max).then_some((min, max))
        }
    }
}

/// Rewrites a broker's ApiVersions response (header v0 at every version) to the gateway's
/// limits. Each entry keeps its own tagged fields; of what follows the list, only the levels
/// of features are capped (v3 and later), every other byte is copied as it is.
pub fn rewrite(frame: &Bytes, version: i16) -> Result<Bytes, WireError> {
    let flexible = version >= 3;
    let mut walk = Walk::new(frame, 0, flexible)?;
    if walk.i16()? == UNSUPPORTED_VERSION {
        let (correlation_id, max) = refused(frame, version);
        return Ok(unsupported_version(correlation_id, max));
    }
    let start = walk.position();
    let count = walk.array()?;
    let mut list = BytesMut::new();
    let mut kept = 0u32;
    let mut changed = false;
    for _ in 0..count {
        let (key, min, max) = (walk.i16()?, walk.i16()?, walk.i16()?);
        let tags_from = walk.position();
        walk.flexible_tags()?;
        let Some((new_min, new_max)) = capped(key, min, max) else {
            changed = true;
            continue;
        };
        changed |= (new_min, new_max) != (min, max);
        kept += 1;
        list.put_i16(key);
        list.put_i16(new_min);
        list.put_i16(new_max);
        list.put_slice(&frame[tags_from..walk.position()]);
    }
    if changed {
        let mut with = BytesMut::with_capacity(list.len() + 5);
        if flexible {
            put_uvarint(&mut with, kept + 1);
        } else {
            with.put_i32(kept as i32);
        }
        with.put_slice(&list);
        walk.edit(start, walk.position(), with.freeze());
    }
    if version >= 1 {
        walk.i32()?; // throttle time
    }
    if flexible {
        cap_features(&mut walk, &limit)?;
    }
    Ok(walk.finish(frame).whole(frame))
}

/// The tags of the response's tagged fields that list features.
const SUPPORTED_FEATURES: u32 = 0;
const FINALIZED_FEATURES: u32 = 2;

/// Caps the levels of features in the response's tagged fields (see [`feature_cap`]), each
/// by replacing its two levels with two of the same width.
fn cap_features(walk: &mut Walk<'_>, offers: &dyn Fn(i16) -> Limit) -> Result<(), WireError> {
    for _ in 0..walk.uvarint()? {
        let tag = walk.uvarint()?;
        let size = walk.uvarint()? as usize;
        if tag != SUPPORTED_FEATURES && tag != FINALIZED_FEATURES {
            walk.skip(size)?;
            continue;
        }
        let end = walk.position().saturating_add(size);
        features(walk, tag == FINALIZED_FEATURES, offers)?;
        // Kafka's own reader trusts the list, others the size: where they disagree, they
        // would see different features.
        if walk.position() != end {
            return Err(WireError::Short { at: end });
        }
    }
    Ok(())
}

/// One list of features: `SupportedFeatures` (name, min version, max version) or
/// `FinalizedFeatures` (name, max level, min level). A capped level also brings the
/// minimum down to it, as readers reject a range whose minimum exceeds its maximum.
fn features(
    walk: &mut Walk<'_>,
    finalized: bool,
    offers: &dyn Fn(i16) -> Limit,
) -> Result<(), WireError> {
    for _ in 0..walk.array()? {
        let name = walk.string()?;
        let levels_at = walk.position();
        let (first, second) = (walk.i16()?, walk.i16()?);
        walk.tags()?;
        let (min, max) = if finalized {
            (second, first)
        } else {
            (first, second)
        };
        let Some(cap) = name.and_then(|name| feature_cap(name, offers)) else {
            continue;
        };
        if max <= cap {
            continue;
        }
        let (min, max) = (min.min(cap), cap);
        let mut levels = BytesMut::with_capacity(4);
        if finalized {
            levels.put_i16(max);
            levels.put_i16(min);
        } else {
            levels.put_i16(min);
            levels.put_i16(max);
        }
        walk.edit(levels_at, levels_at + 4, levels.freeze());
    }
    Ok(())
}

/// The ranges the gateway offers, from a broker's ApiVersions v0 response frame.
pub fn offered(frame: &Bytes) -> Result<Vec<(i16, i16, i16)>, WireError> {
    let mut walk = Walk::new(frame, 0, false)?;
    walk.i16()?; // error code
    let mut ranges = Vec::new();
    for _ in 0..walk.array()? {
        let (key, min, max) = (walk.i16()?, walk.i16()?, walk.i16()?);
        if let Some((min, max)) = capped(key, min, max) {
            ranges.push((key, min, max));
        }
    }
    Ok(ranges)
}

/// A broker's UNSUPPORTED_VERSION answer to ApiVersions, read as far as it can be: the
/// correlation id, and the highest ApiVersions version to offer the client instead.
///
/// Brokers differ in how they lay this answer out. Apache Kafka uses the v0 layout, which
/// carries the broker's own range; librdkafka's mock cluster writes a layout no standard
/// decoder reads. Either way the gateway answers in the v0 layout itself, offering the
/// broker's range when it could be read and one version lower than requested otherwise, so
/// the client steps down until the versions meet. Nothing of the broker's bytes is forwarded.
fn refused(frame: &Bytes, requested: i16) -> (i32, i16) {
    let ours = api_versions_max();
    let correlation_id = frame
        .get(4..8)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let v0_range = || -> Result<Option<i16>, WireError> {
        let mut walk = Walk::new(frame, 0, false)?;
        walk.i16()?;
        let mut max = None;
        for _ in 0..walk.array()? {
            let (key, _min, entry_max) = (walk.i16()?, walk.i16()?, walk.i16()?);
            if key == ApiKey::ApiVersions as i16 {
                max = Some(entry_max);
            }
        }
        Ok(max.filter(|_| walk.position() == frame.len()))
    };
    let max = match v0_range() {
        Ok(Some(max)) => max.clamp(0, ours),
        _ => (requested - 1).clamp(0, ours),
    };
    (correlation_id, max)
}

/// UNSUPPORTED_VERSION in the v0 layout, offering ApiVersions v0 to `max_version`: what a
/// broker says to an ApiVersions request it cannot parse, so the client retries lower.
pub fn unsupported_version(correlation_id: i32, max_version: i16) -> Bytes {
    let response = ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(0)
            .with_max_version(max_version)]);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut out = frame::begin(64);
    // Both are fixed-shape v0 encodings of values built right here: they cannot fail.
    let encoded = header
        .encode(&mut out, 0)
        .and_then(|_| response.encode(&mut out, 0));
    debug_assert!(encoded.is_ok());
    frame::seal(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{response, Rewrite};
    use super::*;
    use kafka_protocol::messages::api_versions_response::{
        FinalizedFeatureKey, SupportedFeatureKey,
    };
    use kafka_protocol::protocol::{Decodable, Message};

    fn entry(api: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(api as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    fn broker_offer() -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(vec![
            entry(ApiKey::Produce, 3, 13),
            entry(ApiKey::Fetch, 4, 18),
            entry(ApiKey::Metadata, 0, 99),
            entry(ApiKey::ApiVersions, 0, 9),
            entry(ApiKey::FindCoordinator, 0, 6),
            entry(ApiKey::DescribeCluster, 0, 7),
            entry(ApiKey::ShareFetch, 0, 0),
            entry(ApiKey::Vote, 0, 2),
            entry(ApiKey::JoinGroup, 0, 9),
            ApiVersion::default()
                .with_api_key(31000)
                .with_min_version(0)
                .with_max_version(4),
        ])
    }

    fn ranges(r: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
        r.api_keys
            .iter()
            .map(|e| (e.api_key, e.min_version, e.max_version))
            .collect()
    }

    #[test]
    fn caps_rewrite_set_keeps_the_rest() {
        for version in 0..=ApiVersionsResponse::VERSIONS.max {
            let out = round_trip(
                Rewrite::ApiVersions,
                version,
                &broker_offer(),
                &Book::default(),
            )
            .unwrap();
            assert_eq!(
                ranges(&out),
                vec![
                    (0, 3, 13),
                    (1, 4, 18),
                    (3, 0, 13),
                    (18, 0, 5),
                    (10, 0, 6),
                    (60, 0, 2),
                    // ShareFetch v0 only: below what the gateway parses, so dropped; Vote hidden.
                    (11, 0, 9),
                    (31000, 0, 4),
                ],
                "v{version}"
            );
        }
    }

    #[test]
    fn limits_match_what_is_offered() {
        assert!(limit(ApiKey::Metadata as i16).allows(13));
        assert!(!limit(ApiKey::Metadata as i16).allows(14));
        // Produce and Fetch at their latest: their leader hints are rewritten.
        assert!(limit(ApiKey::Produce as i16).allows(13));
        assert!(!limit(ApiKey::Produce as i16).allows(14));
        assert!(limit(ApiKey::Fetch as i16).allows(18));
        assert!(!limit(ApiKey::Fetch as i16).allows(19));
        assert!(!limit(ApiKey::Vote as i16).allows(0));
        assert!(limit(31000).allows(i16::MAX));
        // Reviewed, not inherited: no known API above what 4.4.0's specs were read for.
        assert!(limit(ApiKey::JoinGroup as i16).allows(9));
        assert!(!limit(ApiKey::JoinGroup as i16).allows(10));
        assert!(!limit(ApiKey::ListOffsets as i16).allows(12));
        // The controller's own APIs and the removed inter-broker ones are not offered.
        for hidden in [4, 7, 52, 56, 58, 62, 63, 70, 73, 82] {
            assert_eq!(limit(hidden), Limit::Hidden, "key {hidden}");
        }
    }

    #[test]
    fn group_descriptions_are_offered_exactly_as_far_as_they_are_walked() {
        for (kind, min, max) in [
            (Rewrite::ConsumerGroupDescribe, 0, 1),
            (Rewrite::ShareGroupDescribe, 1, 1),
            (Rewrite::StreamsGroupDescribe, 0, 1),
        ] {
            assert_eq!(limit(kind.api_key()), Limit::Range { min, max }, "{kind:?}");
            assert_eq!(Rewrite::for_api(kind.api_key(), max), Some(kind));
        }
    }

    #[test]
    fn every_known_key_up_to_the_last_reviewed_is_decided() {
        for key in 0..=LAST_REVIEWED_KEY {
            assert_ne!(limit(key), Limit::Any, "key {key} passes unreviewed");
        }
        assert_eq!(limit(LAST_REVIEWED_KEY + 1), Limit::Any);
    }

    /// What the gateway offers, but with Produce offered up to `produce_max`.
    fn offers_produce_up_to(produce_max: i16) -> impl Fn(i16) -> Limit {
        move |key| {
            if key == ApiKey::Produce as i16 {
                Limit::Range {
                    min: 0,
                    max: produce_max,
                }
            } else {
                limit(key)
            }
        }
    }

    #[test]
    fn transaction_version_2_needs_produce_12() {
        let tv = b"transaction.version";
        assert_eq!(feature_cap(tv, &offers_produce_up_to(11)), Some(1));
        assert_eq!(feature_cap(tv, &offers_produce_up_to(12)), Some(2));
        assert_eq!(feature_cap(tv, &offers_produce_up_to(13)), Some(2));
        // EndTxn below 5 caps it as well.
        let old_end_txn = |key| match key {
            k if k == ApiKey::EndTxn as i16 => Limit::Range { min: 0, max: 4 },
            k => offers_produce_up_to(13)(k),
        };
        assert_eq!(feature_cap(tv, &old_end_txn), Some(1));
    }

    #[test]
    fn group_share_and_streams_features_follow_their_apis() {
        assert_eq!(feature_cap(b"group.version", &limit), Some(1));
        assert_eq!(feature_cap(b"share.version", &limit), Some(2));
        assert_eq!(feature_cap(b"streams.version", &limit), Some(1));
        let hidden = |gone: i16| {
            move |key| {
                if key == gone {
                    Limit::Hidden
                } else {
                    limit(key)
                }
            }
        };
        let share_fetch = ApiKey::ShareFetch as i16;
        assert_eq!(feature_cap(b"share.version", &hidden(share_fetch)), Some(0));
        let heartbeat = ApiKey::ConsumerGroupHeartbeat as i16;
        assert_eq!(feature_cap(b"group.version", &hidden(heartbeat)), Some(0));
        let streams_heartbeat = STREAMS_GROUP_HEARTBEAT;
        assert_eq!(
            feature_cap(b"streams.version", &hidden(streams_heartbeat)),
            Some(0)
        );
        for other in [
            "metadata.version",
            "kraft.version",
            "eligible.leader.replicas.version",
        ] {
            assert_eq!(feature_cap(other.as_bytes(), &limit), None, "{other}");
        }
    }

    #[test]
    fn feature_levels_ascend_within_each_feature() {
        for pair in FEATURE_LEVELS.windows(2) {
            if pair[0].feature == pair[1].feature {
                assert!(pair[0].level < pair[1].level, "{}", pair[0].feature);
            } else {
                // A feature's levels are listed together.
                let mut later = FEATURE_LEVELS
                    .iter()
                    .skip_while(|l| l.feature != pair[1].feature);
                assert!(
                    !later.any(|l| l.feature == pair[0].feature),
                    "{}",
                    pair[0].feature
                );
            }
        }
    }

    /// What a Kafka 4.4.0 broker of a new cluster finalizes, and what it supports.
    fn broker_with_features() -> ApiVersionsResponse {
        let supported = |name: &str, min: i16, max: i16| {
            SupportedFeatureKey::default()
                .with_name(s(name))
                .with_min_version(min)
                .with_max_version(max)
        };
        let finalized = |name: &str, level: i16| {
            FinalizedFeatureKey::default()
                .with_name(s(name))
                .with_max_version_level(level)
                .with_min_version_level(level)
        };
        broker_offer()
            .with_throttle_time_ms(3)
            .with_supported_features(vec![
                supported("eligible.leader.replicas.version", 0, 1),
                supported("group.version", 0, 1),
                supported("kraft.version", 0, 1),
                supported("metadata.version", 7, 29),
                supported("share.version", 0, 2),
                supported("streams.version", 0, 1),
                supported("transaction.version", 0, 2),
            ])
            .with_finalized_features_epoch(1234)
            .with_finalized_features(vec![
                finalized("group.version", 1),
                finalized("kraft.version", 1),
                finalized("metadata.version", 29),
                finalized("share.version", 1),
                finalized("streams.version", 1),
                finalized("transaction.version", 2),
            ])
            .with_unknown_tagged_fields([(9, Bytes::from_static(b"later"))].into())
    }

    #[test]
    fn feature_levels_are_capped_to_what_is_offered() {
        // The level transaction.version may keep, from what the gateway offers today: 2 once
        // Produce v12+, TxnOffsetCommit v5+ and EndTxn v5+ are all offered, else 1.
        let tv2 = [
            (ApiKey::Produce, 12),
            (ApiKey::TxnOffsetCommit, 5),
            (ApiKey::EndTxn, 5),
        ]
        .iter()
        .all(|&(api, version)| limit(api as i16).allows(version));
        let tv = if tv2 { 2 } else { 1 };
        let broker = broker_with_features();
        let mut want = broker.clone();
        want.supported_features[6].max_version = tv;
        want.finalized_features[5].max_version_level = tv;
        want.finalized_features[5].min_version_level = tv;
        // v5 is laid out as v4, the last version kafka-protocol encodes.
        for version in 3..=api_versions_max() {
            let layout = version.min(ApiVersionsResponse::VERSIONS.max);
            let upstream = frame(Rewrite::ApiVersions, layout, 8, &broker);
            let out = response(Rewrite::ApiVersions, version, upstream, &Book::default()).unwrap();
            let mut body = out.slice(4..);
            ResponseHeader::decode(&mut body, 0).unwrap();
            let got = ApiVersionsResponse::decode(&mut body, layout).unwrap();
            assert!(body.is_empty(), "v{version} decodes exactly");
            assert_eq!(
                got.supported_features, want.supported_features,
                "v{version}"
            );
            assert_eq!(
                got.finalized_features, want.finalized_features,
                "v{version}"
            );
            assert_eq!(got.finalized_features_epoch, 1234);
            assert_eq!(got.throttle_time_ms, 3);
            assert_eq!(got.unknown_tagged_fields, want.unknown_tagged_fields);
        }
    }

    /// A v3 answer with no APIs and one tagged field, finalized transaction.version 2, whose
    /// size is `size_delta` off its contents.
    fn finalized_tv2_frame(size_delta: i8) -> Bytes {
        let mut list = BytesMut::new();
        list.put_u8(2); // one entry
        list.put_u8(20);
        list.put_slice(b"transaction.version");
        list.put_i16(2); // max level
        list.put_i16(2); // min level
        list.put_u8(0); // no tagged fields
        let mut body = BytesMut::new();
        body.put_i32(8); // correlation id
        body.put_i16(0); // error code
        body.put_u8(1); // no APIs
        body.put_i32(0); // throttle time
        body.put_u8(1); // one tagged field
        body.put_u8(FINALIZED_FEATURES as u8);
        body.put_u8((list.len() as i8 + size_delta) as u8);
        body.put_slice(&list);
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        frame.freeze()
    }

    #[test]
    fn a_feature_list_must_fill_its_tagged_field() {
        let offers = offers_produce_up_to(11);
        let capped = |frame: Bytes| {
            let mut walk = Walk::new(&frame, 0, true).unwrap();
            walk.skip(2 + 1 + 4).unwrap();
            cap_features(&mut walk, &offers).map(|()| walk.finish(&frame).whole(&frame))
        };
        let out = capped(finalized_tv2_frame(0)).unwrap();
        let levels = &out[out.len() - 5..out.len() - 1];
        assert_eq!(levels, [0, 1, 0, 1], "max and min level capped to 1");
        for delta in [-1, 1] {
            let err = capped(finalized_tv2_frame(delta)).unwrap_err();
            assert!(matches!(err, WireError::Short { .. }), "{delta}: {err}");
        }
    }

    /// Decodes a gateway answer and checks it is UNSUPPORTED_VERSION offering v0..=max.
    fn assert_refusal(frame: &Bytes, correlation_id: i32, max: i16) {
        let mut body = frame.slice(4..);
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            body.len()
        );
        assert_eq!(
            ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
            correlation_id
        );
        let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert!(body.is_empty());
        assert_eq!(decoded.error_code, UNSUPPORTED_VERSION);
        assert_eq!(ranges(&decoded), vec![(18, 0, max)]);
    }

    #[test]
    fn broker_refusal_in_v0_layout_keeps_the_broker_range() {
        let reply = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(vec![entry(ApiKey::ApiVersions, 0, 2)]);
        let out = response(
            Rewrite::ApiVersions,
            3,
            frame(Rewrite::ApiVersions, 0, 8, &reply),
            &Book::default(),
        )
        .unwrap();
        assert_refusal(&out, 8, 2);
    }

    #[test]
    fn broker_refusal_in_an_unreadable_layout_steps_down_one_version() {
        // librdkafka's mock: error code, a one-byte count, entries without tags, throttle.
        let body: &[u8] = &[0, 0, 0, 9, 0, 35, 1, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0];
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        let out = response(
            Rewrite::ApiVersions,
            4,
            Bytes::from(frame),
            &Book::default(),
        )
        .unwrap();
        assert_refusal(&out, 9, 3);
    }

    #[test]
    fn gateway_answers_too_new_api_versions_like_a_broker() {
        assert_refusal(&unsupported_version(1234, 4), 1234, 4);
    }
}

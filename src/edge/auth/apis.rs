//! What each Kafka API (keys 0 to 94, the request specs of Kafka 4.4) needs from the policy:
//! the operation class, the resources its request names and where, and the error a broker
//! answers when the principal may not. Read from Kafka's own checks (`KafkaApis`, 4.0 source
//! and the 4.4 classes) and mapped onto [`Operation`]'s coarser classes.
//!
//! The data path, for each request of a principal: [`api`] by key; `Open` passes;
//! `InterBroker` is refused (clients never send them); `Checked` runs every [`Check`] whose
//! versions hold the request's version and whose conditions hold, calling
//! [`crate::edge::auth::policy::Policy::decide`] for each resource the `field` names
//! ([`crate::edge::auth::resources`] does all of it from the request's bytes). A
//! `Request`-scope denial answers the whole request with the error; an `Each`-scope denial
//! gives that entry the error in the answer, as a broker does, or, for a gateway that does
//! not split requests, answers the whole request with it. A key with no entry (vendor APIs,
//! keys after 94) is refused while a policy is configured.
//!
//! Fields and conditions are paths of the spec's field names (`Topics[].Name`), checked
//! against the schema of every version they claim by this module's tests. Where a check's
//! field holds null, the request names no resource the principal could be granted: it is
//! denied, unless a condition excluded the null (as `TransactionalId` of an idempotent
//! producer).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;

use crate::edge::auth::policy::{Operation, Resource};

const TOPIC: i16 = ResponseError::TopicAuthorizationFailed.code();
const GROUP: i16 = ResponseError::GroupAuthorizationFailed.code();
const CLUSTER: i16 = ResponseError::ClusterAuthorizationFailed.code();
const TXN: i16 = ResponseError::TransactionalIdAuthorizationFailed.code();
const TOKEN: i16 = ResponseError::DelegationTokenAuthorizationFailed.code();
const ALL: RangeInclusive<i16> = 0..=i16::MAX;

/// What a field of the request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// The cluster: the request as a whole.
    Cluster,
    TopicNames,
    /// Topic ids: mapped to names from the Metadata answers the gateway has seen; an id it
    /// cannot map is denied.
    TopicIds,
    Groups,
    TransactionalIds,
    /// Some topic, whichever ([`Resource::AnyTopic`]).
    AnyTopic,
    /// `ConfigResource` entries (`ResourceType`, `ResourceName`): see [`config_resource`].
    ConfigResources,
}

/// How far a denial reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole request fails with the error.
    Request,
    /// The entry naming the resource fails with the error; a broker serves the others.
    Each,
}

/// A condition on a request's field. A field the request's version lacks reads as its
/// default. A condition on a field of the same array entry as the check's field (`Topics[].Name`
/// for `Topics[].TopicId`) holds or not entry by entry; one on a field outside the check's
/// arrays holds for the whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Null(&'static str),
    NotNull(&'static str),
    /// An integer field, or a boolean as 0 or 1, has this value.
    Is(&'static str, i64),
    /// An integer field is at least this value.
    AtLeast(&'static str, i64),
}

impl When {
    pub fn field(self) -> &'static str {
        match self {
            When::Null(field) | When::NotNull(field) => field,
            When::Is(field, _) | When::AtLeast(field, _) => field,
        }
    }
}

/// One authorization a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub operation: Operation,
    pub named: Named,
    /// Where the request names it, in the spec's field names (`Topics[].Name`); empty for
    /// the cluster and for any topic. For [`Named::ConfigResources`], the name field, with
    /// `ResourceType` beside it.
    pub field: &'static str,
    pub versions: RangeInclusive<i16>,
    /// Conditions on the request, all of which must hold for the check to apply.
    pub when: &'static [When],
    /// A boolean field of the request that, set false, makes the check needless: when the
    /// principal may not, the request goes on with it false instead of being refused
    /// (Metadata's `AllowAutoTopicCreation`).
    pub fallback: Option<&'static str>,
    /// The error code a broker answers with.
    pub error: i16,
    pub scope: Scope,
}

/// What an answer must drop for a principal: entries naming what it may not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFilter {
    pub operation: Operation,
    pub named: Named,
    /// The response fields naming entries. An entry is the innermost array element around
    /// the field; outside arrays, the nullable struct around it, which is made null.
    pub fields: &'static [&'static str],
    /// A request array that, when it holds entries, names what the answer lists: entries the
    /// principal may not see then stay, with `error` and nothing else, as a broker answers
    /// for named resources the principal may not describe. Otherwise they are dropped.
    pub named_by: Option<&'static str>,
    pub error: i16,
}

/// How an API is authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated client may send it; it names nothing to check.
    Open,
    /// Only brokers and controllers send it: never accepted from a client.
    InterBroker,
    Checked(Vec<Check>),
}

/// One API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub key: i16,
    pub name: &'static str,
    pub access: Access,
    pub filter: Option<ResponseFilter>,
}

impl Api {
    /// The checks that apply to a request of `version`, conditions aside.
    pub fn checks(&self, version: i16) -> impl Iterator<Item = &Check> {
        let checks = match &self.access {
            Access::Checked(checks) => checks.as_slice(),
            _ => &[],
        };
        checks.iter().filter(move |c| c.versions.contains(&version))
    }
}

/// The resource and operation a `ConfigResource` entry of a request with `operation` needs,
/// with the error a broker gives when refused; `None` for a resource type this table does
/// not know, which is denied.
pub fn config_resource(
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Option<(Operation, Resource<'_>, i16)> {
    match resource_type {
        2 => Some((operation, Resource::Topic(name), TOPIC)),
        32 => Some((operation, Resource::Group(name), GROUP)),
        // Broker, broker logger, client metrics: the cluster's own.
        4 | 8 | 16 => Some((Operation::ClusterAdmin, Resource::Cluster, CLUSTER)),
        _ => None,
    }
}

/// The entry of an API key.
pub fn api(key: i16) -> Option<Api> {
    let index = usize::try_from(key).ok()?;
    let (name, access, filter) = ENTRIES.get(index)?;
    Some(Api {
        key,
        name,
        access: access(),
        filter: filter.map(|(operation, named, fields, named_by)| ResponseFilter {
            operation,
            named,
            fields,
            named_by,
            error: match named {
                Groups => GROUP,
                TransactionalIds => TXN,
                _ => TOPIC,
            },
        }),
    })
}

/// The number of API keys the table covers (0 to 94).
pub const KEYS: usize = 95;

fn check(
    operation: Operation,
    named: Named,
    field: &'static str,
    versions: RangeInclusive<i16>,
    error: i16,
    scope: Scope,
) -> Check {
    Check {
        operation,
        named,
        field,
        versions,
        when: &[],
        fallback: None,
        error,
        scope,
    }
}

fn when(check: Check, conditions: &'static [When]) -> Check {
    Check {
        when: conditions,
        ..check
    }
}

fn cluster(error: i16) -> Access {
    Access::Checked(vec![check(
        ClusterAdmin,
        Named::Cluster,
        "",
        ALL,
        error,
        Scope::Request,
    )])
}

fn group_member() -> Access {
    Access::Checked(vec![check(Read, Groups, "GroupId", ALL, GROUP, Request)])
}

fn open() -> Access {
    Access::Open
}

fn inter_broker() -> Access {
    Access::InterBroker
}

fn admin() -> Access {
    cluster(CLUSTER)
}

fn tokens() -> Access {
    cluster(TOKEN)
}

use Named::*;
use Operation::*;
use Scope::{Each, Request};

type Filter = Option<(
    Operation,
    Named,
    &'static [&'static str],
    Option<&'static str>,
)>;

/// Index = API key.
#[allow(clippy::type_complexity)]
const ENTRIES: [(&str, fn() -> Access, Filter); KEYS] = [
    ("Produce", produce, None),
    ("Fetch", fetch, None),
    ("ListOffsets", list_offsets, None),
    (
        "Metadata",
        metadata,
        Some((Describe, TopicNames, &["Topics[].Name"], Some("Topics"))),
    ),
    ("LeaderAndIsr", inter_broker, None),
    ("StopReplica", inter_broker, None),
    ("UpdateMetadata", inter_broker, None),
    ("ControlledShutdown", inter_broker, None),
    ("OffsetCommit", offset_commit, None),
    ("OffsetFetch", offset_fetch, None),
    ("FindCoordinator", find_coordinator, None),
    ("JoinGroup", group_member, None),
    ("Heartbeat", group_member, None),
    ("LeaveGroup", group_member, None),
    ("SyncGroup", group_member, None),
    ("DescribeGroups", describe_groups, None),
    (
        "ListGroups",
        open,
        Some((Describe, Groups, &["Groups[].GroupId"], None)),
    ),
    ("SaslHandshake", open, None),
    ("ApiVersions", open, None),
    ("CreateTopics", create_topics, None),
    ("DeleteTopics", delete_topics, None),
    ("DeleteRecords", delete_records, None),
    ("InitProducerId", init_producer_id, None),
    ("OffsetForLeaderEpoch", offset_for_leader_epoch, None),
    ("AddPartitionsToTxn", add_partitions_to_txn, None),
    ("AddOffsetsToTxn", add_offsets_to_txn, None),
    ("EndTxn", end_txn, None),
    ("WriteTxnMarkers", inter_broker, None),
    ("TxnOffsetCommit", txn_offset_commit, None),
    ("DescribeAcls", admin, None),
    ("CreateAcls", admin, None),
    ("DeleteAcls", admin, None),
    ("DescribeConfigs", describe_configs, None),
    ("AlterConfigs", alter_configs, None),
    ("AlterReplicaLogDirs", admin, None),
    ("DescribeLogDirs", admin, None),
    ("SaslAuthenticate", open, None),
    ("CreatePartitions", create_partitions, None),
    ("CreateDelegationToken", tokens, None),
    ("RenewDelegationToken", tokens, None),
    ("ExpireDelegationToken", tokens, None),
    ("DescribeDelegationToken", tokens, None),
    ("DeleteGroups", delete_groups, None),
    ("ElectLeaders", admin, None),
    ("IncrementalAlterConfigs", alter_configs, None),
    ("AlterPartitionReassignments", admin, None),
    ("ListPartitionReassignments", admin, None),
    ("OffsetDelete", offset_delete, None),
    ("DescribeClientQuotas", admin, None),
    ("AlterClientQuotas", admin, None),
    ("DescribeUserScramCredentials", admin, None),
    ("AlterUserScramCredentials", admin, None),
    ("Vote", inter_broker, None),
    ("BeginQuorumEpoch", inter_broker, None),
    ("EndQuorumEpoch", inter_broker, None),
    ("DescribeQuorum", admin, None),
    ("AlterPartition", inter_broker, None),
    ("UpdateFeatures", admin, None),
    ("Envelope", inter_broker, None),
    ("FetchSnapshot", inter_broker, None),
    ("DescribeCluster", open, None),
    ("DescribeProducers", describe_producers, None),
    ("BrokerRegistration", inter_broker, None),
    ("BrokerHeartbeat", inter_broker, None),
    ("UnregisterBroker", admin, None),
    ("DescribeTransactions", describe_transactions, None),
    (
        "ListTransactions",
        open,
        Some((
            Describe,
            TransactionalIds,
            &["TransactionStates[].TransactionalId"],
            None,
        )),
    ),
    ("AllocateProducerIds", inter_broker, None),
    ("ConsumerGroupHeartbeat", consumer_group_heartbeat, None),
    ("ConsumerGroupDescribe", group_describe, None),
    ("ControllerRegistration", inter_broker, None),
    ("GetTelemetrySubscriptions", open, None),
    ("PushTelemetry", open, None),
    ("AssignReplicasToDirs", inter_broker, None),
    ("ListConfigResources", admin, None),
    // An empty topic list asks for every topic, and the answer's cursor names the next one.
    (
        "DescribeTopicPartitions",
        describe_topic_partitions,
        Some((
            Describe,
            TopicNames,
            &["Topics[].Name", "NextCursor.TopicName"],
            None,
        )),
    ),
    ("ShareGroupHeartbeat", share_group_heartbeat, None),
    ("ShareGroupDescribe", group_describe, None),
    ("ShareFetch", share_fetch, None),
    ("ShareAcknowledge", share_fetch, None),
    ("AddRaftVoter", admin, None),
    ("RemoveRaftVoter", admin, None),
    ("UpdateRaftVoter", inter_broker, None),
    ("InitializeShareGroupState", inter_broker, None),
    ("ReadShareGroupState", inter_broker, None),
    ("WriteShareGroupState", inter_broker, None),
    ("DeleteShareGroupState", inter_broker, None),
    ("ReadShareGroupStateSummary", inter_broker, None),
    ("StreamsGroupHeartbeat", streams_group_heartbeat, None),
    ("StreamsGroupDescribe", group_describe, None),
    (
        "DescribeShareGroupOffsets",
        describe_share_group_offsets,
        None,
    ),
    ("AlterShareGroupOffsets", alter_share_group_offsets, None),
    ("DeleteShareGroupOffsets", delete_share_group_offsets, None),
    ("StreamsGroupTopologyDescriptionUpdate", group_member, None),
    ("UnregisterController", admin, None),
];

fn produce() -> Access {
    Access::Checked(vec![
        when(
            check(
                Write,
                TransactionalIds,
                "TransactionalId",
                3..=i16::MAX,
                TXN,
                Request,
            ),
            &[When::NotNull("TransactionalId")],
        ),
        check(Write, TopicNames, "TopicData[].Name", 0..=12, TOPIC, Each),
        check(
            Write,
            TopicIds,
            "TopicData[].TopicId",
            13..=i16::MAX,
            TOPIC,
            Each,
        ),
    ])
}

fn fetch() -> Access {
    Access::Checked(vec![
        // A follower's fetch.
        when(
            check(ClusterAdmin, Cluster, "", 0..=14, CLUSTER, Request),
            &[When::AtLeast("ReplicaId", 0)],
        ),
        when(
            check(ClusterAdmin, Cluster, "", 15..=i16::MAX, CLUSTER, Request),
            &[When::AtLeast("ReplicaState.ReplicaId", 0)],
        ),
        check(Read, TopicNames, "Topics[].Topic", 0..=12, TOPIC, Each),
        check(
            Read,
            TopicIds,
            "Topics[].TopicId",
            13..=i16::MAX,
            TOPIC,
            Each,
        ),
    ])
}

fn list_offsets() -> Access {
    Access::Checked(vec![check(
        Describe,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

/// Describe on the topics is the answer's business: [`ResponseFilter`] drops from it the
/// topics the principal may not describe, or marks them when the request named them, as a
/// broker does. What the request itself may need is Create, for the topics a broker creates
/// when they do not exist: always before v4, when `AllowAutoTopicCreation` from v4 (then
/// cleared instead of refused).
fn metadata() -> Access {
    Access::Checked(vec![
        check(Create, TopicNames, "Topics[].Name", 0..=3, TOPIC, Each),
        Check {
            fallback: Some("AllowAutoTopicCreation"),
            ..when(
                check(
                    Create,
                    TopicNames,
                    "Topics[].Name",
                    4..=i16::MAX,
                    TOPIC,
                    Each,
                ),
                // From v10, an entry may name its topic by id instead, which creates nothing.
                &[
                    When::Is("AllowAutoTopicCreation", 1),
                    When::NotNull("Topics[].Name"),
                ],
            )
        },
    ])
}

fn offset_commit() -> Access {
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicNames, "Topics[].Name", 0..=9, TOPIC, Each),
        check(
            Read,
            TopicIds,
            "Topics[].TopicId",
            10..=i16::MAX,
            TOPIC,
            Each,
        ),
    ])
}

fn offset_fetch() -> Access {
    Access::Checked(vec![
        check(Describe, Groups, "GroupId", 0..=7, GROUP, Request),
        check(Describe, TopicNames, "Topics[].Name", 0..=7, TOPIC, Each),
        check(
            Describe,
            Groups,
            "Groups[].GroupId",
            8..=i16::MAX,
            GROUP,
            Each,
        ),
        check(
            Describe,
            TopicNames,
            "Groups[].Topics[].Name",
            8..=9,
            TOPIC,
            Each,
        ),
        check(
            Describe,
            TopicIds,
            "Groups[].Topics[].TopicId",
            10..=i16::MAX,
            TOPIC,
            Each,
        ),
    ])
}

fn find_coordinator() -> Access {
    const GROUP_KEY: &[When] = &[When::Is("KeyType", 0)];
    const TXN_KEY: &[When] = &[When::Is("KeyType", 1)];
    Access::Checked(vec![
        when(
            check(Describe, Groups, "Key", 0..=3, GROUP, Request),
            GROUP_KEY,
        ),
        when(
            check(Describe, TransactionalIds, "Key", 1..=3, TXN, Request),
            TXN_KEY,
        ),
        when(
            check(
                Describe,
                Groups,
                "CoordinatorKeys[]",
                4..=i16::MAX,
                GROUP,
                Each,
            ),
            GROUP_KEY,
        ),
        when(
            check(
                Describe,
                TransactionalIds,
                "CoordinatorKeys[]",
                4..=i16::MAX,
                TXN,
                Each,
            ),
            TXN_KEY,
        ),
        // 2 is the share coordinator, which only brokers ask for; later types are unknown.
        when(
            check(ClusterAdmin, Cluster, "", ALL, CLUSTER, Request),
            &[When::AtLeast("KeyType", 2)],
        ),
    ])
}

fn describe_groups() -> Access {
    Access::Checked(vec![check(Describe, Groups, "Groups[]", ALL, GROUP, Each)])
}

fn group_describe() -> Access {
    Access::Checked(vec![check(
        Describe,
        Groups,
        "GroupIds[]",
        ALL,
        GROUP,
        Each,
    )])
}

fn create_topics() -> Access {
    Access::Checked(vec![check(
        Create,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

fn delete_topics() -> Access {
    Access::Checked(vec![
        check(Delete, TopicNames, "TopicNames[]", 0..=5, TOPIC, Each),
        when(
            check(
                Delete,
                TopicNames,
                "Topics[].Name",
                6..=i16::MAX,
                TOPIC,
                Each,
            ),
            &[When::NotNull("Topics[].Name")],
        ),
        when(
            check(
                Delete,
                TopicIds,
                "Topics[].TopicId",
                6..=i16::MAX,
                TOPIC,
                Each,
            ),
            &[When::Null("Topics[].Name")],
        ),
    ])
}

fn delete_records() -> Access {
    Access::Checked(vec![check(
        Delete,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

fn init_producer_id() -> Access {
    Access::Checked(vec![
        when(
            check(
                Write,
                TransactionalIds,
                "TransactionalId",
                ALL,
                TXN,
                Request,
            ),
            &[When::NotNull("TransactionalId")],
        ),
        // An idempotent producer.
        when(
            check(Write, AnyTopic, "", ALL, CLUSTER, Request),
            &[When::Null("TransactionalId")],
        ),
    ])
}

fn offset_for_leader_epoch() -> Access {
    Access::Checked(vec![
        // A follower.
        when(
            check(ClusterAdmin, Cluster, "", 3..=i16::MAX, CLUSTER, Request),
            &[When::AtLeast("ReplicaId", 0)],
        ),
        check(Describe, TopicNames, "Topics[].Topic", ALL, TOPIC, Each),
    ])
}

fn add_partitions_to_txn() -> Access {
    Access::Checked(vec![
        check(
            Write,
            TransactionalIds,
            "V3AndBelowTransactionalId",
            0..=3,
            TXN,
            Request,
        ),
        check(
            Write,
            TopicNames,
            "V3AndBelowTopics[].Name",
            0..=3,
            TOPIC,
            Each,
        ),
        // From v4, only brokers send it (KIP-890).
        check(ClusterAdmin, Cluster, "", 4..=i16::MAX, CLUSTER, Request),
    ])
}

fn add_offsets_to_txn() -> Access {
    Access::Checked(vec![
        check(
            Write,
            TransactionalIds,
            "TransactionalId",
            ALL,
            TXN,
            Request,
        ),
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
    ])
}

fn end_txn() -> Access {
    Access::Checked(vec![check(
        Write,
        TransactionalIds,
        "TransactionalId",
        ALL,
        TXN,
        Request,
    )])
}

fn txn_offset_commit() -> Access {
    Access::Checked(vec![
        check(
            Write,
            TransactionalIds,
            "TransactionalId",
            ALL,
            TXN,
            Request,
        ),
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicNames, "Topics[].Name", 0..=5, TOPIC, Each),
        check(
            Read,
            TopicIds,
            "Topics[].TopicId",
            6..=i16::MAX,
            TOPIC,
            Each,
        ),
    ])
}

fn describe_configs() -> Access {
    Access::Checked(vec![check(
        Describe,
        ConfigResources,
        "Resources[].ResourceName",
        ALL,
        TOPIC,
        Each,
    )])
}

fn alter_configs() -> Access {
    Access::Checked(vec![check(
        Alter,
        ConfigResources,
        "Resources[].ResourceName",
        ALL,
        TOPIC,
        Each,
    )])
}

fn create_partitions() -> Access {
    Access::Checked(vec![check(
        Alter,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

fn delete_groups() -> Access {
    Access::Checked(vec![check(
        Delete,
        Groups,
        "GroupsNames[]",
        ALL,
        GROUP,
        Each,
    )])
}

fn offset_delete() -> Access {
    Access::Checked(vec![
        check(Delete, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicNames, "Topics[].Name", ALL, TOPIC, Each),
    ])
}

fn describe_producers() -> Access {
    Access::Checked(vec![check(
        Read,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

fn describe_transactions() -> Access {
    Access::Checked(vec![check(
        Describe,
        TransactionalIds,
        "TransactionalIds[]",
        ALL,
        TXN,
        Each,
    )])
}

/// A null subscription names nothing; a regex subscription is resolved by the broker, and
/// its topics are checked when fetched.
fn consumer_group_heartbeat() -> Access {
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(
            Describe,
            TopicNames,
            "SubscribedTopicNames[]",
            ALL,
            TOPIC,
            Request,
        ),
    ])
}

fn describe_topic_partitions() -> Access {
    Access::Checked(vec![check(
        Describe,
        TopicNames,
        "Topics[].Name",
        ALL,
        TOPIC,
        Each,
    )])
}

fn share_group_heartbeat() -> Access {
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(
            Describe,
            TopicNames,
            "SubscribedTopicNames[]",
            ALL,
            TOPIC,
            Request,
        ),
    ])
}

fn share_fetch() -> Access {
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicIds, "Topics[].TopicId", ALL, TOPIC, Each),
    ])
}

/// A null topology (every heartbeat but the first) names nothing.
fn streams_group_heartbeat() -> Access {
    let topics = |field| check(Describe, TopicNames, field, ALL, TOPIC, Request);
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        topics("Topology.Subtopologies[].SourceTopics[]"),
        topics("Topology.Subtopologies[].RepartitionSinkTopics[]"),
        topics("Topology.Subtopologies[].StateChangelogTopics[].Name"),
        topics("Topology.Subtopologies[].RepartitionSourceTopics[].Name"),
    ])
}

fn describe_share_group_offsets() -> Access {
    Access::Checked(vec![
        check(Describe, Groups, "Groups[].GroupId", ALL, GROUP, Each),
        check(
            Describe,
            TopicNames,
            "Groups[].Topics[].TopicName",
            ALL,
            TOPIC,
            Each,
        ),
    ])
}

fn alter_share_group_offsets() -> Access {
    Access::Checked(vec![
        check(Read, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicNames, "Topics[].TopicName", ALL, TOPIC, Each),
    ])
}

fn delete_share_group_offsets() -> Access {
    Access::Checked(vec![
        check(Delete, Groups, "GroupId", ALL, GROUP, Request),
        check(Read, TopicNames, "Topics[].TopicName", ALL, TOPIC, Each),
    ])
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::edge::auth::schema::{self, Message};

    /// Whether every field along `path` is in `message` at `version`.
    fn present(message: &Message, path: &str, version: i16) -> bool {
        let mut prefix = String::new();
        path.split('.').all(|segment| {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(segment);
            message.field(&prefix).is_some_and(|f| f.present(version))
        })
    }

    /// Every path of the table names a field of the request, in every version the check
    /// claims (within the versions Kafka 4.4 has); a condition outside the check's arrays
    /// (or on a check without a field) reads one value for the whole request.
    #[test]
    fn every_path_names_a_field_in_every_version_it_claims() {
        let mut paths = 0;
        for key in 0..KEYS as i16 {
            let api = api(key).unwrap();
            let message = schema::request(key).unwrap();
            let Access::Checked(checks) = &api.access else {
                continue;
            };
            for check in checks {
                let lo = (*check.versions.start()).max(message.versions.lo);
                let hi = (*check.versions.end()).min(message.versions.hi);
                assert!(lo <= hi, "{} {check:?}: no version", api.name);
                for version in lo..=hi {
                    if !check.field.is_empty() {
                        assert!(
                            present(message, check.field, version),
                            "{} v{version} {}",
                            api.name,
                            check.field
                        );
                        paths += 1;
                    }
                    for condition in check.when {
                        let field = condition.field();
                        // A field the version lacks reads as its default.
                        assert!(message.field(field).is_some(), "{} {field}", api.name);
                        let arrays = field.rsplit_once("[].").map_or("", |(a, _)| a);
                        assert!(
                            check.field.starts_with(arrays),
                            "{} {field} outside {}",
                            api.name,
                            check.field
                        );
                    }
                    if let Some(flag) = check.fallback {
                        assert!(
                            present(message, flag, version),
                            "{} v{version} {flag}",
                            api.name
                        );
                        assert_eq!(message.field(flag).unwrap().ty, schema::Type::Bool);
                    }
                }
            }
            if let Some(filter) = &api.filter {
                let response = schema::response(key).unwrap();
                for version in response.versions.lo..=response.versions.hi {
                    for field in filter.fields {
                        assert!(
                            present(response, field, version),
                            "{} v{version} {field}",
                            api.name
                        );
                    }
                    if let Some(named_by) = filter.named_by {
                        assert!(
                            present(message, named_by, version),
                            "{} v{version} {named_by}",
                            api.name
                        );
                    }
                }
            }
        }
        assert!(paths > 250, "{paths}");
    }

    #[test]
    fn every_key_from_0_to_94_has_one_entry_named_as_kafka_names_it() {
        for key in 0..KEYS as i16 {
            let api = api(key).unwrap();
            assert_eq!(api.key, key);
            // kafka-protocol 0.18 knows most keys; its names must agree with ours.
            if let Ok(known) = ApiKey::try_from(key) {
                assert_eq!(format!("{known:?}"), api.name, "key {key}");
            }
        }
        assert!(api(KEYS as i16).is_none());
        assert!(api(-1).is_none());
        let names: std::collections::BTreeSet<_> =
            ENTRIES.iter().map(|(name, _, _)| name).collect();
        assert_eq!(names.len(), KEYS);
    }

    #[test]
    fn errors_are_the_broker_codes() {
        assert_eq!((TOPIC, GROUP, CLUSTER, TXN, TOKEN), (29, 30, 31, 53, 65));
        for key in 0..KEYS as i16 {
            let api = api(key).unwrap();
            for check in api.checks(i16::MAX).chain(api.checks(0)) {
                let expected = match check.named {
                    Cluster | AnyTopic => CLUSTER,
                    TopicNames | TopicIds | ConfigResources => TOPIC,
                    Groups => GROUP,
                    TransactionalIds => TXN,
                };
                // Delegation tokens are the one cluster exception.
                if check.error != TOKEN {
                    assert_eq!(check.error, expected, "{} {check:?}", api.name);
                }
                assert_eq!(
                    check.field.is_empty(),
                    matches!(check.named, Cluster | AnyTopic),
                    "{}",
                    api.name
                );
            }
        }
    }

    #[test]
    fn topic_ids_take_over_where_the_specs_say() {
        let named_by = |key: i16, version: i16| -> Vec<(Named, &str)> {
            api(key)
                .unwrap()
                .checks(version)
                .filter(|c| matches!(c.named, TopicNames | TopicIds))
                .map(|c| (c.named, c.field))
                .collect()
        };
        assert_eq!(named_by(0, 12), vec![(TopicNames, "TopicData[].Name")]);
        assert_eq!(named_by(0, 13), vec![(TopicIds, "TopicData[].TopicId")]);
        assert_eq!(named_by(1, 12), vec![(TopicNames, "Topics[].Topic")]);
        assert_eq!(named_by(1, 13), vec![(TopicIds, "Topics[].TopicId")]);
        assert_eq!(named_by(8, 10), vec![(TopicIds, "Topics[].TopicId")]);
        assert_eq!(named_by(28, 6), vec![(TopicIds, "Topics[].TopicId")]);
        assert_eq!(named_by(78, 1), vec![(TopicIds, "Topics[].TopicId")]);
    }

    #[test]
    fn the_common_client_apis_map_to_the_expected_classes() {
        let first = |key: i16, version: i16| {
            let api = api(key).unwrap();
            let check = api.checks(version).next().cloned().unwrap();
            (check.operation, check.named, check.scope)
        };
        assert_eq!(first(0, 11), (Write, TransactionalIds, Request));
        assert_eq!(first(11, 9), (Read, Groups, Request));
        assert_eq!(first(19, 7), (Create, TopicNames, Each));
        assert_eq!(first(22, 5), (Write, TransactionalIds, Request));
        assert_eq!(first(29, 3), (ClusterAdmin, Cluster, Request));
        assert_eq!(api(18).unwrap().access, Access::Open);
        assert_eq!(api(4).unwrap().access, Access::InterBroker);
        assert_eq!(api(3).unwrap().filter.unwrap().fields, ["Topics[].Name"]);
        let open: Vec<_> = (0..KEYS as i16)
            .filter_map(api)
            .filter(|a| a.access == Access::Open)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            open,
            vec![
                "ListGroups",
                "SaslHandshake",
                "ApiVersions",
                "SaslAuthenticate",
                "DescribeCluster",
                "ListTransactions",
                "GetTelemetrySubscriptions",
                "PushTelemetry"
            ]
        );
    }

    #[test]
    fn config_resources_map_by_type() {
        assert_eq!(
            config_resource(2, "t", Describe),
            Some((Describe, Resource::Topic("t"), TOPIC))
        );
        assert_eq!(
            config_resource(32, "g", Alter),
            Some((Alter, Resource::Group("g"), GROUP))
        );
        for broker in [4, 8, 16] {
            assert_eq!(
                config_resource(broker, "1", Describe),
                Some((ClusterAdmin, Resource::Cluster, CLUSTER))
            );
        }
        assert_eq!(config_resource(0, "x", Describe), None);
    }
}

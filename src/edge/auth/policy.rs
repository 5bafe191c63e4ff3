//! Who may do what at the edge: grants of operation classes on topics, consumer groups and
//! transactional ids (literal names, `prefix*`, or `*`), per principal, plus grants every
//! principal has. Once a policy is configured, whatever no grant allows is denied.
//!
//! The operation classes are coarser than Kafka's ACL operations on purpose: a platform team
//! writes `read` for a consumer, not READ on the topic plus READ on the group plus DESCRIBE on
//! both. [`crate::edge::auth::apis`] says which class and resources each Kafka API needs.

use std::collections::{BTreeSet, HashMap};

/// A class of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Consume a topic; join, commit to and leave a group.
    Read,
    /// Produce to a topic; use a transactional id.
    Write,
    /// Metadata, offsets, configurations and descriptions of topics, groups, transactions.
    Describe,
    /// Create topics.
    Create,
    /// Delete topics, records, groups and their offsets.
    Delete,
    /// Change topic and group configurations, add partitions.
    Alter,
    /// Anything on the cluster itself: ACLs, quotas, broker configurations, reassignments,
    /// leader elections, features, SCRAM users, delegation tokens.
    ClusterAdmin,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Read,
        Operation::Write,
        Operation::Describe,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::ClusterAdmin,
    ];

    /// The name in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Describe => "describe",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Alter => "alter",
            Operation::ClusterAdmin => "cluster_admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What an operation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
    TransactionalId(&'a str),
    /// The cluster itself.
    Cluster,
    /// Some topic, whichever: an idempotent producer's InitProducerId, which Kafka allows to
    /// anyone who may write to any topic.
    AnyTopic,
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Why an operation was denied, for audit lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The principal has no grant at all.
    NoGrant,
    /// No grant of the principal allows this operation class.
    Operation,
    /// Grants allow the operation class, on other resources.
    Resource,
}

impl DenyReason {
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::NoGrant => "no_grant",
            DenyReason::Operation => "operation_not_granted",
            DenyReason::Resource => "resource_not_granted",
        }
    }
}

/// Names a grant covers: literals, prefixes, or all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    all: bool,
    literals: BTreeSet<String>,
    prefixes: Vec<String>,
}

impl Patterns {
    /// Reads `name`, `prefix*` and `*` entries; `what` names the list in problems.
    pub fn parse(entries: &[String], what: &str, problems: &mut Vec<String>) -> Patterns {
        let mut patterns = Patterns::default();
        for entry in entries {
            match entry.strip_suffix('*') {
                _ if entry.is_empty() => problems.push(format!("{what}: an empty name")),
                Some("") => patterns.all = true,
                Some(prefix) if !prefix.contains('*') => patterns.prefixes.push(prefix.to_owned()),
                None if !entry.contains('*') => {
                    patterns.literals.insert(entry.clone());
                }
                _ => problems.push(format!(
                    "{what}: {entry:?} has a * that is not at its end (a name, a prefix* or *)"
                )),
            }
        }
        patterns
    }

    pub fn matches(&self, name: &str) -> bool {
        self.all
            || self.literals.contains(name)
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.literals.is_empty() && self.prefixes.is_empty()
    }
}

/// One grant: operation classes on the listed resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    operations: u8,
    pub topics: Patterns,
    pub groups: Patterns,
    pub transactional_ids: Patterns,
}

impl Grant {
    pub fn new(
        operations: &[Operation],
        topics: Patterns,
        groups: Patterns,
        transactional_ids: Patterns,
    ) -> Grant {
        Grant {
            operations: operations.iter().fold(0, |bits, op| bits | op.bit()),
            topics,
            groups,
            transactional_ids,
        }
    }

    pub fn allows(&self, operation: Operation) -> bool {
        self.operations & operation.bit() != 0
    }

    fn covers(&self, resource: Resource<'_>) -> bool {
        match resource {
            Resource::Topic(name) => self.topics.matches(name),
            Resource::Group(name) => self.groups.matches(name),
            Resource::TransactionalId(name) => self.transactional_ids.matches(name),
            Resource::Cluster => self.allows(Operation::ClusterAdmin),
            Resource::AnyTopic => !self.topics.is_empty(),
        }
    }
}

/// A configured policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    principals: HashMap<String, Vec<Grant>>,
    /// Granted to every principal, besides its own grants.
    everyone: Vec<Grant>,
}

impl Policy {
    /// A policy of per-principal grants and grants for everyone.
    pub fn new(grants: Vec<(String, Grant)>, everyone: Vec<Grant>) -> Policy {
        let mut principals: HashMap<String, Vec<Grant>> = HashMap::new();
        for (principal, grant) in grants {
            principals.entry(principal).or_default().push(grant);
        }
        Policy {
            principals,
            everyone,
        }
    }

    /// Whether `principal` may do `operation` on `resource`. Pure; denies unless a grant of
    /// the principal, or one for everyone, allows it. The cluster itself is covered only by
    /// grants that include [`Operation::ClusterAdmin`].
    pub fn decide(
        &self,
        principal: &str,
        operation: Operation,
        resource: Resource<'_>,
    ) -> Decision {
        let own = self
            .principals
            .get(principal)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut grants = own.iter().chain(&self.everyone).peekable();
        if grants.peek().is_none() {
            return Decision::Deny(DenyReason::NoGrant);
        }
        let mut operation_granted = false;
        for grant in grants.filter(|g| g.allows(operation)) {
            operation_granted = true;
            if grant.covers(resource) {
                return Decision::Allow;
            }
        }
        Decision::Deny(if operation_granted {
            DenyReason::Resource
        } else {
            DenyReason::Operation
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn patterns(list: &[&str]) -> Patterns {
        let mut problems = Vec::new();
        let entries: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let patterns = Patterns::parse(&entries, "test", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        patterns
    }

    fn grant(ops: &[Operation], topics: &[&str], groups: &[&str], txn: &[&str]) -> Grant {
        Grant::new(ops, patterns(topics), patterns(groups), patterns(txn))
    }

    /// Team A reads and writes its own topics and group; everyone may describe `public.*`;
    /// ops is a cluster admin.
    fn policy() -> Policy {
        use Operation::*;
        Policy::new(
            vec![
                (
                    "team-a".into(),
                    grant(
                        &[Read, Write, Describe],
                        &["team-a.*"],
                        &["team-a.*"],
                        &["team-a-tx"],
                    ),
                ),
                (
                    "team-a".into(),
                    grant(&[Create], &["team-a.scratch.*"], &[], &[]),
                ),
                (
                    "ops".into(),
                    grant(&[ClusterAdmin, Describe], &["*"], &["*"], &[]),
                ),
            ],
            vec![grant(&[Describe], &["public.*"], &[], &[])],
        )
    }

    #[test]
    fn grants_allow_exactly_their_operations_on_their_resources() {
        use Operation::*;
        let p = policy();
        let allow = |who, op, resource| p.decide(who, op, resource).is_allowed();
        assert!(allow("team-a", Write, Resource::Topic("team-a.orders")));
        assert!(allow("team-a", Read, Resource::Group("team-a.billing")));
        assert!(allow(
            "team-a",
            Write,
            Resource::TransactionalId("team-a-tx")
        ));
        assert!(!allow(
            "team-a",
            Write,
            Resource::TransactionalId("team-a-tx2")
        ));
        assert!(allow("team-a", Create, Resource::Topic("team-a.scratch.x")));
        assert!(!allow("team-a", Create, Resource::Topic("team-a.orders")));
        assert!(allow("team-a", Write, Resource::AnyTopic));
        assert!(!allow("team-a", ClusterAdmin, Resource::Cluster));
        // Describing topics is not describing the cluster.
        assert!(!allow("team-a", Describe, Resource::Cluster));
        assert!(allow("ops", Describe, Resource::Cluster));
        // Grants for everyone add to a principal's own.
        assert!(allow("team-a", Describe, Resource::Topic("public.news")));
        assert!(allow("stranger", Describe, Resource::Topic("public.news")));
        assert!(!allow(
            "stranger",
            Describe,
            Resource::Topic("team-a.orders")
        ));
        assert!(!allow("stranger", Write, Resource::AnyTopic));
        assert!(allow("ops", ClusterAdmin, Resource::Cluster));
        assert!(allow("ops", Describe, Resource::Group("anything")));
        assert!(!allow("ops", Read, Resource::Topic("team-a.orders")));
    }

    #[test]
    fn denials_say_why() {
        use Operation::*;
        let p = policy();
        assert_eq!(
            p.decide("team-a", Delete, Resource::Topic("team-a.orders")),
            Decision::Deny(DenyReason::Operation)
        );
        assert_eq!(
            p.decide("team-a", Read, Resource::Topic("team-b.orders")),
            Decision::Deny(DenyReason::Resource)
        );
        let none = Policy::new(vec![("x".into(), grant(&[Read], &["*"], &[], &[]))], vec![]);
        assert_eq!(
            none.decide("y", Read, Resource::Topic("t")),
            Decision::Deny(DenyReason::NoGrant)
        );
        // A policy without any grant denies everything.
        assert_eq!(
            Policy::default().decide("x", Describe, Resource::Cluster),
            Decision::Deny(DenyReason::NoGrant)
        );
        assert_eq!(DenyReason::Resource.code(), "resource_not_granted");
    }

    #[test]
    fn patterns_are_literals_prefixes_or_all() {
        let p = patterns(&["orders", "team-a.*", "x"]);
        assert!(
            p.matches("orders") && p.matches("team-a.") && p.matches("team-a.z") && p.matches("x")
        );
        assert!(!p.matches("orders2") && !p.matches("team-a") && !p.matches(""));
        assert!(patterns(&["*"]).matches("anything"));
        assert!(patterns(&[]).is_empty());
        let mut problems = Vec::new();
        let entries: Vec<String> = ["", "a*b", "**", "*x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Patterns::parse(&entries, "topics", &mut problems);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0], "topics: an empty name");
        assert_eq!(
            problems[1],
            "topics: \"a*b\" has a * that is not at its end (a name, a prefix* or *)"
        );
    }

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("Read"), None);
    }

    proptest! {
        /// A literal grant allows its name and nothing else; a prefix grant allows exactly
        /// the names that start with it.
        #[test]
        fn literal_and_prefix_grants_match_exactly(
            name in "[a-z.]{1,12}",
            other in "[a-z.]{0,12}",
        ) {
            let literal = Policy::new(vec![("p".into(), grant(&[Operation::Read], &[&name], &[], &[]))], vec![]);
            prop_assert_eq!(literal.decide("p", Operation::Read, Resource::Topic(&other)).is_allowed(), other == name);
            let prefix = format!("{name}*");
            let prefixed = Policy::new(vec![("p".into(), grant(&[Operation::Read], &[&prefix], &[], &[]))], vec![]);
            prop_assert_eq!(
                prefixed.decide("p", Operation::Read, Resource::Topic(&other)).is_allowed(),
                other.starts_with(&name)
            );
            // Never the group of the same name, never another principal.
            prop_assert!(!literal.decide("p", Operation::Read, Resource::Group(&name)).is_allowed());
            prop_assert!(!literal.decide("q", Operation::Read, Resource::Topic(&name)).is_allowed());
        }
    }
}

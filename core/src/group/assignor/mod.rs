//! Partition assignors: the functions the group leader runs, in Kafka's classic
//! protocol, to divide the partitions of the subscribed topics among the members of a
//! group. The coordinator only picks which assignor the group uses (`select_protocol`)
//! and relays the leader's result in SyncGroup; the assignor itself runs on the leader,
//! so the simulator's consumers and Eddy's client share these functions.
//!
//! Each assignor is a pure function of the members' subscriptions and the partition
//! count of each topic. The result never depends on the order the members are given in,
//! and nothing iterates a hash map, so a seed always gives the same assignment.
//!
//! - `range` — Kafka's `RangeAssignor`: per topic, consecutive ranges.
//! - `roundrobin` — Kafka's `RoundRobinAssignor`: all partitions dealt in turn.
//! - `cooperative-sticky` — Kafka's `CooperativeStickyAssignor` (KIP-429): balanced,
//!   keeps what each member owns, and revokes a partition before another member gets it.

mod cooperative_sticky;
mod range;
mod roundrobin;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::group::Generation;
use crate::types::TopicPartition;

/// What the leader hands back: each member id with the partitions it is to consume,
/// sorted by topic then partition. Every member given to the assignor has an entry, if
/// only an empty one, as in Kafka.
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

/// One member's subscription, as the coordinator relays it to the leader in the
/// JoinGroup response (Kafka's `ConsumerPartitionAssignor.Subscription`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345); `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The topics the member subscribes to.
    pub topics: BTreeSet<String>,
    /// The partitions the member owns now (KIP-429's `ownedPartitions`). Only
    /// `cooperative-sticky` reads them.
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member was given `owned_partitions` (KIP-792);
    /// `None` if it reports none, which ranks below every generation.
    pub generation: Option<Generation>,
}

impl Subscription {
    /// A dynamic member that owns nothing yet.
    pub fn new<T: Into<String>>(
        member_id: impl Into<String>,
        topics: impl IntoIterator<Item = T>,
    ) -> Subscription {
        Subscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            owned_partitions: Vec::new(),
            generation: None,
        }
    }

    /// The same member, static under `group.instance.id = instance_id`.
    pub fn with_group_instance_id(mut self, instance_id: impl Into<String>) -> Subscription {
        self.group_instance_id = Some(instance_id.into());
        self
    }

    /// The same member, owning `partitions` since `generation`.
    pub fn with_owned(
        mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
        generation: Generation,
    ) -> Subscription {
        self.owned_partitions = partitions.into_iter().collect();
        self.generation = Some(generation);
        self
    }
}

/// How members give up partitions in a rebalance (Kafka's `RebalanceProtocol`, KIP-429).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before it rejoins.
    Eager,
    /// A member keeps its partitions through the rebalance and revokes only those the
    /// new assignment leaves out; a member that revoked any rejoins at once, and the
    /// follow-up rebalance hands those partitions to their new owners.
    Cooperative,
}

/// The assignors Eddy ships, under the protocol names Kafka's clients put in JoinGroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assignor {
    Range,
    RoundRobin,
    CooperativeSticky,
}

impl Assignor {
    pub const ALL: [Assignor; 3] = [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ];

    /// The protocol name in JoinGroup, as Kafka's clients spell it.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The assignor a protocol name stands for; `None` for a name Eddy does not ship
    /// (another client's assignor, such as Kafka's eager `sticky`).
    pub fn from_name(name: &str) -> Option<Assignor> {
        Assignor::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn rebalance_protocol(self) -> RebalanceProtocol {
        match self {
            Assignor::Range | Assignor::RoundRobin => RebalanceProtocol::Eager,
            Assignor::CooperativeSticky => RebalanceProtocol::Cooperative,
        }
    }

    /// Divides the partitions of the subscribed topics among `members`.
    /// `partitions_per_topic` is the leader's metadata; a subscribed topic missing from
    /// it is skipped, as Kafka does. Member ids must be unique (the coordinator
    /// guarantees it); the order of `members` does not matter.
    pub fn assign(
        self,
        members: &[Subscription],
        partitions_per_topic: &BTreeMap<String, u32>,
    ) -> GroupAssignment {
        let ids: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(
            ids.len(),
            members.len(),
            "member ids given to the assignor must be unique"
        );
        let mut assignment = match self {
            Assignor::Range => range::assign(members, partitions_per_topic),
            Assignor::RoundRobin => roundrobin::assign(members, partitions_per_topic),
            Assignor::CooperativeSticky => {
                cooperative_sticky::assign(members, partitions_per_topic)
            }
        };
        for partitions in assignment.values_mut() {
            partitions.sort();
        }
        // Postconditions shared by every assignor: one entry per member, no partition
        // given twice, and none to a member that does not subscribe to its topic.
        assert_eq!(assignment.len(), members.len());
        let mut seen = BTreeSet::new();
        for m in members {
            for tp in &assignment[&m.member_id] {
                assert!(
                    m.topics.contains(&tp.topic),
                    "{tp} given to a non-subscriber"
                );
                assert!(
                    tp.partition < partitions_per_topic[&tp.topic],
                    "{tp} does not exist"
                );
                assert!(seen.insert(tp), "{tp} given to two members");
            }
        }
        assignment
    }
}

/// Chooses the assignor a group uses, as Kafka's coordinator does when a rebalance
/// completes. `preferences` holds each member's protocol names in its order of
/// preference (the `protocols` of its JoinGroup), leader first. Only a protocol every
/// member lists is a candidate; each member votes for the candidate it prefers most,
/// and the one with the most votes wins. Kafka leaves a tie to hash order; here it goes
/// to the protocol the leader (the first member) prefers. `None` when no protocol is
/// common to all members — Kafka refuses the member that would cause that with
/// INCONSISTENT_GROUP_PROTOCOL.
pub fn select_protocol<S: AsRef<str>>(preferences: &[Vec<S>]) -> Option<&str> {
    let leader = preferences.first()?;
    let listed_by_all = |name: &str| {
        preferences
            .iter()
            .all(|p| p.iter().any(|n| n.as_ref() == name))
    };
    let candidates: Vec<&str> = leader
        .iter()
        .map(AsRef::as_ref)
        .filter(|name| listed_by_all(name))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for member in preferences {
        let vote = member
            .iter()
            .map(AsRef::as_ref)
            .find(|name| candidates.contains(name))
            .expect("a candidate is listed by every member");
        *votes.entry(vote).or_default() += 1;
    }
    let mut best: Option<(&str, usize)> = None;
    for name in candidates {
        let n = votes.get(name).copied().unwrap_or(0);
        if best.is_none_or(|(_, most)| n > most) {
            best = Some((name, n));
        }
    }
    best.map(|(name, _)| name)
}

/// The order `range` and `roundrobin` lay members out in. Kafka sorts by member id; since
/// KIP-345 a static member sorts by its `group.instance.id` instead, ahead of every
/// dynamic member, so that a static member restarting under a new member id keeps its
/// place and its partitions. Member ids break ties, so the order is total.
fn kafka_member_order(a: &Subscription, b: &Subscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// An assignment with an empty entry for every member.
fn empty_assignment(members: &[Subscription]) -> GroupAssignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Shorthands the assignors' tests share.
    use std::collections::BTreeMap;

    use crate::types::TopicPartition;

    pub(crate) fn tps(list: &[(&str, u32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|&(t, p)| TopicPartition::new(t, p))
            .collect()
    }

    pub(crate) fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|&(t, n)| (t.to_string(), n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas_and_round_trip() {
        let names: Vec<&str> = Assignor::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["range", "roundrobin", "cooperative-sticky"]);
        for a in Assignor::ALL {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("sticky"), None);
        assert_eq!(Assignor::from_name("Range"), None);
    }

    #[test]
    fn only_cooperative_sticky_is_cooperative() {
        assert_eq!(
            Assignor::CooperativeSticky.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        assert_eq!(
            Assignor::Range.rebalance_protocol(),
            RebalanceProtocol::Eager
        );
        assert_eq!(
            Assignor::RoundRobin.rebalance_protocol(),
            RebalanceProtocol::Eager
        );
    }

    #[test]
    fn select_protocol_picks_one_every_member_lists() {
        let prefs = vec![
            vec!["cooperative-sticky", "range"],
            vec!["range"],
            vec!["roundrobin", "range"],
        ];
        assert_eq!(select_protocol(&prefs), Some("range"));
    }

    #[test]
    fn select_protocol_goes_by_votes_then_the_leaders_preference() {
        // All list both; two of three prefer roundrobin, so it wins though the leader
        // prefers range (Kafka's vote).
        let prefs = vec![
            vec!["range", "roundrobin"],
            vec!["roundrobin", "range"],
            vec!["roundrobin", "range"],
        ];
        assert_eq!(select_protocol(&prefs), Some("roundrobin"));
        // One vote each: the leader's preference breaks the tie.
        let prefs = vec![vec!["range", "roundrobin"], vec!["roundrobin", "range"]];
        assert_eq!(select_protocol(&prefs), Some("range"));
        // The common case: everyone lists the same order.
        let same = vec![vec!["cooperative-sticky", "range"]; 3];
        assert_eq!(select_protocol(&same), Some("cooperative-sticky"));
    }

    #[test]
    fn select_protocol_is_none_without_a_common_protocol() {
        let prefs = vec![vec!["range"], vec!["roundrobin"]];
        assert_eq!(select_protocol(&prefs), None);
        assert_eq!(select_protocol::<&str>(&[]), None);
    }

    #[test]
    fn static_members_sort_by_instance_id_before_dynamic_members() {
        let mut members = [
            Subscription::new("a", ["t"]),
            Subscription::new("z", ["t"]).with_group_instance_id("i1"),
            Subscription::new("b", ["t"]).with_group_instance_id("i2"),
        ];
        members.sort_by(kafka_member_order);
        let ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(ids, ["z", "b", "a"]);
    }
}

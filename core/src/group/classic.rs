//! One classic consumer group (Kafka's `GroupMetadata`/`ClassicGroup`): its state, its
//! generation, its members, the protocol it chose, its leader and its committed
//! offsets. This file holds the group's own bookkeeping and invariants; the decisions
//! that involve time, replies or the log live in the coordinator.
//!
//! ```text
//!            join of a new member                  all known members rejoined
//!   Empty ─────────────────────────▶ Preparing ──── (or rebalance timeout) ───▶ Completing
//!     ▲                               Rebalance ◀──── member joins/leaves/fails ─ Rebalance
//!     │ last member gone                 ▲                                          │ leader's
//!     └───────────────────────────────── │ ◀─── member joins/leaves/fails ── Stable ◀┘ SyncGroup
//!                                                                                   stored
//! ```
//! `Dead` is what a group becomes when it is deleted, expires or is unloaded; the
//! coordinator drops it at once, so `Dead` is only ever reported for a missing group.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::group::api::{JoinGroupMember, JoinGroupProtocol};
use crate::group::assignor::select_protocol;
use crate::group::member::Member;
use crate::types::{TimeMs, TopicPartition};

/// The states of a classic group, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The name ListGroups and DescribeGroups report.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may move to this one from (Kafka's `validPreviousStates`).
    fn valid_previous(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Empty, Stable, CompletingRebalance],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Empty, PreparingRebalance, CompletingRebalance, Stable, Dead],
        }
    }
}

/// The protocol type of Kafka's consumers (`ConsumerProtocol.PROTOCOL_TYPE`).
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics of a consumer-protocol subscription, read as its version 0, which every
/// later version extends (Kafka parses it the same way): an int16 version, then an
/// int32 count of int16-length topic names. The rest (user data, owned partitions, ...)
/// is not needed. `None` if the bytes are not such a subscription.
pub(crate) fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata.get(2..)?; // version
    let count = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    rest = &rest[4..];
    let count = usize::try_from(count).ok()?;
    if count > rest.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let name = rest.get(2..2 + len)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        rest = &rest[2 + len..];
    }
    Some(topics)
}

/// A committed offset as the coordinator holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp_ms: TimeMs,
    /// Set by an OffsetCommit v2-v4 with an explicit retention time: the offset expires
    /// then, by Kafka's pre-KIP-211 rule, instead of by `offsets.retention.minutes`.
    pub(crate) expire_timestamp_ms: Option<TimeMs>,
    /// Where the commit's record sits in `__consumer_offsets`: of two commits to one
    /// partition, the later record wins, whatever order their appends complete in —
    /// the same rule a replay of the log applies.
    pub(crate) record_offset: u64,
}

/// Where the join phase of a rebalance ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JoinTimer {
    pub(crate) deadline_ms: TimeMs,
    /// Set while the first rebalance of an empty group waits for more members
    /// (KIP-134, Kafka's `InitialDelayedJoin`): the join does not complete before the
    /// deadline even if everyone has joined.
    pub(crate) initial: Option<InitialDelay>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InitialDelay {
    /// The delay this timer was armed with.
    pub(crate) delay_ms: u64,
    /// How much of the rebalance timeout is left to extend into.
    pub(crate) remaining_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct ClassicGroup {
    pub(crate) group_id: String,
    /// Tells this group apart from an earlier group of the same id that was deleted,
    /// so a late append completion does not touch the new one.
    pub(crate) incarnation: u64,
    pub(crate) state: GroupState,
    pub(crate) state_timestamp_ms: TimeMs,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Members given an id with MEMBER_ID_REQUIRED that have not joined with it yet
    /// (KIP-394), each with the deadline of its session.
    pub(crate) pending_members: BTreeMap<String, TimeMs>,
    /// group.instance.id → member id (KIP-345).
    pub(crate) static_members: BTreeMap<String, String>,
    /// A member joined during the initial delay, which extends it.
    pub(crate) new_member_added: bool,
    pub(crate) join_timer: Option<JoinTimer>,
    /// Members of the current generation that have not sent SyncGroup yet, and when
    /// they are given up on (Kafka's pending-sync expiration: a member that joined but
    /// never syncs would otherwise hold partitions nobody consumes).
    pub(crate) pending_sync_members: BTreeSet<String>,
    pub(crate) sync_deadline_ms: Option<TimeMs>,
    /// The topics a "consumer" group's members subscribe to, read from their metadata
    /// at each generation (Kafka's `computeSubscribedTopics`); `None` when unknown.
    pub(crate) subscribed_topics: Option<BTreeSet<String>>,
    pub(crate) offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Commits whose append has not completed, per partition. Retention never expires
    /// a partition with one in flight.
    pub(crate) pending_offset_commits: BTreeMap<TopicPartition, usize>,
}

impl ClassicGroup {
    pub(crate) fn new(group_id: String, incarnation: u64, now_ms: TimeMs) -> ClassicGroup {
        ClassicGroup {
            group_id,
            incarnation,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            new_member_added: false,
            join_timer: None,
            pending_sync_members: BTreeSet::new(),
            sync_deadline_ms: None,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending_offset_commits: BTreeMap::new(),
        }
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn transition_to(&mut self, to: GroupState, now_ms: TimeMs) {
        assert!(
            to.valid_previous().contains(&self.state),
            "group {}: {} -> {} is not a valid transition",
            self.group_id,
            self.state.name(),
            to.name()
        );
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    /// Kafka's `canRebalance`.
    pub(crate) fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub(crate) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        assert_eq!(
            self.protocol_type.as_deref(),
            Some(member.protocol_type.as_str()),
            "a member joins only with the group's protocol type"
        );
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        let id = member.member_id.clone();
        assert!(
            self.members.insert(id, member).is_none(),
            "member ids are unique"
        );
    }

    /// Removes a member; a new leader is the first remaining member, if any.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        self.pending_sync_members.remove(member_id);
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Moves a static member to a new member id (KIP-345), keeping its assignment and
    /// leadership. Returns the old member, for the caller to fence its parked requests.
    pub(crate) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> Member {
        let mut member = self
            .members
            .remove(old_member_id)
            .expect("a static member being replaced is in the group");
        let old = member.clone();
        member.member_id = new_member_id.to_string();
        member.awaiting_join = None;
        member.awaiting_sync = None;
        assert!(self
            .members
            .insert(new_member_id.to_string(), member)
            .is_none());
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        if self.pending_sync_members.remove(old_member_id) {
            self.pending_sync_members.insert(new_member_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_member_id.to_string());
        old
    }

    pub(crate) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol type and
    /// protocol list; otherwise the type must match and one of the protocols must be one
    /// every current member supports.
    pub(crate) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[JoinGroupProtocol],
    ) -> bool {
        if self.is(GroupState::Empty) {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|p| self.members.values().all(|m| m.supports(&p.name)))
        }
    }

    /// The protocol the next generation uses: the repo's `select_protocol` over every
    /// member's preferences, the leader's first.
    pub(crate) fn select_protocol(&self) -> String {
        let mut preferences: Vec<Vec<&str>> = Vec::with_capacity(self.members.len());
        let leader = self
            .leader_id
            .as_deref()
            .and_then(|id| self.members.get(id));
        if let Some(leader) = leader {
            preferences.push(leader.protocols.iter().map(|p| p.name.as_str()).collect());
        }
        for m in self.members.values() {
            if Some(m.member_id.as_str()) != self.leader_id.as_deref() {
                preferences.push(m.protocols.iter().map(|p| p.name.as_str()).collect());
            }
        }
        select_protocol(&preferences)
            .unwrap_or_else(|| {
                panic!(
                    "group {}: JoinGroup admits only members sharing a protocol with all",
                    self.group_id
                )
            })
            .to_string()
    }

    /// Kafka's `hasAllMembersJoined`.
    pub(crate) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// The longest rebalance timeout of the members: how long a rebalance waits.
    pub(crate) fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Every member's metadata for the chosen protocol, for the leader's JoinGroup
    /// response.
    pub(crate) fn current_member_metadata(&self) -> Vec<JoinGroupMember> {
        let protocol = self
            .protocol_name
            .as_deref()
            .expect("a group with members has chosen a protocol");
        self.members
            .values()
            .map(|m| JoinGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// Kafka's `computeSubscribedTopics`: for a group of the consumer protocol with
    /// members, the union of the topics in their subscriptions; `None` for any other
    /// group, or if a subscription does not parse.
    pub(crate) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        let protocol = self.protocol_name.as_deref()?;
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) || self.members.is_empty()
        {
            return None;
        }
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(subscription_topics(&m.metadata(protocol))?);
        }
        Some(topics)
    }

    /// Kafka's `hasOffsets`: committed or in flight.
    pub(crate) fn has_offsets(&self) -> bool {
        !self.offsets.is_empty() || !self.pending_offset_commits.is_empty()
    }

    pub(crate) fn assignments(&self) -> BTreeMap<String, Bytes> {
        self.members
            .iter()
            .map(|(id, m)| (id.clone(), m.assignment.clone()))
            .collect()
    }

    /// Checks the invariants that hold between any two inputs.
    pub(crate) fn check_invariants(&self, now_ms: TimeMs) {
        let id = &self.group_id;
        assert!(
            self.state != GroupState::Dead,
            "group {id}: a Dead group is dropped"
        );
        match &self.leader_id {
            Some(leader) => assert!(
                self.members.contains_key(leader),
                "group {id}: leader is a member"
            ),
            None => assert!(
                self.members.is_empty(),
                "group {id}: members without a leader"
            ),
        }
        if self.members.is_empty() {
            assert!(
                matches!(
                    self.state,
                    GroupState::Empty | GroupState::PreparingRebalance
                ),
                "group {id}: {} with no members",
                self.state.name()
            );
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            assert!(
                self.protocol_name.is_some(),
                "group {id}: no protocol chosen"
            );
        }
        // (A Stable group may park one JoinGroup: a static member's, until its new
        // member id is stored.)
        if self.is(GroupState::CompletingRebalance) {
            assert!(
                self.members.values().all(|m| m.awaiting_join.is_none()),
                "group {id}: a JoinGroup parked after the join phase"
            );
        }
        assert_eq!(
            self.join_timer.is_some(),
            self.is(GroupState::PreparingRebalance),
            "group {id}: a join timer runs exactly while preparing a rebalance"
        );
        if !self.is(GroupState::CompletingRebalance) {
            assert!(
                self.members.values().all(|m| m.awaiting_sync.is_none()),
                "group {id}: a SyncGroup parked outside CompletingRebalance"
            );
        }
        if self.sync_deadline_ms.is_some() {
            assert!(
                matches!(
                    self.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                ),
                "group {id}: a sync deadline outside a completed join"
            );
        }
        assert!(self
            .pending_sync_members
            .iter()
            .all(|m| self.members.contains_key(m)));
        for (instance, member_id) in &self.static_members {
            let member = self
                .members
                .get(member_id)
                .expect("static member is a member");
            assert_eq!(member.group_instance_id.as_deref(), Some(instance.as_str()));
        }
        for m in self.members.values() {
            assert!(
                m.session_deadline_ms > now_ms,
                "group {id}: member {} has a session deadline {} not after now {now_ms}",
                m.member_id,
                m.session_deadline_ms
            );
            if let Some(instance) = &m.group_instance_id {
                assert_eq!(self.static_member_id(instance), Some(m.member_id.as_str()));
            }
        }
        for deadline in self.pending_members.values() {
            assert!(
                *deadline > now_ms,
                "group {id}: a pending member outlived its session"
            );
        }
    }
}

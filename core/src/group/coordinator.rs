//! The group coordinator: the classic consumer-group protocol for the groups whose
//! `__consumer_offsets` partitions this broker leads, as a pure state machine.
//!
//! ```text
//!  GroupInput (each with now_ms)                      GroupEffect
//!  ─────────────────────────────                      ───────────
//!  Request { token, req } ───────┐               ┌─▶ Reply { token, resp }
//!  AppendDone { append_id, .. } ─┤               ├─▶ Append { partition, batch, append_id }
//!  BeginLoad { partition } ──────┼─▶ handle() ───┼─▶ Loaded { partition, .. }
//!  Load { partition, batches } ──┤               │
//!  Unload { partition } ─────────┤   next_deadline(): when to Tick next
//!  Tick ─────────────────────────┘
//!
//!  every Append ──(shell appends to the partition, waits for it to commit)──▶ AppendDone
//! ```
//!
//! Every request token gets exactly one `Reply`, though not always at once: a JoinGroup
//! waits for the rebalance, a follower's SyncGroup for the leader's, and anything that
//! must survive a coordinator move (a commit, a rebalance's result) waits for its
//! append to commit. Timers — sessions, rebalance timeouts, the initial delay, offset
//! retention — fire in deadline order at the start of each `handle`, so the outcome does
//! not depend on how often the shell ticks, only on the times it passes in.
//!
//! Where Eddy departs from Kafka's coordinator, and why:
//! - every request token is answered exactly once: a parked JoinGroup or SyncGroup that
//!   the same member supersedes is answered REBALANCE_IN_PROGRESS, and one parked by a
//!   member that is removed is answered UNKNOWN_MEMBER_ID (Kafka drops both, leaving
//!   them to the client's request timeout);
//! - a member waiting for a JoinGroup or SyncGroup response has its session restarted
//!   when it runs out, where Kafka leaves it without a deadline until the response: the
//!   member is never expired while it waits either way, and here every member always
//!   has a deadline;
//! - where Kafka picks "any" member (a new leader, iterating a hash map), Eddy takes the
//!   first by member id, so a seed always gives the same group;
//! - DeleteGroups writes tombstones for partitions with a commit in flight too, so a
//!   replay of the log never brings back an offset of a deleted group;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::config::BrokerConfig;
use crate::error::ErrorCode;
use crate::group::api::*;
use crate::group::classic::{ClassicGroup, CommittedOffset, GroupState};
use crate::group::member::Member;
use crate::group::record::{
    build_batch, offsets_partition_for, GroupValue, MemberValue, RecordKey, RecordValue,
};
use crate::types::{NodeId, Offset, TimeMs, TopicPartition};

/// The broker settings the coordinator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: u64,
    pub min_session_timeout_ms: u64,
    pub max_session_timeout_ms: u64,
    pub max_size: u32,
    pub offsets_topic_num_partitions: u32,
    pub offsets_retention_ms: u64,
    pub offsets_retention_check_interval_ms: u64,
    pub offset_metadata_max_bytes: u32,
}

impl GroupConfig {
    pub fn from_broker(c: &BrokerConfig) -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: c.group_min_session_timeout_ms,
            max_session_timeout_ms: c.group_max_session_timeout_ms,
            max_size: c.group_max_size,
            offsets_topic_num_partitions: c.offsets_topic_num_partitions,
            offsets_retention_ms: c.offsets_retention_ms,
            offsets_retention_check_interval_ms: c.offsets_retention_check_interval_ms,
            offset_metadata_max_bytes: c.offset_metadata_max_bytes,
        }
    }
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig::from_broker(&BrokerConfig::default())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupInput {
    /// Time passed; due timers fire.
    Tick,
    /// A client request; the reply carries the same token.
    Request { token: u64, req: GroupRequest },
    /// The append with this id committed at `base_offset`, or failed with the log's
    /// error (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...).
    AppendDone {
        append_id: u64,
        result: Result<Offset, ErrorCode>,
    },
    /// This broker became the leader of a `__consumer_offsets` partition; its groups
    /// answer COORDINATOR_LOAD_IN_PROGRESS until `Load` arrives.
    BeginLoad { partition: u32 },
    /// The partition's batches from its log start to its log end offset, in order, as
    /// Kafka's `doLoadGroupsAndOffsets` reads them. Not only to the high watermark: a
    /// new leader's high watermark lags the old leader's, so a commit acknowledged there
    /// may still sit above it here (and what the leader holds, it goes on to commit).
    Load { partition: u32, batches: Vec<Bytes> },
    /// This broker no longer leads the partition; its groups answer NOT_COORDINATOR.
    Unload { partition: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEffect {
    Reply {
        token: u64,
        resp: GroupResponse,
    },
    /// Append `batch` to `__consumer_offsets` partition `partition`, then report the
    /// outcome with `AppendDone { append_id }` once it is committed (or failed). Appends
    /// to one partition must reach the log in the order they are asked for.
    Append {
        partition: u32,
        batch: Bytes,
        append_id: u64,
    },
    /// A partition finished loading; for the shell's log.
    Loaded {
        partition: u32,
        groups: usize,
        offsets: usize,
        skipped_records: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PartitionStatus {
    Loading,
    Active,
}

/// What the coordinator is waiting for on one of its timers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The join phase (or the initial delay) of a group's rebalance ends.
    Join { group_id: String },
    /// The members of a generation that have not synced are given up on.
    Sync { group_id: String },
    /// A member's session ends.
    Session { group_id: String, member_id: String },
    /// A member given an id by MEMBER_ID_REQUIRED has not joined in its session.
    Pending { group_id: String, member_id: String },
    /// Time to expire old offsets (offsets.retention.check.interval.ms).
    Retention,
}

/// What an append in flight releases when it completes.
#[derive(Clone, Debug)]
pub(super) enum PendingAppend {
    OffsetCommit {
        group_id: String,
        incarnation: u64,
        token: u64,
        /// The response with the errors already known; `None` marks a partition whose
        /// outcome is this append's.
        response: OffsetCommitResponse,
        /// The commits in the batch, in record order.
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    },
    /// The leader's assignment for `generation`.
    GroupSync {
        group_id: String,
        incarnation: u64,
        generation: i32,
        assignment: BTreeMap<String, Bytes>,
    },
    /// A static member's new member id, stored without a rebalance (KIP-345).
    StaticReplace {
        group_id: String,
        incarnation: u64,
        token: u64,
        instance_id: String,
        old_member_id: String,
        new_member_id: String,
        old_member: Box<Member>,
        old_leader: Option<String>,
    },
    /// Nothing waits for it: an empty group's metadata, or tombstones.
    Unacknowledged,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    pub(super) config: GroupConfig,
    /// This coordinator's broker and life, part of every member id it makes, so ids
    /// stay unique across restarts and moves (Kafka uses a random UUID): a group that
    /// moves keeps its members, and the new coordinator must not hand out theirs again.
    member_id_scope: String,
    pub(super) now_ms: TimeMs,
    pub(super) partitions: BTreeMap<u32, PartitionStatus>,
    pub(super) groups: BTreeMap<String, ClassicGroup>,
    timers: BTreeSet<(TimeMs, Timer)>,
    next_member_seq: u64,
    next_group_incarnation: u64,
    next_append_id: u64,
    pub(super) pending_appends: BTreeMap<u64, (u32, PendingAppend)>,
    next_retention_check_ms: Option<TimeMs>,
    pub(super) effects: Vec<GroupEffect>,
}

/// The API a request belongs to, for the checks that differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup: need a non-empty group id.
    Membership,
    /// OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups: accept "" for
    /// backwards compatibility, as Kafka does.
    Offsets,
}

impl GroupCoordinator {
    /// A coordinator that leads no partition yet. `incarnation` must differ between
    /// lives of the same broker and between brokers (the shell passes its broker
    /// epoch); [`GroupCoordinator::on_broker`] needs it unique per broker only.
    pub fn new(config: GroupConfig, incarnation: u64) -> GroupCoordinator {
        GroupCoordinator::with_member_id_scope(config, incarnation.to_string())
    }

    /// The coordinator of broker `broker` in its life `incarnation`: its member ids
    /// (`{client id}-{broker}.{incarnation}-{n}`) are unique across the cluster even
    /// when two brokers share an incarnation number.
    pub fn on_broker(config: GroupConfig, broker: NodeId, incarnation: u64) -> GroupCoordinator {
        GroupCoordinator::with_member_id_scope(config, format!("{}.{incarnation}", broker.0))
    }

    fn with_member_id_scope(config: GroupConfig, member_id_scope: String) -> GroupCoordinator {
        assert!(config.offsets_topic_num_partitions > 0);
        assert!(config.offsets_retention_check_interval_ms > 0);
        GroupCoordinator {
            config,
            member_id_scope,
            now_ms: 0,
            partitions: BTreeMap::new(),
            groups: BTreeMap::new(),
            timers: BTreeSet::new(),
            next_member_seq: 0,
            next_group_incarnation: 0,
            next_append_id: 0,
            pending_appends: BTreeMap::new(),
            next_retention_check_ms: None,
            effects: Vec::new(),
        }
    }

    /// Fires the timers due by `now_ms`, then applies `input`. A `now_ms` earlier than
    /// one already seen counts as the latest seen: time never runs backwards here.
    pub fn handle(&mut self, now_ms: TimeMs, input: GroupInput) -> Vec<GroupEffect> {
        let now_ms = now_ms.max(self.now_ms);
        if self.next_retention_check_ms.is_none() {
            let first = now_ms + self.config.offsets_retention_check_interval_ms;
            self.next_retention_check_ms = Some(first);
            self.timers.insert((first, Timer::Retention));
        }
        self.fire_timers(now_ms);
        self.now_ms = now_ms;
        match input {
            GroupInput::Tick => {}
            GroupInput::Request { token, req } => self.request(token, req),
            GroupInput::AppendDone { append_id, result } => self.append_done(append_id, result),
            GroupInput::BeginLoad { partition } => {
                self.check_partition(partition);
                self.partitions
                    .entry(partition)
                    .or_insert(PartitionStatus::Loading);
            }
            GroupInput::Load { partition, batches } => self.load(partition, &batches),
            GroupInput::Unload { partition } => self.unload(partition),
        }
        // Timers the input armed for now (a zero initial delay) fire now too.
        self.fire_timers(now_ms);
        std::mem::take(&mut self.effects)
    }

    pub fn tick(&mut self, now_ms: TimeMs) -> Vec<GroupEffect> {
        self.handle(now_ms, GroupInput::Tick)
    }

    /// The earliest time a `Tick` has something to do (possibly early: timers made stale
    /// by a heartbeat are dropped when they come due).
    pub fn next_deadline(&self) -> Option<TimeMs> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// The partition of `__consumer_offsets` that holds `group_id` under this config.
    pub fn partition_for(&self, group_id: &str) -> u32 {
        offsets_partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    /// The state of a group this coordinator holds, if any.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// The generation of a group this coordinator holds, if any.
    pub fn generation(&self, group_id: &str) -> Option<i32> {
        self.groups.get(group_id).map(|g| g.generation)
    }

    /// Every committed offset this coordinator holds: (group, partition) → (offset,
    /// metadata). For checkers comparing coordinators.
    pub fn committed_offsets(&self) -> BTreeMap<(String, TopicPartition), (i64, String)> {
        self.groups
            .values()
            .flat_map(|g| {
                g.offsets.iter().map(move |(tp, o)| {
                    (
                        (g.group_id.clone(), tp.clone()),
                        (o.offset, o.metadata.clone()),
                    )
                })
            })
            .collect()
    }

    /// Asserts the invariants that hold between inputs (for tests and the simulator).
    pub fn check_invariants(&self) {
        for (id, g) in &self.groups {
            assert_eq!(id, &g.group_id);
            assert_eq!(
                self.partitions.get(&self.partition_for(id)),
                Some(&PartitionStatus::Active),
                "group {id} is held only while its partition is active"
            );
            g.check_invariants(self.now_ms);
        }
    }

    pub(super) fn check_partition(&self, partition: u32) {
        assert!(
            partition < self.config.offsets_topic_num_partitions,
            "__consumer_offsets has {} partitions, not {partition}",
            self.config.offsets_topic_num_partitions
        );
    }

    fn request(&mut self, token: u64, req: GroupRequest) {
        match req {
            GroupRequest::JoinGroup(r) => self.join_group(token, r),
            GroupRequest::SyncGroup(r) => self.sync_group(token, r),
            GroupRequest::Heartbeat(r) => self.heartbeat(token, r),
            GroupRequest::LeaveGroup(r) => self.leave_group(token, r),
            GroupRequest::OffsetCommit(r) => self.offset_commit(token, r),
            GroupRequest::OffsetFetch(r) => self.offset_fetch(token, r),
            GroupRequest::ListGroups(r) => self.list_groups(token, r),
            GroupRequest::DescribeGroups(r) => self.describe_groups(token, r),
            GroupRequest::DeleteGroups(r) => self.delete_groups(token, r),
        }
    }

    pub(super) fn reply(&mut self, token: u64, resp: GroupResponse) {
        self.effects.push(GroupEffect::Reply { token, resp });
    }

    pub(super) fn reply_join(&mut self, token: u64, resp: JoinGroupResponse) {
        self.reply(token, GroupResponse::JoinGroup(resp));
    }

    pub(super) fn reply_sync(&mut self, token: u64, resp: SyncGroupResponse) {
        self.reply(token, GroupResponse::SyncGroup(resp));
    }

    /// Kafka's `validateGroupStatus`: a valid group id, whose partition this broker
    /// leads and has loaded.
    pub(super) fn group_status(&self, group_id: &str, api: Api) -> Option<ErrorCode> {
        if api == Api::Membership && group_id.is_empty() {
            return Some(ErrorCode::InvalidGroupId);
        }
        match self.partitions.get(&self.partition_for(group_id)) {
            None => Some(ErrorCode::NotCoordinator),
            Some(PartitionStatus::Loading) => Some(ErrorCode::CoordinatorLoadInProgress),
            Some(PartitionStatus::Active) => None,
        }
    }

    /// A new, empty group.
    pub(super) fn create_group(&mut self, group_id: &str) -> &mut ClassicGroup {
        let incarnation = self.next_group_incarnation;
        self.next_group_incarnation += 1;
        let group = ClassicGroup::new(group_id.to_string(), incarnation, self.now_ms);
        assert!(self.groups.insert(group_id.to_string(), group).is_none());
        self.groups.get_mut(group_id).expect("just inserted")
    }

    pub(super) fn group_mut(&mut self, group_id: &str) -> &mut ClassicGroup {
        self.groups
            .get_mut(group_id)
            .unwrap_or_else(|| panic!("group {group_id} is held"))
    }

    /// Kafka's `generateMemberId`: the client id (or the instance id of a static
    /// member), then a suffix unique to this coordinator's life.
    pub(super) fn generate_member_id(&mut self, prefix: &str) -> String {
        let seq = self.next_member_seq;
        self.next_member_seq += 1;
        format!("{prefix}-{}-{seq}", self.member_id_scope)
    }

    pub(super) fn schedule(&mut self, at_ms: TimeMs, timer: Timer) {
        self.timers.insert((at_ms, timer));
    }

    /// Kafka's `completeAndScheduleNextHeartbeatExpiration`: the member's session starts
    /// over now.
    pub(super) fn renew_session(&mut self, group_id: &str, member_id: &str) {
        let now = self.now_ms;
        let group = self.group_mut(group_id);
        let member = group.members.get_mut(member_id).expect("renewing a member");
        member.session_deadline_ms = now + member.session_span_ms().max(1);
        let deadline = member.session_deadline_ms;
        self.schedule(
            deadline,
            Timer::Session {
                group_id: group_id.to_string(),
                member_id: member_id.to_string(),
            },
        );
    }

    fn fire_timers(&mut self, now_ms: TimeMs) {
        while let Some((at_ms, _)) = self.timers.first() {
            if *at_ms > now_ms {
                break;
            }
            let (at_ms, timer) = self.timers.pop_first().expect("not empty");
            self.now_ms = self.now_ms.max(at_ms);
            match timer {
                Timer::Join { group_id } => {
                    let due = self
                        .groups
                        .get(&group_id)
                        .and_then(|g| g.join_timer)
                        .is_some_and(|t| t.deadline_ms == at_ms);
                    if due {
                        self.join_timer_expired(&group_id);
                    }
                }
                Timer::Sync { group_id } => {
                    let due = self
                        .groups
                        .get(&group_id)
                        .is_some_and(|g| g.sync_deadline_ms == Some(at_ms));
                    if due {
                        self.sync_timer_expired(&group_id);
                    }
                }
                Timer::Session {
                    group_id,
                    member_id,
                } => {
                    let due = self
                        .groups
                        .get(&group_id)
                        .and_then(|g| g.members.get(&member_id))
                        .is_some_and(|m| m.session_deadline_ms == at_ms);
                    if due {
                        self.session_expired(&group_id, &member_id);
                    }
                }
                Timer::Pending {
                    group_id,
                    member_id,
                } => {
                    let due = self
                        .groups
                        .get(&group_id)
                        .and_then(|g| g.pending_members.get(&member_id))
                        == Some(&at_ms);
                    if due {
                        self.remove_pending_member(&group_id, &member_id);
                    }
                }
                Timer::Retention => {
                    if self.next_retention_check_ms == Some(at_ms) {
                        self.expire_offsets();
                        let next = at_ms + self.config.offsets_retention_check_interval_ms;
                        self.next_retention_check_ms = Some(next);
                        self.schedule(next, Timer::Retention);
                    }
                }
            }
        }
    }

    /// Asks the shell to append `records` to the group's partition; `pending` is
    /// released when the append completes.
    pub(super) fn append(
        &mut self,
        group_id: &str,
        records: &[(RecordKey, Option<RecordValue>)],
        pending: PendingAppend,
    ) {
        let partition = self.partition_for(group_id);
        let append_id = self.next_append_id;
        self.next_append_id += 1;
        let batch = build_batch(records, self.now_ms);
        self.pending_appends.insert(append_id, (partition, pending));
        self.effects.push(GroupEffect::Append {
            partition,
            batch,
            append_id,
        });
    }

    /// The group's metadata record, with `assignment` for each member.
    pub(super) fn group_record(
        group: &ClassicGroup,
        assignment: &BTreeMap<String, Bytes>,
    ) -> (RecordKey, Option<RecordValue>) {
        let protocol = group.protocol_name.as_deref();
        let members = group
            .members
            .values()
            .map(|m| MemberValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: clamp_u32(m.rebalance_timeout_ms),
                session_timeout_ms: clamp_u32(m.session_timeout_ms),
                subscription: protocol.map(|p| m.metadata(p)).unwrap_or_default(),
                assignment: assignment.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        (
            RecordKey::Group {
                group_id: group.group_id.clone(),
            },
            Some(RecordValue::Group(GroupValue {
                protocol_type: group.protocol_type.clone(),
                generation: group.generation,
                protocol_name: group.protocol_name.clone(),
                leader: group.leader_id.clone(),
                state_timestamp_ms: group.state_timestamp_ms,
                members,
            })),
        )
    }

    fn append_done(&mut self, append_id: u64, result: Result<Offset, ErrorCode>) {
        // An append of an unloaded partition was already answered NOT_COORDINATOR.
        let Some((_, pending)) = self.pending_appends.remove(&append_id) else {
            return;
        };
        match pending {
            PendingAppend::OffsetCommit {
                group_id,
                incarnation,
                token,
                response,
                offsets,
            } => self.offset_commit_done(&group_id, incarnation, token, response, offsets, result),
            PendingAppend::GroupSync {
                group_id,
                incarnation,
                generation,
                assignment,
            } => self.group_sync_done(&group_id, incarnation, generation, assignment, result),
            PendingAppend::StaticReplace {
                group_id,
                incarnation,
                token,
                instance_id,
                old_member_id,
                new_member_id,
                old_member,
                old_leader,
            } => self.static_replace_done(
                &group_id,
                incarnation,
                token,
                &instance_id,
                &old_member_id,
                &new_member_id,
                old_member,
                old_leader,
                result,
            ),
            PendingAppend::Unacknowledged => {}
        }
    }

    /// The group `group_id` if it is still the incarnation an append was made for.
    pub(super) fn same_group(&self, group_id: &str, incarnation: u64) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| g.incarnation == incarnation)
    }

    fn list_groups(&mut self, token: u64, req: ListGroupsRequest) {
        let loading = self
            .partitions
            .values()
            .any(|s| *s == PartitionStatus::Loading);
        let groups = self
            .groups
            .values()
            .filter(|g| {
                req.states_filter.is_empty()
                    || req
                        .states_filter
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.name().to_string(),
            })
            .collect();
        let error = if loading {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            ErrorCode::None
        };
        self.reply(
            token,
            GroupResponse::ListGroups(ListGroupsResponse { error, groups }),
        );
    }

    fn describe_groups(&mut self, token: u64, req: DescribeGroupsRequest) {
        let groups = req
            .groups
            .iter()
            .map(|id| self.describe_group(id, req.report_missing_group))
            .collect();
        self.reply(
            token,
            GroupResponse::DescribeGroups(DescribeGroupsResponse { groups }),
        );
    }

    fn describe_group(&self, group_id: &str, report_missing_group: bool) -> DescribedGroup {
        let mut described = DescribedGroup {
            error: ErrorCode::None,
            group_id: group_id.to_string(),
            group_state: String::new(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        if let Some(error) = self.group_status(group_id, Api::Offsets) {
            described.error = error;
            return described;
        }
        let Some(g) = self.groups.get(group_id) else {
            described.group_state = GroupState::Dead.name().to_string();
            if report_missing_group {
                described.error = ErrorCode::GroupIdNotFound;
            }
            return described;
        };
        described.group_state = g.state.name().to_string();
        described.protocol_type = g.protocol_type.clone().unwrap_or_default();
        let stable = g.is(GroupState::Stable);
        if stable {
            described.protocol_data = g.protocol_name.clone().expect("Stable has a protocol");
        }
        described.members = g
            .members
            .values()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata(&described.protocol_data)
                } else {
                    Bytes::new()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        described
    }
}

/// Sets every partition of `response` still marked pending (`UnknownServerError` is
/// used as the placeholder, never sent) to `error`.
pub(super) fn fill_pending(response: &mut OffsetCommitResponse, error: ErrorCode) {
    for t in &mut response.topics {
        for p in &mut t.partitions {
            if p.error == PENDING {
                p.error = error;
            }
        }
    }
}

/// The placeholder for a partition whose commit outcome is its append's.
pub(super) const PENDING: ErrorCode = ErrorCode::UnknownServerError;

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Kafka's mapping of a failed group-metadata append to the error the members see
/// (`GroupMetadataManager.storeGroup`).
pub(super) fn store_group_error(log_error: ErrorCode) -> ErrorCode {
    match log_error {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::RequestTimedOut => ErrorCode::RebalanceInProgress,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => ErrorCode::UnknownServerError,
        other => other,
    }
}

/// Kafka's mapping of a failed offset-commit append (`GroupMetadataManager.storeOffsets`).
pub(super) fn commit_error(log_error: ErrorCode) -> ErrorCode {
    match log_error {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
            ErrorCode::InvalidCommitOffsetSize
        }
        other => other,
    }
}

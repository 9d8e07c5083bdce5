//! Simulated consumer-group members, written the way Kafka's Java consumer behaves in
//! the classic group protocol.
//!
//! A member finds its coordinator (the leader of `__consumer_offsets-p`, with
//! `p = offsets_partition_for(group)`, from metadata), joins (MEMBER_ID_REQUIRED first,
//! KIP-394), runs the core's assignor when it is the leader, syncs, heartbeats, fetches
//! its partitions from their leaders starting at the committed offset (OffsetFetch; 0
//! when none is committed), "processes" what it reads, and commits its positions
//! periodically and before it gives a partition up. Eager assignors revoke everything
//! before rejoining; cooperative-sticky (KIP-429) keeps what it is given again and
//! revokes the rest after SyncGroup, then rejoins.
//!
//! One rule goes beyond the Java client, so that ownership can be checked exactly: a
//! member processes records only while its own view of its session is alive — less
//! than `session.timeout.ms` after sending the last heartbeat, JoinGroup or SyncGroup the
//! coordinator accepted. The coordinator received that request later than it was sent,
//! so it cannot have expired the member before the member stops by itself, and (with
//! `rebalance.timeout.ms >= session.timeout.ms`) neither can a rebalance have removed it.
//! A member that finds its session over reports its partitions lost as of the moment it
//! ended, and rejoins. (The Java consumer would keep processing until it learns it was
//! removed; Kafka does not prevent such a zombie.)
//!
//! One commit is in flight at a time, as over the one connection a Java consumer has to
//! its coordinator: the simulated network does not keep a connection's order.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use eddy_core::batch::BatchHeader;
use eddy_core::group::{
    Assignor, Generation, GroupRequest, GroupResponse, HeartbeatRequest, JoinGroupProtocol,
    JoinGroupRequest, LeaveGroupRequest, MemberIdentity, OffsetCommitPartition,
    OffsetCommitRequest, OffsetCommitTopic, OffsetFetchRequest, OffsetFetchTopic,
    RebalanceProtocol, Subscription, SyncGroupAssignment, SyncGroupRequest, DEFAULT_RETENTION_TIME,
    DEFAULT_TIMESTAMP, NO_LEADER_EPOCH, OFFSETS_TOPIC, UNKNOWN_GENERATION_ID, UNKNOWN_MEMBER_ID,
};
use eddy_core::message::{ClientRequest, ClientResponse};
use eddy_core::{ErrorCode, NodeId, Offset, TimeMs, TopicPartition};

use crate::history::{BatchRef, MemberRef, Observation, Part};
use crate::workload::{ClientAction, ClientEnv, Metadata};

/// How often a running member looks at its timers.
const MEMBER_TICK_MS: u64 = 50;
/// How long a member waits for a group request (join, sync, heartbeat, commit, offset
/// fetch) before calling its outcome unknown. JoinGroup waits longer: the coordinator
/// answers it when the rebalance's join phase ends.
const GROUP_REQUEST_TIMEOUT_MS: u64 = 5_000;
const FETCH_TIMEOUT_MS: u64 = 5_000;
const FETCH_MAX_WAIT_MS: u64 = 500;
const FETCH_MAX_BYTES: u32 = 64 * 1024;
/// Kafka's `retry.backoff.ms` default.
const RETRY_BACKOFF_MS: u64 = 100;

/// What a member is set up with.
#[derive(Clone, Debug)]
pub(crate) struct MemberConfig {
    pub(crate) group: u32,
    pub(crate) group_id: String,
    pub(crate) topic: String,
    /// The topic's partitions, with the world's numbering.
    pub(crate) parts: Vec<(Part, TopicPartition)>,
    pub(crate) assignor: Assignor,
    pub(crate) instance_id: Option<String>,
    pub(crate) session_timeout_ms: u64,
    pub(crate) rebalance_timeout_ms: u64,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) commit_interval_ms: u64,
    pub(crate) offsets_partitions: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not running (never started, crashed, or closed).
    Down,
    /// Must (re)join: revoke first when eager, then send JoinGroup.
    Joining,
    AwaitJoin,
    AwaitSync,
    Stable,
}

/// What follows a revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterRevoke {
    Join,
    Leave,
}

#[derive(Debug)]
struct Revoking {
    parts: Vec<Part>,
    commit_sent: bool,
    then: AfterRevoke,
}

#[derive(Debug, Default)]
struct Owned {
    /// The next offset to process; `None` until OffsetFetch said where to start.
    position: Option<Offset>,
    /// The last offset this member committed (or resumed from).
    committed: Option<Offset>,
    fetch: Option<(u64, TimeMs)>,
    retry_at: TimeMs,
}

/// A JoinGroup, SyncGroup or Heartbeat in flight: its correlation id, when it was sent,
/// and to which coordinator.
#[derive(Clone, Copy, Debug)]
struct GroupInFlight {
    corr: u64,
    sent: TimeMs,
    to: NodeId,
}

impl GroupInFlight {
    fn new(corr: u64, sent: TimeMs, to: NodeId) -> GroupInFlight {
        GroupInFlight { corr, sent, to }
    }
}

#[derive(Debug)]
struct CommitInFlight {
    corr: u64,
    sent: TimeMs,
    offsets: Vec<(Part, Offset)>,
    generation: i32,
}

/// One member slot of a group: it can crash and start again as a new incarnation.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) slot: u32,
    cfg: MemberConfig,
    incarnation: u32,
    phase: Phase,
    paused: bool,
    coordinator: Option<NodeId>,
    member_id: String,
    generation: i32,
    /// When this member's view of its session ends (see the module doc).
    session_until: TimeMs,
    owned: BTreeMap<Part, Owned>,
    /// The generation the member was given what it owns in (KIP-792).
    owned_generation: Option<i32>,
    revoking: Option<Revoking>,
    rejoin_needed: bool,
    /// JoinGroup or SyncGroup in flight.
    group_request: Option<GroupInFlight>,
    heartbeat: Option<GroupInFlight>,
    commit: Option<CommitInFlight>,
    offset_fetch: Option<(u64, TimeMs, Vec<Part>)>,
    next_heartbeat_at: TimeMs,
    next_commit_at: TimeMs,
    retry_at: TimeMs,
    next_corr: u64,
    metadata: Metadata,
    wake_at: Option<TimeMs>,
    /// Whether this incarnation sent its first JoinGroup.
    joined_once: bool,
    /// The highest generation this incarnation joined, and when.
    highest_joined: Option<(i32, TimeMs)>,
}

impl Member {
    pub(crate) fn new(slot: u32, cfg: MemberConfig) -> Member {
        Member {
            slot,
            cfg,
            incarnation: 0,
            phase: Phase::Down,
            paused: false,
            coordinator: None,
            member_id: String::new(),
            generation: UNKNOWN_GENERATION_ID,
            session_until: 0,
            owned: BTreeMap::new(),
            owned_generation: None,
            revoking: None,
            rejoin_needed: false,
            group_request: None,
            heartbeat: None,
            commit: None,
            offset_fetch: None,
            next_heartbeat_at: 0,
            next_commit_at: 0,
            retry_at: 0,
            next_corr: 0,
            metadata: Metadata::default(),
            wake_at: None,
            joined_once: false,
            highest_joined: None,
        }
    }

    pub(crate) fn group(&self) -> u32 {
        self.cfg.group
    }

    pub(crate) fn is_running(&self) -> bool {
        self.phase != Phase::Down
    }

    /// Whether the member holds an assignment of the current generation.
    pub(crate) fn is_stable(&self) -> bool {
        self.phase == Phase::Stable
    }

    pub(crate) fn member_ref(&self) -> MemberRef {
        MemberRef {
            group: self.cfg.group,
            slot: self.slot,
            incarnation: self.incarnation,
        }
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    fn observe(&self, env: &mut ClientEnv<'_>, obs: Observation) {
        env.out.push(ClientAction::Observe(obs));
    }

    /// Starts the process: a new incarnation with no member id (a static member keeps
    /// its `group.instance.id`).
    pub(crate) fn start(&mut self, env: &mut ClientEnv<'_>) {
        assert_eq!(self.phase, Phase::Down, "a member starts only when down");
        let next_corr = self.next_corr;
        let incarnation = self.incarnation + 1;
        *self = Member::new(self.slot, self.cfg.clone());
        self.next_corr = next_corr;
        self.incarnation = incarnation;
        self.phase = Phase::Joining;
        self.drive(env);
    }

    /// The process dies: no leave, no last commit.
    pub(crate) fn crash(&mut self, env: &mut ClientEnv<'_>) {
        if self.phase == Phase::Down {
            return;
        }
        self.phase = Phase::Down;
        self.paused = false;
        self.observe(
            env,
            Observation::GroupStopped {
                at: env.now,
                member: self.member_ref(),
                crashed: true,
            },
        );
    }

    /// Graceful close: commit and revoke everything, then LeaveGroup.
    pub(crate) fn leave(&mut self, env: &mut ClientEnv<'_>) {
        if self.phase == Phase::Down {
            return;
        }
        let parts: Vec<Part> = self.owned.keys().copied().collect();
        self.revoking = Some(Revoking {
            parts,
            commit_sent: false,
            then: AfterRevoke::Leave,
        });
        self.drive(env);
    }

    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// A timer fired (or the world resumed the member).
    pub(crate) fn wake(&mut self, env: &mut ClientEnv<'_>) {
        if self.wake_at.is_some_and(|w| w <= env.now) {
            self.wake_at = None;
        }
        self.drive(env);
    }

    fn schedule_wake(&mut self, env: &mut ClientEnv<'_>) {
        let at = env.now + MEMBER_TICK_MS;
        if self.wake_at.is_some_and(|w| w > env.now && w <= at) {
            return;
        }
        self.wake_at = Some(at);
        env.out.push(ClientAction::WakeAt(at));
    }

    fn offsets_tp(&self) -> TopicPartition {
        TopicPartition::new(
            OFFSETS_TOPIC,
            eddy_core::group::offsets_partition_for(
                &self.cfg.group_id,
                self.cfg.offsets_partitions,
            ),
        )
    }

    fn tp(&self, part: Part) -> TopicPartition {
        self.cfg
            .parts
            .iter()
            .find(|(p, _)| *p == part)
            .expect("a part of the member's topic")
            .1
            .clone()
    }

    fn part_of(&self, partition: u32) -> Option<Part> {
        self.cfg
            .parts
            .iter()
            .find(|(_, tp)| tp.partition == partition)
            .map(|(p, _)| *p)
    }

    /// The coordinator is unknown again (Java's `markCoordinatorUnknown`).
    fn lose_coordinator(&mut self) {
        if self.coordinator.take().is_some() {
            let tp = self.offsets_tp();
            self.metadata.forget(&tp);
        }
    }

    /// The coordinator accepted `request`: the session lasts at least
    /// `session.timeout.ms` past its sending. Which coordinator accepted it goes into the
    /// history, so a checker can tell an acknowledgement from a zombie coordinator.
    fn renew_session(&mut self, env: &mut ClientEnv<'_>, request: GroupInFlight) {
        let until = request.sent + self.cfg.session_timeout_ms;
        self.session_until = self.session_until.max(until);
        self.observe(
            env,
            Observation::GroupSessionRenewed {
                at: env.now,
                member: self.member_ref(),
                coordinator: request.to,
                sent_at: request.sent,
                until,
            },
        );
    }

    /// Gives up every owned partition without committing (Java's `onPartitionsLost`),
    /// reporting ownership as ended at `until`.
    fn lose_all(&mut self, env: &mut ClientEnv<'_>, until: TimeMs) {
        if !self.owned.is_empty() {
            let parts: Vec<Part> = self.owned.keys().copied().collect();
            self.observe(
                env,
                Observation::GroupRevoked {
                    at: env.now,
                    member: self.member_ref(),
                    parts,
                    until,
                },
            );
        }
        self.owned.clear();
        self.owned_generation = None;
        self.offset_fetch = None;
        if let Some(r) = &mut self.revoking {
            r.parts.clear();
        }
    }

    /// The coordinator no longer knows this member's generation (or id): lose the
    /// partitions and join again.
    fn reset_and_rejoin(&mut self, env: &mut ClientEnv<'_>, forget_member_id: bool) {
        self.lose_all(env, env.now);
        if forget_member_id {
            self.member_id = UNKNOWN_MEMBER_ID.to_string();
        }
        self.generation = UNKNOWN_GENERATION_ID;
        self.group_request = None;
        if self
            .revoking
            .as_ref()
            .is_some_and(|r| r.then == AfterRevoke::Join)
        {
            self.revoking = None;
        }
        if self.revoking.is_none() {
            self.phase = Phase::Joining;
        }
    }

    fn send(&mut self, env: &mut ClientEnv<'_>, to: NodeId, req: ClientRequest) -> u64 {
        let corr = self.corr();
        env.out.push(ClientAction::Send { to, corr, req });
        corr
    }

    fn drive(&mut self, env: &mut ClientEnv<'_>) {
        if self.phase == Phase::Down || self.paused {
            return;
        }
        self.schedule_wake(env);
        // The member's own view of its session: past it, nothing is owned any more.
        if !self.owned.is_empty() && env.now >= self.session_until {
            let until = self.session_until;
            self.lose_all(env, until);
            self.rejoin_needed = true;
        }
        self.expire_requests(env);
        if self.revoking.is_some() {
            self.drive_revocation(env);
            if self.revoking.is_some() || self.phase == Phase::Down {
                return;
            }
        }
        if self.phase == Phase::Stable && self.rejoin_needed {
            self.phase = Phase::Joining;
        }
        if self.phase == Phase::Joining {
            self.rejoin_needed = false;
            let eager = self.cfg.assignor.rebalance_protocol() == RebalanceProtocol::Eager;
            if eager && !self.owned.is_empty() {
                // Eager: give everything up (committing it) before rejoining.
                let parts = self.owned.keys().copied().collect();
                self.revoking = Some(Revoking {
                    parts,
                    commit_sent: false,
                    then: AfterRevoke::Join,
                });
                self.drive_revocation(env);
                return;
            }
            self.send_join(env);
        }
        if self.phase == Phase::Stable {
            self.maybe_heartbeat(env);
        }
        if matches!(
            self.phase,
            Phase::Stable | Phase::AwaitJoin | Phase::AwaitSync
        ) {
            self.maybe_commit(env);
            self.maybe_fetch_offsets(env);
            self.fetch(env);
        }
    }

    fn expire_requests(&mut self, env: &mut ClientEnv<'_>) {
        let now = env.now;
        let join_timeout = GROUP_REQUEST_TIMEOUT_MS + self.cfg.rebalance_timeout_ms;
        if self
            .group_request
            .is_some_and(|r| now >= r.sent + join_timeout)
        {
            self.group_request = None;
            self.lose_coordinator();
            if matches!(self.phase, Phase::AwaitJoin | Phase::AwaitSync) {
                self.phase = Phase::Joining;
            }
        }
        if self
            .heartbeat
            .is_some_and(|r| now >= r.sent + GROUP_REQUEST_TIMEOUT_MS)
        {
            self.heartbeat = None;
            self.lose_coordinator();
        }
        if self
            .commit
            .as_ref()
            .is_some_and(|c| now >= c.sent + GROUP_REQUEST_TIMEOUT_MS)
        {
            // Unknown outcome.
            self.commit = None;
            self.lose_coordinator();
        }
        if self
            .offset_fetch
            .as_ref()
            .is_some_and(|&(_, sent, _)| now >= sent + GROUP_REQUEST_TIMEOUT_MS)
        {
            self.offset_fetch = None;
            self.lose_coordinator();
        }
        let mut forget = Vec::new();
        for (&part, o) in &mut self.owned {
            if o.fetch
                .is_some_and(|(_, sent)| now >= sent + FETCH_TIMEOUT_MS)
            {
                o.fetch = None;
                forget.push(part);
            }
        }
        for part in forget {
            let tp = self.tp(part);
            self.metadata.forget(&tp);
        }
    }

    /// The coordinator's address, or a metadata request on the way to learning it.
    fn coordinator(&mut self, env: &mut ClientEnv<'_>) -> Option<NodeId> {
        if self.coordinator.is_none() {
            let tp = self.offsets_tp();
            match self.metadata.leader(&tp) {
                Some(leader) => self.coordinator = Some(leader),
                None => {
                    let corr = self.corr();
                    self.metadata.refresh(env, corr);
                }
            }
        }
        self.coordinator
    }

    fn subscription_metadata(&self) -> Bytes {
        let owned: Vec<String> = self
            .owned
            .keys()
            .map(|&p| self.tp(p).partition.to_string())
            .collect();
        // As Java's ConsumerCoordinator does: the generation the member last joined, even
        // if it never learned that generation's assignment (a SyncGroup lost with its
        // coordinator). KIP-792's assignor drops the claims of members reporting an older
        // generation than others, so reporting the older generation of the assignment
        // would let the leader hand these partitions to another member at once.
        let generation = if self.generation != UNKNOWN_GENERATION_ID {
            self.generation
        } else {
            self.owned_generation.unwrap_or(UNKNOWN_GENERATION_ID)
        };
        Bytes::from(format!(
            "{};{};{}",
            self.cfg.topic,
            generation,
            owned.join(",")
        ))
    }

    fn send_join(&mut self, env: &mut ClientEnv<'_>) {
        if env.now < self.retry_at || self.group_request.is_some() {
            return;
        }
        let Some(to) = self.coordinator(env) else {
            return;
        };
        let req = JoinGroupRequest {
            group_id: self.cfg.group_id.clone(),
            session_timeout_ms: self.cfg.session_timeout_ms as i32,
            rebalance_timeout_ms: self.cfg.rebalance_timeout_ms as i32,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: self.cfg.assignor.name().into(),
                metadata: self.subscription_metadata(),
            }],
            reason: None,
            client_id: format!("member-{}", self.slot),
            client_host: "sim".into(),
            require_known_member_id: true,
        };
        let corr = self.send(env, to, ClientRequest::Group(GroupRequest::JoinGroup(req)));
        self.group_request = Some(GroupInFlight::new(corr, env.now, to));
        self.phase = Phase::AwaitJoin;
        if !self.joined_once {
            self.joined_once = true;
            self.observe(
                env,
                Observation::GroupJoining {
                    at: env.now,
                    member: self.member_ref(),
                },
            );
        }
    }

    fn maybe_heartbeat(&mut self, env: &mut ClientEnv<'_>) {
        if self.heartbeat.is_some() || env.now < self.next_heartbeat_at {
            return;
        }
        let Some(to) = self.coordinator(env) else {
            return;
        };
        let req = HeartbeatRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
        };
        let corr = self.send(env, to, ClientRequest::Group(GroupRequest::Heartbeat(req)));
        self.heartbeat = Some(GroupInFlight::new(corr, env.now, to));
        self.next_heartbeat_at = env.now + self.cfg.heartbeat_interval_ms;
    }

    /// Sends a commit of `parts`' positions that moved since their last commit. Returns
    /// whether one was sent.
    fn send_commit(&mut self, env: &mut ClientEnv<'_>, parts: &[Part]) -> bool {
        if self.commit.is_some() || self.generation == UNKNOWN_GENERATION_ID {
            return false;
        }
        let offsets: Vec<(Part, Offset)> = parts
            .iter()
            .filter_map(|p| {
                let o = self.owned.get(p)?;
                let position = o.position?;
                (o.committed != Some(position)).then_some((*p, position))
            })
            .collect();
        if offsets.is_empty() {
            return false;
        }
        let Some(to) = self.coordinator(env) else {
            return false;
        };
        let req = OffsetCommitRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            retention_time_ms: DEFAULT_RETENTION_TIME,
            topics: vec![OffsetCommitTopic {
                name: self.cfg.topic.clone(),
                partitions: offsets
                    .iter()
                    .map(|&(p, offset)| OffsetCommitPartition {
                        partition_index: self.tp(p).partition as i32,
                        committed_offset: offset.0 as i64,
                        committed_leader_epoch: NO_LEADER_EPOCH,
                        committed_metadata: None,
                        commit_timestamp: DEFAULT_TIMESTAMP,
                    })
                    .collect(),
            }],
        };
        for &(part, offset) in &offsets {
            self.observe(
                env,
                Observation::GroupCommitSent {
                    at: env.now,
                    member: self.member_ref(),
                    part,
                    offset,
                    generation: self.generation,
                },
            );
        }
        let corr = self.send(
            env,
            to,
            ClientRequest::Group(GroupRequest::OffsetCommit(req)),
        );
        self.commit = Some(CommitInFlight {
            corr,
            sent: env.now,
            offsets,
            generation: self.generation,
        });
        true
    }

    fn maybe_commit(&mut self, env: &mut ClientEnv<'_>) {
        if env.now < self.next_commit_at || self.phase != Phase::Stable {
            return;
        }
        let parts: Vec<Part> = self.owned.keys().copied().collect();
        if self.send_commit(env, &parts) || self.commit.is_none() {
            self.next_commit_at = env.now + self.cfg.commit_interval_ms;
        }
    }

    /// Commits the partitions being revoked (waiting for a commit in flight first), then
    /// gives them up and goes on: rejoin, or leave and close.
    fn drive_revocation(&mut self, env: &mut ClientEnv<'_>) {
        let Some(r) = &self.revoking else { return };
        if self.commit.is_some() {
            return; // its outcome first; at most one commit in flight
        }
        if !r.commit_sent {
            let parts = r.parts.clone();
            let sent = self.send_commit(env, &parts);
            let r = self.revoking.as_mut().expect("checked");
            r.commit_sent = true;
            if sent {
                return;
            }
        }
        let r = self.revoking.take().expect("checked");
        let parts: Vec<Part> = r
            .parts
            .iter()
            .copied()
            .filter(|p| self.owned.contains_key(p))
            .collect();
        if !parts.is_empty() {
            for p in &parts {
                self.owned.remove(p);
            }
            self.observe(
                env,
                Observation::GroupRevoked {
                    at: env.now,
                    member: self.member_ref(),
                    parts,
                    until: env.now,
                },
            );
        }
        if let Some((_, _, waiting)) = &mut self.offset_fetch {
            waiting.retain(|p| self.owned.contains_key(p));
        }
        match r.then {
            AfterRevoke::Join => {
                self.phase = Phase::Joining;
                self.drive(env);
            }
            AfterRevoke::Leave => self.close(env),
        }
    }

    /// After a graceful leave's revocation: LeaveGroup (dynamic members only, as the
    /// Java client does on close) and stop.
    fn close(&mut self, env: &mut ClientEnv<'_>) {
        if self.cfg.instance_id.is_none() && !self.member_id.is_empty() {
            if let Some(to) = self.coordinator {
                let req = LeaveGroupRequest {
                    group_id: self.cfg.group_id.clone(),
                    members: vec![MemberIdentity {
                        member_id: self.member_id.clone(),
                        group_instance_id: None,
                        reason: Some("closing".into()),
                    }],
                };
                self.send(env, to, ClientRequest::Group(GroupRequest::LeaveGroup(req)));
            }
        }
        self.phase = Phase::Down;
        self.observe(
            env,
            Observation::GroupStopped {
                at: env.now,
                member: self.member_ref(),
                crashed: false,
            },
        );
    }

    fn maybe_fetch_offsets(&mut self, env: &mut ClientEnv<'_>) {
        if self.offset_fetch.is_some() || env.now < self.retry_at {
            return;
        }
        let revoking: BTreeSet<Part> = self
            .revoking
            .iter()
            .flat_map(|r| r.parts.iter().copied())
            .collect();
        let needed: Vec<Part> = self
            .owned
            .iter()
            .filter(|(p, o)| o.position.is_none() && !revoking.contains(p))
            .map(|(&p, _)| p)
            .collect();
        if needed.is_empty() {
            return;
        }
        let Some(to) = self.coordinator(env) else {
            return;
        };
        let req = OffsetFetchRequest {
            group_id: self.cfg.group_id.clone(),
            topics: Some(vec![OffsetFetchTopic {
                name: self.cfg.topic.clone(),
                partition_indexes: needed
                    .iter()
                    .map(|&p| self.tp(p).partition as i32)
                    .collect(),
            }]),
            require_stable: true,
        };
        let corr = self.send(
            env,
            to,
            ClientRequest::Group(GroupRequest::OffsetFetch(req)),
        );
        self.offset_fetch = Some((corr, env.now, needed));
    }

    fn fetch(&mut self, env: &mut ClientEnv<'_>) {
        let revoking: BTreeSet<Part> = self
            .revoking
            .iter()
            .flat_map(|r| r.parts.iter().copied())
            .collect();
        let mut need_metadata = false;
        let parts: Vec<Part> = self.owned.keys().copied().collect();
        for part in parts {
            let o = &self.owned[&part];
            if revoking.contains(&part) || o.fetch.is_some() || env.now < o.retry_at {
                continue;
            }
            let Some(offset) = o.position else { continue };
            let tp = self.tp(part);
            let Some(leader) = self.metadata.leader(&tp) else {
                need_metadata = true;
                continue;
            };
            let corr = self.send(
                env,
                leader,
                ClientRequest::Fetch {
                    partition: tp,
                    offset,
                    max_bytes: FETCH_MAX_BYTES,
                    max_wait_ms: FETCH_MAX_WAIT_MS,
                },
            );
            self.owned.get_mut(&part).expect("listed").fetch = Some((corr, env.now));
        }
        if need_metadata {
            let corr = self.corr();
            self.metadata.refresh(env, corr);
        }
    }

    /// The connection carrying request `corr` broke: its outcome is unknown.
    pub(crate) fn on_disconnect(&mut self, env: &mut ClientEnv<'_>, corr: u64) {
        if self.phase == Phase::Down || self.paused {
            return;
        }
        if self.metadata.on_disconnect(corr) {
        } else if self.group_request.is_some_and(|r| r.corr == corr) {
            self.group_request = None;
            self.lose_coordinator();
            self.phase = Phase::Joining;
            self.retry_at = env.now + RETRY_BACKOFF_MS;
        } else if self.heartbeat.is_some_and(|r| r.corr == corr) {
            self.heartbeat = None;
            self.lose_coordinator();
        } else if self.commit.as_ref().is_some_and(|c| c.corr == corr) {
            self.commit = None;
            self.lose_coordinator();
        } else if self.offset_fetch.as_ref().is_some_and(|f| f.0 == corr) {
            self.offset_fetch = None;
            self.lose_coordinator();
            self.retry_at = env.now + RETRY_BACKOFF_MS;
        } else if let Some((&part, _)) = self
            .owned
            .iter()
            .find(|(_, o)| o.fetch.is_some_and(|(c, _)| c == corr))
        {
            let tp = self.tp(part);
            self.metadata.forget(&tp);
            let o = self.owned.get_mut(&part).expect("found");
            o.fetch = None;
            o.retry_at = env.now + RETRY_BACKOFF_MS;
        } else {
            return;
        }
        self.drive(env);
    }

    pub(crate) fn on_response(&mut self, env: &mut ClientEnv<'_>, corr: u64, resp: ClientResponse) {
        if self.phase == Phase::Down || self.paused {
            return;
        }
        if self.metadata.on_response(corr, &resp) {
            self.drive(env);
            return;
        }
        match resp {
            ClientResponse::Group(GroupResponse::JoinGroup(r)) => {
                let Some(request) = self.group_request else {
                    return;
                };
                if request.corr != corr || self.phase != Phase::AwaitJoin {
                    return;
                }
                self.group_request = None;
                self.on_join(env, request, r);
            }
            ClientResponse::Group(GroupResponse::SyncGroup(r)) => {
                let Some(request) = self.group_request else {
                    return;
                };
                if request.corr != corr || self.phase != Phase::AwaitSync {
                    return;
                }
                self.group_request = None;
                self.on_sync(env, request, r.error, &r.assignment);
            }
            ClientResponse::Group(GroupResponse::Heartbeat(r)) => {
                let Some(request) = self.heartbeat else {
                    return;
                };
                if request.corr != corr {
                    return;
                }
                self.heartbeat = None;
                self.on_heartbeat(env, request, r.error);
            }
            ClientResponse::Group(GroupResponse::OffsetCommit(r)) => {
                if self.commit.as_ref().is_none_or(|c| c.corr != corr) {
                    return;
                }
                let commit = self.commit.take().expect("checked");
                let errors: Vec<(i32, ErrorCode)> = r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.error)))
                    .collect();
                self.on_commit(env, commit, &errors);
            }
            ClientResponse::Group(GroupResponse::OffsetFetch(r)) => {
                let Some((c, sent, parts)) = self.offset_fetch.take() else {
                    return;
                };
                if c != corr {
                    self.offset_fetch = Some((c, sent, parts));
                    return;
                }
                self.on_offset_fetch(env, sent, &parts, r);
            }
            ClientResponse::Group(_) => return,
            ClientResponse::Fetch {
                partition,
                error,
                batches,
                ..
            } => self.on_fetch(env, corr, partition, error, crate::fetched_bytes(batches)),
            _ => return,
        }
        self.drive(env);
    }

    /// Errors every group request may get that say "find the coordinator again".
    fn coordinator_error(&mut self, env: &mut ClientEnv<'_>, error: ErrorCode) -> bool {
        match error {
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.lose_coordinator();
                self.retry_at = env.now + RETRY_BACKOFF_MS;
                true
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                self.retry_at = env.now + RETRY_BACKOFF_MS;
                true
            }
            _ => false,
        }
    }

    fn on_join(
        &mut self,
        env: &mut ClientEnv<'_>,
        request: GroupInFlight,
        r: eddy_core::group::JoinGroupResponse,
    ) {
        self.phase = Phase::Joining;
        match r.error {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => {
                self.member_id = r.member_id;
                return;
            }
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                self.reset_and_rejoin(env, true);
                self.retry_at = env.now + RETRY_BACKOFF_MS;
                return;
            }
            ErrorCode::FencedInstanceId => {
                // Another process runs under this group.instance.id: stop, as Java does.
                self.lose_all(env, env.now);
                self.close(env);
                return;
            }
            e => {
                if !self.coordinator_error(env, e) {
                    self.retry_at = env.now + RETRY_BACKOFF_MS;
                }
                return;
            }
        }
        self.renew_session(env, request);
        if let Some((previous, previous_at)) =
            self.highest_joined.filter(|&(g, _)| r.generation_id <= g)
        {
            self.observe(
                env,
                Observation::GroupGenerationReused {
                    at: env.now,
                    member: self.member_ref(),
                    previous,
                    previous_at,
                    joined: r.generation_id,
                },
            );
        }
        if self.highest_joined.is_none_or(|(g, _)| r.generation_id > g) {
            self.highest_joined = Some((r.generation_id, env.now));
        }
        self.member_id = r.member_id.clone();
        self.generation = r.generation_id;
        let assignments = if r.leader == r.member_id && !r.members.is_empty() {
            self.assign(&r.members)
        } else {
            Vec::new()
        };
        let Some(to) = self.coordinator else {
            return;
        };
        let req = SyncGroupRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: r.protocol_type,
            protocol_name: r.protocol_name,
            assignments,
        };
        let corr = self.send(env, to, ClientRequest::Group(GroupRequest::SyncGroup(req)));
        self.group_request = Some(GroupInFlight::new(corr, env.now, to));
        self.phase = Phase::AwaitSync;
    }

    /// The leader's part: run the assignor over every member's subscription.
    fn assign(&self, members: &[eddy_core::group::JoinGroupMember]) -> Vec<SyncGroupAssignment> {
        let subscriptions: Vec<Subscription> = members
            .iter()
            .map(|m| {
                let text = String::from_utf8_lossy(&m.metadata).to_string();
                let mut fields = text.split(';');
                let topic = fields.next().unwrap_or_default().to_string();
                let generation: i32 = fields.next().and_then(|g| g.parse().ok()).unwrap_or(-1);
                let owned: Vec<TopicPartition> = fields
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .map(|p| TopicPartition::new(topic.clone(), p))
                    .collect();
                let mut s = Subscription::new(m.member_id.clone(), [topic]);
                s.group_instance_id = m.group_instance_id.clone();
                if generation >= 0 {
                    s = s.with_owned(owned, Generation(generation));
                }
                s
            })
            .collect();
        let partitions = BTreeMap::from([(self.cfg.topic.clone(), self.cfg.parts.len() as u32)]);
        self.cfg
            .assignor
            .assign(&subscriptions, &partitions)
            .into_iter()
            .map(|(member_id, tps)| {
                let list: Vec<String> = tps.iter().map(|tp| tp.partition.to_string()).collect();
                SyncGroupAssignment {
                    member_id,
                    assignment: Bytes::from(list.join(",")),
                }
            })
            .collect()
    }

    fn on_sync(
        &mut self,
        env: &mut ClientEnv<'_>,
        request: GroupInFlight,
        error: ErrorCode,
        bytes: &[u8],
    ) {
        self.phase = Phase::Joining;
        match error {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => return,
            ErrorCode::UnknownMemberId => return self.reset_and_rejoin(env, true),
            ErrorCode::IllegalGeneration => return self.reset_and_rejoin(env, false),
            ErrorCode::FencedInstanceId => {
                self.lose_all(env, env.now);
                return self.close(env);
            }
            e => {
                if !self.coordinator_error(env, e) {
                    self.retry_at = env.now + RETRY_BACKOFF_MS;
                }
                return;
            }
        }
        self.renew_session(env, request);
        let assigned: BTreeSet<Part> = String::from_utf8_lossy(bytes)
            .split(',')
            .filter_map(|p| p.parse::<u32>().ok())
            .filter_map(|p| self.part_of(p))
            .collect();
        for &p in &assigned {
            self.owned.entry(p).or_default();
        }
        self.owned_generation = Some(self.generation);
        self.phase = Phase::Stable;
        self.next_heartbeat_at = env.now + self.cfg.heartbeat_interval_ms;
        self.observe(
            env,
            Observation::GroupAssigned {
                at: env.now,
                member: self.member_ref(),
                generation: self.generation,
                owned: self.owned.keys().copied().collect(),
            },
        );
        // Cooperative: give up what the new assignment leaves out, then rejoin.
        let revoked: Vec<Part> = self
            .owned
            .keys()
            .copied()
            .filter(|p| !assigned.contains(p))
            .collect();
        if !revoked.is_empty() {
            self.revoking = Some(Revoking {
                parts: revoked,
                commit_sent: false,
                then: AfterRevoke::Join,
            });
        }
    }

    fn on_heartbeat(&mut self, env: &mut ClientEnv<'_>, request: GroupInFlight, error: ErrorCode) {
        if self.phase != Phase::Stable {
            return;
        }
        match error {
            ErrorCode::None => self.renew_session(env, request),
            ErrorCode::RebalanceInProgress => {
                // The coordinator renewed the session and asks for a rejoin.
                self.renew_session(env, request);
                self.rejoin_needed = true;
            }
            ErrorCode::UnknownMemberId => self.reset_and_rejoin(env, true),
            ErrorCode::IllegalGeneration => self.reset_and_rejoin(env, false),
            ErrorCode::FencedInstanceId => {
                self.lose_all(env, env.now);
                self.close(env);
            }
            e => {
                self.coordinator_error(env, e);
            }
        }
    }

    fn on_commit(
        &mut self,
        env: &mut ClientEnv<'_>,
        commit: CommitInFlight,
        errors: &[(i32, ErrorCode)],
    ) {
        for &(part, offset) in &commit.offsets {
            let partition = self.tp(part).partition as i32;
            let error = errors
                .iter()
                .find(|(p, _)| *p == partition)
                .map_or(ErrorCode::UnknownServerError, |&(_, e)| e);
            match error {
                ErrorCode::None => {
                    self.observe(
                        env,
                        Observation::GroupCommitAcked {
                            at: env.now,
                            member: self.member_ref(),
                            part,
                            offset,
                            generation: commit.generation,
                        },
                    );
                    if let Some(o) = self.owned.get_mut(&part) {
                        o.committed = Some(offset);
                    }
                }
                // Fenced: the generation moved on. Java fails the commit
                // (CommitFailedException) and rejoins; the heartbeat will say how.
                ErrorCode::RebalanceInProgress
                | ErrorCode::IllegalGeneration
                | ErrorCode::UnknownMemberId
                | ErrorCode::FencedInstanceId => self.rejoin_needed = true,
                e => {
                    self.coordinator_error(env, e);
                }
            }
        }
    }

    fn on_offset_fetch(
        &mut self,
        env: &mut ClientEnv<'_>,
        sent: TimeMs,
        parts: &[Part],
        r: eddy_core::group::OffsetFetchResponse,
    ) {
        if r.error != ErrorCode::None {
            if !self.coordinator_error(env, r.error) {
                self.retry_at = env.now + RETRY_BACKOFF_MS;
            }
            return;
        }
        for t in &r.topics {
            for p in &t.partitions {
                let Some(part) = self.part_of(p.partition_index as u32) else {
                    continue;
                };
                if !parts.contains(&part) {
                    continue;
                }
                if p.error != ErrorCode::None {
                    self.coordinator_error(env, p.error);
                    continue;
                }
                let member = self.member_ref();
                let Some(o) = self.owned.get_mut(&part) else {
                    continue;
                };
                if o.position.is_some() {
                    continue;
                }
                let committed = p.committed_offset >= 0;
                let offset = Offset(p.committed_offset.max(0) as u64);
                o.position = Some(offset);
                o.committed = committed.then_some(offset);
                env.out
                    .push(ClientAction::Observe(Observation::GroupResumed {
                        at: env.now,
                        member,
                        part,
                        offset,
                        committed,
                        fetch_sent_at: sent,
                        reset: false,
                    }));
            }
        }
    }

    fn on_fetch(
        &mut self,
        env: &mut ClientEnv<'_>,
        corr: u64,
        partition: TopicPartition,
        error: ErrorCode,
        batches: Vec<Bytes>,
    ) {
        let Some(part) = self.part_of(partition.partition) else {
            return;
        };
        let member = self.member_ref();
        let generation = self.generation;
        let session_alive = env.now < self.session_until;
        let revoking = self
            .revoking
            .as_ref()
            .is_some_and(|r| r.parts.contains(&part));
        let Some(o) = self.owned.get_mut(&part) else {
            return;
        };
        if o.fetch.map(|(c, _)| c) != Some(corr) {
            return;
        }
        o.fetch = None;
        match error {
            ErrorCode::None => {
                if !session_alive || revoking {
                    return;
                }
                let Some(mut position) = o.position else {
                    return;
                };
                for bytes in &batches {
                    let header = BatchHeader::parse(bytes).expect("brokers serve whole batches");
                    let last = Offset(header.last_offset() as u64);
                    if last < position {
                        continue;
                    }
                    let id = *env
                        .batch_ids
                        .get(&header.crc)
                        .expect("every batch was made by a simulated producer");
                    env.out
                        .push(ClientAction::Observe(Observation::GroupProcessed {
                            at: env.now,
                            member,
                            part,
                            generation,
                            from: position,
                            batch: BatchRef {
                                base_offset: Offset(header.base_offset as u64),
                                last_offset: last,
                                id,
                                epoch: header.partition_leader_epoch as u32,
                            },
                        }));
                    position = last.plus(1);
                }
                o.position = Some(position);
            }
            ErrorCode::OffsetOutOfRange => {
                // auto.offset.reset = earliest: an explicit reset, reported as a resume.
                o.position = Some(Offset::ZERO);
                env.out
                    .push(ClientAction::Observe(Observation::GroupResumed {
                        at: env.now,
                        member,
                        part,
                        offset: Offset::ZERO,
                        committed: false,
                        fetch_sent_at: env.now,
                        reset: true,
                    }));
            }
            _ => {
                o.retry_at = env.now + RETRY_BACKOFF_MS;
                self.metadata.forget(&partition);
            }
        }
    }
}

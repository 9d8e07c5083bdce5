//! One member of the quorum: its role, its term and vote, its log, and the routing of
//! inputs to the handlers for elections (`election.rs`), replication (`replication.rs`)
//! and snapshots (`snapshot.rs`). This file owns the state and the transitions every
//! handler shares: adopting a term, following a leader, persisting the hard state.

use std::collections::BTreeSet;
use std::mem;

use bytes::Bytes;
use rand_core::RngCore;

use crate::quorum::log::RaftLog;
use crate::quorum::membership::Membership;
use crate::quorum::message::RaftMessage;
use crate::quorum::persist::{PendingWrite, WriteQueue};
use crate::quorum::replication::LeaderState;
use crate::quorum::{Effect, Entry, HardState, LogId, LogIndex, Payload, Snapshot, Term};
use crate::types::{NodeId, TimeMs};

/// How many entries a leader holds appended but not yet committed before it refuses
/// proposals: bounds the memory a leader cut off from its followers can fill, and the
/// work a new leader may have to overwrite.
pub(crate) const MAX_UNCOMMITTED_ENTRIES: u64 = 4_096;

/// The timers a node runs with. KRaft's `controller.quorum.election.timeout.ms` is the
/// minimum here; like KRaft, each timeout is drawn between it and the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 2_000,
            heartbeat_interval_ms: 200,
        }
    }
}

impl RaftConfig {
    /// Checks the timers make sense together: elections need a range to randomise over,
    /// and a leader must be heard from several times within the shortest timeout.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat interval = 0 ms: must be at least 1 ms".to_string());
        }
        if self.election_timeout_min_ms < 2 * self.heartbeat_interval_ms {
            return Err(format!(
                "election timeout minimum = {} ms: must be at least twice the heartbeat \
                 interval ({} ms), or followers start elections against a live leader",
                self.election_timeout_min_ms, self.heartbeat_interval_ms
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(format!(
                "election timeout maximum = {} ms: must exceed the minimum ({} ms), so \
                 that randomised timeouts break split votes",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        Ok(())
    }
}

/// What a node recovered from its disk: the latest durable hard state, snapshot and
/// log entries after it. `Default` is a node that never ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

/// A completed write of a `Persist*` effect, reported back to the node (or to the
/// controller's voter) in the order the effects were emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persisted {
    HardState(HardState),
    /// Entries up to this id are durable.
    Entries(LogId),
    /// A snapshot up to this id is durable.
    Snapshot(LogId),
}

impl DurableState {
    /// Applies one `Persist*` effect to what a disk holds, with the meaning the effects
    /// document, and says which completion to report. Every shell's storage (the
    /// simulator's disk, the broker's files) keeps its contents this way.
    ///
    /// # Panics
    /// On an effect that is not a write, or entries that would leave a gap: both are
    /// bugs in the Raft node, not in what a disk returned.
    pub fn apply_write(&mut self, write: Effect) -> Persisted {
        match write {
            Effect::PersistHardState(hs) => {
                self.hard_state = hs;
                Persisted::HardState(hs)
            }
            Effect::PersistEntries {
                from_index,
                entries,
            } => {
                let snapshot_last = self.snapshot_last();
                assert!(
                    from_index > snapshot_last.index,
                    "Raft wrote entries from {from_index}, at or below its snapshot at {}",
                    snapshot_last.index
                );
                let keep = (from_index.0 - snapshot_last.index.0 - 1) as usize;
                assert!(
                    keep <= self.entries.len(),
                    "Raft wrote entries from {from_index}, leaving a gap after {} entries",
                    self.entries.len()
                );
                self.entries.truncate(keep);
                self.entries.extend(entries);
                Persisted::Entries(self.entries.last().map_or(snapshot_last, Entry::id))
            }
            Effect::PersistSnapshot(snapshot) => {
                let old = self.snapshot_last();
                let at = snapshot.last;
                let pos = at.index.0.checked_sub(old.index.0 + 1);
                let holds = pos
                    .and_then(|p| self.entries.get(p as usize))
                    .is_some_and(|e| e.term == at.term);
                match pos {
                    Some(p) if holds => drop(self.entries.drain(..=p as usize)),
                    _ if at == old => {}
                    _ => self.entries.clear(),
                }
                self.snapshot = Some(snapshot);
                Persisted::Snapshot(at)
            }
            other => panic!("not a write: {other:?}"),
        }
    }

    /// The id of the last entry the snapshot covers (zero without one).
    pub fn snapshot_last(&self) -> LogId {
        self.snapshot.as_ref().map(|s| s.last).unwrap_or_default()
    }
}

/// Why a proposal was refused. The caller retries elsewhere or later.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error(
        "this node is not the quorum leader (leader: {leader_hint:?}); send the proposal there"
    )]
    NotLeader { leader_hint: Option<NodeId> },
    #[error(
        "the leader holds {uncommitted} uncommitted entries (at most {MAX_UNCOMMITTED_ENTRIES}); \
         retry once some commit"
    )]
    TooManyUncommitted { uncommitted: u64 },
}

/// A node's role, as callers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes: could it win an election? Its term is unchanged.
    PreCandidate,
    Candidate,
    Leader,
}

#[derive(Clone, Debug)]
pub(crate) enum RoleState {
    Follower,
    /// The voters (other than itself) that granted the pre-vote for `term + 1`.
    PreCandidate {
        granted: BTreeSet<NodeId>,
    },
    /// The voters (other than itself) that granted their vote in `term`; its own counts
    /// once durable.
    Candidate {
        granted: BTreeSet<NodeId>,
    },
    Leader(LeaderState),
}

/// The election timer. The randomised timeout is drawn at the first tick after a reset,
/// because only `tick` carries the RNG; the deadline still counts from the reset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElectionTimer {
    pub(crate) reset_at_ms: TimeMs,
    pub(crate) timeout_ms: Option<u64>,
}

/// One voter or observer of the quorum. See the module comment of `quorum` for the
/// inputs, effects and durability rules.
#[derive(Clone, Debug)]
pub struct RaftNode {
    pub(crate) id: NodeId,
    pub(crate) membership: Membership,
    pub(crate) cfg: RaftConfig,
    /// The hard state in memory: may be ahead of `durable_hard_state`.
    pub(crate) hard_state: HardState,
    /// The hard state the disk confirmed last.
    pub(crate) durable_hard_state: HardState,
    pub(crate) log: RaftLog,
    pub(crate) role: RoleState,
    pub(crate) leader: Option<NodeId>,
    /// The (term, leader) last announced with `LeaderChanged`.
    announced: (Term, Option<NodeId>),
    /// When the current leader was last heard from (valid while `leader` is another node).
    pub(crate) last_leader_contact_ms: TimeMs,
    pub(crate) election_timer: ElectionTimer,
    pub(crate) writes: WriteQueue,
    /// A vote granted in the current term whose reply waits for the vote to be durable.
    pub(crate) held_vote: Option<NodeId>,
    /// A snapshot installed from the leader whose acknowledgement waits for durability.
    pub(crate) held_snapshot_ack: Option<(NodeId, LogId)>,
    /// As a follower: the log is known to match the current leader's up to here.
    pub(crate) leader_verified: LogIndex,
    /// The highest commit index a leader's AppendEntries announced since this node
    /// started (`None` before the first).
    pub(crate) leader_commit_seen: Option<LogIndex>,
    /// As an observer: whether it announces itself to the voters (see
    /// [`RaftNode::announce_as_observer`]), and when it may next.
    pub(crate) announce: bool,
    pub(crate) next_announce_ms: TimeMs,
    now_ms: TimeMs,
    pub(crate) effects: Vec<Effect>,
}

impl RaftNode {
    /// A node starting from what its disk holds, as a follower that knows no leader.
    /// If the disk held a snapshot, the first effect is `ApplySnapshot` with it.
    pub fn new(
        id: NodeId,
        membership: Membership,
        cfg: RaftConfig,
        now_ms: TimeMs,
        durable: DurableState,
    ) -> RaftNode {
        if let Err(e) = cfg.validate() {
            panic!("invalid Raft config (validate it before starting a node): {e}");
        }
        assert!(
            membership.contains(id),
            "{id} is not in the quorum it was started in"
        );
        let log = RaftLog::restore(durable.snapshot, durable.entries);
        let mut effects = Vec::new();
        if log.snapshot().last.index > LogIndex(0) {
            effects.push(Effect::ApplySnapshot(log.snapshot().clone()));
        }
        RaftNode {
            id,
            membership,
            cfg,
            hard_state: durable.hard_state,
            durable_hard_state: durable.hard_state,
            log,
            role: RoleState::Follower,
            leader: None,
            announced: (durable.hard_state.term, None),
            last_leader_contact_ms: now_ms,
            election_timer: ElectionTimer {
                reset_at_ms: now_ms,
                timeout_ms: None,
            },
            writes: WriteQueue::default(),
            held_vote: None,
            held_snapshot_ack: None,
            leader_verified: LogIndex(0),
            leader_commit_seen: None,
            announce: false,
            next_announce_ms: now_ms,
            now_ms,
            effects,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn term(&self) -> Term {
        self.hard_state.term
    }

    /// The leader this node knows of in its current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// Takes the effects produced so far, oldest first.
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        mem::take(&mut self.effects)
    }

    /// How far the metadata log is committed, as far as this node knows since it
    /// started: its own commit index while it leads, else the highest a leader announced
    /// to it (`None` before any did). A node whose applied state reaches it has caught up
    /// (KRaft's initial catch-up before a broker publishes its metadata).
    pub fn known_commit(&self) -> Option<LogIndex> {
        match self.role {
            RoleState::Leader(_) => Some(self.log.commit_index()),
            _ => self.leader_commit_seen,
        }
    }

    /// Makes this observer announce itself ([`RaftMessage::Observe`]) to every voter
    /// while it knows no live leader, at most once per minimum election timeout: voters
    /// that were not configured with it learn of it, and whichever leads replicates to
    /// it. Off by default (observers configured on every voter need not announce).
    pub fn announce_as_observer(&mut self, on: bool) {
        self.announce = on;
    }

    /// Time passed: fires the election timer, or as leader sends heartbeats and checks it
    /// still has a quorum. `rng` supplies the election jitter.
    pub fn tick(&mut self, now_ms: TimeMs, rng: &mut impl RngCore) {
        self.observe_time(now_ms);
        if matches!(self.role, RoleState::Leader(_)) {
            self.leader_tick(now_ms);
        } else {
            self.election_tick(now_ms, rng);
        }
    }

    /// A message from `from`.
    pub fn receive(&mut self, now_ms: TimeMs, from: NodeId, msg: RaftMessage) {
        self.observe_time(now_ms);
        if let RaftMessage::Observe { .. } = msg {
            return self.on_observe(now_ms, from);
        }
        if from == self.id || !self.membership.contains(from) {
            return; // Not a member of this quorum: nothing it says counts.
        }
        let term = msg.term();
        match msg {
            // Pre-votes never move anyone's term: handled before the term rules below.
            RaftMessage::RequestVote {
                term,
                pre_vote,
                last_log,
            } => return self.on_request_vote(now_ms, from, term, pre_vote, last_log),
            RaftMessage::RequestVoteResponse {
                pre_vote: true,
                granted: true,
                term,
            } => return self.on_pre_vote_granted(now_ms, from, term),
            _ => {}
        }
        if term > self.hard_state.term {
            let leader = msg.is_from_leader().then_some(from);
            self.become_follower(now_ms, term, leader);
        } else if term < self.hard_state.term {
            if msg.is_from_leader() {
                // A deposed leader: tell it the term it missed, so it steps down.
                self.send(
                    from,
                    RaftMessage::HeartbeatResponse {
                        term: self.hard_state.term,
                    },
                );
            }
            return;
        }
        match msg {
            RaftMessage::RequestVote { .. } => unreachable!("handled above"),
            RaftMessage::RequestVoteResponse {
                pre_vote, granted, ..
            } => {
                if !pre_vote && granted {
                    self.on_vote_granted(now_ms, from);
                }
            }
            RaftMessage::AppendEntries {
                prev_log,
                entries,
                leader_commit,
                ..
            } => self.on_append_entries(now_ms, from, prev_log, entries, leader_commit),
            RaftMessage::AppendEntriesSuccess {
                appended_index,
                match_index,
                ..
            } => self.on_append_success(now_ms, from, appended_index, match_index),
            RaftMessage::AppendEntriesConflict {
                rejected_prev,
                hint,
                ..
            } => self.on_append_conflict(now_ms, from, rejected_prev, hint),
            RaftMessage::Heartbeat { commit, .. } => self.on_heartbeat(now_ms, from, commit),
            RaftMessage::HeartbeatResponse { .. } => self.on_heartbeat_response(now_ms, from),
            RaftMessage::InstallSnapshot { snapshot, .. } => {
                self.on_install_snapshot(now_ms, from, snapshot)
            }
            RaftMessage::InstallSnapshotResponse { last_index, .. } => {
                self.on_install_snapshot_response(now_ms, from, last_index)
            }
            RaftMessage::Observe { .. } => unreachable!("handled above"),
        }
    }

    /// The application asks to replicate `data`. On the leader, returns where it will be
    /// in the log; it is committed when an `Apply` carries it.
    pub fn propose(&mut self, now_ms: TimeMs, data: Bytes) -> Result<LogId, ProposeError> {
        self.observe_time(now_ms);
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        let uncommitted = self.log.last_index().0 - self.log.commit_index().0;
        if uncommitted >= MAX_UNCOMMITTED_ENTRIES {
            return Err(ProposeError::TooManyUncommitted { uncommitted });
        }
        Ok(self.append_and_replicate(now_ms, Payload::Command(data)))
    }

    /// The `PersistHardState(hard_state)` asked for earliest among those pending is durable.
    pub fn hard_state_persisted(&mut self, now_ms: TimeMs, hard_state: HardState) {
        self.observe_time(now_ms);
        self.writes.complete(&PendingWrite::HardState(hard_state));
        self.durable_hard_state = hard_state;
        if let Some(candidate) = self.held_vote {
            let vote = HardState {
                term: self.hard_state.term,
                voted_for: Some(candidate),
            };
            if hard_state == vote {
                self.held_vote = None;
                self.send_vote(candidate, true);
            }
        }
        if matches!(self.role, RoleState::Candidate { .. }) {
            self.check_election_won(now_ms);
        }
    }

    /// The oldest pending `PersistEntries` is durable; `last` is the id of the last entry
    /// the log held after it (what the write left at its end).
    pub fn entries_persisted(&mut self, now_ms: TimeMs, last: LogId) {
        self.observe_time(now_ms);
        self.writes.complete_entries(last);
        self.log.entries_persisted(last, self.writes.floor());
        self.after_durable(now_ms);
    }

    /// The oldest pending `PersistSnapshot` (of the snapshot ending at `last`) is durable.
    pub fn snapshot_persisted(&mut self, now_ms: TimeMs, last: LogId) {
        self.observe_time(now_ms);
        self.writes.complete_snapshot(last);
        self.log.snapshot_persisted(last, self.writes.floor());
        self.ack_held_snapshot(last);
        self.after_durable(now_ms);
    }

    /// More of the log became durable: the leader may commit, a follower tells the leader.
    fn after_durable(&mut self, now_ms: TimeMs) {
        match &self.role {
            RoleState::Leader(_) => self.maybe_commit(now_ms),
            RoleState::Follower => {
                if let Some(leader) = self.leader {
                    if self.leader_verified > LogIndex(0) {
                        self.send(
                            leader,
                            RaftMessage::AppendEntriesSuccess {
                                term: self.hard_state.term,
                                appended_index: self.leader_verified,
                                match_index: self.leader_verified.min(self.log.stable_index()),
                            },
                        );
                    }
                }
            }
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {}
        }
        self.apply_committed();
    }

    /// Adopts `term` (if newer) and follows `leader` (if known).
    pub(crate) fn become_follower(&mut self, now_ms: TimeMs, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.hard_state.term);
        if term > self.hard_state.term {
            self.hard_state = HardState {
                term,
                voted_for: None,
            };
            self.persist_hard_state();
            self.held_vote = None;
            self.held_snapshot_ack = None;
            self.leader_verified = LogIndex(0);
        }
        self.role = RoleState::Follower;
        self.set_leader(leader);
        if leader.is_some() {
            self.last_leader_contact_ms = now_ms;
        }
        self.reset_election_timer(now_ms);
    }

    /// A message only the leader of the current term sends arrived from `from`.
    pub(crate) fn accept_leader(&mut self, now_ms: TimeMs, from: NodeId) {
        assert!(
            !matches!(self.role, RoleState::Leader(_)),
            "election safety: {} and {from} both lead {}",
            self.id,
            self.hard_state.term
        );
        if self.leader.is_some() && self.leader != Some(from) {
            panic!(
                "election safety: {} follows {:?} in {} but {from} also leads it",
                self.id, self.leader, self.hard_state.term
            );
        }
        self.role = RoleState::Follower;
        self.set_leader(Some(from));
        self.last_leader_contact_ms = now_ms;
        self.reset_election_timer(now_ms);
    }

    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader_verified = LogIndex(0);
        }
        self.leader = leader;
        let now = (self.hard_state.term, leader);
        if self.announced != now {
            self.announced = now;
            self.effects.push(Effect::LeaderChanged {
                term: now.0,
                leader,
            });
        }
    }

    pub(crate) fn reset_election_timer(&mut self, now_ms: TimeMs) {
        self.election_timer = ElectionTimer {
            reset_at_ms: now_ms,
            timeout_ms: None,
        };
    }

    pub(crate) fn persist_hard_state(&mut self) {
        self.writes.push(PendingWrite::HardState(self.hard_state));
        self.effects.push(Effect::PersistHardState(self.hard_state));
    }

    /// Writes the log from `from` to its end.
    pub(crate) fn persist_entries_from(&mut self, from: LogIndex) {
        let entries = self.log.entries_from(from, usize::MAX);
        self.writes.push(PendingWrite::Entries {
            from,
            last: self.log.last_id(),
        });
        self.effects.push(Effect::PersistEntries {
            from_index: from,
            entries,
        });
    }

    pub(crate) fn apply_committed(&mut self) {
        let entries = self.log.take_to_apply();
        if !entries.is_empty() {
            self.effects.push(Effect::Apply(entries));
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: RaftMessage) {
        self.effects.push(Effect::Send { to, msg });
    }

    pub(crate) fn observe_time(&mut self, now_ms: TimeMs) {
        assert!(
            now_ms >= self.now_ms,
            "time went back from {} ms to {now_ms} ms",
            self.now_ms
        );
        self.now_ms = now_ms;
    }

    /// How many writes are waiting for the disk (for tests and metrics).
    pub fn pending_writes(&self) -> usize {
        self.writes.len()
    }
}

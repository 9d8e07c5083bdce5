//! Raft for the metadata quorum: the replicated log that KRaft's controller voters keep in
//! place of ZooKeeper. This module is only the consensus library; the controller state
//! machine that applies the log comes on top of it.
//!
//! A [`RaftNode`] is one voter (or observer) of one quorum. Like every state machine in
//! core it does no I/O: the caller feeds it inputs, each with the current time, and drains
//! the effects they produced.
//!
//! ```text
//!  inputs                                        effects (RaftNode::drain_effects)
//!  ──────                                        ───────
//!  tick(now_ms, rng) ───────────┐            ┌─▶ Send { to, msg }
//!  receive(now_ms, from, msg) ──┤            ├─▶ PersistHardState(term, voted_for)
//!  propose(now_ms, bytes) ──────┤            ├─▶ PersistEntries { from_index, entries }
//!  snapshot_taken(now_ms, snap) ┼─▶ RaftNode ┼─▶ PersistSnapshot(snapshot)
//!  hard_state_persisted(..) ────┤            ├─▶ Apply(committed entries)
//!  entries_persisted(..) ───────┤            ├─▶ ApplySnapshot(snapshot)
//!  snapshot_persisted(..) ──────┘            └─▶ LeaderChanged { term, leader }
//!
//!  every Persist* effect ──(shell writes and syncs, in emission order)──▶ *_persisted input
//! ```
//!
//! Durability is explicit (DESIGN.md, "The core contract"). The three `Persist*` effects
//! form one ordered stream of writes: the shell must make them durable in the order they
//! were emitted and report each completion, in that order, with the matching
//! `*_persisted` input. Nothing that depends on a write is released before its completion:
//! - a vote is granted (the reply sent) only once the hard state recording it is durable,
//!   and a candidate counts its own vote only then (Raft §5.2, "persist before responding");
//! - a follower reports an entry as matching the leader only once it is durable, and the
//!   leader counts its own entries toward the commit index only once they are durable;
//! - a follower acknowledges an installed snapshot only once it is durable;
//! - entries are applied only when both committed and durable locally.
//!
//! Elections use pre-vote (Raft thesis §9.6): a node whose election timer fires first asks
//! whether it could win, without bumping its term, and peers refuse while they have heard
//! from a live leader within the minimum election timeout. So a partitioned node that
//! rejoins cannot depose a healthy leader. A leader that has not heard from a majority
//! within the maximum election timeout steps down (check quorum, thesis §6.2).
//!
//! Words: Raft's `term` is KRaft's epoch, and the commit index is KRaft's high watermark.
//! The code keeps Raft's words because the safety arguments it cites are written in them.

mod election;
mod log;
mod membership;
mod message;
mod node;
mod persist;
mod progress;
mod replication;
mod snapshot;

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::Bytes;

use crate::types::NodeId;

pub use log::RaftLog;
pub use membership::Membership;
pub use message::{ConflictHint, RaftMessage};
pub use node::{DurableState, Persisted, ProposeError, RaftConfig, RaftNode, Role};

/// A Raft term (KRaft's epoch): at most one leader is elected in each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A position in the Raft log. The first entry has index 1; index 0 is "before the log".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogIndex(pub u64);

impl LogIndex {
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one. Index 0 has none: asking for it is a bug.
    pub fn prev(self) -> LogIndex {
        assert!(self.0 > 0, "index 0 has no predecessor");
        LogIndex(self.0 - 1)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The identity of one log entry. The field order makes the derived `Ord` Raft's
/// "at least as up-to-date" rule (§5.4.1): the later last term wins, then the longer log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    pub term: Term,
    pub index: LogIndex,
}

impl LogId {
    pub fn new(term: Term, index: LogIndex) -> LogId {
        LogId { term, index }
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.index, self.term)
    }
}

/// What one log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The empty entry a new leader appends to commit the entries of earlier terms (§5.4.2,
    /// §8): a leader can only count replicas for entries of its own term.
    LeaderNoop,
    /// A command for the state machine (a metadata record, for the controller).
    Command(Bytes),
}

/// One entry of the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub payload: Payload,
}

impl Entry {
    pub fn id(&self) -> LogId {
        LogId::new(self.term, self.index)
    }
}

/// What a node must remember across a crash besides its log: the latest term it has seen
/// and whom it voted for in that term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// The state machine's image at `last` (all entries up to and including it applied), as
/// bytes only the application reads. Replaces the log prefix it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    pub last: LogId,
    pub data: Bytes,
}

/// Something a [`RaftNode`] asks its caller to do. Drained with
/// [`RaftNode::drain_effects`] and carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `msg` to `to`. May be lost, delayed, duplicated or reordered.
    Send { to: NodeId, msg: RaftMessage },
    /// Durably record the hard state, then call [`RaftNode::hard_state_persisted`].
    PersistHardState(HardState),
    /// Durably replace the log suffix from `from_index` on with `entries` (possibly none:
    /// a pure truncation), then call [`RaftNode::entries_persisted`] with the id of the
    /// last entry the log then holds.
    PersistEntries {
        from_index: LogIndex,
        entries: Vec<Entry>,
    },
    /// Durably store `snapshot` and drop the log entries it covers; if the log's entry at
    /// the snapshot's index is absent or has another term, drop every entry after it too
    /// (the rest of the log belongs to another history). The write must be atomic. Then
    /// call [`RaftNode::snapshot_persisted`].
    PersistSnapshot(Snapshot),
    /// These entries are committed: apply them to the state machine, in order.
    Apply(Vec<Entry>),
    /// Replace the state machine with this snapshot (on restart, or when the leader sent
    /// one because the entries this node lacks were compacted away).
    ApplySnapshot(Snapshot),
    /// The leader this node knows of changed (`None`: no known leader in `term`).
    LeaderChanged { term: Term, leader: Option<NodeId> },
}

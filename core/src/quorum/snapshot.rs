//! Log compaction by snapshots (Raft §7). The application snapshots its state machine
//! at an applied index and hands it in with [`RaftNode::snapshot_taken`]; the log drops
//! the entries it covers. A follower that needs entries the leader compacted away gets
//! the snapshot instead (InstallSnapshot), replaces its state machine with it, and
//! acknowledges once the snapshot is durable.

use crate::quorum::message::RaftMessage;
use crate::quorum::node::{RaftNode, RoleState};
use crate::quorum::persist::PendingWrite;
use crate::quorum::{Effect, LogId, Snapshot};
use crate::types::{NodeId, TimeMs};

impl RaftNode {
    /// The application took `snapshot` of its state machine after applying everything
    /// up to `snapshot.last` (which it must have been handed in an `Apply`). A snapshot
    /// at or below the current one (one installed from the leader overtook it) is ignored.
    pub fn snapshot_taken(&mut self, now_ms: TimeMs, snapshot: Snapshot) {
        self.observe_time(now_ms);
        if snapshot.last.index <= self.log.snapshot().last.index {
            return;
        }
        let last = snapshot.last;
        self.log.compact(snapshot.clone());
        self.writes.push(PendingWrite::Snapshot {
            last,
            discards_log: false,
        });
        self.effects.push(Effect::PersistSnapshot(snapshot));
    }

    pub(crate) fn on_install_snapshot(&mut self, now_ms: TimeMs, from: NodeId, snapshot: Snapshot) {
        self.accept_leader(now_ms, from);
        let term = self.hard_state.term;
        let last = snapshot.last;
        if last.index <= self.log.commit_index() {
            // Already past it: say how far we durably are, and let the leader carry on.
            let last_index = self.log.commit_index().min(self.log.stable_index());
            return self.send(
                from,
                RaftMessage::InstallSnapshotResponse { term, last_index },
            );
        }
        let discards_log = self.log.install(snapshot.clone());
        self.writes
            .push(PendingWrite::Snapshot { last, discards_log });
        self.effects.push(Effect::PersistSnapshot(snapshot.clone()));
        self.effects.push(Effect::ApplySnapshot(snapshot));
        self.leader_verified = self.leader_verified.max(last.index);
        self.held_snapshot_ack = Some((from, last));
    }

    /// The snapshot write for `last` is durable: acknowledge it if the leader that sent
    /// it still leads.
    pub(crate) fn ack_held_snapshot(&mut self, last: LogId) {
        let Some((leader, held)) = self.held_snapshot_ack else {
            return;
        };
        if held != last {
            return;
        }
        self.held_snapshot_ack = None;
        if self.leader == Some(leader) && matches!(self.role, RoleState::Follower) {
            let term = self.hard_state.term;
            self.send(
                leader,
                RaftMessage::InstallSnapshotResponse {
                    term,
                    last_index: last.index,
                },
            );
        }
    }
}

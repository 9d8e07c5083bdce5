//! Log replication (Raft §5.3, §5.4.2) and the leader's duties: heartbeats, the commit
//! index, and stepping down without a quorum (check quorum, thesis §6.2).
//!
//! The leader commits index N once a majority of voters durably hold the log up to N and
//! the entry at N is of the leader's own term; earlier entries commit with it (§5.4.2,
//! Figure 8: counting replicas of an older term's entry is not enough). The leader's own
//! log counts only up to its durable end, a follower's only up to the `match_index` it
//! reported, which it reports only for durable entries.

use std::collections::BTreeMap;

use crate::quorum::message::{ConflictHint, RaftMessage};
use crate::quorum::node::{RaftNode, RoleState};
use crate::quorum::progress::{
    Progress, ProgressState, MAX_ENTRIES_PER_APPEND, MAX_INFLIGHT_ENTRIES,
};
use crate::quorum::{Entry, LogId, LogIndex, Payload};
use crate::types::{NodeId, TimeMs};

#[derive(Clone, Debug)]
pub(crate) struct LeaderState {
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) next_heartbeat_ms: TimeMs,
}

impl RaftNode {
    pub(crate) fn become_leader(&mut self, now_ms: TimeMs) {
        let last_index = self.log.last_index();
        let progress = self
            .membership
            .others(self.id)
            .map(|peer| (peer, Progress::new(last_index, now_ms)))
            .collect();
        self.role = RoleState::Leader(LeaderState {
            progress,
            next_heartbeat_ms: now_ms,
        });
        self.set_leader(Some(self.id));
        self.append_and_replicate(now_ms, Payload::LeaderNoop);
    }

    /// Appends an entry of the current term to the leader's log, writes it, and sends it
    /// to followers that are ready for more.
    pub(crate) fn append_and_replicate(&mut self, now_ms: TimeMs, payload: Payload) -> LogId {
        let id = self.log.append(self.hard_state.term, payload);
        self.persist_entries_from(id.index);
        for peer in self.peers() {
            self.send_append(now_ms, peer, false);
        }
        id
    }

    fn peers(&self) -> Vec<NodeId> {
        self.membership.others(self.id).collect()
    }

    /// `from` asks to follow the log as an observer. Every voter remembers it (so it
    /// replicates to it once it leads); a leader starts at once, probing where their
    /// logs agree. Observers and voters asking are ignored.
    pub(crate) fn on_observe(&mut self, now_ms: TimeMs, from: NodeId) {
        if from == self.id || !self.membership.is_voter(self.id) || self.membership.is_voter(from) {
            return;
        }
        self.membership.add_observer(from);
        let last_index = self.log.last_index();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        // A known observer asking again missed the leader's messages or restarted
        // (perhaps with a wiped disk): probe it afresh, assuming nothing of its log.
        leader
            .progress
            .insert(from, Progress::new(last_index, now_ms));
        self.send_append(now_ms, from, true);
    }

    pub(crate) fn leader_tick(&mut self, now_ms: TimeMs) {
        let RoleState::Leader(leader) = &self.role else {
            unreachable!("leader_tick on a non-leader")
        };
        // Check quorum: without a majority within the longest election timeout, a new
        // leader may already exist elsewhere; stop accepting proposals.
        let window_ms = self.cfg.election_timeout_max_ms;
        let heard = self
            .membership
            .other_voters(self.id)
            .filter(|v| now_ms < leader.progress[v].last_heard_ms + window_ms)
            .count();
        if heard + 1 < self.membership.majority() {
            let term = self.hard_state.term;
            return self.become_follower(now_ms, term, None);
        }
        if now_ms < leader.next_heartbeat_ms {
            return;
        }
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!()
        };
        leader.next_heartbeat_ms = now_ms + self.cfg.heartbeat_interval_ms;
        let commit = self.log.commit_index();
        let mut heartbeats = Vec::new();
        for (&peer, pr) in leader.progress.iter_mut() {
            match pr.state {
                ProgressState::Probe { .. } => pr.state = ProgressState::Probe { paused: false },
                ProgressState::Snapshot { sent_at_ms, .. }
                    if now_ms >= sent_at_ms + self.cfg.election_timeout_max_ms =>
                {
                    // The snapshot or its answer may be lost: start over.
                    pr.next_index = pr.match_index.next();
                    pr.state = ProgressState::Probe { paused: false };
                }
                ProgressState::Snapshot { .. } | ProgressState::Replicate => {}
            }
            // Never commit beyond what the follower is known to durably hold.
            heartbeats.push((peer, commit.min(pr.match_index)));
        }
        let term = self.hard_state.term;
        for (peer, commit) in heartbeats {
            self.send(peer, RaftMessage::Heartbeat { term, commit });
            self.send_append(now_ms, peer, true);
        }
    }

    /// Sends `peer` what it needs next, if its progress allows: entries after
    /// `next_index`, or the snapshot when they were compacted. `probe`: send even with
    /// no entries, to learn whether the follower holds `next_index - 1`.
    pub(crate) fn send_append(&mut self, now_ms: TimeMs, peer: NodeId, probe: bool) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let pr = leader
            .progress
            .get_mut(&peer)
            .expect("progress for every peer");
        let room = match pr.state {
            ProgressState::Snapshot { .. } | ProgressState::Probe { paused: true } => return,
            ProgressState::Probe { paused: false } => MAX_ENTRIES_PER_APPEND as u64,
            ProgressState::Replicate => MAX_INFLIGHT_ENTRIES.saturating_sub(pr.inflight()),
        };
        assert!(pr.next_index <= self.log.last_index().next());
        let prev_index = pr.next_index.prev();
        let Some(prev_term) = self.log.term_at(prev_index) else {
            let snapshot = self.log.snapshot().clone();
            pr.state = ProgressState::Snapshot {
                index: snapshot.last.index,
                sent_at_ms: now_ms,
            };
            let term = self.hard_state.term;
            return self.send(peer, RaftMessage::InstallSnapshot { term, snapshot });
        };
        let count = room.min(MAX_ENTRIES_PER_APPEND as u64) as usize;
        let entries: Vec<Entry> = self.log.entries_from(pr.next_index, count);
        if entries.is_empty() && !probe {
            return;
        }
        match pr.state {
            ProgressState::Replicate => {
                pr.next_index = LogIndex(pr.next_index.0 + entries.len() as u64)
            }
            _ => pr.state = ProgressState::Probe { paused: true },
        }
        let msg = RaftMessage::AppendEntries {
            term: self.hard_state.term,
            prev_log: LogId::new(prev_term, prev_index),
            entries,
            leader_commit: self.log.commit_index(),
        };
        self.send(peer, msg);
    }

    fn progress_mut(&mut self, peer: NodeId, now_ms: TimeMs) -> Option<&mut Progress> {
        let RoleState::Leader(leader) = &mut self.role else {
            return None;
        };
        let pr = leader.progress.get_mut(&peer)?;
        pr.last_heard_ms = now_ms;
        Some(pr)
    }

    pub(crate) fn on_append_success(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        appended_index: LogIndex,
        match_index: LogIndex,
    ) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress_mut(from, now_ms) else {
            return;
        };
        assert!(
            appended_index <= last_index,
            "{from} claims to hold our entries up to {appended_index}, past our end {last_index}"
        );
        pr.on_success(appended_index, match_index);
        self.maybe_commit(now_ms);
        self.send_append(now_ms, from, false);
    }

    pub(crate) fn on_append_conflict(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        rejected_prev: LogIndex,
        hint: ConflictHint,
    ) {
        // Skip the follower's whole conflicting term: if we have entries of that term,
        // resume after our last one; if not, at the first index it holds of it.
        let hinted_next = match hint.term {
            None => hint.index,
            Some(term) => self
                .log
                .last_index_of_term(term)
                .map_or(hint.index, LogIndex::next),
        };
        let Some(pr) = self.progress_mut(from, now_ms) else {
            return;
        };
        if pr.on_conflict(rejected_prev, hinted_next) {
            self.send_append(now_ms, from, true);
        }
    }

    pub(crate) fn on_heartbeat_response(&mut self, now_ms: TimeMs, from: NodeId) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress_mut(from, now_ms) else {
            return;
        };
        if pr.match_index < last_index && pr.state == ProgressState::Replicate {
            // Behind although entries were sent: some may be lost. An append at
            // `next_index` either extends the follower or is refused and starts a probe.
            self.send_append(now_ms, from, true);
        }
    }

    pub(crate) fn on_install_snapshot_response(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        last_index: LogIndex,
    ) {
        let our_last = self.log.last_index();
        let Some(pr) = self.progress_mut(from, now_ms) else {
            return;
        };
        assert!(last_index <= our_last);
        pr.on_snapshot_installed(last_index);
        self.maybe_commit(now_ms);
        self.send_append(now_ms, from, true);
    }

    /// Advances the commit index to the highest index of the current term that a
    /// majority of voters durably hold.
    pub(crate) fn maybe_commit(&mut self, _now_ms: TimeMs) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let mut durable: Vec<LogIndex> = self
            .membership
            .voters()
            .iter()
            .map(|v| {
                if *v == self.id {
                    self.log.stable_index()
                } else {
                    leader.progress[v].match_index
                }
            })
            .collect();
        durable.sort_unstable_by(|a, b| b.cmp(a));
        let majority_holds = durable[self.membership.majority() - 1];
        if majority_holds > self.log.commit_index()
            && self.log.term_at(majority_holds) == Some(self.hard_state.term)
        {
            self.log.commit_to(majority_holds);
        }
        self.apply_committed();
    }

    pub(crate) fn on_append_entries(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        prev_log: LogId,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        self.accept_leader(now_ms, from);
        self.leader_commit_seen = self.leader_commit_seen.max(Some(leader_commit));
        let term = self.hard_state.term;
        match self.log.append_from_leader(prev_log, entries) {
            Err(hint) => self.send(
                from,
                RaftMessage::AppendEntriesConflict {
                    term,
                    rejected_prev: prev_log.index,
                    hint,
                },
            ),
            Ok(outcome) => {
                if let Some(first_changed) = outcome.persist_from {
                    assert!(
                        first_changed > self.leader_verified,
                        "the leader rewrote {first_changed}, which already matched it"
                    );
                    self.persist_entries_from(first_changed);
                }
                self.leader_verified = self.leader_verified.max(outcome.last_verified);
                self.log.commit_to(leader_commit.min(self.leader_verified));
                self.send(
                    from,
                    RaftMessage::AppendEntriesSuccess {
                        term,
                        appended_index: self.leader_verified,
                        match_index: self.leader_verified.min(self.log.stable_index()),
                    },
                );
                self.apply_committed();
            }
        }
    }

    pub(crate) fn on_heartbeat(&mut self, now_ms: TimeMs, from: NodeId, commit: LogIndex) {
        self.accept_leader(now_ms, from);
        self.log.commit_to(commit.min(self.log.last_index()));
        let term = self.hard_state.term;
        self.send(from, RaftMessage::HeartbeatResponse { term });
        self.apply_committed();
    }
}

//! Leader election (Raft §5.2, §5.4.1) with pre-vote and leader stickiness (thesis §9.6,
//! §4.2.3).
//!
//! A voter whose randomised election timer fires becomes a pre-candidate: it asks the
//! other voters whether they would vote for it in `term + 1`, without moving to that
//! term. A voter grants a pre-vote only if the asker's log is at least as up-to-date as
//! its own and it has not heard from a live leader within the minimum election timeout.
//! Only with a majority of pre-votes does the node bump its term, vote for itself and ask
//! for real votes. A node cut off from the majority therefore never raises its term, and
//! rejoining it cannot depose a healthy leader.
//!
//! Votes are durable before they count: a voter's grant is held until the hard state
//! recording it is on disk, and a candidate counts its own vote only then. Otherwise a
//! voter could crash, forget its vote, and vote again in the same term for someone else.

use rand_core::RngCore;

use crate::quorum::message::RaftMessage;
use crate::quorum::node::{RaftNode, RoleState};
use crate::quorum::{HardState, LogId, RaftConfig, Term};
use crate::types::{NodeId, TimeMs};

/// A timeout drawn uniformly from `[min, max]` (modulo bias is negligible for ranges of
/// milliseconds against 64 random bits).
fn draw_election_timeout_ms(cfg: &RaftConfig, rng: &mut impl RngCore) -> u64 {
    let span = cfg.election_timeout_max_ms - cfg.election_timeout_min_ms + 1;
    cfg.election_timeout_min_ms + rng.next_u64() % span
}

impl RaftNode {
    pub(crate) fn election_tick(&mut self, now_ms: TimeMs, rng: &mut impl RngCore) {
        if !self.membership.is_voter(self.id) {
            return self.observer_tick(now_ms); // Observers follow; they never campaign.
        }
        let cfg = self.cfg;
        let timeout_ms = *self
            .election_timer
            .timeout_ms
            .get_or_insert_with(|| draw_election_timeout_ms(&cfg, rng));
        if now_ms >= self.election_timer.reset_at_ms + timeout_ms {
            self.start_pre_vote(now_ms);
        }
    }

    /// An announcing observer without a live leader asks every voter to replicate to it.
    fn observer_tick(&mut self, now_ms: TimeMs) {
        if !self.announce || self.leader_is_live(now_ms) || now_ms < self.next_announce_ms {
            return;
        }
        self.next_announce_ms = now_ms + self.cfg.election_timeout_min_ms;
        let msg = RaftMessage::Observe {
            term: self.hard_state.term,
        };
        let voters: Vec<NodeId> = self.membership.voters().iter().copied().collect();
        for voter in voters {
            self.send(voter, msg.clone());
        }
    }

    /// True while this node believes a live leader exists: it leads, or it heard from the
    /// leader within the minimum election timeout. Such a node refuses to help depose it.
    fn leader_is_live(&self, now_ms: TimeMs) -> bool {
        match self.role {
            RoleState::Leader(_) => true,
            RoleState::Follower => {
                self.leader.is_some()
                    && now_ms < self.last_leader_contact_ms + self.cfg.election_timeout_min_ms
            }
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => false,
        }
    }

    fn start_pre_vote(&mut self, now_ms: TimeMs) {
        self.role = RoleState::PreCandidate {
            granted: Default::default(),
        };
        self.set_leader(None);
        self.reset_election_timer(now_ms);
        let msg = RaftMessage::RequestVote {
            term: Term(self.hard_state.term.0 + 1),
            pre_vote: true,
            last_log: self.log.last_id(),
        };
        let voters: Vec<NodeId> = self.membership.other_voters(self.id).collect();
        for voter in voters {
            self.send(voter, msg.clone());
        }
        self.check_pre_vote_won(now_ms);
    }

    fn check_pre_vote_won(&mut self, now_ms: TimeMs) {
        let RoleState::PreCandidate { granted } = &self.role else {
            return;
        };
        if granted.len() + 1 >= self.membership.majority() {
            self.start_election(now_ms);
        }
    }

    fn start_election(&mut self, now_ms: TimeMs) {
        let term = Term(self.hard_state.term.0 + 1);
        self.hard_state = HardState {
            term,
            voted_for: Some(self.id),
        };
        self.persist_hard_state();
        self.held_vote = None;
        self.held_snapshot_ack = None;
        self.role = RoleState::Candidate {
            granted: Default::default(),
        };
        self.set_leader(None);
        self.reset_election_timer(now_ms);
        let msg = RaftMessage::RequestVote {
            term,
            pre_vote: false,
            last_log: self.log.last_id(),
        };
        let voters: Vec<NodeId> = self.membership.other_voters(self.id).collect();
        for voter in voters {
            self.send(voter, msg.clone());
        }
        self.check_election_won(now_ms);
    }

    /// Counts the votes: the others' grants, and its own once durable.
    pub(crate) fn check_election_won(&mut self, now_ms: TimeMs) {
        let RoleState::Candidate { granted } = &self.role else {
            return;
        };
        let own_vote_durable = self.durable_hard_state == self.hard_state;
        debug_assert_eq!(self.hard_state.voted_for, Some(self.id));
        if granted.len() + usize::from(own_vote_durable) >= self.membership.majority() {
            self.become_leader(now_ms);
        }
    }

    pub(crate) fn on_request_vote(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_log: LogId,
    ) {
        if !self.membership.is_voter(from) {
            return;
        }
        let ours = self.hard_state.term;
        let up_to_date = last_log >= self.log.last_id();
        if pre_vote {
            let granted = term > ours && up_to_date && !self.leader_is_live(now_ms);
            self.send(
                from,
                RaftMessage::RequestVoteResponse {
                    term: if granted { term } else { ours },
                    pre_vote: true,
                    granted,
                },
            );
            return;
        }
        if term < ours || (term > ours && self.leader_is_live(now_ms)) {
            // Stale, or disrupting a leader we still hear from: refuse without moving.
            return self.send_vote(from, false);
        }
        if term > ours {
            self.become_follower(now_ms, term, None);
        }
        let can_vote = match self.hard_state.voted_for {
            Some(candidate) => candidate == from,
            None => self.leader.is_none(),
        };
        if !(can_vote && up_to_date) {
            return self.send_vote(from, false);
        }
        if self.hard_state.voted_for.is_none() {
            self.hard_state.voted_for = Some(from);
            self.persist_hard_state();
            self.role = RoleState::Follower;
            self.reset_election_timer(now_ms);
        }
        if self.durable_hard_state == self.hard_state {
            self.send_vote(from, true);
        } else {
            self.held_vote = Some(from);
        }
    }

    pub(crate) fn send_vote(&mut self, to: NodeId, granted: bool) {
        self.send(
            to,
            RaftMessage::RequestVoteResponse {
                term: self.hard_state.term,
                pre_vote: false,
                granted,
            },
        );
    }

    pub(crate) fn on_pre_vote_granted(&mut self, now_ms: TimeMs, from: NodeId, term: Term) {
        if term != Term(self.hard_state.term.0 + 1) || !self.membership.is_voter(from) {
            return; // An answer to an earlier pre-vote.
        }
        if let RoleState::PreCandidate { granted } = &mut self.role {
            granted.insert(from);
            self.check_pre_vote_won(now_ms);
        }
    }

    pub(crate) fn on_vote_granted(&mut self, now_ms: TimeMs, from: NodeId) {
        if !self.membership.is_voter(from) {
            return;
        }
        if let RoleState::Candidate { granted } = &mut self.role {
            granted.insert(from);
            self.check_election_won(now_ms);
        }
    }
}

//! Unit tests of single steps: each feeds one node a few inputs and asserts the exact
//! effects, for the rules a random cluster run reaches only rarely (durable votes,
//! Figure 8's commit rule, pre-vote refusals, conflict handling).

use bytes::Bytes;
use rand_core::RngCore;

use super::*;
use crate::types::NodeId;

/// Always draws 0: every election timeout is the minimum.
struct ZeroRng;

impl RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

fn cfg() -> RaftConfig {
    RaftConfig {
        election_timeout_min_ms: 100,
        election_timeout_max_ms: 200,
        heartbeat_interval_ms: 20,
    }
}

fn node(durable: DurableState) -> RaftNode {
    RaftNode::new(N1, Membership::new([N1, N2, N3], []), cfg(), 0, durable)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(Bytes::from(vec![index as u8])),
    }
}

fn sends(effects: &[Effect]) -> Vec<(NodeId, RaftMessage)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn hard_state_writes(effects: &[Effect]) -> Vec<HardState> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistHardState(hs) => Some(*hs),
            _ => None,
        })
        .collect()
}

/// Completes every pending write in order, as a disk that never fails would.
fn persist_all(n: &mut RaftNode, now_ms: u64, effects: &[Effect]) {
    for e in effects {
        match e {
            Effect::PersistHardState(hs) => n.hard_state_persisted(now_ms, *hs),
            Effect::PersistEntries { .. } => n.entries_persisted(now_ms, n.log().last_id()),
            Effect::PersistSnapshot(s) => n.snapshot_persisted(now_ms, s.last),
            _ => {}
        }
    }
}

/// Drives `n` (restarted from `durable`) to leadership of the next term with n2's vote.
fn elect(n: &mut RaftNode) -> Term {
    n.tick(0, &mut ZeroRng);
    n.tick(100, &mut ZeroRng);
    assert_eq!(n.role(), Role::PreCandidate);
    let term = Term(n.term().0 + 1);
    n.receive(
        100,
        N2,
        RaftMessage::RequestVoteResponse {
            term,
            pre_vote: true,
            granted: true,
        },
    );
    assert_eq!(n.role(), Role::Candidate);
    let effects = n.drain_effects();
    persist_all(n, 100, &effects);
    n.receive(
        100,
        N2,
        RaftMessage::RequestVoteResponse {
            term,
            pre_vote: false,
            granted: true,
        },
    );
    assert_eq!(n.role(), Role::Leader);
    term
}

#[test]
fn vote_is_sent_only_once_durable() {
    let mut n = node(DurableState::default());
    let request = RaftMessage::RequestVote {
        term: Term(1),
        pre_vote: false,
        last_log: LogId::default(),
    };
    n.receive(5, N2, request);
    let effects = n.drain_effects();
    let vote = HardState {
        term: Term(1),
        voted_for: Some(N2),
    };
    assert_eq!(hard_state_writes(&effects).last(), Some(&vote));
    assert!(
        sends(&effects).is_empty(),
        "vote sent before it was durable"
    );
    persist_all(&mut n, 6, &effects);
    let granted = RaftMessage::RequestVoteResponse {
        term: Term(1),
        pre_vote: false,
        granted: true,
    };
    assert_eq!(sends(&n.drain_effects()), vec![(N2, granted)]);
}

#[test]
fn candidate_counts_its_own_vote_only_once_durable() {
    let mut n = node(DurableState::default());
    n.tick(0, &mut ZeroRng);
    n.tick(100, &mut ZeroRng);
    let pre_vote = RaftMessage::RequestVote {
        term: Term(1),
        pre_vote: true,
        last_log: LogId::default(),
    };
    assert_eq!(
        sends(&n.drain_effects()),
        vec![(N2, pre_vote.clone()), (N3, pre_vote)]
    );
    assert_eq!(n.term(), Term(0), "a pre-vote does not move the term");
    n.receive(
        101,
        N2,
        RaftMessage::RequestVoteResponse {
            term: Term(1),
            pre_vote: true,
            granted: true,
        },
    );
    assert_eq!((n.role(), n.term()), (Role::Candidate, Term(1)));
    let effects = n.drain_effects();
    n.receive(
        102,
        N3,
        RaftMessage::RequestVoteResponse {
            term: Term(1),
            pre_vote: false,
            granted: true,
        },
    );
    assert_eq!(n.role(), Role::Candidate, "won with a vote not yet durable");
    persist_all(&mut n, 103, &effects);
    assert_eq!(n.role(), Role::Leader);
}

#[test]
fn leader_does_not_commit_an_older_terms_entry_by_counting_replicas() {
    // Raft Figure 8: entry 2 of term 2 sits on a majority, but a leader of term 3 may
    // count replicas only for an entry of its own term.
    let mut n = node(DurableState {
        hard_state: HardState {
            term: Term(2),
            voted_for: None,
        },
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 2)],
    });
    let term = elect(&mut n);
    assert_eq!(
        n.log().last_id(),
        LogId::new(term, LogIndex(3)),
        "no-op appended"
    );
    for peer in [N2, N3] {
        n.receive(
            110,
            peer,
            RaftMessage::AppendEntriesSuccess {
                term,
                appended_index: LogIndex(2),
                match_index: LogIndex(2),
            },
        );
    }
    assert_eq!(n.log().commit_index(), LogIndex(0));
    n.receive(
        111,
        N2,
        RaftMessage::AppendEntriesSuccess {
            term,
            appended_index: LogIndex(3),
            match_index: LogIndex(3),
        },
    );
    assert_eq!(
        n.log().commit_index(),
        LogIndex(0),
        "the leader's own no-op is not durable yet"
    );
    n.entries_persisted(112, LogId::new(term, LogIndex(3)));
    assert_eq!(n.log().commit_index(), LogIndex(3));
}

#[test]
fn pre_vote_refused_while_leader_is_live_and_term_kept() {
    let mut n = node(DurableState::default());
    n.receive(
        0,
        N2,
        RaftMessage::Heartbeat {
            term: Term(1),
            commit: LogIndex(0),
        },
    );
    n.drain_effects();
    let pre_vote = RaftMessage::RequestVote {
        term: Term(2),
        pre_vote: true,
        last_log: LogId::default(),
    };
    n.receive(50, N3, pre_vote.clone());
    let refused = RaftMessage::RequestVoteResponse {
        term: Term(1),
        pre_vote: true,
        granted: false,
    };
    assert_eq!(sends(&n.drain_effects()), vec![(N3, refused)]);
    // A real vote for a higher term is refused too, without adopting the term.
    n.receive(
        60,
        N3,
        RaftMessage::RequestVote {
            term: Term(2),
            pre_vote: false,
            last_log: LogId::default(),
        },
    );
    assert_eq!((n.term(), n.leader()), (Term(1), Some(N2)));
    n.drain_effects();
    // Once the leader has been silent for the minimum election timeout, it is granted.
    n.receive(100, N3, pre_vote);
    let granted = RaftMessage::RequestVoteResponse {
        term: Term(2),
        pre_vote: true,
        granted: true,
    };
    assert_eq!(sends(&n.drain_effects()), vec![(N3, granted)]);
    assert_eq!(n.term(), Term(1));
}

#[test]
fn follower_replaces_conflicting_suffix_and_hints_at_the_term() {
    let mut n = node(DurableState {
        hard_state: HardState {
            term: Term(2),
            voted_for: None,
        },
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 2), entry(2, 3)],
    });
    // The leader of term 3 has term 3 at index 3: refused, with a hint at term 2's start.
    n.receive(
        0,
        N2,
        RaftMessage::AppendEntries {
            term: Term(3),
            prev_log: LogId::new(Term(3), LogIndex(3)),
            entries: vec![],
            leader_commit: LogIndex(1),
        },
    );
    let conflict = RaftMessage::AppendEntriesConflict {
        term: Term(3),
        rejected_prev: LogIndex(3),
        hint: ConflictHint {
            term: Some(Term(2)),
            index: LogIndex(2),
        },
    };
    let effects = n.drain_effects();
    assert!(sends(&effects).contains(&(N2, conflict)));
    persist_all(&mut n, 0, &effects);
    n.receive(
        1,
        N2,
        RaftMessage::AppendEntries {
            term: Term(3),
            prev_log: LogId::new(Term(1), LogIndex(1)),
            entries: vec![entry(3, 2)],
            leader_commit: LogIndex(1),
        },
    );
    let effects = n.drain_effects();
    assert!(effects.contains(&Effect::PersistEntries {
        from_index: LogIndex(2),
        entries: vec![entry(3, 2)],
    }));
    assert_eq!(n.log().last_id(), LogId::new(Term(3), LogIndex(2)));
    let success = RaftMessage::AppendEntriesSuccess {
        term: Term(3),
        appended_index: LogIndex(2),
        match_index: LogIndex(1),
    };
    assert!(sends(&effects).contains(&(N2, success)), "{effects:?}");
    persist_all(&mut n, 2, &effects);
    let durable = RaftMessage::AppendEntriesSuccess {
        term: Term(3),
        appended_index: LogIndex(2),
        match_index: LogIndex(2),
    };
    assert!(sends(&n.drain_effects()).contains(&(N2, durable)));
}

#[test]
fn leader_without_a_quorum_steps_down() {
    let mut n = node(DurableState::default());
    let term = elect(&mut n);
    n.tick(150, &mut ZeroRng);
    assert_eq!(n.role(), Role::Leader);
    n.tick(100 + cfg().election_timeout_max_ms, &mut ZeroRng);
    assert_eq!(
        (n.role(), n.term(), n.leader()),
        (Role::Follower, term, None)
    );
    assert!(matches!(
        n.propose(400, Bytes::new()),
        Err(ProposeError::NotLeader { leader_hint: None })
    ));
}

const N9: NodeId = NodeId(9);

#[test]
fn an_announcing_observer_asks_every_voter_while_it_knows_no_leader() {
    let mut o = RaftNode::new(
        N9,
        Membership::new([N1, N2, N3], [N9]),
        cfg(),
        0,
        DurableState::default(),
    );
    o.tick(0, &mut ZeroRng);
    assert!(
        sends(&o.drain_effects()).is_empty(),
        "silent unless asked to announce"
    );
    o.announce_as_observer(true);
    o.tick(0, &mut ZeroRng);
    let observe = RaftMessage::Observe { term: Term(0) };
    assert_eq!(
        sends(&o.drain_effects()),
        vec![
            (N1, observe.clone()),
            (N2, observe.clone()),
            (N3, observe.clone())
        ]
    );
    // Not again within the minimum election timeout.
    o.tick(99, &mut ZeroRng);
    assert!(sends(&o.drain_effects()).is_empty());
    // A leader's append makes it quiet while the leader stays live.
    o.receive(
        120,
        N2,
        RaftMessage::AppendEntries {
            term: Term(1),
            prev_log: LogId::default(),
            entries: vec![],
            leader_commit: LogIndex(0),
        },
    );
    o.drain_effects();
    o.tick(150, &mut ZeroRng);
    assert!(sends(&o.drain_effects()).is_empty());
    assert_eq!(o.role(), Role::Follower, "an observer never campaigns");
    // The leader went silent for an election timeout: it asks again.
    o.tick(220, &mut ZeroRng);
    assert_eq!(sends(&o.drain_effects()).len(), 3);
    assert_eq!(o.term(), Term(1));
}

#[test]
fn a_leader_replicates_to_an_observer_that_announced_itself() {
    let mut n = node(DurableState::default());
    let term = elect(&mut n);
    let effects = n.drain_effects();
    persist_all(&mut n, 100, &effects);
    assert!(
        sends(&effects).iter().all(|(to, _)| *to != N9),
        "an unknown observer gets nothing"
    );
    // Messages from it are ignored until it announces itself.
    n.receive(100, N9, RaftMessage::HeartbeatResponse { term });
    assert!(n.drain_effects().is_empty());
    n.receive(110, N9, RaftMessage::Observe { term: Term(0) });
    let sent = sends(&n.drain_effects());
    assert!(
        matches!(
            sent.as_slice(),
            [(N9, RaftMessage::AppendEntries { term: t, prev_log, .. })]
                if *t == term && prev_log.index == n.log().last_index()
        ),
        "probes at its log's end: {sent:?}"
    );
    // The observer holds nothing: its conflict walks the leader back to the start.
    n.receive(
        111,
        N9,
        RaftMessage::AppendEntriesConflict {
            term,
            rejected_prev: n.log().last_index(),
            hint: ConflictHint {
                term: None,
                index: LogIndex(1),
            },
        },
    );
    let sent = sends(&n.drain_effects());
    assert!(
        matches!(
            sent.as_slice(),
            [(N9, RaftMessage::AppendEntries { prev_log, entries, .. })]
                if prev_log.index == LogIndex(0) && !entries.is_empty()
        ),
        "sends the log from its start: {sent:?}"
    );
    // It counts for nothing in the quorum: without n2 and n3 the leader steps down.
    n.receive(150, N9, RaftMessage::HeartbeatResponse { term });
    n.tick(301, &mut ZeroRng);
    assert_eq!(n.role(), Role::Follower);
}

#[test]
fn a_follower_remembers_an_announced_observer_for_when_it_leads() {
    let mut n = node(DurableState::default());
    n.receive(0, N9, RaftMessage::Observe { term: Term(7) });
    assert!(n.drain_effects().is_empty(), "a follower sends nothing");
    assert_eq!(n.term(), Term(0), "an observer's term moves no voter");
    assert!(n.membership().contains(N9));
    // A voter announcing itself as an observer is ignored.
    n.receive(0, N2, RaftMessage::Observe { term: Term(0) });
    assert!(n.drain_effects().is_empty());
    assert!(n.membership().is_voter(N2));
    let _ = elect(&mut n);
    let sent = sends(&n.drain_effects());
    assert!(
        sent.iter().any(|(to, _)| *to == N9),
        "replicates to it: {sent:?}"
    );
}

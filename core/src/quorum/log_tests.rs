//! Property tests of the Raft log alone: any sequence of leader appends, appends from a
//! leader (matching, lagging or conflicting), write completions, commits, applies,
//! compactions and snapshot installs keeps the log's invariants
//! (`RaftLog::check_invariants`), never changes a committed entry, and applies every
//! committed entry exactly once, in order.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::log::RaftLog;
use super::*;

#[derive(Clone, Debug)]
enum Op {
    LeaderAppend {
        term_bump: u64,
    },
    /// An AppendEntries whose `prev` is `back` entries before our end, claiming term
    /// `prev_term_bump` above ours there, carrying `count` entries of a term `term_bump`
    /// above that.
    FromLeader {
        back: u64,
        prev_term_bump: u64,
        count: u64,
        term_bump: u64,
    },
    Persisted,
    Commit {
        back: u64,
    },
    Apply,
    Compact,
    Install {
        ahead: u64,
        term_bump: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..2).prop_map(|term_bump| Op::LeaderAppend { term_bump }),
        6 => (0u64..5, 0u64..2, 0u64..5, 0u64..2).prop_map(|(back, prev_term_bump, count, term_bump)| {
            Op::FromLeader { back, prev_term_bump, count, term_bump }
        }),
        3 => Just(Op::Persisted),
        3 => (0u64..4).prop_map(|back| Op::Commit { back }),
        3 => Just(Op::Apply),
        1 => Just(Op::Compact),
        1 => (1u64..4, 0u64..2).prop_map(|(ahead, term_bump)| Op::Install { ahead, term_bump }),
    ]
}

fn payload(index: LogIndex, term: Term) -> Payload {
    Payload::Command(Bytes::from(format!("{index}@{term}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn raft_log_keeps_its_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let mut log = RaftLog::default();
        let mut committed: BTreeMap<LogIndex, Entry> = BTreeMap::new();
        let mut applied_upto = LogIndex(0);
        for op in ops {
            let last = log.last_id();
            match op {
                Op::LeaderAppend { term_bump } => {
                    let term = Term(last.term.0 + term_bump);
                    log.append(term, payload(last.index.next(), term));
                }
                Op::FromLeader { back, prev_term_bump, count, term_bump } => {
                    let prev_index = LogIndex(last.index.0.saturating_sub(back));
                    let Some(ours) = log.term_at(prev_index) else { continue };
                    let prev = LogId::new(Term(ours.0 + prev_term_bump), prev_index);
                    let term = Term(prev.term.0.max(last.term.0) + term_bump);
                    let entries: Vec<Entry> = (1..=count)
                        .map(|i| {
                            let index = LogIndex(prev_index.0 + i);
                            // Entries the log already holds up to its end are resent as
                            // they are unless this op conflicts on purpose.
                            match log.entry(index) {
                                Some(e) if term_bump == 0 => e.clone(),
                                _ => Entry { term, index, payload: payload(index, term) },
                            }
                        })
                        .collect();
                    // A correct leader never conflicts with a committed entry.
                    let conflicts_committed = entries.iter().any(|e| {
                        e.index <= log.commit_index()
                            && log.term_at(e.index).is_some_and(|t| t != e.term)
                    });
                    let prev_committed_mismatch =
                        prev_term_bump > 0 && prev_index <= log.commit_index();
                    let terms_ok = entries.windows(2).all(|w| w[0].term <= w[1].term)
                        && entries.first().is_none_or(|e| e.term >= prev.term);
                    if conflicts_committed || prev_committed_mismatch || !terms_ok {
                        continue;
                    }
                    let before_stable = log.stable_index();
                    match log.append_from_leader(prev, entries.clone()) {
                        Ok(outcome) => {
                            prop_assert_eq!(outcome.last_verified, LogIndex(prev_index.0 + count).max(log.snapshot().last.index));
                            for e in &entries {
                                if e.index > log.snapshot().last.index {
                                    prop_assert_eq!(log.entry(e.index), Some(e));
                                }
                            }
                            if let Some(from) = outcome.persist_from {
                                prop_assert!(log.stable_index() <= before_stable.max(from.prev()));
                            }
                        }
                        Err(hint) => {
                            prop_assert!(prev_term_bump > 0 || prev_index > log.last_index());
                            prop_assert!(hint.index <= log.last_index().next());
                        }
                    }
                }
                Op::Persisted => log.entries_persisted(last, LogIndex(u64::MAX)),
                Op::Commit { back } => {
                    let to = LogIndex(last.index.0.saturating_sub(back));
                    log.commit_to(to.max(log.commit_index()));
                }
                Op::Apply => {
                    for e in log.take_to_apply() {
                        prop_assert_eq!(e.index, applied_upto.next(), "applied out of order");
                        applied_upto = e.index;
                    }
                }
                Op::Compact => {
                    let at = log.applied_index();
                    if at > log.snapshot().last.index {
                        let term = log.term_at(at).unwrap();
                        log.compact(Snapshot { last: LogId::new(term, at), data: Bytes::new() });
                    }
                }
                Op::Install { ahead, term_bump } => {
                    let index = LogIndex(log.commit_index().0 + ahead);
                    let term = Term(log.term_at(log.commit_index()).unwrap().0 + term_bump);
                    let term = log.term_at(index).filter(|_| term_bump == 0).unwrap_or(term);
                    log.install(Snapshot { last: LogId::new(term, index), data: Bytes::new() });
                    applied_upto = index;
                    committed.retain(|&i, _| i <= index);
                }
            }
            log.check_invariants();
            prop_assert!(log.applied_index() >= applied_upto.min(log.applied_index()));
            // Committed entries never change while the log still holds them.
            for index in log.first_index().0..=log.commit_index().0 {
                let entry = log.entry(LogIndex(index)).unwrap().clone();
                let first = committed.entry(LogIndex(index)).or_insert_with(|| entry.clone());
                prop_assert_eq!(&*first, &entry, "committed entry {} changed", index);
            }
        }
    }
}

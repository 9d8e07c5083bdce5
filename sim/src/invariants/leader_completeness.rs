//! Leader completeness (Raft paper §5.4, Figure 3: Leader Completeness): an entry
//! committed in some term is in the log of every leader of a later term. An entry any
//! voter applied was committed; when a voter becomes leader the world records its log
//! (entries after its snapshot, which covers only committed entries), and every entry
//! applied so far must be there with the same term — if it was committed in a term below
//! the new leader's. The checker cannot see the term an entry was committed in, only
//! that it is at most the highest leader term observed when the entry was first applied;
//! it judges the entries for which that bound is below the new leader's term. (A leader
//! of an older term can still be elected late — its votes were held while it was paused
//! — without entries a later term committed; Raft allows that, and it steps down at once.)

use std::collections::BTreeMap;

use eddy_core::TimeMs;

use super::{Checker, Model, Violation};
use crate::history::Observation;

#[derive(Default)]
pub struct LeaderCompleteness {
    /// Committed (applied somewhere) entries: index -> (term, the highest leader term
    /// observed when it was first applied: it was committed in that term or earlier).
    committed: BTreeMap<u64, (u64, u64)>,
    max_leader_term: u64,
}

impl LeaderCompleteness {
    pub fn new() -> LeaderCompleteness {
        LeaderCompleteness::default()
    }
}

impl Checker for LeaderCompleteness {
    fn name(&self) -> &'static str {
        "raft-leader-completeness"
    }

    fn rule(&self) -> &'static str {
        "a committed metadata-log entry is in the log of every later leader (Raft paper §5.4, Figure 3: Leader Completeness)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::RaftApplied { index, term, .. } => {
                self.committed
                    .entry(*index)
                    .or_insert((*term, self.max_leader_term));
            }
            Observation::RaftLeader {
                at,
                node,
                term,
                snapshot_index,
                log,
            } => {
                let has: BTreeMap<u64, u64> = log.iter().copied().collect();
                let missing: Vec<String> = self
                    .committed
                    .range(snapshot_index + 1..)
                    .filter(|(_, (_, committed_by))| committed_by < term)
                    .filter(|(i, (t, _))| has.get(i) != Some(t))
                    .take(5)
                    .map(|(i, (t, _))| format!("{i}@t{t}"))
                    .collect();
                self.max_leader_term = self.max_leader_term.max(*term);
                if !missing.is_empty() {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} became leader of term {term} without committed entries {}",
                            missing.join(", ")
                        ),
                    });
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::{ctx, N1, N2};
    use crate::invariants::CheckerSet;

    #[test]
    fn a_leader_missing_a_committed_entry_fails() {
        let mut set = CheckerSet::only(&ctx(), "raft-leader-completeness");
        for index in 1..=2 {
            set.observe(&Observation::RaftApplied {
                at: 1,
                node: N1,
                index,
                term: 1,
                hash: index,
            });
        }
        set.observe(&Observation::RaftLeader {
            at: 2,
            node: N1,
            term: 2,
            snapshot_index: 1,
            log: vec![(2, 1)],
        });
        assert!(set.violations().is_empty());
        set.observe(&Observation::RaftLeader {
            at: 3,
            node: N2,
            term: 3,
            snapshot_index: 0,
            log: vec![(1, 1), (2, 2)],
        });
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("2@t1"));
    }

    #[test]
    fn a_late_leader_of_an_older_term_need_not_hold_what_a_later_term_committed() {
        let mut set = CheckerSet::only(&ctx(), "raft-leader-completeness");
        set.observe(&Observation::RaftLeader {
            at: 1,
            node: N1,
            term: 3,
            snapshot_index: 0,
            log: vec![(1, 3)],
        });
        set.observe(&Observation::RaftApplied {
            at: 2,
            node: N1,
            index: 1,
            term: 3,
            hash: 1,
        });
        // N2 won term 2 with votes cast before term 3 began (it was paused meanwhile).
        set.observe(&Observation::RaftLeader {
            at: 3,
            node: N2,
            term: 2,
            snapshot_index: 0,
            log: vec![(1, 2)],
        });
        assert!(set.violations().is_empty(), "{:?}", set.violations());
        // A leader of a later term must hold it.
        set.observe(&Observation::RaftLeader {
            at: 4,
            node: N2,
            term: 4,
            snapshot_index: 0,
            log: vec![(1, 2)],
        });
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }
}

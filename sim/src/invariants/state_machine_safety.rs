//! Log matching and state-machine safety (Raft paper §5.3, Figure 3: Log Matching,
//! State Machine Safety; §5.4.3): every controller voter applies the same metadata-log
//! entry at a given index, and applies the log in order with no gap. The world records
//! each applied entry as (index, term, hash of its payload); a voter applying another
//! entry at an index some voter already applied would build a different metadata image.

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{Checker, Model, Violation};
use crate::history::Observation;

#[derive(Default)]
pub struct StateMachineSafety {
    /// The first entry applied at each index: (term, hash, by whom).
    applied: BTreeMap<u64, (u64, u64, NodeId)>,
    /// The index each voter applies next (unknown after a restart until it applies a
    /// snapshot or its first entry).
    next: BTreeMap<NodeId, u64>,
}

impl StateMachineSafety {
    pub fn new() -> StateMachineSafety {
        StateMachineSafety::default()
    }
}

impl Checker for StateMachineSafety {
    fn name(&self) -> &'static str {
        "raft-state-machine-safety"
    }

    fn rule(&self) -> &'static str {
        "every controller voter applies the same entry at each index, in order (Raft paper §5.3 Log Matching, §5.4.3 State Machine Safety)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::Crashed { node, .. } => {
                // It replays from its snapshot (or index 1) after the restart.
                self.next.remove(node);
            }
            Observation::RaftSnapshotApplied { node, index, .. } => {
                self.next.insert(*node, index + 1);
            }
            Observation::RaftApplied {
                at,
                node,
                index,
                term,
                hash,
            } => {
                let expected = self.next.get(node).copied().unwrap_or(1);
                if *index != expected {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} applied index {index} when its next was {expected} (out of order or a gap)"
                        ),
                    });
                }
                self.next.insert(*node, index + 1);
                let (first_term, first_hash, by) =
                    *self.applied.entry(*index).or_insert((*term, *hash, *node));
                if (first_term, first_hash) != (*term, *hash) {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} applied entry {index}@t{term} (hash {hash:x}), but {by} applied {index}@t{first_term} (hash {first_hash:x}) there"
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

    fn applied(node: NodeId, index: u64, term: u64, hash: u64) -> Observation {
        Observation::RaftApplied {
            at: index,
            node,
            index,
            term,
            hash,
        }
    }

    #[test]
    fn two_voters_applying_different_entries_at_one_index_fail() {
        let mut set = CheckerSet::only(&ctx(), "raft-state-machine-safety");
        set.observe(&applied(N1, 1, 1, 7));
        set.observe(&applied(N2, 1, 1, 7));
        set.observe(&applied(N1, 2, 1, 8));
        assert!(set.violations().is_empty());
        set.observe(&applied(N2, 2, 2, 9));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn applying_with_a_gap_fails() {
        let mut set = CheckerSet::only(&ctx(), "raft-state-machine-safety");
        set.observe(&applied(N1, 1, 1, 7));
        set.observe(&applied(N1, 3, 1, 8));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }
}

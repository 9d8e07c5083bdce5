//! Raft election safety (Raft paper §5.2, Figure 3): at most one leader can be elected
//! in a given term. Every time a controller voter becomes leader the world records its
//! term; two different voters leading the same term is a split brain of the metadata
//! quorum (two active controllers, each free to commit its own metadata).

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{Checker, Model, Violation};
use crate::history::Observation;

#[derive(Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<u64, NodeId>,
}

impl ElectionSafety {
    pub fn new() -> ElectionSafety {
        ElectionSafety::default()
    }
}

impl Checker for ElectionSafety {
    fn name(&self) -> &'static str {
        "raft-election-safety"
    }

    fn rule(&self) -> &'static str {
        "at most one controller voter is elected leader in a term (Raft paper §5.2, Figure 3: Election Safety)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        let Observation::RaftLeader { at, node, term, .. } = obs else {
            return;
        };
        let first = *self.leaders.entry(*term).or_insert(*node);
        if first != *node {
            out.push(Violation {
                checker: self.name(),
                at_ms: *at,
                message: format!(
                    "two leaders in term {term}: {first} was elected, then {node} (split brain of the metadata quorum)"
                ),
            });
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::{ctx, N1, N2};
    use crate::invariants::CheckerSet;

    fn leader(at: u64, node: NodeId, term: u64) -> Observation {
        Observation::RaftLeader {
            at,
            node,
            term,
            snapshot_index: 0,
            log: Vec::new(),
        }
    }

    #[test]
    fn two_leaders_in_one_term_fail() {
        let mut set = CheckerSet::only(&ctx(), "raft-election-safety");
        set.observe(&leader(1, N1, 3));
        set.observe(&leader(2, N1, 3));
        set.observe(&leader(3, N2, 4));
        assert!(set.violations().is_empty());
        set.observe(&leader(4, N2, 3));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("term 3"));
    }
}

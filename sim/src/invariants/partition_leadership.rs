//! One leader per leader epoch (KIP-497, KIP-841; Kafka docs, Replication): the
//! controller names each partition's leader with a new leader epoch, so two brokers may
//! never both act as leader of one partition in the same leader epoch — if they did,
//! both could accept writes at the same offsets and followers could not tell which
//! history to truncate to. Checked on what brokers hold (their replica's state), not on
//! what the controller meant.

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{Observation, Part};

pub struct PartitionLeadership {
    ctx: CheckContext,
    leaders: BTreeMap<(Part, u32), NodeId>,
}

impl PartitionLeadership {
    pub fn new(ctx: CheckContext) -> PartitionLeadership {
        PartitionLeadership {
            ctx,
            leaders: BTreeMap::new(),
        }
    }
}

impl Checker for PartitionLeadership {
    fn name(&self) -> &'static str {
        "one-leader-per-epoch"
    }

    fn rule(&self) -> &'static str {
        "at most one broker leads a partition in a given leader epoch (KIP-497 leader epochs; Kafka docs: Replication)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        let Observation::PartitionView {
            at,
            node,
            part,
            leader_epoch,
            leader: true,
            ..
        } = obs
        else {
            return;
        };
        let first = *self.leaders.entry((*part, *leader_epoch)).or_insert(*node);
        if first != *node {
            out.push(Violation {
                checker: self.name(),
                at_ms: *at,
                message: format!(
                    "{} has two leaders in leader epoch {leader_epoch}: {first} and {node}",
                    self.ctx.name(*part)
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

    fn view(at: u64, node: NodeId, leader_epoch: u32, leader: bool) -> Observation {
        Observation::PartitionView {
            at,
            node,
            part: 0,
            leader_epoch,
            partition_epoch: leader_epoch,
            leader,
        }
    }

    #[test]
    fn two_brokers_leading_one_epoch_fail() {
        let mut set = CheckerSet::only(&ctx(), "one-leader-per-epoch");
        set.observe(&view(1, N1, 1, true));
        set.observe(&view(2, N2, 1, false));
        set.observe(&view(3, N2, 2, true));
        assert!(set.violations().is_empty());
        set.observe(&view(4, N2, 1, true));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }
}

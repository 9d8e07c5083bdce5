//! Every broker follows the metadata log (KIP-631: brokers, voters and observers alike,
//! replay the committed log into their metadata image; KIP-595: observers fetch it from
//! the quorum leader). Once faults have healed, an entry committed a liveness bound
//! before the end must be in the image of every broker by the end: a broker-only node
//! the voters lost track of (a voter restarted, or never knew of it), or a voter stuck
//! behind, fails this. A crash forgets the broker's image until it catches up again.

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{CheckContext, Checker, Model, Violation};
use crate::history::Observation;

pub struct MetadataPropagation {
    ctx: CheckContext,
    healed_at: Option<TimeMs>,
    /// When the commit frontier (the highest index any node applied) reached each
    /// index, in order.
    frontier: Vec<(TimeMs, u64)>,
    /// Each broker's image since its last start: `None` until it caught up.
    images: BTreeMap<NodeId, Option<u64>>,
}

impl MetadataPropagation {
    pub fn new(ctx: CheckContext) -> MetadataPropagation {
        let images = (1..=ctx.brokers).map(|b| (NodeId(b), None)).collect();
        MetadataPropagation {
            ctx,
            healed_at: None,
            frontier: Vec::new(),
            images,
        }
    }

    fn committed(&mut self, at: TimeMs, index: u64) {
        if self.frontier.last().is_none_or(|&(_, i)| index > i) {
            self.frontier.push((at, index));
        }
    }
}

impl Checker for MetadataPropagation {
    fn name(&self) -> &'static str {
        "metadata-propagation"
    }

    fn rule(&self) -> &'static str {
        "after faults heal, every broker's metadata image holds each entry committed a liveness bound before the end (KIP-631 brokers replay the metadata log; KIP-595 observers follow it)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        match obs {
            Observation::Healed { at } => self.healed_at = Some(*at),
            Observation::RaftApplied { at, index, .. }
            | Observation::RaftSnapshotApplied { at, index, .. } => self.committed(*at, *index),
            Observation::Crashed { node, .. } | Observation::Restarted { node, .. } => {
                self.images.insert(*node, None);
            }
            Observation::BrokerMetadata { node, index, .. } => {
                self.images.insert(*node, Some(*index));
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, _model: &Model, out: &mut Vec<Violation>) {
        if !self.ctx.quorum {
            return;
        }
        let Some(since) = end_ms.checked_sub(self.ctx.liveness_bound_ms) else {
            return;
        };
        if self.healed_at.is_some_and(|healed| healed > since) {
            return; // Faults went on too long for the bound to have passed.
        }
        let Some(&(at, required)) = self.frontier.iter().rev().find(|(at, _)| *at <= since) else {
            return;
        };
        for (node, image) in &self.images {
            let message = match image {
                None => format!(
                    "{node} has no caught-up metadata image at the end of the run; index {required} was committed at {at} ms"
                ),
                Some(index) if *index < required => format!(
                    "{node}'s metadata image ends at index {index} at the end of the run; index {required} was committed at {at} ms"
                ),
                Some(_) => continue,
            };
            out.push(Violation {
                checker: self.name(),
                at_ms: end_ms,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::{ctx, N1, N2};
    use crate::invariants::CheckerSet;

    fn quorum_ctx() -> CheckContext {
        CheckContext {
            quorum: true,
            brokers: 2,
            ..ctx()
        }
    }

    fn applied(at: TimeMs, node: NodeId, index: u64) -> Observation {
        Observation::RaftApplied {
            at,
            node,
            index,
            term: 1,
            hash: index,
        }
    }

    fn image(at: TimeMs, node: NodeId, index: u64) -> Observation {
        Observation::BrokerMetadata {
            at,
            node,
            incarnation: 0,
            index,
        }
    }

    #[test]
    fn a_broker_whose_image_stopped_fails_and_caught_up_brokers_pass() {
        let mut set = CheckerSet::only(&quorum_ctx(), "metadata-propagation");
        set.observe(&Observation::Healed { at: 10 });
        for (at, index) in [(100, 1), (200, 2), (300, 3)] {
            set.observe(&applied(at, N1, index));
            set.observe(&image(at, N1, index));
        }
        set.observe(&image(100, N2, 1));
        set.finish(2_000);
        let v = set.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("ends at index 1"), "{v:?}");

        // Entries committed within the bound before the end are not yet owed.
        let mut set = CheckerSet::only(&quorum_ctx(), "metadata-propagation");
        set.observe(&Observation::Healed { at: 10 });
        set.observe(&applied(100, N1, 1));
        set.observe(&image(100, N1, 1));
        set.observe(&image(100, N2, 1));
        set.observe(&applied(1_500, N1, 2));
        set.finish(2_000);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn a_broker_that_never_caught_up_after_a_restart_fails() {
        let mut set = CheckerSet::only(&quorum_ctx(), "metadata-propagation");
        set.observe(&applied(100, N1, 1));
        set.observe(&image(100, N1, 1));
        set.observe(&image(100, N2, 1));
        set.observe(&Observation::Restarted { at: 150, node: N2 });
        set.observe(&Observation::Healed { at: 160 });
        set.finish(2_000);
        let v = set.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("no caught-up metadata image"),
            "{v:?}"
        );
    }
}

//! Metadata never goes back on a broker (KIP-497: leader and partition epochs order
//! every partition change; KIP-631: brokers apply the metadata log in order). A broker
//! that adopted a partition state with some (leader epoch, partition epoch) must not
//! later adopt an older one: a stale message (reordered, duplicated, or from a deposed
//! controller) would otherwise make it follow a leader that was replaced, or lead again.
//! Likewise the committed metadata image a broker derives its partitions from (its
//! voter's, or as an observer its own) never goes back to an earlier log index.
//! A restart starts the broker's memory afresh.

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{Observation, Part};

pub struct MetadataMonotonic {
    ctx: CheckContext,
    seen: BTreeMap<(NodeId, Part), (u32, u32)>,
    /// The metadata-log index of the image each broker last applied.
    image_index: BTreeMap<NodeId, u64>,
}

impl MetadataMonotonic {
    pub fn new(ctx: CheckContext) -> MetadataMonotonic {
        MetadataMonotonic {
            ctx,
            seen: BTreeMap::new(),
            image_index: BTreeMap::new(),
        }
    }
}

impl Checker for MetadataMonotonic {
    fn name(&self) -> &'static str {
        "metadata-monotonic"
    }

    fn rule(&self) -> &'static str {
        "a broker's leader epoch and partition epoch of a partition, and the metadata-log index of its image, never decrease (KIP-497 epochs; KIP-631 metadata applied in order)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::Crashed { node, .. } => {
                self.seen.retain(|(n, _), _| n != node);
                self.image_index.remove(node);
            }
            Observation::BrokerMetadata {
                at, node, index, ..
            } => {
                let before = self.image_index.insert(*node, *index);
                if let Some(before) = before.filter(|b| b > index) {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} applied a metadata image at log index {index} after one at {before}"
                        ),
                    });
                }
            }
            Observation::PartitionView {
                at,
                node,
                part,
                leader_epoch,
                partition_epoch,
                ..
            } => {
                let now = (*leader_epoch, *partition_epoch);
                if let Some(&before) = self.seen.get(&(*node, *part)) {
                    if now.0 < before.0 || now.1 < before.1 {
                        out.push(Violation {
                            checker: self.name(),
                            at_ms: *at,
                            message: format!(
                                "{node} went back on {}: (leader epoch, partition epoch) {before:?} then {now:?}",
                                self.ctx.name(*part)
                            ),
                        });
                    }
                }
                self.seen.insert((*node, *part), now);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::{ctx, N1};
    use crate::invariants::CheckerSet;

    fn view(at: u64, leader_epoch: u32, partition_epoch: u32) -> Observation {
        Observation::PartitionView {
            at,
            node: N1,
            part: 0,
            leader_epoch,
            partition_epoch,
            leader: false,
        }
    }

    #[test]
    fn an_older_partition_epoch_adopted_later_fails() {
        let mut set = CheckerSet::only(&ctx(), "metadata-monotonic");
        set.observe(&view(1, 1, 1));
        set.observe(&view(2, 1, 3));
        set.observe(&Observation::Crashed {
            at: 3,
            node: N1,
            surviving: Vec::new(),
        });
        set.observe(&view(4, 1, 2));
        assert!(set.violations().is_empty(), "{:?}", set.violations());
        set.observe(&view(5, 1, 1));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    fn image(at: u64, index: u64) -> Observation {
        Observation::BrokerMetadata {
            at,
            node: N1,
            incarnation: 0,
            index,
        }
    }

    #[test]
    fn a_broker_image_at_an_earlier_log_index_fails() {
        let mut set = CheckerSet::only(&ctx(), "metadata-monotonic");
        set.observe(&image(1, 5));
        set.observe(&image(2, 5));
        set.observe(&image(3, 9));
        set.observe(&Observation::Crashed {
            at: 4,
            node: N1,
            surviving: Vec::new(),
        });
        // A restarted broker replays from its disk: an earlier index is a fresh start.
        set.observe(&image(5, 2));
        assert!(set.violations().is_empty(), "{:?}", set.violations());
        set.observe(&image(6, 1));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }
}

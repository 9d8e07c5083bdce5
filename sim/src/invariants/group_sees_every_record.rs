//! (g5) Every group sees every record: publish-subscribe across groups.
//!
//! Kafka delivers each record to one member of every subscribing group (documentation,
//! "Consumers": "if all the consumer instances have different consumer groups, then
//! each record will be broadcast to all the consumer processes"). Once the faults heal,
//! every acknowledged, committed record of a group's topic acknowledged before the end
//! minus the liveness bound must have been processed by some member of every group that
//! still has a running member. As for readers (`liveness.rs`), committed data the
//! configuration allowed to be lost (every in-sync copy crashed before it was synced:
//! the offsets were written anew, or no leader has held them since) is excused.

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::TimeMs;

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{BatchId, MemberRef, Observation, Part};

pub struct GroupSeesEveryRecord {
    ctx: CheckContext,
    healed_at: Option<TimeMs>,
    acked_at: BTreeMap<(Part, BatchId), TimeMs>,
    processed: BTreeMap<u32, BTreeSet<(Part, BatchId)>>,
    running: BTreeSet<MemberRef>,
}

impl GroupSeesEveryRecord {
    pub fn new(ctx: CheckContext) -> GroupSeesEveryRecord {
        GroupSeesEveryRecord {
            ctx,
            healed_at: None,
            acked_at: BTreeMap::new(),
            processed: BTreeMap::new(),
            running: BTreeSet::new(),
        }
    }
}

impl Checker for GroupSeesEveryRecord {
    fn name(&self) -> &'static str {
        "group-sees-every-record"
    }

    fn rule(&self) -> &'static str {
        "after faults heal, every group processes every acknowledged committed record within the liveness bound (Kafka docs: Consumers)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        match obs {
            Observation::Healed { at } => self.healed_at = Some(*at),
            Observation::Acked { at, part, id, .. } => {
                self.acked_at.entry((*part, *id)).or_insert(*at);
            }
            Observation::GroupProcessed {
                member,
                part,
                batch,
                ..
            } => {
                self.processed
                    .entry(member.group)
                    .or_default()
                    .insert((*part, batch.id));
            }
            Observation::GroupJoining { member, .. } => {
                self.running.insert(*member);
            }
            Observation::GroupStopped { member, .. } => {
                self.running.remove(member);
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, model: &Model, out: &mut Vec<Violation>) {
        let Some(healed_at) = self.healed_at else {
            return;
        };
        let bound = self.ctx.liveness_bound_ms;
        let processed_by = end_ms.saturating_sub(bound);
        for (g, group) in self.ctx.groups.iter().enumerate() {
            let g = g as u32;
            if !self.running.iter().any(|m| m.group == g) {
                continue;
            }
            let committed: BTreeSet<(Part, BatchId)> = group
                .parts
                .iter()
                .flat_map(|&part| {
                    model
                        .committed(part)
                        .iter()
                        .filter(move |b| {
                            !model.was_rewritten(part, b.base_offset)
                                && !model.may_be_lost(part, b.base_offset)
                        })
                        .map(move |b| (part, b.id))
                })
                .collect();
            let seen = self.processed.get(&g);
            let missing: Vec<String> = self
                .acked_at
                .iter()
                .filter(|&(&(part, id), &at)| {
                    group.parts.contains(&part)
                        && at.max(healed_at) <= processed_by
                        && committed.contains(&(part, id))
                        && !seen.is_some_and(|s| s.contains(&(part, id)))
                })
                .map(|(&(part, id), _)| format!("{id} in {}", self.ctx.name(part)))
                .take(5)
                .collect();
            if !missing.is_empty() {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: end_ms,
                    message: format!(
                        "group {} never processed committed, acknowledged batches within {bound} ms of the faults healing, e.g. {}",
                        group.name,
                        missing.join(", ")
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::Offset;

    use super::super::group_exclusive_ownership::tests::{m, processed};
    use crate::history::{AcksMode, BatchId, Observation};
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn history(set: &mut CheckerSet) {
        set.observe(&Observation::GroupJoining {
            at: 1,
            member: m(1),
        });
        set.observe(&Observation::Appended {
            at: 150,
            node: N1,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        set.observe(&Observation::HighWatermark {
            at: 160,
            node: N1,
            part: 0,
            hw: Offset(1),
            leader: true,
        });
        set.observe(&Observation::Acked {
            at: 200,
            producer: 1,
            part: 0,
            id: BatchId {
                producer: 1,
                number: 0,
            },
            base_offset: Offset(0),
            acks: AcksMode::All,
        });
    }

    #[test]
    fn flags_a_group_that_never_processed_an_acknowledged_record() {
        let mut set = CheckerSet::only(&ctx(), "group-sees-every-record");
        history(&mut set);
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("never processed"));
    }

    #[test]
    fn a_group_that_processed_it_passes() {
        let mut set = CheckerSet::only(&ctx(), "group-sees-every-record");
        history(&mut set);
        let mut p = processed(300, 1, 0, 0);
        if let Observation::GroupProcessed { batch, .. } = &mut p {
            batch.id = BatchId {
                producer: 1,
                number: 0,
            };
        }
        set.observe(&p);
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }
}

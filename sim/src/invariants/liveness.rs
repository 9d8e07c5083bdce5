//! (f) Liveness: once faults heal, the cluster makes progress.
//!
//! Kafka's availability promise (documentation, "Availability and Durability
//! Guarantees"): with a live in-sync replica set of at least `min.insync.replicas`, an
//! acks=all write completes. After every fault heals, each acks=all write still pending
//! must be acknowledged within the scenario's liveness bound, and every committed batch
//! acknowledged before the end minus that bound must have reached every reader — except
//! a batch lost with every copy, unsynced, in crashes where the scenario allows it (the
//! default flush policy: Kafka loses it too; `acked_durability` counts it as an allowed
//! loss by the same rule, [`Model::lost_with_all_copies`]; here also while the loss is
//! still in doubt at the end, no replica that kept it having come back to lead it).
//! Nobody can read it any more.

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::TimeMs;

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{AcksMode, BatchId, Observation, Part};

pub struct Liveness {
    ctx: CheckContext,
    healed_at: Option<TimeMs>,
    /// acks=all batches sent and not yet acknowledged: when first sent.
    pending: BTreeMap<(Part, BatchId), TimeMs>,
    acked_at: BTreeMap<(Part, BatchId), TimeMs>,
    read: BTreeMap<u32, BTreeSet<(Part, BatchId)>>,
}

impl Liveness {
    pub fn new(ctx: CheckContext) -> Liveness {
        Liveness {
            ctx,
            healed_at: None,
            pending: BTreeMap::new(),
            acked_at: BTreeMap::new(),
            read: BTreeMap::new(),
        }
    }
}

impl Checker for Liveness {
    fn name(&self) -> &'static str {
        "liveness"
    }

    fn rule(&self) -> &'static str {
        "after faults heal, pending acks=all writes complete and readers reach every acknowledged record within the liveness bound (Kafka docs: Availability and Durability Guarantees)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        match obs {
            Observation::Healed { at } => self.healed_at = Some(*at),
            Observation::Sent {
                at,
                part,
                id,
                acks: AcksMode::All,
                ..
            } => {
                self.pending.insert((*part, *id), *at);
            }
            Observation::Acked { at, part, id, .. } => {
                self.pending.remove(&(*part, *id));
                self.acked_at.entry((*part, *id)).or_insert(*at);
            }
            Observation::Failed { part, id, .. } => {
                // Given up by its producer: nothing is pending any more.
                self.pending.remove(&(*part, *id));
            }
            Observation::Read {
                reader,
                part,
                batch,
                ..
            } => {
                self.read
                    .entry(*reader)
                    .or_default()
                    .insert((*part, batch.id));
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, model: &Model, out: &mut Vec<Violation>) {
        let Some(healed_at) = self.healed_at else {
            return; // the run never healed: liveness cannot be judged
        };
        let bound = self.ctx.liveness_bound_ms;
        for (&(part, id), &sent_at) in &self.pending {
            let deadline = sent_at.max(healed_at) + bound;
            if deadline <= end_ms {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: deadline,
                    message: format!(
                        "acks=all write {id} to {}, sent at {sent_at} ms, was still not acknowledged {bound} ms after the faults healed (at {healed_at} ms)",
                        self.ctx.name(part)
                    ),
                });
            }
        }
        let read_by = end_ms.saturating_sub(bound);
        let allow_unsynced_loss = self.ctx.allow_unsynced_loss;
        // Committed batches readers must have received: all but those in a range that
        // lost its committed data and was written anew, which a reader may have passed,
        // and those lost with every unsynced copy where the scenario allows that loss.
        let committed: BTreeSet<(Part, BatchId)> = self
            .acked_at
            .keys()
            .map(|&(part, _)| part)
            .collect::<BTreeSet<Part>>()
            .into_iter()
            .flat_map(|part| {
                model
                    .committed(part)
                    .iter()
                    .filter(move |b| !model.was_rewritten(part, b.base_offset))
                    .filter(move |b| {
                        !(allow_unsynced_loss
                            && model.lost_with_all_copies_or_in_doubt(part, b.base_offset, b.id))
                    })
                    .map(move |b| (part, b.id))
            })
            .collect();
        for reader in 0..self.ctx.readers {
            let seen = self.read.get(&reader);
            let missing: Vec<String> = self
                .acked_at
                .iter()
                .filter(|&(&(part, id), &at)| {
                    at.max(healed_at) <= read_by
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
                        "reader r{reader} never received committed, acknowledged batches within {bound} ms of the faults healing, e.g. {}",
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

    use crate::history::{AcksMode, BatchId, Observation};
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    const X: BatchId = BatchId {
        producer: 1,
        number: 0,
    };

    #[test]
    fn flags_an_acks_all_write_stalled_after_healing() {
        let mut set = CheckerSet::only(&ctx(), "liveness");
        set.observe(&Observation::Sent {
            at: 100,
            producer: 1,
            part: 0,
            id: X,
            acks: AcksMode::All,
            idempotent: true,
        });
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0]
            .message
            .contains("still not acknowledged"));
    }

    #[test]
    fn flags_a_reader_that_never_caught_up() {
        let mut set = CheckerSet::only(&ctx(), "liveness");
        set.observe(&Observation::Sent {
            at: 100,
            producer: 1,
            part: 0,
            id: X,
            acks: AcksMode::All,
            idempotent: true,
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
            id: X,
            base_offset: Offset(0),
            acks: AcksMode::All,
        });
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("never received"));
    }

    /// x is appended on N1 and N2, committed and acknowledged; then both crash, N2
    /// keeping it if it had synced it (and then coming back to lead it). Nobody reads it.
    fn lost_in_crashes(n2_kept_it: bool) -> Vec<Observation> {
        let x = b(0, 0, 1, 0);
        let mut history = vec![
            Observation::Sent {
                at: 100,
                producer: 1,
                part: 0,
                id: X,
                acks: AcksMode::All,
                idempotent: true,
            },
            Observation::Appended {
                at: 150,
                node: N1,
                part: 0,
                batch: x,
            },
            Observation::Appended {
                at: 150,
                node: N2,
                part: 0,
                batch: x,
            },
            Observation::HighWatermark {
                at: 160,
                node: N1,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
            Observation::Acked {
                at: 200,
                producer: 1,
                part: 0,
                id: X,
                base_offset: Offset(0),
                acks: AcksMode::All,
            },
            Observation::Crashed {
                at: 300,
                node: N1,
                surviving: vec![],
            },
            Observation::Crashed {
                at: 300,
                node: N2,
                surviving: if n2_kept_it {
                    vec![(0, vec![x])]
                } else {
                    vec![]
                },
            },
        ];
        if n2_kept_it {
            history.push(Observation::Restarted { at: 400, node: N2 });
            history.push(Observation::HighWatermark {
                at: 500,
                node: N2,
                part: 0,
                hw: Offset(1),
                leader: true,
            });
        }
        history.push(Observation::Healed { at: 2_000 });
        history
    }

    #[test]
    fn a_batch_lost_with_every_unsynced_copy_is_not_asked_of_readers() {
        let mut set = CheckerSet::only(&ctx(), "liveness");
        for obs in lost_in_crashes(false) {
            set.observe(&obs);
        }
        set.finish(5_000);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn a_batch_whose_synced_copy_survived_must_still_reach_readers() {
        let mut set = CheckerSet::only(&ctx(), "liveness");
        for obs in lost_in_crashes(true) {
            set.observe(&obs);
        }
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("never received"));
    }

    #[test]
    fn a_batch_lost_with_every_copy_is_asked_of_readers_where_loss_is_not_allowed() {
        let mut ctx = ctx();
        ctx.allow_unsynced_loss = false;
        let mut set = CheckerSet::only(&ctx, "liveness");
        for obs in lost_in_crashes(false) {
            set.observe(&obs);
        }
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn a_write_acknowledged_and_read_in_time_passes() {
        let mut set = CheckerSet::only(&ctx(), "liveness");
        set.observe(&Observation::Sent {
            at: 100,
            producer: 1,
            part: 0,
            id: X,
            acks: AcksMode::All,
            idempotent: true,
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
            id: X,
            base_offset: Offset(0),
            acks: AcksMode::All,
        });
        set.observe(&Observation::Read {
            at: 300,
            reader: 0,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }
}

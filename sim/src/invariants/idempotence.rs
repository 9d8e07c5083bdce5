//! (d) Idempotent producers: no duplicates, and each producer's order kept.
//!
//! KIP-98 ("Exactly Once Delivery and Transactional Messaging"), idempotent producer: the
//! broker keeps the producer id, epoch and sequence numbers, so a retried batch is not
//! appended twice and batches land in the order they were sent. The committed log of a
//! partition must therefore hold each idempotent batch at most once, and one producer's
//! batches in increasing order of its batch numbers.

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::TimeMs;

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{BatchRef, Observation, Part};

pub struct IdempotentProducers {
    ctx: CheckContext,
    idempotent: BTreeSet<u32>,
    parts: BTreeSet<Part>,
}

impl IdempotentProducers {
    pub fn new(ctx: CheckContext) -> IdempotentProducers {
        IdempotentProducers {
            ctx,
            idempotent: BTreeSet::new(),
            parts: BTreeSet::new(),
        }
    }
}

impl Checker for IdempotentProducers {
    fn name(&self) -> &'static str {
        "idempotent-producers"
    }

    fn rule(&self) -> &'static str {
        "an idempotent producer's batches appear at most once and in the order sent (KIP-98)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        if let Observation::Sent {
            producer,
            idempotent,
            part,
            ..
        } = obs
        {
            if *idempotent {
                self.idempotent.insert(*producer);
                self.parts.insert(*part);
            }
        }
    }

    fn finish(&mut self, end_ms: TimeMs, model: &Model, out: &mut Vec<Violation>) {
        for &part in &self.parts {
            let mut last: BTreeMap<u32, BatchRef> = BTreeMap::new();
            for batch in model.committed(part) {
                if !self.idempotent.contains(&batch.id.producer) {
                    continue;
                }
                if let Some(prev) = last.get(&batch.id.producer) {
                    if batch.id.number <= prev.id.number {
                        let what = if batch.id.number == prev.id.number {
                            "twice"
                        } else {
                            "out of order"
                        };
                        out.push(Violation {
                            checker: self.name(),
                            at_ms: end_ms,
                            message: format!(
                                "idempotent producer p{} has batches {what} in {}: {prev} then {batch}",
                                batch.id.producer,
                                self.ctx.name(part)
                            ),
                        });
                    }
                }
                last.insert(batch.id.producer, *batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::Offset;

    use crate::history::{AcksMode, Observation};
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn violations(batches: &[crate::history::BatchRef]) -> Vec<crate::invariants::Violation> {
        let mut set = CheckerSet::only(&ctx(), "idempotent-producers");
        set.observe(&Observation::Sent {
            at: 0,
            producer: 1,
            part: 0,
            id: batches[0].id,
            acks: AcksMode::All,
            idempotent: true,
        });
        for batch in batches {
            set.observe(&Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: *batch,
            });
        }
        let hw = batches.last().unwrap().next_offset();
        set.observe(&Observation::HighWatermark {
            at: 2,
            node: N1,
            part: 0,
            hw,
            leader: true,
        });
        set.finish(10_000);
        set.violations().to_vec()
    }

    #[test]
    fn flags_a_duplicate_batch() {
        let v = violations(&[b(0, 0, 1, 0), b(1, 1, 1, 1), b(2, 2, 1, 1)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("twice"));
    }

    #[test]
    fn flags_reordered_batches() {
        let v = violations(&[b(0, 0, 1, 1), b(1, 1, 1, 0)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("out of order"));
    }

    #[test]
    fn in_order_batches_pass() {
        assert!(violations(&[b(0, 0, 1, 0), b(1, 3, 1, 1), b(4, 4, 1, 2)]).is_empty());
        let _ = Offset(0);
    }
}

//! (a) No acknowledged write is lost beyond what the configuration promises.
//!
//! Kafka's promise (documentation, "Replication" and "Availability and Durability
//! Guarantees"): a write acknowledged with acks=all was in every in-sync replica, with at
//! least `min.insync.replicas` of them, and is not lost as long as one in-sync replica
//! survives. Without `log.flush.interval.messages=1` "survives" means "did not crash
//! before syncing": if every holder crashes together, the write may go. With it, the
//! write survives every replica crashing. An acks=1 write is promised only by the leader:
//! it may be lost if the leader loses it before a follower copies it (before it is
//! committed); once committed it has the acks=all promise.
//!
//! So, exactly: when a broker sends an acks=all success, at least `min.insync.replicas`
//! live brokers hold the batch (one for acks=1). At the end, every batch a producer was
//! told is acknowledged is in the committed log at its offset, unless it is an acks=1
//! batch that was never committed, or a committed batch that the model saw lose every
//! copy to crashes (and the scenario allows that).

use eddy_core::{Offset, TimeMs};

use super::{CheckContext, Checker, LossReport, Model, Violation};
use crate::history::{AcksMode, BatchId, Observation, Part};

pub struct AckedDurability {
    ctx: CheckContext,
    acked: Vec<(TimeMs, Part, BatchId, Offset, AcksMode)>,
    losses: LossReport,
}

impl AckedDurability {
    pub fn new(ctx: CheckContext) -> AckedDurability {
        AckedDurability {
            ctx,
            acked: Vec::new(),
            losses: LossReport::default(),
        }
    }
}

impl Checker for AckedDurability {
    fn name(&self) -> &'static str {
        "acked-durability"
    }

    fn rule(&self) -> &'static str {
        "acknowledged writes survive as the acks, min.insync.replicas and flush settings promise (Kafka docs: Replication; Availability and Durability Guarantees)"
    }

    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::AckSent {
                at,
                node,
                part,
                id,
                base_offset,
                acks,
            } => {
                let need = match acks {
                    AcksMode::All => usize::from(self.ctx.min_insync_replicas),
                    AcksMode::One => 1,
                    AcksMode::Zero => return,
                };
                let holders = model.copies(*part, *base_offset, *id);
                if holders.len() < need || !holders.contains(node) {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} acknowledged {id} at offset {base_offset} of {} ({acks:?}) while only {holders:?} had taken a copy; needed {need} (min.insync.replicas = {})",
                            self.ctx.name(*part),
                            self.ctx.min_insync_replicas
                        ),
                    });
                }
            }
            Observation::Acked {
                at,
                part,
                id,
                base_offset,
                acks,
                ..
            } if *acks != AcksMode::Zero => {
                self.acked.push((*at, *part, *id, *base_offset, *acks));
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, model: &Model, out: &mut Vec<Violation>) {
        for &(at, part, id, base_offset, acks) in &self.acked {
            if model
                .committed_at(part, base_offset)
                .is_some_and(|b| b.id == id)
            {
                continue;
            }
            let committed = model.was_committed_at_offset(part, base_offset, id);
            if acks == AcksMode::One && !committed {
                self.losses.acks1_unreplicated += 1;
                continue;
            }
            if committed && model.lost_with_all_copies(part, id) && self.ctx.allow_unsynced_loss {
                self.losses.unsynced_all_crashed += 1;
                continue;
            }
            let why = if !committed {
                "it was never committed (never below a leader's high watermark)".to_string()
            } else if model.lost_with_all_copies(part, id) {
                "every copy was lost in crashes, which this scenario does not allow".to_string()
            } else {
                "it was committed, and a broker holding it stayed up".to_string()
            };
            let now = model
                .committed_at(part, base_offset)
                .map_or("nothing".to_string(), |b| b.to_string());
            out.push(Violation {
                checker: self.name(),
                at_ms: at,
                message: format!(
                    "{id} acknowledged ({acks:?}) at offset {base_offset} of {} is lost: the committed log has {now} there; {why}",
                    self.ctx.name(part)
                ),
            });
        }
    }

    fn losses(&self) -> LossReport {
        self.losses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn run(history: &[Observation], allow_unsynced_loss: bool) -> (Vec<Violation>, LossReport) {
        let mut ctx = ctx();
        ctx.allow_unsynced_loss = allow_unsynced_loss;
        let mut set = CheckerSet::only(&ctx, "acked-durability");
        for o in history {
            set.observe(o);
        }
        set.finish(10_000);
        (set.violations().to_vec(), set.losses())
    }

    fn appended(node: eddy_core::NodeId, batch: crate::history::BatchRef) -> Observation {
        Observation::Appended {
            at: 1,
            node,
            part: 0,
            batch,
        }
    }

    fn acked(batch: crate::history::BatchRef, acks: AcksMode) -> Observation {
        Observation::Acked {
            at: 5,
            producer: 1,
            part: 0,
            id: batch.id,
            base_offset: batch.base_offset,
            acks,
        }
    }

    #[test]
    fn flags_an_acks_all_write_acknowledged_with_one_copy() {
        let x = b(0, 0, 1, 0);
        let history = [
            appended(N1, x),
            Observation::AckSent {
                at: 2,
                node: N1,
                part: 0,
                id: x.id,
                base_offset: x.base_offset,
                acks: AcksMode::All,
            },
        ];
        let (v, _) = run(&history, true);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("only [NodeId(1)] had taken a copy"),
            "{}",
            v[0]
        );
    }

    #[test]
    fn flags_a_committed_write_lost_while_a_holder_stayed_up() {
        let x = b(0, 0, 1, 0);
        let y = b(0, 0, 2, 0);
        let history = [
            appended(N1, x),
            appended(N2, x),
            Observation::HighWatermark {
                at: 3,
                node: N1,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
            acked(x, AcksMode::All),
            // N1 crashes and keeps nothing; N2 still holds x. Then N3 (which never had x)
            // becomes leader with other data: x is gone although N2 held it.
            Observation::Crashed {
                at: 6,
                node: N1,
                surviving: vec![],
            },
            appended(N3, y),
            Observation::HighWatermark {
                at: 7,
                node: N3,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
        ];
        let (v, _) = run(&history, true);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("is lost"), "{}", v[0]);
    }

    #[test]
    fn accepts_losing_a_write_whose_every_copy_crashed_unsynced_and_counts_it() {
        let x = b(0, 0, 1, 0);
        let y = b(0, 0, 2, 0);
        let history = [
            appended(N1, x),
            appended(N2, x),
            Observation::HighWatermark {
                at: 3,
                node: N1,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
            acked(x, AcksMode::All),
            Observation::Crashed {
                at: 6,
                node: N1,
                surviving: vec![],
            },
            Observation::Crashed {
                at: 6,
                node: N2,
                surviving: vec![],
            },
            appended(N3, y),
            Observation::HighWatermark {
                at: 7,
                node: N3,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
        ];
        let (v, losses) = run(&history, true);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(losses.unsynced_all_crashed, 1);
        // With sync before ack the same history is a violation.
        let (v, _) = run(&history, false);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn accepts_losing_an_uncommitted_acks1_write_and_counts_it() {
        let x = b(0, 0, 1, 0);
        let y = b(0, 0, 2, 0);
        let history = [
            appended(N1, x),
            acked(x, AcksMode::One),
            appended(N2, y),
            Observation::HighWatermark {
                at: 7,
                node: N2,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
        ];
        let (v, losses) = run(&history, true);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(losses.acks1_unreplicated, 1);
        // The same history with acks=all is a lost write.
        let history = [
            appended(N1, x),
            acked(x, AcksMode::All),
            appended(N2, y),
            Observation::HighWatermark {
                at: 7,
                node: N2,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
        ];
        let (v, _) = run(&history, true);
        assert_eq!(v.len(), 1, "{v:?}");
    }
}

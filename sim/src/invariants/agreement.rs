//! (c) Replicas agree on the log prefix up to the high watermark.
//!
//! KIP-101 ("Alter Replication Protocol to use Leader Epoch rather than High Watermark
//! for Truncation") and KIP-279: a follower truncates by leader epoch, so its log below
//! its HW is the committed log, and it never cuts a committed record. The model compares
//! every broker's log below each HW it reports with the committed log.
//!
//! What KIP-101 protects is a replica's log below its own high watermark, and Kafka's
//! durability promise counts copies on in-sync replicas only. A replica outside the ISR
//! that cuts a committed batch above the high watermark it last reported (following a
//! deposed leader its lagging metadata still names) breaks neither: the ISR members keep
//! the batch, and the replica fetches it again from the real leader. That truncation is
//! not a violation; the same cut below its high watermark, or by an ISR member, is.

use eddy_core::TimeMs;

use super::model::ConflictKind;
use super::{CheckContext, Checker, Model, Violation};
use crate::history::Observation;

pub struct ReplicaAgreement {
    ctx: CheckContext,
}

impl ReplicaAgreement {
    pub fn new(ctx: CheckContext) -> ReplicaAgreement {
        ReplicaAgreement { ctx }
    }
}

impl Checker for ReplicaAgreement {
    fn name(&self) -> &'static str {
        "replica-agreement"
    }

    fn rule(&self) -> &'static str {
        "replicas agree with the committed log below their high watermark and never truncate it (KIP-101, KIP-279)"
    }

    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>) {
        for c in &model.conflicts {
            if c.in_lost_region {
                continue;
            }
            let what = match c.kind {
                ConflictKind::FollowerDiverged => {
                    "has a log that differs from the committed log below its high watermark"
                }
                ConflictKind::TruncatedCommitted if !c.above_own_hw_outside_isr => {
                    "truncated a committed batch"
                }
                _ => continue,
            };
            let expected = c.expected.map_or("nothing".to_string(), |b| b.to_string());
            let found = c.found.map_or("nothing".to_string(), |b| b.to_string());
            out.push(Violation {
                checker: self.name(),
                at_ms: obs.at(),
                message: format!(
                    "{} {what}: at offset {} of {} the committed log has {expected}, the broker {found}",
                    c.node,
                    c.offset,
                    self.ctx.name(c.part)
                ),
            });
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use eddy_core::Offset;

    use crate::history::Observation;
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn violations(history: &[Observation]) -> Vec<crate::invariants::Violation> {
        let mut set = CheckerSet::only(&ctx(), "replica-agreement");
        for o in history {
            set.observe(o);
        }
        set.finish(10_000);
        set.violations().to_vec()
    }

    fn committed_on_leader() -> Vec<Observation> {
        vec![
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(0, 0, 1, 0),
            },
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(1, 1, 1, 1),
            },
            Observation::HighWatermark {
                at: 2,
                node: N1,
                part: 0,
                hw: Offset(2),
                leader: true,
            },
        ]
    }

    /// [`committed_on_leader`], and N2 appends both batches too.
    fn committed_on_leader_and_copied_by_n2() -> Vec<Observation> {
        let mut h = committed_on_leader();
        for (number, base) in [(0, 0), (1, 1)] {
            h.push(Observation::Appended {
                at: 3,
                node: N2,
                part: 0,
                batch: b(base, base, 1, number),
            });
        }
        h
    }

    #[test]
    fn flags_a_divergent_follower_below_its_high_watermark() {
        let mut h = committed_on_leader();
        h.push(Observation::Appended {
            at: 3,
            node: N2,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        h.push(Observation::Appended {
            at: 3,
            node: N2,
            part: 0,
            batch: b(1, 1, 9, 9),
        });
        h.push(Observation::HighWatermark {
            at: 4,
            node: N2,
            part: 0,
            hw: Offset(2),
            leader: false,
        });
        let v = violations(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("differs from the committed log"));
    }

    #[test]
    fn flags_truncating_a_committed_batch() {
        let mut h = committed_on_leader();
        h.push(Observation::Truncated {
            at: 3,
            node: N1,
            part: 0,
            offset: Offset(1),
        });
        let v = violations(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("truncated a committed batch"));
    }

    /// N2 copies the committed batch 1 while its high watermark is still 1; then the
    /// controller takes N2 out of the ISR and N2 truncates the batch (it followed a
    /// deposed leader whose log ends at 1).
    fn out_of_isr_follower_truncates(hw: u64, isr: Vec<eddy_core::NodeId>) -> Vec<Observation> {
        let mut h = committed_on_leader_and_copied_by_n2();
        h.push(Observation::HighWatermark {
            at: 4,
            node: N2,
            part: 0,
            hw: Offset(hw),
            leader: false,
        });
        h.push(Observation::IsrChanged {
            at: 5,
            part: 0,
            isr,
        });
        h.push(Observation::Truncated {
            at: 6,
            node: N2,
            part: 0,
            offset: Offset(1),
        });
        h
    }

    #[test]
    fn a_replica_outside_the_isr_may_cut_committed_data_above_its_own_high_watermark() {
        assert!(violations(&out_of_isr_follower_truncates(1, vec![N1])).is_empty());
    }

    #[test]
    fn flags_a_cut_below_the_replicas_own_high_watermark_or_by_an_isr_member() {
        // Below its own high watermark: KIP-101's guarantee, ISR or not.
        let v = violations(&out_of_isr_follower_truncates(2, vec![N1]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("truncated a committed batch"));
        // Above it, but in the ISR: its copy counted towards the acknowledgement.
        let v = violations(&out_of_isr_follower_truncates(1, vec![N1, N2]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("truncated a committed batch"));
    }

    #[test]
    fn a_follower_behind_but_consistent_passes() {
        let mut h = committed_on_leader();
        h.push(Observation::Appended {
            at: 3,
            node: N2,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        h.push(Observation::HighWatermark {
            at: 4,
            node: N2,
            part: 0,
            hw: Offset(1),
            leader: false,
        });
        h.push(Observation::Appended {
            at: 5,
            node: N2,
            part: 0,
            batch: b(1, 1, 7, 7),
        });
        h.push(Observation::Truncated {
            at: 6,
            node: N2,
            part: 0,
            offset: Offset(1),
        });
        assert!(violations(&h).is_empty());
    }

    /// The last ISR member (N1) crashes without batch 1; N2, outside the ISR, still has
    /// it and reports a leader's high watermark over it (a stale leadership); then N2
    /// truncates it to follow N1 back.
    fn last_isr_member_lost_it(isr: Vec<eddy_core::NodeId>) -> Vec<Observation> {
        let mut h = committed_on_leader_and_copied_by_n2();
        h.push(Observation::IsrChanged {
            at: 4,
            part: 0,
            isr,
        });
        h.push(Observation::Crashed {
            at: 5,
            node: N1,
            surviving: vec![(0, vec![b(0, 0, 1, 0)])],
        });
        h.push(Observation::HighWatermark {
            at: 6,
            node: N2,
            part: 0,
            hw: Offset(2),
            leader: true,
        });
        h.push(Observation::Truncated {
            at: 7,
            node: N2,
            part: 0,
            offset: Offset(1),
        });
        h
    }

    #[test]
    fn a_stale_leader_outside_the_isr_does_not_undo_a_loss_kafka_allows() {
        assert!(violations(&last_isr_member_lost_it(vec![N1])).is_empty());
        // In the ISR, N2's copy was promised: truncating it is a violation.
        let v = violations(&last_isr_member_lost_it(vec![N1, N2]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("truncated a committed batch"));
    }
}

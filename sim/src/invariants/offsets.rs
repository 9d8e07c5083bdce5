//! (b) Offsets are dense, and a record at an offset below the high watermark never
//! changes.
//!
//! Kafka's log (documentation, "Log"): each appended batch takes the next offsets, with
//! no gaps and no reuse, and once a record is committed (below the HW of its leader) it
//! stays at that offset on every replica that may become leader (KIP-101 closed the
//! holes that let it change). The one exception is a loss the configuration allows
//! (every copy crashed before syncing), which the model marks and checker (a) judges.

use eddy_core::TimeMs;

use super::model::ConflictKind;
use super::{CheckContext, Checker, Model, Violation};
use crate::history::Observation;

pub struct DenseStableOffsets {
    ctx: CheckContext,
}

impl DenseStableOffsets {
    pub fn new(ctx: CheckContext) -> DenseStableOffsets {
        DenseStableOffsets { ctx }
    }
}

impl Checker for DenseStableOffsets {
    fn name(&self) -> &'static str {
        "dense-stable-offsets"
    }

    fn rule(&self) -> &'static str {
        "offsets are assigned densely, and a committed record never changes (Kafka docs: Log; KIP-101)"
    }

    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>) {
        for c in &model.conflicts {
            let what = match c.kind {
                ConflictKind::NotDense => "appended a batch that does not start at its log end offset",
                ConflictKind::LeaderRewrote if !c.in_lost_region => {
                    "as leader declared a high watermark over data that differs from what was committed"
                }
                _ => continue,
            };
            let expected = c.expected.map_or("nothing".to_string(), |b| b.to_string());
            let found = c.found.map_or("nothing".to_string(), |b| b.to_string());
            out.push(Violation {
                checker: self.name(),
                at_ms: obs.at(),
                message: format!(
                    "{} {what}: at offset {} of {} expected {expected}, found {found}",
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
        let mut set = CheckerSet::only(&ctx(), "dense-stable-offsets");
        for o in history {
            set.observe(o);
        }
        set.finish(10_000);
        set.violations().to_vec()
    }

    #[test]
    fn flags_a_gap_in_offsets() {
        let v = violations(&[
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(0, 1, 1, 0),
            },
            Observation::Appended {
                at: 2,
                node: N1,
                part: 0,
                batch: b(3, 3, 1, 1),
            },
        ]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0]
            .message
            .contains("does not start at its log end offset"));
    }

    #[test]
    fn flags_a_committed_record_that_changed() {
        let v = violations(&[
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(0, 0, 1, 0),
            },
            Observation::HighWatermark {
                at: 2,
                node: N1,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
            // N2 never had p1#0, yet leads with another batch at offset 0 while N1 is up.
            Observation::Appended {
                at: 3,
                node: N2,
                part: 0,
                batch: b(0, 0, 2, 0),
            },
            Observation::HighWatermark {
                at: 4,
                node: N2,
                part: 0,
                hw: Offset(1),
                leader: true,
            },
        ]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("differs from what was committed"));
    }

    #[test]
    fn a_steady_log_passes() {
        let v = violations(&[
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(0, 1, 1, 0),
            },
            Observation::Appended {
                at: 1,
                node: N1,
                part: 0,
                batch: b(2, 2, 1, 1),
            },
            Observation::HighWatermark {
                at: 2,
                node: N1,
                part: 0,
                hw: Offset(3),
                leader: true,
            },
            Observation::Appended {
                at: 3,
                node: N1,
                part: 0,
                batch: b(3, 5, 1, 2),
            },
            Observation::HighWatermark {
                at: 4,
                node: N1,
                part: 0,
                hw: Offset(6),
                leader: true,
            },
        ]);
        assert!(v.is_empty(), "{v:?}");
    }
}

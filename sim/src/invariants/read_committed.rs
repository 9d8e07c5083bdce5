//! (e) No read past the high watermark.
//!
//! Kafka's consumers see only committed records (documentation, "Replication": "only
//! committed messages are ever given out to the consumer"). Every batch a reader
//! receives must be one the committed log held at that offset.

use eddy_core::TimeMs;

use super::{CheckContext, Checker, Model, Violation};
use crate::history::Observation;

pub struct ReadCommitted {
    ctx: CheckContext,
}

impl ReadCommitted {
    pub fn new(ctx: CheckContext) -> ReadCommitted {
        ReadCommitted { ctx }
    }
}

impl Checker for ReadCommitted {
    fn name(&self) -> &'static str {
        "read-committed"
    }

    fn rule(&self) -> &'static str {
        "consumers only receive committed records, below the high watermark (Kafka docs: Replication)"
    }

    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>) {
        if let Observation::Read {
            at,
            reader,
            part,
            batch,
        } = obs
        {
            if !model.was_committed_at(*part, batch) {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: *at,
                    message: format!(
                        "reader r{reader} received {batch} from {}, which was never committed there (committed log ends at {})",
                        self.ctx.name(*part),
                        model.committed_end(*part)
                    ),
                });
            }
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

    #[test]
    fn flags_a_read_past_the_high_watermark() {
        let mut set = CheckerSet::only(&ctx(), "read-committed");
        set.observe(&Observation::Appended {
            at: 1,
            node: N1,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        set.observe(&Observation::Appended {
            at: 1,
            node: N1,
            part: 0,
            batch: b(1, 1, 1, 1),
        });
        set.observe(&Observation::HighWatermark {
            at: 2,
            node: N1,
            part: 0,
            hw: Offset(1),
            leader: true,
        });
        set.observe(&Observation::Read {
            at: 3,
            reader: 0,
            part: 0,
            batch: b(0, 0, 1, 0),
        });
        assert!(set.violations().is_empty());
        set.observe(&Observation::Read {
            at: 3,
            reader: 0,
            part: 0,
            batch: b(1, 1, 1, 1),
        });
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("never committed"));
    }
}

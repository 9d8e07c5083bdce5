//! (g4) Once membership is stable, every partition has an owner within a bound.
//!
//! Kafka's group protocol promises progress once members stop coming and going: a
//! rebalance completes when every member rejoined or its rebalance timeout passed
//! (documentation, "Consumer configs": `session.timeout.ms`, `max.poll.interval.ms`;
//! KIP-62), and then every partition of the subscribed topics is assigned. Scenarios end
//! every member event before the faults heal, so membership is stable from the healing
//! on: by `liveness_bound_ms` after it, and still at the end of the run, every
//! partition of a group that has a running member must be owned by one.

use std::collections::BTreeSet;

use eddy_core::TimeMs;

use super::group_exclusive_ownership::Ownership;
use super::{CheckContext, Checker, Model, Violation};
use crate::history::{MemberRef, Observation};

pub struct GroupLiveness {
    ctx: CheckContext,
    healed_at: Option<TimeMs>,
    ownership: Ownership,
    running: BTreeSet<MemberRef>,
}

impl GroupLiveness {
    pub fn new(ctx: CheckContext) -> GroupLiveness {
        GroupLiveness {
            ctx,
            healed_at: None,
            ownership: Ownership::default(),
            running: BTreeSet::new(),
        }
    }
}

impl Checker for GroupLiveness {
    fn name(&self) -> &'static str {
        "group-liveness"
    }

    fn rule(&self) -> &'static str {
        "once membership is stable, every partition of a group has an owner within the liveness bound (Kafka docs: Consumer configs; KIP-62)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        self.ownership.observe(obs);
        match obs {
            Observation::Healed { at } => self.healed_at = Some(*at),
            Observation::GroupJoining { member, .. } => {
                self.running.insert(*member);
            }
            Observation::GroupStopped { member, .. } => {
                self.running.remove(member);
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, _model: &Model, out: &mut Vec<Violation>) {
        let Some(healed_at) = self.healed_at else {
            return;
        };
        let deadline = healed_at + self.ctx.liveness_bound_ms;
        if deadline > end_ms {
            return;
        }
        for (g, group) in self.ctx.groups.iter().enumerate() {
            let g = g as u32;
            if !self.running.iter().any(|m| m.group == g) {
                continue;
            }
            for &t in &[deadline, end_ms] {
                let orphans: Vec<&str> = group
                    .parts
                    .iter()
                    .filter(|&&p| !self.ownership.owned_at(g, p, t))
                    .map(|&p| self.ctx.name(p))
                    .collect();
                if !orphans.is_empty() {
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: t,
                        message: format!(
                            "group {}: no member owned {} at {t} ms, {} ms after membership became stable at {healed_at} ms",
                            group.name,
                            orphans.join(", "),
                            t - healed_at
                        ),
                    });
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::group_exclusive_ownership::tests::{assigned, m, revoked};
    use crate::history::Observation;
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    #[test]
    fn a_partition_owned_through_the_end_passes() {
        let mut set = CheckerSet::only(&ctx(), "group-liveness");
        set.observe(&Observation::GroupJoining {
            at: 1,
            member: m(0),
        });
        set.observe(&assigned(10, 0, 1));
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_a_partition_left_without_an_owner_after_healing() {
        let mut set = CheckerSet::only(&ctx(), "group-liveness");
        set.observe(&Observation::GroupJoining {
            at: 1,
            member: m(0),
        });
        set.observe(&assigned(10, 0, 1));
        set.observe(&revoked(1_500, 0, 1_500));
        set.observe(&Observation::Healed { at: 2_000 });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("no member owned"));
    }
}

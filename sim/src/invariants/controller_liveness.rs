//! Controller liveness once a majority of voters can talk (Raft paper §5.2: randomised
//! election timeouts make an election succeed; KIP-631: the active controller fences
//! brokers whose session expired and moves their leadership). After the faults heal,
//! an active controller must exist within the liveness bound and stay, and at the end
//! no partition may still be led by a fenced broker. Only for scenarios that run the
//! metadata quorum.

use eddy_core::{NodeId, TimeMs};

use super::{CheckContext, Checker, Model, Violation};
use crate::history::Observation;

pub struct ControllerLiveness {
    ctx: CheckContext,
    healed_at: Option<TimeMs>,
    /// The active controller and since when, if any.
    active: Option<(NodeId, TimeMs)>,
    fenced_leaders: Option<Option<Vec<(u32, NodeId)>>>,
    short_isrs: Vec<u32>,
    elections: u32,
}

impl ControllerLiveness {
    pub fn new(ctx: CheckContext) -> ControllerLiveness {
        ControllerLiveness {
            ctx,
            healed_at: None,
            active: None,
            fenced_leaders: None,
            short_isrs: Vec::new(),
            elections: 0,
        }
    }
}

impl Checker for ControllerLiveness {
    fn name(&self) -> &'static str {
        "controller-liveness"
    }

    fn rule(&self) -> &'static str {
        "after faults heal, an active controller is elected within the liveness bound and no partition stays led by a fenced broker (Raft paper §5.2; KIP-631 broker fencing)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        match obs {
            Observation::Healed { at } => self.healed_at = Some(*at),
            Observation::ControllerActive { at, node, active } => {
                if *active {
                    self.elections += 1;
                    self.active = Some((*node, *at));
                } else if self.active.is_some_and(|(n, _)| n == *node) {
                    self.active = None;
                }
            }
            Observation::Crashed { node, .. } if self.active.is_some_and(|(n, _)| n == *node) => {
                self.active = None;
            }
            Observation::FencedLeadersAtEnd {
                fenced_leaders,
                short_isrs,
                ..
            } => {
                self.fenced_leaders = Some(fenced_leaders.clone());
                self.short_isrs = short_isrs.clone();
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, _model: &Model, out: &mut Vec<Violation>) {
        if !self.ctx.quorum {
            return;
        }
        if let Some(max) = self.ctx.max_controller_elections {
            if self.elections > max {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: end_ms,
                    message: format!(
                        "{} controller elections, at most {max} expected: a healthy controller was deposed",
                        self.elections
                    ),
                });
            }
        }
        if self.ctx.isrs_complete_at_end {
            for part in &self.short_isrs {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: end_ms,
                    message: format!(
                        "{} has not got every replica back in its ISR at the end of the run",
                        self.ctx.name(*part)
                    ),
                });
            }
        }
        let Some(healed) = self.healed_at else {
            return;
        };
        let deadline = healed + self.ctx.liveness_bound_ms;
        match self.active {
            None => out.push(Violation {
                checker: self.name(),
                at_ms: end_ms,
                message: format!(
                    "no active controller at the end of the run ({} ms after faults healed at {healed} ms)",
                    end_ms - healed
                ),
            }),
            Some((node, since)) if since > deadline => out.push(Violation {
                checker: self.name(),
                at_ms: since,
                message: format!(
                    "the controller settled only at {since} ms ({node}), after the bound of {} ms past healing at {healed} ms",
                    self.ctx.liveness_bound_ms
                ),
            }),
            Some(_) => {}
        }
        if let Some(Some(fenced)) = &self.fenced_leaders {
            for (part, leader) in fenced {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: end_ms,
                    message: format!(
                        "{} is still led by fenced broker {leader} at the end of the run",
                        self.ctx.name(*part)
                    ),
                });
            }
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
            ..ctx()
        }
    }

    #[test]
    fn no_controller_after_healing_fails() {
        let mut set = CheckerSet::only(&quorum_ctx(), "controller-liveness");
        set.observe(&Observation::ControllerActive {
            at: 1,
            node: N1,
            active: true,
        });
        set.observe(&Observation::Healed { at: 10 });
        set.observe(&Observation::ControllerActive {
            at: 20,
            node: N1,
            active: false,
        });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn a_controller_late_past_the_bound_fails_and_one_in_time_passes() {
        let mut late = CheckerSet::only(&quorum_ctx(), "controller-liveness");
        late.observe(&Observation::Healed { at: 10 });
        late.observe(&Observation::ControllerActive {
            at: 2_000,
            node: N2,
            active: true,
        });
        late.finish(5_000);
        assert_eq!(late.violations().len(), 1, "{:?}", late.violations());

        let mut fine = CheckerSet::only(&quorum_ctx(), "controller-liveness");
        fine.observe(&Observation::Healed { at: 10 });
        fine.observe(&Observation::ControllerActive {
            at: 500,
            node: N2,
            active: true,
        });
        fine.finish(5_000);
        assert!(fine.violations().is_empty(), "{:?}", fine.violations());
    }

    #[test]
    fn more_elections_than_expected_fail() {
        let ctx = CheckContext {
            max_controller_elections: Some(1),
            ..quorum_ctx()
        };
        let mut set = CheckerSet::only(&ctx, "controller-liveness");
        for (at, node) in [(1, N1), (2, N2)] {
            set.observe(&Observation::ControllerActive {
                at,
                node,
                active: true,
            });
        }
        set.observe(&Observation::Healed { at: 10 });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn a_short_isr_at_the_end_fails_when_complete_isrs_are_expected() {
        let ctx = CheckContext {
            isrs_complete_at_end: true,
            ..quorum_ctx()
        };
        let mut set = CheckerSet::only(&ctx, "controller-liveness");
        set.observe(&Observation::ControllerActive {
            at: 1,
            node: N1,
            active: true,
        });
        set.observe(&Observation::Healed { at: 10 });
        set.observe(&Observation::FencedLeadersAtEnd {
            at: 5_000,
            fenced_leaders: Some(Vec::new()),
            short_isrs: vec![0],
        });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn a_partition_led_by_a_fenced_broker_at_the_end_fails() {
        let mut set = CheckerSet::only(&quorum_ctx(), "controller-liveness");
        set.observe(&Observation::Healed { at: 10 });
        set.observe(&Observation::ControllerActive {
            at: 500,
            node: N2,
            active: true,
        });
        set.observe(&Observation::FencedLeadersAtEnd {
            at: 5_000,
            fenced_leaders: Some(vec![(0, N1)]),
            short_isrs: Vec::new(),
        });
        set.finish(5_000);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }
}

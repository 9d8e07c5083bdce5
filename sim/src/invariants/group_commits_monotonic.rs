//! (g2) A group's committed offsets never go backwards, except by an explicit reset.
//!
//! Kafka's coordinator keeps the last offset committed for each partition of a group
//! (documentation, "Offset management": offsets are written to `__consumer_offsets`
//! with acks=all and read back by any member that takes the partition over). Two
//! things are checked per (group, partition): the offsets the coordinator
//! acknowledged, in the order members were told, never decrease; and an OffsetFetch
//! sent after an acknowledgement returns at least the acknowledged offset (a committed
//! offset that vanishes, or moves back, after a coordinator moves is a violation).
//! Members commit one request at a time over what they processed, and a member gives a
//! partition up only after its last commit's outcome, so a correct cluster never
//! acknowledges a lower offset after a higher one. An explicit reset (a member's
//! `auto.offset.reset` after OFFSET_OUT_OF_RANGE) is not a commit and is not judged.
//!
//! Commits are acks=all appends to `__consumer_offsets`, so they are as durable as any
//! acks=all write: when the model finds that committed data of the group's offsets
//! partition was lost where the configuration allowed it (every in-sync copy crashed
//! before it was synced; Kafka docs, "Replication"), a commit that went back is excused
//! and counted in the losses report, as `acked-durability` and `liveness` excuse such
//! losses for records.

use std::collections::BTreeMap;

use eddy_core::{Offset, TimeMs};

use super::{CheckContext, Checker, LossReport, Model, Violation};
use crate::history::{MemberRef, Observation, Part};

/// An acknowledged commit: when the member was told, the offset, and the member.
type AckedCommit = (TimeMs, Offset, MemberRef);

pub struct GroupCommitsMonotonic {
    ctx: CheckContext,
    /// Commits that went back because the offsets partition lost unsynced data.
    excused: u64,
    /// Per (group, partition): every acknowledged commit (when, offset, by whom), in
    /// the order acknowledged.
    acked: BTreeMap<(u32, Part), Vec<AckedCommit>>,
}

impl GroupCommitsMonotonic {
    pub fn new(ctx: CheckContext) -> GroupCommitsMonotonic {
        GroupCommitsMonotonic {
            ctx,
            excused: 0,
            acked: BTreeMap::new(),
        }
    }

    /// Whether the group's offsets partition lost committed data the configuration
    /// allowed it to lose.
    fn offsets_lost(&self, group: u32, model: &Model) -> bool {
        self.ctx
            .groups
            .get(group as usize)
            .and_then(|g| g.offsets_part)
            .is_some_and(|p| model.had_allowed_loss(p))
    }

    fn group_name(&self, group: u32) -> &str {
        self.ctx
            .groups
            .get(group as usize)
            .map_or("?", |g| g.name.as_str())
    }
}

impl Checker for GroupCommitsMonotonic {
    fn name(&self) -> &'static str {
        "group-commits-monotonic"
    }

    fn rule(&self) -> &'static str {
        "a group's committed offsets never go backwards except by an explicit reset (Kafka docs: Offset management)"
    }

    fn losses(&self) -> LossReport {
        LossReport {
            unsynced_all_crashed: self.excused,
            ..LossReport::default()
        }
    }

    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::GroupCommitAcked {
                at,
                member,
                part,
                offset,
                ..
            } => {
                let highest = self
                    .acked
                    .get(&(member.group, *part))
                    .and_then(|list| list.iter().max_by_key(|(_, o, _)| *o).copied());
                if let Some((when, highest, by)) = highest {
                    if *offset < highest && self.offsets_lost(member.group, model) {
                        self.excused += 1;
                    } else if *offset < highest {
                        let message = format!(
                            "group {}: {member} was told its commit of offset {offset} for {} succeeded at {at} ms, after {by} was told offset {highest} was committed at {when} ms",
                            self.group_name(member.group),
                            self.ctx.name(*part)
                        );
                        out.push(Violation {
                            checker: self.name(),
                            at_ms: *at,
                            message,
                        });
                    }
                }
                self.acked
                    .entry((member.group, *part))
                    .or_default()
                    .push((*at, *offset, *member));
            }
            Observation::GroupResumed {
                member,
                part,
                reset: true,
                ..
            } => {
                // An explicit reset: commits start over from it.
                self.acked.remove(&(member.group, *part));
            }
            Observation::GroupResumed {
                at,
                member,
                part,
                offset,
                committed,
                fetch_sent_at,
                reset: false,
            } => {
                let Some(list) = self.acked.get(&(member.group, *part)) else {
                    return;
                };
                let Some(&(when, highest, by)) = list
                    .iter()
                    .filter(|(t, _, _)| t < fetch_sent_at)
                    .max_by_key(|(_, o, _)| *o)
                else {
                    return;
                };
                let went_back = !committed || *offset < highest;
                if went_back && self.offsets_lost(member.group, model) {
                    self.excused += 1;
                } else if went_back {
                    let found = if *committed {
                        format!("offset {offset}")
                    } else {
                        "no committed offset".to_string()
                    };
                    let message = format!(
                        "group {}: {member}'s OffsetFetch for {} sent at {fetch_sent_at} ms returned {found} at {at} ms, but {by} was told offset {highest} was committed at {when} ms",
                        self.group_name(member.group),
                        self.ctx.name(*part)
                    );
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message,
                    });
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use eddy_core::Offset;

    use super::super::group_exclusive_ownership::tests::m;
    use crate::history::Observation;
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn acked(at: u64, slot: u32, offset: u64) -> Observation {
        Observation::GroupCommitAcked {
            at,
            member: m(slot),
            part: 0,
            offset: Offset(offset),
            generation: 1,
        }
    }

    fn resumed(at: u64, sent: u64, offset: Option<u64>, reset: bool) -> Observation {
        Observation::GroupResumed {
            at,
            member: m(1),
            part: 0,
            offset: Offset(offset.unwrap_or(0)),
            committed: offset.is_some() && !reset,
            fetch_sent_at: sent,
            reset,
        }
    }

    #[test]
    fn rising_commits_and_a_fetch_that_sees_them_pass() {
        let mut set = CheckerSet::only(&ctx(), "group-commits-monotonic");
        set.observe(&acked(10, 0, 5));
        set.observe(&acked(20, 0, 9));
        set.observe(&resumed(35, 30, Some(9), false));
        // A reset is not a commit, and commits may start over below it.
        set.observe(&resumed(40, 40, None, true));
        set.observe(&acked(50, 1, 2));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_an_acknowledged_commit_below_an_earlier_one() {
        let mut set = CheckerSet::only(&ctx(), "group-commits-monotonic");
        set.observe(&acked(10, 0, 9));
        set.observe(&acked(20, 1, 5));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn a_commit_lost_with_every_unsynced_copy_is_excused() {
        let mut set = CheckerSet::only(&ctx(), "group-commits-monotonic");
        // The offsets partition (part 1) commits a batch; its only holder crashes
        // without having synced it.
        set.observe(&Observation::Appended {
            at: 1,
            node: N1,
            part: 1,
            batch: b(0, 0, u32::MAX, 0),
        });
        set.observe(&Observation::HighWatermark {
            at: 2,
            node: N1,
            part: 1,
            hw: Offset(1),
            leader: true,
        });
        set.observe(&acked(10, 0, 9));
        set.observe(&Observation::Crashed {
            at: 20,
            node: N1,
            surviving: Vec::new(),
        });
        set.observe(&resumed(35, 30, None, false));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
        assert_eq!(set.losses().unsynced_all_crashed, 1);
    }

    #[test]
    fn flags_a_fetch_that_returns_less_than_was_acknowledged() {
        let mut set = CheckerSet::only(&ctx(), "group-commits-monotonic");
        set.observe(&acked(10, 0, 9));
        set.observe(&resumed(35, 30, Some(4), false));
        set.observe(&resumed(45, 40, None, false));
        set.finish(100);
        assert_eq!(set.violations().len(), 2, "{:?}", set.violations());
    }
}

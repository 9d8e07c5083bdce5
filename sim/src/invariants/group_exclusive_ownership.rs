//! (g1) At most one member of a group owns a partition at a time.
//!
//! Kafka's consumer groups divide the partitions so that "each partition is consumed by
//! exactly one consumer in the group" (documentation, "Consumers"), generation by
//! generation: an eager member revokes everything before it rejoins, and under KIP-429 a
//! cooperative member revokes what the new assignment leaves out before the follow-up
//! rebalance hands it to another member.
//!
//! The precise definition checked here. A member incarnation owns a partition from the
//! moment it takes an assignment that lists it (`GroupAssigned`) until the first of:
//! it revokes it (`GroupRevoked`, at the `until` the member reports), it stops (crash or
//! close), or its own view of its session ends — a member processes only while less
//! than `session.timeout.ms` has passed since it sent the last heartbeat, JoinGroup or
//! SyncGroup the coordinator accepted, and reports its partitions lost as of that moment
//! (`sim/src/consumer.rs`). Since the coordinator received that request after it was
//! sent, the coordinator cannot have expired the member before its ownership ends; a
//! zombie past its session (which Kafka does not stop) therefore owns nothing here.
//! Two incarnations of the same group owning one partition over overlapping intervals
//! — in one generation or across generations — is a violation, and so is a member
//! processing a partition outside its own ownership intervals.

use std::collections::BTreeMap;

use eddy_core::TimeMs;

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{MemberRef, Observation, Part};

/// One ownership interval, `[start, end)`; `end` is `None` while it lasts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Interval {
    pub(super) member: MemberRef,
    pub(super) start: TimeMs,
    pub(super) end: Option<TimeMs>,
}

/// Ownership intervals per (group, partition), built from the members' reports.
#[derive(Debug, Default)]
pub(super) struct Ownership {
    pub(super) intervals: BTreeMap<(u32, Part), Vec<Interval>>,
}

impl Ownership {
    pub(super) fn observe(&mut self, obs: &Observation) {
        match obs {
            Observation::GroupAssigned {
                at, member, owned, ..
            } => {
                for &part in owned {
                    let list = self.intervals.entry((member.group, part)).or_default();
                    let open = list.iter().any(|i| i.member == *member && i.end.is_none());
                    if !open {
                        list.push(Interval {
                            member: *member,
                            start: *at,
                            end: None,
                        });
                    }
                }
            }
            Observation::GroupRevoked {
                member,
                parts,
                until,
                ..
            } => {
                for part in parts {
                    self.close(*member, Some(*part), *until);
                }
            }
            Observation::GroupStopped { at, member, .. } => self.close(*member, None, *at),
            _ => {}
        }
    }

    fn close(&mut self, member: MemberRef, part: Option<Part>, at: TimeMs) {
        for ((group, p), list) in &mut self.intervals {
            if *group != member.group || part.is_some_and(|q| q != *p) {
                continue;
            }
            for i in list.iter_mut() {
                if i.member == member && i.end.is_none() {
                    i.end = Some(at.max(i.start));
                }
            }
        }
    }

    /// Whether some member owns the partition at `t`.
    pub(super) fn owned_at(&self, group: u32, part: Part, t: TimeMs) -> bool {
        self.intervals.get(&(group, part)).is_some_and(|list| {
            list.iter()
                .any(|i| i.start <= t && i.end.is_none_or(|e| t < e))
        })
    }
}

pub struct GroupExclusiveOwnership {
    ctx: CheckContext,
    ownership: Ownership,
    /// Every processing: when, by whom, which partition.
    processed: Vec<(TimeMs, MemberRef, Part, i32)>,
}

impl GroupExclusiveOwnership {
    pub fn new(ctx: CheckContext) -> GroupExclusiveOwnership {
        GroupExclusiveOwnership {
            ctx,
            ownership: Ownership::default(),
            processed: Vec::new(),
        }
    }

    fn group_name(&self, group: u32) -> &str {
        self.ctx
            .groups
            .get(group as usize)
            .map_or("?", |g| g.name.as_str())
    }
}

impl Checker for GroupExclusiveOwnership {
    fn name(&self) -> &'static str {
        "group-exclusive-ownership"
    }

    fn rule(&self) -> &'static str {
        "no two members of a group own (or process) one partition at once, revocation counted (Kafka docs: Consumers; KIP-429)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        self.ownership.observe(obs);
        if let Observation::GroupProcessed {
            at,
            member,
            part,
            generation,
            ..
        } = obs
        {
            self.processed.push((*at, *member, *part, *generation));
        }
    }

    fn finish(&mut self, end_ms: TimeMs, _model: &Model, out: &mut Vec<Violation>) {
        for (&(group, part), list) in &self.ownership.intervals {
            for (k, a) in list.iter().enumerate() {
                for b in &list[k + 1..] {
                    if a.member == b.member {
                        continue;
                    }
                    let (a_end, b_end) = (a.end.unwrap_or(end_ms), b.end.unwrap_or(end_ms));
                    if a.start < b_end && b.start < a_end {
                        out.push(Violation {
                            checker: self.name(),
                            at_ms: a.start.max(b.start),
                            message: format!(
                                "group {}: {} owned {} over [{}, {}) ms and {} over [{}, {}) ms",
                                self.group_name(group),
                                a.member,
                                self.ctx.name(part),
                                a.start,
                                a_end,
                                b.member,
                                b.start,
                                b_end
                            ),
                        });
                    }
                }
            }
        }
        for &(at, member, part, generation) in &self.processed {
            let owned = self
                .ownership
                .intervals
                .get(&(member.group, part))
                .is_some_and(|list| {
                    list.iter().any(|i| {
                        i.member == member && i.start <= at && i.end.is_none_or(|e| at < e)
                    })
                });
            if !owned {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: at,
                    message: format!(
                        "group {}: {} processed {} at {at} ms (generation {generation}) without owning it",
                        self.group_name(member.group),
                        member,
                        self.ctx.name(part)
                    ),
                });
                break;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use eddy_core::Offset;

    use crate::history::{MemberRef, Observation};
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    pub(crate) fn m(slot: u32) -> MemberRef {
        MemberRef {
            group: 0,
            slot,
            incarnation: 1,
        }
    }

    pub(crate) fn assigned(at: u64, slot: u32, generation: i32) -> Observation {
        Observation::GroupAssigned {
            at,
            member: m(slot),
            generation,
            owned: vec![0],
        }
    }

    pub(crate) fn revoked(at: u64, slot: u32, until: u64) -> Observation {
        Observation::GroupRevoked {
            at,
            member: m(slot),
            parts: vec![0],
            until,
        }
    }

    pub(crate) fn processed(at: u64, slot: u32, base: u64, last: u64) -> Observation {
        Observation::GroupProcessed {
            at,
            member: m(slot),
            part: 0,
            generation: 1,
            from: Offset(base),
            batch: b(base, last, 1, base),
        }
    }

    #[test]
    fn a_handover_after_revocation_passes() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&processed(20, 0, 0, 1));
        set.observe(&revoked(30, 0, 30));
        set.observe(&assigned(40, 1, 2));
        set.observe(&processed(50, 1, 2, 3));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_a_new_owner_before_the_old_one_revoked() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&assigned(40, 1, 2));
        set.observe(&revoked(50, 0, 50));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("owned"));
    }

    #[test]
    fn a_zombie_that_noticed_its_lost_session_late_is_judged_by_when_it_ended() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&assigned(40, 1, 2));
        // Paused past its session: it reports at 60 that its ownership ended at 35.
        set.observe(&revoked(60, 0, 35));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_processing_after_ownership_ended() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&processed(50, 0, 0, 1));
        set.observe(&revoked(60, 0, 35));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("without owning"));
    }
}

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
//!
//! One excuse: the coordinator keeps a group's generations and assignments in
//! `__consumer_offsets`, written with acks=all. When the model finds that the group's
//! offsets partition lost committed data where the configuration allowed it (every
//! in-sync copy crashed before syncing), the coordinator that loads what survived may
//! bring the group back at an older generation — a static member rejoining then gets
//! that generation's assignment while others still own their partitions. Once a member
//! of such a group takes an assignment of a generation older than one already seen,
//! overlaps that begin from then on are not counted; Kafka promises nothing more without
//! sync-before-ack.
//!
//! The same holds without any loss when the coordinator moves between a rebalance's
//! JoinGroup and the store of its assignment: the coordinator stores a generation only
//! once the leader's SyncGroup arrives, so the new coordinator loads the one before, and
//! the next rebalance hands out a generation number some members had already joined.
//! Those members report the higher number in their subscriptions, and the sticky
//! assignors (KIP-792; Java's `AbstractStickyAssignor` alike) then treat the partitions
//! of members at the older number as not owned and give them away at once, while their
//! owners revoke them only when their own assignment arrives. So when a member joins a
//! generation no higher than one it joined before, and the offsets partition had a new
//! leader in between (`GroupGenerationReused`), overlaps from then on are not counted
//! either.
//!
//! A second excuse: a zombie coordinator. A broker that resumes from a pause (or lags in
//! metadata) still leads the group's offsets partition in its own image for a moment,
//! and may accept a heartbeat as coordinator after the real coordinator, the leader of a
//! newer leader epoch, has expired the member and handed its partitions on. KRaft
//! brokers have the same window (the zombie learns of the new leader epoch only from
//! its metadata), and Kafka's consumer keeps processing until it hears otherwise. Each
//! renewal of a member's session names the coordinator that accepted it
//! (`GroupSessionRenewed`); one is a zombie's when, before the request was sent, another
//! broker already led the offsets partition in a higher leader epoch than any the
//! accepting broker had led. An overlap is excused when one side's ownership outlived,
//! at the overlap's start, every session renewal except zombie ones, and a zombie's
//! renewal carried it there.

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

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
    /// Per group: since when its offsets partition may have lost committed data.
    offsets_lost_since: BTreeMap<u32, TimeMs>,
    /// Per group: the highest generation assigned so far.
    max_generation: BTreeMap<u32, i32>,
    /// Per group: when, after such a loss, a member took an older generation.
    rolled_back_since: BTreeMap<u32, TimeMs>,
    ownership: Ownership,
    /// Every processing: when, by whom, which partition, in which generation, and
    /// whether the member held an open ownership interval of it when it was observed.
    processed: Vec<(TimeMs, MemberRef, Part, i32, bool)>,
    /// Per offsets partition: the brokers' views as leader, `(at, leader epoch, node)`.
    offsets_leaders: BTreeMap<Part, Vec<(TimeMs, u32, NodeId)>>,
    /// Every session renewal of each member: `(sent_at, until, by a zombie)`.
    renewals: BTreeMap<MemberRef, Vec<(TimeMs, TimeMs, bool)>>,
}

impl GroupExclusiveOwnership {
    pub fn new(ctx: CheckContext) -> GroupExclusiveOwnership {
        GroupExclusiveOwnership {
            ctx,
            offsets_lost_since: BTreeMap::new(),
            max_generation: BTreeMap::new(),
            rolled_back_since: BTreeMap::new(),
            ownership: Ownership::default(),
            processed: Vec::new(),
            offsets_leaders: BTreeMap::new(),
            renewals: BTreeMap::new(),
        }
    }

    /// Whether `coordinator` accepted a request sent at `sent_at` as a zombie: by then
    /// another broker led the offsets partition in a leader epoch above every one
    /// `coordinator` has led so far.
    fn accepted_by_zombie(&self, part: Part, coordinator: NodeId, sent_at: TimeMs) -> bool {
        let Some(views) = self.offsets_leaders.get(&part) else {
            return false;
        };
        let Some(own) = views
            .iter()
            .filter(|&&(_, _, n)| n == coordinator)
            .map(|&(_, e, _)| e)
            .max()
        else {
            return false;
        };
        views
            .iter()
            .any(|&(at, e, n)| at <= sent_at && n != coordinator && e > own)
    }

    /// Whether `member`'s ownership at `t` rests only on renewals that zombie coordinators
    /// accepted: one of those lasts past `t`, and no other does.
    fn only_zombies_renewed(&self, member: MemberRef, t: TimeMs) -> bool {
        let Some(renewals) = self.renewals.get(&member) else {
            return false;
        };
        let alive = |&&(sent, until, _): &&(TimeMs, TimeMs, bool)| sent <= t && t < until;
        let mut carrying = renewals.iter().filter(alive).peekable();
        carrying.peek().is_some() && carrying.all(|&(_, _, zombie)| zombie)
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

    fn observe(&mut self, obs: &Observation, model: &Model, _out: &mut Vec<Violation>) {
        self.ownership.observe(obs);
        // Only these change what the model says was lost.
        if matches!(
            obs,
            Observation::Crashed { .. }
                | Observation::HighWatermark { leader: true, .. }
                | Observation::IsrChanged { .. }
        ) {
            for (g, group) in self.ctx.groups.iter().enumerate() {
                let lost = group
                    .offsets_part
                    .is_some_and(|p| model.had_allowed_loss(p));
                if lost {
                    self.offsets_lost_since.entry(g as u32).or_insert(obs.at());
                }
            }
        }
        if let Observation::GroupAssigned {
            at,
            member,
            generation,
            ..
        } = obs
        {
            let max = self
                .max_generation
                .entry(member.group)
                .or_insert(*generation);
            if *generation < *max && self.offsets_lost_since.contains_key(&member.group) {
                self.rolled_back_since.entry(member.group).or_insert(*at);
            }
            *max = (*max).max(*generation);
        }
        if let Observation::PartitionView {
            at,
            node,
            part,
            leader_epoch,
            leader: true,
            ..
        } = obs
        {
            if self
                .ctx
                .groups
                .iter()
                .any(|g| g.offsets_part == Some(*part))
            {
                self.offsets_leaders
                    .entry(*part)
                    .or_default()
                    .push((*at, *leader_epoch, *node));
            }
        }
        if let Observation::GroupGenerationReused {
            at,
            member,
            previous_at,
            ..
        } = obs
        {
            let moved = self
                .ctx
                .groups
                .get(member.group as usize)
                .and_then(|g| g.offsets_part)
                .and_then(|part| self.offsets_leaders.get(&part))
                .is_some_and(|views| {
                    let epoch_then = views
                        .iter()
                        .filter(|&&(t, _, _)| t <= *previous_at)
                        .map(|&(_, e, _)| e)
                        .max();
                    views
                        .iter()
                        .any(|&(t, e, _)| t <= *at && epoch_then.is_none_or(|then| e > then))
                });
            if moved {
                self.rolled_back_since.entry(member.group).or_insert(*at);
            }
        }
        if let Observation::GroupSessionRenewed {
            member,
            coordinator,
            sent_at,
            until,
            ..
        } = obs
        {
            let zombie = self
                .ctx
                .groups
                .get(member.group as usize)
                .and_then(|g| g.offsets_part)
                .is_some_and(|part| self.accepted_by_zombie(part, *coordinator, *sent_at));
            self.renewals
                .entry(*member)
                .or_default()
                .push((*sent_at, *until, zombie));
        }
        if let Observation::GroupProcessed {
            at,
            member,
            part,
            generation,
            ..
        } = obs
        {
            let open = self
                .ownership
                .intervals
                .get(&(member.group, *part))
                .is_some_and(|list| {
                    list.iter()
                        .any(|i| i.member == *member && i.start <= *at && i.end.is_none())
                });
            self.processed
                .push((*at, *member, *part, *generation, open));
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
                    let start = a.start.max(b.start);
                    let excused = self
                        .rolled_back_since
                        .get(&group)
                        .is_some_and(|&since| since <= start)
                        || self.only_zombies_renewed(a.member, start)
                        || self.only_zombies_renewed(b.member, start);
                    if a.start < b_end && b.start < a_end && !excused {
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
        for &(at, member, part, generation, open_then) in &self.processed {
            let owned = self
                .ownership
                .intervals
                .get(&(member.group, part))
                .is_some_and(|list| {
                    // Processing in the very millisecond its ownership ends, before it
                    // learnt so (observed while the interval was open), counts as owned.
                    list.iter().any(|i| {
                        i.member == member
                            && i.start <= at
                            && i.end.is_none_or(|e| at < e || (at == e && open_then))
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
    fn an_overlap_after_the_offsets_partition_lost_unsynced_data_is_excused() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 2));
        // The group's offsets partition (part 1) commits a batch; its only holder
        // crashes before syncing it.
        set.observe(&Observation::Appended {
            at: 11,
            node: N1,
            part: 1,
            batch: b(0, 0, u32::MAX, 0),
        });
        set.observe(&Observation::HighWatermark {
            at: 12,
            node: N1,
            part: 1,
            hw: Offset(1),
            leader: true,
        });
        set.observe(&Observation::Crashed {
            at: 20,
            node: N1,
            surviving: Vec::new(),
        });
        // The coordinator came back at generation 1.
        set.observe(&assigned(40, 1, 1));
        set.observe(&revoked(50, 0, 50));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn an_overlap_after_an_offsets_loss_without_an_older_generation_still_fails() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 2));
        set.observe(&Observation::Appended {
            at: 11,
            node: N1,
            part: 1,
            batch: b(0, 0, u32::MAX, 0),
        });
        set.observe(&Observation::HighWatermark {
            at: 12,
            node: N1,
            part: 1,
            hw: Offset(1),
            leader: true,
        });
        set.observe(&Observation::Crashed {
            at: 20,
            node: N1,
            surviving: Vec::new(),
        });
        set.observe(&assigned(40, 1, 3));
        set.observe(&revoked(50, 0, 50));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    fn leads_offsets(at: u64, node: eddy_core::NodeId, leader_epoch: u32) -> Observation {
        Observation::PartitionView {
            at,
            node,
            part: 1,
            leader_epoch,
            partition_epoch: leader_epoch,
            leader: true,
        }
    }

    fn renewed(slot: u32, coordinator: eddy_core::NodeId, sent_at: u64) -> Observation {
        Observation::GroupSessionRenewed {
            at: sent_at + 1,
            member: m(slot),
            coordinator,
            sent_at,
            until: sent_at + 30,
        }
    }

    /// Member 0 joins through N1, the coordinator of leader epoch 1. N2 takes the
    /// offsets partition over in epoch 2 at 20; `heartbeat_by` accepts member 0's
    /// heartbeat sent at 30, which carries its session to 60. N2 hands the partition to
    /// member 1 at 50; member 0 reports its ownership ended at 60.
    fn heartbeat_accepted_by(heartbeat_by: eddy_core::NodeId) -> Vec<Observation> {
        vec![
            leads_offsets(1, N1, 1),
            renewed(0, N1, 5),
            assigned(10, 0, 1),
            leads_offsets(20, N2, 2),
            renewed(0, heartbeat_by, 30),
            renewed(1, N2, 45),
            assigned(50, 1, 2),
            revoked(70, 0, 60),
        ]
    }

    #[test]
    fn an_overlap_carried_by_a_zombie_coordinators_heartbeat_is_excused() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        for o in heartbeat_accepted_by(N1) {
            set.observe(&o);
        }
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_an_overlap_the_real_coordinator_caused() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        for o in heartbeat_accepted_by(N2) {
            set.observe(&o);
        }
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("owned"));
    }

    fn generation_reused(at: u64, previous_at: u64) -> Observation {
        Observation::GroupGenerationReused {
            at,
            member: m(0),
            previous: 4,
            previous_at,
            joined: 4,
        }
    }

    /// Member 0 joined generation 4 at 5 under N1 (leader epoch 1); `moved_at` N2 takes
    /// the offsets partition over in epoch 2; at 30 member 0 joins generation 4 again.
    /// Member 1 owns the partition from 10 and is given it at 40 while member 2 gets it
    /// too (its claim was dropped as of an older generation).
    fn reused_generation(moved_at: u64) -> Vec<Observation> {
        vec![
            leads_offsets(1, N1, 1),
            Observation::GroupAssigned {
                at: 10,
                member: m(1),
                generation: 3,
                owned: vec![0],
            },
            leads_offsets(moved_at, N2, 2),
            generation_reused(30, 5),
            Observation::GroupAssigned {
                at: 40,
                member: m(2),
                generation: 4,
                owned: vec![0],
            },
            revoked(45, 1, 45),
        ]
    }

    #[test]
    fn an_overlap_after_a_generation_came_back_with_a_new_coordinator_is_excused() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        for o in reused_generation(20) {
            set.observe(&o);
        }
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn a_reused_generation_without_a_new_coordinator_excuses_nothing() {
        // The new leader epoch came before the first join: the coordinator did not move
        // in between, so reusing the generation is the coordinator's fault.
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        for o in reused_generation(3) {
            set.observe(&o);
        }
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
    }

    #[test]
    fn processing_in_the_millisecond_before_learning_of_a_revocation_passes() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&processed(30, 0, 0, 1));
        set.observe(&revoked(30, 0, 30));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_processing_in_the_millisecond_after_a_revocation() {
        let mut set = CheckerSet::only(&ctx(), "group-exclusive-ownership");
        set.observe(&assigned(10, 0, 1));
        set.observe(&revoked(30, 0, 30));
        set.observe(&processed(30, 0, 0, 1));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("without owning"));
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

//! (g3) A member that resumes from a committed offset misses nothing after it.
//!
//! Kafka's at-least-once consumption (documentation, "Message Delivery Semantics": a
//! consumer that commits after processing re-reads, on failure, from its last committed
//! position): a member that takes a partition over starts at the committed offset
//! OffsetFetch returns (or at the log start when none was committed), and then
//! processes every offset from there on, in order, without a gap. The offset it resumes
//! from must be one some member of the group asked to commit for that partition — the
//! position after records that member processed — so nothing between a predecessor's
//! progress and the resume point is skipped. Processing the same records twice is
//! allowed (at least once); skipping is not. An explicit reset (`auto.offset.reset`)
//! restarts the count at the reset offset.

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::{Offset, TimeMs};

use super::{CheckContext, Checker, Model, Violation};
use crate::history::{MemberRef, Observation, Part};

pub struct GroupNoGaps {
    ctx: CheckContext,
    /// Offsets members asked to commit, per (group, partition).
    commits_sent: BTreeMap<(u32, Part), BTreeSet<Offset>>,
    /// The next offset each member incarnation must process, per partition it resumed.
    positions: BTreeMap<(MemberRef, Part), Offset>,
}

impl GroupNoGaps {
    pub fn new(ctx: CheckContext) -> GroupNoGaps {
        GroupNoGaps {
            ctx,
            commits_sent: BTreeMap::new(),
            positions: BTreeMap::new(),
        }
    }

    fn group_name(&self, group: u32) -> &str {
        self.ctx
            .groups
            .get(group as usize)
            .map_or("?", |g| g.name.as_str())
    }
}

impl Checker for GroupNoGaps {
    fn name(&self) -> &'static str {
        "group-no-gaps-after-resume"
    }

    fn rule(&self) -> &'static str {
        "a member resuming from a committed offset processes every record after it (Kafka docs: Message Delivery Semantics, at least once)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::GroupCommitSent {
                member,
                part,
                offset,
                ..
            } => {
                self.commits_sent
                    .entry((member.group, *part))
                    .or_default()
                    .insert(*offset);
            }
            Observation::GroupResumed {
                at,
                member,
                part,
                offset,
                committed,
                reset,
                ..
            } => {
                let known = self
                    .commits_sent
                    .get(&(member.group, *part))
                    .is_some_and(|s| s.contains(offset));
                if *committed && !*reset && !known {
                    let message = format!(
                        "group {}: {member} resumed {} at offset {offset} at {at} ms, which no member ever committed",
                        self.group_name(member.group),
                        self.ctx.name(*part)
                    );
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message,
                    });
                }
                self.positions.insert((*member, *part), *offset);
            }
            Observation::GroupProcessed {
                at,
                member,
                part,
                from,
                batch,
                ..
            } => {
                let name = self.ctx.name(*part).to_string();
                let group = self.group_name(member.group).to_string();
                let Some(position) = self.positions.get_mut(&(*member, *part)) else {
                    out.push(Violation {
                        checker: "group-no-gaps-after-resume",
                        at_ms: *at,
                        message: format!(
                            "group {group}: {member} processed {batch} of {name} at {at} ms without having resumed the partition"
                        ),
                    });
                    return;
                };
                if batch.base_offset > *position || *from > *position {
                    out.push(Violation {
                        checker: "group-no-gaps-after-resume",
                        at_ms: *at,
                        message: format!(
                            "group {group}: {member} processed {batch} of {name} at {at} ms from offset {from}, skipping offsets from {position}"
                        ),
                    });
                }
                *position = (*position).max(batch.next_offset());
            }
            Observation::GroupRevoked { member, parts, .. } => {
                for part in parts {
                    self.positions.remove(&(*member, *part));
                }
            }
            Observation::GroupStopped { member, .. } => {
                self.positions.retain(|(m, _), _| m != member);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use eddy_core::Offset;

    use super::super::group_exclusive_ownership::tests::{m, processed};
    use crate::history::Observation;
    use crate::invariants::test_support::*;
    use crate::invariants::CheckerSet;

    fn commit_sent(at: u64, offset: u64) -> Observation {
        Observation::GroupCommitSent {
            at,
            member: m(0),
            part: 0,
            offset: Offset(offset),
            generation: 1,
        }
    }

    fn resumed(at: u64, slot: u32, offset: u64) -> Observation {
        Observation::GroupResumed {
            at,
            member: m(slot),
            part: 0,
            offset: Offset(offset),
            committed: true,
            fetch_sent_at: at,
            reset: false,
        }
    }

    #[test]
    fn a_member_that_reads_on_from_its_committed_offset_passes() {
        let mut set = CheckerSet::only(&ctx(), "group-no-gaps-after-resume");
        set.observe(&commit_sent(5, 2));
        set.observe(&resumed(10, 1, 2));
        set.observe(&processed(20, 1, 0, 3)); // a batch holding offset 2
        set.observe(&processed(30, 1, 4, 4));
        set.finish(100);
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    #[test]
    fn flags_a_gap_after_resuming() {
        let mut set = CheckerSet::only(&ctx(), "group-no-gaps-after-resume");
        set.observe(&commit_sent(5, 2));
        set.observe(&resumed(10, 1, 2));
        set.observe(&processed(20, 1, 4, 5));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("skipping"));
    }

    #[test]
    fn flags_a_resume_from_an_offset_never_committed() {
        let mut set = CheckerSet::only(&ctx(), "group-no-gaps-after-resume");
        set.observe(&commit_sent(5, 2));
        set.observe(&resumed(10, 1, 7));
        set.finish(100);
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0]
            .message
            .contains("no member ever committed"));
    }
}

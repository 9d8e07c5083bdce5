//! The checkers' model of the cluster, rebuilt from observations alone: every broker's
//! log as a list of batch identities, which brokers are up, and the committed log of
//! each partition (what leaders declared below their high watermark).
//!
//! The model judges nothing itself. It records facts the checkers judge: where a log was
//! not dense, where a leader's or follower's log disagreed with the committed log, where
//! a committed batch was truncated, and from which offset committed data may have been
//! lost because no broker held it any more (every holder crashed before syncing it).

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::{NodeId, Offset};

use crate::history::{BatchId, BatchRef, Observation, Part};

#[derive(Clone, Debug, Default)]
struct NodeLog {
    start: Offset,
    batches: Vec<BatchRef>,
}

impl NodeLog {
    fn end(&self) -> Offset {
        self.batches
            .last()
            .map_or(self.start, BatchRef::next_offset)
    }

    fn find(&self, base_offset: Offset) -> Option<&BatchRef> {
        let i = self
            .batches
            .partition_point(|b| b.last_offset < base_offset);
        self.batches.get(i).filter(|b| b.base_offset == base_offset)
    }
}

/// What kind of disagreement the model saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// An append did not start at the log end offset (offsets not dense).
    NotDense,
    /// A leader declared a HW over data that differs from what was committed before.
    LeaderRewrote,
    /// A follower's log below its HW differs from the committed log.
    FollowerDiverged,
    /// A broker truncated a committed batch.
    TruncatedCommitted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub node: NodeId,
    pub part: Part,
    pub offset: Offset,
    /// What the committed log (or, for NotDense, the broker's log end) says.
    pub expected: Option<BatchRef>,
    pub found: Option<BatchRef>,
    /// Whether the offset lies where committed data may have been lost: every holder
    /// crashed before syncing it.
    pub in_lost_region: bool,
    /// For `TruncatedCommitted`: the broker was outside the partition's ISR and cut only
    /// above the high watermark it last reported. KIP-101 guarantees a replica never
    /// truncates below its own high watermark; above it, a replica outside the ISR holds
    /// no copy Kafka counted, so following a stale leader may cut it (the ISR members
    /// keep the batch).
    pub above_own_hw_outside_isr: bool,
}

#[derive(Debug)]
pub struct Model {
    /// With `log.flush.interval.messages = 1`, what a crashed broker's disk kept still
    /// counts as a copy; otherwise only live brokers' logs do.
    sync_before_ack: bool,
    logs: BTreeMap<(NodeId, Part), NodeLog>,
    down: BTreeSet<NodeId>,
    committed: BTreeMap<Part, Vec<BatchRef>>,
    /// Per partition: committed data at or above this offset may be gone.
    lost_from: BTreeMap<Part, Offset>,
    /// How far each broker's log is known to agree with the committed log.
    verified: BTreeMap<(NodeId, Part), Offset>,
    ever_committed: BTreeSet<(Part, Offset, BatchId)>,
    /// Each partition's ISR as the controller last set it: Kafka's promise counts copies
    /// on in-sync replicas only.
    isr: BTreeMap<Part, Vec<NodeId>>,
    /// Offset ranges whose committed data was lost and written anew: a consumer that had
    /// read past them may never see the new data there (KIP-320 detects only a log that
    /// ends below its position).
    rewritten: BTreeMap<Part, Vec<(Offset, Offset)>>,
    /// The high watermark each broker last reported for each partition, as leader or
    /// follower.
    own_hw: BTreeMap<(NodeId, Part), Offset>,
    /// Copies that brokers lost when they crashed.
    lost_in_crash: BTreeSet<(Part, Offset, BatchId, NodeId)>,
    /// Committed batches that were lost in a region where loss was allowed.
    lost: BTreeSet<(Part, BatchId)>,
    /// Facts from the last observation applied.
    pub conflicts: Vec<Conflict>,
}

impl Model {
    pub fn new(sync_before_ack: bool) -> Model {
        Model {
            sync_before_ack,
            logs: BTreeMap::new(),
            down: BTreeSet::new(),
            committed: BTreeMap::new(),
            lost_from: BTreeMap::new(),
            verified: BTreeMap::new(),
            ever_committed: BTreeSet::new(),
            lost: BTreeSet::new(),
            lost_in_crash: BTreeSet::new(),
            isr: BTreeMap::new(),
            own_hw: BTreeMap::new(),
            rewritten: BTreeMap::new(),
            conflicts: Vec::new(),
        }
    }

    pub fn sync_before_ack(&self) -> bool {
        self.sync_before_ack
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        !self.down.contains(&node)
    }

    /// The committed log of a partition, in offset order.
    pub fn committed(&self, part: Part) -> &[BatchRef] {
        self.committed.get(&part).map_or(&[], Vec::as_slice)
    }

    pub fn committed_end(&self, part: Part) -> Offset {
        self.committed(part)
            .last()
            .map_or(Offset::ZERO, BatchRef::next_offset)
    }

    /// The committed batch at `base_offset`, if any.
    pub fn committed_at(&self, part: Part, base_offset: Offset) -> Option<&BatchRef> {
        let c = self.committed(part);
        let i = c.partition_point(|b| b.last_offset < base_offset);
        c.get(i).filter(|b| b.base_offset == base_offset)
    }

    pub fn was_committed_at(&self, part: Part, batch: &BatchRef) -> bool {
        self.ever_committed
            .contains(&(part, batch.base_offset, batch.id))
    }

    /// Whether `id` was ever committed at `base_offset` (in any epoch). A batch that was
    /// retried may sit at several offsets; what a producer was told names one.
    pub fn was_committed_at_offset(&self, part: Part, base_offset: Offset, id: BatchId) -> bool {
        self.ever_committed.contains(&(part, base_offset, id))
    }

    /// Whether committed data at `offset` was lost and rewritten.
    pub fn was_rewritten(&self, part: Part, offset: Offset) -> bool {
        self.rewritten
            .get(&part)
            .is_some_and(|r| r.iter().any(|&(from, to)| offset >= from && offset < to))
    }

    /// Whether committed data of `part` may have been lost, or was lost, where the
    /// configuration allowed it (every in-sync copy crashed before it was synced).
    pub fn had_allowed_loss(&self, part: Part) -> bool {
        self.lost_from.contains_key(&part)
            || self.rewritten.contains_key(&part)
            || self
                .lost
                .range(
                    (
                        part,
                        BatchId {
                            producer: 0,
                            number: 0,
                        },
                    )..,
                )
                .next()
                .is_some_and(|&(p, _)| p == part)
    }

    /// Whether a committed batch was lost where the model allowed loss.
    pub fn lost_with_all_copies(&self, part: Part, id: BatchId) -> bool {
        self.lost.contains(&(part, id))
    }

    /// Whether the committed batch `id` at `base_offset` went with every copy where the
    /// model allowed the loss: lost and since overwritten ([`Model::lost_with_all_copies`]),
    /// or still in a lost region (every in-sync copy crashed before syncing and none that
    /// holds it has come back to lead it).
    pub fn lost_with_all_copies_or_in_doubt(
        &self,
        part: Part,
        base_offset: Offset,
        id: BatchId,
    ) -> bool {
        self.lost_with_all_copies(part, id) || self.in_lost_region(part, base_offset)
    }

    /// The brokers that took a copy of `id` at `base_offset` and did not truncate it:
    /// those whose log holds it now, up or down, and those that lost it in a crash. (A
    /// copy a follower reported and then lost in a crash still counted when the leader
    /// acknowledged; Kafka promises nothing more.)
    pub fn copies(&self, part: Part, base_offset: Offset, id: BatchId) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .logs
            .iter()
            .filter(|((_, p), log)| *p == part && log.find(base_offset).is_some_and(|b| b.id == id))
            .map(|((node, _), _)| *node)
            .collect();
        let lo = (part, base_offset, id, NodeId(0));
        let hi = (part, base_offset, id, NodeId(u32::MAX));
        nodes.extend(self.lost_in_crash.range(lo..=hi).map(|&(_, _, _, n)| n));
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The batches a broker's log holds for a partition.
    pub fn log_of(&self, node: NodeId, part: Part) -> &[BatchRef] {
        self.logs
            .get(&(node, part))
            .map_or(&[], |l| l.batches.as_slice())
    }

    /// Whether committed data at `offset` may be gone: every in-sync copy crashed
    /// before syncing it, and no leader has confirmed it (or written over it) since.
    pub fn may_be_lost(&self, part: Part, offset: Offset) -> bool {
        self.in_lost_region(part, offset)
    }

    fn in_lost_region(&self, part: Part, offset: Offset) -> bool {
        self.lost_from
            .get(&part)
            .is_some_and(|&from| offset >= from)
    }

    pub fn apply(&mut self, obs: &Observation) {
        self.conflicts.clear();
        match obs {
            Observation::Appended {
                node, part, batch, ..
            } => {
                let log = self.logs.entry((*node, *part)).or_default();
                if batch.base_offset != log.end() || batch.last_offset < batch.base_offset {
                    let expected = log.batches.last().copied();
                    self.conflicts.push(Conflict {
                        kind: ConflictKind::NotDense,
                        node: *node,
                        part: *part,
                        offset: batch.base_offset,
                        expected,
                        found: Some(*batch),
                        in_lost_region: false,
                        above_own_hw_outside_isr: false,
                    });
                }
                log.batches.push(*batch);
            }
            Observation::Truncated {
                node, part, offset, ..
            } => {
                let log = self.logs.entry((*node, *part)).or_default();
                let keep = log.batches.partition_point(|b| b.last_offset < *offset);
                let removed: Vec<BatchRef> = log.batches.drain(keep..).collect();
                let end = log.end();
                self.note_truncated_committed(*node, *part, &removed);
                self.lower_verified(*node, *part, end);
            }
            Observation::TruncatedFully {
                node, part, offset, ..
            } => {
                let log = self.logs.entry((*node, *part)).or_default();
                let removed = std::mem::take(&mut log.batches);
                log.start = *offset;
                self.note_truncated_committed(*node, *part, &removed);
                self.lower_verified(*node, *part, Offset::ZERO);
            }
            Observation::Crashed {
                node, surviving, ..
            } => {
                self.down.insert(*node);
                let parts: Vec<Part> = self
                    .logs
                    .keys()
                    .filter(|(n, _)| n == node)
                    .map(|&(_, p)| p)
                    .collect();
                for part in parts {
                    let log = self.logs.get_mut(&(*node, part)).expect("listed above");
                    let kept = surviving
                        .iter()
                        .find(|(p, _)| *p == part)
                        .map_or(&[][..], |(_, batches)| batches.as_slice());
                    for b in log.batches.drain(..) {
                        let i = kept.partition_point(|k| k.last_offset < b.base_offset);
                        if kept.get(i) != Some(&b) {
                            self.lost_in_crash
                                .insert((part, b.base_offset, b.id, *node));
                        }
                    }
                    log.start = Offset::ZERO;
                }
                for (part, batches) in surviving {
                    let log = self.logs.entry((*node, *part)).or_default();
                    log.start = batches.first().map_or(Offset::ZERO, |b| b.base_offset);
                    log.batches = batches.clone();
                }
                self.verified.retain(|(n, _), _| n != node);
                self.mark_lost_regions();
            }
            Observation::Restarted { node, .. } => {
                self.down.remove(node);
            }
            Observation::HighWatermark {
                node,
                part,
                hw,
                leader,
                ..
            } => {
                self.own_hw.insert((*node, *part), *hw);
                if *leader {
                    self.leader_high_watermark(*node, *part, *hw);
                } else {
                    self.follower_high_watermark(*node, *part, *hw);
                }
            }
            Observation::IsrChanged { part, isr, .. } => {
                self.isr.insert(*part, isr.clone());
                // The controller can drop the last live copy from the ISR (fencing an
                // isolated broker while the remaining member has crashed but is not yet
                // fenced): Kafka's promise is then void too (KIP-966 addresses it).
                self.mark_lost_regions();
            }
            Observation::Sent { .. }
            | Observation::Failed { .. }
            | Observation::AckSent { .. }
            | Observation::Acked { .. }
            | Observation::Read { .. }
            | Observation::Healed { .. }
            | Observation::RaftLeader { .. }
            | Observation::RaftApplied { .. }
            | Observation::RaftSnapshotApplied { .. }
            | Observation::ControllerActive { .. }
            | Observation::PartitionView { .. }
            | Observation::BrokerMetadata { .. }
            | Observation::BrokerUnfenced { .. }
            | Observation::Admin { .. }
            | Observation::TopicsAtEnd { .. }
            | Observation::FencedLeadersAtEnd { .. }
            | Observation::GroupJoining { .. }
            | Observation::GroupAssigned { .. }
            | Observation::GroupRevoked { .. }
            | Observation::GroupSessionRenewed { .. }
            | Observation::GroupGenerationReused { .. }
            | Observation::GroupStopped { .. }
            | Observation::GroupResumed { .. }
            | Observation::GroupProcessed { .. }
            | Observation::GroupCommitSent { .. }
            | Observation::GroupCommitAcked { .. } => {}
        }
    }

    fn lower_verified(&mut self, node: NodeId, part: Part, to: Offset) {
        if let Some(v) = self.verified.get_mut(&(node, part)) {
            *v = (*v).min(to);
        }
    }

    fn note_truncated_committed(&mut self, node: NodeId, part: Part, removed: &[BatchRef]) {
        let committed_end = self.committed_end(part);
        if let Some(b) = removed.iter().find(|b| {
            b.base_offset < committed_end && self.committed_at(part, b.base_offset) == Some(*b)
        }) {
            let own_hw = self.own_hw.get(&(node, part)).copied();
            let in_isr = self.isr.get(&part).is_none_or(|isr| isr.contains(&node));
            self.conflicts.push(Conflict {
                kind: ConflictKind::TruncatedCommitted,
                node,
                part,
                offset: b.base_offset,
                expected: Some(*b),
                found: None,
                in_lost_region: self.in_lost_region(part, b.base_offset),
                above_own_hw_outside_isr: !in_isr && own_hw.is_none_or(|hw| b.base_offset >= hw),
            });
        }
    }

    /// Compares a broker's log with the committed log over [verified, up_to). Returns the
    /// first committed batch that differs, with what the broker has there.
    fn first_difference(
        &self,
        node: NodeId,
        part: Part,
        up_to: Offset,
    ) -> Option<(BatchRef, Option<BatchRef>)> {
        let from = self
            .verified
            .get(&(node, part))
            .copied()
            .unwrap_or(Offset::ZERO);
        let committed = self.committed(part);
        let log = self.logs.get(&(node, part));
        let start = committed.partition_point(|b| b.last_offset < from);
        for c in &committed[start..] {
            if c.base_offset >= up_to {
                break;
            }
            let found = log.and_then(|l| l.find(c.base_offset)).copied();
            if found != Some(*c) {
                return Some((*c, found));
            }
        }
        None
    }

    fn leader_high_watermark(&mut self, node: NodeId, part: Part, hw: Offset) {
        let committed_end = self.committed_end(part);
        let check_to = hw.min(committed_end);
        if let Some((expected, found)) = self.first_difference(node, part, check_to) {
            let in_lost_region = self.in_lost_region(part, expected.base_offset);
            self.conflicts.push(Conflict {
                kind: ConflictKind::LeaderRewrote,
                node,
                part,
                offset: expected.base_offset,
                expected: Some(expected),
                found,
                in_lost_region,
                above_own_hw_outside_isr: false,
            });
            // The leader's word stands from here on: drop the committed suffix it
            // replaced, and remember what was lost.
            let old_end = self.committed_end(part);
            if in_lost_region {
                self.rewritten
                    .entry(part)
                    .or_default()
                    .push((expected.base_offset, old_end));
            }
            let committed = self.committed.entry(part).or_default();
            let cut = committed.partition_point(|b| b.base_offset < expected.base_offset);
            for b in committed.drain(cut..) {
                if in_lost_region {
                    self.lost.insert((part, b.id));
                }
            }
            self.lost_from.remove(&part);
        } else if hw >= committed_end && self.isr.get(&part).is_none_or(|isr| isr.contains(&node)) {
            // Everything committed is back on a leader in the ISR: nothing is in doubt
            // any more. (A stale leader outside the ISR that still holds it does not
            // count: the controller will not elect it, and Kafka promises ISR copies
            // only — found by chaos seed 876, where the last ISR member came back
            // without the data and a former leader outside the ISR truncated to it.)
            self.lost_from.remove(&part);
        }
        // Extend the committed log with the leader's batches wholly below its HW.
        let mut end = self.committed_end(part);
        let new: Vec<BatchRef> = match self.logs.get(&(node, part)) {
            Some(log) => {
                let i = log.batches.partition_point(|b| b.last_offset < end);
                log.batches[i..]
                    .iter()
                    .take_while(|b| b.last_offset < hw)
                    .copied()
                    .collect()
            }
            None => Vec::new(),
        };
        let committed = self.committed.entry(part).or_default();
        for b in new {
            if b.base_offset != end {
                break;
            }
            end = b.next_offset();
            committed.push(b);
            self.ever_committed.insert((part, b.base_offset, b.id));
        }
        let verified_to = hw.min(self.committed_end(part));
        self.verified.insert((node, part), verified_to);
    }

    fn follower_high_watermark(&mut self, node: NodeId, part: Part, hw: Offset) {
        let check_to = hw.min(self.committed_end(part));
        match self.first_difference(node, part, check_to) {
            Some((expected, found)) => {
                let in_lost_region = self.in_lost_region(part, expected.base_offset);
                self.conflicts.push(Conflict {
                    kind: ConflictKind::FollowerDiverged,
                    node,
                    part,
                    offset: expected.base_offset,
                    expected: Some(expected),
                    found,
                    in_lost_region,
                    above_own_hw_outside_isr: false,
                });
            }
            None => {
                self.verified.insert((node, part), check_to);
            }
        }
    }

    /// After a crash: for each partition, how far does some remaining copy on an in-sync
    /// replica still agree with the committed log? Beyond that, committed data may have
    /// been lost: Kafka keeps committed records "as long as there is at least one in
    /// sync replica alive" (documentation, "Replication"), and a replica that crashed
    /// before syncing is not alive for what it lost.
    fn mark_lost_regions(&mut self) {
        let parts: Vec<Part> = self.committed.keys().copied().collect();
        for part in parts {
            let committed = self.committed(part);
            let committed_end = self.committed_end(part);
            let mut safe_end = Offset::ZERO;
            for ((node, p), log) in &self.logs {
                let in_isr = self.isr.get(&part).is_none_or(|isr| isr.contains(node));
                if *p != part || !in_isr || !(self.is_up(*node) || self.sync_before_ack) {
                    continue;
                }
                let mut end = Offset::ZERO;
                for c in committed {
                    if log.find(c.base_offset) != Some(c) {
                        break;
                    }
                    end = c.next_offset();
                }
                safe_end = safe_end.max(end);
            }
            if safe_end < committed_end {
                let from = self.lost_from.entry(part).or_insert(safe_end);
                *from = (*from).min(safe_end);
            }
        }
    }
}

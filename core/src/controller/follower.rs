//! A broker that is not a controller voter follows the metadata log as a Raft observer
//! (KIP-595, KIP-631): it replicates the committed log (or installs the latest snapshot)
//! from the quorum leader, never votes or campaigns, and applies every committed entry
//! to its own [`MetadataImage`]. Its broker derives the partitions it hosts from that
//! image, as a voter's broker does from its voter's committed image.
//!
//! Like [`Voter`](super::voter::Voter) it is sans-IO and speaks the same
//! [`VoterOut`]s — only `Raft`, `Persist`, `Applied` and `SnapshotApplied`: an observer
//! has no controller to answer brokers with. The shell writes its `Persist` effects to the
//! broker's metadata-log disk (as a voter's) and reports each completed write back with
//! [`MetadataFollower::persisted`].

use std::collections::BTreeMap;

use rand_core::RngCore;

use super::committed::CommittedImage;
use super::voter::{Persisted, VoterOut};
use super::MetadataImage;
use crate::quorum::{DurableState, Effect, LogId, LogIndex, Membership, RaftConfig, RaftNode};
use crate::types::{NodeId, TimeMs};

pub struct MetadataFollower {
    raft: RaftNode,
    committed: CommittedImage,
    out: Vec<VoterOut>,
}

impl MetadataFollower {
    /// Observer `id` of the quorum of `voters` (it must not be one of them), starting
    /// from what its disk kept.
    pub fn new(
        id: NodeId,
        voters: &[NodeId],
        raft_config: RaftConfig,
        now_ms: TimeMs,
        durable: DurableState,
    ) -> MetadataFollower {
        assert!(
            !voters.contains(&id),
            "{id} is a voter: its voter keeps its committed image"
        );
        let membership = Membership::new(voters.iter().copied(), [id]);
        let raft = RaftNode::new(id, membership, raft_config, now_ms, durable);
        let mut follower = MetadataFollower {
            raft,
            committed: CommittedImage::default(),
            out: Vec::new(),
        };
        follower.pump(now_ms);
        follower
    }

    /// See [`RaftNode::announce_as_observer`]: on when the voters may not know this
    /// observer (they are not configured with their observers).
    pub fn announce_as_observer(&mut self, on: bool) {
        self.raft.announce_as_observer(on);
    }

    pub fn take_out(&mut self) -> Vec<VoterOut> {
        std::mem::take(&mut self.out)
    }

    /// The committed image: every record up to [`MetadataFollower::applied`].
    pub fn image(&self) -> &MetadataImage {
        self.committed.image()
    }

    /// The last entry applied to the image.
    pub fn applied(&self) -> LogId {
        self.committed.applied()
    }

    /// See [`Voter::registered_at`](super::voter::Voter::registered_at).
    pub fn registered_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        self.committed.registered_at()
    }

    /// See [`Voter::unfenced_at`](super::voter::Voter::unfenced_at).
    pub fn unfenced_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        self.committed.unfenced_at()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader()
    }

    /// Whether the image has caught up with the metadata log: this observer has
    /// applied everything a leader announced as committed since it started. A broker publishes
    /// its image to its partitions only once it has caught up after a start (KRaft's
    /// initial catch-up): an image replayed from the observer's own disk may be far
    /// behind.
    pub fn caught_up(&self) -> bool {
        self.raft
            .known_commit()
            .is_some_and(|commit| self.committed.applied().index >= commit)
    }

    pub fn tick(&mut self, now_ms: TimeMs, rng: &mut impl RngCore) {
        self.raft.tick(now_ms, rng);
        self.pump(now_ms);
    }

    pub fn receive(&mut self, now_ms: TimeMs, from: NodeId, msg: crate::quorum::RaftMessage) {
        self.raft.receive(now_ms, from, msg);
        self.pump(now_ms);
    }

    pub fn persisted(&mut self, now_ms: TimeMs, done: Persisted) {
        match done {
            Persisted::HardState(hs) => self.raft.hard_state_persisted(now_ms, hs),
            Persisted::Entries(last) => self.raft.entries_persisted(now_ms, last),
            Persisted::Snapshot(last) => self.raft.snapshot_persisted(now_ms, last),
        }
        self.pump(now_ms);
    }

    fn pump(&mut self, now_ms: TimeMs) {
        loop {
            let effects = self.raft.drain_effects();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                match effect {
                    Effect::Send { to, msg } => self.out.push(VoterOut::Raft { to, msg }),
                    Effect::PersistHardState(_)
                    | Effect::PersistEntries { .. }
                    | Effect::PersistSnapshot(_) => self.out.push(VoterOut::Persist(effect)),
                    Effect::Apply(entries) => {
                        for entry in &entries {
                            self.committed.apply(entry, &mut self.out);
                        }
                    }
                    Effect::ApplySnapshot(snapshot) => {
                        let applied = self.committed.applied();
                        assert!(
                            snapshot.last.index >= applied.index,
                            "an observer's image went back: applied {applied:?}, snapshot up to {:?}",
                            snapshot.last
                        );
                        self.committed.install(&snapshot, &mut self.out);
                    }
                    Effect::LeaderChanged { .. } => {}
                }
            }
        }
        self.committed
            .maybe_snapshot(&mut self.raft, now_ms, &mut self.out);
    }
}

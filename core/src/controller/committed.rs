//! A node's *committed* metadata image, kept as `core/src/controller/mod.rs` step 1 says:
//! each committed entry's records applied in order, the image replaced on a snapshot, and
//! a snapshot of it taken every [`SNAPSHOT_EVERY_ENTRIES`] applied entries. A controller
//! voter ([`Voter`](super::voter::Voter)) and a broker that follows the log as an observer
//! ([`MetadataFollower`](super::MetadataFollower)) both keep one; they differ only in what
//! they do around it (a voter also runs the active controller).
//!
//! It also remembers at which log index each broker's current registration was committed
//! (the offset a broker's heartbeat must have reached before the controller unfences it:
//! KRaft's `currentMetadataOffset >= registerBrokerRecordOffset`) and where that
//! incarnation was first unfenced (a broker acts on its own image only from there on).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::voter::VoterOut;
use super::{decode_records, encode_records, MetadataImage, MetadataRecord};
use crate::quorum::{Effect, Entry, LogId, LogIndex, Payload, RaftNode, Snapshot};
use crate::types::{NodeId, TimeMs};

/// A node snapshots its image every this many applied entries: keeps the log (and a
/// restart's replay) short, and exercises InstallSnapshot for a node that fell behind.
const SNAPSHOT_EVERY_ENTRIES: u64 = 16;

/// The committed image and the bookkeeping that goes with it.
#[derive(Debug, Default)]
pub(crate) struct CommittedImage {
    image: MetadataImage,
    applied: LogId,
    snapshot_at: LogIndex,
    /// Per registered broker: its incarnation and the log index of the entry that
    /// registered it. For a registration this node learned from a snapshot, the
    /// snapshot's index: an upper bound, which only makes the unfencing rule stricter.
    registered_at: BTreeMap<NodeId, (u64, LogIndex)>,
    /// Per registered broker that has been unfenced since it registered: its incarnation
    /// and the log index of the entry that first unfenced it (for one learned from a
    /// snapshot, the snapshot's index: again an upper bound).
    unfenced_at: BTreeMap<NodeId, (u64, LogIndex)>,
}

impl CommittedImage {
    pub(crate) fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub(crate) fn applied(&self) -> LogId {
        self.applied
    }

    pub(crate) fn registered_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        &self.registered_at
    }

    pub(crate) fn unfenced_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        &self.unfenced_at
    }

    /// Applies the next committed entry and reports it (`VoterOut::Applied`). Returns the
    /// entry's records (none for a `LeaderNoop`).
    pub(crate) fn apply(&mut self, entry: &Entry, out: &mut Vec<VoterOut>) -> Vec<MetadataRecord> {
        assert_eq!(
            entry.index,
            self.applied.index.next(),
            "Raft applied entries out of order"
        );
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        entry.payload.hash(&mut hasher);
        out.push(VoterOut::Applied {
            index: entry.index,
            term: entry.term,
            hash: hasher.finish(),
        });
        self.applied = entry.id();
        let Payload::Command(bytes) = &entry.payload else {
            return Vec::new();
        };
        let records =
            decode_records(bytes).expect("every metadata-log entry was written by encode_records");
        for record in &records {
            self.image.apply(record);
            match record {
                MetadataRecord::RegisterBroker {
                    broker,
                    incarnation,
                    ..
                } => {
                    self.registered_at
                        .insert(*broker, (*incarnation, entry.index));
                }
                MetadataRecord::UnfenceBroker {
                    broker,
                    incarnation,
                } => {
                    let first = self.unfenced_at.get(broker).map(|u| u.0) != Some(*incarnation);
                    if first {
                        self.unfenced_at
                            .insert(*broker, (*incarnation, entry.index));
                    }
                }
                _ => {}
            }
        }
        self.forget_unregistered();
        records
    }

    /// Replaces the image with a snapshot's and reports it (`VoterOut::SnapshotApplied`).
    pub(crate) fn install(&mut self, snapshot: &Snapshot, out: &mut Vec<VoterOut>) {
        let records = decode_records(&snapshot.data).expect("snapshots are encode_records bytes");
        self.image = MetadataImage::from_records(records.iter());
        self.applied = snapshot.last;
        self.snapshot_at = snapshot.last.index;
        self.registered_at = self
            .image
            .brokers()
            .map(|(id, b)| (id, (b.incarnation, snapshot.last.index)))
            .collect();
        self.unfenced_at = self
            .image
            .brokers()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, b)| (id, (b.incarnation, snapshot.last.index)))
            .collect();
        out.push(VoterOut::SnapshotApplied {
            index: snapshot.last.index,
        });
    }

    /// Takes a snapshot if enough entries were applied since the last one, and hands its
    /// write to `out`.
    pub(crate) fn maybe_snapshot(
        &mut self,
        raft: &mut RaftNode,
        now_ms: TimeMs,
        out: &mut Vec<VoterOut>,
    ) {
        if self.snapshot_at.0 + SNAPSHOT_EVERY_ENTRIES > self.applied.index.0 {
            return;
        }
        self.snapshot_at = self.applied.index;
        let snapshot = Snapshot {
            last: self.applied,
            data: encode_records(&self.image.snapshot()),
        };
        raft.snapshot_taken(now_ms, snapshot);
        // The snapshot's write is the only effect.
        for effect in raft.drain_effects() {
            match effect {
                Effect::PersistSnapshot(_) => out.push(VoterOut::Persist(effect)),
                other => unreachable!("snapshot_taken emitted {other:?}"),
            }
        }
    }

    /// Drops what it knows of registrations the image no longer has (a broker
    /// unregistered, or registered again at a new incarnation).
    fn forget_unregistered(&mut self) {
        let image = &self.image;
        let current = |id: &NodeId, (incarnation, _): &mut (u64, LogIndex)| {
            image
                .broker(*id)
                .is_some_and(|b| b.incarnation == *incarnation)
        };
        self.registered_at.retain(current);
        self.unfenced_at.retain(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::Term;

    fn entry(index: u64, records: &[MetadataRecord]) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: Payload::Command(encode_records(records)),
        }
    }

    fn register(broker: u32, incarnation: u64) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker: NodeId(broker),
            incarnation,
            listeners: Vec::new(),
            rack: None,
        }
    }

    fn unfence(broker: u32, incarnation: u64) -> MetadataRecord {
        MetadataRecord::UnfenceBroker {
            broker: NodeId(broker),
            incarnation,
        }
    }

    fn fence(broker: u32, incarnation: u64) -> MetadataRecord {
        MetadataRecord::FenceBroker {
            broker: NodeId(broker),
            incarnation,
        }
    }

    #[test]
    fn registration_and_first_unfencing_indexes_follow_the_current_incarnation() {
        let mut c = CommittedImage::default();
        let mut out = Vec::new();
        c.apply(&entry(1, &[register(1, 1)]), &mut out);
        c.apply(&entry(2, &[unfence(1, 1)]), &mut out);
        c.apply(&entry(3, &[fence(1, 1)]), &mut out);
        c.apply(&entry(4, &[unfence(1, 1)]), &mut out);
        assert_eq!(c.registered_at()[&NodeId(1)], (1, LogIndex(1)));
        // The first unfencing of the incarnation counts, not a later one.
        assert_eq!(c.unfenced_at()[&NodeId(1)], (1, LogIndex(2)));
        // A restart: registered anew, not unfenced yet.
        c.apply(&entry(5, &[register(1, 2)]), &mut out);
        assert_eq!(c.registered_at()[&NodeId(1)], (2, LogIndex(5)));
        assert!(!c.unfenced_at().contains_key(&NodeId(1)));
        c.apply(&entry(6, &[unfence(1, 2)]), &mut out);
        assert_eq!(c.unfenced_at()[&NodeId(1)], (2, LogIndex(6)));
        assert_eq!(out.len(), 6, "one Applied per entry: {out:?}");
    }

    #[test]
    fn a_snapshot_gives_its_own_index_as_an_upper_bound() {
        let mut source = CommittedImage::default();
        let mut out = Vec::new();
        source.apply(&entry(1, &[register(1, 1), register(2, 1)]), &mut out);
        source.apply(&entry(2, &[unfence(1, 1)]), &mut out);
        let snapshot = Snapshot {
            last: source.applied(),
            data: encode_records(&source.image().snapshot()),
        };
        let mut c = CommittedImage::default();
        c.install(&snapshot, &mut out);
        assert_eq!(c.image(), source.image());
        assert_eq!(c.registered_at()[&NodeId(1)], (1, LogIndex(2)));
        assert_eq!(c.registered_at()[&NodeId(2)], (1, LogIndex(2)));
        assert_eq!(c.unfenced_at()[&NodeId(1)], (1, LogIndex(2)));
        assert!(!c.unfenced_at().contains_key(&NodeId(2)), "still fenced");
    }
}

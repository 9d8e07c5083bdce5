//! The Raft log of one node: a snapshot that stands for the compacted prefix, the entries
//! after it, and three positions — how far the log is durable (`stable_index`), committed
//! (`commit_index`) and applied (`applied_index`).
//!
//! The entries up to `stable_index` are the stable part: durable now and in every state
//! the disk will pass through while the writes already issued complete (a pending
//! truncation lowers it at once). The entries after it are the unstable part: written
//! to the disk queue but not yet confirmed, so a crash may lose them. The node (not the
//! log) emits the writes; the log is told when they complete.
//!
//! Invariants ([`RaftLog::check_invariants`]):
//! - entries are dense and follow the snapshot: the i-th has index `snapshot + 1 + i`;
//! - terms never decrease along the log, and none is below the snapshot's;
//! - `snapshot ≤ applied ≤ commit ≤ last` and `stable ≤ last`;
//! - nothing is applied that was neither durable here nor part of a snapshot:
//!   `applied ≤ max(stable, snapshot)`;
//! - a committed entry is never truncated (asserted where a truncation happens).

use crate::quorum::{ConflictHint, Entry, LogId, LogIndex, Payload, Snapshot, Term};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftLog {
    snapshot: Snapshot,
    entries: Vec<Entry>,
    stable_index: LogIndex,
    commit_index: LogIndex,
    applied_index: LogIndex,
}

/// What accepting an AppendEntries did to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppendOutcome {
    /// The log now matches the leader's up to here (`prev_log` plus the entries sent).
    pub(crate) last_verified: LogIndex,
    /// The first index that changed and must be written from, if any did.
    pub(crate) persist_from: Option<LogIndex>,
}

impl RaftLog {
    /// A log recovered from durable state: everything in it is stable, nothing beyond
    /// the snapshot is known to be committed yet.
    pub fn restore(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> RaftLog {
        let snapshot = snapshot.unwrap_or_default();
        let index = snapshot.last.index;
        let last = entries.last().map_or(index, |e| e.index);
        let log = RaftLog {
            snapshot,
            entries,
            stable_index: last,
            commit_index: index,
            applied_index: index,
        };
        log.check_invariants();
        log
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn first_index(&self) -> LogIndex {
        self.snapshot.last.index.next()
    }

    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map_or(self.snapshot.last.index, |e| e.index)
    }

    pub fn last_id(&self) -> LogId {
        self.entries.last().map_or(self.snapshot.last, Entry::id)
    }

    pub fn stable_index(&self) -> LogIndex {
        self.stable_index
    }

    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The term of the entry at `index`; the snapshot's term at its own index; `None`
    /// below the snapshot (compacted) or past the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.last.index {
            return Some(self.snapshot.last.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.first_index();
        if index < first {
            return None;
        }
        self.entries.get((index.0 - first.0) as usize)
    }

    /// Up to `max_entries` entries from `from` on (which must not be compacted).
    pub fn entries_from(&self, from: LogIndex, max_entries: usize) -> Vec<Entry> {
        assert!(
            from >= self.first_index(),
            "entries from {from} were compacted into the snapshot at {}",
            self.snapshot.last
        );
        let start = (from.0 - self.first_index().0) as usize;
        let start = start.min(self.entries.len());
        let end = start.saturating_add(max_entries).min(self.entries.len());
        self.entries[start..end].to_vec()
    }

    /// The leader appends a new entry of its own term at the end.
    pub(crate) fn append(&mut self, term: Term, payload: Payload) -> LogId {
        assert!(
            term >= self.last_id().term,
            "a leader of {term} appends after an entry of {}",
            self.last_id().term
        );
        let id = LogId::new(term, self.last_index().next());
        self.entries.push(Entry {
            term,
            index: id.index,
            payload,
        });
        id
    }

    /// A follower takes `entries` that follow `prev` in the leader's log (Raft §5.3):
    /// refuses with a hint when it lacks `prev`, skips what it already has, and replaces
    /// a conflicting suffix.
    pub(crate) fn append_from_leader(
        &mut self,
        prev: LogId,
        entries: Vec<Entry>,
    ) -> Result<AppendOutcome, ConflictHint> {
        let snapshot_index = self.snapshot.last.index;
        if prev.index > self.last_index() {
            return Err(ConflictHint {
                term: None,
                index: self.last_index().next(),
            });
        }
        // Below the snapshot everything is committed, so it matches every later leader.
        if prev.index >= snapshot_index {
            let ours = self.term_at(prev.index).expect("between snapshot and end");
            if ours != prev.term {
                return Err(ConflictHint {
                    term: Some(ours),
                    index: self.first_index_of_term_before(ours, prev.index),
                });
            }
        }
        let sent = entries.len() as u64;
        let mut expected = prev;
        let mut persist_from = None;
        for entry in entries {
            assert!(
                entry.index == expected.index.next() && entry.term >= expected.term,
                "AppendEntries is not a dense run of entries after {prev}: {} after {expected}",
                entry.id()
            );
            expected = entry.id();
            if entry.index <= snapshot_index {
                continue;
            }
            match self.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    self.truncate_from(entry.index);
                    persist_from.get_or_insert(entry.index);
                }
                None => {
                    persist_from.get_or_insert(entry.index);
                }
            }
            assert_eq!(entry.index, self.last_index().next());
            self.entries.push(entry);
        }
        Ok(AppendOutcome {
            last_verified: LogIndex(prev.index.0 + sent).max(snapshot_index),
            persist_from,
        })
    }

    /// Drops the entries from `index` on: they conflict with the leader's.
    fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.commit_index,
            "truncating from {index} would drop committed entries (commit index {})",
            self.commit_index
        );
        let keep = (index.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        self.stable_index = self.stable_index.min(index.prev());
    }

    /// The first index of the run of `term` that ends at `at` (for a conflict hint).
    fn first_index_of_term_before(&self, term: Term, at: LogIndex) -> LogIndex {
        let mut index = at;
        while index > self.first_index() && self.term_at(index.prev()) == Some(term) {
            index = index.prev();
        }
        index
    }

    /// The last index holding an entry of `term`, if this log has one (snapshot
    /// included). The leader's side of the conflict hint.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        for entry in self.entries.iter().rev() {
            if entry.term == term {
                return Some(entry.index);
            }
            if entry.term < term {
                return None;
            }
        }
        (self.snapshot.last.term == term && self.snapshot.last.index.0 > 0)
            .then_some(self.snapshot.last.index)
    }

    /// Raises the commit index (it never goes back).
    pub(crate) fn commit_to(&mut self, index: LogIndex) {
        assert!(
            index <= self.last_index(),
            "commit index {index} past the log end {}",
            self.last_index()
        );
        self.commit_index = self.commit_index.max(index);
    }

    /// The entries now both committed and durable here, not yet applied; marks them
    /// applied.
    pub(crate) fn take_to_apply(&mut self) -> Vec<Entry> {
        let upto = self.commit_index.min(self.stable_index);
        if upto <= self.applied_index {
            return Vec::new();
        }
        let entries = self.entries_from(
            self.applied_index.next(),
            (upto.0 - self.applied_index.0) as usize,
        );
        assert_eq!(entries.last().map(|e| e.index), Some(upto));
        self.applied_index = upto;
        entries
    }

    /// The write whose last entry is `last` completed. `floor`: the lowest index a
    /// write still queued behind it rewrites, minus one (nothing above it is stable until
    /// that write lands too).
    pub(crate) fn entries_persisted(&mut self, last: LogId, floor: LogIndex) {
        // Every write carries the whole change since the one before, so after it the disk
        // holds the log as it was then. If that log's entry at `last.index` is still ours
        // with the same term, the two agree up to it (log matching, §5.3).
        if self.term_at(last.index) == Some(last.term) {
            self.stable_index = self.stable_index.max(last.index.min(floor));
        }
    }

    /// The snapshot write for `id` completed.
    pub(crate) fn snapshot_persisted(&mut self, id: LogId, floor: LogIndex) {
        self.entries_persisted(id, floor);
    }

    /// The application took a snapshot of what it applied up to `snapshot.last`: the
    /// entries it covers are dropped.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) {
        let at = snapshot.last;
        assert!(
            at.index <= self.applied_index && at.index > self.snapshot.last.index,
            "snapshot at {at} must be past the old snapshot {} and applied (applied index {})",
            self.snapshot.last,
            self.applied_index
        );
        assert_eq!(
            self.term_at(at.index),
            Some(at.term),
            "snapshot at {at} does not match the log"
        );
        let drop = (at.index.0 - self.snapshot.last.index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot = snapshot;
    }

    /// The leader sent a snapshot past our commit index. Keeps the entries after it if
    /// the log holds the snapshot's last entry (the rest follows it), else drops them all.
    /// Returns whether the log was discarded.
    pub(crate) fn install(&mut self, snapshot: Snapshot) -> bool {
        let at = snapshot.last;
        assert!(
            at.index > self.commit_index,
            "installing snapshot {at} at or below the commit index {}",
            self.commit_index
        );
        let keep = self.term_at(at.index) == Some(at.term);
        if keep {
            let drop = (at.index.0 - self.snapshot.last.index.0) as usize;
            self.entries.drain(..drop);
        } else {
            // Only the committed entries are certain to agree with the snapshot.
            self.stable_index = self.stable_index.min(self.commit_index);
            self.entries.clear();
        }
        self.snapshot = snapshot;
        self.commit_index = at.index;
        self.applied_index = at.index;
        !keep
    }

    /// Asserts every invariant in the module comment. Linear in the log's length: for
    /// tests and the simulator.
    pub fn check_invariants(&self) {
        let snapshot = self.snapshot.last;
        let mut prev = snapshot;
        for entry in &self.entries {
            assert_eq!(
                entry.index,
                prev.index.next(),
                "log is not dense after {prev}"
            );
            assert!(entry.term >= prev.term, "term goes back at {}", entry.id());
            prev = entry.id();
        }
        assert!(
            snapshot.index <= self.applied_index
                && self.applied_index <= self.commit_index
                && self.commit_index <= self.last_index(),
            "snapshot {} ≤ applied {} ≤ commit {} ≤ last {} does not hold",
            snapshot.index,
            self.applied_index,
            self.commit_index,
            self.last_index()
        );
        assert!(self.stable_index <= self.last_index());
        assert!(
            self.applied_index <= self.stable_index.max(snapshot.index),
            "applied {} past both the durable end {} and the snapshot {}",
            self.applied_index,
            self.stable_index,
            snapshot.index
        );
    }
}

//! The writes a node has asked for and not yet heard back about, in the order it asked.
//!
//! The shell makes `Persist*` effects durable in emission order and reports each
//! completion in that order; the queue checks that it does (a completion that does not
//! match the oldest write is a shell bug), and tells the log how far a write still
//! queued will rewrite it — an entry is stable only if no queued write will remove it.

use std::collections::VecDeque;

use crate::quorum::{HardState, LogId, LogIndex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PendingWrite {
    HardState(HardState),
    /// Replace the suffix from `from` on; `last` is the log's last entry after it.
    Entries {
        from: LogIndex,
        last: LogId,
    },
    /// Store a snapshot; `discards_log` when the entries after it are dropped too.
    Snapshot {
        last: LogId,
        discards_log: bool,
    },
}

#[derive(Clone, Debug, Default)]
pub(crate) struct WriteQueue {
    writes: VecDeque<PendingWrite>,
}

impl WriteQueue {
    pub(crate) fn push(&mut self, write: PendingWrite) {
        self.writes.push_back(write);
    }

    /// The oldest write completed; it must be `done`.
    pub(crate) fn complete(&mut self, done: &PendingWrite) {
        let oldest = self.writes.pop_front();
        assert_eq!(
            oldest.as_ref(),
            Some(done),
            "a persistence completion must answer the oldest write still pending"
        );
    }

    /// The oldest write completed; it must be the entries write ending at `last`.
    pub(crate) fn complete_entries(&mut self, last: LogId) {
        match self.writes.pop_front() {
            Some(PendingWrite::Entries { last: expected, .. }) if expected == last => {}
            other => panic!(
                "entries write ending at {last} completed, but the oldest pending write is {other:?}"
            ),
        }
    }

    /// The oldest write completed; it must be the snapshot write ending at `last`.
    pub(crate) fn complete_snapshot(&mut self, last: LogId) {
        match self.writes.pop_front() {
            Some(PendingWrite::Snapshot { last: expected, .. }) if expected == last => {}
            other => panic!(
                "snapshot write ending at {last} completed, but the oldest pending write is {other:?}"
            ),
        }
    }

    /// The highest index that no queued write removes or rewrites: entries above it
    /// cannot be called stable yet, whatever has completed.
    pub(crate) fn floor(&self) -> LogIndex {
        self.writes
            .iter()
            .filter_map(|w| match w {
                PendingWrite::HardState(_) => None,
                PendingWrite::Entries { from, .. } => Some(from.prev()),
                PendingWrite::Snapshot {
                    last,
                    discards_log: true,
                } => Some(last.index),
                PendingWrite::Snapshot { .. } => None,
            })
            .min()
            .unwrap_or(LogIndex(u64::MAX))
    }

    pub(crate) fn len(&self) -> usize {
        self.writes.len()
    }
}

//! A leader's view of one follower: how far the follower's log durably matches
//! (`match_index`), where to send from next (`next_index`), and how to send.
//!
//! - Probe: the leader does not know where the logs agree. One AppendEntries at a time
//!   (resent every heartbeat) walks `next_index` back using the follower's conflict hint.
//! - Replicate: the logs agree up to `next_index - 1` as far as the leader knows; it
//!   pipelines entries, at most [`MAX_INFLIGHT_ENTRIES`] beyond the durable match.
//! - Snapshot: the entries the follower needs were compacted; a snapshot is on its way.

use crate::quorum::LogIndex;
use crate::types::TimeMs;

/// How many entries a leader sends in one AppendEntries.
pub(crate) const MAX_ENTRIES_PER_APPEND: usize = 64;
/// How many entries a leader keeps sent but not durably matched per follower: the
/// follower's disk paces the leader, and a lost message costs at most this much resent.
pub(crate) const MAX_INFLIGHT_ENTRIES: u64 = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// `paused`: the probe for this heartbeat interval is sent.
    Probe {
        paused: bool,
    },
    Replicate,
    Snapshot {
        index: LogIndex,
        sent_at_ms: TimeMs,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) match_index: LogIndex,
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// The last time any answer came from this follower in this term (check quorum).
    pub(crate) last_heard_ms: TimeMs,
}

impl Progress {
    /// A follower of a new leader whose log ends at `last_index`: assume it matches until
    /// told otherwise.
    pub(crate) fn new(last_index: LogIndex, now_ms: TimeMs) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            state: ProgressState::Probe { paused: false },
            last_heard_ms: now_ms,
        }
    }

    /// Entries sent and not yet durably matched.
    pub(crate) fn inflight(&self) -> u64 {
        self.next_index.0.saturating_sub(self.match_index.0 + 1)
    }

    /// The follower took entries up to `appended_index`, durable up to `match_index`.
    pub(crate) fn on_success(&mut self, appended_index: LogIndex, match_index: LogIndex) {
        assert!(match_index <= appended_index);
        self.match_index = self.match_index.max(match_index);
        self.next_index = self.next_index.max(appended_index.next());
        if let ProgressState::Probe { .. } = self.state {
            self.state = ProgressState::Replicate;
        }
    }

    /// The follower rejected an append after `rejected_prev`; the hint suggests
    /// `hinted_next`. Returns whether to send again (false for a stale rejection).
    pub(crate) fn on_conflict(&mut self, rejected_prev: LogIndex, hinted_next: LogIndex) -> bool {
        let current = match self.state {
            ProgressState::Replicate => rejected_prev > self.match_index,
            ProgressState::Probe { .. } => rejected_prev.next() == self.next_index,
            ProgressState::Snapshot { .. } => false,
        };
        if !current {
            return false;
        }
        // Step back, never below what is known to match nor past the rejected index.
        self.next_index = hinted_next.min(rejected_prev).max(self.match_index.next());
        self.state = ProgressState::Probe { paused: false };
        true
    }

    /// The follower durably holds everything up to `last_index` after a snapshot.
    pub(crate) fn on_snapshot_installed(&mut self, last_index: LogIndex) {
        self.match_index = self.match_index.max(last_index);
        match self.state {
            ProgressState::Snapshot { index, .. } if last_index >= index => {
                self.next_index = self.match_index.next();
                self.state = ProgressState::Probe { paused: false };
            }
            // It had committed past its disk, but not yet made the snapshot durable: wait
            // for the retry. Or a stale answer: only what it proves is kept.
            _ => self.next_index = self.next_index.max(self.match_index.next()),
        }
    }
}

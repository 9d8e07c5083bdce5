//! A controller voter's simulated disk: where Raft's durable state (the vote, log
//! entries, snapshots) lives, with the same semantics as a broker's partition logs
//! (`disk.rs`): a write lands in the page cache at once and is durable only once synced;
//! a crash keeps what was synced and perhaps an in-order prefix of the rest (the kernel
//! flushed it on its own). A torn write is found by its checksum on recovery and dropped
//! whole, so a torn tail is one more write not kept.
//!
//! Raft asks for its writes to be made durable in the order it emitted them and told of
//! each completion in that order (`core/src/quorum/mod.rs`): syncs here complete in
//! order, each no earlier than the one before.

use std::collections::VecDeque;

use eddy_core::quorum::{DurableState, Effect, Persisted};
use eddy_core::TimeMs;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Default)]
pub(crate) struct RaftDisk {
    durable: DurableState,
    /// Writes asked for and not yet synced, oldest first, with their write id.
    unsynced: VecDeque<(u64, Effect)>,
    /// Synced writes the process has not been told of yet (it was paused).
    unreported: VecDeque<Persisted>,
    next_write: u64,
    /// When the last sync asked for completes: the next completes no earlier.
    last_done_at_ms: TimeMs,
}

impl RaftDisk {
    /// Queues a `Persist*` effect; returns its write id and when its sync completes.
    pub(crate) fn write(
        &mut self,
        effect: Effect,
        now_ms: TimeMs,
        latency_ms: u64,
    ) -> (u64, TimeMs) {
        assert!(
            matches!(
                effect,
                Effect::PersistHardState(_)
                    | Effect::PersistEntries { .. }
                    | Effect::PersistSnapshot(_)
            ),
            "not a write: {effect:?}"
        );
        self.next_write += 1;
        self.unsynced.push_back((self.next_write, effect));
        let at = (now_ms + latency_ms).max(self.last_done_at_ms);
        self.last_done_at_ms = at;
        (self.next_write, at)
    }

    /// The sync of every write up to `write` finished: they are durable.
    pub(crate) fn finish(&mut self, write: u64) {
        while self.unsynced.front().is_some_and(|(id, _)| *id <= write) {
            let (_, effect) = self.unsynced.pop_front().expect("checked");
            let done = self.durable.apply_write(effect);
            self.unreported.push_back(done);
        }
    }

    /// The completions to report, in order.
    pub(crate) fn take_unreported(&mut self) -> Vec<Persisted> {
        self.unreported.drain(..).collect()
    }

    /// Power loss: synced writes stay; of the rest, each in turn survives with
    /// probability `keep` until the first that does not (a torn one is dropped whole by
    /// its checksum, with probability `torn`). Returns what recovery reads.
    pub(crate) fn crash(&mut self, rng: &mut ChaCha8Rng, keep: f64, torn: f64) -> DurableState {
        self.unreported.clear();
        for (_, effect) in std::mem::take(&mut self.unsynced) {
            if !rng.random_bool(keep) || rng.random_bool(torn) {
                break;
            }
            self.durable.apply_write(effect);
        }
        self.last_done_at_ms = 0;
        self.durable.clone()
    }
}

/// Carries out one write on the durable state, atomically, as a real shell would.
#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::quorum::{Entry, HardState, LogIndex, Payload, Term};
    use rand::SeedableRng;

    fn entry(index: u64) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: Payload::LeaderNoop,
        }
    }

    #[test]
    fn a_crash_keeps_synced_writes_and_drops_unsynced_ones_when_nothing_is_kept() {
        let mut disk = RaftDisk::default();
        let vote = HardState {
            term: Term(1),
            voted_for: None,
        };
        let (w1, _) = disk.write(Effect::PersistHardState(vote), 0, 1);
        disk.write(
            Effect::PersistEntries {
                from_index: LogIndex(1),
                entries: vec![entry(1)],
            },
            0,
            1,
        );
        disk.finish(w1);
        assert_eq!(disk.take_unreported(), vec![Persisted::HardState(vote)]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let recovered = disk.crash(&mut rng, 0.0, 0.0);
        assert_eq!(recovered.hard_state, vote);
        assert!(recovered.entries.is_empty(), "the unsynced entry survived");
    }

    #[test]
    fn syncs_complete_in_the_order_the_writes_were_asked_for() {
        let mut disk = RaftDisk::default();
        let vote = HardState::default();
        let (_, first) = disk.write(Effect::PersistHardState(vote), 0, 50);
        let (_, second) = disk.write(Effect::PersistHardState(vote), 10, 1);
        assert!(second >= first);
    }
}

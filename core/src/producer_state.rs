//! Idempotent producers on one partition: for each producer id, its epoch and the
//! sequence numbers of its last few batches, so that a retried batch is answered with
//! the offset it got the first time instead of being appended again (KIP-98,
//! "Idempotent producer" in the Kafka design docs).
//!
//! The table is derived state: it can always be rebuilt from the batches in the log,
//! which is what a replica does after recovery or truncation.

use std::collections::{BTreeMap, VecDeque};

use crate::batch::{BatchHeader, NO_SEQUENCE};
use crate::error::ErrorCode;
use crate::types::Offset;

/// How many recent batches per producer are remembered for duplicate detection. Kafka
/// remembers 5, matching the Java producer's `max.in.flight.requests.per.connection`
/// limit for idempotence.
pub const BATCHES_REMEMBERED: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BatchMeta {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: Offset,
    last_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<BatchMeta>,
}

/// What to do with a produced batch from an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in sequence: append it.
    Append,
    /// Already in the log: answer with its original offsets and append nothing.
    Duplicate {
        base_offset: Offset,
        last_offset: Offset,
    },
    /// Refuse it with this error.
    Reject(ErrorCode),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: BTreeMap<i64, ProducerEntry>,
}

/// Kafka's sequence numbers wrap from i32::MAX to 0.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStateTable {
    pub fn new() -> ProducerStateTable {
        ProducerStateTable::default()
    }

    /// Decides what to do with a batch a leader received (Kafka's
    /// `ProducerAppendInfo.checkSequence` rules).
    pub fn check(&self, header: &BatchHeader) -> SequenceCheck {
        if !header.has_producer_id() {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // No state (a new producer, or its state aged out): accept it as Kafka does
            // since KIP-360.
            return SequenceCheck::Append;
        };
        if header.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if header.producer_epoch > entry.epoch {
            // A bumped epoch starts its sequences again at 0.
            return if header.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
            };
        }
        let first = header.base_sequence;
        let last = header.last_sequence();
        if let Some(dup) = entry
            .recent
            .iter()
            .find(|m| m.first_sequence == first && m.last_sequence == last)
        {
            return SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            };
        }
        let last_seen = entry.recent.back().map_or(NO_SEQUENCE, |m| m.last_sequence);
        if last_seen == NO_SEQUENCE || first == next_sequence(last_seen) {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        }
    }

    /// Remembers a batch that is now in the log at `base_offset` (on the leader after
    /// its append, on a follower as it copies the batch, and while rebuilding).
    pub fn record(&mut self, header: &BatchHeader, base_offset: Offset) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                recent: VecDeque::new(),
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == BATCHES_REMEMBERED {
            entry.recent.pop_front();
        }
        entry.recent.push_back(BatchMeta {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
            last_offset: base_offset.plus(u64::from(header.record_count()) - 1),
        });
    }

    /// Rebuilds the table from the batches of a log, oldest first.
    pub fn rebuild<'a>(batches: impl IntoIterator<Item = &'a [u8]>) -> ProducerStateTable {
        let mut table = ProducerStateTable::new();
        for bytes in batches {
            let header = BatchHeader::parse(bytes).expect("batches in the log were validated");
            table.record(&header, Offset(header.base_offset as u64));
        }
        table
    }

    /// [`ProducerStateTable::rebuild`] from the batches' headers (all it reads).
    pub fn rebuild_from_headers<'a>(
        headers: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> ProducerStateTable {
        let mut table = ProducerStateTable::new();
        for header in headers {
            table.record(header, Offset(header.base_offset as u64));
        }
        table
    }

    /// The number of producers with state here.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, NewRecord};

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: usize) -> BatchHeader {
        let mut b = BatchBuilder::idempotent(producer_id, epoch, base_sequence);
        for _ in 0..records {
            b.push(NewRecord::default());
        }
        BatchHeader::parse(&b.build()).expect("built")
    }

    #[test]
    fn a_retried_batch_is_answered_with_its_original_offsets() {
        let mut t = ProducerStateTable::new();
        let h = header(7, 0, 0, 3);
        assert_eq!(t.check(&h), SequenceCheck::Append);
        t.record(&h, Offset(10));
        assert_eq!(
            t.check(&h),
            SequenceCheck::Duplicate {
                base_offset: Offset(10),
                last_offset: Offset(12)
            }
        );
        let next = header(7, 0, 3, 1);
        assert_eq!(t.check(&next), SequenceCheck::Append);
    }

    #[test]
    fn a_gap_in_sequence_is_out_of_order() {
        let mut t = ProducerStateTable::new();
        t.record(&header(7, 0, 0, 2), Offset(0));
        assert_eq!(
            t.check(&header(7, 0, 5, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn a_stale_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
        let mut t = ProducerStateTable::new();
        t.record(&header(7, 3, 0, 1), Offset(0));
        assert_eq!(
            t.check(&header(7, 2, 1, 1)),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(t.check(&header(7, 4, 0, 1)), SequenceCheck::Append);
        assert_eq!(
            t.check(&header(7, 4, 1, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut t = ProducerStateTable::new();
        for i in 0..6 {
            t.record(&header(7, 0, i, 1), Offset(i as u64));
        }
        // The first batch fell out of the window: it is no longer a known duplicate,
        // and its sequence is not the next one either.
        assert_eq!(
            t.check(&header(7, 0, 0, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert!(matches!(
            t.check(&header(7, 0, 1, 1)),
            SequenceCheck::Duplicate { .. }
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut t = ProducerStateTable::new();
        t.record(&header(7, 0, i32::MAX, 1), Offset(0));
        assert_eq!(t.check(&header(7, 0, 0, 1)), SequenceCheck::Append);
    }
}

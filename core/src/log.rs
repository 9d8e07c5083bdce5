//! One partition's log as the core sees it: the record batches in offset order, the log
//! end offset (LEO), the high watermark (HW), the log start offset, the leader-epoch
//! cache, and what the disk has confirmed as synced.
//!
//! The log never touches a disk. Whoever changes it (the replica) also emits the
//! matching storage effect; the log only remembers the consequences: which syncs are in
//! flight and how far the disk has confirmed. Batches are kept as the Kafka v2 bytes they
//! arrived as, so a fetch hands back exactly what was appended.
//!
//! Offsets follow Kafka's "Log" design section (https://kafka.apache.org/documentation/#log);
//! the leader-epoch cache and its lookup follow KIP-101 and KIP-279.

use bytes::Bytes;

use crate::batch::BatchHeader;
use crate::types::{Epoch, Offset, TimeMs};

/// One record batch in the log, with the header fields the core needs kept beside the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// The partition leader epoch written into the batch by the leader that appended it.
    pub epoch: Epoch,
    pub bytes: Bytes,
}

impl StoredBatch {
    /// Reads the offsets and epoch out of an already validated batch.
    pub fn from_validated(bytes: Bytes) -> StoredBatch {
        let header =
            BatchHeader::parse(&bytes).expect("batch was validated before it reached the log");
        assert!(header.base_offset >= 0 && header.partition_leader_epoch >= 0);
        StoredBatch {
            base_offset: Offset(header.base_offset as u64),
            last_offset: Offset(header.last_offset() as u64),
            epoch: Epoch(header.partition_leader_epoch as u32),
            bytes,
        }
    }

    pub fn next_offset(&self) -> Offset {
        self.last_offset.plus(1)
    }

    pub fn record_count(&self) -> u64 {
        self.last_offset.0 - self.base_offset.0 + 1
    }
}

/// The flush policy of server.properties: `log.flush.interval.messages` and
/// `log.flush.interval.ms`. Kafka's defaults never force a sync and leave durability to
/// replication; `interval_messages = 1` syncs every append before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPolicy {
    pub interval_messages: u64,
    pub interval_ms: Option<u64>,
}

impl FlushPolicy {
    /// Kafka's default: never force a sync.
    pub const NEVER: FlushPolicy = FlushPolicy {
        interval_messages: i64::MAX as u64,
        interval_ms: None,
    };

    /// Every message is synced before anything depending on it (an ack, a follower's
    /// fetch position) is released.
    pub fn sync_before_ack(&self) -> bool {
        self.interval_messages <= 1
    }
}

/// The answer to "where does epoch E end?" (OffsetsForLeaderEpoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EpochEndOffset {
    /// The largest epoch at or below the one asked for; `None` when this log has no
    /// epoch at or below it and nothing above it either.
    pub epoch: Option<Epoch>,
    pub end_offset: Offset,
}

/// One batch of a read: its bytes when the log still holds them, or where the shell
/// finds it in the partition's log on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FetchedBatch {
    /// The batch's bytes, in hand.
    Bytes(Bytes),
    /// The batch at `base_offset` of this partition, `len` bytes long, which the log no
    /// longer keeps in memory: the shell reads it from its segment files before the
    /// response leaves. A batch the shell cannot find whole (truncated since) ends the
    /// response there; the reader fetches again.
    Stored { base_offset: Offset, len: u32 },
}

impl FetchedBatch {
    pub fn len(&self) -> usize {
        match self {
            FetchedBatch::Bytes(b) => b.len(),
            FetchedBatch::Stored { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, if in hand.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            FetchedBatch::Bytes(b) => Some(b),
            FetchedBatch::Stored { .. } => None,
        }
    }
}

/// Resolves the references of a read in order with `read_stored`, keeping the batches
/// up to the first one it cannot find (a truncation raced the read): a response never
/// skips a batch, so the reader fetches from there again.
pub fn resolve_batches(
    batches: Vec<FetchedBatch>,
    mut read_stored: impl FnMut(Offset, u32) -> Option<Bytes>,
) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let bytes = match batch {
            FetchedBatch::Bytes(b) => b,
            FetchedBatch::Stored { base_offset, len } => match read_stored(base_offset, len) {
                Some(b) if stored_batch_matches(&b, base_offset, len) => b,
                _ => break,
            },
        };
        out.push(bytes);
    }
    out
}

/// Whether bytes read back for a reference are the batch it names: whole, at that base
/// offset and of that length (a cheap check, not the CRC: readers check that).
pub fn stored_batch_matches(bytes: &[u8], base_offset: Offset, len: u32) -> bool {
    bytes.len() == len as usize
        && BatchHeader::parse(bytes)
            .is_ok_and(|h| h.base_offset == base_offset.0 as i64 && h.total_len() == len as usize)
}

/// What a read returned: whole batches, the first one containing the requested offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadResult {
    pub batches: Vec<FetchedBatch>,
    pub bytes: usize,
}

/// One batch as the log keeps it: its header, and its bytes only while it is in the
/// log's in-memory tail (see [`PartitionLog::set_resident_budget`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub epoch: Epoch,
    pub header: BatchHeader,
    pub bytes: Option<Bytes>,
}

impl From<StoredBatch> for LogBatch {
    fn from(batch: StoredBatch) -> LogBatch {
        LogBatch::from_stored(batch)
    }
}

impl LogBatch {
    /// The first record of this batch with a timestamp at least `timestamp_ms`, when
    /// its bytes are in memory; otherwise this batch, named for the shell to look into.
    fn lookup(&self, timestamp_ms: i64) -> TimestampLookup {
        match &self.bytes {
            Some(bytes) => {
                let (o, ts) = crate::batch::offset_for_timestamp_in(bytes, timestamp_ms)
                    .expect("stored batches are valid");
                TimestampLookup::Found(o, ts)
            }
            None => TimestampLookup::InStoredBatch {
                base_offset: self.base_offset,
                len: self.len() as u32,
                max_timestamp: self.header.max_timestamp,
            },
        }
    }

    fn from_stored(batch: StoredBatch) -> LogBatch {
        let header = BatchHeader::parse(&batch.bytes)
            .expect("batch was validated before it reached the log");
        LogBatch {
            base_offset: batch.base_offset,
            last_offset: batch.last_offset,
            epoch: batch.epoch,
            header,
            bytes: Some(batch.bytes),
        }
    }

    pub fn next_offset(&self) -> Offset {
        self.last_offset.plus(1)
    }

    /// The batch's length in bytes.
    pub fn len(&self) -> usize {
        self.header.total_len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The identity of the batch across replicas: offsets, epoch and CRC.
    pub fn key(&self) -> (Offset, Offset, Epoch, u32) {
        (
            self.base_offset,
            self.last_offset,
            self.epoch,
            self.header.crc,
        )
    }

    fn fetched(&self) -> FetchedBatch {
        match &self.bytes {
            Some(b) => FetchedBatch::Bytes(b.clone()),
            None => FetchedBatch::Stored {
                base_offset: self.base_offset,
                len: self.len() as u32,
            },
        }
    }
}

/// A timestamp lookup's answer: the offset, or the batch whose records the shell must
/// scan (with [`crate::batch::offset_for_timestamp_in`]) because the log keeps only its
/// header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampLookup {
    Found(Offset, i64),
    /// The batch at `base_offset`, `len` bytes long, whose largest timestamp is
    /// `max_timestamp` (the answer at batch granularity, for a shell that cannot read
    /// the batch).
    InStoredBatch {
        base_offset: Offset,
        len: u32,
        max_timestamp: i64,
    },
}

/// One batch storage recovered: whole, or (for a log that need not hold its bytes in
/// memory) its header alone, storage having checked the batch whole on disk. A log
/// recovered from headers refers its reads to the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveredBatch {
    Whole(Bytes),
    Header(BatchHeader),
}

impl From<Bytes> for RecoveredBatch {
    fn from(b: Bytes) -> RecoveredBatch {
        RecoveredBatch::Whole(b)
    }
}

impl From<BatchHeader> for RecoveredBatch {
    fn from(h: BatchHeader) -> RecoveredBatch {
        RecoveredBatch::Header(h)
    }
}

#[derive(Debug)]
pub struct PartitionLog {
    batches: Vec<LogBatch>,
    /// Batches from this index on keep their bytes; those before it only their header.
    resident_from: usize,
    /// The bytes held by the resident batches.
    resident_bytes: usize,
    /// How many bytes of batches below the HW the log keeps in memory; `None` keeps all.
    resident_budget: Option<usize>,
    log_start_offset: Offset,
    log_end_offset: Offset,
    high_watermark: Offset,
    /// (epoch, start offset) in increasing order of both.
    epochs: Vec<(Epoch, Offset)>,
    /// How far the disk has confirmed a sync.
    durable_end_offset: Offset,
    /// Syncs asked for and not yet confirmed: (sync id, offset it covers up to). A
    /// truncation lowers the offsets, because the bytes those syncs would confirm are gone.
    syncs_in_flight: Vec<(u64, Offset)>,
    unflushed_messages: u64,
    first_unflushed_at_ms: Option<TimeMs>,
    size_bytes: u64,
}

impl PartitionLog {
    /// An empty log whose first offset will be `log_start_offset`.
    pub fn new(log_start_offset: Offset) -> PartitionLog {
        PartitionLog {
            batches: Vec::new(),
            resident_from: 0,
            resident_bytes: 0,
            resident_budget: None,
            log_start_offset,
            log_end_offset: log_start_offset,
            high_watermark: log_start_offset,
            epochs: Vec::new(),
            durable_end_offset: log_start_offset,
            syncs_in_flight: Vec::new(),
            unflushed_messages: 0,
            first_unflushed_at_ms: None,
            size_bytes: 0,
        }
    }

    /// Rebuilds a log from the batches storage recovered (all of them durable). The
    /// epoch cache is derived from the epochs written in the batches. The HW starts at the
    /// log start: a restarted replica learns the HW again from its leader.
    ///
    /// A disk can hold whole, CRC-valid batches that still do not continue the log (a
    /// gap or an overlap in offsets, an epoch going back, no offset or epoch at all):
    /// recovery keeps the prefix before the first such batch and returns the offset
    /// where storage must cut the rest, rather than trusting it or panicking.
    pub fn recover<B: Into<RecoveredBatch>>(batches: Vec<B>) -> (PartitionLog, Option<Offset>) {
        Self::recover_from(batches.into_iter().map(|b| match b.into() {
            RecoveredBatch::Whole(b) => (BatchHeader::parse(&b).ok(), Some(b)),
            RecoveredBatch::Header(h) => (Some(h), None),
        }))
    }

    fn recover_from(
        batches: impl IntoIterator<Item = (Option<BatchHeader>, Option<Bytes>)>,
    ) -> (PartitionLog, Option<Offset>) {
        let mut log: Option<PartitionLog> = None;
        for (header, bytes) in batches {
            let Some(header) = header else {
                return Self::cut(log);
            };
            let fits = header.base_offset >= 0
                && header.partition_leader_epoch >= 0
                && header.last_offset() >= header.base_offset
                && log.as_ref().is_none_or(|l| {
                    header.base_offset as u64 == l.log_end_offset.0
                        && l.latest_epoch()
                            .is_none_or(|e| header.partition_leader_epoch as u32 >= e.0)
                });
            if !fits {
                return Self::cut(log);
            }
            let batch = LogBatch {
                base_offset: Offset(header.base_offset as u64),
                last_offset: Offset(header.last_offset() as u64),
                epoch: Epoch(header.partition_leader_epoch as u32),
                header,
                bytes,
            };
            log.get_or_insert_with(|| PartitionLog::new(batch.base_offset))
                .push(batch);
        }
        (Self::durable(log), None)
    }

    fn cut(log: Option<PartitionLog>) -> (PartitionLog, Option<Offset>) {
        let log = Self::durable(log);
        let at = log.log_end_offset;
        (log, Some(at))
    }

    fn durable(log: Option<PartitionLog>) -> PartitionLog {
        let mut log = log.unwrap_or_else(|| PartitionLog::new(Offset::ZERO));
        log.durable_end_offset = log.log_end_offset;
        log.unflushed_messages = 0;
        log.first_unflushed_at_ms = None;
        log
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> Offset {
        self.log_end_offset
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn durable_end_offset(&self) -> Offset {
        self.durable_end_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn batches(&self) -> &[LogBatch] {
        &self.batches
    }

    /// The bytes of batches the log holds in memory.
    pub fn resident_bytes(&self) -> usize {
        self.resident_bytes
    }

    /// Bounds the in-memory tail: the log keeps the bytes of its newest batches up to
    /// `budget` bytes in all, and of every batch not yet below the high watermark even
    /// past it (followers are about to fetch those, and a shell may still be writing
    /// them); older batches keep their header only and reads refer to them on disk.
    /// `None` keeps every batch's bytes.
    pub fn set_resident_budget(&mut self, budget: Option<usize>) {
        self.resident_budget = budget;
        self.evict();
    }

    /// Drops the bytes of the oldest resident batches below the HW past the budget.
    fn evict(&mut self) {
        let Some(budget) = self.resident_budget else {
            return;
        };
        while self.resident_bytes > budget {
            let Some(b) = self.batches.get_mut(self.resident_from) else {
                break;
            };
            if b.last_offset >= self.high_watermark {
                break;
            }
            if let Some(bytes) = b.bytes.take() {
                self.resident_bytes -= bytes.len();
            }
            self.resident_from += 1;
        }
    }

    pub fn latest_epoch(&self) -> Option<Epoch> {
        self.epochs.last().map(|&(e, _)| e)
    }

    /// The offset at which `epoch` began in this log, if it did.
    pub fn epoch_start_offset(&self, epoch: Epoch) -> Option<Offset> {
        self.epochs
            .iter()
            .find(|&&(e, _)| e == epoch)
            .map(|&(_, o)| o)
    }

    /// Appends a batch whose base offset and epoch are already set. The batch must start
    /// exactly at the log end offset: the caller checked that (a follower's fetched data
    /// is checked by the replica before it gets here).
    pub fn append(&mut self, batch: StoredBatch, now_ms: TimeMs) {
        self.unflushed_messages += batch.record_count();
        self.first_unflushed_at_ms.get_or_insert(now_ms);
        self.push(LogBatch::from_stored(batch));
    }

    fn push(&mut self, batch: LogBatch) {
        assert_eq!(
            batch.base_offset, self.log_end_offset,
            "appends are contiguous"
        );
        assert!(batch.last_offset >= batch.base_offset);
        match self.epochs.last() {
            Some(&(latest, _)) if batch.epoch < latest => {
                panic!("batch epoch {} below latest epoch {latest}", batch.epoch)
            }
            Some(&(latest, _)) if batch.epoch == latest => {}
            _ => self.epochs.push((batch.epoch, batch.base_offset)),
        }
        self.log_end_offset = batch.next_offset();
        self.size_bytes += batch.len() as u64;
        match &batch.bytes {
            // The resident batches are a suffix: once one keeps its bytes, all after do.
            Some(b) => self.resident_bytes += b.len(),
            None => {
                assert_eq!(self.resident_from, self.batches.len(), "resident tail");
                self.resident_from += 1;
            }
        }
        self.batches.push(batch);
    }

    /// Records that leadership in `epoch` starts at the current log end offset (Kafka
    /// writes this entry when a replica becomes leader, before any batch of the epoch).
    pub fn assign_epoch(&mut self, epoch: Epoch) {
        match self.epochs.last() {
            Some(&(latest, _)) if latest >= epoch => {}
            _ => self.epochs.push((epoch, self.log_end_offset)),
        }
    }

    /// Where `epoch` ends in this log: the start offset of the first larger epoch, or the
    /// log end offset if `epoch` is the latest (KIP-101, with KIP-279's rule of answering
    /// with the largest epoch at or below the requested one).
    pub fn end_offset_for_epoch(&self, epoch: Epoch) -> EpochEndOffset {
        let undefined = EpochEndOffset {
            epoch: None,
            end_offset: self.log_end_offset,
        };
        let Some(&(latest, _)) = self.epochs.last() else {
            return undefined;
        };
        if epoch == latest {
            return EpochEndOffset {
                epoch: Some(epoch),
                end_offset: self.log_end_offset,
            };
        }
        let Some(higher) = self.epochs.iter().position(|&(e, _)| e > epoch) else {
            return undefined;
        };
        let end_offset = self.epochs[higher].1;
        let floor = if higher == 0 {
            epoch
        } else {
            self.epochs[higher - 1].0
        };
        EpochEndOffset {
            epoch: Some(floor),
            end_offset,
        }
    }

    /// Removes every batch that holds an offset at or above `offset`. A batch straddling
    /// `offset` goes as a whole, so the new log end offset may be below `offset`.
    /// Returns the new log end offset.
    pub fn truncate_to(&mut self, offset: Offset) -> Offset {
        let keep = self.batches.partition_point(|b| b.last_offset < offset);
        for removed in self.batches.drain(keep..) {
            self.size_bytes -= removed.len() as u64;
            if let Some(b) = removed.bytes {
                self.resident_bytes -= b.len();
            }
        }
        self.resident_from = self.resident_from.min(self.batches.len());
        self.log_end_offset = self
            .batches
            .last()
            .map_or(self.log_start_offset, LogBatch::next_offset);
        let leo = self.log_end_offset;
        self.epochs.retain(|&(_, start)| start < leo);
        self.high_watermark = self.high_watermark.min(leo);
        self.durable_end_offset = self.durable_end_offset.min(leo);
        for (_, up_to) in &mut self.syncs_in_flight {
            *up_to = (*up_to).min(leo);
        }
        self.unflushed_messages = leo.0 - self.durable_end_offset.0;
        leo
    }

    /// Forgets epochs that hold no batch: those starting at the log end offset (a leader
    /// epoch assigned at the log end, which a follower's truncation to that end cuts off).
    pub fn forget_empty_epochs(&mut self) {
        let leo = self.log_end_offset;
        self.epochs.retain(|&(_, start)| start < leo);
    }

    /// Drops everything and starts the log over at `offset` (a follower whose fetch
    /// offset fell below its leader's log start offset).
    pub fn truncate_fully_and_start_at(&mut self, offset: Offset) {
        self.batches.clear();
        self.resident_from = 0;
        self.resident_bytes = 0;
        self.epochs.clear();
        self.size_bytes = 0;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.durable_end_offset = offset;
        for (_, up_to) in &mut self.syncs_in_flight {
            *up_to = offset;
        }
        self.unflushed_messages = 0;
        self.first_unflushed_at_ms = None;
    }

    /// Retention: drops every batch below `offset`, which becomes the log start offset.
    /// `offset` must be a batch boundary at or below the high watermark (storage deletes
    /// whole segments, and a segment starts at a batch); committed data only ever leaves
    /// from the front. The epoch cache keeps the epoch in force at the new start, with
    /// its start moved up to it (Kafka's `truncateFromStart`). Returns whether anything
    /// was dropped.
    pub fn advance_log_start(&mut self, offset: Offset) -> bool {
        if offset <= self.log_start_offset {
            return false;
        }
        assert!(
            offset <= self.high_watermark,
            "retention below the HW only: {offset:?} > {:?}",
            self.high_watermark
        );
        let keep = self.batches.partition_point(|b| b.base_offset < offset);
        assert!(
            self.batches
                .get(keep)
                .is_none_or(|b| b.base_offset == offset)
                && (keep == 0 || self.batches[keep - 1].next_offset() == offset),
            "log start {offset:?} is not a batch boundary"
        );
        let dropped: u64 = self.batches[..keep].iter().map(|b| b.len() as u64).sum();
        for removed in self.batches.drain(..keep) {
            if let Some(b) = removed.bytes {
                self.resident_bytes -= b.len();
            }
        }
        self.resident_from = self.resident_from.saturating_sub(keep);
        self.size_bytes -= dropped;
        let in_force = self.epochs.partition_point(|&(_, start)| start <= offset);
        if in_force > 0 {
            self.epochs.drain(..in_force - 1);
            self.epochs[0].1 = offset;
        }
        self.log_start_offset = offset;
        true
    }

    /// Moves the high watermark. It never passes the log end offset.
    pub fn set_high_watermark(&mut self, hw: Offset) {
        assert!(
            hw <= self.log_end_offset,
            "HW {hw} past LEO {}",
            self.log_end_offset
        );
        self.high_watermark = hw;
        self.evict();
    }

    /// ListOffsets by time: the first offset below `upper_bound` whose record timestamp is
    /// at least `timestamp_ms`, with that record's timestamp; `None` if there is none.
    /// Within an uncompressed batch the answer is the exact record; a compressed batch
    /// (the core never decompresses) answers with its base offset and max timestamp,
    /// which a consumer seeking there reads past. The batch is found by the headers'
    /// max timestamps; when its bytes are no longer in memory the answer names it, and
    /// the shell finds the record in it with [`crate::batch::offset_for_timestamp_in`].
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        upper_bound: Offset,
    ) -> Option<TimestampLookup> {
        let b = self
            .batches
            .iter()
            .take_while(|b| b.last_offset < upper_bound)
            .find(|b| b.header.max_timestamp >= timestamp_ms)?;
        Some(b.lookup(timestamp_ms))
    }

    /// ListOffsets' MAX_TIMESTAMP (KIP-734): the offset of the record with the largest
    /// timestamp below `upper_bound` (the earliest such record on a tie); `None` in an
    /// empty log. Compressed batches answer at batch granularity, as above; a batch whose
    /// bytes are on disk only is named for the shell to look into (the record holding
    /// the batch's max timestamp is the first at or after it).
    pub fn max_timestamp_offset(&self, upper_bound: Offset) -> Option<(i64, TimestampLookup)> {
        let mut best: Option<&LogBatch> = None;
        for b in self
            .batches
            .iter()
            .take_while(|b| b.last_offset < upper_bound)
        {
            if best.is_some_and(|x| b.header.max_timestamp <= x.header.max_timestamp) {
                continue;
            }
            best = Some(b);
        }
        let b = best?;
        let max = b.header.max_timestamp;
        Some((max, b.lookup(max)))
    }

    /// Reads whole batches starting with the one that holds `from`, stopping before the
    /// first batch that reaches `upper_bound` (the HW for consumers, the LEO for
    /// followers) and once `max_bytes` is reached. The first batch is returned even if it
    /// alone exceeds `max_bytes`, as Kafka does since KIP-74, so a consumer always makes
    /// progress. `None` when `from` lies outside [log start, log end].
    pub fn read(&self, from: Offset, max_bytes: usize, upper_bound: Offset) -> Option<ReadResult> {
        if from < self.log_start_offset || from > self.log_end_offset {
            return None;
        }
        let first = self.batches.partition_point(|b| b.last_offset < from);
        let mut result = ReadResult::default();
        for batch in &self.batches[first..] {
            if batch.last_offset >= upper_bound {
                break;
            }
            if !result.batches.is_empty() && result.bytes + batch.len() > max_bytes {
                break;
            }
            result.bytes += batch.len();
            result.batches.push(batch.fetched());
        }
        Some(result)
    }

    /// Whether the flush policy wants a sync now. A sync already in flight covering the
    /// log end offset makes another one pointless; one at a time also gives group commit
    /// (the next sync covers every append made while the first was in flight).
    pub fn sync_due(&self, policy: &FlushPolicy, now_ms: TimeMs) -> bool {
        if self.unflushed_messages == 0 || !self.syncs_in_flight.is_empty() {
            return false;
        }
        if self.unflushed_messages >= policy.interval_messages {
            return true;
        }
        match (policy.interval_ms, self.first_unflushed_at_ms) {
            (Some(interval), Some(first)) => now_ms >= first.saturating_add(interval),
            _ => false,
        }
    }

    /// Notes that sync `id`, covering everything up to the log end offset, was asked of
    /// the disk. Returns the offset it covers.
    pub fn start_sync(&mut self, id: u64) -> Offset {
        let up_to = self.log_end_offset;
        self.syncs_in_flight.push((id, up_to));
        self.unflushed_messages = 0;
        self.first_unflushed_at_ms = None;
        up_to
    }

    /// The disk confirmed sync `id`. Returns whether the durable end offset moved.
    pub fn sync_done(&mut self, id: u64) -> bool {
        let Some(i) = self.syncs_in_flight.iter().position(|&(s, _)| s == id) else {
            return false;
        };
        let (_, up_to) = self.syncs_in_flight.remove(i);
        if up_to > self.durable_end_offset {
            self.durable_end_offset = up_to;
            return true;
        }
        false
    }

    /// Syncs the disk will never confirm (the storage failed them): forget them so the
    /// policy asks again.
    pub fn sync_failed(&mut self, id: u64) {
        self.syncs_in_flight.retain(|&(s, _)| s != id);
        self.unflushed_messages = self.log_end_offset.0 - self.durable_end_offset.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{self, BatchBuilder, NewRecord};

    fn batch(base: u64, records: usize, epoch: u32) -> StoredBatch {
        let mut b = BatchBuilder::new();
        for _ in 0..records {
            b.push(NewRecord::default());
        }
        let mut bytes = bytes::BytesMut::from(&b.build()[..]);
        batch::set_base_offset(&mut bytes, base as i64);
        batch::set_partition_leader_epoch(&mut bytes, epoch as i32);
        StoredBatch::from_validated(bytes.freeze())
    }

    /// Epochs 1 at 0, 3 at 4, 5 at 6; LEO 8.
    fn log() -> PartitionLog {
        let mut log = PartitionLog::new(Offset::ZERO);
        log.append(batch(0, 2, 1), 0);
        log.append(batch(2, 2, 1), 0);
        log.append(batch(4, 2, 3), 0);
        log.append(batch(6, 2, 5), 0);
        log
    }

    fn timed_batch(base: u64, timestamps: &[i64]) -> StoredBatch {
        let mut b = BatchBuilder::new();
        for &timestamp_ms in timestamps {
            b.push(NewRecord {
                timestamp_ms,
                ..NewRecord::default()
            });
        }
        let mut bytes = bytes::BytesMut::from(&b.build()[..]);
        batch::set_base_offset(&mut bytes, base as i64);
        batch::set_partition_leader_epoch(&mut bytes, 0);
        StoredBatch::from_validated(bytes.freeze())
    }

    #[test]
    fn offsets_by_timestamp_find_the_first_record_at_or_after_the_time() {
        let mut log = PartitionLog::new(Offset::ZERO);
        log.append(timed_batch(0, &[100, 300, 200]), 0);
        log.append(timed_batch(3, &[400, 500]), 0);
        let all = Offset(5);
        let found = |o, ts| Some(TimestampLookup::Found(Offset(o), ts));
        assert_eq!(log.offset_for_timestamp(0, all), found(0, 100));
        assert_eq!(log.offset_for_timestamp(150, all), found(1, 300));
        assert_eq!(log.offset_for_timestamp(450, all), found(4, 500));
        assert_eq!(log.offset_for_timestamp(501, all), None);
        // Nothing at or above the bound (the HW) is visible.
        assert_eq!(log.offset_for_timestamp(450, Offset(3)), None);
        assert_eq!(
            log.max_timestamp_offset(all),
            Some((500, found(4, 500).unwrap()))
        );
        assert_eq!(
            log.max_timestamp_offset(Offset(3)),
            Some((300, found(1, 300).unwrap()))
        );
        // Once the bytes left memory, the lookup names the batch, and the records read
        // back from disk give the same exact answer.
        let bytes: Vec<Bytes> = log
            .batches()
            .iter()
            .map(|b| b.bytes.clone().unwrap())
            .collect();
        log.set_high_watermark(all);
        log.set_resident_budget(Some(0));
        assert_eq!(log.resident_bytes(), 0);
        let Some(TimestampLookup::InStoredBatch {
            base_offset, len, ..
        }) = log.offset_for_timestamp(150, all)
        else {
            panic!("the batch is on disk only");
        };
        assert_eq!((base_offset, len as usize), (Offset(0), bytes[0].len()));
        assert_eq!(
            batch::offset_for_timestamp_in(&bytes[0], 150).unwrap(),
            (Offset(1), 300)
        );
        assert!(matches!(
            log.max_timestamp_offset(all),
            Some((
                500,
                TimestampLookup::InStoredBatch {
                    base_offset: Offset(3),
                    ..
                }
            ))
        ));
        assert_eq!(
            PartitionLog::new(Offset::ZERO).max_timestamp_offset(all),
            None
        );
    }

    #[test]
    fn retention_drops_whole_batches_from_the_front_and_keeps_the_epoch_in_force() {
        let mut log = log();
        log.set_high_watermark(Offset(8));
        assert!(!log.advance_log_start(Offset(0)));
        assert!(log.advance_log_start(Offset(4)));
        assert_eq!(log.log_start_offset(), Offset(4));
        assert_eq!(log.batches()[0].base_offset, Offset(4));
        assert_eq!(
            log.epochs,
            vec![(Epoch(3), Offset(4)), (Epoch(5), Offset(6))]
        );
        assert_eq!(
            log.size_bytes(),
            log.batches().iter().map(|b| b.len() as u64).sum::<u64>()
        );
        // Reads below the new start are out of range; from it, they work.
        assert!(log.read(Offset(2), 1 << 20, Offset(8)).is_none());
        assert_eq!(
            log.read(Offset(4), 1 << 20, Offset(8))
                .unwrap()
                .batches
                .len(),
            2
        );
        // Into the middle of an epoch: the epoch's start moves up.
        assert!(log.advance_log_start(Offset(8)));
        assert_eq!(log.epochs, vec![(Epoch(5), Offset(8))]);
        assert!(log.batches().is_empty());
        assert_eq!(log.log_end_offset(), Offset(8));
    }

    #[test]
    #[should_panic(expected = "retention below the HW only")]
    fn retention_never_passes_the_high_watermark() {
        let mut log = log();
        log.set_high_watermark(Offset(2));
        log.advance_log_start(Offset(4));
    }

    #[test]
    fn epoch_end_offsets_follow_kip_101_and_kip_279() {
        let log = log();
        let end = |e| log.end_offset_for_epoch(Epoch(e));
        assert_eq!(
            end(5),
            EpochEndOffset {
                epoch: Some(Epoch(5)),
                end_offset: Offset(8)
            }
        );
        assert_eq!(
            end(3),
            EpochEndOffset {
                epoch: Some(Epoch(3)),
                end_offset: Offset(6)
            }
        );
        // An epoch this log never had: the largest below it, ending where the next begins.
        assert_eq!(
            end(4),
            EpochEndOffset {
                epoch: Some(Epoch(3)),
                end_offset: Offset(6)
            }
        );
        assert_eq!(
            end(2),
            EpochEndOffset {
                epoch: Some(Epoch(1)),
                end_offset: Offset(4)
            }
        );
        // Below the first epoch: the asked epoch, ending where the log's first epoch starts.
        assert_eq!(
            end(0),
            EpochEndOffset {
                epoch: Some(Epoch(0)),
                end_offset: Offset(0)
            }
        );
        // Above the latest: unknown.
        assert_eq!(end(9).epoch, None);
    }

    #[test]
    fn truncation_removes_a_straddling_batch_whole_and_its_epochs() {
        let mut log = log();
        log.set_high_watermark(Offset(7));
        assert_eq!(log.truncate_to(Offset(5)), Offset(4));
        assert_eq!(log.log_end_offset(), Offset(4));
        assert_eq!(log.high_watermark(), Offset(4));
        assert_eq!(log.latest_epoch(), Some(Epoch(1)));
        assert_eq!(log.batches().len(), 2);
    }

    #[test]
    fn reads_stop_at_the_bound_and_always_return_a_first_batch() {
        let log = log();
        let all = log.read(Offset(0), usize::MAX, Offset(8)).unwrap();
        assert_eq!(all.batches.len(), 4);
        // Bounded by an HW of 5: the batch holding offset 5 is not visible.
        assert_eq!(
            log.read(Offset(0), usize::MAX, Offset(5))
                .unwrap()
                .batches
                .len(),
            2
        );
        // A byte limit of 1 still returns the first batch (KIP-74).
        assert_eq!(log.read(Offset(3), 1, Offset(8)).unwrap().batches.len(), 1);
        // Reading from the middle of a batch returns that batch.
        let mid = log.read(Offset(5), usize::MAX, Offset(8)).unwrap();
        let first = mid.batches[0].bytes().unwrap().clone();
        assert_eq!(StoredBatch::from_validated(first).base_offset, Offset(4));
        assert!(log.read(Offset(9), 10, Offset(8)).is_none());
    }

    #[test]
    fn the_log_keeps_only_a_bounded_tail_of_committed_bytes_and_reads_refer_to_the_rest() {
        let mut log = log();
        let sizes: Vec<usize> = log.batches().iter().map(LogBatch::len).collect();
        let total: usize = sizes.iter().sum();
        // Room for two batches in all.
        log.set_resident_budget(Some(sizes[2] + sizes[3]));
        // Nothing is below the HW yet: everything stays.
        assert_eq!(log.resident_bytes(), total);
        log.set_high_watermark(Offset(6));
        // Below the HW (batches 0..=2), the oldest go until the tail fits the budget.
        assert_eq!(log.resident_bytes(), sizes[2] + sizes[3]);
        let read = log.read(Offset(1), usize::MAX, Offset(8)).unwrap();
        assert_eq!(
            read.batches[..2],
            [
                FetchedBatch::Stored {
                    base_offset: Offset(0),
                    len: sizes[0] as u32
                },
                FetchedBatch::Stored {
                    base_offset: Offset(2),
                    len: sizes[1] as u32
                },
            ]
        );
        assert!(read.batches[2].bytes().is_some() && read.batches[3].bytes().is_some());
        assert_eq!(read.bytes, total);
        // A batch not yet below the HW keeps its bytes even past the budget.
        log.set_resident_budget(Some(0));
        assert_eq!(log.resident_bytes(), sizes[3]);
        // Truncation and retention keep the count right.
        log.truncate_to(Offset(6));
        assert_eq!(log.resident_bytes(), 0);
        log.append(batch(6, 2, 5), 0);
        assert_eq!(log.resident_bytes(), sizes[3]);
        log.advance_log_start(Offset(4));
        assert_eq!(log.batches().len(), 2);
        assert!(log.batches()[0].bytes.is_none() && log.batches()[1].bytes.is_some());
        log.set_high_watermark(Offset(8));
        assert_eq!(log.resident_bytes(), 0);
        // Reads resolve references in order and stop at the first one not found whole.
        let read = log.read(Offset(4), usize::MAX, Offset(8)).unwrap();
        let disk = [batch(4, 2, 3).bytes, batch(6, 2, 5).bytes];
        let all = resolve_batches(read.batches.clone(), |o, _| {
            disk.iter()
                .find(|b| b[..8] == (o.0 as i64).to_be_bytes())
                .cloned()
        });
        assert_eq!(all, disk.to_vec());
        let torn = resolve_batches(read.batches.clone(), |o, len| {
            (o == Offset(4)).then(|| disk[0].slice(..len as usize - 1))
        });
        assert!(torn.is_empty());
        let gone = resolve_batches(read.batches, |o, _| {
            (o == Offset(6)).then(|| disk[1].clone())
        });
        assert!(
            gone.is_empty(),
            "a later batch is never served past a missing one"
        );
    }

    #[test]
    fn recovery_from_headers_keeps_no_bytes_and_refers_reads_to_disk() {
        let batches = [batch(0, 2, 1).bytes, batch(2, 1, 4).bytes];
        let headers: Vec<BatchHeader> = batches
            .iter()
            .map(|b| BatchHeader::parse(b).unwrap())
            .collect();
        let (log, cut) = PartitionLog::recover(headers);
        assert_eq!(cut, None);
        assert_eq!(log.log_end_offset(), Offset(3));
        assert_eq!(log.epoch_start_offset(Epoch(4)), Some(Offset(2)));
        assert_eq!(log.resident_bytes(), 0);
        let read = log.read(Offset(0), usize::MAX, Offset(3)).unwrap();
        assert_eq!(
            read.batches,
            vec![
                FetchedBatch::Stored {
                    base_offset: Offset(0),
                    len: batches[0].len() as u32
                },
                FetchedBatch::Stored {
                    base_offset: Offset(2),
                    len: batches[1].len() as u32
                }
            ]
        );
    }

    #[test]
    fn durability_is_what_the_disk_confirmed_and_truncation_lowers_pending_syncs() {
        let policy = FlushPolicy {
            interval_messages: 3,
            interval_ms: None,
        };
        let mut log = PartitionLog::new(Offset::ZERO);
        log.append(batch(0, 2, 1), 0);
        assert!(!log.sync_due(&policy, 0));
        log.append(batch(2, 2, 1), 0);
        assert!(log.sync_due(&policy, 0));
        log.start_sync(1);
        // One sync at a time: appends made meanwhile wait for the next (group commit).
        log.append(batch(4, 4, 1), 0);
        assert!(!log.sync_due(&policy, 0));
        assert_eq!(log.durable_end_offset(), Offset::ZERO);
        // The bytes sync 1 would confirm above offset 2 are cut before it completes.
        log.truncate_to(Offset(2));
        assert!(log.sync_done(1));
        assert_eq!(log.durable_end_offset(), Offset(2));
    }

    #[test]
    fn the_time_based_flush_fires_after_the_interval() {
        let policy = FlushPolicy {
            interval_messages: u64::MAX,
            interval_ms: Some(1_000),
        };
        let mut log = PartitionLog::new(Offset::ZERO);
        log.append(batch(0, 1, 1), 500);
        assert!(!log.sync_due(&policy, 1_499));
        assert!(log.sync_due(&policy, 1_500));
    }

    #[test]
    fn recovery_rebuilds_the_epoch_cache_from_the_batches() {
        let (recovered, cut) =
            PartitionLog::recover(vec![batch(0, 2, 1).bytes, batch(2, 1, 4).bytes]);
        assert_eq!(cut, None);
        assert_eq!(recovered.log_end_offset(), Offset(3));
        assert_eq!(recovered.durable_end_offset(), Offset(3));
        assert_eq!(recovered.epoch_start_offset(Epoch(4)), Some(Offset(2)));
        assert_eq!(recovered.high_watermark(), Offset::ZERO);
    }

    #[test]
    fn recovery_keeps_the_prefix_that_continues_and_says_where_to_cut() {
        // A gap: offsets 2..=3 are missing.
        let (log, cut) = PartitionLog::recover(vec![batch(0, 2, 1).bytes, batch(4, 1, 1).bytes]);
        assert_eq!((log.log_end_offset(), cut), (Offset(2), Some(Offset(2))));
        // An epoch going back.
        let (log, cut) = PartitionLog::recover(vec![batch(0, 2, 3).bytes, batch(2, 1, 1).bytes]);
        assert_eq!((log.log_end_offset(), cut), (Offset(2), Some(Offset(2))));
        // A batch that never got an offset or an epoch (as a producer sent it).
        let mut b = BatchBuilder::new();
        b.push(NewRecord::default());
        let (log, cut) = PartitionLog::recover(vec![b.build()]);
        assert_eq!(
            (log.log_end_offset(), cut),
            (Offset::ZERO, Some(Offset::ZERO))
        );
    }
}

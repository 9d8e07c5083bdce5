//! Partition logs on disk: `log.dirs/<topic>-<partition>/` holding segment files named by
//! the base offset of their first batch (`00000000000000000042.log`), each with its
//! sparse offset index (`.index`) and time index (`.timeindex`), as Kafka lays them out.
//!
//! The core decides what the log holds; this module carries out its [`StorageOp`]s —
//! append, truncate, start over, sync — on files, and on start reads every partition
//! back for the core to recover from. A segment holds record batches back to back,
//! exactly the bytes the producer sent with the base offset filled in, so recovery is a
//! CRC scan ([`eddy_core::batch::validate`]): the first torn or corrupt batch and
//! everything after it are cut, which is what a crash in the middle of a write leaves
//! behind. Batches below the partition's recovery point (how far it is known synced, from
//! each log dir's `recovery-point-offset-checkpoint`, see [`checkpoint`]) are only walked,
//! not CRC-checked, as Kafka recovers only what follows its recovery point.
//!
//! Appends reach the page cache at once; only a sync (`fdatasync` of every segment written
//! since the last one) makes them durable, and the core releases what depends on
//! durability (acks under a sync-before-ack flush policy) only when the sync has
//! completed. A segment that rolls is flushed in the background, as Kafka flushes a rolled
//! segment, which moves the recovery point even when the flush policy never syncs.
//!
//! The core keeps only a bounded tail of each partition's bytes in memory and refers
//! reads of older batches to the files by base offset and length. Each segment knows the
//! position of every batch it holds, so [`PartitionDir::locate`] finds one without I/O
//! and hands back a [`StoredRead`] — the segment's shared read handle and the position —
//! which reads the batch with one positional read into one buffer, on whatever thread
//! the caller picks: the actor only locates (its writes and the positions are its own),
//! and client fetches and ListOffsets read on a blocking thread of the connection's
//! (`broker/handlers/stored.rs`); replication responses, bounded by the follower's fetch
//! size and only for a follower behind the in-memory tail, are read on the actor. The
//! position of a batch never changes except when it is truncated away or its segment
//! deleted by retention: a read that races either finds no bytes or a header naming
//! another batch, and gives `None`, never other bytes; a deleted segment stays readable
//! through a handle taken before. [`PartitionDir::position_of`] and
//! [`PartitionDir::batch_for_timestamp`] find a batch through the offset and time indexes
//! as Kafka does, and [`PartitionDir::restore`] brings the files back in line with the
//! core's log when a partition that went offline on a full disk comes back.
//!
//! [`StorageOp`]: eddy_core::message::StorageOp

pub mod checkpoint;
mod index;
#[cfg(test)]
mod tests;

use crate::disk::{self as fs, File, FileExt, OpenOptions};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use eddy_core::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use eddy_core::config::BrokerConfig;
use eddy_core::log::{stored_batch_matches, LogBatch};
use eddy_core::types::{Offset, TopicPartition};

pub use index::IndexProblem;
use index::SegmentIndex;

/// The suffix of a segment file.
const SEGMENT_SUFFIX: &str = ".log";

/// Kafka rolls a segment before a relative offset would no longer fit an index entry
/// (its `canConvertToRelativeOffset` check uses `Integer.MAX_VALUE`).
const MAX_RELATIVE_OFFSET: u64 = i32::MAX as u64;

/// A storage failure, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The settings a partition's files follow (the broker's, or its topic's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.segment.bytes` / `segment.bytes`.
    pub segment_bytes: u64,
    /// `log.roll.ms` / `segment.ms`.
    pub roll_ms: u64,
    /// `log.index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `log.index.size.max.bytes`.
    pub index_size_max_bytes: u64,
}

impl LogConfig {
    pub fn from_broker(cfg: &BrokerConfig) -> LogConfig {
        LogConfig {
            segment_bytes: cfg.log_segment_bytes.into(),
            roll_ms: cfg.log_roll_ms,
            index_interval_bytes: cfg.log_index_interval_bytes.into(),
            index_size_max_bytes: cfg.log_index_size_max_bytes.into(),
        }
    }
}

/// Where one batch lies in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchPos {
    pub(crate) base_offset: u64,
    /// One past the batch's last offset.
    pub(crate) next_offset: u64,
    pub(crate) position: u64,
    pub(crate) max_timestamp_ms: i64,
}

impl BatchPos {
    fn new(header: &BatchHeader, position: u64) -> BatchPos {
        BatchPos {
            base_offset: header.base_offset as u64,
            next_offset: header.last_offset() as u64 + 1,
            position,
            max_timestamp_ms: header.max_timestamp,
        }
    }
}

#[derive(Debug)]
struct Segment {
    base_offset: u64,
    path: PathBuf,
    file: File,
    /// A second handle on the file for positional reads of stored batches, shared with
    /// the reads under way off the actor ([`StoredRead`]): a segment deleted meanwhile
    /// stays readable through it until the last read is done, as an open file does.
    reader: Arc<File>,
    size_bytes: u64,
    batches: Vec<BatchPos>,
    index: SegmentIndex,
    /// Written since the last sync.
    dirty: bool,
    /// Wall-clock time of the first append to this segment in this process, for rolling
    /// by `log.roll.ms`; a recovered segment counts from the recovery.
    opened_at_ms: Option<u64>,
}

impl Segment {
    fn create(dir: &Path, base_offset: u64) -> Result<Segment, StorageError> {
        let path = dir.join(segment_name(base_offset));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.set_len(0).map_err(io_err("truncate", &path))?;
        let reader = Arc::new(file.try_clone().map_err(io_err("open", &path))?);
        Ok(Segment {
            base_offset,
            path,
            file,
            reader,
            size_bytes: 0,
            batches: Vec::new(),
            index: SegmentIndex::create(dir, base_offset)?,
            dirty: true,
            opened_at_ms: None,
        })
    }

    /// Cuts the file to `len` bytes, keeping only the batches that end within it, and
    /// the index entries of what is left.
    fn cut(&mut self, len: u64, index_interval_bytes: u64) -> Result<(), StorageError> {
        self.file
            .set_len(len)
            .map_err(io_err("truncate", &self.path))?;
        self.size_bytes = len;
        self.batches.retain(|b| b.position < len);
        self.index
            .truncate_to(self.base_offset, &self.batches, index_interval_bytes)?;
        self.dirty = true;
        Ok(())
    }

    /// One past the last offset this segment holds (its base offset when empty).
    fn next_offset(&self) -> u64 {
        self.batches
            .last()
            .map_or(self.base_offset, |b| b.next_offset)
    }

    /// Removes the segment's file and its indexes.
    fn delete(self) -> Result<(), StorageError> {
        fs::remove_file(&self.path).map_err(io_err("remove", &self.path))?;
        self.index.delete()
    }

    /// The segment's file and index files, for a sync.
    fn files(&self) -> Result<Vec<(PathBuf, File)>, StorageError> {
        let file = self.file.try_clone().map_err(io_err("sync", &self.path))?;
        let mut files = vec![(self.path.clone(), file)];
        files.extend(self.index.files()?);
        Ok(files)
    }
}

/// A generation no [`PartitionDir`] of this process has had: the directory of a
/// partition may be reopened (coming back from a storage failure) while syncs of its
/// previous opening are still in flight.
fn next_generation() -> u64 {
    static GENERATIONS: AtomicU64 = AtomicU64::new(0);
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}{SEGMENT_SUFFIX}")
}

/// How far a sync reaches: everything below `up_to` is on disk once it completes, unless
/// the log was truncated meanwhile (`generation` moved), which may have replaced what it
/// flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncPoint {
    up_to: u64,
    generation: u64,
}

/// One partition's directory and its segments, oldest first.
#[derive(Debug)]
pub struct PartitionDir {
    dir: PathBuf,
    segments: Vec<Segment>,
    config: LogConfig,
    /// Everything below this offset is known to be on disk (Kafka's recovery point).
    recovery_point: u64,
    /// Changed by every truncation (and unique to this opening of the directory): a sync
    /// begun before one, or by an earlier opening, cannot move the recovery point.
    generation: u64,
    /// The flush of segments that rolled, for the caller to run off its thread.
    roll_flush: Option<SyncJob>,
}

/// What recovery found in a partition directory.
#[derive(Debug)]
pub struct Recovered {
    /// Whole, CRC-checked batches in offset order.
    pub batches: Vec<Bytes>,
    /// Bytes cut from the tail: a torn or corrupt write, and whatever followed it.
    pub cut_bytes: u64,
    /// The base offset of the oldest segment: where the log starts, even when it holds
    /// no batches (after retention or a full truncation).
    pub log_start_offset: u64,
    /// Bytes whose CRC was checked: those at or above the recovery point.
    pub checked_bytes: u64,
    /// Index files that did not match their segment and were rebuilt.
    pub rebuilt_indexes: Vec<(PathBuf, IndexProblem)>,
}

/// How a segment's bytes were read back.
struct SegmentScan {
    batches: Vec<(std::ops::Range<usize>, BatchHeader)>,
    valid_len: usize,
    /// Why the walk stopped before the end, if it did.
    stopped: Option<String>,
    checked_bytes: u64,
}

/// Walks the batches of a segment's bytes. A batch that ends below `recovery_point` is
/// known synced and whole, so only its header is read (to find the next one); from the
/// first batch above it — or the first whose header does not hold up — every batch's CRC
/// and fields are checked, and the walk stops at the first bad one.
fn scan_segment(buf: &[u8], recovery_point: u64) -> SegmentScan {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut checked_bytes = 0;
    let mut trusting = true;
    let stopped = loop {
        let rest = &buf[start..];
        if rest.is_empty() {
            break None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        // Offsets a log can hold: not negative, and the last one does not wrap.
        if header.base_offset < 0
            || header.last_offset_delta < 0
            || header.base_offset > i64::MAX - i64::from(i32::MAX)
        {
            break Some(format!(
                "base offset {} with last offset delta {} is not a place in a log",
                header.base_offset, header.last_offset_delta
            ));
        }
        let len = header.total_len();
        if len > rest.len() {
            break Some(
                BatchError::TooShort {
                    need: len,
                    have: rest.len(),
                }
                .to_string(),
            );
        }
        trusting &= len >= HEADER_LEN && (header.last_offset() as u64) < recovery_point;
        if !trusting {
            if let Err(e) = batch::validate(&rest[..len]) {
                break Some(e.to_string());
            }
            checked_bytes += len as u64;
        }
        batches.push((start..start + len, header));
        start += len;
    };
    SegmentScan {
        batches,
        valid_len: start,
        stopped,
        checked_bytes,
    }
}

impl PartitionDir {
    /// Rolls segments at `segment_bytes` / `roll_ms` from now on (a topic's own
    /// `segment.bytes` / `segment.ms`).
    pub fn set_roll(&mut self, segment_bytes: u64, roll_ms: u64) {
        self.config.segment_bytes = segment_bytes.max(1);
        self.config.roll_ms = roll_ms;
    }

    /// Opens (creating if needed) a partition directory and reads its segments back.
    /// A torn or corrupt tail is cut from the files before this returns, so the files
    /// and the returned batches agree; index files that do not match their segments are
    /// rebuilt. Batches below `recovery_point` (from the log dir's checkpoint) are not
    /// CRC-checked; `None` checks everything.
    pub fn open(
        dir: PathBuf,
        config: LogConfig,
        recovery_point: Option<u64>,
    ) -> Result<(PartitionDir, Recovered), StorageError> {
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let mut bases = Vec::new();
        let mut index_bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) {
                if let Ok(base) = stem.parse::<u64>() {
                    bases.push(base);
                }
            }
            for suffix in [index::OFFSET_INDEX_SUFFIX, index::TIME_INDEX_SUFFIX] {
                if let Some(Ok(base)) = name.strip_suffix(suffix).map(str::parse::<u64>) {
                    index_bases.push(base);
                }
            }
        }
        bases.sort_unstable();
        // Index files whose segment is gone (a crash between removing the segment and
        // its indexes) would be taken for a new segment's someday: remove them.
        for base in index_bases {
            if bases.binary_search(&base).is_err() {
                index::remove_files(&dir, base)?;
            }
        }
        let recovery_point = recovery_point.unwrap_or(0);

        let mut segments: Vec<Segment> = Vec::new();
        let mut batches = Vec::new();
        let mut cut_bytes = 0;
        let mut checked_bytes = 0;
        let mut rebuilt_indexes = Vec::new();
        let mut torn = false;
        let last_base = bases.last().copied();
        for base in bases {
            let path = dir.join(segment_name(base));
            if torn {
                // Everything after a torn write is gone with it: the core would not keep
                // it (offsets would not continue), so neither do the files.
                cut_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                index::remove_files(&dir, base)?;
                continue;
            }
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).map_err(io_err("read", &path))?;
            let buf = Bytes::from(buf);
            let scan = scan_segment(&buf, recovery_point);
            checked_bytes += scan.checked_bytes;
            let mut positions = Vec::with_capacity(scan.batches.len());
            for (range, header) in &scan.batches {
                positions.push(BatchPos::new(header, range.start as u64));
                batches.push(buf.slice(range.clone()));
            }
            let cut = scan.valid_len < buf.len();
            if cut {
                tracing::warn!(
                    segment = %path.display(),
                    valid_bytes = scan.valid_len,
                    cut_bytes = buf.len() - scan.valid_len,
                    reason = ?scan.stopped,
                    "cutting a torn or corrupt tail found on recovery"
                );
                cut_bytes += (buf.len() - scan.valid_len) as u64;
                file.set_len(scan.valid_len as u64)
                    .map_err(io_err("truncate", &path))?;
                torn = true;
            }
            // A segment that rolled has its closing time entry; the last one is active.
            let closed = Some(base) != last_base && !cut;
            let (index, problems) = SegmentIndex::open(
                &dir,
                base,
                &positions,
                config.index_interval_bytes,
                closed,
                scan.valid_len as u64,
            )?;
            for (problem, name) in problems
                .into_iter()
                .zip([index::offset_index_name(base), index::time_index_name(base)])
            {
                if let Some(problem) = problem {
                    let index_path = dir.join(name);
                    tracing::warn!(index = %index_path.display(), ?problem, "rebuilt an index file from its segment");
                    rebuilt_indexes.push((index_path, problem));
                }
            }
            let reader = Arc::new(file.try_clone().map_err(io_err("open", &path))?);
            let segment = Segment {
                base_offset: base,
                path,
                file,
                reader,
                size_bytes: scan.valid_len as u64,
                batches: positions,
                index,
                dirty: cut,
                opened_at_ms: None,
            };
            segments.push(segment);
        }
        let mut part = PartitionDir {
            dir,
            segments,
            config: LogConfig {
                segment_bytes: config.segment_bytes.max(1),
                ..config
            },
            recovery_point: 0,
            generation: next_generation(),
            roll_flush: None,
        };
        if part.segments.is_empty() {
            part.segments.push(Segment::create(&part.dir, 0)?);
        }
        let log_start_offset = part.segments[0].base_offset;
        // The recovery point never claims more than what is there; what lies above it
        // may be only in the page cache (a crash of the process, not of the machine), so
        // the next sync must cover it.
        part.recovery_point = recovery_point.clamp(log_start_offset, part.log_end_offset());
        for segment in &mut part.segments {
            if segment.next_offset() > part.recovery_point {
                segment.dirty = true;
            }
        }
        if cut_bytes > 0 {
            part.sync()?;
        }
        Ok((
            part,
            Recovered {
                batches,
                cut_bytes,
                log_start_offset,
                checked_bytes,
                rebuilt_indexes,
            },
        ))
    }

    /// One past the last offset on disk.
    pub fn log_end_offset(&self) -> u64 {
        self.segments
            .last()
            .expect("a partition always has a segment")
            .next_offset()
    }

    /// Everything below this offset is known synced.
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }

    /// The partition's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The log dir this partition lives in.
    pub fn log_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Appends a batch whose base offset is already written into its bytes. `now_ms` is
    /// the wall clock, for rolling by `log.roll.ms`.
    pub fn append(
        &mut self,
        base_offset: Offset,
        batch: &[u8],
        now_ms: u64,
    ) -> Result<(), StorageError> {
        let header = batch::BatchHeader::parse(batch).expect("the core appends only valid batches");
        assert_eq!(
            header.base_offset as u64, base_offset.0,
            "batch bytes and offset disagree"
        );
        let config = self.config;
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        let opened_at = *active.opened_at_ms.get_or_insert(now_ms);
        let full = active.size_bytes + batch.len() as u64 > config.segment_bytes;
        let old = now_ms.saturating_sub(opened_at) >= config.roll_ms;
        let index_full = active.index.is_full(config.index_size_max_bytes);
        let offsets_overflow =
            (header.last_offset() as u64).saturating_sub(active.base_offset) > MAX_RELATIVE_OFFSET;
        if active.size_bytes > 0 && (full || old || index_full || offsets_overflow) {
            active.index.close()?;
            self.segments
                .push(Segment::create(&self.dir, base_offset.0)?);
            self.roll_flush = Some(self.begin_roll_flush(base_offset.0)?);
        }
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        active.opened_at_ms.get_or_insert(now_ms);
        let pos = BatchPos::new(&header, active.size_bytes);
        // The index entry goes first, as in Kafka: a crash between the two leaves an
        // entry past the segment's end, which recovery finds and rebuilds.
        active
            .index
            .on_append(active.base_offset, &pos, config.index_interval_bytes)?;
        active
            .file
            .write_all(batch)
            .map_err(io_err("append to", &active.path))?;
        active.batches.push(pos);
        active.size_bytes += batch.len() as u64;
        active.dirty = true;
        Ok(())
    }

    /// The flush of every inactive segment holding data above the recovery point, after
    /// a roll to `new_base`: once done, everything below `new_base` is on disk. Dirty
    /// flags stay as they are, so the core's next sync still covers those segments (a
    /// cheap no-op if this flush got there first).
    fn begin_roll_flush(&self, new_base: u64) -> Result<SyncJob, StorageError> {
        let mut files = Vec::new();
        for segment in &self.segments[..self.segments.len() - 1] {
            if segment.next_offset() > self.recovery_point {
                files.extend(segment.files()?);
            }
        }
        Ok(SyncJob {
            files,
            dir: self.dir.clone(),
            point: SyncPoint {
                up_to: new_base,
                generation: self.generation,
            },
        })
    }

    /// The flush a roll asked for, if any, to run off the caller's thread; report its
    /// success with [`PartitionDir::synced`].
    pub fn take_roll_flush(&mut self) -> Option<SyncJob> {
        self.roll_flush.take()
    }

    /// Where retention would move the log start: past every segment, oldest first, whose
    /// newest record is older than `retention_ms`, or whose removal still leaves at least
    /// `retention_bytes` (Kafka's time and size retention). The active segment is never
    /// removed, and neither is any data at or above `high_watermark`. `None` when nothing
    /// is due.
    pub fn retention_point(
        &self,
        now_ms: u64,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
        high_watermark: u64,
    ) -> Option<u64> {
        let mut total: u64 = self.segments.iter().map(|s| s.size_bytes).sum();
        let mut new_start = None;
        for pair in self.segments.windows(2) {
            let (segment, next) = (&pair[0], &pair[1]);
            if next.base_offset > high_watermark {
                break;
            }
            let newest = segment.batches.iter().map(|b| b.max_timestamp_ms).max();
            let expired = retention_ms.is_some_and(|r| {
                newest.is_some_and(|t| (now_ms as i64).saturating_sub(t) > r as i64)
            });
            let oversized = retention_bytes.is_some_and(|r| total - segment.size_bytes >= r);
            if !(expired || oversized) {
                break;
            }
            total -= segment.size_bytes;
            new_start = Some(next.base_offset);
        }
        new_start
    }

    /// Removes every segment (with its indexes) that ends at or below `offset`, a
    /// segment base offset.
    pub fn delete_segments_before(&mut self, offset: u64) -> Result<(), StorageError> {
        while self.segments.len() > 1 && self.segments[1].base_offset <= offset {
            self.segments.remove(0).delete()?;
        }
        Ok(())
    }

    /// Drops every batch holding an offset at or above `offset`.
    pub fn truncate(&mut self, offset: Offset) -> Result<(), StorageError> {
        self.generation = next_generation();
        self.recovery_point = self.recovery_point.min(offset.0);
        while self.segments.len() > 1
            && self.segments.last().expect("non-empty").base_offset >= offset.0
        {
            self.segments.pop().expect("non-empty").delete()?;
        }
        let interval = self.config.index_interval_bytes;
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        if let Some(first_cut) = active.batches.iter().find(|b| b.next_offset > offset.0) {
            let len = first_cut.position;
            active.cut(len, interval)?;
        } else if active.index.is_closed() {
            // A segment that becomes the active one again loses its closing time entry.
            let len = active.size_bytes;
            active.cut(len, interval)?;
        }
        Ok(())
    }

    /// Drops everything; the log restarts at `offset`.
    pub fn truncate_fully(&mut self, offset: Offset) -> Result<(), StorageError> {
        self.generation = next_generation();
        for segment in self.segments.drain(..) {
            segment.delete()?;
        }
        self.segments.push(Segment::create(&self.dir, offset.0)?);
        self.recovery_point = offset.0;
        self.sync()
    }

    /// Makes everything written so far durable: every dirty segment and the directory
    /// (so new and removed segment files survive a crash too).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let job = self.begin_sync()?;
        let point = job.point();
        job.run()?;
        self.synced(point);
        Ok(())
    }

    /// Syncs every file of the partition, dirty or not, and moves the recovery point to
    /// the log end: for a clean shutdown, after which a restart checks nothing below it.
    /// Blocks.
    pub fn flush_all(&mut self) -> Result<(), StorageError> {
        let mut files = Vec::new();
        for segment in &mut self.segments {
            files.extend(segment.files()?);
            segment.dirty = false;
        }
        let job = SyncJob {
            files,
            dir: self.dir.clone(),
            point: SyncPoint {
                up_to: self.log_end_offset(),
                generation: self.generation,
            },
        };
        let point = job.point();
        job.run()?;
        self.synced(point);
        Ok(())
    }

    /// Takes what a sync must flush (the segments written since the last one, and the
    /// directory), to be flushed off the caller's thread with [`SyncJob::run`]: appends
    /// go on meanwhile, and the next sync covers them all (group commit). Once it has
    /// run, [`PartitionDir::synced`] moves the recovery point.
    pub fn begin_sync(&mut self) -> Result<SyncJob, StorageError> {
        let mut files = Vec::new();
        for segment in self.segments.iter_mut().filter(|s| s.dirty) {
            files.extend(segment.files()?);
            segment.dirty = false;
        }
        Ok(SyncJob {
            files,
            dir: self.dir.clone(),
            point: SyncPoint {
                up_to: self.log_end_offset(),
                generation: self.generation,
            },
        })
    }

    /// A sync reaching `point` completed: the recovery point moves there, unless the log
    /// was truncated since it began.
    pub fn synced(&mut self, point: SyncPoint) {
        if point.generation == self.generation {
            self.recovery_point = self.recovery_point.max(point.up_to);
        }
    }

    /// Removes the partition's directory and everything in it (its topic was deleted).
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// The segment files' base offsets, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }

    /// Where the batch holding `offset` lies: its segment's base offset and its byte
    /// position in that segment file, found as Kafka finds it — the offset index gives
    /// the nearest indexed batch at or below, and the batch headers are read from the
    /// file from there. `None` when the offset is not on disk.
    pub fn position_of(&self, offset: u64) -> Result<Option<(u64, u64)>, StorageError> {
        let i = self.segments.partition_point(|s| s.base_offset <= offset);
        let Some(segment) = i.checked_sub(1).map(|i| &self.segments[i]) else {
            return Ok(None);
        };
        let Ok(relative) = u32::try_from(offset - segment.base_offset) else {
            return Ok(None);
        };
        let mut position = u64::from(segment.index.lookup(relative));
        let mut header = [0u8; HEADER_LEN];
        // Bounded by the segment's size: every step moves forward by a whole batch.
        while position + HEADER_LEN as u64 <= segment.size_bytes {
            segment
                .file
                .read_exact_at(&mut header, position)
                .map_err(io_err("read", &segment.path))?;
            let Ok(h) = BatchHeader::parse(&header) else {
                return Ok(None);
            };
            if h.base_offset as u64 > offset {
                return Ok(None);
            }
            if h.last_offset() as u64 >= offset {
                return Ok(Some((segment.base_offset, position)));
            }
            let len = h.total_len() as u64;
            if len < HEADER_LEN as u64 {
                return Ok(None);
            }
            position += len;
        }
        Ok(None)
    }

    /// Where the stored batch at `base_offset`, `len` bytes long, lies, for a read off
    /// the actor's thread ([`StoredRead::read`]). Found without I/O: each segment keeps
    /// the position of every batch it holds (what recovery and appends recorded), which
    /// is exact where the sparse offset index ([`PartitionDir::position_of`]) would need
    /// header reads from the file. `None` when no batch of that length starts there.
    pub fn locate(&self, base_offset: Offset, len: u32) -> Option<StoredRead> {
        let i = self
            .segments
            .partition_point(|s| s.base_offset <= base_offset.0);
        let segment = &self.segments[i.checked_sub(1)?];
        let j = segment
            .batches
            .binary_search_by_key(&base_offset.0, |b| b.base_offset)
            .ok()?;
        let position = segment.batches[j].position;
        let end = segment
            .batches
            .get(j + 1)
            .map_or(segment.size_bytes, |b| b.position);
        if end.checked_sub(position) != Some(u64::from(len)) {
            return None;
        }
        Some(StoredRead {
            file: Arc::clone(&segment.reader),
            base_offset,
            position,
            len,
        })
    }

    /// Reads the stored batch at `base_offset`, `len` bytes long, from its segment: one
    /// positional read into one buffer. `None` when the files do not hold that batch
    /// whole (truncated or deleted since the core referred to it). Blocks on the disk;
    /// see [`StoredRead`] for reads off the caller's thread.
    pub fn read_batch(&self, base_offset: Offset, len: u32) -> Option<Bytes> {
        self.locate(base_offset, len)?.read()
    }

    /// The first batch holding a record whose timestamp is at least `timestamp_ms`, as
    /// (its base offset, its segment's base offset, its position), found as Kafka's
    /// `fetchOffsetByTimestamp` finds it: the first segment whose largest timestamp is
    /// new enough, its time index to skip what is older, its offset index to find where
    /// that starts, and the batch headers read from the file from there. `None` when no
    /// record is that new. (ListOffsets is answered from the core's log in memory; this
    /// is the on-disk path.)
    pub fn batch_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(u64, u64, u64)>, StorageError> {
        let Some(segment) = self.segments.iter().find(|s| {
            s.index
                .largest_timestamp()
                .is_some_and(|t| t >= timestamp_ms)
        }) else {
            return Ok(None);
        };
        let from = segment.index.lookup_time(timestamp_ms);
        let mut position = u64::from(segment.index.lookup(from));
        let from = segment.base_offset + u64::from(from);
        let mut header = [0u8; HEADER_LEN];
        // Bounded by the segment's size: every step moves forward by a whole batch.
        while position + HEADER_LEN as u64 <= segment.size_bytes {
            segment
                .file
                .read_exact_at(&mut header, position)
                .map_err(io_err("read", &segment.path))?;
            let Ok(h) = BatchHeader::parse(&header) else {
                return Ok(None);
            };
            if h.last_offset() as u64 >= from && h.max_timestamp >= timestamp_ms {
                return Ok(Some((h.base_offset as u64, segment.base_offset, position)));
            }
            let len = h.total_len() as u64;
            if len < HEADER_LEN as u64 {
                return Ok(None);
            }
            position += len;
        }
        Ok(None)
    }

    /// Brings the files in line with the core's log after the partition went offline
    /// (a failed write or sync): `self` was just reopened from disk, which recovery left
    /// as a prefix of what the core appended, perhaps with a torn write cut; the batches
    /// the core holds beyond what the files agree with are written again (and whatever on
    /// disk disagrees is cut first), and everything is synced. Returns how many batches
    /// were written. The core's log is the reference: it holds every batch it ever
    /// acknowledged, and nothing it did while the disk was failing reached the files.
    ///
    /// The core keeps only the headers of batches outside its in-memory tail: such a
    /// batch agrees with the files when their batch at that offset has its header (length,
    /// epoch, CRC), and one the files lack is written from `unwritten` — the bytes of
    /// every append the shell could not carry out while the disk failed, by base offset.
    pub fn restore(
        &mut self,
        on_disk: &[Bytes],
        log_start_offset: Offset,
        core_batches: &[LogBatch],
        unwritten: &BTreeMap<u64, Bytes>,
        now_ms: u64,
    ) -> Result<usize, StorageError> {
        // The first batch the core still holds, and where it sits among the files'.
        let first = core_batches
            .first()
            .map_or(log_start_offset.0, |b| b.base_offset.0);
        let disk_offset =
            |b: &Bytes| BatchHeader::parse(b).map_or(u64::MAX, |h| h.base_offset as u64);
        let from = on_disk.iter().position(|b| disk_offset(b) == first);
        let agree = match from {
            Some(j) => on_disk[j..]
                .iter()
                .zip(core_batches)
                .take_while(|(d, c)| same_batch(d, c))
                .count(),
            None => 0,
        };
        let end_on_disk = self.log_end_offset();
        let resume_at = core_batches
            .get(agree)
            .map_or(first.max(log_start_offset.0), |b| b.base_offset.0);
        if from.is_none() && end_on_disk != first {
            // The files do not reach the core's log at a batch boundary (a full
            // truncation the disk never saw): start the files over where the core's log
            // starts.
            self.truncate_fully(Offset(first.max(log_start_offset.0)))?;
        } else if end_on_disk > resume_at {
            self.truncate(Offset(resume_at))?;
        }
        let mut written = 0;
        for b in &core_batches[agree..] {
            let kept = b
                .bytes
                .as_ref()
                .or_else(|| unwritten.get(&b.base_offset.0).filter(|u| same_batch(u, b)));
            // A batch whose bytes neither the core nor the shell holds cannot be written
            // again (it never happens: every append the files missed was kept in
            // `unwritten`); the files end before it.
            let Some(bytes) = kept else {
                tracing::error!(
                    base_offset = b.base_offset.0,
                    "restoring a partition: a batch's bytes are held nowhere; the files end before it"
                );
                break;
            };
            self.append(b.base_offset, bytes, now_ms)?;
            written += 1;
        }
        self.flush_all()?;
        Ok(written)
    }

    /// Writes and syncs a small probe file in the partition's directory and removes it:
    /// whether the disk takes writes again (room, and no I/O error).
    pub fn probe(&self) -> Result<(), StorageError> {
        probe_dir(&self.dir)
    }
}

/// Whether `bytes` (read from the files, or kept by the shell) are the core's batch `c`:
/// the same bytes when the core holds them, else the same header identity (base offset,
/// length, leader epoch and CRC, which covers everything after it).
fn same_batch(bytes: &Bytes, c: &LogBatch) -> bool {
    match &c.bytes {
        Some(b) => b == bytes,
        None => BatchHeader::parse(bytes).is_ok_and(|h| {
            h.base_offset == c.header.base_offset
                && h.total_len() == c.len()
                && h.total_len() == bytes.len()
                && h.partition_leader_epoch == c.header.partition_leader_epoch
                && h.crc == c.header.crc
        }),
    }
}

/// How many bytes [`probe_dir`] writes: one segment's worth of small batches is what a
/// partition coming back needs at least.
const PROBE_BYTES: usize = 64 * 1024;

/// Writes and syncs a probe file in `dir` (creating `dir` if needed) and removes it.
pub fn probe_dir(dir: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let path = dir.join(".eddy-probe");
    let result = (|| {
        let mut file = File::create(&path).map_err(io_err("create", &path))?;
        file.write_all(&[0u8; PROBE_BYTES])
            .map_err(io_err("write", &path))?;
        file.sync_all().map_err(io_err("sync", &path))
    })();
    let _ = fs::remove_file(&path);
    result
}

/// A stored batch located in its segment ([`PartitionDir::locate`]), to be read off the
/// actor's thread: it holds its own handle on the segment file, so no lock on the
/// partition is held while it reads, and the actor's appends go on meanwhile.
#[derive(Clone, Debug)]
pub struct StoredRead {
    file: Arc<File>,
    base_offset: Offset,
    position: u64,
    len: u32,
}

impl StoredRead {
    /// The batch's bytes: one positional read (`pread`) into one buffer, the only copy
    /// into user space. `None` when the file no longer holds that batch whole there — a
    /// truncation or a roll back raced the read — checked on the header read (base
    /// offset and length), so a racing change never yields another batch's bytes.
    /// Blocks on the disk: run it where blocking is fine.
    pub fn read(&self) -> Option<Bytes> {
        let mut buf = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position).ok()?;
        stored_batch_matches(&buf, self.base_offset, self.len).then(|| Bytes::from(buf))
    }
}

/// The flushes one sync needs; see [`PartitionDir::begin_sync`].
#[derive(Debug)]
pub struct SyncJob {
    files: Vec<(PathBuf, File)>,
    dir: PathBuf,
    point: SyncPoint,
}

impl SyncJob {
    /// How far this sync reaches, for [`PartitionDir::synced`].
    pub fn point(&self) -> SyncPoint {
        self.point
    }

    /// Flushes the files, then the directory. Blocks: run it where blocking is fine.
    pub fn run(self) -> Result<(), StorageError> {
        for (path, file) in &self.files {
            file.sync_data().map_err(io_err("sync", path))?;
        }
        if !self.files.is_empty() {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("sync directory", &self.dir))?;
        }
        Ok(())
    }
}

/// The metadata log's topic name in KRaft; its directory lives among the partitions'.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The directory name of a partition: `<topic>-<partition>`, as Kafka names it.
pub fn partition_dir_name(tp: &TopicPartition) -> String {
    format!("{}-{}", tp.topic, tp.partition)
}

/// Parses a directory name made by [`partition_dir_name`]. Topic names may contain `-`,
/// so the partition is what follows the last one.
pub fn parse_partition_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(TopicPartition::new(topic, partition.parse().ok()?))
}

/// Every partition directory found under the log dirs, and where it is.
pub fn find_partitions(
    log_dirs: &[PathBuf],
) -> Result<BTreeMap<TopicPartition, PathBuf>, StorageError> {
    let mut found = BTreeMap::new();
    for root in log_dirs {
        fs::create_dir_all(root).map_err(io_err("create log dir", root))?;
        for entry in fs::read_dir(root).map_err(io_err("list", root))? {
            let entry = entry.map_err(io_err("list", root))?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = entry.file_name();
            // The metadata quorum's directory is named like a partition (KRaft's
            // `__cluster_metadata-0`) but is not one.
            let Some(tp) = name
                .to_str()
                .filter(|n| !n.starts_with(METADATA_TOPIC))
                .and_then(parse_partition_dir_name)
            else {
                continue;
            };
            found.insert(tp, entry.path());
        }
    }
    Ok(found)
}

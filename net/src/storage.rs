//! Partition logs on disk: `log.dirs/<topic>-<partition>/` holding segment files named by
//! the base offset of their first batch (`00000000000000000042.log`), as Kafka lays them
//! out.
//!
//! The core decides what the log holds; this module carries out its [`StorageOp`]s —
//! append, truncate, start over, sync — on files, and on start reads every partition
//! back for the core to recover from. A segment holds record batches back to back,
//! exactly the bytes the producer sent with the base offset filled in, so recovery is a
//! CRC scan ([`eddy_core::batch::scan`]): the first torn or corrupt batch and everything
//! after it are cut, which is what a crash in the middle of a write leaves behind.
//!
//! Appends reach the page cache at once; only a sync (`fdatasync` of every segment written
//! since the last one) makes them durable, and the core releases what depends on
//! durability (acks under a sync-before-ack flush policy) only when the sync has
//! completed.
//!
//! Not yet here (issue 5 continues): the sparse offset and time index files, time-based
//! roll and retention. The core keeps each partition's batches in memory today, so reads
//! never touch these files.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use eddy_core::batch;
use eddy_core::types::{Offset, TopicPartition};

/// The suffix of a segment file.
const SEGMENT_SUFFIX: &str = ".log";

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

/// Where one batch lies in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BatchPos {
    base_offset: u64,
    /// One past the batch's last offset.
    next_offset: u64,
    position: u64,
    max_timestamp_ms: i64,
}

#[derive(Debug)]
struct Segment {
    base_offset: u64,
    path: PathBuf,
    file: File,
    size_bytes: u64,
    batches: Vec<BatchPos>,
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
        Ok(Segment {
            base_offset,
            path,
            file,
            size_bytes: 0,
            batches: Vec::new(),
            dirty: true,
            opened_at_ms: None,
        })
    }

    /// Cuts the file to `len` bytes, keeping only the batches that end within it.
    fn cut(&mut self, len: u64) -> Result<(), StorageError> {
        self.file
            .set_len(len)
            .map_err(io_err("truncate", &self.path))?;
        self.size_bytes = len;
        self.batches.retain(|b| b.position < len);
        self.dirty = true;
        Ok(())
    }
}

fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}{SEGMENT_SUFFIX}")
}

/// One partition's directory and its segments, oldest first.
#[derive(Debug)]
pub struct PartitionDir {
    dir: PathBuf,
    segments: Vec<Segment>,
    segment_bytes: u64,
    roll_ms: u64,
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
}

impl PartitionDir {
    /// Rolls segments at `segment_bytes` / `roll_ms` from now on (a topic's own
    /// `segment.bytes` / `segment.ms`).
    pub fn set_roll(&mut self, segment_bytes: u64, roll_ms: u64) {
        self.segment_bytes = segment_bytes;
        self.roll_ms = roll_ms;
    }

    /// Opens (creating if needed) a partition directory and reads its segments back.
    /// A torn or corrupt tail is cut from the files before this returns, so the files
    /// and the returned batches agree.
    pub fn open(
        dir: PathBuf,
        segment_bytes: u64,
        roll_ms: u64,
    ) -> Result<(PartitionDir, Recovered), StorageError> {
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) {
                if let Ok(base) = stem.parse::<u64>() {
                    bases.push(base);
                }
            }
        }
        bases.sort_unstable();

        let mut segments: Vec<Segment> = Vec::new();
        let mut batches = Vec::new();
        let mut cut_bytes = 0;
        let mut torn = false;
        for base in bases {
            let path = dir.join(segment_name(base));
            if torn {
                // Everything after a torn write is gone with it: the core would not keep
                // it (offsets would not continue), so neither do the files.
                cut_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
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
            let scan = batch::scan(&buf);
            let mut positions = Vec::with_capacity(scan.batches.len());
            for range in &scan.batches {
                let header = batch::BatchHeader::parse(&buf[range.clone()])
                    .expect("scan returns only valid batches");
                positions.push(BatchPos {
                    base_offset: header.base_offset as u64,
                    next_offset: header.last_offset() as u64 + 1,
                    position: range.start as u64,
                    max_timestamp_ms: header.max_timestamp,
                });
                batches.push(buf.slice(range.clone()));
            }
            let mut segment = Segment {
                base_offset: base,
                path,
                file,
                size_bytes: buf.len() as u64,
                batches: positions,
                dirty: false,
                opened_at_ms: None,
            };
            if scan.valid_len < buf.len() {
                tracing::warn!(
                    segment = %segment.path.display(),
                    valid_bytes = scan.valid_len,
                    cut_bytes = buf.len() - scan.valid_len,
                    reason = ?scan.stopped,
                    "cutting a torn or corrupt tail found on recovery"
                );
                cut_bytes += (buf.len() - scan.valid_len) as u64;
                segment.cut(scan.valid_len as u64)?;
                torn = true;
            }
            segments.push(segment);
        }
        let mut part = PartitionDir {
            dir,
            segments,
            segment_bytes: segment_bytes.max(1),
            roll_ms,
        };
        if part.segments.is_empty() {
            part.segments.push(Segment::create(&part.dir, 0)?);
        }
        if cut_bytes > 0 {
            part.sync()?;
        }
        let log_start_offset = part.segments[0].base_offset;
        Ok((
            part,
            Recovered {
                batches,
                cut_bytes,
                log_start_offset,
            },
        ))
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
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        let opened_at = *active.opened_at_ms.get_or_insert(now_ms);
        let full = active.size_bytes + batch.len() as u64 > self.segment_bytes;
        let old = now_ms.saturating_sub(opened_at) >= self.roll_ms;
        if active.size_bytes > 0 && (full || old) {
            self.segments
                .push(Segment::create(&self.dir, base_offset.0)?);
        }
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        active.opened_at_ms.get_or_insert(now_ms);
        active
            .file
            .write_all(batch)
            .map_err(io_err("append to", &active.path))?;
        active.batches.push(BatchPos {
            base_offset: base_offset.0,
            next_offset: header.last_offset() as u64 + 1,
            position: active.size_bytes,
            max_timestamp_ms: header.max_timestamp,
        });
        active.size_bytes += batch.len() as u64;
        active.dirty = true;
        Ok(())
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

    /// Removes every segment that ends at or below `offset`, a segment base offset.
    pub fn delete_segments_before(&mut self, offset: u64) -> Result<(), StorageError> {
        while self.segments.len() > 1 && self.segments[1].base_offset <= offset {
            let segment = self.segments.remove(0);
            fs::remove_file(&segment.path).map_err(io_err("remove", &segment.path))?;
        }
        Ok(())
    }

    /// Drops every batch holding an offset at or above `offset`.
    pub fn truncate(&mut self, offset: Offset) -> Result<(), StorageError> {
        while self.segments.len() > 1
            && self.segments.last().expect("non-empty").base_offset >= offset.0
        {
            let segment = self.segments.pop().expect("non-empty");
            fs::remove_file(&segment.path).map_err(io_err("remove", &segment.path))?;
        }
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        if let Some(first_cut) = active.batches.iter().find(|b| b.next_offset > offset.0) {
            let len = first_cut.position;
            active.cut(len)?;
        }
        Ok(())
    }

    /// Drops everything; the log restarts at `offset`.
    pub fn truncate_fully(&mut self, offset: Offset) -> Result<(), StorageError> {
        for segment in self.segments.drain(..) {
            fs::remove_file(&segment.path).map_err(io_err("remove", &segment.path))?;
        }
        self.segments.push(Segment::create(&self.dir, offset.0)?);
        self.sync()
    }

    /// Makes everything written so far durable: every dirty segment and the directory
    /// (so new and removed segment files survive a crash too).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.begin_sync()?.run()
    }

    /// Takes what a sync must flush (the segments written since the last one, and the
    /// directory), to be flushed off the caller's thread with [`SyncJob::run`]: appends
    /// go on meanwhile, and the next sync covers them all (group commit).
    pub fn begin_sync(&mut self) -> Result<SyncJob, StorageError> {
        let mut files = Vec::new();
        for segment in self.segments.iter_mut().filter(|s| s.dirty) {
            let file = segment
                .file
                .try_clone()
                .map_err(io_err("sync", &segment.path))?;
            files.push((segment.path.clone(), file));
            segment.dirty = false;
        }
        Ok(SyncJob {
            files,
            dir: self.dir.clone(),
        })
    }

    /// Removes the partition's directory and everything in it (its topic was deleted).
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// The partition's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The segment files' base offsets, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }
}

/// The flushes one sync needs; see [`PartitionDir::begin_sync`].
#[derive(Debug)]
pub struct SyncJob {
    files: Vec<(PathBuf, File)>,
    dir: PathBuf,
}

impl SyncJob {
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

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::batch::{BatchBuilder, NewRecord};

    fn batch_at(base: u64, records: usize) -> Bytes {
        let mut b = BatchBuilder::new();
        for i in 0..records {
            b.push(NewRecord {
                value: Some(Bytes::from(format!("value-{base}-{i}"))),
                ..NewRecord::default()
            });
        }
        let mut bytes = b.build().to_vec();
        batch::set_base_offset(&mut bytes, base as i64);
        Bytes::from(bytes)
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-storage-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn appended_batches_come_back_on_reopen() {
        let dir = tempdir("reopen");
        let (mut p, rec) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        assert!(rec.batches.is_empty());
        let b0 = batch_at(0, 3);
        let b1 = batch_at(3, 2);
        p.append(Offset(0), &b0, 0).unwrap();
        p.append(Offset(3), &b1, 0).unwrap();
        p.sync().unwrap();
        drop(p);
        let (_, rec) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        assert_eq!(rec.batches, vec![b0, b1]);
        assert_eq!(rec.cut_bytes, 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn segments_roll_at_segment_bytes_and_are_named_by_base_offset() {
        let dir = tempdir("roll");
        let b = batch_at(0, 1);
        let (mut p, _) = PartitionDir::open(dir.clone(), b.len() as u64 * 2, u64::MAX).unwrap();
        for i in 0..5u64 {
            p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
        }
        assert_eq!(p.segment_base_offsets(), vec![0, 2, 4]);
        assert!(dir.join("00000000000000000002.log").exists());
        drop(p);
        let (p, rec) = PartitionDir::open(dir.clone(), b.len() as u64 * 2, u64::MAX).unwrap();
        assert_eq!(rec.batches.len(), 5);
        assert_eq!(p.segment_base_offsets(), vec![0, 2, 4]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_on_recovery_and_later_segments_removed() {
        let dir = tempdir("torn");
        let one = batch_at(0, 1).len() as u64;
        let (mut p, _) = PartitionDir::open(dir.clone(), one * 2, u64::MAX).unwrap();
        for i in 0..6u64 {
            p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
        }
        drop(p);
        // Tear the second segment's last batch: half of it is gone.
        let torn = dir.join(segment_name(2));
        let len = fs::metadata(&torn).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(len - one / 2)
            .unwrap();
        let (p, rec) = PartitionDir::open(dir.clone(), one * 2, u64::MAX).unwrap();
        assert_eq!(rec.batches.len(), 3, "offsets 0, 1, 2 survive");
        assert_eq!(rec.cut_bytes, one - one / 2 + 2 * one);
        assert_eq!(p.segment_base_offsets(), vec![0, 2]);
        assert!(!dir.join(segment_name(4)).exists());
        assert_eq!(fs::metadata(&torn).unwrap().len(), one);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_byte_cuts_from_that_batch() {
        let dir = tempdir("corrupt");
        let (mut p, _) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        let b0 = batch_at(0, 2);
        p.append(Offset(0), &b0, 0).unwrap();
        p.append(Offset(2), &batch_at(2, 2), 0).unwrap();
        drop(p);
        let path = dir.join(segment_name(0));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        assert_eq!(rec.batches, vec![b0.clone()]);
        assert_eq!(fs::metadata(&path).unwrap().len(), b0.len() as u64);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn truncate_cuts_batches_at_and_above_the_offset_across_segments() {
        let dir = tempdir("truncate");
        let one = batch_at(0, 1).len() as u64;
        let (mut p, _) = PartitionDir::open(dir.clone(), one * 2, u64::MAX).unwrap();
        for i in 0..6u64 {
            p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
        }
        p.truncate(Offset(3)).unwrap();
        assert_eq!(p.segment_base_offsets(), vec![0, 2]);
        p.append(Offset(3), &batch_at(3, 1), 0).unwrap();
        drop(p);
        let (_, rec) = PartitionDir::open(dir.clone(), one * 2, u64::MAX).unwrap();
        assert_eq!(rec.batches.len(), 4);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn truncate_fully_restarts_the_log_at_the_offset() {
        let dir = tempdir("fully");
        let (mut p, _) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        p.append(Offset(0), &batch_at(0, 4), 0).unwrap();
        p.truncate_fully(Offset(10)).unwrap();
        assert_eq!(p.segment_base_offsets(), vec![10]);
        p.append(Offset(10), &batch_at(10, 1), 0).unwrap();
        drop(p);
        let (_, rec) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        assert_eq!(rec.batches, vec![batch_at(10, 1)]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn partition_dir_names_round_trip_with_dashes_in_topics() {
        let tp = TopicPartition::new("my-topic-2", 17);
        assert_eq!(partition_dir_name(&tp), "my-topic-2-17");
        assert_eq!(parse_partition_dir_name("my-topic-2-17"), Some(tp));
        assert_eq!(parse_partition_dir_name("nodash"), None);
        assert_eq!(parse_partition_dir_name("t-"), None);
        assert_eq!(parse_partition_dir_name("t-x1"), None);
    }

    #[test]
    fn segments_roll_when_older_than_log_roll_ms() {
        let dir = tempdir("roll-time");
        let (mut p, _) = PartitionDir::open(dir.clone(), 1 << 20, 1_000).unwrap();
        p.append(Offset(0), &batch_at(0, 1), 5_000).unwrap();
        p.append(Offset(1), &batch_at(1, 1), 5_999).unwrap();
        p.append(Offset(2), &batch_at(2, 1), 6_000).unwrap();
        p.append(Offset(3), &batch_at(3, 1), 6_500).unwrap();
        assert_eq!(p.segment_base_offsets(), vec![0, 2]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn retention_removes_old_or_excess_segments_but_never_the_active_one_or_past_the_hw() {
        let dir = tempdir("retention");
        let one = batch_at(0, 1).len() as u64;
        // One batch per segment; batch i has timestamp 0 (the builder's default).
        let (mut p, _) = PartitionDir::open(dir.clone(), one, u64::MAX).unwrap();
        for i in 0..5u64 {
            p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
        }
        assert_eq!(p.segment_base_offsets(), vec![0, 1, 2, 3, 4]);
        // Time: every segment is old, but the active one stays, and the HW bounds it.
        assert_eq!(p.retention_point(10_000, Some(1_000), None, 5), Some(4));
        assert_eq!(p.retention_point(10_000, Some(1_000), None, 2), Some(2));
        assert_eq!(p.retention_point(10_000, Some(20_000), None, 5), None);
        assert_eq!(p.retention_point(10_000, None, None, 5), None);
        // Size: trim the oldest while what remains is still at least retention.bytes.
        assert_eq!(p.retention_point(0, None, Some(2 * one), 5), Some(3));
        assert_eq!(p.retention_point(0, None, Some(5 * one), 5), None);
        p.delete_segments_before(3).unwrap();
        assert_eq!(p.segment_base_offsets(), vec![3, 4]);
        assert!(!dir.join(segment_name(2)).exists());
        drop(p);
        let (_, rec) = PartitionDir::open(dir.clone(), one, u64::MAX).unwrap();
        assert_eq!(rec.log_start_offset, 3);
        assert_eq!(rec.batches.len(), 2);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_empty_log_remembers_where_it_starts() {
        let dir = tempdir("empty-start");
        let (mut p, _) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        p.truncate_fully(Offset(42)).unwrap();
        drop(p);
        let (_, rec) = PartitionDir::open(dir.clone(), 1 << 20, u64::MAX).unwrap();
        assert!(rec.batches.is_empty());
        assert_eq!(rec.log_start_offset, 42);
        fs::remove_dir_all(dir).unwrap();
    }
}

//! A segment's sparse offset index (`<base>.index`) and time index (`<base>.timeindex`),
//! in Kafka's file formats: an offset index entry is 8 bytes, the offset relative to the
//! segment's base (u32, big-endian) and the file position of a batch (u32, big-endian);
//! a time index entry is 12 bytes, a timestamp (i64, big-endian) and the relative offset
//! (u32, big-endian) of the batch that holds the segment's largest timestamp so far.
//!
//! Entries follow Kafka's `LogSegment.append`: before a batch is written, if more than
//! `log.index.interval.bytes` were appended since the last entry, the offset index gets
//! (the batch's last offset, its position) and the time index gets (the largest timestamp
//! so far, the last offset of its batch) when that timestamp grew; a segment that stops
//! being the active one gets a last time entry for its largest timestamp. The entries
//! are therefore a function of the segment's batches and the interval, and recovery
//! checks an index file against that function instead of trusting it: a missing, torn,
//! garbage or stale index is rewritten from the segment (see [`SegmentIndex::open`]).
//!
//! Kafka memory-maps preallocated index files and trims them when a segment rolls; here
//! the files are appended to as entries come, so they always have their exact size.

use crate::disk::{self as fs, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{io_err, BatchPos, StorageError};
use eddy_core::batch::HEADER_LEN;

pub(crate) const OFFSET_INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Bytes per offset index entry: relative offset u32 + position u32.
pub(crate) const OFFSET_ENTRY_BYTES: u64 = 8;
/// Bytes per time index entry: timestamp i64 + relative offset u32.
pub(crate) const TIME_ENTRY_BYTES: u64 = 12;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: what an empty time index's "last entry" holds, so
/// the first real timestamp (zero included) is always indexed.
const NO_TIMESTAMP: i64 = -1;

/// Where an offset index entry points: the batch whose last offset is
/// `base + relative_offset` starts at `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

/// A time index entry: every record at or below `base + relative_offset` has a
/// timestamp at most `timestamp_ms`, and the batch ending there holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp_ms: i64,
    pub(crate) relative_offset: u32,
}

/// Decides the entries as batches come (Kafka's `bytesSinceLastIndexEntry` and
/// `maxTimestampAndOffsetSoFar`).
#[derive(Clone, Copy, Debug)]
struct Builder {
    /// The position of the batch that got the last offset entry (0 before any).
    last_entry_position: u64,
    /// The largest timestamp so far and the last offset of its batch (relative).
    max_timestamp: Option<(i64, u32)>,
}

impl Builder {
    const NEW: Builder = Builder {
        last_entry_position: 0,
        max_timestamp: None,
    };

    /// The entries `batch` earns, if any. `None` when its offsets or position do not fit
    /// the formats' u32 fields (only a damaged segment can have that: appends roll
    /// before), in which case it goes unindexed.
    fn next(
        &mut self,
        base_offset: u64,
        batch: &BatchPos,
        interval_bytes: u64,
        last_time: i64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let Ok(relative) = u32::try_from(batch.next_offset - 1 - base_offset) else {
            return (None, None);
        };
        if self
            .max_timestamp
            .is_none_or(|(t, _)| batch.max_timestamp_ms > t)
        {
            self.max_timestamp = Some((batch.max_timestamp_ms, relative));
        }
        if batch.position - self.last_entry_position <= interval_bytes {
            return (None, None);
        }
        let Ok(position) = u32::try_from(batch.position) else {
            return (None, None);
        };
        self.last_entry_position = batch.position;
        let offset = OffsetEntry {
            relative_offset: relative,
            position,
        };
        (Some(offset), self.time_entry(last_time))
    }

    /// The time entry for the largest timestamp so far, if it is newer than the last one.
    fn time_entry(&self, last_time: i64) -> Option<TimeEntry> {
        let (timestamp_ms, relative_offset) = self.max_timestamp?;
        (timestamp_ms > last_time).then_some(TimeEntry {
            timestamp_ms,
            relative_offset,
        })
    }
}

/// One segment's two index files and their entries, kept in memory as well so that
/// truncation and recovery never have to read them back.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    offset_path: PathBuf,
    time_path: PathBuf,
    offset_file: File,
    time_file: File,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    builder: Builder,
    /// The last time entry was the closing one of an inactive segment.
    closed: bool,
}

/// What [`SegmentIndex::open`] found wrong with an index file, for the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexProblem {
    Missing,
    /// Not a whole number of entries: a write torn by a crash.
    Torn,
    /// Fewer entries than the segment's batches earn.
    Short,
    /// Entries that point past the segment's end or go backwards.
    Garbage,
    /// Well-formed, but not the entries of this segment (another interval, a stale file).
    Stale,
}

pub(crate) fn offset_index_name(base_offset: u64) -> String {
    format!("{base_offset:020}{OFFSET_INDEX_SUFFIX}")
}

pub(crate) fn time_index_name(base_offset: u64) -> String {
    format!("{base_offset:020}{TIME_INDEX_SUFFIX}")
}

fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io_err("open", path))
}

impl SegmentIndex {
    /// Empty index files for a new segment (any old ones at those names are emptied).
    pub(crate) fn create(dir: &Path, base_offset: u64) -> Result<SegmentIndex, StorageError> {
        let offset_path = dir.join(offset_index_name(base_offset));
        let time_path = dir.join(time_index_name(base_offset));
        let offset_file = open_append(&offset_path)?;
        offset_file
            .set_len(0)
            .map_err(io_err("truncate", &offset_path))?;
        let time_file = open_append(&time_path)?;
        time_file
            .set_len(0)
            .map_err(io_err("truncate", &time_path))?;
        Ok(SegmentIndex {
            offset_path,
            time_path,
            offset_file,
            time_file,
            offsets: Vec::new(),
            times: Vec::new(),
            builder: Builder::NEW,
            closed: false,
        })
    }

    /// Opens a recovered segment's index files and checks them against its batches
    /// (whole and CRC-checked, or below the recovery point). A file that does not hold
    /// exactly the entries the batches earn is rewritten from them; what was wrong is
    /// returned for each file (offset index, time index). Never trusts the files:
    /// a corrupt index costs a rebuild, never a wrong read or a crash.
    pub(crate) fn open(
        dir: &Path,
        base_offset: u64,
        batches: &[BatchPos],
        interval_bytes: u64,
        closed: bool,
        segment_len: u64,
    ) -> Result<(SegmentIndex, [Option<IndexProblem>; 2]), StorageError> {
        // Read before opening, which creates a missing file. No index of this segment
        // can hold more entries than it has batches, so a file larger than that is
        // garbage and is not read (it may be huge).
        let cap = (segment_len / HEADER_LEN as u64 + 1) * TIME_ENTRY_BYTES;
        let offset_found = read_capped(&dir.join(offset_index_name(base_offset)), cap)?;
        let time_found = read_capped(&dir.join(time_index_name(base_offset)), cap)?;
        let mut index = SegmentIndex::create_unemptied(dir, base_offset)?;
        index.rebuild_entries(base_offset, batches, interval_bytes, closed);
        let offset_problem = check_offsets(
            offset_found,
            &index.offsets,
            segment_len,
            &index.offset_path,
        );
        let time_problem = check_times(time_found, &index.times);
        // A rewrite that fails (a full disk) leaves the file wrong, which costs nothing:
        // reads use the entries in memory, and the next start finds it and rebuilds it.
        // The partition's data is fine, so the broker starts.
        if offset_problem.is_some() {
            let bytes = offset_bytes(&index.offsets);
            if let Err(e) = rewrite(&index.offset_file, &index.offset_path, &bytes) {
                tracing::warn!(error = %e, "could not rebuild an offset index file; its entries are kept in memory");
            }
        }
        if time_problem.is_some() {
            let bytes = time_bytes(&index.times);
            if let Err(e) = rewrite(&index.time_file, &index.time_path, &bytes) {
                tracing::warn!(error = %e, "could not rebuild a time index file; its entries are kept in memory");
            }
        }
        Ok((index, [offset_problem, time_problem]))
    }

    /// Opens (creating if missing) the files without emptying them.
    fn create_unemptied(dir: &Path, base_offset: u64) -> Result<SegmentIndex, StorageError> {
        let offset_path = dir.join(offset_index_name(base_offset));
        let time_path = dir.join(time_index_name(base_offset));
        Ok(SegmentIndex {
            offset_file: open_append(&offset_path)?,
            time_file: open_append(&time_path)?,
            offset_path,
            time_path,
            offsets: Vec::new(),
            times: Vec::new(),
            builder: Builder::NEW,
            closed: false,
        })
    }

    /// Recomputes the entries (in memory only) from the segment's batches.
    fn rebuild_entries(
        &mut self,
        base_offset: u64,
        batches: &[BatchPos],
        interval_bytes: u64,
        closed: bool,
    ) {
        self.offsets.clear();
        self.times.clear();
        self.builder = Builder::NEW;
        self.closed = false;
        for batch in batches {
            let (offset, time) =
                self.builder
                    .next(base_offset, batch, interval_bytes, self.last_time());
            self.offsets.extend(offset);
            self.times.extend(time);
        }
        if closed {
            self.times.extend(self.builder.time_entry(self.last_time()));
            self.closed = true;
        }
    }

    fn last_time(&self) -> i64 {
        self.times.last().map_or(NO_TIMESTAMP, |t| t.timestamp_ms)
    }

    /// Whether the segment rolled (its time index has its closing entry).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether either index holds its most entries (`log.index.size.max.bytes`): the
    /// segment must roll before another batch.
    pub(crate) fn is_full(&self, max_bytes: u64) -> bool {
        self.offsets.len() as u64 >= max_bytes / OFFSET_ENTRY_BYTES
            || self.times.len() as u64 >= max_bytes / TIME_ENTRY_BYTES
    }

    /// Adds the entries `batch` earns (called before its bytes are written, as Kafka
    /// does, with its position in the segment).
    pub(crate) fn on_append(
        &mut self,
        base_offset: u64,
        batch: &BatchPos,
        interval_bytes: u64,
    ) -> Result<(), StorageError> {
        assert!(!self.closed, "appending to a segment that rolled");
        let (offset, time) =
            self.builder
                .next(base_offset, batch, interval_bytes, self.last_time());
        if let Some(entry) = offset {
            self.offset_file
                .write_all(&offset_bytes(&[entry]))
                .map_err(io_err("append to", &self.offset_path))?;
            self.offsets.push(entry);
        }
        if let Some(entry) = time {
            self.push_time(entry)?;
        }
        Ok(())
    }

    fn push_time(&mut self, entry: TimeEntry) -> Result<(), StorageError> {
        self.time_file
            .write_all(&time_bytes(&[entry]))
            .map_err(io_err("append to", &self.time_path))?;
        self.times.push(entry);
        Ok(())
    }

    /// The segment stops being the active one: the time index gets the largest
    /// timestamp if it is not there yet (Kafka's `onBecomeInactiveSegment`).
    pub(crate) fn close(&mut self) -> Result<(), StorageError> {
        if self.closed {
            return Ok(());
        }
        if let Some(entry) = self.builder.time_entry(self.last_time()) {
            self.push_time(entry)?;
        }
        self.closed = true;
        Ok(())
    }

    /// The segment was cut to `batches`: the entries become those of what is left (the
    /// segment is the active one again, so it has no closing entry), and the files are
    /// rewritten to match.
    pub(crate) fn truncate_to(
        &mut self,
        base_offset: u64,
        batches: &[BatchPos],
        interval_bytes: u64,
    ) -> Result<(), StorageError> {
        self.rebuild_entries(base_offset, batches, interval_bytes, false);
        rewrite(
            &self.offset_file,
            &self.offset_path,
            &offset_bytes(&self.offsets),
        )?;
        rewrite(&self.time_file, &self.time_path, &time_bytes(&self.times))
    }

    /// The largest offset entry at or below `relative_offset`: where a reader looking for
    /// that offset starts scanning (Kafka's `OffsetIndex.lookup`). Position 0 when no
    /// entry is that low.
    pub(crate) fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        i.checked_sub(1).map_or(0, |i| self.offsets[i].position)
    }

    /// Where a reader looking for the first record at or after `timestamp_ms` starts:
    /// past the last time entry older than it (everything up to that entry's offset is
    /// older), as a relative offset. Kafka's `TimeIndex.lookup`, used the same way.
    pub(crate) fn lookup_time(&self, timestamp_ms: i64) -> u32 {
        let i = self
            .times
            .partition_point(|e| e.timestamp_ms < timestamp_ms);
        i.checked_sub(1)
            .map_or(0, |i| self.times[i].relative_offset.saturating_add(1))
    }

    /// The largest timestamp in the segment (none when it is empty).
    pub(crate) fn largest_timestamp(&self) -> Option<i64> {
        self.builder.max_timestamp.map(|(t, _)| t)
    }

    /// The files to sync with the segment.
    pub(crate) fn files(&self) -> Result<[(PathBuf, File); 2], StorageError> {
        let clone = |f: &File, p: &Path| {
            f.try_clone()
                .map(|f| (p.to_path_buf(), f))
                .map_err(io_err("sync", p))
        };
        Ok([
            clone(&self.offset_file, &self.offset_path)?,
            clone(&self.time_file, &self.time_path)?,
        ])
    }

    /// Removes both files (a missing one is already gone).
    pub(crate) fn delete(self) -> Result<(), StorageError> {
        for path in [&self.offset_path, &self.time_path] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove", path)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Removes the index files of a segment that has no [`SegmentIndex`] (one removed at
/// recovery, after a torn write).
pub(crate) fn remove_files(dir: &Path, base_offset: u64) -> Result<(), StorageError> {
    for path in [
        dir.join(offset_index_name(base_offset)),
        dir.join(time_index_name(base_offset)),
    ] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &path)(e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// What an index file held.
enum Found {
    Missing,
    /// Larger than any index of its segment can be.
    TooBig,
    Bytes(Vec<u8>),
}

/// A file's bytes, if it exists and holds at most `cap` of them.
fn read_capped(path: &Path, cap: u64) -> Result<Found, StorageError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut buf = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    Ok(if buf.len() as u64 > cap {
        Found::TooBig
    } else {
        Found::Bytes(buf)
    })
}

fn rewrite(file: &File, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    file.set_len(0).map_err(io_err("truncate", path))?;
    // Opened for append: the write lands at the (new) end.
    (&*file).write_all(bytes).map_err(io_err("write", path))
}

fn offset_bytes(entries: &[OffsetEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * OFFSET_ENTRY_BYTES as usize);
    for e in entries {
        out.extend_from_slice(&e.relative_offset.to_be_bytes());
        out.extend_from_slice(&e.position.to_be_bytes());
    }
    out
}

fn time_bytes(entries: &[TimeEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * TIME_ENTRY_BYTES as usize);
    for e in entries {
        out.extend_from_slice(&e.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&e.relative_offset.to_be_bytes());
    }
    out
}

/// Parses an offset index file; `None` if it is not a whole number of entries.
pub(crate) fn parse_offsets(bytes: &[u8]) -> Option<Vec<OffsetEntry>> {
    let chunks = bytes.chunks_exact(OFFSET_ENTRY_BYTES as usize);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(
        chunks
            .map(|c| OffsetEntry {
                relative_offset: u32::from_be_bytes(c[0..4].try_into().expect("4 bytes")),
                position: u32::from_be_bytes(c[4..8].try_into().expect("4 bytes")),
            })
            .collect(),
    )
}

/// Parses a time index file; `None` if it is not a whole number of entries.
pub(crate) fn parse_times(bytes: &[u8]) -> Option<Vec<TimeEntry>> {
    let chunks = bytes.chunks_exact(TIME_ENTRY_BYTES as usize);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(
        chunks
            .map(|c| TimeEntry {
                timestamp_ms: i64::from_be_bytes(c[0..8].try_into().expect("8 bytes")),
                relative_offset: u32::from_be_bytes(c[8..12].try_into().expect("4 bytes")),
            })
            .collect(),
    )
}

fn check_offsets(
    found: Found,
    expected: &[OffsetEntry],
    segment_len: u64,
    path: &Path,
) -> Option<IndexProblem> {
    let found = match found {
        Found::Missing => return Some(IndexProblem::Missing),
        Found::TooBig => return Some(IndexProblem::Garbage),
        Found::Bytes(bytes) => match parse_offsets(&bytes) {
            None => return Some(IndexProblem::Torn),
            Some(entries) => entries,
        },
    };
    if found == expected {
        return None;
    }
    let monotonic = found
        .windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    let within = found.iter().all(|e| u64::from(e.position) < segment_len);
    let problem = if !monotonic || !within {
        IndexProblem::Garbage
    } else if found.len() < expected.len() && expected.starts_with(&found) {
        IndexProblem::Short
    } else {
        IndexProblem::Stale
    };
    tracing::debug!(index = %path.display(), ?problem, found = found.len(), expected = expected.len(), "offset index disagrees with its segment");
    Some(problem)
}

fn check_times(found: Found, expected: &[TimeEntry]) -> Option<IndexProblem> {
    let found = match found {
        Found::Missing => return Some(IndexProblem::Missing),
        Found::TooBig => return Some(IndexProblem::Garbage),
        Found::Bytes(bytes) => match parse_times(&bytes) {
            None => return Some(IndexProblem::Torn),
            Some(entries) => entries,
        },
    };
    if found == expected {
        return None;
    }
    let monotonic = found.windows(2).all(|w| {
        w[0].timestamp_ms < w[1].timestamp_ms && w[0].relative_offset <= w[1].relative_offset
    });
    Some(if !monotonic {
        IndexProblem::Garbage
    } else if found.len() < expected.len() && expected.starts_with(&found) {
        IndexProblem::Short
    } else {
        IndexProblem::Stale
    })
}

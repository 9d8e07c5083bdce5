//! The metadata quorum's durable state in files, under `metadata.log.dir`:
//!
//! ```text
//!   quorum-state    term:u64  voted_for:u32 (u32::MAX = none)  crc32c:u32
//!                   replaced whole: written to a temporary file, synced, renamed
//!   snapshot        frame(index:u64 term:u64 data)              replaced the same way
//!   metadata.log    frame(entry) frame(entry) …                 appended, cut, synced
//!   frame           len:u32  crc32c(body):u32  body
//! ```
//!
//! Every write of the Raft node ([`Effect`]'s `Persist*`) is durable when
//! [`RaftStore::write`] returns, so the completion it reports is true. The meaning of a
//! write (what it keeps, what it drops) is the core's [`DurableState::apply_write`]; this
//! file only keeps the bytes in step with it. On open, a log whose tail does not check
//! (a crash mid-append) is cut after the last whole entry — that entry was never
//! reported durable — and a leftover temporary file is ignored.

use crate::disk::{self as fs, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use eddy_core::quorum::{
    DurableState, Effect, Entry, HardState, LogId, LogIndex, Persisted, Snapshot, Term,
};
use eddy_core::types::NodeId;

use crate::peer::codec::{decode_entry, encode_entry};
use crate::storage::{io_err, StorageError};

const STATE_FILE: &str = "quorum-state";
const SNAPSHOT_FILE: &str = "snapshot";
const LOG_FILE: &str = "metadata.log";
const NO_VOTE: u32 = u32::MAX;
const FRAME_HEADER: usize = 8;

/// The quorum's files, and what they hold (mirrored in memory).
#[derive(Debug)]
pub struct RaftStore {
    dir: PathBuf,
    durable: DurableState,
    log: File,
    /// Byte position of each entry of `durable.entries` in the log file.
    positions: Vec<u64>,
    /// Length of the log file's whole entries.
    end: u64,
}

fn corrupt(path: &Path, why: String) -> StorageError {
    StorageError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, why),
    }
}

fn frame(body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(FRAME_HEADER + body.len());
    b.put_u32(u32::try_from(body.len()).expect("a metadata entry is under 4 GiB"));
    b.put_u32(crc32c::crc32c(body));
    b.put_slice(body);
    b.freeze()
}

/// The whole frames at the start of `bytes`: each body and its end position. Stops at
/// the first frame that is short or fails its checksum.
fn frames(bytes: &[u8]) -> Vec<(&[u8], u64)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= FRAME_HEADER {
        let mut header = &bytes[pos..pos + FRAME_HEADER];
        let len = header.get_u32() as usize;
        let crc = header.get_u32();
        let Some(body) = bytes.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        pos += FRAME_HEADER + len;
        out.push((body, pos as u64));
    }
    out
}

/// Replaces `path` with `bytes` atomically: a crash leaves the old file or the new one.
fn replace(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("sync", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn encode_hard_state(hs: HardState) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    b.put_u64(hs.term.0);
    b.put_u32(hs.voted_for.map_or(NO_VOTE, |n| n.0));
    let crc = crc32c::crc32c(&b);
    b.put_u32(crc);
    b
}

fn decode_hard_state(path: &Path, bytes: &[u8]) -> Result<HardState, StorageError> {
    if bytes.len() != 16 || crc32c::crc32c(&bytes[..12]) != (&bytes[12..]).get_u32() {
        // Written whole by rename, so a bad file is damage, not a torn write: refuse to
        // start rather than forget a vote (voting twice in a term breaks Raft).
        return Err(corrupt(
            path,
            "the quorum state is damaged; restore it from a backup, or remove this node's \
             metadata log dir and let it rejoin as a new voter"
                .to_string(),
        ));
    }
    let mut r = bytes;
    let term = Term(r.get_u64());
    let vote = r.get_u32();
    Ok(HardState {
        term,
        voted_for: (vote != NO_VOTE).then_some(NodeId(vote)),
    })
}

fn encode_snapshot(s: &Snapshot) -> Bytes {
    let mut body = BytesMut::with_capacity(16 + s.data.len());
    body.put_u64(s.last.index.0);
    body.put_u64(s.last.term.0);
    body.put_slice(&s.data);
    frame(&body)
}

fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<Snapshot, StorageError> {
    let found = frames(bytes);
    let [(body, end)] = found.as_slice() else {
        return Err(corrupt(path, "the snapshot does not check".to_string()));
    };
    if *end != bytes.len() as u64 || body.len() < 16 {
        return Err(corrupt(path, "the snapshot does not check".to_string()));
    }
    let mut r = *body;
    let index = LogIndex(r.get_u64());
    let term = Term(r.get_u64());
    Ok(Snapshot {
        last: LogId::new(term, index),
        data: Bytes::copy_from_slice(r),
    })
}

impl RaftStore {
    /// Opens (creating it if needed) the quorum's dir and reads back what it holds.
    pub fn open(dir: &Path) -> Result<(RaftStore, DurableState), StorageError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let state_path = dir.join(STATE_FILE);
        let hard_state = match read_optional(&state_path)? {
            Some(b) => decode_hard_state(&state_path, &b)?,
            None => HardState::default(),
        };
        let snap_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match read_optional(&snap_path)? {
            Some(b) => Some(decode_snapshot(&snap_path, &b)?),
            None => None,
        };
        let log_path = dir.join(LOG_FILE);
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(io_err("open", &log_path))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes)
            .map_err(io_err("read", &log_path))?;
        let mut entries = Vec::new();
        let mut positions = Vec::new();
        let mut end = 0u64;
        let snapshot_last = snapshot.as_ref().map(|s| s.last).unwrap_or_default();
        // A crash between a snapshot and the log's rewrite leaves entries the snapshot
        // covers at the front: skipped, as the snapshot's write dropped them (and all
        // of them if the entry at the snapshot's index is of another term).
        let mut other_history = false;
        for (body, frame_end) in frames(&bytes) {
            let Ok(entry) = decode_entry(body) else {
                break;
            };
            if entry.index <= snapshot_last.index {
                if entry.index == snapshot_last.index && entry.term != snapshot_last.term {
                    other_history = true;
                }
                end = frame_end;
                continue;
            }
            let expected = entries
                .last()
                .map_or(snapshot_last.index.next(), |e: &Entry| e.index.next());
            if entry.index != expected || other_history {
                break;
            }
            positions.push(end);
            entries.push(entry);
            end = frame_end;
        }
        if end < bytes.len() as u64 {
            tracing::warn!(
                path = %log_path.display(),
                cut_bytes = bytes.len() as u64 - end,
                "cutting a torn tail from the metadata log"
            );
            log.set_len(end).map_err(io_err("truncate", &log_path))?;
            log.sync_all().map_err(io_err("sync", &log_path))?;
        }
        let durable = DurableState {
            hard_state,
            snapshot,
            entries,
        };
        let store = RaftStore {
            dir: dir.to_path_buf(),
            durable: durable.clone(),
            log,
            positions,
            end,
        };
        Ok((store, durable))
    }

    /// Makes one `Persist*` effect durable and says which completion to report.
    ///
    /// # Panics
    /// On an effect that is not a write (a bug in the caller).
    pub fn write(&mut self, effect: Effect) -> Result<Persisted, StorageError> {
        match &effect {
            Effect::PersistHardState(hs) => {
                replace(&self.dir, STATE_FILE, &encode_hard_state(*hs))?;
            }
            Effect::PersistEntries {
                from_index,
                entries,
            } => {
                let keep = (from_index.0 - self.durable.snapshot_last().index.0 - 1) as usize;
                let cut = self.positions.get(keep).copied().unwrap_or(self.end);
                let path = self.dir.join(LOG_FILE);
                if cut < self.end {
                    self.log.set_len(cut).map_err(io_err("truncate", &path))?;
                }
                self.positions.truncate(keep);
                self.end = cut;
                let mut buf = BytesMut::new();
                for e in entries {
                    self.positions.push(self.end + buf.len() as u64);
                    buf.put_slice(&frame(&encode_entry(e)));
                }
                self.log
                    .seek(SeekFrom::Start(cut))
                    .and_then(|_| self.log.write_all(&buf))
                    .and_then(|()| self.log.sync_data())
                    .map_err(io_err("append", &path))?;
                self.end += buf.len() as u64;
            }
            Effect::PersistSnapshot(snapshot) => {
                replace(&self.dir, SNAPSHOT_FILE, &encode_snapshot(snapshot))?;
            }
            other => panic!("not a write: {other:?}"),
        }
        let is_snapshot = matches!(effect, Effect::PersistSnapshot(_));
        let done = self.durable.apply_write(effect);
        if is_snapshot {
            self.rewrite_log()?;
        }
        Ok(done)
    }

    /// After a snapshot: the log file keeps only the entries after it. The snapshot is
    /// already durable, so a crash before this is done leaves entries it covers at the
    /// front of the log, which `open` skips.
    fn rewrite_log(&mut self) -> Result<(), StorageError> {
        let mut buf = BytesMut::new();
        let mut positions = Vec::with_capacity(self.durable.entries.len());
        for e in &self.durable.entries {
            positions.push(buf.len() as u64);
            buf.put_slice(&frame(&encode_entry(e)));
        }
        replace(&self.dir, LOG_FILE, &buf)?;
        let path = self.dir.join(LOG_FILE);
        self.log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        self.positions = positions;
        self.end = buf.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! A broker's simulated disk: a page cache in front of durable storage.
//!
//! Appends and truncations land in the page cache at once and are lost in a crash unless
//! a sync covered them. A crash may also let some unsynced writes through (the kernel
//! flushed them on its own), in order, the last one perhaps only in part: a torn tail,
//! which recovery must find by CRC and cut. The disk lives outside the broker's process
//! state, so a crash drops exactly the unsynced part.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy_core::batch::{self, BatchHeader};
use eddy_core::{Offset, TopicPartition};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
enum Write {
    Append(Bytes),
    /// Set the file length (a truncation, or a full truncation to 0 bytes).
    SetLen(usize),
}

#[derive(Clone, Debug, Default)]
struct File {
    durable: Vec<u8>,
    /// The file as the page cache sees it.
    cached: Vec<u8>,
    /// Writes not yet synced, oldest first.
    unsynced: Vec<Write>,
    /// Where each whole batch of `cached` starts, by base offset: reads of batches the
    /// broker's log no longer holds in memory find them here.
    index: BTreeMap<u64, usize>,
}

impl File {
    fn apply(bytes: &mut Vec<u8>, write: &Write) {
        match write {
            Write::Append(b) => bytes.extend_from_slice(b),
            Write::SetLen(n) => bytes.truncate(*n),
        }
    }

    fn write(&mut self, write: Write) {
        match &write {
            Write::Append(b) => {
                let header = BatchHeader::parse(b).expect("the broker appends whole batches");
                self.index
                    .insert(header.base_offset as u64, self.cached.len());
            }
            Write::SetLen(n) => self.index.retain(|_, pos| *pos < *n),
        }
        File::apply(&mut self.cached, &write);
        self.unsynced.push(write);
    }

    /// The page cache was replaced (a crash, or recovery): index it again. It may end
    /// in a torn batch, which is not indexed.
    fn reindex(&mut self) {
        let scan = batch::scan(&self.cached);
        self.index = scan
            .batches
            .into_iter()
            .map(|r| {
                let header = BatchHeader::parse(&self.cached[r.clone()]).expect("scanned");
                (header.base_offset as u64, r.start)
            })
            .collect();
    }

    /// The `len` bytes of the batch at `base_offset`, as the page cache holds them now;
    /// `None` if no batch starts there or the file is shorter.
    fn read(&self, base_offset: Offset, len: u32) -> Option<Bytes> {
        let &pos = self.index.get(&base_offset.0)?;
        let bytes = self.cached.get(pos..pos + len as usize)?;
        Some(Bytes::copy_from_slice(bytes))
    }

    /// The byte position of the first batch holding an offset at or above `offset`.
    fn position_of(&self, offset: Offset) -> usize {
        let mut pos = 0;
        while pos < self.cached.len() {
            let header = BatchHeader::parse(&self.cached[pos..])
                .expect("the page cache holds whole batches");
            if header.last_offset() >= offset.0 as i64 {
                break;
            }
            pos += header.total_len();
        }
        pos
    }
}

/// What recovery found in one partition's file.
#[derive(Clone, Debug)]
pub(crate) struct Recovered {
    pub(crate) partition: TopicPartition,
    pub(crate) batches: Vec<Bytes>,
    /// Bytes cut from the end because they did not form a whole, valid batch.
    pub(crate) torn_bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct SimDisk {
    files: BTreeMap<TopicPartition, File>,
    /// Syncs asked for and not yet done: how many unsynced writes each covers.
    pending_syncs: BTreeMap<(TopicPartition, u64), usize>,
}

impl SimDisk {
    pub(crate) fn append(&mut self, partition: &TopicPartition, batch: Bytes) {
        self.files
            .entry(partition.clone())
            .or_default()
            .write(Write::Append(batch));
    }

    /// Reads a batch the broker's log refers to (a pread of the page cache).
    pub(crate) fn read(
        &self,
        partition: &TopicPartition,
        base_offset: Offset,
        len: u32,
    ) -> Option<Bytes> {
        self.files.get(partition)?.read(base_offset, len)
    }

    pub(crate) fn truncate(&mut self, partition: &TopicPartition, offset: Offset) {
        let file = self.files.entry(partition.clone()).or_default();
        let pos = file.position_of(offset);
        file.write(Write::SetLen(pos));
    }

    pub(crate) fn truncate_fully(&mut self, partition: &TopicPartition) {
        self.files
            .entry(partition.clone())
            .or_default()
            .write(Write::SetLen(0));
    }

    /// A sync starts: it will cover every write made so far.
    pub(crate) fn start_sync(&mut self, partition: &TopicPartition, sync_id: u64) {
        let covered = self.files.get(partition).map_or(0, |f| f.unsynced.len());
        self.pending_syncs
            .insert((partition.clone(), sync_id), covered);
    }

    /// A sync finishes: the writes it covered are durable.
    pub(crate) fn finish_sync(&mut self, partition: &TopicPartition, sync_id: u64) {
        let Some(covered) = self.pending_syncs.remove(&(partition.clone(), sync_id)) else {
            return;
        };
        let Some(file) = self.files.get_mut(partition) else {
            return;
        };
        let covered = covered.min(file.unsynced.len());
        for write in file.unsynced.drain(..covered) {
            File::apply(&mut file.durable, &write);
        }
        for (key, n) in self.pending_syncs.iter_mut() {
            if &key.0 == partition {
                *n = n.saturating_sub(covered);
            }
        }
    }

    /// Power is cut: the page cache is lost. Some unsynced writes may have reached the
    /// disk anyway (a prefix of them), the last perhaps torn.
    pub(crate) fn crash(&mut self, rng: &mut ChaCha8Rng, keep_unsynced: f64, torn_tail: f64) {
        self.pending_syncs.clear();
        for file in self.files.values_mut() {
            let unsynced = std::mem::take(&mut file.unsynced);
            if !unsynced.is_empty() && rng.random_bool(keep_unsynced) {
                let kept = rng.random_range(0..=unsynced.len());
                for write in &unsynced[..kept] {
                    File::apply(&mut file.durable, write);
                }
                if kept < unsynced.len() && rng.random_bool(torn_tail) {
                    if let Write::Append(b) = &unsynced[kept] {
                        let part = rng.random_range(1..b.len());
                        file.durable.extend_from_slice(&b[..part]);
                    }
                }
            }
            file.cached = file.durable.clone();
            file.reindex();
        }
    }

    /// Recovery at start: read each file, keep the valid prefix of whole batches, cut the
    /// rest from the file.
    pub(crate) fn recover(&mut self) -> Vec<Recovered> {
        let mut out = Vec::new();
        for (partition, file) in &mut self.files {
            assert!(
                file.unsynced.is_empty(),
                "recovery runs on a freshly started disk"
            );
            let scan = batch::scan(&file.durable);
            let torn_bytes = file.durable.len() - scan.valid_len;
            file.durable.truncate(scan.valid_len);
            file.cached = file.durable.clone();
            file.reindex();
            let all = Bytes::copy_from_slice(&file.durable);
            let batches = scan.batches.into_iter().map(|r| all.slice(r)).collect();
            out.push(Recovered {
                partition: partition.clone(),
                batches,
                torn_bytes,
            });
        }
        out
    }
}

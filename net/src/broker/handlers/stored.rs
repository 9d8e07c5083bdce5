//! Reads of stored batches for the connection tasks: the core keeps only a bounded tail
//! of each partition's bytes in memory (see `RESIDENT_TAIL_BYTES` in the actor), and
//! refers a read of anything older to the segment files ([`FetchedBatch::Stored`]).
//!
//! Where the reads run: the actor only locates the batches (an in-memory lookup, no
//! I/O: [`crate::storage::PartitionDir::locate`]), and the connection task reads them
//! on a blocking thread (`spawn_blocking`; in the task itself under madsim, whose disk
//! is memory) through the segments' own shared read handles. So a read from a cold
//! disk never stalls the
//! actor's event loop, and no lock is held across an await: the only shared state is
//! the `Arc` of each segment's read handle. Storage writes stay on the actor; a batch's
//! position never changes except by truncation or retention, and a read that races one
//! finds a header that does not match (or no bytes) and ends the response before that
//! batch ([`resolve_batches`]), so the reader fetches again.

use bytes::Bytes;
use eddy_core::log::{resolve_batches, FetchedBatch};
use eddy_core::types::{Offset, TopicPartition};
use tokio::sync::oneshot;

use super::super::{Command, Shared};

/// The batches of a read, the stored ones read from the segment files: in order, up to
/// the first that cannot be read whole.
pub(crate) async fn resolve(
    shared: &Shared,
    tp: &TopicPartition,
    batches: Vec<FetchedBatch>,
) -> Vec<Bytes> {
    let refs: Vec<(Offset, u32)> = batches
        .iter()
        .filter_map(|b| match b {
            FetchedBatch::Stored { base_offset, len } => Some((*base_offset, *len)),
            FetchedBatch::Bytes(_) => None,
        })
        .collect();
    if refs.is_empty() {
        return resolve_batches(batches, |_, _| None);
    }
    let mut read = read_stored(shared, tp, refs).await.into_iter();
    // Both go in order and stop at the first batch not found; `resolve_batches` checks
    // each read names the batch it stands for.
    resolve_batches(batches, |_, _| read.next())
}

/// Reads the stored batches `refs` of `tp`, in order, up to the first not found whole.
pub(crate) async fn read_stored(
    shared: &Shared,
    tp: &TopicPartition,
    refs: Vec<(Offset, u32)>,
) -> Vec<Bytes> {
    let (tx, rx) = oneshot::channel();
    let sent = shared
        .send(Command::LocateStored {
            partition: tp.clone(),
            batches: refs,
            reply: tx,
        })
        .await;
    if !sent {
        return Vec::new();
    }
    let Ok(located) = rx.await else {
        return Vec::new();
    };
    if located.is_empty() {
        return Vec::new();
    }
    let read = move || located.iter().map_while(|r| r.read()).collect();
    #[cfg(not(madsim))]
    return tokio::task::spawn_blocking(read).await.unwrap_or_default();
    // The simulated disk is memory: read in the task (madsim has no blocking threads).
    #[cfg(madsim)]
    read()
}

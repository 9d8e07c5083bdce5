//! The producer's batches, per partition: an open batch records are appended to, sealed
//! batches waiting to be sent (a retried batch goes back to the front, so order holds),
//! and the partition's next sequence number. Everything here runs under the producer's
//! state lock and never awaits.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use eddy_core::batch::NewRecord;
use eddy_core::TopicPartition;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{ProducerConfig, ProducerRecord, RecordMetadata};
use crate::error::{ClientError, Result};

/// The most record bytes one sent batch carries when queued batches are merged: well
/// under the broker's default `max.message.bytes` (1 MiB) even uncompressed.
const MAX_MERGED_BATCH_BYTES: usize = 512 * 1024;

/// Bytes a record adds to a batch beyond its key, value and headers: the varint
/// lengths, deltas and attributes, generously (Kafka's `DefaultRecord` upper bound).
const RECORD_OVERHEAD_BYTES: usize = 21;

/// The bytes a record is charged against `batch.size` and `buffer.memory`.
pub(super) fn record_size(r: &ProducerRecord) -> usize {
    RECORD_OVERHEAD_BYTES
        + r.key.as_ref().map_or(0, Bytes::len)
        + r.value.as_ref().map_or(0, Bytes::len)
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 10)
            .sum::<usize>()
}

/// Where a record's outcome goes: a [`super::DeliveryFuture`], or a callback (run on the
/// producer's sender task, so it must be quick, as in Kafka's Java client).
pub(super) enum Reply {
    Future(oneshot::Sender<Result<RecordMetadata>>),
    Callback(Box<dyn FnOnce(Result<RecordMetadata>) + Send>),
}

impl Reply {
    fn send(self, outcome: Result<RecordMetadata>) {
        match self {
            Reply::Future(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Callback(f) => f(outcome),
        }
    }
}

/// A batch: its records with their callers, and its send history.
pub(super) struct Batch {
    pub(super) tp: TopicPartition,
    pub(super) records: Vec<NewRecord>,
    pub(super) replies: Vec<Reply>,
    pub(super) size_bytes: usize,
    /// When the first record was appended: lingering and the delivery timeout count from
    /// here.
    pub(super) created: Instant,
    /// (producer id, epoch, base sequence) once the batch has been numbered; kept for
    /// every retry so the broker can recognise a duplicate.
    pub(super) sequence: Option<(i64, i16, i32)>,
    /// The encoded batch, built on the first send and resent as is.
    pub(super) encoded: Option<Bytes>,
    pub(super) attempts: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) last_error: Option<String>,
}

impl Batch {
    /// Completes every record: with offsets from `base_offset` on, or with the error.
    pub(super) fn complete(self, outcome: std::result::Result<i64, ClientError>) -> usize {
        let n = self.replies.len();
        match outcome {
            Ok(base_offset) => {
                for (i, (reply, r)) in self.replies.into_iter().zip(&self.records).enumerate() {
                    reply.send(Ok(RecordMetadata {
                        topic: self.tp.topic.clone(),
                        partition: self.tp.partition as i32,
                        offset: if base_offset < 0 {
                            -1
                        } else {
                            base_offset + i as i64
                        },
                        timestamp_ms: r.timestamp_ms,
                    }));
                }
            }
            Err(e) => {
                let message = e.to_string();
                let mut first = Some(e);
                for reply in self.replies {
                    let e = first.take().unwrap_or_else(|| ClientError::Connection {
                        broker: String::new(),
                        reason: message.clone(),
                    });
                    reply.send(Err(e));
                }
            }
        }
        n
    }

    fn expired(&self, now: Instant, delivery_timeout: Duration) -> bool {
        now.duration_since(self.created) >= delivery_timeout
    }
}

/// Merges batches queued behind `batch` into it while none of them has been sent yet
/// and the total stays under [`MAX_MERGED_BATCH_BYTES`]. With one batch in flight per
/// partition, a backlog would otherwise go out one `batch.size` per round trip; merged,
/// a producer that is ahead of the broker sends bigger batches instead (what Kafka's
/// five in-flight requests achieve, without reordering risk on retries).
fn merge_backlog(batch: &mut Batch, queue: &mut VecDeque<Batch>) {
    if batch.encoded.is_some() {
        return; // a retry goes out exactly as it went before
    }
    while let Some(next) = queue.front() {
        if next.encoded.is_some() || batch.size_bytes + next.size_bytes > MAX_MERGED_BATCH_BYTES {
            break;
        }
        let next = queue.pop_front().expect("checked");
        batch.records.extend(next.records);
        batch.replies.extend(next.replies);
        batch.size_bytes += next.size_bytes;
        batch.created = batch.created.min(next.created);
    }
}

/// One partition's queue.
#[derive(Default)]
pub(super) struct PartitionQueue {
    pub(super) open: Option<Batch>,
    pub(super) sealed: VecDeque<Batch>,
    /// A batch of this partition is in a request whose answer has not come back.
    pub(super) in_flight: bool,
    /// The sequence number the next new batch starts at (idempotence).
    pub(super) next_sequence: i32,
}

/// Everything the producer's tasks share, under one lock.
#[derive(Default)]
pub(crate) struct State {
    pub(super) partitions: BTreeMap<TopicPartition, PartitionQueue>,
    /// The partition records without a key go to, per topic, until its batch fills.
    sticky: BTreeMap<String, i32>,
    /// Records appended and not yet completed.
    pub(super) outstanding: usize,
    /// Bytes of `buffer.memory` held by outstanding records.
    pub(super) outstanding_bytes: usize,
    pub(super) flushing: usize,
    pub(super) closed: bool,
    /// The producer id and epoch from InitProducerId, once known.
    pub(super) producer: Option<(i64, i16)>,
    /// Partitions whose leader is unknown: the sender refreshes metadata.
    pub(super) needs_metadata: bool,
}

/// A batch ready to go to a broker, with the broker it goes to.
pub(super) struct Drained {
    pub(super) leader: i32,
    pub(super) batch: Batch,
}

impl State {
    /// The sticky partition for keyless records of `topic` (a new one once its batch is
    /// sealed, as Kafka's sticky partitioner does, KIP-480).
    pub(super) fn sticky_partition(&mut self, topic: &str, partitions: usize) -> i32 {
        let next = self.sticky.len();
        let p = self.sticky.entry(topic.to_string()).or_insert(next as i32);
        *p = (*p as usize % partitions) as i32;
        *p
    }

    /// Appends a record; returns whether the sender should wake (a batch filled, or
    /// nothing lingers).
    pub(super) fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: NewRecord,
        size: usize,
        reply: Reply,
        config: &ProducerConfig,
    ) -> bool {
        let tp = TopicPartition::new(topic, partition as u32);
        let q = self.partitions.entry(tp.clone()).or_default();
        let mut wake = false;
        if q.open
            .as_ref()
            .is_some_and(|b| b.size_bytes + size > config.batch_size)
        {
            q.sealed.push_back(q.open.take().expect("checked"));
            wake = true;
        }
        let batch = q.open.get_or_insert_with(|| Batch {
            tp,
            records: Vec::new(),
            replies: Vec::new(),
            size_bytes: 0,
            created: Instant::now(),
            sequence: None,
            encoded: None,
            attempts: 0,
            retry_at: None,
            last_error: None,
        });
        batch.records.push(record);
        batch.replies.push(reply);
        batch.size_bytes += size;
        if batch.size_bytes >= config.batch_size {
            q.sealed.push_back(q.open.take().expect("just filled"));
            wake = true;
        }
        self.outstanding += 1;
        self.outstanding_bytes += size;
        if wake || config.linger_ms == 0 {
            // The sticky partition moves on once its batch is full.
            if let Some(p) = self.sticky.get_mut(topic) {
                if *p == partition {
                    *p += 1; // wrapped in sticky_partition
                }
            }
            return true;
        }
        false
    }

    /// Seals batches that are due, fails the expired, and takes at most one batch per
    /// partition whose leader is known and which has nothing in flight. Returns them
    /// and when the sender should look again.
    pub(super) fn drain(
        &mut self,
        now: Instant,
        config: &ProducerConfig,
        leader_of: impl Fn(&TopicPartition) -> Option<i32>,
    ) -> (Vec<Drained>, Vec<Batch>, Option<Instant>) {
        let linger = Duration::from_millis(config.linger_ms);
        let delivery_timeout = Duration::from_millis(config.delivery_timeout_ms);
        let send_all = self.flushing > 0 || self.closed;
        let mut ready = Vec::new();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        for q in self.partitions.values_mut() {
            if let Some(open) = &q.open {
                if send_all || now.duration_since(open.created) >= linger {
                    q.sealed.push_back(q.open.take().expect("checked"));
                } else {
                    soonest(open.created + linger);
                }
            }
            if q.in_flight {
                continue;
            }
            while q
                .sealed
                .front()
                .is_some_and(|b| b.expired(now, delivery_timeout))
            {
                expired.push(q.sealed.pop_front().expect("checked"));
            }
            let Some(front) = q.sealed.front() else {
                continue;
            };
            if let Some(at) = front.retry_at {
                if at > now {
                    soonest(at);
                    continue;
                }
            }
            soonest(front.created + delivery_timeout);
            match leader_of(&front.tp) {
                Some(leader) => {
                    q.in_flight = true;
                    let mut batch = q.sealed.pop_front().expect("checked");
                    merge_backlog(&mut batch, &mut q.sealed);
                    ready.push(Drained { leader, batch });
                }
                None => self.needs_metadata = true,
            }
        }
        (ready, expired, next)
    }

    /// Puts a batch that failed with a retriable error back at the front of its queue.
    pub(super) fn requeue(&mut self, mut batch: Batch, retry_at: Instant, error: String) {
        batch.attempts += 1;
        batch.retry_at = Some(retry_at);
        batch.last_error = Some(error);
        let q = self.partitions.get_mut(&batch.tp).expect("queue exists");
        q.in_flight = false;
        q.sealed.push_front(batch);
    }

    /// Records that a batch is done (acknowledged or failed); returns the bytes it freed.
    pub(super) fn finished(&mut self, tp: &TopicPartition, records: usize, bytes: usize) -> usize {
        if let Some(q) = self.partitions.get_mut(tp) {
            q.in_flight = false;
        }
        assert!(
            self.outstanding >= records,
            "more records finished than sent"
        );
        self.outstanding -= records;
        self.outstanding_bytes -= bytes;
        bytes
    }

    /// Numbers a batch for the idempotent producer, once: later sends reuse the number.
    pub(super) fn assign_sequence(&mut self, batch: &mut Batch) {
        if batch.sequence.is_some() {
            return;
        }
        let Some((id, epoch)) = self.producer else {
            return;
        };
        let q = self.partitions.get_mut(&batch.tp).expect("queue exists");
        let base = q.next_sequence;
        // Sequences wrap at 2^31 (KAFKA-COMPAT item 6).
        let n = batch.records.len() as i64;
        q.next_sequence = ((i64::from(base) + n) % (i64::from(i32::MAX) + 1)) as i32;
        batch.sequence = Some((id, epoch, base));
    }

    /// Forgets the producer id and every sequence: after a batch was given up on, the
    /// broker's expected sequence is unknown, so the producer starts over with a new id.
    pub(super) fn reset_producer_id(&mut self) {
        self.producer = None;
        for q in self.partitions.values_mut() {
            q.next_sequence = 0;
            for b in q.sealed.iter_mut() {
                b.sequence = None;
                b.encoded = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(batch_size: usize, linger_ms: u64) -> ProducerConfig {
        ProducerConfig {
            batch_size,
            linger_ms,
            ..ProducerConfig::default()
        }
    }

    fn record(value_len: usize) -> NewRecord {
        NewRecord {
            value: Some(Bytes::from(vec![b'x'; value_len])),
            ..NewRecord::default()
        }
    }

    fn append(s: &mut State, partition: i32, value_len: usize, c: &ProducerConfig) -> bool {
        let (reply, _) = oneshot::channel();
        let reply = Reply::Future(reply);
        let size = RECORD_OVERHEAD_BYTES + value_len;
        s.append("t", partition, record(value_len), size, reply, c)
    }

    #[tokio::test]
    async fn a_batch_is_sealed_at_batch_size_and_lingers_otherwise() {
        let c = config(1_000, 60_000);
        let mut s = State::default();
        for _ in 0..4 {
            assert!(!append(&mut s, 0, 179, &c), "200 bytes each: not full yet");
        }
        assert!(
            append(&mut s, 0, 179, &c),
            "the fifth fills the batch and wakes the sender"
        );
        let q = &s.partitions[&TopicPartition::new("t", 0)];
        assert_eq!(q.sealed.len(), 1);
        assert!(q.open.is_none());
        assert!(!append(&mut s, 0, 179, &c));
        // The lingering batch is not drained before linger.ms; the full one is.
        let (ready, expired, next) = s.drain(Instant::now(), &c, |_| Some(1));
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].batch.records.len(), 5);
        assert!(expired.is_empty());
        assert!(
            next.is_some(),
            "the sender is told when the lingering batch is due"
        );
    }

    #[tokio::test]
    async fn one_batch_per_partition_is_in_flight_and_a_retry_goes_first() {
        let c = config(100, 0);
        let mut s = State::default();
        for _ in 0..3 {
            append(&mut s, 0, 79, &c); // each record fills a batch
        }
        let (ready, _, _) = s.drain(Instant::now(), &c, |_| Some(1));
        assert_eq!(ready.len(), 1, "one request's worth per partition");
        // The backlog behind the first batch went with it, merged (none was sent yet).
        assert_eq!(ready[0].batch.records.len(), 3);
        let mut first = ready.into_iter().next().unwrap().batch;
        s.producer = Some((7, 0));
        s.assign_sequence(&mut first);
        assert_eq!(first.sequence, Some((7, 0, 0)));
        first.encoded = Some(Bytes::from_static(b"sent"));
        append(&mut s, 0, 79, &c);
        let (ready, _, _) = s.drain(Instant::now(), &c, |_| Some(1));
        assert!(ready.is_empty(), "nothing more while a batch is in flight");
        s.requeue(first, Instant::now(), "NOT_LEADER_OR_FOLLOWER".into());
        let (ready, _, _) = s.drain(Instant::now(), &c, |_| Some(1));
        let retried = &ready[0].batch;
        assert_eq!(
            retried.sequence,
            Some((7, 0, 0)),
            "a retry keeps its sequence"
        );
        assert_eq!(retried.records.len(), 3, "a sent batch is never merged");
        let q = &s.partitions[&TopicPartition::new("t", 0)];
        assert_eq!(q.next_sequence, 3);
        assert_eq!(q.sealed.len(), 1, "the newer batch waits behind the retry");
    }

    #[tokio::test]
    async fn a_batch_past_the_delivery_timeout_expires_and_sequences_wrap() {
        let c = ProducerConfig {
            delivery_timeout_ms: 10,
            ..config(100, 0)
        };
        let mut s = State::default();
        append(&mut s, 0, 79, &c);
        let later = Instant::now() + Duration::from_millis(20);
        let (ready, expired, _) = s.drain(later, &c, |_| None);
        assert!(ready.is_empty());
        assert_eq!(expired.len(), 1);

        s.producer = Some((1, 0));
        append(&mut s, 1, 79, &c);
        s.partitions
            .get_mut(&TopicPartition::new("t", 1))
            .unwrap()
            .next_sequence = i32::MAX;
        let (ready, _, _) = s.drain(Instant::now(), &c, |_| Some(1));
        let mut b = ready.into_iter().next().unwrap().batch;
        s.assign_sequence(&mut b);
        assert_eq!(b.sequence, Some((1, 0, i32::MAX)));
        assert_eq!(
            s.partitions[&TopicPartition::new("t", 1)].next_sequence,
            0,
            "wraps at 2^31"
        );
    }
}

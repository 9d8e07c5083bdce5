//! The producer's batches, per partition: an open batch records are appended to, sealed
//! batches waiting to be sent, the batches in flight, and the partition's next sequence
//! number. Everything here runs under the producer's state lock and never awaits.
//!
//! Up to `max.in.flight.requests.per.connection` batches of a partition are in flight at
//! once. Order on retries follows Kafka's Java producer (`RecordAccumulator.drain`,
//! `TransactionManager`'s in-flight batches by sequence):
//! - Every batch gets a place in its partition's order (`Batch::order`) when it is first
//!   sent, and, with idempotence, its sequence number at the same moment, so sequences
//!   follow the order.
//! - With idempotence, a failed batch goes back into the queue in order, keeps its
//!   sequence, and is sent again only once it is the oldest unfinished batch of its
//!   partition; the later batches that were in flight behind it are answered
//!   OUT_OF_ORDER_SEQUENCE_NUMBER by the broker and are retried behind it in turn. So
//!   records of one partition are never reordered.
//! - Stricter than Kafka: with idempotence a partition pipelines only once a batch of
//!   the current producer id has been acknowledged. Before that the broker has no state
//!   for the producer and accepts any sequence (KIP-360), so a batch overtaking a failed
//!   first batch would be appended out of order.
//! - Without idempotence a retried batch goes to the front of the queue and out at once,
//!   so with more than one in flight it may overtake batches sent after it, as in Kafka.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

/// The most batches per partition in flight with idempotence: the broker remembers the
/// last five batches per producer for duplicate detection (`BATCHES_REMEMBERED` in
/// `eddy_core::producer_state`, Kafka's limit too).
pub(super) const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;

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
    /// The batch's place in its partition's order, given when it is first sent.
    pub(super) order: Option<u64>,
    /// Whether it was last sent while an earlier batch of its partition was unfinished:
    /// then an OUT_OF_ORDER_SEQUENCE_NUMBER answer may only mean that batch failed, and
    /// it is retried; sent as the oldest unfinished, the answer is a real disagreement.
    pub(super) sent_behind_unfinished: bool,
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
/// and the total stays under [`MAX_MERGED_BATCH_BYTES`]: a producer that is ahead of the
/// broker sends fewer, bigger batches (fewer requests, appends and acknowledgements).
fn merge_backlog(batch: &mut Batch, queue: &mut VecDeque<Batch>) {
    if batch.order.is_some() {
        return; // a retry goes out exactly as it went before
    }
    while let Some(next) = queue.front() {
        if next.order.is_some() || batch.size_bytes + next.size_bytes > MAX_MERGED_BATCH_BYTES {
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
    /// The order of the batches in requests whose answers have not come back.
    pub(super) in_flight: BTreeSet<u64>,
    /// The order of every batch sent and not finished: in flight, or queued for a retry.
    pub(super) unfinished: BTreeSet<u64>,
    /// The order the next batch sent for the first time gets.
    next_order: u64,
    /// The sequence number the next new batch starts at (idempotence).
    pub(super) next_sequence: i32,
    /// A batch numbered under the current producer id has been acknowledged, so the
    /// broker holds this producer's state and refuses a sequence gap (idempotence).
    pub(super) acked_under_producer: bool,
}

impl PartitionQueue {
    /// Whether `batch` is the oldest batch of this partition not finished yet.
    pub(super) fn is_oldest_unfinished(&self, batch: &Batch) -> bool {
        batch.order.is_some() && self.unfinished.first() == batch.order.as_ref()
    }
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
            order: None,
            sent_behind_unfinished: false,
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
    /// partition that may be sent now (its leader is known, fewer than
    /// `max.in.flight.requests.per.connection` are in flight, and the ordering rules in
    /// the module doc allow it), numbered with its sequence if idempotence is on.
    /// Returns them and when the sender should look again.
    pub(super) fn drain(
        &mut self,
        now: Instant,
        config: &ProducerConfig,
        leader_of: impl Fn(&TopicPartition) -> Option<i32>,
    ) -> (Vec<Drained>, Vec<Batch>, Option<Instant>) {
        let linger = Duration::from_millis(config.linger_ms);
        let delivery_timeout = Duration::from_millis(config.delivery_timeout_ms);
        let send_all = self.flushing > 0 || self.closed;
        let idempotent = config.enable_idempotence;
        let max_in_flight = config.max_in_flight_requests_per_connection.max(1);
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
            while q
                .sealed
                .front()
                .is_some_and(|b| b.expired(now, delivery_timeout))
            {
                let b = q.sealed.pop_front().expect("checked");
                if let Some(order) = b.order {
                    q.unfinished.remove(&order);
                }
                expired.push(b);
            }
            if q.in_flight.len() >= max_in_flight {
                continue; // an answer wakes the sender
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
            if idempotent {
                if self.producer.is_none() {
                    continue; // the sender gets a producer id first
                }
                let waits = if front.order.is_some() {
                    // A retry goes only once everything before it is finished.
                    !q.is_oldest_unfinished(front)
                } else {
                    // A new batch pipelines only behind batches the broker will order.
                    !q.in_flight.is_empty() && !q.acked_under_producer
                };
                if waits {
                    continue; // an answer wakes the sender
                }
            }
            let Some(leader) = leader_of(&front.tp) else {
                self.needs_metadata = true;
                continue;
            };
            let mut batch = q.sealed.pop_front().expect("checked");
            merge_backlog(&mut batch, &mut q.sealed);
            let order = *batch.order.get_or_insert_with(|| {
                q.next_order += 1;
                q.next_order
            });
            if idempotent && batch.sequence.is_none() {
                let (id, epoch) = self.producer.expect("checked above");
                let base = q.next_sequence;
                // Sequences wrap at 2^31 (KAFKA-COMPAT item 6).
                let n = batch.records.len() as i64;
                q.next_sequence = ((i64::from(base) + n) % (i64::from(i32::MAX) + 1)) as i32;
                batch.sequence = Some((id, epoch, base));
            }
            batch.sent_behind_unfinished = q.unfinished.first().is_some_and(|&o| o < order);
            q.in_flight.insert(order);
            q.unfinished.insert(order);
            if !q.sealed.is_empty() && q.in_flight.len() < max_in_flight {
                soonest(now); // more may follow at once
            }
            ready.push(Drained { leader, batch });
        }
        (ready, expired, next)
    }

    /// Puts a batch that failed with a retriable error back in its queue: with
    /// idempotence in its place by order (it keeps its sequence), without at the front.
    pub(super) fn requeue(
        &mut self,
        mut batch: Batch,
        retry_at: Instant,
        error: String,
        config: &ProducerConfig,
    ) {
        batch.attempts += 1;
        batch.retry_at = Some(retry_at);
        batch.last_error = Some(error);
        let order = batch.order.expect("a requeued batch was sent");
        let q = self.partitions.get_mut(&batch.tp).expect("queue exists");
        q.in_flight.remove(&order);
        if config.enable_idempotence {
            let at = q
                .sealed
                .iter()
                .position(|b| b.order.is_none_or(|o| o > order))
                .unwrap_or(q.sealed.len());
            q.sealed.insert(at, batch);
        } else {
            q.sealed.push_front(batch);
        }
    }

    /// Whether `batch` was numbered under a producer id that has since been given up.
    pub(super) fn is_stale(&self, batch: &Batch) -> bool {
        batch
            .sequence
            .is_some_and(|(id, epoch, _)| self.producer != Some((id, epoch)))
    }

    /// Records that a batch is done (acknowledged or failed); returns the bytes it freed.
    pub(super) fn finished(
        &mut self,
        tp: &TopicPartition,
        order: Option<u64>,
        sequence: Option<(i64, i16, i32)>,
        acked: bool,
        records: usize,
        bytes: usize,
    ) -> usize {
        if let (Some(q), Some(order)) = (self.partitions.get_mut(tp), order) {
            q.in_flight.remove(&order);
            q.unfinished.remove(&order);
            if acked && sequence.is_some_and(|(id, epoch, _)| self.producer == Some((id, epoch))) {
                q.acked_under_producer = true;
            }
        }
        assert!(
            self.outstanding >= records,
            "more records finished than sent"
        );
        self.outstanding -= records;
        self.outstanding_bytes -= bytes;
        bytes
    }

    /// Forgets the producer id and every sequence: after a batch was given up on, the
    /// broker's expected sequence is unknown, so the producer starts over with a new id.
    /// Returns the queued batches that were sent under the old id: the broker may have
    /// any of them, so sending them again under a new id could duplicate them; they fail
    /// with an unknown outcome instead. (Batches still in flight are judged by their
    /// answer: acknowledged, or failed because stale, see [`State::is_stale`].)
    pub(super) fn reset_producer_id(&mut self) -> Vec<Batch> {
        self.producer = None;
        let mut given_up = Vec::new();
        for q in self.partitions.values_mut() {
            q.next_sequence = 0;
            q.acked_under_producer = false;
            let (sent, unsent): (VecDeque<Batch>, VecDeque<Batch>) =
                q.sealed.drain(..).partition(|b| b.order.is_some());
            q.sealed = unsent;
            for b in sent {
                q.unfinished.remove(&b.order.expect("partitioned on it"));
                given_up.push(b);
            }
        }
        given_up
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
        let mut s = numbered();
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

    /// A producer state with producer id 7, epoch 0.
    fn numbered() -> State {
        State {
            producer: Some((7, 0)),
            ..State::default()
        }
    }

    /// Drains once; returns the batches sent, marked as encoded (sent).
    fn send(s: &mut State, c: &ProducerConfig) -> Vec<Batch> {
        let (ready, _, _) = s.drain(Instant::now(), c, |_| Some(1));
        ready
            .into_iter()
            .map(|d| {
                let mut b = d.batch;
                b.encoded.get_or_insert(Bytes::from_static(b"sent"));
                b
            })
            .collect()
    }

    /// Acknowledges a batch as the sender's `finish` does.
    fn ack(s: &mut State, b: Batch) {
        let (tp, order, sequence, n, bytes) = (
            b.tp.clone(),
            b.order,
            b.sequence,
            b.records.len(),
            b.size_bytes,
        );
        s.finished(&tp, order, sequence, true, n, bytes);
    }

    fn base_sequence(b: &Batch) -> i32 {
        b.sequence.expect("numbered").2
    }

    /// Sends one batch of partition 0 and acknowledges it (so the partition may
    /// pipeline), then sends `n` more, one per drain; returns those `n`, in flight.
    fn acknowledged_then_in_flight(s: &mut State, c: &ProducerConfig, n: usize) -> Vec<Batch> {
        append(s, 0, 79, c);
        let first = send(s, c).remove(0);
        ack(s, first);
        sent_one_by_one(s, c, n)
    }

    /// Appends and sends `n` batches of partition 0, one per drain.
    fn sent_one_by_one(s: &mut State, c: &ProducerConfig, n: usize) -> Vec<Batch> {
        let mut in_flight = Vec::new();
        for _ in 0..n {
            append(s, 0, 79, c);
            in_flight.extend(send(s, c));
        }
        in_flight
    }

    #[tokio::test]
    async fn the_first_batch_goes_alone_then_five_are_in_flight_in_sequence_order() {
        let c = config(100, 0);
        let mut s = numbered();
        for _ in 0..3 {
            append(&mut s, 0, 79, &c); // each record fills a batch
        }
        let first = send(&mut s, &c);
        assert_eq!(first.len(), 1, "one batch per partition per drain");
        // The backlog behind the first batch went with it, merged (none was sent yet).
        assert_eq!(first[0].records.len(), 3);
        assert_eq!(first[0].sequence, Some((7, 0, 0)));
        append(&mut s, 0, 79, &c);
        assert!(
            send(&mut s, &c).is_empty(),
            "before the broker acknowledged a batch of this producer id, nothing pipelines"
        );
        ack(&mut s, first.into_iter().next().unwrap());
        let mut in_flight = Vec::new();
        for i in 0..7 {
            append(&mut s, 0, 79, &c);
            let sent = send(&mut s, &c);
            assert_eq!(sent.len(), usize::from(i < 5), "at most five in flight");
            in_flight.extend(sent);
        }
        let sequences: Vec<i32> = in_flight.iter().map(base_sequence).collect();
        assert_eq!(
            sequences,
            [3, 5, 6, 7, 8],
            "numbered in the order they are sent"
        );
        ack(&mut s, in_flight.remove(0));
        assert_eq!(send(&mut s, &c).len(), 1, "an answer frees a place");
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_first_with_its_sequence_and_later_ones_wait_behind_it() {
        let c = config(100, 0);
        let mut s = numbered();
        let in_flight = acknowledged_then_in_flight(&mut s, &c, 3);
        let [b1, b2, b3]: [Batch; 3] = in_flight.try_into().ok().unwrap();
        assert_eq!(
            [&b1, &b2, &b3].map(base_sequence),
            [1, 2, 3],
            "three in flight"
        );
        // b1 failed retriably, so the broker answered b2 and b3
        // OUT_OF_ORDER_SEQUENCE_NUMBER: they went behind an unfinished batch, so that
        // answer means "retry", whatever order the answers are handled in.
        assert!(!b1.sent_behind_unfinished);
        assert!(b2.sent_behind_unfinished && b3.sent_behind_unfinished);
        let now = Instant::now();
        // Requeued out of order (b3 first): the queue puts them back by order.
        s.requeue(b3, now, "OUT_OF_ORDER_SEQUENCE_NUMBER".into(), &c);
        append(&mut s, 0, 79, &c); // a new batch, behind every retry
        s.requeue(b1, now, "NOT_LEADER_OR_FOLLOWER".into(), &c);
        s.requeue(b2, now, "OUT_OF_ORDER_SEQUENCE_NUMBER".into(), &c);
        let retried = send(&mut s, &c);
        assert_eq!(retried.len(), 1);
        assert_eq!(
            retried[0].sequence,
            Some((7, 0, 1)),
            "b1 first, same sequence"
        );
        assert_eq!(retried[0].records.len(), 1, "a sent batch is never merged");
        assert!(
            !retried[0].sent_behind_unfinished,
            "a retry goes as the oldest"
        );
        assert!(
            send(&mut s, &c).is_empty(),
            "b2 is not the oldest unfinished while b1 is in flight again"
        );
        ack(&mut s, retried.into_iter().next().unwrap());
        let b2 = send(&mut s, &c);
        assert_eq!(b2.iter().map(base_sequence).collect::<Vec<_>>(), [2]);
        assert!(send(&mut s, &c).is_empty(), "b3 waits for b2");
        ack(&mut s, b2.into_iter().next().unwrap());
        let b3 = send(&mut s, &c);
        assert_eq!(b3.iter().map(base_sequence).collect::<Vec<_>>(), [3]);
        let new = send(&mut s, &c);
        assert_eq!(
            new.iter().map(base_sequence).collect::<Vec<_>>(),
            [4],
            "a new batch pipelines behind the last retry"
        );
    }

    #[tokio::test]
    async fn without_idempotence_a_retry_goes_at_once_and_may_overtake() {
        let c = ProducerConfig {
            enable_idempotence: false,
            ..config(100, 0)
        };
        let mut s = State::default();
        let mut in_flight = sent_one_by_one(&mut s, &c, 3);
        assert_eq!(
            in_flight.len(),
            3,
            "no need to wait for a first acknowledgement"
        );
        assert!(in_flight.iter().all(|b| b.sequence.is_none()));
        let b1 = in_flight.remove(0);
        s.requeue(b1, Instant::now(), "NOT_LEADER_OR_FOLLOWER".into(), &c);
        append(&mut s, 0, 79, &c);
        let retried = send(&mut s, &c);
        assert_eq!(retried.len(), 1);
        assert_eq!(
            retried[0].attempts, 1,
            "the retry goes first, while later ones fly"
        );

        let one = ProducerConfig {
            max_in_flight_requests_per_connection: 1,
            ..c
        };
        let mut s = State::default();
        append(&mut s, 0, 79, &one);
        assert_eq!(send(&mut s, &one).len(), 1);
        append(&mut s, 0, 79, &one);
        assert!(
            send(&mut s, &one).is_empty(),
            "with one in flight, order holds"
        );
    }

    #[tokio::test]
    async fn starting_over_under_a_new_producer_id_fails_batches_sent_under_the_old_one() {
        let c = config(100, 0);
        let mut s = numbered();
        let mut in_flight = acknowledged_then_in_flight(&mut s, &c, 2);
        let b2 = in_flight.pop().unwrap();
        let b1 = in_flight.pop().unwrap();
        s.requeue(b1, Instant::now(), "timed out".into(), &c);
        append(&mut s, 0, 79, &c); // never sent
        let given_up = s.reset_producer_id();
        assert_eq!(given_up.len(), 1, "b1 was sent under the old id: given up");
        assert!(
            s.is_stale(&b2),
            "b2, still in flight, fails when it comes back"
        );
        assert!(send(&mut s, &c).is_empty(), "no producer id yet");
        s.producer = Some((8, 0));
        assert!(
            send(&mut s, &c).is_empty(),
            "new batches wait while old ones are in flight"
        );
        let (tp, order, seq) = (b2.tp.clone(), b2.order, b2.sequence);
        s.finished(&tp, order, seq, false, 1, b2.size_bytes);
        let renumbered = send(&mut s, &c);
        assert_eq!(
            renumbered[0].sequence,
            Some((8, 0, 0)),
            "numbered from 0 again"
        );
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
        let b = send(&mut s, &c).remove(0);
        assert_eq!(b.sequence, Some((1, 0, i32::MAX)));
        assert_eq!(
            s.partitions[&TopicPartition::new("t", 1)].next_sequence,
            0,
            "wraps at 2^31"
        );
    }
}

//! The simulated clients: producers and readers, written the way a Kafka client behaves.
//!
//! A producer sends one batch at a time (max.in.flight = 1), to the leader its metadata
//! names; on NOT_LEADER_OR_FOLLOWER, a timeout or a lost connection it refreshes metadata
//! and retries the same bytes, so an idempotent producer's retry carries the same
//! sequence numbers. A reply that never comes is an unknown outcome, never a failure.
//! A reader consumes every partition from offset 0 with long-polling fetches.
//!
//! Every record value names its producer and batch (`p<producer>:<batch>:<record>`), so
//! checkers recognise a batch wherever it lands; the world keeps a CRC-to-batch table
//! for the same purpose without decoding records.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy_core::batch::{BatchBuilder, BatchHeader, NewRecord};
use eddy_core::message::{Acks, ClientRequest, ClientResponse};
use eddy_core::{ErrorCode, NodeId, Offset, TimeMs, TopicPartition};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::history::{AcksMode, BatchId, BatchRef, Observation, Part};

/// How long a producer waits for a produce response before calling the outcome unknown.
const PRODUCE_TIMEOUT_MS: u64 = 15_000;
/// The timeout the broker is given for acks=all (Kafka's produce request `timeout_ms`).
const PRODUCE_SERVER_TIMEOUT_MS: u64 = 10_000;
const FETCH_TIMEOUT_MS: u64 = 5_000;
const FETCH_MAX_WAIT_MS: u64 = 500;
const FETCH_MAX_BYTES: u32 = 64 * 1024;
const METADATA_TIMEOUT_MS: u64 = 2_000;
/// Kafka's `retry.backoff.ms` default.
const RETRY_BACKOFF_MS: u64 = 100;

/// What a client wants the world to do.
#[derive(Debug)]
pub(crate) enum ClientAction {
    Send {
        to: NodeId,
        corr: u64,
        req: ClientRequest,
    },
    Observe(Observation),
    WakeAt(TimeMs),
}

/// The world's services a client may use.
pub(crate) struct ClientEnv<'a> {
    pub(crate) now: TimeMs,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) brokers: u32,
    /// CRC-32C of each batch made so far, to its identity.
    pub(crate) batch_ids: &'a mut BTreeMap<u32, BatchId>,
    pub(crate) out: Vec<ClientAction>,
}

/// Leaders as a client's metadata knows them, and the metadata request in flight.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    leaders: BTreeMap<TopicPartition, (NodeId, u32)>,
    in_flight: Option<(u64, TimeMs)>,
    next_broker: u32,
}

impl Metadata {
    pub(crate) fn leader(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.leaders.get(tp).map(|&(n, _)| n)
    }

    pub(crate) fn forget(&mut self, tp: &TopicPartition) {
        self.leaders.remove(tp);
    }

    /// Sends a metadata request to the next broker, unless one is in flight.
    pub(crate) fn refresh(&mut self, env: &mut ClientEnv<'_>, corr: u64) {
        if let Some((_, sent)) = self.in_flight {
            if env.now < sent + METADATA_TIMEOUT_MS {
                return;
            }
        }
        self.next_broker = self.next_broker % env.brokers + 1;
        self.in_flight = Some((corr, env.now));
        env.out.push(ClientAction::Send {
            to: NodeId(self.next_broker),
            corr,
            req: ClientRequest::Metadata,
        });
        env.out
            .push(ClientAction::WakeAt(env.now + METADATA_TIMEOUT_MS));
    }

    /// The connection carrying request `corr` broke. Returns whether it was ours.
    pub(crate) fn on_disconnect(&mut self, corr: u64) -> bool {
        if self.in_flight.map(|(c, _)| c) == Some(corr) {
            self.in_flight = None;
            return true;
        }
        false
    }

    pub(crate) fn on_response(&mut self, corr: u64, resp: &ClientResponse) -> bool {
        let ClientResponse::Metadata { partitions } = resp else {
            return false;
        };
        if self.in_flight.map(|(c, _)| c) != Some(corr) {
            return false;
        }
        self.in_flight = None;
        for (tp, state) in partitions {
            let epoch = state.leader_epoch.0;
            let known = self.leaders.get(tp).map(|&(_, e)| e);
            match state.leader {
                Some(leader) if known.is_none_or(|e| epoch >= e) => {
                    self.leaders.insert(tp.clone(), (leader, epoch));
                }
                _ => {}
            }
        }
        true
    }
}

#[derive(Debug)]
struct PendingBatch {
    part: Part,
    tp: TopicPartition,
    id: BatchId,
    bytes: Bytes,
    attempts: u32,
}

/// A producer: acks, idempotence, one batch in flight.
#[derive(Debug)]
pub(crate) struct Producer {
    pub(crate) index: u32,
    acks: AcksMode,
    idempotent: bool,
    producer_id: i64,
    producer_epoch: i16,
    interval_ms: u64,
    records_per_batch: [u32; 2],
    value_bytes: u32,
    parts: Vec<(Part, TopicPartition)>,
    next_part: usize,
    next_number: u64,
    sequences: BTreeMap<Part, i32>,
    current: Option<PendingBatch>,
    in_flight: Option<(u64, TimeMs)>,
    next_send_at: TimeMs,
    produce_until_ms: TimeMs,
    next_corr: u64,
    metadata: Metadata,
    /// Set when the broker answered with an error no retry can fix.
    pub(crate) fatal: Option<ErrorCode>,
}

impl Producer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: u32,
        acks: AcksMode,
        idempotent: bool,
        interval_ms: u64,
        records_per_batch: [u32; 2],
        value_bytes: u32,
        parts: Vec<(Part, TopicPartition)>,
        produce_until_ms: TimeMs,
    ) -> Producer {
        Producer {
            index,
            acks,
            idempotent,
            producer_id: 1_000 + i64::from(index),
            producer_epoch: 0,
            interval_ms,
            records_per_batch,
            value_bytes,
            parts,
            next_part: 0,
            next_number: 0,
            sequences: BTreeMap::new(),
            current: None,
            in_flight: None,
            next_send_at: 0,
            produce_until_ms,
            next_corr: 0,
            metadata: Metadata::default(),
            fatal: None,
        }
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    fn wire_acks(&self) -> Acks {
        match self.acks {
            AcksMode::Zero => Acks::None,
            AcksMode::One => Acks::Leader,
            AcksMode::All => Acks::All,
        }
    }

    /// Makes the next batch, with an identity whose CRC no earlier batch has.
    fn make_batch(&mut self, env: &mut ClientEnv<'_>) {
        let (part, tp) = self.parts[self.next_part].clone();
        self.next_part = (self.next_part + 1) % self.parts.len();
        let id = BatchId {
            producer: self.index,
            number: self.next_number,
        };
        self.next_number += 1;
        let count = env
            .rng
            .random_range(self.records_per_batch[0]..=self.records_per_batch[1]);
        let sequence = *self.sequences.get(&part).unwrap_or(&0);
        let bytes = self.encode(env, id, count, sequence);
        if self.idempotent {
            self.sequences
                .insert(part, sequence.wrapping_add(count as i32));
        }
        env.out.push(ClientAction::Observe(Observation::Sent {
            at: env.now,
            producer: self.index,
            part,
            id,
            acks: self.acks,
            idempotent: self.idempotent,
        }));
        self.current = Some(PendingBatch {
            part,
            tp,
            id,
            bytes,
            attempts: 0,
        });
    }

    /// Encodes a batch whose CRC no earlier batch has (the world names batches by CRC).
    fn encode(&self, env: &mut ClientEnv<'_>, id: BatchId, count: u32, sequence: i32) -> Bytes {
        let mut nudge = 0i64;
        loop {
            let mut builder = if self.idempotent {
                BatchBuilder::idempotent(self.producer_id, self.producer_epoch, sequence)
            } else {
                BatchBuilder::new()
            };
            for i in 0..count {
                let mut value = format!("p{}:{}:{i}:", id.producer, id.number).into_bytes();
                value.resize(value.len().max(self.value_bytes as usize), b'.');
                builder.push(NewRecord {
                    key: None,
                    value: Some(Bytes::from(value)),
                    headers: Vec::new(),
                    timestamp_ms: env.now as i64 + nudge,
                });
            }
            let bytes = builder.build();
            let crc = BatchHeader::parse(&bytes).expect("just built").crc;
            if let std::collections::btree_map::Entry::Vacant(e) = env.batch_ids.entry(crc) {
                e.insert(id);
                return bytes;
            }
            nudge += 1;
        }
    }

    /// The leader does not know this producer's last sequence (its log lost the last
    /// batches, or it never had them). Do as the Java producer does since KIP-360: bump
    /// the epoch, restart sequences at 0, and fail the batch in hand. Its outcome is
    /// unknown (an earlier attempt may sit in some log), so resending it under the new
    /// epoch could duplicate it; the producer gives it up and reports the failure.
    fn bump_epoch_and_fail(&mut self, env: &mut ClientEnv<'_>) {
        self.producer_epoch += 1;
        self.sequences.clear();
        let Some(c) = self.current.take() else { return };
        env.out.push(ClientAction::Observe(Observation::Failed {
            at: env.now,
            producer: self.index,
            part: c.part,
            id: c.id,
        }));
    }

    pub(crate) fn wake(&mut self, env: &mut ClientEnv<'_>) {
        if self.fatal.is_some() {
            return;
        }
        if let Some((_, sent)) = self.in_flight {
            if env.now < sent + PRODUCE_TIMEOUT_MS {
                return;
            }
            // No answer: the outcome is unknown. Retry the same bytes.
            self.in_flight = None;
            if let Some(c) = &self.current {
                self.metadata.forget(&c.tp.clone());
            }
        }
        if env.now < self.next_send_at {
            env.out.push(ClientAction::WakeAt(self.next_send_at));
            return;
        }
        if self.current.is_none() {
            if env.now >= self.produce_until_ms {
                return;
            }
            self.make_batch(env);
        }
        let c = self.current.as_ref().expect("made above");
        let Some(leader) = self.metadata.leader(&c.tp) else {
            let corr = self.corr();
            self.metadata.refresh(env, corr);
            return;
        };
        let req = ClientRequest::Produce {
            partition: c.tp.clone(),
            acks: self.wire_acks(),
            timeout_ms: PRODUCE_SERVER_TIMEOUT_MS,
            batch: c.bytes.clone(),
        };
        let corr = self.corr();
        env.out.push(ClientAction::Send {
            to: leader,
            corr,
            req,
        });
        let c = self.current.as_mut().expect("made above");
        c.attempts += 1;
        if self.acks == AcksMode::Zero {
            // Fire and forget: nothing will say whether it landed.
            self.current = None;
            self.next_send_at = env.now + self.interval_ms;
            env.out.push(ClientAction::WakeAt(self.next_send_at));
            return;
        }
        self.in_flight = Some((corr, env.now));
        env.out
            .push(ClientAction::WakeAt(env.now + PRODUCE_TIMEOUT_MS));
    }

    /// The connection that carried request `corr` broke (the broker crashed, or
    /// refused the connection): the outcome is unknown; retry after a backoff.
    pub(crate) fn on_disconnect(&mut self, env: &mut ClientEnv<'_>, corr: u64) {
        if !self.metadata.on_disconnect(corr) {
            if self.in_flight.map(|(c, _)| c) != Some(corr) {
                return;
            }
            self.in_flight = None;
            if let Some(c) = &self.current {
                let tp = c.tp.clone();
                self.metadata.forget(&tp);
            }
        }
        self.next_send_at = env.now + RETRY_BACKOFF_MS;
        env.out.push(ClientAction::WakeAt(self.next_send_at));
    }

    pub(crate) fn on_response(&mut self, env: &mut ClientEnv<'_>, corr: u64, resp: ClientResponse) {
        if self.metadata.on_response(corr, &resp) {
            self.wake(env);
            return;
        }
        let ClientResponse::Produce {
            error, base_offset, ..
        } = resp
        else {
            return;
        };
        if self.in_flight.map(|(c, _)| c) != Some(corr) {
            return; // an answer to an attempt we already gave up on
        }
        self.in_flight = None;
        let c = self.current.as_ref().expect("a batch is in flight");
        match (error, base_offset) {
            (ErrorCode::None, Some(base_offset)) => {
                env.out.push(ClientAction::Observe(Observation::Acked {
                    at: env.now,
                    producer: self.index,
                    part: c.part,
                    id: c.id,
                    base_offset,
                    acks: self.acks,
                }));
                self.current = None;
                self.next_send_at = env.now + self.interval_ms;
            }
            (ErrorCode::OutOfOrderSequenceNumber, _) if self.idempotent => {
                self.bump_epoch_and_fail(env);
                self.next_send_at = env.now + self.interval_ms;
            }
            (e, _) if e.is_retriable() => {
                if matches!(
                    e,
                    ErrorCode::NotLeaderOrFollower | ErrorCode::UnknownTopicOrPartition
                ) {
                    let tp = c.tp.clone();
                    self.metadata.forget(&tp);
                }
                self.next_send_at = env.now + RETRY_BACKOFF_MS;
            }
            (e, _) => {
                // OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH and the like: a
                // Kafka producer would fail the batch. Stop here, leaving the batch
                // unacknowledged, so the liveness checker reports it.
                tracing::debug!(producer = self.index, error = %e, "producer stopped");
                self.fatal = Some(e);
                return;
            }
        }
        env.out.push(ClientAction::WakeAt(self.next_send_at));
    }
}

/// A reader: consumes every partition from offset 0, forever.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) index: u32,
    parts: Vec<(Part, TopicPartition)>,
    positions: BTreeMap<Part, Offset>,
    /// The leader epoch of the last batch read, per partition.
    last_epochs: BTreeMap<Part, u32>,
    /// The leader epoch under which the position was last validated (KIP-320).
    validated: BTreeMap<Part, u32>,
    in_flight: BTreeMap<Part, (u64, TimeMs)>,
    retry_at: BTreeMap<Part, TimeMs>,
    next_corr: u64,
    metadata: Metadata,
}

impl Reader {
    pub(crate) fn new(index: u32, parts: Vec<(Part, TopicPartition)>) -> Reader {
        Reader {
            index,
            parts,
            positions: BTreeMap::new(),
            last_epochs: BTreeMap::new(),
            validated: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            next_corr: 0,
            metadata: Metadata::default(),
        }
    }

    pub(crate) fn wake(&mut self, env: &mut ClientEnv<'_>) {
        let mut need_metadata = false;
        for (part, tp) in self.parts.clone() {
            if let Some(&(_, sent)) = self.in_flight.get(&part) {
                if env.now < sent + FETCH_TIMEOUT_MS {
                    continue;
                }
                self.in_flight.remove(&part);
                self.metadata.forget(&tp);
            }
            if self.retry_at.get(&part).is_some_and(|&t| env.now < t) {
                continue;
            }
            let Some(&(leader, leader_epoch)) = self.metadata.leaders.get(&tp) else {
                need_metadata = true;
                continue;
            };
            self.next_corr += 1;
            let corr = self.next_corr;
            let offset = *self.positions.get(&part).unwrap_or(&Offset::ZERO);
            let req = match self.last_epochs.get(&part) {
                // A new leader: check the log we read was not truncated under us before
                // reading on (KIP-320), as the Java consumer does.
                Some(&last) if self.validated.get(&part) != Some(&leader_epoch) => {
                    ClientRequest::OffsetForLeaderEpoch {
                        partition: tp.clone(),
                        epoch: eddy_core::Epoch(last),
                    }
                }
                _ => ClientRequest::Fetch {
                    partition: tp.clone(),
                    offset,
                    max_bytes: FETCH_MAX_BYTES,
                    max_wait_ms: FETCH_MAX_WAIT_MS,
                },
            };
            env.out.push(ClientAction::Send {
                to: leader,
                corr,
                req,
            });
            self.in_flight.insert(part, (corr, env.now));
            env.out
                .push(ClientAction::WakeAt(env.now + FETCH_TIMEOUT_MS));
        }
        if need_metadata {
            self.next_corr += 1;
            let corr = self.next_corr;
            self.metadata.refresh(env, corr);
        }
    }

    /// The leader said where the epoch of our last read batch ends: if that is below our
    /// position, the log was truncated under us (a loss the configuration allowed) and
    /// we read on from the end of what survived.
    fn on_validation(
        &mut self,
        env: &mut ClientEnv<'_>,
        corr: u64,
        partition: TopicPartition,
        error: ErrorCode,
        epoch: Option<eddy_core::Epoch>,
        end_offset: Offset,
    ) {
        let Some(&(part, _)) = self.parts.iter().find(|(_, tp)| *tp == partition) else {
            return;
        };
        if self.in_flight.get(&part).map(|&(c, _)| c) != Some(corr) {
            return;
        }
        self.in_flight.remove(&part);
        if error != ErrorCode::None {
            self.metadata.forget(&partition);
            self.retry_at.insert(part, env.now + RETRY_BACKOFF_MS);
            env.out
                .push(ClientAction::WakeAt(env.now + RETRY_BACKOFF_MS));
            return;
        }
        let position = *self.positions.get(&part).unwrap_or(&Offset::ZERO);
        let truncated_at = match epoch {
            Some(_) => end_offset,
            None => Offset::ZERO,
        };
        if truncated_at < position {
            self.positions.insert(part, truncated_at);
            self.last_epochs.remove(&part);
        }
        if let Some(&(_, leader_epoch)) = self.metadata.leaders.get(&partition) {
            self.validated.insert(part, leader_epoch);
        }
        self.wake(env);
    }

    /// The connection that carried request `corr` broke: retry after a backoff.
    pub(crate) fn on_disconnect(&mut self, env: &mut ClientEnv<'_>, corr: u64) {
        if !self.metadata.on_disconnect(corr) {
            let Some((&part, _)) = self.in_flight.iter().find(|(_, &(c, _))| c == corr) else {
                return;
            };
            self.in_flight.remove(&part);
            if let Some((_, tp)) = self.parts.iter().find(|(p, _)| *p == part) {
                let tp = tp.clone();
                self.metadata.forget(&tp);
            }
            self.retry_at.insert(part, env.now + RETRY_BACKOFF_MS);
        }
        env.out
            .push(ClientAction::WakeAt(env.now + RETRY_BACKOFF_MS));
    }

    pub(crate) fn on_response(&mut self, env: &mut ClientEnv<'_>, corr: u64, resp: ClientResponse) {
        if self.metadata.on_response(corr, &resp) {
            self.wake(env);
            return;
        }
        if let ClientResponse::OffsetForLeaderEpoch {
            partition,
            error,
            epoch,
            end_offset,
        } = resp
        {
            self.on_validation(env, corr, partition, error, epoch, end_offset);
            return;
        }
        let ClientResponse::Fetch {
            partition,
            error,
            batches,
            ..
        } = resp
        else {
            return;
        };
        let Some(&(part, _)) = self.parts.iter().find(|(_, tp)| *tp == partition) else {
            return;
        };
        if self.in_flight.get(&part).map(|&(c, _)| c) != Some(corr) {
            return;
        }
        self.in_flight.remove(&part);
        match error {
            ErrorCode::None => {
                let mut position = *self.positions.get(&part).unwrap_or(&Offset::ZERO);
                for bytes in &crate::fetched_bytes(batches) {
                    let header = BatchHeader::parse(bytes).expect("brokers serve whole batches");
                    let last = Offset(header.last_offset() as u64);
                    if last < position {
                        continue;
                    }
                    let id = *env
                        .batch_ids
                        .get(&header.crc)
                        .expect("every batch was made by a simulated producer");
                    env.out.push(ClientAction::Observe(Observation::Read {
                        at: env.now,
                        reader: self.index,
                        part,
                        batch: BatchRef {
                            base_offset: Offset(header.base_offset as u64),
                            last_offset: last,
                            id,
                            epoch: header.partition_leader_epoch as u32,
                        },
                    }));
                    position = last.plus(1);
                    self.last_epochs
                        .insert(part, header.partition_leader_epoch as u32);
                }
                self.positions.insert(part, position);
            }
            ErrorCode::OffsetOutOfRange => {
                // auto.offset.reset=earliest
                self.positions.insert(part, Offset::ZERO);
            }
            _ => {
                self.metadata.forget(&partition);
                self.retry_at.insert(part, env.now + RETRY_BACKOFF_MS);
                env.out
                    .push(ClientAction::WakeAt(env.now + RETRY_BACKOFF_MS));
                return;
            }
        }
        self.wake(env);
    }
}

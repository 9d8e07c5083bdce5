//! The producer: `send` a record, get back the offset it was written at.
//!
//! Records are appended to a per-partition batch (`accumulator.rs`); a batch is sent when
//! it reaches `batch.size`, when it is `linger.ms` old, or on `flush`/`close`. A single
//! sender task (`sender.rs`) drains ready batches, groups them by partition leader into
//! Produce requests, and retries what failed with a retriable error after
//! `retry.backoff.ms`, until `delivery.timeout.ms` has passed since the record was sent.
//!
//! Idempotence (on by default, as in Kafka 3+): the producer gets a producer id from
//! InitProducerId and numbers each partition's batches with sequence numbers, so the
//! broker drops a retried batch it already has. Up to
//! `max.in.flight.requests.per.connection` batches per partition are in flight; with
//! idempotence the sequence numbers keep a partition's records in order across retries
//! (`accumulator.rs` has the rules); without it, a retry may overtake later batches
//! unless `max.in.flight.requests.per.connection` = 1, as in Kafka.

mod accumulator;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use eddy_core::batch::NewRecord;
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::error::{ClientError, Result};
use crate::network::{CommonConfig, NetworkClient};
use crate::partitioner;
use crate::records::Compression;
use accumulator::State;

/// `acks`: how many replicas must have a record before the leader answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: no answer at all; the offset is unknown (-1).
    None,
    /// acks=1: the leader has it.
    Leader,
    /// acks=all (-1): every in-sync replica has it.
    All,
}

impl Acks {
    pub fn parse(s: &str) -> Option<Acks> {
        match s {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }

    fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// The producer's settings, under Kafka's names.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub common: CommonConfig,
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    pub linger_ms: u64,
    /// `batch.size`: a batch is sent once it holds this many bytes.
    pub batch_size: usize,
    /// `buffer.memory`: bytes of records waiting to be acknowledged before `send` waits.
    pub buffer_memory: usize,
    pub compression: Compression,
    /// `delivery.timeout.ms`: the time a record may take from `send` to acknowledgement,
    /// retries included.
    pub delivery_timeout_ms: u64,
    /// `enable.idempotence`. Needs acks=all, as in Kafka.
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection`: batches of one partition sent and not yet
    /// answered (each request carries at most one batch per partition, so this bounds the
    /// requests a partition keeps in flight). At most 5 with idempotence, as in Kafka.
    pub max_in_flight_requests_per_connection: usize,
    /// `max.block.ms`: how long `send` waits for a topic's metadata.
    pub max_block_ms: u64,
    /// Whether the producer's metadata requests may auto-create topics (the broker's
    /// `auto.create.topics.enable` decides too).
    pub allow_auto_topic_creation: bool,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            common: CommonConfig::default(),
            acks: Acks::All,
            linger_ms: 5,
            batch_size: 16 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            compression: Compression::None,
            delivery_timeout_ms: 120_000,
            enable_idempotence: true,
            max_in_flight_requests_per_connection: 5,
            max_block_ms: 60_000,
            allow_auto_topic_creation: true,
        }
    }
}

/// A record to send. `partition: None` lets the partitioner choose.
#[derive(Clone, Debug, Default)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// `None`: now.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, key: Option<Bytes>, value: Option<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            key,
            value,
            ..Default::default()
        }
    }
}

/// Where an acknowledged record was written. `offset` is -1 with acks=0 (no answer), and
/// for a retry the broker recognised as a duplicate of a batch it already had without
/// saying where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// The outcome of one `send`, resolved when the record is acknowledged or has failed.
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata>>);

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed("producer"))))
    }
}

pub(crate) struct Shared {
    net: NetworkClient,
    config: ProducerConfig,
    state: Mutex<State>,
    /// Wakes the sender: a batch is ready, a flush or close was asked for.
    wake: Notify,
    /// Wakes `flush` and `close` when nothing is outstanding any more.
    drained: Notify,
    /// `buffer.memory`, in bytes, as permits.
    memory: Semaphore,
    /// Batches sent again after a failed attempt, for tests and tools.
    retries: std::sync::atomic::AtomicU64,
}

/// A Kafka producer. Cheap to clone; clones share batches and the sender.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

impl Producer {
    /// Starts a producer (its sender task runs until `close`).
    pub fn new(config: ProducerConfig) -> Result<Producer> {
        if config.enable_idempotence && config.acks != Acks::All {
            return Err(ClientError::Config(format!(
                "enable.idempotence = true needs acks = all, but acks = {}; set acks=all or \
                 enable.idempotence=false",
                config.acks.wire()
            )));
        }
        let in_flight = config.max_in_flight_requests_per_connection;
        if in_flight == 0 {
            return Err(ClientError::Config(
                "max.in.flight.requests.per.connection = 0: must be at least 1".to_string(),
            ));
        }
        if config.enable_idempotence && in_flight > accumulator::MAX_IN_FLIGHT_IDEMPOTENT {
            return Err(ClientError::Config(format!(
                "max.in.flight.requests.per.connection = {in_flight}: must be at most {} with \
                 enable.idempotence = true (the broker remembers only that many batches per \
                 producer); lower it or set enable.idempotence=false",
                accumulator::MAX_IN_FLIGHT_IDEMPOTENT
            )));
        }
        if config.batch_size == 0 {
            return Err(ClientError::Config(
                "batch.size = 0: must be at least 1".to_string(),
            ));
        }
        let shared = Arc::new(Shared {
            net: NetworkClient::new(config.common.clone())?,
            memory: Semaphore::new(config.buffer_memory),
            config,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            drained: Notify::new(),
            retries: Default::default(),
        });
        tokio::spawn(sender::run(shared.clone()));
        Ok(Producer { shared })
    }

    /// The connection pool and metadata this producer uses.
    pub fn network(&self) -> &NetworkClient {
        &self.shared.net
    }

    /// How many times a batch has been put back for another attempt.
    pub fn retry_count(&self) -> u64 {
        self.shared
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends `record` and waits until it is acknowledged.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send_nowait(record).await?.await
    }

    /// Queues `record` for sending and returns at once (after metadata for its topic is
    /// known and `buffer.memory` has room); the future resolves on acknowledgement.
    pub async fn send_nowait(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(record, accumulator::Reply::Future(reply))
            .await?;
        Ok(DeliveryFuture(receiver))
    }

    /// Queues `record` like [`Producer::send_nowait`] and calls `callback` with the
    /// outcome. The callback runs on the producer's sender task: keep it short.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
    ) -> Result<()> {
        self.enqueue(record, accumulator::Reply::Callback(Box::new(callback)))
            .await
    }

    async fn enqueue(&self, record: ProducerRecord, reply: accumulator::Reply) -> Result<()> {
        let shared = &self.shared;
        let topic = self.topic_metadata(&record.topic).await?;
        let partitions = topic.partitions.len();
        let size = accumulator::record_size(&record);
        // A record larger than the whole buffer still goes, alone.
        let permits = size.min(shared.config.buffer_memory);
        let permit = shared
            .memory
            .acquire_many(u32::try_from(permits).unwrap_or(u32::MAX))
            .await
            .map_err(|_| ClientError::Closed("producer"))?;
        permit.forget();
        let partition = match (record.partition, &record.key) {
            (Some(p), _) => {
                if p < 0 || p as usize >= partitions {
                    shared.memory.add_permits(permits);
                    return Err(ClientError::UnknownPartition {
                        topic: record.topic,
                        partition: p,
                        partitions,
                    });
                }
                p
            }
            (None, Some(key)) => partitioner::partition_for_key(key, partitions),
            (None, None) => -1, // sticky, chosen under the lock
        };
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        let wake = {
            let mut state = shared.state.lock().expect("producer state");
            if state.closed {
                drop(state);
                shared.memory.add_permits(permits);
                return Err(ClientError::Closed("producer"));
            }
            let partition = if partition >= 0 {
                partition
            } else {
                state.sticky_partition(&record.topic, partitions)
            };
            state.append(
                &record.topic,
                partition,
                NewRecord {
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                    timestamp_ms,
                },
                permits,
                reply,
                &shared.config,
            )
        };
        if wake {
            shared.wake.notify_one();
        }
        Ok(())
    }

    /// The topic's metadata, waiting up to `max.block.ms` for it to appear (a topic
    /// being auto-created, or a metadata answer from a broker that has not caught up).
    async fn topic_metadata(&self, topic: &str) -> Result<crate::network::TopicMetadata> {
        let shared = &self.shared;
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(shared.config.max_block_ms);
        loop {
            match shared
                .net
                .topic_or_fetch(topic, shared.config.allow_auto_topic_creation)
                .await
            {
                Ok(t) => return Ok(t),
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%topic, error = %e, "waiting for topic metadata");
                    tokio::time::sleep(shared.net.retry_backoff()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends every queued record now (no lingering) and waits until each is acknowledged
    /// or has failed.
    pub async fn flush(&self) {
        let shared = &self.shared;
        shared.state.lock().expect("producer state").flushing += 1;
        shared.wake.notify_one();
        self.wait_drained().await;
        shared.state.lock().expect("producer state").flushing -= 1;
    }

    async fn wait_drained(&self) {
        loop {
            let drained = self.shared.drained.notified();
            if self
                .shared
                .state
                .lock()
                .expect("producer state")
                .outstanding
                == 0
            {
                return;
            }
            // Also re-check now and then, in case a wake-up raced the check.
            let _ = tokio::time::timeout(Duration::from_millis(100), drained).await;
        }
    }

    /// Refuses new records, delivers those queued, and stops the sender.
    pub async fn close(&self) {
        self.shared.state.lock().expect("producer state").closed = true;
        self.shared.wake.notify_one();
        self.wait_drained().await;
        self.shared.wake.notify_one();
        self.shared.net.close().await;
    }
}

/// Wall-clock milliseconds, for record timestamps (Kafka's CreateTime).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! The producer's sender task: gets a producer id (idempotence), drains ready batches,
//! and hands them to one dispatch task per leader, which writes them to the leader in
//! Produce requests (one per drain round) in the order they were drained — several
//! batches of a partition may be in flight, and the broker must see them in sequence
//! order — so a slow broker does not hold up the others. Each answer is handled in a
//! task of its own: complete, retry after `retry.backoff.ms` (refreshing metadata when
//! the answer says leadership moved), or fail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::accumulator::{Batch, Drained};
use super::{Acks, Shared};
use crate::connection::Connection;
use crate::error::{ClientError, KafkaCode};
use crate::records::build_batch;

/// How long the sender sleeps when nothing is due; a send or flush wakes it earlier.
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// DUPLICATE_SEQUENCE_NUMBER: the broker has this batch already.
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// OUT_OF_ORDER_SEQUENCE_NUMBER: the broker expected another sequence.
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

pub(super) async fn run(shared: Arc<Shared>) {
    // One dispatch task per leader, fed in drain order; they end when this task does.
    let mut dispatch: BTreeMap<i32, mpsc::UnboundedSender<Vec<Batch>>> = BTreeMap::new();
    loop {
        let (closed, outstanding) = {
            let s = shared.state.lock().expect("producer state");
            (s.closed, s.outstanding)
        };
        if closed && outstanding == 0 {
            shared.drained.notify_waiters();
            return;
        }
        if shared.config.enable_idempotence && outstanding > 0 {
            ensure_producer_id(&shared).await;
        }
        let needs_metadata =
            std::mem::take(&mut shared.state.lock().expect("producer state").needs_metadata);
        if needs_metadata {
            refresh_metadata(&shared).await;
        }
        let now = Instant::now();
        let (ready, expired, next) = {
            let mut s = shared.state.lock().expect("producer state");
            let net = &shared.net;
            s.drain(now, &shared.config, |tp| {
                net.leader(&tp.topic, tp.partition as i32)
            })
        };
        for batch in expired {
            fail_expired(&shared, batch);
        }
        let mut by_leader: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
        for Drained { leader, mut batch } in ready {
            if batch.encoded.is_none() {
                batch.encoded = Some(build_batch(
                    &batch.records,
                    batch.sequence,
                    shared.config.compression,
                ));
            }
            by_leader.entry(leader).or_default().push(batch);
        }
        for (leader, batches) in by_leader {
            let tx = dispatch.entry(leader).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(dispatch_to(shared.clone(), leader, rx));
                tx
            });
            if let Err(mpsc::error::SendError(batches)) = tx.send(batches) {
                unreachable!(
                    "a dispatch task ends only when its channel closes ({} batches)",
                    batches.len()
                );
            }
        }
        let sleep_until = next.unwrap_or(now + IDLE_WAKE).min(now + IDLE_WAKE);
        tokio::select! {
            biased;
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(sleep_until) => {}
        }
    }
}

async fn ensure_producer_id(shared: &Shared) {
    if shared
        .state
        .lock()
        .expect("producer state")
        .producer
        .is_some()
    {
        return;
    }
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match shared.net.call_any(&request).await {
        Ok(r) if r.error_code == 0 => {
            tracing::debug!(
                producer_id = r.producer_id.0,
                epoch = r.producer_epoch,
                "producer id"
            );
            shared.state.lock().expect("producer state").producer =
                Some((r.producer_id.0, r.producer_epoch));
        }
        Ok(r) => {
            tracing::warn!(error = %KafkaCode(r.error_code), "InitProducerId failed; retrying");
            tokio::time::sleep(shared.net.retry_backoff()).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "InitProducerId failed; retrying");
            tokio::time::sleep(shared.net.retry_backoff()).await;
        }
    }
}

async fn refresh_metadata(shared: &Shared) {
    let topics: Vec<String> = {
        let s = shared.state.lock().expect("producer state");
        let mut t: Vec<String> = s.partitions.keys().map(|tp| tp.topic.clone()).collect();
        t.dedup();
        t
    };
    if let Err(e) = shared.net.refresh_metadata(Some(&topics), false).await {
        tracing::debug!(error = %e, "metadata refresh failed");
        tokio::time::sleep(shared.net.retry_backoff()).await;
    }
}

fn fail_expired(shared: &Shared, batch: Batch) {
    let error = ClientError::DeliveryTimeout {
        topic: batch.tp.topic.clone(),
        partition: batch.tp.partition as i32,
        timeout_ms: shared.config.delivery_timeout_ms,
        last_error: batch
            .last_error
            .clone()
            .unwrap_or_else(|| "none (the batch was never sent)".to_string()),
    };
    let was_sent = batch.order.is_some();
    let tp = batch.tp.clone();
    finish(shared, batch, Err(error));
    if was_sent && shared.config.enable_idempotence {
        // The broker may or may not have the batch: the sequence numbers after it can
        // no longer be trusted, so start over under a new producer id.
        reset_producer_id(shared, &tp, "an earlier batch of the partition timed out");
    }
}

/// Starts over under a new producer id, failing the queued batches sent under the old one
/// (see `State::reset_producer_id`).
fn reset_producer_id(shared: &Shared, tp: &eddy_core::TopicPartition, reason: &str) {
    let given_up = shared
        .state
        .lock()
        .expect("producer state")
        .reset_producer_id();
    tracing::warn!(%tp, reason, given_up = given_up.len(), "starting over under a new producer id");
    for b in given_up {
        fail_unknown(shared, b, reason);
    }
}

/// Fails a batch whose outcome is unknown and which may not be sent again.
fn fail_unknown(shared: &Shared, batch: Batch, reason: &str) {
    let error = ClientError::OutcomeUnknown {
        topic: batch.tp.topic.clone(),
        partition: batch.tp.partition as i32,
        reason: format!(
            "{reason} (its last error: {})",
            batch.last_error.as_deref().unwrap_or("none")
        ),
    };
    finish(shared, batch, Err(error));
}

/// Completes a batch and frees what it held.
fn finish(shared: &Shared, batch: Batch, outcome: Result<i64, ClientError>) {
    let tp = batch.tp.clone();
    let bytes = batch.size_bytes;
    let (order, sequence) = (batch.order, batch.sequence);
    let acked = outcome.is_ok();
    let n = batch.complete(outcome);
    let (freed, drained) = {
        let mut s = shared.state.lock().expect("producer state");
        let freed = s.finished(&tp, order, sequence, acked, n, bytes);
        (freed, s.outstanding == 0)
    };
    shared
        .memory
        .add_permits(freed.min(shared.config.buffer_memory));
    shared.wake.notify_one();
    if drained {
        shared.drained.notify_waiters();
    }
}

fn retry(shared: &Shared, mut batch: Batch, error: String, refresh: bool) {
    let mut s = shared.state.lock().expect("producer state");
    if s.is_stale(&batch) {
        // Its producer id was given up while it was in flight: a resend under the old id
        // could be appended behind batches numbered under the new one.
        drop(s);
        batch.last_error = Some(error);
        fail_unknown(
            shared,
            batch,
            "the producer started over under a new producer id",
        );
        return;
    }
    tracing::debug!(tp = %batch.tp, %error, attempts = batch.attempts + 1, "retrying a batch");
    shared
        .retries
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let retry_at = Instant::now() + shared.net.retry_backoff();
    s.requeue(batch, retry_at, error, &shared.config);
    if refresh {
        s.needs_metadata = true;
    }
    drop(s);
    shared.wake.notify_one();
}

/// [`retry`] for every batch of a request that failed as a whole (no connection, the
/// request not written, no answer), refreshing metadata first.
fn retry_all(shared: &Shared, batches: Vec<Batch>, error: &ClientError) {
    let error = error.to_string();
    for b in batches {
        retry(shared, b, error.clone(), true);
    }
}

/// Writes each group of batches from the sender to broker `leader`, in order, and
/// handles each answer in a task of its own.
async fn dispatch_to(
    shared: Arc<Shared>,
    leader: i32,
    mut rx: mpsc::UnboundedReceiver<Vec<Batch>>,
) {
    while let Some(batches) = rx.recv().await {
        send_to(&shared, leader, batches).await;
    }
}

/// Writes `batches` (one per partition) to broker `leader` in one Produce request, and
/// spawns the wait for its answer.
async fn send_to(shared: &Arc<Shared>, leader: i32, batches: Vec<Batch>) {
    let conn = match shared.net.node(leader).await {
        Ok(c) => c,
        Err(e) => return retry_all(shared, batches, &e),
    };
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for b in &batches {
        topics.entry(&b.tp.topic).or_default().push(
            PartitionProduceData::default()
                .with_index(b.tp.partition as i32)
                .with_records(b.encoded.clone()),
        );
    }
    let request = ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(shared.config.acks.wire())
        .with_timeout_ms(shared.config.common.request_timeout_ms.min(i32::MAX as u64) as i32)
        .with_topic_data(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_data(parts)
                })
                .collect(),
        );
    if shared.config.acks == Acks::None {
        let sent = match conn.version(ApiKey::Produce) {
            Ok(v) => conn.send_oneway(&request, v).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                for b in batches {
                    finish(shared, b, Ok(-1));
                }
            }
            Err(e) => retry_all(shared, batches, &e),
        }
        return;
    }
    let answer = match conn.send_request(&request).await {
        Ok(answer) => answer,
        Err(e) => return retry_all(shared, batches, &e),
    };
    tokio::spawn(handle_answer(shared.clone(), conn, batches, answer));
}

/// Waits for the answer to one Produce request and completes, retries or fails each of
/// its batches.
async fn handle_answer(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    batches: Vec<Batch>,
    answer: impl std::future::Future<Output = Result<ProduceResponse, ClientError>>,
) {
    let response = match answer.await {
        Ok(r) => r,
        // The answer is unknown: resend the same bytes; the broker's sequence check drops
        // the batch if it did get it the first time.
        Err(e) => return retry_all(&shared, batches, &e),
    };
    let mut answers: BTreeMap<(String, i32), (i16, i64, Option<String>)> = BTreeMap::new();
    for t in &response.responses {
        for p in &t.partition_responses {
            answers.insert(
                (t.name.0.to_string(), p.index),
                (
                    p.error_code,
                    p.base_offset,
                    p.error_message.as_ref().map(|m| m.to_string()),
                ),
            );
        }
    }
    for b in batches {
        let key = (b.tp.topic.clone(), b.tp.partition as i32);
        let Some((code, base_offset, message)) = answers.remove(&key) else {
            let error = format!("broker {} sent no answer for {}", conn.broker(), b.tp);
            retry(&shared, b, error, true);
            continue;
        };
        let code = KafkaCode(code);
        if code.0 == 0 {
            finish(&shared, b, Ok(base_offset));
        } else if code.0 == DUPLICATE_SEQUENCE_NUMBER {
            finish(&shared, b, Ok(-1));
        } else if code.0 == OUT_OF_ORDER_SEQUENCE_NUMBER
            && shared.config.enable_idempotence
            && b.sent_behind_unfinished
        {
            // It went while an earlier batch of the partition was unfinished, which may
            // have failed: it is sent again once everything before it is finished, and
            // only then is this answer a real disagreement (Kafka's
            // `TransactionManager.canRetry`: retry unless it is the next sequence).
            let error = format!("broker {} answered {code}", conn.broker());
            retry(&shared, b, error, false);
        } else if code.is_retriable() {
            let error = format!("broker {} answered {code}", conn.broker());
            retry(&shared, b, error, code.needs_metadata_refresh());
        } else {
            let error = ClientError::Partition {
                broker: conn.broker().to_string(),
                api: "Produce",
                topic: b.tp.topic.clone(),
                partition: b.tp.partition as i32,
                code,
            };
            if let Some(m) = message {
                tracing::warn!(tp = %b.tp, %m, "produce failed");
            }
            let tp = b.tp.clone();
            let sent_in_sequence = b.sequence.is_some();
            finish(&shared, b, Err(error));
            if code.0 == OUT_OF_ORDER_SEQUENCE_NUMBER && sent_in_sequence {
                // The broker refused the oldest batch of the partition: its idea of the
                // sequence differs from ours, so start over (Kafka bumps the epoch).
                reset_producer_id(&shared, &tp, "the broker refused a sequence number");
            }
        }
    }
}

//! Fetch for consumers: every partition asked for is read from the core up to its high
//! watermark; with less than `min_bytes` available the request waits up to
//! `max_wait_ms` for data to arrive on any of them (long polling), then reads again.
//!
//! Answers follow KAFKA-COMPAT items 3 and 4: an empty partition carries empty records,
//! never null; a fetch from the middle of a batch returns the whole batch; at least one
//! batch comes back even if it is larger than `max_bytes` (KIP-74); high watermark, last
//! stable offset (= high watermark: no transactions) and log start offset are filled in.
//! No fetch sessions are created (session id 0), so every fetch is a full one (KIP-227
//! allows a broker that does so).

use std::time::Duration;

use bytes::Bytes;
use eddy_core::message::{ClientRequest, ClientResponse};
use eddy_core::types::{Offset, TopicPartition};
use eddy_core::ErrorCode;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use tokio::sync::{mpsc, oneshot};

use super::super::actor::{concat, ReplyTo};
use super::super::{Command, Shared};

/// Upper bound on how long one fetch may wait, whatever the client asks.
const MAX_WAIT_CAP_MS: u64 = 30_000;

struct Wanted {
    topic: TopicName,
    partition: i32,
    tp: Option<TopicPartition>,
    offset: i64,
    max_bytes: u32,
}

struct Got {
    error: Option<ResponseError>,
    high_watermark: i64,
    log_start_offset: i64,
    batches: Vec<Bytes>,
}

/// The response with its records concatenated into each partition's records field.
pub(super) async fn handle(shared: &Shared, req: FetchRequest) -> FetchResponse {
    let (mut resp, records) = handle_in_parts(shared, req).await;
    let mut records = records.iter();
    for topic in &mut resp.responses {
        for p in &mut topic.partitions {
            p.records = Some(concat(records.next().expect("a record set per partition")));
        }
    }
    resp
}

/// The response without its records, and each partition's batches (in response order)
/// to be written after their fields uncopied ([`crate::wire::encode_fetch_response`]).
pub(crate) async fn handle_in_parts(
    shared: &Shared,
    req: FetchRequest,
) -> (FetchResponse, Vec<Vec<Bytes>>) {
    let mut wanted = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            let tp = u32::try_from(p.partition)
                .ok()
                .filter(|_| p.fetch_offset >= 0)
                .map(|i| TopicPartition::new(topic.topic.0.to_string(), i));
            wanted.push(Wanted {
                topic: topic.topic.clone(),
                partition: p.partition,
                tp,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as u32,
            });
        }
    }
    let mut got = read_all(shared, &wanted).await;
    let available: usize = got
        .iter()
        .map(|g| g.batches.iter().map(Bytes::len).sum::<usize>())
        .sum();
    let max_wait_ms = (req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP_MS);
    if available < req.min_bytes.max(1) as usize
        && max_wait_ms > 0
        && got.iter().all(|g| g.error.is_none())
    {
        wait_for_data(shared, &wanted, max_wait_ms).await;
        got = read_all(shared, &wanted).await;
    }
    respond(wanted, got, req.max_bytes.max(0) as usize)
}

/// Reads every partition now, without waiting.
async fn read_all(shared: &Shared, wanted: &[Wanted]) -> Vec<Got> {
    let mut replies = Vec::with_capacity(wanted.len());
    for w in wanted {
        let Some(tp) = &w.tp else {
            replies.push(None);
            continue;
        };
        let (tx, rx) = oneshot::channel();
        let sent = shared
            .send(Command::Core {
                req: ClientRequest::Fetch {
                    partition: tp.clone(),
                    offset: Offset(w.offset as u64),
                    max_bytes: w.max_bytes,
                    max_wait_ms: 0,
                },
                reply: Some(ReplyTo::Once(tx)),
            })
            .await;
        replies.push(sent.then_some(rx));
    }
    let mut got = Vec::with_capacity(wanted.len());
    for (w, rx) in wanted.iter().zip(replies) {
        let reply = match rx {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        got.push(match (reply, &w.tp) {
            (_, None) => failed(ResponseError::OffsetOutOfRange),
            (Some(resp), Some(tp)) => from_core(shared, tp, resp).await,
            (None, _) => failed(ResponseError::NotLeaderOrFollower),
        });
    }
    got
}

/// Waits until any partition has data, or `max_wait_ms` passes: each partition long-polls
/// in the core, and the first answer with data ends the wait.
async fn wait_for_data(shared: &Shared, wanted: &[Wanted], max_wait_ms: u64) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (i, w) in wanted.iter().enumerate() {
        let Some(tp) = &w.tp else { continue };
        shared
            .send(Command::Core {
                req: ClientRequest::Fetch {
                    partition: tp.clone(),
                    offset: Offset(w.offset as u64),
                    max_bytes: w.max_bytes,
                    max_wait_ms,
                },
                reply: Some(ReplyTo::Indexed(tx.clone(), i)),
            })
            .await;
    }
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_millis(max_wait_ms), async {
        while let Some((_, resp)) = rx.recv().await {
            if let ClientResponse::Fetch { error, batches, .. } = resp {
                if error != ErrorCode::None || !batches.is_empty() {
                    return;
                }
            }
        }
    })
    .await;
}

fn failed(error: ResponseError) -> Got {
    Got {
        error: Some(error),
        high_watermark: -1,
        log_start_offset: -1,
        batches: Vec::new(),
    }
}

async fn from_core(shared: &Shared, tp: &TopicPartition, resp: ClientResponse) -> Got {
    match resp {
        ClientResponse::Fetch {
            error,
            high_watermark,
            log_start_offset,
            batches,
            ..
        } => Got {
            error: ResponseError::try_from_code(error.code()),
            high_watermark: high_watermark.0 as i64,
            log_start_offset: log_start_offset.0 as i64,
            // Batches the core no longer keeps in memory are read from the segment
            // files; the response ends before any that cannot be read whole.
            batches: super::stored::resolve(shared, tp, batches).await,
        },
        _ => failed(ResponseError::UnknownServerError),
    }
}

/// Builds the response, keeping the total under `max_bytes` except that the first batch
/// found is always returned (KIP-74).
fn respond(
    wanted: Vec<Wanted>,
    got: Vec<Got>,
    max_bytes: usize,
) -> (FetchResponse, Vec<Vec<Bytes>>) {
    let mut total = 0usize;
    let mut records = Vec::with_capacity(wanted.len());
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (w, g) in wanted.into_iter().zip(got) {
        let mut keep = Vec::new();
        for b in g.batches {
            if total > 0 && total + b.len() > max_bytes {
                break;
            }
            total += b.len();
            keep.push(b);
        }
        let error = g.error.map_or(0, |e| e.code());
        let data = PartitionData::default()
            .with_partition_index(w.partition)
            .with_error_code(error)
            .with_high_watermark(g.high_watermark)
            .with_last_stable_offset(g.high_watermark)
            .with_log_start_offset(g.log_start_offset)
            .with_aborted_transactions(Some(Vec::new()))
            .with_preferred_read_replica(BrokerId(-1));
        records.push(keep);
        match topics.last_mut() {
            Some(t) if t.topic == w.topic => t.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(w.topic)
                    .with_partitions(vec![data]),
            ),
        }
    }
    let resp = FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics);
    (resp, records)
}

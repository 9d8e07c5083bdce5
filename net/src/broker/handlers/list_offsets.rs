//! ListOffsets: the special timestamps −1 (latest: the high watermark), −2 (earliest: the
//! log start offset) and −3 (the record with the largest timestamp, KIP-734), and a
//! lookup by time for any other (KAFKA-COMPAT item 9). Only committed records (below the
//! high watermark) are considered, so a consumer never seeks past what it may read.

use eddy_core::batch;
use eddy_core::log::{stored_batch_matches, TimestampLookup};
use eddy_core::message::{ClientRequest, ClientResponse};
use eddy_core::types::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use tokio::sync::oneshot;

use super::super::{Command, Shared};
use super::ask_core;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(super) async fn handle(shared: &Shared, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let resp = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let Ok(index) = u32::try_from(p.partition_index) else {
                partitions
                    .push(resp.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let tp = TopicPartition::new(topic.name.0.to_string(), index);
            partitions.push(lookup(shared, tp, p.timestamp, resp).await);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn lookup(
    shared: &Shared,
    tp: TopicPartition,
    timestamp: i64,
    resp: ListOffsetsPartitionResponse,
) -> ListOffsetsPartitionResponse {
    // Leadership, log start and high watermark come from the core.
    let Some(ClientResponse::ListOffsets {
        error,
        earliest,
        latest,
        ..
    }) = ask_core(
        shared,
        ClientRequest::ListOffsets {
            partition: tp.clone(),
        },
    )
    .await
    else {
        return resp.with_error_code(ResponseError::NotLeaderOrFollower.code());
    };
    if error != eddy_core::ErrorCode::None {
        return resp.with_error_code(error.code());
    }
    match timestamp {
        LATEST => resp.with_offset(latest.0 as i64),
        EARLIEST => resp.with_offset(earliest.0 as i64),
        t if t >= 0 || t == MAX_TIMESTAMP => {
            let (tx, rx) = oneshot::channel();
            let query = Box::new(move |replica: Option<&eddy_core::replica::Replica>| {
                let found = replica.and_then(|r| {
                    let hw = r.high_watermark();
                    let lookup = if t == MAX_TIMESTAMP {
                        r.log().max_timestamp_offset(hw).map(|(_, l)| l)
                    } else {
                        r.log().offset_for_timestamp(t, hw)
                    };
                    lookup
                });
                let _ = tx.send(found);
            });
            if !shared
                .send(Command::Query {
                    partition: tp.clone(),
                    query,
                })
                .await
            {
                return resp.with_error_code(ResponseError::NotLeaderOrFollower.code());
            }
            let found = match rx.await {
                Ok(Some(TimestampLookup::Found(offset, ts))) => Ok(Some((offset, ts))),
                // The batch's bytes are only in its segment: read it and find the record
                // there. Should the read fail (a racing truncation), the answer is at batch
                // granularity, as for a compressed batch.
                Ok(Some(TimestampLookup::InStoredBatch {
                    base_offset,
                    len,
                    max_timestamp,
                })) => {
                    let wanted = if t == MAX_TIMESTAMP { max_timestamp } else { t };
                    let read =
                        super::stored::read_stored(shared, &tp, vec![(base_offset, len)]).await;
                    Ok(Some(
                        read.first()
                            .filter(|b| stored_batch_matches(b, base_offset, len))
                            .and_then(|b| batch::offset_for_timestamp_in(b, wanted).ok())
                            .unwrap_or((base_offset, max_timestamp)),
                    ))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            match found {
                Ok(Some((offset, ts))) => resp.with_offset(offset.0 as i64).with_timestamp(ts),
                Ok(None) => resp,
                Err(_) => resp.with_error_code(ResponseError::NotLeaderOrFollower.code()),
            }
        }
        _ => resp.with_error_code(ResponseError::InvalidRequest.code()),
    }
}

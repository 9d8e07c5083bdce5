//! OffsetForLeaderEpoch from consumers (KIP-320): where does the epoch of the last batch
//! a consumer read end in the leader's log? A consumer that finds its position past that
//! end knows the log was truncated under it.

use eddy_core::message::{ClientRequest, ClientResponse};
use eddy_core::types::{Epoch, TopicPartition};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::super::Shared;
use super::ask_core;

pub(super) async fn handle(
    shared: &Shared,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let answer = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let (Ok(index), Ok(epoch)) =
                (u32::try_from(p.partition), u32::try_from(p.leader_epoch))
            else {
                partitions
                    .push(answer.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let req = ClientRequest::OffsetForLeaderEpoch {
                partition: TopicPartition::new(topic.topic.0.to_string(), index),
                epoch: Epoch(epoch),
            };
            partitions.push(match ask_core(shared, req).await {
                Some(ClientResponse::OffsetForLeaderEpoch {
                    error,
                    epoch,
                    end_offset,
                    ..
                }) => answer
                    .with_error_code(error.code())
                    .with_leader_epoch(epoch.map_or(-1, |e| e.0 as i32))
                    .with_end_offset(if epoch.is_some() {
                        end_offset.0 as i64
                    } else {
                        -1
                    }),
                _ => answer.with_error_code(ResponseError::NotLeaderOrFollower.code()),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

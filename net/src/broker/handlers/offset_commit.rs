//! OffsetCommit: a group's positions, stored by the coordinator in `__consumer_offsets`
//! and acknowledged only once that append is committed. Partitions of topics that do not
//! exist are refused with UNKNOWN_TOPIC_OR_PARTITION (Kafka checks its metadata cache),
//! the rest go to the coordinator; v0–1 are advertised (librdkafka 2.0.2 wants the group
//! APIs from v0) but refused on arrival, as Kafka 4 does.

use std::collections::BTreeMap;

use eddy_core::group::{
    GroupRequest, GroupResponse, OffsetCommitPartition, OffsetCommitRequest as Commit,
    OffsetCommitTopic, DEFAULT_TIMESTAMP,
};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};

use super::super::Shared;
use super::{ask_group, error_code, partition_counts};

pub(super) async fn handle(shared: &Shared, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let names: Vec<String> = req.topics.iter().map(|t| t.name.0.to_string()).collect();
    let counts = partition_counts(shared, names).await;
    // (topic, partition) -> error code, for every partition asked about, in request order.
    let mut answers: Vec<(TopicName, Vec<(i32, i16)>)> = Vec::new();
    let mut known = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let count = counts.get(&name).copied();
        let mut parts = Vec::new();
        let mut to_commit = Vec::new();
        for p in topic.partitions {
            let exists =
                count.is_some_and(|n| p.partition_index >= 0 && (p.partition_index as u32) < n);
            if exists {
                to_commit.push(OffsetCommitPartition {
                    partition_index: p.partition_index,
                    committed_offset: p.committed_offset,
                    committed_leader_epoch: p.committed_leader_epoch,
                    committed_metadata: p.committed_metadata.map(|s| s.to_string()),
                    commit_timestamp: DEFAULT_TIMESTAMP,
                });
                parts.push((p.partition_index, 0));
            } else {
                parts.push((
                    p.partition_index,
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
            }
        }
        if !to_commit.is_empty() {
            known.push(OffsetCommitTopic {
                name: name.clone(),
                partitions: to_commit,
            });
        }
        answers.push((topic.name, parts));
    }
    let mut results: BTreeMap<(String, i32), i16> = BTreeMap::new();
    if !known.is_empty() {
        let commit = Commit {
            group_id: req.group_id.0.to_string(),
            generation_id: req.generation_id_or_member_epoch,
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.map(|s| s.to_string()),
            retention_time_ms: req.retention_time_ms,
            topics: known.clone(),
        };
        match ask_group(shared, GroupRequest::OffsetCommit(commit)).await {
            Ok(GroupResponse::OffsetCommit(r)) => {
                for t in r.topics {
                    for p in t.partitions {
                        results.insert((t.name.clone(), p.partition_index), error_code(p.error));
                    }
                }
            }
            _ => {
                let code = super::COORDINATOR_NOT_AVAILABLE;
                for t in &known {
                    for p in &t.partitions {
                        results.insert((t.name.clone(), p.partition_index), code);
                    }
                }
            }
        }
    }
    OffsetCommitResponse::default().with_topics(
        answers
            .into_iter()
            .map(|(name, parts)| {
                let key = name.0.to_string();
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(index, code)| {
                                let code = if code == 0 {
                                    results.get(&(key.clone(), index)).copied().unwrap_or(0)
                                } else {
                                    code
                                };
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

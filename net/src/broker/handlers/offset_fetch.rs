//! OffsetFetch: a group's committed positions. A missing group, topic or partition
//! answers offset −1 with no error (KAFKA-COMPAT item 8). v8+ asks for several groups at
//! once; before, one group, and from v2 a null topic list means every committed topic.

use eddy_core::group::{
    GroupRequest, GroupResponse, OffsetFetchRequest as Fetch, OffsetFetchResponse as Fetched,
    OffsetFetchTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

async fn fetch(
    shared: &Shared,
    group_id: String,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Fetched, i16> {
    let req = Fetch {
        group_id,
        topics: topics.map(|ts| {
            ts.into_iter()
                .map(|(name, partition_indexes)| OffsetFetchTopic {
                    name: name.0.to_string(),
                    partition_indexes,
                })
                .collect()
        }),
        require_stable,
    };
    match ask_group(shared, GroupRequest::OffsetFetch(req)).await {
        Ok(GroupResponse::OffsetFetch(r)) => Ok(r),
        _ => Err(super::COORDINATOR_NOT_AVAILABLE),
    }
}

fn name(s: String) -> TopicName {
    TopicName(StrBytes::from_string(s))
}

pub(super) async fn handle(
    shared: &Shared,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(
                match fetch(shared, g.group_id.0.to_string(), topics, req.require_stable).await {
                    Ok(r) => group.with_error_code(error_code(r.error)).with_topics(
                        r.topics
                            .into_iter()
                            .map(|t| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(name(t.name))
                                    .with_partitions(
                                        t.partitions
                                            .into_iter()
                                            .map(|p| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p.partition_index)
                                                    .with_committed_offset(p.committed_offset)
                                                    .with_committed_leader_epoch(
                                                        p.committed_leader_epoch,
                                                    )
                                                    .with_metadata(
                                                        p.metadata.map(StrBytes::from_string),
                                                    )
                                                    .with_error_code(error_code(p.error))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                    Err(code) => group.with_error_code(code),
                },
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    match fetch(
        shared,
        req.group_id.0.to_string(),
        topics,
        req.require_stable,
    )
    .await
    {
        Ok(r) => OffsetFetchResponse::default()
            .with_error_code(error_code(r.error))
            .with_topics(
                r.topics
                    .into_iter()
                    .map(|t| {
                        OffsetFetchResponseTopic::default()
                            .with_name(name(t.name))
                            .with_partitions(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_committed_offset(p.committed_offset)
                                            .with_committed_leader_epoch(p.committed_leader_epoch)
                                            .with_metadata(p.metadata.map(StrBytes::from_string))
                                            .with_error_code(error_code(p.error))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        Err(code) => OffsetFetchResponse::default().with_error_code(code),
    }
}

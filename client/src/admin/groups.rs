//! Consumer groups from the admin's side: list (every broker's groups), describe
//! (members and their assignments, from the coordinator), delete, committed offsets with
//! lag, and resetting a group's offsets (committed as a non-member, so the group must
//! have no active members, as `kafka-consumer-groups --reset-offsets` requires).

use std::collections::BTreeMap;

use bytes::Buf;
use eddy_core::TopicPartition;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::Admin;
use crate::consumer::{
    commit_offsets, fetch_committed, find_coordinator, list_offsets, LATEST_TIMESTAMP,
};
use crate::error::{ClientError, KafkaCode, Result};

/// A group as ListGroups names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// A member as DescribeGroups reports it.
#[derive(Clone, Debug)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor in use.
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// A committed offset with the partition's end and the difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: TopicPartition,
    pub committed: i64,
    pub log_end_offset: i64,
    pub lag: i64,
}

fn decode_assignment(bytes: &bytes::Bytes) -> Vec<TopicPartition> {
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return Vec::new();
    }
    let version = b.get_i16().clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut b, version)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|&p| TopicPartition::new(t.topic.0.to_string(), p as u32))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Admin {
    /// Every group on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.net.refresh_metadata(Some(&[]), false).await?;
        let mut out = Vec::new();
        for b in self.net.brokers() {
            let conn = self.net.node(b.node_id).await?;
            let response = conn.call(&ListGroupsRequest::default()).await?;
            if response.error_code != 0 {
                return Err(ClientError::Broker {
                    broker: conn.broker().to_string(),
                    api: "ListGroups",
                    code: KafkaCode(response.error_code),
                    message: None,
                });
            }
            out.extend(response.groups.iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        let node = find_coordinator(&self.net, group_id).await?;
        let conn = self.net.node(node).await?;
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group_id.to_string()))]);
        let response = conn.call(&request).await?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol {
                broker: conn.broker().to_string(),
                api: "DescribeGroups",
                reason: format!("no answer for group {group_id}"),
            })?;
        if g.error_code != 0 {
            return Err(ClientError::Broker {
                broker: conn.broker().to_string(),
                api: "DescribeGroups",
                code: KafkaCode(g.error_code),
                message: Some(format!("group {group_id}")),
            });
        }
        Ok(GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(&m.member_assignment),
                })
                .collect(),
        })
    }

    pub async fn delete_group(&self, group_id: &str) -> Result<()> {
        let node = find_coordinator(&self.net, group_id).await?;
        let conn = self.net.node(node).await?;
        let request = DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(StrBytes::from_string(group_id.to_string()))]);
        let response = conn.call(&request).await?;
        for r in &response.results {
            if r.error_code != 0 {
                return Err(ClientError::Broker {
                    broker: conn.broker().to_string(),
                    api: "DeleteGroups",
                    code: KafkaCode(r.error_code),
                    message: Some(format!("group {group_id}")),
                });
            }
        }
        Ok(())
    }

    /// The group's committed offsets with each partition's log end offset and lag.
    pub async fn group_lag(&self, group_id: &str) -> Result<Vec<PartitionLag>> {
        let node = find_coordinator(&self.net, group_id).await?;
        let conn = self.net.node(node).await?;
        let committed = fetch_committed(&conn, group_id, None).await?;
        let partitions: Vec<TopicPartition> = committed.keys().cloned().collect();
        let ends = if partitions.is_empty() {
            BTreeMap::new()
        } else {
            list_offsets(&self.net, &partitions, LATEST_TIMESTAMP).await?
        };
        Ok(committed
            .into_iter()
            .map(|(tp, c)| {
                let end = ends.get(&tp).copied().unwrap_or(-1);
                PartitionLag {
                    lag: if c >= 0 && end >= 0 {
                        (end - c).max(0)
                    } else {
                        -1
                    },
                    partition: tp,
                    committed: c,
                    log_end_offset: end,
                }
            })
            .collect())
    }

    /// Commits `offsets` for the group as a non-member (generation -1): the group must
    /// have no active members.
    pub async fn reset_group_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let node = find_coordinator(&self.net, group_id).await?;
        let conn = self.net.node(node).await?;
        commit_offsets(&conn, group_id, -1, "", offsets).await
    }
}

//! What brokers are told, in the core's [`ControllerMessage`]s: the seam through which
//! a broker's node (`crate::node`) learns partition states and the controller's answers.
//!
//! In KRaft, brokers follow the metadata log themselves and derive their partitions from
//! their own image: [`MetadataImage::hosted_partition_changes`] is that derivation, for a
//! shell whose broker follows the log (from its voter's committed image, or as an
//! observer with a [`super::MetadataFollower`]). For a shell whose brokers do not, the
//! active controller sends each replica of a partition that a committed record created or
//! changed its new state ([`MetadataImage::partition_updates`]). Either way the replies
//! the node awaits (AlterPartition, registration, heartbeat) come from the controller.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::{ControllerReply, MetadataImage, MetadataRecord};
use crate::message::ControllerMessage;
use crate::metadata::PartitionState;
use crate::types::{NodeId, TopicPartition};

impl MetadataImage {
    /// The states of the partitions `broker` hosts in this image that differ from
    /// `given` (what its node was last given), in partition order; `given` is brought up
    /// to date. Partitions it no longer hosts are forgotten from `given` without a
    /// message: the core has none for a removal yet.
    pub fn hosted_partition_changes(
        &self,
        broker: NodeId,
        given: &mut BTreeMap<TopicPartition, PartitionState>,
    ) -> Vec<(TopicPartition, PartitionState)> {
        let hosted: BTreeMap<TopicPartition, PartitionState> =
            self.partitions_hosted_by(broker).into_iter().collect();
        let changed = hosted
            .iter()
            .filter(|(tp, state)| given.get(*tp) != Some(*state))
            .map(|(tp, state)| (tp.clone(), state.clone()))
            .collect();
        *given = hosted;
        changed
    }

    /// For each partition `records` created or changed, its state (as of this image,
    /// with the records applied) to each of its replicas, one message per replica in
    /// (partition, replica) order. Partitions of deleted topics get none: the core has no
    /// message for a deletion yet.
    pub fn partition_updates(
        &self,
        records: &[MetadataRecord],
    ) -> Vec<(NodeId, ControllerMessage)> {
        let touched: BTreeSet<&TopicPartition> = records
            .iter()
            .filter_map(MetadataRecord::partition)
            .collect();
        let mut out = Vec::new();
        for tp in touched {
            let Some(state) = self.partition(tp) else {
                continue;
            };
            for &replica in &state.replicas {
                let states = vec![(tp.clone(), state.clone())];
                out.push((replica, ControllerMessage::PartitionStates(states)));
            }
        }
        out
    }
}

impl ControllerReply {
    /// The reply as the core's message to a broker, for the replies a broker's node
    /// awaits: AlterPartition's (to the leader that asked), registration and heartbeat
    /// answers (to the broker). Admin replies have none.
    pub fn to_broker_message(&self) -> Option<(NodeId, ControllerMessage)> {
        match self {
            ControllerReply::BrokerRegistration {
                broker,
                incarnation,
                result,
            } => Some((
                *broker,
                ControllerMessage::RegistrationResponse {
                    incarnation: *incarnation,
                    result: *result,
                },
            )),
            ControllerReply::BrokerHeartbeat {
                broker,
                incarnation,
                result,
            } => Some((
                *broker,
                ControllerMessage::HeartbeatResponse {
                    incarnation: *incarnation,
                    result: *result,
                },
            )),
            ControllerReply::AlterPartition { request, result } => Some((
                request.leader,
                ControllerMessage::AlterPartitionResponse {
                    partition: request.partition.clone(),
                    request: request.clone(),
                    result: result.clone(),
                },
            )),
            _ => None,
        }
    }
}

//! What brokers are told once records commit, in the core's [`ControllerMessage`]s: the
//! seam through which today's brokers (`crate::node`) learn partition states.
//!
//! In KRaft, brokers follow the metadata log themselves and derive their partitions from
//! their own image. Until Eddy's brokers do, the shell sends each replica of a partition
//! that a committed record created or changed its new state, as the simulator's former stand-in
//! controller did, and turns AlterPartition replies into the response the leader awaits.

use std::collections::BTreeSet;

use crate::controller::{ControllerReply, MetadataImage, MetadataRecord};
use crate::message::ControllerMessage;
use crate::types::{NodeId, TopicPartition};

impl MetadataImage {
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

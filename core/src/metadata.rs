//! What a broker is told about a partition by the controller: its replicas, its leader
//! and leader epoch, and its ISR with the partition epoch that versions it.
//!
//! This is the seam where the controller plugs in: `crate::controller` produces them
//! from the committed metadata log (`MetadataImage::partitions_hosted_by`). A broker
//! applies a state only if it is newer than the one it holds.

use crate::types::{Epoch, NodeId, TopicPartition};

/// One partition's replica set, leader and ISR, as decided by the controller (Kafka's
/// `PartitionRecord`/`LeaderAndIsr`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionState {
    pub replicas: Vec<NodeId>,
    /// `None` while no replica in the ISR is alive (the partition is offline).
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    /// The incarnation of the leader the controller elected (KRaft's broker epoch). A
    /// broker that restarted since must not lead on this state: it may have lost what
    /// made it eligible. `None` when there is no leader.
    pub leader_incarnation: Option<u64>,
    pub isr: Vec<NodeId>,
    /// Bumped on every change, ISR changes included (KIP-497's partition epoch), so a
    /// stale ISR change request can be recognised and refused.
    pub partition_epoch: u32,
}

impl PartitionState {
    /// Whether `self` supersedes `other`. Leader epochs order leadership changes;
    /// partition epochs order everything.
    pub fn is_newer_than(&self, other: &PartitionState) -> bool {
        (self.leader_epoch, self.partition_epoch) > (other.leader_epoch, other.partition_epoch)
    }
}

/// A request from a partition leader to the controller to change the ISR (Kafka's
/// AlterPartition, KIP-497). Accepted only if the leader and partition epochs are the
/// controller's current ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlterPartition {
    pub partition: TopicPartition,
    pub leader: NodeId,
    pub leader_epoch: Epoch,
    pub partition_epoch: u32,
    pub new_isr: Vec<NodeId>,
    /// Each member `new_isr` adds, with the incarnation the leader saw it fetch from
    /// (KIP-903): a member that restarted since is refused.
    pub added: Vec<(NodeId, u64)>,
}

//! The metadata log's entries: what the active controller proposes to the quorum and
//! every controller and broker applies, in log order, to its [`MetadataImage`].
//!
//! The records follow KRaft's (KIP-631: `RegisterBrokerRecord`, `FenceBrokerRecord`,
//! `TopicRecord`, `PartitionRecord`, `PartitionChangeRecord`, `RemoveTopicRecord`,
//! `ConfigRecord`). Each record states a *fact* the controller already decided; applying
//! it makes no decision of its own, so every replica of the log ends with the same image.
//! The exception is what KRaft also derives while applying: a [`PartitionChange`] bumps
//! the partition epoch always and the leader epoch only when it names a leader change
//! (KIP-497: the epochs version the state so that stale requests can be recognised).
//!
//! Their bytes (`encode`/`decode`, in `codec.rs`) are the payload of a Raft entry and of
//! a snapshot.
//!
//! [`MetadataImage`]: super::MetadataImage

use std::fmt;

use crate::metadata::PartitionState;
use crate::types::{NodeId, TopicPartition};

/// A topic's id. KRaft draws a random UUID; Eddy has no randomness of its own, so the
/// controller numbers topics in creation order (the image keeps the counter, and a
/// deleted topic's id is never reused, so a broker that still holds the old topic's data
/// can tell it from a new topic of the same name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub u64);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic#{}", self.0)
    }
}

/// One entry of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetadataRecord {
    /// A broker (re-)registered with a new incarnation (KRaft's broker epoch). It starts
    /// fenced: it may lead or join an ISR only once it has caught up with the metadata log
    /// and been unfenced (KIP-631). Its earlier incarnation's standing is gone.
    RegisterBroker {
        broker: NodeId,
        incarnation: u64,
        /// Where clients reach it, as given at registration (informational here).
        listeners: Vec<String>,
        rack: Option<String>,
    },
    /// The broker at `incarnation` may no longer lead or join an ISR: its session
    /// expired. The partition changes that follow from it are records of their own.
    FenceBroker { broker: NodeId, incarnation: u64 },
    /// The broker at `incarnation` caught up and heartbeats: it may lead and join ISRs.
    UnfenceBroker { broker: NodeId, incarnation: u64 },
    /// The broker's registration is removed (an operator decommissioned it). It stays a
    /// replica id in the assignments that name it, as a broker that is never eligible.
    UnregisterBroker { broker: NodeId, incarnation: u64 },
    /// A topic was created. Its partitions follow as [`MetadataRecord::Partition`]s and
    /// its configs as [`MetadataRecord::TopicConfig`]s.
    Topic { name: String, topic_id: TopicId },
    /// A partition was created (by CreateTopics or CreatePartitions) with this state.
    /// Partitions of a topic are created in order: 0, 1, 2, …
    Partition {
        partition: TopicPartition,
        state: PartitionState,
    },
    /// A partition's leader and/or ISR changed.
    PartitionChange(PartitionChange),
    /// A topic and all its partitions were deleted.
    RemoveTopic { name: String, topic_id: TopicId },
    /// A per-topic config was set (`Some`) or reset to the broker default (`None`).
    TopicConfig {
        topic: String,
        key: String,
        value: Option<String>,
    },
    /// The topic-id counter, for snapshots: the ids of deleted topics leave no other
    /// trace, and must not be handed out again.
    NextTopicId { next: TopicId },
    /// The cluster's id, written once by the first active controller from what its
    /// shell proposed (`meta.properties`). KRaft formats every node's storage with the
    /// same id; Eddy's nodes agree on it through the log, so every broker of a cluster
    /// reports the same one. A later record does not replace it.
    ClusterId { id: String },
}

/// A change to one partition's leader and/or ISR (KRaft's `PartitionChangeRecord`).
/// Applying it bumps the partition epoch; the leader epoch only if `leader` is set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionChange {
    pub partition: TopicPartition,
    /// `None`: the leader is unchanged.
    pub leader: Option<LeaderChange>,
    /// `None`: the ISR is unchanged.
    pub isr: Option<Vec<NodeId>>,
}

/// Who leads a partition after a [`PartitionChange`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaderChange {
    /// No eligible replica: the partition is offline until one comes back.
    Offline,
    /// `leader`, at its registered `incarnation`, leads.
    Elected {
        leader: NodeId,
        incarnation: u64,
        /// The leader was not in the ISR (`unclean.leader.election.enable`): writes that
        /// were acknowledged but had not reached it are lost. Kept in the record so that
        /// the data loss is on the log for anyone auditing it.
        unclean: bool,
    },
}

impl LeaderChange {
    /// The leader and its incarnation, `None` when offline.
    pub fn leader(&self) -> Option<(NodeId, u64)> {
        match self {
            LeaderChange::Offline => None,
            LeaderChange::Elected {
                leader,
                incarnation,
                ..
            } => Some((*leader, *incarnation)),
        }
    }
}

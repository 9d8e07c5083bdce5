//! Everything that crosses the core's boundary: the inputs a node is fed and the effects
//! it asks for. The shell (real networking in `eddy-net`, the simulated world in
//! `eddy-sim`) turns effects into I/O and I/O into inputs; the core never does either.
//!
//! ```text
//!   peer message ─┐                         ┌─▶ Send (to a peer broker)
//!   client request┼─▶ Node::handle(now, …) ─┼─▶ Reply (to a client request token)
//!   storage done ─┤                         ├─▶ Storage (append / truncate / sync)
//!   controller    │                         └─▶ Controller (heartbeat, AlterPartition)
//!   tick ─────────┘
//! ```
//!
//! Replication messages between brokers are Eddy's own (the wire form comes with the
//! real shell); they carry the same fields as Kafka's inter-broker Fetch and
//! OffsetForLeaderEpoch requests.

use bytes::Bytes;

use crate::controller::HeartbeatState;
use crate::error::ErrorCode;
pub use crate::log::FetchedBatch;
use crate::metadata::{AlterPartition, PartitionState};
use crate::types::{Epoch, NodeId, Offset, TopicPartition};

/// An input to a node. Each comes with the node's current time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Time passed; timers are checked.
    Tick,
    /// A message from another broker.
    Peer { from: NodeId, msg: PeerMessage },
    /// A client request. The reply carries the same token. Shells number their requests
    /// below [`crate::node::INTERNAL_TOKEN_MIN`] (2^63): the tokens above are the node's
    /// own, for the group coordinator's appends, and never reach a shell.
    Client { token: u64, req: ClientRequest },
    /// The controller's word.
    Controller(ControllerMessage),
    /// The disk finished something it was asked to do.
    Storage(StorageDone),
}

/// Something the node wants done.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    Send { to: NodeId, msg: PeerMessage },
    Reply { token: u64, resp: ClientResponse },
    Storage(StorageOp),
    Controller(ControllerRequest),
}

/// Broker-to-broker replication traffic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerMessage {
    /// A follower asks where `epoch` ends in the leader's log (KIP-101/KIP-279).
    OffsetForLeaderEpoch {
        partition: TopicPartition,
        /// The follower's view of the current leader epoch, for fencing (KIP-320).
        current_leader_epoch: Epoch,
        epoch: Epoch,
    },
    OffsetForLeaderEpochResponse {
        partition: TopicPartition,
        error: ErrorCode,
        current_leader_epoch: Epoch,
        asked_epoch: Epoch,
        /// `None` when the leader knows no epoch at or below the one asked for.
        epoch: Option<Epoch>,
        end_offset: Offset,
    },
    /// A follower's fetch. `fetch_offset` is its log end offset.
    Fetch {
        partition: TopicPartition,
        current_leader_epoch: Epoch,
        fetch_offset: Offset,
        max_bytes: u32,
        /// Matches the response to the request, so late or duplicated responses are ignored.
        fetch_id: u64,
        /// The follower's incarnation (KIP-903's broker epoch).
        incarnation: u64,
    },
    FetchResponse {
        partition: TopicPartition,
        fetch_id: u64,
        error: ErrorCode,
        current_leader_epoch: Epoch,
        fetch_offset: Offset,
        high_watermark: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
        /// The shell resolves every [`FetchedBatch::Stored`] before the message leaves.
        batches: Vec<FetchedBatch>,
    },
}

/// Acknowledgement mode of a produce request (`acks` on the producer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Acks {
    /// acks=0: no response at all.
    None,
    /// acks=1: the leader has it.
    Leader,
    /// acks=all (-1): every ISR member has it, and the ISR had at least
    /// `min.insync.replicas` members.
    All,
}

impl Acks {
    /// From the wire value of `acks`.
    pub fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientRequest {
    /// One batch for one partition (a Kafka produce request is a set of these).
    Produce {
        partition: TopicPartition,
        acks: Acks,
        timeout_ms: u64,
        batch: Bytes,
    },
    /// A consumer fetch: reads are bounded by the high watermark. With nothing to
    /// return it waits up to `max_wait_ms` for data (long polling).
    Fetch {
        partition: TopicPartition,
        offset: Offset,
        max_bytes: u32,
        max_wait_ms: u64,
    },
    /// ListOffsets for earliest (log start) and latest (high watermark).
    ListOffsets { partition: TopicPartition },
    /// A consumer validating its position after a leader change (KIP-320): where does
    /// `epoch` (the epoch of the last batch it read) end in the leader's log?
    OffsetForLeaderEpoch {
        partition: TopicPartition,
        epoch: Epoch,
    },
    /// What this broker knows of the partitions.
    Metadata,
    /// A consumer-group request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
    /// OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups), for the
    /// node's group coordinator; answered with [`ClientResponse::Group`]. The shell sends
    /// it to the broker FindCoordinator named; a broker that does not lead the group's
    /// `__consumer_offsets` partition answers NOT_COORDINATOR.
    Group(crate::group::GroupRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientResponse {
    Produce {
        partition: TopicPartition,
        error: ErrorCode,
        base_offset: Option<Offset>,
        log_start_offset: Offset,
    },
    Fetch {
        partition: TopicPartition,
        error: ErrorCode,
        high_watermark: Offset,
        log_start_offset: Offset,
        /// The shell resolves every [`FetchedBatch::Stored`] before the response leaves.
        batches: Vec<FetchedBatch>,
    },
    ListOffsets {
        partition: TopicPartition,
        error: ErrorCode,
        earliest: Offset,
        latest: Offset,
    },
    Metadata {
        partitions: Vec<(TopicPartition, PartitionState)>,
    },
    OffsetForLeaderEpoch {
        partition: TopicPartition,
        error: ErrorCode,
        epoch: Option<Epoch>,
        end_offset: Offset,
    },
    /// The group coordinator's answer to a [`ClientRequest::Group`], of the same kind.
    Group(crate::group::GroupResponse),
}

/// Requests from a broker to the controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControllerRequest {
    /// KIP-631's BrokerRegistration: sent on every start (a new `incarnation` tells the
    /// controller the broker restarted and may have lost unsynced data), and again
    /// whenever a heartbeat is answered that this incarnation is not registered. The
    /// broker heartbeats only once the controller answered it registered.
    Register {
        broker: NodeId,
        incarnation: u64,
        listeners: Vec<String>,
        rack: Option<String>,
    },
    /// Liveness, sent every `broker.heartbeat.interval.ms` by a registered incarnation,
    /// with the last metadata-log index the broker applied to its image (KIP-631's
    /// `currentMetadataOffset`): the controller unfences it only once that reaches the
    /// entry that registered this incarnation.
    Heartbeat {
        broker: NodeId,
        incarnation: u64,
        metadata_offset: u64,
    },
    AlterPartition(AlterPartition),
}

/// What the controller tells a broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControllerMessage {
    /// The current state of partitions this broker hosts.
    PartitionStates(Vec<(TopicPartition, PartitionState)>),
    /// The answer to a [`ControllerRequest::Register`] of `incarnation`, once the
    /// registration committed (or why it was refused).
    RegistrationResponse {
        incarnation: u64,
        result: Result<(), ErrorCode>,
    },
    /// The answer to a [`ControllerRequest::Heartbeat`] of `incarnation`: whether the
    /// broker is fenced, or BROKER_ID_NOT_REGISTERED / STALE_BROKER_EPOCH when the
    /// controller does not know this incarnation (the broker registers again).
    HeartbeatResponse {
        incarnation: u64,
        result: Result<HeartbeatState, ErrorCode>,
    },
    /// The answer to an AlterPartition (echoed back): the new state, or why it was
    /// refused.
    AlterPartitionResponse {
        partition: TopicPartition,
        request: AlterPartition,
        result: Result<PartitionState, ErrorCode>,
    },
}

/// Storage operations. Appends and truncations land in the page cache at once (they
/// may be lost in a crash); a sync is durable only when `StorageDone::Synced` says so.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StorageOp {
    Append {
        partition: TopicPartition,
        base_offset: Offset,
        batch: Bytes,
    },
    /// Drop every batch holding an offset at or above `offset`.
    Truncate {
        partition: TopicPartition,
        offset: Offset,
    },
    /// Drop everything; the log restarts at `offset`.
    TruncateFully {
        partition: TopicPartition,
        offset: Offset,
    },
    /// Make everything written to this partition so far durable.
    Sync {
        partition: TopicPartition,
        sync_id: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StorageDone {
    Synced {
        partition: TopicPartition,
        sync_id: u64,
    },
    /// The disk failed the sync (full, or broken): nothing it covered is durable.
    SyncFailed {
        partition: TopicPartition,
        sync_id: u64,
    },
}

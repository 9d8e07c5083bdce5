//! What the checkers see: a history of observations, in the order they happened.
//!
//! Observations come from two sides. The world reports what brokers did (what they
//! appended, truncated, which HW they reached, what survived a crash), read off the
//! effects the core emitted and the simulated disks; the clients report what they were
//! told (acknowledged, read). A checker never looks inside a `Node`; tests feed it
//! hand-written histories, so each checker can be shown to fail.

use eddy_core::{NodeId, Offset, TimeMs};

/// A batch's identity as its producer made it: which producer, which of its batches.
/// Every record value in a simulated batch names these, so a batch is recognised
/// wherever it lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId {
    pub producer: u32,
    pub number: u64,
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}#{}", self.producer, self.number)
    }
}

/// A batch at its place in a log. The leader epoch is part of its identity: a producer's
/// retry can land at the same offsets in a later epoch, and the two copies are not the
/// same entry of the replicated log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchRef {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub id: BatchId,
    pub epoch: u32,
}

impl BatchRef {
    pub fn next_offset(&self) -> Offset {
        self.last_offset.plus(1)
    }
}

impl std::fmt::Display for BatchRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at [{}..={}]",
            self.id, self.base_offset, self.last_offset
        )
    }
}

/// Partitions are numbered by the world (index into its partition table) so that
/// observations stay small.
pub type Part = u32;

/// What the admin client learned of one attempt of an admin request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminOutcome {
    /// Answered ok: the request's change committed.
    Ok,
    /// Answered with an error: nothing of this attempt committed (TOPIC_ALREADY_EXISTS:
    /// an earlier attempt, or someone else, created the topic).
    Failed(eddy_core::ErrorCode),
    /// No answer in time (lost, or the broker crashed or was cut off): the change may
    /// have committed or not.
    Unknown,
}

/// The acks a producer asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcksMode {
    Zero,
    One,
    All,
}

/// One incarnation of a consumer-group member: the member's slot (numbered across all
/// groups) and how many times that slot started before. A restarted member is a new
/// incarnation, whatever its `group.instance.id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberRef {
    pub group: u32,
    pub slot: u32,
    pub incarnation: u32,
}

impl std::fmt::Display for MemberRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "member {}.{} of group {}",
            self.slot, self.incarnation, self.group
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A broker appended a batch to its log (leader or follower).
    Appended {
        at: TimeMs,
        node: NodeId,
        part: Part,
        batch: BatchRef,
    },
    /// A broker removed every batch holding an offset at or above `offset`.
    Truncated {
        at: TimeMs,
        node: NodeId,
        part: Part,
        offset: Offset,
    },
    /// A broker dropped its whole log; it restarts at `offset`.
    TruncatedFully {
        at: TimeMs,
        node: NodeId,
        part: Part,
        offset: Offset,
    },
    /// A broker crashed; `surviving` is what its disk kept, per partition.
    Crashed {
        at: TimeMs,
        node: NodeId,
        surviving: Vec<(Part, Vec<BatchRef>)>,
    },
    Restarted {
        at: TimeMs,
        node: NodeId,
    },
    /// A broker's high watermark for a partition moved; `leader` says whether it leads.
    HighWatermark {
        at: TimeMs,
        node: NodeId,
        part: Part,
        hw: Offset,
        leader: bool,
    },
    /// A producer sent a batch for the first time.
    Sent {
        at: TimeMs,
        producer: u32,
        part: Part,
        id: BatchId,
        acks: AcksMode,
        idempotent: bool,
    },
    /// A broker sent a successful produce response for a batch at `base_offset`.
    AckSent {
        at: TimeMs,
        node: NodeId,
        part: Part,
        id: BatchId,
        base_offset: Offset,
        acks: AcksMode,
    },
    /// A producer was told its batch is at `base_offset`.
    Acked {
        at: TimeMs,
        producer: u32,
        part: Part,
        id: BatchId,
        base_offset: Offset,
        acks: AcksMode,
    },
    /// A producer gave a batch up; whether it landed is unknown.
    Failed {
        at: TimeMs,
        producer: u32,
        part: Part,
        id: BatchId,
    },
    /// A reader received a batch.
    Read {
        at: TimeMs,
        reader: u32,
        part: Part,
        batch: BatchRef,
    },
    /// A group member sent its first JoinGroup (a new incarnation joins).
    GroupJoining {
        at: TimeMs,
        member: MemberRef,
    },
    /// A member took its assignment of `generation`: it now owns `owned` (for
    /// cooperative-sticky, what it kept plus what it was given; what it must give up
    /// follows as `GroupRevoked`).
    GroupAssigned {
        at: TimeMs,
        member: MemberRef,
        generation: i32,
        owned: Vec<Part>,
    },
    /// The coordinator `coordinator` accepted a member's JoinGroup, SyncGroup or
    /// Heartbeat sent at `sent_at`: the member's view of its session lasts until at least
    /// `until` (`sent_at` plus `session.timeout.ms`).
    GroupSessionRenewed {
        at: TimeMs,
        member: MemberRef,
        coordinator: NodeId,
        sent_at: TimeMs,
        until: TimeMs,
    },
    /// A member's JoinGroup was answered with generation `joined`, no higher than the
    /// `previous` one it joined at `previous_at`: the coordinator brought the group back
    /// at an older generation (a new coordinator loaded what was stored, and generations
    /// are stored only once synced).
    GroupGenerationReused {
        at: TimeMs,
        member: MemberRef,
        previous: i32,
        previous_at: TimeMs,
        joined: i32,
    },
    /// A member stopped owning `parts`: its ownership ended at `until` (at or before
    /// `at`: a member that finds its session over reports when it ended).
    GroupRevoked {
        at: TimeMs,
        member: MemberRef,
        parts: Vec<Part>,
        until: TimeMs,
    },
    /// A member's process ended: crashed (nothing more from it) or closed after leaving.
    GroupStopped {
        at: TimeMs,
        member: MemberRef,
        crashed: bool,
    },
    /// A member starts consuming a partition it owns at `offset`: the committed offset
    /// its OffsetFetch (sent at `fetch_sent_at`) returned, or 0 when none was committed.
    GroupResumed {
        at: TimeMs,
        member: MemberRef,
        part: Part,
        offset: Offset,
        committed: bool,
        fetch_sent_at: TimeMs,
        /// An explicit reset (`auto.offset.reset` after OFFSET_OUT_OF_RANGE), not a
        /// committed offset.
        reset: bool,
    },
    /// A member processed the records of `batch` from `from` on (it skips those below
    /// its position).
    GroupProcessed {
        at: TimeMs,
        member: MemberRef,
        part: Part,
        generation: i32,
        from: Offset,
        batch: BatchRef,
    },
    /// A member asked to commit `offset` (the next record it will process).
    GroupCommitSent {
        at: TimeMs,
        member: MemberRef,
        part: Part,
        offset: Offset,
        generation: i32,
    },
    /// The coordinator acknowledged a member's commit.
    GroupCommitAcked {
        at: TimeMs,
        member: MemberRef,
        part: Part,
        offset: Offset,
        generation: i32,
    },
    /// The controller changed a partition's ISR.
    IsrChanged {
        at: TimeMs,
        part: Part,
        isr: Vec<NodeId>,
    },
    /// Every fault healed; the liveness phase starts.
    Healed {
        at: TimeMs,
    },
    /// A controller voter became the Raft leader of `term`; its log then held `log`
    /// (index, term) after its snapshot at `snapshot_index`.
    RaftLeader {
        at: TimeMs,
        node: NodeId,
        term: u64,
        snapshot_index: u64,
        log: Vec<(u64, u64)>,
    },
    /// A voter applied a committed metadata-log entry (a hash of its payload).
    RaftApplied {
        at: TimeMs,
        node: NodeId,
        index: u64,
        term: u64,
        hash: u64,
    },
    /// A voter replaced its state machine with a snapshot covering up to `index`.
    RaftSnapshotApplied {
        at: TimeMs,
        node: NodeId,
        index: u64,
    },
    /// A voter became (or stopped being) the active controller.
    ControllerActive {
        at: TimeMs,
        node: NodeId,
        active: bool,
    },
    /// A broker's replica now holds this partition metadata (observed on change).
    PartitionView {
        at: TimeMs,
        node: NodeId,
        part: Part,
        leader_epoch: u32,
        partition_epoch: u32,
        leader: bool,
    },
    /// A broker (voter or observer) at `incarnation` gave its node the partition states
    /// of its committed metadata image, which holds the metadata log up to `index`.
    BrokerMetadata {
        at: TimeMs,
        node: NodeId,
        incarnation: u64,
        index: u64,
    },
    /// The committed metadata log first unfenced broker `node` at `incarnation` (since it
    /// registered that incarnation) at entry `index`: the lowest index any broker's
    /// committed image reports for it (one that learned it from a snapshot reports the
    /// snapshot's index, an upper bound).
    BrokerUnfenced {
        at: TimeMs,
        node: NodeId,
        incarnation: u64,
        index: u64,
    },
    /// The admin client's CreateTopics of `topic`: one attempt's outcome.
    Admin {
        at: TimeMs,
        topic: String,
        outcome: AdminOutcome,
    },
    /// At the end of the run, the topics in the active controller's committed image
    /// (`None`: no active controller at the end).
    TopicsAtEnd {
        at: TimeMs,
        topics: Option<Vec<String>>,
    },
    /// At the end of the run, the active controller's committed image: partitions whose
    /// leader is a fenced broker. `None`: no active controller at the end.
    FencedLeadersAtEnd {
        at: TimeMs,
        fenced_leaders: Option<Vec<(Part, NodeId)>>,
        /// Partitions whose ISR lacks some replica.
        short_isrs: Vec<Part>,
    },
}

impl Observation {
    pub fn at(&self) -> TimeMs {
        match self {
            Observation::Appended { at, .. }
            | Observation::Truncated { at, .. }
            | Observation::TruncatedFully { at, .. }
            | Observation::Crashed { at, .. }
            | Observation::Restarted { at, .. }
            | Observation::HighWatermark { at, .. }
            | Observation::Sent { at, .. }
            | Observation::AckSent { at, .. }
            | Observation::Acked { at, .. }
            | Observation::Read { at, .. }
            | Observation::IsrChanged { at, .. }
            | Observation::Failed { at, .. }
            | Observation::Healed { at }
            | Observation::RaftLeader { at, .. }
            | Observation::RaftApplied { at, .. }
            | Observation::RaftSnapshotApplied { at, .. }
            | Observation::ControllerActive { at, .. }
            | Observation::PartitionView { at, .. }
            | Observation::BrokerMetadata { at, .. }
            | Observation::BrokerUnfenced { at, .. }
            | Observation::Admin { at, .. }
            | Observation::TopicsAtEnd { at, .. }
            | Observation::FencedLeadersAtEnd { at, .. }
            | Observation::GroupJoining { at, .. }
            | Observation::GroupAssigned { at, .. }
            | Observation::GroupRevoked { at, .. }
            | Observation::GroupSessionRenewed { at, .. }
            | Observation::GroupGenerationReused { at, .. }
            | Observation::GroupStopped { at, .. }
            | Observation::GroupResumed { at, .. }
            | Observation::GroupProcessed { at, .. }
            | Observation::GroupCommitSent { at, .. }
            | Observation::GroupCommitAcked { at, .. } => *at,
        }
    }
}

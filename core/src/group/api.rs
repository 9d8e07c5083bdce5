//! The requests the group coordinator answers and the responses it gives, with the
//! fields of Kafka's wire messages (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups), so the shell can
//! map the `kafka-protocol` crate's structs onto these field by field. Integers keep
//! their wire types (`i32` timeouts and generations), because a client can send any
//! value and the coordinator answers a bad one with an error code, not a panic.
//!
//! What the shell decides before it gets here: the version-dependent defaults (a v0
//! JoinGroup's `rebalance_timeout_ms` is its `session_timeout_ms`;
//! `require_known_member_id` is true from JoinGroup v4, KIP-394), whether a committed
//! topic exists (Kafka answers UNKNOWN_TOPIC_OR_PARTITION from its metadata cache), and
//! for LeaveGroup v0-v2 that the single member's error becomes the top-level error.

use bytes::Bytes;

use crate::error::ErrorCode;

/// Kafka's `JoinGroupRequest.UNKNOWN_MEMBER_ID`: a member that has no id yet.
pub const UNKNOWN_MEMBER_ID: &str = "";
/// The generation a JoinGroup error response carries, and the one a member outside any
/// generation commits with (Kafka's `UNKNOWN_GENERATION_ID`).
pub const UNKNOWN_GENERATION_ID: i32 = -1;
/// The offset OffsetFetch reports for a partition with no committed offset (KAFKA-COMPAT
/// item 8: with error NONE).
pub const INVALID_OFFSET: i64 = -1;
/// OffsetCommit v1's `commit_timestamp` meaning "the broker's time".
pub const DEFAULT_TIMESTAMP: i64 = -1;
/// OffsetCommit v2-v4's `retention_time_ms` meaning "the broker's rules".
pub const DEFAULT_RETENTION_TIME: i64 = -1;
/// The leader epoch meaning "not given".
pub const NO_LEADER_EPOCH: i32 = -1;

/// One request to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupRequest {
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
}

/// The answer to one request, of the same kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupResponse {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
}

/// One protocol a member supports: an assignor name and the member's subscription in
/// that assignor's format (opaque to the coordinator).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// `UNKNOWN_MEMBER_ID` ("") on a member's first join.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345, v5+).
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    /// Why the member joins (KIP-800, v8+); informational.
    pub reason: Option<String>,
    /// From the request header.
    pub client_id: String,
    /// The client's address, as the shell saw the connection.
    pub client_host: String,
    /// True from JoinGroup v4 (KIP-394): a new member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// KIP-814 (v9): always false here; Eddy does not skip the leader's assignment.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    /// Kafka's `JoinGroupResult(memberId, error)`.
    pub fn error(member_id: impl Into<String>, error: ErrorCode) -> JoinGroupResponse {
        JoinGroupResponse {
            error,
            generation_id: UNKNOWN_GENERATION_ID,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Checked against the group's from v5 (KIP-559); `None` before.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment; empty from followers.
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn error(error: ErrorCode) -> SyncGroupResponse {
        SyncGroupResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeartbeatResponse {
    pub error: ErrorCode,
}

/// One member leaving (LeaveGroup v3+ carries a batch, KIP-345). An empty `member_id`
/// with a `group_instance_id` removes a static member by its instance id (the admin
/// client's `removeMembersFromConsumerGroup`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub members: Vec<MemberIdentity>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaveMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaveGroupResponse {
    pub error: ErrorCode,
    pub members: Vec<LeaveMemberResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// `NO_LEADER_EPOCH` when the client gives none (before v6).
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
    /// OffsetCommit v1 only: the commit's time, or `DEFAULT_TIMESTAMP` (-1) for the
    /// broker's clock.
    pub commit_timestamp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// `UNKNOWN_GENERATION_ID` with an empty member id: a "simple" commit from a
    /// consumer that does not use group management.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// OffsetCommit v2-v4: how long to keep these offsets, or `DEFAULT_RETENTION_TIME`
    /// (-1) for the broker's retention rules (the only choice from v5, KIP-211).
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetCommitResponse {
    pub topics: Vec<OffsetCommitTopicResponse>,
}

impl OffsetCommitResponse {
    /// The same error for every partition of `req`.
    pub fn all(req: &OffsetCommitRequest, error: ErrorCode) -> OffsetCommitResponse {
        OffsetCommitResponse {
            topics: req
                .topics
                .iter()
                .map(|t| OffsetCommitTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitPartitionResponse {
                            partition_index: p.partition_index,
                            error,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    /// `None` asks for every committed offset of the group (v2+).
    pub topics: Option<Vec<OffsetFetchTopic>>,
    /// KIP-447; Eddy has no transactional offsets, so nothing is ever unstable.
    pub require_stable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetFetchPartitionResponse {
    pub partition_index: i32,
    /// `INVALID_OFFSET` (-1) when nothing is committed.
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetFetchTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetFetchResponse {
    pub error: ErrorCode,
    pub topics: Vec<OffsetFetchTopicResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListGroupsRequest {
    /// KIP-518 (v4): only groups in one of these states (case-insensitive); empty for all.
    pub states_filter: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub group_state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListGroupsResponse {
    pub error: ErrorCode,
    pub groups: Vec<ListedGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    /// From DescribeGroups v6 a group the coordinator does not have is reported with
    /// GROUP_ID_NOT_FOUND; before, as state "Dead" with NONE.
    pub report_missing_group: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DescribedGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the chosen protocol; empty unless the group is Stable.
    pub member_metadata: Bytes,
    /// Empty unless the group is Stable.
    pub member_assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DescribedGroup {
    pub error: ErrorCode,
    pub group_id: String,
    /// Kafka's state name: "Empty", "PreparingRebalance", "CompletingRebalance",
    /// "Stable", or "Dead" for a group the coordinator does not have.
    pub group_state: String,
    pub protocol_type: String,
    /// The chosen protocol when Stable, else "".
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DescribeGroupsResponse {
    pub groups: Vec<DescribedGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeletableGroupResult {
    pub group_id: String,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteGroupsResponse {
    pub results: Vec<DeletableGroupResult>,
}

//! One member of a classic group, as the coordinator knows it (Kafka's `MemberMetadata`):
//! its ids, timeouts, supported protocols, current assignment, the JoinGroup or
//! SyncGroup response it is waiting for, and when its session expires.

use bytes::Bytes;

use crate::group::api::JoinGroupProtocol;
use crate::types::TimeMs;

/// How long a member that has joined for the first time may wait for the rebalance to
/// complete before it is dropped (Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs`, 5
/// minutes): a new member cannot heartbeat yet, and a client that gave up on its
/// JoinGroup and retried would otherwise leave a defunct member behind each time.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 5 * 60 * 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: u64,
    pub(crate) session_timeout_ms: u64,
    pub(crate) protocol_type: String,
    /// In the member's order of preference.
    pub(crate) protocols: Vec<JoinGroupProtocol>,
    /// What the leader gave this member in the current generation.
    pub(crate) assignment: Bytes,
    /// The token of a JoinGroup parked until the rebalance completes.
    pub(crate) awaiting_join: Option<u64>,
    /// The token of a SyncGroup parked until the leader's assignment is stored.
    pub(crate) awaiting_sync: Option<u64>,
    /// Joined in the current rebalance and never completed one.
    pub(crate) is_new: bool,
    /// When the member is removed unless it heartbeats (or joins, or syncs) again.
    pub(crate) session_deadline_ms: TimeMs,
}

impl Member {
    /// Kafka's `MemberMetadata.matches`: the same protocols with the same metadata, in
    /// the same order.
    pub(crate) fn matches(&self, protocols: &[JoinGroupProtocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's metadata for `protocol`, which every member supports once it is the
    /// group's chosen protocol.
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_else(|| panic!("member {} does not support {protocol}", self.member_id))
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// Kafka's `hasSatisfiedHeartbeat` for a member past its deadline: a member waiting
    /// for a JoinGroup or SyncGroup response cannot heartbeat, so it is kept — except a
    /// new member, whose first join is bounded by `NEW_MEMBER_JOIN_TIMEOUT_MS`.
    pub(crate) fn is_kept_alive(&self) -> bool {
        (self.awaiting_join.is_some() && !self.is_new) || self.awaiting_sync.is_some()
    }

    /// The session timeout that applies now (Kafka's `completeAndScheduleNextExpiration`).
    pub(crate) fn session_span_ms(&self) -> u64 {
        if self.is_new {
            NEW_MEMBER_JOIN_TIMEOUT_MS
        } else {
            self.session_timeout_ms
        }
    }
}

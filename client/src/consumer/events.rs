//! Group events, for monitoring a member's standing in its group: which coordinator
//! accepted its requests and how long that keeps its session alive, which generation it
//! joined, when its own view of its session ran out or the coordinator said the
//! membership was over, where each partition it took over resumed, and which offsets it
//! asked to commit.
//!
//! A [`GroupObserver`] set with [`super::Consumer::set_group_observer`] is called with
//! each [`GroupEvent`] as it happens, from the consumer's task or its heartbeat task; it
//! must be quick and must not block. Without one, nothing is built or sent. The events
//! are facts the member already has: observing them changes nothing in what it does.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_core::TopicPartition;
use tokio::time::Instant;

use crate::error::KafkaCode;

/// A group request whose acceptance renews the member's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRequest {
    JoinGroup,
    SyncGroup,
    Heartbeat,
}

/// Where a partition's starting position came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionSource {
    /// The group's committed offset, from an OffsetFetch sent at `fetch_sent_at`.
    Committed { fetch_sent_at: Instant },
    /// No committed offset: `auto.offset.reset` chose it, after an OffsetFetch sent at
    /// `fetch_sent_at` found none (`None`: a consumer outside any group).
    Reset { fetch_sent_at: Option<Instant> },
}

/// One fact about this member's standing in its group. More kinds may come: match
/// with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// Coordinator `coordinator` (a node id) accepted `request`, sent at `sent_at`. The
    /// coordinator received it after `sent_at`, so it keeps the member until at least
    /// `session_until` (`sent_at` plus `session.timeout.ms`).
    SessionRenewed {
        request: SessionRequest,
        coordinator: i32,
        sent_at: Instant,
        session_until: Instant,
    },
    /// JoinGroup answered: the member is `member_id` in `generation`.
    Joined {
        coordinator: i32,
        generation: i32,
        member_id: String,
    },
    /// The member's own view of its session ended at `session_ended_at`: no request sent
    /// in the `session.timeout.ms` before was accepted, so the coordinator may have
    /// removed it and handed `partitions` on. It gave them up (lost, not committed; the
    /// rebalance listener hears `Revoked`) and rejoins.
    SessionExpired {
        partitions: Vec<TopicPartition>,
        session_ended_at: Instant,
    },
    /// The coordinator answered `api` (JoinGroup, SyncGroup, Heartbeat or OffsetCommit),
    /// sent in `generation`, with `error` (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
    /// FENCED_INSTANCE_ID): this membership is over, and another member may own
    /// `partitions` already. The member gave them up (lost, not committed; the
    /// rebalance listener hears `Revoked` if there were any) and rejoins owning none,
    /// under a new member id unless the error was ILLEGAL_GENERATION (Kafka's
    /// `onPartitionsLost`).
    MembershipEnded {
        api: &'static str,
        error: KafkaCode,
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// The member starts reading `partition`, which it had no position for, at `offset`.
    PositionResolved {
        partition: TopicPartition,
        offset: i64,
        source: PositionSource,
    },
    /// An OffsetCommit of `offsets` in `generation` is being sent (whether it is
    /// acknowledged is the commit call's result).
    CommitSent {
        generation: i32,
        offsets: BTreeMap<TopicPartition, i64>,
    },
}

/// A callback for [`GroupEvent`]s (monitoring, metrics, tests).
#[derive(Clone)]
pub struct GroupObserver(Arc<dyn Fn(&GroupEvent) + Send + Sync>);

impl GroupObserver {
    pub fn new(f: impl Fn(&GroupEvent) + Send + Sync + 'static) -> GroupObserver {
        GroupObserver(Arc::new(f))
    }

    pub(crate) fn emit(&self, event: &GroupEvent) {
        (self.0)(event);
    }
}

impl std::fmt::Debug for GroupObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupObserver")
    }
}

/// Calls the observer, if there is one; builds the event only then.
pub(crate) fn emit(observer: &Option<GroupObserver>, event: impl FnOnce() -> GroupEvent) {
    if let Some(o) = observer {
        o.emit(&event());
    }
}

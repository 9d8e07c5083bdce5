//! Consumer groups: how Kafka gives queue semantics inside a group and publish-subscribe
//! across groups. This module owns the group coordinator of Kafka's classic protocol
//! and the partition assignors its members run.
//!
//! - [`GroupCoordinator`] (`coordinator`, `loading`, `join`, `membership`, `offsets`): JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups and
//!   DeleteGroups for the groups whose `__consumer_offsets` partitions this broker
//!   leads, as one pure state machine shared by the broker and the simulator: requests
//!   and time come in, replies and appends go out, and nothing that must survive a
//!   coordinator move is acknowledged before its append to `__consumer_offsets` has
//!   committed. It follows Kafka's `GroupCoordinator` rule for rule, including
//!   KIP-394 (MEMBER_ID_REQUIRED for new members), KIP-345 (static membership),
//!   KIP-134 (the initial rebalance delay), KIP-559 (protocol checks in SyncGroup) and
//!   KIP-211 (offsets expire once the group is empty).
//! - `classic` and `member`: one group and one member as the coordinator holds them.
//! - `record`: what `__consumer_offsets` holds, and which of its partitions holds a
//!   group ([`offsets_partition_for`], Kafka's formula).
//! - `api`: the requests and responses, with the fields of Kafka's wire messages.
//! - `assignor`: the functions the group leader runs to divide the subscribed
//!   partitions among the members, shared by the simulator's consumers and, later,
//!   Eddy's client.

mod api;
mod assignor;
mod classic;
mod coordinator;
mod join;
mod loading;
mod member;
mod membership;
mod offsets;
mod record;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod offsets_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use api::*;
pub use assignor::{select_protocol, Assignor, GroupAssignment, RebalanceProtocol, Subscription};
pub use classic::GroupState;
pub use coordinator::{GroupConfig, GroupCoordinator, GroupEffect, GroupInput};
pub use record::offsets_partition_for;

/// Kafka's internal topic holding the groups' metadata and committed offsets; the group
/// `g` lives in its partition `offsets_partition_for(g, offsets.topic.num.partitions)`,
/// and the leader of that partition is the group's coordinator.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A group's generation id: the coordinator bumps it at every completed rebalance, and a
/// member's commits and owned partitions are only as current as the generation they
/// were made in. Kafka's `generationId` (an int32 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub i32);

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

//! Consumer groups: how Kafka gives queue semantics inside a group and publish-subscribe
//! across groups. This module will hold the group coordinator of Kafka's classic
//! protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, generations, offsets), as a
//! pure state machine shared by the broker and the simulator. Today it holds the
//! partition assignors (`assignor`): the functions the group leader runs to divide the
//! subscribed partitions among the members, shared by the simulator's consumers and,
//! later, Eddy's client.

mod api;
mod assignor;
mod classic;
mod coordinator;
mod member;
mod membership;
mod offsets;
mod record;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use api::*;
pub use assignor::{select_protocol, Assignor, GroupAssignment, RebalanceProtocol, Subscription};
pub use classic::GroupState;
pub use coordinator::{GroupConfig, GroupCoordinator, GroupEffect, GroupInput};
pub use record::offsets_partition_for;

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

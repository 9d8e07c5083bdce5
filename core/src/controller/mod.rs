//! The controller: KRaft's replacement for ZooKeeper (KIP-500, KIP-631). The cluster's
//! metadata is an event log — the metadata log, replicated by the Raft quorum in
//! [`crate::quorum`] — and the *active controller* (the quorum leader) is the only writer.
//!
//! ```text
//!   broker / admin request ─┐                          ┌─▶ records ──▶ shell proposes them
//!   (ControllerInput)       ├─▶ Controller::handle ────┤   as one entry (encode_records)
//!   tick(now_ms) ───────────┘   (reads the image)      └─▶ replies ──▶ sent once the last
//!                                                                      record commits
//!   committed entries ──decode_records──▶ MetadataImage::apply (every controller, broker)
//!   snapshot ◀── MetadataImage::snapshot ─── and back with MetadataImage::from_records
//! ```
//!
//! This module owns:
//! - [`MetadataRecord`] (`record.rs`, bytes in `codec.rs`): the log's entries;
//! - [`MetadataImage`] (`image.rs`): the state the records build, and the lookups the
//!   broker side needs;
//! - [`Controller`] (`active.rs` and one file per concern: `brokers.rs` for registration,
//!   heartbeats and fencing; `partitions.rs` for leader election and AlterPartition;
//!   `topics.rs` for topic admin; `placement.rs` for replica assignment): the active
//!   controller's decisions. It reads an image and returns the records that carry them
//!   out; it never mutates the image itself, so the shell decides when records are
//!   applied (on the active controller: at once, to the image of committed and pending
//!   records, as KRaft does);
//! - the translation into the core's `ControllerMessage`s (`notify.rs`): the answers to
//!   brokers' requests, and the partition states a broker derives from its own image;
//! - [`MetadataFollower`] (`follower.rs`): a broker that is no voter following the log
//!   as a Raft observer, with its own committed image.
//!
//! The rules the simulator's former stand-in controller established, and the simulator
//! checks, hold here:
//! - a broker whose session expires (`broker.session.timeout.ms` without a heartbeat), or
//!   that registers a new incarnation (it restarted and may have lost unsynced data), is
//!   fenced: it loses leadership, and leaves every ISR where it is not the last member
//!   (KIP-841: the last member stays, so the partition knows who may lead it again);
//! - a new leader is the first unfenced ISR member in replica order, named with its
//!   incarnation: a broker that restarted since may not lead on that state;
//! - AlterPartition is accepted only from the current leader with the current leader
//!   and partition epochs (KIP-497), and only adds members that are unfenced at the
//!   incarnation the leader saw them fetch at (KIP-841, KIP-903);
//! - unclean election (a replica outside the ISR leads, losing acknowledged writes) only
//!   with `unclean.leader.election.enable`, per topic or for the cluster.
//!
//! Everything here is pure and deterministic: time is `now_ms`, iteration is over
//! `BTreeMap`s, and topic ids are a counter in the image.
//!
//! Driving it on the quorum ([`voter::Voter`] does this; a shell carries out its output):
//! 1. Every node keeps a *committed* image: it applies each `Apply`d entry's records
//!    (`decode_records`) in order, and replaces the image on `ApplySnapshot`
//!    (`MetadataImage::from_records(decode_records(..))`). It snapshots with
//!    `encode_records(&image.snapshot())` at an applied index.
//! 2. A node becomes the active controller when it leads and has applied its own term's
//!    `LeaderNoop` (Raft §8: only then does its image hold every committed record). It
//!    then creates a [`Controller`] and a *pending* image, a copy of the committed one.
//! 3. Each input and tick goes to the controller with the pending image; the output's
//!    records are proposed as one entry and applied to the pending image at once; its
//!    replies wait until that entry's index commits.
//! 4. On losing leadership it drops the controller and the pending image, and answers
//!    the replies still waiting with NOT_CONTROLLER (the entries may still commit: the
//!    client retries against the new controller, which sees them or not).

mod active;
mod brokers;
mod codec;
mod committed;
pub mod follower;
mod image;
mod member;
mod notify;
mod partitions;
mod placement;
mod record;
mod topics;
pub mod voter;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_tests;

pub use active::Controller;
pub use brokers::{MAX_LISTENERS, MAX_REGISTRATION_STRING_BYTES};
pub use codec::{decode_records, encode_records, DecodeError};
pub use follower::MetadataFollower;
pub use image::{BrokerRegistration, MetadataImage, TopicImage};
pub use member::MetadataMember;
pub use record::{LeaderChange, MetadataRecord, PartitionChange, TopicId};
pub use topics::{config_valid, validate_topic_name, MAX_NEW_PARTITIONS};

use crate::config::BrokerConfig;
use crate::error::ErrorCode;
use crate::metadata::{AlterPartition, PartitionState};
use crate::types::{NodeId, TopicPartition};

/// The settings the controller decides with, from the broker config's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// `num.partitions`: partitions of a topic created without a count.
    pub num_partitions: u32,
    /// `default.replication.factor`: replicas of a topic created without a factor.
    pub default_replication_factor: u16,
    /// `broker.session.timeout.ms`: a broker not heard from for longer is fenced.
    pub broker_session_timeout_ms: u64,
    /// `unclean.leader.election.enable`: the cluster default; a topic's own config of
    /// the same name overrides it.
    pub unclean_leader_election_enable: bool,
    /// The cluster id this controller writes to the log if it is the first to be active
    /// (the shell's `meta.properties`); `None` writes none.
    pub cluster_id: Option<String>,
}

impl ControllerConfig {
    pub fn from_broker_config(config: &BrokerConfig) -> ControllerConfig {
        ControllerConfig {
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            broker_session_timeout_ms: config.broker_session_timeout_ms,
            unclean_leader_election_enable: config.unclean_leader_election_enable,
            cluster_id: None,
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> ControllerConfig {
        ControllerConfig::from_broker_config(&BrokerConfig::default())
    }
}

/// A request to the active controller, from a broker or an admin client. Kafka's admin
/// requests carry lists (many topics in one CreateTopics); the shell feeds them one at a
/// time, applying each one's records before the next, so each is judged on the image
/// the previous ones left.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControllerInput {
    /// A broker starting up (KIP-631's BrokerRegistration). A higher incarnation than the
    /// registered one means it restarted: its old standing is gone.
    BrokerRegistration {
        broker: NodeId,
        incarnation: u64,
        listeners: Vec<String>,
        rack: Option<String>,
    },
    /// A broker's liveness (KIP-631's BrokerHeartbeat). `metadata_offset`: the last
    /// metadata-log index the broker applied to its image (KIP-631's
    /// `currentMetadataOffset`). The broker is unfenced only once it has reached the entry
    /// that registered it: before that its image may hold a previous incarnation's (or
    /// nobody's) view of the partitions it hosts.
    BrokerHeartbeat {
        broker: NodeId,
        incarnation: u64,
        metadata_offset: u64,
    },
    /// An operator decommissions a broker (KIP-631's UnregisterBroker).
    UnregisterBroker { broker: NodeId },
    /// A broker stopping on purpose (SIGTERM) asks to be shut down in a controlled way
    /// (KIP-631's `wantShutDown`): it is fenced at once, so its leaderships move to
    /// other ISR members and it leaves the ISRs, before it goes; its heartbeats do not
    /// unfence it again. Its next start registers a new incarnation as usual.
    ControlledShutdown { broker: NodeId, incarnation: u64 },
    /// A partition leader's ISR change (KIP-497).
    AlterPartition(AlterPartition),
    /// CreateTopics for one topic. `None` takes `num.partitions` /
    /// `default.replication.factor`.
    CreateTopic {
        name: String,
        num_partitions: Option<u32>,
        replication_factor: Option<u16>,
        configs: Vec<(String, String)>,
    },
    /// DeleteTopics for one topic.
    DeleteTopic { name: String },
    /// CreatePartitions: grow `topic` to `count` partitions in all.
    CreatePartitions { topic: String, count: u32 },
    /// IncrementalAlterConfigs on one topic: set (`Some`) or delete (`None`) each key.
    AlterConfigs {
        topic: String,
        configs: Vec<(String, Option<String>)>,
    },
    /// ElectLeaders (preferred): move leadership back to each partition's first replica.
    ElectLeaders { partitions: Vec<TopicPartition> },
}

/// What the controller decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerOutput {
    /// To append to the metadata log, in order, as one entry ([`encode_records`]) so
    /// that the decision commits whole. The shell applies them to the active
    /// controller's image (committed and pending records) before the next input.
    pub records: Vec<MetadataRecord>,
    /// To send once every record above has committed (at once if there are none). If the
    /// records cannot commit (this controller lost its leadership), the shell answers
    /// NOT_CONTROLLER instead.
    pub replies: Vec<ControllerReply>,
}

/// The answer to a [`ControllerInput`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControllerReply {
    BrokerRegistration {
        broker: NodeId,
        incarnation: u64,
        result: Result<(), ErrorCode>,
    },
    BrokerHeartbeat {
        broker: NodeId,
        incarnation: u64,
        /// Whether the broker is fenced once the records commit.
        result: Result<HeartbeatState, ErrorCode>,
    },
    UnregisterBroker {
        broker: NodeId,
        result: Result<(), ErrorCode>,
    },
    ControlledShutdown {
        broker: NodeId,
        incarnation: u64,
        result: Result<(), ErrorCode>,
    },
    /// The request, echoed, and the partition's new state (what the leader must adopt).
    AlterPartition {
        request: AlterPartition,
        result: Result<PartitionState, ErrorCode>,
    },
    CreateTopic {
        name: String,
        result: Result<TopicId, ErrorCode>,
    },
    DeleteTopic {
        name: String,
        result: Result<(), ErrorCode>,
    },
    CreatePartitions {
        topic: String,
        result: Result<(), ErrorCode>,
    },
    AlterConfigs {
        topic: String,
        result: Result<(), ErrorCode>,
    },
    ElectLeaders {
        results: Vec<(TopicPartition, Result<(), ErrorCode>)>,
    },
}

/// What a heartbeat tells a broker about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeartbeatState {
    /// A fenced broker may not lead or join ISRs; it heartbeats on until it is unfenced.
    pub fenced: bool,
}

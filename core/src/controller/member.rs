//! A node's place in the metadata quorum: a [`Voter`] (controller voter, with its own
//! committed image) or a [`MetadataFollower`] (a broker-only node following the log as a
//! Raft observer). The shells (`eddy broker`, the simulator) drive either through this
//! one type, so the choice is made here once rather than at every call.

use std::collections::BTreeMap;

use rand_core::RngCore;

use super::follower::MetadataFollower;
use super::voter::{Persisted, Voter, VoterOut};
use super::MetadataImage;
use crate::quorum::{LogId, LogIndex, RaftMessage};
use crate::types::{NodeId, TimeMs};

pub enum MetadataMember {
    Voter(Box<Voter>),
    Observer(Box<MetadataFollower>),
}

impl MetadataMember {
    /// The voter, when this node is one.
    pub fn voter(&self) -> Option<&Voter> {
        match self {
            MetadataMember::Voter(v) => Some(v),
            MetadataMember::Observer(_) => None,
        }
    }

    pub fn voter_mut(&mut self) -> Option<&mut Voter> {
        match self {
            MetadataMember::Voter(v) => Some(v),
            MetadataMember::Observer(_) => None,
        }
    }

    /// The observer, when this node is a broker-only one.
    pub fn observer(&self) -> Option<&MetadataFollower> {
        match self {
            MetadataMember::Voter(_) => None,
            MetadataMember::Observer(o) => Some(o),
        }
    }

    /// The committed metadata image this node's broker follows.
    pub fn image(&self) -> &MetadataImage {
        match self {
            MetadataMember::Voter(v) => v.committed(),
            MetadataMember::Observer(o) => o.image(),
        }
    }

    /// The last entry applied to [`MetadataMember::image`].
    pub fn applied(&self) -> LogId {
        match self {
            MetadataMember::Voter(v) => v.applied(),
            MetadataMember::Observer(o) => o.applied(),
        }
    }

    /// Per registered broker, where the image says it was first unfenced since it
    /// registered: (incarnation, log index).
    pub fn unfenced_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        match self {
            MetadataMember::Voter(v) => v.unfenced_at(),
            MetadataMember::Observer(o) => o.unfenced_at(),
        }
    }

    /// The quorum leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            MetadataMember::Voter(v) => v.leader(),
            MetadataMember::Observer(o) => o.leader(),
        }
    }

    /// Whether the image has applied everything a leader announced committed.
    pub fn caught_up(&self) -> bool {
        match self {
            MetadataMember::Voter(v) => v.caught_up(),
            MetadataMember::Observer(o) => o.caught_up(),
        }
    }

    /// Whether this node is the active controller.
    pub fn is_active(&self) -> bool {
        self.voter().is_some_and(Voter::is_active)
    }

    /// Raft's timers (elections, heartbeats, an observer's fetches).
    pub fn tick(&mut self, now_ms: TimeMs, rng: &mut impl RngCore) {
        match self {
            MetadataMember::Voter(v) => v.tick(now_ms, rng),
            MetadataMember::Observer(o) => o.tick(now_ms, rng),
        }
    }

    pub fn receive(&mut self, now_ms: TimeMs, from: NodeId, msg: RaftMessage) {
        match self {
            MetadataMember::Voter(v) => v.receive(now_ms, from, msg),
            MetadataMember::Observer(o) => o.receive(now_ms, from, msg),
        }
    }

    /// A `Persist` effect this node asked for is on disk.
    pub fn persisted(&mut self, now_ms: TimeMs, done: Persisted) {
        match self {
            MetadataMember::Voter(v) => v.persisted(now_ms, done),
            MetadataMember::Observer(o) => o.persisted(now_ms, done),
        }
    }

    pub fn take_out(&mut self) -> Vec<VoterOut> {
        match self {
            MetadataMember::Voter(v) => v.take_out(),
            MetadataMember::Observer(o) => o.take_out(),
        }
    }
}

//! Who takes part in the quorum: the voters (KRaft's `controller.quorum.voters`), whose
//! majority elects leaders and commits entries, and the observers (brokers that follow
//! the metadata log without voting). The voters are fixed for the life of a node
//! (KIP-853's voter changes are not implemented yet); observers may be configured up
//! front or announce themselves ([`RaftMessage::Observe`](super::RaftMessage::Observe)).

use std::collections::BTreeSet;

use crate::types::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    voters: BTreeSet<NodeId>,
    observers: BTreeSet<NodeId>,
}

impl Membership {
    /// A quorum of `voters` followed by `observers`. A node in both lists is a voter.
    pub fn new(
        voters: impl IntoIterator<Item = NodeId>,
        observers: impl IntoIterator<Item = NodeId>,
    ) -> Membership {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        assert!(!voters.is_empty(), "a quorum needs at least one voter");
        let observers = observers
            .into_iter()
            .filter(|n| !voters.contains(n))
            .collect();
        Membership { voters, observers }
    }

    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.observers.contains(&node)
    }

    /// Adds `node` as an observer; `false` if it already takes part.
    pub(crate) fn add_observer(&mut self, node: NodeId) -> bool {
        !self.voters.contains(&node) && self.observers.insert(node)
    }

    /// How many voters make a majority.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Everyone but `me`, voters first, in id order.
    pub(crate) fn others(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.voters
            .iter()
            .chain(self.observers.iter())
            .copied()
            .filter(move |&n| n != me)
    }

    /// The voters other than `me`.
    pub(crate) fn other_voters(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().copied().filter(move |&n| n != me)
    }
}

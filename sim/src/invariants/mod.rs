//! The checkers: one invariant per file, each citing the rule it checks.
//!
//! A checker reads the history one observation at a time (after the shared [`Model`] has
//! applied it) and once more at the end of the run. A violation names the invariant,
//! the time and the records involved. Each checker has a test that feeds it a history
//! with exactly the violation it exists for.

mod acked_durability;
mod admin_outcomes;
mod agreement;
mod broker_image_unfenced;
mod controller_liveness;
mod election_safety;
mod group_commits_monotonic;
mod group_exclusive_ownership;
mod group_liveness;
mod group_no_gaps;
mod group_sees_every_record;
mod idempotence;
mod leader_completeness;
mod liveness;
mod metadata_monotonic;
mod metadata_propagation;
pub mod model;
mod offsets;
mod partition_leadership;
mod read_committed;
mod state_machine_safety;

use std::fmt;

use eddy_core::TimeMs;

pub use acked_durability::AckedDurability;
pub use admin_outcomes::AdminOutcomes;
pub use agreement::ReplicaAgreement;
pub use broker_image_unfenced::BrokerImageUnfenced;
pub use controller_liveness::ControllerLiveness;
pub use election_safety::ElectionSafety;
pub use group_commits_monotonic::GroupCommitsMonotonic;
pub use group_exclusive_ownership::GroupExclusiveOwnership;
pub use group_liveness::GroupLiveness;
pub use group_no_gaps::GroupNoGaps;
pub use group_sees_every_record::GroupSeesEveryRecord;
pub use idempotence::IdempotentProducers;
pub use leader_completeness::LeaderCompleteness;
pub use liveness::Liveness;
pub use metadata_monotonic::MetadataMonotonic;
pub use metadata_propagation::MetadataPropagation;
pub use model::Model;
pub use offsets::DenseStableOffsets;
pub use partition_leadership::PartitionLeadership;
pub use read_committed::ReadCommitted;
pub use state_machine_safety::StateMachineSafety;

use crate::history::Observation;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name, as `--checkers` and scenario files spell it.
    pub checker: &'static str,
    pub at_ms: TimeMs,
    /// What happened, with the records involved.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] at {} ms: {}",
            self.checker, self.at_ms, self.message
        )
    }
}

/// Settings the checkers need from the scenario and broker configuration.
#[derive(Clone, Debug)]
pub struct CheckContext {
    pub min_insync_replicas: u16,
    pub sync_before_ack: bool,
    /// Whether acks=all writes may be lost when every holder crashed before syncing.
    pub allow_unsynced_loss: bool,
    pub readers: u32,
    pub liveness_bound_ms: u64,
    /// Partition names, indexed by `Part`.
    pub partition_names: Vec<String>,
    /// Whether the controller's liveness is checked: always in a run (every run has the
    /// metadata quorum); off in the tests of other checkers, whose histories have no
    /// controller.
    pub quorum: bool,
    /// See `Expect::max_controller_elections`.
    pub max_controller_elections: Option<u32>,
    /// See `Expect::isrs_complete_at_end`.
    pub isrs_complete_at_end: bool,
    /// How many brokers the run has (ids 1..=this).
    pub brokers: u32,
    /// The consumer groups, indexed by the group number in observations.
    pub groups: Vec<GroupCheck>,
}

/// What the group checkers know of one group.
#[derive(Clone, Debug)]
pub struct GroupCheck {
    pub name: String,
    /// The partitions of the topic it subscribes to.
    pub parts: Vec<u32>,
    /// The `__consumer_offsets` partition that holds the group.
    pub offsets_part: Option<u32>,
}

impl CheckContext {
    pub(crate) fn name(&self, part: u32) -> &str {
        self.partition_names
            .get(part as usize)
            .map_or("?", String::as_str)
    }
}

/// Expected losses found: writes the configuration did not promise to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossReport {
    /// acks=1 writes lost because their leader lost them before any follower had them.
    pub acks1_unreplicated: u64,
    /// Committed writes lost because every copy crashed before it was synced.
    pub unsynced_all_crashed: u64,
}

pub trait Checker {
    fn name(&self) -> &'static str;
    /// The rule, with its source (a Kafka doc section, a KIP, a paper).
    fn rule(&self) -> &'static str;
    fn observe(&mut self, obs: &Observation, model: &Model, out: &mut Vec<Violation>);
    fn finish(&mut self, end_ms: TimeMs, model: &Model, out: &mut Vec<Violation>);
    fn losses(&self) -> LossReport {
        LossReport::default()
    }
}

/// The names of every checker, in the order they run.
pub const ALL: [&str; 19] = [
    "acked-durability",
    "dense-stable-offsets",
    "replica-agreement",
    "idempotent-producers",
    "read-committed",
    "liveness",
    "raft-election-safety",
    "raft-state-machine-safety",
    "raft-leader-completeness",
    "one-leader-per-epoch",
    "metadata-monotonic",
    "broker-image-unfenced",
    "admin-outcomes",
    "controller-liveness",
    "group-exclusive-ownership",
    "group-commits-monotonic",
    "group-no-gaps-after-resume",
    "group-liveness",
    "group-sees-every-record",
];

/// The model and every checker, fed together.
pub struct CheckerSet {
    model: Model,
    checkers: Vec<Box<dyn Checker>>,
    violations: Vec<Violation>,
}

impl CheckerSet {
    /// Every checker.
    pub fn all(ctx: &CheckContext) -> CheckerSet {
        CheckerSet {
            model: Model::new(ctx.sync_before_ack),
            checkers: vec![
                Box::new(AckedDurability::new(ctx.clone())),
                Box::new(DenseStableOffsets::new(ctx.clone())),
                Box::new(ReplicaAgreement::new(ctx.clone())),
                Box::new(IdempotentProducers::new(ctx.clone())),
                Box::new(ReadCommitted::new(ctx.clone())),
                Box::new(Liveness::new(ctx.clone())),
                Box::new(ElectionSafety::new()),
                Box::new(StateMachineSafety::new()),
                Box::new(LeaderCompleteness::new()),
                Box::new(PartitionLeadership::new(ctx.clone())),
                Box::new(MetadataMonotonic::new(ctx.clone())),
                Box::new(MetadataPropagation::new(ctx.clone())),
                Box::new(BrokerImageUnfenced::new()),
                Box::new(AdminOutcomes::new()),
                Box::new(ControllerLiveness::new(ctx.clone())),
                Box::new(GroupExclusiveOwnership::new(ctx.clone())),
                Box::new(GroupCommitsMonotonic::new(ctx.clone())),
                Box::new(GroupNoGaps::new(ctx.clone())),
                Box::new(GroupLiveness::new(ctx.clone())),
                Box::new(GroupSeesEveryRecord::new(ctx.clone())),
            ],
            violations: Vec::new(),
        }
    }

    /// Only the checker named `name` (with the model), for tests and `--checkers`.
    pub fn only(ctx: &CheckContext, name: &str) -> CheckerSet {
        let mut set = CheckerSet::all(ctx);
        set.checkers.retain(|c| c.name() == name);
        assert_eq!(set.checkers.len(), 1, "no checker named {name}");
        set
    }

    /// The checkers named in `names` (with the model): for a harness whose history holds
    /// only some kinds of observation (the madsim suite feeds what its clients saw and
    /// what the brokers hold at the end), so checkers that need the others stay out.
    pub fn named(ctx: &CheckContext, names: &[&str]) -> CheckerSet {
        let mut set = CheckerSet::all(ctx);
        set.checkers.retain(|c| names.contains(&c.name()));
        assert_eq!(
            set.checkers.len(),
            names.len(),
            "unknown checker among {names:?}"
        );
        set
    }

    pub fn observe(&mut self, obs: &Observation) {
        self.model.apply(obs);
        for c in &mut self.checkers {
            c.observe(obs, &self.model, &mut self.violations);
        }
    }

    pub fn finish(&mut self, end_ms: TimeMs) {
        for c in &mut self.checkers {
            c.finish(end_ms, &self.model, &mut self.violations);
        }
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub fn losses(&self) -> LossReport {
        let mut total = LossReport::default();
        for c in &self.checkers {
            let l = c.losses();
            total.acks1_unreplicated += l.acks1_unreplicated;
            total.unsynced_all_crashed += l.unsynced_all_crashed;
        }
        total
    }

    /// Each checker's name and rule, for `eddy sim --list-checkers` and reports.
    pub fn rules(&self) -> Vec<(&'static str, &'static str)> {
        self.checkers.iter().map(|c| (c.name(), c.rule())).collect()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Small builders for hand-written histories.
    use super::CheckContext;
    use crate::history::{BatchId, BatchRef};
    use eddy_core::{NodeId, Offset};

    pub(crate) fn ctx() -> CheckContext {
        CheckContext {
            min_insync_replicas: 2,
            sync_before_ack: false,
            allow_unsynced_loss: true,
            readers: 1,
            liveness_bound_ms: 1_000,
            partition_names: vec!["t-0".into()],
            quorum: false,
            max_controller_elections: None,
            isrs_complete_at_end: false,
            brokers: 0,
            groups: vec![super::GroupCheck {
                name: "g".into(),
                parts: vec![0],
                offsets_part: Some(1),
            }],
        }
    }

    pub(crate) fn b(base: u64, last: u64, producer: u32, number: u64) -> BatchRef {
        BatchRef {
            base_offset: Offset(base),
            last_offset: Offset(last),
            id: BatchId { producer, number },
            epoch: 0,
        }
    }

    pub(crate) const N1: NodeId = NodeId(1);
    pub(crate) const N2: NodeId = NodeId(2);
    pub(crate) const N3: NodeId = NodeId(3);
}

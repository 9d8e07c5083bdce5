//! Eddy's seeded simulator: a deterministic world of brokers running the core, the
//! metadata quorum's controller voters beside them, producers and readers, a network, disks and faults, with
//! checkers that name the invariant a run broke.
//!
//! One u64 seed decides everything in a run; the same seed always gives the same trace
//! hash. A scenario (`scenarios/*.toml`) says what the world looks like.

mod consumer;
mod disk;
pub mod history;
pub mod invariants;
mod network;
mod raft_disk;
pub mod scenario;
pub mod trace;
#[cfg(test)]
mod voter_tests;
mod workload;
mod world;

use std::io::Write;

pub use invariants::{LossReport, Violation};
pub use scenario::Scenario;
pub use world::{SetupError, Stats};

/// What one seed did.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub sim_time_ms: u64,
    pub trace_hash: u64,
    pub violations: Vec<Violation>,
    pub losses: LossReport,
    pub stats: Stats,
    /// With the quorum: each crash of the active controller and how the cluster got
    /// over it.
    pub failovers: Vec<Failover>,
    /// Each member that joined a group of five stable members, and how long until every
    /// member held its assignment of the generation that included it.
    pub rebalances: Vec<Rebalance>,
}

/// One measured rebalance, in simulated time from the joiner's first JoinGroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebalance {
    pub group_size_before: u32,
    pub joined_at_ms: u64,
    /// `None` when the joiner stopped before the rebalance completed.
    pub completed_after_ms: Option<u64>,
}

/// One crash of the active controller, measured in simulated time from the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    pub crashed_at_ms: u64,
    /// Until another voter became the active controller.
    pub elected_after_ms: Option<u64>,
    /// Until the committed metadata named no partition led by the crashed broker (only
    /// when it led some at the crash).
    pub leadership_moved_after_ms: Option<u64>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one seed of a scenario. With `trace`, every event is written there too.
pub fn run<'a>(
    scenario: &'a Scenario,
    seed: u64,
    trace: Option<&'a mut dyn Write>,
) -> Result<RunReport, SetupError> {
    Ok(world::World::new(scenario, seed, trace)?.run())
}

/// A fetch response's batches as a simulated client sees them: the world resolved every
/// reference to the broker's disk before the response left.
pub(crate) fn fetched_bytes(batches: Vec<eddy_core::log::FetchedBatch>) -> Vec<bytes::Bytes> {
    batches
        .into_iter()
        .map(|b| match b {
            eddy_core::log::FetchedBatch::Bytes(b) => b,
            eddy_core::log::FetchedBatch::Stored { base_offset, .. } => {
                panic!("a fetch response left a broker with an unresolved batch at {base_offset}")
            }
        })
        .collect()
}

//! The simulated network: per-message delay, loss, duplication and reordering drawn from
//! the run's RNG, and cuts between endpoints that start and heal. A cut is checked when
//! a message would arrive, so messages in flight when a partition starts are lost too.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::scenario::NetworkSpec;

/// Who sits at the end of a link: a broker (and the controller voter beside it), or a
/// client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Endpoint {
    Broker(u32),
    Producer(u32),
    Reader(u32),
    /// A consumer-group member (its slot).
    Member(u32),
    /// The admin client that creates the scenario's topics.
    Admin,
}

#[derive(Debug)]
pub(crate) struct Network {
    spec: NetworkSpec,
    /// Whether loss, duplication and reordering are on (they stop when faults heal).
    faulty: bool,
    /// Directed cuts, each with the ids of the faults that made it (a link can be cut by
    /// two faults at once; it heals when both do).
    cuts: BTreeMap<(Endpoint, Endpoint), Vec<u64>>,
}

impl Network {
    pub(crate) fn new(spec: NetworkSpec) -> Network {
        Network {
            spec,
            faulty: true,
            cuts: BTreeMap::new(),
        }
    }

    /// When copies of a message sent now arrive: none if lost, two if duplicated.
    pub(crate) fn plan(&self, rng: &mut ChaCha8Rng) -> Vec<u64> {
        let [lo, hi] = self.spec.delay_ms;
        let delay = |rng: &mut ChaCha8Rng| rng.random_range(lo..=hi.max(lo));
        let mut out = Vec::with_capacity(1);
        if self.faulty && self.spec.loss > 0.0 && rng.random_bool(self.spec.loss) {
            return out;
        }
        let mut first = delay(rng);
        if self.faulty && self.spec.reorder > 0.0 && rng.random_bool(self.spec.reorder) {
            first += rng.random_range(1..=10 * hi.max(1));
        }
        out.push(first);
        if self.faulty && self.spec.duplicate > 0.0 && rng.random_bool(self.spec.duplicate) {
            out.push(delay(rng) + rng.random_range(0..=hi.max(1)));
        }
        out
    }

    pub(crate) fn is_cut(&self, from: Endpoint, to: Endpoint) -> bool {
        self.cuts.contains_key(&(from, to))
    }

    pub(crate) fn cut(&mut self, fault: u64, from: Endpoint, to: Endpoint) {
        self.cuts.entry((from, to)).or_default().push(fault);
    }

    pub(crate) fn heal(&mut self, fault: u64) {
        self.cuts.retain(|_, faults| {
            faults.retain(|&f| f != fault);
            !faults.is_empty()
        });
    }

    pub(crate) fn heal_all(&mut self) {
        self.cuts.clear();
        self.faulty = false;
    }
}

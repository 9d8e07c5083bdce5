//! A broker acts on its own metadata image only from its unfencing on (KIP-631). A broker
//! that registers a new incarnation (it restarted, and its image replayed from its disk
//! may be far behind) starts fenced; the controller unfences it only once the metadata
//! offset its heartbeats report has reached the entry that registered it (KRaft's
//! `currentMetadataOffset >= registerBrokerRecordOffset`), and KRaft's broker installs
//! its metadata publishers only after the controller said it caught up. So every image
//! a broker gives its replicas (leaders to follow, leaderships to take) holds this
//! incarnation's unfencing: nothing it acts on comes from before its restart.
//!
//! The check: each time a broker gives its node its image (`BrokerMetadata`), that
//! image's log index is at or after the entry that first unfenced the broker's current
//! incarnation (`BrokerUnfenced`, the lowest index any image reported).

use std::collections::BTreeMap;

use eddy_core::{NodeId, TimeMs};

use super::{Checker, Model, Violation};
use crate::history::Observation;

#[derive(Default)]
pub struct BrokerImageUnfenced {
    /// (broker, incarnation) → the entry that first unfenced it.
    unfenced_at: BTreeMap<(NodeId, u64), u64>,
}

impl BrokerImageUnfenced {
    pub fn new() -> BrokerImageUnfenced {
        BrokerImageUnfenced::default()
    }
}

impl Checker for BrokerImageUnfenced {
    fn name(&self) -> &'static str {
        "broker-image-unfenced"
    }

    fn rule(&self) -> &'static str {
        "a broker gives its replicas only images that hold its current incarnation's unfencing (KIP-631: unfenced once its metadata offset reaches its registration; KRaft's broker publishes its image only after the controller says it caught up)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, out: &mut Vec<Violation>) {
        match obs {
            Observation::BrokerUnfenced {
                node,
                incarnation,
                index,
                ..
            } => {
                let known = self
                    .unfenced_at
                    .entry((*node, *incarnation))
                    .or_insert(*index);
                *known = (*known).min(*index);
            }
            Observation::BrokerMetadata {
                at,
                node,
                incarnation,
                index,
            } => {
                let unfenced = self.unfenced_at.get(&(*node, *incarnation)).copied();
                if unfenced.is_none_or(|u| *index < u) {
                    let when = unfenced.map_or("it was never unfenced".to_string(), |u| {
                        format!("it was first unfenced at {u}")
                    });
                    out.push(Violation {
                        checker: self.name(),
                        at_ms: *at,
                        message: format!(
                            "{node} (incarnation {incarnation}) gave its replicas a metadata image at log index {index}, but {when}"
                        ),
                    });
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end_ms: TimeMs, _model: &Model, _out: &mut Vec<Violation>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::{ctx, N1};
    use crate::invariants::CheckerSet;

    fn image(at: u64, incarnation: u64, index: u64) -> Observation {
        Observation::BrokerMetadata {
            at,
            node: N1,
            incarnation,
            index,
        }
    }

    fn unfenced(at: u64, incarnation: u64, index: u64) -> Observation {
        Observation::BrokerUnfenced {
            at,
            node: N1,
            incarnation,
            index,
        }
    }

    #[test]
    fn images_from_the_unfencing_on_pass() {
        let mut set = CheckerSet::only(&ctx(), "broker-image-unfenced");
        set.observe(&unfenced(1, 0, 12));
        // A snapshot's upper bound reported later does not raise the bar.
        set.observe(&unfenced(2, 0, 16));
        set.observe(&image(3, 0, 12));
        set.observe(&image(4, 0, 20));
        assert!(set.violations().is_empty(), "{:?}", set.violations());
    }

    /// What the rule exists for: a restarted broker (new incarnation) acting on the image
    /// it replayed from its disk, from before its unfencing.
    #[test]
    fn a_restarted_broker_acting_on_an_image_older_than_its_unfencing_fails() {
        let mut set = CheckerSet::only(&ctx(), "broker-image-unfenced");
        set.observe(&unfenced(1, 0, 3));
        set.observe(&image(2, 0, 5));
        set.observe(&unfenced(3, 1, 14));
        set.observe(&image(4, 1, 11));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("first unfenced at 14"));
    }

    #[test]
    fn an_image_given_before_any_unfencing_fails() {
        let mut set = CheckerSet::only(&ctx(), "broker-image-unfenced");
        set.observe(&image(1, 2, 40));
        assert_eq!(set.violations().len(), 1, "{:?}", set.violations());
        assert!(set.violations()[0].message.contains("never unfenced"));
    }
}

//! An admin request answered ok took effect, and stays in effect. Kafka's CreateTopics
//! answers only once the topic's records committed (KIP-500/KIP-631: the controller
//! replies after the metadata-log entry commits), and a committed topic is not lost
//! (Raft: committed entries survive). So a topic whose creation was answered ok, or
//! TOPIC_ALREADY_EXISTS, is in the active controller's committed image at the end (no
//! scenario deletes topics).
//!
//! An attempt whose outcome is unknown (no answer in time) promises nothing: the topic
//! may exist or not, and neither is a violation.

use std::collections::BTreeSet;

use eddy_core::{ErrorCode, TimeMs};

use super::{Checker, Model, Violation};
use crate::history::{AdminOutcome, Observation};

#[derive(Default)]
pub struct AdminOutcomes {
    /// Topics whose creation was answered ok or TOPIC_ALREADY_EXISTS, with when.
    confirmed: Vec<(TimeMs, String)>,
    /// The committed topics at the end, if there was an active controller.
    at_end: Option<BTreeSet<String>>,
}

impl AdminOutcomes {
    pub fn new() -> AdminOutcomes {
        AdminOutcomes::default()
    }
}

impl Checker for AdminOutcomes {
    fn name(&self) -> &'static str {
        "admin-outcomes"
    }

    fn rule(&self) -> &'static str {
        "a topic whose CreateTopics was answered ok (or TOPIC_ALREADY_EXISTS) is in the committed metadata at the end; an unknown outcome promises nothing (KIP-631: the controller answers once the records commit)"
    }

    fn observe(&mut self, obs: &Observation, _model: &Model, _out: &mut Vec<Violation>) {
        match obs {
            Observation::Admin {
                at,
                topic,
                outcome: AdminOutcome::Ok | AdminOutcome::Failed(ErrorCode::TopicAlreadyExists),
            } => self.confirmed.push((*at, topic.clone())),
            Observation::TopicsAtEnd { topics, .. } => {
                self.at_end = topics.as_ref().map(|t| t.iter().cloned().collect());
            }
            _ => {}
        }
    }

    fn finish(&mut self, end_ms: TimeMs, _model: &Model, out: &mut Vec<Violation>) {
        let Some(at_end) = &self.at_end else {
            // No active controller at the end: controller-liveness reports that.
            return;
        };
        for (at, topic) in &self.confirmed {
            if !at_end.contains(topic) {
                out.push(Violation {
                    checker: self.name(),
                    at_ms: end_ms,
                    message: format!(
                        "CreateTopics of {topic} was answered as done at {at} ms, but the committed metadata at the end has no such topic"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_support::ctx;
    use crate::invariants::CheckerSet;

    fn admin(at: u64, topic: &str, outcome: AdminOutcome) -> Observation {
        Observation::Admin {
            at,
            topic: topic.to_string(),
            outcome,
        }
    }

    fn at_end(topics: &[&str]) -> Observation {
        Observation::TopicsAtEnd {
            at: 9_000,
            topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        }
    }

    fn violations(history: &[Observation]) -> Vec<Violation> {
        let mut set = CheckerSet::only(&ctx(), "admin-outcomes");
        for o in history {
            set.observe(o);
        }
        set.finish(10_000);
        set.violations().to_vec()
    }

    #[test]
    fn a_creation_answered_ok_whose_topic_is_missing_fails() {
        let v = violations(&[admin(1, "t", AdminOutcome::Ok), at_end(&[])]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("CreateTopics of t"));
        let v = violations(&[
            admin(1, "t", AdminOutcome::Failed(ErrorCode::TopicAlreadyExists)),
            at_end(&["u"]),
        ]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn unknown_or_failed_outcomes_promise_nothing() {
        let history = [
            admin(1, "t", AdminOutcome::Unknown),
            admin(2, "u", AdminOutcome::Unknown),
            admin(3, "u", AdminOutcome::Failed(ErrorCode::NotController)),
            admin(4, "w", AdminOutcome::Ok),
            // t was created by its unknown attempt, u was not: both are fine.
            at_end(&["t", "w"]),
        ];
        assert!(violations(&history).is_empty());
    }
}

//! The admin client and the brokers' side of admin requests, over the simulated network.
//!
//! The client sends each scenario topic's CreateTopics, once its time has come, to one
//! broker (in turn). That broker takes it to the active controller as `eddy broker` does
//! (`net/src/broker/quorum.rs`, `Quorum::admin`): decided at once if its own voter is the
//! active controller, else forwarded to the leader it knows of, which decides it only if
//! it is active (a forward is never answered: the asking broker judges by its image). The
//! broker answers once its own committed image holds the topic, TOPIC_ALREADY_EXISTS if
//! it held it already, NOT_CONTROLLER if it knows no controller to ask. Delays, losses and
//! partitions apply to every hop; the client gives up on an attempt after
//! [`ADMIN_REQUEST_TIMEOUT_MS`] and tries again at the next broker. Every outcome goes
//! into the history: ok, failed (with the error), or unknown (no answer in time — the
//! topic may or may not have been created).

use super::*;

use eddy_core::controller::{ControllerInput, ControllerReply, MetadataMember};

use crate::history::AdminOutcome;

/// How often the admin client checks for topics still to create.
pub(super) const ADMIN_TICK_MS: u64 = 200;
/// How long the admin client waits for an answer before it calls the attempt's outcome
/// unknown and tries again elsewhere. Kafka's admin client waits 30 s
/// (`request.timeout.ms`); the scenarios' liveness bounds want retries sooner.
const ADMIN_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// The admin client's state.
#[derive(Debug, Default)]
pub(super) struct AdminClient {
    next_id: u64,
    /// The broker the next attempt goes to.
    next_broker: u32,
    /// Per topic: the attempt in flight (its id) and when it was sent.
    in_flight: BTreeMap<String, (u64, TimeMs)>,
    /// Topics the client knows exist (answered ok or TOPIC_ALREADY_EXISTS).
    done: BTreeSet<String>,
}

/// A broker's admin request waiting for its image to hold the topic.
#[derive(Debug)]
pub(super) struct AdminWaiting {
    broker: u32,
    incarnation: u64,
    id: u64,
    topic: String,
}

impl World<'_> {
    /// The admin client's timer: times out attempts, and sends one for each due topic
    /// not known to exist and with no attempt in flight.
    pub(super) fn admin_tick(&mut self) {
        let due: Vec<crate::scenario::TopicSpec> = self
            .scenario
            .topics
            .iter()
            .filter(|t| t.create_at_ms <= self.now && !self.admin.done.contains(&t.name))
            .cloned()
            .collect();
        for t in &due {
            if let Some(&(_, sent_at)) = self.admin.in_flight.get(&t.name) {
                if self.now.saturating_sub(sent_at) < ADMIN_REQUEST_TIMEOUT_MS {
                    continue;
                }
                self.admin.in_flight.remove(&t.name);
                self.observe_admin(&t.name, AdminOutcome::Unknown);
            }
            self.admin.next_id += 1;
            let id = self.admin.next_id;
            self.admin.next_broker = self.admin.next_broker % self.scenario.brokers + 1;
            let to = self.admin.next_broker;
            self.admin.in_flight.insert(t.name.clone(), (id, self.now));
            let input = ControllerInput::CreateTopic {
                name: t.name.clone(),
                num_partitions: Some(t.partitions),
                replication_factor: Some(t.replication_factor as u16),
                configs: Vec::new(),
            };
            self.send(
                Endpoint::Admin,
                Endpoint::Broker(to),
                Payload::AdminRequest { id, input },
            );
        }
        if self.admin.done.len() < self.scenario.topics.len() {
            self.schedule(self.now + ADMIN_TICK_MS, Event::AdminTick);
        }
    }

    fn observe_admin(&mut self, topic: &str, outcome: AdminOutcome) {
        self.observe(Observation::Admin {
            at: self.now,
            topic: topic.to_string(),
            outcome,
        });
    }

    /// A broker's answer reached the admin client.
    pub(super) fn admin_response(&mut self, id: u64, result: Result<(), ErrorCode>) {
        let Some(topic) = self
            .admin
            .in_flight
            .iter()
            .find(|(_, &(attempt, _))| attempt == id)
            .map(|(topic, _)| topic.clone())
        else {
            // An answer to an attempt already given up on (its outcome stays unknown),
            // or a duplicate.
            return;
        };
        self.admin.in_flight.remove(&topic);
        match result {
            Ok(()) => {
                self.observe_admin(&topic, AdminOutcome::Ok);
                self.admin.done.insert(topic);
            }
            Err(code) => {
                self.observe_admin(&topic, AdminOutcome::Failed(code));
                if code == ErrorCode::TopicAlreadyExists {
                    self.admin.done.insert(topic);
                }
            }
        }
    }

    /// An admin request reached broker index `b`: from the client (`from` is
    /// `Endpoint::Admin`), or forwarded by another broker.
    pub(super) fn admin_request(
        &mut self,
        b: usize,
        from: Endpoint,
        id: u64,
        input: ControllerInput,
    ) {
        let ControllerInput::CreateTopic { name, .. } = &input else {
            unreachable!("the simulated admin client only creates topics: {input:?}")
        };
        let topic = name.clone();
        let me = self.brokers[b].id.0;
        let active = self.brokers[b]
            .member
            .as_ref()
            .is_some_and(MetadataMember::is_active);
        if let Endpoint::Broker(forwarder) = from {
            // A forward: decided only by the active controller; a refusal goes back to
            // the forwarding broker, a creation it sees in its own image.
            if active {
                if let Some(code) = self.decide_admin(b, input) {
                    self.send(
                        Endpoint::Broker(me),
                        Endpoint::Broker(forwarder),
                        Payload::AdminResponse {
                            id,
                            result: Err(code),
                        },
                    );
                }
            }
            return;
        }
        let exists = self.image_of(b).is_some_and(|i| i.topic(&topic).is_some());
        if exists {
            let result = Err(ErrorCode::TopicAlreadyExists);
            self.send(
                Endpoint::Broker(me),
                Endpoint::Admin,
                Payload::AdminResponse { id, result },
            );
            return;
        }
        if active {
            if let Some(code) = self.decide_admin(b, input) {
                self.send(
                    Endpoint::Broker(me),
                    Endpoint::Admin,
                    Payload::AdminResponse {
                        id,
                        result: Err(code),
                    },
                );
                return;
            }
        } else {
            let leader = self.brokers[b]
                .member
                .as_ref()
                .and_then(MetadataMember::leader);
            match leader.filter(|l| l.0 != me) {
                Some(leader) => self.send(
                    Endpoint::Broker(me),
                    Endpoint::Broker(leader.0),
                    Payload::AdminRequest { id, input },
                ),
                None => {
                    let result = Err(ErrorCode::NotController);
                    self.send(
                        Endpoint::Broker(me),
                        Endpoint::Admin,
                        Payload::AdminResponse { id, result },
                    );
                    return;
                }
            }
        }
        let incarnation = self.brokers[b].incarnation;
        self.admin_waiting.push(AdminWaiting {
            broker: me,
            incarnation,
            id,
            topic,
        });
        // Its image may hold the topic already (decided and committed at once).
        self.answer_admin(b);
    }

    /// Has the active controller on broker index `b` decide `input`: the error if it
    /// refused it outright. TOPIC_ALREADY_EXISTS for a topic only pending is no refusal
    /// to pass on: an earlier attempt's creation is on its way to commit.
    fn decide_admin(&mut self, b: usize, input: ControllerInput) -> Option<ErrorCode> {
        let mut refused = Vec::new();
        self.with_voter(b, |v, now, _| {
            refused = v.admin_decide(now, input).unwrap_or_default();
        });
        let pending = |topic: &str| {
            self.brokers[b]
                .member
                .as_ref()
                .and_then(MetadataMember::voter)
                .and_then(Voter::pending)
                .is_some_and(|p| p.topic(topic).is_some())
        };
        refused.into_iter().find_map(|reply| match reply {
            ControllerReply::CreateTopic {
                result: Err(ErrorCode::TopicAlreadyExists),
                name,
            } if pending(&name) => None,
            ControllerReply::CreateTopic {
                result: Err(code), ..
            } => Some(code),
            _ => None,
        })
    }

    /// The active controller refused a request broker index `b` forwarded: pass the
    /// refusal on to the admin client.
    pub(super) fn admin_refused(&mut self, b: usize, id: u64, result: Result<(), ErrorCode>) {
        let me = self.brokers[b].id.0;
        let before = self.admin_waiting.len();
        self.admin_waiting.retain(|w| w.broker != me || w.id != id);
        if self.admin_waiting.len() < before {
            self.send(
                Endpoint::Broker(me),
                Endpoint::Admin,
                Payload::AdminResponse { id, result },
            );
        }
    }

    /// Answers the admin requests waiting on broker index `b` whose topic its committed
    /// image now holds; forgets those of a previous incarnation.
    pub(super) fn answer_admin(&mut self, b: usize) {
        let me = self.brokers[b].id.0;
        let incarnation = self.brokers[b].incarnation;
        self.admin_waiting
            .retain(|w| w.broker != me || w.incarnation == incarnation);
        let Some(image) = self.image_of(b) else {
            return;
        };
        let answered: Vec<u64> = self
            .admin_waiting
            .iter()
            .filter(|w| w.broker == me && image.topic(&w.topic).is_some())
            .map(|w| w.id)
            .collect();
        self.admin_waiting
            .retain(|w| w.broker != me || !answered.contains(&w.id));
        for id in answered {
            self.send(
                Endpoint::Broker(me),
                Endpoint::Admin,
                Payload::AdminResponse { id, result: Ok(()) },
            );
        }
    }
}

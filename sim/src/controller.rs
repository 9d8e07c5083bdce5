//! The stand-in controller: a deterministic, deliberately small replacement for the
//! metadata quorum from before issue 3 (it speaks the core's
//! `ControllerRequest`/`ControllerMessage`). The simulator now runs the real quorum
//! (`world/voters.rs` driving `eddy_core::controller::voter`) by default; this remains only for scenarios that opt
//! into it with `controller = "stand-in"` (the regression seeds found under it replay
//! with it too).
//!
//! It keeps each partition's replicas, leader, leader epoch, ISR and partition epoch. A
//! broker that misses heartbeats for `broker.session.timeout.ms`, or comes back with a
//! new incarnation (it restarted and may have lost unsynced data), is fenced: removed
//! from every ISR where it is not the last member, and replaced as leader by the first
//! live replica in the ISR. Leaders change the ISR through AlterPartition, accepted only
//! with the current leader and partition epochs (KIP-497). Unclean election is off.

use std::collections::BTreeMap;

use eddy_core::message::{ControllerMessage, ControllerRequest};
use eddy_core::metadata::{AlterPartition, PartitionState};
use eddy_core::{Epoch, ErrorCode, NodeId, TimeMs, TopicPartition};

#[derive(Clone, Debug)]
struct Broker {
    incarnation: Option<u64>,
    last_heartbeat_ms: TimeMs,
    fenced: bool,
}

#[derive(Debug)]
pub(crate) struct StandInController {
    session_timeout_ms: u64,
    brokers: BTreeMap<NodeId, Broker>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
}

/// Messages the controller wants delivered.
pub(crate) type Outbox = Vec<(NodeId, ControllerMessage)>;

impl StandInController {
    /// A controller for `brokers` (all considered alive at time 0) and `topics` (name,
    /// partitions, replication factor), with replicas spread round-robin so leaders are
    /// balanced.
    pub(crate) fn new(
        session_timeout_ms: u64,
        brokers: &[NodeId],
        topics: &[(String, u32, u32)],
    ) -> StandInController {
        let mut partitions = BTreeMap::new();
        let n = brokers.len();
        let mut next = 0usize;
        for (name, count, rf) in topics {
            for p in 0..*count {
                let replicas: Vec<NodeId> =
                    (0..*rf as usize).map(|i| brokers[(next + i) % n]).collect();
                next += 1;
                let state = PartitionState {
                    leader: replicas.first().copied(),
                    leader_incarnation: replicas.first().map(|_| 0),
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: Epoch(0),
                    partition_epoch: 0,
                };
                partitions.insert(TopicPartition::new(name.clone(), p), state);
            }
        }
        let brokers = brokers
            .iter()
            .map(|&b| {
                let broker = Broker {
                    incarnation: Some(0),
                    last_heartbeat_ms: 0,
                    fenced: false,
                };
                (b, broker)
            })
            .collect();
        StandInController {
            session_timeout_ms,
            brokers,
            partitions,
        }
    }

    pub(crate) fn partitions(&self) -> &BTreeMap<TopicPartition, PartitionState> {
        &self.partitions
    }

    pub(crate) fn handle(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        req: ControllerRequest,
    ) -> Outbox {
        let mut out = Vec::new();
        match req {
            ControllerRequest::Register {
                broker,
                incarnation,
                ..
            } => {
                // The stand-in registers a broker as it takes its heartbeat.
                let heartbeat = ControllerRequest::Heartbeat {
                    broker,
                    incarnation,
                };
                let mut out = self.handle(now_ms, from, heartbeat);
                out.push((
                    broker,
                    ControllerMessage::RegistrationResponse {
                        incarnation,
                        result: Ok(()),
                    },
                ));
                return out;
            }
            ControllerRequest::Heartbeat {
                broker,
                incarnation,
            } => {
                let Some(b) = self.brokers.get_mut(&broker) else {
                    return out;
                };
                let restarted = b.incarnation.is_some_and(|i| i != incarnation);
                b.incarnation = Some(incarnation);
                b.last_heartbeat_ms = now_ms;
                if restarted && !b.fenced {
                    // It lost its memory: it is no longer a valid ISR member.
                    self.fence(broker, &mut out);
                }
                let b = self.brokers.get_mut(&broker).expect("present");
                if b.fenced {
                    b.fenced = false;
                    self.elect_offline(broker, &mut out);
                }
                let states = self.states_of(broker);
                out.push((broker, ControllerMessage::PartitionStates(states)));
            }
            ControllerRequest::AlterPartition(req) => {
                let result = self.alter_partition(&req);
                if let Ok(state) = &result {
                    self.notify(&req.partition, state.clone(), &mut out);
                }
                out.push((
                    from,
                    ControllerMessage::AlterPartitionResponse {
                        partition: req.partition.clone(),
                        request: req,
                        result,
                    },
                ));
            }
        }
        out
    }

    /// Fences brokers whose session expired.
    pub(crate) fn tick(&mut self, now_ms: TimeMs) -> Outbox {
        let mut out = Vec::new();
        let expired: Vec<NodeId> = self
            .brokers
            .iter()
            .filter(|(_, b)| {
                !b.fenced && now_ms.saturating_sub(b.last_heartbeat_ms) > self.session_timeout_ms
            })
            .map(|(&id, _)| id)
            .collect();
        for broker in expired {
            self.fence(broker, &mut out);
        }
        out
    }

    fn incarnation_of(&self, broker: Option<NodeId>) -> Option<u64> {
        broker
            .and_then(|b| self.brokers.get(&b))
            .and_then(|b| b.incarnation)
    }

    fn is_live(&self, broker: NodeId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    fn fence(&mut self, broker: NodeId, out: &mut Outbox) {
        if let Some(b) = self.brokers.get_mut(&broker) {
            b.fenced = true;
        }
        let tps: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.replicas.contains(&broker))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            let mut state = self.partitions[&tp].clone();
            let mut changed = false;
            if state.isr.len() > 1 && state.isr.contains(&broker) {
                state.isr.retain(|&r| r != broker);
                changed = true;
            }
            if state.leader == Some(broker) {
                state.leader = state
                    .isr
                    .iter()
                    .copied()
                    .find(|&r| r != broker && self.is_live(r));
                state.leader_incarnation = self.incarnation_of(state.leader);
                state.leader_epoch = Epoch(state.leader_epoch.0 + 1);
                changed = true;
            }
            if changed {
                state.partition_epoch += 1;
                self.notify(&tp, state, out);
            }
        }
    }

    /// A broker came back: offline partitions it can lead get it as leader.
    fn elect_offline(&mut self, broker: NodeId, out: &mut Outbox) {
        let tps: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.leader.is_none() && s.isr.contains(&broker))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            let mut state = self.partitions[&tp].clone();
            state.leader = state.isr.iter().copied().find(|&r| self.is_live(r));
            state.leader_incarnation = self.incarnation_of(state.leader);
            state.leader_epoch = Epoch(state.leader_epoch.0 + 1);
            state.partition_epoch += 1;
            self.notify(&tp, state, out);
        }
    }

    fn alter_partition(&mut self, req: &AlterPartition) -> Result<PartitionState, ErrorCode> {
        let Some(state) = self.partitions.get(&req.partition) else {
            return Err(ErrorCode::UnknownTopicOrPartition);
        };
        if state.leader != Some(req.leader) {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if req.leader_epoch != state.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if req.partition_epoch != state.partition_epoch {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        if req.new_isr.is_empty()
            || !req.new_isr.contains(&req.leader)
            || req.new_isr.iter().any(|r| !state.replicas.contains(r))
        {
            return Err(ErrorCode::InvalidRequest);
        }
        // A fenced broker may not join the ISR (KIP-841), nor one that restarted since the
        // leader saw it fetch (KIP-903): it may have lost what it fetched.
        let joining = req.new_isr.iter().filter(|r| !state.isr.contains(r));
        let ineligible = joining.clone().any(|r| !self.is_live(*r))
            || joining.clone().any(|r| {
                let seen = req.added.iter().find(|(n, _)| n == r).map(|&(_, i)| i);
                seen.is_none() || self.brokers.get(r).and_then(|b| b.incarnation) != seen
            });
        if ineligible {
            return Err(ErrorCode::IneligibleReplica);
        }
        let mut state = state.clone();
        state.isr = req.new_isr.clone();
        state.partition_epoch += 1;
        Ok(state)
    }

    fn notify(&mut self, tp: &TopicPartition, state: PartitionState, out: &mut Outbox) {
        for &r in &state.replicas {
            out.push((
                r,
                ControllerMessage::PartitionStates(vec![(tp.clone(), state.clone())]),
            ));
        }
        self.partitions.insert(tp.clone(), state);
    }

    fn states_of(&self, broker: NodeId) -> Vec<(TopicPartition, PartitionState)> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.replicas.contains(&broker))
            .map(|(tp, s)| (tp.clone(), s.clone()))
            .collect()
    }
}

//! The world's side of consumer-group members: building them from the scenario's
//! `[[groups]]`, starting them, and the things that happen to them (crash, graceful
//! leave, a pause past the session, a network partition, restarts), plus the
//! measurement of how long a rebalance takes when a member joins a five-member group.

use super::*;
use crate::consumer::MemberConfig;
use crate::history::MemberRef;
use crate::invariants::GroupCheck;
use crate::scenario::MemberAction;
use eddy_core::group::{Assignor, OFFSETS_TOPIC};

/// What happens to a member.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) enum MemberOp {
    Start,
    Crash,
    Leave,
    Pause,
    Resume,
    /// Cut off from every broker; `Heal` ends the cut with this id.
    Isolate {
        cut: u64,
    },
    Heal {
        cut: u64,
    },
}

/// The rebalance being measured: a member joined a group of `before` stable members.
#[derive(Debug)]
pub(super) struct Probe {
    joiner: MemberRef,
    started_at: TimeMs,
    before: u32,
    /// The first generation that gave the joiner an assignment.
    generation: Option<i32>,
    /// Members (slot) that took their assignment, per generation.
    assigned: BTreeMap<i32, BTreeSet<u32>>,
}

/// The group size whose joins are measured (issue 4: a member joining a 5-member group).
const MEASURED_GROUP_SIZE: u32 = 5;

pub(super) fn make_members(
    scenario: &Scenario,
    broker_cfg: &BrokerConfig,
    parts: &BTreeMap<TopicPartition, Part>,
) -> Vec<Member> {
    let mut members = Vec::new();
    for (g, spec) in scenario.groups.iter().enumerate() {
        let topic_parts: Vec<(Part, TopicPartition)> = parts
            .iter()
            .filter(|(tp, _)| tp.topic == spec.topic)
            .map(|(tp, &p)| (p, tp.clone()))
            .collect();
        for i in 0..spec.members {
            let slot = members.len() as u32;
            let cfg = MemberConfig {
                group: g as u32,
                group_id: spec.name.clone(),
                topic: spec.topic.clone(),
                parts: topic_parts.clone(),
                assignor: Assignor::from_name(&spec.assignor).expect("validated"),
                instance_id: spec
                    .static_members
                    .then(|| format!("{}-instance-{i}", spec.name)),
                session_timeout_ms: spec.session_timeout_ms,
                rebalance_timeout_ms: spec.rebalance_timeout_ms,
                heartbeat_interval_ms: spec.heartbeat_interval_ms,
                commit_interval_ms: spec.commit_interval_ms,
                offsets_partitions: broker_cfg.offsets_topic_num_partitions,
            };
            members.push(Member::new(slot, cfg));
        }
    }
    members
}

/// What the group checkers need to know of each group.
pub(super) fn group_checks(
    scenario: &Scenario,
    broker_cfg: &BrokerConfig,
    parts: &BTreeMap<TopicPartition, Part>,
) -> Vec<GroupCheck> {
    scenario
        .groups
        .iter()
        .map(|g| GroupCheck {
            name: g.name.clone(),
            parts: parts
                .iter()
                .filter(|(tp, _)| tp.topic == g.topic)
                .map(|(_, &p)| p)
                .collect(),
            offsets_part: parts
                .get(&TopicPartition::new(
                    OFFSETS_TOPIC,
                    eddy_core::group::offsets_partition_for(
                        &g.name,
                        broker_cfg.offsets_topic_num_partitions,
                    ),
                ))
                .copied(),
        })
        .collect()
}

impl World<'_> {
    /// Schedules every member's start and the scenario's member events.
    pub(super) fn schedule_member_events(&mut self) {
        let mut first_slot = 0u32;
        for spec in &self.scenario.groups {
            for i in 0..spec.members {
                let at = spec.start_ms + spec.join_every_ms * u64::from(i);
                self.schedule(
                    at,
                    Event::Member {
                        slot: first_slot + i,
                        op: MemberOp::Start,
                    },
                );
            }
            for e in &spec.events {
                let slot = first_slot + e.member;
                let (op, then) = match e.action {
                    MemberAction::Crash => (MemberOp::Crash, Some(MemberOp::Start)),
                    MemberAction::Leave => (MemberOp::Leave, Some(MemberOp::Start)),
                    MemberAction::Pause => (MemberOp::Pause, Some(MemberOp::Resume)),
                    MemberAction::Isolate => {
                        self.next_member_cut += 1;
                        let cut = MEMBER_CUT_BASE + self.next_member_cut;
                        (MemberOp::Isolate { cut }, Some(MemberOp::Heal { cut }))
                    }
                };
                self.schedule(e.at_ms, Event::Member { slot, op });
                if let (Some(then), Some(d)) = (then, e.duration_ms) {
                    self.schedule(e.at_ms + d, Event::Member { slot, op: then });
                }
            }
            first_slot += spec.members;
        }
    }

    pub(super) fn member_op(&mut self, slot: u32, op: MemberOp) {
        let mut env = ClientEnv {
            now: self.now,
            rng: &mut self.rng,
            brokers: self.scenario.brokers,
            batch_ids: &mut self.batch_ids,
            out: Vec::new(),
        };
        let m = &mut self.members[slot as usize];
        match op {
            MemberOp::Start => {
                if !m.is_running() {
                    m.start(&mut env);
                }
            }
            MemberOp::Crash => m.crash(&mut env),
            MemberOp::Leave => m.leave(&mut env),
            MemberOp::Pause => m.set_paused(true),
            MemberOp::Resume => {
                if m.is_paused() {
                    m.set_paused(false);
                    m.wake(&mut env);
                }
            }
            MemberOp::Isolate { cut } => {
                for b in 1..=self.scenario.brokers {
                    self.network
                        .cut(cut, Endpoint::Member(slot), Endpoint::Broker(b));
                    self.network
                        .cut(cut, Endpoint::Broker(b), Endpoint::Member(slot));
                }
            }
            MemberOp::Heal { cut } => self.network.heal(cut),
        }
        let out = env.out;
        self.client_actions(Client::Member(slot), out);
    }

    /// Coordinator batches in `__consumer_offsets` get an identity of their own, so the
    /// replication checkers follow that topic like any other.
    pub(super) fn name_coordinator_batch(&mut self, partition: &TopicPartition, batch: &[u8]) {
        if partition.topic != OFFSETS_TOPIC {
            return;
        }
        let crc = BatchHeader::parse(batch)
            .expect("coordinators append whole batches")
            .crc;
        let next = self.batch_ids.len() as u64;
        self.batch_ids.entry(crc).or_insert(BatchId {
            producer: COORDINATOR_PRODUCER,
            number: next,
        });
    }

    fn stable_members(&self, group: u32, except: u32) -> u32 {
        self.members
            .iter()
            .filter(|m| m.group() == group && m.slot != except && m.is_running() && m.is_stable())
            .count() as u32
    }

    fn running_members(&self, group: u32) -> u32 {
        self.members
            .iter()
            .filter(|m| m.group() == group && m.is_running())
            .count() as u32
    }

    /// Follows a member joining a group of five: from its first JoinGroup until every
    /// member has its assignment of the first generation that includes it.
    pub(super) fn probe_rebalance(&mut self, obs: &Observation) {
        match obs {
            Observation::GroupJoining { at, member } => {
                let before = self.stable_members(member.group, member.slot);
                if before == MEASURED_GROUP_SIZE && !self.probes.contains_key(&member.group) {
                    self.probes.insert(
                        member.group,
                        Probe {
                            joiner: *member,
                            started_at: *at,
                            before,
                            generation: None,
                            assigned: BTreeMap::new(),
                        },
                    );
                }
            }
            Observation::GroupAssigned {
                at,
                member,
                generation,
                ..
            } => {
                let running = self.running_members(member.group);
                let Some(p) = self.probes.get_mut(&member.group) else {
                    return;
                };
                p.assigned
                    .entry(*generation)
                    .or_default()
                    .insert(member.slot);
                if *member == p.joiner && p.generation.is_none() {
                    p.generation = Some(*generation);
                }
                let Some(g) = p.generation else { return };
                if p.assigned.get(&g).map_or(0, |s| s.len() as u32) >= running {
                    let p = self.probes.remove(&member.group).expect("found");
                    self.rebalances.push(Rebalance {
                        group_size_before: p.before,
                        joined_at_ms: p.started_at,
                        completed_after_ms: Some(at - p.started_at),
                    });
                }
            }
            // The measured join was overtaken by a failure: record it unfinished.
            Observation::GroupStopped { member, .. }
                if self
                    .probes
                    .get(&member.group)
                    .is_some_and(|p| p.joiner == *member) =>
            {
                let p = self.probes.remove(&member.group).expect("found");
                self.rebalances.push(Rebalance {
                    group_size_before: p.before,
                    joined_at_ms: p.started_at,
                    completed_after_ms: None,
                });
            }
            _ => {}
        }
    }
}

/// Network-cut ids for member isolation, apart from the faults' own.
const MEMBER_CUT_BASE: u64 = 1 << 40;
/// The producer number in the identity of a group coordinator's batch.
pub(crate) const COORDINATOR_PRODUCER: u32 = u32::MAX;

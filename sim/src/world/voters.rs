//! The metadata quorum in the world: the controller voters
//! co-located with the first brokers (KRaft combined mode) and the other brokers
//! following the metadata log as Raft observers, their Raft messages over the simulated
//! network, their durable state on a simulated disk, the brokers' side of talking to the
//! active controller (finding it, retrying elsewhere), and the admin client that creates
//! the scenario's topics through it.
//!
//! Every broker keeps its own committed image (its voter's, or its observer's) and gives
//! its node the states of the partitions it hosts from that image, as KRaft's brokers do
//! ([`World::feed_image`]); the checkers see it never go back, and never reach the node
//! before the broker's current incarnation was unfenced.

use std::collections::BTreeMap;

use super::*;

use eddy_core::controller::{ControllerConfig, MetadataImage, MetadataMember};
use eddy_core::quorum::{LogIndex, Role};

use eddy_core::controller::voter::{Voter, VoterOut};

/// A broker that has not heard from the controller it talks to for this long asks
/// another voter (its own request timeout; KRaft's brokers re-resolve the active
/// controller the same way).
const CONTROLLER_SILENCE_MS: u64 = 1_500;

impl World<'_> {
    pub(super) fn is_voter(&self, broker: u32) -> bool {
        broker <= self.scenario.voter_count()
    }

    pub(super) fn voter_ids(&self) -> Vec<NodeId> {
        (1..=self.scenario.voter_count()).map(NodeId).collect()
    }

    /// The brokers that are no voters: the metadata log's observers.
    fn observer_ids(&self) -> Vec<NodeId> {
        (self.scenario.voter_count() + 1..=self.scenario.brokers)
            .map(NodeId)
            .collect()
    }

    /// Starts the voter (or, for a broker that is no voter, the observer) of broker
    /// index `b` from what its Raft disk kept.
    pub(super) fn start_voter(&mut self, b: usize) {
        let id = self.brokers[b].id;
        let now = self.brokers[b].clock.at(self.now);
        let durable = std::mem::take(&mut self.brokers[b].recovered_raft);
        if self.is_voter(id.0) {
            let observers = if self.scenario.observers_announce {
                Vec::new()
            } else {
                self.observer_ids()
            };
            let mut voter = Voter::with_observers(
                id,
                &self.voter_ids(),
                &observers,
                self.raft_cfg,
                ControllerConfig {
                    // Each voter proposes its own, as each real node's meta.properties
                    // has its own until they agree through the log.
                    cluster_id: Some(format!("sim-voter-{}", id.0)),
                    ..self.controller_cfg.clone()
                },
                now,
                durable,
            );
            // Brokers follow their own images (feed_image), not the controller's pushes.
            voter.set_push_partition_states(false);
            self.brokers[b].member = Some(MetadataMember::Voter(Box::new(voter)));
        } else {
            let mut observer =
                MetadataFollower::new(id, &self.voter_ids(), self.raft_cfg, now, durable);
            observer.announce_as_observer(self.scenario.observers_announce);
            self.brokers[b].member = Some(MetadataMember::Observer(Box::new(observer)));
        }
        self.drain_voter(b);
    }

    /// Runs `f` on the quorum member (voter or observer) of broker index `b`, if it runs
    /// and is not paused, and carries out what it asks.
    pub(super) fn with_member(
        &mut self,
        b: usize,
        f: impl FnOnce(&mut MetadataMember, TimeMs, &mut ChaCha8Rng),
    ) {
        if self.brokers[b].paused {
            return;
        }
        let now = self.brokers[b].clock.at(self.now);
        let Some(member) = self.brokers[b].member.as_mut() else {
            return;
        };
        f(member, now, &mut self.rng);
        self.drain_voter(b);
    }

    /// The committed metadata image of broker index `b`: its voter's, or its observer's.
    pub(super) fn image_of(&self, b: usize) -> Option<&MetadataImage> {
        self.brokers[b].member.as_ref().map(MetadataMember::image)
    }

    /// The committed index of broker index `b`'s image.
    fn image_index(&self, b: usize) -> Option<u64> {
        self.brokers[b].member.as_ref().map(|m| m.applied().index.0)
    }

    /// Per registered broker, where broker index `b`'s committed image says it was first
    /// unfenced since it registered: (incarnation, log index).
    fn unfenced_at(&self, b: usize) -> Option<&BTreeMap<NodeId, (u64, LogIndex)>> {
        self.brokers[b]
            .member
            .as_ref()
            .map(MetadataMember::unfenced_at)
    }

    /// Reports the unfencings broker index `b`'s image holds that no image reported at
    /// a lower index before, for the checkers.
    fn observe_unfencings(&mut self, b: usize) {
        let Some(unfenced_at) = self.unfenced_at(b) else {
            return;
        };
        let fresh: Vec<(NodeId, u64, u64)> = unfenced_at
            .iter()
            .map(|(&node, &(incarnation, index))| (node, incarnation, index.0))
            .filter(|&(node, incarnation, index)| {
                self.unfence_seen
                    .get(&(node, incarnation))
                    .is_none_or(|&seen| index < seen)
            })
            .collect();
        for (node, incarnation, index) in fresh {
            self.unfence_seen.insert((node, incarnation), index);
            self.observe(Observation::BrokerUnfenced {
                at: self.now,
                node,
                incarnation,
                index,
            });
        }
    }

    /// Broker index `b` tells its node how far its image has got (its heartbeats report
    /// it) and, once it may act on the image, gives the node the states of the partitions
    /// it hosts that the image changed since it was last given them
    /// (`MetadataImage::hosted_partition_changes`).
    ///
    /// It may act on its image once, since it started, (1) the image caught up with the
    /// metadata log (KRaft's initial catch-up: it applied everything a leader announced
    /// committed), (2) the controller answered a heartbeat unfenced — which it does only
    /// once the reported offset reached this incarnation's registration (KRaft installs a
    /// broker's metadata publishers only after the controller says it caught up), and (3)
    /// its own image holds that unfencing. Before that, an image replayed from its disk
    /// could hold a previous incarnation's leaderships and ISR places, and make the node
    /// follow a leader that was replaced.
    fn feed_image(&mut self, b: usize) {
        if self.brokers[b].paused || self.brokers[b].node.is_none() {
            return;
        }
        let id = self.brokers[b].id;
        let incarnation = self.brokers[b].incarnation;
        let Some(index) = self.image_index(b) else {
            return;
        };
        let own_unfencing = self
            .unfenced_at(b)
            .and_then(|u| u.get(&id).copied())
            .filter(|&(i, _)| i == incarnation);
        let slot = &mut self.brokers[b];
        let node = slot.node.as_mut().expect("checked");
        node.set_metadata_offset(index);
        let controller_caught_up = node.is_caught_up();
        let image_caught_up = slot.member.as_ref().is_some_and(MetadataMember::caught_up);
        let holds_unfencing = own_unfencing.is_some_and(|(_, at)| index >= at.0);
        slot.caught_up |= image_caught_up && controller_caught_up && holds_unfencing;
        if !slot.caught_up {
            return;
        }
        let Some(image) = slot.member.as_ref().map(MetadataMember::image) else {
            return;
        };
        let changes = image.hosted_partition_changes(id, &mut slot.given);
        self.observe(Observation::BrokerMetadata {
            at: self.now,
            node: id,
            incarnation,
            index,
        });
        if !changes.is_empty() {
            self.feed(
                b,
                Input::Controller(ControllerMessage::PartitionStates(changes)),
            );
        }
    }

    /// Runs `f` on the voter of broker index `b`, if it runs and is not paused, and
    /// carries out what it asks.
    pub(super) fn with_voter(
        &mut self,
        b: usize,
        f: impl FnOnce(&mut Voter, TimeMs, &mut ChaCha8Rng),
    ) {
        if self.brokers[b].paused {
            return;
        }
        let now = self.brokers[b].clock.at(self.now);
        let Some(voter) = self.brokers[b]
            .member
            .as_mut()
            .and_then(MetadataMember::voter_mut)
        else {
            return;
        };
        f(voter, now, &mut self.rng);
        self.drain_voter(b);
    }

    fn drain_voter(&mut self, b: usize) {
        let id = self.brokers[b].id;
        let slot = &mut self.brokers[b];
        let Some(outs) = slot.member.as_mut().map(MetadataMember::take_out) else {
            return;
        };
        let mut frontier_moved = false;
        let mut image_moved = false;
        for out in outs {
            match out {
                VoterOut::Raft { to, msg } => self.send(
                    Endpoint::Broker(id.0),
                    Endpoint::Broker(to.0),
                    Payload::Raft(msg),
                ),
                VoterOut::Persist(effect) => {
                    let [lo, hi] = self.scenario.disk.sync_latency_ms;
                    let latency =
                        self.rng.random_range(lo..=hi.max(lo)) * self.brokers[b].slow_disk_factor;
                    let (write, at) = self.brokers[b].raft_disk.write(effect, self.now, latency);
                    let incarnation = self.brokers[b].incarnation;
                    self.schedule(
                        at,
                        Event::RaftSyncDone {
                            broker: id.0,
                            incarnation,
                            write,
                        },
                    );
                }
                VoterOut::ToBroker { to, msg } => self.send(
                    Endpoint::Broker(id.0),
                    Endpoint::Broker(to.0),
                    Payload::FromController(msg),
                ),
                VoterOut::NotController { to, leader } => self.send(
                    Endpoint::Broker(id.0),
                    Endpoint::Broker(to.0),
                    Payload::NotController { leader },
                ),
                VoterOut::Applied { index, term, hash } => {
                    image_moved = true;
                    if index.0 > self.commit_frontier {
                        self.commit_frontier = index.0;
                        frontier_moved = true;
                    }
                    self.observe(Observation::RaftApplied {
                        at: self.now,
                        node: id,
                        index: index.0,
                        term: term.0,
                        hash,
                    });
                }
                VoterOut::SnapshotApplied { index } => {
                    image_moved = true;
                    if index.0 > self.commit_frontier {
                        self.commit_frontier = index.0;
                        frontier_moved = true;
                    }
                    self.observe(Observation::RaftSnapshotApplied {
                        at: self.now,
                        node: id,
                        index: index.0,
                    });
                }
                VoterOut::BecameLeader {
                    term,
                    snapshot_index,
                    log,
                } => self.observe(Observation::RaftLeader {
                    at: self.now,
                    node: id,
                    term: term.0,
                    snapshot_index: snapshot_index.0,
                    log: log.iter().map(|(i, t)| (i.0, t.0)).collect(),
                }),
                VoterOut::Active(active) => {
                    if active && self.failing_over.is_some() {
                        let f = self.failovers.last_mut().expect("a failover in progress");
                        if f.elected_after_ms.is_none() {
                            f.elected_after_ms = Some(self.now - f.crashed_at_ms);
                        }
                    }
                    self.observe(Observation::ControllerActive {
                        at: self.now,
                        node: id,
                        active,
                    })
                }
            }
        }
        if image_moved {
            self.observe_unfencings(b);
        }
        if frontier_moved {
            // The ISRs the checkers' model follows are those of the furthest committed
            // image: what the quorum agreed on.
            self.observe_isr_changes_from(b);
            self.measure_leadership_moved(b);
        }
        if image_moved || !self.brokers[b].caught_up {
            self.feed_image(b);
        }
        if image_moved {
            self.answer_admin(b);
        }
    }

    /// A broker crashes: if its voter was the active controller, a failover starts.
    pub(super) fn measure_crash(&mut self, b: usize) {
        let id = self.brokers[b].id;
        let Some(member) = self.brokers[b].member.as_ref() else {
            return;
        };
        if !member.is_active() || self.healed {
            return;
        }
        let led = member
            .image()
            .partitions()
            .any(|(_, s)| s.leader == Some(id));
        self.failing_over = Some((id, led));
        self.failovers.push(Failover {
            crashed_at_ms: self.now,
            elected_after_ms: None,
            leadership_moved_after_ms: None,
        });
    }

    fn measure_leadership_moved(&mut self, b: usize) {
        let Some((crashed, true)) = self.failing_over else {
            return;
        };
        let Some(image) = self.image_of(b) else {
            return;
        };
        if image.partitions().any(|(_, s)| s.leader == Some(crashed)) {
            return;
        }
        let f = self.failovers.last_mut().expect("a failover in progress");
        f.leadership_moved_after_ms = Some(self.now - f.crashed_at_ms);
        self.failing_over = None;
    }

    fn observe_isr_changes_from(&mut self, b: usize) {
        let Some(image) = self.image_of(b) else {
            return;
        };
        let mut changed = Vec::new();
        for (tp, state) in image.partitions() {
            let Some(&part) = self.parts.get(tp) else {
                continue;
            };
            if self.last_isr.get(&part) != Some(&state.isr) {
                changed.push((part, state.isr.clone()));
            }
        }
        for (part, isr) in changed {
            self.last_isr.insert(part, isr.clone());
            self.observe(Observation::IsrChanged {
                at: self.now,
                part,
                isr,
            });
        }
    }

    /// A Raft sync finished on broker `broker`'s disk.
    pub(super) fn raft_sync_done(&mut self, broker: u32, incarnation: u64, write: u64) {
        let b = self.broker_index(broker);
        let slot = &self.brokers[b];
        if slot.incarnation != incarnation || slot.member.is_none() {
            return;
        }
        self.brokers[b].raft_disk.finish(write);
        self.report_syncs(b);
    }

    /// Tells a running voter of the syncs its disk finished (held while it is paused).
    pub(super) fn report_syncs(&mut self, b: usize) {
        if self.brokers[b].paused {
            return;
        }
        for done in self.brokers[b].raft_disk.take_unreported() {
            self.with_member(b, |m, now, _| m.persisted(now, done));
        }
    }

    /// Where broker `b` sends its controller requests: the controller it last heard
    /// from, else the leader its own voter knows, else the next voter in turn.
    fn controller_target(&mut self, b: usize) -> u32 {
        let silent =
            self.now.saturating_sub(self.brokers[b].controller_heard_ms) > CONTROLLER_SILENCE_MS;
        if silent {
            self.brokers[b].controller_hint = None;
            self.brokers[b].controller_heard_ms = self.now;
        }
        if let Some(hint) = self.brokers[b].controller_hint {
            return hint.0;
        }
        if let Some(leader) = self.brokers[b]
            .member
            .as_ref()
            .and_then(MetadataMember::leader)
        {
            return leader.0;
        }
        self.brokers[b].next_voter = self.brokers[b].next_voter % self.scenario.voter_count() + 1;
        self.brokers[b].next_voter
    }

    /// A broker's request to the controller, over the network.
    pub(super) fn send_to_controller(&mut self, b: usize, req: ControllerRequest) {
        let from = self.brokers[b].id.0;
        let to = self.controller_target(b);
        self.send(
            Endpoint::Broker(from),
            Endpoint::Broker(to),
            Payload::ToController(req),
        );
    }

    /// A voter told broker `b` it is not the controller: ask the one it named (or the
    /// next voter).
    pub(super) fn not_controller(&mut self, b: usize, from: u32, leader: Option<NodeId>) {
        if self.brokers[b].controller_hint == Some(NodeId(from)) || leader.is_some() {
            self.brokers[b].controller_hint = leader.filter(|l| l.0 != from);
        }
    }

    /// The controller answered broker `b` from voter `from`: keep talking to it.
    pub(super) fn heard_from_controller(&mut self, b: usize, from: u32) {
        self.brokers[b].controller_hint = Some(NodeId(from));
        self.brokers[b].controller_heard_ms = self.now;
    }

    /// Feeds a network message for the voter on broker index `b`.
    pub(super) fn deliver_to_voter(&mut self, b: usize, from: u32, payload: Payload) {
        match payload {
            Payload::Raft(msg) => {
                self.with_member(b, |m, now, _| m.receive(now, NodeId(from), msg))
            }
            Payload::ToController(req) => {
                if self.brokers[b]
                    .member
                    .as_ref()
                    .and_then(MetadataMember::voter)
                    .is_none()
                {
                    // A broker that is no voter answers as a follower would.
                    let to = Endpoint::Broker(from);
                    let me = Endpoint::Broker(self.brokers[b].id.0);
                    self.send(me, to, Payload::NotController { leader: None });
                    return;
                }
                self.with_voter(b, |v, now, _| v.request(now, NodeId(from), req))
            }
            other => unreachable!("{other:?} is not for a voter"),
        }
    }

    /// The voter ticks that ride on the broker's tick, and the controller's own timer.
    pub(super) fn controller_ticks(&mut self) {
        for b in 0..self.brokers.len() {
            self.with_voter(b, |v, now, _| v.controller_tick(now));
        }
    }

    /// The broker whose voter leads the quorum in the highest term, if any.
    pub(super) fn quorum_leader(&self) -> Option<u32> {
        self.brokers
            .iter()
            .filter_map(|s| s.member.as_ref()?.voter().map(|v| (s.id.0, v)))
            .filter(|(_, v)| v.role() == Role::Leader)
            .max_by_key(|(_, v)| v.term())
            .map(|(id, _)| id)
    }

    /// The active controller's committed image, for fault targeting and the end check.
    pub(super) fn active_image(&self) -> Option<&eddy_core::controller::MetadataImage> {
        self.brokers
            .iter()
            .filter(|s| !s.paused)
            .filter_map(|s| s.member.as_ref()?.voter())
            .filter(|v| v.is_active())
            .max_by_key(|v| v.term())
            .map(Voter::committed)
    }

    /// At the end: which partitions the active controller has led by fenced brokers.
    pub(super) fn observe_fenced_leaders(&mut self) {
        let topics = self
            .active_image()
            .map(|image| image.topics().map(|(name, _)| name.to_string()).collect());
        self.observe(Observation::TopicsAtEnd {
            at: self.now,
            topics,
        });
        let fenced_leaders = self.active_image().map(|image| {
            image
                .partitions()
                .filter_map(|(tp, s)| {
                    let leader = s.leader?;
                    let fenced = !image.unfenced_brokers().contains(&leader);
                    fenced.then(|| (self.parts.get(tp).copied().unwrap_or(u32::MAX), leader))
                })
                .collect()
        });
        let short_isrs = self
            .active_image()
            .map(|image| {
                image
                    .partitions()
                    .filter(|(_, s)| s.isr.len() < s.replicas.len())
                    .filter_map(|(tp, _)| self.parts.get(tp).copied())
                    .collect()
            })
            .unwrap_or_default();
        self.observe(Observation::FencedLeadersAtEnd {
            at: self.now,
            fenced_leaders,
            short_isrs,
        });
    }
}

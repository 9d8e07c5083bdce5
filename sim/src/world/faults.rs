//! Faults: scheduling them from the scenario (fixed and random), starting and healing
//! them, and what a crash, restart or pause does to a broker.

use super::*;

impl World<'_> {
    pub(super) fn schedule_faults(&mut self) {
        let until = self.scenario.faults_until_ms;
        for spec in &self.scenario.faults.clone() {
            for i in 0..spec.repeat {
                let at = spec.at_ms + u64::from(i) * spec.every_ms;
                if at >= until {
                    break;
                }
                let fault = self.new_fault_id();
                self.planned.insert(fault, spec.action.clone());
                self.schedule(at, Event::FaultStart { fault });
                self.schedule(at + spec.duration_ms, Event::FaultEnd { fault });
            }
        }
        if let Some(r) = self.scenario.random_faults.clone() {
            let mut at = self.rng.random_range(r.every_ms[0]..=r.every_ms[1]);
            while at < until {
                let kind = &r.kinds[self.rng.random_range(0..r.kinds.len())];
                let action = match kind.as_str() {
                    "crash" => FaultAction::Crash {
                        target: Target::Random,
                    },
                    "pause" => FaultAction::Pause {
                        target: Target::Random,
                    },
                    "isolate" => FaultAction::Isolate {
                        target: Target::Random,
                    },
                    "one-way" => FaultAction::OneWay {
                        target: Target::Random,
                    },
                    "split" => FaultAction::Split {
                        target: Target::Random,
                        with: 0,
                    },
                    "clock-skew" => FaultAction::ClockSkew {
                        target: Target::Random,
                        rate: [0.5, 2.0][self.rng.random_range(0..2)],
                        jump_ms: self.rng.random_range(0..5_000),
                    },
                    "slow-disk" => FaultAction::SlowDisk {
                        target: Target::Random,
                        factor: 50,
                    },
                    other => unreachable!("scenario validation admits no fault kind {other}"),
                };
                let duration = self.rng.random_range(r.duration_ms[0]..=r.duration_ms[1]);
                let fault = self.new_fault_id();
                self.planned.insert(fault, action);
                self.schedule(at, Event::FaultStart { fault });
                self.schedule(at + duration, Event::FaultEnd { fault });
                at += self.rng.random_range(r.every_ms[0]..=r.every_ms[1]);
            }
        }
    }

    pub(super) fn new_fault_id(&mut self) -> u64 {
        self.next_fault += 1;
        self.next_fault
    }

    // ----- faults ----------------------------------------------------------------

    pub(super) fn resolve(&mut self, target: &Target) -> u32 {
        match target {
            Target::Broker(n) => (*n).clamp(1, self.scenario.brokers),
            Target::Random => self.rng.random_range(1..=self.scenario.brokers),
            Target::ControllerFollower => {
                let leader = self.quorum_leader();
                let voters = self.scenario.voter_count();
                let followers: Vec<u32> = (1..=voters).filter(|&v| Some(v) != leader).collect();
                if followers.is_empty() {
                    self.rng.random_range(1..=self.scenario.brokers)
                } else {
                    followers[self.rng.random_range(0..followers.len())]
                }
            }
            Target::ControllerLeader => match self.quorum_leader() {
                Some(l) => l,
                None => self.rng.random_range(1..=self.scenario.brokers),
            },
            Target::Leader => {
                let first = self
                    .active_image()
                    .and_then(|image| image.partitions().next().and_then(|(_, s)| s.leader));
                match first {
                    Some(l) => l.0,
                    None => self.rng.random_range(1..=self.scenario.brokers),
                }
            }
        }
    }

    pub(super) fn fault_start(&mut self, fault: u64, action: FaultAction) {
        if self.healed {
            return;
        }
        self.stats.faults += 1;
        let target = match &action {
            FaultAction::Crash { target }
            | FaultAction::Pause { target }
            | FaultAction::Isolate { target }
            | FaultAction::OneWay { target }
            | FaultAction::Split { target, .. }
            | FaultAction::ClockSkew { target, .. }
            | FaultAction::SlowDisk { target, .. } => self.resolve(target),
            FaultAction::CrashAll => 0,
        };
        tracing::debug!(at = self.now, ?action, target, "fault starts");
        match &action {
            FaultAction::Crash { .. } => self.crash(target),
            FaultAction::CrashAll => {
                for b in 1..=self.scenario.brokers {
                    self.crash(b);
                }
            }
            FaultAction::Pause { .. } => {
                let b = self.broker_index(target);
                self.brokers[b].paused = true;
            }
            FaultAction::Isolate { .. } => {
                for other in self.endpoints_except(target) {
                    self.network.cut(fault, Endpoint::Broker(target), other);
                    self.network.cut(fault, other, Endpoint::Broker(target));
                }
            }
            FaultAction::OneWay { .. } => {
                for other in self.endpoints_except(target) {
                    self.network.cut(fault, Endpoint::Broker(target), other);
                }
            }
            FaultAction::Split { with, .. } => {
                let n = self.scenario.brokers;
                let mut side: Vec<u32> = vec![target];
                for k in 1..=*with {
                    side.push((target - 1 + k) % n + 1);
                }
                let others: Vec<Endpoint> = (1..=n)
                    .filter(|b| !side.contains(b))
                    .map(Endpoint::Broker)
                    .collect();
                for &s in &side {
                    for &o in &others {
                        self.network.cut(fault, Endpoint::Broker(s), o);
                        self.network.cut(fault, o, Endpoint::Broker(s));
                    }
                }
            }
            FaultAction::ClockSkew { rate, jump_ms, .. } => {
                let b = self.broker_index(target);
                let now = self.now;
                self.brokers[b].clock.set(now, rate.max(0.1), *jump_ms);
            }
            FaultAction::SlowDisk { factor, .. } => {
                let b = self.broker_index(target);
                self.brokers[b].slow_disk_factor = (*factor).max(1);
            }
        }
        self.active.insert(fault, (action, target));
    }

    /// Every endpoint a broker talks to, but itself.
    pub(super) fn endpoints_except(&self, broker: u32) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = (1..=self.scenario.brokers)
            .filter(|&b| b != broker)
            .map(Endpoint::Broker)
            .collect();
        out.extend((0..self.producers.len() as u32).map(Endpoint::Producer));
        out.extend((0..self.readers.len() as u32).map(Endpoint::Reader));
        out.extend((0..self.members.len() as u32).map(Endpoint::Member));
        out
    }

    pub(super) fn fault_end(&mut self, fault: u64) {
        let Some((action, target)) = self.active.remove(&fault) else {
            return;
        };
        tracing::debug!(at = self.now, ?action, target, "fault heals");
        match action {
            FaultAction::Crash { .. } => self.restart(target),
            FaultAction::CrashAll => {
                for b in 1..=self.scenario.brokers {
                    self.restart(b);
                }
            }
            FaultAction::Pause { .. } => self.resume(target),
            FaultAction::Isolate { .. }
            | FaultAction::OneWay { .. }
            | FaultAction::Split { .. } => self.network.heal(fault),
            FaultAction::ClockSkew { .. } => {
                let b = self.broker_index(target);
                let now = self.now;
                self.brokers[b].clock.set(now, 1.0, 0);
            }
            FaultAction::SlowDisk { .. } => {
                let b = self.broker_index(target);
                self.brokers[b].slow_disk_factor = 1;
            }
        }
    }

    pub(super) fn heal_all(&mut self) {
        let faults: Vec<u64> = self.active.keys().copied().collect();
        for fault in faults {
            self.fault_end(fault);
        }
        for b in 1..=self.scenario.brokers {
            self.restart(b);
            self.resume(b);
        }
        self.network.heal_all();
        self.healed = true;
        self.observe(Observation::Healed { at: self.now });
    }

    pub(super) fn crash(&mut self, broker: u32) {
        let b = self.broker_index(broker);
        if self.brokers[b].node.is_none() {
            return;
        }
        self.stats.crashes += 1;
        self.measure_crash(b);
        let spec = &self.scenario.disk;
        let (keep, torn) = (spec.crash_keeps_unsynced, spec.torn_tail);
        let slot = &mut self.brokers[b];
        slot.node = None;
        slot.paused = false;
        slot.held.clear();
        slot.disk.crash(&mut self.rng, keep, torn);
        slot.given.clear();
        slot.caught_up = false;
        if slot.member.take().is_some() {
            slot.recovered_raft = slot.raft_disk.crash(&mut self.rng, keep, torn);
        }
        slot.controller_hint = None;
        let recovered = slot.disk.recover();
        // As a real broker recovers: headers only, except for the offsets topic, whose
        // batches the group coordinator loads.
        slot.recovered = recovered
            .iter()
            .map(|r| {
                let whole = r.partition.topic == eddy_core::group::OFFSETS_TOPIC;
                let batches = r
                    .batches
                    .iter()
                    .map(|b| match BatchHeader::parse(b) {
                        Ok(h) if !whole => RecoveredBatch::Header(h),
                        _ => RecoveredBatch::Whole(b.clone()),
                    })
                    .collect();
                (r.partition.clone(), batches)
            })
            .collect();
        self.stats.torn_tails += recovered.iter().filter(|r| r.torn_bytes > 0).count() as u64;
        let surviving = recovered
            .iter()
            .map(|r| {
                (
                    self.parts[&r.partition],
                    r.batches
                        .iter()
                        .map(|batch| self.batch_ref(batch))
                        .collect(),
                )
            })
            .collect();
        let id = self.brokers[b].id;
        self.last_hw.retain(|(n, _), _| *n != id);
        self.last_view.retain(|(n, _), _| *n != id);
        // Its clients' connections reset.
        let broken: Vec<u64> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.broker == broker)
            .map(|(&k, _)| k)
            .collect();
        for token in broken {
            self.disconnect(token);
        }
        self.observe(Observation::Crashed {
            at: self.now,
            node: id,
            surviving,
        });
    }

    pub(super) fn restart(&mut self, broker: u32) {
        let b = self.broker_index(broker);
        if self.brokers[b].node.is_some() {
            return;
        }
        let slot = &mut self.brokers[b];
        slot.incarnation += 1;
        let recovered = std::mem::take(&mut slot.recovered);
        slot.node = Some(Node::new(
            slot.id,
            slot.incarnation,
            self.node_cfg,
            recovered,
        ));
        let (id, incarnation) = (slot.id, slot.incarnation);
        self.observe(Observation::Restarted {
            at: self.now,
            node: id,
        });
        self.start_voter(b);
        self.schedule(
            self.now,
            Event::BrokerTick {
                broker: id.0,
                incarnation,
            },
        );
    }

    pub(super) fn resume(&mut self, broker: u32) {
        let b = self.broker_index(broker);
        if !self.brokers[b].paused {
            return;
        }
        self.brokers[b].paused = false;
        let incarnation = self.brokers[b].incarnation;
        for event in std::mem::take(&mut self.brokers[b].held) {
            let event = match event {
                Event::SyncDone {
                    broker,
                    partition,
                    sync_id,
                    ..
                } => {
                    // Already applied to the disk; only the process's notice is due.
                    self.feed(
                        b,
                        Input::Storage(StorageDone::Synced { partition, sync_id }),
                    );
                    let _ = broker;
                    continue;
                }
                Event::BrokerTick { broker, .. } => Event::BrokerTick {
                    broker,
                    incarnation,
                },
                other => other,
            };
            self.schedule(self.now, event);
        }
        self.report_syncs(b);
    }
}

//! Property tests of replication as a whole: three real `Node`s (n1..n3) host one
//! partition `t-0` with replication factor 3 and `min.insync.replicas = 2`, driven by a
//! tiny deterministic world written here — a message queue between brokers that the test
//! reorders and loses from, an in-memory disk per broker that keeps only what was synced
//! across a crash, and a mini controller that hands out `PartitionState`s, accepts
//! AlterPartition only with the current leader, leader epoch and partition epoch
//! (KIP-497), fences a crashed broker out of the ISR (unless it is the last member) and
//! elects the first other live ISR member when the leader crashes. proptest generates the
//! schedule (produce, deliver the k-th pending message, drop one, advance time, complete a
//! sync, crash, restart, move leadership) and every property is checked after every step,
//! so a shrunk failure names the first bad step. Each property runs under Kafka's default
//! flush policy (never sync; durability comes from replication) and under sync before ack
//! (`log.flush.interval.messages = 1`). Together they show that the replicas never
//! disagree below their high watermarks, that a leader's high watermark never goes back
//! within its epoch, that committed data survives as long as a copy of it does, and that
//! an acks=all acknowledgement means `min.insync.replicas` brokers had the batch.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;

use eddy_core::batch::{self, BatchBuilder, NewRecord};
use eddy_core::log::{FlushPolicy, LogBatch, StoredBatch};
use eddy_core::message::{
    Acks, ClientRequest, ClientResponse, ControllerMessage, ControllerRequest, Effect, Input,
    PeerMessage, StorageDone, StorageOp,
};
use eddy_core::metadata::{AlterPartition, PartitionState};
use eddy_core::node::{Node, NodeConfig};
use eddy_core::replica::ReplicaConfig;
use eddy_core::{Epoch, ErrorCode, NodeId, Offset, TimeMs, TopicPartition};

const BROKERS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];
const MIN_INSYNC_REPLICAS: u16 = 2;
const PRODUCE_TIMEOUT_MS: u64 = 10_000;
/// Long schedules reach deeper interleavings (crash, rejoin, crash again); at 250 steps
/// the 8 × 256 cases still run in well under a second.
const ACTIONS_MAX: usize = 250;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn node_config(sync_before_ack: bool) -> NodeConfig {
    NodeConfig {
        replica: ReplicaConfig {
            min_insync_replicas: MIN_INSYNC_REPLICAS,
            // Short timers, so that a schedule of a few dozen ticks of up to 3 s shrinks
            // the ISR, times out fetches and retries lost requests.
            replica_lag_time_max_ms: 4_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 500,
            replica_fetch_timeout_ms: 3_000,
            flush: if sync_before_ack {
                FlushPolicy {
                    interval_messages: 1,
                    interval_ms: None,
                }
            } else {
                FlushPolicy::NEVER
            },
            ..ReplicaConfig::default()
        },
        heartbeat_interval_ms: 2_000,
        ..NodeConfig::default()
    }
}

/// One step of a schedule. Indices into the queue are taken modulo its length, node
/// indices modulo 3, so every generated action means something in every state.
#[derive(Clone, Debug)]
enum Action {
    /// A client produces `records` records to the broker the controller names leader.
    Produce {
        acks_all: bool,
        records: u8,
    },
    /// Deliver the k-th pending message (0 is the oldest): messages get reordered.
    DeliverNext(usize),
    /// Lose the k-th pending message (the controller's metadata pushes are never lost:
    /// brokers replay the metadata log, so they arrive eventually).
    DropNext(usize),
    /// Time passes and every live broker is ticked.
    Tick(u64),
    /// The disk of a broker confirms its oldest sync.
    CompleteSync(usize),
    Crash(usize),
    Restart(usize),
    /// The controller moves leadership to another live ISR member.
    ChangeLeader(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (any::<bool>(), 1u8..4).prop_map(|(acks_all, records)| Action::Produce { acks_all, records }),
        16 => (0usize..6).prop_map(Action::DeliverNext),
        1 => (0usize..6).prop_map(Action::DropNext),
        3 => (1u64..3_000).prop_map(Action::Tick),
        5 => (0usize..3).prop_map(Action::CompleteSync),
        1 => (0usize..3).prop_map(Action::Crash),
        2 => (0usize..3).prop_map(Action::Restart),
        1 => (0usize..3).prop_map(Action::ChangeLeader),
    ]
}

#[derive(Clone, Debug)]
enum Msg {
    Peer(PeerMessage),
    /// From the controller to a broker.
    Controller(ControllerMessage),
    /// From a leader to the controller.
    AlterPartition(AlterPartition),
}

/// A message in flight. `None` as an endpoint is the controller.
#[derive(Clone, Debug)]
struct Envelope {
    from: Option<NodeId>,
    to: Option<NodeId>,
    msg: Msg,
}

impl Envelope {
    fn droppable(&self) -> bool {
        !matches!(
            self.msg,
            Msg::Controller(ControllerMessage::PartitionStates(_))
        )
    }
}

/// A broker's disk: what was written (the page cache) and what a completed sync made
/// durable. A sync makes the state of the page cache at its completion durable, so a
/// truncation not followed by a sync is undone by a crash, as on a real disk.
#[derive(Debug, Default)]
struct Disk {
    written: Vec<StoredBatch>,
    durable: Vec<StoredBatch>,
    syncs_pending: Vec<u64>,
}

impl Disk {
    fn apply(&mut self, op: StorageOp) {
        match op {
            StorageOp::Append {
                base_offset, batch, ..
            } => {
                let end = self.written.last().map(StoredBatch::next_offset);
                assert!(
                    end.is_none_or(|end| end == base_offset),
                    "append at {base_offset} after {end:?}: the core's appends must be contiguous"
                );
                self.written.push(StoredBatch::from_validated(batch));
            }
            StorageOp::Truncate { offset, .. } => self.written.retain(|b| b.last_offset < offset),
            StorageOp::TruncateFully { .. } => self.written.clear(),
            StorageOp::Sync { sync_id, .. } => self.syncs_pending.push(sync_id),
        }
    }
}

/// The test's controller: one partition, replicas n1..n3.
#[derive(Debug)]
struct Controller {
    state: PartitionState,
    live: BTreeSet<NodeId>,
    /// Each broker's current incarnation, as its registration would tell (KIP-903).
    incarnations: BTreeMap<NodeId, u64>,
}

impl Controller {
    fn bump(&mut self, leader_changed: bool) -> Vec<Envelope> {
        if leader_changed {
            self.state.leader_epoch = Epoch(self.state.leader_epoch.0 + 1);
            self.state.leader_incarnation = self.state.leader.map(|l| self.incarnations[&l]);
        }
        self.state.partition_epoch += 1;
        self.notify()
    }

    fn notify(&self) -> Vec<Envelope> {
        self.state
            .replicas
            .iter()
            .filter(|r| self.live.contains(r))
            .map(|&r| Envelope {
                from: None,
                to: Some(r),
                msg: Msg::Controller(ControllerMessage::PartitionStates(vec![(
                    tp(),
                    self.state.clone(),
                )])),
            })
            .collect()
    }

    fn alter_partition(&mut self, from: NodeId, req: AlterPartition) -> Vec<Envelope> {
        let s = &self.state;
        let result = if s.leader != Some(req.leader) {
            Err(ErrorCode::NotLeaderOrFollower)
        } else if req.leader_epoch != s.leader_epoch {
            Err(ErrorCode::FencedLeaderEpoch)
        } else if req.partition_epoch != s.partition_epoch {
            Err(ErrorCode::InvalidUpdateVersion)
        } else if req.new_isr.is_empty() || !req.new_isr.contains(&req.leader) {
            Err(ErrorCode::InvalidRequest)
        } else if req
            .new_isr
            .iter()
            .any(|r| !s.isr.contains(r) && !self.live.contains(r))
        {
            // A crashed broker may not join the ISR (KIP-841), as in eddy-sim's controller.
            Err(ErrorCode::IneligibleReplica)
        } else if req.new_isr.iter().filter(|r| !s.isr.contains(r)).any(|r| {
            let seen = req.added.iter().find(|(n, _)| n == r).map(|&(_, i)| i);
            seen != self.incarnations.get(r).copied()
        }) {
            // Nor one that restarted since the leader saw it fetch (KIP-903).
            Err(ErrorCode::IneligibleReplica)
        } else {
            Ok(())
        };
        let mut out = Vec::new();
        let result = match result {
            Ok(()) => {
                self.state.isr = req.new_isr.clone();
                out = self.bump(false);
                Ok(self.state.clone())
            }
            Err(e) => Err(e),
        };
        out.push(Envelope {
            from: None,
            to: Some(from),
            msg: Msg::Controller(ControllerMessage::AlterPartitionResponse {
                partition: req.partition.clone(),
                request: req,
                result,
            }),
        });
        out
    }

    /// Fencing: a crashed broker leaves the ISR unless it is its last member; if it led,
    /// the first other live ISR member leads, in a new epoch.
    fn crashed(&mut self, node: NodeId) -> Vec<Envelope> {
        self.live.remove(&node);
        let mut changed = false;
        if self.state.isr.len() > 1 && self.state.isr.contains(&node) {
            self.state.isr.retain(|&r| r != node);
            changed = true;
        }
        let led = self.state.leader == Some(node);
        if led {
            self.state.leader = self
                .state
                .isr
                .iter()
                .copied()
                .find(|&r| r != node && self.live.contains(&r));
        }
        if changed || led {
            self.bump(led)
        } else {
            Vec::new()
        }
    }

    /// A broker came back. With sync before ack, an offline partition whose ISR holds
    /// it gets it as leader: the last ISR member's disk holds everything committed (the
    /// HW never passes its durable end). Under FlushPolicy::NEVER it lost what it had,
    /// so electing it would lose committed data by design (Kafka's behaviour without
    /// fsync, which KIP-966 addresses); the partition stays offline instead.
    fn restarted(&mut self, node: NodeId, sync_before_ack: bool) -> Vec<Envelope> {
        self.live.insert(node);
        if sync_before_ack && self.state.leader.is_none() && self.state.isr.contains(&node) {
            self.state.leader = Some(node);
            return self.bump(true);
        }
        Vec::new()
    }

    fn change_leader(&mut self, k: usize) -> Vec<Envelope> {
        let Some(current) = self.state.leader else {
            return Vec::new();
        };
        let candidates: Vec<NodeId> = self
            .state
            .isr
            .iter()
            .copied()
            .filter(|&r| r != current && self.live.contains(&r))
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        self.state.leader = Some(candidates[k % candidates.len()]);
        self.bump(true)
    }
}

/// A batch that was below a leader's high watermark at some step, and the brokers that
/// held it and have not lost it since.
#[derive(Debug)]
struct Committed {
    batch: LogBatch,
    witnesses: BTreeSet<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Property {
    PrefixConsistent,
    LeaderHighWatermarkMonotonic,
    CommittedSurvives,
    AckedAllReplicated,
}

fn holds(log: &[LogBatch], batch: &LogBatch) -> bool {
    let i = log.partition_point(|b| b.base_offset < batch.base_offset);
    log.get(i).is_some_and(|b| b.key() == batch.key())
}

/// [`holds`] over a disk's batches.
fn holds_stored(log: &[StoredBatch], batch: &LogBatch) -> bool {
    let i = log.partition_point(|b| b.base_offset < batch.base_offset);
    log.get(i).is_some_and(|b| {
        let crc = batch::BatchHeader::parse(&b.bytes).expect("valid").crc;
        (b.base_offset, b.last_offset, b.epoch, crc) == batch.key()
    })
}

struct World {
    cfg: NodeConfig,
    sync_before_ack: bool,
    now_ms: TimeMs,
    /// `None` while crashed.
    nodes: BTreeMap<NodeId, Option<Node>>,
    incarnations: BTreeMap<NodeId, u64>,
    disks: BTreeMap<NodeId, Disk>,
    queue: Vec<Envelope>,
    controller: Controller,
    next_token: u64,
    next_record: u64,
    /// Produce requests in flight: token -> (acks, the record values sent).
    produces: BTreeMap<u64, (Acks, Vec<Vec<u8>>)>,
    // What the checks remember between steps.
    max_hw_by_leader_epoch: BTreeMap<(NodeId, Epoch), Offset>,
    committed: Vec<Committed>,
    ack_violations: Vec<String>,
    /// Per broker, the batches (base offset, bytes) it appended and did not truncate
    /// since; a crash does not remove them, because the broker did append them.
    appended: BTreeMap<NodeId, BTreeSet<(u64, Bytes)>>,
    /// Print every action, input and effect: set `REPLICATION_PROPS_TRACE=1` and run one
    /// of the regression tests below (or a new one holding a shrunk schedule).
    trace: bool,
    /// What happened, to show the schedules reach the interesting states.
    seen: BTreeMap<&'static str, u64>,
}

impl World {
    fn new(sync_before_ack: bool) -> World {
        let cfg = node_config(sync_before_ack);
        let state = PartitionState {
            replicas: BROKERS.to_vec(),
            leader: Some(BROKERS[0]),
            leader_incarnation: Some(0),
            leader_epoch: Epoch(0),
            isr: BROKERS.to_vec(),
            partition_epoch: 0,
        };
        let mut world = World {
            cfg,
            sync_before_ack,
            now_ms: 0,
            nodes: BROKERS
                .iter()
                .map(|&id| (id, Some(Node::new(id, 0, cfg, Vec::new()))))
                .collect(),
            incarnations: BROKERS.iter().map(|&id| (id, 0)).collect(),
            disks: BROKERS.iter().map(|&id| (id, Disk::default())).collect(),
            queue: Vec::new(),
            controller: Controller {
                state,
                live: BROKERS.iter().copied().collect(),
                incarnations: BROKERS.iter().map(|&id| (id, 0)).collect(),
            },
            next_token: 0,
            next_record: 0,
            produces: BTreeMap::new(),
            max_hw_by_leader_epoch: BTreeMap::new(),
            committed: Vec::new(),
            ack_violations: Vec::new(),
            appended: BROKERS.iter().map(|&id| (id, BTreeSet::new())).collect(),
            seen: BTreeMap::new(),
            trace: std::env::var_os("REPLICATION_PROPS_TRACE").is_some(),
        };
        for id in BROKERS {
            world.deliver_state(id);
        }
        world
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes[&id].as_ref()
    }

    fn log_of(&self, id: NodeId) -> Option<&[LogBatch]> {
        Some(self.node(id)?.replica(&tp())?.log().batches())
    }

    fn handle(&mut self, id: NodeId, input: Input) {
        let now_ms = self.now_ms;
        let Some(node) = self.nodes.get_mut(&id).and_then(Option::as_mut) else {
            return;
        };
        if self.trace {
            eprintln!("  {now_ms}ms {id} <- {input:?}");
        }
        let effects = node.handle(now_ms, input);
        if self.trace {
            let r = node.replica(&tp()).expect("hosted");
            for e in &effects {
                eprintln!("      -> {e:?}");
            }
            eprintln!(
                "      {id}: leader={} epoch={:?} hw={} leo={} durable={} isr={:?}",
                r.is_leader(),
                r.leader_epoch(),
                r.high_watermark(),
                r.log().log_end_offset(),
                r.log().durable_end_offset(),
                r.state().map(|s| &s.isr)
            );
        }
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => self.queue.push(Envelope {
                    from: Some(id),
                    to: Some(to),
                    msg: Msg::Peer(msg),
                }),
                Effect::Reply { token, resp } => self.on_reply(id, token, resp),
                Effect::Storage(op) => {
                    let appended = self.appended.get_mut(&id).expect("known");
                    match &op {
                        StorageOp::Append {
                            base_offset, batch, ..
                        } => {
                            appended.insert((base_offset.0, batch.clone()));
                        }
                        StorageOp::Truncate { offset, .. } => {
                            *self.seen.entry("follower truncations").or_default() += 1;
                            let written = &self.disks[&id].written;
                            for b in written.iter().filter(|b| b.last_offset >= *offset) {
                                appended.remove(&(b.base_offset.0, b.bytes.clone()));
                            }
                        }
                        StorageOp::TruncateFully { .. } => appended.clear(),
                        StorageOp::Sync { .. } => {}
                    }
                    self.disks.get_mut(&id).expect("a disk").apply(op)
                }
                Effect::Controller(
                    ControllerRequest::Register { .. } | ControllerRequest::Heartbeat { .. },
                ) => {}
                Effect::Controller(ControllerRequest::AlterPartition(req)) => {
                    self.queue.push(Envelope {
                        from: Some(id),
                        to: None,
                        msg: Msg::AlterPartition(req),
                    })
                }
            }
        }
    }

    fn deliver_state(&mut self, id: NodeId) {
        let states = vec![(tp(), self.controller.state.clone())];
        self.handle(
            id,
            Input::Controller(ControllerMessage::PartitionStates(states)),
        );
    }

    /// Property 4, checked at the moment of the ack.
    fn on_reply(&mut self, leader: NodeId, token: u64, resp: ClientResponse) {
        let Some((acks, values)) = self.produces.remove(&token) else {
            return;
        };
        let ClientResponse::Produce {
            error: ErrorCode::None,
            base_offset: Some(base_offset),
            ..
        } = resp
        else {
            return;
        };
        if acks != Acks::All {
            return;
        }
        *self.seen.entry("acks=all acknowledged").or_default() += 1;
        let log = self.log_of(leader).expect("the acking leader has a log");
        let Some(acked) = log.iter().find(|b| b.base_offset == base_offset).cloned() else {
            self.ack_violations.push(format!(
                "{leader} acked token {token} at offset {base_offset}, which starts no batch of its log"
            ));
            return;
        };
        let acked_bytes = acked
            .bytes
            .clone()
            .expect("these nodes keep every batch in memory");
        let stored: Vec<Vec<u8>> = batch::records(&acked_bytes)
            .expect("a stored batch decodes")
            .iter()
            .map(|r| r.value.expect("our records have values").to_vec())
            .collect();
        if stored != values {
            self.ack_violations.push(format!(
                "{leader} acked token {token} at offset {base_offset}, which holds other records"
            ));
        }
        let key = (acked.base_offset.0, acked_bytes);
        let appended: Vec<NodeId> = BROKERS
            .into_iter()
            .filter(|n| self.appended[n].contains(&key))
            .collect();
        if appended.len() < usize::from(MIN_INSYNC_REPLICAS) {
            self.ack_violations.push(format!(
                "{leader} acked (acks=all) the batch at {base_offset} appended only by {appended:?}"
            ));
        }
        if self.sync_before_ack {
            let synced: Vec<NodeId> = BROKERS
                .into_iter()
                .filter(|n| holds_stored(&self.disks[n].durable, &acked))
                .collect();
            if synced.len() < usize::from(MIN_INSYNC_REPLICAS) {
                self.ack_violations.push(format!(
                    "{leader} acked (acks=all, sync before ack) the batch at {base_offset} synced only by {synced:?}"
                ));
            }
        }
    }

    fn step(&mut self, action: &Action) {
        if self.trace {
            eprintln!("{action:?}   controller: {:?}", self.controller.state);
        }
        match *action {
            Action::Produce { acks_all, records } => {
                let Some(leader) = self.controller.state.leader else {
                    return;
                };
                let mut builder = BatchBuilder::new();
                let mut values = Vec::new();
                for _ in 0..records {
                    let value = format!("r{}", self.next_record).into_bytes();
                    self.next_record += 1;
                    builder.push(NewRecord {
                        value: Some(Bytes::from(value.clone())),
                        timestamp_ms: self.now_ms as i64,
                        ..NewRecord::default()
                    });
                    values.push(value);
                }
                let acks = if acks_all { Acks::All } else { Acks::Leader };
                self.next_token += 1;
                let token = self.next_token;
                self.produces.insert(token, (acks, values));
                let req = ClientRequest::Produce {
                    partition: tp(),
                    acks,
                    timeout_ms: PRODUCE_TIMEOUT_MS,
                    batch: builder.build(),
                };
                self.handle(leader, Input::Client { token, req });
            }
            Action::DeliverNext(k) => {
                if self.queue.is_empty() {
                    return;
                }
                let envelope = self.queue.remove(k % self.queue.len());
                self.deliver(envelope);
            }
            Action::DropNext(k) => {
                let droppable: Vec<usize> = (0..self.queue.len())
                    .filter(|&i| self.queue[i].droppable())
                    .collect();
                if !droppable.is_empty() {
                    self.queue.remove(droppable[k % droppable.len()]);
                }
            }
            Action::Tick(ms) => {
                self.now_ms += ms;
                for id in BROKERS {
                    self.handle(id, Input::Tick);
                }
            }
            Action::CompleteSync(i) => {
                let id = BROKERS[i % BROKERS.len()];
                if self.node(id).is_none() {
                    return;
                }
                let disk = self.disks.get_mut(&id).expect("a disk");
                if disk.syncs_pending.is_empty() {
                    return;
                }
                let sync_id = disk.syncs_pending.remove(0);
                disk.durable = disk.written.clone();
                let done = StorageDone::Synced {
                    partition: tp(),
                    sync_id,
                };
                self.handle(id, Input::Storage(done));
            }
            Action::Crash(i) => self.crash(BROKERS[i % BROKERS.len()]),
            Action::Restart(i) => self.restart(BROKERS[i % BROKERS.len()]),
            Action::ChangeLeader(k) => {
                let out = self.controller.change_leader(k);
                self.queue.extend(out);
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        match (envelope.to, envelope.msg) {
            (Some(to), Msg::Peer(msg)) => {
                let from = envelope.from.expect("peer messages come from a broker");
                self.handle(to, Input::Peer { from, msg });
            }
            (Some(to), Msg::Controller(msg)) => self.handle(to, Input::Controller(msg)),
            (None, Msg::AlterPartition(req)) => {
                let from = envelope.from.expect("AlterPartition comes from a broker");
                let out = self.controller.alter_partition(from, req);
                self.queue.extend(out);
            }
            (to, msg) => unreachable!("{msg:?} addressed to {to:?}"),
        }
    }

    /// The broker's memory is gone, its disk reverts to what was synced, and its network
    /// connections die with every message on them.
    fn crash(&mut self, id: NodeId) {
        if self.nodes[&id].is_none() {
            return;
        }
        self.nodes.insert(id, None);
        let disk = self.disks.get_mut(&id).expect("a disk");
        disk.written = disk.durable.clone();
        disk.syncs_pending.clear();
        self.queue
            .retain(|e| e.from != Some(id) && e.to != Some(id));
        let durable = &self.disks[&id].durable;
        for c in &mut self.committed {
            if !(self.sync_before_ack && holds_stored(durable, &c.batch)) {
                c.witnesses.remove(&id);
            }
        }
        let out = self.controller.crashed(id);
        self.queue.extend(out);
    }

    fn restart(&mut self, id: NodeId) {
        if self.nodes[&id].is_some() {
            return;
        }
        let incarnation = self.incarnations.get_mut(&id).expect("known");
        *incarnation += 1;
        let recovered = self.disks[&id]
            .durable
            .iter()
            .map(|b| b.bytes.clone().into())
            .collect();
        let node = Node::new(id, *incarnation, self.cfg, vec![(tp(), recovered)]);
        self.controller.incarnations.insert(id, *incarnation);
        self.nodes.insert(id, Some(node));
        let out = self.controller.restarted(id, self.sync_before_ack);
        self.queue
            .extend(out.into_iter().filter(|e| e.to != Some(id)));
        self.deliver_state(id);
    }

    /// Updates what the checks remember, then checks every property; returns the first
    /// violation of `property`.
    fn check(&mut self, property: Property) -> Result<(), String> {
        let live: Vec<NodeId> = BROKERS
            .into_iter()
            .filter(|&id| self.log_of(id).is_some())
            .collect();
        let mut violations: Vec<(Property, String)> = Vec::new();

        // (1) Prefix consistency below the smaller high watermark.
        for (i, &a) in live.iter().enumerate() {
            for &b in &live[i + 1..] {
                let ra = self.node(a).and_then(|n| n.replica(&tp())).expect("live");
                let rb = self.node(b).and_then(|n| n.replica(&tp())).expect("live");
                let hw = ra.high_watermark().min(rb.high_watermark());
                let below = |l: &[LogBatch]| -> Vec<LogBatch> {
                    l.iter().filter(|x| x.base_offset < hw).cloned().collect()
                };
                let (la, lb) = (below(ra.log().batches()), below(rb.log().batches()));
                if la
                    .iter()
                    .map(LogBatch::key)
                    .ne(lb.iter().map(LogBatch::key))
                {
                    let brief = |l: &[LogBatch]| -> Vec<(u64, u64, u32)> {
                        l.iter()
                            .map(|x| (x.base_offset.0, x.last_offset.0, x.epoch.0))
                            .collect()
                    };
                    violations.push((
                        Property::PrefixConsistent,
                        format!(
                            "{a} and {b} differ below HW {hw}: {a} has (base, last, epoch) {:?}, {b} has {:?}",
                            brief(&la),
                            brief(&lb)
                        ),
                    ));
                }
            }
        }

        // (2) A leader's HW never decreases within its epoch.
        for &id in &live {
            let r = self.nodes[&id]
                .as_ref()
                .and_then(|n| n.replica(&tp()))
                .expect("live");
            if !r.is_leader() {
                continue;
            }
            let epoch = r.leader_epoch().expect("a leader has an epoch");
            let hw = r.high_watermark();
            let max = self.max_hw_by_leader_epoch.entry((id, epoch)).or_insert(hw);
            if hw < *max {
                violations.push((
                    Property::LeaderHighWatermarkMonotonic,
                    format!("{id} leading epoch {epoch} moved its HW back from {max} to {hw}"),
                ));
            }
            *max = (*max).max(hw);

            for b in r.log().batches() {
                if b.last_offset < hw && !self.committed.iter().any(|c| c.batch.key() == b.key()) {
                    self.committed.push(Committed {
                        batch: b.clone(),
                        witnesses: BTreeSet::new(),
                    });
                }
            }
        }

        // (3) Committed batches stay on the current leader while a copy survives.
        let leader = self
            .controller
            .state
            .leader
            .filter(|l| self.controller.live.contains(l));
        for c in &mut self.committed {
            for &id in &live {
                let log = self.nodes[&id]
                    .as_ref()
                    .and_then(|n| n.replica(&tp()))
                    .expect("live")
                    .log()
                    .batches();
                if holds(log, &c.batch) {
                    c.witnesses.insert(id);
                }
            }
        }
        if let Some(leader) = leader {
            let leader_log = self
                .log_of(leader)
                .expect("the controller's leader is live");
            for c in &self.committed {
                let surviving: Vec<NodeId> = c
                    .witnesses
                    .iter()
                    .copied()
                    .filter(|w| live.contains(w))
                    .collect();
                if !surviving.is_empty() && !holds(leader_log, &c.batch) {
                    violations.push((
                        Property::CommittedSurvives,
                        format!(
                            "committed batch at {} (epoch {}) is missing from leader {leader} (epoch {}) though {surviving:?} held it",
                            c.batch.base_offset, c.batch.epoch, self.controller.state.leader_epoch
                        ),
                    ));
                }
            }
        }

        // (4) Recorded at the time of each ack.
        for v in self.ack_violations.drain(..) {
            violations.push((Property::AckedAllReplicated, v));
        }

        match violations.into_iter().find(|(p, _)| *p == property) {
            Some((_, v)) => Err(v),
            None => Ok(()),
        }
    }
}

fn run(sync_before_ack: bool, actions: &[Action], property: Property) -> Result<(), TestCaseError> {
    let mut world = World::new(sync_before_ack);
    world
        .check(property)
        .map_err(|v| TestCaseError::fail(format!("before any action: {v}")))?;
    for (i, action) in actions.iter().enumerate() {
        world.step(action);
        world
            .check(property)
            .map_err(|v| TestCaseError::fail(format!("after step {i} ({action:?}): {v}")))?;
    }
    Ok(())
}

fn schedule() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(action(), 1..ACTIONS_MAX)
}

macro_rules! properties {
    ($module:ident, $sync_before_ack:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig {
                    // A failure is reported with its shrunk schedule; no regression file
                    // is written next to this one.
                    failure_persistence: None,
                    ..ProptestConfig::with_cases(2048)
                })]

                #[test]
                fn replicas_stay_prefix_consistent_below_high_watermark(actions in schedule()) {
                    run($sync_before_ack, &actions, Property::PrefixConsistent)?;
                }

                #[test]
                fn leader_high_watermark_never_decreases_within_an_epoch(actions in schedule()) {
                    run($sync_before_ack, &actions, Property::LeaderHighWatermarkMonotonic)?;
                }

                #[test]
                fn committed_batch_stays_on_the_leader_while_a_copy_survives(actions in schedule()) {
                    run($sync_before_ack, &actions, Property::CommittedSurvives)?;
                }

                #[test]
                fn acks_all_ack_means_min_insync_replicas_appended(actions in schedule()) {
                    run($sync_before_ack, &actions, Property::AckedAllReplicated)?;
                }
            }
        }
    };
}

properties!(flush_never, false);
properties!(sync_before_ack, true);

/// Guards against a vacuous harness: on a calm schedule the properties above have
/// something to check — batches get committed on all three brokers and acks=all is
/// answered.
#[test]
fn harness_commits_and_acknowledges_on_a_calm_schedule() {
    for sync_before_ack in [false, true] {
        let mut world = World::new(sync_before_ack);
        for round in 0..20 {
            if round % 4 == 0 {
                world.step(&Action::Produce {
                    acks_all: true,
                    records: 2,
                });
            }
            while !world.queue.is_empty() {
                world.step(&Action::DeliverNext(0));
                for i in 0..3 {
                    world.step(&Action::CompleteSync(i));
                }
            }
            world.step(&Action::Tick(100));
            for i in 0..3 {
                world.step(&Action::CompleteSync(i));
            }
        }
        world
            .check(Property::CommittedSurvives)
            .expect("a calm schedule keeps committed data");
        assert_eq!(
            world.committed.len(),
            5,
            "every produced batch got committed"
        );
        for id in BROKERS {
            let batches = world.log_of(id).expect("live").len();
            assert_eq!(batches, 5, "{id} holds every batch");
        }
        assert!(
            world.produces.is_empty(),
            "every acks=all produce was answered"
        );
        assert_eq!(world.seen["acks=all acknowledged"], 5, "and acknowledged");
    }
}

/// Runs one schedule and checks every property after every step.
fn run_all(sync_before_ack: bool, actions: &[Action]) -> Result<(), String> {
    let mut world = World::new(sync_before_ack);
    for (i, action) in actions.iter().enumerate() {
        world.step(action);
        for property in [
            Property::PrefixConsistent,
            Property::LeaderHighWatermarkMonotonic,
            Property::CommittedSurvives,
            Property::AckedAllReplicated,
        ] {
            world
                .check(property)
                .map_err(|v| format!("after step {i} ({action:?}): {v}"))?;
        }
    }
    Ok(())
}

// Regressions: schedules the properties above found, frozen (shrunk by hand to the
// fewest steps). Both fail today; each comment says what goes wrong.

/// The leader n1 proposes shrinking the ISR to [n1]; the controller accepts and n1
/// applies the new state. A fetch from n2 makes n1 propose [n1, n2]. Then the *late*
/// answer to the first proposal arrives: `Replica::on_alter_partition_response` clears
/// `alter_in_flight` whatever request the answer belongs to, so n1 forgets the pending
/// expansion and computes the HW over [n1] alone. It commits offset 0 that n2 does not
/// have; the controller then accepts [n1, n2], n2 becomes leader, and the committed batch
/// is gone. (A rejected duplicate of a resent proposal does the same.) Kafka keeps the
/// pending ISR until the answer to *that* request, or newer metadata, arrives.
#[test]
fn late_alter_partition_answer_does_not_drop_the_pending_isr_expansion() {
    use Action::*;
    let schedule = [
        Tick(2500),
        Tick(1600),
        Tick(2000),
        DeliverNext(2),
        DeliverNext(5),
        DeliverNext(0),
        DeliverNext(6),
        Produce {
            acks_all: false,
            records: 1,
        },
        DeliverNext(6),
        ChangeLeader(0),
    ];
    run_all(false, &schedule).expect("no property is violated");
}

/// n3 restarts, catches up, and its fetch makes the leader propose ISR [n1, n2, n3].
/// Before the controller sees the proposal, n3 crashes again (it is not in the ISR, so
/// nothing changes and no epoch moves) and restarts with an empty log. The controller
/// accepts the proposal — nothing in `AlterPartition` or in a follower's `Fetch` says
/// which incarnation of n3 the leader saw — so an empty n3 joins the ISR and can be
/// elected, losing committed (and, with acks=all, acknowledged) data. Kafka closes this
/// with the broker epoch in Fetch and AlterPartition (KIP-903).
#[test]
fn isr_expansion_seen_from_a_previous_incarnation_is_refused() {
    use Action::*;
    let schedule = [
        Crash(2),
        DeliverNext(1),
        DeliverNext(1),
        Produce {
            acks_all: true,
            records: 1,
        },
        DeliverNext(0),
        DeliverNext(0),
        DeliverNext(0),
        Restart(2),
        DeliverNext(0),
        DeliverNext(0),
        DeliverNext(0),
        Crash(2),
        Restart(2),
        DeliverNext(0),
        ChangeLeader(1),
    ];
    run_all(false, &schedule).expect("no property is violated");
}

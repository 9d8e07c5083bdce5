//! The simulated world: brokers running the core, the metadata quorum's voters beside
//! them, clients, the network, the disks and the faults, all driven by one event queue ordered by
//! (time, sequence number) and one RNG seeded from the run's seed.
//!
//! Each event is hashed into the trace; the effects a broker returns become network
//! messages, disk writes and observations for the checkers. Nothing here reads the wall
//! clock or any ambient randomness, so a seed always replays the same run.

mod admin;
mod clients;
mod faults;
mod members;
mod voters;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{Hash, Hasher};
use std::io::Write;

use eddy_core::batch::BatchHeader;
use eddy_core::config::BrokerConfig;
use eddy_core::controller::ControllerConfig;
use eddy_core::log::{resolve_batches, FetchedBatch, RecoveredBatch};
use eddy_core::message::{
    ClientRequest, ClientResponse, ControllerMessage, ControllerRequest, Effect, Input,
    PeerMessage, StorageDone, StorageOp,
};
use eddy_core::node::{Node, NodeConfig};
use eddy_core::quorum::{DurableState, RaftConfig, RaftMessage};
use eddy_core::{ErrorCode, NodeId, Offset, TimeMs, TopicPartition};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::consumer::Member;
use crate::disk::SimDisk;
use crate::history::{AcksMode, BatchId, BatchRef, Observation, Part};
use crate::invariants::{CheckContext, CheckerSet};
use crate::network::{Endpoint, Network};
use crate::raft_disk::RaftDisk;
use crate::scenario::{AcksSpec, FaultAction, Scenario, Target};
use crate::trace::TraceHasher;
use crate::workload::{ClientAction, ClientEnv, Producer, Reader};
use crate::{Failover, Rebalance, RunReport};
use eddy_core::controller::voter::Voter;
use eddy_core::controller::{MetadataFollower, MetadataMember};
use eddy_core::metadata::PartitionState;

/// How often each broker's timers are checked.
const BROKER_TICK_MS: u64 = 10;

/// The bytes of committed batches a simulated broker's partition log keeps in memory:
/// about two small batches, so that reads of anything older go to the disk.
const RESIDENT_TAIL_BYTES: usize = 512;
/// How often the controller checks broker sessions.
const CONTROLLER_TICK_MS: u64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    Producer(u32),
    Reader(u32),
    Member(u32),
}

impl Client {
    fn endpoint(self) -> Endpoint {
        match self {
            Client::Producer(i) => Endpoint::Producer(i),
            Client::Reader(i) => Endpoint::Reader(i),
            Client::Member(i) => Endpoint::Member(i),
        }
    }
}

#[derive(Debug, Hash)]
enum Payload {
    Peer(PeerMessage),
    Request {
        token: u64,
        req: ClientRequest,
    },
    Response {
        corr: u64,
        resp: ClientResponse,
    },
    /// The connection carrying a client's request broke or was refused.
    Disconnected {
        corr: u64,
    },
    ToController(ControllerRequest),
    FromController(ControllerMessage),
    /// Between controller voters.
    Raft(RaftMessage),
    /// A voter's answer to a controller request it cannot take: it is not the active
    /// controller (`leader`: the one it knows of).
    NotController {
        leader: Option<NodeId>,
    },
    /// An admin request: from the admin client to a broker, or forwarded by a broker to
    /// the controller it knows of. `id` names the client's attempt.
    AdminRequest {
        id: u64,
        input: eddy_core::controller::ControllerInput,
    },
    /// A broker's answer to the admin client's attempt `id`.
    AdminResponse {
        id: u64,
        result: Result<(), ErrorCode>,
    },
}

#[derive(Debug, Hash)]
enum Event {
    Deliver {
        from: Endpoint,
        to: Endpoint,
        payload: Payload,
    },
    BrokerTick {
        broker: u32,
        incarnation: u64,
    },
    SyncDone {
        broker: u32,
        incarnation: u64,
        partition: TopicPartition,
        sync_id: u64,
    },
    ControllerTick,
    /// A controller voter's Raft write is durable (and every write before it).
    RaftSyncDone {
        broker: u32,
        incarnation: u64,
        write: u64,
    },
    /// The admin client creates topics whose time has come.
    AdminTick,
    ClientWake {
        client: Client,
    },
    FaultStart {
        fault: u64,
    },
    FaultEnd {
        fault: u64,
    },
    HealAll,
    /// Something happens to a consumer-group member (`world/members.rs`).
    Member {
        slot: u32,
        op: members::MemberOp,
    },
}

/// An event in the queue. Boxed: the heap moves entries on every push and pop, and an
/// event is large (it carries messages), a box is three words.
struct Scheduled {
    at: TimeMs,
    seq: u64,
    event: Box<Event>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A broker's clock: runs at `rate` times simulated time from an anchor.
#[derive(Clone, Copy, Debug)]
struct Clock {
    anchor_sim: TimeMs,
    anchor_node: TimeMs,
    rate: f64,
}

impl Clock {
    fn at(&self, sim: TimeMs) -> TimeMs {
        self.anchor_node + ((sim - self.anchor_sim) as f64 * self.rate) as u64
    }

    fn set(&mut self, sim: TimeMs, rate: f64, jump_ms: u64) {
        self.anchor_node = self.at(sim) + jump_ms;
        self.anchor_sim = sim;
        self.rate = rate;
    }
}

struct Broker {
    id: NodeId,
    node: Option<Node>,
    incarnation: u64,
    disk: SimDisk,
    /// What recovery will hand the node on restart.
    recovered: Vec<(TopicPartition, Vec<RecoveredBatch>)>,
    paused: bool,
    held: Vec<Event>,
    clock: Clock,
    slow_disk_factor: u64,
    /// This process's place in the metadata quorum: a controller voter (KRaft combined
    /// mode), or, for a broker that is no voter, a Raft observer of the metadata log.
    member: Option<MetadataMember>,
    /// The partition states this process's node was last given from its broker's
    /// committed image (its voter's or its observer's).
    given: BTreeMap<TopicPartition, PartitionState>,
    /// Whether this process's image caught up with the metadata log since it started:
    /// until then its node is given nothing (KRaft's initial catch-up).
    caught_up: bool,
    raft_disk: RaftDisk,
    /// What recovery will hand the voter on restart.
    recovered_raft: DurableState,
    /// The voter this broker takes for the active controller, and when it last answered.
    controller_hint: Option<NodeId>,
    controller_heard_ms: TimeMs,
    /// The voter to try next when no controller is known.
    next_voter: u32,
}

/// What a client is woken with.
enum Reply {
    None,
    Response(u64, ClientResponse),
    Disconnected(u64),
}

/// What a token handed to a broker stands for.
struct Token {
    client: Client,
    broker: u32,
    corr: u64,
    /// For produce requests: the batch and acks, to report the broker's ack.
    produce: Option<(Part, BatchId, AcksMode)>,
}

/// Running counts for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Batches fetches read from a broker's disk (the log no longer held them).
    pub disk_reads: u64,
    pub events: u64,
    pub messages: u64,
    pub sent: u64,
    pub acked: u64,
    pub read: u64,
    pub crashes: u64,
    pub faults: u64,
    pub torn_tails: u64,
}

pub(crate) struct World<'a> {
    scenario: &'a Scenario,
    seed: u64,
    now: TimeMs,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    rng: ChaCha8Rng,
    node_cfg: NodeConfig,
    brokers: Vec<Broker>,
    raft_cfg: RaftConfig,
    controller_cfg: ControllerConfig,
    /// The highest index any voter applied: the committed image the model follows.
    commit_frontier: u64,
    admin: admin::AdminClient,
    /// Admin requests brokers hold until their image has the topic.
    admin_waiting: Vec<admin::AdminWaiting>,
    failovers: Vec<Failover>,
    /// The broker of the failover in progress, and whether it led partitions.
    failing_over: Option<(NodeId, bool)>,
    network: Network,
    producers: Vec<Producer>,
    readers: Vec<Reader>,
    /// Consumer-group members, every group's slots in one list.
    members: Vec<Member>,
    /// The rebalance being measured, per group, and those measured.
    probes: BTreeMap<u32, members::Probe>,
    rebalances: Vec<Rebalance>,
    /// The next id for a member's network cut (beside the faults' ids).
    next_member_cut: u64,
    tokens: BTreeMap<u64, Token>,
    next_token: u64,
    parts: BTreeMap<TopicPartition, Part>,
    batch_ids: BTreeMap<u32, BatchId>,
    checkers: CheckerSet,
    last_hw: BTreeMap<(NodeId, Part), (Offset, bool)>,
    last_isr: BTreeMap<Part, Vec<NodeId>>,
    last_view: BTreeMap<(NodeId, Part), (u32, u32, bool)>,
    /// Per (broker, incarnation): the lowest log index any image reported unfencing it
    /// at (`Observation::BrokerUnfenced`).
    unfence_seen: BTreeMap<(NodeId, u64), u64>,
    /// Faults scheduled to start, by id (kept out of the events: they hold floats).
    planned: BTreeMap<u64, FaultAction>,
    /// What each active fault did, to undo it when it ends.
    active: BTreeMap<u64, (FaultAction, u32)>,
    next_fault: u64,
    hasher: TraceHasher,
    trace: Option<&'a mut dyn Write>,
    stats: Stats,
    healed: bool,
}

/// Why a scenario could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("scenario {scenario}: broker_config: {source}")]
    Config {
        scenario: String,
        source: Box<eddy_core::config::ConfigError>,
    },
    #[error("scenario {scenario}: an idempotent producer needs acks = \"all\" (Kafka refuses enable.idempotence with other acks)")]
    IdempotenceNeedsAcksAll { scenario: String },
}

impl<'a> World<'a> {
    pub(crate) fn new(
        scenario: &'a Scenario,
        seed: u64,
        trace: Option<&'a mut dyn Write>,
    ) -> Result<World<'a>, SetupError> {
        let (broker_cfg, _warnings) = BrokerConfig::from_pairs(
            scenario
                .broker_config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|source| SetupError::Config {
            scenario: scenario.name.clone(),
            source: Box::new(source),
        })?;
        let mut node_cfg = NodeConfig::from_broker_config(&broker_cfg);
        // A small in-memory tail, so that most fetches of committed data are served by
        // reading the simulated disk, the way a real broker reads its segment files.
        node_cfg.replica.resident_tail_bytes = Some(RESIDENT_TAIL_BYTES);
        let broker_ids: Vec<NodeId> = (1..=scenario.brokers).map(NodeId).collect();
        let topics: Vec<(String, u32, u32)> = scenario
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions, t.replication_factor))
            .collect();
        let all_tps: BTreeSet<TopicPartition> = topics
            .iter()
            .flat_map(|(name, count, _)| (0..*count).map(|p| TopicPartition::new(name.clone(), p)))
            .collect();
        let parts: BTreeMap<TopicPartition, Part> = all_tps.into_iter().zip(0..).collect();
        let ctx = CheckContext {
            min_insync_replicas: broker_cfg.min_insync_replicas,
            sync_before_ack: broker_cfg.sync_before_ack(),
            allow_unsynced_loss: scenario.expect.allow_unsynced_loss,
            readers: scenario.readers.count,
            liveness_bound_ms: scenario.liveness_bound_ms,
            partition_names: parts.keys().map(|tp| tp.to_string()).collect(),
            quorum: true,
            max_controller_elections: scenario.expect.max_controller_elections,
            isrs_complete_at_end: scenario.expect.isrs_complete_at_end,
            brokers: scenario.brokers,
            groups: members::group_checks(scenario, &broker_cfg, &parts),
        };
        let mut producers = Vec::new();
        for spec in &scenario.producers {
            if spec.idempotent && spec.acks != AcksSpec::All {
                return Err(SetupError::IdempotenceNeedsAcksAll {
                    scenario: scenario.name.clone(),
                });
            }
            let acks = match spec.acks {
                AcksSpec::Zero => AcksMode::Zero,
                AcksSpec::One => AcksMode::One,
                AcksSpec::All => AcksMode::All,
            };
            let topic_parts: Vec<(Part, TopicPartition)> = parts
                .iter()
                .filter(|(tp, _)| tp.topic == spec.topic)
                .map(|(tp, &p)| (p, tp.clone()))
                .collect();
            for _ in 0..spec.count {
                let index = producers.len() as u32;
                producers.push(Producer::new(
                    index,
                    acks,
                    spec.idempotent,
                    spec.interval_ms,
                    spec.records_per_batch,
                    spec.value_bytes,
                    topic_parts.clone(),
                    scenario.duration_ms - scenario.liveness_bound_ms,
                ));
            }
        }
        let all_parts: Vec<(Part, TopicPartition)> =
            parts.iter().map(|(tp, &p)| (p, tp.clone())).collect();
        // Readers read what producers wrote; `__consumer_offsets` holds the coordinator's
        // batches, which no simulated producer made.
        let data_parts: Vec<(Part, TopicPartition)> = all_parts
            .iter()
            .filter(|(_, tp)| tp.topic != eddy_core::group::OFFSETS_TOPIC)
            .cloned()
            .collect();
        let readers = (0..scenario.readers.count)
            .map(|i| Reader::new(i, data_parts.clone()))
            .collect();
        let members = members::make_members(scenario, &broker_cfg, &parts);
        let brokers = broker_ids
            .iter()
            .map(|&id| Broker {
                id,
                node: Some(Node::new(id, 0, node_cfg, Vec::new())),
                incarnation: 0,
                disk: SimDisk::default(),
                recovered: Vec::new(),
                paused: false,
                held: Vec::new(),
                clock: Clock {
                    anchor_sim: 0,
                    anchor_node: 0,
                    rate: 1.0,
                },
                slow_disk_factor: 1,
                member: None,
                given: BTreeMap::new(),
                caught_up: false,
                raft_disk: RaftDisk::default(),
                recovered_raft: DurableState::default(),
                controller_hint: None,
                controller_heard_ms: 0,
                next_voter: id.0 - 1,
            })
            .collect();
        let mut world = World {
            scenario,
            seed,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            node_cfg,
            brokers,
            raft_cfg: RaftConfig::default(),
            controller_cfg: ControllerConfig::from_broker_config(&broker_cfg),
            commit_frontier: 0,
            admin: admin::AdminClient::default(),
            admin_waiting: Vec::new(),
            failovers: Vec::new(),
            failing_over: None,
            network: Network::new(scenario.network.clone()),
            producers,
            readers,
            members,
            probes: BTreeMap::new(),
            rebalances: Vec::new(),
            next_member_cut: 0,
            tokens: BTreeMap::new(),
            next_token: 0,
            parts,
            batch_ids: BTreeMap::new(),
            checkers: CheckerSet::all(&ctx),
            last_hw: BTreeMap::new(),
            last_isr: BTreeMap::new(),
            last_view: BTreeMap::new(),
            unfence_seen: BTreeMap::new(),
            planned: BTreeMap::new(),
            active: BTreeMap::new(),
            next_fault: 0,
            hasher: TraceHasher::default(),
            trace,
            stats: Stats::default(),
            healed: false,
        };
        for b in 0..world.brokers.len() {
            world.start_voter(b);
        }
        world.schedule_start();
        Ok(world)
    }

    fn schedule(&mut self, at: TimeMs, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event: Box::new(event),
        }));
    }

    fn schedule_start(&mut self) {
        for b in 0..self.brokers.len() as u32 {
            let id = NodeId(b + 1);
            let jitter = self.rng.random_range(0..BROKER_TICK_MS);
            self.schedule(
                jitter,
                Event::BrokerTick {
                    broker: id.0,
                    incarnation: 0,
                },
            );
        }
        self.schedule(CONTROLLER_TICK_MS, Event::ControllerTick);
        self.schedule(0, Event::AdminTick);
        for i in 0..self.producers.len() as u32 {
            let at = self.rng.random_range(50..150);
            self.schedule(
                at,
                Event::ClientWake {
                    client: Client::Producer(i),
                },
            );
        }
        for i in 0..self.readers.len() as u32 {
            let at = self.rng.random_range(50..150);
            self.schedule(
                at,
                Event::ClientWake {
                    client: Client::Reader(i),
                },
            );
        }
        self.schedule_member_events();
        self.schedule_faults();
        self.schedule(self.scenario.faults_until_ms, Event::HealAll);
    }

    /// Runs to the end of the scenario; returns the report.
    pub(crate) fn run(mut self) -> RunReport {
        let end = self.scenario.duration_ms;
        while let Some(Reverse(next)) = self.queue.pop() {
            if next.at > end {
                break;
            }
            self.now = next.at;
            self.stats.events += 1;
            next.at.hash(&mut self.hasher);
            next.seq.hash(&mut self.hasher);
            next.event.hash(&mut self.hasher);
            if let Some(trace) = self.trace.as_mut() {
                let _ = writeln!(trace, "{} #{} {:?}", next.at, next.seq, next.event);
            }
            self.dispatch(*next.event);
        }
        self.now = end;
        self.observe_fenced_leaders();
        self.checkers.finish(end);
        RunReport {
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            sim_time_ms: end,
            trace_hash: self.hasher.finish(),
            violations: self.checkers.violations().to_vec(),
            losses: self.checkers.losses(),
            stats: self.stats,
            failovers: self.failovers,
            rebalances: self.rebalances,
        }
    }

    fn observe(&mut self, obs: Observation) {
        match &obs {
            Observation::Sent { .. } => self.stats.sent += 1,
            Observation::Acked { .. } => self.stats.acked += 1,
            Observation::Read { .. } => self.stats.read += 1,
            _ => {}
        }
        if let Some(trace) = self.trace.as_mut() {
            let _ = match &obs {
                // What survived, in brief: the whole logs would swamp the trace.
                Observation::Crashed {
                    at,
                    node,
                    surviving,
                } => {
                    let ends: Vec<String> = surviving
                        .iter()
                        .map(|(part, batches)| {
                            let end = batches.last().map_or(Offset::ZERO, |b| b.next_offset());
                            format!("part {part}: {} batches up to {end}", batches.len())
                        })
                        .collect();
                    writeln!(
                        trace,
                        "    observe Crashed {{ at: {at}, node: {node}, surviving: [{}] }}",
                        ends.join(", ")
                    )
                }
                obs => writeln!(trace, "    observe {obs:?}"),
            };
        }
        self.checkers.observe(&obs);
    }

    fn broker_index(&self, broker: u32) -> usize {
        (broker - 1) as usize
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, payload } => self.deliver(from, to, payload),
            Event::BrokerTick {
                broker,
                incarnation,
            } => {
                let b = self.broker_index(broker);
                if self.brokers[b].incarnation != incarnation || self.brokers[b].node.is_none() {
                    return;
                }
                if self.brokers[b].paused {
                    self.brokers[b].held.push(Event::BrokerTick {
                        broker,
                        incarnation,
                    });
                    return;
                }
                self.schedule(
                    self.now + BROKER_TICK_MS,
                    Event::BrokerTick {
                        broker,
                        incarnation,
                    },
                );
                self.feed(b, Input::Tick);
                self.with_member(b, |m, now, rng| m.tick(now, rng));
            }
            Event::SyncDone {
                broker,
                incarnation,
                partition,
                sync_id,
            } => {
                let b = self.broker_index(broker);
                if self.brokers[b].incarnation != incarnation || self.brokers[b].node.is_none() {
                    return;
                }
                // The disk finishes regardless of the process; the process learns of it
                // when it runs.
                self.brokers[b].disk.finish_sync(&partition, sync_id);
                if self.brokers[b].paused {
                    self.brokers[b].held.push(Event::SyncDone {
                        broker,
                        incarnation: u64::MAX,
                        partition,
                        sync_id,
                    });
                    return;
                }
                self.feed(
                    b,
                    Input::Storage(StorageDone::Synced { partition, sync_id }),
                );
            }
            Event::ControllerTick => {
                self.schedule(self.now + CONTROLLER_TICK_MS, Event::ControllerTick);
                self.controller_ticks();
            }
            Event::RaftSyncDone {
                broker,
                incarnation,
                write,
            } => self.raft_sync_done(broker, incarnation, write),
            Event::AdminTick => self.admin_tick(),
            Event::ClientWake { client } => self.client_step(client, Reply::None),
            Event::FaultStart { fault } => {
                let action = self.planned.remove(&fault).expect("every fault is planned");
                self.fault_start(fault, action)
            }
            Event::FaultEnd { fault } => self.fault_end(fault),
            Event::HealAll => self.heal_all(),
            Event::Member { slot, op } => self.member_op(slot, op),
        }
    }

    fn deliver(&mut self, from: Endpoint, to: Endpoint, payload: Payload) {
        if self.network.is_cut(from, to) {
            return;
        }
        match (to, payload) {
            (Endpoint::Broker(id), payload) => {
                let b = self.broker_index(id);
                if self.brokers[b].node.is_none() {
                    // Nobody listening: a client's connection is refused at once.
                    if let Payload::Request { token, .. } = payload {
                        self.disconnect(token);
                    }
                    return;
                }
                if self.brokers[b].paused {
                    self.brokers[b]
                        .held
                        .push(Event::Deliver { from, to, payload });
                    return;
                }
                let input = match (from, payload) {
                    (
                        Endpoint::Broker(p),
                        payload @ (Payload::Raft(_) | Payload::ToController(_)),
                    ) => {
                        return self.deliver_to_voter(b, p, payload);
                    }
                    (Endpoint::Broker(p), Payload::NotController { leader }) => {
                        return self.not_controller(b, p, leader);
                    }
                    (from, Payload::AdminRequest { id, input }) => {
                        return self.admin_request(b, from, id, input);
                    }
                    (Endpoint::Broker(_), Payload::AdminResponse { id, result }) => {
                        return self.admin_refused(b, id, result);
                    }
                    (Endpoint::Broker(p), Payload::FromController(msg)) => {
                        self.heard_from_controller(b, p);
                        Input::Controller(msg)
                    }
                    (Endpoint::Broker(p), Payload::Peer(msg)) => Input::Peer {
                        from: NodeId(p),
                        msg,
                    },
                    (_, Payload::Request { token, req }) => Input::Client { token, req },
                    (from, payload) => unreachable!("{from:?} cannot send {payload:?} to a broker"),
                };
                self.feed(b, input);
            }
            (Endpoint::Producer(i), Payload::Response { corr, resp }) => {
                self.client_step(Client::Producer(i), Reply::Response(corr, resp))
            }
            (Endpoint::Reader(i), Payload::Response { corr, resp }) => {
                self.client_step(Client::Reader(i), Reply::Response(corr, resp))
            }
            (Endpoint::Producer(i), Payload::Disconnected { corr }) => {
                self.client_step(Client::Producer(i), Reply::Disconnected(corr))
            }
            (Endpoint::Reader(i), Payload::Disconnected { corr }) => {
                self.client_step(Client::Reader(i), Reply::Disconnected(corr))
            }
            (Endpoint::Member(i), Payload::Response { corr, resp }) => {
                self.client_step(Client::Member(i), Reply::Response(corr, resp))
            }
            (Endpoint::Member(i), Payload::Disconnected { corr }) => {
                self.client_step(Client::Member(i), Reply::Disconnected(corr))
            }
            (Endpoint::Admin, Payload::AdminResponse { id, result }) => {
                self.admin_response(id, result)
            }
            (to, payload) => unreachable!("{payload:?} cannot go to {to:?}"),
        }
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, payload: Payload) {
        self.stats.messages += 1;
        let plan = self.network.plan(&mut self.rng);
        match plan.as_slice() {
            [] => {}
            [delay] => self.schedule(self.now + delay, Event::Deliver { from, to, payload }),
            delays => {
                // Duplicated: only messages that can be cloned are; others go once.
                let copy = match &payload {
                    Payload::Peer(m) => Some(Payload::Peer(m.clone())),
                    Payload::Request { token, req } => Some(Payload::Request {
                        token: *token,
                        req: req.clone(),
                    }),
                    Payload::Response { corr, resp } => Some(Payload::Response {
                        corr: *corr,
                        resp: resp.clone(),
                    }),
                    Payload::ToController(r) => Some(Payload::ToController(r.clone())),
                    Payload::FromController(m) => Some(Payload::FromController(m.clone())),
                    Payload::Disconnected { corr } => Some(Payload::Disconnected { corr: *corr }),
                    Payload::Raft(m) => Some(Payload::Raft(m.clone())),
                    Payload::NotController { leader } => {
                        Some(Payload::NotController { leader: *leader })
                    }
                    Payload::AdminRequest { id, input } => Some(Payload::AdminRequest {
                        id: *id,
                        input: input.clone(),
                    }),
                    Payload::AdminResponse { id, result } => Some(Payload::AdminResponse {
                        id: *id,
                        result: *result,
                    }),
                };
                self.schedule(self.now + delays[0], Event::Deliver { from, to, payload });
                if let Some(copy) = copy {
                    self.schedule(
                        self.now + delays[1],
                        Event::Deliver {
                            from,
                            to,
                            payload: copy,
                        },
                    );
                }
            }
        }
    }

    /// Feeds an input to a running broker and carries out its effects.
    fn feed(&mut self, b: usize, input: Input) {
        let node_now = self.brokers[b].clock.at(self.now);
        let id = self.brokers[b].id;
        let node = self.brokers[b]
            .node
            .as_mut()
            .expect("caller checked the broker runs");
        let effects = node.handle(node_now, input);
        for effect in effects {
            self.apply_effect(b, id, effect);
        }
        self.observe_high_watermarks(b);
    }

    fn part_of(&self, tp: &TopicPartition) -> Part {
        self.parts[tp]
    }

    fn batch_ref(&self, batch: &[u8]) -> BatchRef {
        let header = BatchHeader::parse(batch).expect("brokers store whole batches");
        BatchRef {
            base_offset: Offset(header.base_offset as u64),
            last_offset: Offset(header.last_offset() as u64),
            id: *self
                .batch_ids
                .get(&header.crc)
                .expect("every batch was made by a simulated producer"),
            epoch: header.partition_leader_epoch as u32,
        }
    }

    fn apply_effect(&mut self, b: usize, id: NodeId, effect: Effect) {
        match effect {
            Effect::Send { to, mut msg } => {
                if let PeerMessage::FetchResponse {
                    partition, batches, ..
                } = &mut msg
                {
                    *batches = self.read_stored(b, partition, std::mem::take(batches));
                }
                self.send(
                    Endpoint::Broker(id.0),
                    Endpoint::Broker(to.0),
                    Payload::Peer(msg),
                )
            }
            Effect::Reply { token, mut resp } => {
                if let ClientResponse::Fetch {
                    partition, batches, ..
                } = &mut resp
                {
                    *batches = self.read_stored(b, partition, std::mem::take(batches));
                }
                let Some(t) = self.tokens.remove(&token) else {
                    return;
                };
                if let (
                    Some((part, batch, acks)),
                    ClientResponse::Produce {
                        error: ErrorCode::None,
                        base_offset: Some(base_offset),
                        ..
                    },
                ) = (t.produce, &resp)
                {
                    self.observe(Observation::AckSent {
                        at: self.now,
                        node: id,
                        part,
                        id: batch,
                        base_offset: *base_offset,
                        acks,
                    });
                }
                let to = t.client.endpoint();
                self.send(
                    Endpoint::Broker(id.0),
                    to,
                    Payload::Response { corr: t.corr, resp },
                );
            }
            Effect::Storage(op) => self.storage(b, id, op),
            Effect::Controller(req) => self.send_to_controller(b, req),
        }
    }

    /// The shell's part of a read: batches the log refers to are read from the broker's
    /// disk (the page cache) as they are now; the response ends before the first one
    /// not found whole there.
    fn read_stored(
        &mut self,
        b: usize,
        partition: &TopicPartition,
        batches: Vec<FetchedBatch>,
    ) -> Vec<FetchedBatch> {
        let disk = &self.brokers[b].disk;
        let mut reads = 0;
        let resolved = resolve_batches(batches, |base_offset, len| {
            reads += 1;
            disk.read(partition, base_offset, len)
        });
        self.stats.disk_reads += reads;
        resolved.into_iter().map(FetchedBatch::Bytes).collect()
    }

    fn storage(&mut self, b: usize, id: NodeId, op: StorageOp) {
        match op {
            StorageOp::Append {
                partition, batch, ..
            } => {
                let part = self.part_of(&partition);
                self.name_coordinator_batch(&partition, &batch);
                let batch_ref = self.batch_ref(&batch);
                self.brokers[b].disk.append(&partition, batch);
                self.observe(Observation::Appended {
                    at: self.now,
                    node: id,
                    part,
                    batch: batch_ref,
                });
            }
            StorageOp::Truncate { partition, offset } => {
                let part = self.part_of(&partition);
                self.brokers[b].disk.truncate(&partition, offset);
                self.observe(Observation::Truncated {
                    at: self.now,
                    node: id,
                    part,
                    offset,
                });
            }
            StorageOp::TruncateFully { partition, offset } => {
                let part = self.part_of(&partition);
                self.brokers[b].disk.truncate_fully(&partition);
                self.observe(Observation::TruncatedFully {
                    at: self.now,
                    node: id,
                    part,
                    offset,
                });
            }
            StorageOp::Sync { partition, sync_id } => {
                self.brokers[b].disk.start_sync(&partition, sync_id);
                let [lo, hi] = self.scenario.disk.sync_latency_ms;
                let latency =
                    self.rng.random_range(lo..=hi.max(lo)) * self.brokers[b].slow_disk_factor;
                let incarnation = self.brokers[b].incarnation;
                self.schedule(
                    self.now + latency,
                    Event::SyncDone {
                        broker: id.0,
                        incarnation,
                        partition,
                        sync_id,
                    },
                );
            }
        }
    }

    fn observe_high_watermarks(&mut self, b: usize) {
        let id = self.brokers[b].id;
        let Some(node) = &self.brokers[b].node else {
            return;
        };
        let mut changed = Vec::new();
        let mut views = Vec::new();
        for replica in node.replicas() {
            let part = self.parts[replica.partition()];
            let now = (replica.high_watermark(), replica.is_leader());
            if self.last_hw.get(&(id, part)) != Some(&now) {
                changed.push((part, now));
            }
            if let Some(state) = replica.state() {
                let view = (
                    state.leader_epoch.0,
                    state.partition_epoch,
                    replica.is_leader(),
                );
                if self.last_view.get(&(id, part)) != Some(&view) {
                    views.push((part, view));
                }
            }
        }
        for (part, view) in views {
            self.last_view.insert((id, part), view);
            let (leader_epoch, partition_epoch, leader) = view;
            self.observe(Observation::PartitionView {
                at: self.now,
                node: id,
                part,
                leader_epoch,
                partition_epoch,
                leader,
            });
        }
        for (part, (hw, leader)) in changed {
            self.last_hw.insert((id, part), (hw, leader));
            self.observe(Observation::HighWatermark {
                at: self.now,
                node: id,
                part,
                hw,
                leader,
            });
        }
    }
}

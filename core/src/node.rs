//! One broker: the replicas it hosts, its group coordinator, and the routing of inputs
//! to them.
//!
//! A `Node` is what a shell drives. Feed it inputs with [`Node::handle`] and carry out
//! the effects it returns; it holds no sockets, files, clocks or threads. The same node
//! runs in the simulator and (with issue 5) behind the real Kafka listener.
//!
//! The group coordinator is wired in here, once, so the simulator and the real broker
//! share one integration. It persists through this node's own replicas of
//! `__consumer_offsets`, as Kafka's `GroupMetadataManager` does through its
//! `ReplicaManager`:
//!
//! ```text
//!  ClientRequest::Group ──▶ GroupInput::Request ──▶ GroupCoordinator ──▶ Reply ──▶ ClientResponse::Group
//!                                                         │
//!                                   Append { partition, batch, append_id }
//!                                                         ▼
//!       produce with acks=all and an internal token into __consumer_offsets-{partition}
//!                                                         │ the produce's reply (committed, or failed),
//!                                                         ▼ never shown to the shell
//!                                      GroupInput::AppendDone { append_id, result }
//!
//!  a replica of __consumer_offsets-p becomes leader ──▶ BeginLoad { p }, Load { p, its log }
//!  it stops leading (new state, new epoch, removed) ──▶ Unload { p }
//! ```
//!
//! The coordinator leads exactly the `__consumer_offsets` partitions this node leads, so
//! a group whose partition is led elsewhere is answered NOT_COORDINATOR. Answering
//! FindCoordinator (from cluster metadata, with [`crate::group::offsets_partition_for`])
//! and creating `__consumer_offsets` are the shell's and the controller's jobs.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::group::{GroupConfig, GroupCoordinator, GroupEffect, GroupInput, OFFSETS_TOPIC};
use crate::log::PartitionLog;
use crate::message::{
    Acks, ClientRequest, ClientResponse, ControllerMessage, ControllerRequest, Effect, Input,
    PeerMessage, StorageDone, StorageOp,
};
use crate::metadata::PartitionState;
use crate::replica::{Replica, ReplicaConfig};
use crate::types::{Epoch, NodeId, TimeMs, TopicPartition};

/// The smallest token the node uses for requests of its own (the group coordinator's
/// appends, made as produce requests to its replicas). A shell numbers its client
/// requests below it, so a reply can never go to the wrong requester; the node asserts
/// it, and never hands a reply to one of its own tokens to the shell.
pub const INTERNAL_TOKEN_MIN: u64 = 1 << 63;

/// How long a group append waits for the ISR before failing with REQUEST_TIMED_OUT:
/// Kafka's default `offsets.commit.timeout.ms`.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// The most coordinator inputs one node input may lead to. Each is a request, a timer
/// tick, a leadership change or the outcome of an append the coordinator asked for, so
/// reaching this bound means two of them feed each other in a loop: a bug.
const GROUP_STEPS_MAX: usize = 1_000_000;

/// The settings a node runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub replica: ReplicaConfig,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// The group coordinator's settings, `offsets.topic.num.partitions` among them.
    pub group: GroupConfig,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            replica: ReplicaConfig::default(),
            heartbeat_interval_ms: 2_000,
            group: GroupConfig::default(),
        }
    }
}

impl NodeConfig {
    /// The node settings a broker config asks for.
    pub fn from_broker_config(cfg: &crate::config::BrokerConfig) -> NodeConfig {
        NodeConfig {
            replica: ReplicaConfig {
                min_insync_replicas: cfg.min_insync_replicas,
                replica_lag_time_max_ms: cfg.replica_lag_time_max_ms,
                replica_fetch_wait_max_ms: cfg.replica_fetch_wait_max_ms,
                replica_fetch_max_bytes: cfg.replica_fetch_max_bytes,
                replica_fetch_backoff_ms: cfg.replica_fetch_backoff_ms,
                replica_fetch_timeout_ms: cfg.replica_socket_timeout_ms,
                message_max_bytes: cfg.message_max_bytes,
                flush: crate::log::FlushPolicy {
                    interval_messages: cfg.log_flush_interval_messages,
                    interval_ms: cfg.log_flush_interval_ms,
                },
                resident_tail_bytes: None,
            },
            heartbeat_interval_ms: cfg.broker_heartbeat_interval_ms,
            group: GroupConfig::from_broker(cfg),
        }
    }
}

#[derive(Debug)]
pub struct Node {
    id: NodeId,
    incarnation: u64,
    cfg: NodeConfig,
    replicas: BTreeMap<TopicPartition, Replica>,
    /// When the next Register (while unregistered) or Heartbeat goes out.
    next_heartbeat_ms: TimeMs,
    /// Whether the controller answered this incarnation registered (KIP-631): until it
    /// does, the node sends Register instead of Heartbeat; a heartbeat answered
    /// BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH makes it register again.
    registered: bool,
    /// The last metadata-log index the broker applied to its image, as the shell reports
    /// it ([`Node::set_metadata_offset`]); heartbeats carry it.
    metadata_offset: u64,
    /// Whether the controller has answered a heartbeat of this incarnation with "not
    /// fenced": it judged the broker's image caught up with its registration (KIP-631).
    /// See [`Node::is_caught_up`].
    caught_up: bool,
    /// What the registration tells the controller (KIP-631's listeners and rack).
    listeners: Vec<String>,
    rack: Option<String>,
    /// Cuts recovery found necessary, handed to the shell with the first effects.
    startup: Vec<Effect>,
    /// The coordinator of the groups in the `__consumer_offsets` partitions led here.
    group: GroupCoordinator,
    /// The `__consumer_offsets` partitions the coordinator was given (BeginLoad and
    /// Load), with the leader epoch this node led them in: always the partitions whose
    /// replica here is leader, at the replica's current epoch.
    group_partitions: BTreeMap<u32, Epoch>,
    /// The coordinator's appends in flight as produce requests: internal token → the
    /// coordinator's append id.
    group_appends: BTreeMap<u64, u64>,
    next_internal_token: u64,
    /// The latest time an input carried, for the calls that carry none.
    now_ms: TimeMs,
}

impl Node {
    /// A node starting with the logs its storage recovered (whole, CRC-checked batches
    /// in file order, or their headers alone: see [`crate::log::RecoveredBatch`]; the
    /// `__consumer_offsets` partitions must come whole, the group coordinator loads
    /// them). Batches that do not continue a log are dropped, and the first
    /// effects the node returns ask storage to cut them. `incarnation` must differ on every start, so the
    /// controller can tell a restart from a slow heartbeat.
    pub fn new(
        id: NodeId,
        incarnation: u64,
        cfg: NodeConfig,
        recovered: Vec<(TopicPartition, Vec<crate::log::RecoveredBatch>)>,
    ) -> Node {
        let mut replicas = BTreeMap::new();
        let mut startup = Vec::new();
        for (tp, batches) in recovered {
            let (log, cut) = PartitionLog::recover(batches);
            if let Some(offset) = cut {
                startup.push(Effect::Storage(StorageOp::Truncate {
                    partition: tp.clone(),
                    offset,
                }));
            }
            let replica = Replica::new(tp.clone(), id, incarnation, cfg.replica, log);
            replicas.insert(tp, replica);
        }
        Node {
            id,
            incarnation,
            cfg,
            replicas,
            next_heartbeat_ms: 0,
            registered: false,
            metadata_offset: 0,
            caught_up: false,
            listeners: Vec::new(),
            rack: None,
            startup,
            group: GroupCoordinator::on_broker(cfg.group, id, incarnation),
            group_partitions: BTreeMap::new(),
            group_appends: BTreeMap::new(),
            next_internal_token: INTERNAL_TOKEN_MIN,
            now_ms: 0,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The listeners and rack this node registers with (none unless set: the
    /// simulator's brokers have no addresses).
    pub fn set_registration(&mut self, listeners: Vec<String>, rack: Option<String>) {
        self.listeners = listeners;
        self.rack = rack;
    }

    /// Whether the controller answered this incarnation's registration (and has not
    /// since answered a heartbeat that it does not know it).
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The shell's broker applied its metadata image up to log index `offset`; the next
    /// heartbeats report it. It never goes back within an incarnation.
    pub fn set_metadata_offset(&mut self, offset: u64) {
        self.metadata_offset = self.metadata_offset.max(offset);
    }

    /// Whether the controller has acknowledged that this incarnation's metadata image
    /// caught up with its registration (a heartbeat answered unfenced). Until then a
    /// broker that follows its own image does not act on it: KRaft's broker installs its
    /// metadata publishers only after the controller said it is caught up, so an image
    /// replayed from before a restart never drives its replicas.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    pub fn replica(&self, tp: &TopicPartition) -> Option<&Replica> {
        self.replicas.get(tp)
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.values()
    }

    /// The group coordinator, for checkers and tests (its groups, generations and
    /// committed offsets, `next_deadline` for a shell that sleeps until the next timer).
    pub fn group_coordinator(&self) -> &GroupCoordinator {
        &self.group
    }

    /// Forgets a partition (its topic was deleted). Requests waiting on it are answered
    /// NOT_LEADER_OR_FOLLOWER, as on any loss of leadership; removing its files is the
    /// shell's business. For a `__consumer_offsets` partition, its groups are unloaded.
    pub fn remove_partition(&mut self, tp: &TopicPartition) -> Vec<Effect> {
        let mut out = std::mem::take(&mut self.startup);
        if let Some(mut replica) = self.replicas.remove(tp) {
            replica.resign(&mut out);
        }
        let now_ms = self.now_ms;
        self.follow_offsets_leadership(now_ms, tp, &mut out);
        self.drive_group(now_ms, [], &mut out);
        out
    }

    /// Retention (or DeleteRecords): everything below `offset` leaves the partition's log,
    /// which must already have its high watermark there. Storage deletes the files once
    /// this returns `Ok`.
    pub fn advance_log_start(
        &mut self,
        tp: &TopicPartition,
        offset: crate::types::Offset,
    ) -> Result<(), ErrorCode> {
        let replica = self
            .replicas
            .get_mut(tp)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if offset > replica.high_watermark() {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        replica.log_mut().advance_log_start(offset);
        Ok(())
    }

    /// Storage recovered no batches for `tp` but knows its log starts at `offset` (an
    /// empty segment named by its base offset): the log resumes there, not at zero.
    pub fn recovered_empty_log_starts_at(
        &mut self,
        tp: &TopicPartition,
        offset: crate::types::Offset,
    ) {
        if let Some(replica) = self.replicas.get_mut(tp) {
            if replica.log().batches().is_empty() && replica.log().log_start_offset() < offset {
                replica.log_mut().truncate_fully_and_start_at(offset);
            }
        }
    }

    /// Feeds one input; returns what to do about it.
    pub fn handle(&mut self, now_ms: TimeMs, input: Input) -> Vec<Effect> {
        let mut out = std::mem::take(&mut self.startup);
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Tick => self.on_tick(now_ms, &mut out),
            Input::Peer { from, msg } => self.on_peer(now_ms, from, msg, &mut out),
            Input::Client { token, req } => self.on_client(now_ms, token, req, &mut out),
            Input::Controller(msg) => self.on_controller(now_ms, msg, &mut out),
            Input::Storage(done) => self.on_storage(now_ms, done, &mut out),
        }
        // Any input may complete (or fail) a group append: a sync, a follower's fetch
        // moving the high watermark, a timeout.
        self.drive_group(now_ms, [], &mut out);
        self.check_group_partitions();
        debug_assert!(
            out.iter()
                .all(|e| !matches!(e, Effect::Reply { token, .. } if *token >= INTERNAL_TOKEN_MIN)),
            "a reply to an internal token reached the shell"
        );
        out
    }

    fn on_tick(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        if now_ms >= self.next_heartbeat_ms {
            // Unanswered registrations are retried at the heartbeat interval.
            self.next_heartbeat_ms = now_ms + self.cfg.heartbeat_interval_ms;
            let req = if self.registered {
                ControllerRequest::Heartbeat {
                    broker: self.id,
                    incarnation: self.incarnation,
                    metadata_offset: self.metadata_offset,
                }
            } else {
                ControllerRequest::Register {
                    broker: self.id,
                    incarnation: self.incarnation,
                    listeners: self.listeners.clone(),
                    rack: self.rack.clone(),
                }
            };
            out.push(Effect::Controller(req));
        }
        for replica in self.replicas.values_mut() {
            replica.on_tick(now_ms, out);
        }
        self.drive_group(now_ms, [GroupInput::Tick], out);
    }

    fn on_controller(&mut self, now_ms: TimeMs, msg: ControllerMessage, out: &mut Vec<Effect>) {
        match msg {
            ControllerMessage::PartitionStates(states) => {
                for (tp, state) in states {
                    self.apply_partition_state(now_ms, tp, state, out);
                }
            }
            // Answers to an earlier incarnation's requests are not ours.
            ControllerMessage::RegistrationResponse {
                incarnation,
                result,
            } if incarnation == self.incarnation => {
                if result.is_ok() && !self.registered {
                    self.registered = true;
                    // Heartbeat at the next tick: the first one unfences the broker.
                    self.next_heartbeat_ms = now_ms;
                }
            }
            ControllerMessage::HeartbeatResponse {
                incarnation,
                result: Err(ErrorCode::BrokerIdNotRegistered | ErrorCode::StaleBrokerEpoch),
            } if incarnation == self.incarnation => {
                // The controller does not know this incarnation (its registration was
                // never committed, or the broker was unregistered): register again.
                self.registered = false;
                self.next_heartbeat_ms = now_ms;
            }
            ControllerMessage::HeartbeatResponse {
                incarnation,
                result: Ok(state),
            } if incarnation == self.incarnation => {
                self.caught_up |= !state.fenced;
            }
            ControllerMessage::RegistrationResponse { .. }
            | ControllerMessage::HeartbeatResponse { .. } => {}
            ControllerMessage::AlterPartitionResponse {
                partition,
                request,
                result,
            } => {
                if let Some(replica) = self.replicas.get_mut(&partition) {
                    replica.on_alter_partition_response(now_ms, request, result, out);
                }
                self.follow_offsets_leadership(now_ms, &partition, out);
            }
        }
    }

    fn apply_partition_state(
        &mut self,
        now_ms: TimeMs,
        tp: TopicPartition,
        state: PartitionState,
        out: &mut Vec<Effect>,
    ) {
        if !self.replicas.contains_key(&tp) {
            if !state.replicas.contains(&self.id) {
                return;
            }
            let replica = Replica::new(
                tp.clone(),
                self.id,
                self.incarnation,
                self.cfg.replica,
                PartitionLog::new(Default::default()),
            );
            self.replicas.insert(tp.clone(), replica);
        }
        let replica = self.replicas.get_mut(&tp).expect("inserted above");
        replica.apply_state(now_ms, state, out);
        self.follow_offsets_leadership(now_ms, &tp, out);
    }

    fn on_peer(&mut self, now_ms: TimeMs, from: NodeId, msg: PeerMessage, out: &mut Vec<Effect>) {
        let partition = match &msg {
            PeerMessage::OffsetForLeaderEpoch { partition, .. }
            | PeerMessage::OffsetForLeaderEpochResponse { partition, .. }
            | PeerMessage::Fetch { partition, .. }
            | PeerMessage::FetchResponse { partition, .. } => partition.clone(),
        };
        let Some(replica) = self.replicas.get_mut(&partition) else {
            // A partition we do not host: a peer with newer metadata than ours, or older.
            match msg {
                PeerMessage::Fetch {
                    fetch_id,
                    fetch_offset,
                    current_leader_epoch,
                    ..
                } => out.push(Effect::Send {
                    to: from,
                    msg: PeerMessage::FetchResponse {
                        partition,
                        fetch_id,
                        error: ErrorCode::NotLeaderOrFollower,
                        current_leader_epoch,
                        fetch_offset,
                        high_watermark: Default::default(),
                        log_start_offset: Default::default(),
                        log_end_offset: Default::default(),
                        batches: Vec::new(),
                    },
                }),
                PeerMessage::OffsetForLeaderEpoch {
                    current_leader_epoch,
                    epoch,
                    ..
                } => out.push(Effect::Send {
                    to: from,
                    msg: PeerMessage::OffsetForLeaderEpochResponse {
                        partition,
                        error: ErrorCode::NotLeaderOrFollower,
                        current_leader_epoch,
                        asked_epoch: epoch,
                        epoch: None,
                        end_offset: Default::default(),
                    },
                }),
                _ => {}
            }
            return;
        };
        match msg {
            PeerMessage::OffsetForLeaderEpoch {
                current_leader_epoch,
                epoch,
                ..
            } => replica.on_offset_for_leader_epoch(from, current_leader_epoch, epoch, out),
            PeerMessage::OffsetForLeaderEpochResponse {
                error,
                current_leader_epoch,
                asked_epoch,
                epoch,
                end_offset,
                ..
            } => replica.on_offset_for_leader_epoch_response(
                now_ms,
                error,
                current_leader_epoch,
                asked_epoch,
                epoch,
                end_offset,
                out,
            ),
            PeerMessage::Fetch {
                current_leader_epoch,
                fetch_offset,
                max_bytes,
                fetch_id,
                incarnation,
                ..
            } => replica.on_follower_fetch(
                now_ms,
                from,
                current_leader_epoch,
                fetch_offset,
                max_bytes,
                fetch_id,
                incarnation,
                out,
            ),
            PeerMessage::FetchResponse {
                fetch_id,
                error,
                current_leader_epoch,
                fetch_offset,
                high_watermark,
                log_start_offset,
                log_end_offset,
                batches,
                ..
            } => replica.on_fetch_response(
                now_ms,
                fetch_id,
                error,
                current_leader_epoch,
                fetch_offset,
                high_watermark,
                log_start_offset,
                log_end_offset,
                batches,
                out,
            ),
        }
    }

    fn on_client(&mut self, now_ms: TimeMs, token: u64, req: ClientRequest, out: &mut Vec<Effect>) {
        assert!(
            token < INTERNAL_TOKEN_MIN,
            "client token {token} is at or above 2^63, where the node's own tokens are: \
             shells number their requests below it"
        );
        match req {
            ClientRequest::Group(req) => {
                self.drive_group(now_ms, [GroupInput::Request { token, req }], out);
            }
            ClientRequest::Metadata => {
                let partitions = self
                    .replicas
                    .values()
                    .filter_map(|r| r.state().map(|s| (r.partition().clone(), s.clone())))
                    .collect();
                out.push(Effect::Reply {
                    token,
                    resp: ClientResponse::Metadata { partitions },
                });
            }
            ClientRequest::Produce {
                partition,
                acks,
                timeout_ms,
                batch,
            } => match self.replicas.get_mut(&partition) {
                Some(replica) => replica.produce(now_ms, token, acks, timeout_ms, batch, out),
                None => out.push(Effect::Reply {
                    token,
                    resp: ClientResponse::Produce {
                        partition,
                        error: ErrorCode::NotLeaderOrFollower,
                        base_offset: None,
                        log_start_offset: Default::default(),
                    },
                }),
            },
            ClientRequest::Fetch {
                partition,
                offset,
                max_bytes,
                max_wait_ms,
            } => match self.replicas.get_mut(&partition) {
                Some(replica) => {
                    replica.on_consumer_fetch(now_ms, token, offset, max_bytes, max_wait_ms, out)
                }
                None => out.push(Effect::Reply {
                    token,
                    resp: ClientResponse::Fetch {
                        partition,
                        error: ErrorCode::NotLeaderOrFollower,
                        high_watermark: Default::default(),
                        log_start_offset: Default::default(),
                        batches: Vec::new(),
                    },
                }),
            },
            ClientRequest::OffsetForLeaderEpoch { partition, epoch } => {
                match self.replicas.get(&partition) {
                    Some(replica) => replica.client_offset_for_leader_epoch(token, epoch, out),
                    None => out.push(Effect::Reply {
                        token,
                        resp: ClientResponse::OffsetForLeaderEpoch {
                            partition,
                            error: ErrorCode::NotLeaderOrFollower,
                            epoch: None,
                            end_offset: Default::default(),
                        },
                    }),
                }
            }
            ClientRequest::ListOffsets { partition } => match self.replicas.get(&partition) {
                Some(replica) => replica.list_offsets(token, out),
                None => out.push(Effect::Reply {
                    token,
                    resp: ClientResponse::ListOffsets {
                        partition,
                        error: ErrorCode::NotLeaderOrFollower,
                        earliest: Default::default(),
                        latest: Default::default(),
                    },
                }),
            },
        }
    }

    fn on_storage(&mut self, now_ms: TimeMs, done: StorageDone, out: &mut Vec<Effect>) {
        let (partition, sync_id, ok) = match done {
            StorageDone::Synced { partition, sync_id } => (partition, sync_id, true),
            StorageDone::SyncFailed { partition, sync_id } => (partition, sync_id, false),
        };
        if let Some(replica) = self.replicas.get_mut(&partition) {
            replica.on_sync_done(now_ms, sync_id, ok, out);
        }
    }
}

// ----- the group coordinator ------------------------------------------------------------

impl Node {
    /// After anything that may change the role of this node's replica of `tp` (a new
    /// partition state, an AlterPartition answer, the partition's removal): if `tp` is a
    /// `__consumer_offsets` partition whose leadership here began, ended or moved to a
    /// new leader epoch, the coordinator unloads it and (if led) loads it again from the
    /// replica's log. A new epoch reloads too: the change failed the appends in flight,
    /// and the log is the truth the groups come back from.
    fn follow_offsets_leadership(
        &mut self,
        now_ms: TimeMs,
        tp: &TopicPartition,
        out: &mut Vec<Effect>,
    ) {
        // A partition beyond `offsets.topic.num.partitions` holds no group under this
        // node's config (a config that disagrees with the topic): the coordinator never
        // looks there.
        if tp.topic != OFFSETS_TOPIC || tp.partition >= self.cfg.group.offsets_topic_num_partitions
        {
            return;
        }
        let partition = tp.partition;
        let replica = self.replicas.get(tp).filter(|r| r.is_leader());
        let led_now = replica.map(|r| r.leader_epoch().expect("a leader has a state"));
        let led_before = self.group_partitions.get(&partition).copied();
        if led_now == led_before {
            return;
        }
        let mut inputs = Vec::new();
        if led_before.is_some() {
            self.group_partitions.remove(&partition);
            inputs.push(GroupInput::Unload { partition });
        }
        if let (Some(epoch), Some(replica)) = (led_now, replica) {
            // The whole log, up to the log end offset, as Kafka's
            // `doLoadGroupsAndOffsets` reads it: a new leader's high watermark lags the
            // old leader's, and a commit acknowledged there may sit above it here. What
            // the leader holds it goes on to commit, as long as it leads.
            let batches = replica
                .log()
                .batches()
                .iter()
                .map(|b| {
                    b.bytes
                        .clone()
                        .expect("the offsets topic's logs keep their bytes (recovered whole)")
                })
                .collect();
            self.group_partitions.insert(partition, epoch);
            inputs.push(GroupInput::BeginLoad { partition });
            inputs.push(GroupInput::Load { partition, batches });
        }
        self.drive_group(now_ms, inputs, out);
    }

    /// The coordinator holds exactly the `__consumer_offsets` partitions this node
    /// leads, each loaded in the replica's current leader epoch.
    fn check_group_partitions(&self) {
        for (&partition, &epoch) in &self.group_partitions {
            let replica = self
                .replicas
                .get(&TopicPartition::new(OFFSETS_TOPIC, partition));
            assert!(
                replica.is_some_and(|r| r.is_leader() && r.leader_epoch() == Some(epoch)),
                "the coordinator holds {OFFSETS_TOPIC}-{partition} from epoch {epoch}, \
                 which this node no longer leads"
            );
        }
        let offsets_replicas = self
            .replicas
            .range(TopicPartition::new(OFFSETS_TOPIC, 0)..)
            .take_while(|(tp, _)| tp.topic == OFFSETS_TOPIC);
        for (tp, replica) in offsets_replicas {
            assert!(
                !replica.is_leader()
                    || tp.partition >= self.cfg.group.offsets_topic_num_partitions
                    || self.group_partitions.contains_key(&tp.partition),
                "this node leads {tp}, which its coordinator does not hold"
            );
        }
    }

    /// Feeds the coordinator the outcomes of its appends already in `out` (they happened
    /// first), then `inputs`, then whatever its effects lead to, until it is quiet: its
    /// replies join `out` as `ClientResponse::Group`, its appends become produce
    /// requests whose replies come back to it as `AppendDone`.
    fn drive_group(
        &mut self,
        now_ms: TimeMs,
        inputs: impl IntoIterator<Item = GroupInput>,
        out: &mut Vec<Effect>,
    ) {
        let mut queue = VecDeque::new();
        self.take_append_results(out, &mut queue);
        queue.extend(inputs);
        let mut steps = 0;
        while let Some(input) = queue.pop_front() {
            steps += 1;
            assert!(
                steps <= GROUP_STEPS_MAX,
                "the group coordinator took {GROUP_STEPS_MAX} inputs for one node input"
            );
            for effect in self.group.handle(now_ms, input) {
                match effect {
                    GroupEffect::Reply { token, resp } => {
                        assert!(
                            token < INTERNAL_TOKEN_MIN,
                            "the coordinator answers clients"
                        );
                        out.push(Effect::Reply {
                            token,
                            resp: ClientResponse::Group(resp),
                        });
                    }
                    GroupEffect::Append {
                        partition,
                        batch,
                        append_id,
                    } => self.group_append(now_ms, partition, batch, append_id, out),
                    GroupEffect::Loaded { .. } => {}
                }
            }
            self.take_append_results(out, &mut queue);
        }
    }

    /// Appends a coordinator batch to this node's replica of its `__consumer_offsets`
    /// partition, with acks=all as Kafka's `GroupMetadataManager` does: the outcome is
    /// known once the batch is committed (the ISR has it, `min.insync.replicas` holds,
    /// and with sync before ack it is on disk) or failed.
    fn group_append(
        &mut self,
        now_ms: TimeMs,
        partition: u32,
        batch: Bytes,
        append_id: u64,
        out: &mut Vec<Effect>,
    ) {
        let token = self.next_internal_token;
        self.next_internal_token = token.checked_add(1).expect("2^63 appends in one life");
        self.group_appends.insert(token, append_id);
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        match self.replicas.get_mut(&tp) {
            Some(replica) => replica.produce(
                now_ms,
                token,
                Acks::All,
                OFFSETS_COMMIT_TIMEOUT_MS,
                batch,
                out,
            ),
            // Not hosted (removed in this very input): the answer a replica that lost
            // its leadership gives, which the coordinator turns into NOT_COORDINATOR.
            None => out.push(Effect::Reply {
                token,
                resp: ClientResponse::Produce {
                    partition: tp,
                    error: ErrorCode::NotLeaderOrFollower,
                    base_offset: None,
                    log_start_offset: Default::default(),
                },
            }),
        }
    }

    /// Moves every reply to an internal token out of `out` and onto `queue`, as the
    /// `AppendDone` of the coordinator's append it completes, in the order they came.
    fn take_append_results(&mut self, out: &mut Vec<Effect>, queue: &mut VecDeque<GroupInput>) {
        let internal =
            |e: &Effect| matches!(e, Effect::Reply { token, .. } if *token >= INTERNAL_TOKEN_MIN);
        if !out.iter().any(internal) {
            return;
        }
        let mut kept = Vec::with_capacity(out.len());
        for effect in out.drain(..) {
            let Effect::Reply { token, resp } = effect else {
                kept.push(effect);
                continue;
            };
            if token < INTERNAL_TOKEN_MIN {
                kept.push(Effect::Reply { token, resp });
                continue;
            }
            let append_id = self
                .group_appends
                .remove(&token)
                .unwrap_or_else(|| panic!("internal token {token} answered twice, or never used"));
            let ClientResponse::Produce {
                error, base_offset, ..
            } = resp
            else {
                panic!("internal token {token} answered with {resp:?}: only appends use them")
            };
            let result = match error {
                ErrorCode::None => Ok(base_offset.expect("a successful produce has a base offset")),
                error => Err(error),
            };
            queue.push_back(GroupInput::AppendDone { append_id, result });
        }
        *out = kept;
    }
}

#[cfg(test)]
#[path = "node_registration_tests.rs"]
mod registration_tests;

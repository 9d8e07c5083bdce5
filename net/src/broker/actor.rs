//! The node actor: one task that owns the core's [`Node`], the partition directories on
//! disk and the broker's local metadata, and carries out the node's effects.
//!
//! Everything that touches the node goes through this task's command queue, so the core
//! stays single-threaded as DESIGN.md asks; connections run in their own tasks and wait
//! on replies. Time reaches the node as milliseconds since the actor started, through a
//! tick every [`TICK_MS`].
//!
//! Metadata here is single-node: this broker is every partition's only replica and
//! leader, and its topics are the partition directories found under `log.dirs`. The
//! controller quorum (issue 3) replaces this with the replicated metadata log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use eddy_core::config::BrokerConfig;
use eddy_core::message::{
    ClientRequest, ClientResponse, ControllerMessage, ControllerRequest, Effect, Input,
    StorageDone, StorageOp,
};
use eddy_core::metadata::PartitionState;
use eddy_core::node::{Node, NodeConfig};
use eddy_core::types::{Epoch, NodeId, Offset, TopicPartition};
use kafka_protocol::error::ResponseError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use crate::storage::{self, PartitionDir, StorageError};

/// How often the node's timers are checked.
pub(crate) const TICK_MS: u64 = 10;

/// Bound on queued commands: connections wait (back-pressure) when the node is behind.
pub(crate) const COMMAND_QUEUE: usize = 4096;

/// Where a core reply goes.
pub(crate) enum ReplyTo {
    Once(oneshot::Sender<ClientResponse>),
    /// Replies tagged with an index, for a request waiting on the first of several.
    Indexed(mpsc::UnboundedSender<(usize, ClientResponse)>, usize),
}

/// A partition as metadata reports it.
#[derive(Clone, Debug)]
pub(crate) struct PartitionView {
    pub(crate) partition: u32,
    pub(crate) state: Option<PartitionState>,
    /// Its storage failed on this broker.
    pub(crate) offline: bool,
}

/// A topic as metadata reports it: its partitions, or why it cannot be listed.
pub(crate) type TopicView = (String, Result<Vec<PartitionView>, ResponseError>);

/// A finished sync: (partition, sync id, succeeded).
type SyncDone = (TopicPartition, u64, bool);

/// A read-only question about a partition's log, answered on the actor's task.
pub(crate) type LogQuery = Box<dyn FnOnce(Option<&eddy_core::replica::Replica>) + Send>;

pub(crate) enum Command {
    /// A request for the core; `reply` is `None` for acks=0 produce.
    Core {
        req: ClientRequest,
        reply: Option<ReplyTo>,
    },
    /// Topics and their partitions; `names` = None for all.
    Metadata {
        names: Option<Vec<String>>,
        auto_create: bool,
        reply: oneshot::Sender<Vec<TopicView>>,
    },
    CreateTopic {
        name: String,
        partitions: u32,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), (ResponseError, String)>>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<Result<(), (ResponseError, String)>>,
    },
    /// Grows a topic to `count` partitions.
    CreatePartitions {
        name: String,
        count: u32,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), (ResponseError, String)>>,
    },
    /// Creates `__consumer_offsets` if it does not exist; answers its partition count.
    EnsureOffsetsTopic {
        reply: oneshot::Sender<Result<u32, (ResponseError, String)>>,
    },
    NewProducerId {
        reply: oneshot::Sender<i64>,
    },
    Query {
        partition: TopicPartition,
        query: LogQuery,
    },
}

pub(crate) struct Actor {
    cfg: BrokerConfig,
    id: NodeId,
    incarnation: u64,
    node: Node,
    dirs: BTreeMap<TopicPartition, PartitionDir>,
    /// Topic name → partition count.
    topics: BTreeMap<String, u32>,
    pending: BTreeMap<u64, ReplyTo>,
    next_token: u64,
    /// Syncs run on blocking threads and report here: (partition, sync id, succeeded).
    syncs: (
        mpsc::UnboundedSender<SyncDone>,
        Option<mpsc::UnboundedReceiver<SyncDone>>,
    ),
    /// Partitions a write failed on: offline until a restart, and nothing after the
    /// failure is acknowledged or reported durable.
    failed: std::collections::BTreeSet<TopicPartition>,
    next_producer_id: i64,
    started: Instant,
}

impl Actor {
    /// Opens every partition found under `log.dirs`, recovering (and cutting torn tails
    /// from) its segments, and starts the node on what was found.
    pub(crate) fn open(cfg: BrokerConfig, incarnation: u64) -> Result<Actor, StorageError> {
        let id = cfg.node_id;
        let roots: Vec<PathBuf> = cfg.log_dirs.iter().map(PathBuf::from).collect();
        let found = storage::find_partitions(&roots)?;
        let mut dirs = BTreeMap::new();
        let mut recovered = Vec::new();
        let mut topics: BTreeMap<String, u32> = BTreeMap::new();
        let mut empty_starts = Vec::new();
        for (tp, path) in found {
            let (dir, rec) =
                PartitionDir::open(path, cfg.log_segment_bytes.into(), cfg.log_roll_ms)?;
            tracing::info!(
                partition = %format!("{}-{}", tp.topic, tp.partition),
                batches = rec.batches.len(),
                cut_bytes = rec.cut_bytes,
                "recovered partition"
            );
            let count = topics.entry(tp.topic.clone()).or_default();
            *count = (*count).max(tp.partition + 1);
            if rec.batches.is_empty() && rec.log_start_offset > 0 {
                empty_starts.push((tp.clone(), Offset(rec.log_start_offset)));
            }
            recovered.push((tp.clone(), rec.batches));
            dirs.insert(tp, dir);
        }
        let mut node = Node::new(
            id,
            incarnation,
            NodeConfig::from_broker_config(&cfg),
            recovered,
        );
        for (tp, start) in empty_starts {
            node.recovered_empty_log_starts_at(&tp, start);
        }
        let mut actor = Actor {
            cfg,
            id,
            incarnation,
            node,
            dirs,
            topics,
            pending: BTreeMap::new(),
            next_token: 0,
            failed: Default::default(),
            syncs: {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            },
            // Unique across restarts: the incarnation is the start time in ms, and a
            // restart comes more than 1,024 ms after the previous start's ids begin, so
            // up to a million ids per run never collide with the next run's.
            next_producer_id: (incarnation as i64).saturating_mul(1024),
            started: Instant::now(),
        };
        // Missing partitions of a topic (a directory lost) are created empty so the topic
        // is whole again.
        let wanted: Vec<(String, u32)> =
            actor.topics.iter().map(|(t, n)| (t.clone(), *n)).collect();
        for (topic, n) in wanted {
            for p in 0..n {
                let tp = TopicPartition::new(topic.clone(), p);
                if !actor.dirs.contains_key(&tp) {
                    actor.create_partition_dir(&tp)?;
                }
            }
        }
        let states: Vec<_> = actor
            .dirs
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|tp| {
                let state = actor.leader_state(&tp);
                (tp, state)
            })
            .collect();
        let now = actor.now_ms();
        let effects = actor.node.handle(
            now,
            Input::Controller(ControllerMessage::PartitionStates(states)),
        );
        actor.carry_out(effects);
        Ok(actor)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// This broker as the partition's only replica and leader, at a leader epoch past any
    /// epoch its log already holds (a new election, as after a restart).
    fn leader_state(&self, tp: &TopicPartition) -> PartitionState {
        let epoch = self
            .node
            .replica(tp)
            .and_then(|r| r.log().latest_epoch())
            .map_or(Epoch(0), |e| Epoch(e.0 + 1));
        PartitionState {
            replicas: vec![self.id],
            leader: Some(self.id),
            leader_epoch: epoch,
            leader_incarnation: Some(self.incarnation),
            isr: vec![self.id],
            partition_epoch: 0,
        }
    }

    fn create_partition_dir(&mut self, tp: &TopicPartition) -> Result<(), StorageError> {
        // Spread partitions over the log dirs by index, as Kafka spreads by count.
        let root = &self.cfg.log_dirs[tp.partition as usize % self.cfg.log_dirs.len()];
        let path = PathBuf::from(root).join(storage::partition_dir_name(tp));
        let (dir, _) = PartitionDir::open(
            path,
            self.cfg.log_segment_bytes.into(),
            self.cfg.log_roll_ms,
        )?;
        self.dirs.insert(tp.clone(), dir);
        Ok(())
    }

    /// Runs until every command sender is gone.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut synced = self.syncs.1.take().expect("run once");
        let mut ticker = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention = tokio::time::interval(Duration::from_millis(
            self.cfg.log_retention_check_interval_ms.max(1),
        ));
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = ticker.tick() => {
                    let now = self.now_ms();
                    let effects = self.node.handle(now, Input::Tick);
                    self.carry_out(effects);
                }
                Some((tp, sync_id, ok)) = synced.recv() => self.on_synced(tp, sync_id, ok),
                _ = retention.tick() => self.enforce_retention(),
            }
        }
        self.shutdown();
    }

    /// A sync finished on its blocking thread.
    fn on_synced(&mut self, tp: TopicPartition, sync_id: u64, ok: bool) {
        if !ok && self.failed.insert(tp.clone()) {
            tracing::error!(
                partition = %format!("{}-{}", tp.topic, tp.partition),
                "sync failed: the partition is offline; fix the disk and restart the broker"
            );
        }
        let done = if ok && !self.failed.contains(&tp) {
            StorageDone::Synced {
                partition: tp,
                sync_id,
            }
        } else {
            StorageDone::SyncFailed {
                partition: tp,
                sync_id,
            }
        };
        let now = self.now_ms();
        let effects = self.node.handle(now, Input::Storage(done));
        self.carry_out(effects);
    }

    /// Flushes every partition before the process exits.
    fn shutdown(&mut self) {
        for (tp, dir) in &mut self.dirs {
            if let Err(e) = dir.sync() {
                tracing::error!(partition = %format!("{}-{}", tp.topic, tp.partition), error = %e, "flush on shutdown failed");
            }
        }
        tracing::info!("logs flushed");
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Core { req, reply } => {
                if let Some(resp) = self.refuse_partition(&req) {
                    match reply {
                        Some(ReplyTo::Once(tx)) => {
                            let _ = tx.send(resp);
                        }
                        Some(ReplyTo::Indexed(tx, i)) => {
                            let _ = tx.send((i, resp));
                        }
                        None => {}
                    }
                    return;
                }
                let token = self.next_token;
                self.next_token += 1;
                if let Some(reply) = reply {
                    self.pending.insert(token, reply);
                }
                let now = self.now_ms();
                let effects = self.node.handle(now, Input::Client { token, req });
                self.carry_out(effects);
            }
            Command::Metadata {
                names,
                auto_create,
                reply,
            } => {
                let names = names.unwrap_or_else(|| self.topics.keys().cloned().collect());
                let mut out = Vec::new();
                for name in names {
                    if !self.topics.contains_key(&name) && auto_create {
                        let partitions = self.cfg.num_partitions;
                        if let Err((e, msg)) = self.create_topic(&name, partitions, false) {
                            tracing::warn!(topic = %name, error = %msg, "auto-creation failed");
                            out.push((name, Err(e)));
                            continue;
                        }
                        tracing::info!(topic = %name, partitions, "auto-created topic");
                    }
                    match self.topics.get(&name) {
                        Some(&n) => {
                            let parts = (0..n)
                                .map(|p| {
                                    let tp = TopicPartition::new(name.clone(), p);
                                    PartitionView {
                                        partition: p,
                                        state: self
                                            .node
                                            .replica(&tp)
                                            .and_then(|r| r.state().cloned()),
                                        offline: self.failed.contains(&tp),
                                    }
                                })
                                .collect();
                            out.push((name, Ok(parts)));
                        }
                        None => out.push((name, Err(ResponseError::UnknownTopicOrPartition))),
                    }
                }
                let _ = reply.send(out);
            }
            Command::CreateTopic {
                name,
                partitions,
                validate_only,
                reply,
            } => {
                let result = self.create_topic(&name, partitions, validate_only);
                if result.is_ok() && !validate_only {
                    tracing::info!(topic = %name, partitions, "created topic");
                }
                let _ = reply.send(result);
            }
            Command::DeleteTopic { name, reply } => {
                let result = self.delete_topic(&name);
                if result.is_ok() {
                    tracing::info!(topic = %name, "deleted topic");
                }
                let _ = reply.send(result);
            }
            Command::CreatePartitions {
                name,
                count,
                validate_only,
                reply,
            } => {
                let result = self.create_partitions(&name, count, validate_only);
                if result.is_ok() && !validate_only {
                    tracing::info!(topic = %name, partitions = count, "added partitions");
                }
                let _ = reply.send(result);
            }
            Command::EnsureOffsetsTopic { reply } => {
                let name = eddy_core::group::OFFSETS_TOPIC;
                let result = match self.topics.get(name) {
                    Some(&n) => Ok(n),
                    None => {
                        let n = self.cfg.offsets_topic_num_partitions;
                        // offsets.topic.replication.factor asks for more copies than a
                        // single-node cluster has; like every topic here, it gets one.
                        self.create_topic(name, n, false).map(|()| {
                            tracing::info!(partitions = n, "created {name}");
                            n
                        })
                    }
                };
                let _ = reply.send(result);
            }
            Command::NewProducerId { reply } => {
                let id = self.next_producer_id;
                self.next_producer_id += 1;
                let _ = reply.send(id);
            }
            Command::Query { partition, query } => query(self.node.replica(&partition)),
        }
    }

    /// The answer for a request this broker refuses before the core sees it: a partition
    /// that does not exist gets UNKNOWN_TOPIC_OR_PARTITION, as Kafka gives (the core would
    /// say it is not the leader, which sends clients to refresh metadata for ever); one
    /// whose storage failed gets KAFKA_STORAGE_ERROR (it is offline until a restart).
    fn refuse_partition(&self, req: &ClientRequest) -> Option<ClientResponse> {
        use eddy_core::ErrorCode;
        let partition = match req {
            ClientRequest::Produce { partition, .. }
            | ClientRequest::Fetch { partition, .. }
            | ClientRequest::ListOffsets { partition }
            | ClientRequest::OffsetForLeaderEpoch { partition, .. } => partition,
            ClientRequest::Metadata | ClientRequest::Group(_) => return None,
        };
        let error = if !self.dirs.contains_key(partition) {
            ErrorCode::UnknownTopicOrPartition
        } else if self.failed.contains(partition) {
            ErrorCode::KafkaStorageError
        } else {
            return None;
        };
        let partition = partition.clone();
        Some(match req {
            ClientRequest::Produce { .. } => ClientResponse::Produce {
                partition,
                error,
                base_offset: None,
                log_start_offset: Default::default(),
            },
            ClientRequest::Fetch { .. } => ClientResponse::Fetch {
                partition,
                error,
                high_watermark: Default::default(),
                log_start_offset: Default::default(),
                batches: Vec::new(),
            },
            ClientRequest::ListOffsets { .. } => ClientResponse::ListOffsets {
                partition,
                error,
                earliest: Default::default(),
                latest: Default::default(),
            },
            ClientRequest::OffsetForLeaderEpoch { .. }
            | ClientRequest::Metadata
            | ClientRequest::Group(_) => ClientResponse::OffsetForLeaderEpoch {
                partition,
                error,
                epoch: None,
                end_offset: Default::default(),
            },
        })
    }

    fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
        validate_only: bool,
    ) -> Result<(), (ResponseError, String)> {
        eddy_core::controller::validate_topic_name(name)
            .map_err(|msg| (ResponseError::InvalidTopicException, msg))?;
        if self.topics.contains_key(name) {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if partitions == 0 {
            return Err((
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.".to_string(),
            ));
        }
        if validate_only {
            return Ok(());
        }
        self.add_partitions(name, 0, partitions)
    }

    /// Deletes the segments `log.retention.ms` / `log.retention.bytes` no longer keep, run
    /// every `log.retention.check.interval.ms`. The core moves the log start first, so no
    /// read is served from a file about to go.
    fn enforce_retention(&mut self) {
        let now = wall_clock_ms();
        for (tp, dir) in &mut self.dirs {
            let Some(hw) = self.node.replica(tp).map(|r| r.high_watermark()) else {
                continue;
            };
            let Some(start) = dir.retention_point(
                now,
                self.cfg.log_retention_ms,
                self.cfg.log_retention_bytes,
                hw.0,
            ) else {
                continue;
            };
            if self.node.advance_log_start(tp, Offset(start)).is_err() {
                continue;
            }
            let name = storage::partition_dir_name(tp);
            match dir.delete_segments_before(start) {
                Ok(()) => {
                    tracing::info!(partition = %name, log_start_offset = start, "retention deleted old segments")
                }
                Err(e) => {
                    tracing::error!(partition = %name, error = %e, "retention could not delete a segment")
                }
            }
        }
    }

    fn delete_topic(&mut self, name: &str) -> Result<(), (ResponseError, String)> {
        let Some(count) = self.topics.remove(name) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            ));
        };
        for p in 0..count {
            let tp = TopicPartition::new(name, p);
            let effects = self.node.remove_partition(&tp);
            self.carry_out(effects);
            if let Some(dir) = self.dirs.remove(&tp) {
                if let Err(e) = dir.delete() {
                    // The topic is gone either way; leftover files would bring it back on
                    // the next start, so say where they are.
                    tracing::error!(partition = %format!("{name}-{p}"), error = %e, "could not remove the files of a deleted partition; remove them by hand");
                }
            }
        }
        Ok(())
    }

    fn create_partitions(
        &mut self,
        name: &str,
        count: u32,
        validate_only: bool,
    ) -> Result<(), (ResponseError, String)> {
        let Some(&current) = self.topics.get(name) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            ));
        };
        if count <= current {
            return Err((
                ResponseError::InvalidPartitions,
                format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        self.add_partitions(name, current, count)
    }

    /// Creates partitions `from..to` of `name` on disk and makes this broker their leader.
    fn add_partitions(
        &mut self,
        name: &str,
        from: u32,
        to: u32,
    ) -> Result<(), (ResponseError, String)> {
        let mut states = Vec::new();
        for p in from..to {
            let tp = TopicPartition::new(name, p);
            self.create_partition_dir(&tp).map_err(|e| {
                (
                    ResponseError::KafkaStorageError,
                    format!("cannot create {name}-{p}: {e}"),
                )
            })?;
            states.push((tp.clone(), self.leader_state(&tp)));
        }
        self.topics.insert(name.to_string(), to);
        let now = self.now_ms();
        let effects = self.node.handle(
            now,
            Input::Controller(ControllerMessage::PartitionStates(states)),
        );
        self.carry_out(effects);
        Ok(())
    }

    /// Carries out the node's effects, feeding back what they complete, until the node
    /// has nothing more to say.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut queue = std::collections::VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Reply { token, resp } => match self.pending.remove(&token) {
                    // A produce answered after its partition's storage failed: the batch may
                    // not be on disk, so it is not acknowledged (the client may retry).
                    Some(reply)
                        if matches!(&resp, ClientResponse::Produce { partition, error, .. }
                            if *error == eddy_core::ErrorCode::None && self.failed.contains(partition)) =>
                    {
                        let ClientResponse::Produce {
                            partition,
                            log_start_offset,
                            ..
                        } = resp
                        else {
                            unreachable!("matched above")
                        };
                        let resp = ClientResponse::Produce {
                            partition,
                            error: eddy_core::ErrorCode::KafkaStorageError,
                            base_offset: None,
                            log_start_offset,
                        };
                        match reply {
                            ReplyTo::Once(tx) => {
                                let _ = tx.send(resp);
                            }
                            ReplyTo::Indexed(tx, i) => {
                                let _ = tx.send((i, resp));
                            }
                        }
                    }
                    Some(ReplyTo::Once(tx)) => {
                        let _ = tx.send(resp);
                    }
                    Some(ReplyTo::Indexed(tx, i)) => {
                        let _ = tx.send((i, resp));
                    }
                    None => {}
                },
                Effect::Storage(op) => {
                    if let Some(done) = self.storage(op) {
                        let now = self.now_ms();
                        queue.extend(self.node.handle(now, Input::Storage(done)));
                    }
                }
                // A single-node cluster has no peers to send to.
                Effect::Send { to, .. } => {
                    tracing::debug!(to = to.0, "no peer to send to in a single-node cluster");
                }
                Effect::Controller(
                    ControllerRequest::Register { .. } | ControllerRequest::Heartbeat { .. },
                ) => {}
                Effect::Controller(ControllerRequest::AlterPartition(req)) => {
                    let result = self.alter_partition(&req);
                    let now = self.now_ms();
                    queue.extend(self.node.handle(
                        now,
                        Input::Controller(ControllerMessage::AlterPartitionResponse {
                            partition: req.partition.clone(),
                            request: req,
                            result,
                        }),
                    ));
                }
            }
        }
    }

    /// The local controller's answer to an ISR change: accepted when it names the current
    /// leader and epochs, as the controller quorum will (KIP-497).
    fn alter_partition(
        &self,
        req: &eddy_core::metadata::AlterPartition,
    ) -> Result<PartitionState, eddy_core::ErrorCode> {
        let state = self
            .node
            .replica(&req.partition)
            .and_then(|r| r.state().cloned())
            .ok_or(eddy_core::ErrorCode::UnknownTopicOrPartition)?;
        if state.leader != Some(req.leader) || state.leader_epoch != req.leader_epoch {
            return Err(eddy_core::ErrorCode::FencedLeaderEpoch);
        }
        if state.partition_epoch != req.partition_epoch {
            return Err(eddy_core::ErrorCode::InvalidUpdateVersion);
        }
        if req.new_isr.iter().any(|r| !state.replicas.contains(r))
            || !req.new_isr.contains(&req.leader)
        {
            return Err(eddy_core::ErrorCode::InvalidRequest);
        }
        Ok(PartitionState {
            isr: req.new_isr.clone(),
            partition_epoch: state.partition_epoch + 1,
            ..state
        })
    }

    fn storage(&mut self, op: StorageOp) -> Option<StorageDone> {
        let (tp, result, sync_id) = match op {
            StorageOp::Append {
                partition,
                base_offset,
                batch,
            } => {
                let now = wall_clock_ms();
                let r = self
                    .dir(&partition)
                    .and_then(|d| d.append(base_offset, &batch, now));
                (partition, r, None)
            }
            StorageOp::Truncate { partition, offset } => {
                let r = self.dir(&partition).and_then(|d| d.truncate(offset));
                (partition, r, None)
            }
            StorageOp::TruncateFully { partition, offset } => {
                let r = self.dir(&partition).and_then(|d| d.truncate_fully(offset));
                (partition, r, None)
            }
            StorageOp::Sync { partition, sync_id } => {
                if self.failed.contains(&partition) {
                    return Some(StorageDone::SyncFailed { partition, sync_id });
                }
                match self.dir(&partition).and_then(|d| d.begin_sync()) {
                    Ok(job) => {
                        // Flushed off the actor's thread: appends to every partition go on
                        // meanwhile, and the core's next sync covers them all.
                        let done = self.syncs.0.clone();
                        tokio::task::spawn_blocking(move || {
                            let result = job.run();
                            if let Err(e) = &result {
                                tracing::error!(error = %e, "sync failed");
                            }
                            let _ = done.send((partition, sync_id, result.is_ok()));
                        });
                        return None;
                    }
                    Err(e) => (partition, Err(e), Some(sync_id)),
                }
            }
        };
        let result = match result {
            Ok(()) if self.failed.contains(&tp) => Err(()),
            Ok(()) => Ok(()),
            Err(e) => {
                // The write is not on disk (a full disk, most often). The partition goes
                // offline, as Kafka takes a failed log dir offline: nothing more is
                // acknowledged, no sync reports it durable, and requests for it get
                // KAFKA_STORAGE_ERROR until the broker restarts and recovers it from
                // what the disk holds.
                if self.failed.insert(tp.clone()) {
                    tracing::error!(
                        partition = %format!("{}-{}", tp.topic, tp.partition),
                        error = %e,
                        "storage failed: the partition is offline; free space (or fix the disk) and restart the broker"
                    );
                }
                Err(())
            }
        };
        sync_id.map(|sync_id| match result {
            Ok(()) => StorageDone::Synced {
                partition: tp,
                sync_id,
            },
            Err(_) => StorageDone::SyncFailed {
                partition: tp,
                sync_id,
            },
        })
    }

    fn dir(&mut self, tp: &TopicPartition) -> Result<&mut PartitionDir, StorageError> {
        self.dirs.get_mut(tp).ok_or_else(|| StorageError::Io {
            op: "find",
            path: PathBuf::from(storage::partition_dir_name(tp)),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

/// Milliseconds since the Unix epoch: what record timestamps are measured against.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Concatenates batches into one records field.
pub(crate) fn concat(batches: &[Bytes]) -> Bytes {
    match batches {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut out = Vec::with_capacity(many.iter().map(|b| b.len()).sum());
            for b in many {
                out.extend_from_slice(b);
            }
            Bytes::from(out)
        }
    }
}

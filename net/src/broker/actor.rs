//! The node actor: one task that owns the core's [`Node`], the partition directories on
//! disk and the broker's local metadata, and carries out the node's effects.
//!
//! Everything that touches the node goes through this task's command queue, so the core
//! stays single-threaded as DESIGN.md asks; connections run in their own tasks and wait
//! on replies. Time reaches the node as milliseconds since the actor started, through a
//! tick every [`TICK_MS`].
//!
//! Metadata comes from the metadata quorum ([`Quorum`]): this process is a voter, and
//! its committed image says which topics exist (Metadata responses, admin checks). The
//! partitions this broker hosts, as leader or follower, get their states from the active
//! controller (its pushes of committed changes and heartbeat answers, as the simulator
//! runs it); the actor creates their directories first, and removes the partitions of
//! topics the image no longer has. Admin requests go to the active controller (this
//! process's voter, or forwarded over the peer links) and are answered once the image
//! shows their effect.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bytes::Bytes;
use eddy_core::batch::BatchHeader;
use eddy_core::config::BrokerConfig;
use eddy_core::controller::{ControllerInput, MetadataImage, TopicId};
use eddy_core::group::OFFSETS_TOPIC;
use eddy_core::log::{resolve_batches, FetchedBatch, RecoveredBatch};
use eddy_core::message::{
    ClientRequest, ClientResponse, ControllerMessage, Effect, Input, PeerMessage, StorageDone,
    StorageOp,
};
use eddy_core::metadata::PartitionState;
use eddy_core::node::{Node, NodeConfig};
use eddy_core::types::{NodeId, Offset, TopicPartition};
use kafka_protocol::error::ResponseError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use super::quorum::{ForBroker, Quorum};
use crate::partition_metadata;
use crate::peer::codec::PeerFrame;
use crate::peer::link::PeerLinks;
use crate::storage::{self, LogConfig, PartitionDir, StorageError, StoredRead, SyncJob, SyncPoint};
use crate::topic_id;

/// How often the node's timers are checked.
pub(crate) const TICK_MS: u64 = 10;

/// The bytes of its newest batches each partition log keeps in memory (past those not
/// yet below the high watermark, which it always keeps); older batches are read from the
/// segment files when fetched. 1 MiB covers a consumer or follower that keeps up — they
/// read within the last few batches, and the replica fetch size
/// (`replica.fetch.max.bytes`) is 1 MiB by default — while a broker with a thousand
/// partitions holds about 1 GiB at most instead of every byte it ever stored; a reader
/// that falls further behind costs one `pread` per batch, from the page cache when the
/// data is recent. `__consumer_offsets` keeps everything (the core's own rule: the group
/// coordinator loads it whole).
#[cfg(not(madsim))]
pub(crate) const RESIDENT_TAIL_BYTES: usize = 1024 * 1024;
/// Under madsim a tail of a few batches, as the fast simulator's 512 bytes: the suite's
/// small workloads then read from the (simulated) segment files most of the time.
#[cfg(madsim)]
pub(crate) const RESIDENT_TAIL_BYTES: usize = 4096;

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
/// A topic as Metadata reports it: its name (unknown for an id that names no topic), its
/// id, and its partitions or why not.
pub(crate) struct TopicView {
    pub(crate) name: Option<String>,
    /// Its id on the wire (nil for a topic that does not exist).
    pub(crate) id: uuid::Uuid,
    pub(crate) partitions: Result<Vec<PartitionView>, ResponseError>,
}

/// A topic a Metadata request asks for: by name, or (v10+) by id.
pub(crate) enum TopicQuery {
    Name(String),
    Id(uuid::Uuid),
}

/// A broker as clients are told to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BrokerView {
    pub(crate) id: NodeId,
    pub(crate) host: String,
    pub(crate) port: i32,
}

/// The cluster as metadata reports it: its brokers and the active controller.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClusterView {
    pub(crate) brokers: Vec<BrokerView>,
    pub(crate) controller: Option<NodeId>,
    /// The cluster's id from the metadata log (`None` before the first active controller
    /// wrote it).
    pub(crate) cluster_id: Option<String>,
}

/// An admin request's outcome: done, or why not (error and message for the client).
pub(crate) type AdminResult = Result<(), (ResponseError, String)>;

/// How long an admin request may wait for its effect to reach this broker's image.
const ADMIN_TIMEOUT_MS: u64 = 30_000;
/// How long FindCoordinator waits for the offsets topic to be created and its partition
/// to get a leader before answering COORDINATOR_NOT_AVAILABLE: on a healthy cluster
/// this takes milliseconds, and answering at once would send every consumer of a new
/// cluster into retries at the same moment.
const COORDINATOR_WAIT_MS: u64 = 3_000;

/// The longest a partition offline on a failed disk waits between attempts to bring it
/// back (`log.retention.check.interval.ms` when shorter).
const OFFLINE_RETRY_MS_MAX: u64 = 5_000;

/// How long a controlled shutdown waits for leadership to move before stopping anyway.
const CONTROLLED_SHUTDOWN_MS: u64 = 10_000;

/// How long the active controller keeps running after its controlled shutdown is done:
/// a few Raft heartbeats (200 ms apart), for the others to learn the commit.
const CONTROLLER_LINGER_MS: u64 = 600;

/// How often an admin request not yet visible is sent again (the controller may have
/// moved, or the forwarded request was lost).
const ADMIN_RESEND_MS: u64 = 1_000;

/// An admin request waiting for the metadata image to show it done.
struct AdminWait {
    input: ControllerInput,
    done: fn(&MetadataImage, &ControllerInput) -> bool,
    deadline: u64,
    resend_at: u64,
    reply: oneshot::Sender<AdminResult>,
}

/// A finished sync: the partition, the core's sync id (`None` for the flush of a rolled
/// segment, which the core did not ask for), how far it reached, and whether it succeeded.
type SyncDone = (TopicPartition, Option<u64>, SyncPoint, bool);

/// A finished probe of an offline partition's directory: (partition, it took a synced
/// write).
type ProbeDone = (TopicPartition, bool);

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
        names: Option<Vec<TopicQuery>>,
        auto_create: bool,
        reply: oneshot::Sender<(ClusterView, Vec<TopicView>)>,
    },
    /// The brokers and the controller.
    Cluster {
        reply: oneshot::Sender<ClusterView>,
    },
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u16,
        configs: Vec<(String, String)>,
        validate_only: bool,
        reply: oneshot::Sender<AdminResult>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<AdminResult>,
    },
    /// IncrementalAlterConfigs on one topic: set (`Some`) or delete (`None`) each key.
    AlterTopicConfigs {
        topic: String,
        configs: Vec<(String, Option<String>)>,
        validate_only: bool,
        reply: oneshot::Sender<AdminResult>,
    },
    /// A topic's own configs (`None`: no such topic).
    TopicConfigs {
        topic: String,
        reply: oneshot::Sender<Option<BTreeMap<String, String>>>,
    },
    /// Grows a topic to `count` partitions.
    CreatePartitions {
        name: String,
        count: u32,
        validate_only: bool,
        reply: oneshot::Sender<AdminResult>,
    },
    /// The coordinator of group `key`: the leader of its `__consumer_offsets` partition,
    /// creating the topic on first use.
    Coordinator {
        key: String,
        reply: oneshot::Sender<Result<BrokerView, (ResponseError, String)>>,
    },
    /// SIGTERM: move leadership away (a controlled shutdown), flush every log, answer,
    /// and stop.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    NewProducerId {
        reply: oneshot::Sender<i64>,
    },
    Query {
        partition: TopicPartition,
        query: LogQuery,
    },
    /// Where the stored batches `(base offset, length)` of a partition lie in its
    /// segment files, in order, up to the first not found whole: for the caller to read
    /// off the actor's thread.
    LocateStored {
        partition: TopicPartition,
        batches: Vec<(Offset, u32)>,
        reply: oneshot::Sender<Vec<StoredRead>>,
    },
}

pub(crate) struct Actor {
    cfg: BrokerConfig,
    id: NodeId,
    node: Node,
    dirs: BTreeMap<TopicPartition, PartitionDir>,
    quorum: Quorum,
    /// Topics this process's image has had: only their partitions are removed when a
    /// topic leaves the image.
    seen_topics: BTreeSet<String>,
    /// The topic id each partition directory's `partition.metadata` names (`None`: none
    /// yet, written once the image knows the topic).
    dir_topic_ids: BTreeMap<TopicPartition, Option<TopicId>>,
    admin: Vec<AdminWait>,
    pending: BTreeMap<u64, ReplyTo>,
    next_token: u64,
    /// Syncs run on blocking threads and report here: (partition, sync id, succeeded).
    syncs: (
        mpsc::UnboundedSender<SyncDone>,
        Option<mpsc::UnboundedReceiver<SyncDone>>,
    ),
    /// Partitions a write failed on: offline until their disk takes writes again (see
    /// `retry_offline_partitions`), and nothing after the failure is acknowledged or
    /// reported durable.
    failed: std::collections::BTreeSet<TopicPartition>,
    /// The bytes of every append a failed partition's files missed (by base offset): the
    /// core may keep only the header of such a batch once it leaves the in-memory tail,
    /// so these are what `restore_partition` writes it from.
    unwritten: BTreeMap<TopicPartition, BTreeMap<u64, Bytes>>,
    /// Probes of failed partitions' directories run on blocking threads (a failing disk
    /// may hang a sync) and report here: (partition, the disk took a synced write).
    probes: (
        mpsc::UnboundedSender<ProbeDone>,
        Option<mpsc::UnboundedReceiver<ProbeDone>>,
    ),
    /// Failed partitions with a probe under way.
    probing: BTreeSet<TopicPartition>,
    next_producer_id: i64,
    started: Instant,
    /// This broker's client listener, as registered with the controller.
    advertised: BrokerView,
    /// The image changed while effects were being carried out: follow it after.
    image_pending: bool,
    /// Told once this broker's image has caught up with the metadata log.
    ready: Option<oneshot::Sender<()>>,
    incarnation: u64,
    /// A controlled shutdown under way: who to tell when done, and when to give up
    /// waiting for leadership to move.
    stopping: Option<(oneshot::Sender<()>, u64)>,
    /// When a controlled shutdown that is done may stop (see `shutdown_done`).
    done_at: Option<u64>,
    /// FindCoordinator requests waiting for the offsets topic (key, deadline, reply).
    coordinator_waits: Vec<CoordinatorWait>,
    /// When this broker last asked for `__consumer_offsets` to be created.
    offsets_requested_at: Option<u64>,
}

type CoordinatorWait = (
    String,
    u64,
    oneshot::Sender<Result<BrokerView, (ResponseError, String)>>,
);

impl Actor {
    /// Opens every partition found under `log.dirs`, recovering (and cutting torn tails
    /// from) its segments, opens the metadata quorum's state, and starts the node on
    /// what was found. The partitions wait for the image to say what they are.
    pub(crate) fn open(
        cfg: BrokerConfig,
        cluster_id: &str,
        incarnation: u64,
        links: PeerLinks,
        advertised: BrokerView,
        ready: oneshot::Sender<()>,
    ) -> Result<Actor, StorageError> {
        let id = cfg.node_id;
        let roots: Vec<PathBuf> = cfg.log_dirs.iter().map(PathBuf::from).collect();
        let found = storage::find_partitions(&roots)?;
        let mut recovery_points = BTreeMap::new();
        for root in &roots {
            recovery_points.extend(storage::checkpoint::read_recovery_points(root));
        }
        let log_config = LogConfig::from_broker(&cfg);
        let mut dirs = BTreeMap::new();
        let mut dir_topic_ids = BTreeMap::new();
        let mut recovered = Vec::new();
        let mut empty_starts = Vec::new();
        for (tp, path) in found {
            let recovery_point = recovery_points.get(&tp).copied();
            let (dir, rec) = PartitionDir::open(path, log_config, recovery_point)?;
            tracing::info!(
                partition = %format!("{}-{}", tp.topic, tp.partition),
                batches = rec.batches.len(),
                cut_bytes = rec.cut_bytes,
                recovery_point,
                crc_checked_bytes = rec.checked_bytes,
                rebuilt_indexes = rec.rebuilt_indexes.len(),
                "recovered partition"
            );
            if rec.batches.is_empty() && rec.log_start_offset > 0 {
                empty_starts.push((tp.clone(), Offset(rec.log_start_offset)));
            }
            // Headers only: the core keeps the bytes of the newest batches again as they
            // come, and reads of older ones go to the files. The offsets topic is loaded
            // whole by the group coordinator.
            let batches = if tp.topic == OFFSETS_TOPIC {
                rec.batches
                    .iter()
                    .cloned()
                    .map(RecoveredBatch::Whole)
                    .collect()
            } else {
                rec.batches
                    .iter()
                    .map(|b| {
                        RecoveredBatch::Header(
                            BatchHeader::parse(b).expect("recovery returns whole batches"),
                        )
                    })
                    .collect()
            };
            recovered.push((tp.clone(), batches));
            dir_topic_ids.insert(tp.clone(), partition_metadata::read(dir.path()));
            dirs.insert(tp, dir);
        }
        let mut node_config = NodeConfig::from_broker_config(&cfg);
        node_config.replica.resident_tail_bytes = Some(RESIDENT_TAIL_BYTES);
        let mut node = Node::new(id, incarnation, node_config, recovered);
        // What the controller records for clients to reach this broker by (Metadata
        // responses list every broker from the image).
        node.set_registration(
            vec![format!(
                "PLAINTEXT://{}:{}",
                advertised.host, advertised.port
            )],
            None,
        );
        for (tp, start) in empty_starts {
            node.recovered_empty_log_starts_at(&tp, start);
        }
        let started = Instant::now();
        let quorum = Quorum::open(&cfg, cluster_id, incarnation, links, 0)?;
        let mut actor = Actor {
            cfg,
            id,
            node,
            dirs,
            quorum,
            seen_topics: BTreeSet::new(),
            dir_topic_ids,
            admin: Vec::new(),
            pending: BTreeMap::new(),
            next_token: 0,
            failed: Default::default(),
            unwritten: BTreeMap::new(),
            probes: {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            },
            probing: BTreeSet::new(),
            syncs: {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            },
            // Unique across restarts: the incarnation is the start time in ms, and a
            // restart comes more than 1,024 ms after the previous start's ids begin, so
            // up to a million ids per run never collide with the next run's.
            next_producer_id: (incarnation as i64).saturating_mul(1024),
            started,
            advertised,
            image_pending: false,
            ready: Some(ready),
            incarnation,
            stopping: None,
            done_at: None,
            coordinator_waits: Vec::new(),
            offsets_requested_at: None,
        };
        actor.follow_image();
        Ok(actor)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn create_partition_dir(&mut self, tp: &TopicPartition) -> Result<(), StorageError> {
        let path = self.partition_path(tp);
        let (dir, _) = PartitionDir::open(path, LogConfig::from_broker(&self.cfg), None)?;
        let id = self.quorum.image().topic(&tp.topic).map(|t| t.topic_id);
        if let Some(id) = id {
            partition_metadata::write(dir.path(), id)?;
        }
        self.dir_topic_ids.insert(tp.clone(), id);
        self.dirs.insert(tp.clone(), dir);
        Ok(())
    }

    /// Applies the topics' own `segment.bytes` / `segment.ms` (or the broker's) to their
    /// partitions' directories.
    fn apply_roll_settings(&mut self) {
        let image = self.quorum.image();
        for (tp, dir) in &mut self.dirs {
            let own = image.topic(&tp.topic).map(|t| &t.configs);
            let get = |key: &str| own.and_then(|c| c.get(key)).and_then(|v| v.parse().ok());
            dir.set_roll(
                get("segment.bytes").unwrap_or(self.cfg.log_segment_bytes.into()),
                get("segment.ms").unwrap_or(self.cfg.log_roll_ms),
            );
        }
    }

    /// Runs until every command sender is gone.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut peers: mpsc::Receiver<(NodeId, PeerFrame)>,
    ) {
        let mut synced = self.syncs.1.take().expect("run once");
        let mut probed = self.probes.1.take().expect("run once");
        let mut ticker = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention = tokio::time::interval(Duration::from_millis(
            self.cfg.log_retention_check_interval_ms.max(1),
        ));
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpoint = tokio::time::interval(Duration::from_millis(
            self.cfg
                .log_flush_offset_checkpoint_interval_ms
                .max(TICK_MS),
        ));
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut offline_retry = tokio::time::interval(Duration::from_millis(
            self.cfg
                .log_retention_check_interval_ms
                .clamp(TICK_MS, OFFLINE_RETRY_MS_MAX),
        ));
        offline_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = ticker.tick() => {
                    let now = self.now_ms();
                    self.node.set_metadata_offset(self.quorum.applied_offset());
                    let effects = self.node.handle(now, Input::Tick);
                    self.carry_out(effects);
                    let local = self.quorum.tick(now);
                    self.take_from_quorum(local);
                    self.check_admin();
                    if self.shutdown_done() {
                        break;
                    }
                }
                Some((from, frame)) = peers.recv() => self.on_peer(from, frame),
                Some((tp, sync_id, point, ok)) = synced.recv() => self.on_synced(tp, sync_id, point, ok),
                _ = retention.tick() => self.enforce_retention(),
                _ = checkpoint.tick() => self.checkpoint_recovery_points(),
                _ = offline_retry.tick() => self.retry_offline_partitions(),
                Some((tp, ok)) = probed.recv() => self.on_probed(tp, ok),
            }
        }
        self.shutdown();
        if let Some((reply, _)) = self.stopping.take() {
            let _ = reply.send(());
        }
    }

    /// Asks the controller to move leadership away from this broker (KIP-631's
    /// controlled shutdown); the loop goes on serving until the image shows it done.
    fn begin_shutdown(&mut self, reply: oneshot::Sender<()>) {
        let now = self.now_ms();
        tracing::info!("controlled shutdown: moving partition leadership to other brokers");
        self.stopping = Some((reply, now + CONTROLLED_SHUTDOWN_MS));
        self.quorum.admin(
            now,
            ControllerInput::ControlledShutdown {
                broker: self.id,
                incarnation: self.incarnation,
            },
        );
        self.take_from_quorum(Vec::new());
    }

    /// Whether a controlled shutdown may finish: this broker leads nothing (or is
    /// fenced, or it is the last broker and nothing can move), or it waited long enough.
    fn shutdown_done(&mut self) -> bool {
        let Some((_, deadline)) = &self.stopping else {
            return false;
        };
        let image = self.quorum.image();
        let fenced = image.broker(self.id).is_none_or(|b| b.fenced);
        let leads = image.partitions().any(|(_, s)| s.leader == Some(self.id));
        if fenced || !leads {
            // The active controller lingers for a few heartbeats so the other voters
            // learn that the shutdown's records committed before it goes (a new
            // controller would commit them too, but only after an election).
            let linger = if self.quorum.is_active() {
                CONTROLLER_LINGER_MS
            } else {
                0
            };
            let now = self.now_ms();
            let until = *self.done_at.get_or_insert(now + linger);
            if now < until {
                return false;
            }
            tracing::info!(leads_partitions = leads, "controlled shutdown done");
            return true;
        }
        if self.quorum.controller().is_none() {
            // No majority of voters is up (the rest of the cluster stopped first):
            // nothing can move, and nobody is left to serve.
            tracing::info!("controlled shutdown: no active controller, stopping");
            return true;
        }
        let now = self.now_ms();
        if now >= *deadline {
            tracing::warn!(
                "controlled shutdown timed out: stopping while still leading partitions"
            );
            return true;
        }
        // The request may have been lost, or the controller moved: ask again.
        if now % 1_000 < TICK_MS {
            self.quorum.admin(
                now,
                ControllerInput::ControlledShutdown {
                    broker: self.id,
                    incarnation: self.incarnation,
                },
            );
        }
        false
    }

    /// A frame from another broker or voter.
    fn on_peer(&mut self, from: NodeId, frame: PeerFrame) {
        let now = self.now_ms();
        match frame {
            PeerFrame::Replication(msg) => {
                let effects = self.node.handle(now, Input::Peer { from, msg });
                self.carry_out(effects);
            }
            PeerFrame::Raft(msg) => {
                let local = self.quorum.raft(now, from, msg);
                self.take_from_quorum(local);
            }
            PeerFrame::ToController(req) => {
                let local = self.quorum.controller_request(now, from, req);
                self.take_from_quorum(local);
            }
            PeerFrame::FromController(msg) => {
                let effects = self.controller_message(msg);
                self.carry_out(effects);
            }
            PeerFrame::Hello { address } => {
                if self.quorum.links_mut().add(from, &address) {
                    tracing::info!(node = from.0, %address, "learnt of a peer");
                }
            }
            PeerFrame::Admin(input) => {
                if !self.quorum.admin(now, input) {
                    tracing::debug!(
                        from = from.0,
                        "dropped a forwarded admin request: no active controller known"
                    );
                }
                self.take_from_quorum(Vec::new());
            }
        }
    }

    /// Hands the node what the quorum had for it, then follows the image if it changed.
    fn take_from_quorum(&mut self, mut local: Vec<ForBroker>) {
        local.extend(self.quorum.take_held());
        for ForBroker::Message(msg) in local {
            let effects = self.controller_message(msg);
            self.carry_out(effects);
        }
        if self.quorum.take_image_changed() {
            self.link_registered_brokers();
            self.follow_image();
            self.check_admin();
        }
        // Ready as a KRaft broker is: caught up with the metadata log, and registered
        // and unfenced at this incarnation (so it may lead and join ISRs).
        let unfenced = self
            .quorum
            .image()
            .broker(self.id)
            .is_some_and(|b| b.incarnation == self.incarnation && !b.fenced);
        if self.ready.is_some() && unfenced && self.quorum.caught_up() {
            tracing::info!("caught up with the metadata log and unfenced");
            let _ = self.ready.take().map(|r| r.send(()));
        }
    }

    /// Reaches every broker the image has registered (at its listener, where a
    /// broker-only node takes peer connections): replication may need any of them.
    /// Voters are linked from the start, at their controller listener.
    fn link_registered_brokers(&mut self) {
        let new: Vec<(NodeId, String)> = self
            .quorum
            .image()
            .brokers()
            .filter(|(id, _)| *id != self.id && !self.quorum.links().knows(*id))
            .filter_map(|(id, b)| {
                let (host, port) = b
                    .listeners
                    .iter()
                    .find_map(|l| super::parse_listener(l).ok())?;
                Some((id, super::dial_address(&host, port)))
            })
            .collect();
        for (id, addr) in new {
            if self.quorum.links_mut().add(id, &addr) {
                tracing::info!(node = id.0, address = %addr, "reaching a registered broker");
            }
        }
    }

    /// The controller's word for the node. Partition states come from the active
    /// controller (its pushes of committed changes and its heartbeat answers: what the
    /// simulator verifies); the directories of partitions newly hosted here are created
    /// first.
    fn controller_message(&mut self, msg: ControllerMessage) -> Vec<Effect> {
        if let ControllerMessage::PartitionStates(states) = &msg {
            for (tp, _) in states {
                if self.dirs.contains_key(tp) {
                    continue;
                }
                if let Err(e) = self.create_partition_dir(tp) {
                    tracing::error!(partition = %storage::partition_dir_name(tp), error = %e, "cannot create the partition's directory; it stays offline here");
                    self.failed.insert(tp.clone());
                }
            }
            self.apply_roll_settings();
        }
        let now = self.now_ms();
        self.node.handle(now, Input::Controller(msg))
    }

    /// Follows the committed image where it is the only word: the partitions of topics
    /// it had and no longer has are removed (deleted topics; a directory the image never
    /// named stays, in case this voter is behind), and segment rolling follows the
    /// topics' configs.
    fn follow_image(&mut self) {
        let image = self.quorum.image();
        let topics: BTreeSet<String> = image.topics().map(|(n, _)| n.to_string()).collect();
        let mut gone: Vec<TopicPartition> = self
            .dirs
            .keys()
            .filter(|tp| self.seen_topics.contains(&tp.topic) && !topics.contains(&tp.topic))
            .cloned()
            .collect();
        self.seen_topics.extend(topics);
        // Directories of an earlier topic of the same name (deleted, perhaps created
        // again, while this broker was away), known by their topic id: an id below the
        // image's next one was given out before, so a topic without it now is gone.
        let mut label = Vec::new();
        for (tp, recorded) in &self.dir_topic_ids {
            let current = image.topic(&tp.topic).map(|t| t.topic_id);
            match (*recorded, current) {
                (None, Some(id)) => label.push((tp.clone(), id)),
                (Some(old), Some(id)) if old < id => gone.push(tp.clone()),
                (Some(old), None) if old < image.next_topic_id() && self.quorum.caught_up() => {
                    gone.push(tp.clone())
                }
                _ => {}
            }
        }
        for (tp, id) in label {
            let Some(dir) = self.dirs.get(&tp) else {
                continue;
            };
            match partition_metadata::write(dir.path(), id) {
                Ok(()) => {
                    self.dir_topic_ids.insert(tp, Some(id));
                }
                Err(e) => {
                    tracing::warn!(partition = %storage::partition_dir_name(&tp), error = %e, "cannot write partition.metadata; will retry")
                }
            }
        }
        gone.sort();
        gone.dedup();
        for tp in gone {
            self.dir_topic_ids.remove(&tp);
            let effects = self.node.remove_partition(&tp);
            self.carry_out(effects);
            if let Some(dir) = self.dirs.remove(&tp) {
                let name = storage::partition_dir_name(&tp);
                match dir.delete() {
                    Ok(()) => tracing::info!(partition = %name, "deleted partition"),
                    // The topic is gone either way; leftover files would bring it back
                    // on the next start, so say where they are.
                    Err(e) => {
                        tracing::error!(partition = %name, error = %e, "could not remove the files of a deleted partition; remove them by hand")
                    }
                }
            }
        }
        self.apply_roll_settings();
    }

    /// Answers the admin requests the image now shows done, times out the ones waited
    /// on too long, and resends the rest now and then.
    fn check_admin(&mut self) {
        self.check_coordinators();
        if self.admin.is_empty() {
            return;
        }
        let now = self.now_ms();
        let waits = std::mem::take(&mut self.admin);
        for mut wait in waits {
            if (wait.done)(self.quorum.image(), &wait.input) {
                let _ = wait.reply.send(Ok(()));
            } else if now >= wait.deadline {
                let _ = wait.reply.send(Err((
                    ResponseError::RequestTimedOut,
                    "the controller did not carry out the request in time; retry".to_string(),
                )));
            } else {
                if now >= wait.resend_at {
                    wait.resend_at = now + ADMIN_RESEND_MS;
                    self.quorum.admin(now, wait.input.clone());
                }
                self.admin.push(wait);
            }
        }
    }

    /// Sends an admin request to the controller and answers `reply` once `done` holds
    /// of the image (perhaps at once: the request's effect may already be there).
    fn submit_admin(
        &mut self,
        input: ControllerInput,
        done: fn(&MetadataImage, &ControllerInput) -> bool,
        reply: oneshot::Sender<AdminResult>,
    ) {
        let now = self.now_ms();
        self.quorum.admin(now, input.clone());
        self.admin.push(AdminWait {
            input,
            done,
            deadline: now + ADMIN_TIMEOUT_MS,
            resend_at: now + ADMIN_RESEND_MS,
            reply,
        });
        self.take_from_quorum(Vec::new());
        self.check_admin();
    }

    /// The brokers clients may reach (registered and not fenced, with a listener), and
    /// the active controller.
    fn cluster_view(&self) -> ClusterView {
        let image = self.quorum.image();
        let mut brokers: Vec<BrokerView> = image
            .brokers()
            .filter(|(_, reg)| !reg.fenced)
            .filter_map(|(id, reg)| {
                let (host, port) = reg
                    .listeners
                    .iter()
                    .find_map(|l| super::parse_listener(l).ok())?;
                Some(BrokerView {
                    id,
                    host,
                    port: port.into(),
                })
            })
            .collect();
        // A broker always lists itself: clients bootstrapped here must find it even
        // before its registration commits.
        if !brokers.iter().any(|b| b.id == self.id) {
            brokers.push(self.advertised.clone());
            brokers.sort_by_key(|b| b.id);
        }
        ClusterView {
            brokers,
            controller: self.quorum.controller(),
            cluster_id: image.cluster_id().map(str::to_string),
        }
    }

    /// A sync finished on its blocking thread.
    fn on_synced(&mut self, tp: TopicPartition, sync_id: Option<u64>, point: SyncPoint, ok: bool) {
        if !ok && self.failed.insert(tp.clone()) {
            tracing::error!(
                partition = %format!("{}-{}", tp.topic, tp.partition),
                "sync failed: the partition is offline until its disk takes writes again"
            );
        }
        let ok = ok && !self.failed.contains(&tp);
        if ok {
            if let Some(dir) = self.dirs.get_mut(&tp) {
                dir.synced(point);
            }
        }
        let Some(sync_id) = sync_id else {
            return;
        };
        let done = if ok {
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

    /// Runs a sync on a blocking thread; it reports back through `syncs`.
    fn spawn_sync(&self, tp: TopicPartition, sync_id: Option<u64>, job: SyncJob) {
        let done = self.syncs.0.clone();
        let sync = move || {
            let point = job.point();
            let result = job.run();
            if let Err(e) = &result {
                tracing::error!(error = %e, "sync failed");
            }
            let _ = done.send((tp, sync_id, point, result.is_ok()));
        };
        #[cfg(not(madsim))]
        tokio::task::spawn_blocking(sync);
        // The simulated disk takes a while to sync, as a real one does, so that a kill
        // can land between a write and its sync and drop the write.
        #[cfg(madsim)]
        tokio::spawn(async move {
            tokio::time::sleep(crate::disk::sync_latency()).await;
            sync();
        });
    }

    /// Each log dir's recovery points as they stand now: (log dir, partition → point).
    fn recovery_points(&self) -> BTreeMap<PathBuf, BTreeMap<TopicPartition, u64>> {
        let mut by_dir: BTreeMap<PathBuf, BTreeMap<TopicPartition, u64>> = self
            .cfg
            .log_dirs
            .iter()
            .map(|d| (PathBuf::from(d), BTreeMap::new()))
            .collect();
        for (tp, dir) in &self.dirs {
            by_dir
                .entry(dir.log_dir().to_path_buf())
                .or_default()
                .insert(tp.clone(), dir.recovery_point());
        }
        by_dir
    }

    /// Writes every log dir's `recovery-point-offset-checkpoint`, off the actor's thread,
    /// every `log.flush.offset.checkpoint.interval.ms`.
    // Under madsim, spawn_blocking runs the closure as a simulated task (no threads).
    #[cfg_attr(madsim, allow(deprecated))]
    fn checkpoint_recovery_points(&self) {
        let points = self.recovery_points();
        tokio::task::spawn_blocking(move || {
            for (root, points) in points {
                if let Err(e) = storage::checkpoint::write_recovery_points(&root, &points) {
                    tracing::warn!(log_dir = %root.display(), error = %e, "could not write the recovery point checkpoint; a restart checks more of the log");
                }
            }
        });
    }

    /// Tries to bring back each partition that went offline on a storage failure: its
    /// directory is probed off the actor's thread, and once it takes a synced write
    /// again (`on_probed`) the files are reopened (recovery cuts a torn write) and
    /// brought back in line with the core's log, which never lost what it acknowledged,
    /// and the partition serves again — no restart needed. A partition whose disk still
    /// fails stays offline until the next attempt.
    // Under madsim, spawn_blocking runs the closure as a simulated task (no threads).
    #[cfg_attr(madsim, allow(deprecated))]
    fn retry_offline_partitions(&mut self) {
        for tp in self.failed.clone() {
            if self.node.replica(&tp).is_none() {
                // Gone from this broker (its topic was deleted): nothing to bring back.
                self.failed.remove(&tp);
                self.unwritten.remove(&tp);
                continue;
            }
            if !self.probing.insert(tp.clone()) {
                continue;
            }
            let path = self.partition_path(&tp);
            let done = self.probes.0.clone();
            tokio::task::spawn_blocking(move || {
                let ok = match storage::probe_dir(&path) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "an offline partition's disk still fails; it stays offline");
                        false
                    }
                };
                let _ = done.send((tp, ok));
            });
        }
    }

    /// A probe of an offline partition's directory finished.
    fn on_probed(&mut self, tp: TopicPartition, ok: bool) {
        self.probing.remove(&tp);
        if !ok || !self.failed.contains(&tp) || self.node.replica(&tp).is_none() {
            return;
        }
        let name = storage::partition_dir_name(&tp);
        match self.restore_partition(&tp) {
            Ok(written) => {
                self.failed.remove(&tp);
                self.unwritten.remove(&tp);
                tracing::info!(partition = %name, rewritten_batches = written, "storage works again: the partition is back online");
            }
            Err(e) => {
                tracing::warn!(partition = %name, error = %e, "the disk took a probe but restoring the partition failed; it stays offline");
            }
        }
    }

    /// Where a partition's directory is, or goes: partitions are spread over the log
    /// dirs by index, as Kafka spreads them by count.
    fn partition_path(&self, tp: &TopicPartition) -> PathBuf {
        match self.dirs.get(tp) {
            Some(dir) => dir.path().to_path_buf(),
            None => {
                let root = &self.cfg.log_dirs[tp.partition as usize % self.cfg.log_dirs.len()];
                PathBuf::from(root).join(storage::partition_dir_name(tp))
            }
        }
    }

    /// Reopens a failed partition's directory and restores what the core holds.
    fn restore_partition(&mut self, tp: &TopicPartition) -> Result<usize, StorageError> {
        let path = self.partition_path(tp);
        let recovery_point = self.dirs.get(tp).map(|d| d.recovery_point());
        let (mut dir, rec) =
            PartitionDir::open(path, LogConfig::from_broker(&self.cfg), recovery_point)?;
        let written = match self.node.replica(tp) {
            Some(replica) => {
                let log = replica.log();
                let none = BTreeMap::new();
                dir.restore(
                    &rec.batches,
                    log.log_start_offset(),
                    log.batches(),
                    self.unwritten.get(tp).unwrap_or(&none),
                    wall_clock_ms(),
                )?
            }
            None => {
                dir.flush_all()?;
                0
            }
        };
        self.dirs.insert(tp.clone(), dir);
        self.apply_roll_settings();
        Ok(written)
    }

    /// Flushes every partition before the process exits, and records that everything is
    /// on disk in each log dir's recovery point checkpoint: the next start checks nothing
    /// but the logs' ends.
    fn shutdown(&mut self) {
        for (tp, dir) in &mut self.dirs {
            if self.failed.contains(tp) {
                continue;
            }
            if let Err(e) = dir.flush_all() {
                tracing::error!(partition = %format!("{}-{}", tp.topic, tp.partition), error = %e, "flush on shutdown failed");
            }
        }
        for (root, points) in self.recovery_points() {
            if let Err(e) = storage::checkpoint::write_recovery_points(&root, &points) {
                tracing::warn!(log_dir = %root.display(), error = %e, "could not write the recovery point checkpoint; the next start checks more of the log");
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
                let names = names.unwrap_or_else(|| {
                    self.quorum
                        .image()
                        .topics()
                        .map(|(n, _)| TopicQuery::Name(n.to_string()))
                        .collect()
                });
                let mut out = Vec::new();
                for query in names {
                    let name = match query {
                        TopicQuery::Name(name) => name,
                        TopicQuery::Id(uuid) => {
                            let found = topic_id::from_uuid(uuid).and_then(|id| {
                                self.quorum
                                    .image()
                                    .topics()
                                    .find(|(_, t)| t.topic_id == id)
                                    .map(|(n, _)| n.to_string())
                            });
                            match found {
                                Some(name) => name,
                                None => {
                                    out.push(TopicView {
                                        name: None,
                                        id: uuid,
                                        partitions: Err(ResponseError::UnknownTopicId),
                                    });
                                    continue;
                                }
                            }
                        }
                    };
                    out.push(self.topic_view(name, auto_create));
                }
                let _ = reply.send((self.cluster_view(), out));
            }
            Command::Shutdown { reply } => self.begin_shutdown(reply),
            Command::Cluster { reply } => {
                let _ = reply.send(self.cluster_view());
            }
            Command::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
                validate_only,
                reply,
            } => {
                let checked = self
                    .check_new_topic(&name, partitions, replication_factor)
                    .and_then(|()| {
                        configs
                            .iter()
                            .try_for_each(|(k, v)| check_topic_config(k, Some(v)))
                    });
                if let Err(e) = checked {
                    let _ = reply.send(Err(e));
                    return;
                }
                if validate_only {
                    let _ = reply.send(Ok(()));
                    return;
                }
                tracing::info!(topic = %name, partitions, replication_factor, "creating topic");
                let input = ControllerInput::CreateTopic {
                    name,
                    num_partitions: Some(partitions),
                    replication_factor: Some(replication_factor),
                    configs,
                };
                self.submit_admin(input, topic_created, reply);
            }
            Command::AlterTopicConfigs {
                topic,
                configs,
                validate_only,
                reply,
            } => {
                let checked = if self.quorum.image().topic(&topic).is_none() {
                    Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{topic}' does not exist."),
                    ))
                } else {
                    configs
                        .iter()
                        .try_for_each(|(k, v)| check_topic_config(k, v.as_deref()))
                };
                if checked.is_err() || validate_only {
                    let _ = reply.send(checked);
                    return;
                }
                tracing::info!(topic = %topic, ?configs, "altering topic configs");
                let input = ControllerInput::AlterConfigs { topic, configs };
                self.submit_admin(input, configs_altered, reply);
            }
            Command::TopicConfigs { topic, reply } => {
                let configs = self.quorum.image().topic(&topic).map(|t| t.configs.clone());
                let _ = reply.send(configs);
            }
            Command::DeleteTopic { name, reply } => {
                if self.quorum.image().topic(&name).is_none() {
                    let _ = reply.send(Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )));
                    return;
                }
                tracing::info!(topic = %name, "deleting topic");
                self.submit_admin(ControllerInput::DeleteTopic { name }, topic_deleted, reply);
            }
            Command::CreatePartitions {
                name,
                count,
                validate_only,
                reply,
            } => {
                let Some(current) = self.quorum.image().topic(&name).map(|t| t.partition_count)
                else {
                    let _ = reply.send(Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )));
                    return;
                };
                if count <= current {
                    let _ = reply.send(Err((
                        ResponseError::InvalidPartitions,
                        format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}."),
                    )));
                    return;
                }
                if validate_only {
                    let _ = reply.send(Ok(()));
                    return;
                }
                tracing::info!(topic = %name, partitions = count, "adding partitions");
                let input = ControllerInput::CreatePartitions { topic: name, count };
                self.submit_admin(input, partitions_added, reply);
            }
            Command::Coordinator { key, reply } => {
                let now = self.now_ms();
                self.coordinator_waits
                    .push((key, now + COORDINATOR_WAIT_MS, reply));
                self.check_coordinators();
            }
            Command::NewProducerId { reply } => {
                let id = self.next_producer_id;
                self.next_producer_id += 1;
                let _ = reply.send(id);
            }
            Command::Query { partition, query } => query(self.node.replica(&partition)),
            Command::LocateStored {
                partition,
                batches,
                reply,
            } => {
                let found = match self.dirs.get(&partition) {
                    Some(dir) => batches
                        .into_iter()
                        .map_while(|(base_offset, len)| dir.locate(base_offset, len))
                        .collect(),
                    None => Vec::new(),
                };
                let _ = reply.send(found);
            }
        }
    }

    /// The answer for a request this broker refuses before the core sees it: a partition
    /// the metadata does not have gets UNKNOWN_TOPIC_OR_PARTITION, as Kafka gives (the
    /// core would say it is not the leader, which sends clients to refresh metadata for
    /// ever); one whose storage failed here gets KAFKA_STORAGE_ERROR (offline until its
    /// disk works again). A partition hosted elsewhere is the core's to refuse
    /// (NOT_LEADER_OR_FOLLOWER).
    fn refuse_partition(&self, req: &ClientRequest) -> Option<ClientResponse> {
        use eddy_core::ErrorCode;
        let partition = match req {
            ClientRequest::Produce { partition, .. }
            | ClientRequest::Fetch { partition, .. }
            | ClientRequest::ListOffsets { partition }
            | ClientRequest::OffsetForLeaderEpoch { partition, .. } => partition,
            ClientRequest::Metadata | ClientRequest::Group(_) => return None,
        };
        let error = if self.quorum.image().partition(partition).is_none() {
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

    /// Deletes the segments `log.retention.ms` / `log.retention.bytes` no longer keep, run
    /// every `log.retention.check.interval.ms`. The core moves the log start first, so no
    /// read is served from a file about to go.
    fn enforce_retention(&mut self) {
        let now = wall_clock_ms();
        let image = self.quorum.image();
        for (tp, dir) in &mut self.dirs {
            let Some(hw) = self.node.replica(tp).map(|r| r.high_watermark()) else {
                continue;
            };
            let own = image.topic(&tp.topic).map(|t| &t.configs);
            let retention_ms = topic_limit(own, "retention.ms", self.cfg.log_retention_ms);
            let retention_bytes = topic_limit(own, "retention.bytes", self.cfg.log_retention_bytes);
            let Some(start) = dir.retention_point(now, retention_ms, retention_bytes, hw.0) else {
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
                Effect::Send { to, mut msg } => {
                    self.resolve_stored(&mut msg);
                    // Best effort, as the core expects of a network: a frame dropped
                    // here is resent by the core's timers.
                    self.quorum.links().send(to, &PeerFrame::Replication(msg));
                }
                // A broker in controlled shutdown stops heartbeating: its heartbeats
                // must not look like a broker that came back.
                Effect::Controller(_) if self.stopping.is_some() => {}
                Effect::Controller(req) => {
                    let now = self.now_ms();
                    let local = self.quorum.controller_request(now, self.id, req);
                    for ForBroker::Message(msg) in local {
                        queue.extend(self.controller_message(msg));
                    }
                    if self.quorum.take_image_changed() {
                        // Followed once the queue is done: the image's states may
                        // depend on effects still queued.
                        self.image_pending = true;
                    }
                }
            }
        }
        if std::mem::take(&mut self.image_pending) {
            self.follow_image();
            self.check_admin();
        }
    }

    fn storage(&mut self, op: StorageOp) -> Option<StorageDone> {
        // An offline partition's files are left as the failure left them: the core's log
        // is the reference, and the files are brought back in line with it when the disk
        // works again (`retry_offline_partitions`).
        match &op {
            StorageOp::Sync { partition, sync_id } if self.failed.contains(partition) => {
                return Some(StorageDone::SyncFailed {
                    partition: partition.clone(),
                    sync_id: *sync_id,
                });
            }
            StorageOp::Append { .. }
            | StorageOp::Truncate { .. }
            | StorageOp::TruncateFully { .. }
                if self.keep_unwritten(&op) =>
            {
                return None;
            }
            _ => {}
        }
        let append = match &op {
            StorageOp::Append {
                partition,
                base_offset,
                batch,
            } => Some((partition.clone(), base_offset.0, batch.clone())),
            _ => None,
        };
        let (tp, result, sync_id) = match op {
            StorageOp::Append {
                partition,
                base_offset,
                batch,
            } => {
                let now = wall_clock_ms();
                let r = self.dir(&partition).and_then(|d| {
                    d.append(base_offset, &batch, now)
                        .map(|()| d.take_roll_flush())
                });
                let r = r.map(|roll_flush| {
                    if let Some(job) = roll_flush {
                        self.spawn_sync(partition.clone(), None, job);
                    }
                });
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
                match self.dir(&partition).and_then(|d| d.begin_sync()) {
                    Ok(job) => {
                        // Flushed off the actor's thread: appends to every partition go on
                        // meanwhile, and the core's next sync covers them all.
                        self.spawn_sync(partition, Some(sync_id), job);
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
                // KAFKA_STORAGE_ERROR until `retry_offline_partitions` finds the disk
                // working again and restores the files from the core's log.
                if let Some((partition, base, batch)) = append {
                    self.unwritten
                        .entry(partition)
                        .or_default()
                        .insert(base, batch);
                }
                if self.failed.insert(tp.clone()) {
                    tracing::error!(
                        partition = %format!("{}-{}", tp.topic, tp.partition),
                        error = %e,
                        "storage failed: the partition is offline until its disk takes writes again (free space or fix the disk)"
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

    /// For a partition whose storage failed, keeps what `op` means for its files in
    /// `unwritten` instead (an append's bytes; a truncation drops what it cut), and says
    /// so; the files are left alone.
    fn keep_unwritten(&mut self, op: &StorageOp) -> bool {
        let partition = match op {
            StorageOp::Append { partition, .. }
            | StorageOp::Truncate { partition, .. }
            | StorageOp::TruncateFully { partition, .. }
            | StorageOp::Sync { partition, .. } => partition,
        };
        if !self.failed.contains(partition) {
            return false;
        }
        let kept = self.unwritten.entry(partition.clone()).or_default();
        match op {
            StorageOp::Append {
                base_offset, batch, ..
            } => {
                kept.insert(base_offset.0, batch.clone());
            }
            // A batch straddling the offset stays; `restore` checks each kept batch
            // against the core's header before writing it.
            StorageOp::Truncate { offset, .. } => {
                kept.split_off(&offset.0);
            }
            StorageOp::TruncateFully { .. } => kept.clear(),
            StorageOp::Sync { .. } => {}
        }
        true
    }

    /// Reads the stored batches a replication fetch response refers to from the segment
    /// files, on the actor's thread: a follower reads within the core's in-memory tail
    /// while it keeps up, so this serves only one catching up, at most
    /// `replica.fetch.max.bytes` per response, from the page cache for recent data. The
    /// response ends before the first batch not found whole.
    fn resolve_stored(&self, msg: &mut PeerMessage) {
        let PeerMessage::FetchResponse {
            partition, batches, ..
        } = msg
        else {
            return;
        };
        if batches.iter().all(|b| b.bytes().is_some()) {
            return;
        }
        let dir = self.dirs.get(partition);
        let resolved = resolve_batches(std::mem::take(batches), |base_offset, len| {
            dir.and_then(|d| d.read_batch(base_offset, len))
        });
        *batches = resolved.into_iter().map(FetchedBatch::Bytes).collect();
    }

    fn dir(&mut self, tp: &TopicPartition) -> Result<&mut PartitionDir, StorageError> {
        self.dirs.get_mut(tp).ok_or_else(|| StorageError::Io {
            op: "find",
            path: PathBuf::from(storage::partition_dir_name(tp)),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

impl Actor {
    /// A topic's partitions as the image has them, creating the topic first when
    /// `auto_create` allows (answered LEADER_NOT_AVAILABLE meanwhile, as Kafka does).
    fn topic_view(&mut self, name: String, auto_create: bool) -> TopicView {
        let image = self.quorum.image();
        if let Some(topic) = image.topic(&name) {
            let parts = (0..topic.partition_count)
                .map(|p| {
                    let tp = TopicPartition::new(name.clone(), p);
                    PartitionView {
                        partition: p,
                        state: image.partition(&tp).cloned(),
                        offline: self.failed.contains(&tp),
                    }
                })
                .collect();
            return TopicView {
                name: Some(name),
                id: topic_id::to_uuid(topic.topic_id),
                partitions: Ok(parts),
            };
        }
        let refused = |name: String, e: ResponseError| TopicView {
            name: Some(name),
            id: uuid::Uuid::nil(),
            partitions: Err(e),
        };
        if !auto_create {
            return refused(name, ResponseError::UnknownTopicOrPartition);
        }
        let partitions = self.cfg.num_partitions;
        let rf = self.cfg.default_replication_factor;
        if let Err((e, msg)) = self.check_new_topic(&name, partitions, rf) {
            tracing::warn!(topic = %name, error = %msg, "auto-creation refused");
            return refused(name, e);
        }
        tracing::info!(topic = %name, partitions, replication_factor = rf, "auto-creating topic");
        let now = self.now_ms();
        self.quorum.admin(
            now,
            ControllerInput::CreateTopic {
                name: name.clone(),
                num_partitions: Some(partitions),
                replication_factor: Some(rf),
                configs: Vec::new(),
            },
        );
        self.take_from_quorum(Vec::new());
        refused(name, ResponseError::LeaderNotAvailable)
    }

    /// What Kafka checks of a new topic before the controller sees it.
    fn check_new_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u16,
    ) -> Result<(), (ResponseError, String)> {
        eddy_core::controller::validate_topic_name(name)
            .map_err(|msg| (ResponseError::InvalidTopicException, msg))?;
        let image = self.quorum.image();
        if image.topic(name).is_some() {
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
        let live = image.unfenced_brokers().len().max(1);
        if replication_factor == 0 || usize::from(replication_factor) > live {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {live} broker(s) are registered."
                ),
            ));
        }
        Ok(())
    }

    /// Answers the FindCoordinator requests whose coordinator is known, and those that
    /// waited long enough with why it is not.
    fn check_coordinators(&mut self) {
        if self.coordinator_waits.is_empty() {
            return;
        }
        let now = self.now_ms();
        for (key, deadline, reply) in std::mem::take(&mut self.coordinator_waits) {
            match self.coordinator(&key) {
                Err(_) if now < deadline && !reply.is_closed() => {
                    self.coordinator_waits.push((key, deadline, reply));
                }
                answer => {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    /// The broker leading group `key`'s `__consumer_offsets` partition. The topic is
    /// created on first use with `offsets.topic.num.partitions` partitions and
    /// `offsets.topic.replication.factor` replicas — fewer when the whole quorum has
    /// fewer nodes (a single-node cluster), but never fewer because brokers are down:
    /// then the coordinator is not available until they are back, as in Kafka.
    fn coordinator(&mut self, key: &str) -> Result<BrokerView, (ResponseError, String)> {
        let name = eddy_core::group::OFFSETS_TOPIC;
        let not_available = |why: &str| (ResponseError::CoordinatorNotAvailable, why.to_string());
        let Some(count) = self.quorum.image().topic(name).map(|t| t.partition_count) else {
            let cluster = super::quorum::voters(&self.cfg).len().max(1);
            let rf = self
                .cfg
                .offsets_topic_replication_factor
                .min(u16::try_from(cluster).unwrap_or(u16::MAX));
            let partitions = self.cfg.offsets_topic_num_partitions;
            if let Err((_, msg)) = self.check_new_topic(name, partitions, rf) {
                return Err(not_available(&msg));
            }
            let now = self.now_ms();
            if self
                .offsets_requested_at
                .is_some_and(|at| now < at + ADMIN_RESEND_MS)
            {
                return Err(not_available("the offsets topic is being created"));
            }
            self.offsets_requested_at = Some(now);
            tracing::info!(partitions, replication_factor = rf, "creating {name}");
            self.quorum.admin(
                now,
                ControllerInput::CreateTopic {
                    name: name.to_string(),
                    num_partitions: Some(partitions),
                    replication_factor: Some(rf),
                    configs: Vec::new(),
                },
            );
            self.take_from_quorum(Vec::new());
            return Err(not_available("the offsets topic is being created"));
        };
        let tp = TopicPartition::new(name, eddy_core::group::offsets_partition_for(key, count));
        let leader = self
            .quorum
            .image()
            .leader_of(&tp)
            .ok_or_else(|| not_available("the group's offsets partition has no leader"))?;
        self.cluster_view()
            .brokers
            .into_iter()
            .find(|b| b.id == leader)
            .ok_or_else(|| not_available("the group's coordinator is not reachable"))
    }
}

fn topic_created(image: &MetadataImage, input: &ControllerInput) -> bool {
    matches!(input, ControllerInput::CreateTopic { name, .. } if image.topic(name).is_some())
}

fn topic_deleted(image: &MetadataImage, input: &ControllerInput) -> bool {
    matches!(input, ControllerInput::DeleteTopic { name } if image.topic(name).is_none())
}

/// A topic's own limit for `key` if it set one (-1: none), else the broker's.
fn topic_limit(
    own: Option<&BTreeMap<String, String>>,
    key: &str,
    broker: Option<u64>,
) -> Option<u64> {
    match own
        .and_then(|c| c.get(key))
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(v) if v < 0 => None,
        Some(v) => Some(v as u64),
        None => broker,
    }
}

fn configs_altered(image: &MetadataImage, input: &ControllerInput) -> bool {
    matches!(input, ControllerInput::AlterConfigs { topic, configs }
    if image.topic(topic).is_some_and(|t| {
        configs.iter().all(|(k, v)| t.configs.get(k) == v.as_ref())
    }))
}

/// The per-topic configs the broker honours: retention and segment rolling (by the
/// storage here), unclean leader election (by the controller), and the only cleanup
/// policy there is. Others are refused rather than stored and ignored.
pub(crate) const HONOURED_TOPIC_CONFIGS: &[&str] = &[
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
    "cleanup.policy",
];

/// Whether a topic config may be set (`Some`) or deleted (`None`) here.
fn check_topic_config(key: &str, value: Option<&str>) -> Result<(), (ResponseError, String)> {
    if !HONOURED_TOPIC_CONFIGS.contains(&key) {
        return Err((
            ResponseError::InvalidConfig,
            format!(
                "{key} cannot be set per topic on Eddy (it applies the broker's value); per-topic keys: {}",
                HONOURED_TOPIC_CONFIGS.join(", ")
            ),
        ));
    }
    match value {
        Some(v) if !eddy_core::controller::config_valid(key, v) => Err((
            ResponseError::InvalidConfig,
            format!("Invalid value {v} for configuration {key}"),
        )),
        _ => Ok(()),
    }
}

fn partitions_added(image: &MetadataImage, input: &ControllerInput) -> bool {
    matches!(input, ControllerInput::CreatePartitions { topic, count }
        if image.topic(topic).is_some_and(|t| t.partition_count >= *count))
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

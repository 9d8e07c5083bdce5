//! One broker: the replicas it hosts, and the routing of inputs to them.
//!
//! A `Node` is what a shell drives. Feed it inputs with [`Node::handle`] and carry out
//! the effects it returns; it holds no sockets, files, clocks or threads. The same node
//! runs in the simulator and (with issue 5) behind the real Kafka listener.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::log::PartitionLog;
use crate::message::{
    ClientRequest, ClientResponse, ControllerMessage, ControllerRequest, Effect, Input,
    PeerMessage, StorageDone, StorageOp,
};
use crate::metadata::PartitionState;
use crate::replica::{Replica, ReplicaConfig};
use crate::types::{NodeId, TimeMs, TopicPartition};

/// The settings a node runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub replica: ReplicaConfig,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            replica: ReplicaConfig::default(),
            heartbeat_interval_ms: 2_000,
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
            },
            heartbeat_interval_ms: cfg.broker_heartbeat_interval_ms,
        }
    }
}

#[derive(Debug)]
pub struct Node {
    id: NodeId,
    incarnation: u64,
    cfg: NodeConfig,
    replicas: BTreeMap<TopicPartition, Replica>,
    next_heartbeat_ms: TimeMs,
    /// Cuts recovery found necessary, handed to the shell with the first effects.
    startup: Vec<Effect>,
}

impl Node {
    /// A node starting with the logs its storage recovered (whole, CRC-checked batches
    /// in file order). Batches that do not continue a log are dropped, and the first
    /// effects the node returns ask storage to cut them. `incarnation` must differ on every start, so the
    /// controller can tell a restart from a slow heartbeat.
    pub fn new(
        id: NodeId,
        incarnation: u64,
        cfg: NodeConfig,
        recovered: Vec<(TopicPartition, Vec<Bytes>)>,
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
            startup,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn replica(&self, tp: &TopicPartition) -> Option<&Replica> {
        self.replicas.get(tp)
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.values()
    }

    /// Forgets a partition (its topic was deleted). Requests waiting on it are answered
    /// NOT_LEADER_OR_FOLLOWER, as on any loss of leadership; removing its files is the
    /// shell's business.
    pub fn remove_partition(&mut self, tp: &TopicPartition) -> Vec<Effect> {
        let mut out = std::mem::take(&mut self.startup);
        if let Some(mut replica) = self.replicas.remove(tp) {
            replica.resign(&mut out);
        }
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
        match input {
            Input::Tick => self.on_tick(now_ms, &mut out),
            Input::Peer { from, msg } => self.on_peer(now_ms, from, msg, &mut out),
            Input::Client { token, req } => self.on_client(now_ms, token, req, &mut out),
            Input::Controller(msg) => self.on_controller(now_ms, msg, &mut out),
            Input::Storage(done) => self.on_storage(now_ms, done, &mut out),
        }
        out
    }

    fn on_tick(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        if now_ms >= self.next_heartbeat_ms {
            self.next_heartbeat_ms = now_ms + self.cfg.heartbeat_interval_ms;
            out.push(Effect::Controller(ControllerRequest::Heartbeat {
                broker: self.id,
                incarnation: self.incarnation,
            }));
        }
        for replica in self.replicas.values_mut() {
            replica.on_tick(now_ms, out);
        }
    }

    fn on_controller(&mut self, now_ms: TimeMs, msg: ControllerMessage, out: &mut Vec<Effect>) {
        match msg {
            ControllerMessage::PartitionStates(states) => {
                for (tp, state) in states {
                    self.apply_partition_state(now_ms, tp, state, out);
                }
            }
            ControllerMessage::AlterPartitionResponse {
                partition,
                request,
                result,
            } => {
                if let Some(replica) = self.replicas.get_mut(&partition) {
                    replica.on_alter_partition_response(now_ms, request, result, out);
                }
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
        match req {
            // Placeholder until the coordinator is wired into the node (wip-gnode).
            ClientRequest::Group(_) => {}
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

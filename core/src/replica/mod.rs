//! One partition's replica on one broker: leader or follower, and everything that role
//! implies.
//!
//! As leader it appends produced batches, tracks each follower's fetch offset and the
//! last time it was caught up, asks the controller to shrink the ISR after
//! `replica.lag.time.max.ms` or to expand it when a follower catches up, advances the
//! high watermark to the smallest log end offset over the ISR, and answers produce
//! requests with Kafka's acks=0/1/all semantics (NOT_ENOUGH_REPLICAS before the append,
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND after it, REQUEST_TIMED_OUT past the request's
//! timeout). As follower it first truncates its log by leader epoch (OffsetForLeaderEpoch,
//! KIP-101 with KIP-279's refinement) and then fetches from the leader.
//!
//! The ISR is the controller's: the leader only proposes changes (AlterPartition, KIP-497)
//! and, while one is in flight, computes the HW over the larger of the old and new sets,
//! so the HW never moves on the strength of a change the controller has not accepted.
//!
//! With `log.flush.interval.messages = 1` (sync before ack) a replica's contribution to
//! the HW is what its disk confirmed, not what it appended, and a follower sends its next
//! fetch only once its last append is durable.

mod follower;
mod leader;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::error::ErrorCode;
use crate::log::{FetchedBatch, FlushPolicy, PartitionLog, StoredBatch};
use crate::message::{Acks, ClientResponse, ControllerRequest, Effect, PeerMessage, StorageOp};
use crate::metadata::{AlterPartition, PartitionState};
use crate::producer_state::{ProducerStateTable, SequenceCheck};
use crate::types::{Epoch, NodeId, Offset, TimeMs, TopicPartition};

/// How long a leader waits for the controller to answer an AlterPartition before asking
/// again (the request or its answer may have been lost).
const ALTER_PARTITION_RETRY_MS: u64 = 2_000;

/// The settings a replica runs with, taken from the broker config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub min_insync_replicas: u16,
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    pub replica_fetch_max_bytes: u32,
    pub replica_fetch_backoff_ms: u64,
    /// How long a follower waits for a fetch response before sending the fetch again
    /// (Kafka's `replica.socket.timeout.ms`).
    pub replica_fetch_timeout_ms: u64,
    pub message_max_bytes: u32,
    pub flush: FlushPolicy,
    /// How many bytes of committed batches each partition's log keeps in memory beyond
    /// those not yet below the HW (see [`PartitionLog::set_resident_budget`]); older
    /// batches are read from the shell's disk. `None` keeps everything in memory. The
    /// `__consumer_offsets` partitions always keep everything: the group coordinator
    /// loads them whole.
    pub resident_tail_bytes: Option<usize>,
}

impl Default for ReplicaConfig {
    fn default() -> ReplicaConfig {
        ReplicaConfig {
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_backoff_ms: 1_000,
            replica_fetch_timeout_ms: 30_000,
            message_max_bytes: 1_048_588,
            flush: FlushPolicy::NEVER,
            resident_tail_bytes: None,
        }
    }
}

/// A leader's view of one follower.
#[derive(Clone, Debug)]
struct FollowerProgress {
    /// The follower's log end offset as its last fetch in this epoch told it; `None`
    /// until it fetched in this epoch (so the HW waits for it).
    log_end_offset: Option<Offset>,
    last_caught_up_ms: TimeMs,
    last_fetch_ms: TimeMs,
    /// The incarnation the follower's last fetch came from (KIP-903's broker epoch).
    incarnation: Option<u64>,
    leader_end_at_last_fetch: Offset,
}

#[derive(Clone, Debug)]
struct PendingProduce {
    token: u64,
    acks: Acks,
    base_offset: Offset,
    /// The HW (acks=all) or durable end (acks=1 with sync before ack) that completes it.
    required_offset: Offset,
    deadline_ms: TimeMs,
}

#[derive(Clone, Debug)]
enum ParkedFetch {
    Follower {
        from: NodeId,
        fetch_id: u64,
        fetch_offset: Offset,
        max_bytes: u32,
        deadline_ms: TimeMs,
    },
    Consumer {
        token: u64,
        offset: Offset,
        max_bytes: u32,
        deadline_ms: TimeMs,
    },
}

impl ParkedFetch {
    fn deadline_ms(&self) -> TimeMs {
        match self {
            ParkedFetch::Follower { deadline_ms, .. }
            | ParkedFetch::Consumer { deadline_ms, .. } => *deadline_ms,
        }
    }
}

#[derive(Clone, Debug)]
struct PendingAlter {
    request: AlterPartition,
    sent_at_ms: TimeMs,
}

#[derive(Clone, Debug)]
struct Leader {
    followers: BTreeMap<NodeId, FollowerProgress>,
    pending: Vec<PendingProduce>,
    parked: Vec<ParkedFetch>,
    /// The ISR change proposed to the controller, until a state at a later partition
    /// epoch than the one it was based on arrives (accepted or superseded).
    alter_in_flight: Option<PendingAlter>,
}

#[derive(Clone, Debug)]
enum FollowerPhase {
    /// Waiting for the leader to say where our latest epoch ends.
    Truncating { sent_at_ms: TimeMs },
    Fetching {
        in_flight: Option<(u64, TimeMs)>,
        next_fetch_at_ms: TimeMs,
    },
}

#[derive(Clone, Debug)]
enum Role {
    /// No state from the controller yet, or this broker has no role in the partition.
    Unassigned,
    Leader(Leader),
    Follower {
        leader: NodeId,
        phase: FollowerPhase,
    },
}

/// One partition's replica on this broker.
#[derive(Debug)]
pub struct Replica {
    partition: TopicPartition,
    me: NodeId,
    /// This broker's incarnation, sent with every fetch (KIP-903).
    incarnation: u64,
    cfg: ReplicaConfig,
    log: PartitionLog,
    producers: ProducerStateTable,
    state: Option<PartitionState>,
    role: Role,
    next_id: u64,
}

impl Replica {
    /// A replica over `log` (empty, or what storage recovered), with no role yet.
    pub fn new(
        partition: TopicPartition,
        me: NodeId,
        incarnation: u64,
        cfg: ReplicaConfig,
        mut log: PartitionLog,
    ) -> Replica {
        log.set_resident_budget(if partition.topic == crate::group::OFFSETS_TOPIC {
            None
        } else {
            cfg.resident_tail_bytes
        });
        let producers =
            ProducerStateTable::rebuild_from_headers(log.batches().iter().map(|b| &b.header));
        Replica {
            partition,
            me,
            incarnation,
            cfg,
            log,
            producers,
            state: None,
            role: Role::Unassigned,
            next_id: 0,
        }
    }

    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// For the node's retention and recovery paths, which change the log's front only.
    pub(crate) fn log_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }

    pub fn state(&self) -> Option<&PartitionState> {
        self.state.as_ref()
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub fn leader_epoch(&self) -> Option<Epoch> {
        self.state.as_ref().map(|s| s.leader_epoch)
    }

    pub fn high_watermark(&self) -> Offset {
        self.log.high_watermark()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn epoch(&self) -> Epoch {
        self.state.as_ref().map_or(Epoch(0), |s| s.leader_epoch)
    }

    /// What this replica contributes to the HW: its log end offset, or with sync before
    /// ack only what its disk confirmed.
    fn ackable_end_offset(&self) -> Offset {
        if self.cfg.flush.sync_before_ack() {
            self.log.durable_end_offset()
        } else {
            self.log.log_end_offset()
        }
    }

    // ----- controller -------------------------------------------------------------

    /// Applies the controller's state for this partition, if newer than ours.
    pub fn apply_state(&mut self, now_ms: TimeMs, state: PartitionState, out: &mut Vec<Effect>) {
        if let Some(current) = &self.state {
            if !state.is_newer_than(current) {
                return;
            }
        }
        let same_epoch = self.state.as_ref().map(|s| s.leader_epoch) == Some(state.leader_epoch);
        let new_leader = state.leader.filter(|_| state.replicas.contains(&self.me));
        // Named leader as a previous incarnation of this broker: that one may have held
        // data this one lost in the restart. Take no role until the controller, told of
        // the restart, decides again.
        let stale_self = new_leader == Some(self.me)
            && state
                .leader_incarnation
                .is_some_and(|i| i != self.incarnation);
        let new_leader = new_leader.filter(|_| !stale_self);
        self.state = Some(state);
        match (new_leader, &mut self.role) {
            (Some(l), Role::Leader(leader)) if l == self.me && same_epoch => {
                // An ISR change. A proposal based on an older partition epoch has been
                // decided one way or another; one based on this epoch is still open.
                let epoch = self.state.as_ref().map_or(0, |s| s.partition_epoch);
                if leader
                    .alter_in_flight
                    .as_ref()
                    .is_some_and(|p| epoch > p.request.partition_epoch)
                {
                    leader.alter_in_flight = None;
                }
                self.maybe_advance_high_watermark(out);
            }
            (Some(l), Role::Follower { leader, .. }) if l == *leader && same_epoch => {}
            (Some(l), _) if l == self.me => self.become_leader(now_ms, out),
            (Some(l), _) => self.become_follower(now_ms, l, out),
            (None, _) => self.resign(out),
        }
    }

    fn become_leader(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        self.resign(out);
        let state = self.state.as_ref().expect("a state names us leader");
        self.log.assign_epoch(state.leader_epoch);
        let followers = state
            .replicas
            .iter()
            .filter(|&&r| r != self.me)
            .map(|&r| {
                let progress = FollowerProgress {
                    log_end_offset: None,
                    last_caught_up_ms: now_ms,
                    last_fetch_ms: now_ms,
                    incarnation: None,
                    leader_end_at_last_fetch: Offset::ZERO,
                };
                (r, progress)
            })
            .collect();
        self.role = Role::Leader(Leader {
            followers,
            pending: Vec::new(),
            parked: Vec::new(),
            alter_in_flight: None,
        });
        self.maybe_advance_high_watermark(out);
    }

    fn become_follower(&mut self, now_ms: TimeMs, leader: NodeId, out: &mut Vec<Effect>) {
        self.resign(out);
        if self.log.latest_epoch().is_some() {
            self.role = Role::Follower {
                leader,
                phase: FollowerPhase::Truncating { sent_at_ms: now_ms },
            };
            self.send_offset_for_leader_epoch(leader, out);
        } else {
            // Nothing of ours can diverge: fetch from our log end offset.
            self.role = Role::Follower {
                leader,
                phase: FollowerPhase::Fetching {
                    in_flight: None,
                    next_fetch_at_ms: now_ms,
                },
            };
            self.maybe_send_fetch(now_ms, out);
        }
    }

    /// Gives up the leader role, if held: every waiting request is answered
    /// NOT_LEADER_OR_FOLLOWER (their outcome is unknown to the client, as in Kafka).
    /// Gives up leadership: every request waiting on it is answered
    /// NOT_LEADER_OR_FOLLOWER, and the replica takes no role until told one.
    pub(crate) fn resign(&mut self, out: &mut Vec<Effect>) {
        let role = std::mem::replace(&mut self.role, Role::Unassigned);
        let Role::Leader(leader) = role else { return };
        let log_start_offset = self.log.log_start_offset();
        for p in leader.pending {
            out.push(Effect::Reply {
                token: p.token,
                resp: ClientResponse::Produce {
                    partition: self.partition.clone(),
                    error: ErrorCode::NotLeaderOrFollower,
                    base_offset: None,
                    log_start_offset,
                },
            });
        }
        for parked in leader.parked {
            match parked {
                ParkedFetch::Follower {
                    from,
                    fetch_id,
                    fetch_offset,
                    ..
                } => {
                    let msg =
                        self.fetch_error(fetch_id, fetch_offset, ErrorCode::NotLeaderOrFollower);
                    out.push(Effect::Send { to: from, msg });
                }
                ParkedFetch::Consumer { token, .. } => {
                    out.push(self.consumer_fetch_error(token, ErrorCode::NotLeaderOrFollower));
                }
            }
        }
    }

    /// The controller answered an AlterPartition of ours (`request`, echoed back: the
    /// answer may be to an earlier proposal, or to a resent copy of one it already
    /// accepted).
    pub fn on_alter_partition_response(
        &mut self,
        now_ms: TimeMs,
        request: AlterPartition,
        result: Result<PartitionState, ErrorCode>,
        out: &mut Vec<Effect>,
    ) {
        match result {
            // The new state clears the proposal it decides (apply_state).
            Ok(state) => self.apply_state(now_ms, state, out),
            // Refused for good with the current epochs: drop the proposal. Refusals for
            // staleness (our epochs are old, or a resent copy of an accepted request)
            // keep it, and the larger ISR with it, until the newer state arrives:
            // dropping it sooner would let the HW move on an ISR the controller no
            // longer has.
            Err(ErrorCode::IneligibleReplica | ErrorCode::InvalidRequest) => {
                if let Role::Leader(leader) = &mut self.role {
                    if leader
                        .alter_in_flight
                        .as_ref()
                        .is_some_and(|p| p.request == request)
                    {
                        leader.alter_in_flight = None;
                    }
                }
                self.maybe_advance_high_watermark(out);
            }
            Err(_) => {}
        }
    }

    fn propose_isr(&mut self, now_ms: TimeMs, new_isr: Vec<NodeId>, out: &mut Vec<Effect>) {
        let state = self.state.as_ref().expect("a leader has a state");
        let Role::Leader(leader) = &mut self.role else {
            unreachable!("only a leader proposes an ISR")
        };
        // KIP-903: name the incarnation each joining member fetched from, so the
        // controller refuses a member that restarted (and may have lost data) since.
        let added = new_isr
            .iter()
            .filter(|r| !state.isr.contains(r))
            .map(|r| {
                let incarnation = leader.followers.get(r).and_then(|p| p.incarnation);
                (*r, incarnation.expect("a joining follower has fetched"))
            })
            .collect();
        let request = AlterPartition {
            partition: self.partition.clone(),
            leader: self.me,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr,
            added,
        };
        leader.alter_in_flight = Some(PendingAlter {
            request: request.clone(),
            sent_at_ms: now_ms,
        });
        out.push(Effect::Controller(ControllerRequest::AlterPartition(
            request,
        )));
    }

    // ----- time and storage -------------------------------------------------------

    /// Timers: parked fetches that waited long enough, produce requests past their
    /// timeout, ISR shrink, lost requests to resend, the time-based flush.
    pub fn on_tick(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        self.maybe_sync(now_ms, out);
        match &mut self.role {
            Role::Leader(leader) => {
                let resend_alter = match &mut leader.alter_in_flight {
                    Some(p) if now_ms >= p.sent_at_ms + ALTER_PARTITION_RETRY_MS => {
                        p.sent_at_ms = now_ms;
                        Some(p.request.clone())
                    }
                    _ => None,
                };
                let mut expired = Vec::new();
                leader.pending.retain(|p| {
                    let keep = p.deadline_ms > now_ms;
                    if !keep {
                        expired.push(p.token);
                    }
                    keep
                });
                for token in expired {
                    out.push(self.produce_reply(token, ErrorCode::RequestTimedOut, None));
                }
                self.answer_parked(out, |p| p.deadline_ms() <= now_ms);
                if let Some(request) = resend_alter {
                    // The same request again: its answer, or the state it leads to,
                    // was lost.
                    out.push(Effect::Controller(ControllerRequest::AlterPartition(
                        request,
                    )));
                }
                self.maybe_shrink_isr(now_ms, out);
            }
            Role::Follower { leader, phase } => {
                let leader = *leader;
                match phase {
                    FollowerPhase::Truncating { sent_at_ms } => {
                        if now_ms >= *sent_at_ms + self.cfg.replica_fetch_timeout_ms {
                            *sent_at_ms = now_ms;
                            self.send_offset_for_leader_epoch(leader, out);
                        }
                    }
                    FollowerPhase::Fetching { in_flight, .. } => {
                        if let Some((_, sent)) = in_flight {
                            if now_ms >= *sent + self.cfg.replica_fetch_timeout_ms {
                                *in_flight = None;
                            }
                        }
                        self.maybe_send_fetch(now_ms, out);
                    }
                }
            }
            Role::Unassigned => {}
        }
    }

    /// The disk confirmed (or failed) a sync.
    pub fn on_sync_done(&mut self, now_ms: TimeMs, sync_id: u64, ok: bool, out: &mut Vec<Effect>) {
        if !ok {
            self.log.sync_failed(sync_id);
            return;
        }
        if !self.log.sync_done(sync_id) {
            return;
        }
        if self.is_leader() {
            self.maybe_advance_high_watermark(out);
        } else {
            self.maybe_send_fetch(now_ms, out);
        }
        self.maybe_sync(now_ms, out);
    }
}

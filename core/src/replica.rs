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

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::error::ErrorCode;
use crate::log::{FlushPolicy, PartitionLog, StoredBatch};
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
        log: PartitionLog,
    ) -> Replica {
        let producers = ProducerStateTable::rebuild(log.batches().iter().map(|b| &b.bytes[..]));
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
    fn resign(&mut self, out: &mut Vec<Effect>) {
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

    // ----- produce ----------------------------------------------------------------

    /// A produce request for this partition. Replies now or later (acks=1 with sync
    /// before ack, acks=all), or never (acks=0).
    pub fn produce(
        &mut self,
        now_ms: TimeMs,
        token: u64,
        acks: Acks,
        timeout_ms: u64,
        batch: Bytes,
        out: &mut Vec<Effect>,
    ) {
        match self.try_produce(now_ms, token, acks, timeout_ms, batch, out) {
            Ok(()) => {}
            Err(error) => {
                if acks != Acks::None {
                    out.push(self.produce_reply(token, error, None));
                }
            }
        }
    }

    fn try_produce(
        &mut self,
        now_ms: TimeMs,
        token: u64,
        acks: Acks,
        timeout_ms: u64,
        batch: Bytes,
        out: &mut Vec<Effect>,
    ) -> Result<(), ErrorCode> {
        let Role::Leader(_) = &self.role else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        if batch.len() > self.cfg.message_max_bytes as usize {
            return Err(ErrorCode::MessageTooLarge);
        }
        let header = batch::validate(&batch).map_err(|e| {
            ErrorCode::from_code(e.kafka_error_code()).unwrap_or(ErrorCode::CorruptMessage)
        })?;
        let state = self.state.as_ref().expect("a leader has a state");
        let isr_len = state.isr.len();
        let epoch = state.leader_epoch;
        if acks == Acks::All && isr_len < usize::from(self.cfg.min_insync_replicas) {
            return Err(ErrorCode::NotEnoughReplicas);
        }
        let (base_offset, last_offset) = match self.producers.check(&header) {
            SequenceCheck::Reject(error) => return Err(error),
            SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            } => (base_offset, last_offset),
            SequenceCheck::Append => self.append_as_leader(now_ms, epoch, &header, &batch, out),
        };
        let required_offset = last_offset.plus(1);
        let done_now = match acks {
            Acks::None => return Ok(()),
            Acks::Leader => {
                !self.cfg.flush.sync_before_ack()
                    || self.log.durable_end_offset() >= required_offset
            }
            Acks::All => false,
        };
        if done_now {
            out.push(self.produce_reply(token, ErrorCode::None, Some(base_offset)));
        } else {
            let Role::Leader(leader) = &mut self.role else {
                unreachable!()
            };
            leader.pending.push(PendingProduce {
                token,
                acks,
                base_offset,
                required_offset,
                deadline_ms: now_ms.saturating_add(timeout_ms),
            });
        }
        self.maybe_advance_high_watermark(out);
        Ok(())
    }

    fn append_as_leader(
        &mut self,
        now_ms: TimeMs,
        epoch: Epoch,
        header: &BatchHeader,
        batch: &[u8],
        out: &mut Vec<Effect>,
    ) -> (Offset, Offset) {
        let base_offset = self.log.log_end_offset();
        let mut bytes = BytesMut::from(batch);
        batch::set_base_offset(&mut bytes, base_offset.0 as i64);
        batch::set_partition_leader_epoch(&mut bytes, epoch.0 as i32);
        let stored = StoredBatch {
            base_offset,
            last_offset: base_offset.plus(u64::from(header.record_count()) - 1),
            epoch,
            bytes: bytes.freeze(),
        };
        let last_offset = stored.last_offset;
        self.producers.record(header, base_offset);
        self.append(now_ms, stored, out);
        self.wake_parked_fetches(now_ms, out);
        (base_offset, last_offset)
    }

    /// Appends to the log and asks storage to do the same (and to sync, if the policy
    /// says so now).
    fn append(&mut self, now_ms: TimeMs, stored: StoredBatch, out: &mut Vec<Effect>) {
        out.push(Effect::Storage(StorageOp::Append {
            partition: self.partition.clone(),
            base_offset: stored.base_offset,
            batch: stored.bytes.clone(),
        }));
        self.log.append(stored, now_ms);
        self.maybe_sync(now_ms, out);
    }

    fn maybe_sync(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        if self.log.sync_due(&self.cfg.flush, now_ms) {
            let sync_id = self.next_id();
            self.log.start_sync(sync_id);
            out.push(Effect::Storage(StorageOp::Sync {
                partition: self.partition.clone(),
                sync_id,
            }));
        }
    }

    fn produce_reply(&self, token: u64, error: ErrorCode, base_offset: Option<Offset>) -> Effect {
        Effect::Reply {
            token,
            resp: ClientResponse::Produce {
                partition: self.partition.clone(),
                error,
                base_offset,
                log_start_offset: self.log.log_start_offset(),
            },
        }
    }

    // ----- high watermark and ISR -------------------------------------------------

    /// Moves the HW to the smallest log end offset over the (maximal) ISR, then completes
    /// whatever waited for it.
    fn maybe_advance_high_watermark(&mut self, out: &mut Vec<Effect>) {
        let ackable = self.ackable_end_offset();
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let state = self.state.as_ref().expect("a leader has a state");
        let mut new_hw = ackable;
        let proposed = leader
            .alter_in_flight
            .iter()
            .flat_map(|p| p.request.new_isr.iter());
        for member in state.isr.iter().chain(proposed) {
            if *member == self.me {
                continue;
            }
            match leader.followers.get(member).and_then(|p| p.log_end_offset) {
                Some(leo) => new_hw = new_hw.min(leo),
                None => return,
            }
        }
        if new_hw > self.log.high_watermark() {
            self.log.set_high_watermark(new_hw);
            self.complete_pending(out);
            self.wake_parked_fetches_on_hw(out);
        } else {
            self.complete_pending(out);
        }
    }

    /// Answers every waiting produce whose condition now holds (Kafka's DelayedProduce).
    fn complete_pending(&mut self, out: &mut Vec<Effect>) {
        let hw = self.log.high_watermark();
        let durable = self.log.durable_end_offset();
        let sync_before_ack = self.cfg.flush.sync_before_ack();
        let enough = self.state.as_ref().map_or(0, |s| s.isr.len())
            >= usize::from(self.cfg.min_insync_replicas);
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let mut done = Vec::new();
        leader.pending.retain(|p| {
            let complete = match p.acks {
                Acks::All => hw >= p.required_offset,
                Acks::Leader => !sync_before_ack || durable >= p.required_offset,
                Acks::None => true,
            };
            if complete {
                done.push(p.clone());
            }
            !complete
        });
        for p in done {
            let error = if p.acks == Acks::All && !enough {
                ErrorCode::NotEnoughReplicasAfterAppend
            } else {
                ErrorCode::None
            };
            let base = (error == ErrorCode::None).then_some(p.base_offset);
            out.push(self.produce_reply(p.token, error, base));
        }
    }

    fn maybe_shrink_isr(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        if leader.alter_in_flight.is_some() {
            return;
        }
        let state = self.state.as_ref().expect("a leader has a state");
        let lag_max = self.cfg.replica_lag_time_max_ms;
        let new_isr: Vec<NodeId> = state
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.me
                    || leader
                        .followers
                        .get(r)
                        .is_some_and(|p| now_ms.saturating_sub(p.last_caught_up_ms) <= lag_max)
            })
            .collect();
        if new_isr.len() < state.isr.len() {
            self.propose_isr(now_ms, new_isr, out);
        }
    }

    /// A follower outside the ISR that reached the HW, and has fetched in this epoch,
    /// is proposed back in (Kafka's `maybeExpandIsr`).
    fn maybe_expand_isr(&mut self, now_ms: TimeMs, follower: NodeId, out: &mut Vec<Effect>) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let state = self.state.as_ref().expect("a leader has a state");
        if leader.alter_in_flight.is_some() || state.isr.contains(&follower) {
            return;
        }
        let Some(leo) = leader
            .followers
            .get(&follower)
            .and_then(|p| p.log_end_offset)
        else {
            return;
        };
        let epoch_start = self
            .log
            .epoch_start_offset(state.leader_epoch)
            .unwrap_or(self.log.log_end_offset());
        if leo >= self.log.high_watermark() && leo >= epoch_start {
            let new_isr = state
                .replicas
                .iter()
                .copied()
                .filter(|r| state.isr.contains(r) || *r == follower)
                .collect();
            self.propose_isr(now_ms, new_isr, out);
        }
    }

    // ----- fetch: leader side -----------------------------------------------------

    /// Checks a peer's view of the leader epoch against ours (KIP-320's fencing).
    fn check_leader_epoch(&self, current_leader_epoch: Epoch) -> ErrorCode {
        if !self.is_leader() {
            return ErrorCode::NotLeaderOrFollower;
        }
        let mine = self.epoch();
        if current_leader_epoch < mine {
            ErrorCode::FencedLeaderEpoch
        } else if current_leader_epoch > mine {
            ErrorCode::UnknownLeaderEpoch
        } else {
            ErrorCode::None
        }
    }

    pub fn on_offset_for_leader_epoch(
        &mut self,
        from: NodeId,
        current_leader_epoch: Epoch,
        epoch: Epoch,
        out: &mut Vec<Effect>,
    ) {
        let error = self.check_leader_epoch(current_leader_epoch);
        let answer = self.log.end_offset_for_epoch(epoch);
        out.push(Effect::Send {
            to: from,
            msg: PeerMessage::OffsetForLeaderEpochResponse {
                partition: self.partition.clone(),
                error,
                current_leader_epoch,
                asked_epoch: epoch,
                epoch: answer.epoch,
                end_offset: answer.end_offset,
            },
        });
    }

    fn fetch_error(&self, fetch_id: u64, fetch_offset: Offset, error: ErrorCode) -> PeerMessage {
        PeerMessage::FetchResponse {
            partition: self.partition.clone(),
            fetch_id,
            error,
            current_leader_epoch: self.epoch(),
            fetch_offset,
            high_watermark: self.log.high_watermark(),
            log_start_offset: self.log.log_start_offset(),
            log_end_offset: self.log.log_end_offset(),
            batches: Vec::new(),
        }
    }

    /// A follower's fetch.
    #[allow(clippy::too_many_arguments)] // the fields of one peer message
    pub fn on_follower_fetch(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        current_leader_epoch: Epoch,
        fetch_offset: Offset,
        max_bytes: u32,
        fetch_id: u64,
        incarnation: u64,
        out: &mut Vec<Effect>,
    ) {
        let mut error = self.check_leader_epoch(current_leader_epoch);
        if error == ErrorCode::None
            && (fetch_offset > self.log.log_end_offset()
                || fetch_offset < self.log.log_start_offset())
        {
            error = ErrorCode::OffsetOutOfRange;
        }
        let leader_end = self.log.log_end_offset();
        let known = match &mut self.role {
            Role::Leader(leader) => leader.followers.get_mut(&from),
            _ => None,
        };
        let Some(progress) = known.filter(|_| error == ErrorCode::None) else {
            let error = if error == ErrorCode::None {
                ErrorCode::NotLeaderOrFollower
            } else {
                error
            };
            let msg = self.fetch_error(fetch_id, fetch_offset, error);
            out.push(Effect::Send { to: from, msg });
            return;
        };
        // Kafka's Replica.updateFetchState: caught up if it asked for everything we had,
        // or for everything we had at its previous fetch.
        if fetch_offset >= leader_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= progress.leader_end_at_last_fetch {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.leader_end_at_last_fetch = leader_end;
        progress.last_fetch_ms = now_ms;
        progress.log_end_offset = Some(fetch_offset);
        progress.incarnation = Some(incarnation);
        self.maybe_expand_isr(now_ms, from, out);
        self.maybe_advance_high_watermark(out);

        let read = self
            .log
            .read(fetch_offset, max_bytes as usize, self.log.log_end_offset())
            .expect("fetch offset checked against the log bounds");
        if read.batches.is_empty() && self.cfg.replica_fetch_wait_max_ms > 0 {
            let Role::Leader(leader) = &mut self.role else {
                unreachable!()
            };
            leader.parked.push(ParkedFetch::Follower {
                from,
                fetch_id,
                fetch_offset,
                max_bytes,
                deadline_ms: now_ms + self.cfg.replica_fetch_wait_max_ms,
            });
            return;
        }
        out.push(Effect::Send {
            to: from,
            msg: self.fetch_response(fetch_id, fetch_offset, read.batches),
        });
    }

    fn fetch_response(
        &self,
        fetch_id: u64,
        fetch_offset: Offset,
        batches: Vec<Bytes>,
    ) -> PeerMessage {
        PeerMessage::FetchResponse {
            partition: self.partition.clone(),
            fetch_id,
            error: ErrorCode::None,
            current_leader_epoch: self.epoch(),
            fetch_offset,
            high_watermark: self.log.high_watermark(),
            log_start_offset: self.log.log_start_offset(),
            log_end_offset: self.log.log_end_offset(),
            batches,
        }
    }

    /// New data: parked follower fetches are answered.
    fn wake_parked_fetches(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        self.answer_parked(out, |p| match p {
            ParkedFetch::Follower { .. } => true,
            ParkedFetch::Consumer { deadline_ms, .. } => *deadline_ms <= now_ms,
        });
    }

    /// A new HW: every parked fetch is answered (consumers see new data, followers learn
    /// the HW without waiting out their fetch).
    fn wake_parked_fetches_on_hw(&mut self, out: &mut Vec<Effect>) {
        self.answer_parked(out, |_| true);
    }

    fn answer_parked(&mut self, out: &mut Vec<Effect>, mut due: impl FnMut(&ParkedFetch) -> bool) {
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.parked.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut leader.parked)
            .into_iter()
            .partition(|p| due(p));
        leader.parked = waiting;
        for parked in ready {
            match parked {
                ParkedFetch::Follower {
                    from,
                    fetch_id,
                    fetch_offset,
                    max_bytes,
                    ..
                } => {
                    let msg = match self.log.read(
                        fetch_offset,
                        max_bytes as usize,
                        self.log.log_end_offset(),
                    ) {
                        Some(read) => self.fetch_response(fetch_id, fetch_offset, read.batches),
                        None => {
                            self.fetch_error(fetch_id, fetch_offset, ErrorCode::OffsetOutOfRange)
                        }
                    };
                    out.push(Effect::Send { to: from, msg });
                }
                ParkedFetch::Consumer {
                    token,
                    offset,
                    max_bytes,
                    ..
                } => out.push(self.consumer_fetch_reply(token, offset, max_bytes)),
            }
        }
    }

    // ----- fetch: consumer side ---------------------------------------------------

    /// A consumer's fetch: only what is below the HW is visible.
    pub fn on_consumer_fetch(
        &mut self,
        now_ms: TimeMs,
        token: u64,
        offset: Offset,
        max_bytes: u32,
        max_wait_ms: u64,
        out: &mut Vec<Effect>,
    ) {
        let Role::Leader(_) = &self.role else {
            out.push(self.consumer_fetch_error(token, ErrorCode::NotLeaderOrFollower));
            return;
        };
        let Some(read) = self
            .log
            .read(offset, max_bytes as usize, self.log.high_watermark())
        else {
            out.push(self.consumer_fetch_error(token, ErrorCode::OffsetOutOfRange));
            return;
        };
        if read.batches.is_empty() && max_wait_ms > 0 {
            let Role::Leader(leader) = &mut self.role else {
                unreachable!()
            };
            leader.parked.push(ParkedFetch::Consumer {
                token,
                offset,
                max_bytes,
                deadline_ms: now_ms.saturating_add(max_wait_ms),
            });
            return;
        }
        out.push(self.consumer_fetch_reply_with(token, read.batches));
    }

    fn consumer_fetch_reply(&self, token: u64, offset: Offset, max_bytes: u32) -> Effect {
        match self
            .log
            .read(offset, max_bytes as usize, self.log.high_watermark())
        {
            Some(read) => self.consumer_fetch_reply_with(token, read.batches),
            None => self.consumer_fetch_error(token, ErrorCode::OffsetOutOfRange),
        }
    }

    fn consumer_fetch_reply_with(&self, token: u64, batches: Vec<Bytes>) -> Effect {
        Effect::Reply {
            token,
            resp: ClientResponse::Fetch {
                partition: self.partition.clone(),
                error: ErrorCode::None,
                high_watermark: self.log.high_watermark(),
                log_start_offset: self.log.log_start_offset(),
                batches,
            },
        }
    }

    fn consumer_fetch_error(&self, token: u64, error: ErrorCode) -> Effect {
        Effect::Reply {
            token,
            resp: ClientResponse::Fetch {
                partition: self.partition.clone(),
                error,
                high_watermark: self.log.high_watermark(),
                log_start_offset: self.log.log_start_offset(),
                batches: Vec::new(),
            },
        }
    }

    /// Client requests other than produce and fetch are answered by the leader only.
    fn leader_only(&self) -> ErrorCode {
        if self.is_leader() {
            ErrorCode::None
        } else {
            ErrorCode::NotLeaderOrFollower
        }
    }

    /// ListOffsets: earliest is the log start, latest the HW (read_uncommitted).
    pub fn list_offsets(&self, token: u64, out: &mut Vec<Effect>) {
        let error = self.leader_only();
        out.push(Effect::Reply {
            token,
            resp: ClientResponse::ListOffsets {
                partition: self.partition.clone(),
                error,
                earliest: self.log.log_start_offset(),
                latest: self.log.high_watermark(),
            },
        });
    }

    /// A consumer asks where `epoch` ends, to detect that the log it read was truncated
    /// under it (KIP-320).
    pub fn client_offset_for_leader_epoch(&self, token: u64, epoch: Epoch, out: &mut Vec<Effect>) {
        let answer = self.log.end_offset_for_epoch(epoch);
        let error = self.leader_only();
        out.push(Effect::Reply {
            token,
            resp: ClientResponse::OffsetForLeaderEpoch {
                partition: self.partition.clone(),
                error,
                epoch: answer.epoch,
                end_offset: answer.end_offset,
            },
        });
    }

    // ----- follower side ----------------------------------------------------------

    fn send_offset_for_leader_epoch(&mut self, leader: NodeId, out: &mut Vec<Effect>) {
        let epoch = self
            .log
            .latest_epoch()
            .expect("only a log with epochs truncates by epoch");
        out.push(Effect::Send {
            to: leader,
            msg: PeerMessage::OffsetForLeaderEpoch {
                partition: self.partition.clone(),
                current_leader_epoch: self.epoch(),
                epoch,
            },
        });
    }

    /// The leader said where our latest epoch ends in its log: cut whatever we have
    /// beyond that, then start fetching.
    #[allow(clippy::too_many_arguments)] // the fields of one peer message
    pub fn on_offset_for_leader_epoch_response(
        &mut self,
        now_ms: TimeMs,
        error: ErrorCode,
        current_leader_epoch: Epoch,
        asked_epoch: Epoch,
        epoch: Option<Epoch>,
        end_offset: Offset,
        out: &mut Vec<Effect>,
    ) {
        let Role::Follower {
            phase: FollowerPhase::Truncating { .. },
            ..
        } = &self.role
        else {
            return;
        };
        if current_leader_epoch != self.epoch() || Some(asked_epoch) != self.log.latest_epoch() {
            return; // an answer to an older question
        }
        if error != ErrorCode::None {
            // Retried by the tick after a backoff.
            if let Role::Follower { phase, .. } = &mut self.role {
                *phase = FollowerPhase::Truncating {
                    sent_at_ms: now_ms.saturating_sub(self.cfg.replica_fetch_timeout_ms)
                        + self.cfg.replica_fetch_backoff_ms,
                };
            }
            return;
        }
        // KIP-279: if the leader answers for an earlier epoch than we asked about, our
        // log diverges where that epoch ends in ours, or in the leader's, whichever is
        // first. That cut can leave us ending in an epoch whose end the leader has not
        // confirmed yet (our copy of it may stop where the leader's went on in a later
        // epoch), so we ask again about our new latest epoch until the leader answers
        // for the very epoch we asked about: only then is our log a prefix of its log.
        let (target, settled) = match epoch {
            Some(e) if e == asked_epoch => (end_offset.min(self.log.log_end_offset()), true),
            Some(e) => (
                end_offset.min(self.log.end_offset_for_epoch(e).end_offset),
                false,
            ),
            // The leader knows no epoch at or below ours: keep only what was committed.
            None => (end_offset.min(self.log.high_watermark()), true),
        };
        self.truncate_to(target, out);
        // Epochs that began at or after the cut are gone with it, even ones that held no
        // data yet; the question changes, or we are done.
        self.log.forget_empty_epochs();
        let progressed = self.log.latest_epoch().is_some_and(|e| e < asked_epoch);
        if !settled && progressed {
            if let Role::Follower { leader, .. } = &self.role {
                let leader = *leader;
                self.role = Role::Follower {
                    leader,
                    phase: FollowerPhase::Truncating { sent_at_ms: now_ms },
                };
                self.send_offset_for_leader_epoch(leader, out);
                return;
            }
        }
        if let Role::Follower { phase, .. } = &mut self.role {
            *phase = FollowerPhase::Fetching {
                in_flight: None,
                next_fetch_at_ms: now_ms,
            };
        }
        self.maybe_send_fetch(now_ms, out);
    }

    fn truncate_to(&mut self, offset: Offset, out: &mut Vec<Effect>) {
        if offset >= self.log.log_end_offset() {
            return;
        }
        self.log.truncate_to(offset);
        self.producers =
            ProducerStateTable::rebuild(self.log.batches().iter().map(|b| &b.bytes[..]));
        out.push(Effect::Storage(StorageOp::Truncate {
            partition: self.partition.clone(),
            offset,
        }));
    }

    fn maybe_send_fetch(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        let waiting_for_sync = self.cfg.flush.sync_before_ack()
            && self.log.durable_end_offset() < self.log.log_end_offset();
        let Role::Follower {
            leader,
            phase:
                FollowerPhase::Fetching {
                    in_flight,
                    next_fetch_at_ms,
                },
        } = &self.role
        else {
            return;
        };
        if in_flight.is_some() || *next_fetch_at_ms > now_ms || waiting_for_sync {
            return;
        }
        let leader = *leader;
        let fetch_id = self.next_id();
        let fetch_offset = self.log.log_end_offset();
        out.push(Effect::Send {
            to: leader,
            msg: PeerMessage::Fetch {
                partition: self.partition.clone(),
                current_leader_epoch: self.epoch(),
                fetch_offset,
                max_bytes: self.cfg.replica_fetch_max_bytes,
                fetch_id,
                incarnation: self.incarnation,
            },
        });
        if let Role::Follower {
            phase: FollowerPhase::Fetching { in_flight, .. },
            ..
        } = &mut self.role
        {
            *in_flight = Some((fetch_id, now_ms));
        }
    }

    /// The leader answered one of our fetches.
    #[allow(clippy::too_many_arguments)]
    pub fn on_fetch_response(
        &mut self,
        now_ms: TimeMs,
        fetch_id: u64,
        error: ErrorCode,
        current_leader_epoch: Epoch,
        fetch_offset: Offset,
        high_watermark: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
        batches: Vec<Bytes>,
        out: &mut Vec<Effect>,
    ) {
        let expected = matches!(
            &self.role,
            Role::Follower { phase: FollowerPhase::Fetching { in_flight: Some((id, _)), .. }, .. } if *id == fetch_id
        );
        if !expected
            || current_leader_epoch != self.epoch()
            || fetch_offset != self.log.log_end_offset()
        {
            return; // late, duplicated, or from another epoch
        }
        let mut backoff = false;
        match error {
            ErrorCode::None => {
                for bytes in batches {
                    if !self.append_fetched(now_ms, bytes, out) {
                        break;
                    }
                }
                let hw = high_watermark.min(self.log.log_end_offset());
                if hw > self.log.high_watermark() {
                    self.log.set_high_watermark(hw);
                }
            }
            ErrorCode::OffsetOutOfRange if fetch_offset > log_end_offset => {
                // We hold offsets the leader does not: they cannot be committed.
                self.truncate_to(log_end_offset, out);
            }
            ErrorCode::OffsetOutOfRange if fetch_offset < log_start_offset => {
                self.log.truncate_fully_and_start_at(log_start_offset);
                self.producers = ProducerStateTable::new();
                out.push(Effect::Storage(StorageOp::TruncateFully {
                    partition: self.partition.clone(),
                    offset: log_start_offset,
                }));
            }
            _ => backoff = true,
        }
        if let Role::Follower {
            phase:
                FollowerPhase::Fetching {
                    in_flight,
                    next_fetch_at_ms,
                },
            ..
        } = &mut self.role
        {
            *in_flight = None;
            *next_fetch_at_ms = if backoff {
                now_ms + self.cfg.replica_fetch_backoff_ms
            } else {
                now_ms
            };
        }
        self.maybe_send_fetch(now_ms, out);
    }

    /// Appends one fetched batch if it is whole and continues our log. Returns false
    /// (and appends nothing) otherwise; the next fetch starts again from our log end.
    fn append_fetched(&mut self, now_ms: TimeMs, bytes: Bytes, out: &mut Vec<Effect>) -> bool {
        let Ok(header) = batch::validate(&bytes) else {
            return false;
        };
        if header.base_offset != self.log.log_end_offset().0 as i64
            || header.partition_leader_epoch < 0
        {
            return false;
        }
        if self
            .log
            .latest_epoch()
            .is_some_and(|e| (header.partition_leader_epoch as u32) < e.0)
        {
            return false;
        }
        let stored = StoredBatch::from_validated(bytes);
        self.producers.record(&header, stored.base_offset);
        self.append(now_ms, stored, out);
        true
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

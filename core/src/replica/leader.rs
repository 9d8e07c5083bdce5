//! The leader's half of a replica: produce with acks, the high watermark over the ISR,
//! ISR changes proposed to the controller, and fetches from followers and consumers.

use super::*;

impl Replica {
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

    pub(super) fn try_produce(
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

    pub(super) fn append_as_leader(
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
    pub(super) fn append(&mut self, now_ms: TimeMs, stored: StoredBatch, out: &mut Vec<Effect>) {
        out.push(Effect::Storage(StorageOp::Append {
            partition: self.partition.clone(),
            base_offset: stored.base_offset,
            batch: stored.bytes.clone(),
        }));
        self.log.append(stored, now_ms);
        self.maybe_sync(now_ms, out);
    }

    pub(super) fn maybe_sync(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        if self.log.sync_due(&self.cfg.flush, now_ms) {
            let sync_id = self.next_id();
            self.log.start_sync(sync_id);
            out.push(Effect::Storage(StorageOp::Sync {
                partition: self.partition.clone(),
                sync_id,
            }));
        }
    }

    pub(super) fn produce_reply(
        &self,
        token: u64,
        error: ErrorCode,
        base_offset: Option<Offset>,
    ) -> Effect {
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
    pub(super) fn maybe_advance_high_watermark(&mut self, out: &mut Vec<Effect>) {
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
    pub(super) fn complete_pending(&mut self, out: &mut Vec<Effect>) {
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

    pub(super) fn maybe_shrink_isr(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
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
    pub(super) fn maybe_expand_isr(
        &mut self,
        now_ms: TimeMs,
        follower: NodeId,
        out: &mut Vec<Effect>,
    ) {
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
    pub(super) fn check_leader_epoch(&self, current_leader_epoch: Epoch) -> ErrorCode {
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

    pub(super) fn fetch_error(
        &self,
        fetch_id: u64,
        fetch_offset: Offset,
        error: ErrorCode,
    ) -> PeerMessage {
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

    pub(super) fn fetch_response(
        &self,
        fetch_id: u64,
        fetch_offset: Offset,
        batches: Vec<FetchedBatch>,
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
    pub(super) fn wake_parked_fetches(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
        self.answer_parked(out, |p| match p {
            ParkedFetch::Follower { .. } => true,
            ParkedFetch::Consumer { deadline_ms, .. } => *deadline_ms <= now_ms,
        });
    }

    /// A new HW: every parked fetch is answered (consumers see new data, followers learn
    /// the HW without waiting out their fetch).
    pub(super) fn wake_parked_fetches_on_hw(&mut self, out: &mut Vec<Effect>) {
        self.answer_parked(out, |_| true);
    }

    pub(super) fn answer_parked(
        &mut self,
        out: &mut Vec<Effect>,
        mut due: impl FnMut(&ParkedFetch) -> bool,
    ) {
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

    pub(super) fn consumer_fetch_reply(
        &self,
        token: u64,
        offset: Offset,
        max_bytes: u32,
    ) -> Effect {
        match self
            .log
            .read(offset, max_bytes as usize, self.log.high_watermark())
        {
            Some(read) => self.consumer_fetch_reply_with(token, read.batches),
            None => self.consumer_fetch_error(token, ErrorCode::OffsetOutOfRange),
        }
    }

    pub(super) fn consumer_fetch_reply_with(
        &self,
        token: u64,
        batches: Vec<FetchedBatch>,
    ) -> Effect {
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

    pub(super) fn consumer_fetch_error(&self, token: u64, error: ErrorCode) -> Effect {
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
    pub(super) fn leader_only(&self) -> ErrorCode {
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
}

//! The follower's half of a replica: truncation by leader epoch (KIP-101, KIP-279) and
//! the fetch loop.

use super::*;

impl Replica {
    // ----- follower side ----------------------------------------------------------

    pub(super) fn send_offset_for_leader_epoch(&mut self, leader: NodeId, out: &mut Vec<Effect>) {
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

    pub(super) fn truncate_to(&mut self, offset: Offset, out: &mut Vec<Effect>) {
        if offset >= self.log.log_end_offset() {
            return;
        }
        self.log.truncate_to(offset);
        self.producers =
            ProducerStateTable::rebuild_from_headers(self.log.batches().iter().map(|b| &b.header));
        out.push(Effect::Storage(StorageOp::Truncate {
            partition: self.partition.clone(),
            offset,
        }));
    }

    pub(super) fn maybe_send_fetch(&mut self, now_ms: TimeMs, out: &mut Vec<Effect>) {
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
        batches: Vec<FetchedBatch>,
        out: &mut Vec<Effect>,
    ) {
        let expected = matches!(
            &self.role,
            Role::Follower { phase: FollowerPhase::Fetching { in_flight: Some((id, _)), .. }, .. } if *id == fetch_id
        );
        if !expected || fetch_offset != self.log.log_end_offset() {
            return; // late or duplicated
        }
        let mut backoff = false;
        match error {
            // The answer to our fetch in flight, from a leader at another epoch (it has
            // not yet heard of the one we follow, or we lag): nothing in it is ours to
            // take, but the fetch is over — retry after the backoff, as Kafka's fetcher
            // does on FENCED_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER. Ignoring it left the
            // fetch in flight until replica.socket.timeout.ms (30 s by default).
            _ if current_leader_epoch != self.epoch() => backoff = true,
            ErrorCode::None => {
                for batch in batches {
                    // A reference the leader's shell did not resolve (it must) is taken
                    // like a torn batch: the next fetch starts again here.
                    let FetchedBatch::Bytes(bytes) = batch else {
                        break;
                    };
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
    pub(super) fn append_fetched(
        &mut self,
        now_ms: TimeMs,
        bytes: Bytes,
        out: &mut Vec<Effect>,
    ) -> bool {
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
}

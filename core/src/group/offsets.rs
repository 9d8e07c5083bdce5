//! The offsets half of the coordinator: OffsetCommit, OffsetFetch, DeleteGroups and
//! offset retention, following Kafka's `GroupCoordinator` and `GroupMetadataManager`.
//!
//! - A commit is fenced like any member request (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
//!   ILLEGAL_GENERATION), refused with REBALANCE_IN_PROGRESS while the group completes a
//!   rebalance, and a "simple" commit (generation -1, no member id) is taken only while
//!   the group is Empty or unknown. A commit is acknowledged, and becomes visible to
//!   OffsetFetch, only once its records are committed in `__consumer_offsets`.
//! - OffsetFetch of a missing group, topic or partition gives offset -1 with NONE.
//! - Retention (KIP-211): a group's offsets expire `offsets.retention.minutes` after the
//!   group became Empty; a group without group management (no protocol type) expires
//!   each offset that long after its commit, and so does a Stable consumer group for
//!   the topics none of its members subscribes to. An Empty group with no offsets left
//!   is dropped. Expiry and deletion append tombstones.

use std::collections::BTreeSet;

use crate::error::ErrorCode;
use crate::group::api::*;
use crate::group::classic::{CommittedOffset, GroupState};
use crate::group::coordinator::{
    commit_error, fill_pending, Api, GroupCoordinator, PendingAppend, PENDING,
};
use crate::group::membership::validate_member;
use crate::group::record::{OffsetValue, RecordKey, RecordValue};
use crate::types::{Offset, TopicPartition};

impl GroupCoordinator {
    pub(super) fn offset_commit(&mut self, token: u64, req: OffsetCommitRequest) {
        if let Some(error) = self.group_status(&req.group_id, Api::Offsets) {
            return self.reply_commit(token, OffsetCommitResponse::all(&req, error));
        }
        if !self.groups.contains_key(&req.group_id) {
            if req.generation_id >= 0 {
                // A member of a generation this coordinator never had.
                let resp = OffsetCommitResponse::all(&req, ErrorCode::IllegalGeneration);
                return self.reply_commit(token, resp);
            }
            // A consumer that uses Kafka only to store its offsets.
            self.create_group(&req.group_id);
        }
        let g = &self.groups[&req.group_id];
        let is_member_commit = req.generation_id >= 0
            || req.member_id != UNKNOWN_MEMBER_ID
            || req.group_instance_id.is_some();
        let error = if req.generation_id < 0 && g.is(GroupState::Empty) {
            // The admin client, or a consumer without group management: anyone may
            // commit to an empty group.
            None
        } else if is_member_commit {
            validate_member(g, &req.member_id, req.group_instance_id.as_deref()).or_else(|| {
                (req.generation_id != g.generation).then_some(ErrorCode::IllegalGeneration)
            })
        } else if !g.is(GroupState::Empty) {
            // Only members commit to a group that has members.
            Some(ErrorCode::UnknownMemberId)
        } else {
            None
        };
        if let Some(error) = error {
            return self.reply_commit(token, OffsetCommitResponse::all(&req, error));
        }
        match g.state {
            GroupState::Empty => {}
            // A member keeps committing during PreparingRebalance: it learns of the
            // rebalance from its heartbeat.
            GroupState::Stable | GroupState::PreparingRebalance => {
                self.renew_session(&req.group_id, &req.member_id);
            }
            GroupState::CompletingRebalance => {
                let resp = OffsetCommitResponse::all(&req, ErrorCode::RebalanceInProgress);
                return self.reply_commit(token, resp);
            }
            GroupState::Dead => unreachable!("a Dead group is dropped"),
        }
        self.store_offsets(token, req);
    }

    fn store_offsets(&mut self, token: u64, req: OffsetCommitRequest) {
        let now = self.now_ms;
        let max_metadata = self.config.offset_metadata_max_bytes as usize;
        let mut response = OffsetCommitResponse::all(&req, PENDING);
        let mut offsets: Vec<(TopicPartition, CommittedOffset)> = Vec::new();
        // Kafka's OffsetCommit v1-v4 rules: an explicit commit time and retention.
        let commit_timestamp_ms = |p: &OffsetCommitPartition| match p.commit_timestamp {
            DEFAULT_TIMESTAMP => now,
            custom => u64::try_from(custom).unwrap_or(0),
        };
        let expire_timestamp_ms = match req.retention_time_ms {
            DEFAULT_RETENTION_TIME => None,
            retention_ms => Some(now.saturating_add_signed(retention_ms)),
        };
        for (t, topic) in req.topics.iter().enumerate() {
            for (p, partition) in topic.partitions.iter().enumerate() {
                let metadata = partition.committed_metadata.clone().unwrap_or_default();
                let error = match u32::try_from(partition.partition_index) {
                    Err(_) => Some(ErrorCode::UnknownTopicOrPartition),
                    Ok(_) if metadata.len() > max_metadata => {
                        Some(ErrorCode::OffsetMetadataTooLarge)
                    }
                    Ok(index) => {
                        offsets.push((
                            TopicPartition::new(topic.name.clone(), index),
                            CommittedOffset {
                                offset: partition.committed_offset,
                                leader_epoch: partition.committed_leader_epoch,
                                metadata,
                                commit_timestamp_ms: commit_timestamp_ms(partition),
                                expire_timestamp_ms,
                                record_offset: 0,
                            },
                        ));
                        None
                    }
                };
                if let Some(error) = error {
                    response.topics[t].partitions[p].error = error;
                }
            }
        }
        if offsets.is_empty() {
            return self.reply_commit(token, response);
        }
        let g = self.group_mut(&req.group_id);
        for (tp, _) in &offsets {
            *g.pending_offset_commits.entry(tp.clone()).or_default() += 1;
        }
        let incarnation = g.incarnation;
        let records: Vec<(RecordKey, Option<RecordValue>)> = offsets
            .iter()
            .map(|(tp, o)| {
                (
                    RecordKey::Offset {
                        group_id: req.group_id.clone(),
                        partition: tp.clone(),
                    },
                    Some(RecordValue::Offset(OffsetValue {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_timestamp_ms: o.commit_timestamp_ms,
                        expire_timestamp_ms: o.expire_timestamp_ms,
                    })),
                )
            })
            .collect();
        let pending = PendingAppend::OffsetCommit {
            group_id: req.group_id.clone(),
            incarnation,
            token,
            response,
            offsets,
        };
        self.append(&req.group_id, &records, pending);
    }

    pub(super) fn offset_commit_done(
        &mut self,
        group_id: &str,
        incarnation: u64,
        token: u64,
        mut response: OffsetCommitResponse,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        result: Result<Offset, ErrorCode>,
    ) {
        if self.same_group(group_id, incarnation) {
            let g = self.group_mut(group_id);
            for (i, (tp, mut committed)) in offsets.into_iter().enumerate() {
                let count = g
                    .pending_offset_commits
                    .get_mut(&tp)
                    .expect("a commit in flight is counted");
                *count -= 1;
                if *count == 0 {
                    g.pending_offset_commits.remove(&tp);
                }
                if let Ok(base) = result {
                    committed.record_offset = base.0 + i as u64;
                    let newer = g
                        .offsets
                        .get(&tp)
                        .is_none_or(|o| o.record_offset < committed.record_offset);
                    if newer {
                        g.offsets.insert(tp, committed);
                    }
                }
            }
        }
        // A deleted group's commit still committed: Kafka answers NONE, and the
        // deletion's tombstones, appended after it, remove it from the log.
        fill_pending(
            &mut response,
            match result {
                Ok(_) => ErrorCode::None,
                Err(e) => commit_error(e),
            },
        );
        self.reply_commit(token, response);
    }

    fn reply_commit(&mut self, token: u64, resp: OffsetCommitResponse) {
        self.reply(token, GroupResponse::OffsetCommit(resp));
    }

    pub(super) fn offset_fetch(&mut self, token: u64, req: OffsetFetchRequest) {
        let missing = |index: i32, error| OffsetFetchPartitionResponse {
            partition_index: index,
            committed_offset: INVALID_OFFSET,
            committed_leader_epoch: NO_LEADER_EPOCH,
            metadata: Some(String::new()),
            error,
        };
        let status = self.group_status(&req.group_id, Api::Offsets);
        let group = self.groups.get(&req.group_id);
        let found = |tp: &TopicPartition, o: &CommittedOffset| OffsetFetchPartitionResponse {
            partition_index: i32::try_from(tp.partition).expect("stored from an i32"),
            committed_offset: o.offset,
            committed_leader_epoch: o.leader_epoch,
            metadata: Some(o.metadata.clone()),
            error: ErrorCode::None,
        };
        let topics = match (&req.topics, status) {
            (Some(topics), _) => topics
                .iter()
                .map(|t| OffsetFetchTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&index| {
                            if let Some(error) = status {
                                return missing(index, error);
                            }
                            let committed = u32::try_from(index).ok().and_then(|p| {
                                let tp = TopicPartition::new(t.name.clone(), p);
                                group
                                    .and_then(|g| g.offsets.get(&tp))
                                    .map(|o| found(&tp, o))
                            });
                            committed.unwrap_or_else(|| missing(index, ErrorCode::None))
                        })
                        .collect(),
                })
                .collect(),
            (None, Some(_)) => Vec::new(),
            (None, None) => {
                let mut topics: Vec<OffsetFetchTopicResponse> = Vec::new();
                for (tp, o) in group.map(|g| &g.offsets).into_iter().flatten() {
                    if topics.last().is_none_or(|t| t.name != tp.topic) {
                        topics.push(OffsetFetchTopicResponse {
                            name: tp.topic.clone(),
                            partitions: Vec::new(),
                        });
                    }
                    topics
                        .last_mut()
                        .expect("pushed")
                        .partitions
                        .push(found(tp, o));
                }
                topics
            }
        };
        let resp = OffsetFetchResponse {
            error: status.unwrap_or(ErrorCode::None),
            topics,
        };
        self.reply(token, GroupResponse::OffsetFetch(resp));
    }

    pub(super) fn delete_groups(&mut self, token: u64, req: DeleteGroupsRequest) {
        let mut results = Vec::with_capacity(req.groups_names.len());
        let mut seen = BTreeSet::new();
        for group_id in &req.groups_names {
            if !seen.insert(group_id.clone()) {
                continue;
            }
            let error = if let Some(error) = self.group_status(group_id, Api::Offsets) {
                error
            } else {
                match self.groups.get(group_id).map(|g| g.state) {
                    None => ErrorCode::GroupIdNotFound,
                    Some(GroupState::Empty) => {
                        let g = self.groups.remove(group_id).expect("found");
                        self.append_tombstones(
                            group_id,
                            g.offsets.keys().chain(g.pending_offset_commits.keys()),
                            true,
                        );
                        ErrorCode::None
                    }
                    Some(_) => ErrorCode::NonEmptyGroup,
                }
            };
            results.push(DeletableGroupResult {
                group_id: group_id.clone(),
                error,
            });
        }
        // As in Kafka, the answer does not wait for the tombstones: the group is gone
        // from this coordinator either way.
        self.reply(
            token,
            GroupResponse::DeleteGroups(DeleteGroupsResponse { results }),
        );
    }

    /// Tombstones for `partitions` of `group_id`, and for the group itself if `group_gone`.
    fn append_tombstones<'a>(
        &mut self,
        group_id: &str,
        partitions: impl Iterator<Item = &'a TopicPartition>,
        group_gone: bool,
    ) {
        let unique: BTreeSet<&TopicPartition> = partitions.collect();
        let mut records: Vec<(RecordKey, Option<RecordValue>)> = unique
            .into_iter()
            .map(|tp| {
                (
                    RecordKey::Offset {
                        group_id: group_id.to_string(),
                        partition: tp.clone(),
                    },
                    None,
                )
            })
            .collect();
        if group_gone {
            records.push((
                RecordKey::Group {
                    group_id: group_id.to_string(),
                },
                None,
            ));
        }
        if !records.is_empty() {
            self.append(group_id, &records, PendingAppend::Unacknowledged);
        }
    }

    /// Kafka's `cleanupGroupMetadata` with `removeExpiredOffsets` (KIP-211).
    pub(super) fn expire_offsets(&mut self) {
        let now = self.now_ms;
        let retention_ms = self.config.offsets_retention_ms;
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let g = self.group_mut(&id);
            let base_of = |o: &CommittedOffset| -> Option<u64> {
                match (&g.protocol_type, g.state) {
                    // Retention counts from when the group became Empty.
                    (Some(_), GroupState::Empty) => Some(g.state_timestamp_ms),
                    // No group management: from each commit.
                    (None, _) => Some(o.commit_timestamp_ms),
                    _ => None,
                }
            };
            // A Stable consumer group keeps the offsets of the topics it subscribes to;
            // those of other topics expire from their commit.
            let unsubscribed = |tp: &TopicPartition, o: &CommittedOffset| -> Option<u64> {
                let topics = g.subscribed_topics.as_ref()?;
                (g.is(GroupState::Stable) && !topics.contains(&tp.topic))
                    .then_some(o.commit_timestamp_ms)
            };
            let expired: Vec<TopicPartition> = g
                .offsets
                .iter()
                .filter(|(tp, o)| {
                    !g.pending_offset_commits.contains_key(*tp)
                        && base_of(o)
                            .or_else(|| unsubscribed(tp, o))
                            .is_some_and(|base| {
                                match o.expire_timestamp_ms {
                                    // An OffsetCommit v2-v4 retention time: Kafka's old rule.
                                    Some(expire_ms) => now >= expire_ms,
                                    None => now.saturating_sub(base) >= retention_ms,
                                }
                            })
                })
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in &expired {
                g.offsets.remove(tp);
            }
            let dead = g.is(GroupState::Empty) && !g.has_offsets();
            if dead {
                let g = self.groups.remove(&id).expect("listed");
                self.append_tombstones(&g.group_id, expired.iter(), true);
            } else if !expired.is_empty() {
                self.append_tombstones(&id, expired.iter(), false);
            }
        }
    }
}

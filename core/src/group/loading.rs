//! Taking over and handing off `__consumer_offsets` partitions: when this broker becomes
//! the leader of one, `load` rebuilds its groups and committed offsets from the
//! partition's records (the last record of a key wins, a tombstone deletes it), as
//! Kafka's `GroupMetadataManager.loadGroupsAndOffsets` does; a group stored with members
//! comes back Stable at its stored generation, and its members' sessions start over.
//! When the broker stops leading it, `unload` drops its groups and answers every parked
//! request with NOT_COORDINATOR, as Kafka's `onGroupUnloaded` does.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::batch::{self, records};
use crate::error::ErrorCode;
use crate::group::api::*;
use crate::group::classic::{CommittedOffset, GroupState};
use crate::group::coordinator::{
    fill_pending, GroupCoordinator, GroupEffect, PartitionStatus, PendingAppend,
};
use crate::group::member::Member;
use crate::group::record::{
    decode_key, decode_value, offsets_partition_for, GroupValue, RecordKey, RecordValue,
};
use crate::types::TopicPartition;

impl GroupCoordinator {
    pub(super) fn load(&mut self, partition: u32, batches: &[Bytes]) {
        self.check_partition(partition);
        if self.partitions.get(&partition) == Some(&PartitionStatus::Active) {
            // A repeated load of a partition already loaded: nothing new to learn.
            return;
        }
        let mut skipped_records = 0;
        let mut offsets: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>> =
            BTreeMap::new();
        let mut groups: BTreeMap<String, GroupValue> = BTreeMap::new();
        for batch in batches {
            let Ok(header) = batch::BatchHeader::parse(batch) else {
                skipped_records += 1;
                continue;
            };
            let Ok(decoded) = records(batch) else {
                skipped_records += header.record_count() as usize;
                continue;
            };
            for r in decoded {
                let record_offset =
                    u64::try_from(header.base_offset + i64::from(r.offset_delta)).unwrap_or(0);
                let Some(key) = r.key.and_then(|k| decode_key(k).ok()) else {
                    skipped_records += 1;
                    continue;
                };
                if offsets_partition_for(key.group_id(), self.config.offsets_topic_num_partitions)
                    != partition
                {
                    skipped_records += 1;
                    continue;
                }
                let value = match r.value.map(|v| decode_value(&key, v)) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(_)) => {
                        skipped_records += 1;
                        continue;
                    }
                };
                match (key, value) {
                    (
                        RecordKey::Offset {
                            group_id,
                            partition,
                        },
                        Some(RecordValue::Offset(v)),
                    ) => {
                        offsets.entry(group_id).or_default().insert(
                            partition,
                            CommittedOffset {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp_ms: v.commit_timestamp_ms,
                                expire_timestamp_ms: v.expire_timestamp_ms,
                                record_offset,
                            },
                        );
                    }
                    (
                        RecordKey::Offset {
                            group_id,
                            partition,
                        },
                        None,
                    ) => {
                        if let Some(o) = offsets.get_mut(&group_id) {
                            o.remove(&partition);
                        }
                    }
                    (RecordKey::Group { group_id }, Some(RecordValue::Group(v))) => {
                        groups.insert(group_id, v);
                    }
                    (RecordKey::Group { group_id }, None) => {
                        groups.remove(&group_id);
                    }
                    _ => unreachable!("decode_value gives the value kind of its key"),
                }
            }
        }
        offsets.retain(|_, o| !o.is_empty());
        let ids: BTreeSet<String> = groups.keys().chain(offsets.keys()).cloned().collect();
        let mut offset_count = 0;
        for id in &ids {
            assert!(
                !self.groups.contains_key(id),
                "group {id} held before its load"
            );
            let now = self.now_ms;
            let group = self.create_group(id);
            if let Some(v) = groups.remove(id) {
                group.generation = v.generation;
                group.protocol_type = v.protocol_type;
                group.protocol_name = v.protocol_name.clone();
                group.state_timestamp_ms = v.state_timestamp_ms;
                for m in v.members {
                    let protocols = match &v.protocol_name {
                        Some(name) => vec![JoinGroupProtocol {
                            name: name.clone(),
                            metadata: m.subscription,
                        }],
                        None => Vec::new(),
                    };
                    if let Some(instance) = &m.group_instance_id {
                        group
                            .static_members
                            .insert(instance.clone(), m.member_id.clone());
                    }
                    let member = Member {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        rebalance_timeout_ms: u64::from(m.rebalance_timeout_ms),
                        session_timeout_ms: u64::from(m.session_timeout_ms),
                        protocol_type: group.protocol_type.clone().unwrap_or_default(),
                        protocols,
                        assignment: m.assignment,
                        awaiting_join: None,
                        awaiting_sync: None,
                        is_new: false,
                        session_deadline_ms: now,
                    };
                    group.members.insert(m.member_id, member);
                }
                group.subscribed_topics = group.compute_subscribed_topics();
                if !group.members.is_empty() {
                    // A stored group with members completed its rebalance: it is Stable.
                    group.state = GroupState::Stable;
                    group.leader_id = v
                        .leader
                        .filter(|l| group.members.contains_key(l))
                        .or_else(|| group.members.keys().next().cloned());
                }
            }
            if let Some(o) = offsets.remove(id) {
                offset_count += o.len();
                group.offsets = o;
            }
            let members: Vec<String> = group.members.keys().cloned().collect();
            for member_id in members {
                self.renew_session(id, &member_id);
            }
        }
        self.partitions.insert(partition, PartitionStatus::Active);
        self.effects.push(GroupEffect::Loaded {
            partition,
            groups: ids.len(),
            offsets: offset_count,
            skipped_records,
        });
    }

    pub(super) fn unload(&mut self, partition: u32) {
        self.check_partition(partition);
        self.partitions.remove(&partition);
        let ids: Vec<String> = self
            .groups
            .keys()
            .filter(|id| self.partition_for(id) == partition)
            .cloned()
            .collect();
        // Kafka's onGroupUnloaded: parked requests learn the group moved.
        for id in ids {
            let group = self.groups.remove(&id).expect("listed");
            for m in group.members.values() {
                if let Some(token) = m.awaiting_join {
                    self.reply_join(
                        token,
                        JoinGroupResponse::error(m.member_id.clone(), ErrorCode::NotCoordinator),
                    );
                }
                if let Some(token) = m.awaiting_sync {
                    self.reply_sync(token, SyncGroupResponse::error(ErrorCode::NotCoordinator));
                }
            }
        }
        let ids: Vec<u64> = self
            .pending_appends
            .iter()
            .filter(|(_, (p, _))| *p == partition)
            .map(|(id, _)| *id)
            .collect();
        for append_id in ids {
            let (_, pending) = self.pending_appends.remove(&append_id).expect("listed");
            match pending {
                PendingAppend::OffsetCommit {
                    token,
                    mut response,
                    ..
                } => {
                    fill_pending(&mut response, ErrorCode::NotCoordinator);
                    self.reply(token, GroupResponse::OffsetCommit(response));
                }
                // Their replies were parked in members, answered above.
                PendingAppend::GroupSync { .. }
                | PendingAppend::StaticReplace { .. }
                | PendingAppend::Unacknowledged => {}
            }
        }
    }
}

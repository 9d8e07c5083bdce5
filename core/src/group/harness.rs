//! A fake shell for the coordinator's tests: it keeps each `__consumer_offsets`
//! partition as a list of committed batches, completes appends when told (or at once),
//! and collects replies by token.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::error::ErrorCode;
use crate::group::*;
use crate::types::Offset;

pub(crate) const GROUP: &str = "g";
pub(crate) const SESSION_MS: i32 = 10_000;
pub(crate) const REBALANCE_MS: i32 = 30_000;

pub(crate) fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        max_size: 100,
        offsets_topic_num_partitions: 4,
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 5_000,
        offset_metadata_max_bytes: 32,
    }
}

pub(crate) struct Harness {
    pub(crate) c: GroupCoordinator,
    pub(crate) now_ms: u64,
    next_token: u64,
    /// Committed batches per partition, base offsets stamped.
    pub(crate) log: BTreeMap<u32, Vec<Bytes>>,
    /// Appends asked for and not completed yet, in order.
    pub(crate) in_flight: Vec<(u32, Bytes, u64)>,
    /// Complete every append as soon as it is asked for.
    pub(crate) auto_append: bool,
    pub(crate) replies: BTreeMap<u64, GroupResponse>,
    /// Every effect seen, for tests that inspect appends.
    pub(crate) appended: Vec<Bytes>,
}

impl Harness {
    /// A coordinator that leads (and has loaded, empty) every partition.
    pub(crate) fn new(config: GroupConfig) -> Harness {
        let n = config.offsets_topic_num_partitions;
        let mut h = Harness {
            c: GroupCoordinator::new(config, 0),
            now_ms: 0,
            next_token: 1,
            log: BTreeMap::new(),
            in_flight: Vec::new(),
            auto_append: true,
            replies: BTreeMap::new(),
            appended: Vec::new(),
        };
        for p in 0..n {
            h.input(GroupInput::Load {
                partition: p,
                batches: Vec::new(),
            });
        }
        h
    }

    pub(crate) fn input(&mut self, input: GroupInput) {
        let effects = self.c.handle(self.now_ms, input);
        self.absorb(effects);
        self.c.check_invariants();
    }

    fn absorb(&mut self, effects: Vec<GroupEffect>) {
        for e in effects {
            match e {
                GroupEffect::Reply { token, resp } => {
                    assert!(
                        self.replies.insert(token, resp).is_none(),
                        "token {token} answered twice"
                    );
                }
                GroupEffect::Append {
                    partition,
                    batch,
                    append_id,
                } => {
                    self.appended.push(batch.clone());
                    self.in_flight.push((partition, batch, append_id));
                }
                GroupEffect::Loaded { .. } => {}
            }
        }
        if self.auto_append {
            while !self.in_flight.is_empty() {
                self.complete_next(Ok(()));
            }
        }
    }

    /// Completes the oldest append in flight: `Ok` commits it to the log.
    pub(crate) fn complete_next(&mut self, outcome: Result<(), ErrorCode>) {
        let (partition, batch, append_id) = self.in_flight.remove(0);
        let result = match outcome {
            Ok(()) => {
                let log = self.log.entry(partition).or_default();
                let base: i64 = log
                    .iter()
                    .map(|b| i64::from(BatchHeader::parse(b).unwrap().record_count()))
                    .sum();
                let mut stamped = BytesMut::from(&batch[..]);
                batch::set_base_offset(&mut stamped, base);
                log.push(stamped.freeze());
                Ok(Offset(base as u64))
            }
            Err(e) => Err(e),
        };
        let effects = self
            .c
            .handle(self.now_ms, GroupInput::AppendDone { append_id, result });
        self.absorb(effects);
    }

    pub(crate) fn send(&mut self, req: GroupRequest) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.input(GroupInput::Request { token, req });
        token
    }

    /// The reply to `token`, which must have come.
    pub(crate) fn reply(&mut self, token: u64) -> GroupResponse {
        self.replies
            .remove(&token)
            .unwrap_or_else(|| panic!("no reply to token {token} yet"))
    }

    pub(crate) fn has_reply(&self, token: u64) -> bool {
        self.replies.contains_key(&token)
    }

    pub(crate) fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.input(GroupInput::Tick);
    }

    pub(crate) fn join_reply(&mut self, token: u64) -> JoinGroupResponse {
        match self.reply(token) {
            GroupResponse::JoinGroup(r) => r,
            other => panic!("expected a JoinGroup response, got {other:?}"),
        }
    }

    pub(crate) fn sync_reply(&mut self, token: u64) -> SyncGroupResponse {
        match self.reply(token) {
            GroupResponse::SyncGroup(r) => r,
            other => panic!("expected a SyncGroup response, got {other:?}"),
        }
    }

    pub(crate) fn join(&mut self, req: JoinGroupRequest) -> u64 {
        self.send(GroupRequest::JoinGroup(req))
    }

    /// A dynamic member's full first join (MEMBER_ID_REQUIRED, then the join with the
    /// given id); returns the token of the parked second join and the member id.
    pub(crate) fn join_new(&mut self, client_id: &str) -> (u64, String) {
        let mut req = join_req("", client_id);
        let t = self.join(req.clone());
        let r = self.join_reply(t);
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        req.member_id = r.member_id.clone();
        (self.join(req), r.member_id)
    }

    pub(crate) fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) -> u64 {
        self.send(GroupRequest::SyncGroup(SyncGroupRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments
                .iter()
                .map(|(m, a)| SyncGroupAssignment {
                    member_id: m.to_string(),
                    assignment: Bytes::from(a.to_string()),
                })
                .collect(),
        }))
    }

    pub(crate) fn heartbeat(&mut self, member_id: &str, generation: i32) -> ErrorCode {
        self.heartbeat_as(member_id, None, generation)
    }

    pub(crate) fn heartbeat_as(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        let t = self.send(GroupRequest::Heartbeat(HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: instance.map(str::to_string),
        }));
        match self.reply(t) {
            GroupResponse::Heartbeat(r) => r.error,
            other => panic!("expected a Heartbeat response, got {other:?}"),
        }
    }

    pub(crate) fn commit(
        &mut self,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64, &str)],
    ) -> u64 {
        let mut topics: Vec<OffsetCommitTopic> = Vec::new();
        for &(topic, partition, offset, metadata) in offsets {
            if topics.last().is_none_or(|t| t.name != topic) {
                topics.push(OffsetCommitTopic {
                    name: topic.into(),
                    partitions: Vec::new(),
                });
            }
            topics
                .last_mut()
                .unwrap()
                .partitions
                .push(OffsetCommitPartition {
                    partition_index: partition,
                    committed_offset: offset,
                    committed_leader_epoch: NO_LEADER_EPOCH,
                    committed_metadata: Some(metadata.into()),
                    commit_timestamp: DEFAULT_TIMESTAMP,
                });
        }
        self.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            retention_time_ms: DEFAULT_RETENTION_TIME,
            topics,
        }))
    }

    /// Every partition's error in a commit's reply, in request order.
    pub(crate) fn commit_errors(&mut self, token: u64) -> Vec<ErrorCode> {
        match self.reply(token) {
            GroupResponse::OffsetCommit(r) => r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error))
                .collect(),
            other => panic!("expected an OffsetCommit response, got {other:?}"),
        }
    }

    /// (offset, metadata, error) of one partition by OffsetFetch.
    pub(crate) fn fetch(&mut self, topic: &str, partition: i32) -> (i64, String, ErrorCode) {
        let t = self.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
            group_id: GROUP.into(),
            topics: Some(vec![OffsetFetchTopic {
                name: topic.into(),
                partition_indexes: vec![partition],
            }]),
            require_stable: false,
        }));
        match self.reply(t) {
            GroupResponse::OffsetFetch(r) => {
                let p = &r.topics[0].partitions[0];
                assert_eq!(p.error, r.error.max(p.error));
                (
                    p.committed_offset,
                    p.metadata.clone().unwrap_or_default(),
                    p.error,
                )
            }
            other => panic!("expected an OffsetFetch response, got {other:?}"),
        }
    }

    pub(crate) fn describe(&mut self, group_id: &str) -> DescribedGroup {
        let t = self.send(GroupRequest::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group_id.into()],
            report_missing_group: false,
        }));
        match self.reply(t) {
            GroupResponse::DescribeGroups(mut r) => r.groups.remove(0),
            other => panic!("expected a DescribeGroups response, got {other:?}"),
        }
    }

    pub(crate) fn leave(&mut self, members: &[(&str, Option<&str>)]) -> LeaveGroupResponse {
        let t = self.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
            group_id: GROUP.into(),
            members: members
                .iter()
                .map(|(m, i)| MemberIdentity {
                    member_id: m.to_string(),
                    group_instance_id: i.map(str::to_string),
                    reason: None,
                })
                .collect(),
        }));
        match self.reply(t) {
            GroupResponse::LeaveGroup(r) => r,
            other => panic!("expected a LeaveGroup response, got {other:?}"),
        }
    }

    /// A stable group of the given dynamic members (by client id), each assigned
    /// "<client>"; returns the member ids in the order given and the generation.
    pub(crate) fn stable_group(&mut self, clients: &[&str]) -> (Vec<String>, i32) {
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for c in clients {
            let (t, id) = self.join_new(c);
            tokens.push(t);
            ids.push(id);
        }
        // A member answered by an earlier rebalance rejoins while a later one runs.
        let mut responses: Vec<Option<JoinGroupResponse>> = vec![None; ids.len()];
        loop {
            for i in 0..ids.len() {
                if responses[i].is_none() && self.has_reply(tokens[i]) {
                    responses[i] = Some(self.join_reply(tokens[i]));
                }
            }
            if self.c.group_state(GROUP) != Some(GroupState::PreparingRebalance) {
                break;
            }
            for i in 0..ids.len() {
                if responses[i].take().is_some() {
                    tokens[i] = self.join(join_req(&ids[i], clients[i]));
                }
            }
        }
        let responses: Vec<JoinGroupResponse> = responses
            .into_iter()
            .map(|r| r.expect("answered"))
            .collect();
        let generation = responses[0].generation_id;
        let leader = responses[0].leader.clone();
        let assignments: Vec<(String, String)> = ids
            .iter()
            .zip(clients)
            .map(|(id, c)| (id.clone(), c.to_string()))
            .collect();
        let pairs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut sync_tokens = Vec::new();
        for id in &ids {
            if *id != leader {
                sync_tokens.push(self.sync(id, generation, &[]));
            }
        }
        sync_tokens.push(self.sync(&leader, generation, &pairs));
        for t in sync_tokens {
            assert_eq!(self.sync_reply(t).error, ErrorCode::None);
        }
        assert_eq!(self.c.group_state(GROUP), Some(GroupState::Stable));
        (ids, generation)
    }
}

pub(crate) fn protocols(list: &[(&str, &str)]) -> Vec<JoinGroupProtocol> {
    list.iter()
        .map(|(n, m)| JoinGroupProtocol {
            name: n.to_string(),
            metadata: Bytes::from(m.to_string()),
        })
        .collect()
}

pub(crate) fn join_req(member_id: &str, client_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: protocols(&[("range", client_id)]),
        reason: None,
        client_id: client_id.into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
    }
}

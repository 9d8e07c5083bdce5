//! The members of a group after they joined: SyncGroup, Heartbeat, LeaveGroup, and the
//! ends of a member's life (session expiry, a SyncGroup that never comes), following
//! Kafka's `GroupCoordinator` (classic protocol) rule for rule:
//!
//! - the leader's SyncGroup is stored in `__consumer_offsets` before anyone gets their
//!   assignment; followers' SyncGroups wait for it; a member that joined but does not
//!   sync within the rebalance timeout is removed;
//! - SyncGroup v5+ checks protocol type and name (KIP-559);
//! - a member's session is renewed by each heartbeat, join and sync; a member waiting
//!   for a JoinGroup or SyncGroup response is kept alive; one that goes quiet is removed
//!   and the group rebalances;
//! - LeaveGroup v3+ removes a batch of members, by member id or by `group.instance.id`
//!   (KIP-345).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::group::api::*;
use crate::group::classic::{ClassicGroup, GroupState};
use crate::group::coordinator::{store_group_error, Api, GroupCoordinator, PendingAppend};
use crate::types::Offset;

impl GroupCoordinator {
    pub(super) fn sync_group(&mut self, token: u64, req: SyncGroupRequest) {
        match self.group_status(&req.group_id, Api::Membership) {
            // The rebalance this SyncGroup belongs to was lost with the coordinator's
            // state; REBALANCE_IN_PROGRESS sends the member back to JoinGroup (older
            // clients do not expect COORDINATOR_LOAD_IN_PROGRESS here).
            Some(ErrorCode::CoordinatorLoadInProgress) => {
                return self.reply_sync(
                    token,
                    SyncGroupResponse::error(ErrorCode::RebalanceInProgress),
                );
            }
            Some(error) => return self.reply_sync(token, SyncGroupResponse::error(error)),
            None => {}
        }
        let Some(g) = self.groups.get(&req.group_id) else {
            return self.reply_sync(token, SyncGroupResponse::error(ErrorCode::UnknownMemberId));
        };
        let error = validate_member(g, &req.member_id, req.group_instance_id.as_deref())
            .or_else(|| (req.generation_id != g.generation).then_some(ErrorCode::IllegalGeneration))
            .or_else(|| {
                let type_differs = req
                    .protocol_type
                    .as_ref()
                    .is_some_and(|t| g.protocol_type.as_ref() != Some(t));
                let name_differs = req
                    .protocol_name
                    .as_ref()
                    .is_some_and(|n| g.protocol_name.as_ref() != Some(n));
                (type_differs || name_differs).then_some(ErrorCode::InconsistentGroupProtocol)
            });
        if let Some(error) = error {
            return self.reply_sync(token, SyncGroupResponse::error(error));
        }
        match g.state {
            GroupState::Empty => {
                self.reply_sync(token, SyncGroupResponse::error(ErrorCode::UnknownMemberId))
            }
            GroupState::PreparingRebalance => self.reply_sync(
                token,
                SyncGroupResponse::error(ErrorCode::RebalanceInProgress),
            ),
            GroupState::CompletingRebalance => {
                let is_leader = g.is_leader(&req.member_id);
                let g = self.group_mut(&req.group_id);
                g.pending_sync_members.remove(&req.member_id);
                let member = g.members.get_mut(&req.member_id).expect("validated");
                if let Some(old) = member.awaiting_sync.replace(token) {
                    self.reply_sync(
                        old,
                        SyncGroupResponse::error(ErrorCode::RebalanceInProgress),
                    );
                }
                if is_leader {
                    let g = &self.groups[&req.group_id];
                    // Members the leader left out get an empty assignment, as in Kafka;
                    // entries for non-members are dropped.
                    let mut assignment: BTreeMap<String, Bytes> = g
                        .members
                        .keys()
                        .map(|id| (id.clone(), Bytes::new()))
                        .collect();
                    for a in req.assignments {
                        if let Some(slot) = assignment.get_mut(&a.member_id) {
                            *slot = a.assignment;
                        }
                    }
                    let record = GroupCoordinator::group_record(g, &assignment);
                    let pending = PendingAppend::GroupSync {
                        group_id: req.group_id.clone(),
                        incarnation: g.incarnation,
                        generation: g.generation,
                        assignment,
                    };
                    self.append(&req.group_id, &[record], pending);
                }
            }
            GroupState::Stable => {
                let g = self.group_mut(&req.group_id);
                g.pending_sync_members.remove(&req.member_id);
                let member = &g.members[&req.member_id];
                let resp = SyncGroupResponse {
                    error: ErrorCode::None,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                self.reply_sync(token, resp);
                self.renew_session(&req.group_id, &req.member_id);
            }
            GroupState::Dead => unreachable!("a Dead group is dropped"),
        }
    }

    pub(super) fn group_sync_done(
        &mut self,
        group_id: &str,
        incarnation: u64,
        generation: i32,
        assignment: BTreeMap<String, Bytes>,
        result: Result<Offset, ErrorCode>,
    ) {
        if !self.same_group(group_id, incarnation) {
            return;
        }
        let g = &self.groups[group_id];
        // A member may have joined meanwhile and started another rebalance; then
        // this assignment is stale and the parked SyncGroups were already answered.
        if !(g.is(GroupState::CompletingRebalance) && g.generation == generation) {
            return;
        }
        match result {
            Err(e) => {
                self.reset_and_propagate_assignment_error(group_id, store_group_error(e));
                self.maybe_prepare_rebalance(group_id);
            }
            Ok(_) => {
                let now = self.now_ms;
                let g = self.group_mut(group_id);
                for (id, m) in g.members.iter_mut() {
                    m.assignment = assignment.get(id).cloned().unwrap_or_default();
                }
                self.propagate_assignment(group_id, ErrorCode::None);
                self.group_mut(group_id)
                    .transition_to(GroupState::Stable, now);
            }
        }
    }

    pub(super) fn reset_and_propagate_assignment_error(
        &mut self,
        group_id: &str,
        error: ErrorCode,
    ) {
        let g = self.group_mut(group_id);
        assert!(g.is(GroupState::CompletingRebalance));
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(group_id, error);
    }

    /// Answers every parked SyncGroup with its member's assignment (or `error`), and
    /// starts those members' sessions over.
    fn propagate_assignment(&mut self, group_id: &str, error: ErrorCode) {
        let g = self.group_mut(group_id);
        let (protocol_type, protocol_name) = if error == ErrorCode::None {
            (g.protocol_type.clone(), g.protocol_name.clone())
        } else {
            (None, None)
        };
        let parked: Vec<(String, u64, Bytes)> = g
            .members
            .values_mut()
            .filter_map(|m| {
                m.awaiting_sync
                    .take()
                    .map(|t| (m.member_id.clone(), t, m.assignment.clone()))
            })
            .collect();
        for (member_id, token, assignment) in parked {
            self.reply_sync(
                token,
                SyncGroupResponse {
                    error,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment,
                },
            );
            self.renew_session(group_id, &member_id);
        }
    }

    pub(super) fn heartbeat(&mut self, token: u64, req: HeartbeatRequest) {
        let error = self.heartbeat_error(&req);
        self.reply(token, GroupResponse::Heartbeat(HeartbeatResponse { error }));
    }

    fn heartbeat_error(&mut self, req: &HeartbeatRequest) -> ErrorCode {
        match self.group_status(&req.group_id, Api::Membership) {
            // Kafka answers a heartbeat to a loading group blindly: the member's
            // session is checked once the group is loaded.
            Some(ErrorCode::CoordinatorLoadInProgress) => return ErrorCode::None,
            Some(error) => return error,
            None => {}
        }
        let Some(g) = self.groups.get(&req.group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if let Some(error) = validate_member(g, &req.member_id, req.group_instance_id.as_deref()) {
            return error;
        }
        if req.generation_id != g.generation {
            return ErrorCode::IllegalGeneration;
        }
        let error = match g.state {
            GroupState::Empty => return ErrorCode::UnknownMemberId,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            GroupState::Dead => unreachable!("a Dead group is dropped"),
        };
        self.renew_session(&req.group_id, &req.member_id);
        error
    }

    pub(super) fn leave_group(&mut self, token: u64, req: LeaveGroupRequest) {
        let resp = self.leave_group_response(&req);
        self.reply(token, GroupResponse::LeaveGroup(resp));
    }

    fn leave_group_response(&mut self, req: &LeaveGroupRequest) -> LeaveGroupResponse {
        let member_error = |m: &MemberIdentity, error| LeaveMemberResponse {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            error,
        };
        if let Some(error) = self.group_status(&req.group_id, Api::Membership) {
            return LeaveGroupResponse {
                error,
                members: Vec::new(),
            };
        }
        if !self.groups.contains_key(&req.group_id) {
            return LeaveGroupResponse {
                error: ErrorCode::None,
                members: req
                    .members
                    .iter()
                    .map(|m| member_error(m, ErrorCode::UnknownMemberId))
                    .collect(),
            };
        }
        let mut members = Vec::with_capacity(req.members.len());
        for leaving in &req.members {
            let g = &self.groups[&req.group_id];
            let error = if leaving.member_id == UNKNOWN_MEMBER_ID {
                // Removal by instance id (KIP-345's admin path).
                match leaving
                    .group_instance_id
                    .as_deref()
                    .and_then(|i| g.static_member_id(i))
                    .map(str::to_string)
                {
                    Some(member_id) => {
                        self.remove_member_and_update_group(&req.group_id, &member_id);
                        ErrorCode::None
                    }
                    None => ErrorCode::UnknownMemberId,
                }
            } else if g.pending_members.contains_key(&leaving.member_id) {
                self.remove_pending_member(&req.group_id, &leaving.member_id);
                ErrorCode::None
            } else {
                match validate_member(g, &leaving.member_id, leaving.group_instance_id.as_deref()) {
                    Some(error) => error,
                    None => {
                        self.remove_member_and_update_group(&req.group_id, &leaving.member_id);
                        ErrorCode::None
                    }
                }
            };
            members.push(member_error(leaving, error));
        }
        LeaveGroupResponse {
            error: ErrorCode::None,
            members,
        }
    }

    /// A member's session ran out. One waiting for a JoinGroup or SyncGroup response is
    /// kept (Kafka's `hasSatisfiedHeartbeat`) and its session starts over; any other is
    /// removed.
    pub(super) fn session_expired(&mut self, group_id: &str, member_id: &str) {
        if self.groups[group_id].members[member_id].is_kept_alive() {
            self.renew_session(group_id, member_id);
        } else {
            self.remove_member_and_update_group(group_id, member_id);
        }
    }

    /// Kafka's `removeMemberAndUpdateGroup`.
    fn remove_member_and_update_group(&mut self, group_id: &str, member_id: &str) {
        let g = self.group_mut(group_id);
        let member = g.remove_member(member_id).expect("removing a member");
        if let Some(token) = member.awaiting_join {
            self.reply_join(
                token,
                JoinGroupResponse::error(UNKNOWN_MEMBER_ID, ErrorCode::UnknownMemberId),
            );
        }
        if let Some(token) = member.awaiting_sync {
            self.reply_sync(token, SyncGroupResponse::error(ErrorCode::UnknownMemberId));
        }
        match self.groups[group_id].state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(group_id)
            }
            GroupState::PreparingRebalance => self.try_complete_join(group_id),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Kafka's `onExpirePendingSync`: members that joined the generation but did not
    /// send SyncGroup within the rebalance timeout are removed, and the group rebalances.
    pub(super) fn sync_timer_expired(&mut self, group_id: &str) {
        let g = self.group_mut(group_id);
        g.sync_deadline_ms = None;
        let laggards: Vec<String> = std::mem::take(&mut g.pending_sync_members)
            .into_iter()
            .collect();
        if laggards.is_empty() {
            return;
        }
        for member_id in &laggards {
            let member = self
                .group_mut(group_id)
                .remove_member(member_id)
                .expect("pending sync members are members");
            assert!(
                member.awaiting_sync.is_none(),
                "a member that synced is not pending"
            );
            if let Some(token) = member.awaiting_join {
                // A static member's rejoin parked on its store.
                self.reply_join(
                    token,
                    JoinGroupResponse::error(UNKNOWN_MEMBER_ID, ErrorCode::UnknownMemberId),
                );
            }
        }
        self.prepare_rebalance(group_id);
    }

    pub(super) fn remove_pending_member(&mut self, group_id: &str, member_id: &str) {
        self.group_mut(group_id).pending_members.remove(member_id);
        self.try_complete_join(group_id);
    }
}

/// Kafka's `validateCurrentMember`: a given instance id must map to `member_id`
/// (FENCED_INSTANCE_ID if it maps to another), and the member must exist.
pub(super) fn validate_member(
    g: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<ErrorCode> {
    if let Some(instance) = instance_id {
        match g.static_member_id(instance) {
            None => return Some(ErrorCode::UnknownMemberId),
            Some(current) if current != member_id => return Some(ErrorCode::FencedInstanceId),
            Some(_) => {}
        }
    }
    (!g.members.contains_key(member_id)).then_some(ErrorCode::UnknownMemberId)
}

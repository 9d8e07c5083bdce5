//! The membership half of the coordinator: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
//! and the rebalance they drive, following Kafka's `GroupCoordinator` (classic
//! protocol) rule for rule:
//!
//! - a new member of JoinGroup v4+ first gets MEMBER_ID_REQUIRED and an id to join with
//!   (KIP-394); until it joins with it, it holds the rebalance open as a pending member;
//! - a rebalance's join phase ends when every known member has rejoined, or when the
//!   longest rebalance timeout of the members expires — dynamic members that did not
//!   rejoin are then removed; the first rebalance of an empty group instead waits
//!   `group.initial.rebalance.delay.ms`, again for each member that joins meanwhile, up
//!   to the rebalance timeout (KIP-134);
//! - the leader's SyncGroup is stored in `__consumer_offsets` before anyone gets their
//!   assignment; followers' SyncGroups wait for it;
//! - a static member (KIP-345) that restarts joins with its `group.instance.id` and no
//!   member id: it takes over its old member id's place — without a rebalance when the
//!   group is Stable and its protocols would not change the group's choice — and the old
//!   id is fenced (FENCED_INSTANCE_ID);
//! - a member's session is renewed by each heartbeat, join and sync; a member waiting
//!   for a JoinGroup or SyncGroup response is kept alive; one that goes quiet is removed
//!   and the group rebalances;
//! - SyncGroup v5+ checks protocol type and name (KIP-559).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::group::api::*;
use crate::group::classic::{ClassicGroup, GroupState, InitialDelay, JoinTimer};
use crate::group::coordinator::{store_group_error, Api, GroupCoordinator, PendingAppend, Timer};
use crate::group::member::{Member, NEW_MEMBER_JOIN_TIMEOUT_MS};
use crate::types::Offset;

impl GroupCoordinator {
    pub(super) fn join_group(&mut self, token: u64, req: JoinGroupRequest) {
        if let Some(error) = self.group_status(&req.group_id, Api::Membership) {
            return self.reply_join(token, JoinGroupResponse::error(req.member_id, error));
        }
        let session_ok = u64::try_from(req.session_timeout_ms).is_ok_and(|t| {
            t >= self.config.min_session_timeout_ms && t <= self.config.max_session_timeout_ms
        });
        if !session_ok {
            return self.reply_join(
                token,
                JoinGroupResponse::error(req.member_id, ErrorCode::InvalidSessionTimeout),
            );
        }
        let is_unknown_member = req.member_id == UNKNOWN_MEMBER_ID;
        if !self.groups.contains_key(&req.group_id) {
            if !is_unknown_member {
                return self.reply_join(
                    token,
                    JoinGroupResponse::error(req.member_id, ErrorCode::UnknownMemberId),
                );
            }
            self.create_group(&req.group_id);
        }
        let group_id = req.group_id.clone();
        if !self.accept_joining_member(&group_id, &req.member_id) {
            self.group_mut(&group_id).remove_member(&req.member_id);
            self.reply_join(
                token,
                JoinGroupResponse::error(UNKNOWN_MEMBER_ID, ErrorCode::GroupMaxSizeReached),
            );
        } else if is_unknown_member {
            self.new_member_join(token, req);
        } else {
            self.current_member_join(token, req);
        }
        self.try_complete_join(&group_id);
    }

    /// Kafka's `acceptJoiningMember`: `group.max.size` counts members that rejoined
    /// while preparing a rebalance, so that the last to rejoin are the ones left out.
    fn accept_joining_member(&self, group_id: &str, member_id: &str) -> bool {
        let g = &self.groups[group_id];
        let max = self.config.max_size as usize;
        match g.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                g.members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || g.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                g.members.contains_key(member_id) || g.members.len() < max
            }
        }
    }

    fn new_member_join(&mut self, token: u64, req: JoinGroupRequest) {
        let g = &self.groups[&req.group_id];
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.reply_join(
                token,
                JoinGroupResponse::error(UNKNOWN_MEMBER_ID, ErrorCode::InconsistentGroupProtocol),
            );
        }
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let new_member_id = self.generate_member_id(prefix);
        match req.group_instance_id.clone() {
            Some(instance_id) => {
                let old = self.groups[&req.group_id]
                    .static_member_id(&instance_id)
                    .map(str::to_string);
                match old {
                    Some(old_member_id) => self.update_static_member_and_rebalance(
                        token,
                        req,
                        &instance_id,
                        &old_member_id,
                        &new_member_id,
                    ),
                    None => self.add_member_and_rebalance(token, req, new_member_id),
                }
            }
            None if req.require_known_member_id => {
                // KIP-394: hand out the id and hold the rebalance open for it, for one
                // session timeout.
                let deadline = self.now_ms + session_timeout(&req).max(1);
                self.group_mut(&req.group_id)
                    .pending_members
                    .insert(new_member_id.clone(), deadline);
                self.schedule(
                    deadline,
                    Timer::Pending {
                        group_id: req.group_id.clone(),
                        member_id: new_member_id.clone(),
                    },
                );
                self.reply_join(
                    token,
                    JoinGroupResponse::error(new_member_id, ErrorCode::MemberIdRequired),
                );
            }
            None => self.add_member_and_rebalance(token, req, new_member_id),
        }
    }

    fn current_member_join(&mut self, token: u64, req: JoinGroupRequest) {
        let member_id = req.member_id.clone();
        let g = &self.groups[&req.group_id];
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.reply_join(
                token,
                JoinGroupResponse::error(member_id, ErrorCode::InconsistentGroupProtocol),
            );
        }
        if g.pending_members.contains_key(&member_id) {
            // A member joining with the id MEMBER_ID_REQUIRED gave it. Pending members
            // are never static: a static member does not get MEMBER_ID_REQUIRED.
            self.group_mut(&req.group_id)
                .pending_members
                .remove(&member_id);
            return self.add_member_and_rebalance(token, req, member_id);
        }
        let instance = req.group_instance_id.as_deref();
        if let Some(instance) = instance {
            if g.static_member_id(instance)
                .is_some_and(|current| current != member_id)
            {
                return self.reply_join(
                    token,
                    JoinGroupResponse::error(member_id, ErrorCode::FencedInstanceId),
                );
            }
        }
        let instance_unknown = instance.is_some_and(|i| g.static_member_id(i).is_none());
        if !g.members.contains_key(&member_id) || instance_unknown {
            return self.reply_join(
                token,
                JoinGroupResponse::error(member_id, ErrorCode::UnknownMemberId),
            );
        }
        let member = &g.members[&member_id];
        let matches = member.matches(&req.protocols);
        match g.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(token, req),
            GroupState::CompletingRebalance if matches => {
                // The member lost its JoinGroup response: send it again.
                let resp = self.join_response(&req.group_id, &member_id);
                self.reply_join(token, resp);
            }
            GroupState::CompletingRebalance => self.update_member_and_rebalance(token, req),
            GroupState::Stable if g.is_leader(&member_id) || !matches => {
                // The leader rejoining forces a rebalance: that is how it asks for one
                // when the topics change (metadata the coordinator does not see).
                self.update_member_and_rebalance(token, req)
            }
            GroupState::Stable => {
                let mut resp = self.join_response(&req.group_id, &member_id);
                resp.members.clear();
                self.reply_join(token, resp);
            }
            GroupState::Empty | GroupState::Dead => self.reply_join(
                token,
                JoinGroupResponse::error(member_id, ErrorCode::UnknownMemberId),
            ),
        }
    }

    /// The JoinGroup response of the current generation for `member_id`: the leader
    /// gets every member's metadata.
    fn join_response(&self, group_id: &str, member_id: &str) -> JoinGroupResponse {
        let g = &self.groups[group_id];
        JoinGroupResponse {
            error: ErrorCode::None,
            generation_id: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if g.is_leader(member_id) {
                g.current_member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    fn add_member_and_rebalance(&mut self, token: u64, req: JoinGroupRequest, member_id: String) {
        let now = self.now_ms;
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: rebalance_timeout(&req),
            session_timeout_ms: session_timeout(&req),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(token),
            awaiting_sync: None,
            is_new: true,
            session_deadline_ms: now + NEW_MEMBER_JOIN_TIMEOUT_MS,
        };
        let g = self.group_mut(&req.group_id);
        // Only joiners of a brand-new group's first rebalance extend its initial delay.
        if g.is(GroupState::PreparingRebalance) && g.generation == 0 {
            g.new_member_added = true;
        }
        g.add_member(member);
        self.renew_session(&req.group_id, &member_id);
        self.maybe_prepare_rebalance(&req.group_id);
    }

    fn update_member_and_rebalance(&mut self, token: u64, req: JoinGroupRequest) {
        self.update_member(&req, &req.member_id, token);
        self.maybe_prepare_rebalance(&req.group_id);
    }

    /// A member's new protocols and timeouts, and its JoinGroup parked as `token`. A
    /// JoinGroup it had parked already is superseded: its client gave up on it.
    fn update_member(&mut self, req: &JoinGroupRequest, member_id: &str, token: u64) {
        let g = self.group_mut(&req.group_id);
        let member = g.members.get_mut(member_id).expect("updating a member");
        member.protocols = req.protocols.clone();
        member.rebalance_timeout_ms = rebalance_timeout(req);
        member.session_timeout_ms = session_timeout(req);
        let superseded = member.awaiting_join.replace(token);
        if let Some(old) = superseded {
            self.reply_join(
                old,
                JoinGroupResponse::error(member_id, ErrorCode::RebalanceInProgress),
            );
        }
    }

    fn update_static_member_and_rebalance(
        &mut self,
        token: u64,
        req: JoinGroupRequest,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) {
        let group_id = req.group_id.clone();
        let g = self.group_mut(&group_id);
        let old_leader = g.leader_id.clone();
        let old = g.replace_static_member(instance_id, old_member_id, new_member_id);
        // The old member id is fenced: whatever it has parked learns so at once.
        if let Some(t) = old.awaiting_join {
            self.reply_join(
                t,
                JoinGroupResponse::error(old_member_id, ErrorCode::FencedInstanceId),
            );
        }
        if let Some(t) = old.awaiting_sync {
            self.reply_sync(t, SyncGroupResponse::error(ErrorCode::FencedInstanceId));
        }
        self.renew_session(&group_id, new_member_id);
        self.update_member(&req, new_member_id, token);
        let g = &self.groups[&group_id];
        match g.state {
            GroupState::Stable => {
                if g.protocol_name.as_deref() == Some(g.select_protocol().as_str()) {
                    // No rebalance: store the new member id, then answer with the
                    // current generation. The leader stays the one the group knows,
                    // so a replaced leader does not recompute a Stable group's
                    // assignment that nobody would receive.
                    let record = GroupCoordinator::group_record(g, &g.assignments());
                    let pending = PendingAppend::StaticReplace {
                        group_id: group_id.clone(),
                        incarnation: g.incarnation,
                        token,
                        instance_id: instance_id.to_string(),
                        old_member_id: old_member_id.to_string(),
                        new_member_id: new_member_id.to_string(),
                        old_member: Box::new(old),
                        old_leader,
                    };
                    self.append(&group_id, &[record], pending);
                } else {
                    self.maybe_prepare_rebalance(&group_id);
                }
            }
            // The leader may already have the old member id in hand: rebalance again so
            // the assignment names the new one.
            GroupState::CompletingRebalance => self.prepare_rebalance(&group_id),
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a group with a static member is not {}", g.state.name())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn static_replace_done(
        &mut self,
        group_id: &str,
        incarnation: u64,
        token: u64,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
        old_member: Box<Member>,
        old_leader: Option<String>,
        result: Result<Offset, ErrorCode>,
    ) {
        // The JoinGroup is parked on the new member, so whatever removed the member
        // since (a rebalance it did not survive, a leave, the group's deletion or
        // unload) has answered it; so has a rebalance that completed meanwhile.
        if !self.same_group(group_id, incarnation) {
            return;
        }
        let still_parked = self.groups[group_id]
            .members
            .get(new_member_id)
            .is_some_and(|m| m.awaiting_join == Some(token));
        if !still_parked {
            return;
        }
        match result {
            Ok(_) => {
                let g = self.group_mut(group_id);
                g.members
                    .get_mut(new_member_id)
                    .expect("parked")
                    .awaiting_join = None;
                let g = &self.groups[group_id];
                let resp = JoinGroupResponse {
                    error: ErrorCode::None,
                    generation_id: g.generation,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    leader: old_leader.unwrap_or_default(),
                    skip_assignment: false,
                    member_id: new_member_id.to_string(),
                    members: Vec::new(),
                };
                self.reply_join(token, resp);
            }
            Err(e) => {
                // The new member id is not durable: give the instance its old id back.
                let g = self.group_mut(group_id);
                let member = g.members.get_mut(new_member_id).expect("parked");
                // (Kafka reads the "old" protocols after overwriting them; Eddy
                // restores the ones the member had.)
                member.protocols = old_member.protocols;
                member.rebalance_timeout_ms = old_member.rebalance_timeout_ms;
                member.session_timeout_ms = old_member.session_timeout_ms;
                member.awaiting_join = None;
                g.replace_static_member(instance_id, new_member_id, old_member_id);
                self.renew_session(group_id, old_member_id);
                let g = &self.groups[group_id];
                let resp = JoinGroupResponse {
                    error: store_group_error(e),
                    generation_id: g.generation,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    leader: old_leader.unwrap_or_default(),
                    skip_assignment: false,
                    member_id: UNKNOWN_MEMBER_ID.to_string(),
                    members: Vec::new(),
                };
                self.reply_join(token, resp);
            }
        }
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, group_id: &str) {
        if self.groups[group_id].can_rebalance() {
            self.prepare_rebalance(group_id);
        }
    }

    /// Starts the join phase of a rebalance.
    pub(super) fn prepare_rebalance(&mut self, group_id: &str) {
        if self.groups[group_id].is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_error(group_id, ErrorCode::RebalanceInProgress);
        }
        let now = self.now_ms;
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        let g = self.group_mut(group_id);
        g.sync_deadline_ms = None;
        g.pending_sync_members.clear();
        let timer = if g.is(GroupState::Empty) {
            JoinTimer {
                deadline_ms: now + initial_delay_ms,
                initial: Some(InitialDelay {
                    delay_ms: initial_delay_ms,
                    remaining_ms: g.rebalance_timeout_ms().saturating_sub(initial_delay_ms),
                }),
            }
        } else {
            JoinTimer {
                deadline_ms: now + g.rebalance_timeout_ms(),
                initial: None,
            }
        };
        g.transition_to(GroupState::PreparingRebalance, now);
        g.join_timer = Some(timer);
        self.schedule(
            timer.deadline_ms,
            Timer::Join {
                group_id: group_id.to_string(),
            },
        );
        self.try_complete_join(group_id);
    }

    /// Completes the join phase at once if every member has rejoined — unless an
    /// initial delay is running, which always runs to its end.
    pub(super) fn try_complete_join(&mut self, group_id: &str) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        let ready = g.is(GroupState::PreparingRebalance)
            && g.join_timer.is_some_and(|t| t.initial.is_none())
            && g.all_members_joined();
        if ready {
            self.complete_join(group_id);
        }
    }

    pub(super) fn join_timer_expired(&mut self, group_id: &str) {
        let now = self.now_ms;
        let configured_ms = self.config.initial_rebalance_delay_ms;
        let g = self.group_mut(group_id);
        let timer = g.join_timer.expect("the join timer fired");
        if let Some(initial) = timer.initial {
            if g.new_member_added && initial.remaining_ms != 0 {
                // KIP-134: someone joined during the delay; wait again, within the
                // rebalance timeout.
                g.new_member_added = false;
                let delay_ms = configured_ms.min(initial.remaining_ms);
                let next = JoinTimer {
                    deadline_ms: now + delay_ms,
                    initial: Some(InitialDelay {
                        delay_ms,
                        remaining_ms: initial.remaining_ms.saturating_sub(initial.delay_ms),
                    }),
                };
                g.join_timer = Some(next);
                self.schedule(
                    next.deadline_ms,
                    Timer::Join {
                        group_id: group_id.to_string(),
                    },
                );
                return;
            }
        }
        self.complete_join(group_id);
    }

    /// Kafka's `onCompleteJoin`: drop the dynamic members that did not rejoin, start the
    /// next generation and answer every parked JoinGroup.
    fn complete_join(&mut self, group_id: &str) {
        let now = self.now_ms;
        let g = self.group_mut(group_id);
        let not_rejoined: Vec<String> = g
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &not_rejoined {
            g.remove_member(id);
        }
        if !g.members.is_empty() && !g.elect_joined_leader() {
            // Nobody rejoined (only static members are left): wait another rebalance
            // timeout, until their sessions expire.
            let timer = JoinTimer {
                deadline_ms: now + g.rebalance_timeout_ms(),
                initial: None,
            };
            g.join_timer = Some(timer);
            return self.schedule(
                timer.deadline_ms,
                Timer::Join {
                    group_id: group_id.to_string(),
                },
            );
        }
        g.join_timer = None;
        g.new_member_added = false;
        g.generation += 1;
        if g.members.is_empty() {
            g.protocol_name = None;
            g.subscribed_topics = None;
            g.transition_to(GroupState::Empty, now);
            let record = GroupCoordinator::group_record(g, &BTreeMap::new());
            return self.append(group_id, &[record], PendingAppend::Unacknowledged);
        }
        g.protocol_name = Some(g.select_protocol());
        g.subscribed_topics = g.compute_subscribed_topics();
        g.transition_to(GroupState::CompletingRebalance, now);
        g.pending_sync_members = g.members.keys().cloned().collect();
        let sync_deadline_ms = now + g.rebalance_timeout_ms();
        g.sync_deadline_ms = Some(sync_deadline_ms);
        self.schedule(
            sync_deadline_ms,
            Timer::Sync {
                group_id: group_id.to_string(),
            },
        );
        let g = self.group_mut(group_id);
        let members: Vec<String> = g.members.keys().cloned().collect();
        for member_id in members {
            let resp = self.join_response(group_id, &member_id);
            let g = self.group_mut(group_id);
            let member = g.members.get_mut(&member_id).expect("listed");
            member.is_new = false;
            if let Some(token) = member.awaiting_join.take() {
                self.reply_join(token, resp);
            }
            self.renew_session(group_id, &member_id);
        }
    }

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

    fn reset_and_propagate_assignment_error(&mut self, group_id: &str, error: ErrorCode) {
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

impl ClassicGroup {
    /// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined, else take
    /// the first member that did. False if no member rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader_id else {
            return false;
        };
        if self.members[leader].awaiting_join.is_some() {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
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

fn session_timeout(req: &JoinGroupRequest) -> u64 {
    u64::try_from(req.session_timeout_ms).unwrap_or(0)
}

fn rebalance_timeout(req: &JoinGroupRequest) -> u64 {
    u64::try_from(req.rebalance_timeout_ms).unwrap_or(0)
}

//! JoinGroup and the join phase of a rebalance, following Kafka's `GroupCoordinator`
//! (classic protocol) rule for rule:
//!
//! - a new member of JoinGroup v4+ first gets MEMBER_ID_REQUIRED and an id to join with
//!   (KIP-394); until it joins with it, it holds the rebalance open as a pending member;
//! - a rebalance's join phase ends when every known member has rejoined, or when the
//!   longest rebalance timeout of the members expires — dynamic members that did not
//!   rejoin are then removed; the first rebalance of an empty group instead waits
//!   `group.initial.rebalance.delay.ms`, again for each member that joins meanwhile, up
//!   to the rebalance timeout (KIP-134);
//! - a static member (KIP-345) that restarts joins with its `group.instance.id` and no
//!   member id: it takes over its old member id's place — without a rebalance when the
//!   group is Stable and its protocols would not change the group's choice — and the old
//!   id is fenced (FENCED_INSTANCE_ID).

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

fn session_timeout(req: &JoinGroupRequest) -> u64 {
    u64::try_from(req.session_timeout_ms).unwrap_or(0)
}

fn rebalance_timeout(req: &JoinGroupRequest) -> u64 {
    u64::try_from(req.rebalance_timeout_ms).unwrap_or(0)
}

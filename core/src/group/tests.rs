//! Unit tests of the group coordinator's membership (join, rebalance, sync, heartbeat,
//! leave, static members): each drives one coordinator through the fake
//! shell in `harness` and checks one rule of Kafka's classic group protocol.

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::group::harness::*;
use crate::group::*;

#[test]
fn new_member_gets_member_id_required_then_joins_with_that_id() {
    let mut h = Harness::new(config());
    let t = h.join(join_req("", "client"));
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::MemberIdRequired);
    assert_eq!(
        r.member_id, "client-0-0",
        "{{client_id}}-{{incarnation}}-{{counter}}"
    );
    assert_eq!(r.generation_id, UNKNOWN_GENERATION_ID);
    let t = h.join(join_req(&r.member_id, "client"));
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, "client-0-0");
    assert_eq!(r.member_id, "client-0-0");
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        r.members.len(),
        1,
        "the leader gets every member's metadata"
    );
    assert_eq!(r.members[0].metadata, Bytes::from("client"));
}

#[test]
fn join_without_require_known_member_id_is_admitted_at_once() {
    let mut h = Harness::new(config());
    let mut req = join_req("", "old");
    req.require_known_member_id = false;
    let t = h.join(req);
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::None);
    assert_eq!(r.generation_id, 1);
}

#[test]
fn members_join_one_by_one_and_only_the_leader_gets_the_member_list() {
    let mut h = Harness::new(config());
    let (ta, a) = h.join_new("a");
    assert_eq!(h.join_reply(ta).generation_id, 1);
    let (tb, b) = h.join_new("b");
    assert!(!h.has_reply(tb), "b waits for a to rejoin");
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat(&a, 1), ErrorCode::RebalanceInProgress);
    let ta = h.join(join_req(&a, "a"));
    let ra = h.join_reply(ta);
    let rb = h.join_reply(tb);
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    let listed: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, [a.as_str(), b.as_str()]);
    assert!(rb.members.is_empty(), "followers get no member list");
    assert_eq!(
        h.c.group_state(GROUP),
        Some(GroupState::CompletingRebalance)
    );
}

#[test]
fn initial_delay_is_extended_by_each_new_joiner_up_to_the_rebalance_timeout() {
    let mut cfg = config();
    cfg.initial_rebalance_delay_ms = 3000;
    let mut h = Harness::new(cfg);
    // rebalance timeout 10 s: after the first 3 s delay, 7 s remain to extend into.
    let join = |client: &str| {
        let mut r = join_req("", client);
        r.require_known_member_id = false;
        r.rebalance_timeout_ms = 10_000;
        r
    };
    let ta = h.join(join("a"));
    h.advance(2000);
    let tb = h.join(join("b"));
    h.advance(1000); // t=3000: b joined during the delay: wait 3 s more (4 s remain)
    assert!(!h.has_reply(ta));
    h.advance(2000); // t=5000
    let tc = h.join(join("c"));
    h.advance(1000); // t=6000: c joined: wait min(3, 4) s more (1 s remains)
    assert!(!h.has_reply(ta));
    h.advance(2999); // t=8999
    assert!(!h.has_reply(ta));
    h.advance(1); // t=9000: nobody new: the join completes
    for t in [ta, tb, tc] {
        let r = h.join_reply(t);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.generation_id, 1);
    }
}

#[test]
fn initial_delay_without_new_joiners_completes_after_one_delay_even_if_all_joined() {
    let mut cfg = config();
    cfg.initial_rebalance_delay_ms = 3000;
    let mut h = Harness::new(cfg);
    let mut req = join_req("", "a");
    req.require_known_member_id = false;
    let t = h.join(req);
    h.advance(2999);
    assert!(!h.has_reply(t), "the initial delay runs to its end");
    h.advance(1);
    assert_eq!(h.join_reply(t).generation_id, 1);
}

#[test]
fn member_that_does_not_rejoin_is_removed_at_the_rebalance_timeout() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let (tc, c) = h.join_new("c");
    let start = h.now_ms;
    let ta = h.join(join_req(a, "a"));
    // b keeps heartbeating (so its session never runs out) but never rejoins.
    for _ in 0..5 {
        h.advance(5000);
        assert_eq!(h.heartbeat(b, generation), ErrorCode::RebalanceInProgress);
    }
    h.advance(start + REBALANCE_MS as u64 - 1 - h.now_ms);
    assert!(!h.has_reply(ta));
    h.advance(1);
    let ra = h.join_reply(ta);
    assert_eq!(ra.generation_id, generation + 1);
    let listed: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, [a.as_str(), c.as_str()]);
    assert_eq!(h.join_reply(tc).generation_id, generation + 1);
    assert_eq!(h.heartbeat(b, generation + 1), ErrorCode::UnknownMemberId);
}

#[test]
fn session_expiry_removes_the_member_and_triggers_a_rebalance() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a", "b"]);
    for _ in 0..2 {
        h.advance(4000);
        assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::None);
    }
    h.advance(1999);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Stable));
    h.advance(1);
    // b said nothing for its whole 10 s session.
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    assert_eq!(
        h.heartbeat(&ids[0], generation),
        ErrorCode::RebalanceInProgress
    );
    let t = h.join(join_req(&ids[0], "a"));
    let r = h.join_reply(t);
    assert_eq!(r.generation_id, generation + 1);
    assert_eq!(r.members.len(), 1);
    assert_eq!(h.heartbeat(&ids[1], generation), ErrorCode::UnknownMemberId);
}

#[test]
fn pending_member_that_never_joins_stops_holding_the_rebalance_after_its_session() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let t = h.join(join_req("", "b"));
    assert_eq!(h.join_reply(t).error, ErrorCode::MemberIdRequired);
    let ta = h.join(join_req(&ids[0], "a"));
    assert!(!h.has_reply(ta), "the pending member holds the join open");
    h.advance(SESSION_MS as u64);
    assert_eq!(h.join_reply(ta).generation_id, generation + 1);
}

#[test]
fn follower_sync_waits_for_the_leaders_assignment_to_be_stored() {
    let mut h = Harness::new(config());
    h.auto_append = false;
    let (ta, a) = h.join_new("a");
    h.join_reply(ta);
    let (tb, b) = h.join_new("b");
    let ta = h.join(join_req(&a, "a"));
    let generation = h.join_reply(ta).generation_id;
    h.join_reply(tb);
    let sb = h.sync(&b, generation, &[]);
    assert!(!h.has_reply(sb), "the follower waits for the leader");
    let sa = h.sync(&a, generation, &[(&a, "pa"), (&b, "pb")]);
    assert!(
        !h.has_reply(sa) && !h.has_reply(sb),
        "nobody hears before the store"
    );
    assert_eq!(h.in_flight.len(), 1);
    h.complete_next(Ok(()));
    let ra = h.sync_reply(sa);
    let rb = h.sync_reply(sb);
    assert_eq!(ra.assignment, Bytes::from("pa"));
    assert_eq!(rb.assignment, Bytes::from("pb"));
    assert_eq!(rb.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Stable));
    // In Stable a late SyncGroup gets the stored assignment straight away.
    let again = h.sync(&b, generation, &[]);
    assert_eq!(h.sync_reply(again).assignment, Bytes::from("pb"));
}

#[test]
fn failed_store_of_the_assignment_fails_the_sync_and_rebalances() {
    let mut h = Harness::new(config());
    h.auto_append = false;
    let (ta, a) = h.join_new("a");
    let generation = h.join_reply(ta).generation_id;
    let sa = h.sync(&a, generation, &[(&a, "pa")]);
    h.complete_next(Err(ErrorCode::NotLeaderOrFollower));
    assert_eq!(h.sync_reply(sa).error, ErrorCode::NotCoordinator);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::PreparingRebalance));
}

#[test]
fn illegal_generation_for_sync_heartbeat_and_commit() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let a = &ids[0];
    let t = h.sync(a, generation + 1, &[]);
    assert_eq!(h.sync_reply(t).error, ErrorCode::IllegalGeneration);
    assert_eq!(h.heartbeat(a, generation - 1), ErrorCode::IllegalGeneration);
    let t = h.commit(a, generation - 1, &[("t", 0, 5, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::IllegalGeneration]);
    assert_eq!(h.heartbeat(a, generation), ErrorCode::None);
}

#[test]
fn sync_during_preparing_rebalance_is_rebalance_in_progress() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let _ = h.join_new("b");
    let t = h.sync(&ids[0], generation, &[]);
    assert_eq!(h.sync_reply(t).error, ErrorCode::RebalanceInProgress);
}

#[test]
fn sync_checks_protocol_type_and_name() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let t = h.send(GroupRequest::SyncGroup(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: generation,
        member_id: ids[0].clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: Vec::new(),
    }));
    assert_eq!(h.sync_reply(t).error, ErrorCode::InconsistentGroupProtocol);
}

#[test]
fn join_checks_session_timeout_protocol_and_member() {
    let mut h = Harness::new(config());
    let mut req = join_req("", "a");
    req.session_timeout_ms = 999;
    let t = h.join(req.clone());
    assert_eq!(h.join_reply(t).error, ErrorCode::InvalidSessionTimeout);
    req.session_timeout_ms = 60_001;
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, ErrorCode::InvalidSessionTimeout);

    let t = h.join(join_req("nobody", "a"));
    assert_eq!(
        h.join_reply(t).error,
        ErrorCode::UnknownMemberId,
        "a member id the coordinator never gave"
    );

    h.stable_group(&["a"]);
    let mut other = join_req("", "b");
    other.protocols = protocols(&[("roundrobin", "")]);
    other.require_known_member_id = false;
    let t = h.join(other.clone());
    assert_eq!(h.join_reply(t).error, ErrorCode::InconsistentGroupProtocol);
    other.protocols = protocols(&[("range", "")]);
    other.protocol_type = "connect".into();
    let t = h.join(other);
    assert_eq!(h.join_reply(t).error, ErrorCode::InconsistentGroupProtocol);

    let mut empty_id = join_req("", "a");
    empty_id.group_id = String::new();
    let t = h.join(empty_id);
    assert_eq!(h.join_reply(t).error, ErrorCode::InvalidGroupId);
}

#[test]
fn group_max_size_refuses_the_member_past_it() {
    let mut cfg = config();
    cfg.max_size = 1;
    let mut h = Harness::new(cfg);
    h.stable_group(&["a"]);
    let mut req = join_req("", "b");
    req.require_known_member_id = false;
    let t = h.join(req);
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::GroupMaxSizeReached);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Stable));
}

fn static_join(instance: &str, member_id: &str, metadata: &str) -> JoinGroupRequest {
    let mut r = join_req(member_id, "client");
    r.group_instance_id = Some(instance.into());
    r.protocols = protocols(&[("range", metadata)]);
    r
}

/// A stable group with static member "i1" (leader) and dynamic member "b".
fn static_group(h: &mut Harness) -> (String, String, i32) {
    let t = h.join(static_join("i1", "", "m1"));
    let r = h.join_reply(t);
    assert_eq!(
        r.error,
        ErrorCode::None,
        "a static member gets no MEMBER_ID_REQUIRED"
    );
    let s1 = r.member_id;
    assert!(
        s1.starts_with("i1-"),
        "a static member's id starts with its instance id"
    );
    let (tb, b) = h.join_new("b");
    let t = h.join(static_join("i1", &s1, "m1"));
    let generation = h.join_reply(t).generation_id;
    h.join_reply(tb);
    let sb = h.sync(&b, generation, &[]);
    let s = h.sync(&s1, generation, &[(&s1, "p1"), (&b, "pb")]);
    h.sync_reply(s);
    h.sync_reply(sb);
    (s1, b, generation)
}

#[test]
fn static_member_rejoin_keeps_its_assignment_without_a_rebalance() {
    let mut h = Harness::new(config());
    let (old, b, generation) = static_group(&mut h);
    h.auto_append = false;
    // The instance restarts: unknown member id, same instance id and metadata.
    let t = h.join(static_join("i1", "", "m1"));
    assert!(!h.has_reply(t), "answered once the new member id is stored");
    h.complete_next(Ok(()));
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::None);
    assert_ne!(r.member_id, old);
    assert_eq!(r.generation_id, generation, "no new generation");
    assert_eq!(
        r.leader, old,
        "the leader field stays the one the group knows"
    );
    assert!(r.members.is_empty());
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Stable));
    let s = h.sync(&r.member_id, generation, &[]);
    assert_eq!(h.sync_reply(s).assignment, Bytes::from("p1"));
    assert_eq!(
        h.heartbeat(&b, generation),
        ErrorCode::None,
        "b saw nothing"
    );
    // The old member id of the instance is fenced.
    assert_eq!(
        h.heartbeat_as(&old, Some("i1"), generation),
        ErrorCode::FencedInstanceId
    );
    let t = h.join(static_join("i1", &old, "m1"));
    assert_eq!(h.join_reply(t).error, ErrorCode::FencedInstanceId);
    let t = h.send(GroupRequest::SyncGroup(SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: generation,
        member_id: old.clone(),
        group_instance_id: Some("i1".into()),
        protocol_type: None,
        protocol_name: None,
        assignments: Vec::new(),
    }));
    assert_eq!(h.sync_reply(t).error, ErrorCode::FencedInstanceId);
    assert_eq!(
        h.heartbeat(&old, generation),
        ErrorCode::UnknownMemberId,
        "without its instance id the old id is simply unknown"
    );
}

#[test]
fn static_member_rejoin_whose_store_fails_gets_its_old_id_back() {
    let mut h = Harness::new(config());
    let (old, _, generation) = static_group(&mut h);
    h.auto_append = false;
    let t = h.join(static_join("i1", "", "m1"));
    h.complete_next(Err(ErrorCode::NotEnoughReplicas));
    let r = h.join_reply(t);
    assert_eq!(r.error, ErrorCode::CoordinatorNotAvailable);
    assert_eq!(r.member_id, UNKNOWN_MEMBER_ID);
    assert_eq!(
        h.heartbeat_as(&old, Some("i1"), generation),
        ErrorCode::None
    );
}

#[test]
fn static_member_rejoin_that_changes_the_protocol_choice_rebalances() {
    let mut h = Harness::new(config());
    let (_, b, generation) = static_group(&mut h);
    let mut req = static_join("i1", "", "m1");
    // Still lists range (so it is admitted) but a leader preferring roundrobin...
    req.protocols = protocols(&[("roundrobin", "x"), ("range", "m1")]);
    let t = h.join(req);
    // ...does not change the choice while b lists only range: no rebalance.
    assert_eq!(h.join_reply(t).generation_id, generation);
    // Different metadata for the same protocol does not change the choice either;
    // b rejoining with new metadata does rebalance.
    let mut rb = join_req(&b, "b");
    rb.protocols = protocols(&[("range", "new")]);
    let tb = h.join(rb);
    assert!(!h.has_reply(tb));
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::PreparingRebalance));
}

#[test]
fn leave_group_removes_members_by_id_or_by_instance_id() {
    let mut h = Harness::new(config());
    let (s1, b, generation) = static_group(&mut h);
    let r = h.leave(&[("", Some("i1")), ("nobody", None), ("", Some("i9"))]);
    let errors: Vec<ErrorCode> = r.members.iter().map(|m| m.error).collect();
    assert_eq!(
        errors,
        [
            ErrorCode::None,
            ErrorCode::UnknownMemberId,
            ErrorCode::UnknownMemberId
        ]
    );
    assert_eq!(
        h.heartbeat_as(&s1, Some("i1"), generation),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(h.heartbeat(&b, generation), ErrorCode::RebalanceInProgress);
    let r = h.leave(&[(&b, None)]);
    assert_eq!(r.members[0].error, ErrorCode::None);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Empty));
    assert_eq!(h.c.generation(GROUP), Some(generation + 1));
}

#[test]
fn leave_with_the_wrong_instance_id_is_fenced() {
    let mut h = Harness::new(config());
    let (s1, b, _) = static_group(&mut h);
    let r = h.leave(&[(&b, Some("i1"))]);
    assert_eq!(r.members[0].error, ErrorCode::FencedInstanceId);
    let r = h.leave(&[(&s1, Some("i1"))]);
    assert_eq!(r.members[0].error, ErrorCode::None);
}

#[test]
fn requests_for_a_partition_this_broker_does_not_lead_get_not_coordinator() {
    let mut h = Harness::new(config());
    let partition = h.c.partition_for(GROUP);
    h.input(GroupInput::Unload { partition });
    let t = h.join(join_req("", "a"));
    assert_eq!(h.join_reply(t).error, ErrorCode::NotCoordinator);
    let t = h.send(GroupRequest::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec![GROUP.into()],
    }));
    match h.reply(t) {
        GroupResponse::DeleteGroups(r) => assert_eq!(r.results[0].error, ErrorCode::NotCoordinator),
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_and_describe_groups_report_kafkas_state_names() {
    let mut h = Harness::new(config());
    h.stable_group(&["a"]);
    let t = h.send(GroupRequest::ListGroups(ListGroupsRequest {
        states_filter: vec!["stable".into()],
    }));
    match h.reply(t) {
        GroupResponse::ListGroups(r) => {
            assert_eq!(r.error, ErrorCode::None);
            assert_eq!(
                r.groups,
                [ListedGroup {
                    group_id: GROUP.into(),
                    protocol_type: "consumer".into(),
                    group_state: "Stable".into()
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    let t = h.send(GroupRequest::ListGroups(ListGroupsRequest {
        states_filter: vec!["Empty".into()],
    }));
    match h.reply(t) {
        GroupResponse::ListGroups(r) => assert!(r.groups.is_empty()),
        other => panic!("{other:?}"),
    }
    let d = h.describe(GROUP);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_metadata, Bytes::from("a"));
    assert_eq!(h.describe("missing").group_state, "Dead");
    assert_eq!(h.describe("missing").error, ErrorCode::None);
    let t = h.send(GroupRequest::DescribeGroups(DescribeGroupsRequest {
        groups: vec!["missing".into()],
        report_missing_group: true,
    }));
    match h.reply(t) {
        GroupResponse::DescribeGroups(r) => {
            assert_eq!(
                r.groups[0].error,
                ErrorCode::GroupIdNotFound,
                "DescribeGroups v6+"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn next_deadline_names_the_earliest_timer() {
    let mut h = Harness::new(config());
    let (ids, _) = h.stable_group(&["a"]);
    let _ = ids;
    let deadline = h.c.next_deadline().expect("a session runs");
    assert!(deadline > h.now_ms);
    assert!(deadline <= h.now_ms + SESSION_MS as u64);
}

#[test]
fn member_that_joins_but_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new(config());
    let (ta, a) = h.join_new("a");
    h.join_reply(ta);
    let (tb, b) = h.join_new("b");
    let ta = h.join(join_req(&a, "a"));
    let generation = h.join_reply(ta).generation_id;
    h.join_reply(tb);
    let start = h.now_ms;
    let sa = h.sync(&a, generation, &[(&a, "pa"), (&b, "pb")]);
    assert_eq!(h.sync_reply(sa).assignment, Bytes::from("pa"));
    // b heartbeats (so its session lives) but never sends SyncGroup.
    while h.now_ms + 5000 < start + REBALANCE_MS as u64 {
        h.advance(5000);
        assert_eq!(h.heartbeat(&a, generation), ErrorCode::None);
        assert_eq!(h.heartbeat(&b, generation), ErrorCode::None);
    }
    h.advance(start + REBALANCE_MS as u64 - h.now_ms);
    assert_eq!(h.heartbeat(&b, generation), ErrorCode::UnknownMemberId);
    assert_eq!(h.heartbeat(&a, generation), ErrorCode::RebalanceInProgress);
}

#[test]
fn sync_while_the_partition_loads_sends_the_member_back_to_join() {
    let mut h = Harness::new(config());
    let partition = h.c.partition_for(GROUP);
    h.input(GroupInput::Unload { partition });
    h.input(GroupInput::BeginLoad { partition });
    let t = h.sync("m", 1, &[]);
    assert_eq!(h.sync_reply(t).error, ErrorCode::RebalanceInProgress);
}

/// KIP-345: a static member's client does not send LeaveGroup when it shuts down, so the
/// group keeps it (and its partitions) until its session times out; the coordinator
/// itself removes whatever a LeaveGroup names, as Kafka's does — by member id alone
/// (LeaveGroup v0-v2 carry no instance id), or by instance id alone (the admin path).
#[test]
fn static_member_that_goes_quiet_stays_until_its_session_ends_but_leave_removes_it() {
    let mut h = Harness::new(config());
    let (s1, b, generation) = static_group(&mut h);
    // i1 shuts down without a word; b keeps heartbeating.
    h.advance(5000);
    assert_eq!(h.heartbeat(&b, generation), ErrorCode::None);
    assert_eq!(
        h.c.group_state(GROUP),
        Some(GroupState::Stable),
        "no rebalance yet"
    );
    let r = h.leave(&[(&s1, None)]);
    assert_eq!(r.members[0].error, ErrorCode::None);
    assert_eq!(h.heartbeat(&b, generation), ErrorCode::RebalanceInProgress);
}

#[test]
fn leave_group_removes_a_pending_member() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let t = h.join(join_req("", "b"));
    let pending = h.join_reply(t).member_id;
    let ta = h.join(join_req(&ids[0], "a"));
    assert!(!h.has_reply(ta), "held open by the pending member");
    let r = h.leave(&[(&pending, None)]);
    assert_eq!(r.members[0].error, ErrorCode::None);
    // (The leader rejoining a Stable group asks for a rebalance: a new generation.)
    assert_eq!(
        h.join_reply(ta).generation_id,
        generation + 1,
        "nobody else to wait for"
    );
}

//! Unit tests of the coordinator's offsets and persistence: commits fenced and held
//! until appended, OffsetFetch, retention, DeleteGroups, and load/unload of
//! `__consumer_offsets` partitions.

use bytes::Bytes;

use crate::batch::records;
use crate::error::ErrorCode;
use crate::group::harness::*;
use crate::group::*;
use crate::types::Offset;

#[test]
fn commit_is_fenced_by_member_generation_and_rebalance() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let a = ids[0].clone();
    let t = h.commit("stranger", generation, &[("t", 0, 1, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::UnknownMemberId]);
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 1, "")]);
    assert_eq!(
        h.commit_errors(t),
        [ErrorCode::UnknownMemberId],
        "a simple commit to a group with members"
    );
    let t = h.commit(&a, generation, &[("t", 0, 1, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::None]);

    // PreparingRebalance still takes a current member's commit...
    let (tb, _) = h.join_new("b");
    let t = h.commit(&a, generation, &[("t", 0, 2, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::None]);
    // ...CompletingRebalance does not.
    let ta = h.join(join_req(&a, "a"));
    let next = h.join_reply(ta).generation_id;
    h.join_reply(tb);
    let t = h.commit(&a, next, &[("t", 0, 3, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::RebalanceInProgress]);
    assert_eq!(h.fetch("t", 0).0, 2);
}

#[test]
fn simple_commit_is_allowed_only_for_an_empty_or_unknown_group() {
    let mut h = Harness::new(config());
    let t = h.commit("", 3, &[("t", 0, 1, "")]);
    assert_eq!(
        h.commit_errors(t),
        [ErrorCode::IllegalGeneration],
        "a generation for a group that does not exist"
    );
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 7, "m")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::None]);
    assert_eq!(h.fetch("t", 0), (7, "m".to_string(), ErrorCode::None));
    let d = h.describe(GROUP);
    assert_eq!(d.group_state, "Empty");
    assert_eq!(d.protocol_type, "", "no group management");
}

#[test]
fn commit_is_not_acknowledged_or_visible_before_its_append_commits() {
    let mut h = Harness::new(config());
    h.auto_append = false;
    let t = h.commit(
        "",
        UNKNOWN_GENERATION_ID,
        &[("t", 0, 42, "checkpoint ✓"), ("t", 1, 9, "")],
    );
    assert!(!h.has_reply(t));
    assert_eq!(h.in_flight.len(), 1, "one batch for the whole commit");
    assert_eq!(
        h.fetch("t", 0),
        (INVALID_OFFSET, String::new(), ErrorCode::None)
    );
    h.complete_next(Ok(()));
    assert_eq!(h.commit_errors(t), [ErrorCode::None, ErrorCode::None]);
    assert_eq!(
        h.fetch("t", 0),
        (42, "checkpoint ✓".to_string(), ErrorCode::None)
    );
    assert_eq!(h.fetch("t", 1).0, 9);
}

#[test]
fn failed_commit_append_maps_to_kafkas_commit_errors() {
    let mut h = Harness::new(config());
    h.auto_append = false;
    for (log_error, seen) in [
        (ErrorCode::NotLeaderOrFollower, ErrorCode::NotCoordinator),
        (
            ErrorCode::NotEnoughReplicas,
            ErrorCode::CoordinatorNotAvailable,
        ),
        (
            ErrorCode::MessageTooLarge,
            ErrorCode::InvalidCommitOffsetSize,
        ),
        (ErrorCode::RequestTimedOut, ErrorCode::RequestTimedOut),
    ] {
        let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 1, "")]);
        h.complete_next(Err(log_error));
        assert_eq!(h.commit_errors(t), [seen]);
    }
    assert_eq!(
        h.fetch("t", 0).0,
        INVALID_OFFSET,
        "a failed commit is not visible"
    );
}

#[test]
fn commit_checks_metadata_size_per_partition() {
    let mut h = Harness::new(config());
    let long = "x".repeat(33);
    let t = h.commit(
        "",
        UNKNOWN_GENERATION_ID,
        &[("t", 0, 1, &long), ("t", 1, 2, "ok"), ("t", -1, 3, "")],
    );
    assert_eq!(
        h.commit_errors(t),
        [
            ErrorCode::OffsetMetadataTooLarge,
            ErrorCode::None,
            ErrorCode::UnknownTopicOrPartition
        ]
    );
}

#[test]
fn later_commit_record_wins_whatever_order_appends_complete_in() {
    let mut h = Harness::new(config());
    h.auto_append = false;
    let t1 = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 1, "")]);
    let t2 = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 2, "")]);
    // Complete the second append first: it sits later in the log.
    let (p2, b2, id2) = h.in_flight.remove(1);
    let (p1, b1, id1) = h.in_flight.remove(0);
    assert_eq!(p1, p2);
    let effects = h.c.handle(
        h.now_ms,
        GroupInput::AppendDone {
            append_id: id2,
            result: Ok(Offset(1)),
        },
    );
    assert_eq!(effects.len(), 1);
    let effects = h.c.handle(
        h.now_ms,
        GroupInput::AppendDone {
            append_id: id1,
            result: Ok(Offset(0)),
        },
    );
    assert_eq!(effects.len(), 1);
    let _ = (b1, b2, t1, t2);
    h.replies.clear();
    assert_eq!(h.fetch("t", 0).0, 2);
}

#[test]
fn offset_fetch_of_missing_group_topic_or_partition_is_minus_one_with_none() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.fetch("t", 0),
        (INVALID_OFFSET, String::new(), ErrorCode::None)
    );
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 5, "")]);
    h.commit_errors(t);
    assert_eq!(h.fetch("t", 1).0, INVALID_OFFSET);
    assert_eq!(h.fetch("u", 0).0, INVALID_OFFSET);
    let t = h.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: "other".into(),
        topics: None,
        require_stable: false,
    }));
    match h.reply(t) {
        GroupResponse::OffsetFetch(r) => {
            assert_eq!(r.error, ErrorCode::None);
            assert!(r.topics.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let t = h.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: GROUP.into(),
        topics: None,
        require_stable: false,
    }));
    match h.reply(t) {
        GroupResponse::OffsetFetch(r) => {
            assert_eq!(r.topics.len(), 1);
            assert_eq!(r.topics[0].partitions[0].committed_offset, 5);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn offsets_expire_after_retention_once_the_group_is_empty() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a"]);
    let t = h.commit(&ids[0], generation, &[("t", 0, 5, "")]);
    h.commit_errors(t);
    // While the member is alive its offsets stay, however old.
    for _ in 0..20 {
        h.advance(5000);
        assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::None);
    }
    assert_eq!(h.fetch("t", 0).0, 5);
    h.leave(&[(&ids[0], None)]);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Empty));
    h.advance(59_999);
    assert_eq!(
        h.fetch("t", 0).0,
        5,
        "retention counts from when the group emptied"
    );
    h.advance(5001);
    assert_eq!(h.fetch("t", 0).0, INVALID_OFFSET);
    assert_eq!(
        h.describe(GROUP).group_state,
        "Dead",
        "an empty group with no offsets goes"
    );
    let last = h.appended.last().unwrap();
    let tombstones = records(last).unwrap();
    assert_eq!(tombstones.len(), 2, "the offset and the group");
    assert!(tombstones.iter().all(|r| r.value.is_none()));
}

#[test]
fn simple_group_offsets_expire_from_their_commit_time() {
    let mut h = Harness::new(config());
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 5, "")]);
    h.commit_errors(t);
    h.advance(30_000);
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 1, 6, "")]);
    h.commit_errors(t);
    h.advance(35_000); // t0 + 65 s: partition 0 is past 60 s, partition 1 is not.
    assert_eq!(h.fetch("t", 0).0, INVALID_OFFSET);
    assert_eq!(h.fetch("t", 1).0, 6);
}

#[test]
fn delete_groups_refuses_non_empty_and_unknown_groups() {
    let mut h = Harness::new(config());
    h.stable_group(&["a"]);
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 5, "")]);
    h.commit_errors(t);
    let t = h.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
        retention_time_ms: DEFAULT_RETENTION_TIME,
        group_id: "simple".into(),
        generation_id: UNKNOWN_GENERATION_ID,
        member_id: String::new(),
        group_instance_id: None,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: NO_LEADER_EPOCH,
                committed_metadata: None,
                commit_timestamp: DEFAULT_TIMESTAMP,
            }],
        }],
    }));
    h.commit_errors(t);
    let t = h.send(GroupRequest::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec![GROUP.into(), "simple".into(), "none".into()],
    }));
    let results = match h.reply(t) {
        GroupResponse::DeleteGroups(r) => r.results,
        other => panic!("{other:?}"),
    };
    let errors: Vec<(&str, ErrorCode)> = results
        .iter()
        .map(|r| (r.group_id.as_str(), r.error))
        .collect();
    assert_eq!(
        errors,
        [
            (GROUP, ErrorCode::NonEmptyGroup),
            ("simple", ErrorCode::None),
            ("none", ErrorCode::GroupIdNotFound)
        ]
    );
    assert_eq!(h.describe("simple").group_state, "Dead");
    let tombstones = records(h.appended.last().unwrap()).unwrap();
    assert_eq!(tombstones.len(), 2);
    assert!(tombstones.iter().all(|r| r.value.is_none()));
}

#[test]
fn load_after_a_move_restores_offsets_and_the_group_generation() {
    let mut h = Harness::new(config());
    let (ids, generation) = h.stable_group(&["a", "b"]);
    let t = h.commit(&ids[0], generation, &[("t", 0, 11, "meta")]);
    h.commit_errors(t);
    let partition = h.c.partition_for(GROUP);
    let batches = h.log[&partition].clone();

    // The partition moves: the old coordinator unloads it...
    h.input(GroupInput::Unload { partition });
    assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::NotCoordinator);
    assert_eq!(h.fetch("t", 0).2, ErrorCode::NotCoordinator);

    // ...and a new one loads it.
    let mut moved = Harness::new(GroupConfig {
        offsets_topic_num_partitions: 4,
        ..config()
    });
    moved.input(GroupInput::Unload { partition });
    moved.input(GroupInput::BeginLoad { partition });
    assert_eq!(
        moved.heartbeat(&ids[0], generation),
        ErrorCode::None,
        "Kafka answers a heartbeat to a loading group blindly"
    );
    assert_eq!(moved.fetch("t", 0).2, ErrorCode::CoordinatorLoadInProgress);
    let t = moved.join(join_req("", "c"));
    assert_eq!(
        moved.join_reply(t).error,
        ErrorCode::CoordinatorLoadInProgress
    );
    moved.input(GroupInput::Load { partition, batches });
    assert_eq!(
        moved.fetch("t", 0),
        (11, "meta".to_string(), ErrorCode::None)
    );
    assert_eq!(moved.c.generation(GROUP), Some(generation));
    let d = moved.describe(GROUP);
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.protocol_data, "range");
    let assignments: Vec<(&str, &[u8])> = d
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.member_assignment[..]))
        .collect();
    assert_eq!(
        assignments,
        [(ids[0].as_str(), &b"a"[..]), (ids[1].as_str(), &b"b"[..])]
    );
    assert_eq!(moved.heartbeat(&ids[1], generation), ErrorCode::None);
    let s = moved.sync(&ids[1], generation, &[]);
    assert_eq!(moved.sync_reply(s).assignment, Bytes::from("b"));
}

#[test]
fn unload_answers_parked_requests_with_not_coordinator() {
    let mut h = Harness::new(config());
    let (ids, _) = h.stable_group(&["a"]);
    let (tb, _) = h.join_new("b");
    h.auto_append = false;
    let tc = h.commit(&ids[0], 1, &[("t", 0, 1, "")]);
    let partition = h.c.partition_for(GROUP);
    h.input(GroupInput::Unload { partition });
    assert_eq!(h.join_reply(tb).error, ErrorCode::NotCoordinator);
    assert_eq!(h.commit_errors(tc), [ErrorCode::NotCoordinator]);
    // The append completing later changes nothing and answers nobody twice.
    h.complete_next(Ok(()));
    assert!(h.replies.is_empty());
}

#[test]
fn generation_minus_one_commit_to_an_empty_group_is_taken_whatever_the_member_id() {
    let mut h = Harness::new(config());
    let (ids, _) = h.stable_group(&["a"]);
    h.leave(&[(&ids[0], None)]);
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Empty));
    // The admin client (alterConsumerGroupOffsets) commits with generation -1.
    let t = h.commit("admin-member", UNKNOWN_GENERATION_ID, &[("t", 0, 3, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::None]);
    let t = h.commit("admin-member", 4, &[("t", 0, 3, "")]);
    assert_eq!(h.commit_errors(t), [ErrorCode::UnknownMemberId]);
}

/// A consumer-protocol subscription (version 0) to `topics`, as Kafka's consumer
/// writes it in JoinGroup.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    Bytes::from(b)
}

#[test]
fn stable_consumer_group_expires_offsets_of_topics_nobody_subscribes_to() {
    let mut h = Harness::new(config());
    let mut req = join_req("", "a");
    req.require_known_member_id = false;
    req.protocols = vec![JoinGroupProtocol {
        name: "range".into(),
        metadata: subscription(&["kept"]),
    }];
    let t = h.join(req);
    let r = h.join_reply(t);
    let (a, generation) = (r.member_id, r.generation_id);
    let s = h.sync(&a, generation, &[(&a, "x")]);
    h.sync_reply(s);
    let t = h.commit(&a, generation, &[("kept", 0, 1, ""), ("dropped", 0, 2, "")]);
    h.commit_errors(t);
    for _ in 0..14 {
        h.advance(5000);
        assert_eq!(h.heartbeat(&a, generation), ErrorCode::None);
    }
    assert_eq!(h.c.group_state(GROUP), Some(GroupState::Stable));
    assert_eq!(h.fetch("kept", 0).0, 1, "a subscribed topic's offset stays");
    assert_eq!(
        h.fetch("dropped", 0).0,
        INVALID_OFFSET,
        "expired from its commit"
    );
}

#[test]
fn subscription_topics_parse_kafkas_version_zero_prefix_and_refuse_garbage() {
    use crate::group::classic::subscription_topics;
    assert_eq!(
        subscription_topics(&subscription(&["a", "bb"])),
        Some(vec!["a".to_string(), "bb".to_string()])
    );
    assert_eq!(subscription_topics(b"a"), None);
    assert_eq!(subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
    assert_eq!(subscription_topics(&[0, 0, 0, 0, 0, 1, 0, 5, b'x']), None);
}

#[test]
fn load_skips_records_it_cannot_read_and_groups_of_other_partitions() {
    let mut h = Harness::new(config());
    let t = h.commit("", UNKNOWN_GENERATION_ID, &[("t", 0, 5, "")]);
    h.commit_errors(t);
    let partition = h.c.partition_for(GROUP);
    let mut batches = h.log[&partition].clone();
    // A group that hashes elsewhere, and a record whose key is not Eddy's.
    let other = (0..100)
        .map(|i| format!("other-{i}"))
        .find(|g| offsets_partition_for(g, 4) != partition)
        .unwrap();
    let mut foreign = crate::batch::BatchBuilder::new();
    foreign.push(crate::batch::NewRecord {
        key: Some(Bytes::from_static(b"\x09garbage")),
        value: Some(Bytes::from_static(b"?")),
        headers: Vec::new(),
        timestamp_ms: 0,
    });
    batches.push(foreign.build());
    let mut h2 = Harness::new(config());
    let t = h2.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
        retention_time_ms: DEFAULT_RETENTION_TIME,
        group_id: other.clone(),
        generation_id: UNKNOWN_GENERATION_ID,
        member_id: String::new(),
        group_instance_id: None,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: NO_LEADER_EPOCH,
                committed_metadata: None,
                commit_timestamp: DEFAULT_TIMESTAMP,
            }],
        }],
    }));
    h2.reply(t);
    batches.extend(h2.log[&offsets_partition_for(&other, 4)].iter().cloned());

    let mut moved = GroupCoordinator::new(config(), 1);
    let effects = moved.handle(0, GroupInput::Load { partition, batches });
    assert_eq!(
        effects,
        [GroupEffect::Loaded {
            partition,
            groups: 1,
            offsets: 1,
            skipped_records: 2
        }]
    );
    assert_eq!(moved.generation(GROUP), Some(0));
    assert_eq!(moved.generation(&other), None);
}

fn simple_commit_with(
    partition: i32,
    commit_timestamp: i64,
    retention_time_ms: i64,
) -> GroupRequest {
    GroupRequest::OffsetCommit(OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id: UNKNOWN_GENERATION_ID,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: partition,
                committed_offset: 7,
                committed_leader_epoch: NO_LEADER_EPOCH,
                committed_metadata: None,
                commit_timestamp,
            }],
        }],
    })
}

/// OffsetCommit v2-v4 carry `retention_time_ms` and v1 a per-partition
/// `commit_timestamp`; Kafka honours both (the pre-KIP-211 rules), and so must a reload.
#[test]
fn old_commit_versions_retention_time_and_commit_timestamp_are_honoured() {
    let mut h = Harness::new(config()); // offsets.retention: 60 s, checked every 5 s
    h.advance(100_000);
    let t = h.send(simple_commit_with(0, DEFAULT_TIMESTAMP, 10_000));
    h.commit_errors(t);
    // Committed "70 s ago" by the client's clock: 60 s retention is already past.
    let t = h.send(simple_commit_with(1, 30_000, DEFAULT_RETENTION_TIME));
    h.commit_errors(t);
    let t = h.send(simple_commit_with(
        2,
        DEFAULT_TIMESTAMP,
        DEFAULT_RETENTION_TIME,
    ));
    h.commit_errors(t);
    let partition = h.c.partition_for(GROUP);
    let mut reloaded = GroupCoordinator::new(config(), 1);
    reloaded.handle(
        h.now_ms,
        GroupInput::Load {
            partition,
            batches: h.log[&partition].clone(),
        },
    );
    h.advance(5_000);
    assert_eq!(
        h.fetch("t", 1).0,
        INVALID_OFFSET,
        "expired from its own commit time"
    );
    assert_eq!(h.fetch("t", 0).0, 7, "10 s retention not over yet");
    h.advance(5_000);
    assert_eq!(h.fetch("t", 0).0, INVALID_OFFSET, "10 s retention over");
    assert_eq!(h.fetch("t", 2).0, 7, "the broker's 60 s");
    // The reloaded coordinator applies the same rules from the records.
    let effects = reloaded.tick(h.now_ms + 10_000);
    assert!(!effects.is_empty(), "tombstones for the expired offsets");
    let left: Vec<i64> = reloaded
        .committed_offsets()
        .values()
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(left, [7]);
}

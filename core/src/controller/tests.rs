//! Tests of the controller's broker lifecycle and partition leadership, named by the
//! property they prove.

use super::test_support::*;
use super::*;
use crate::types::Epoch;

#[test]
fn registered_broker_starts_fenced_and_is_unfenced_when_caught_up() {
    let mut c = Cluster::new(ControllerConfig::default());
    c.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(1),
        incarnation: 5,
        listeners: Vec::new(),
        rack: Some("r1".to_string()),
    });
    assert!(c.image.broker(NodeId(1)).unwrap().fenced);
    assert_eq!(c.registered_at[&NodeId(1)], (5, 1));
    // Its image has not reached its own registration (entry 1) yet.
    assert_eq!(c.heartbeat_at(1, 5, 0), Ok(HeartbeatState { fenced: true }));
    assert_eq!(c.heartbeat(1, 5), Ok(HeartbeatState { fenced: false }));
    let b = c.image.broker(NodeId(1)).unwrap();
    assert!(!b.fenced);
    assert_eq!(b.rack.as_deref(), Some("r1"));
}

/// KRaft's rule (KIP-631): a broker is unfenced only once the metadata offset its
/// heartbeat reports has reached the entry that registered its current incarnation. A
/// restarted broker whose image still stops before that entry may hold its previous
/// incarnation's view of its partitions (leaderships and ISR places it has lost).
#[test]
fn heartbeat_with_a_stale_metadata_offset_stays_fenced() {
    let mut c = three_brokers();
    c.create("t", 3, 3).expect("created");
    let before_restart = c.log_end;
    c.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(2),
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    let registered = c.log_end;
    assert!(registered > before_restart);
    assert!(c.image.broker(NodeId(2)).unwrap().fenced);
    // Heartbeats from an image replayed up to before the registration: still fenced.
    for offset in [0, before_restart, registered - 1] {
        assert_eq!(
            c.heartbeat_at(2, 2, offset),
            Ok(HeartbeatState { fenced: true }),
            "offset {offset}"
        );
        assert!(c.image.broker(NodeId(2)).unwrap().fenced);
    }
    // At the registration's entry: unfenced.
    assert_eq!(
        c.heartbeat_at(2, 2, registered),
        Ok(HeartbeatState { fenced: false })
    );
    assert!(!c.image.broker(NodeId(2)).unwrap().fenced);
}

/// A new controller learns where the registrations it did not decide were committed;
/// one that knows no index for a broker's incarnation keeps it fenced.
#[test]
fn new_controller_applies_the_rule_with_committed_registration_offsets() {
    let mut c = three_brokers();
    c.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(3),
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    let registered = c.log_end;
    c.failover();
    assert_eq!(
        c.heartbeat_at(3, 2, registered - 1),
        Ok(HeartbeatState { fenced: true })
    );
    assert_eq!(
        c.heartbeat_at(3, 2, registered + 5),
        Ok(HeartbeatState { fenced: false })
    );
    // A controller told nothing keeps a registered broker fenced whatever it reports.
    let mut fresh = Cluster::new(ControllerConfig::default());
    fresh.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(1),
        incarnation: 1,
        listeners: Vec::new(),
        rack: None,
    });
    let mut blind = Controller::new(ControllerConfig::default());
    let out = blind.handle(
        0,
        &fresh.image,
        ControllerInput::BrokerHeartbeat {
            broker: NodeId(1),
            incarnation: 1,
            metadata_offset: u64::MAX,
        },
    );
    assert!(out.records.is_empty(), "{:?}", out.records);
}

#[test]
fn heartbeats_from_unknown_or_other_incarnations_are_refused() {
    let mut c = three_brokers();
    assert_eq!(c.heartbeat(9, 1), Err(ErrorCode::BrokerIdNotRegistered));
    assert_eq!(c.heartbeat(1, 0), Err(ErrorCode::StaleBrokerEpoch));
    assert_eq!(
        c.heartbeat(1, 2),
        Err(ErrorCode::StaleBrokerEpoch),
        "must register first"
    );
    // A delayed registration of an older run does not fence the live incarnation.
    c.register(1, 3);
    let reply = c.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(1),
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    assert!(matches!(
        reply,
        ControllerReply::BrokerRegistration {
            result: Err(ErrorCode::StaleBrokerEpoch),
            ..
        }
    ));
    assert!(!c.image.broker(NodeId(1)).unwrap().fenced);
    // A retried registration of the live incarnation changes nothing.
    let records = c.handle_records(ControllerInput::BrokerRegistration {
        broker: NodeId(1),
        incarnation: 3,
        listeners: Vec::new(),
        rack: None,
    });
    assert!(records.is_empty());
}

#[test]
fn heartbeat_timeout_fences_and_moves_leadership_to_another_isr_member_with_leader_epoch_bumped() {
    let mut c = three_brokers();
    c.create("t", 3, 3).unwrap();
    let led_by_1: Vec<u32> = (0..3)
        .filter(|&p| c.state("t", p).leader == Some(NodeId(1)))
        .collect();
    assert_eq!(led_by_1.len(), 1);
    let before = c.state("t", led_by_1[0]);

    // Broker 1 goes silent; 2 and 3 heartbeat on. Nothing happens within the timeout.
    run_until(&mut c, TIMEOUT_MS, &[(2, 1), (3, 1)]);
    assert!(!c.image.broker(NodeId(1)).unwrap().fenced);
    run_until(&mut c, TIMEOUT_MS + 1_000, &[(2, 1), (3, 1)]);
    assert!(c.image.broker(NodeId(1)).unwrap().fenced);

    let after = c.state("t", led_by_1[0]);
    let expected_leader = before.replicas[1];
    assert_eq!(
        after.leader,
        Some(expected_leader),
        "the next replica in order leads"
    );
    assert_eq!(after.leader_incarnation, Some(1));
    assert_eq!(after.leader_epoch, Epoch(before.leader_epoch.0 + 1));
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    assert!(
        !after.isr.contains(&NodeId(1)),
        "fenced brokers leave the ISR"
    );
    for p in 0..3 {
        let s = c.state("t", p);
        assert!(!s.isr.contains(&NodeId(1)));
        assert_ne!(s.leader, Some(NodeId(1)));
    }
}

#[test]
fn last_isr_member_fenced_leaves_partition_leaderless_with_isr_kept_and_it_returns_as_leader_only_at_its_registered_incarnation(
) {
    let mut c = three_brokers();
    c.create("t", 1, 2).unwrap();
    let s = c.state("t", 0);
    let (leader, follower) = (s.replicas[0], s.replicas[1]);
    // The leader shrinks the ISR to itself (its follower lags).
    let s = c
        .alter(AlterPartition {
            partition: TopicPartition::new("t", 0),
            leader,
            leader_epoch: s.leader_epoch,
            partition_epoch: s.partition_epoch,
            new_isr: vec![leader],
            added: Vec::new(),
        })
        .unwrap();
    assert_eq!(s.isr, vec![leader]);

    // The leader dies: the follower is not in the ISR, so nobody may lead.
    let others: Vec<(u32, u64)> = (1..=3).filter(|&b| b != leader.0).map(|b| (b, 1)).collect();
    run_until(&mut c, TIMEOUT_MS + 1_000, &others);
    let s = c.state("t", 0);
    assert_eq!(s.leader, None);
    assert_eq!(s.leader_incarnation, None);
    assert_eq!(s.isr, vec![leader], "KIP-841: the last ISR member stays");
    assert_eq!(s.leader_epoch, Epoch(1));
    assert_ne!(s.leader, Some(follower));

    // It restarts: registered at incarnation 2 it is fenced, and still may not lead.
    c.handle(ControllerInput::BrokerRegistration {
        broker: leader,
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    assert_eq!(c.state("t", 0).leader, None);
    assert_eq!(c.state("t", 0).isr, vec![leader]);
    // Once caught up it leads again, named with the incarnation it has now.
    c.heartbeat(leader.0, 2).unwrap();
    let s = c.state("t", 0);
    assert_eq!(s.leader, Some(leader));
    assert_eq!(s.leader_incarnation, Some(2));
    assert_eq!(s.leader_epoch, Epoch(2));
}

#[test]
fn restarted_broker_is_not_leader_on_the_old_state() {
    let mut c = three_brokers();
    c.create("t", 3, 3).unwrap();
    let led: Vec<u32> = (0..3)
        .filter(|&p| c.state("t", p).leader == Some(NodeId(2)))
        .collect();
    let before: Vec<PartitionState> = led.iter().map(|&p| c.state("t", p)).collect();
    // Broker 2 restarts quickly, within its session: the new incarnation fences the old.
    c.now_ms = 1_000;
    c.handle(ControllerInput::BrokerRegistration {
        broker: NodeId(2),
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    for (&p, before) in led.iter().zip(&before) {
        let s = c.state("t", p);
        assert_ne!(s.leader, Some(NodeId(2)));
        assert!(
            !s.isr.contains(&NodeId(2)),
            "its old ISR memberships are void (KIP-903)"
        );
        assert!(s.leader_epoch > before.leader_epoch);
    }
    for p in 0..3 {
        assert!(!c.state("t", p).isr.contains(&NodeId(2)));
    }
    // Caught up again, it is a follower; the leader must re-admit it at incarnation 2.
    c.heartbeat(2, 2).unwrap();
    let s = c.state("t", led[0]);
    assert_ne!(s.leader, Some(NodeId(2)));
    let mut new_isr = s.isr.clone();
    new_isr.push(NodeId(2));
    let request = AlterPartition {
        partition: TopicPartition::new("t", led[0]),
        leader: s.leader.unwrap(),
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr,
        added: vec![(NodeId(2), 1)],
    };
    assert_eq!(
        c.alter(request.clone()),
        Err(ErrorCode::IneligibleReplica),
        "seen at its old incarnation"
    );
    let request = AlterPartition {
        added: vec![(NodeId(2), 2)],
        ..request
    };
    assert!(c.alter(request).unwrap().isr.contains(&NodeId(2)));
}

#[test]
fn stale_alter_partition_is_refused_with_each_error_code() {
    let mut c = three_brokers();
    c.create("t", 1, 3).unwrap();
    let s = c.state("t", 0);
    let leader = s.leader.unwrap();
    let follower = s.replicas[1];
    let shrink = AlterPartition {
        partition: TopicPartition::new("t", 0),
        leader,
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr: s.isr.iter().copied().filter(|&b| b != follower).collect(),
        added: Vec::new(),
    };
    let cases = [
        (
            AlterPartition {
                partition: TopicPartition::new("nope", 0),
                ..shrink.clone()
            },
            ErrorCode::UnknownTopicOrPartition,
        ),
        (
            AlterPartition {
                leader: follower,
                ..shrink.clone()
            },
            ErrorCode::NotLeaderOrFollower,
        ),
        (
            AlterPartition {
                leader_epoch: Epoch(7),
                ..shrink.clone()
            },
            ErrorCode::FencedLeaderEpoch,
        ),
        (
            AlterPartition {
                partition_epoch: 7,
                ..shrink.clone()
            },
            ErrorCode::InvalidUpdateVersion,
        ),
        (
            AlterPartition {
                new_isr: vec![follower],
                ..shrink.clone()
            },
            ErrorCode::InvalidRequest,
        ),
        (
            AlterPartition {
                new_isr: vec![leader, NodeId(9)],
                ..shrink.clone()
            },
            ErrorCode::InvalidRequest,
        ),
    ];
    for (request, error) in cases {
        assert_eq!(c.alter(request.clone()), Err(error), "{request:?}");
    }
    assert_eq!(c.state("t", 0), s, "refusals change nothing");

    // Accepted: the partition epoch bumps, the leader epoch does not.
    let shrunk = c.alter(shrink.clone()).unwrap();
    assert_eq!(shrunk.partition_epoch, s.partition_epoch + 1);
    assert_eq!(shrunk.leader_epoch, s.leader_epoch);
    assert_eq!(c.state("t", 0), shrunk);
    // The same request again is stale now.
    assert_eq!(c.alter(shrink), Err(ErrorCode::InvalidUpdateVersion));

    // Re-adding a member requires it unfenced at the incarnation the leader names.
    let grow = AlterPartition {
        partition: TopicPartition::new("t", 0),
        leader,
        leader_epoch: shrunk.leader_epoch,
        partition_epoch: shrunk.partition_epoch,
        new_isr: s.isr.clone(),
        added: Vec::new(),
    };
    assert_eq!(
        c.alter(grow.clone()),
        Err(ErrorCode::IneligibleReplica),
        "no incarnation named"
    );
    let stale_incarnation = AlterPartition {
        added: vec![(follower, 0)],
        ..grow.clone()
    };
    assert_eq!(
        c.alter(stale_incarnation),
        Err(ErrorCode::IneligibleReplica)
    );
    let ok = AlterPartition {
        added: vec![(follower, 1)],
        ..grow.clone()
    };
    // A fenced member is refused even at its own incarnation (KIP-841).
    let mut fenced = c.image.clone();
    fenced.apply(&MetadataRecord::FenceBroker {
        broker: follower,
        incarnation: 1,
    });
    let out = c.controller.clone().handle(
        c.now_ms,
        &fenced,
        ControllerInput::AlterPartition(ok.clone()),
    );
    assert!(matches!(
        out.replies[..],
        [ControllerReply::AlterPartition {
            result: Err(ErrorCode::IneligibleReplica),
            ..
        }]
    ));
    assert_eq!(c.alter(ok).unwrap().isr, s.isr);
}

#[test]
fn unclean_election_only_when_enabled_and_the_record_says_so() {
    let mut c = three_brokers();
    c.create("t", 1, 2).unwrap();
    let s = c.state("t", 0);
    let (leader, follower) = (s.replicas[0], s.replicas[1]);
    c.alter(AlterPartition {
        partition: TopicPartition::new("t", 0),
        leader,
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr: vec![leader],
        added: Vec::new(),
    })
    .unwrap();
    let others: Vec<(u32, u64)> = (1..=3).filter(|&b| b != leader.0).map(|b| (b, 1)).collect();
    run_until(&mut c, TIMEOUT_MS + 1_000, &others);
    assert_eq!(c.state("t", 0).leader, None, "off by default");

    let records = c.handle_records(ControllerInput::AlterConfigs {
        topic: "t".to_string(),
        configs: vec![(
            "unclean.leader.election.enable".to_string(),
            Some("true".to_string()),
        )],
    });
    let elected = records.iter().find_map(|r| match r {
        MetadataRecord::PartitionChange(PartitionChange {
            leader: Some(l), ..
        }) => Some(l.clone()),
        _ => None,
    });
    assert_eq!(
        elected,
        Some(LeaderChange::Elected {
            leader: follower,
            incarnation: 1,
            unclean: true
        })
    );
    let s = c.state("t", 0);
    assert_eq!(s.leader, Some(follower));
    assert_eq!(
        s.isr,
        vec![follower],
        "the unclean leader is alone in the ISR"
    );
}

#[test]
fn preferred_leader_election_moves_leadership_back_to_the_first_replica() {
    let mut c = three_brokers();
    c.create("t", 1, 3).unwrap();
    let tp = TopicPartition::new("t", 0);
    let preferred = c.state("t", 0).replicas[0];
    let elect = || ControllerInput::ElectLeaders {
        partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 9)],
    };
    let reply = c.handle(elect());
    assert_eq!(
        reply,
        ControllerReply::ElectLeaders {
            results: vec![
                (tp.clone(), Err(ErrorCode::ElectionNotNeeded)),
                (
                    TopicPartition::new("t", 9),
                    Err(ErrorCode::UnknownTopicOrPartition)
                ),
            ]
        }
    );
    // The preferred leader restarts: leadership moves away and it leaves the ISR.
    c.handle(ControllerInput::BrokerRegistration {
        broker: preferred,
        incarnation: 2,
        listeners: Vec::new(),
        rack: None,
    });
    c.heartbeat(preferred.0, 2).unwrap();
    assert_ne!(c.image.leader_of(&tp), Some(preferred));
    let reply = c.handle(elect());
    assert!(matches!(
        &reply,
        ControllerReply::ElectLeaders { results } if results[0].1 == Err(ErrorCode::PreferredLeaderNotAvailable)
    ));
    // Back in the ISR, it can lead again.
    let s = c.state("t", 0);
    let mut new_isr = s.isr.clone();
    new_isr.push(preferred);
    c.alter(AlterPartition {
        partition: tp.clone(),
        leader: s.leader.unwrap(),
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr,
        added: vec![(preferred, 2)],
    })
    .unwrap();
    let before = c.state("t", 0);
    let reply = c.handle(elect());
    assert!(matches!(&reply, ControllerReply::ElectLeaders { results } if results[0].1 == Ok(())));
    let after = c.state("t", 0);
    assert_eq!(after.leader, Some(preferred));
    assert_eq!(after.leader_incarnation, Some(2));
    assert_eq!(after.leader_epoch, Epoch(before.leader_epoch.0 + 1));
    assert_eq!(after.isr, before.isr);
}

#[test]
fn unregistered_broker_loses_its_roles() {
    let mut c = three_brokers();
    c.create("t", 3, 2).unwrap();
    let reply = c.handle(ControllerInput::UnregisterBroker { broker: NodeId(1) });
    assert!(matches!(
        reply,
        ControllerReply::UnregisterBroker { result: Ok(()), .. }
    ));
    assert!(c.image.broker(NodeId(1)).is_none());
    for (_, s) in c.image.partitions() {
        assert_ne!(s.leader, Some(NodeId(1)));
        assert!(!s.isr.contains(&NodeId(1)) || s.isr.len() == 1);
    }
    let reply = c.handle(ControllerInput::UnregisterBroker { broker: NodeId(1) });
    assert!(matches!(
        reply,
        ControllerReply::UnregisterBroker {
            result: Err(ErrorCode::BrokerIdNotRegistered),
            ..
        }
    ));
}

#[test]
fn a_new_controller_gives_every_broker_a_fresh_session() {
    let mut c = three_brokers();
    c.create("t", 3, 3).unwrap();
    // Long after the brokers' last heartbeat, a new controller takes over.
    let late_ms = 10 * TIMEOUT_MS;
    c.failover();
    assert!(c.tick(late_ms).is_empty(), "nobody is fenced at once");
    assert!(
        c.tick(late_ms + TIMEOUT_MS).is_empty(),
        "nor within one session timeout"
    );
    let fenced = c.tick(late_ms + TIMEOUT_MS + 1);
    assert!(fenced
        .iter()
        .any(|r| matches!(r, MetadataRecord::FenceBroker { .. })));
}

#[test]
fn a_new_controller_finishes_what_its_predecessor_left_half_done() {
    let mut c = three_brokers();
    c.create("t", 3, 3).unwrap();
    // The old controller's FenceBroker committed, the partition changes after it did not
    // (the shell split the decision into several entries).
    c.commit(&[MetadataRecord::FenceBroker {
        broker: NodeId(1),
        incarnation: 1,
    }]);
    c.failover();
    assert!(c
        .image
        .partitions()
        .any(|(_, s)| s.leader == Some(NodeId(1))));
    c.tick(c.now_ms);
    for (_, s) in c.image.partitions() {
        assert_ne!(s.leader, Some(NodeId(1)));
        assert!(!s.isr.contains(&NodeId(1)));
    }
}

#[test]
fn replicas_of_changed_partitions_are_told_their_new_state() {
    use crate::message::ControllerMessage;
    let mut c = three_brokers();
    c.create("t", 2, 2).unwrap();
    let s = c.state("t", 1);
    let request = AlterPartition {
        partition: TopicPartition::new("t", 1),
        leader: s.leader.unwrap(),
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr: vec![s.leader.unwrap()],
        added: Vec::new(),
    };
    let out = c.controller.handle(
        c.now_ms,
        &c.image,
        ControllerInput::AlterPartition(request.clone()),
    );
    c.apply(out.clone());
    let shrunk = c.state("t", 1);
    let updates = c.image.partition_updates(&out.records);
    let expected: Vec<(NodeId, ControllerMessage)> = s
        .replicas
        .iter()
        .map(|&r| {
            let states = vec![(TopicPartition::new("t", 1), shrunk.clone())];
            (r, ControllerMessage::PartitionStates(states))
        })
        .collect();
    assert_eq!(updates, expected);
    assert_eq!(
        out.replies[0].to_broker_message(),
        Some((
            request.leader,
            ControllerMessage::AlterPartitionResponse {
                partition: request.partition.clone(),
                request,
                result: Ok(shrunk),
            }
        ))
    );
}

#[test]
fn isr_members_fenced_together_leave_the_leader_as_last_member() {
    let mut c = three_brokers();
    c.create("t", 1, 3).unwrap();
    let s = c.state("t", 0);
    let (leader, second, third) = (s.replicas[0], s.replicas[1], s.replicas[2]);
    // The third replica falls out of the ISR; then the other two go silent together.
    c.alter(AlterPartition {
        partition: TopicPartition::new("t", 0),
        leader,
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        new_isr: vec![leader, second],
        added: Vec::new(),
    })
    .unwrap();
    run_until(&mut c, TIMEOUT_MS + 1_000, &[(third.0, 1)]);
    let fences = c
        .log
        .iter()
        .filter(|r| matches!(r, MetadataRecord::FenceBroker { .. }))
        .count();
    assert_eq!(fences, 2);
    let s = c.state("t", 0);
    assert_eq!(s.leader, None, "the live replica is not in the ISR");
    assert_eq!(
        s.isr,
        vec![leader],
        "the leader holds everything either had"
    );
}

#[test]
fn a_controlled_shutdown_moves_leadership_away_and_keeps_the_broker_fenced() {
    let mut c = three_brokers();
    c.create("t", 6, 3).unwrap();
    let led_by_1: Vec<u32> = (0..6)
        .filter(|&p| c.state("t", p).leader == Some(NodeId(1)))
        .collect();
    assert!(!led_by_1.is_empty());
    let reply = c.handle(ControllerInput::ControlledShutdown {
        broker: NodeId(1),
        incarnation: 1,
    });
    assert!(
        matches!(
            reply,
            ControllerReply::ControlledShutdown { result: Ok(()), .. }
        ),
        "{reply:?}"
    );
    assert!(c.committed.broker(NodeId(1)).unwrap().fenced);
    for p in 0..6 {
        let s = c.state("t", p);
        assert_ne!(s.leader, Some(NodeId(1)), "partition {p}: {s:?}");
        assert!(s.leader.is_some(), "partition {p} has a leader: {s:?}");
        assert!(!s.isr.contains(&NodeId(1)), "partition {p}: {s:?}");
    }
    // Still heartbeating while it flushes: stays fenced.
    assert_eq!(c.heartbeat(1, 1), Ok(HeartbeatState { fenced: true }));
    assert!(c.image.broker(NodeId(1)).unwrap().fenced);
    // A stale incarnation's request is refused; the next start comes back as usual.
    let stale = c.handle(ControllerInput::ControlledShutdown {
        broker: NodeId(2),
        incarnation: 0,
    });
    assert!(matches!(
        stale,
        ControllerReply::ControlledShutdown {
            result: Err(ErrorCode::StaleBrokerEpoch),
            ..
        }
    ));
    c.register(1, 2);
    assert!(!c.image.broker(NodeId(1)).unwrap().fenced);
}

#[test]
fn a_broker_following_the_log_is_given_exactly_the_hosted_partitions_that_changed() {
    let mut c = three_brokers();
    for b in 1..=3 {
        c.heartbeat(b, 1).expect("registered");
    }
    c.create("t", 3, 2).expect("created");
    let mut given = std::collections::BTreeMap::new();
    let first = c.committed.hosted_partition_changes(NodeId(1), &mut given);
    assert_eq!(first, c.committed.partitions_hosted_by(NodeId(1)));
    assert!(!first.is_empty());
    assert!(c
        .committed
        .hosted_partition_changes(NodeId(1), &mut given)
        .is_empty());
    // Broker 2 restarts: partitions it shared with broker 1 change (ISR or leader).
    let before = c.committed.partitions_hosted_by(NodeId(1));
    c.register(2, 2);
    let changed = c.committed.hosted_partition_changes(NodeId(1), &mut given);
    let after = c.committed.partitions_hosted_by(NodeId(1));
    let expected: Vec<_> = after
        .iter()
        .filter(|entry| !before.contains(entry))
        .cloned()
        .collect();
    assert!(!changed.is_empty());
    assert_eq!(changed, expected);
    assert_eq!(given.into_iter().collect::<Vec<_>>(), after);
}

#[test]
fn the_first_active_controller_writes_its_cluster_id_and_later_ones_keep_it() {
    let config = |id: &str| ControllerConfig {
        cluster_id: Some(id.to_string()),
        ..ControllerConfig::default()
    };
    let mut c = Cluster::new(config("first"));
    let records = c.tick(0);
    assert_eq!(
        records.first(),
        Some(&MetadataRecord::ClusterId { id: "first".into() }),
        "{records:?}"
    );
    assert_eq!(c.committed.cluster_id(), Some("first"));
    assert!(c.tick(10).is_empty(), "written once");
    // A successor with another proposal (its own meta.properties) writes nothing.
    c.failover();
    c.controller = Controller::new(config("second"));
    assert!(!c.tick(20).contains(&MetadataRecord::ClusterId {
        id: "second".into()
    }));
    assert_eq!(c.committed.cluster_id(), Some("first"));
    // A stray later record does not replace it, and snapshots carry it.
    c.commit(&[MetadataRecord::ClusterId { id: "third".into() }]);
    assert_eq!(c.committed.cluster_id(), Some("first"));
    let restored = MetadataImage::from_records(c.committed.snapshot().iter());
    assert_eq!(restored.cluster_id(), Some("first"));
    // Without a proposal, none is written.
    let mut quiet = Cluster::new(ControllerConfig::default());
    assert!(quiet.tick(0).is_empty());
    assert_eq!(quiet.committed.cluster_id(), None);
}

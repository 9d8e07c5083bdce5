//! Tests of the controller, named by the property they prove. A [`Cluster`] drives one
//! [`Controller`] and applies its records at once, as if each committed immediately.

use super::*;
use crate::types::Epoch;

/// `broker.session.timeout.ms`'s default.
const TIMEOUT_MS: u64 = 9_000;

pub(super) struct Cluster {
    pub(super) controller: Controller,
    pub(super) image: MetadataImage,
    pub(super) now_ms: u64,
    /// Every record applied, in order: the metadata log.
    pub(super) log: Vec<MetadataRecord>,
}

impl Cluster {
    pub(super) fn new(config: ControllerConfig) -> Cluster {
        Cluster {
            controller: Controller::new(config),
            image: MetadataImage::new(),
            now_ms: 0,
            log: Vec::new(),
        }
    }

    fn apply(&mut self, out: ControllerOutput) -> Vec<ControllerReply> {
        for r in &out.records {
            // Through the bytes, as the log carries them.
            let decoded = MetadataRecord::decode(&r.encode()).expect("a record decodes");
            assert_eq!(&decoded, r);
            self.image.apply(&decoded);
            self.log.push(decoded);
        }
        out.replies
    }

    pub(super) fn handle(&mut self, input: ControllerInput) -> ControllerReply {
        let out = self.controller.handle(self.now_ms, &self.image, input);
        let mut replies = self.apply(out);
        assert_eq!(replies.len(), 1, "one reply per request");
        replies.pop().expect("one reply")
    }

    /// Handles and returns the records that the request produced.
    fn handle_records(&mut self, input: ControllerInput) -> Vec<MetadataRecord> {
        let before = self.log.len();
        self.handle(input);
        self.log[before..].to_vec()
    }

    pub(super) fn tick(&mut self, now_ms: u64) -> Vec<MetadataRecord> {
        self.now_ms = now_ms;
        let before = self.log.len();
        let out = self.controller.tick(now_ms, &self.image);
        assert!(self.apply(out).is_empty(), "ticks send no replies");
        self.log[before..].to_vec()
    }

    pub(super) fn register(&mut self, broker: u32, incarnation: u64) {
        let reply = self.handle(ControllerInput::BrokerRegistration {
            broker: NodeId(broker),
            incarnation,
            listeners: vec![format!("PLAINTEXT://b{broker}:9092")],
            rack: None,
        });
        assert!(
            matches!(
                reply,
                ControllerReply::BrokerRegistration { result: Ok(()), .. }
            ),
            "{reply:?}"
        );
        let fenced = self.heartbeat(broker, incarnation);
        assert_eq!(fenced, Ok(HeartbeatState { fenced: false }));
    }

    /// A caught-up heartbeat; the reply's result.
    pub(super) fn heartbeat(
        &mut self,
        broker: u32,
        incarnation: u64,
    ) -> Result<HeartbeatState, ErrorCode> {
        match self.handle(ControllerInput::BrokerHeartbeat {
            broker: NodeId(broker),
            incarnation,
            caught_up: true,
        }) {
            ControllerReply::BrokerHeartbeat { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn create(
        &mut self,
        name: &str,
        partitions: u32,
        rf: u16,
    ) -> Result<TopicId, ErrorCode> {
        match self.handle(ControllerInput::CreateTopic {
            name: name.to_string(),
            num_partitions: Some(partitions),
            replication_factor: Some(rf),
            configs: Vec::new(),
        }) {
            ControllerReply::CreateTopic { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }

    fn state(&self, topic: &str, p: u32) -> PartitionState {
        self.image
            .partition(&TopicPartition::new(topic, p))
            .expect("partition exists")
            .clone()
    }

    fn alter(&mut self, request: AlterPartition) -> Result<PartitionState, ErrorCode> {
        match self.handle(ControllerInput::AlterPartition(request)) {
            ControllerReply::AlterPartition { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }
}

fn n(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

/// Three brokers at incarnation 1, all caught up.
fn three_brokers() -> Cluster {
    let mut c = Cluster::new(ControllerConfig::default());
    for b in 1..=3 {
        c.register(b, 1);
    }
    c
}

/// Keeps `live` brokers' sessions alive until `until_ms`, in heartbeat-interval steps,
/// ticking as it goes.
fn run_until(c: &mut Cluster, until_ms: u64, live: &[(u32, u64)]) {
    while c.now_ms < until_ms {
        let now = (c.now_ms + 1_000).min(until_ms);
        c.now_ms = now;
        for &(b, i) in live {
            c.heartbeat(b, i)
                .expect("a live broker's heartbeat is answered");
        }
        c.tick(now);
    }
}

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
    let reply = c.handle(ControllerInput::BrokerHeartbeat {
        broker: NodeId(1),
        incarnation: 5,
        caught_up: false,
    });
    assert!(matches!(
        reply,
        ControllerReply::BrokerHeartbeat {
            result: Ok(HeartbeatState { fenced: true }),
            ..
        }
    ));
    assert_eq!(c.heartbeat(1, 5), Ok(HeartbeatState { fenced: false }));
    let b = c.image.broker(NodeId(1)).unwrap();
    assert!(!b.fenced);
    assert_eq!(b.rack.as_deref(), Some("r1"));
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
fn registration_then_topic_creation_assigns_evenly() {
    let mut c = three_brokers();
    assert_eq!(c.create("t", 6, 2), Ok(TopicId(1)));
    assert_eq!(
        c.create("u", 1, 3),
        Ok(TopicId(2)),
        "topic ids are a counter"
    );
    let mut leaders = [0; 4];
    let mut hosted = [0; 4];
    for p in 0..6 {
        let s = c.state("t", p);
        assert_eq!(s.leader, Some(s.replicas[0]), "the first replica leads");
        assert_eq!(s.isr, s.replicas, "every replica starts in the ISR");
        assert_eq!(s.leader_incarnation, Some(1));
        assert_eq!((s.leader_epoch, s.partition_epoch), (Epoch(0), 0));
        leaders[s.replicas[0].0 as usize] += 1;
        for r in &s.replicas {
            hosted[r.0 as usize] += 1;
        }
    }
    assert_eq!(&leaders[1..], &[2, 2, 2]);
    assert_eq!(&hosted[1..], &[4, 4, 4]);
    assert_eq!(c.image.topic("t").unwrap().partition_count, 6);
    assert_eq!(c.image.partitions_hosted_by(NodeId(1)).len(), 4 + 1);
}

#[test]
fn create_topic_takes_the_configured_defaults() {
    let config = ControllerConfig {
        num_partitions: 4,
        default_replication_factor: 3,
        ..ControllerConfig::default()
    };
    let mut c = Cluster::new(config);
    for b in 1..=3 {
        c.register(b, 1);
    }
    c.handle(ControllerInput::CreateTopic {
        name: "d".to_string(),
        num_partitions: None,
        replication_factor: None,
        configs: vec![("retention.ms".to_string(), "1000".to_string())],
    });
    let t = c.image.topic("d").unwrap();
    assert_eq!(t.partition_count, 4);
    assert_eq!(
        t.configs.get("retention.ms").map(String::as_str),
        Some("1000")
    );
    assert_eq!(c.state("d", 3).replicas.len(), 3);
}

#[test]
fn create_topic_refusals_carry_kafkas_error_codes() {
    let mut c = three_brokers();
    c.create("t", 1, 1).unwrap();
    assert_eq!(c.create("t", 1, 1), Err(ErrorCode::TopicAlreadyExists));
    assert_eq!(
        c.create("x", 1, 4),
        Err(ErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(
        c.create("x", 1, 0),
        Err(ErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(c.create("x", 0, 1), Err(ErrorCode::InvalidPartitions));
    assert_eq!(
        c.create("x", MAX_NEW_PARTITIONS + 1, 1),
        Err(ErrorCode::InvalidPartitions)
    );
    let long = "a".repeat(250);
    for bad in ["", ".", "..", "a b", "tópico", "a/b", long.as_str()] {
        assert_eq!(
            c.create(bad, 1, 1),
            Err(ErrorCode::InvalidTopicException),
            "{bad:?}"
        );
    }
    for good in ["a.b_c-D9", "...", &"a".repeat(249)] {
        assert!(c.create(good, 1, 1).is_ok(), "{good:?}");
    }
    let reply = c.handle(ControllerInput::CreateTopic {
        name: "y".to_string(),
        num_partitions: Some(1),
        replication_factor: Some(1),
        configs: vec![("retention.ms".to_string(), "soon".to_string())],
    });
    assert!(matches!(
        reply,
        ControllerReply::CreateTopic {
            result: Err(ErrorCode::InvalidConfig),
            ..
        }
    ));
    // Fenced brokers do not count towards the replication factor.
    run_until(&mut c, TIMEOUT_MS + 2_000, &[(1, 1), (2, 1)]);
    assert!(c.image.broker(NodeId(3)).unwrap().fenced);
    assert_eq!(
        c.create("z", 1, 3),
        Err(ErrorCode::InvalidReplicationFactor)
    );
    assert!(c.create("z", 1, 2).is_ok());
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
fn delete_topic_removes_its_partitions_and_its_id_is_not_reused() {
    let mut c = three_brokers();
    c.create("t", 4, 2).unwrap();
    c.create("u", 1, 1).unwrap();
    let reply = c.handle(ControllerInput::DeleteTopic {
        name: "t".to_string(),
    });
    assert!(matches!(
        reply,
        ControllerReply::DeleteTopic { result: Ok(()), .. }
    ));
    assert!(c.image.topic("t").is_none());
    assert_eq!(c.image.partitions_of_topic("t").count(), 0);
    assert_eq!(c.image.partition_count(), 1);
    assert!(c.image.partitions().all(|(tp, _)| tp.topic == "u"));
    let reply = c.handle(ControllerInput::DeleteTopic {
        name: "t".to_string(),
    });
    assert!(matches!(
        reply,
        ControllerReply::DeleteTopic {
            result: Err(ErrorCode::UnknownTopicOrPartition),
            ..
        }
    ));
    assert_eq!(
        c.create("t", 1, 1),
        Ok(TopicId(3)),
        "a new topic of the same name is a new topic"
    );
}

#[test]
fn create_partitions_grows_a_topic_with_its_replication_factor() {
    let mut c = three_brokers();
    c.create("t", 2, 2).unwrap();
    let grow = |count| ControllerInput::CreatePartitions {
        topic: "t".to_string(),
        count,
    };
    let reply = c.handle(grow(5));
    assert!(matches!(
        reply,
        ControllerReply::CreatePartitions { result: Ok(()), .. }
    ));
    assert_eq!(c.image.topic("t").unwrap().partition_count, 5);
    assert_eq!(c.state("t", 4).replicas.len(), 2);
    for (count, error) in [
        (5, ErrorCode::InvalidPartitions),
        (3, ErrorCode::InvalidPartitions),
    ] {
        let reply = c.handle(grow(count));
        assert_eq!(
            reply,
            ControllerReply::CreatePartitions {
                topic: "t".to_string(),
                result: Err(error)
            }
        );
    }
    let reply = c.handle(ControllerInput::CreatePartitions {
        topic: "nope".to_string(),
        count: 3,
    });
    assert!(matches!(
        reply,
        ControllerReply::CreatePartitions {
            result: Err(ErrorCode::UnknownTopicOrPartition),
            ..
        }
    ));
}

#[test]
fn alter_configs_sets_and_deletes_per_topic_keys() {
    let mut c = three_brokers();
    c.create("t", 1, 1).unwrap();
    let alter = |configs: Vec<(&str, Option<&str>)>| ControllerInput::AlterConfigs {
        topic: "t".to_string(),
        configs: configs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect(),
    };
    let result = |reply| match reply {
        ControllerReply::AlterConfigs { result, .. } => result,
        other => panic!("{other:?}"),
    };
    let r = c.handle(alter(vec![
        ("retention.ms", Some("60000")),
        ("cleanup.policy", Some("delete")),
    ]));
    assert_eq!(result(r), Ok(()));
    assert_eq!(c.image.topic("t").unwrap().configs.len(), 2);
    let r = c.handle(alter(vec![("retention.ms", None)]));
    assert_eq!(result(r), Ok(()));
    assert_eq!(c.image.topic("t").unwrap().configs.len(), 1);
    for bad in [
        vec![("no.such.key", Some("1"))],
        vec![("retention.ms", Some("-2"))],
        vec![("unclean.leader.election.enable", Some("yes"))],
        vec![("no.such.key", None)],
    ] {
        let r = c.handle(alter(bad.clone()));
        assert_eq!(result(r), Err(ErrorCode::InvalidConfig), "{bad:?}");
    }
    let r = c.handle(alter(vec![
        ("retention.ms", Some("1")),
        ("retention.ms", Some("2")),
    ]));
    assert_eq!(result(r), Err(ErrorCode::InvalidRequest));
    let r = c.handle(ControllerInput::AlterConfigs {
        topic: "nope".to_string(),
        configs: Vec::new(),
    });
    assert_eq!(result(r), Err(ErrorCode::UnknownTopicOrPartition));
    // Setting what is already set writes nothing.
    let records = c.handle_records(alter(vec![("cleanup.policy", Some("delete"))]));
    assert!(records.is_empty());
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
    c.controller = Controller::new(ControllerConfig::default());
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
    // The old controller's FenceBroker committed, the partition changes after it did not.
    c.image.apply(&MetadataRecord::FenceBroker {
        broker: NodeId(1),
        incarnation: 1,
    });
    assert!(c
        .image
        .partitions()
        .any(|(_, s)| s.leader == Some(NodeId(1))));
    c.controller = Controller::new(ControllerConfig::default());
    c.tick(c.now_ms);
    for (_, s) in c.image.partitions() {
        assert_ne!(s.leader, Some(NodeId(1)));
        assert!(!s.isr.contains(&NodeId(1)));
    }
}

#[test]
fn snapshot_round_trip_gives_an_equal_image() {
    let mut c = three_brokers();
    c.create("a", 3, 2).unwrap();
    c.create("b", 2, 3).unwrap();
    c.create("gone", 1, 1).unwrap();
    c.handle(ControllerInput::DeleteTopic {
        name: "gone".to_string(),
    });
    c.handle(ControllerInput::AlterConfigs {
        topic: "a".to_string(),
        configs: vec![("retention.ms".to_string(), Some("5".to_string()))],
    });
    run_until(&mut c, TIMEOUT_MS + 1_000, &[(1, 1), (2, 1)]);
    c.register(3, 2);

    let snapshot = c.image.snapshot();
    assert_eq!(MetadataImage::from_records(&snapshot), c.image);
    // Through the bytes too.
    let decoded: Vec<MetadataRecord> = snapshot
        .iter()
        .map(|r| MetadataRecord::decode(&r.encode()).unwrap())
        .collect();
    let restored = MetadataImage::from_records(&decoded);
    assert_eq!(restored, c.image);
    assert_eq!(
        restored.next_topic_id(),
        TopicId(4),
        "the deleted topic's id stays used"
    );
    // And the log replayed from the start builds the same image.
    assert_eq!(MetadataImage::from_records(&c.log), c.image);
}

#[test]
fn decode_refuses_what_encode_cannot_produce() {
    let record = MetadataRecord::Topic {
        name: "t".to_string(),
        topic_id: TopicId(1),
    };
    let bytes = record.encode();
    assert!(matches!(
        MetadataRecord::decode(&[]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        MetadataRecord::decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        MetadataRecord::decode(&longer),
        Err(DecodeError::TrailingBytes(1))
    );
    let mut other_version = bytes.to_vec();
    other_version[0] = 2;
    assert_eq!(
        MetadataRecord::decode(&other_version),
        Err(DecodeError::UnknownVersion(2))
    );
    let mut other_type = bytes.to_vec();
    other_type[1] = 200;
    assert_eq!(
        MetadataRecord::decode(&other_type),
        Err(DecodeError::UnknownType(200))
    );
    // A leader outside its ISR.
    let bad = MetadataRecord::Partition {
        partition: TopicPartition::new("t", 0),
        state: PartitionState {
            replicas: n(&[1, 2]),
            leader: Some(NodeId(2)),
            leader_epoch: Epoch(0),
            leader_incarnation: Some(1),
            isr: n(&[1]),
            partition_epoch: 0,
        },
    };
    assert!(matches!(
        MetadataRecord::decode(&bad.encode()),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn topic_names_follow_kafkas_rules() {
    assert!(validate_topic_name("orders.v2_eu-1").is_ok());
    let message = validate_topic_name("a b").unwrap_err();
    assert!(message.contains("' '"), "{message}");
    assert!(validate_topic_name(&"x".repeat(250))
        .unwrap_err()
        .contains("249"));
}

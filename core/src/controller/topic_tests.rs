//! Tests of the controller's topic administration, placement, snapshot and record
//! encoding, named by the property they prove.

use super::test_support::*;
use super::*;
use crate::types::Epoch;

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
    let twice = ("retention.ms".to_string(), "1".to_string());
    let reply = c.handle(ControllerInput::CreateTopic {
        name: "y".to_string(),
        num_partitions: Some(1),
        replication_factor: Some(1),
        configs: vec![twice.clone(), twice],
    });
    assert!(matches!(
        reply,
        ControllerReply::CreateTopic {
            result: Err(ErrorCode::InvalidRequest),
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

#[test]
fn snapshot_bytes_round_trip_and_damaged_snapshots_are_errors() {
    let mut c = three_brokers();
    c.create("a", 2, 2).unwrap();
    let records = c.image.snapshot();
    let bytes = encode_records(&records);
    assert_eq!(decode_records(&bytes), Ok(records));
    assert_eq!(decode_records(&[]), Ok(Vec::new()));
    assert!(decode_records(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_records(&[0, 0, 0, 9, 1]).is_err());
}

#[test]
fn oversized_registrations_are_refused_not_written() {
    let mut c = Cluster::new(ControllerConfig::default());
    let too_many = vec!["PLAINTEXT://h:1".to_string(); MAX_LISTENERS + 1];
    let too_long = Some("r".repeat(MAX_REGISTRATION_STRING_BYTES + 1));
    for (listeners, rack) in [(too_many, None), (Vec::new(), too_long)] {
        let records = c.handle_records(ControllerInput::BrokerRegistration {
            broker: NodeId(1),
            incarnation: 1,
            listeners,
            rack,
        });
        assert!(records.is_empty());
        assert!(c.image.broker(NodeId(1)).is_none());
    }
}

#[test]
fn controller_config_reads_kafkas_broker_keys() {
    let (broker, _) = crate::config::BrokerConfig::from_pairs([
        ("num.partitions", "6"),
        ("default.replication.factor", "3"),
        ("broker.session.timeout.ms", "4500"),
        ("unclean.leader.election.enable", "true"),
    ])
    .expect("valid config");
    assert_eq!(
        ControllerConfig::from_broker_config(&broker),
        ControllerConfig {
            num_partitions: 6,
            default_replication_factor: 3,
            broker_session_timeout_ms: 4_500,
            unclean_leader_election_enable: true,
            cluster_id: None,
        }
    );
    assert_eq!(
        ControllerConfig::default().broker_session_timeout_ms,
        TIMEOUT_MS
    );
}

//! Tests of the config module.

use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<(BrokerConfig, Vec<ConfigWarning>), ConfigError> {
    BrokerConfig::from_pairs(pairs.iter().copied())
}

fn config(pairs: &[(&str, &str)]) -> BrokerConfig {
    parse(pairs).expect("valid config").0
}

fn error(pairs: &[(&str, &str)]) -> ConfigError {
    parse(pairs).expect_err("invalid config")
}

#[test]
fn defaults_are_kafkas_documented_defaults() {
    let c = BrokerConfig::default();
    assert_eq!(c.node_id, NodeId(0));
    assert_eq!(c.log_dirs, vec!["./data".to_string()]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.default_replication_factor, 1);
    assert_eq!(c.min_insync_replicas, 1);
    assert_eq!(c.replica_lag_time_max_ms, 30000);
    assert_eq!(c.replica_fetch_wait_max_ms, 500);
    assert_eq!(c.replica_fetch_max_bytes, 1048576);
    assert_eq!(c.replica_fetch_backoff_ms, 1000);
    assert_eq!(c.log_flush_interval_messages, 9223372036854775807);
    assert_eq!(c.log_flush_interval_ms, None);
    assert_eq!(c.log_segment_bytes, 1073741824);
    assert_eq!(c.log_roll_ms, 168 * 3600 * 1000);
    assert_eq!(c.log_retention_ms, Some(168 * 3600 * 1000));
    assert_eq!(c.log_retention_bytes, None);
    assert_eq!(c.log_retention_check_interval_ms, 300000);
    assert_eq!(c.log_index_interval_bytes, 4096);
    assert_eq!(c.log_index_size_max_bytes, 10485760);
    assert_eq!(c.log_flush_offset_checkpoint_interval_ms, 60000);
    assert_eq!(c.metadata_log_dir, None);
    assert!(!c.unclean_leader_election_enable);
    assert!(c.auto_create_topics_enable);
    assert_eq!(c.broker_heartbeat_interval_ms, 2000);
    assert_eq!(c.broker_session_timeout_ms, 9000);
    assert_eq!(c.socket_request_max_bytes, 104857600);
    assert_eq!(c.message_max_bytes, 1048588);
    assert_eq!(c.connections_max_idle_ms, 600000);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.offsets_topic_replication_factor, 3);
    assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
    assert_eq!(c.group_min_session_timeout_ms, 6000);
    assert_eq!(c.group_max_session_timeout_ms, 1800000);
    assert_eq!(c.group_max_size, 2147483647);
    assert_eq!(c.offsets_retention_ms, 10080 * 60 * 1000);
    assert_eq!(c.offsets_retention_check_interval_ms, 600000);
    assert_eq!(c.offset_metadata_max_bytes, 4096);
    assert_eq!(c.listeners, "PLAINTEXT://127.0.0.1:9092");
    assert_eq!(c.advertised_listeners, None);
    assert_eq!(c.process_roles, ProcessRoles::BOTH);
    assert!(c.controller_quorum_voters.is_empty());
    assert!(!c.sync_before_ack());
    assert_eq!(config(&[]), c, "no pairs means the defaults");
}

/// The non-comment lines of the stock Kafka 2.x `server.properties` in the seed.
const SEED_SERVER_PROPERTIES: &[(&str, &str)] = &[
    ("broker.id", "0"),
    ("num.network.threads", "3"),
    ("num.io.threads", "8"),
    ("socket.send.buffer.bytes", "102400"),
    ("socket.receive.buffer.bytes", "102400"),
    ("socket.request.max.bytes", "104857600"),
    ("log.dirs", "/tmp/kafka-logs"),
    ("num.partitions", "1"),
    ("num.recovery.threads.per.data.dir", "1"),
    ("offsets.topic.replication.factor", "1"),
    ("transaction.state.log.replication.factor", "1"),
    ("transaction.state.log.min.isr", "1"),
    ("log.retention.hours", "168"),
    ("log.segment.bytes", "1073741824"),
    ("log.retention.check.interval.ms", "300000"),
    ("zookeeper.connect", "localhost:2181"),
    ("zookeeper.connection.timeout.ms", "6000"),
    ("group.initial.rebalance.delay.ms", "0"),
];

#[test]
fn stock_kafka_server_properties_parses_with_warnings_only() {
    let (c, warnings) = parse(SEED_SERVER_PROPERTIES).expect("the stock file is valid");
    assert_eq!(c.node_id, NodeId(0));
    assert_eq!(c.log_dirs, vec!["/tmp/kafka-logs".to_string()]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.log_retention_ms, Some(168 * 3600 * 1000));
    assert_eq!(c.log_segment_bytes, 1073741824);
    assert_eq!(c.group_initial_rebalance_delay_ms, 0);
    assert_eq!(c.offsets_topic_replication_factor, 1);
    assert_eq!(c.socket_request_max_bytes, 104857600);
    let warned: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        warned,
        [
            "num.network.threads",
            "num.io.threads",
            "socket.send.buffer.bytes",
            "socket.receive.buffer.bytes",
            "num.recovery.threads.per.data.dir",
            "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr",
            "zookeeper.connect",
            "zookeeper.connection.timeout.ms",
        ]
    );
    let zookeeper = warnings[7].to_string();
    assert!(
        zookeeper.starts_with("zookeeper.connect: ignored: Eddy does not use ZooKeeper"),
        "{zookeeper}"
    );
}

#[test]
fn every_key_from_pairs_accepts_is_answered_by_get_and_round_trips() {
    let custom = config(&[
        ("node.id", "7"),
        ("log.dirs", "/a, /b"),
        ("num.partitions", "3"),
        ("log.flush.interval.ms", "250"),
        ("log.flush.interval.messages", "1"),
        ("log.retention.hours", "-1"),
        ("log.retention.bytes", "1000"),
        ("log.roll.hours", "2"),
        ("unclean.leader.election.enable", "TRUE"),
        ("advertised.listeners", "PLAINTEXT://broker7:9092"),
        ("process.roles", "controller"),
        ("controller.quorum.voters", "7@c7:9093, 8@[::1]:9093"),
        ("log.index.interval.bytes", "0"),
        ("log.index.size.max.bytes", "4"),
        ("log.flush.offset.checkpoint.interval.ms", "1000"),
        ("metadata.log.dir", "/meta"),
    ]);
    for original in [BrokerConfig::default(), custom] {
        let answers: Vec<(&str, String)> = BrokerConfig::keys()
            .filter_map(|key| original.get(key).map(|value| (key, value)))
            .collect();
        for key in BrokerConfig::keys() {
            let nullable = [
                "log.flush.interval.ms",
                "advertised.listeners",
                "metadata.log.dir",
            ];
            assert!(
                nullable.contains(&key) || original.get(key).is_some(),
                "get({key}) has no answer"
            );
        }
        let pairs: Vec<(&str, &str)> = answers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            config(&pairs),
            original,
            "feeding get's answers back changes nothing"
        );
    }
    assert_eq!(BrokerConfig::default().get("no.such.key"), None);
    assert_eq!(
        BrokerConfig::default().get(" num.partitions "),
        Some("1".to_string())
    );
}

#[test]
fn table_keys_are_unique_and_disjoint_from_ignored_keys() {
    let mut all: Vec<&str> = BrokerConfig::keys()
        .chain(IGNORED.iter().map(|(k, _)| *k))
        .collect();
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "a key is listed twice");
}

#[test]
fn ignored_keys_warn_whatever_their_value() {
    for (key, _) in IGNORED {
        let (c, warnings) = parse(&[(key, "not even a number")]).expect("never an error");
        assert_eq!(c, BrokerConfig::default());
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].key, *key);
        assert!(
            warnings[0].message.starts_with("ignored: "),
            "{}",
            warnings[0]
        );
    }
    let (_, warnings) = parse(&[("controller.listener.names", "CONTROLLER")]).unwrap();
    assert!(warnings[0].message.contains("KRaft"), "{}", warnings[0]);
}

#[test]
fn invalid_values_name_key_value_and_rule() {
    // (key=value, the start of the reason); the message is "key = value: reason".
    let cases = [
        ("log.segment.bytes=12", "must be at least 14 (Kafka's floor"),
        (
            "num.partitions=",
            "a whole number is required; give one or remove the line",
        ),
        (
            "num.partitions=three",
            "must be a whole number written in decimal digits",
        ),
        ("num.partitions=1.5", "must be a whole number"),
        ("num.partitions=0x10", "must be a whole number"),
        ("num.partitions=0", "must be at least 1"),
        ("num.partitions=-1", "must be at least 1"),
        ("num.partitions=2147483648", "must be at most 2147483647"),
        (
            "log.roll.ms=99999999999999999999",
            "must be at most 9223372036854775807",
        ),
        ("replica.fetch.backoff.ms=-5", "must not be negative"),
        ("default.replication.factor=40000", "must be at most 32767"),
        (
            "log.retention.bytes=-2",
            "must be -1 (no limit) or a number that is not negative",
        ),
        (
            "log.retention.hours=-99999999999999999999",
            "must be -1 (no limit)",
        ),
        (
            "broker.id=-1",
            "must not be negative; Eddy does not generate broker ids",
        ),
        ("log.flush.interval.messages=0", "must be at least 1"),
        ("log.index.interval.bytes=-1", "must not be negative"),
        (
            "log.index.size.max.bytes=3",
            "must be at least 4 (Kafka's floor)",
        ),
        (
            "log.flush.offset.checkpoint.interval.ms=-1",
            "must not be negative",
        ),
        (
            "log.flush.offset.checkpoint.interval.ms=2147483648",
            "must be at most 2147483647",
        ),
        (
            "metadata.log.dir=",
            "must name a directory; remove the line",
        ),
        (
            "metadata.log.dir=/a,/b",
            "must name one directory, not a list",
        ),
        (
            "unclean.leader.election.enable=yes",
            "must be true or false",
        ),
        (
            "log.dirs=/a,,/b",
            "must list one or more directories separated by commas",
        ),
        ("log.dir=", "must list one or more directories"),
        (
            "listeners= ",
            "must name at least one listener, such as PLAINTEXT://",
        ),
        (
            "process.roles=zookeeper",
            "must be broker, controller, or broker,controller",
        ),
        (
            "process.roles=",
            "must be broker, controller, or broker,controller",
        ),
        (
            "process.roles=broker,broker",
            "must be broker, controller, or broker,controller; broker is listed twice",
        ),
        (
            "controller.quorum.voters=1@localhost:9093,localhost:9094",
            "entry \"localhost:9094\" has no '@' between the node id and the address",
        ),
        (
            "controller.quorum.voters=x@h:1",
            "entry \"x@h:1\" has node id \"x\", which is not a whole number",
        ),
        (
            "controller.quorum.voters=1@h",
            "entry \"1@h\" has no ':' before the port",
        ),
        (
            "controller.quorum.voters=1@:9093",
            "entry \"1@:9093\" has no host",
        ),
        (
            "controller.quorum.voters=1@h:0",
            "entry \"1@h:0\" has port \"0\", which is not from 1 to 65535",
        ),
        (
            "controller.quorum.voters=1@h:70000",
            "entry \"1@h:70000\" has port \"70000\"",
        ),
        (
            "controller.quorum.voters=0@a:1,0@b:2",
            "entry \"0@b:2\" repeats node id 0: each voter is listed once",
        ),
    ];
    for (pair, reason) in cases {
        let (key, value) = pair.split_once('=').unwrap();
        let shown = if value.trim().is_empty() {
            "\"\""
        } else {
            value
        };
        let message = error(&[(key, value)]).to_string();
        let expected = format!("{key} = {shown}: {reason}");
        assert!(message.starts_with(&expected), "{pair}: got {message:?}");
    }
}

#[test]
fn no_value_makes_any_key_panic() {
    let values = [
        "",
        "-1",
        "0",
        "1",
        "14",
        "32767",
        "32768",
        "2147483647",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "true",
        "x",
    ];
    for key in BrokerConfig::keys() {
        for value in values {
            let _ = parse(&[(key, value)]);
        }
    }
}

#[test]
fn kafka_maximums_are_accepted() {
    let c = config(&[
        ("node.id", "2147483647"),
        ("log.flush.interval.messages", "9223372036854775807"),
        ("log.retention.ms", "9223372036854775807"),
        ("log.retention.hours", "2147483647"),
        ("log.segment.bytes", "2147483647"),
        ("offsets.topic.replication.factor", "32767"),
    ]);
    assert_eq!(c.node_id, NodeId(i32::MAX as u32));
    assert_eq!(
        c.log_retention_ms,
        Some(i64::MAX as u64),
        "ms wins over hours"
    );
    assert_eq!(c.log_segment_bytes, i32::MAX as u32);
}

#[test]
fn values_and_keys_are_trimmed_and_booleans_ignore_case() {
    let c = config(&[
        ("  num.partitions ", " 4\t"),
        ("auto.create.topics.enable", " False "),
        ("unclean.leader.election.enable", "tRuE"),
        ("log.dirs", " /x , /y "),
    ]);
    assert_eq!(c.num_partitions, 4);
    assert!(!c.auto_create_topics_enable);
    assert!(c.unclean_leader_election_enable);
    assert_eq!(c.log_dirs, vec!["/x".to_string(), "/y".to_string()]);
}

#[test]
fn later_pairs_win() {
    let c = config(&[("num.partitions", "2"), ("num.partitions", "5")]);
    assert_eq!(c.num_partitions, 5);
    let c = config(&[("log.retention.ms", "1000"), ("log.retention.ms", "-1")]);
    assert_eq!(c.log_retention_ms, None);
}

#[test]
fn finer_retention_keys_win_whatever_the_order() {
    let (c, warnings) = parse(&[
        ("log.retention.ms", "1500"),
        ("log.retention.minutes", "10"),
        ("log.retention.hours", "1"),
    ])
    .unwrap();
    assert_eq!(c.log_retention_ms, Some(1500));
    let warned: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(warned, ["log.retention.minutes", "log.retention.hours"]);
    assert!(
        warnings[0].message.contains("log.retention.ms is also set"),
        "{}",
        warnings[0]
    );
    assert_eq!(c.get("log.retention.ms"), Some("1500".to_string()));
    assert_eq!(
        c.get("log.retention.hours"),
        None,
        "1500 ms is not whole hours"
    );

    let c = config(&[
        ("log.retention.hours", "1"),
        ("log.retention.minutes", "10"),
    ]);
    assert_eq!(c.log_retention_ms, Some(10 * 60 * 1000));
    assert_eq!(c.get("log.retention.minutes"), Some("10".to_string()));

    let c = config(&[("log.retention.hours", "-1")]);
    assert_eq!(c.log_retention_ms, None, "-1 keeps data forever");
    assert_eq!(c.get("log.retention.hours"), Some("-1".to_string()));
    assert_eq!(c.get("log.retention.ms"), Some("-1".to_string()));

    let c = config(&[("log.roll.ms", "60000"), ("log.roll.hours", "1")]);
    assert_eq!(c.log_roll_ms, 60_000);
    let c = config(&[("log.dirs", "/a"), ("log.dir", "/b")]);
    assert_eq!(c.log_dirs, vec!["/a".to_string()]);
    let c = config(&[("log.dir", "/b")]);
    assert_eq!(c.log_dirs, vec!["/b".to_string()]);
}

#[test]
fn typo_suggests_the_closest_key() {
    let e = error(&[("num.partition", "3")]);
    assert_eq!(
        e,
        ConfigError::Unknown {
            key: "num.partition".to_string(),
            suggestion: Some("num.partitions".to_string()),
        }
    );
    assert_eq!(
        e.to_string(),
        "num.partition is not a broker setting Eddy knows: did you mean num.partitions? \
         Fix the spelling or remove the line."
    );
    let e = error(&[("LOG.SEGMENT.BYTES", "1")]);
    assert!(
        e.to_string().contains("did you mean log.segment.bytes?"),
        "{e}"
    );
    let e = error(&[("zookeeper.conect", "x")]);
    assert!(
        e.to_string().contains("did you mean zookeeper.connect?"),
        "{e}"
    );
    let e = error(&[("bananas", "3")]);
    assert_eq!(
        e,
        ConfigError::Unknown {
            key: "bananas".to_string(),
            suggestion: None
        }
    );
    assert!(
        e.to_string()
            .contains("kafka.apache.org/documentation/#brokerconfigs"),
        "{e}"
    );
}

#[test]
fn broker_id_and_node_id_must_agree() {
    let e = error(&[("node.id", "2"), ("broker.id", "1")]);
    assert_eq!(
        e.to_string(),
        "broker.id = 1 conflicts with node.id = 2: both set this broker's id (broker.id is \
         Kafka's older name for node.id); keep one, or give both the same value."
    );
    assert_eq!(
        config(&[("broker.id", "3"), ("node.id", "3")]).node_id,
        NodeId(3)
    );
    assert_eq!(config(&[("broker.id", "4")]).node_id, NodeId(4));
    assert_eq!(
        config(&[("node.id", "5")]).get("broker.id"),
        Some("5".to_string())
    );
}

#[test]
fn sync_before_ack_only_when_every_message_is_flushed() {
    assert!(config(&[("log.flush.interval.messages", "1")]).sync_before_ack());
    assert!(!config(&[("log.flush.interval.messages", "2")]).sync_before_ack());
    assert!(!config(&[("log.flush.interval.ms", "0")]).sync_before_ack());
}

#[test]
fn empty_advertised_listeners_means_unset() {
    let c = config(&[
        ("advertised.listeners", "PLAINTEXT://a:1"),
        ("advertised.listeners", ""),
    ]);
    assert_eq!(c.advertised_listeners, None);
    assert_eq!(c.get("advertised.listeners"), None);
}

#[test]
fn levenshtein_counts_edits() {
    assert_eq!(levenshtein("", ""), 0);
    assert_eq!(levenshtein("abc", ""), 3);
    assert_eq!(levenshtein("", "abc"), 3);
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    assert_eq!(levenshtein("num.partition", "num.partitions"), 1);
    assert_eq!(levenshtein("flaw", "lawn"), 2);
}

#[test]
fn kraft_roles_and_voters_parse_into_the_config() {
    let c = config(&[
        ("process.roles", " controller , broker "),
        ("node.id", "2"),
        (
            "controller.quorum.voters",
            "1@c1:9093,2@c2:9093,3@[fe80::1]:9093",
        ),
    ]);
    assert_eq!(c.process_roles, ProcessRoles::BOTH);
    assert_eq!(
        c.controller_quorum_voters,
        vec![
            QuorumVoter {
                id: NodeId(1),
                host: "c1".to_string(),
                port: 9093
            },
            QuorumVoter {
                id: NodeId(2),
                host: "c2".to_string(),
                port: 9093
            },
            QuorumVoter {
                id: NodeId(3),
                host: "[fe80::1]".to_string(),
                port: 9093
            },
        ]
    );
    assert_eq!(
        c.get("controller.quorum.voters").as_deref(),
        Some("1@c1:9093,2@c2:9093,3@[fe80::1]:9093")
    );
    assert_eq!(c.get("process.roles").as_deref(), Some("broker,controller"));
    let broker = config(&[
        ("process.roles", "broker"),
        ("node.id", "4"),
        ("controller.quorum.voters", "1@c1:9093"),
    ]);
    assert_eq!(
        broker.process_roles,
        ProcessRoles {
            broker: true,
            controller: false
        }
    );
}

#[test]
fn kraft_roles_node_id_and_voters_must_agree() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("process.roles", "broker")],
            "process.roles = broker conflicts with controller.quorum.voters = : a node that \
             is not a controller must be told where the quorum is",
        ),
        (
            &[("node.id", "5"), ("controller.quorum.voters", "1@c1:9093")],
            "process.roles = broker,controller conflicts with controller.quorum.voters = \
             1@c1:9093: this node (node.id = 5) is a controller, so it must be one of the voters",
        ),
        (
            &[
                ("process.roles", "broker"),
                ("node.id", "1"),
                ("controller.quorum.voters", "1@c1:9093"),
            ],
            "process.roles = broker conflicts with controller.quorum.voters = 1@c1:9093: this \
             node (node.id = 1) is a voter but not a controller",
        ),
    ];
    for (pairs, expected) in cases {
        let message = error(pairs).to_string();
        assert!(message.starts_with(expected), "{pairs:?}: got {message:?}");
    }
    // The order of the lines does not matter: the check runs once all are in.
    let c = config(&[("controller.quorum.voters", "5@c5:9093"), ("node.id", "5")]);
    assert_eq!(c.node_id, NodeId(5));
}

#[test]
fn group_coordinator_keys_parse_with_kafkas_bounds() {
    let c = config(&[
        ("group.min.session.timeout.ms", "100"),
        ("group.max.session.timeout.ms", "60000"),
        ("group.max.size", "5"),
        ("offsets.retention.minutes", "1"),
        ("offsets.retention.check.interval.ms", "1000"),
        ("offset.metadata.max.bytes", "10"),
    ]);
    assert_eq!(c.group_min_session_timeout_ms, 100);
    assert_eq!(c.group_max_session_timeout_ms, 60000);
    assert_eq!(c.group_max_size, 5);
    assert_eq!(c.offsets_retention_ms, 60_000);
    assert_eq!(c.get("offsets.retention.minutes"), Some("1".to_string()));
    assert_eq!(c.offsets_retention_check_interval_ms, 1000);
    assert_eq!(c.offset_metadata_max_bytes, 10);
    for pair in [
        "group.max.size=0",
        "offsets.retention.minutes=0",
        "offsets.retention.check.interval.ms=0",
    ] {
        let (key, value) = pair.split_once('=').unwrap();
        assert!(
            error(&[(key, value)])
                .to_string()
                .contains("must be at least 1"),
            "{pair}"
        );
    }
    assert!(error(&[("group.min.session.timeout.ms", "-1")])
        .to_string()
        .contains("must not be negative"));
}

#[test]
fn storage_index_checkpoint_and_metadata_dir_keys_parse() {
    let c = config(&[
        ("log.index.interval.bytes", "128"),
        ("log.index.size.max.bytes", "800"),
        ("log.flush.offset.checkpoint.interval.ms", "0"),
        ("metadata.log.dir", " /var/eddy/meta "),
    ]);
    assert_eq!(c.log_index_interval_bytes, 128);
    assert_eq!(c.log_index_size_max_bytes, 800);
    assert_eq!(c.log_flush_offset_checkpoint_interval_ms, 0);
    assert_eq!(c.metadata_log_dir.as_deref(), Some("/var/eddy/meta"));
    assert_eq!(
        c.get("metadata.log.dir"),
        Some("/var/eddy/meta".to_string())
    );
    assert_eq!(BrokerConfig::default().get("metadata.log.dir"), None);
}

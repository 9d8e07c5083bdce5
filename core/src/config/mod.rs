//! The broker's typed configuration, built from `server.properties` key names.
//!
//! This module owns the meaning of every broker setting Eddy reads: its key, its type,
//! its default, its bounds and the error a person sees when a value is wrong. Keys,
//! defaults, bounds and precedence rules follow Kafka's broker configs
//! (<https://kafka.apache.org/documentation/#brokerconfigs>), so an existing
//! `server.properties` works unchanged; where Eddy chooses its own default (`log.dirs`,
//! `listeners`) the field says so. It is pure: the shell (`eddy-net`) reads the file and
//! the command line and hands the pairs to [`BrokerConfig::from_pairs`]. Keys Kafka knows
//! but Eddy does not use produce a [`ConfigWarning`]; keys nobody knows are an error,
//! because a misspelt setting that silently keeps its default is the worst kind of bug.

use std::fmt;

use crate::types::NodeId;

/// Eddy's default data directory (Kafka's is `/tmp/kafka-logs`, which many systems wipe
/// on reboot).
const DEFAULT_LOG_DIR: &str = "./data";
/// Eddy's default listener: a single-node cluster on loopback, reachable only locally
/// until the operator says otherwise (Kafka's default is every interface).
const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";

const MS_PER_MINUTE: u64 = 60 * 1000;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;

/// Everything the broker reads from `server.properties`, with Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `node.id`, or its older name `broker.id`. Default 0.
    pub node_id: NodeId,
    /// `log.dirs` (a comma-separated list), or `log.dir` when `log.dirs` is absent.
    /// Default `./data`: Eddy's own choice (Kafka's is `/tmp/kafka-logs`).
    pub log_dirs: Vec<String>,
    /// `num.partitions`: partitions of an auto-created topic. Default 1.
    pub num_partitions: u32,
    /// `default.replication.factor`: replicas of an auto-created topic. Default 1.
    pub default_replication_factor: u16,
    /// `min.insync.replicas`: replicas that must have a write before an `acks=all`
    /// produce succeeds. Default 1.
    pub min_insync_replicas: u16,
    /// `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves
    /// the ISR. Default 30000.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`: the longest a follower's fetch waits for data.
    /// Default 500.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes`: bytes a follower asks for per partition. Default 1 MiB.
    pub replica_fetch_max_bytes: u32,
    /// `replica.fetch.backoff.ms`: a follower's pause after a failed fetch. Default 1000.
    pub replica_fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`: how long a follower waits for a fetch response
    /// before it gives up on it and fetches again. Default 30000.
    pub replica_socket_timeout_ms: u64,
    /// `log.flush.interval.messages`: messages appended between syncs. Default Kafka's
    /// `Long.MAX_VALUE`, i.e. never sync on a count; 1 means sync before every ack.
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`: the longest a message stays unsynced. Default `None`:
    /// Kafka then falls back to `log.flush.scheduler.interval.ms`, whose default is
    /// `Long.MAX_VALUE`, i.e. never sync on time.
    pub log_flush_interval_ms: Option<u64>,
    /// `log.segment.bytes`: the size at which a segment file is rolled. Default 1 GiB.
    pub log_segment_bytes: u32,
    /// The age at which a segment is rolled: `log.roll.ms`, else `log.roll.hours`
    /// (default 168, one week).
    pub log_roll_ms: u64,
    /// How long data is kept: `log.retention.ms`, else `log.retention.minutes`, else
    /// `log.retention.hours` (default 168). `None` (-1 in the file) keeps it forever.
    pub log_retention_ms: Option<u64>,
    /// `log.retention.bytes`: the size a partition is trimmed to. Default -1 (`None`):
    /// no size limit.
    pub log_retention_bytes: Option<u64>,
    /// `log.retention.check.interval.ms`: how often retention runs. Default 300000.
    pub log_retention_check_interval_ms: u64,
    /// `log.index.interval.bytes`: how many bytes of batches lie between two entries of a
    /// segment's offset and time indexes. Default 4096.
    pub log_index_interval_bytes: u32,
    /// `log.index.size.max.bytes`: the largest an offset or time index file may grow; a
    /// segment whose index is full rolls, as in Kafka. Default 10485760.
    pub log_index_size_max_bytes: u32,
    /// `log.flush.offset.checkpoint.interval.ms`: how often each log dir's
    /// `recovery-point-offset-checkpoint` is written (how far every partition is known
    /// synced, so a restart need not scan what lies below). Default 60000.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `metadata.log.dir`: where the metadata quorum's log lives. Default `None`: inside
    /// the first of `log.dirs`, as in Kafka.
    pub metadata_log_dir: Option<String>,
    /// `unclean.leader.election.enable`: may a replica outside the ISR become leader,
    /// losing acknowledged writes? Default false.
    pub unclean_leader_election_enable: bool,
    /// `auto.create.topics.enable`: does producing to or fetching metadata for an unknown
    /// topic create it? Default true.
    pub auto_create_topics_enable: bool,
    /// `broker.heartbeat.interval.ms`: how often a broker heartbeats the controller.
    /// Default 2000.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: a broker silent for this long is fenced. Default 9000.
    pub broker_session_timeout_ms: u64,
    /// `socket.request.max.bytes`: the largest request frame accepted. Default 100 MiB.
    pub socket_request_max_bytes: u32,
    /// `message.max.bytes`: the largest record batch accepted. Default 1048588 (1 MiB
    /// plus batch overhead).
    pub message_max_bytes: u32,
    /// `connections.max.idle.ms`: idle connections are closed after this. Default 600000.
    pub connections_max_idle_ms: u64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`. Default 50.
    pub offsets_topic_num_partitions: u32,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets`. Default 3.
    pub offsets_topic_replication_factor: u16,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members
    /// before its first rebalance. Default 3000.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`: the shortest session timeout a member may ask for
    /// in JoinGroup (shorter gets INVALID_SESSION_TIMEOUT). Default 6000.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`: the longest session timeout a member may ask for.
    /// Default 1800000 (30 minutes).
    pub group_max_session_timeout_ms: u64,
    /// `group.max.size`: the most members a group may have (GROUP_MAX_SIZE_REACHED past
    /// it). Default Kafka's `Integer.MAX_VALUE`, i.e. no limit.
    pub group_max_size: u32,
    /// How long a group's committed offsets are kept once the group is empty (KIP-211):
    /// `offsets.retention.minutes`, default 10080 (7 days).
    pub offsets_retention_ms: u64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    /// Default 600000.
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`: the longest metadata string an offset commit may
    /// carry (OFFSET_METADATA_TOO_LARGE past it). Default 4096.
    pub offset_metadata_max_bytes: u32,
    /// `listeners`: where the broker accepts connections. Default
    /// `PLAINTEXT://127.0.0.1:9092`: Eddy's own choice (Kafka listens on every interface).
    pub listeners: String,
    /// `advertised.listeners`: what clients are told to connect to; `None` means use
    /// `listeners`. An empty value means the same as no value.
    pub advertised_listeners: Option<String>,
    /// `process.roles`: whether this node is a broker, a KRaft controller (a voter of
    /// the metadata quorum), or both. Default both: Eddy's own choice, so that a node
    /// with no configuration is a whole single-node cluster (Kafka requires the key).
    pub process_roles: ProcessRoles,
    /// `controller.quorum.voters`: the metadata quorum's voters, `id@host:port,...`.
    /// Default empty: this node alone is the quorum (only allowed for a controller).
    pub controller_quorum_voters: Vec<QuorumVoter>,
}

/// The roles of `process.roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

impl ProcessRoles {
    pub const BOTH: ProcessRoles = ProcessRoles {
        broker: true,
        controller: true,
    };
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<&str> = [(self.broker, "broker"), (self.controller, "controller")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        write!(f, "{}", roles.join(","))
    }
}

/// One entry of `controller.quorum.voters`: a voter's node id and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuorumVoter {
    pub id: NodeId,
    /// A host name, an IPv4 address, or an IPv6 address in brackets (`[::1]`).
    pub host: String,
    pub port: u16,
}

impl fmt::Display for QuorumVoter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id.0, self.host, self.port)
    }
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            node_id: NodeId(0),
            log_dirs: vec![DEFAULT_LOG_DIR.to_string()],
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1024 * 1024,
            replica_fetch_backoff_ms: 1000,
            replica_socket_timeout_ms: 30_000,
            log_flush_interval_messages: i64::MAX as u64,
            log_flush_interval_ms: None,
            log_segment_bytes: 1024 * 1024 * 1024,
            log_roll_ms: 168 * MS_PER_HOUR,
            log_retention_ms: Some(168 * MS_PER_HOUR),
            log_retention_bytes: None,
            log_retention_check_interval_ms: 300_000,
            log_index_interval_bytes: 4096,
            log_index_size_max_bytes: 10 * 1024 * 1024,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            metadata_log_dir: None,
            unclean_leader_election_enable: false,
            auto_create_topics_enable: true,
            broker_heartbeat_interval_ms: 2000,
            broker_session_timeout_ms: 9000,
            socket_request_max_bytes: 100 * 1024 * 1024,
            message_max_bytes: 1024 * 1024 + 12,
            connections_max_idle_ms: 600_000,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX as u32,
            offsets_retention_ms: 10080 * MS_PER_MINUTE,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            listeners: DEFAULT_LISTENERS.to_string(),
            advertised_listeners: None,
            process_roles: ProcessRoles::BOTH,
            controller_quorum_voters: Vec::new(),
        }
    }
}

impl BrokerConfig {
    /// Applies key=value pairs in order over the defaults. Later pairs win.
    ///
    /// Keys and values are trimmed. Precedence between a key and its finer-grained
    /// sibling follows Kafka whatever the order: `log.dirs` over `log.dir`, `log.roll.ms`
    /// over `log.roll.hours`, `log.retention.ms` over `log.retention.minutes` over
    /// `log.retention.hours`; the losing key earns a warning. Stops at the first error.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(BrokerConfig, Vec<ConfigWarning>), ConfigError> {
        let mut draft = Draft::default();
        let mut warnings = Vec::new();
        for (key, value) in pairs {
            let (key, value) = (key.trim(), value.trim());
            if let Some(setting) = setting(key) {
                (setting.set)(&mut draft, key, value)?;
            } else if let Some((_, why)) = IGNORED.iter().find(|(k, _)| *k == key) {
                warnings.push(ConfigWarning {
                    key: key.to_string(),
                    message: format!("ignored: {why}"),
                });
            } else {
                return Err(ConfigError::Unknown {
                    key: key.to_string(),
                    suggestion: suggest(key),
                });
            }
        }
        let config = draft.finish(&mut warnings)?;
        Ok((config, warnings))
    }

    /// True when every message is synced before it is acknowledged
    /// (`log.flush.interval.messages = 1`).
    pub fn sync_before_ack(&self) -> bool {
        self.log_flush_interval_messages == 1
    }

    /// The value of `key` in server.properties syntax, for DescribeConfigs and for
    /// echoing the effective config. None for unknown keys.
    ///
    /// Also `None` where Kafka would report a null value: a setting with no value
    /// (`log.flush.interval.ms`, `advertised.listeners` when unset), or an hours or
    /// minutes key whose unit cannot express the effective value exactly (retention set
    /// with `log.retention.ms = 1500`). Values are the effective ones, so `broker.id`
    /// answers with the node id and `log.retention.hours` with the retention in hours.
    pub fn get(&self, key: &str) -> Option<String> {
        setting(key.trim()).and_then(|s| (s.get)(self))
    }

    /// Every key [`from_pairs`](Self::from_pairs) sets and [`get`](Self::get) answers,
    /// in a fixed order: the list to walk when echoing the effective config.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        SETTINGS.iter().map(|s| s.key)
    }
}

/// A setting that was accepted but has no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A setting Eddy cannot start with. Each message names the key and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value does not parse or is out of bounds; `reason` says what is allowed.
    #[error("{key} = {}: {reason}", shown(value))]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// Neither Eddy nor (as far as Eddy knows) Kafka has this key.
    #[error(
        "{key} is not a broker setting Eddy knows: {}",
        unknown_advice(suggestion)
    )]
    Unknown {
        key: String,
        suggestion: Option<String>,
    },
    /// Two keys set the same thing to different values.
    #[error("{key} = {value} conflicts with {other_key} = {other_value}: {reason}")]
    Conflict {
        key: String,
        value: String,
        other_key: String,
        other_value: String,
        reason: String,
    },
}

fn shown(value: &str) -> &str {
    if value.is_empty() {
        "\"\""
    } else {
        value
    }
}

fn unknown_advice(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("did you mean {s}? Fix the spelling or remove the line."),
        None => "check the spelling against Kafka's broker configs \
                 (https://kafka.apache.org/documentation/#brokerconfigs) or remove the line."
            .to_string(),
    }
}

/// Keys Kafka's brokers read but Eddy does not, each with the reason shown to the
/// operator. Accepting them keeps stock `server.properties` files working; the warning
/// keeps an operator from believing they do something. Kept in one place so a key moves
/// to [`SETTINGS`] in one edit when Eddy starts to honour it.
const IGNORED: &[(&str, &str)] = &[
    ("zookeeper.connect", NO_ZOOKEEPER),
    ("zookeeper.connection.timeout.ms", NO_ZOOKEEPER),
    ("zookeeper.session.timeout.ms", NO_ZOOKEEPER),
    ("num.network.threads", NO_THREAD_POOLS),
    ("num.io.threads", NO_THREAD_POOLS),
    ("num.recovery.threads.per.data.dir", NO_THREAD_POOLS),
    ("num.replica.fetchers", NO_THREAD_POOLS),
    ("background.threads", NO_THREAD_POOLS),
    ("socket.send.buffer.bytes", OS_SOCKET_BUFFERS),
    ("socket.receive.buffer.bytes", OS_SOCKET_BUFFERS),
    ("transaction.state.log.replication.factor", NO_TRANSACTIONS),
    ("transaction.state.log.min.isr", NO_TRANSACTIONS),
    ("listener.security.protocol.map", PLAINTEXT_ONLY),
    (
        "inter.broker.listener.name",
        "Eddy does not pick the inter-broker listener by name yet; remove this line.",
    ),
    ("log.cleaner.enable", NO_COMPACTION),
    (
        "log.flush.scheduler.interval.ms",
        "Eddy syncs on log.flush.interval.ms and log.flush.interval.messages only; \
         remove this line.",
    ),
    ("controller.listener.names", CONTROLLER_LISTENER_LATER),
];

const NO_ZOOKEEPER: &str =
    "Eddy does not use ZooKeeper (its own metadata quorum replaces it); remove this line.";
const NO_THREAD_POOLS: &str = "Eddy does not size thread pools from the config; remove this line.";
const OS_SOCKET_BUFFERS: &str =
    "Eddy leaves socket buffer sizes to the operating system; remove this line.";
const NO_TRANSACTIONS: &str = "Eddy keeps no transaction state log; remove this line.";
const PLAINTEXT_ONLY: &str =
    "Eddy's listeners are all PLAINTEXT, so there is nothing to map; remove this line.";
const NO_COMPACTION: &str = "Eddy does not compact logs; remove this line.";
const CONTROLLER_LISTENER_LATER: &str =
    "Eddy does not pick KRaft's controller listener by name yet: controllers are reached at \
     the addresses in controller.quorum.voters; remove this line.";

/// One key Eddy honours: how a value is applied and how the effective value is read
/// back. Keeping both in one row is what stops `from_pairs` and `get` drifting apart.
struct Setting {
    key: &'static str,
    /// Applies a trimmed value; the key is passed in for error messages.
    set: fn(&mut Draft, &str, &str) -> Result<(), ConfigError>,
    get: fn(&BrokerConfig) -> Option<String>,
}

fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The settings, in the order of `BrokerConfig`'s fields, each alias beside its key.
const SETTINGS: &[Setting] = &[
    Setting {
        key: "node.id",
        set: |d, k, v| number(k, v, NODE_ID).map(|x| d.node_id = Some((v.to_string(), x))),
        get: |c| Some(c.node_id.0.to_string()),
    },
    Setting {
        key: "broker.id",
        set: |d, k, v| number(k, v, NODE_ID).map(|x| d.broker_id = Some((v.to_string(), x))),
        get: |c| Some(c.node_id.0.to_string()),
    },
    Setting {
        key: "log.dirs",
        set: |d, k, v| dir_list(k, v).map(|x| d.log_dirs = Some(x)),
        get: |c| Some(c.log_dirs.join(",")),
    },
    Setting {
        key: "log.dir",
        set: |d, k, v| dir_list(k, v).map(|x| d.log_dir = Some(x)),
        get: |c| Some(c.log_dirs.join(",")),
    },
    Setting {
        key: "num.partitions",
        set: |d, k, v| number(k, v, POSITIVE_INT).map(|x| d.config.num_partitions = x),
        get: |c| Some(c.num_partitions.to_string()),
    },
    Setting {
        key: "default.replication.factor",
        set: |d, k, v| number(k, v, REPLICAS).map(|x| d.config.default_replication_factor = x),
        get: |c| Some(c.default_replication_factor.to_string()),
    },
    Setting {
        key: "min.insync.replicas",
        set: |d, k, v| number(k, v, REPLICAS).map(|x| d.config.min_insync_replicas = x),
        get: |c| Some(c.min_insync_replicas.to_string()),
    },
    Setting {
        key: "replica.lag.time.max.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_LONG).map(|x| d.config.replica_lag_time_max_ms = x)
        },
        get: |c| Some(c.replica_lag_time_max_ms.to_string()),
    },
    Setting {
        key: "replica.fetch.wait.max.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.replica_fetch_wait_max_ms = x)
        },
        get: |c| Some(c.replica_fetch_wait_max_ms.to_string()),
    },
    Setting {
        key: "replica.fetch.max.bytes",
        set: |d, k, v| number(k, v, NON_NEGATIVE_INT).map(|x| d.config.replica_fetch_max_bytes = x),
        get: |c| Some(c.replica_fetch_max_bytes.to_string()),
    },
    Setting {
        key: "replica.fetch.backoff.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.replica_fetch_backoff_ms = x)
        },
        get: |c| Some(c.replica_fetch_backoff_ms.to_string()),
    },
    Setting {
        key: "replica.socket.timeout.ms",
        set: |d, k, v| number(k, v, POSITIVE_INT).map(|x| d.config.replica_socket_timeout_ms = x),
        get: |c| Some(c.replica_socket_timeout_ms.to_string()),
    },
    Setting {
        key: "log.flush.interval.messages",
        set: |d, k, v| {
            number(k, v, POSITIVE_LONG).map(|x| d.config.log_flush_interval_messages = x)
        },
        get: |c| Some(c.log_flush_interval_messages.to_string()),
    },
    Setting {
        key: "log.flush.interval.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_LONG).map(|x| d.config.log_flush_interval_ms = Some(x))
        },
        get: |c| c.log_flush_interval_ms.map(|ms| ms.to_string()),
    },
    Setting {
        key: "log.segment.bytes",
        set: |d, k, v| number(k, v, SEGMENT_BYTES).map(|x| d.config.log_segment_bytes = x),
        get: |c| Some(c.log_segment_bytes.to_string()),
    },
    Setting {
        key: "log.roll.ms",
        set: |d, k, v| number(k, v, POSITIVE_LONG).map(|x| d.log_roll_ms = Some(x)),
        get: |c| Some(c.log_roll_ms.to_string()),
    },
    Setting {
        key: "log.roll.hours",
        set: |d, k, v| {
            number(k, v, POSITIVE_INT).map(|h: u64| d.log_roll_hours_ms = Some(h * MS_PER_HOUR))
        },
        get: |c| in_unit(c.log_roll_ms, MS_PER_HOUR),
    },
    Setting {
        key: "log.retention.ms",
        set: |d, k, v| limit(k, v, LIMIT_LONG).map(|x| d.retention_ms = Some(x)),
        get: |c| Some(show_limit(c.log_retention_ms)),
    },
    Setting {
        key: "log.retention.minutes",
        set: |d, k, v| {
            limit(k, v, LIMIT_INT)
                .map(|x| d.retention_minutes_ms = Some(x.map(|m| m * MS_PER_MINUTE)))
        },
        get: |c| limit_in_unit(c.log_retention_ms, MS_PER_MINUTE),
    },
    Setting {
        key: "log.retention.hours",
        set: |d, k, v| {
            limit(k, v, LIMIT_INT).map(|x| d.retention_hours_ms = Some(x.map(|h| h * MS_PER_HOUR)))
        },
        get: |c| limit_in_unit(c.log_retention_ms, MS_PER_HOUR),
    },
    Setting {
        key: "log.retention.bytes",
        set: |d, k, v| limit(k, v, LIMIT_LONG).map(|x| d.config.log_retention_bytes = x),
        get: |c| Some(show_limit(c.log_retention_bytes)),
    },
    Setting {
        key: "log.retention.check.interval.ms",
        set: |d, k, v| {
            number(k, v, POSITIVE_LONG).map(|x| d.config.log_retention_check_interval_ms = x)
        },
        get: |c| Some(c.log_retention_check_interval_ms.to_string()),
    },
    Setting {
        key: "log.index.interval.bytes",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.log_index_interval_bytes = x)
        },
        get: |c| Some(c.log_index_interval_bytes.to_string()),
    },
    Setting {
        key: "log.index.size.max.bytes",
        set: |d, k, v| number(k, v, INDEX_SIZE).map(|x| d.config.log_index_size_max_bytes = x),
        get: |c| Some(c.log_index_size_max_bytes.to_string()),
    },
    Setting {
        key: "log.flush.offset.checkpoint.interval.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT)
                .map(|x| d.config.log_flush_offset_checkpoint_interval_ms = x)
        },
        get: |c| Some(c.log_flush_offset_checkpoint_interval_ms.to_string()),
    },
    Setting {
        key: "metadata.log.dir",
        set: |d, k, v| one_dir(k, v).map(|x| d.config.metadata_log_dir = Some(x)),
        get: |c| c.metadata_log_dir.clone(),
    },
    Setting {
        key: "unclean.leader.election.enable",
        set: |d, k, v| boolean(k, v).map(|x| d.config.unclean_leader_election_enable = x),
        get: |c| Some(c.unclean_leader_election_enable.to_string()),
    },
    Setting {
        key: "auto.create.topics.enable",
        set: |d, k, v| boolean(k, v).map(|x| d.config.auto_create_topics_enable = x),
        get: |c| Some(c.auto_create_topics_enable.to_string()),
    },
    Setting {
        key: "broker.heartbeat.interval.ms",
        set: |d, k, v| {
            number(k, v, POSITIVE_INT).map(|x| d.config.broker_heartbeat_interval_ms = x)
        },
        get: |c| Some(c.broker_heartbeat_interval_ms.to_string()),
    },
    Setting {
        key: "broker.session.timeout.ms",
        set: |d, k, v| number(k, v, POSITIVE_INT).map(|x| d.config.broker_session_timeout_ms = x),
        get: |c| Some(c.broker_session_timeout_ms.to_string()),
    },
    Setting {
        key: "socket.request.max.bytes",
        set: |d, k, v| number(k, v, POSITIVE_INT).map(|x| d.config.socket_request_max_bytes = x),
        get: |c| Some(c.socket_request_max_bytes.to_string()),
    },
    Setting {
        key: "message.max.bytes",
        set: |d, k, v| number(k, v, NON_NEGATIVE_INT).map(|x| d.config.message_max_bytes = x),
        get: |c| Some(c.message_max_bytes.to_string()),
    },
    Setting {
        key: "connections.max.idle.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_LONG).map(|x| d.config.connections_max_idle_ms = x)
        },
        get: |c| Some(c.connections_max_idle_ms.to_string()),
    },
    Setting {
        key: "offsets.topic.num.partitions",
        set: |d, k, v| {
            number(k, v, POSITIVE_INT).map(|x| d.config.offsets_topic_num_partitions = x)
        },
        get: |c| Some(c.offsets_topic_num_partitions.to_string()),
    },
    Setting {
        key: "offsets.topic.replication.factor",
        set: |d, k, v| {
            number(k, v, REPLICAS).map(|x| d.config.offsets_topic_replication_factor = x)
        },
        get: |c| Some(c.offsets_topic_replication_factor.to_string()),
    },
    Setting {
        key: "group.initial.rebalance.delay.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.group_initial_rebalance_delay_ms = x)
        },
        get: |c| Some(c.group_initial_rebalance_delay_ms.to_string()),
    },
    Setting {
        key: "group.min.session.timeout.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.group_min_session_timeout_ms = x)
        },
        get: |c| Some(c.group_min_session_timeout_ms.to_string()),
    },
    Setting {
        key: "group.max.session.timeout.ms",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.group_max_session_timeout_ms = x)
        },
        get: |c| Some(c.group_max_session_timeout_ms.to_string()),
    },
    Setting {
        key: "group.max.size",
        set: |d, k, v| number(k, v, POSITIVE_INT).map(|x| d.config.group_max_size = x),
        get: |c| Some(c.group_max_size.to_string()),
    },
    Setting {
        key: "offsets.retention.minutes",
        set: |d, k, v| {
            number(k, v, POSITIVE_INT)
                .map(|m: u64| d.config.offsets_retention_ms = m * MS_PER_MINUTE)
        },
        get: |c| in_unit(c.offsets_retention_ms, MS_PER_MINUTE),
    },
    Setting {
        key: "offsets.retention.check.interval.ms",
        set: |d, k, v| {
            number(k, v, POSITIVE_LONG).map(|x| d.config.offsets_retention_check_interval_ms = x)
        },
        get: |c| Some(c.offsets_retention_check_interval_ms.to_string()),
    },
    Setting {
        key: "offset.metadata.max.bytes",
        set: |d, k, v| {
            number(k, v, NON_NEGATIVE_INT).map(|x| d.config.offset_metadata_max_bytes = x)
        },
        get: |c| Some(c.offset_metadata_max_bytes.to_string()),
    },
    Setting {
        key: "listeners",
        set: |d, k, v| {
            if v.is_empty() {
                return Err(invalid(
                    k,
                    v,
                    format!("must name at least one listener, such as {DEFAULT_LISTENERS}"),
                ));
            }
            d.config.listeners = v.to_string();
            Ok(())
        },
        get: |c| Some(c.listeners.clone()),
    },
    Setting {
        key: "advertised.listeners",
        set: |d, _, v| {
            d.config.advertised_listeners = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
        get: |c| c.advertised_listeners.clone(),
    },
    Setting {
        key: "process.roles",
        set: |d, k, v| process_roles(k, v).map(|x| d.config.process_roles = x),
        get: |c| Some(c.process_roles.to_string()),
    },
    Setting {
        key: "controller.quorum.voters",
        set: |d, k, v| quorum_voters(k, v).map(|x| d.config.controller_quorum_voters = x),
        get: |c| {
            let voters: Vec<String> = c
                .controller_quorum_voters
                .iter()
                .map(|v| v.to_string())
                .collect();
            Some(voters.join(","))
        },
    },
];

/// The settings being assembled. Keys whose effect depends on a sibling key are held
/// apart until every pair is in, so precedence does not depend on the order of lines.
#[derive(Default)]
struct Draft {
    config: BrokerConfig,
    /// (value as written, parsed), for the conflict message.
    node_id: Option<(String, u32)>,
    broker_id: Option<(String, u32)>,
    log_dirs: Option<Vec<String>>,
    log_dir: Option<Vec<String>>,
    log_roll_ms: Option<u64>,
    log_roll_hours_ms: Option<u64>,
    retention_ms: Option<Option<u64>>,
    retention_minutes_ms: Option<Option<u64>>,
    retention_hours_ms: Option<Option<u64>>,
}

impl Draft {
    fn finish(mut self, warnings: &mut Vec<ConfigWarning>) -> Result<BrokerConfig, ConfigError> {
        match (&self.node_id, &self.broker_id) {
            (Some((node_raw, node)), Some((broker_raw, broker))) if node != broker => {
                return Err(ConfigError::Conflict {
                    key: "broker.id".to_string(),
                    value: broker_raw.clone(),
                    other_key: "node.id".to_string(),
                    other_value: node_raw.clone(),
                    reason: "both set this broker's id (broker.id is Kafka's older name for \
                             node.id); keep one, or give both the same value."
                        .to_string(),
                });
            }
            (Some((_, id)), _) | (None, Some((_, id))) => self.config.node_id = NodeId(*id),
            (None, None) => {}
        }

        let mut overridden = |key: &str, by: &str| {
            warnings.push(ConfigWarning {
                key: key.to_string(),
                message: format!("ignored: {by} is also set and takes precedence, as in Kafka."),
            })
        };
        self.check_quorum()?;

        if let Some(dirs) = first_of(
            &mut overridden,
            [("log.dirs", self.log_dirs), ("log.dir", self.log_dir)],
        ) {
            self.config.log_dirs = dirs;
        }
        if let Some(ms) = first_of(
            &mut overridden,
            [
                ("log.roll.ms", self.log_roll_ms),
                ("log.roll.hours", self.log_roll_hours_ms),
            ],
        ) {
            self.config.log_roll_ms = ms;
        }
        if let Some(ms) = first_of(
            &mut overridden,
            [
                ("log.retention.ms", self.retention_ms),
                ("log.retention.minutes", self.retention_minutes_ms),
                ("log.retention.hours", self.retention_hours_ms),
            ],
        ) {
            self.config.log_retention_ms = ms;
        }
        Ok(self.config)
    }
}

impl Draft {
    /// `process.roles`, `node.id` and `controller.quorum.voters` must agree, as KRaft
    /// requires: a controller is one of the voters, a broker-only node is not, and a
    /// broker-only node must be told where the quorum is.
    fn check_quorum(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let node = c.node_id;
        let voters = &c.controller_quorum_voters;
        let listed = voters.iter().any(|v| v.id == node);
        let shown_voters = || {
            self.config
                .get("controller.quorum.voters")
                .unwrap_or_default()
        };
        let conflict = |reason: String| ConfigError::Conflict {
            key: "process.roles".to_string(),
            value: c.process_roles.to_string(),
            other_key: "controller.quorum.voters".to_string(),
            other_value: shown_voters(),
            reason,
        };
        if voters.is_empty() && !c.process_roles.controller {
            return Err(conflict(
                "a node that is not a controller must be told where the quorum is: list the \
                 controllers as id@host:port"
                    .to_string(),
            ));
        }
        if !voters.is_empty() && c.process_roles.controller && !listed {
            return Err(conflict(format!(
                "this node (node.id = {}) is a controller, so it must be one of the voters; \
                 add it, or correct node.id",
                node.0
            )));
        }
        if listed && !c.process_roles.controller {
            return Err(conflict(format!(
                "this node (node.id = {}) is a voter but not a controller; add controller to \
                 process.roles, or remove it from the voters",
                node.0
            )));
        }
        Ok(())
    }
}

/// The first value given, in order of precedence; each later one that was also given is
/// reported as overridden by the winner.
fn first_of<T, const N: usize>(
    overridden: &mut impl FnMut(&str, &str),
    candidates: [(&str, Option<T>); N],
) -> Option<T> {
    let mut winner: Option<(&str, T)> = None;
    for (key, value) in candidates {
        match (&winner, value) {
            (None, Some(v)) => winner = Some((key, v)),
            (Some((by, _)), Some(_)) => overridden(key, by),
            (_, None) => {}
        }
    }
    winner.map(|(_, v)| v)
}

/// The range a number may take: Kafka's type (INT, LONG or SHORT) sets `max`, Kafka's
/// validator sets `min`, and `below_min` says why in the operator's terms.
struct Bounds {
    min: i64,
    max: i64,
    below_min: &'static str,
}

const INT_MAX: i64 = i32::MAX as i64;
const SHORT_MAX: i64 = i16::MAX as i64;

const POSITIVE_INT: Bounds = Bounds {
    min: 1,
    max: INT_MAX,
    below_min: "must be at least 1",
};
const POSITIVE_LONG: Bounds = Bounds {
    min: 1,
    max: i64::MAX,
    below_min: "must be at least 1",
};
const NON_NEGATIVE_INT: Bounds = Bounds {
    min: 0,
    max: INT_MAX,
    below_min: "must not be negative",
};
const NON_NEGATIVE_LONG: Bounds = Bounds {
    min: 0,
    max: i64::MAX,
    below_min: "must not be negative",
};
/// Replica counts travel as INT16 in the protocol (CreateTopics), whatever Kafka's
/// config type says.
const REPLICAS: Bounds = Bounds {
    min: 1,
    max: SHORT_MAX,
    below_min: "must be at least 1",
};
const NODE_ID: Bounds = Bounds {
    min: 0,
    max: INT_MAX,
    below_min: "must not be negative; Eddy does not generate broker ids (Kafka's \
                broker.id = -1), so give each broker its own",
};
/// Kafka's floor is `LegacyRecord.RECORD_OVERHEAD_V0`: a segment must hold at least one
/// empty record of the oldest format.
const SEGMENT_BYTES: Bounds = Bounds {
    min: 14,
    max: INT_MAX,
    below_min: "must be at least 14 (Kafka's floor: the overhead of one empty v0 record)",
};
/// Kafka's floor: an index must hold at least one 4-byte slot.
const INDEX_SIZE: Bounds = Bounds {
    min: 4,
    max: INT_MAX,
    below_min: "must be at least 4 (Kafka's floor)",
};
/// Limits where Kafka reads -1 as "no limit".
const LIMIT_LONG: Bounds = Bounds {
    min: -1,
    max: i64::MAX,
    below_min: "must be -1 (no limit) or a number that is not negative",
};
const LIMIT_INT: Bounds = Bounds {
    max: INT_MAX,
    ..LIMIT_LONG
};

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses a whole number as Kafka's `Long.parseLong` does (optional sign, decimal
/// digits, nothing else), checks it against `bounds` and narrows it to the field's type.
fn number<T: TryFrom<i64>>(key: &str, value: &str, bounds: Bounds) -> Result<T, ConfigError> {
    use std::num::IntErrorKind;
    let n = match value.parse::<i64>() {
        Ok(n) => n,
        Err(e) => {
            return Err(invalid(
                key,
                value,
                match e.kind() {
                    IntErrorKind::Empty => {
                        "a whole number is required; give one or remove the line to use the \
                     default"
                            .to_string()
                    }
                    IntErrorKind::PosOverflow => format!("must be at most {}", bounds.max),
                    IntErrorKind::NegOverflow => bounds.below_min.to_string(),
                    _ => {
                        "must be a whole number written in decimal digits, such as 1000".to_string()
                    }
                },
            ))
        }
    };
    if n < bounds.min {
        return Err(invalid(key, value, bounds.below_min));
    }
    if n > bounds.max {
        return Err(invalid(
            key,
            value,
            format!("must be at most {}", bounds.max),
        ));
    }
    match T::try_from(n) {
        Ok(t) => Ok(t),
        Err(_) => panic!("{key} = {n} passed its bounds but does not fit its field"),
    }
}

/// A number where -1 means "no limit".
fn limit(key: &str, value: &str, bounds: Bounds) -> Result<Option<u64>, ConfigError> {
    let n: i64 = number(key, value, bounds)?;
    assert!(n >= -1, "limit bounds must not go below -1");
    Ok(u64::try_from(n).ok())
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "must be true or false"))
    }
}

/// A comma-separated list of directories, each trimmed, none empty.
fn dir_list(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let dirs: Vec<String> = value.split(',').map(|d| d.trim().to_string()).collect();
    if dirs.iter().any(|d| d.is_empty()) {
        return Err(invalid(
            key,
            value,
            "must list one or more directories separated by commas, with no empty entry",
        ));
    }
    Ok(dirs)
}

/// One directory: not empty, and not a list (`metadata.log.dir` names a single place).
fn one_dir(key: &str, value: &str) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(invalid(
            key,
            value,
            "must name a directory; remove the line to keep the metadata log in the first of log.dirs",
        ));
    }
    if value.contains(',') {
        return Err(invalid(
            key,
            value,
            "must name one directory, not a list: the metadata log lives in a single place",
        ));
    }
    Ok(value.to_string())
}

/// `process.roles`: `broker`, `controller`, or both, comma-separated, each once.
fn process_roles(key: &str, value: &str) -> Result<ProcessRoles, ConfigError> {
    const RULE: &str = "must be broker, controller, or broker,controller";
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in value.split(',').map(str::trim) {
        let slot = match role {
            "broker" => &mut roles.broker,
            "controller" => &mut roles.controller,
            _ => return Err(invalid(key, value, RULE)),
        };
        if *slot {
            return Err(invalid(
                key,
                value,
                format!("{RULE}; {role} is listed twice"),
            ));
        }
        *slot = true;
    }
    Ok(roles)
}

/// `controller.quorum.voters`: `id@host:port` entries separated by commas, each id
/// once. Empty means no list.
fn quorum_voters(key: &str, value: &str) -> Result<Vec<QuorumVoter>, ConfigError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        let bad = |why: String| {
            invalid(
                key,
                value,
                format!("entry {entry:?} {why}; write each voter as id@host:port, such as 1@localhost:9093"),
            )
        };
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| bad("has no '@' between the node id and the address".to_string()))?;
        let id: u32 = match id.parse::<u32>() {
            Ok(id) if i64::from(id) <= INT_MAX => id,
            _ => {
                return Err(bad(format!(
                    "has node id {id:?}, which is not a whole number from 0 to {INT_MAX}"
                )))
            }
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("has no ':' before the port".to_string()))?;
        if host.is_empty() {
            return Err(bad("has no host".to_string()));
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => {
                return Err(bad(format!(
                    "has port {port:?}, which is not from 1 to 65535"
                )))
            }
        };
        if voters.iter().any(|v| v.id.0 == id) {
            return Err(bad(format!(
                "repeats node id {id}: each voter is listed once"
            )));
        }
        voters.push(QuorumVoter {
            id: NodeId(id),
            host: host.to_string(),
            port,
        });
    }
    Ok(voters)
}

fn show_limit(limit: Option<u64>) -> String {
    limit.map_or("-1".to_string(), |n| n.to_string())
}

fn in_unit(ms: u64, unit_ms: u64) -> Option<String> {
    let whole = ms / unit_ms;
    (whole * unit_ms == ms).then(|| whole.to_string())
}

fn limit_in_unit(ms: Option<u64>, unit_ms: u64) -> Option<String> {
    match ms {
        None => Some("-1".to_string()),
        Some(ms) => in_unit(ms, unit_ms),
    }
}

/// The known key closest to `key`, if it is close enough to be a typo: at most a
/// quarter of the key's length in edits, and never more than three. Case is ignored,
/// since `NUM.PARTITIONS` is a typo too. Ties go to the earlier key, for determinism.
fn suggest(key: &str) -> Option<String> {
    let lowered = key.to_lowercase();
    let max_distance = (lowered.chars().count() / 4).clamp(1, 3);
    SETTINGS
        .iter()
        .map(|s| s.key)
        .chain(IGNORED.iter().map(|(k, _)| *k))
        .map(|known| (levenshtein(&lowered, known), known))
        .filter(|(distance, _)| *distance <= max_distance)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known.to_string())
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by chars.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // previous[j]: distance between the prefix of `a` seen so far and b[..j].
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;

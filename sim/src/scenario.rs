//! Scenarios: what a simulated run looks like, as a TOML file under `scenarios/`.
//!
//! A scenario names the cluster (brokers, topics, broker configuration by Kafka's
//! server.properties keys), the workload (producers and readers), the network and disk
//! behaviour, the faults (a fixed schedule, random rates, or both), how long the run
//! lasts and when faults stop, and what the checkers may accept. Everything random in a
//! run is drawn from the run's seed; the scenario only sets the distributions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "defaults::brokers")]
    pub brokers: u32,
    #[serde(default = "defaults::duration_ms")]
    pub duration_ms: u64,
    /// When the safety phase ends: every fault heals here (partitions heal, paused
    /// brokers resume, crashed brokers restart, clocks and disks return to normal).
    #[serde(default = "defaults::faults_until_ms")]
    pub faults_until_ms: u64,
    /// After healing, every acks=all write still pending must be acknowledged within this.
    #[serde(default = "defaults::liveness_bound_ms")]
    pub liveness_bound_ms: u64,
    /// Broker configuration by server.properties key.
    #[serde(default)]
    pub broker_config: BTreeMap<String, String>,
    pub topics: Vec<TopicSpec>,
    #[serde(default)]
    pub producers: Vec<ProducerSpec>,
    #[serde(default)]
    pub readers: ReaderSpec,
    /// Consumer groups: members that join, process, commit and fail (`sim/src/consumer.rs`).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub disk: DiskSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    #[serde(default)]
    pub random_faults: Option<RandomFaults>,
    #[serde(default)]
    pub expect: Expect,
    /// How many brokers are also controller voters (`process.roles=broker,controller`,
    /// KRaft's combined mode): the first `voters` brokers.
    #[serde(default = "defaults::voters")]
    pub voters: u32,
    /// Whether the brokers that are no voters find the quorum themselves, announcing
    /// themselves to every voter (Raft `Observe`) as `eddy broker` with
    /// `process.roles=broker` does, instead of every voter being configured with them.
    #[serde(default)]
    pub observers_announce: bool,
    /// What the broker configuration check had to say (keys Kafka knows that Eddy
    /// ignores), for the runner to show once.
    #[serde(skip)]
    pub config_warnings: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    #[serde(default = "defaults::one")]
    pub partitions: u32,
    #[serde(default = "defaults::one")]
    pub replication_factor: u32,
    /// When an admin client asks the controller to create the topic (CreateTopics);
    /// 0 = at startup.
    #[serde(default)]
    pub create_at_ms: u64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AcksSpec {
    #[serde(rename = "0")]
    Zero,
    #[serde(rename = "1")]
    One,
    All,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    pub topic: String,
    pub acks: AcksSpec,
    #[serde(default)]
    pub idempotent: bool,
    /// How many producers of this kind.
    #[serde(default = "defaults::one")]
    pub count: u32,
    /// Time between one batch's outcome and the next send.
    #[serde(default = "defaults::interval_ms")]
    pub interval_ms: u64,
    /// Records per batch, drawn uniformly from [min, max].
    #[serde(default = "defaults::records_per_batch")]
    pub records_per_batch: [u32; 2],
    /// Bytes per record value, at least enough for the record's identity.
    #[serde(default = "defaults::value_bytes")]
    pub value_bytes: u32,
}

/// One consumer group and what happens to its members.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group id.
    pub name: String,
    /// The topic every member subscribes to.
    pub topic: String,
    /// How many members (each a slot that can crash and restart).
    #[serde(default = "defaults::one")]
    pub members: u32,
    /// `range`, `roundrobin` or `cooperative-sticky` (KIP-429).
    #[serde(default = "defaults::assignor")]
    pub assignor: String,
    /// Whether members carry `group.instance.id` (KIP-345 static membership); a restarted
    /// static member comes back under the same instance id, a dynamic one as a new member.
    #[serde(default)]
    pub static_members: bool,
    #[serde(default = "defaults::session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// At least `session_timeout_ms` (as Kafka's `max.poll.interval.ms` defaults are).
    #[serde(default = "defaults::rebalance_timeout_ms")]
    pub rebalance_timeout_ms: u64,
    #[serde(default = "defaults::heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// How often a member commits what it processed (`auto.commit.interval.ms`).
    #[serde(default = "defaults::commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// When the first member starts ...
    #[serde(default = "defaults::start_ms")]
    pub start_ms: u64,
    /// ... and the time between one member's start and the next's.
    #[serde(default)]
    pub join_every_ms: u64,
    /// What happens to members, and when.
    #[serde(default)]
    pub events: Vec<MemberEventSpec>,
}

/// Something that happens to one member of a group.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEventSpec {
    pub at_ms: u64,
    /// The member's number in its group (0-based).
    pub member: u32,
    pub action: MemberAction,
    /// For `crash` and `leave`: when it starts again (never, if absent); for `pause` and
    /// `isolate`: how long.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MemberAction {
    /// The process dies: no LeaveGroup, no last commit.
    Crash,
    /// Graceful close: revoke, commit, LeaveGroup (a static member leaves none, as the
    /// Java client does on close).
    Leave,
    /// The process stops (a long GC pause) for `duration_ms`.
    Pause,
    /// The member is cut off from every broker for `duration_ms`.
    Isolate,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    /// Readers that each consume every partition from offset 0.
    #[serde(default = "defaults::one")]
    pub count: u32,
}

impl Default for ReaderSpec {
    fn default() -> ReaderSpec {
        ReaderSpec { count: 1 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way delay of each message, uniform in [min, max] ms.
    #[serde(default = "defaults::delay_ms")]
    pub delay_ms: [u64; 2],
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a message is held back long enough to overtake others.
    #[serde(default)]
    pub reorder: f64,
}

impl Default for NetworkSpec {
    fn default() -> NetworkSpec {
        NetworkSpec {
            delay_ms: defaults::delay_ms(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Time a sync takes, uniform in [min, max] ms.
    #[serde(default = "defaults::sync_latency_ms")]
    pub sync_latency_ms: [u64; 2],
    /// On a crash, the probability that unsynced writes reached the disk anyway (a random
    /// prefix of them).
    #[serde(default = "defaults::half")]
    pub crash_keeps_unsynced: f64,
    /// On a crash, the probability that the last write survives only in part.
    #[serde(default = "defaults::half")]
    pub torn_tail: f64,
}

impl Default for DiskSpec {
    fn default() -> DiskSpec {
        DiskSpec {
            sync_latency_ms: defaults::sync_latency_ms(),
            crash_keeps_unsynced: 0.5,
            torn_tail: 0.5,
        }
    }
}

/// Which broker a fault hits.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The current leader of the first partition of the first topic.
    Leader,
    /// The broker whose voter leads the metadata quorum.
    ControllerLeader,
    /// A voter that does not lead the metadata quorum.
    ControllerFollower,
    /// A broker drawn from the seed.
    #[default]
    Random,
    /// Broker number n (1-based).
    Broker(u32),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultAction {
    /// Crash (losing unsynced writes), restart after `duration_ms`.
    Crash {
        #[serde(default)]
        target: Target,
    },
    /// Crash every broker at once; each restarts after `duration_ms` (plus a little).
    CrashAll,
    /// Stop the process (SIGSTOP) for `duration_ms`.
    Pause {
        #[serde(default)]
        target: Target,
    },
    /// Cut the target off from everyone, the controller included.
    Isolate {
        #[serde(default)]
        target: Target,
    },
    /// Cut the target's outgoing messages only; it still hears everyone.
    OneWay {
        #[serde(default)]
        target: Target,
    },
    /// Split the brokers in two: the target and `with` (more brokers) on one side, the
    /// rest and the controller on the other.
    Split {
        #[serde(default)]
        target: Target,
        #[serde(default)]
        with: u32,
    },
    /// Make the target's clock run at `rate` times real time and jump by `jump_ms`.
    ClockSkew {
        #[serde(default)]
        target: Target,
        rate: f64,
        #[serde(default)]
        jump_ms: u64,
    },
    /// Make the target's syncs `factor` times slower.
    SlowDisk {
        #[serde(default)]
        target: Target,
        factor: u64,
    },
}

// No deny_unknown_fields here: serde cannot combine it with `flatten`. A misspelt key
// still fails, because FaultAction denies what it does not know.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct FaultSpec {
    pub at_ms: u64,
    /// How long the fault lasts before it heals.
    pub duration_ms: u64,
    /// Repeat the fault this many times in all ...
    #[serde(default = "defaults::one")]
    pub repeat: u32,
    /// ... starting one every this many ms.
    #[serde(default)]
    pub every_ms: u64,
    #[serde(flatten)]
    pub action: FaultAction,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    /// Time between the start of one random fault and the next, uniform in [min, max].
    pub every_ms: [u64; 2],
    /// How long each lasts, uniform in [min, max].
    pub duration_ms: [u64; 2],
    /// Which kinds to draw from: crash, pause, isolate, one-way, split, clock-skew, slow-disk.
    pub kinds: Vec<String>,
}

/// What the checkers accept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Acknowledged acks=all writes may be lost when every replica holding them crashed
    /// before syncing them (Kafka's promise without `log.flush.interval.messages=1`).
    /// When false, any lost acks=all write is a failure.
    #[serde(default = "defaults::yes")]
    pub allow_unsynced_loss: bool,
    /// With the quorum: at most this many times may a voter become the active
    /// controller in the whole run (the first election included). For scenarios whose
    /// faults must not depose a healthy leader (pre-vote).
    #[serde(default)]
    pub max_controller_elections: Option<u32>,
    /// With the quorum: at the end every partition's ISR holds all its replicas (a
    /// fenced broker that came back caught up and rejoined).
    #[serde(default)]
    pub isrs_complete_at_end: bool,
}

impl Default for Expect {
    fn default() -> Expect {
        Expect {
            allow_unsynced_loss: true,
            max_controller_elections: None,
            isrs_complete_at_end: false,
        }
    }
}

mod defaults {
    pub(super) fn brokers() -> u32 {
        3
    }
    pub(super) fn duration_ms() -> u64 {
        60_000
    }
    pub(super) fn faults_until_ms() -> u64 {
        30_000
    }
    pub(super) fn liveness_bound_ms() -> u64 {
        20_000
    }
    pub(super) fn assignor() -> String {
        "range".into()
    }
    pub(super) fn session_timeout_ms() -> u64 {
        6_000
    }
    pub(super) fn rebalance_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn heartbeat_interval_ms() -> u64 {
        1_000
    }
    pub(super) fn commit_interval_ms() -> u64 {
        500
    }
    pub(super) fn start_ms() -> u64 {
        1_000
    }
    pub(super) fn voters() -> u32 {
        3
    }
    pub(super) fn one() -> u32 {
        1
    }
    pub(super) fn interval_ms() -> u64 {
        20
    }
    pub(super) fn records_per_batch() -> [u32; 2] {
        [1, 5]
    }
    pub(super) fn value_bytes() -> u32 {
        32
    }
    pub(super) fn delay_ms() -> [u64; 2] {
        [1, 5]
    }
    pub(super) fn sync_latency_ms() -> [u64; 2] {
        [1, 4]
    }
    pub(super) fn half() -> f64 {
        0.5
    }
    pub(super) fn yes() -> bool {
        true
    }
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid TOML for a scenario: {message}")]
    Parse { path: String, message: String },
    #[error("scenario {name}: {message}")]
    Invalid { name: String, message: String },
}

impl Scenario {
    /// The brokers that are also controller voters: 1..=this.
    pub fn voter_count(&self) -> u32 {
        self.voters.min(self.brokers)
    }

    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_toml(&text).map_err(|e| match e {
            ScenarioError::Parse { message, .. } => ScenarioError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: "<inline>".into(),
            message: e.to_string(),
        })?;
        scenario.validate()?;
        scenario.add_offsets_topic()?;
        let pairs = scenario
            .broker_config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        match eddy_core::config::BrokerConfig::from_pairs(pairs) {
            Ok((_, warnings)) => {
                scenario.config_warnings = warnings.iter().map(|w| w.to_string()).collect();
            }
            Err(e) => {
                return Err(ScenarioError::Invalid {
                    name: scenario.name.clone(),
                    message: format!("broker_config: {e}"),
                })
            }
        }
        Ok(scenario)
    }

    /// With groups, the cluster needs `__consumer_offsets`: created by the admin path like
    /// any topic, with `offsets.topic.num.partitions` partitions and
    /// `offsets.topic.replication.factor` replicas, unless the scenario lists it.
    fn add_offsets_topic(&mut self) -> Result<(), ScenarioError> {
        let offsets = eddy_core::group::OFFSETS_TOPIC;
        if self.groups.is_empty() || self.topics.iter().any(|t| t.name == offsets) {
            return Ok(());
        }
        let pairs = self
            .broker_config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let (cfg, _) = eddy_core::config::BrokerConfig::from_pairs(pairs).map_err(|e| {
            ScenarioError::Invalid {
                name: self.name.clone(),
                message: format!("broker_config: {e}"),
            }
        })?;
        let replication_factor = u32::from(cfg.offsets_topic_replication_factor);
        if replication_factor > self.brokers {
            return Err(ScenarioError::Invalid {
                name: self.name.clone(),
                message: format!(
                    "offsets.topic.replication.factor = {replication_factor} exceeds brokers = {}: set it in broker_config",
                    self.brokers
                ),
            });
        }
        self.topics.push(TopicSpec {
            name: offsets.to_string(),
            partitions: cfg.offsets_topic_num_partitions,
            replication_factor,
            create_at_ms: 0,
        });
        Ok(())
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid {
            name: self.name.clone(),
            message,
        };
        if self.brokers == 0 || self.brokers > 64 {
            return Err(invalid(format!(
                "brokers = {}: must be between 1 and 64",
                self.brokers
            )));
        }
        if self.voters == 0 || self.voters > self.brokers {
            return Err(invalid(format!(
                "voters = {}: must be between 1 and brokers = {}",
                self.voters, self.brokers
            )));
        }
        if self.topics.is_empty() {
            return Err(invalid(
                "no topics: add at least one [[topics]] table".into(),
            ));
        }
        for t in &self.topics {
            if t.partitions == 0 || t.replication_factor == 0 || t.replication_factor > self.brokers
            {
                return Err(invalid(format!(
                    "topic {}: partitions = {} and replication_factor = {} must be at least 1, and the replication factor at most brokers = {}",
                    t.name, t.partitions, t.replication_factor, self.brokers
                )));
            }
        }
        for p in &self.producers {
            if !self.topics.iter().any(|t| t.name == p.topic) {
                return Err(invalid(format!(
                    "a producer writes to topic {}, which is not in [[topics]]",
                    p.topic
                )));
            }
            if p.records_per_batch[0] == 0 || p.records_per_batch[0] > p.records_per_batch[1] {
                return Err(invalid(format!(
                    "records_per_batch = {:?}: must be [min, max] with 1 <= min <= max",
                    p.records_per_batch
                )));
            }
        }
        for g in &self.groups {
            if !self.topics.iter().any(|t| t.name == g.topic) {
                return Err(invalid(format!(
                    "group {} subscribes to topic {}, which is not in [[topics]]",
                    g.name, g.topic
                )));
            }
            if eddy_core::group::Assignor::from_name(&g.assignor).is_none() {
                return Err(invalid(format!(
                    "group {}: assignor = {:?}: use range, roundrobin or cooperative-sticky",
                    g.name, g.assignor
                )));
            }
            if g.members == 0 || g.rebalance_timeout_ms < g.session_timeout_ms {
                return Err(invalid(format!(
                    "group {}: members = {} must be at least 1 and rebalance_timeout_ms = {} at least session_timeout_ms = {} (a member's own view of its session then ends before the coordinator can give its partitions away)",
                    g.name, g.members, g.rebalance_timeout_ms, g.session_timeout_ms
                )));
            }
            if g.heartbeat_interval_ms == 0 || g.heartbeat_interval_ms * 3 > g.session_timeout_ms {
                return Err(invalid(format!(
                    "group {}: heartbeat_interval_ms = {} must be positive and at most a third of session_timeout_ms = {}",
                    g.name, g.heartbeat_interval_ms, g.session_timeout_ms
                )));
            }
            let last_start = g.start_ms + g.join_every_ms * u64::from(g.members - 1);
            let late = g
                .events
                .iter()
                .find(|e| e.at_ms + e.duration_ms.unwrap_or(0) > self.faults_until_ms);
            if last_start > self.faults_until_ms || late.is_some() {
                return Err(invalid(format!(
                    "group {}: every member start and member event must be over by faults_until_ms = {} (membership is stable in the liveness phase)",
                    g.name, self.faults_until_ms
                )));
            }
            if let Some(e) = g.events.iter().find(|e| e.member >= g.members) {
                return Err(invalid(format!(
                    "group {}: an event names member {}, but the group has {} (numbered from 0)",
                    g.name, e.member, g.members
                )));
            }
        }
        if self.faults_until_ms > self.duration_ms {
            return Err(invalid(format!(
                "faults_until_ms = {} is after duration_ms = {}",
                self.faults_until_ms, self.duration_ms
            )));
        }
        if self.faults_until_ms + self.liveness_bound_ms > self.duration_ms {
            return Err(invalid(format!(
                "faults_until_ms + liveness_bound_ms = {} exceeds duration_ms = {}: the run would end before liveness can be judged",
                self.faults_until_ms + self.liveness_bound_ms,
                self.duration_ms
            )));
        }
        for p in [
            self.network.loss,
            self.network.duplicate,
            self.network.reorder,
            self.disk.crash_keeps_unsynced,
            self.disk.torn_tail,
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(format!("probability {p} is outside [0, 1]")));
            }
        }
        if let Some(r) = &self.random_faults {
            for k in &r.kinds {
                if !RANDOM_KINDS.contains(&k.as_str()) {
                    return Err(invalid(format!(
                        "random fault kind {k:?} is unknown; use one of {RANDOM_KINDS:?}"
                    )));
                }
            }
            if r.every_ms[0] == 0
                || r.every_ms[0] > r.every_ms[1]
                || r.duration_ms[0] > r.duration_ms[1]
            {
                return Err(invalid("random_faults: every_ms and duration_ms must be [min, max] with 0 < min <= max".into()));
            }
        }
        Ok(())
    }
}

/// The fault kinds `random_faults.kinds` may name.
pub const RANDOM_KINDS: [&str; 7] = [
    "crash",
    "pause",
    "isolate",
    "one-way",
    "split",
    "clock-skew",
    "slow-disk",
];

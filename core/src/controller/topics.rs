//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions and per-topic
//! configs (IncrementalAlterConfigs), with Kafka's validation and error codes.
//!
//! A new partition's replicas come from `placement.rs`; its first replica leads, the ISR
//! is all replicas, and both epochs start at 0 (KIP-631's `PartitionRecord`).

use crate::controller::active::Step;
use crate::controller::partitions::UNCLEAN_LEADER_ELECTION_ENABLE;
use crate::controller::placement;
use crate::controller::{Controller, ControllerReply, MetadataRecord};
use crate::error::ErrorCode;
use crate::metadata::PartitionState;
use crate::types::{Epoch, TopicPartition};

/// The most partitions one CreateTopics or CreatePartitions may add: each is a record
/// in the metadata log and state on every broker, so a typo like 1000000 is refused
/// rather than written (Kafka bounds the same through `max.partitions`-style quotas).
pub const MAX_NEW_PARTITIONS: u32 = 10_000;

/// Kafka's longest topic name: 249, so that `<topic>-<partition>` directory names and
/// internal suffixes stay under common file-name limits.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Whether `name` is a legal topic name under Kafka's rules (`Topic.validate`): 1 to 249
/// characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a topic name must not be empty".to_string());
    }
    if name == "." || name == ".." {
        return Err(format!("a topic name must not be {name:?}"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "topic name is {} characters long: the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} holds {c:?}: only ASCII letters, digits, '.', '_' and '-' \
             are allowed"
        ));
    }
    Ok(())
}

/// The per-topic configs Eddy accepts, and what values each takes.
enum ConfigType {
    /// A whole number at least `min` (-1 often meaning "no limit").
    Long {
        min: i64,
    },
    Bool,
    OneOf(&'static [&'static str]),
}

const TOPIC_CONFIGS: &[(&str, ConfigType)] = &[
    ("retention.ms", ConfigType::Long { min: -1 }),
    ("retention.bytes", ConfigType::Long { min: -1 }),
    ("segment.bytes", ConfigType::Long { min: 14 }),
    ("segment.ms", ConfigType::Long { min: 1 }),
    ("min.insync.replicas", ConfigType::Long { min: 1 }),
    ("max.message.bytes", ConfigType::Long { min: 0 }),
    ("flush.messages", ConfigType::Long { min: 1 }),
    ("flush.ms", ConfigType::Long { min: 0 }),
    (UNCLEAN_LEADER_ELECTION_ENABLE, ConfigType::Bool),
    ("cleanup.policy", ConfigType::OneOf(&["delete"])),
    (
        "message.timestamp.type",
        ConfigType::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    (
        "compression.type",
        ConfigType::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
];

/// Whether `key = value` is a per-topic config the controller accepts (INVALID_CONFIG
/// if not).
pub fn config_valid(key: &str, value: &str) -> bool {
    let Some((_, kind)) = TOPIC_CONFIGS.iter().find(|(k, _)| *k == key) else {
        return false;
    };
    match kind {
        ConfigType::Long { min } => value.parse::<i64>().is_ok_and(|n| n >= *min),
        ConfigType::Bool => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        ConfigType::OneOf(allowed) => allowed.contains(&value),
    }
}

impl Controller {
    pub(crate) fn create_topic(
        &self,
        step: &mut Step<'_>,
        name: String,
        num_partitions: Option<u32>,
        replication_factor: Option<u16>,
        configs: Vec<(String, String)>,
    ) {
        let result =
            self.check_create_topic(step, &name, num_partitions, replication_factor, &configs);
        let result = result.map(|(count, rf)| {
            let topic_id = step.image().next_topic_id();
            step.emit(MetadataRecord::Topic {
                name: name.clone(),
                topic_id,
            });
            for (key, value) in configs {
                step.emit(MetadataRecord::TopicConfig {
                    topic: name.clone(),
                    key,
                    value: Some(value),
                });
            }
            self.add_partitions(step, &name, count, rf);
            topic_id
        });
        step.replies
            .push(ControllerReply::CreateTopic { name, result });
    }

    fn check_create_topic(
        &self,
        step: &Step<'_>,
        name: &str,
        num_partitions: Option<u32>,
        replication_factor: Option<u16>,
        configs: &[(String, String)],
    ) -> Result<(u32, usize), ErrorCode> {
        validate_topic_name(name).map_err(|_| ErrorCode::InvalidTopicException)?;
        if step.image().topic(name).is_some() {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        let count = num_partitions.unwrap_or(self.config.num_partitions);
        if count == 0 || count > MAX_NEW_PARTITIONS {
            return Err(ErrorCode::InvalidPartitions);
        }
        let rf = usize::from(replication_factor.unwrap_or(self.config.default_replication_factor));
        if rf == 0 || rf > step.image().unfenced_brokers().len() {
            return Err(ErrorCode::InvalidReplicationFactor);
        }
        if has_duplicate_keys(configs) {
            return Err(ErrorCode::InvalidRequest);
        }
        if configs.iter().any(|(k, v)| !config_valid(k, v)) {
            return Err(ErrorCode::InvalidConfig);
        }
        Ok((count, rf))
    }

    /// Appends `count` partitions of `rf` replicas to `topic`.
    fn add_partitions(&self, step: &mut Step<'_>, topic: &str, count: u32, rf: usize) {
        let image = step.image();
        let first = image
            .topic(topic)
            .expect("the topic exists")
            .partition_count;
        let brokers = image.unfenced_brokers();
        let lists = placement::assign(image, &brokers, count, rf);
        let incarnations: Vec<u64> = lists
            .iter()
            .map(|r| {
                image
                    .broker(r[0])
                    .expect("placed on registered brokers")
                    .incarnation
            })
            .collect();
        for (i, (replicas, incarnation)) in lists.into_iter().zip(incarnations).enumerate() {
            let state = PartitionState {
                leader: Some(replicas[0]),
                leader_epoch: Epoch(0),
                leader_incarnation: Some(incarnation),
                isr: replicas.clone(),
                replicas,
                partition_epoch: 0,
            };
            step.emit(MetadataRecord::Partition {
                partition: TopicPartition::new(topic, first + i as u32),
                state,
            });
        }
    }

    pub(crate) fn delete_topic(&self, step: &mut Step<'_>, name: String) {
        let result = match step.image().topic(&name) {
            None => Err(ErrorCode::UnknownTopicOrPartition),
            Some(t) => {
                let topic_id = t.topic_id;
                step.emit(MetadataRecord::RemoveTopic {
                    name: name.clone(),
                    topic_id,
                });
                Ok(())
            }
        };
        step.replies
            .push(ControllerReply::DeleteTopic { name, result });
    }

    /// Grows a topic to `count` partitions; the new ones get the first partition's
    /// replication factor.
    pub(crate) fn create_partitions(&self, step: &mut Step<'_>, topic: String, count: u32) {
        let result = (|| {
            let image = step.image();
            let t = image
                .topic(&topic)
                .ok_or(ErrorCode::UnknownTopicOrPartition)?;
            let current = t.partition_count;
            if count <= current || count - current > MAX_NEW_PARTITIONS {
                return Err(ErrorCode::InvalidPartitions);
            }
            let rf = image
                .partition(&TopicPartition::new(topic.clone(), 0))
                .map_or(1, |s| s.replicas.len());
            if rf > image.unfenced_brokers().len() {
                return Err(ErrorCode::InvalidReplicationFactor);
            }
            Ok((count - current, rf))
        })();
        let result = result.map(|(added, rf)| self.add_partitions(step, &topic, added, rf));
        step.replies
            .push(ControllerReply::CreatePartitions { topic, result });
    }

    pub(crate) fn alter_configs(
        &self,
        step: &mut Step<'_>,
        topic: String,
        configs: Vec<(String, Option<String>)>,
    ) {
        let result = check_alter_configs(step, &topic, &configs).map(|()| {
            let current = &step.image().topic(&topic).expect("checked").configs;
            let changes: Vec<(String, Option<String>)> = configs
                .into_iter()
                .filter(|(k, v)| current.get(k) != v.as_ref())
                .collect();
            for (key, value) in changes {
                step.emit(MetadataRecord::TopicConfig {
                    topic: topic.clone(),
                    key,
                    value,
                });
            }
            // Enabling unclean election may bring offline partitions back at once.
            let offline: Vec<TopicPartition> = step
                .image()
                .partitions_of_topic(&topic)
                .filter(|(_, s)| s.leader.is_none())
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in offline {
                self.reconcile(step, &tp);
            }
        });
        step.replies
            .push(ControllerReply::AlterConfigs { topic, result });
    }
}

fn check_alter_configs(
    step: &Step<'_>,
    topic: &str,
    configs: &[(String, Option<String>)],
) -> Result<(), ErrorCode> {
    if step.image().topic(topic).is_none() {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    if has_duplicate_keys(configs) {
        return Err(ErrorCode::InvalidRequest);
    }
    for (key, value) in configs {
        let valid = match value {
            Some(v) => config_valid(key, v),
            None => TOPIC_CONFIGS.iter().any(|(known, _)| known == key),
        };
        if !valid {
            return Err(ErrorCode::InvalidConfig);
        }
    }
    Ok(())
}

/// Whether a request names a config key twice (Kafka refuses it as INVALID_REQUEST).
fn has_duplicate_keys<V>(configs: &[(String, V)]) -> bool {
    configs
        .iter()
        .enumerate()
        .any(|(i, (k, _))| configs[..i].iter().any(|(other, _)| other == k))
}

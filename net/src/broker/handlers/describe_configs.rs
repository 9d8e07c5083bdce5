//! DescribeConfigs: a broker's effective configuration (every `server.properties` key
//! Eddy knows, as the broker runs with it), and a topic's: its own configs from the
//! metadata image (source TOPIC_CONFIG), the broker's defaults under the topic-level
//! names for the rest. Every resource asked about gets an answer (KAFKA-COMPAT item 10).

use eddy_core::config::BrokerConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// A topic's configuration: the topic-level key and its value, from the broker's.
fn topic_configs(cfg: &BrokerConfig) -> Vec<(&'static str, Option<String>)> {
    let or_minus_one = |v: Option<u64>| Some(v.map_or("-1".to_string(), |x| x.to_string()));
    vec![
        ("cleanup.policy", Some("delete".into())),
        ("compression.type", Some("producer".into())),
        (
            "flush.messages",
            Some(cfg.log_flush_interval_messages.to_string()),
        ),
        (
            "flush.ms",
            Some(
                cfg.log_flush_interval_ms
                    .unwrap_or(i64::MAX as u64)
                    .to_string(),
            ),
        ),
        ("max.message.bytes", Some(cfg.message_max_bytes.to_string())),
        ("message.timestamp.type", Some("CreateTime".into())),
        (
            "min.insync.replicas",
            Some(cfg.min_insync_replicas.to_string()),
        ),
        ("retention.bytes", or_minus_one(cfg.log_retention_bytes)),
        ("retention.ms", or_minus_one(cfg.log_retention_ms)),
        ("segment.bytes", Some(cfg.log_segment_bytes.to_string())),
        ("segment.ms", Some(cfg.log_roll_ms.to_string())),
        (
            "unclean.leader.election.enable",
            Some(cfg.unclean_leader_election_enable.to_string()),
        ),
    ]
}

pub(super) async fn handle(
    shared: &Shared,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len());
    for resource in req.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let wanted = |key: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
        };
        let entry = |key: &str, value: Option<String>, source: i8| {
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_value(value.map(StrBytes::from_string))
                .with_read_only(source == STATIC_BROKER_CONFIG)
                .with_config_source(source)
        };
        let name = resource.resource_name.as_str();
        results.push(match resource.resource_type {
            BROKER if name.is_empty() || name == shared.cfg.node_id.0.to_string() => result
                .with_configs(
                    BrokerConfig::keys()
                        .filter(|k| wanted(k))
                        .map(|k| entry(k, shared.cfg.get(k), STATIC_BROKER_CONFIG))
                        .collect(),
                ),
            BROKER => result
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "broker {name} is not this broker ({})",
                    shared.cfg.node_id.0
                )))),
            TOPIC => {
                let (tx, rx) = oneshot::channel();
                let sent = shared
                    .send(Command::TopicConfigs {
                        topic: name.to_string(),
                        reply: tx,
                    })
                    .await;
                let own = if sent { rx.await.ok().flatten() } else { None };
                if let Some(own) = own {
                    // The topic's own value where it has one, else the broker's.
                    result.with_configs(
                        topic_configs(&shared.cfg)
                            .into_iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| match own.get(k) {
                                Some(set) => entry(k, Some(set.clone()), TOPIC_CONFIG),
                                None => entry(k, v, DEFAULT_CONFIG),
                            })
                            .collect(),
                    )
                } else {
                    result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Topic '{name}' does not exist."
                        ))))
                }
            }
            other => result
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "resource type {other} is not described; ask for a topic (2) or a broker (4)"
                )))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

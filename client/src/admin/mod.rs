//! The admin client: topics (create, delete, list, describe, add partitions), configs
//! (describe, incremental alter), the cluster, and consumer groups (`groups.rs`).
//! Each call goes to any broker (Eddy's brokers forward to the controller) and reports
//! a per-topic error as one naming the topic.

mod groups;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::{ClientError, KafkaCode, Result};
use crate::network::{BrokerMetadata, CommonConfig, NetworkClient, TopicMetadata};
pub use groups::{GroupDescription, GroupListing, GroupMember, PartitionLag};

/// ConfigResource type of a topic, in DescribeConfigs and IncrementalAlterConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// ConfigResource type of a broker.
const RESOURCE_BROKER: i8 = 4;
/// How long `create_topic_if_missing` keeps trying, and then waits for leaders.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// TOPIC_ALREADY_EXISTS, not an error for `create_topic_if_missing`.
const TOPIC_ALREADY_EXISTS: i16 = 36;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A topic to create; -1 partitions or replication factor takes the broker's default.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }
}

/// The thing a config belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (RESOURCE_TOPIC, t.clone()),
            ConfigResource::Broker(b) => (RESOURCE_BROKER, b.to_string()),
        }
    }
}

/// One config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Kafka's ConfigSource: 1 topic, 4 static broker, 5 default, ...
    pub source: i8,
    pub is_sensitive: bool,
}

/// An incremental config change (KIP-339).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    Delete(String),
}

/// The cluster as DescribeCluster reports it.
#[derive(Clone, Debug)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerMetadata>,
}

/// The admin client.
#[derive(Clone)]
pub struct Admin {
    net: NetworkClient,
}

impl Admin {
    pub fn new(config: CommonConfig) -> Result<Admin> {
        Ok(Admin {
            net: NetworkClient::new(config)?,
        })
    }

    pub fn network(&self) -> &NetworkClient {
        &self.net
    }

    fn timeout_ms(&self) -> i32 {
        self.net.config().request_timeout_ms.min(i32::MAX as u64) as i32
    }

    /// Creates `topics`; the first topic the broker refuses is the error.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        for r in self.create_topics_each(topics).await? {
            r?;
        }
        Ok(())
    }

    /// Creates `topics`; one outcome per topic, in order.
    pub async fn create_topics_each(&self, topics: &[NewTopic]) -> Result<Vec<Result<()>>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(&t.name)))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(s(k))
                                            .with_value(Some(s(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.net.any().await?;
        let response = conn.call(&request).await?;
        let mut by_name: BTreeMap<String, (i16, Option<String>)> = response
            .topics
            .iter()
            .map(|r| {
                (
                    r.name.0.to_string(),
                    (
                        r.error_code,
                        r.error_message.as_ref().map(|m| m.to_string()),
                    ),
                )
            })
            .collect();
        let results = topics
            .iter()
            .map(|t| match by_name.remove(&t.name) {
                Some((0, _)) => Ok(()),
                Some((code, message)) => Err(ClientError::Topic {
                    broker: conn.broker().to_string(),
                    api: "CreateTopics",
                    topic: t.name.clone(),
                    code: KafkaCode(code),
                    message,
                }),
                None => Err(ClientError::Protocol {
                    broker: conn.broker().to_string(),
                    api: "CreateTopics",
                    reason: format!("no answer for topic {}", t.name),
                }),
            })
            .collect();
        Ok(results)
    }

    /// Creates the topic unless it exists, then waits until every partition has a
    /// leader (so that producing to it right away works).
    pub async fn create_topic_if_missing(&self, topic: &NewTopic) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
        loop {
            match self.create_topics(std::slice::from_ref(topic)).await {
                Ok(()) => break,
                Err(ClientError::Topic { code, .. }) if code.0 == TOPIC_ALREADY_EXISTS => break,
                // A cluster still electing its controller, or a broker just gone.
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(topic = %topic.name, error = %e, "retrying CreateTopics");
                    tokio::time::sleep(self.net.retry_backoff()).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.wait_for_leaders(&topic.name, CREATE_TIMEOUT).await
    }

    /// Waits until `topic` is known and each of its partitions has a leader.
    pub async fn wait_for_leaders(&self, topic: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let _ = self
                .net
                .refresh_metadata(Some(&[topic.to_string()]), false)
                .await;
            if let Some(t) = self.net.topic(topic) {
                if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::UnknownTopic {
                    topic: topic.to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn delete_topics(&self, topics: &[String]) -> Result<()> {
        let conn = self.net.any().await?;
        let version = conn.version(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        if version >= 6 {
            request.topics = topics
                .iter()
                .map(|t| DeleteTopicState::default().with_name(Some(TopicName(s(t)))))
                .collect();
        } else {
            request.topic_names = topics.iter().map(|t| TopicName(s(t))).collect();
        }
        let response = conn.call_at(&request, version).await?;
        for r in &response.responses {
            if r.error_code != 0 {
                return Err(ClientError::Topic {
                    broker: conn.broker().to_string(),
                    api: "DeleteTopics",
                    topic: r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    code: KafkaCode(r.error_code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                });
            }
        }
        Ok(())
    }

    /// Every topic's name (internal topics included when `include_internal`).
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let response = self.net.refresh_metadata(None, false).await?;
        let mut names: Vec<String> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && (include_internal || !t.is_internal))
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders, replicas and ISR of each topic.
    pub async fn describe_topics(&self, topics: &[String]) -> Result<Vec<TopicMetadata>> {
        self.net.refresh_metadata(Some(topics), false).await?;
        topics
            .iter()
            .map(|t| {
                self.net
                    .topic(t)
                    .ok_or_else(|| ClientError::UnknownTopic { topic: t.clone() })
            })
            .collect()
    }

    /// Raises `topic`'s partition count to `total`.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_count(total)
                .with_assignments(None)]);
        let conn = self.net.any().await?;
        let response = conn.call(&request).await?;
        for r in &response.results {
            if r.error_code != 0 {
                return Err(ClientError::Topic {
                    broker: conn.broker().to_string(),
                    api: "CreatePartitions",
                    topic: r.name.0.to_string(),
                    code: KafkaCode(r.error_code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                });
            }
        }
        Ok(())
    }

    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let (kind, name) = resource.wire();
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(&name))
                .with_configuration_keys(None),
        ]);
        let conn = match resource {
            ConfigResource::Broker(id) => self.net.node(*id).await?,
            ConfigResource::Topic(_) => self.net.any().await?,
        };
        let response = conn.call(&request).await?;
        let mut out = Vec::new();
        for r in response.results {
            if r.error_code != 0 {
                return Err(ClientError::Topic {
                    broker: conn.broker().to_string(),
                    api: "DescribeConfigs",
                    topic: r.resource_name.to_string(),
                    code: KafkaCode(r.error_code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                });
            }
            out.extend(r.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                source: c.config_source,
                is_sensitive: c.is_sensitive,
            }));
        }
        Ok(out)
    }

    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        let (kind, name) = resource.wire();
        let configs = ops
            .iter()
            .map(|op| match op {
                AlterConfigOp::Set(k, v) => AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(0)
                    .with_value(Some(s(v))),
                AlterConfigOp::Delete(k) => AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(1)
                    .with_value(None),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(&name))
                .with_configs(configs),
        ]);
        let conn = self.net.any().await?;
        let response = conn.call(&request).await?;
        for r in &response.responses {
            if r.error_code != 0 {
                return Err(ClientError::Topic {
                    broker: conn.broker().to_string(),
                    api: "IncrementalAlterConfigs",
                    topic: r.resource_name.to_string(),
                    code: KafkaCode(r.error_code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                });
            }
        }
        Ok(())
    }

    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let conn = self.net.any().await?;
        let response = conn.call(&DescribeClusterRequest::default()).await?;
        if response.error_code != 0 {
            return Err(ClientError::Broker {
                broker: conn.broker().to_string(),
                api: "DescribeCluster",
                code: KafkaCode(response.error_code),
                message: response.error_message.as_ref().map(|m| m.to_string()),
            });
        }
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|b| BrokerMetadata {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
        })
    }

    pub async fn close(&self) {
        self.net.close().await;
    }
}

//! The client's view of the cluster, shared by producer, consumer and admin: the
//! bootstrap list, one pipelined connection per broker, and the metadata cache (brokers,
//! topics, partition leaders) with its refresh.
//!
//! Callers refresh metadata when an answer says their view is stale
//! (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, ...;
//! [`crate::KafkaCode::needs_metadata_refresh`]) or when a connection to a leader fails.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::connection::Connection;
use crate::error::{ClientError, KafkaCode, Result};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Settings every client shares.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    /// `bootstrap.servers`: host:port, comma-separated.
    pub bootstrap_servers: String,
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `request.timeout.ms`: how long one request may wait for its answer.
    pub request_timeout_ms: u64,
    /// `retry.backoff.ms`: the pause before a retry.
    pub retry_backoff_ms: u64,
}

impl Default for CommonConfig {
    fn default() -> CommonConfig {
        CommonConfig {
            bootstrap_servers: "127.0.0.1:9092".to_string(),
            client_id: "eddy-client".to_string(),
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
        }
    }
}

/// One partition as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 while the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: KafkaCode,
}

/// One topic as the metadata describes it; `partitions[i].partition == i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub is_internal: bool,
    pub partitions: Vec<PartitionMetadata>,
}

/// A broker as the metadata names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Default)]
struct Cache {
    brokers: BTreeMap<i32, BrokerMetadata>,
    topics: BTreeMap<String, TopicMetadata>,
    controller_id: i32,
    cluster_id: Option<String>,
}

struct Inner {
    config: CommonConfig,
    bootstrap: Vec<String>,
    cache: Mutex<Cache>,
    /// Open connections by address.
    connections: tokio::sync::Mutex<BTreeMap<String, Arc<Connection>>>,
}

/// The shared connection pool and metadata cache. Clones share both.
#[derive(Clone)]
pub struct NetworkClient {
    inner: Arc<Inner>,
}

impl NetworkClient {
    pub fn new(config: CommonConfig) -> Result<NetworkClient> {
        let bootstrap: Vec<String> = config
            .bootstrap_servers
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err(ClientError::Config(
                "bootstrap.servers is empty: give at least one host:port".to_string(),
            ));
        }
        Ok(NetworkClient {
            inner: Arc::new(Inner {
                config,
                bootstrap,
                cache: Mutex::new(Cache {
                    controller_id: -1,
                    ..Cache::default()
                }),
                connections: tokio::sync::Mutex::new(BTreeMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &CommonConfig {
        &self.inner.config
    }

    pub(crate) fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.inner.config.retry_backoff_ms)
    }

    /// The open connection to `addr`, or a new one. The pool is not locked while a
    /// connection opens, so one slow or unreachable broker does not hold up calls to
    /// the others; two tasks racing to open the same address keep the first.
    async fn connect(&self, addr: &str, name: String) -> Result<Arc<Connection>> {
        if let Some(c) = self.inner.connections.lock().await.get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let conn = Arc::new(
            Connection::open(
                addr,
                name,
                &self.inner.config.client_id,
                Duration::from_millis(self.inner.config.request_timeout_ms),
            )
            .await?,
        );
        let mut conns = self.inner.connections.lock().await;
        match conns.get(addr) {
            Some(existing) if !existing.is_closed() => Ok(existing.clone()),
            _ => {
                conns.insert(addr.to_string(), conn.clone());
                Ok(conn)
            }
        }
    }

    /// The connection to broker `node_id` (from the metadata).
    pub async fn node(&self, node_id: i32) -> Result<Arc<Connection>> {
        let cached = || {
            self.inner
                .cache
                .lock()
                .expect("cache lock")
                .brokers
                .get(&node_id)
                .cloned()
        };
        let broker = match cached() {
            Some(b) => b,
            None => {
                self.refresh_metadata(Some(&[]), false).await?;
                cached().ok_or_else(|| ClientError::Connection {
                    broker: format!("node {node_id}"),
                    reason: "the metadata names no such broker".to_string(),
                })?
            }
        };
        self.connect(
            &broker.addr(),
            format!("node {node_id} ({})", broker.addr()),
        )
        .await
    }

    /// A connection to any reachable broker: the known ones first, then the bootstrap list.
    pub async fn any(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<(String, String)> = {
            let cache = self.inner.cache.lock().expect("cache lock");
            cache
                .brokers
                .values()
                .map(|b| (b.addr(), format!("node {} ({})", b.node_id, b.addr())))
                .collect()
        };
        candidates.extend(self.inner.bootstrap.iter().map(|a| (a.clone(), a.clone())));
        let mut last = String::from("no broker tried");
        for (addr, name) in candidates {
            match self.connect(&addr, name).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClientError::NoBrokerReachable {
            bootstrap: self.inner.config.bootstrap_servers.clone(),
            last,
        })
    }

    /// Sends `request` to any broker, trying the next one if a connection fails.
    pub async fn call_any<R: Request>(&self, request: &R) -> Result<R::Response> {
        let mut last = None;
        for _ in 0..3 {
            let conn = self.any().await?;
            match conn.call(request).await {
                Ok(r) => return Ok(r),
                Err(e @ (ClientError::Connection { .. } | ClientError::Timeout { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts failed"))
    }

    /// Asks for metadata on `topics` (`None`: all topics) and updates the cache.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<MetadataResponse> {
        let conn = self.any().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut request = MetadataRequest::default().with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                })
                .collect()
        }));
        if version >= 4 {
            request.allow_auto_topic_creation = allow_auto_topic_creation;
        }
        let response = match conn.call_at(&request, version).await {
            Ok(r) => r,
            // One more try elsewhere: the broker we picked may just have died.
            Err(ClientError::Connection { .. } | ClientError::Timeout { .. }) => {
                self.call_any(&request).await?
            }
            Err(e) => return Err(e),
        };
        self.update_cache(&response, topics.is_none());
        Ok(response)
    }

    fn update_cache(&self, response: &MetadataResponse, all_topics: bool) {
        let mut cache = self.inner.cache.lock().expect("cache lock");
        if !response.brokers.is_empty() {
            cache.brokers = response
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.node_id.0,
                        BrokerMetadata {
                            node_id: b.node_id.0,
                            host: b.host.to_string(),
                            port: b.port,
                            rack: b.rack.as_ref().map(|r| r.to_string()),
                        },
                    )
                })
                .collect();
        }
        cache.controller_id = response.controller_id.0;
        cache.cluster_id = response.cluster_id.as_ref().map(|c| c.to_string());
        if all_topics {
            cache.topics.clear();
        }
        for t in &response.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                cache.topics.remove(&name);
                continue;
            }
            if t.error_code != 0 {
                // LEADER_NOT_AVAILABLE and the like: keep the view we had.
                continue;
            }
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                    isr: p.isr_nodes.iter().map(|r| r.0).collect(),
                    error: KafkaCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            if partitions
                .iter()
                .enumerate()
                .any(|(i, p)| p.partition != i as i32)
            {
                // A hole in the partition list: not usable; keep the older view.
                continue;
            }
            cache.topics.insert(
                name.clone(),
                TopicMetadata {
                    name,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
    }

    /// The cached metadata of `topic`, if any.
    pub fn topic(&self, topic: &str) -> Option<TopicMetadata> {
        self.inner
            .cache
            .lock()
            .expect("cache lock")
            .topics
            .get(topic)
            .cloned()
    }

    /// The cached metadata of `topic`, refreshed first if the cache lacks it. An unknown
    /// topic is an error (after `allow_auto_topic_creation` had its chance).
    pub async fn topic_or_fetch(
        &self,
        topic: &str,
        allow_auto_topic_creation: bool,
    ) -> Result<TopicMetadata> {
        if let Some(t) = self.topic(topic) {
            return Ok(t);
        }
        self.refresh_metadata(Some(&[topic.to_string()]), allow_auto_topic_creation)
            .await?;
        self.topic(topic).ok_or_else(|| ClientError::UnknownTopic {
            topic: topic.to_string(),
        })
    }

    /// The cached leader of a partition, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let cache = self.inner.cache.lock().expect("cache lock");
        let p = cache
            .topics
            .get(topic)?
            .partitions
            .get(partition as usize)?;
        (p.leader >= 0).then_some(p.leader)
    }

    /// The brokers of the last metadata answer.
    pub fn brokers(&self) -> Vec<BrokerMetadata> {
        let cache = self.inner.cache.lock().expect("cache lock");
        cache.brokers.values().cloned().collect()
    }

    /// The controller and cluster id of the last metadata answer.
    pub fn controller_and_cluster_id(&self) -> (i32, Option<String>) {
        let cache = self.inner.cache.lock().expect("cache lock");
        (cache.controller_id, cache.cluster_id.clone())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        let conns = std::mem::take(&mut *self.inner.connections.lock().await);
        for c in conns.values() {
            c.close().await;
        }
    }
}

//! Reading partitions: Fetch requests to each partition's leader (one request per
//! broker, sent concurrently), and ListOffsets for the earliest, latest or by-time
//! offsets that `auto.offset.reset`, `seek_to_*` and the tools need.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy_core::TopicPartition;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::error::{ClientError, KafkaCode, Result};
use crate::network::NetworkClient;
use crate::records::{decode_batches, FetchedRecord};

/// ListOffsets' special timestamps (KAFKA-COMPAT item 9).
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// How many times a lookup goes round a metadata refresh before giving up.
const MAX_LOOKUP_ATTEMPTS: u32 = 10;

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// The offset for `timestamp` (or a special timestamp) in each partition. For a time
/// later than every record, the answer is the log end offset, as Kafka's
/// `offsetsForTimes` followed by `seekToEnd` would give.
pub async fn list_offsets(
    net: &NetworkClient,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut found = BTreeMap::new();
    let mut todo: Vec<TopicPartition> = partitions.to_vec();
    let mut last_error = None;
    for _ in 0..MAX_LOOKUP_ATTEMPTS {
        if todo.is_empty() {
            return Ok(found);
        }
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut unknown = false;
        for tp in &todo {
            if net.topic(&tp.topic).is_none() {
                net.topic_or_fetch(&tp.topic, false).await?;
            }
            match net.leader(&tp.topic, tp.partition as i32) {
                Some(l) => by_leader.entry(l).or_default().push(tp.clone()),
                None => unknown = true,
            }
        }
        for (leader, tps) in by_leader {
            let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
            for tp in &tps {
                topics.entry(&tp.topic).or_default().push(
                    ListOffsetsPartition::default()
                        .with_partition_index(tp.partition as i32)
                        .with_timestamp(timestamp),
                );
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            let answer = match net.node(leader).await {
                Ok(conn) => conn
                    .call(&request)
                    .await
                    .map(|r| (r, conn.broker().to_string())),
                Err(e) => Err(e),
            };
            let (response, broker) = match answer {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for t in &response.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index as u32);
                    let code = KafkaCode(p.error_code);
                    if code.0 == 0 {
                        found.insert(tp, p.offset);
                    } else if code.is_retriable() {
                        last_error = Some(ClientError::Partition {
                            broker: broker.clone(),
                            api: "ListOffsets",
                            topic: tp.topic.clone(),
                            partition: tp.partition as i32,
                            code,
                        });
                    } else {
                        return Err(ClientError::Partition {
                            broker: broker.clone(),
                            api: "ListOffsets",
                            topic: tp.topic,
                            partition: p.partition_index,
                            code,
                        });
                    }
                }
            }
        }
        todo.retain(|tp| !found.contains_key(tp));
        if !todo.is_empty() || unknown {
            let topics: Vec<String> = todo.iter().map(|tp| tp.topic.clone()).collect();
            let _ = net.refresh_metadata(Some(&topics), false).await;
            tokio::time::sleep(net.retry_backoff()).await;
        }
    }
    Err(last_error.unwrap_or_else(|| ClientError::Connection {
        broker: "any".to_string(),
        reason: format!("no leader found for {} partitions", todo.len()),
    }))
}

/// What one partition's fetch brought.
#[derive(Debug)]
pub(crate) enum PartitionFetch {
    Records {
        records: Vec<FetchedRecord>,
        /// The offset after the last whole batch returned.
        next_offset: Option<i64>,
        high_watermark: i64,
    },
    Error(ClientError),
}

/// Settings of one fetch round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FetchLimits {
    pub(crate) max_wait_ms: i32,
    pub(crate) min_bytes: i32,
    pub(crate) max_bytes: i32,
    pub(crate) max_partition_bytes: i32,
}

/// Fetches each partition from `position` at its leader; one request per leader, all
/// in parallel. A partition without a known leader comes back as an error that asks
/// for a metadata refresh.
pub(crate) async fn fetch(
    net: &NetworkClient,
    positions: &BTreeMap<TopicPartition, i64>,
    limits: FetchLimits,
) -> Vec<(TopicPartition, PartitionFetch)> {
    let mut out = Vec::new();
    let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
    for (tp, &offset) in positions {
        match net.leader(&tp.topic, tp.partition as i32) {
            Some(l) => by_leader.entry(l).or_default().push((tp.clone(), offset)),
            None => out.push((
                tp.clone(),
                PartitionFetch::Error(ClientError::Partition {
                    broker: "none".to_string(),
                    api: "Fetch",
                    topic: tp.topic.clone(),
                    partition: tp.partition as i32,
                    code: KafkaCode(5), // LEADER_NOT_AVAILABLE
                }),
            )),
        }
    }
    let handles: Vec<_> = by_leader
        .into_iter()
        .map(|(leader, parts)| {
            let net = net.clone();
            tokio::spawn(async move { fetch_from(&net, leader, parts, limits).await })
        })
        .collect();
    for h in handles {
        if let Ok(results) = h.await {
            out.extend(results);
        }
    }
    out
}

async fn fetch_from(
    net: &NetworkClient,
    leader: i32,
    parts: Vec<(TopicPartition, i64)>,
    limits: FetchLimits,
) -> Vec<(TopicPartition, PartitionFetch)> {
    let fail_all = |e: ClientError, parts: &[(TopicPartition, i64)]| {
        let message = e.to_string();
        parts
            .iter()
            .map(|(tp, _)| {
                (
                    tp.clone(),
                    PartitionFetch::Error(ClientError::Connection {
                        broker: format!("node {leader}"),
                        reason: message.clone(),
                    }),
                )
            })
            .collect()
    };
    let conn = match net.node(leader).await {
        Ok(c) => c,
        Err(e) => return fail_all(e, &parts),
    };
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, offset) in &parts {
        topics.entry(&tp.topic).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition as i32)
                .with_fetch_offset(*offset)
                .with_partition_max_bytes(limits.max_partition_bytes),
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(limits.max_wait_ms)
        .with_min_bytes(limits.min_bytes)
        .with_max_bytes(limits.max_bytes)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    FetchTopic::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let response = match conn.call(&request).await {
        Ok(r) => r,
        Err(e) => return fail_all(e, &parts),
    };
    if response.error_code != 0 {
        let e = ClientError::Broker {
            broker: conn.broker().to_string(),
            api: "Fetch",
            code: KafkaCode(response.error_code),
            message: None,
        };
        return fail_all(e, &parts);
    }
    let mut out = Vec::new();
    for t in response.responses {
        for p in t.partitions {
            let tp = TopicPartition::new(t.topic.0.to_string(), p.partition_index as u32);
            if p.error_code != 0 {
                out.push((
                    tp.clone(),
                    PartitionFetch::Error(ClientError::Partition {
                        broker: conn.broker().to_string(),
                        api: "Fetch",
                        topic: tp.topic,
                        partition: p.partition_index,
                        code: KafkaCode(p.error_code),
                    }),
                ));
                continue;
            }
            let bytes = p.records.unwrap_or_else(Bytes::new);
            let fetched = match decode_batches(&bytes) {
                Ok((records, next_offset)) => PartitionFetch::Records {
                    records,
                    next_offset,
                    high_watermark: p.high_watermark,
                },
                Err(reason) => PartitionFetch::Error(ClientError::Protocol {
                    broker: conn.broker().to_string(),
                    api: "Fetch",
                    reason: format!("{tp}: {reason}"),
                }),
            };
            out.push((tp, fetched));
        }
    }
    out
}

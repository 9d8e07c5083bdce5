//! Metadata: the brokers, the active controller and the topics asked for, from this
//! broker's copy of the metadata image.
//!
//! Which topics: v0 treats an empty list as "all", v1+ uses null for all and `[]` for
//! none (KAFKA-COMPAT item 12). A named topic that does not exist is created when
//! `auto.create.topics.enable` allows it and, from v4, the request does too
//! (`allow_auto_topic_creation`, item 13).
//!
//! When the node actor is gone (the broker is shutting down) there is no metadata image
//! to answer from, and Metadata before v13 has no error code to say so: an answer with
//! no brokers and no topics could be taken for a cluster without either. The connection
//! is closed instead, as a stopping Kafka broker's socket server closes it, and the
//! client asks another broker. (The other handlers answer COORDINATOR_NOT_AVAILABLE or
//! NOT_CONTROLLER, which their APIs have for this.)

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::actor::TopicQuery;
use super::super::{Command, Shared};

/// The answer to `req`; `None` when the node actor is gone (close the connection).
pub(super) async fn handle(
    shared: &Shared,
    version: i16,
    req: MetadataRequest,
) -> Option<MetadataResponse> {
    let resp = MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_string(shared.cluster_id.clone())))
        .with_controller_id(BrokerId(-1));
    let names: Option<Vec<TopicQuery>> = match req.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| match t.name {
                    Some(n) => TopicQuery::Name(n.0.to_string()),
                    // v10+: by id only.
                    None => TopicQuery::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    let auto_create = names.is_some()
        && shared.cfg.auto_create_topics_enable
        && (version < 4 || req.allow_auto_topic_creation);
    let (tx, rx) = oneshot::channel();
    let sent = shared
        .send(Command::Metadata {
            names,
            auto_create,
            reply: tx,
        })
        .await;
    let (cluster, topics) = if sent { rx.await.ok()? } else { return None };
    let cluster_id = cluster
        .cluster_id
        .unwrap_or_else(|| shared.cluster_id.clone());
    let resp = resp
        .with_cluster_id(Some(StrBytes::from_string(cluster_id)))
        .with_controller_id(BrokerId(cluster.controller.map_or(-1, |c| c.0 as i32)))
        .with_brokers(
            cluster
                .brokers
                .into_iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.id.0 as i32))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(b.port)
                })
                .collect(),
        );
    let topics = topics
        .into_iter()
        .map(|view| {
            let topic = MetadataResponseTopic::default()
                .with_is_internal(view.name.as_deref() == Some(eddy_core::group::OFFSETS_TOPIC))
                .with_topic_id(view.id)
                .with_name(view.name.map(|n| TopicName(StrBytes::from_string(n))));
            match view.partitions {
                Err(e) => topic.with_error_code(e.code()),
                Ok(parts) => topic.with_partitions(
                    parts
                        .into_iter()
                        .map(|p| {
                            let part = MetadataResponsePartition::default()
                                .with_partition_index(p.partition as i32);
                            match p.state {
                                Some(s) if p.offline => part
                                    .with_error_code(ResponseError::KafkaStorageError.code())
                                    .with_leader_id(BrokerId(-1))
                                    .with_leader_epoch(s.leader_epoch.0 as i32)
                                    .with_replica_nodes(
                                        s.replicas.iter().map(|r| BrokerId(r.0 as i32)).collect(),
                                    )
                                    .with_offline_replicas(
                                        s.replicas.iter().map(|r| BrokerId(r.0 as i32)).collect(),
                                    ),
                                None => part
                                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                                    .with_leader_id(BrokerId(-1)),
                                Some(s) => part
                                    .with_error_code(match s.leader {
                                        Some(_) => 0,
                                        None => ResponseError::LeaderNotAvailable.code(),
                                    })
                                    .with_leader_id(BrokerId(s.leader.map_or(-1, |l| l.0 as i32)))
                                    .with_leader_epoch(s.leader_epoch.0 as i32)
                                    .with_replica_nodes(
                                        s.replicas.iter().map(|r| BrokerId(r.0 as i32)).collect(),
                                    )
                                    .with_isr_nodes(
                                        s.isr.iter().map(|r| BrokerId(r.0 as i32)).collect(),
                                    ),
                            }
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    Some(resp.with_topics(topics))
}

//! CreateTopics: every topic in the request gets an answer of its own (KAFKA-COMPAT item
//! 10). Partitions and replication factor default to `num.partitions` and
//! `default.replication.factor` when the request says -1.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

pub(super) async fn handle(shared: &Shared, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let partitions = if topic.num_partitions == -1 {
            shared.cfg.num_partitions as i32
        } else {
            topic.num_partitions
        };
        let replication_factor = if topic.replication_factor == -1 {
            shared.cfg.default_replication_factor as i16
        } else {
            topic.replication_factor
        };
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor);
        let refuse = |e: ResponseError, msg: String| {
            result
                .clone()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        };
        if !topic.assignments.is_empty() {
            results.push(refuse(
                ResponseError::InvalidRequest,
                "manual replica assignments are not supported yet; give a partition count instead"
                    .into(),
            ));
            continue;
        }
        let mut configs = Vec::with_capacity(topic.configs.len());
        let mut missing = None;
        for c in &topic.configs {
            match &c.value {
                Some(v) => configs.push((c.name.to_string(), v.to_string())),
                None => missing = Some(c.name.to_string()),
            }
        }
        if let Some(key) = missing {
            results.push(refuse(
                ResponseError::InvalidConfig,
                format!("config {key} has no value"),
            ));
            continue;
        }
        if partitions <= 0 {
            results.push(refuse(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.".into(),
            ));
            continue;
        }
        let Ok(replication_factor_u16) = u16::try_from(replication_factor) else {
            results.push(refuse(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.".into(),
            ));
            continue;
        };
        let (tx, rx) = oneshot::channel();
        let sent = shared
            .send(Command::CreateTopic {
                name,
                partitions: partitions as u32,
                replication_factor: replication_factor_u16,
                configs,
                validate_only: req.validate_only,
                reply: tx,
            })
            .await;
        let outcome = if sent { rx.await.ok() } else { None };
        results.push(match outcome {
            Some(Ok(())) => result,
            Some(Err((e, msg))) => refuse(e, msg),
            None => refuse(
                ResponseError::NotController,
                "the broker is shutting down".into(),
            ),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

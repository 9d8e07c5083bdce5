//! CreatePartitions: grows a topic to a larger partition count. Every topic asked about
//! gets an answer of its own (KAFKA-COMPAT item 10).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

pub(super) async fn handle(
    shared: &Shared,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let refuse = |e: ResponseError, msg: String| {
            result
                .clone()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        };
        if topic.assignments.is_some() {
            results.push(refuse(
                ResponseError::InvalidReplicaAssignment,
                "manual replica assignments are not supported yet; give only the new count".into(),
            ));
            continue;
        }
        let Ok(count) = u32::try_from(topic.count) else {
            results.push(refuse(
                ResponseError::InvalidPartitions,
                format!("{} is not a partition count", topic.count),
            ));
            continue;
        };
        let (tx, rx) = oneshot::channel();
        let sent = shared
            .send(Command::CreatePartitions {
                name: topic.name.0.to_string(),
                count,
                validate_only: req.validate_only,
                reply: tx,
            })
            .await;
        results.push(match if sent { rx.await.ok() } else { None } {
            Some(Ok(())) => result,
            Some(Err((e, msg))) => refuse(e, msg),
            None => refuse(
                ResponseError::NotController,
                "the broker is shutting down".into(),
            ),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

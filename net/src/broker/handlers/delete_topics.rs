//! DeleteTopics: each named topic is removed — its partitions leave the node (requests
//! waiting on them are answered) and its directories leave the disk. Topic ids (v6) are
//! not served.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

pub(super) async fn handle(shared: &Shared, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v0–5 name topics in topic_names; v6 in topics.
    let names: Vec<_> = req
        .topic_names
        .into_iter()
        .chain(req.topics.into_iter().filter_map(|t| t.name))
        .collect();
    let mut responses = Vec::with_capacity(names.len());
    for name in names {
        let (tx, rx) = oneshot::channel();
        let sent = shared
            .send(Command::DeleteTopic {
                name: name.0.to_string(),
                reply: tx,
            })
            .await;
        let result = DeletableTopicResult::default().with_name(Some(name));
        responses.push(match if sent { rx.await.ok() } else { None } {
            Some(Ok(())) => result,
            Some(Err((e, msg))) => result
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
            None => result.with_error_code(ResponseError::NotController.code()),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

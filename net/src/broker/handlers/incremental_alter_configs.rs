//! IncrementalAlterConfigs (KIP-339): set or delete a topic's own configs, decided by the
//! controller and recorded in the metadata log. Only the per-topic configs the broker
//! honours are accepted (see `actor::HONOURED_TOPIC_CONFIGS`); broker configs come from
//! `server.properties` and are not changed at run time. Every resource gets an answer of
//! its own (KAFKA-COMPAT item 10).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's OpType values.
const SET: i8 = 0;
const DELETE: i8 = 1;

pub(super) async fn handle(
    shared: &Shared,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for resource in req.resources {
        let answer = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let refuse = |e: ResponseError, msg: String| {
            answer
                .clone()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        };
        match resource.resource_type {
            TOPIC => {}
            BROKER => {
                responses.push(refuse(
                    ResponseError::InvalidRequest,
                    "Eddy's broker configs are static: change server.properties (or \
                     --override) and restart the broker"
                        .to_string(),
                ));
                continue;
            }
            other => {
                responses.push(refuse(
                    ResponseError::InvalidRequest,
                    format!("resource type {other} has no configs here"),
                ));
                continue;
            }
        }
        let mut configs = Vec::with_capacity(resource.configs.len());
        let mut bad = None;
        for c in resource.configs {
            let key = c.name.to_string();
            match c.config_operation {
                SET => match c.value {
                    Some(v) => configs.push((key, Some(v.to_string()))),
                    None => bad = Some(format!("SET of {key} has no value")),
                },
                DELETE => configs.push((key, None)),
                _ => {
                    bad = Some(format!(
                        "{key} is not a list: APPEND and SUBTRACT do not apply"
                    ))
                }
            }
        }
        if let Some(msg) = bad {
            responses.push(refuse(ResponseError::InvalidConfig, msg));
            continue;
        }
        let (tx, rx) = oneshot::channel();
        let sent = shared
            .send(Command::AlterTopicConfigs {
                topic: resource.resource_name.to_string(),
                configs,
                validate_only: req.validate_only,
                reply: tx,
            })
            .await;
        let outcome = if sent { rx.await.ok() } else { None };
        responses.push(match outcome {
            Some(Ok(())) => answer,
            Some(Err((e, msg))) => refuse(e, msg),
            None => refuse(
                ResponseError::NotController,
                "the broker is shutting down".to_string(),
            ),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

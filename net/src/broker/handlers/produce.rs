//! Produce: each partition's records go to the core as one batch; the core validates
//! it, assigns offsets and answers per `acks`. acks=0 gets no response at all
//! (KAFKA-COMPAT item 5): the batches are still appended.
//!
//! Produce v3+ carries exactly one v2 batch per partition; Kafka answers more (or none)
//! with INVALID_RECORD, and so does Eddy.
//!
//! A request is handled in two steps so that a connection can pipeline them:
//! [`submit`] hands every batch to the actor (in the order the requests came, which is
//! the order they are appended in), and [`Submitted::response`] waits for the answers.
//! The connection reads and submits the next request while earlier ones wait for their
//! acknowledgements (connection.rs).

use bytes::Bytes;
use eddy_core::batch::BatchHeader;
use eddy_core::message::{Acks, ClientRequest, ClientResponse};
use eddy_core::types::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use tokio::sync::oneshot;

use super::super::actor::ReplyTo;
use super::super::{Command, Shared};

enum Pending {
    Done(i16),
    Waiting(oneshot::Receiver<ClientResponse>),
}

/// Whether `records` is exactly one whole batch.
fn single_batch(records: &Bytes) -> bool {
    BatchHeader::parse(records).is_ok_and(|h| h.total_len() == records.len())
}

/// A produce request whose batches the actor has: what is left is waiting for answers.
pub(crate) struct Submitted {
    acks: Option<Acks>,
    topics: Vec<(TopicName, Vec<(i32, Pending)>)>,
}

/// Validates `req`'s shape and sends each partition's batch to the actor, in order.
pub(crate) async fn submit(shared: &Shared, req: ProduceRequest) -> Submitted {
    let acks = Acks::from_wire(req.acks);
    let timeout_ms = req.timeout_ms.max(0) as u64;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for part in topic.partition_data {
            let pending = match (acks, part.records, u32::try_from(part.index)) {
                (None, _, _) => Pending::Done(ResponseError::InvalidRequiredAcks.code()),
                (_, _, Err(_)) => Pending::Done(ResponseError::UnknownTopicOrPartition.code()),
                (_, None, _) => Pending::Done(ResponseError::InvalidRecord.code()),
                (_, Some(records), _) if !single_batch(&records) => {
                    if records.len() > shared.cfg.message_max_bytes as usize {
                        Pending::Done(ResponseError::MessageTooLarge.code())
                    } else if BatchHeader::parse(&records).is_err() {
                        Pending::Done(ResponseError::CorruptMessage.code())
                    } else {
                        Pending::Done(ResponseError::InvalidRecord.code())
                    }
                }
                (Some(acks), Some(batch), Ok(p)) => {
                    let req = ClientRequest::Produce {
                        partition: TopicPartition::new(name.clone(), p),
                        acks,
                        timeout_ms,
                        batch,
                    };
                    if acks == Acks::None {
                        shared.send(Command::Core { req, reply: None }).await;
                        Pending::Done(0)
                    } else {
                        let (tx, rx) = oneshot::channel();
                        shared
                            .send(Command::Core {
                                req,
                                reply: Some(ReplyTo::Once(tx)),
                            })
                            .await;
                        Pending::Waiting(rx)
                    }
                }
            };
            parts.push((part.index, pending));
        }
        topics.push((topic.name, parts));
    }
    Submitted { acks, topics }
}

impl Submitted {
    /// Whether the request gets no response at all (acks=0).
    pub(crate) fn needs_no_response(&self) -> bool {
        self.acks == Some(Acks::None)
    }

    /// Waits for every partition's answer; `None` for acks=0.
    pub(crate) async fn response(self) -> Option<ProduceResponse> {
        if self.needs_no_response() {
            return None;
        }
        answers(self.topics).await
    }
}

async fn answers(topics: Vec<(TopicName, Vec<(i32, Pending)>)>) -> Option<ProduceResponse> {
    let mut responses = Vec::with_capacity(topics.len());
    for (name, parts) in topics {
        let mut partition_responses = Vec::with_capacity(parts.len());
        for (index, pending) in parts {
            let resp = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            partition_responses.push(match pending {
                Pending::Done(code) => resp.with_error_code(code),
                Pending::Waiting(rx) => match rx.await {
                    Ok(ClientResponse::Produce {
                        error,
                        base_offset,
                        log_start_offset,
                        ..
                    }) => resp
                        .with_error_code(error.code())
                        .with_base_offset(base_offset.map_or(-1, |o| o.0 as i64))
                        .with_log_start_offset(log_start_offset.0 as i64),
                    _ => resp.with_error_code(ResponseError::RequestTimedOut.code()),
                },
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partition_responses),
        );
    }
    Some(ProduceResponse::default().with_responses(responses))
}

//! InitProducerId: a producer id for an idempotent producer, or a bumped epoch for one
//! that asks with its current id and epoch (KIP-360). Transactions are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tokio::sync::oneshot;

use super::super::{Command, Shared};

pub(super) async fn handle(shared: &Shared, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // No transaction coordinator yet: say so rather than pretend.
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return resp
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    let (tx, rx) = oneshot::channel();
    if !shared.send(Command::NewProducerId { reply: tx }).await {
        return resp.with_error_code(ResponseError::CoordinatorNotAvailable.code());
    }
    match rx.await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(_) => resp.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}

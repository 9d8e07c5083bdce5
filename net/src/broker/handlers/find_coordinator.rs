//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets`
//! partition, chosen by a hash of the group id as Kafka chooses it
//! (`eddy_core::group::offsets_partition_for`). The offsets topic is created on first use, with
//! `offsets.topic.num.partitions` partitions. v4+ asks for several keys at once.
//! Transactions are not supported, so transaction coordinators are never available.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

const GROUP: i8 = 0;

pub(super) async fn handle(
    shared: &Shared,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        req.coordinator_keys
    } else {
        vec![req.key]
    };
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(find(shared, req.key_type, key).await);
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(found);
    }
    let one = found.pop().expect("one key before v4");
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(one.error_message)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}

async fn find(shared: &Shared, key_type: i8, key: StrBytes) -> Coordinator {
    let none = Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::from_static_str(""))
        .with_port(-1);
    let refuse = |e: ResponseError, msg: &str| {
        none.clone()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(msg.to_string())))
    };
    if key_type != GROUP {
        return refuse(
            ResponseError::CoordinatorNotAvailable,
            "transactions are not supported by this broker",
        );
    }
    if key.is_empty() {
        return refuse(ResponseError::InvalidRequest, "the group id is empty");
    }
    let (tx, rx) = oneshot::channel();
    let command = Command::Coordinator {
        key: key.to_string(),
        reply: tx,
    };
    if !shared.send(command).await {
        return refuse(
            ResponseError::CoordinatorNotAvailable,
            "the broker is shutting down",
        );
    }
    match rx.await {
        Ok(Ok(broker)) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(broker.id.0 as i32))
            .with_host(StrBytes::from_string(broker.host))
            .with_port(broker.port),
        Ok(Err((e, msg))) => refuse(e, &msg),
        Err(_) => refuse(
            ResponseError::CoordinatorNotAvailable,
            "the broker is shutting down",
        ),
    }
}

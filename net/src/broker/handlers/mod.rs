//! One file per Kafka API: each turns a decoded request into core requests or actor
//! commands, and their answers into the Kafka response. Handlers make no protocol
//! decisions the core owns (offsets, acks, high watermarks); they translate.

mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;

use eddy_core::message::{ClientRequest, ClientResponse};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use tokio::sync::oneshot;

use super::actor::ReplyTo;
use super::{Command, Shared};

/// Answers one request. `None` means no response is sent (acks=0 produce).
pub(crate) async fn handle(
    shared: &Shared,
    header: &RequestHeader,
    key: ApiKey,
    version: i16,
    body: RequestKind,
) -> Option<ResponseKind> {
    tracing::trace!(
        ?key,
        version,
        correlation_id = header.correlation_id,
        "request"
    );
    Some(match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(req) => {
            ResponseKind::Metadata(metadata::handle(shared, version, req).await)
        }
        RequestKind::Produce(req) => ResponseKind::Produce(produce::handle(shared, req).await?),
        RequestKind::Fetch(req) => ResponseKind::Fetch(fetch::handle(shared, req).await),
        RequestKind::ListOffsets(req) => {
            ResponseKind::ListOffsets(list_offsets::handle(shared, req).await)
        }
        RequestKind::CreateTopics(req) => {
            ResponseKind::CreateTopics(create_topics::handle(shared, req).await)
        }
        RequestKind::InitProducerId(req) => {
            ResponseKind::InitProducerId(init_producer_id::handle(shared, req).await)
        }
        RequestKind::DeleteTopics(req) => {
            ResponseKind::DeleteTopics(delete_topics::handle(shared, req).await)
        }
        RequestKind::CreatePartitions(req) => {
            ResponseKind::CreatePartitions(create_partitions::handle(shared, req).await)
        }
        RequestKind::DescribeConfigs(req) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(shared, req).await)
        }
        RequestKind::DescribeCluster(req) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(shared, req))
        }
        RequestKind::OffsetForLeaderEpoch(req) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(shared, req).await)
        }
        other => {
            // wire::decode_request lets through only the APIs in wire::SUPPORTED, and
            // each of those has an arm above.
            unreachable!("no handler for {other:?}")
        }
    })
}

/// Sends one request to the core and waits for its answer; `None` if the node is gone.
pub(crate) async fn ask_core(shared: &Shared, req: ClientRequest) -> Option<ClientResponse> {
    let (tx, rx) = oneshot::channel();
    if !shared
        .send(Command::Core {
            req,
            reply: Some(ReplyTo::Once(tx)),
        })
        .await
    {
        return None;
    }
    rx.await.ok()
}

//! One file per Kafka API: each turns a decoded request into core requests or actor
//! commands, and their answers into the Kafka response. Handlers make no protocol
//! decisions the core owns (offsets, acks, high watermarks); they translate.

mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
pub(crate) mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod offset_for_leader_epoch;
pub(crate) mod produce;
mod stored;
mod sync_group;

use std::collections::BTreeMap;

use eddy_core::group::{GroupRequest, GroupResponse};
use eddy_core::message::{ClientRequest, ClientResponse};
use eddy_core::ErrorCode;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use tokio::sync::oneshot;

use super::actor::{ReplyTo, TopicQuery};
use super::{Command, Shared};

/// Who sent a request: what group membership records about a member.
pub(crate) struct Caller {
    pub(crate) client_id: String,
    pub(crate) host: String,
}

/// What the connection does once a request is handled.
// Not boxed, though `Respond` is much larger than the other two: nearly every request
// takes it, and an answer is moved once, into the encoder, so boxing it would cost an
// allocation per request to save a little stack in the two rare cases.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Answer {
    Respond(ResponseKind),
    /// No response, by design (acks=0 produce).
    Nothing,
    /// Close the connection without answering: the node actor is gone (the broker is
    /// shutting down) and the answer would be a list of brokers with none in it
    /// (Metadata, DescribeCluster). The client sees what a Kafka broker's stopping
    /// socket server shows it, and asks another broker.
    Close,
}

/// Answers one request.
pub(crate) async fn handle(
    shared: &Shared,
    peer: std::net::SocketAddr,
    header: &RequestHeader,
    key: ApiKey,
    version: i16,
    body: RequestKind,
) -> Answer {
    let caller = Caller {
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        host: format!("/{}", peer.ip()),
    };
    tracing::trace!(
        ?key,
        version,
        correlation_id = header.correlation_id,
        "request"
    );
    Answer::Respond(match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(req) => match metadata::handle(shared, version, req).await {
            Some(resp) => ResponseKind::Metadata(resp),
            None => return Answer::Close,
        },
        RequestKind::Produce(req) => match produce::submit(shared, req).await.response().await {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Answer::Nothing,
        },
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
        RequestKind::IncrementalAlterConfigs(req) => ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(shared, req).await,
        ),
        RequestKind::DescribeConfigs(req) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(shared, req).await)
        }
        RequestKind::DescribeCluster(req) => match describe_cluster::handle(shared, req).await {
            Some(resp) => ResponseKind::DescribeCluster(resp),
            None => return Answer::Close,
        },
        RequestKind::OffsetForLeaderEpoch(req) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(shared, req).await)
        }
        RequestKind::FindCoordinator(req) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(shared, version, req).await)
        }
        RequestKind::JoinGroup(req) => {
            ResponseKind::JoinGroup(join_group::handle(shared, &caller, version, req).await)
        }
        RequestKind::SyncGroup(req) => {
            ResponseKind::SyncGroup(sync_group::handle(shared, req).await)
        }
        RequestKind::Heartbeat(req) => {
            ResponseKind::Heartbeat(heartbeat::handle(shared, req).await)
        }
        RequestKind::LeaveGroup(req) => {
            ResponseKind::LeaveGroup(leave_group::handle(shared, version, req).await)
        }
        RequestKind::OffsetCommit(req) => {
            ResponseKind::OffsetCommit(offset_commit::handle(shared, req).await)
        }
        RequestKind::OffsetFetch(req) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(shared, version, req).await)
        }
        RequestKind::ListGroups(req) => {
            ResponseKind::ListGroups(list_groups::handle(shared, req).await)
        }
        RequestKind::DescribeGroups(req) => {
            ResponseKind::DescribeGroups(describe_groups::handle(shared, version, req).await)
        }
        RequestKind::DeleteGroups(req) => {
            ResponseKind::DeleteGroups(delete_groups::handle(shared, req).await)
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

/// Sends a group request to the coordinator in the core. `Err` when the broker is
/// shutting down and nothing answered.
pub(crate) async fn ask_group(shared: &Shared, req: GroupRequest) -> Result<GroupResponse, ()> {
    tracing::debug!(request = ?req, "group request");
    match ask_core(shared, ClientRequest::Group(req)).await {
        Some(ClientResponse::Group(resp)) => {
            tracing::debug!(response = ?resp, "group response");
            Ok(resp)
        }
        _ => Err(()),
    }
}

/// The error code for a group request that got no answer of its kind (the broker is
/// shutting down).
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = ResponseError::CoordinatorNotAvailable.code();

/// A core error code on the wire.
pub(crate) fn error_code(e: ErrorCode) -> i16 {
    e.code()
}

/// How many partitions each named topic has; missing topics are absent.
pub(crate) async fn partition_counts(shared: &Shared, names: Vec<String>) -> BTreeMap<String, u32> {
    let (tx, rx) = oneshot::channel();
    let sent = shared
        .send(Command::Metadata {
            names: Some(names.into_iter().map(TopicQuery::Name).collect()),
            auto_create: false,
            reply: tx,
        })
        .await;
    let mut counts = BTreeMap::new();
    if sent {
        if let Ok((_, topics)) = rx.await {
            for view in topics {
                if let (Some(name), Ok(parts)) = (view.name, view.partitions) {
                    counts.insert(name, parts.len() as u32);
                }
            }
        }
    }
    counts
}

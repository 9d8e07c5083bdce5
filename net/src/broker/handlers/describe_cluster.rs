//! DescribeCluster: the cluster id, the controller and the brokers (KIP-700).
//!
//! With the node actor gone (shutting down) there are no brokers to list: the connection
//! is closed rather than answered with none, as for Metadata (see `metadata.rs`).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

/// The answer; `None` when the node actor is gone (close the connection).
pub(super) async fn handle(
    shared: &Shared,
    _req: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let (tx, rx) = oneshot::channel();
    if !shared.send(Command::Cluster { reply: tx }).await {
        return None;
    }
    let cluster = rx.await.ok()?;
    let cluster_id = cluster
        .cluster_id
        .clone()
        .unwrap_or_else(|| shared.cluster_id.clone());
    let resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(cluster_id))
        .with_controller_id(BrokerId(cluster.controller.map_or(-1, |c| c.0 as i32)))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(
            cluster
                .brokers
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.id.0 as i32))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(b.port)
                })
                .collect(),
        );
    Some(resp)
}

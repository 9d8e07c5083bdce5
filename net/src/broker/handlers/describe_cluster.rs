//! DescribeCluster: the cluster id, the controller and the brokers (KIP-700).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::super::{Command, Shared};

pub(super) async fn handle(
    shared: &Shared,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let (tx, rx) = oneshot::channel();
    let cluster = if shared.send(Command::Cluster { reply: tx }).await {
        rx.await.unwrap_or_default()
    } else {
        Default::default()
    };
    let cluster_id = cluster
        .cluster_id
        .clone()
        .unwrap_or_else(|| shared.cluster_id.clone());
    DescribeClusterResponse::default()
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
        )
}

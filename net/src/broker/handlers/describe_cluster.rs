//! DescribeCluster: the cluster id, the controller and the brokers (KIP-700).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;

pub(super) fn handle(shared: &Shared, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    let me = BrokerId(shared.cfg.node_id.0 as i32);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shared.cluster_id.clone()))
        .with_controller_id(me)
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(me)
            .with_host(StrBytes::from_string(shared.advertised_host.clone()))
            .with_port(shared.advertised_port)])
}

//! SyncGroup: the leader hands in the assignment; every member gets its share once the
//! coordinator has stored it. Protocol type and name are checked from v5 (KIP-559).

use eddy_core::group::{
    GroupRequest, GroupResponse, SyncGroupAssignment, SyncGroupRequest as Sync,
};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(shared: &Shared, req: SyncGroupRequest) -> SyncGroupResponse {
    let sync = Sync {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| SyncGroupAssignment {
                member_id: a.member_id.to_string(),
                assignment: a.assignment,
            })
            .collect(),
    };
    match ask_group(shared, GroupRequest::SyncGroup(sync)).await {
        Ok(GroupResponse::SyncGroup(r)) => SyncGroupResponse::default()
            .with_error_code(error_code(r.error))
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
            .with_assignment(r.assignment),
        _ => SyncGroupResponse::default().with_error_code(super::COORDINATOR_NOT_AVAILABLE),
    }
}

//! Heartbeat: keeps a member's session alive and tells it when to rejoin
//! (REBALANCE_IN_PROGRESS).

use eddy_core::group::{GroupRequest, GroupResponse, HeartbeatRequest as Beat};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(shared: &Shared, req: HeartbeatRequest) -> HeartbeatResponse {
    let beat = Beat {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
    };
    match ask_group(shared, GroupRequest::Heartbeat(beat)).await {
        Ok(GroupResponse::Heartbeat(r)) => {
            HeartbeatResponse::default().with_error_code(error_code(r.error))
        }
        _ => HeartbeatResponse::default().with_error_code(super::COORDINATOR_NOT_AVAILABLE),
    }
}

//! JoinGroup: into the core's group coordinator, which decides membership, generations
//! and the protocol. What the version decides is settled here: v0 has no rebalance
//! timeout (the session timeout serves), and from v4 a new member is first told
//! MEMBER_ID_REQUIRED (KIP-394).

use eddy_core::group::{GroupRequest, GroupResponse, JoinGroupProtocol, JoinGroupRequest as Join};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code, Caller};

pub(super) async fn handle(
    shared: &Shared,
    caller: &Caller,
    version: i16,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let join = Join {
        group_id: req.group_id.0.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| JoinGroupProtocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        reason: req.reason.map(|s| s.to_string()),
        client_id: caller.client_id.clone(),
        client_host: caller.host.clone(),
        require_known_member_id: version >= 4,
    };
    let member_id = join.member_id.clone();
    match ask_group(shared, GroupRequest::JoinGroup(join)).await {
        Ok(GroupResponse::JoinGroup(r)) => JoinGroupResponse::default()
            .with_error_code(error_code(r.error))
            .with_generation_id(r.generation_id)
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
            .with_leader(StrBytes::from_string(r.leader))
            .with_skip_assignment(r.skip_assignment)
            .with_member_id(StrBytes::from_string(r.member_id))
            .with_members(
                r.members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        _ => JoinGroupResponse::default()
            .with_error_code(super::COORDINATOR_NOT_AVAILABLE)
            .with_generation_id(-1)
            .with_member_id(StrBytes::from_string(member_id)),
    }
}

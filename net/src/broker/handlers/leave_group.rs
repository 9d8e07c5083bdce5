//! LeaveGroup: v0–2 name one member and carry its error at the top level; v3+ carry a
//! batch of members, each answered (KIP-345).

use eddy_core::group::{GroupRequest, GroupResponse, LeaveGroupRequest as Leave, MemberIdentity};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(
    shared: &Shared,
    version: i16,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members = if version < 3 {
        vec![MemberIdentity {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    } else {
        req.members
            .into_iter()
            .map(|m| MemberIdentity {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                reason: m.reason.map(|s| s.to_string()),
            })
            .collect()
    };
    let leave = Leave {
        group_id: req.group_id.0.to_string(),
        members,
    };
    match ask_group(shared, GroupRequest::LeaveGroup(leave)).await {
        Ok(GroupResponse::LeaveGroup(r)) => {
            if version < 3 {
                let member_error = r.members.first().map_or(0, |m| error_code(m.error));
                let top = error_code(r.error);
                return LeaveGroupResponse::default().with_error_code(if top != 0 {
                    top
                } else {
                    member_error
                });
            }
            LeaveGroupResponse::default()
                .with_error_code(error_code(r.error))
                .with_members(
                    r.members
                        .into_iter()
                        .map(|m| {
                            MemberResponse::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_group_instance_id(
                                    m.group_instance_id.map(StrBytes::from_string),
                                )
                                .with_error_code(error_code(m.error))
                        })
                        .collect(),
                )
        }
        _ => LeaveGroupResponse::default().with_error_code(super::COORDINATOR_NOT_AVAILABLE),
    }
}

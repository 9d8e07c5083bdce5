//! DescribeGroups: each group's state, protocol and members (with their metadata and
//! assignment once the group is Stable).

use eddy_core::group::{DescribeGroupsRequest as Describe, GroupRequest, GroupResponse};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(
    shared: &Shared,
    version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let names: Vec<GroupId> = req.groups.clone();
    let describe = Describe {
        groups: req.groups.into_iter().map(|g| g.0.to_string()).collect(),
        report_missing_group: version >= 6,
    };
    match ask_group(shared, GroupRequest::DescribeGroups(describe)).await {
        Ok(GroupResponse::DescribeGroups(r)) => DescribeGroupsResponse::default().with_groups(
            r.groups
                .into_iter()
                .map(|g| {
                    DescribedGroup::default()
                        .with_error_code(error_code(g.error))
                        .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                        .with_group_state(StrBytes::from_string(g.group_state))
                        .with_protocol_type(StrBytes::from_string(g.protocol_type))
                        .with_protocol_data(StrBytes::from_string(g.protocol_data))
                        .with_authorized_operations(i32::MIN)
                        .with_members(
                            g.members
                                .into_iter()
                                .map(|m| {
                                    DescribedGroupMember::default()
                                        .with_member_id(StrBytes::from_string(m.member_id))
                                        .with_group_instance_id(
                                            m.group_instance_id.map(StrBytes::from_string),
                                        )
                                        .with_client_id(StrBytes::from_string(m.client_id))
                                        .with_client_host(StrBytes::from_string(m.client_host))
                                        .with_member_metadata(m.member_metadata)
                                        .with_member_assignment(m.member_assignment)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        _ => {
            let code = super::COORDINATOR_NOT_AVAILABLE;
            DescribeGroupsResponse::default().with_groups(
                names
                    .into_iter()
                    .map(|g| {
                        DescribedGroup::default()
                            .with_group_id(g)
                            .with_error_code(code)
                    })
                    .collect(),
            )
        }
    }
}

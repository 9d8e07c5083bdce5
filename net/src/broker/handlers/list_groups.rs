//! ListGroups: the groups this coordinator holds, optionally only those in some states
//! (KIP-518, v4).

use eddy_core::group::{GroupRequest, GroupResponse, ListGroupsRequest as List};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(shared: &Shared, req: ListGroupsRequest) -> ListGroupsResponse {
    let list = List {
        states_filter: req
            .states_filter
            .into_iter()
            .map(|s| s.to_string())
            .collect(),
    };
    match ask_group(shared, GroupRequest::ListGroups(list)).await {
        Ok(GroupResponse::ListGroups(r)) => ListGroupsResponse::default()
            .with_error_code(error_code(r.error))
            .with_groups(
                r.groups
                    .into_iter()
                    .map(|g| {
                        ListedGroup::default()
                            .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                            .with_protocol_type(StrBytes::from_string(g.protocol_type))
                            .with_group_state(StrBytes::from_string(g.group_state))
                            .with_group_type(StrBytes::from_static_str("classic"))
                    })
                    .collect(),
            ),
        _ => ListGroupsResponse::default().with_error_code(super::COORDINATOR_NOT_AVAILABLE),
    }
}

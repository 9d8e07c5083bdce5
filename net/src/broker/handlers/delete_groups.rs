//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while
//! members remain).

use eddy_core::group::{DeleteGroupsRequest as Delete, GroupRequest, GroupResponse};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::super::Shared;
use super::{ask_group, error_code};

pub(super) async fn handle(shared: &Shared, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let names = req.groups_names.clone();
    let delete = Delete {
        groups_names: req
            .groups_names
            .into_iter()
            .map(|g| g.0.to_string())
            .collect(),
    };
    let results = match ask_group(shared, GroupRequest::DeleteGroups(delete)).await {
        Ok(GroupResponse::DeleteGroups(r)) => r
            .results
            .into_iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                    .with_error_code(error_code(g.error))
            })
            .collect(),
        _ => {
            let code = super::COORDINATOR_NOT_AVAILABLE;
            names
                .into_iter()
                .map(|g| {
                    DeletableGroupResult::default()
                        .with_group_id(g)
                        .with_error_code(code)
                })
                .collect()
        }
    };
    DeleteGroupsResponse::default().with_results(results)
}

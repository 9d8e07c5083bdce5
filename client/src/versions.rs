//! The API versions this client speaks, and the choice of one per request: the highest
//! version both this client and the broker serve (the broker's ranges come from its
//! ApiVersions answer when the connection opens).
//!
//! The ceilings stop short of versions whose request shape changes in ways this client
//! does not build: FindCoordinator v4 and OffsetFetch v8 batch several keys/groups per
//! request, Fetch v13 addresses topics by id.

use kafka_protocol::messages::ApiKey;

/// (API, lowest, highest, name) this client speaks.
const CLIENT_VERSIONS: &[(ApiKey, i16, i16, &str)] = &[
    (ApiKey::Produce, 3, 9, "Produce"),
    (ApiKey::Fetch, 4, 12, "Fetch"),
    (ApiKey::ListOffsets, 1, 7, "ListOffsets"),
    (ApiKey::Metadata, 1, 12, "Metadata"),
    (ApiKey::ApiVersions, 0, 3, "ApiVersions"),
    (ApiKey::CreateTopics, 2, 5, "CreateTopics"),
    (ApiKey::InitProducerId, 0, 4, "InitProducerId"),
    (ApiKey::DeleteTopics, 1, 5, "DeleteTopics"),
    (ApiKey::CreatePartitions, 0, 3, "CreatePartitions"),
    (ApiKey::DescribeConfigs, 1, 4, "DescribeConfigs"),
    (
        ApiKey::IncrementalAlterConfigs,
        0,
        1,
        "IncrementalAlterConfigs",
    ),
    (ApiKey::DescribeCluster, 0, 1, "DescribeCluster"),
    (ApiKey::FindCoordinator, 0, 3, "FindCoordinator"),
    (ApiKey::JoinGroup, 0, 7, "JoinGroup"),
    (ApiKey::SyncGroup, 0, 5, "SyncGroup"),
    (ApiKey::Heartbeat, 0, 4, "Heartbeat"),
    (ApiKey::LeaveGroup, 0, 4, "LeaveGroup"),
    (ApiKey::OffsetCommit, 2, 8, "OffsetCommit"),
    (ApiKey::OffsetFetch, 1, 7, "OffsetFetch"),
    (ApiKey::ListGroups, 0, 4, "ListGroups"),
    (ApiKey::DescribeGroups, 0, 5, "DescribeGroups"),
    (ApiKey::DeleteGroups, 0, 2, "DeleteGroups"),
];

/// This client's range for `key`, and the API's name for messages.
pub(crate) fn client_range(key: ApiKey) -> (i16, i16, &'static str) {
    CLIENT_VERSIONS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|&(_, min, max, name)| (min, max, name))
        .unwrap_or_else(|| panic!("the client never sends {key:?}"))
}

/// The API's name, for error messages.
pub(crate) fn api_name(key: ApiKey) -> &'static str {
    client_range(key).2
}

/// The highest version in both ranges, if they overlap.
pub(crate) fn pick(client: (i16, i16), broker: (i16, i16)) -> Option<i16> {
    let lo = client.0.max(broker.0);
    let hi = client.1.min(broker.1);
    (lo <= hi).then_some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_common_version_or_none() {
        assert_eq!(pick((1, 12), (0, 9)), Some(9));
        assert_eq!(pick((3, 9), (0, 13)), Some(9));
        assert_eq!(pick((4, 12), (0, 3)), None);
    }
}

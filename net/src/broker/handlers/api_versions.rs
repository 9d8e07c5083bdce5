//! ApiVersions: the versions Eddy really serves (`wire::SUPPORTED`), with no tagged
//! fields. The KIP-511 fallback for versions newer than Eddy's is answered at the frame
//! level (`wire::api_versions_fallback`), before decoding.

use kafka_protocol::messages::ApiVersionsResponse;

pub(super) fn handle() -> ApiVersionsResponse {
    crate::wire::api_versions_response(None)
}

//! The Kafka wire protocol at the frame level: length-prefixed frames in, decoded requests
//! out, responses encoded back into frames.
//!
//! Decoding is the `kafka-protocol` crate's; this module stands between it and the
//! socket and guards against its traps (../shared/KAFKA-COMPAT.md): the frame length is
//! checked against `socket.request.max.bytes` before a byte of the body is allocated, a
//! frame too short for a request header is refused before the crate sees it (it would
//! panic), and versions are checked against Eddy's own table of what is really
//! implemented, [`SUPPORTED`], not the crate's over-reported ranges.
//!
//! What a bad frame gets, as a Kafka broker does it: an ApiVersions request at a version
//! newer than Eddy's is answered in v0 format with UNSUPPORTED_VERSION and the supported
//! ranges (KIP-511); anything else that cannot be decoded — an unknown API key, an
//! unsupported version, a truncated or garbled body, a frame over the size limit —
//! closes the connection, and only that connection. Bodies are decoded through
//! [`guard`], so that no count read off the wire can make the decoder allocate more than
//! the frame's size warrants.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

mod fetch;
mod guard;

pub use fetch::encode_fetch_response;

/// The APIs Eddy implements and the versions of each it really serves. Produce is
/// advertised from v0 although v0–2 are refused when they arrive: librdkafka before
/// 2.11.1 stops compressing when Produce's minimum is above 0 (KAFKA-COMPAT item 2), and
/// Kafka 4 does the same.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DeleteTopics, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// The lowest version of `key` that is decoded, where it is above the advertised minimum:
/// Produce v0–2 and OffsetCommit v0–1 are advertised (old librdkafka needs to see them)
/// but refused when they arrive, as Kafka 4 does.
fn min_decoded(key: ApiKey, advertised_min: i16) -> i16 {
    match key {
        ApiKey::Produce => 3,
        ApiKey::OffsetCommit => 2,
        _ => advertised_min,
    }
}

/// The smallest request: api key, api version and correlation id.
const MIN_REQUEST_BYTES: usize = 8;

/// The versions of `key` that are decoded and answered: the advertised range without
/// the refused low versions (see `min_decoded`).
pub fn decoded_versions(key: ApiKey) -> Option<(i16, i16)> {
    supported_versions(key).map(|(min, max)| (min_decoded(key, min), max))
}

/// The versions of `key` Eddy serves, if it serves it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {size} bytes is over socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: u32 },
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} v{version} is not supported (Eddy serves v{min}..=v{max})")]
    UnsupportedVersion {
        key: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("{key:?} v{version} does not decode: {reason}")]
    Malformed {
        key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Reads one length-prefixed frame. `Ok(None)` at a clean end of stream (the peer closed
/// between frames). The body is allocated only once its length is known to be within
/// `max_bytes`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: u32,
) -> std::io::Result<Result<Option<Bytes>, FrameError>> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut len_buf[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(Ok(None));
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let size = i32::from_be_bytes(len_buf);
    if size < 0 || size as u32 > max_bytes {
        return Ok(Err(FrameError::TooLarge {
            size: size.into(),
            max: max_bytes,
        }));
    }
    let mut body = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut body).await?;
    Ok(Ok(Some(body.freeze())))
}

/// A decoded request frame.
#[derive(Debug)]
pub enum Request {
    /// A request Eddy serves, decoded.
    Decoded {
        header: RequestHeader,
        key: ApiKey,
        version: i16,
        body: Box<RequestKind>,
    },
    /// ApiVersions at a version newer than Eddy knows: answer with
    /// [`api_versions_fallback`] (KIP-511).
    ApiVersionsTooNew { correlation_id: i32 },
}

/// Decodes one frame's bytes (without the length prefix).
pub fn decode_request(frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < MIN_REQUEST_BYTES {
        return Err(FrameError::TooShort(frame.len()));
    }
    let mut peek = &frame[..];
    let raw_key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey(raw_key))?;
    let Some((min, max)) = supported_versions(key) else {
        return Err(FrameError::UnknownApiKey(raw_key));
    };
    if key == ApiKey::ApiVersions && version > max {
        return Ok(Request::ApiVersionsTooNew { correlation_id });
    }
    if version < min_decoded(key, min) || version > max {
        return Err(FrameError::UnsupportedVersion {
            key,
            version,
            min,
            max,
        });
    }
    let malformed = |reason: String| FrameError::Malformed {
        key,
        version,
        reason,
    };
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, key.request_header_version(version))
        .map_err(|e| malformed(format!("{e:#}")))?;
    let body = decode_body(key, &buf, version).map_err(malformed)?;
    Ok(Request::Decoded {
        header,
        key,
        version,
        body: Box::new(body),
    })
}

/// Decodes a request body through [`guard`], for the APIs in [`SUPPORTED`].
fn decode_body(key: ApiKey, body: &Bytes, version: i16) -> Result<RequestKind, String> {
    use kafka_protocol::messages as m;
    Ok(match key {
        ApiKey::Produce => RequestKind::Produce(guard::decode::<m::ProduceRequest>(body, version)?),
        ApiKey::Fetch => RequestKind::Fetch(guard::decode::<m::FetchRequest>(body, version)?),
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(guard::decode::<m::ListOffsetsRequest>(body, version)?)
        }
        ApiKey::Metadata => {
            RequestKind::Metadata(guard::decode::<m::MetadataRequest>(body, version)?)
        }
        ApiKey::ApiVersions => {
            RequestKind::ApiVersions(guard::decode::<m::ApiVersionsRequest>(body, version)?)
        }
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(guard::decode::<m::CreateTopicsRequest>(body, version)?)
        }
        ApiKey::InitProducerId => {
            RequestKind::InitProducerId(guard::decode::<m::InitProducerIdRequest>(body, version)?)
        }
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(guard::decode::<
            m::OffsetForLeaderEpochRequest,
        >(body, version)?),
        ApiKey::DeleteTopics => {
            RequestKind::DeleteTopics(guard::decode::<m::DeleteTopicsRequest>(body, version)?)
        }
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(guard::decode::<
            m::CreatePartitionsRequest,
        >(body, version)?),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(
                guard::decode::<m::IncrementalAlterConfigsRequest>(body, version)?,
            )
        }
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(guard::decode::<m::DescribeConfigsRequest>(body, version)?)
        }
        ApiKey::DescribeCluster => {
            RequestKind::DescribeCluster(guard::decode::<m::DescribeClusterRequest>(body, version)?)
        }
        ApiKey::FindCoordinator => {
            RequestKind::FindCoordinator(guard::decode::<m::FindCoordinatorRequest>(body, version)?)
        }
        ApiKey::JoinGroup => {
            RequestKind::JoinGroup(guard::decode::<m::JoinGroupRequest>(body, version)?)
        }
        ApiKey::SyncGroup => {
            RequestKind::SyncGroup(guard::decode::<m::SyncGroupRequest>(body, version)?)
        }
        ApiKey::Heartbeat => {
            RequestKind::Heartbeat(guard::decode::<m::HeartbeatRequest>(body, version)?)
        }
        ApiKey::LeaveGroup => {
            RequestKind::LeaveGroup(guard::decode::<m::LeaveGroupRequest>(body, version)?)
        }
        ApiKey::OffsetCommit => {
            RequestKind::OffsetCommit(guard::decode::<m::OffsetCommitRequest>(body, version)?)
        }
        ApiKey::OffsetFetch => {
            RequestKind::OffsetFetch(guard::decode::<m::OffsetFetchRequest>(body, version)?)
        }
        ApiKey::ListGroups => {
            RequestKind::ListGroups(guard::decode::<m::ListGroupsRequest>(body, version)?)
        }
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(guard::decode::<m::DescribeGroupsRequest>(body, version)?)
        }
        ApiKey::DeleteGroups => {
            RequestKind::DeleteGroups(guard::decode::<m::DeleteGroupsRequest>(body, version)?)
        }
        other => return Err(format!("{other:?} is not served")),
    })
}

/// Encodes a response frame: length prefix, header, body. ApiVersions responses always
/// carry a v0 header (KIP-511), whatever the request version.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    let header_version = if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    };
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| format!("{key:?} v{version} header: {e:#}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("{key:?} v{version} body: {e:#}"))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| "response over 2 GiB".to_string())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Eddy's ApiVersions answer. No tagged fields are set: librdkafka 2.0.2 (Debian's kcat
/// 1.7.1) misreads them and fails the handshake (KAFKA-COMPAT item 1).
pub fn api_versions_response(error: Option<ResponseError>) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

/// The frame answering an ApiVersions request newer than Eddy knows: v0 format,
/// UNSUPPORTED_VERSION, and the supported ranges so the client can retry lower.
pub fn api_versions_fallback(correlation_id: i32) -> Bytes {
    let body = ResponseKind::ApiVersions(api_versions_response(Some(
        ResponseError::UnsupportedVersion,
    )));
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
        .expect("an ApiVersions v0 response always encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(key: i16, version: i16, correlation_id: i32, rest: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(correlation_id);
        b.put_slice(rest);
        b.freeze()
    }

    #[tokio::test]
    async fn frame_over_the_limit_is_refused_before_reading_its_body() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let got = read_frame(&mut input, 1024).await.unwrap();
        assert_eq!(
            got,
            Err(FrameError::TooLarge {
                size: i32::MAX.into(),
                max: 1024
            })
        );
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            read_frame(&mut negative, 1024).await.unwrap(),
            Err(FrameError::TooLarge { size: -2, .. })
        ));
    }

    #[tokio::test]
    async fn clean_end_of_stream_between_frames_is_not_an_error() {
        let mut input: &[u8] = &[];
        assert_eq!(read_frame(&mut input, 1024).await.unwrap(), Ok(None));
        let mut torn: &[u8] = &[0, 0];
        assert!(read_frame(&mut torn, 1024).await.is_err());
    }

    #[test]
    fn short_frames_unknown_keys_and_unsupported_versions_are_refused() {
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 18, 0])).unwrap_err(),
            FrameError::TooShort(3)
        );
        assert_eq!(
            decode_request(frame(9999, 0, 1, &[])).unwrap_err(),
            FrameError::UnknownApiKey(9999)
        );
        // Fetch v3 is below what Eddy serves; Produce v2 is advertised but refused.
        assert!(matches!(
            decode_request(frame(1, 3, 1, &[0, 0])).unwrap_err(),
            FrameError::UnsupportedVersion { version: 3, .. }
        ));
        assert!(matches!(
            decode_request(frame(0, 2, 1, &[0, 0])).unwrap_err(),
            FrameError::UnsupportedVersion { version: 2, .. }
        ));
    }

    #[test]
    fn garbled_body_is_malformed_not_a_panic() {
        // Metadata v1: client id, then a topics array claiming more than the frame holds.
        let err = decode_request(frame(3, 1, 7, &[0, 0, 0, 0, 0, 9])).unwrap_err();
        assert!(matches!(err, FrameError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn api_versions_newer_than_eddy_gets_a_v0_unsupported_version_answer() {
        let Request::ApiVersionsTooNew { correlation_id } =
            decode_request(frame(18, 99, 42, &[])).unwrap()
        else {
            panic!("expected the KIP-511 fallback");
        };
        assert_eq!(correlation_id, 42);
        let mut out = api_versions_fallback(correlation_id);
        let len = out.get_i32();
        assert_eq!(len as usize, out.len());
        assert_eq!(out.get_i32(), 42, "v0 header: just the correlation id");
        let resp = ApiVersionsResponse::decode(&mut out, 0).unwrap();
        assert_eq!(resp.error_code, 35);
        assert!(resp
            .api_keys
            .iter()
            .any(|k| k.api_key == 18 && k.max_version == 4));
    }

    #[test]
    fn api_versions_v3_response_carries_no_tagged_fields() {
        let body = ResponseKind::ApiVersions(api_versions_response(None));
        let mut out = encode_response(ApiKey::ApiVersions, 3, 5, &body).unwrap();
        out.advance(4 + 4);
        let resp = ApiVersionsResponse::decode(&mut out.clone(), 3).unwrap();
        assert!(resp.supported_features.is_empty());
        assert!(resp.finalized_features.is_empty());
        // The encoding ends with throttle_time_ms and an empty tagged-field section.
        assert_eq!(&out[out.len() - 5..], &[0, 0, 0, 0, 0]);
    }

    #[test]
    fn every_advertised_range_decodes_in_the_crate() {
        for &(key, min, max) in SUPPORTED {
            assert!(min <= max);
            let lowest = min_decoded(key, min);
            let valid = key.valid_versions();
            assert!(
                valid.min <= lowest && max <= valid.max,
                "{key:?}: Eddy serves {lowest}..={max}, the crate decodes {valid}"
            );
        }
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        fn every_served_version() -> Vec<(ApiKey, i16)> {
            SUPPORTED
                .iter()
                .flat_map(|&(k, min, max)| (min_decoded(k, min)..=max).map(move |v| (k, v)))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any bytes at all, for every API and version Eddy serves: an error or a
            /// request, never a panic or an abort.
            #[test]
            fn random_bodies_never_panic_or_abort(body in proptest::collection::vec(any::<u8>(), 0..96)) {
                let body = Bytes::from(body);
                for (key, version) in every_served_version() {
                    let _ = decode_body(key, &body, version);
                }
            }

            /// A valid Metadata request with bytes overwritten at random: counts become
            /// anything, and the decoder must still not allocate on their word.
            #[test]
            fn corrupted_requests_never_panic_or_abort(
                at in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
            ) {
                use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
                use kafka_protocol::messages::{MetadataRequest, TopicName};
                use kafka_protocol::protocol::{Encodable, StrBytes};
                let req = MetadataRequest::default().with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("a")))),
                    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("bb")))),
                ]));
                for version in 0..=12 {
                    let mut b = BytesMut::new();
                    req.encode(&mut b, version).unwrap();
                    for (i, byte) in &at {
                        let i = i.index(b.len());
                        b[i] = *byte;
                    }
                    let _ = decode_body(ApiKey::Metadata, &b.clone().freeze(), version);
                }
            }
        }
    }
}

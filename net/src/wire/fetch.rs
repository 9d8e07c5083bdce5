//! Fetch responses without copying their records: the frame is written as a list of
//! pieces, the encoded fields between the record sets and the stored batches themselves
//! (the same `Bytes` the log holds), so fetched bytes cross user space at most once — the
//! kernel's copy into the socket. Kafka does the same with `sendfile`.
//!
//! `kafka-protocol` encodes a records field by copying it. So the response is encoded
//! with a 16-byte placeholder in each partition's records field, and the encoded bytes
//! are cut around the placeholders: each one and its length prefix are replaced by the
//! real length and the partition's batches. The placeholders are found in order (the
//! encoder writes partitions in order) and each carries its index, so a wrong cut is an
//! error, never a silently different response; the tests compare every supported version
//! byte for byte with the plain encoding.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

/// Twelve bytes no other field of a fetch response starts a 16-byte run with (topic
/// names are `[a-zA-Z0-9._-]`), then the partition's index.
const PLACEHOLDER_MAGIC: [u8; 12] = *b"\xffEDDY\x00rec\xfe\x01\x02";
const PLACEHOLDER_LEN: usize = 16;

/// The first version whose records field is a compact (varint-length) one.
const FIRST_FLEXIBLE_VERSION: i16 = 12;

fn placeholder(i: u32) -> Bytes {
    let mut p = BytesMut::with_capacity(PLACEHOLDER_LEN);
    p.put_slice(&PLACEHOLDER_MAGIC);
    p.put_u32(i);
    p.freeze()
}

fn put_unsigned_varint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Encodes `resp` (whose records fields are ignored) as a response frame in pieces, with
/// `records[i]` — the batches of the i-th partition, in response order — as the i-th
/// partition's records, uncopied. Concatenated, the pieces are the frame
/// [`super::encode_response`] would give for the same response with those records.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    mut resp: FetchResponse,
    records: &[Vec<Bytes>],
) -> Result<Vec<Bytes>, String> {
    let mut i = 0u32;
    for topic in &mut resp.responses {
        for p in &mut topic.partitions {
            p.records = Some(placeholder(i));
            i += 1;
        }
    }
    if i as usize != records.len() {
        return Err(format!(
            "fetch response has {i} partitions but {} record sets",
            records.len()
        ));
    }
    let encoded = super::encode_response(
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseKind::Fetch(resp),
    )?;
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    // A placeholder's length prefix as the encoder wrote it, and its size.
    let old_prefix: &[u8] = if flexible {
        &[PLACEHOLDER_LEN as u8 + 1]
    } else {
        &(PLACEHOLDER_LEN as i32).to_be_bytes()
    };
    let mut pieces = Vec::with_capacity(2 * records.len() + 1);
    let mut frame_len = encoded.len() - 4;
    let mut from = 4; // the frame length is written last
    for (i, batches) in records.iter().enumerate() {
        let want = placeholder(i as u32);
        let at = from
            + find(&encoded[from..], &want)
                .ok_or_else(|| format!("fetch response: placeholder {i} not found"))?;
        let prefix_at = at
            .checked_sub(old_prefix.len())
            .filter(|&p| p >= from && &encoded[p..at] == old_prefix)
            .ok_or_else(|| format!("fetch response: placeholder {i} has no length prefix"))?;
        let len: usize = batches.iter().map(Bytes::len).sum();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|&l| l < i32::MAX as u32)
            .ok_or_else(|| format!("fetch response: {len} bytes of records"))?;
        let mut head = BytesMut::with_capacity(prefix_at - from + 5);
        head.put_slice(&encoded[from..prefix_at]);
        if flexible {
            put_unsigned_varint(&mut head, len32 + 1);
        } else {
            head.put_i32(len32 as i32);
        }
        frame_len = frame_len - old_prefix.len() - PLACEHOLDER_LEN
            + (head.len() - (prefix_at - from))
            + len;
        pieces.push(head.freeze());
        pieces.extend(batches.iter().filter(|b| !b.is_empty()).cloned());
        from = at + PLACEHOLDER_LEN;
    }
    let frame_len = i32::try_from(frame_len).map_err(|_| "response over 2 GiB".to_string())?;
    let mut first = BytesMut::with_capacity(4);
    first.put_i32(frame_len);
    pieces.insert(0, first.freeze());
    pieces.push(encoded.slice(from..));
    Ok(pieces)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn response(records: &[Vec<Bytes>], with_records: bool) -> FetchResponse {
        let mut topics = Vec::new();
        let mut i = 0;
        for t in 0..2 {
            let mut parts = Vec::new();
            for p in 0..records.len() / 2 {
                let batches: &Vec<Bytes> = &records[i];
                i += 1;
                let mut data = PartitionData::default()
                    .with_partition_index(p as i32)
                    .with_high_watermark(1000 + i as i64)
                    .with_last_stable_offset(1000 + i as i64)
                    .with_log_start_offset(0)
                    .with_aborted_transactions(Some(Vec::new()))
                    .with_preferred_read_replica(BrokerId(-1));
                if with_records {
                    let all: Vec<u8> = batches.iter().flat_map(|b| b.iter().copied()).collect();
                    data = data.with_records(Some(Bytes::from(all)));
                }
                parts.push(data);
            }
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(format!("topic-{t}"))))
                    .with_partitions(parts),
            );
        }
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics)
    }

    #[test]
    fn pieces_are_the_plain_encoding_byte_for_byte_in_every_supported_version() {
        let batch = |n: usize, fill: u8| Bytes::from(vec![fill; n]);
        let records = vec![
            vec![batch(61, 1), batch(200, 2)],
            vec![],
            // Over 127 + 16384 bytes: a three-byte varint length in v12.
            vec![batch(20_000, 3), batch(1, 4), batch(0, 5)],
            vec![batch(70, 6)],
        ];
        for version in 4..=12 {
            let plain = super::super::encode_response(
                ApiKey::Fetch,
                version,
                77,
                &ResponseKind::Fetch(response(&records, true)),
            )
            .expect("encodes");
            let pieces = encode_fetch_response(version, 77, response(&records, false), &records)
                .expect("encodes in pieces");
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec(), "version {version}");
            // The batches themselves are pieces: not copied.
            assert!(pieces
                .iter()
                .any(|p| p.as_ptr() == records[2][0].as_ptr() && p.len() == 20_000));
        }
    }

    #[test]
    fn a_record_set_per_partition_is_required() {
        let records = vec![vec![], vec![]];
        let err = encode_fetch_response(12, 1, response(&records, false), &records[..1])
            .expect_err("one set short");
        assert!(err.contains("2 partitions but 1 record sets"), "{err}");
    }
}

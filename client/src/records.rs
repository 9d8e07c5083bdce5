//! Record batches on the client side: building a producer's batch, compressed as the
//! producer is configured, and reading the records out of a fetch answer.
//!
//! The uncompressed v2 encoding and the CRC-32C are the core's (`eddy_core::batch`); this
//! module adds what only a client needs: compressing the records section (bytes 61..)
//! with the codec in attributes bits 0–2, and decompressing it on the way back, using
//! the `kafka-protocol` crate's codecs (gzip, snappy with Kafka's xerial framing, LZ4
//! frame, zstd) so the bytes match what Kafka's own clients write and read.

use bytes::{BufMut, Bytes, BytesMut};
use eddy_core::batch::{self, BatchBuilder, BatchHeader, NewRecord, HEADER_LEN};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

pub use eddy_core::batch::Compression;

// Positions in the v2 header (Kafka docs, "Record Batch"): the CRC covers everything
// from the attributes on.
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_FLAG: i16 = 0x08;

/// `compression.type` as Kafka spells it.
pub fn parse_compression(name: &str) -> Option<Compression> {
    match name {
        "none" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

fn code(c: Compression) -> i16 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Builds one v2 batch of `records`. `producer` is (producer id, epoch, base sequence)
/// for an idempotent producer.
pub(crate) fn build_batch(
    records: &[NewRecord],
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let mut builder = match producer {
        Some((id, epoch, sequence)) => BatchBuilder::idempotent(id, epoch, sequence),
        None => BatchBuilder::new(),
    };
    for r in records {
        builder.push(r.clone());
    }
    let plain = builder.build();
    if compression == Compression::None {
        return plain;
    }
    let compressed = compress(compression, &plain[HEADER_LEN..]);
    let mut out = BytesMut::with_capacity(HEADER_LEN + compressed.len());
    out.put_slice(&plain[..HEADER_LEN]);
    out.put_slice(&compressed);
    let batch_length = i32::try_from(out.len() - batch::LOG_OVERHEAD).expect("batch under 2 GiB");
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes =
        i16::from_be_bytes([out[ATTRIBUTES_AT], out[ATTRIBUTES_AT + 1]]) | code(compression);
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    let out = out.freeze();
    debug_assert!(batch::validate(&out).is_ok());
    out
}

fn compress(compression: Compression, plain: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    // The closures' error type is the crate's (anyhow's), inferred from the trait bound.
    let done = match compression {
        Compression::None => unreachable!("not called for none"),
        Compression::Gzip => codec::Gzip::compress(&mut out, |t: &mut BytesMut| {
            t.put_slice(plain);
            Ok(())
        }),
        Compression::Snappy => codec::Snappy::compress(&mut out, |t: &mut BytesMut| {
            t.put_slice(plain);
            Ok(())
        }),
        Compression::Lz4 => codec::Lz4::compress(&mut out, |t: &mut BytesMut| {
            t.put_slice(plain);
            Ok(())
        }),
        Compression::Zstd => codec::Zstd::compress(&mut out, |t: &mut BytesMut| {
            t.put_slice(plain);
            Ok(())
        }),
    };
    done.expect("compressing bytes in memory cannot fail");
    out.to_vec()
}

fn decompress(compression: Compression, data: Bytes) -> Result<Bytes, String> {
    let mut data = data;
    let r = match compression {
        Compression::None => return Ok(data),
        Compression::Gzip => {
            codec::Gzip::decompress(&mut data, |b: &mut Bytes| Ok(std::mem::take(b)))
        }
        Compression::Snappy => {
            codec::Snappy::decompress(&mut data, |b: &mut Bytes| Ok(std::mem::take(b)))
        }
        Compression::Lz4 => {
            codec::Lz4::decompress(&mut data, |b: &mut Bytes| Ok(std::mem::take(b)))
        }
        Compression::Zstd => {
            codec::Zstd::decompress(&mut data, |b: &mut Bytes| Ok(std::mem::take(b)))
        }
    };
    r.map_err(|e| format!("{compression:?} decompression failed: {e}"))
}

/// A record read from a fetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The records of every whole data batch in `bytes` (a fetch answer's record set), in
/// order. Control batches are skipped; a batch cut off at the end (a fetch may end
/// mid-batch) is ignored, as Kafka's clients do. Returns also the offset after the last
/// batch seen, so a consumer moves past batches that held nothing for it.
pub(crate) fn decode_batches(bytes: &Bytes) -> Result<(Vec<FetchedRecord>, Option<i64>), String> {
    let mut out = Vec::new();
    let mut next_offset = None;
    let mut at = 0;
    while bytes.len() - at >= HEADER_LEN {
        let header = BatchHeader::parse(&bytes[at..]).map_err(|e| e.to_string())?;
        let len = header.total_len();
        if len > bytes.len() - at {
            break;
        }
        let raw = bytes.slice(at..at + len);
        at += len;
        batch::validate(&raw).map_err(|e| e.to_string())?;
        next_offset = Some(header.last_offset() + 1);
        if header.is_control() {
            continue;
        }
        decode_one(&header, raw, &mut out)?;
    }
    Ok((out, next_offset))
}

fn decode_one(
    header: &BatchHeader,
    raw: Bytes,
    out: &mut Vec<FetchedRecord>,
) -> Result<(), String> {
    let compression = header.compression().map_err(|e| e.to_string())?;
    let plain = if compression == Compression::None {
        raw
    } else {
        // Rebuild the batch uncompressed so that the core's decoder reads it.
        let records = decompress(compression, raw.slice(HEADER_LEN..))?;
        let mut b = BytesMut::with_capacity(HEADER_LEN + records.len());
        b.put_slice(&raw[..HEADER_LEN]);
        b.put_slice(&records);
        let batch_length = i32::try_from(b.len() - batch::LOG_OVERHEAD)
            .map_err(|_| "a decompressed batch is over 2 GiB".to_string())?;
        b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
        let attributes = header.attributes & !COMPRESSION_MASK;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    };
    let log_append_time = header.attributes & LOG_APPEND_TIME_FLAG != 0;
    let records = batch::records(&plain).map_err(|e| e.to_string())?;
    let owned = |s: &[u8]| plain.slice_ref(s);
    for r in records {
        out.push(FetchedRecord {
            offset: header.base_offset + i64::from(r.offset_delta),
            timestamp_ms: if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp + r.timestamp_delta
            },
            key: r.key.map(owned),
            value: r.value.map(owned),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.map(owned)))
                .collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NewRecord> {
        (0..50)
            .map(|i| NewRecord {
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value {i} ").repeat(10))),
                headers: vec![("h".to_string(), Some(Bytes::from_static(b"v")))],
                timestamp_ms: 1_000 + i,
            })
            .collect()
    }

    #[test]
    fn every_codec_round_trips_through_build_and_decode() {
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let compression = parse_compression(c).unwrap();
            let records = sample();
            let batch = build_batch(&records, Some((7, 0, 0)), compression);
            let header = batch::validate(&batch).unwrap();
            assert_eq!(header.compression().unwrap(), compression, "{c}");
            assert_eq!(header.producer_id, 7);
            let (got, next) = decode_batches(&batch).unwrap();
            assert_eq!(next, Some(50));
            assert_eq!(got.len(), records.len(), "{c}");
            for (i, (g, r)) in got.iter().zip(&records).enumerate() {
                assert_eq!(g.offset, i as i64);
                assert_eq!(g.key, r.key);
                assert_eq!(g.value, r.value);
                assert_eq!(g.timestamp_ms, r.timestamp_ms);
                assert_eq!(g.headers, r.headers);
            }
            if compression != Compression::None {
                let plain = build_batch(&records, None, Compression::None);
                assert!(batch.len() < plain.len(), "{c} shrinks repetitive values");
            }
        }
    }

    #[test]
    fn a_batch_cut_off_at_the_end_is_ignored() {
        let a = build_batch(&sample(), None, Compression::None);
        let mut both = BytesMut::new();
        both.put_slice(&a);
        both.put_slice(&a[..a.len() / 2]);
        let (got, next) = decode_batches(&both.freeze()).unwrap();
        assert_eq!(got.len(), 50);
        assert_eq!(next, Some(50));
    }
}

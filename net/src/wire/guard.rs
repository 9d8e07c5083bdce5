//! Decoding that cannot be made to allocate without bound.
//!
//! The `kafka-protocol` crate reads an array's element count off the wire and passes it
//! straight to `Vec::with_capacity`: a 14-byte Metadata request claiming 2³¹ topics asks
//! for ~150 GB, the allocation fails, and Rust aborts the process — one bad frame would
//! take the broker down (found by hand against `eddy broker`; frozen as a test in
//! `cli/tests/broker_wire.rs`). The crate has no schema to consult at run time, so Eddy
//! feeds it a byte source that watches what it reads:
//!
//! - Flexible versions count in unsigned varints, and on the wire a varint is only ever a
//!   length, a count or a tag number. A multi-byte varint larger than the bytes left
//!   (plus [`TAG_SLACK`], for tag numbers) cannot describe anything that fits, so the
//!   read fails before the count reaches an allocation.
//! - Older versions count in int32s, which look like any other int32 field
//!   (`max_bytes`, `timeout_ms`, …). The frame is decoded first with every int32 larger
//!   than the bytes left clamped to exactly the bytes left, then, if anything was
//!   clamped, with it clamped to one more. A count or a length needs at least one byte
//!   per unit, so at one more than the bytes left it cannot decode: if that second pass
//!   succeeds, nothing clamped was a count or a length, every count that was read fits
//!   the frame, and the third, unclamped decode is bounded by the frame size (itself
//!   bounded by `socket.request.max.bytes`). If it fails, so would the unclamped decode
//!   — after the huge allocation — and the frame is refused.
//!
//! Every array element takes at least one byte on the wire, which is what makes "larger
//! than the bytes left" a proof of a bad count.

use bytes::{Buf, Bytes, TryGetError};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::Decodable;

/// How far past the remaining bytes a varint may go: tagged-field tags are small numbers
/// that need not fit the remaining bytes.
const TAG_SLACK: u64 = 64;

/// What an int32 larger than the bytes left becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clamp {
    /// Left as it is (the final decode).
    Off,
    /// The bytes left, plus this.
    ToRemainingPlus(i64),
}

struct Guarded {
    buf: Bytes,
    clamp: Clamp,
    clamped: bool,
    /// The varint being read: its value so far and how many bytes it has taken.
    varint: u32,
    varint_len: u32,
}

impl Guarded {
    fn new(buf: Bytes, clamp: Clamp) -> Guarded {
        Guarded {
            buf,
            clamp,
            clamped: false,
            varint: 0,
            varint_len: 0,
        }
    }
}

impl Buf for Guarded {
    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn chunk(&self) -> &[u8] {
        &self.buf
    }

    fn advance(&mut self, cnt: usize) {
        // Any other read ends a varint.
        self.varint_len = 0;
        self.buf.advance(cnt);
    }

    fn try_get_i32(&mut self) -> Result<i32, TryGetError> {
        self.varint_len = 0;
        if self.buf.len() < 4 {
            return Err(TryGetError {
                requested: 4,
                available: self.buf.len(),
            });
        }
        let value = self.buf.get_i32();
        let left = self.buf.len() as i64;
        match self.clamp {
            Clamp::ToRemainingPlus(extra) if i64::from(value) > left => {
                self.clamped = true;
                Ok((left + extra).min(i64::from(i32::MAX)) as i32)
            }
            _ => Ok(value),
        }
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        if self.buf.is_empty() {
            return Err(TryGetError {
                requested: 1,
                available: 0,
            });
        }
        let b = self.buf.get_u8();
        if self.varint_len == 0 {
            self.varint = 0;
        }
        // The codec's own arithmetic: up to five bytes, seven bits each, into a u32.
        self.varint |= u32::from(b & 0x7f) << (7 * self.varint_len);
        self.varint_len += 1;
        // The codec stops at a byte below 0x80 or after the fifth byte, whatever it is.
        if b < 0x80 || self.varint_len == 5 {
            let (value, len) = (self.varint, self.varint_len);
            self.varint_len = 0;
            let left = self.buf.len() as u64;
            if len >= 2 && u64::from(value) > left + TAG_SLACK {
                return Err(TryGetError {
                    requested: value as usize,
                    available: self.buf.len(),
                });
            }
        }
        Ok(b)
    }
}

impl ByteBuf for Guarded {
    fn peek_bytes(&mut self, r: std::ops::Range<usize>) -> Bytes {
        self.buf.slice(r)
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.varint_len = 0;
        self.buf.split_to(size)
    }
}

/// Decodes `body` as a `T` at `version`, refusing any frame whose counts could make the
/// decoder allocate more than the frame's size warrants. See the module docs.
pub(crate) fn decode<T: Decodable>(body: &Bytes, version: i16) -> Result<T, String> {
    let pass = |clamp| {
        let mut buf = Guarded::new(body.clone(), clamp);
        let result = T::decode(&mut buf, version).map_err(|e| format!("{e:#}"));
        (result, buf.clamped)
    };
    let (first, clamped) = pass(Clamp::ToRemainingPlus(0));
    let first = first?;
    if !clamped {
        // Nothing was changed: this is the frame's own decoding.
        return Ok(first);
    }
    if let (Err(e), _) = pass(Clamp::ToRemainingPlus(1)) {
        return Err(format!("a count or length is larger than the frame: {e}"));
    }
    pass(Clamp::Off).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{FetchRequest, MetadataRequest};
    use kafka_protocol::protocol::Encodable;

    fn metadata_with_count(version: i16, count: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_slice(count);
        if version >= 4 {
            b.put_u8(1);
        }
        b.freeze()
    }

    #[test]
    fn a_huge_int32_count_is_refused_without_allocating() {
        let body = metadata_with_count(1, &i32::MAX.to_be_bytes());
        assert!(decode::<MetadataRequest>(&body, 1).is_err());
        let body = metadata_with_count(4, &i32::MAX.to_be_bytes());
        assert!(decode::<MetadataRequest>(&body, 4).is_err());
    }

    #[test]
    fn a_huge_varint_count_is_refused_without_allocating() {
        // Compact array count 0xffff_ffff (as an unsigned varint) in Metadata v9.
        let body = metadata_with_count(9, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let err = decode::<MetadataRequest>(&body, 9).unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn large_plain_int32_fields_survive_the_clamping() {
        // Fetch's max_bytes and max_wait_ms are larger than the frame: they are not counts
        // and must come through unchanged.
        let req = FetchRequest::default()
            .with_max_wait_ms(500_000)
            .with_max_bytes(52_428_800)
            .with_min_bytes(1);
        for version in [4, 11, 12] {
            let mut b = BytesMut::new();
            req.encode(&mut b, version).unwrap();
            let got = decode::<FetchRequest>(&b.freeze(), version).unwrap();
            assert_eq!(got.max_bytes, 52_428_800, "v{version}");
            assert_eq!(got.max_wait_ms, 500_000, "v{version}");
        }
    }

    #[test]
    fn well_formed_requests_decode_as_the_crate_decodes_them() {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::TopicName;
        use kafka_protocol::protocol::StrBytes;
        let req = MetadataRequest::default().with_topics(Some(
            (0..300)
                .map(|i| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(format!("t{i}")))))
                })
                .collect(),
        ));
        for version in 0..=12 {
            let mut b = BytesMut::new();
            req.encode(&mut b, version).unwrap();
            let b = b.freeze();
            let plain = MetadataRequest::decode(&mut b.clone(), version).unwrap();
            assert_eq!(
                decode::<MetadataRequest>(&b, version).unwrap(),
                plain,
                "v{version}"
            );
        }
    }
}

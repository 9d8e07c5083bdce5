//! What the group coordinator keeps in the internal topic `__consumer_offsets`: which
//! partition holds a group ([`offsets_partition_for`], Kafka's exact formula, so that
//! Kafka's clients and tools agree with Eddy on the coordinator of a group), and the
//! records written there — committed offsets and group metadata — in Eddy's own compact
//! format inside ordinary v2 record batches (built with [`BatchBuilder`]).
//!
//! The log is a key-value changelog, as in Kafka: the last record for a key wins on
//! replay, and a record with a null value (a tombstone) deletes the key. Format (all
//! integers big-endian; a string is a u16 length then UTF-8; a nullable string uses
//! length 0xFFFF for null; bytes are a u32 length then the bytes):
//!
//! ```text
//! key   = kind:u8 (0 = offset commit, 1 = group metadata) group_id:string
//!         [kind 0 only: topic:string partition:u32]
//! value of an offset commit  = version:u8 (0) offset:i64 leader_epoch:i32
//!                              metadata:string commit_timestamp_ms:u64
//!                              expire_timestamp_ms:i64 (-1 for none)
//! value of a group           = version:u8 (0) protocol_type:nullable string
//!                              generation:i32 protocol_name:nullable string
//!                              leader:nullable string state_timestamp_ms:u64
//!                              member_count:u32 member*
//! member = member_id:string group_instance_id:nullable string client_id:string
//!          client_host:string rebalance_timeout_ms:u32 session_timeout_ms:u32
//!          subscription:bytes assignment:bytes
//! ```
//!
//! As in Kafka, a member's record keeps only its metadata for the chosen protocol.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BatchBuilder, NewRecord};
use crate::types::TopicPartition;

/// The partition of `__consumer_offsets` that holds `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, where `hashCode` is
/// Java's `String.hashCode` over UTF-16 code units and `Utils.abs` maps
/// `Integer.MIN_VALUE` to 0.
pub fn offsets_partition_for(group_id: &str, num_partitions: u32) -> u32 {
    assert!(
        num_partitions > 0,
        "offsets.topic.num.partitions is at least 1"
    );
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    u32::try_from(abs).expect("non-negative") % num_partitions
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, in
/// wrapping 32-bit arithmetic.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The key of a record in `__consumer_offsets`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RecordKey {
    Offset {
        group_id: String,
        partition: TopicPartition,
    },
    Group {
        group_id: String,
    },
}

impl RecordKey {
    pub(crate) fn group_id(&self) -> &str {
        match self {
            RecordKey::Offset { group_id, .. } | RecordKey::Group { group_id } => group_id,
        }
    }
}

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OffsetValue {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp_ms: u64,
    pub(crate) expire_timestamp_ms: Option<u64>,
}

/// A group's metadata as stored after a rebalance (or when it became empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupValue {
    pub(crate) protocol_type: Option<String>,
    pub(crate) generation: i32,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) state_timestamp_ms: u64,
    pub(crate) members: Vec<MemberValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemberValue {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: u32,
    pub(crate) session_timeout_ms: u32,
    pub(crate) subscription: Bytes,
    pub(crate) assignment: Bytes,
}

/// The value of a record: `None` is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordValue {
    Offset(OffsetValue),
    Group(GroupValue),
}

const KIND_OFFSET: u8 = 0;
const KIND_GROUP: u8 = 1;
const VALUE_VERSION: u8 = 0;
const NULL_STRING: u16 = u16::MAX;

/// A record that does not decode; the log holds bytes Eddy did not write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a __consumer_offsets record does not decode: {0}")]
pub(crate) struct RecordError(&'static str);

pub(crate) fn encode_key(key: &RecordKey) -> Bytes {
    let mut buf = BytesMut::new();
    match key {
        RecordKey::Offset {
            group_id,
            partition,
        } => {
            buf.put_u8(KIND_OFFSET);
            put_str(&mut buf, group_id);
            put_str(&mut buf, &partition.topic);
            buf.put_u32(partition.partition);
        }
        RecordKey::Group { group_id } => {
            buf.put_u8(KIND_GROUP);
            put_str(&mut buf, group_id);
        }
    }
    buf.freeze()
}

pub(crate) fn encode_value(value: &RecordValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(VALUE_VERSION);
    match value {
        RecordValue::Offset(v) => {
            buf.put_i64(v.offset);
            buf.put_i32(v.leader_epoch);
            put_str(&mut buf, &v.metadata);
            buf.put_u64(v.commit_timestamp_ms);
            buf.put_i64(v.expire_timestamp_ms.map_or(-1, |t| {
                i64::try_from(t).expect("an expiry time fits an i64")
            }));
        }
        RecordValue::Group(g) => {
            put_nullable_str(&mut buf, g.protocol_type.as_deref());
            buf.put_i32(g.generation);
            put_nullable_str(&mut buf, g.protocol_name.as_deref());
            put_nullable_str(&mut buf, g.leader.as_deref());
            buf.put_u64(g.state_timestamp_ms);
            buf.put_u32(u32::try_from(g.members.len()).expect("a group's size fits a u32"));
            for m in &g.members {
                put_str(&mut buf, &m.member_id);
                put_nullable_str(&mut buf, m.group_instance_id.as_deref());
                put_str(&mut buf, &m.client_id);
                put_str(&mut buf, &m.client_host);
                buf.put_u32(m.rebalance_timeout_ms);
                buf.put_u32(m.session_timeout_ms);
                put_bytes(&mut buf, &m.subscription);
                put_bytes(&mut buf, &m.assignment);
            }
        }
    }
    buf.freeze()
}

/// One batch holding `records` in order (a tombstone has value `None`), timestamped
/// `now_ms`.
pub(crate) fn build_batch(records: &[(RecordKey, Option<RecordValue>)], now_ms: u64) -> Bytes {
    let mut builder = BatchBuilder::new();
    let timestamp_ms = i64::try_from(now_ms).expect("the clock fits an i64");
    for (key, value) in records {
        builder.push(NewRecord {
            key: Some(encode_key(key)),
            value: value.as_ref().map(encode_value),
            headers: Vec::new(),
            timestamp_ms,
        });
    }
    builder.build()
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader(bytes);
    let key = match r.u8()? {
        KIND_OFFSET => RecordKey::Offset {
            group_id: r.string()?,
            partition: TopicPartition::new(r.string()?, r.u32()?),
        },
        KIND_GROUP => RecordKey::Group {
            group_id: r.string()?,
        },
        _ => return Err(RecordError("unknown key kind")),
    };
    r.end()?;
    Ok(key)
}

pub(crate) fn decode_value(key: &RecordKey, bytes: &[u8]) -> Result<RecordValue, RecordError> {
    let mut r = Reader(bytes);
    if r.u8()? != VALUE_VERSION {
        return Err(RecordError("unknown value version"));
    }
    let value = match key {
        RecordKey::Offset { .. } => RecordValue::Offset(OffsetValue {
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            metadata: r.string()?,
            commit_timestamp_ms: r.u64()?,
            expire_timestamp_ms: u64::try_from(r.i64()?).ok(),
        }),
        RecordKey::Group { .. } => {
            let protocol_type = r.nullable_string()?;
            let generation = r.i32()?;
            let protocol_name = r.nullable_string()?;
            let leader = r.nullable_string()?;
            let state_timestamp_ms = r.u64()?;
            let count = r.u32()?;
            // Each member takes at least 20 bytes; bound the allocation by what is there.
            if count as usize > r.0.len() / 20 {
                return Err(RecordError("member count larger than the value could hold"));
            }
            let mut members = Vec::with_capacity(count as usize);
            for _ in 0..count {
                members.push(MemberValue {
                    member_id: r.string()?,
                    group_instance_id: r.nullable_string()?,
                    client_id: r.string()?,
                    client_host: r.string()?,
                    rebalance_timeout_ms: r.u32()?,
                    session_timeout_ms: r.u32()?,
                    subscription: r.bytes()?,
                    assignment: r.bytes()?,
                });
            }
            RecordValue::Group(GroupValue {
                protocol_type,
                generation,
                protocol_name,
                leader,
                state_timestamp_ms,
                members,
            })
        }
    };
    r.end()?;
    Ok(value)
}

fn put_str(buf: &mut BytesMut, s: &str) {
    let len = u16::try_from(s.len())
        .ok()
        .filter(|&n| n != NULL_STRING)
        .expect("strings in group records are shorter than 65535 bytes (Kafka's int16 strings)");
    buf.put_u16(len);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_u16(NULL_STRING),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u32(u32::try_from(b.len()).expect("metadata fits a u32 length"));
    buf.put_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or(RecordError("null where a string is required"))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.u16()?;
        if len == NULL_STRING {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len))?;
        let s = std::str::from_utf8(bytes).map_err(|_| RecordError("a string is not UTF-8"))?;
        Ok(Some(s.to_string()))
    }
    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
    fn end(&self) -> Result<(), RecordError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RecordError("bytes after the last field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::records;

    /// Vectors computed with Java's `String.hashCode` rules; "hello" → 99162322 is the
    /// value printed in countless Java tutorials, and "polygenelubricants" is the
    /// well-known string whose hash is `Integer.MIN_VALUE` (so `Utils.abs` gives 0).
    #[test]
    fn offsets_partition_matches_kafkas_formula() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_string_hash("my-group"), -1906497762);
        // A non-BMP character counts as its two UTF-16 surrogates.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        let cases = [
            ("", 50, 0),
            ("a", 50, 47),
            ("hello", 50, 22),
            ("polygenelubricants", 50, 0),
            ("my-group", 50, 12),
            ("test-group", 50, 12),
            ("console-consumer-12345", 50, 6),
            ("😀", 50, 49),
            ("é-groupe", 50, 22),
            ("my-group", 7, 1),
            ("anything", 1, 0),
        ];
        for (group, n, partition) in cases {
            assert_eq!(
                offsets_partition_for(group, n),
                partition,
                "{group:?} mod {n}"
            );
        }
    }

    #[test]
    fn records_round_trip_through_a_v2_batch() {
        let offset_key = RecordKey::Offset {
            group_id: "g".into(),
            partition: TopicPartition::new("t", 3),
        };
        let group_key = RecordKey::Group {
            group_id: "g".into(),
        };
        let offset = RecordValue::Offset(OffsetValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta ✓".into(),
            commit_timestamp_ms: 1234,
            expire_timestamp_ms: Some(5678),
        });
        let group = RecordValue::Group(GroupValue {
            protocol_type: Some("consumer".into()),
            generation: 7,
            protocol_name: Some("range".into()),
            leader: None,
            state_timestamp_ms: 99,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::new(),
            }],
        });
        let written = vec![
            (offset_key.clone(), Some(offset.clone())),
            (group_key.clone(), Some(group.clone())),
            (offset_key.clone(), None),
        ];
        let batch = build_batch(&written, 5);
        let read: Vec<(RecordKey, Option<RecordValue>)> = records(&batch)
            .unwrap()
            .into_iter()
            .map(|r| {
                let key = decode_key(r.key.unwrap()).unwrap();
                let value = r.value.map(|v| decode_value(&key, v).unwrap());
                (key, value)
            })
            .collect();
        assert_eq!(read, written);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_key(b"").is_err());
        assert!(decode_key(&[9, 0, 0]).is_err());
        let key = RecordKey::Group {
            group_id: "g".into(),
        };
        assert!(decode_value(&key, &[0, 0, 1]).is_err());
        assert!(decode_value(
            &key,
            &[
                0, 255, 255, 0, 0, 0, 1, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255,
                255
            ]
        )
        .is_err());
        let mut good = encode_key(&key).to_vec();
        good.push(0);
        assert!(decode_key(&good).is_err(), "trailing bytes");
    }
}

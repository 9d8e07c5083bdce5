//! Kafka's v2 record batch (magic 2), handled as raw bytes. Eddy stores and serves a
//! batch exactly as the producer sent it, so this module owns the few things the core
//! does with those bytes: reading the 61-byte header, rewriting the base offset and the
//! partition leader epoch in place (both sit before the CRC-32C-covered range, so the
//! CRC stays valid), validating a batch before it is appended, and scanning a segment's
//! bytes to find where the valid batches end. For the simulator and tests it also builds
//! uncompressed batches and decodes their records. The layout follows the Kafka docs,
//! section "Record Batch" (<https://kafka.apache.org/documentation/#recordbatch>) and
//! "Record" just below it.

#![forbid(unsafe_code)]

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

pub const MAGIC_V2: i8 = 2;
pub const HEADER_LEN: usize = 61;
/// The two fields in front of the batch that `batchLength` does not count.
pub const LOG_OVERHEAD: usize = 12; // baseOffset + batchLength
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;

// Byte positions of the header fields. Everything before `ATTRIBUTES` is outside the
// CRC, which is what lets a leader assign offsets and stamp its epoch without rehashing.
const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

/// The smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: usize = HEADER_LEN - LOG_OVERHEAD;

const COMPRESSION_MASK: i16 = 0x07;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// The partition leader epoch Kafka writes before a leader has stamped the batch.
const UNKNOWN_LEADER_EPOCH: i32 = -1;

/// The fewest bytes a record can take: a one-byte length varint, then attributes,
/// timestampDelta, offsetDelta, keyLength, valueLength and headersCount at one byte
/// each. Used to bound allocations by the bytes actually present.
const MIN_RECORD_LEN: usize = 7;
/// The fewest bytes a header can take: keyLength and valueLength at one byte each.
const MIN_HEADER_LEN: usize = 2;

/// The codec in bits 0-2 of a batch's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_code(code: i16) -> Result<Compression, BatchError> {
        match code {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }
}

/// The fixed fields at the front of a v2 batch, as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the 61 header bytes at the front of `buf` (buf may be longer). Checks only
    /// that there are enough bytes and that magic is 2; [`validate`] checks the rest.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::TooShort {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let magic = buf[MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET),
            batch_length: read_i32(buf, BATCH_LENGTH),
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH),
            magic,
            crc: read_i32(buf, CRC) as u32,
            attributes: read_i16(buf, ATTRIBUTES),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP),
            producer_id: read_i64(buf, PRODUCER_ID),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH),
            base_sequence: read_i32(buf, BASE_SEQUENCE),
            records_count: read_i32(buf, RECORDS_COUNT),
        })
    }

    /// The batch's size in bytes, log overhead included. A negative `batchLength` (only
    /// possible before validation) counts as zero, so this never underflows.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// How many offsets the batch spans. Zero for a negative `lastOffsetDelta`, which
    /// [`validate`] rejects.
    pub fn record_count(&self) -> u32 {
        u32::try_from(i64::from(self.last_offset_delta) + 1).unwrap_or(0)
    }

    /// The offset of the batch's last record. Wraps like Kafka's Java `long` arithmetic;
    /// once the leader has assigned the base offset it cannot wrap.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_code(self.attributes & COMPRESSION_MASK)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the batch's last record. Sequences live in
    /// `0..=i32::MAX` and wrap to 0 after `i32::MAX`, as Kafka's producers and brokers
    /// agree; a batch without a sequence keeps `NO_SEQUENCE`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        let wrapped = if last > i64::from(i32::MAX) {
            last - (i64::from(i32::MAX) + 1)
        } else {
            last
        };
        // In range for any validated header (base >= 0, delta >= 0). For garbage
        // headers, truncating is as good an answer as any and must not panic.
        wrapped as i32
    }
}

/// Validates that `batch` is exactly one whole v2 batch: at least `HEADER_LEN` bytes,
/// magic 2, `batchLength` consistent with `batch.len()`, a matching CRC-32C,
/// `lastOffsetDelta >= 0`, `recordsCount == lastOffsetDelta + 1` (Kafka requires this
/// of v2 produce requests) and a known compression codec. Returns the header.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    check_length(&header, batch.len())?;
    if header.total_len() != batch.len() {
        return Err(BatchError::LengthMismatch {
            declared: declared_total_len(&header),
            actual: batch.len(),
        });
    }
    let computed = crc32c::crc32c(&batch[ATTRIBUTES..]);
    if computed != header.crc {
        return Err(BatchError::CorruptCrc {
            stored: header.crc,
            computed,
        });
    }
    if header.last_offset_delta < 0
        || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(BatchError::BadRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    header.compression()?;
    Ok(header)
}

/// Rejects a `batchLength` too small to hold even the header. `available` is the
/// number of bytes the batch was handed in, reported for context.
fn check_length(header: &BatchHeader, available: usize) -> Result<(), BatchError> {
    let big_enough = usize::try_from(header.batch_length).is_ok_and(|len| len >= MIN_BATCH_LENGTH);
    if big_enough {
        Ok(())
    } else {
        Err(BatchError::LengthMismatch {
            declared: declared_total_len(header),
            actual: available,
        })
    }
}

/// The total length `batchLength` claims, for error reports. A claim so negative that
/// even the total is below zero reports as 0.
fn declared_total_len(header: &BatchHeader) -> usize {
    usize::try_from(LOG_OVERHEAD as i64 + i64::from(header.batch_length)).unwrap_or(0)
}

/// Writes the base offset: the leader does this when it assigns offsets on append.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    assert!(
        batch.len() >= HEADER_LEN,
        "set_base_offset on {} bytes: a batch is at least {HEADER_LEN}",
        batch.len()
    );
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch: the leader stamps its epoch on every batch it
/// appends, which is what the leader epoch cache and truncation are built from.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    assert!(
        batch.len() >= HEADER_LEN,
        "set_partition_leader_epoch on {} bytes: a batch is at least {HEADER_LEN}",
        batch.len()
    );
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Where the whole, valid batches of a buffer lie; see [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub batches: Vec<Range<usize>>,
    /// The byte length of the valid prefix: the end of the last valid batch.
    pub valid_len: usize,
    /// Why the scan stopped before the end of the buffer; `None` if the buffer ended
    /// exactly at a batch boundary.
    pub stopped: Option<BatchError>,
}

/// Walks back-to-back batches in `buf` (a segment file's bytes, or a produce request's
/// records field) and returns where each whole, valid batch lies; stops at the first
/// torn or invalid one. Recovery uses it to cut a torn tail at `valid_len`.
pub fn scan(buf: &[u8]) -> Scan {
    let mut batches = Vec::new();
    let mut start = 0;
    let stopped = loop {
        let rest = &buf[start..];
        if rest.is_empty() {
            break None;
        }
        match next_batch_len(rest) {
            Ok(len) => {
                batches.push(start..start + len);
                start += len;
            }
            Err(error) => break Some(error),
        }
    };
    assert!(start <= buf.len());
    Scan {
        batches,
        valid_len: start,
        stopped,
    }
}

/// The length of the valid batch at the front of `rest`, which holds at least one byte.
fn next_batch_len(rest: &[u8]) -> Result<usize, BatchError> {
    let header = BatchHeader::parse(rest)?;
    check_length(&header, rest.len())?;
    let len = header.total_len();
    if rest.len() < len {
        return Err(BatchError::TooShort {
            need: len,
            have: rest.len(),
        });
    }
    validate(&rest[..len])?;
    Ok(len)
}

/// A record as decoded from an uncompressed batch, borrowing the batch's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// The first record of a whole batch whose timestamp is at least `timestamp_ms`, with
/// that timestamp (ListOffsets by time within one batch). A batch whose records cannot
/// be read here (compressed: the core never decompresses) answers with its base offset
/// and max timestamp.
pub fn offset_for_timestamp_in(
    batch: &[u8],
    timestamp_ms: i64,
) -> Result<(crate::types::Offset, i64), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let base = header.base_offset as u64;
    let exact = records(batch).ok().and_then(|records| {
        records.iter().find_map(|r| {
            let ts = header.base_timestamp + r.timestamp_delta;
            (ts >= timestamp_ms).then(|| (crate::types::Offset(base + r.offset_delta as u64), ts))
        })
    });
    Ok(exact.unwrap_or((crate::types::Offset(base), header.max_timestamp)))
}

/// Decodes the records of an uncompressed batch, validating the batch first. Compressed
/// batches are an error (`BatchError::Compressed`): the core never decompresses. Every
/// length read off the wire is checked against the bytes that remain before it is used,
/// and `recordsCount` must match the records present exactly.
pub fn records(batch: &[u8]) -> Result<Vec<Record<'_>>, BatchError> {
    let header = validate(batch)?;
    let compression = header.compression()?;
    if compression != Compression::None {
        return Err(BatchError::Compressed(compression));
    }
    let mut reader = Reader::new(&batch[HEADER_LEN..]);
    // validate() guarantees records_count = last_offset_delta + 1 >= 1.
    let count = usize::try_from(header.records_count).expect("validated count is positive");
    if count > reader.remaining() / MIN_RECORD_LEN {
        return Err(BatchError::MalformedRecord(
            "recordsCount is larger than the batch's bytes could hold",
        ));
    }
    let mut decoded = Vec::with_capacity(count);
    for _ in 0..count {
        let len = reader.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| BatchError::MalformedRecord("a record length is negative"))?;
        let body = reader.bytes(len, "a record length runs past the end of the batch")?;
        decoded.push(decode_record(body)?);
    }
    if reader.remaining() != 0 {
        return Err(BatchError::MalformedRecord(
            "bytes follow the last record that recordsCount announces",
        ));
    }
    assert_eq!(decoded.len(), count);
    Ok(decoded)
}

/// Decodes one record from exactly the bytes its length prefix framed.
fn decode_record(body: &[u8]) -> Result<Record<'_>, BatchError> {
    let mut reader = Reader::new(body);
    let _attributes = reader.bytes(1, "a record ends before its attributes")?;
    let timestamp_delta = reader.varlong()?;
    let offset_delta = reader.varint()?;
    let key = reader.nullable_bytes(NullableField::Key)?;
    let value = reader.nullable_bytes(NullableField::Value)?;
    let header_count = usize::try_from(reader.varint()?)
        .map_err(|_| BatchError::MalformedRecord("a record's header count is negative"))?;
    if header_count > reader.remaining() / MIN_HEADER_LEN {
        return Err(BatchError::MalformedRecord(
            "a record's header count is larger than its bytes could hold",
        ));
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key_len = usize::try_from(reader.varint()?)
            .map_err(|_| BatchError::MalformedRecord("a header key length is negative"))?;
        let key = reader.bytes(key_len, "a header key runs past the end of its record")?;
        if std::str::from_utf8(key).is_err() {
            return Err(BatchError::MalformedRecord(
                "a header key is not valid UTF-8",
            ));
        }
        let value = reader.nullable_bytes(NullableField::HeaderValue)?;
        headers.push((key, value));
    }
    if reader.remaining() != 0 {
        return Err(BatchError::MalformedRecord(
            "a record's length prefix is longer than its fields",
        ));
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

/// Input to [`BatchBuilder`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: i64,
}

/// Builds one uncompressed v2 batch with base offset 0, partition leader epoch -1
/// (Kafka's "unknown": the leader stamps its own on append), base timestamp = the first
/// record's, max timestamp = the largest, CRC filled in. This is what a Kafka producer
/// would send, so the simulator and tests exercise the same bytes a real client does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchBuilder {
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<NewRecord>,
}

impl Default for BatchBuilder {
    fn default() -> BatchBuilder {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    /// A batch from a producer without a producer id: id -1, epoch -1, sequence -1.
    pub fn new() -> BatchBuilder {
        BatchBuilder {
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: NO_SEQUENCE,
            records: Vec::new(),
        }
    }

    /// A batch from an idempotent producer, which the broker deduplicates by sequence.
    pub fn idempotent(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> BatchBuilder {
        BatchBuilder {
            producer_id,
            producer_epoch,
            base_sequence,
            records: Vec::new(),
        }
    }

    pub fn push(&mut self, record: NewRecord) -> &mut Self {
        self.records.push(record);
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch. Panics on an empty builder, or on sizes the format cannot
    /// express (over `i32::MAX` records or bytes, or timestamps further apart than an
    /// `i64`): all caller bugs.
    pub fn build(&self) -> Bytes {
        assert!(!self.is_empty(), "a record batch holds at least one record");
        let base_timestamp = self.records[0].timestamp_ms;
        let max_timestamp = self
            .records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .expect("not empty");
        let records_count =
            i32::try_from(self.records.len()).expect("a batch holds at most i32::MAX records");
        let last_offset_delta = records_count - 1;

        let mut buf = BytesMut::with_capacity(HEADER_LEN + self.records.len() * 16);
        buf.put_i64(0); // base offset: the leader assigns the real one
        buf.put_i32(0); // batch length, patched below
        buf.put_i32(UNKNOWN_LEADER_EPOCH);
        buf.put_i8(MAGIC_V2);
        buf.put_u32(0); // CRC, patched below
        buf.put_i16(0); // attributes: no compression, CreateTime, not transactional
        buf.put_i32(last_offset_delta);
        buf.put_i64(base_timestamp);
        buf.put_i64(max_timestamp);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(records_count);
        assert_eq!(buf.len(), HEADER_LEN);

        let mut body = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            body.clear();
            encode_record(&mut body, record, base_timestamp, index);
            put_varint(&mut buf, length_i32(body.len(), "record"));
            buf.put_slice(&body);
        }

        let batch_length = length_i32(buf.len() - LOG_OVERHEAD, "batch");
        buf[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
        buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());

        let batch = buf.freeze();
        debug_assert_eq!(
            validate(&batch).map(|h| h.records_count as usize),
            Ok(self.len())
        );
        batch
    }
}

fn encode_record(out: &mut Vec<u8>, record: &NewRecord, base_timestamp: i64, index: usize) {
    out.put_i8(0); // record attributes: unused in v2
    let timestamp_delta = record
        .timestamp_ms
        .checked_sub(base_timestamp)
        .expect("record timestamps are within an i64 of each other");
    put_varlong(out, timestamp_delta);
    put_varint(
        out,
        i32::try_from(index).expect("checked against the record count"),
    );
    put_nullable(out, record.key.as_deref(), "key");
    put_nullable(out, record.value.as_deref(), "value");
    put_varint(out, length_i32(record.headers.len(), "header count"));
    for (key, value) in &record.headers {
        put_varint(out, length_i32(key.len(), "header key"));
        out.put_slice(key.as_bytes());
        put_nullable(out, value.as_deref(), "header value");
    }
}

fn put_nullable(out: &mut impl BufMut, bytes: Option<&[u8]>, what: &str) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, length_i32(bytes.len(), what));
            out.put_slice(bytes);
        }
    }
}

fn length_i32(len: usize, what: &str) -> i32 {
    i32::try_from(len).unwrap_or_else(|_| panic!("{what} length {len} does not fit a v2 batch"))
}

/// Errors in a batch a client or a disk handed us.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("The record batch is cut short: it needs {need} bytes but only {have} are present.")]
    TooShort { need: usize, have: usize },
    #[error(
        "The record batch has magic {0}, but Eddy reads only magic 2 (the v2 format of \
         Kafka 0.11 and later)."
    )]
    BadMagic(i8),
    #[error(
        "The record batch declares a total length of {declared} bytes (batchLength plus the \
         12-byte log overhead) but {actual} bytes were given; a v2 batch is exactly its \
         declared length and at least 61 bytes."
    )]
    LengthMismatch { declared: usize, actual: usize },
    #[error(
        "The record batch is corrupt: it stores CRC-32C {stored:#010x} but its bytes hash to \
         {computed:#010x}."
    )]
    CorruptCrc { stored: u32, computed: u32 },
    #[error(
        "The record batch has recordsCount {records_count} and lastOffsetDelta \
         {last_offset_delta}; a v2 batch must hold exactly lastOffsetDelta + 1 records, at \
         least one."
    )]
    BadRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    #[error(
        "The record batch names compression codec {0}, which is unknown; v2 batches use 0 \
         (none), 1 (gzip), 2 (snappy), 3 (lz4) or 4 (zstd)."
    )]
    UnknownCompression(i16),
    #[error(
        "The record batch is compressed with {0:?}; only uncompressed batches can be decoded."
    )]
    Compressed(Compression),
    #[error("A record in the batch is malformed: {0}.")]
    MalformedRecord(&'static str),
}

impl BatchError {
    /// The Kafka error code a broker answers with.
    pub fn kafka_error_code(&self) -> i16 {
        const CORRUPT_MESSAGE: i16 = 2;
        const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
        const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
        const INVALID_RECORD: i16 = 87;
        match self {
            BatchError::TooShort { .. }
            | BatchError::LengthMismatch { .. }
            | BatchError::CorruptCrc { .. } => CORRUPT_MESSAGE,
            BatchError::BadMagic(_) => UNSUPPORTED_FOR_MESSAGE_FORMAT,
            // Eddy never decompresses; to a caller that needed the records, a codec it
            // cannot decode is as unsupported as an unknown one.
            BatchError::UnknownCompression(_) | BatchError::Compressed(_) => {
                UNSUPPORTED_COMPRESSION_TYPE
            }
            BatchError::BadRecordCount { .. } | BatchError::MalformedRecord(_) => INVALID_RECORD,
        }
    }
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

// Kafka's varints are protobuf's: base-128, least significant group first, zigzag
// encoded so that small negative numbers stay short.

fn put_varint(out: &mut impl BufMut, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

fn put_varlong(out: &mut impl BufMut, value: i64) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// A cursor over wire bytes whose every read is bounds-checked into a `BatchError`.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn bytes(&mut self, len: usize, too_long: &'static str) -> Result<&'a [u8], BatchError> {
        if len > self.buf.len() {
            return Err(BatchError::MalformedRecord(too_long));
        }
        let (taken, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(taken)
    }

    /// A varint length then that many bytes, with -1 meaning null. `what` names the
    /// field in the error messages.
    fn nullable_bytes(&mut self, what: NullableField) -> Result<Option<&'a [u8]>, BatchError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let (negative, too_long) = match what {
            NullableField::Key => (
                "a record key length is below -1",
                "a record key runs past the end of its record",
            ),
            NullableField::Value => (
                "a record value length is below -1",
                "a record value runs past the end of its record",
            ),
            NullableField::HeaderValue => (
                "a header value length is below -1",
                "a header value runs past the end of its record",
            ),
        };
        let len = usize::try_from(len).map_err(|_| BatchError::MalformedRecord(negative))?;
        self.bytes(len, too_long).map(Some)
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let raw = self.unsigned_varint(32)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned_varint(64)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads an unsigned varint of at most `bits` bits. Like Kafka, accepts non-minimal
    /// encodings (padding is legal protobuf) but rejects one with more groups than
    /// `bits` needs, or whose last group carries bits beyond `bits`.
    fn unsigned_varint(&mut self, bits: u32) -> Result<u64, BatchError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        while shift < bits {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err(BatchError::MalformedRecord(
                    "a varint runs past the end of its record",
                ));
            };
            self.buf = rest;
            let group = u64::from(byte & 0x7f);
            let room = bits - shift;
            if room < 7 && group >> room != 0 {
                return Err(BatchError::MalformedRecord("a varint overflows its type"));
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
        Err(BatchError::MalformedRecord(
            "a varint is longer than its type allows",
        ))
    }
}

#[derive(Clone, Copy)]
enum NullableField {
    Key,
    Value,
    HeaderValue,
}

#[cfg(test)]
mod tests;

//! Tests of the batch module.

use super::*;
use proptest::prelude::*;

/// Recomputes the CRC after a test edits CRC-covered bytes on purpose.
fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn record(key: &str, value: &str, timestamp_ms: i64) -> NewRecord {
    NewRecord {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
        timestamp_ms,
    }
}

fn batch_of(n: usize) -> Bytes {
    let mut builder = BatchBuilder::idempotent(7, 1, 0);
    for i in 0..n {
        builder.push(record(
            &format!("k{i}"),
            &format!("value {i}"),
            1_000 + i as i64,
        ));
    }
    builder.build()
}

fn varint_bytes(value: i32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, value);
    out
}

#[test]
fn crc32c_crate_is_castagnoli() {
    // The published check value of CRC-32C over "123456789".
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn golden_batch_has_exact_bytes_and_independent_crc() {
    let mut builder = BatchBuilder::idempotent(0x0102_0304_0506_0708, 3, 42);
    builder.push(NewRecord {
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: vec![("h".to_string(), None)],
        timestamp_ms: 1_700_000_000_000,
    });
    builder.push(NewRecord {
        key: None,
        value: Some(Bytes::from_static(b"ab")),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_005,
    });
    let batch = builder.build();

    #[rustfmt::skip]
    let record_bytes: [u8; 21] = [
        // record 0: length 11, attributes, tsDelta 0, offsetDelta 0, key "k", value "v",
        // one header "h" with a null value
        0x16, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x02, 0x02, b'h', 0x01,
        // record 1: length 8, attributes, tsDelta 5, offsetDelta 1, null key, value "ab",
        // no headers
        0x10, 0x00, 0x0a, 0x02, 0x01, 0x04, b'a', b'b', 0x00,
    ];
    let crc = crc32c::crc32c(&batch[21..]);
    let mut expected = Vec::new();
    expected.extend_from_slice(&0i64.to_be_bytes()); // base offset
    expected.extend_from_slice(
        &((HEADER_LEN - LOG_OVERHEAD + record_bytes.len()) as i32).to_be_bytes(),
    );
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    expected.push(2); // magic
    expected.extend_from_slice(&crc.to_be_bytes());
    expected.extend_from_slice(&0i16.to_be_bytes()); // attributes
    expected.extend_from_slice(&1i32.to_be_bytes()); // last offset delta
    expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_005i64.to_be_bytes());
    expected.extend_from_slice(&0x0102_0304_0506_0708i64.to_be_bytes());
    expected.extend_from_slice(&3i16.to_be_bytes());
    expected.extend_from_slice(&42i32.to_be_bytes());
    expected.extend_from_slice(&2i32.to_be_bytes()); // records count
    expected.extend_from_slice(&record_bytes);
    assert_eq!(&batch[..], &expected[..]);

    let header = validate(&batch).unwrap();
    assert_eq!(header.crc, crc);
    assert_eq!(header.total_len(), batch.len());
    assert_eq!(header.record_count(), 2);
    assert_eq!(header.last_offset(), 1);
    assert_eq!(header.last_sequence(), 43);
    assert_eq!(header.compression(), Ok(Compression::None));
    assert!(header.has_producer_id() && !header.is_transactional() && !header.is_control());

    let decoded = records(&batch).unwrap();
    assert_eq!(
        decoded,
        vec![
            Record {
                offset_delta: 0,
                timestamp_delta: 0,
                key: Some(b"k"),
                value: Some(b"v"),
                headers: vec![(b"h".as_slice(), None)],
            },
            Record {
                offset_delta: 1,
                timestamp_delta: 5,
                key: None,
                value: Some(b"ab"),
                headers: Vec::new(),
            },
        ]
    );
}

#[test]
fn plain_builder_has_no_producer_id_and_unknown_leader_epoch() {
    let mut builder = BatchBuilder::new();
    assert!(builder.is_empty());
    builder.push(record("a", "b", 5));
    assert_eq!(builder.len(), 1);
    let header = validate(&builder.build()).unwrap();
    assert_eq!(header.producer_id, NO_PRODUCER_ID);
    assert_eq!(header.producer_epoch, -1);
    assert_eq!(header.base_sequence, NO_SEQUENCE);
    assert_eq!(header.last_sequence(), NO_SEQUENCE);
    assert_eq!(header.partition_leader_epoch, -1);
    assert!(!header.has_producer_id());
    assert_eq!(BatchBuilder::default(), BatchBuilder::new());
}

#[test]
#[should_panic(expected = "at least one record")]
fn building_an_empty_batch_is_a_caller_bug() {
    BatchBuilder::new().build();
}

#[test]
#[should_panic(expected = "a batch is at least 61")]
fn setting_base_offset_on_a_short_buffer_is_a_caller_bug() {
    set_base_offset(&mut [0u8; 60], 1);
}

#[test]
fn last_sequence_wraps_from_i32_max_to_zero() {
    let header = |base_sequence, last_offset_delta| BatchHeader {
        base_sequence,
        last_offset_delta,
        ..BatchHeader::parse(&batch_of(1)).unwrap()
    };
    assert_eq!(header(i32::MAX, 0).last_sequence(), i32::MAX);
    assert_eq!(header(i32::MAX, 1).last_sequence(), 0);
    assert_eq!(header(i32::MAX - 2, 4).last_sequence(), 1);
    assert_eq!(header(i32::MAX, i32::MAX).last_sequence(), i32::MAX - 1);
    assert_eq!(header(10, 5).last_sequence(), 15);
    assert_eq!(header(NO_SEQUENCE, 5).last_sequence(), NO_SEQUENCE);
}

#[test]
fn attributes_decode_codec_and_flags() {
    let base = BatchHeader::parse(&batch_of(1)).unwrap();
    let with = |attributes| BatchHeader { attributes, ..base };
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (code, codec) in codecs.into_iter().enumerate() {
        assert_eq!(with(code as i16).compression(), Ok(codec));
    }
    for code in 5..8 {
        assert_eq!(
            with(code).compression(),
            Err(BatchError::UnknownCompression(code))
        );
    }
    assert!(with(0x10).is_transactional() && !with(0x10).is_control());
    assert!(with(0x20).is_control() && !with(0x20).is_transactional());
    assert_eq!(with(0x3b).compression(), Ok(Compression::Lz4));
}

#[test]
fn parse_checks_length_then_magic() {
    let batch = batch_of(1);
    assert_eq!(
        BatchHeader::parse(&batch[..HEADER_LEN - 1]),
        Err(BatchError::TooShort {
            need: HEADER_LEN,
            have: HEADER_LEN - 1
        })
    );
    let mut v1 = batch.to_vec();
    v1[MAGIC] = 1;
    assert_eq!(BatchHeader::parse(&v1), Err(BatchError::BadMagic(1)));
    assert_eq!(validate(&v1), Err(BatchError::BadMagic(1)));
}

#[test]
fn validate_rejects_each_inconsistency_with_its_own_error() {
    let batch = batch_of(3).to_vec();
    let len = batch.len();

    let mut longer = batch.clone();
    longer.push(0);
    assert_eq!(
        validate(&longer),
        Err(BatchError::LengthMismatch {
            declared: len,
            actual: len + 1
        })
    );
    assert_eq!(
        validate(&batch[..len - 1]),
        Err(BatchError::LengthMismatch {
            declared: len,
            actual: len - 1
        })
    );

    let mut tiny_length = batch.clone();
    tiny_length[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(
        validate(&tiny_length),
        Err(BatchError::LengthMismatch {
            declared: 60,
            actual: len
        })
    );
    let mut negative_length = batch.clone();
    negative_length[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&i32::MIN.to_be_bytes());
    assert_eq!(
        validate(&negative_length),
        Err(BatchError::LengthMismatch {
            declared: 0,
            actual: len
        })
    );

    let mut bad_count = batch.clone();
    bad_count[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&2i32.to_be_bytes());
    let stored = read_i32(&bad_count, CRC) as u32;
    let computed = crc32c::crc32c(&bad_count[ATTRIBUTES..]);
    assert_eq!(
        validate(&bad_count),
        Err(BatchError::CorruptCrc { stored, computed })
    );
    reseal(&mut bad_count);
    assert_eq!(
        validate(&bad_count),
        Err(BatchError::BadRecordCount {
            records_count: 2,
            last_offset_delta: 2
        })
    );

    let mut negative_delta = batch.clone();
    negative_delta[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
        .copy_from_slice(&(-1i32).to_be_bytes());
    negative_delta[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&0i32.to_be_bytes());
    reseal(&mut negative_delta);
    assert_eq!(
        validate(&negative_delta),
        Err(BatchError::BadRecordCount {
            records_count: 0,
            last_offset_delta: -1
        })
    );

    let mut unknown_codec = batch.clone();
    unknown_codec[ATTRIBUTES + 1] = 6;
    reseal(&mut unknown_codec);
    assert_eq!(
        validate(&unknown_codec),
        Err(BatchError::UnknownCompression(6))
    );
}

#[test]
fn records_refuses_compressed_batches() {
    let mut batch = batch_of(2).to_vec();
    batch[ATTRIBUTES + 1] = 4;
    reseal(&mut batch);
    assert!(validate(&batch).is_ok());
    assert_eq!(
        records(&batch),
        Err(BatchError::Compressed(Compression::Zstd))
    );
}

#[test]
fn records_requires_records_count_to_match_records_present() {
    // Claims two records (consistently with lastOffsetDelta) but carries one.
    let mut one = batch_of(1).to_vec();
    one[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&1i32.to_be_bytes());
    one[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&2i32.to_be_bytes());
    reseal(&mut one);
    assert!(validate(&one).is_ok());
    assert!(matches!(records(&one), Err(BatchError::MalformedRecord(_))));

    // Claims one record but carries two.
    let mut two = batch_of(2).to_vec();
    two[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&0i32.to_be_bytes());
    two[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&1i32.to_be_bytes());
    reseal(&mut two);
    assert!(validate(&two).is_ok());
    assert_eq!(
        records(&two),
        Err(BatchError::MalformedRecord(
            "bytes follow the last record that recordsCount announces"
        ))
    );
}

#[test]
fn records_rejects_a_huge_records_count_without_allocating_for_it() {
    let mut batch = batch_of(1).to_vec();
    batch[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    batch[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    reseal(&mut batch);
    assert!(matches!(
        records(&batch),
        Err(BatchError::MalformedRecord(_))
    ));
}

#[test]
fn varints_match_known_encodings() {
    assert_eq!(varint_bytes(0), [0x00]);
    assert_eq!(varint_bytes(-1), [0x01]);
    assert_eq!(varint_bytes(1), [0x02]);
    assert_eq!(varint_bytes(300), [0xd8, 0x04]);
    assert_eq!(varint_bytes(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(varint_bytes(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut long = Vec::new();
    put_varlong(&mut long, i64::MIN);
    assert_eq!(
        long,
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
    assert_eq!(Reader::new(&long).varlong(), Ok(i64::MIN));
}

#[test]
fn varints_reject_overlong_and_overflowing_encodings() {
    let too_long = BatchError::MalformedRecord("a varint is longer than its type allows");
    let overflow = BatchError::MalformedRecord("a varint overflows its type");
    assert_eq!(
        Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).varint(),
        Err(too_long.clone())
    );
    assert_eq!(
        Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).varint(),
        Err(overflow.clone())
    );
    assert_eq!(Reader::new(&[0x80; 11]).varlong(), Err(too_long));
    let mut long = [0xffu8; 10];
    long[9] = 0x02;
    assert_eq!(Reader::new(&long).varlong(), Err(overflow));
    // Padded but in range: Kafka accepts these, and so do we.
    assert_eq!(Reader::new(&[0x82, 0x80, 0x00]).varint(), Ok(1));
    assert_eq!(
        Reader::new(&[0x80]).varint(),
        Err(BatchError::MalformedRecord(
            "a varint runs past the end of its record"
        ))
    );
}

#[test]
fn scan_finds_three_back_to_back_batches() {
    let parts = [batch_of(1), batch_of(3), batch_of(2)];
    let buf: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let result = scan(&buf);
    let (a, b) = (parts[0].len(), parts[1].len());
    assert_eq!(result.batches, vec![0..a, a..a + b, a + b..buf.len()]);
    assert_eq!(result.valid_len, buf.len());
    assert_eq!(result.stopped, None);
}

#[test]
fn scan_cuts_a_torn_last_batch_at_every_length() {
    let parts = [batch_of(1), batch_of(3), batch_of(2)];
    let buf: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let prefix = parts[0].len() + parts[1].len();
    for cut in prefix + 1..buf.len() {
        let result = scan(&buf[..cut]);
        assert_eq!(
            result.batches,
            vec![0..parts[0].len(), parts[0].len()..prefix],
            "cut at {cut}"
        );
        assert_eq!(result.valid_len, prefix, "cut at {cut}");
        assert_eq!(
            result.stopped,
            Some(BatchError::TooShort {
                need: if cut - prefix < HEADER_LEN {
                    HEADER_LEN
                } else {
                    parts[2].len()
                },
                have: cut - prefix
            }),
            "cut at {cut}"
        );
    }
}

#[test]
fn scan_of_an_empty_buffer_finds_nothing_and_stops_cleanly() {
    let result = scan(&[]);
    assert!(result.batches.is_empty());
    assert_eq!(result.valid_len, 0);
    assert_eq!(result.stopped, None);
}

#[test]
fn scan_stops_at_a_corrupt_batch_even_when_more_follow() {
    let parts = [batch_of(1), batch_of(2), batch_of(1)];
    let mut buf: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let at = parts[0].len() + HEADER_LEN + 1;
    buf[at] ^= 0xff;
    let result = scan(&buf);
    assert_eq!(result.batches, vec![0..parts[0].len()]);
    assert_eq!(result.valid_len, parts[0].len());
    assert!(matches!(
        result.stopped,
        Some(BatchError::CorruptCrc { .. })
    ));
}

#[test]
fn error_codes_follow_kafka() {
    let cases = [
        (BatchError::TooShort { need: 61, have: 3 }, 2),
        (
            BatchError::LengthMismatch {
                declared: 70,
                actual: 61,
            },
            2,
        ),
        (
            BatchError::CorruptCrc {
                stored: 1,
                computed: 2,
            },
            2,
        ),
        (BatchError::BadMagic(1), 43),
        (BatchError::UnknownCompression(5), 76),
        (BatchError::Compressed(Compression::Gzip), 76),
        (
            BatchError::BadRecordCount {
                records_count: 3,
                last_offset_delta: 1,
            },
            87,
        ),
        (
            BatchError::MalformedRecord("a varint overflows its type"),
            87,
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.kafka_error_code(), code, "{error}");
    }
}

#[test]
fn error_messages_are_sentences_with_the_values_seen() {
    let message = BatchError::CorruptCrc {
        stored: 0xdead_beef,
        computed: 1,
    }
    .to_string();
    assert!(
        message.contains("0xdeadbeef") && message.contains("0x00000001"),
        "{message}"
    );
    let message = BatchError::TooShort { need: 61, have: 17 }.to_string();
    assert!(
        message.contains("61") && message.contains("17"),
        "{message}"
    );
    let message = BatchError::BadRecordCount {
        records_count: 9,
        last_offset_delta: 4,
    }
    .to_string();
    assert!(message.contains('9') && message.contains('4'), "{message}");
    for error in [
        BatchError::BadMagic(0),
        BatchError::LengthMismatch {
            declared: 1,
            actual: 2,
        },
        BatchError::UnknownCompression(7),
        BatchError::Compressed(Compression::Snappy),
        BatchError::MalformedRecord("a header key is not valid UTF-8"),
    ] {
        let message = error.to_string();
        assert!(
            message.ends_with('.') && message.starts_with(char::is_uppercase),
            "{message}"
        );
    }
}

fn bytes_strategy(max_len: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max_len).prop_map(Bytes::from))
}

fn new_record_strategy() -> impl Strategy<Value = NewRecord> {
    (
        bytes_strategy(40),
        bytes_strategy(200),
        proptest::collection::vec((".{0,8}", bytes_strategy(20)), 0..4),
        // Kafka timestamps: -1 (none) through dates far in the future.
        -1i64..4_000_000_000_000,
    )
        .prop_map(|(key, value, headers, timestamp_ms)| NewRecord {
            key,
            value,
            headers,
            timestamp_ms,
        })
}

fn batch_strategy() -> impl Strategy<Value = (Vec<NewRecord>, Bytes)> {
    (
        proptest::collection::vec(new_record_strategy(), 1..12),
        proptest::option::of((0i64..i64::MAX, any::<i16>(), 0..=i32::MAX)),
    )
        .prop_map(|(new_records, producer)| {
            let mut builder = match producer {
                Some((id, epoch, sequence)) => BatchBuilder::idempotent(id, epoch, sequence),
                None => BatchBuilder::new(),
            };
            for record in &new_records {
                builder.push(record.clone());
            }
            let batch = builder.build();
            (new_records, batch)
        })
}

proptest! {
    #[test]
    fn built_batches_round_trip_through_validate_and_records(
        (new_records, batch) in batch_strategy(),
    ) {
        let header = validate(&batch).unwrap();
        prop_assert_eq!(header.records_count as usize, new_records.len());
        prop_assert_eq!(header.base_timestamp, new_records[0].timestamp_ms);
        let max_timestamp = new_records.iter().map(|r| r.timestamp_ms).max().unwrap();
        prop_assert_eq!(header.max_timestamp, max_timestamp);
        let decoded = records(&batch).unwrap();
        prop_assert_eq!(decoded.len(), new_records.len());
        for (index, (got, want)) in decoded.iter().zip(&new_records).enumerate() {
            prop_assert_eq!(got.offset_delta as usize, index);
            prop_assert_eq!(header.base_timestamp + got.timestamp_delta, want.timestamp_ms);
            prop_assert_eq!(got.key, want.key.as_deref());
            prop_assert_eq!(got.value, want.value.as_deref());
            let want_headers: Vec<(&[u8], Option<&[u8]>)> = want
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect();
            prop_assert_eq!(&got.headers, &want_headers);
        }
    }

    #[test]
    fn rewriting_base_offset_and_leader_epoch_keeps_the_crc_valid(
        (_, batch) in batch_strategy(),
        base_offset in any::<i64>(),
        epoch in any::<i32>(),
    ) {
        let mut batch = batch.to_vec();
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let header = validate(&batch).unwrap();
        prop_assert_eq!(header.base_offset, base_offset);
        prop_assert_eq!(header.partition_leader_epoch, epoch);
        let last_offset = base_offset.wrapping_add(i64::from(header.last_offset_delta));
        prop_assert_eq!(header.last_offset(), last_offset);
        prop_assert!(records(&batch).is_ok());
    }

    #[test]
    fn flipping_any_crc_covered_byte_fails_validation(
        (_, batch) in batch_strategy(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut batch = batch.to_vec();
        let at = ATTRIBUTES + position.index(batch.len() - ATTRIBUTES);
        batch[at] ^= flip;
        let result = validate(&batch);
        let is_corrupt_crc = matches!(result, Err(BatchError::CorruptCrc { .. }));
        prop_assert!(is_corrupt_crc, "flip at {} gave {:?}", at, result);
        prop_assert!(records(&batch).is_err());
        prop_assert_eq!(scan(&batch).valid_len, 0);
    }

    #[test]
    fn flipping_a_stored_crc_byte_reports_corrupt_crc(
        (_, batch) in batch_strategy(),
        at in CRC..CRC + 4,
        flip in 1u8..=255,
    ) {
        let mut batch = batch.to_vec();
        batch[at] ^= flip;
        let is_corrupt_crc = matches!(validate(&batch), Err(BatchError::CorruptCrc { .. }));
        prop_assert!(is_corrupt_crc);
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut buf = buf;
        for pass in 0..2 {
            // Random bytes almost never carry magic 2, so the second pass forces it to
            // reach the checks behind the magic.
            if pass == 1 && buf.len() > MAGIC {
                buf[MAGIC] = MAGIC_V2 as u8;
            }
            let _ = validate(&buf);
            let _ = records(&buf);
            let result = scan(&buf);
            prop_assert!(result.valid_len <= buf.len());
            prop_assert_eq!(result.batches.last().map_or(0, |r| r.end), result.valid_len);
        }
    }

    #[test]
    fn garbage_records_behind_a_valid_header_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        last_offset_delta in prop_oneof![0i32..20, any::<i32>()],
        attributes in prop_oneof![Just(0i16), any::<i16>()],
    ) {
        let mut batch = batch_of(1).to_vec();
        batch.truncate(HEADER_LEN);
        batch.extend_from_slice(&garbage);
        let batch_length = (batch.len() - LOG_OVERHEAD) as i32;
        batch[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        batch[RECORDS_COUNT..RECORDS_COUNT + 4]
            .copy_from_slice(&last_offset_delta.wrapping_add(1).to_be_bytes());
        reseal(&mut batch);
        let _ = records(&batch);
        let result = scan(&batch);
        prop_assert!(result.valid_len == 0 || result.valid_len == batch.len());
    }

    #[test]
    fn decoding_garbage_records_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = decode_record(&body);
    }
}

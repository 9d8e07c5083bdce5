//! Tests of the partition files: segments, recovery, indexes, recovery points.

use super::*;
use eddy_core::batch::{BatchBuilder, NewRecord};
use eddy_core::log::StoredBatch;
use std::io::Write;

/// The broker's defaults, with segments rolling at `segment_bytes` / `roll_ms`.
fn cfg(segment_bytes: u64, roll_ms: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        roll_ms,
        index_interval_bytes: 4096,
        index_size_max_bytes: 10 * 1024 * 1024,
    }
}

fn batch_at(base: u64, records: usize) -> Bytes {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        b.push(NewRecord {
            value: Some(Bytes::from(format!("value-{base}-{i}"))),
            ..NewRecord::default()
        });
    }
    let mut bytes = b.build().to_vec();
    batch::set_base_offset(&mut bytes, base as i64);
    Bytes::from(bytes)
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-storage-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn appended_batches_come_back_on_reopen() {
    let dir = tempdir("reopen");
    let (mut p, rec) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    assert!(rec.batches.is_empty());
    let b0 = batch_at(0, 3);
    let b1 = batch_at(3, 2);
    p.append(Offset(0), &b0, 0).unwrap();
    p.append(Offset(3), &b1, 0).unwrap();
    p.sync().unwrap();
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    assert_eq!(rec.batches, vec![b0, b1]);
    assert_eq!(rec.cut_bytes, 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn segments_roll_at_segment_bytes_and_are_named_by_base_offset() {
    let dir = tempdir("roll");
    let b = batch_at(0, 1);
    let (mut p, _) =
        PartitionDir::open(dir.clone(), cfg(b.len() as u64 * 2, u64::MAX), None).unwrap();
    for i in 0..5u64 {
        p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
    }
    assert_eq!(p.segment_base_offsets(), vec![0, 2, 4]);
    assert!(dir.join("00000000000000000002.log").exists());
    drop(p);
    let (p, rec) =
        PartitionDir::open(dir.clone(), cfg(b.len() as u64 * 2, u64::MAX), None).unwrap();
    assert_eq!(rec.batches.len(), 5);
    assert_eq!(p.segment_base_offsets(), vec![0, 2, 4]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn torn_tail_is_cut_on_recovery_and_later_segments_removed() {
    let dir = tempdir("torn");
    let one = batch_at(0, 1).len() as u64;
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(one * 2, u64::MAX), None).unwrap();
    for i in 0..6u64 {
        p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
    }
    drop(p);
    // Tear the second segment's last batch: half of it is gone.
    let torn = dir.join(segment_name(2));
    let len = fs::metadata(&torn).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_len(len - one / 2)
        .unwrap();
    let (p, rec) = PartitionDir::open(dir.clone(), cfg(one * 2, u64::MAX), None).unwrap();
    assert_eq!(rec.batches.len(), 3, "offsets 0, 1, 2 survive");
    assert_eq!(rec.cut_bytes, one - one / 2 + 2 * one);
    assert_eq!(p.segment_base_offsets(), vec![0, 2]);
    assert!(!dir.join(segment_name(4)).exists());
    assert_eq!(fs::metadata(&torn).unwrap().len(), one);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_byte_cuts_from_that_batch() {
    let dir = tempdir("corrupt");
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    let b0 = batch_at(0, 2);
    p.append(Offset(0), &b0, 0).unwrap();
    p.append(Offset(2), &batch_at(2, 2), 0).unwrap();
    drop(p);
    let path = dir.join(segment_name(0));
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    assert_eq!(rec.batches, vec![b0.clone()]);
    assert_eq!(fs::metadata(&path).unwrap().len(), b0.len() as u64);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncate_cuts_batches_at_and_above_the_offset_across_segments() {
    let dir = tempdir("truncate");
    let one = batch_at(0, 1).len() as u64;
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(one * 2, u64::MAX), None).unwrap();
    for i in 0..6u64 {
        p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
    }
    p.truncate(Offset(3)).unwrap();
    assert_eq!(p.segment_base_offsets(), vec![0, 2]);
    p.append(Offset(3), &batch_at(3, 1), 0).unwrap();
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(one * 2, u64::MAX), None).unwrap();
    assert_eq!(rec.batches.len(), 4);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncate_fully_restarts_the_log_at_the_offset() {
    let dir = tempdir("fully");
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    p.append(Offset(0), &batch_at(0, 4), 0).unwrap();
    p.truncate_fully(Offset(10)).unwrap();
    assert_eq!(p.segment_base_offsets(), vec![10]);
    p.append(Offset(10), &batch_at(10, 1), 0).unwrap();
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    assert_eq!(rec.batches, vec![batch_at(10, 1)]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn partition_dir_names_round_trip_with_dashes_in_topics() {
    let tp = TopicPartition::new("my-topic-2", 17);
    assert_eq!(partition_dir_name(&tp), "my-topic-2-17");
    assert_eq!(parse_partition_dir_name("my-topic-2-17"), Some(tp));
    assert_eq!(parse_partition_dir_name("nodash"), None);
    assert_eq!(parse_partition_dir_name("t-"), None);
    assert_eq!(parse_partition_dir_name("t-x1"), None);
}

#[test]
fn segments_roll_when_older_than_log_roll_ms() {
    let dir = tempdir("roll-time");
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(1 << 20, 1_000), None).unwrap();
    p.append(Offset(0), &batch_at(0, 1), 5_000).unwrap();
    p.append(Offset(1), &batch_at(1, 1), 5_999).unwrap();
    p.append(Offset(2), &batch_at(2, 1), 6_000).unwrap();
    p.append(Offset(3), &batch_at(3, 1), 6_500).unwrap();
    assert_eq!(p.segment_base_offsets(), vec![0, 2]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn retention_removes_old_or_excess_segments_but_never_the_active_one_or_past_the_hw() {
    let dir = tempdir("retention");
    let one = batch_at(0, 1).len() as u64;
    // One batch per segment; batch i has timestamp 0 (the builder's default).
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(one, u64::MAX), None).unwrap();
    for i in 0..5u64 {
        p.append(Offset(i), &batch_at(i, 1), 0).unwrap();
    }
    assert_eq!(p.segment_base_offsets(), vec![0, 1, 2, 3, 4]);
    // Time: every segment is old, but the active one stays, and the HW bounds it.
    assert_eq!(p.retention_point(10_000, Some(1_000), None, 5), Some(4));
    assert_eq!(p.retention_point(10_000, Some(1_000), None, 2), Some(2));
    assert_eq!(p.retention_point(10_000, Some(20_000), None, 5), None);
    assert_eq!(p.retention_point(10_000, None, None, 5), None);
    // Size: trim the oldest while what remains is still at least retention.bytes.
    assert_eq!(p.retention_point(0, None, Some(2 * one), 5), Some(3));
    assert_eq!(p.retention_point(0, None, Some(5 * one), 5), None);
    p.delete_segments_before(3).unwrap();
    assert_eq!(p.segment_base_offsets(), vec![3, 4]);
    assert!(!dir.join(segment_name(2)).exists());
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(one, u64::MAX), None).unwrap();
    assert_eq!(rec.log_start_offset, 3);
    assert_eq!(rec.batches.len(), 2);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_empty_log_remembers_where_it_starts() {
    let dir = tempdir("empty-start");
    let (mut p, _) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    p.truncate_fully(Offset(42)).unwrap();
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), cfg(1 << 20, u64::MAX), None).unwrap();
    assert!(rec.batches.is_empty());
    assert_eq!(rec.log_start_offset, 42);
    fs::remove_dir_all(dir).unwrap();
}

// ----- indexes ---------------------------------------------------------------------------

/// A batch at `base` of `records` records with `value_len`-byte values and timestamp `ts`.
fn batch_sized(base: u64, records: usize, value_len: usize, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        b.push(NewRecord {
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
            timestamp_ms: ts,
            ..NewRecord::default()
        });
    }
    let mut bytes = b.build().to_vec();
    batch::set_base_offset(&mut bytes, base as i64);
    batch::set_partition_leader_epoch(&mut bytes, 0);
    Bytes::from(bytes)
}

fn indexed(segment_bytes: u64, interval: u64) -> LogConfig {
    LogConfig {
        index_interval_bytes: interval,
        ..cfg(segment_bytes, u64::MAX)
    }
}

/// Appends `n` batches of varied sizes (1–3 records, growing timestamps); returns them.
fn fill(p: &mut PartitionDir, n: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = 0;
    for i in 0..n {
        let records = 1 + (i % 3) as usize;
        let b = batch_sized(
            offset,
            records,
            40 + (i as usize * 7) % 90,
            1_000 + i as i64,
        );
        p.append(Offset(offset), &b, 0).unwrap();
        offset += records as u64;
        out.push(b);
    }
    out
}

fn index_files(dir: &Path, base: u64) -> (Vec<u8>, Vec<u8>) {
    (
        fs::read(dir.join(index::offset_index_name(base))).unwrap(),
        fs::read(dir.join(index::time_index_name(base))).unwrap(),
    )
}

#[test]
fn index_entries_follow_kafkas_format_and_interval() {
    let dir = tempdir("index-format");
    let one = batch_sized(0, 1, 100, 5).len() as u64;
    // An entry once more than two batches' bytes went by since the last one.
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(1 << 20, 2 * one), None).unwrap();
    for i in 0..7u64 {
        // Timestamps 5, 5, 7, 7, 9, 9, 11.
        let ts = 5 + 2 * (i as i64 / 2);
        p.append(Offset(i), &batch_sized(i, 1, 100, ts), 0).unwrap();
    }
    assert!(dir.join("00000000000000000000.index").exists());
    assert!(dir.join("00000000000000000000.timeindex").exists());
    let (offsets, times) = index_files(&dir, 0);
    // Entries at the batches at positions 3·one (offset 3) and 6·one (offset 6): each
    // is more than 2·one past the previous entry (or the start).
    let mut want = Vec::new();
    for (rel, pos) in [(3u32, 3 * one as u32), (6, 6 * one as u32)] {
        want.extend_from_slice(&rel.to_be_bytes());
        want.extend_from_slice(&pos.to_be_bytes());
    }
    assert_eq!(offsets, want);
    // The largest timestamp so far and the last offset of the first batch that had it
    // (a later batch with the same timestamp does not move it), at those points.
    let mut want = Vec::new();
    for (ts, rel) in [(7i64, 2u32), (11, 6)] {
        want.extend_from_slice(&ts.to_be_bytes());
        want.extend_from_slice(&rel.to_be_bytes());
    }
    assert_eq!(times, want);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_rolled_segment_gets_its_closing_time_entry_and_a_new_index() {
    let dir = tempdir("index-roll");
    let one = batch_sized(0, 1, 100, 0).len() as u64;
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(3 * one, 1 << 20), None).unwrap();
    for i in 0..4u64 {
        p.append(Offset(i), &batch_sized(i, 1, 100, 100 + i as i64), 0)
            .unwrap();
    }
    assert_eq!(p.segment_base_offsets(), vec![0, 3]);
    let (offsets, times) = index_files(&dir, 0);
    assert!(offsets.is_empty(), "no interval passed");
    // Closed with its largest timestamp (102, at relative offset 2).
    let mut want = 102i64.to_be_bytes().to_vec();
    want.extend_from_slice(&2u32.to_be_bytes());
    assert_eq!(times, want);
    assert_eq!(index_files(&dir, 3), (Vec::new(), Vec::new()));
    drop(p);
    // Reopened, the rolled segment's closing entry is what recovery expects too.
    let (_, rec) = PartitionDir::open(dir.clone(), indexed(3 * one, 1 << 20), None).unwrap();
    assert!(rec.rebuilt_indexes.is_empty(), "{:?}", rec.rebuilt_indexes);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_segment_rolls_when_its_index_is_full() {
    let dir = tempdir("index-full");
    // Room for 3 offset entries (24 / 8) and 2 time entries (24 / 12); every batch but
    // a segment's first earns an offset entry (interval 0), and the timestamps never
    // grow, so the offset index fills first: 4 batches per segment.
    let config = LogConfig {
        index_interval_bytes: 0,
        index_size_max_bytes: 24,
        ..cfg(1 << 20, u64::MAX)
    };
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    for i in 0..10u64 {
        p.append(Offset(i), &batch_sized(i, 1, 10, 0), 0).unwrap();
    }
    assert_eq!(p.segment_base_offsets(), vec![0, 4, 8]);
    assert_eq!(index_files(&dir, 0).0.len(), 24);
    fs::remove_dir_all(dir).unwrap();
}

/// A segment's base offset and its two index files' bytes.
type SegmentIndexFiles = (u64, (Vec<u8>, Vec<u8>));

/// Opens a log of 40 batches over several segments with a small index interval, and
/// returns its directory, its config, and its index files' good contents.
fn good_indexed_log(name: &str) -> (PathBuf, LogConfig, Vec<SegmentIndexFiles>) {
    let dir = tempdir(name);
    let config = indexed(2_000, 200);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    fill(&mut p, 40);
    let bases = p.segment_base_offsets();
    assert!(bases.len() >= 3, "{bases:?}");
    drop(p);
    let good = bases.iter().map(|&b| (b, index_files(&dir, b))).collect();
    (dir, config, good)
}

/// Damages one index file, reopens, and checks that the damage was found as `problem`
/// and every index file is back to its good contents.
fn damaged_index_is_rebuilt(name: &str, damage: impl Fn(&Path), problem: IndexProblem) {
    let (dir, config, good) = good_indexed_log(name);
    let victim = dir.join(index::offset_index_name(good[1].0));
    damage(&victim);
    let (p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.rebuilt_indexes, vec![(victim, problem)]);
    assert_eq!(rec.cut_bytes, 0, "a bad index never costs data");
    for (base, files) in &good {
        assert_eq!(&index_files(&dir, *base), files, "index of segment {base}");
    }
    // And lookups through the rebuilt index work.
    assert_eq!(p.position_of(good[1].0).unwrap(), Some((good[1].0, 0)));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_deleted_index_is_rebuilt_from_its_segment() {
    damaged_index_is_rebuilt(
        "index-deleted",
        |path| fs::remove_file(path).unwrap(),
        IndexProblem::Missing,
    );
}

#[test]
fn a_torn_index_is_rebuilt_from_its_segment() {
    damaged_index_is_rebuilt(
        "index-torn",
        |path| {
            let len = fs::metadata(path).unwrap().len();
            assert!(len >= 16);
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len - 3)
                .unwrap();
        },
        IndexProblem::Torn,
    );
}

#[test]
fn a_short_index_is_rebuilt_from_its_segment() {
    damaged_index_is_rebuilt(
        "index-short",
        |path| {
            let len = fs::metadata(path).unwrap().len();
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len - index::OFFSET_ENTRY_BYTES)
                .unwrap();
        },
        IndexProblem::Short,
    );
}

#[test]
fn a_garbage_index_is_rebuilt_and_never_trusted() {
    // Entries pointing far past the segment's end, and going backwards.
    damaged_index_is_rebuilt(
        "index-garbage",
        |path| {
            let len = fs::metadata(path).unwrap().len() as usize;
            let garbage: Vec<u8> = (0..len).map(|i| (i * 151 % 251) as u8 | 0x80).collect();
            fs::write(path, garbage).unwrap();
        },
        IndexProblem::Garbage,
    );
    // Well-formed entries that are not this segment's (another interval).
    damaged_index_is_rebuilt(
        "index-stale",
        |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes.truncate(8);
            bytes[0..4].copy_from_slice(&1u32.to_be_bytes());
            bytes[4..8].copy_from_slice(&1u32.to_be_bytes());
            fs::write(path, bytes).unwrap();
        },
        IndexProblem::Stale,
    );
}

#[test]
fn a_huge_index_is_garbage_and_not_read() {
    // Far larger than any index of its segment could be (sparse: no disk used).
    damaged_index_is_rebuilt(
        "index-huge",
        |path| {
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(1 << 40)
                .unwrap();
        },
        IndexProblem::Garbage,
    );
}

#[test]
fn a_damaged_time_index_is_rebuilt_too() {
    let (dir, config, good) = good_indexed_log("timeindex-garbage");
    let victim = dir.join(index::time_index_name(good[0].0));
    fs::write(&victim, [0xffu8; 24]).unwrap();
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.rebuilt_indexes, vec![(victim, IndexProblem::Garbage)]);
    assert_eq!(index_files(&dir, good[0].0), good[0].1);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn indexes_are_trimmed_with_the_log_and_removed_with_their_segments() {
    let dir = tempdir("index-truncate");
    let config = indexed(2_000, 200);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 40);
    let bases = p.segment_base_offsets();
    // Cut in the middle of the second segment: the third and later go with their
    // indexes, the second's entries are those of what is left.
    let cut_at = {
        let h = BatchHeader::parse(&batches[batches.len() / 3]).unwrap();
        h.base_offset as u64
    };
    assert!(bases[1] < cut_at && cut_at < bases[2], "{bases:?} {cut_at}");
    p.truncate(Offset(cut_at)).unwrap();
    assert_eq!(p.segment_base_offsets(), bases[..2].to_vec());
    for &gone in &bases[2..] {
        assert!(!dir.join(index::offset_index_name(gone)).exists());
        assert!(!dir.join(index::time_index_name(gone)).exists());
    }
    let trimmed = index_files(&dir, bases[1]);
    // The same batches written afresh give the same index files.
    let fresh_dir = tempdir("index-truncate-fresh");
    let (mut fresh, _) = PartitionDir::open(fresh_dir.clone(), config, None).unwrap();
    for b in batches
        .iter()
        .take_while(|b| (BatchHeader::parse(b).unwrap().base_offset as u64) < cut_at)
    {
        let base = BatchHeader::parse(b).unwrap().base_offset as u64;
        fresh.append(Offset(base), b, 0).unwrap();
    }
    assert_eq!(fresh.segment_base_offsets(), bases[..2].to_vec());
    assert_eq!(index_files(&fresh_dir, bases[1]), trimmed);
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert!(rec.rebuilt_indexes.is_empty(), "{:?}", rec.rebuilt_indexes);
    // Retention removes a segment's indexes with it.
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    p.delete_segments_before(bases[1]).unwrap();
    assert!(!dir.join(index::offset_index_name(0)).exists());
    assert!(!dir.join(index::time_index_name(0)).exists());
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(fresh_dir).unwrap();
}

#[test]
fn a_torn_tail_cut_on_recovery_trims_the_index_and_removes_later_ones() {
    let (dir, config, good) = good_indexed_log("index-torn-tail");
    // Tear the second segment in its middle.
    let seg = dir.join(segment_name(good[1].0));
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert!(rec.cut_bytes > 0);
    assert_eq!(p.segment_base_offsets(), vec![good[0].0, good[1].0]);
    let (offsets, _) = index_files(&dir, good[1].0);
    let entries = index::parse_offsets(&offsets).unwrap();
    assert!(entries.iter().all(|e| u64::from(e.position) < len / 2));
    assert!(entries.len() < index::parse_offsets(&good[1].1 .0).unwrap().len());
    assert!(!dir.join(index::offset_index_name(good[2].0)).exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn position_lookup_through_the_index_agrees_with_a_scan() {
    let dir = tempdir("index-lookup");
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(3_000, 300), None).unwrap();
    let batches = fill(&mut p, 60);
    // The scan: walk every segment file from its start.
    let mut expected = BTreeMap::new();
    for base in p.segment_base_offsets() {
        let bytes = fs::read(dir.join(segment_name(base))).unwrap();
        let scan = batch::scan(&bytes);
        assert_eq!(scan.valid_len, bytes.len());
        for range in scan.batches {
            let h = BatchHeader::parse(&bytes[range.clone()]).unwrap();
            for offset in h.base_offset..=h.last_offset() {
                expected.insert(offset as u64, (base, range.start as u64));
            }
        }
    }
    let end = p.log_end_offset();
    assert_eq!(expected.len() as u64, end);
    assert!(batches.len() > 50);
    for offset in 0..end {
        assert_eq!(
            p.position_of(offset).unwrap(),
            expected.get(&offset).copied(),
            "offset {offset}"
        );
    }
    assert_eq!(p.position_of(end).unwrap(), None);
    assert_eq!(p.position_of(u64::MAX).unwrap(), None);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn timestamp_lookup_through_the_time_index_agrees_with_a_scan() {
    let dir = tempdir("index-time-lookup");
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(3_000, 300), None).unwrap();
    // Timestamps that mostly grow but sometimes go back, as producers' clocks do.
    let mut all = Vec::new();
    let mut offset = 0;
    for i in 0..80u64 {
        let ts = 1_000 + (i as i64 * 37 % 23) * 10 + i as i64 * 5;
        let b = batch_sized(offset, 1 + (i % 2) as usize, 60, ts);
        p.append(Offset(offset), &b, 0).unwrap();
        all.push((offset, ts));
        offset += 1 + i % 2;
    }
    assert!(p.segment_base_offsets().len() >= 3);
    let largest = all.iter().map(|&(_, t)| t).max().unwrap();
    for target in 900..=largest + 10 {
        let expected = all.iter().find(|&&(_, t)| t >= target).map(|&(o, _)| o);
        let found = p.batch_for_timestamp(target).unwrap();
        assert_eq!(found.map(|(o, _, _)| o), expected, "timestamp {target}");
        if let Some((o, base, pos)) = found {
            assert_eq!(p.position_of(o).unwrap(), Some((base, pos)));
        }
    }
    fs::remove_dir_all(dir).unwrap();
}

// ----- recovery points -------------------------------------------------------------------

#[test]
fn batches_below_the_recovery_point_are_not_crc_checked() {
    let dir = tempdir("recovery-point");
    let config = indexed(2_000, 200);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 40);
    p.flush_all().unwrap();
    let end = p.log_end_offset();
    assert_eq!(p.recovery_point(), end);
    drop(p);
    let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
    // No checkpoint: everything is checked.
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.checked_bytes, total);
    assert_eq!(rec.batches, batches);
    // After a clean shutdown: nothing is.
    let (p, rec) = PartitionDir::open(dir.clone(), config, Some(end)).unwrap();
    assert_eq!(rec.checked_bytes, 0);
    assert_eq!(rec.batches, batches);
    assert_eq!(p.recovery_point(), end);
    drop(p);
    // In between: only the batches not wholly below it.
    let mid = BatchHeader::parse(&batches[20]).unwrap().base_offset as u64;
    let (p, rec) = PartitionDir::open(dir.clone(), config, Some(mid)).unwrap();
    let above: u64 = batches[20..].iter().map(|b| b.len() as u64).sum();
    assert_eq!(rec.checked_bytes, above);
    assert_eq!(p.recovery_point(), mid);
    drop(p);
    // A recovery point past the end (a stale or wrong checkpoint) claims nothing more.
    let (p, rec) = PartitionDir::open(dir.clone(), config, Some(end + 1_000)).unwrap();
    assert_eq!(rec.batches, batches);
    assert_eq!(p.recovery_point(), end);
    drop(p);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_tail_above_the_recovery_point_is_still_cut() {
    let dir = tempdir("recovery-point-torn");
    let config = indexed(1 << 20, 200);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 10);
    p.flush_all().unwrap();
    let synced_end = p.log_end_offset();
    p.append(Offset(synced_end), &batch_sized(synced_end, 1, 50, 0), 0)
        .unwrap();
    drop(p);
    let seg = dir.join(segment_name(0));
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (_, rec) = PartitionDir::open(dir.clone(), config, Some(synced_end)).unwrap();
    assert_eq!(rec.batches, batches);
    assert!(rec.cut_bytes > 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_roll_flush_moves_the_recovery_point_to_the_new_segment() {
    let dir = tempdir("roll-flush");
    let one = batch_sized(0, 1, 100, 0).len() as u64;
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(2 * one, 1 << 20), None).unwrap();
    p.append(Offset(0), &batch_sized(0, 1, 100, 0), 0).unwrap();
    p.append(Offset(1), &batch_sized(1, 1, 100, 0), 0).unwrap();
    assert!(p.take_roll_flush().is_none());
    p.append(Offset(2), &batch_sized(2, 1, 100, 0), 0).unwrap();
    let job = p.take_roll_flush().expect("a roll asks for a flush");
    let point = job.point();
    job.run().unwrap();
    p.synced(point);
    assert_eq!(p.recovery_point(), 2);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncation_lowers_the_recovery_point_and_voids_syncs_begun_before_it() {
    let dir = tempdir("rp-truncate");
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(1 << 20, 200), None).unwrap();
    fill(&mut p, 10);
    p.sync().unwrap();
    let end = p.log_end_offset();
    assert_eq!(p.recovery_point(), end);
    let job = p.begin_sync().unwrap();
    p.truncate(Offset(3)).unwrap();
    assert_eq!(p.recovery_point(), 3);
    let point = job.point();
    job.run().unwrap();
    p.synced(point);
    assert_eq!(
        p.recovery_point(),
        3,
        "the sync flushed bytes that are gone"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_sync_of_an_earlier_opening_never_moves_the_recovery_point() {
    let dir = tempdir("rp-reopen");
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(1 << 20, 200), None).unwrap();
    fill(&mut p, 10);
    let job = p.begin_sync().unwrap();
    drop(p);
    // Reopened (as a partition coming back from a storage failure is) while that sync
    // was still in flight.
    let (mut p, _) = PartitionDir::open(dir.clone(), indexed(1 << 20, 200), None).unwrap();
    assert_eq!(p.recovery_point(), 0);
    let point = job.point();
    job.run().unwrap();
    p.synced(point);
    assert_eq!(p.recovery_point(), 0);
    fs::remove_dir_all(dir).unwrap();
}

// ----- restore after a storage failure ---------------------------------------------------

fn stored(b: &Bytes) -> StoredBatch {
    StoredBatch::from_validated(b.clone())
}

/// Offsets of a batch.
fn base_of(b: &Bytes) -> u64 {
    BatchHeader::parse(b).unwrap().base_offset as u64
}

#[test]
fn restore_writes_back_what_the_core_holds_beyond_the_files() {
    let dir = tempdir("restore");
    let config = indexed(1_000, 100);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 20);
    let core: Vec<StoredBatch> = batches.iter().map(stored).collect();
    // The disk failed at batch 15: it holds the first 15 and half of the 16th.
    p.truncate(Offset(base_of(&batches[15]))).unwrap();
    let last = *p.segment_base_offsets().last().unwrap();
    drop(p);
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.join(segment_name(last)))
        .unwrap();
    f.write_all(&batches[15][..batches[15].len() / 2]).unwrap();
    drop(f);
    let (mut p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.batches.len(), 15);
    assert!(rec.cut_bytes > 0);
    let written = p
        .restore(&rec.batches, Offset(0), &logged(&core), &BTreeMap::new(), 0)
        .unwrap();
    assert_eq!(written, 5);
    assert_eq!(p.recovery_point(), p.log_end_offset(), "synced");
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.batches, batches);
    assert!(rec.rebuilt_indexes.is_empty(), "{:?}", rec.rebuilt_indexes);
    fs::remove_dir_all(dir).unwrap();
}

/// The core's log of these batches, all in memory.
fn logged(core: &[StoredBatch]) -> Vec<eddy_core::log::LogBatch> {
    core.iter().cloned().map(Into::into).collect()
}

#[test]
fn restore_cuts_what_the_files_hold_that_the_core_does_not() {
    let dir = tempdir("restore-diverged");
    let config = indexed(1_000, 100);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 12);
    // The files have a batch at offset X the core replaced (a truncation the disk
    // never saw, then a different batch appended).
    let x = base_of(&batches[10]);
    let other = batch_sized(x, 2, 33, 77);
    let mut core: Vec<StoredBatch> = batches[..10].iter().map(stored).collect();
    core.push(stored(&other));
    let core_end = core.last().unwrap().next_offset();
    drop(p);
    let (mut p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(
        p.restore(&rec.batches, Offset(0), &logged(&core), &BTreeMap::new(), 0)
            .unwrap(),
        1
    );
    assert_eq!(p.log_end_offset(), core_end.0);
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let mut want: Vec<Bytes> = batches[..10].to_vec();
    want.push(other);
    assert_eq!(rec.batches, want);
    // A core log that starts over past everything on disk (a full truncation) wins too.
    let (mut p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(
        p.restore(&rec.batches, Offset(500), &[], &BTreeMap::new(), 0)
            .unwrap(),
        0
    );
    assert_eq!(p.segment_base_offsets(), vec![500]);
    drop(p);
    let (_, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert!(rec.batches.is_empty());
    assert_eq!(rec.log_start_offset, 500);
    fs::remove_dir_all(dir).unwrap();
}

/// The core's log of these batches with only the headers of the first `evicted` (out of
/// its in-memory tail).
fn logged_evicted(core: &[StoredBatch], evicted: usize) -> Vec<eddy_core::log::LogBatch> {
    let mut log = logged(core);
    for b in &mut log[..evicted] {
        b.bytes = None;
    }
    log
}

#[test]
fn restore_matches_evicted_batches_by_header_and_writes_them_from_the_unwritten() {
    let dir = tempdir("restore-evicted");
    let config = indexed(1_000, 100);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 20);
    let core: Vec<StoredBatch> = batches.iter().map(stored).collect();
    // The disk failed at batch 15; meanwhile the core kept appending and dropped the
    // bytes of all but the last two batches from memory.
    p.truncate(Offset(base_of(&batches[15]))).unwrap();
    drop(p);
    let log = logged_evicted(&core, 18);
    // Without the shell's kept bytes nothing can be written past the files' end.
    let (mut p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(
        p.restore(&rec.batches, Offset(0), &log, &BTreeMap::new(), 0)
            .unwrap(),
        0
    );
    assert_eq!(
        p.log_end_offset(),
        base_of(&batches[15]),
        "the files kept, not cut"
    );
    // A kept batch that is not the core's (same base offset, other bytes) is refused.
    let impostor = batch_sized(base_of(&batches[15]), 1, 5, 9);
    let wrong = BTreeMap::from([(base_of(&batches[15]), impostor)]);
    assert_eq!(
        p.restore(&rec.batches, Offset(0), &log, &wrong, 0).unwrap(),
        0
    );
    drop(p);
    // With them, every batch comes back, the evicted ones on disk agreeing by header.
    let unwritten: BTreeMap<u64, Bytes> = batches[15..]
        .iter()
        .map(|b| (base_of(b), b.clone()))
        .collect();
    let (mut p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(
        p.restore(&rec.batches, Offset(0), &log, &unwritten, 0)
            .unwrap(),
        5
    );
    drop(p);
    let (p, rec) = PartitionDir::open(dir.clone(), config, None).unwrap();
    assert_eq!(rec.batches, batches);
    for b in &batches {
        assert_eq!(
            p.read_batch(Offset(base_of(b)), b.len() as u32).as_ref(),
            Some(b)
        );
    }
    fs::remove_dir_all(dir).unwrap();
}

// ----- reads of stored batches -----------------------------------------------------------

#[test]
fn read_batch_returns_each_batch_exactly_across_segments() {
    let dir = tempdir("read-batch");
    let config = indexed(1_000, 100);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 30);
    assert!(p.segment_base_offsets().len() > 3);
    let check = |p: &PartitionDir| {
        for b in &batches {
            let base = Offset(base_of(b));
            assert_eq!(p.read_batch(base, b.len() as u32).as_ref(), Some(b));
            // Any other length, or an offset inside a batch, is no batch.
            assert_eq!(p.read_batch(base, b.len() as u32 + 1), None);
            assert_eq!(p.read_batch(base, b.len() as u32 - 1), None);
            let last = BatchHeader::parse(b).unwrap().last_offset() as u64;
            if last > base.0 {
                assert_eq!(p.read_batch(Offset(last), b.len() as u32), None);
            }
        }
        assert_eq!(p.read_batch(Offset(p.log_end_offset()), 100), None);
    };
    check(&p);
    // The same after recovery, from the positions recovery found.
    drop(p);
    let (p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    check(&p);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_read_racing_a_truncation_or_a_torn_file_gives_none_never_other_bytes() {
    let dir = tempdir("read-race");
    let config = indexed(1 << 20, 100);
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let batches = fill(&mut p, 10);
    let (b7, b8) = (&batches[7], &batches[8]);
    let read7 = p.locate(Offset(base_of(b7)), b7.len() as u32).unwrap();
    let read8 = p.locate(Offset(base_of(b8)), b8.len() as u32).unwrap();
    assert_eq!(read7.read().as_ref(), Some(b7));
    // Truncated below both after they were located: their bytes are gone.
    p.truncate(Offset(base_of(b7))).unwrap();
    assert_eq!(read7.read(), None);
    assert_eq!(read8.read(), None);
    // New batches appended where they were (a new leader's): same position, other
    // base offsets and lengths, so the header check refuses them.
    let other = batch_sized(base_of(b7), 4, 30, 5);
    p.append(Offset(base_of(b7)), &other, 0).unwrap();
    let next = base_of(b7) + 4;
    p.append(Offset(next), &batch_sized(next, 1, 200, 5), 0)
        .unwrap();
    assert_eq!(read7.read(), None, "same base offset, other length");
    assert_eq!(read8.read(), None, "other base offset at that position");
    assert_eq!(
        p.read_batch(Offset(base_of(b7)), other.len() as u32),
        Some(other.clone())
    );
    // A file cut in the middle of a batch behind the storage's back (a torn file).
    let read_other = p.locate(Offset(base_of(b7)), other.len() as u32).unwrap();
    let last = *p.segment_base_offsets().last().unwrap();
    let pos = p.position_of(base_of(b7)).unwrap().unwrap().1;
    let f = OpenOptions::new()
        .append(true)
        .open(dir.join(segment_name(last)))
        .unwrap();
    f.set_len(pos + other.len() as u64 / 2).unwrap();
    drop(f);
    assert_eq!(read_other.read(), None);
    assert_eq!(p.read_batch(Offset(base_of(b7)), other.len() as u32), None);
    // A segment deleted by retention stays readable through a read already located.
    let first = &batches[0];
    let read0 = p.locate(Offset(0), first.len() as u32).unwrap();
    drop(p);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(read0.read().as_ref(), Some(first));
}

#[test]
fn probe_writes_syncs_and_removes_its_file() {
    let dir = tempdir("probe");
    probe_dir(&dir).unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(dir).unwrap();
}

// ----- measurement -----------------------------------------------------------------------

/// How long opening a partition takes with and without a recovery point, on
/// `EDDY_BENCH_MB` MiB (default 1024) of 16 KiB batches in `EDDY_BENCH_DIR` (default a
/// temporary directory; with `EDDY_BENCH_KEEP` set the data stays, as `<dir>/bench-0`,
/// with a checkpoint beside it, for starting a broker on it). Not run by default:
/// `cargo test -p eddy-net --lib recovery_time -- --ignored --nocapture`.
#[test]
#[ignore]
fn recovery_time_with_and_without_a_recovery_point() {
    let mb: u64 = std::env::var("EDDY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let root = std::env::var_os("EDDY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tempdir("bench"));
    let dir = root.join("bench-0");
    let _ = fs::remove_dir_all(&dir);
    let config = LogConfig {
        segment_bytes: 1 << 30,
        roll_ms: u64::MAX,
        index_interval_bytes: 4096,
        index_size_max_bytes: 10 * 1024 * 1024,
    };
    let template = batch_sized(0, 1, 16 * 1024 - 100, 1_000).to_vec();
    let (mut p, _) = PartitionDir::open(dir.clone(), config, None).unwrap();
    let started = std::time::Instant::now();
    let mut offset = 0;
    while offset * (template.len() as u64) < mb << 20 {
        let mut b = template.clone();
        batch::set_base_offset(&mut b, offset as i64);
        p.append(Offset(offset), &b, 0).unwrap();
        offset += 1;
    }
    p.flush_all().unwrap();
    let end = p.log_end_offset();
    drop(p);
    eprintln!(
        "wrote {offset} batches ({} MiB) in {:?}",
        (offset * template.len() as u64) >> 20,
        started.elapsed()
    );
    // CPU time too (user + system, of this thread, in ms): wall time on a shared
    // machine says as much about the neighbours as about the code.
    let cpu_ms = || {
        let stat = fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // utime and stime are fields 14 and 15 of the line; 100 ticks a second.
        ticks(11).zip(ticks(12)).map_or(0, |(u, s)| (u + s) * 10)
    };
    let time = |rp: Option<u64>| {
        let mut runs: Vec<(std::time::Duration, u64)> = (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let cpu = cpu_ms();
                let (_, rec) = PartitionDir::open(dir.clone(), config, rp).unwrap();
                let took = (t.elapsed(), cpu_ms() - cpu);
                assert_eq!(rec.batches.len() as u64, end);
                took
            })
            .collect();
        runs.sort();
        runs
    };
    let full = time(None);
    let checkpointed = time(Some(end));
    eprintln!("open, no recovery point (every CRC checked): (wall, cpu ms) {full:?}");
    eprintln!(
        "open, recovery point at the log end (clean shutdown): (wall, cpu ms) {checkpointed:?}"
    );
    if std::env::var_os("EDDY_BENCH_KEEP").is_some() {
        let points = BTreeMap::from([(TopicPartition::new("bench", 0), end)]);
        checkpoint::write_recovery_points(&root, &points).unwrap();
        eprintln!("kept in {}", root.display());
    } else {
        fs::remove_dir_all(&root).unwrap();
    }
}

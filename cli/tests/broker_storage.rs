//! `eddy broker`'s files: segment indexes and the recovery point checkpoint across clean
//! and unclean restarts, `metadata.log.dir`, and a partition that went offline on a full
//! disk coming back online, without a restart, once space returns.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::{batch, Broker, Raw};

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create(raw: &mut Raw, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let ResponseKind::CreateTopics(resp) =
        raw.call(ApiKey::CreateTopics, 4, RequestKind::CreateTopics(req))
    else {
        panic!("CreateTopics answer");
    };
    assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
}

/// (error code, base offset) of an acks=1 produce to partition 0.
fn produce(raw: &mut Raw, name: &str, records: Bytes) -> (i16, i64) {
    let req = RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic(name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]),
    );
    let ResponseKind::Produce(resp) = raw.call(ApiKey::Produce, 7, req) else {
        panic!("Produce answer");
    };
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every batch of partition 0, read from offset 0 to the end, with its base offset.
fn read_all(raw: &mut Raw, name: &str) -> Vec<(i64, Bytes)> {
    let mut next = 0i64;
    let mut got = Vec::new();
    loop {
        let req = RequestKind::Fetch(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic(name))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(next)
                        .with_partition_max_bytes(1 << 20)])]),
        );
        let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, req) else {
            panic!("Fetch answer")
        };
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch at {next}");
        let records = p.records.clone().unwrap_or_default();
        if records.is_empty() {
            return got;
        }
        for r in eddy_core::batch::scan(&records).batches {
            let b = records.slice(r);
            let header = eddy_core::batch::BatchHeader::parse(&b).unwrap();
            assert_eq!(header.base_offset, next, "dense offsets");
            next = header.last_offset() + 1;
            got.push((header.base_offset, b));
        }
    }
}

/// The batch as the broker stores it: the same bytes from the attributes on (base
/// offset and leader epoch are the broker's to fill in).
fn same_batch(stored: &Bytes, sent: &Bytes) -> bool {
    stored.len() == sent.len() && stored[16..] == sent[16..]
}

/// The log without its colours (ANSI escape sequences).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `field=` in the broker's last log line that has `marker`.
fn logged_field(log: &str, marker: &str, field: &str) -> Option<u64> {
    let log = plain(log);
    let line = log.lines().rev().find(|l| l.contains(marker))?;
    let rest = line.split(&format!("{field}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn segments_have_indexes_and_a_clean_restart_checks_no_crc_below_the_checkpoint() {
    let mut broker = Broker::start_logging(
        "storage-checkpoint",
        &[
            "log.segment.bytes=16384",
            "log.index.interval.bytes=1024",
            "log.flush.offset.checkpoint.interval.ms=200",
        ],
        Some("info"),
    );
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "cp", 1);
    let value = "v".repeat(1000);
    let mut sent = Vec::new();
    for i in 0..60 {
        let b = batch(&[&format!("{i:03}{value}")]);
        let (code, offset) = produce(&mut raw, "cp", b.clone());
        assert_eq!(code, 0);
        assert_eq!(offset, i);
        sent.push(b);
    }
    let part = broker.data.join("cp-0");
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(&part).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".log") {
            logs.push(stem.to_string());
        }
    }
    logs.sort();
    assert!(logs.len() >= 3, "segments rolled: {logs:?}");
    for stem in &logs {
        assert_eq!(stem.len(), 20, "Kafka's zero-padded names");
        assert!(part.join(format!("{stem}.index")).exists());
        assert!(part.join(format!("{stem}.timeindex")).exists());
    }
    // Entries every ~1 KiB: the first segment's offset index has some, 8 bytes each
    // (relative offset, position), both growing.
    let index = std::fs::read(part.join(format!("{}.index", logs[0]))).unwrap();
    let entries = index.chunks_exact(8);
    assert!(
        entries.remainder().is_empty() && index.len() >= 8,
        "{index:?}"
    );
    let entries: Vec<(u32, u32)> = entries
        .map(|e| {
            (
                u32::from_be_bytes(e[..4].try_into().unwrap()),
                u32::from_be_bytes(e[4..].try_into().unwrap()),
            )
        })
        .collect();
    assert!(entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));

    // A clean shutdown writes the checkpoint at the log end; the restart checks no CRC.
    assert!(broker.stop().success());
    let checkpoint =
        std::fs::read_to_string(broker.data.join("recovery-point-offset-checkpoint")).unwrap();
    assert!(checkpoint.starts_with("0\n"), "{checkpoint}");
    assert!(checkpoint.contains("cp 0 60\n"), "{checkpoint}");
    broker.restart();
    let log = broker.log_text();
    assert_eq!(
        logged_field(&log, "recovered partition", "crc_checked_bytes"),
        Some(0),
        "{log}"
    );
    let mut raw = Raw::connect(&broker.addr);
    let got = read_all(&mut raw, "cp");
    assert_eq!(got.len(), sent.len());
    for ((offset, b), s) in got.iter().zip(&sent) {
        assert!(same_batch(b, s), "batch at {offset}");
    }

    // A crash: what lies above the recovery point (rolled segments are flushed and the
    // checkpoint written every 200 ms) is checked again, and not much more. Without the
    // periodic checkpoint, the shutdown's (at offset 60) would leave two thirds of the
    // log to check.
    for i in 60..180 {
        let b = batch(&[&format!("{i:03}{value}")]);
        assert_eq!(produce(&mut raw, "cp", b.clone()).0, 0);
        sent.push(b);
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    broker.kill();
    let total: u64 = sent.iter().map(|b| b.len() as u64).sum();
    broker.restart();
    let checked = logged_field(
        &broker.log_text(),
        "recovered partition",
        "crc_checked_bytes",
    )
    .unwrap();
    eprintln!("after the crash, CRC-checked {checked} of {total} bytes");
    assert!(checked < total / 4, "checked {checked} of {total} bytes");
    let mut raw = Raw::connect(&broker.addr);
    let got = read_all(&mut raw, "cp");
    assert_eq!(
        got.len(),
        sent.len(),
        "every acknowledged batch after the crash"
    );
}

#[test]
fn a_corrupt_index_is_rebuilt_on_start_and_never_stops_the_broker() {
    let mut broker = Broker::start_logging(
        "storage-bad-index",
        &["log.segment.bytes=8192", "log.index.interval.bytes=512"],
        Some("info"),
    );
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "ix", 1);
    let value = "w".repeat(700);
    for i in 0..30 {
        assert_eq!(
            produce(&mut raw, "ix", batch(&[&format!("{i}{value}")])).0,
            0
        );
    }
    assert!(broker.stop().success());
    let part = broker.data.join("ix-0");
    let index = part.join("00000000000000000000.index");
    let good = std::fs::read(&index).unwrap();
    assert!(!good.is_empty());
    std::fs::write(&index, vec![0xab; good.len() + 5]).unwrap();
    std::fs::remove_file(part.join("00000000000000000000.timeindex")).unwrap();
    broker.restart();
    assert_eq!(
        logged_field(&broker.log_text(), "recovered partition", "rebuilt_indexes"),
        Some(2)
    );
    assert_eq!(std::fs::read(&index).unwrap(), good, "rebuilt as it was");
    let mut raw = Raw::connect(&broker.addr);
    assert_eq!(read_all(&mut raw, "ix").len(), 30);
}

#[test]
fn metadata_log_dir_holds_the_quorum_log_outside_the_log_dirs() {
    let meta = std::env::temp_dir().join(format!("eddy-test-{}-meta-dir", std::process::id()));
    let _ = std::fs::remove_dir_all(&meta);
    let setting = format!("metadata.log.dir={}", meta.display());
    let mut broker = Broker::start("storage-meta-dir", &[&setting]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "m", 1);
    assert!(meta.join("__cluster_metadata-0").is_dir());
    assert!(!broker.data.join("__cluster_metadata-0").exists());
    assert!(broker.data.join("m-0").is_dir());
    // The topic lives in the metadata log there: it is still known after a restart.
    assert!(broker.stop().success());
    broker.restart();
    let mut raw = Raw::connect(&broker.addr);
    assert_eq!(produce(&mut raw, "m", batch(&["after restart"])).0, 0);
    drop(broker);
    let _ = std::fs::remove_dir_all(&meta);
}

/// Unmounts a tmpfs when dropped, even when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A full disk takes the partition offline (KAFKA_STORAGE_ERROR); once space returns
/// (a filler file in the same tmpfs is deleted) the broker's periodic probe finds the
/// disk writable, restores the partition's files and serves it again — no restart —
/// with every acknowledged batch still there. Needs root to mount a small tmpfs; skipped
/// (and said so) without it.
#[test]
fn a_partition_offline_on_a_full_disk_comes_back_online_when_space_returns() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let base =
        std::env::temp_dir().join(format!("eddy-test-{}-disk-back-mount", std::process::id()));
    let small = base.join("small");
    let meta = base.join("meta");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=320k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs");
    let _mount = Mount(small.clone());
    let filler = small.join("filler");
    std::fs::write(&filler, vec![0u8; 128 * 1024]).unwrap();
    let dirs = format!("log.dirs={}", small.display());
    let meta_dir = format!("metadata.log.dir={}", meta.display());
    let mut broker = Broker::start_logging(
        "disk-back",
        &[&dirs, &meta_dir, "log.retention.check.interval.ms=200"],
        Some("info"),
    );
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "full", 1);
    let payload = "x".repeat(8 * 1024);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..100 {
        let b = batch(&[&format!("{i:04}{payload}")]);
        match produce(&mut raw, "full", b.clone()) {
            (0, offset) => acked.push((offset, b)),
            (code, _) => {
                refused = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(56),
        "KAFKA_STORAGE_ERROR once the disk is full"
    );
    assert!(acked.len() > 5, "{} batches fit", acked.len());
    // Still offline while the disk is full: probes fail, nothing comes back.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(produce(&mut raw, "full", batch(&["still full"])).0, 56);

    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let first_after = loop {
        let b = batch(&["room again"]);
        match produce(&mut raw, "full", b.clone()) {
            (0, offset) => break (offset, b),
            (56, _) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            (code, _) => panic!("the partition did not come back online (error {code})"),
        }
    };
    let mut after = vec![first_after];
    for i in 0..3 {
        let b = batch(&[&format!("after {i}")]);
        let (code, offset) = produce(&mut raw, "full", b.clone());
        assert_eq!(code, 0);
        after.push((offset, b));
    }
    assert!(broker.log_text().contains("back online"));
    // Every acknowledged batch, before and after, is readable at its offset.
    let got: std::collections::BTreeMap<i64, Bytes> =
        read_all(&mut raw, "full").into_iter().collect();
    for (offset, sent) in acked.iter().chain(&after) {
        let stored = got
            .get(offset)
            .unwrap_or_else(|| panic!("offset {offset} readable"));
        assert!(same_batch(stored, sent), "batch at {offset} intact");
    }
    // And the files hold them too: a crash and restart reads them back from disk.
    broker.kill();
    broker.restart();
    let mut raw = Raw::connect(&broker.addr);
    let on_disk: std::collections::BTreeMap<i64, Bytes> =
        read_all(&mut raw, "full").into_iter().collect();
    for (offset, sent) in acked.iter().chain(&after) {
        let stored = on_disk
            .get(offset)
            .unwrap_or_else(|| panic!("offset {offset} on disk"));
        assert!(same_batch(stored, sent), "batch at {offset} intact on disk");
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&meta);
}

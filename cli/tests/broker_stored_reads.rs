//! Reads of batches the broker no longer keeps in memory (issue 9): each partition log
//! keeps a 1 MiB tail in memory, and a restarted broker recovers headers only, so after
//! several MiB and a restart every read from the beginning is served from the segment
//! files — byte for byte, to kcat and to Eddy's client, and ListOffsets by time finds the
//! exact record inside a batch read back from disk.

mod support;

use std::time::Duration;

use eddy_client::{CommonConfig, Consumer, ConsumerConfig, OffsetReset, TopicPartition};
use support::{have_kafka_python, have_kcat, kcat, kcat_read, python, Broker};

const RECORDS: usize = 8_000;

fn record(i: usize) -> (String, String) {
    (
        format!("key-{i}"),
        format!("{i:06}-{}", "v".repeat(400 + i % 200)),
    )
}

/// kafka-python's `offsets_for_times` for records k of the `timed` topic, whose record
/// k has timestamp 1,000,000 + k: prints "k offset timestamp" per k.
const BY_TIME: &str = r#"
import sys
from kafka import KafkaConsumer, TopicPartition
tp = TopicPartition("timed", 0)
c = KafkaConsumer(bootstrap_servers=sys.argv[1])
for k in [0, 7, 1234, 2345, 2999]:
    o = c.offsets_for_times({tp: 1_000_000 + k})[tp]
    print(k, o.offset, o.timestamp)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_reads_back_exactly_from_the_segment_files_after_a_restart() {
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let mut broker = Broker::start("stored-reads", &["log.segment.bytes=1048576"]);
    // About 4 MiB in batches of a few records: four times the in-memory tail.
    let input: String = (0..RECORDS)
        .map(|i| {
            let (k, v) = record(i);
            format!("{k}\t{v}\n")
        })
        .collect();
    kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "big",
            "-P",
            "-K",
            "\t",
            "-X",
            "linger.ms=5",
            "-X",
            "batch.size=8192",
        ],
        input.as_bytes(),
    );
    // 3,000 records of 1 KiB with their own timestamps, about 15 to a batch.
    python(
        r#"
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], linger_ms=20)
for i in range(3000):
    p.send("timed", value=b"t" * 1024, timestamp_ms=1_000_000 + i)
p.flush()
"#,
        &[&broker.addr],
    );
    // Before the restart the oldest batches are already out of memory.
    assert_eq!(kcat_read(&broker.addr, "big", "%k\t%s\n"), input);

    broker.stop();
    broker.restart();

    assert_eq!(
        kcat_read(&broker.addr, "big", "%k\t%s\n"),
        input,
        "kcat reads every byte, in order, from the files"
    );

    let mut c = Consumer::new(ConsumerConfig {
        common: CommonConfig {
            bootstrap_servers: broker.addr.clone(),
            request_timeout_ms: 10_000,
            ..CommonConfig::default()
        },
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .unwrap();
    c.assign([TopicPartition::new("big", 0)]);
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < RECORDS && tokio::time::Instant::now() < deadline {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), RECORDS, "Eddy's client reads every record");
    for (i, r) in got.iter().enumerate() {
        let (k, v) = record(i);
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(k.as_bytes()));
        assert_eq!(r.value.as_deref(), Some(v.as_bytes()));
    }

    // Exact offsets by time, inside batches only the files hold (not the batch's base).
    let out = python(BY_TIME, &[&broker.addr]);
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 5, "{out}");
    for line in answers {
        let f: Vec<i64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[1], f[0], "offset for record {}: {out}", f[0]);
        assert_eq!(
            f[2],
            1_000_000 + f[0],
            "timestamp for record {}: {out}",
            f[0]
        );
    }
    broker.assert_no_panic();
}

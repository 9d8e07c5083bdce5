//! `eddy broker` driven by clients nobody here wrote: kcat (librdkafka 2.0.2, Debian's
//! kafkacat) and kafka-python. Where they behave differently against Eddy than against
//! Kafka, Eddy is wrong.

mod support;

use support::{have_kafka_python, have_kcat, kcat, python, Broker};

/// 100,000 keyed records through kcat, read back byte for byte and in order.
#[test]
fn kcat_produces_and_consumes_100k_records_exactly() {
    if !have_kcat() {
        return;
    }
    let broker = Broker::start("kcat-100k", &[]);
    let input: String = (0..100_000)
        .map(|i| format!("key-{i}\tvalue-{i:06}-{}\n", "x".repeat(i % 50)))
        .collect();
    kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "records",
            "-P",
            "-K",
            "\t",
            "-X",
            "linger.ms=5",
        ],
        input.as_bytes(),
    );
    let out = kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "records",
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            "%k\t%s\n",
        ],
        b"",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        input,
        "every byte, in order"
    );
}

/// Compressed batches are stored and served as they came (KAFKA-COMPAT item 2: Produce is
/// advertised from v0, so librdkafka keeps compressing).
#[test]
fn kcat_compressed_batches_round_trip_in_every_codec() {
    if !have_kcat() {
        return;
    }
    let broker = Broker::start("kcat-codecs", &[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let input: String = (0..5_000).map(|i| format!("{codec}-{i}\n")).collect();
        kcat(
            &["-b", &broker.addr, "-t", &topic, "-P", "-z", codec],
            input.as_bytes(),
        );
        let out = kcat(
            &[
                "-b",
                &broker.addr,
                "-t",
                &topic,
                "-C",
                "-e",
                "-q",
                "-o",
                "beginning",
            ],
            b"",
        );
        assert_eq!(String::from_utf8(out).unwrap(), input, "{codec}");
    }
}

/// A crash (kill -9) loses nothing acknowledged: the log is recovered from its segment
/// files, and the broker serves it and takes new writes after the restart; a clean stop
/// (SIGTERM) and restart too.
#[test]
fn records_survive_kill_9_and_a_clean_restart() {
    if !have_kcat() {
        return;
    }
    let mut broker = Broker::start("kcat-restart", &["num.partitions=3"]);
    let first: String = (0..20_000).map(|i| format!("k{i}\tfirst-{i}\n")).collect();
    kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "durable",
            "-P",
            "-K",
            "\t",
            "-X",
            "acks=all",
        ],
        first.as_bytes(),
    );
    broker.kill();
    broker.restart();
    let second: String = (0..1_000).map(|i| format!("k{i}\tsecond-{i}\n")).collect();
    kcat(
        &["-b", &broker.addr, "-t", "durable", "-P", "-K", "\t"],
        second.as_bytes(),
    );
    assert!(broker.stop().success(), "SIGTERM is a clean exit");
    broker.restart();
    let out = kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "durable",
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            "%k\t%s\n",
        ],
        b"",
    );
    let mut got: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    let mut want: Vec<&str> = first.lines().chain(second.lines()).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got.len(), 21_000);
    assert_eq!(got, want);
    let listing =
        String::from_utf8(kcat(&["-b", &broker.addr, "-L", "-t", "durable"], b"")).unwrap();
    assert!(listing.contains("with 3 partitions"), "{listing}");
}

/// kafka-python 3: admin client creates a topic, an idempotent acks=all producer with
/// gzip writes keyed records, a consumer reads them back from assigned partitions, and
/// end offsets and offsets by time answer as Kafka's would.
#[test]
fn kafka_python_admin_producer_and_consumer() {
    if !have_kafka_python() {
        return;
    }
    let broker = Broker::start("kafka-python", &[]);
    let script = r#"
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
b = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=b)
admin.create_topics([NewTopic("orders", 3, 1)])
try:
    admin.create_topics([NewTopic("orders", 3, 1)])
    print("duplicate accepted")
except TopicAlreadyExistsError:
    print("duplicate refused")
p = KafkaProducer(bootstrap_servers=b, acks="all", enable_idempotence=True, compression_type="gzip")
futs = [p.send("orders", key=str(i).encode(), value=("v%d" % i).encode(), timestamp_ms=10_000 + i) for i in range(3000)]
p.flush()
print("acked", sum(1 for f in futs if f.get(timeout=10).offset >= 0))
parts = [TopicPartition("orders", i) for i in range(3)]
c = KafkaConsumer(bootstrap_servers=b, auto_offset_reset="earliest", consumer_timeout_ms=3000)
c.assign(parts)
got = {}
for m in c:
    got.setdefault(m.partition, []).append(int(m.key))
print("consumed", sum(len(v) for v in got.values()), len({k for v in got.values() for k in v}))
print("ordered", all(v == sorted(v) for v in got.values()))
print("end", sum(c.end_offsets(parts).values()))
print("begin", sum(c.beginning_offsets(parts).values()))
t = c.offsets_for_times({tp: 10_000 + 2990 for tp in parts})
print("by-time", all(o is None or o.timestamp >= 12_990 for o in t.values()))
print("past-end", c.offsets_for_times({parts[0]: 99_999})[parts[0]])
"#;
    let out = python(script, &[&broker.addr]);
    for want in [
        "duplicate refused",
        "acked 3000",
        "consumed 3000 3000",
        "ordered True",
        "end 3000",
        "begin 0",
        "by-time True",
        "past-end None",
    ] {
        assert!(out.contains(want), "expected {want:?} in:\n{out}");
    }
}

/// kafka-python's admin client: topics created, grown, described, listed and deleted, the
/// cluster and the broker's configuration described — each answer as Kafka gives it.
#[test]
fn kafka_python_admin_lifecycle() {
    if !have_kafka_python() {
        return;
    }
    let broker = Broker::start("kafka-python-admin", &["log.segment.bytes=1048576"]);
    let script = r#"
import sys
from kafka.admin import KafkaAdminClient, NewTopic, NewPartitions, ConfigResource, ConfigResourceType
from kafka.errors import UnknownTopicOrPartitionError, InvalidPartitionsError, InvalidReplicationFactorError
b = sys.argv[1]
a = KafkaAdminClient(bootstrap_servers=b)
a.create_topics([NewTopic("t1", 2, 1), NewTopic("t2", 1, 1)])
print("topics", sorted(a.list_topics()))
try:
    a.create_topics([NewTopic("t3", 1, 3)])
except InvalidReplicationFactorError:
    print("rf3 refused")
a.create_partitions({"t1": NewPartitions(5)})
print("t1 partitions", len(a.describe_topics(["t1"])[0]["partitions"]))
try:
    a.create_partitions({"t1": NewPartitions(3)})
except InvalidPartitionsError:
    print("shrink refused")
c = a.describe_cluster()
print("brokers", len(c["brokers"]), "controller", c["controller_id"])
cfg = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "t1")], config_filter="all")["topic"]["t1"]
print("segment.bytes", cfg["segment.bytes"]["value"], len(cfg))
bcfg = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0", ["log.segment.bytes"])], config_filter="all")["broker"]["0"]
print("broker", [(k, v["value"]) for k, v in bcfg.items()])
a.delete_topics(["t2"])
print("after delete", sorted(a.list_topics()))
try:
    a.delete_topics(["t2"])
except UnknownTopicOrPartitionError:
    print("second delete refused")
"#;
    let out = python(script, &[&broker.addr]);
    for want in [
        "topics ['t1', 't2']",
        "rf3 refused",
        "t1 partitions 5",
        "shrink refused",
        "brokers 1 controller 0",
        "segment.bytes 1048576 12",
        "broker [('log.segment.bytes', '1048576')]",
        "after delete ['t1']",
        "second delete refused",
    ] {
        assert!(out.contains(want), "expected {want:?} in:\n{out}");
    }
}

/// Size retention: with small segments and `log.retention.bytes`, old segments are
/// deleted every `log.retention.check.interval.ms`, the log start moves up, and a
/// consumer from the beginning starts there and reads the rest intact. The log start
/// survives a restart.
#[test]
fn retention_trims_old_segments_and_consumers_start_after_them() {
    if !have_kcat() {
        return;
    }
    let mut broker = Broker::start(
        "retention",
        &[
            "log.segment.bytes=4096",
            "log.retention.bytes=16384",
            "log.retention.check.interval.ms=100",
        ],
    );
    let input: String = (0..2_000)
        .map(|i| format!("record-{i:05}-{}\n", "p".repeat(40)))
        .collect();
    kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "trimmed",
            "-P",
            "-X",
            "linger.ms=0",
            "-X",
            "batch.num.messages=10",
        ],
        input.as_bytes(),
    );
    let dir = broker.data.join("trimmed-0");
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    let mut waited = 0;
    while segments(&dir) > 6 && waited < 50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(
        segments(&dir) <= 6,
        "old segments deleted: {} left",
        segments(&dir)
    );
    for restart in [false, true] {
        if restart {
            broker.stop();
            broker.restart();
        }
        let out = String::from_utf8(kcat(
            &[
                "-b",
                &broker.addr,
                "-t",
                "trimmed",
                "-C",
                "-e",
                "-q",
                "-o",
                "beginning",
            ],
            b"",
        ))
        .unwrap();
        let got: Vec<&str> = out.lines().collect();
        assert!(
            got.len() < 2_000 && got.len() >= 16_384 / 100,
            "kept {} records",
            got.len()
        );
        let all: Vec<&str> = input.lines().collect();
        assert_eq!(
            got,
            &all[all.len() - got.len()..],
            "a contiguous tail, intact (restart: {restart})"
        );
    }
}

/// With `log.flush.interval.messages=1` every acknowledged batch is synced first; syncs
/// run off the node's thread and cover every append made meanwhile (group commit). All
/// 20,000 records acknowledged by acks=all survive kill -9.
#[test]
fn sync_before_ack_acknowledges_only_synced_batches_and_they_survive_kill_9() {
    if !have_kcat() {
        return;
    }
    let mut broker = Broker::start(
        "sync-before-ack",
        &["log.flush.interval.messages=1", "num.partitions=4"],
    );
    let input: String = (0..20_000).map(|i| format!("k{i}\tsynced-{i}\n")).collect();
    kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "synced",
            "-P",
            "-K",
            "\t",
            "-X",
            "acks=all",
            "-X",
            "linger.ms=1",
        ],
        input.as_bytes(),
    );
    broker.kill();
    broker.restart();
    let out = kcat(
        &[
            "-b",
            &broker.addr,
            "-t",
            "synced",
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            "%k\t%s\n",
        ],
        b"",
    );
    let mut got: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    let mut want: Vec<&str> = input.lines().collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

//! Eddy's client and kafka-python against the same broker: a keyed record lands on the
//! same partition whichever client wrote it (both hash with murmur2 as Java does), and
//! each client reads what the other wrote.

mod support;

use std::time::Duration;

use bytes::Bytes;
use eddy_client::partitioner::partition_for_key;
use eddy_client::{
    Admin, CommonConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use support::{have_kafka_python, python, Broker};

const PARTITIONS: i32 = 7;

fn common(bootstrap: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap.to_string(),
        request_timeout_ms: 10_000,
        ..CommonConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_on_the_same_partition_from_kafka_python_and_eddy() {
    if !have_kafka_python() {
        return;
    }
    let broker = Broker::start("client-cross", &[]);
    let bs = broker.addr.clone();
    let admin = Admin::new(common(&bs)).unwrap();
    for t in ["from-python", "from-eddy"] {
        admin
            .create_topic_if_missing(&NewTopic::new(t, PARTITIONS, 1))
            .await
            .unwrap();
    }
    // kafka-python writes keyed records (its default partitioner is murmur2) and prints
    // where each went.
    let script = r#"
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1])
for i in range(200):
    md = p.send("from-python", key=("key-%d" % i).encode(), value=("py-%d" % i).encode()).get(timeout=30)
    print("key-%d %d" % (i, md.partition))
p.close()
"#;
    let placed = python(script, &[&bs]);
    let mut checked = 0;
    for line in placed.lines() {
        let (key, partition) = line.split_once(' ').unwrap();
        assert_eq!(
            partition_for_key(key.as_bytes(), PARTITIONS as usize),
            partition.parse::<i32>().unwrap(),
            "{key}"
        );
        checked += 1;
    }
    assert_eq!(checked, 200);

    // Eddy reads what kafka-python wrote.
    let mut c = Consumer::new(ConsumerConfig {
        common: common(&bs),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .unwrap();
    c.assign((0..PARTITIONS as u32).map(|p| TopicPartition::new("from-python", p)));
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 200 && tokio::time::Instant::now() < deadline {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), 200);
    for r in &got {
        let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
        assert_eq!(
            r.partition,
            partition_for_key(key.as_bytes(), PARTITIONS as usize)
        );
        assert_eq!(
            r.value.as_deref().unwrap(),
            format!("py-{}", key.strip_prefix("key-").unwrap()).as_bytes()
        );
    }

    // kafka-python reads what Eddy wrote (gzip-compressed), at the partitions murmur2
    // gives.
    let p = Producer::new(ProducerConfig {
        common: common(&bs),
        compression: eddy_client::records::Compression::Gzip,
        ..ProducerConfig::default()
    })
    .unwrap();
    for i in 0..200 {
        p.send_nowait(ProducerRecord::new(
            "from-eddy",
            Some(Bytes::from(format!("key-{i}"))),
            Some(Bytes::from(format!("eddy-{i}"))),
        ))
        .await
        .unwrap();
    }
    p.close().await;
    let script = r#"
import sys
from kafka import KafkaConsumer
c = KafkaConsumer("from-eddy", bootstrap_servers=sys.argv[1], auto_offset_reset="earliest",
                  consumer_timeout_ms=5000, enable_auto_commit=False)
for m in c:
    print(m.partition, m.key.decode(), m.value.decode())
c.close()
"#;
    let read = python(script, &[&bs]);
    let mut n = 0;
    for line in read.lines() {
        let mut f = line.split(' ');
        let (partition, key, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        assert_eq!(
            partition.parse::<i32>().unwrap(),
            partition_for_key(key.as_bytes(), PARTITIONS as usize)
        );
        assert_eq!(value, format!("eddy-{}", key.strip_prefix("key-").unwrap()));
        n += 1;
    }
    assert_eq!(n, 200, "kafka-python read every record Eddy wrote");
}

/// kcat (librdkafka) with `partitioner=murmur2_random` puts a key where Eddy's client
/// computes it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_murmur2_random_places_keys_where_eddy_does() {
    if !support::have_kcat() {
        return;
    }
    let broker = Broker::start("client-cross-kcat", &[]);
    let bs = broker.addr.clone();
    let admin = Admin::new(common(&bs)).unwrap();
    admin
        .create_topic_if_missing(&NewTopic::new("from-kcat", PARTITIONS, 1))
        .await
        .unwrap();
    let input: String = (0..200).map(|i| format!("key-{i}\tkcat-{i}\n")).collect();
    support::kcat(
        &[
            "-b",
            &bs,
            "-t",
            "from-kcat",
            "-P",
            "-K",
            "\t",
            "-X",
            "partitioner=murmur2_random",
        ],
        input.as_bytes(),
    );
    let mut c = Consumer::new(ConsumerConfig {
        common: common(&bs),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .unwrap();
    c.assign((0..PARTITIONS as u32).map(|p| TopicPartition::new("from-kcat", p)));
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 200 && tokio::time::Instant::now() < deadline {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), 200);
    for r in &got {
        let key = r.key.as_deref().unwrap();
        assert_eq!(
            r.partition,
            partition_for_key(key, PARTITIONS as usize),
            "{r:?}"
        );
    }
}

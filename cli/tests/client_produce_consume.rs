//! Eddy's own client against real `eddy broker` processes: every record produced with
//! each compression codec is consumed back; acks 0/1/all; keyed records land where
//! murmur2 puts them; commit then resume reads from the committed offset; seek, pause
//! and resume.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use eddy_client::consumer::list_offsets;
use eddy_client::partitioner::partition_for_key;
use eddy_client::records::parse_compression;
use eddy_client::{
    Acks, Admin, CommonConfig, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use support::Broker;

fn common(bootstrap: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap.to_string(),
        request_timeout_ms: 10_000,
        ..CommonConfig::default()
    }
}

async fn create(bootstrap: &str, topic: &str, partitions: i32) {
    let admin = Admin::new(common(bootstrap)).unwrap();
    admin
        .create_topic_if_missing(&NewTopic::new(topic, partitions, 1))
        .await
        .unwrap();
    admin.close().await;
}

fn consumer(bootstrap: &str, group: Option<&str>) -> Consumer {
    Consumer::new(ConsumerConfig {
        common: common(bootstrap),
        group_id: group.map(str::to_string),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .unwrap()
}

/// Polls until `n` records came or 30 s passed.
async fn read_n(c: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_comes_back_with_each_compression_codec() {
    let broker = Broker::start("client-codecs", &[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create(&broker.addr, &topic, 3).await;
        let producer = Producer::new(ProducerConfig {
            common: common(&broker.addr),
            compression: parse_compression(codec).unwrap(),
            linger_ms: 20,
            ..ProducerConfig::default()
        })
        .unwrap();
        let mut pending = Vec::new();
        for i in 0..2_000 {
            let mut r = ProducerRecord::new(
                topic.clone(),
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{i}-").repeat(5))),
            );
            r.headers = vec![("i".to_string(), Some(Bytes::from(i.to_string())))];
            pending.push(producer.send_nowait(r).await.unwrap());
        }
        let mut offsets = BTreeMap::new();
        for p in pending {
            let md = p.await.unwrap();
            assert!(md.offset >= 0);
            assert!(
                offsets.insert((md.partition, md.offset), ()).is_none(),
                "offsets unique"
            );
        }
        producer.close().await;

        let mut c = consumer(&broker.addr, None);
        c.assign((0..3).map(|p| TopicPartition::new(topic.clone(), p)));
        let got = read_n(&mut c, 2_000).await;
        assert_eq!(got.len(), 2_000, "{codec}: every record read back");
        let mut seen = std::collections::BTreeSet::new();
        for r in &got {
            let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
            let i: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
            assert_eq!(
                r.value.as_deref(),
                Some(format!("value-{i}-").repeat(5).as_bytes())
            );
            assert_eq!(
                r.headers,
                vec![("i".to_string(), Some(Bytes::from(i.to_string())))]
            );
            assert_eq!(
                r.partition,
                partition_for_key(key.as_bytes(), 3),
                "murmur2 placement"
            );
            assert!(seen.insert(i), "{codec}: no duplicates");
        }
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all_all_deliver() {
    let broker = Broker::start("client-acks", &[]);
    create(&broker.addr, "acks", 1).await;
    for (acks, idempotent) in [
        (Acks::None, false),
        (Acks::Leader, false),
        (Acks::All, true),
    ] {
        let producer = Producer::new(ProducerConfig {
            common: common(&broker.addr),
            acks,
            enable_idempotence: idempotent,
            ..ProducerConfig::default()
        })
        .unwrap();
        for i in 0..100 {
            let md = producer
                .send(ProducerRecord::new(
                    "acks",
                    None,
                    Some(Bytes::from(format!("{i}"))),
                ))
                .await
                .unwrap();
            assert_eq!(md.offset < 0, acks == Acks::None, "{acks:?}: {md:?}");
        }
        producer.close().await;
    }
    let mut c = consumer(&broker.addr, None);
    c.assign([TopicPartition::new("acks", 0)]);
    assert_eq!(read_n(&mut c, 300).await.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_resume_reads_from_the_committed_offset() {
    let broker = Broker::start("client-commit", &["group.initial.rebalance.delay.ms=0"]);
    create(&broker.addr, "commits", 2).await;
    let producer = Producer::new(ProducerConfig {
        common: common(&broker.addr),
        ..ProducerConfig::default()
    })
    .unwrap();
    for i in 0..100 {
        let mut r = ProducerRecord::new("commits", None, Some(Bytes::from(format!("{i}"))));
        r.partition = Some(i % 2);
        producer.send_nowait(r).await.unwrap();
    }
    producer.flush().await;

    let tps: Vec<TopicPartition> = (0..2).map(|p| TopicPartition::new("commits", p)).collect();
    let mut c = consumer(&broker.addr, Some("resumers"));
    c.subscribe(["commits"]).unwrap();
    let mut got = Vec::new();
    while got.len() < 60 {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    // Commit exactly where we stopped reading: 30 records into each partition.
    let offsets: BTreeMap<TopicPartition, i64> = tps.iter().map(|tp| (tp.clone(), 30)).collect();
    c.commit_offsets(&offsets).await.unwrap();
    assert_eq!(c.committed(&tps).await.unwrap(), offsets);
    c.close().await.unwrap();

    let mut c = consumer(&broker.addr, Some("resumers"));
    c.subscribe(["commits"]).unwrap();
    let rest = read_n(&mut c, 40).await;
    assert_eq!(rest.len(), 40);
    for r in &rest {
        assert!(r.offset >= 30, "resumed from the committed offset: {r:?}");
    }
    // Explicit commit of the position after reading everything.
    c.commit().await.unwrap();
    let end: BTreeMap<TopicPartition, i64> = tps.iter().map(|tp| (tp.clone(), 50)).collect();
    assert_eq!(c.committed(&tps).await.unwrap(), end);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_position_pause_and_resume() {
    let broker = Broker::start("client-seek", &[]);
    create(&broker.addr, "seeks", 1).await;
    let producer = Producer::new(ProducerConfig {
        common: common(&broker.addr),
        ..ProducerConfig::default()
    })
    .unwrap();
    for i in 0..50 {
        producer
            .send_nowait(ProducerRecord::new(
                "seeks",
                None,
                Some(Bytes::from(format!("{i}"))),
            ))
            .await
            .unwrap();
    }
    producer.flush().await;
    let tp = TopicPartition::new("seeks", 0);
    let one = [tp.clone()];
    let ends = list_offsets(producer.network(), &one, -1).await.unwrap();
    assert_eq!(ends[&tp], 50);

    let mut c = consumer(&broker.addr, None);
    c.assign([tp.clone()]);
    c.seek_to_end(&one).await.unwrap();
    assert_eq!(c.position(&tp).await.unwrap(), 50);
    c.seek(&tp, 45);
    let got = read_n(&mut c, 5).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![45, 46, 47, 48, 49]
    );
    assert_eq!(c.position(&tp).await.unwrap(), 50);

    c.seek_to_beginning(&one).await.unwrap();
    c.pause(&one);
    assert!(
        c.poll(Duration::from_millis(300)).await.unwrap().is_empty(),
        "paused"
    );
    c.resume(&one);
    let got = read_n(&mut c, 50).await;
    assert_eq!(got.first().map(|r| r.offset), Some(0));
    assert_eq!(got.len(), 50);

    let mut strict = Consumer::new(ConsumerConfig {
        common: common(&broker.addr),
        auto_offset_reset: OffsetReset::None,
        ..ConsumerConfig::default()
    })
    .unwrap();
    strict.assign([tp.clone()]);
    let err = strict.poll(Duration::from_millis(100)).await.unwrap_err();
    assert!(err.to_string().contains("seeks-0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_for_a_dead_broker_fails_after_the_delivery_timeout_naming_its_partition() {
    let mut broker = Broker::start("client-timeout", &[]);
    create(&broker.addr, "doomed", 1).await;
    let producer = Producer::new(ProducerConfig {
        common: CommonConfig {
            request_timeout_ms: 500,
            ..common(&broker.addr)
        },
        delivery_timeout_ms: 2_000,
        ..ProducerConfig::default()
    })
    .unwrap();
    let record = ProducerRecord::new("doomed", None, Some(Bytes::from_static(b"x")));
    producer.send(record.clone()).await.unwrap();
    broker.kill();
    let started = tokio::time::Instant::now();
    let err = producer.send(record).await.unwrap_err();
    assert!(
        matches!(err, eddy_client::ClientError::DeliveryTimeout { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("doomed-0"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    producer.close().await;
}

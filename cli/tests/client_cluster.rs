//! Eddy's idempotent producer against a three-broker cluster while a broker is killed
//! (kill -9) mid-stream: every record is acknowledged, and reading back finds each
//! exactly once and, within each partition, in the order it was sent.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use eddy_client::{
    Admin, CommonConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use support::Cluster;

/// Settings that make a dead broker noticed quickly (the defaults wait 9 s).
const FAST_FAILOVER: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "group.initial.rebalance.delay.ms=0",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=6",
];

const RECORDS: usize = 30_000;
const PARTITIONS: i32 = 6;

/// Waits until the cluster reports all three brokers (a topic with three replicas
/// cannot be created before they have registered).
async fn wait_for_brokers(admin: &Admin) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if admin
            .describe_cluster()
            .await
            .is_ok_and(|c| c.brokers.len() == 3)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "three brokers register"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn common(bootstrap: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap.to_string(),
        request_timeout_ms: 5_000,
        ..CommonConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_loses_and_duplicates_nothing_when_a_broker_is_killed() {
    let mut cluster = Cluster::start("client-kill", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    let admin = Admin::new(common(&bootstrap)).unwrap();
    wait_for_brokers(&admin).await;
    admin
        .create_topic_if_missing(&NewTopic::new("kill", PARTITIONS, 3))
        .await
        .unwrap();
    let producer = Producer::new(ProducerConfig {
        common: common(&bootstrap),
        linger_ms: 2,
        batch_size: 4 * 1024,
        ..ProducerConfig::default()
    })
    .unwrap();
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        if i == RECORDS / 3 {
            // Let some of what is queued be acknowledged, then kill a broker that
            // leads partitions mid-stream.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let leader = producer.network().leader("kill", 0).expect("a leader");
            eprintln!("killing broker {leader} after {i} records were sent");
            cluster.broker(leader as u32).kill();
        }
        let record = ProducerRecord::new(
            "kill",
            Some(Bytes::from(format!("key-{}", i % 60))),
            Some(Bytes::from(i.to_string())),
        );
        pending.push(producer.send_nowait(record).await.unwrap());
        if i % 100 == 0 {
            // Pace the stream over about a second, so the kill lands in its middle.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let mut acked = 0;
    for p in pending {
        p.await
            .expect("every record is acknowledged despite the kill");
        acked += 1;
    }
    assert_eq!(acked, RECORDS);
    eprintln!("batch retries: {}", producer.retry_count());
    assert!(
        producer.retry_count() > 0,
        "the kill hit batches in flight or queued for it"
    );
    producer.close().await;

    let mut consumer = Consumer::new(ConsumerConfig {
        common: common(&bootstrap),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .unwrap();
    consumer.assign((0..PARTITIONS as u32).map(|p| TopicPartition::new("kill", p)));
    let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while total < RECORDS && tokio::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            let v: usize = std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            by_partition.entry(r.partition).or_default().push(v);
            total += 1;
        }
    }
    // A little longer: anything beyond RECORDS would be a duplicate.
    for r in consumer.poll(Duration::from_millis(1_000)).await.unwrap() {
        let v: usize = std::str::from_utf8(r.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        by_partition.entry(r.partition).or_default().push(v);
        total += 1;
    }
    let mut all: Vec<usize> = by_partition.values().flatten().copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), RECORDS, "no record lost");
    assert_eq!(total, RECORDS, "no record duplicated");
    for (p, values) in &by_partition {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "partition {p} keeps the order records were sent in"
        );
    }
    cluster.restart_stopped();
}

/// A group of two consumers keeps reading, and its commits keep working, when the broker
/// that coordinates the group is killed: the members find the new coordinator (the
/// new leader of the group's `__consumer_offsets` partition) and every record produced
/// is read, and committed, by the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_survives_the_death_of_its_coordinator() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let mut cluster = Cluster::start("client-coord", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    let admin = Admin::new(common(&bootstrap)).unwrap();
    wait_for_brokers(&admin).await;
    admin
        .create_topic_if_missing(&NewTopic::new("coord", PARTITIONS, 3))
        .await
        .unwrap();
    let producer = Producer::new(ProducerConfig {
        common: common(&bootstrap),
        ..ProducerConfig::default()
    })
    .unwrap();
    let seen: Arc<Mutex<std::collections::BTreeSet<usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let members: Vec<_> = (0..2)
        .map(|_| {
            let (bootstrap, seen, stop) = (bootstrap.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let mut c = Consumer::new(ConsumerConfig {
                    common: common(&bootstrap),
                    group_id: Some("survivors".to_string()),
                    auto_offset_reset: OffsetReset::Earliest,
                    enable_auto_commit: false,
                    heartbeat_interval_ms: 300,
                    session_timeout_ms: 10_000,
                    ..ConsumerConfig::default()
                })
                .unwrap();
                c.subscribe(["coord"]).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let records = match c.poll(Duration::from_millis(200)).await {
                        Ok(r) => r,
                        Err(e) => panic!("poll failed: {e}"),
                    };
                    for r in &records {
                        let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
                        seen.lock().unwrap().insert(v.parse().unwrap());
                    }
                    if let Err(e) = c.commit().await {
                        eprintln!("commit failed (retried on the next poll): {e}");
                    }
                }
                c.close().await.ok();
            })
        })
        .collect();
    let produce = |from: usize, to: usize| {
        let producer = producer.clone();
        async move {
            for i in from..to {
                producer
                    .send(ProducerRecord::new(
                        "coord",
                        None,
                        Some(Bytes::from(i.to_string())),
                    ))
                    .await
                    .unwrap();
            }
        }
    };
    produce(0, 200).await;
    let coordinator = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(d) = admin.describe_group("survivors").await {
                if d.members.len() == 2 && d.state == "Stable" {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "the group forms");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eddy_client::consumer::find_coordinator_of(admin.network(), "survivors")
            .await
            .unwrap()
    };
    eprintln!("killing the coordinator, broker {coordinator}");
    cluster.broker(coordinator as u32).kill();
    produce(200, 400).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 400 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of 400 after the coordinator died",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Commits work again: the group's lag drops to zero.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(lag) = admin.group_lag("survivors").await {
            if lag.len() == PARTITIONS as usize && lag.iter().all(|l| l.lag == 0) {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "commits resume");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for m in members {
        m.await.unwrap();
    }
    producer.close().await;
    cluster.restart_stopped();
}

//! The real-cluster fault tests' workload on Eddy's client (`eddy-client`), run inside
//! the client's network namespace. Each subcommand appends what it was told to a history
//! file (`eddy_tests::realfault::history` names the lines):
//!
//! ```text
//! eddy-realfault-client create-topic BOOTSTRAP TOPIC PARTITIONS RF
//! eddy-realfault-client produce BOOTSTRAP TOPIC PARTITION NAME HISTORY DURATION_MS RATE_PER_S
//! eddy-realfault-client consume BOOTSTRAP TOPIC GROUP NAME HISTORY STOP_FILE
//! eddy-realfault-client verify BOOTSTRAP TOPIC GROUP HISTORY
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use eddy_client::{
    Admin, CommonConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, RebalanceEvent, TopicPartition,
};
use eddy_tests::realfault::history::{Op, Outcome};

/// How long one request may go unanswered: short, so that a cut connection is noticed
/// well within a fault episode.
const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// How long a record may take to be acknowledged, retries included. Faults last at most
/// ~10 s each, so a record outliving one fault is still acknowledged.
const DELIVERY_TIMEOUT_MS: u64 = 30_000;
/// How long the final read may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(90);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn common(bootstrap: &str, client_id: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap.to_string(),
        client_id: client_id.to_string(),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        retry_backoff_ms: 100,
    }
}

/// A history file, appended to a whole line at a time.
#[derive(Clone)]
struct History(Arc<Mutex<File>>);

impl History {
    fn open(path: &str) -> History {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        History(Arc::new(Mutex::new(f)))
    }

    fn log(&self, op: &Op) {
        let mut f = self.0.lock().expect("history lock");
        writeln!(f, "{op}").expect("history written");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let ok = match a.as_slice() {
        ["create-topic", bootstrap, topic, partitions, rf] => rt.block_on(create_topic(
            bootstrap,
            topic,
            partitions.parse().expect("partitions"),
            rf.parse().expect("replication factor"),
        )),
        ["produce", bootstrap, topic, partition, name, history, duration_ms, rate] => {
            rt.block_on(produce(
                bootstrap,
                topic,
                partition.parse().expect("partition"),
                name,
                History::open(history),
                Duration::from_millis(duration_ms.parse().expect("duration")),
                rate.parse().expect("rate"),
            ));
            true
        }
        ["consume", bootstrap, topic, group, name, history, stop] => {
            rt.block_on(consume(
                bootstrap,
                topic,
                group,
                name,
                History::open(history),
                Path::new(stop),
            ));
            true
        }
        ["verify", bootstrap, topic, group, history] => {
            rt.block_on(verify(bootstrap, topic, group, History::open(history)))
        }
        _ => {
            eprintln!("usage: see the comment at the top of tests/src/bin/realfault_client.rs");
            false
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(if ok { 0 } else { 1 });
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32, rf: i16) -> bool {
    let admin = Admin::new(common(bootstrap, "realfault-admin")).expect("admin");
    let begin = Instant::now();
    loop {
        match admin
            .create_topic_if_missing(&NewTopic::new(topic, partitions, rf))
            .await
        {
            Ok(()) => return true,
            Err(e) if begin.elapsed() < Duration::from_secs(60) => {
                eprintln!("create {topic}: {e} (retrying)");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                eprintln!("create {topic}: {e}");
                return false;
            }
        }
    }
}

/// Sends `name:seq` with key `name` to `partition` (one partition per producer, so its
/// order is one log's order) at `rate` records a second for `duration`, idempotent with acks=all,
/// logging each outcome; what is still pending when it gives up is unknown.
async fn produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    name: &str,
    history: History,
    duration: Duration,
    rate: u64,
) {
    let producer = Producer::new(ProducerConfig {
        common: common(bootstrap, name),
        delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
        max_block_ms: 5_000,
        linger_ms: 5,
        enable_idempotence: true,
        allow_auto_topic_creation: false,
        ..ProducerConfig::default()
    })
    .expect("producer");
    // Sequences not yet answered; `None` once the producer gave up waiting (then a late
    // answer is not logged: its line is already written as unknown).
    let pending: Arc<Mutex<Option<BTreeSet<u64>>>> = Arc::new(Mutex::new(Some(BTreeSet::new())));
    let begin = Instant::now();
    let interval = Duration::from_micros(1_000_000 / rate.max(1));
    let mut seq = 0u64;
    while begin.elapsed() < duration {
        let value = Op::value_of(name, seq);
        let record = ProducerRecord {
            partition: Some(partition),
            ..ProducerRecord::new(
                topic,
                Some(Bytes::copy_from_slice(name.as_bytes())),
                Some(Bytes::from(value)),
            )
        };
        match producer.send_nowait(record).await {
            Ok(delivery) => {
                pending
                    .lock()
                    .expect("pending lock")
                    .as_mut()
                    .expect("open")
                    .insert(seq);
                let (pending, history, name) = (pending.clone(), history.clone(), name.to_string());
                tokio::spawn(async move {
                    let result = delivery.await;
                    let mut pending = pending.lock().expect("pending lock");
                    let Some(set) = pending.as_mut() else { return };
                    set.remove(&seq);
                    let (outcome, partition, offset) = match &result {
                        Ok(m) => (Outcome::Ok, m.partition, m.offset),
                        // A timeout or a lost connection: the write may have landed.
                        Err(_) => (Outcome::Unknown, -1, -1),
                    };
                    if let Err(e) = &result {
                        eprintln!("{name}:{seq}: {e}");
                    }
                    history.log(&Op::Produce {
                        t_ms: now_ms(),
                        producer: name,
                        seq,
                        outcome,
                        partition,
                        offset,
                    });
                });
            }
            // Never handed to the network (no metadata within max.block.ms).
            Err(e) => {
                eprintln!("{name}:{seq} not sent: {e}");
                history.log(&Op::Produce {
                    t_ms: now_ms(),
                    producer: name.to_string(),
                    seq,
                    outcome: Outcome::Failed,
                    partition: -1,
                    offset: -1,
                });
            }
        }
        seq += 1;
        let next = interval * seq as u32;
        if let Some(wait) = next.checked_sub(begin.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let flushed = tokio::time::timeout(
        Duration::from_millis(DELIVERY_TIMEOUT_MS + 10_000),
        producer.flush(),
    )
    .await;
    if flushed.is_err() {
        eprintln!("{name}: flush did not finish");
    }
    // Let the delivery tasks log what flush resolved.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = pending
        .lock()
        .expect("pending lock")
        .take()
        .unwrap_or_default();
    for seq in left {
        history.log(&Op::Produce {
            t_ms: now_ms(),
            producer: name.to_string(),
            seq,
            outcome: Outcome::Unknown,
            partition: -1,
            offset: -1,
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), producer.close()).await;
}

/// A group member: reads, logs every record, commits after every poll; once `stop`
/// exists it reads until a poll brings nothing, commits and leaves.
async fn consume(
    bootstrap: &str,
    topic: &str,
    group: &str,
    name: &str,
    history: History,
    stop: &Path,
) {
    let mut consumer = Consumer::new(ConsumerConfig {
        common: common(bootstrap, name),
        group_id: Some(group.to_string()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        max_poll_interval_ms: 60_000,
        fetch_max_wait_ms: 500,
        ..ConsumerConfig::default()
    })
    .expect("consumer");
    let events: Arc<Mutex<Vec<RebalanceEvent>>> = Arc::default();
    let sink = events.clone();
    consumer.set_rebalance_listener(move |e| sink.lock().expect("events lock").push(e.clone()));
    consumer.subscribe([topic]).expect("subscribe");
    let mut assignment = 0u64;
    let mut stopping_since: Option<Instant> = None;
    loop {
        let polled = consumer.poll(Duration::from_millis(1_000)).await;
        for event in events.lock().expect("events lock").drain(..) {
            // Every change of assignment starts a new one: positions may move back to
            // the committed offset only across one.
            assignment += 1;
            let partitions = match &event {
                RebalanceEvent::Assigned(_) | RebalanceEvent::Revoked(_) => consumer
                    .assignment()
                    .iter()
                    .map(|tp| tp.partition as i32)
                    .collect(),
            };
            history.log(&Op::Assign {
                t_ms: now_ms(),
                member: name.to_string(),
                assignment,
                partitions,
            });
        }
        let records = match polled {
            Ok(records) => records,
            Err(e) => {
                eprintln!("{name}: poll: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Vec::new()
            }
        };
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in &records {
            let value = r
                .value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            history.log(&Op::Read {
                t_ms: now_ms(),
                member: name.to_string(),
                assignment,
                partition: r.partition,
                offset: r.offset,
                value,
            });
            next.insert(
                TopicPartition::new(r.topic.clone(), r.partition as u32),
                r.offset + 1,
            );
        }
        if !next.is_empty() {
            commit(&mut consumer, &next, name, &history).await;
        }
        if stop.exists() {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if records.is_empty() || since.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
    }
    // The final commit of every position, so that the group's commits reach the end.
    let mut positions = BTreeMap::new();
    for tp in consumer.assignment() {
        if let Ok(p) = consumer.position(&tp).await {
            positions.insert(tp, p);
        }
    }
    commit(&mut consumer, &positions, name, &history).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close()).await;
}

async fn commit(
    consumer: &mut Consumer,
    offsets: &BTreeMap<TopicPartition, i64>,
    name: &str,
    history: &History,
) {
    if offsets.is_empty() {
        return;
    }
    let start = now_ms();
    let result = consumer.commit_offsets(offsets).await;
    let end = now_ms();
    if let Err(e) = &result {
        eprintln!("{name}: commit: {e}");
    }
    for (tp, offset) in offsets {
        history.log(&Op::Commit {
            t_start_ms: start,
            t_end_ms: end,
            member: name.to_string(),
            partition: tp.partition as i32,
            offset: *offset,
            // A failed commit may still have been written (answered too late).
            outcome: if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Unknown
            },
        });
    }
}

/// The final read, after healing: every partition from its start to its log end, and
/// the group's committed offset of each.
async fn verify(bootstrap: &str, topic: &str, group: &str, history: History) -> bool {
    let admin = Admin::new(common(bootstrap, "realfault-verify")).expect("admin");
    let begin = Instant::now();
    let partitions: Vec<TopicPartition> = loop {
        match admin.describe_topics(&[topic.to_string()]).await {
            Ok(t) if !t.is_empty() => {
                break t[0]
                    .partitions
                    .iter()
                    .map(|p| TopicPartition::new(topic.to_string(), p.partition as u32))
                    .collect()
            }
            other if begin.elapsed() > VERIFY_TIMEOUT => {
                eprintln!("describe {topic}: {other:?}");
                return false;
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let mut consumer = Consumer::new(ConsumerConfig {
        common: common(bootstrap, "realfault-verify"),
        group_id: Some(group.to_string()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    })
    .expect("consumer");
    consumer.assign(partitions.clone());
    let mut ends = BTreeMap::new();
    while let Err(e) = consumer.seek_to_end(&partitions).await {
        if begin.elapsed() > VERIFY_TIMEOUT {
            eprintln!("log end offsets: {e}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for tp in &partitions {
        ends.insert(tp.clone(), consumer.position(tp).await.expect("position"));
    }
    while let Err(e) = consumer.seek_to_beginning(&partitions).await {
        if begin.elapsed() > VERIFY_TIMEOUT {
            eprintln!("log start offsets: {e}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut done: BTreeSet<TopicPartition> = BTreeSet::new();
    while done.len() < partitions.len() {
        if begin.elapsed() > VERIFY_TIMEOUT {
            eprintln!("the final read did not reach the log end of {ends:?}");
            return false;
        }
        let records = match consumer.poll(Duration::from_millis(1_000)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("final read: {e}");
                continue;
            }
        };
        for r in records {
            let tp = TopicPartition::new(r.topic.clone(), r.partition as u32);
            if r.offset < ends[&tp] {
                history.log(&Op::FinalRead {
                    partition: r.partition,
                    offset: r.offset,
                    value: r
                        .value
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default(),
                });
            }
        }
        for tp in &partitions {
            if consumer.position(tp).await.unwrap_or(0) >= ends[tp] {
                done.insert(tp.clone());
            }
        }
    }
    let committed = loop {
        match consumer.committed(&partitions).await {
            Ok(c) => break c,
            Err(e) if begin.elapsed() < VERIFY_TIMEOUT => {
                eprintln!("committed offsets: {e} (retrying)");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                eprintln!("committed offsets: {e}");
                return false;
            }
        }
    };
    for tp in &partitions {
        history.log(&Op::End {
            partition: tp.partition as i32,
            log_end_offset: ends[tp],
            committed: committed.get(tp).copied().unwrap_or(-1),
        });
    }
    true
}

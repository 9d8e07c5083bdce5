//! Eddy's consumer in a group against a real broker: three members split six
//! partitions 2/2/2 and, when one leaves, the other two take its partitions (3/3) and
//! read on without losing a record; with the eager `range` assignor and with
//! `cooperative-sticky` (KIP-429).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eddy_client::{
    Admin, CommonConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, RebalanceEvent, TopicPartition,
};
use eddy_core::group::Assignor;
use support::Broker;

fn common(bootstrap: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap.to_string(),
        request_timeout_ms: 10_000,
        ..CommonConfig::default()
    }
}

/// What a member task reports: its current assignment and the values it read.
#[derive(Default)]
struct Seen {
    assignment: Vec<TopicPartition>,
    values: Vec<String>,
    events: Vec<RebalanceEvent>,
}

/// Runs a member until `stop`, then closes it (LeaveGroup).
fn member(
    bootstrap: String,
    topic: &str,
    assignor: Assignor,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let topic = topic.to_string();
    tokio::spawn(async move {
        let mut c = Consumer::new(ConsumerConfig {
            common: common(&bootstrap),
            group_id: Some("splitters".to_string()),
            auto_offset_reset: OffsetReset::Earliest,
            heartbeat_interval_ms: 300,
            session_timeout_ms: 10_000,
            auto_commit_interval_ms: 200,
            assignors: vec![assignor],
            ..ConsumerConfig::default()
        })
        .unwrap();
        let events = seen.clone();
        c.set_rebalance_listener(move |e| events.lock().unwrap().events.push(e.clone()));
        c.subscribe([topic]).unwrap();
        while !stop.load(Ordering::SeqCst) {
            let records = c.poll(Duration::from_millis(200)).await.unwrap();
            let mut s = seen.lock().unwrap();
            s.assignment = c.assignment();
            s.values.extend(
                records
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned()),
            );
        }
        c.close().await.unwrap();
    })
}

async fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sizes(members: &[Arc<Mutex<Seen>>]) -> (Vec<usize>, BTreeSet<TopicPartition>) {
    let mut sizes = Vec::new();
    let mut all = BTreeSet::new();
    for m in members {
        let s = m.lock().unwrap();
        sizes.push(s.assignment.len());
        all.extend(s.assignment.iter().cloned());
    }
    sizes.sort();
    (sizes, all)
}

async fn produce(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let p = Producer::new(ProducerConfig {
        common: common(bootstrap),
        ..ProducerConfig::default()
    })
    .unwrap();
    for i in from..to {
        p.send_nowait(ProducerRecord::new(
            topic,
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(format!("v{i}"))),
        ))
        .await
        .unwrap();
    }
    p.close().await;
}

async fn three_split_six_then_two_take_over(assignor: Assignor) {
    let broker = Broker::start(
        &format!("client-group-{}", assignor.name()),
        &["group.initial.rebalance.delay.ms=0"],
    );
    let topic = "six";
    let admin = Admin::new(common(&broker.addr)).unwrap();
    admin
        .create_topic_if_missing(&NewTopic::new(topic, 6, 1))
        .await
        .unwrap();
    produce(&broker.addr, topic, 0, 600).await;

    let seen: Vec<Arc<Mutex<Seen>>> = (0..3).map(|_| Arc::default()).collect();
    let stops: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            member(
                broker.addr.clone(),
                topic,
                assignor,
                seen[i].clone(),
                stops[i].clone(),
            )
        })
        .collect();
    wait_until("three members hold two partitions each", || {
        let (sizes, all) = sizes(&seen);
        sizes == vec![2, 2, 2] && all.len() == 6
    })
    .await;
    let group = admin.describe_group("splitters").await.unwrap();
    assert_eq!(group.members.len(), 3);
    assert_eq!(group.protocol, assignor.name());

    // One leaves; the other two take over its partitions.
    stops[2].store(true, Ordering::SeqCst);
    tasks.into_iter().nth(2).unwrap().await.unwrap();
    let rest = &seen[..2];
    wait_until("two members hold three partitions each", || {
        let (sizes, all) = sizes(rest);
        sizes == vec![3, 3] && all.len() == 6
    })
    .await;
    produce(&broker.addr, topic, 600, 900).await;
    wait_until("every record read", || {
        let all: BTreeSet<String> = seen
            .iter()
            .flat_map(|s| s.lock().unwrap().values.clone())
            .collect();
        all.len() == 900
    })
    .await;
    for s in &stops {
        s.store(true, Ordering::SeqCst);
    }
    if assignor == Assignor::CooperativeSticky {
        // Cooperative: the two who stayed never gave up a partition they kept.
        for s in rest {
            let s = s.lock().unwrap();
            let revoked: Vec<&RebalanceEvent> = s
                .events
                .iter()
                .filter(|e| matches!(e, RebalanceEvent::Revoked(_)))
                .collect();
            let kept: BTreeSet<&TopicPartition> = s.assignment.iter().collect();
            for e in revoked {
                if let RebalanceEvent::Revoked(tps) = e {
                    assert!(tps.iter().all(|tp| !kept.contains(tp)), "{:?}", s.events);
                }
            }
        }
    }
    let lag: BTreeMap<_, _> = admin
        .group_lag("splitters")
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.partition, l.lag))
        .collect();
    assert_eq!(lag.len(), 6, "{lag:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_group_of_three_splits_six_partitions_and_rebalances_when_one_leaves() {
    three_split_six_then_two_take_over(Assignor::Range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_group_splits_and_rebalances_keeping_owned_partitions() {
    three_split_six_then_two_take_over(Assignor::CooperativeSticky).await;
}

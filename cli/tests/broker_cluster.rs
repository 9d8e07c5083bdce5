//! A three-broker cluster on loopback (every broker also a controller voter, as the
//! `config/` files set it up), driven by clients nobody here wrote: kcat and kafka-python.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{have_kafka_python, have_kcat, kcat, kcat_read, kcat_read_sorted, python, Cluster};

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

/// A partition as `kcat -L -J` shows it.
#[derive(Debug)]
struct PartitionInfo {
    leader: i64,
    replicas: Vec<i64>,
    isrs: Vec<i64>,
}

/// Parses kcat's JSON metadata for one topic by hand: kcat's output is small and flat,
/// and a JSON crate for one test would be a dependency for nothing.
fn partitions(bootstrap: &str, topic: &str) -> BTreeMap<i64, PartitionInfo> {
    let script = r#"
import json, sys
m = json.loads(sys.stdin.read())
for t in m["topics"]:
    for p in t.get("partitions", []):
        print(p["partition"], p["leader"], ",".join(str(r["id"]) for r in p["replicas"]),
              ",".join(str(r["id"]) for r in p["isrs"]))
"#;
    // Not `support::kcat`: a metadata request may time out while a broker is down, and
    // the callers poll.
    let listed = Command::new("kcat")
        .args(["-b", bootstrap, "-L", "-J", "-t", topic, "-m", "5"])
        .output()
        .expect("kcat runs");
    if !listed.status.success() {
        eprintln!(
            "kcat -L failed (retrying): {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        return BTreeMap::new();
    }
    let json = listed.stdout;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("piped"), &json).expect("fed");
    let out = child.wait_with_output().expect("python3 finishes");
    let ids = |s: &str| -> Vec<i64> { s.split(',').filter_map(|x| x.parse().ok()).collect() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((
                f.first()?.parse().ok()?,
                PartitionInfo {
                    leader: f.get(1)?.parse().ok()?,
                    replicas: ids(f.get(2).unwrap_or(&"")),
                    isrs: ids(f.get(3).unwrap_or(&"")),
                },
            ))
        })
        .collect()
}

/// Waits until `ok` holds of the topic's partitions, or panics with what it last saw.
fn wait_for(
    bootstrap: &str,
    topic: &str,
    what: &str,
    ok: impl Fn(&BTreeMap<i64, PartitionInfo>) -> bool,
) -> BTreeMap<i64, PartitionInfo> {
    let start = Instant::now();
    loop {
        let parts = partitions(bootstrap, topic);
        if ok(&parts) {
            return parts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not after 60 s; last seen {parts:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The cluster id a broker reports in Metadata (v12).
fn cluster_id(addr: &str) -> String {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind, ResponseKind};
    let mut raw = support::Raw::connect(addr);
    let ResponseKind::Metadata(resp) = raw.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new()))),
    ) else {
        panic!("Metadata answer");
    };
    resp.cluster_id.map(|c| c.to_string()).unwrap_or_default()
}

fn create_topic(bootstrap: &str, topic: &str, partitions: u32, rf: u32) {
    let script = r#"
import sys
from kafka.admin import KafkaAdminClient, NewTopic
a = KafkaAdminClient(bootstrap_servers=sys.argv[1])
a.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))])
a.close()
"#;
    python(
        script,
        &[bootstrap, topic, &partitions.to_string(), &rf.to_string()],
    );
}

/// The issue's first cluster test: a topic of 6 partitions with 3 replicas each is
/// spread over the three brokers (each leads two), every replica in sync, and 20,000
/// records written with acks=all through one broker are read back whole through another.
#[test]
fn an_rf3_topic_with_six_partitions_is_spread_and_serves_every_record() {
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let cluster = Cluster::start("spread", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "spread", 6, 3);
    let parts = wait_for(
        &bootstrap,
        "spread",
        "six partitions, all replicas in sync",
        |p| p.len() == 6 && p.values().all(|i| i.isrs.len() == 3 && i.leader > 0),
    );
    let mut leads: BTreeMap<i64, usize> = BTreeMap::new();
    for info in parts.values() {
        let mut replicas = info.replicas.clone();
        replicas.sort();
        assert_eq!(replicas, vec![1, 2, 3], "{parts:?}");
        *leads.entry(info.leader).or_default() += 1;
    }
    assert_eq!(
        leads.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "leaders are balanced: {parts:?}"
    );
    let input: String = (0..20_000).map(|i| format!("k{i}\tvalue-{i}\n")).collect();
    let first = &cluster.brokers[0].addr;
    let last = &cluster.brokers[2].addr;
    kcat(
        &[
            "-b",
            first,
            "-t",
            "spread",
            "-P",
            "-K",
            "\t",
            "-X",
            "acks=all",
            "-X",
            "linger.ms=5",
        ],
        input.as_bytes(),
    );
    let got = kcat_read_sorted(last, "spread", "%k\t%s\n");
    let mut want: Vec<String> = input.lines().map(str::to_string).collect();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "every record comes back byte for byte");
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

/// Produces with acks=all while a group of three kafka-python consumers reads, for
/// `seconds`; prints what was acknowledged and what the group saw.
const PRODUCE_AND_CONSUME: &str = r#"
import sys, threading, time
from kafka import KafkaProducer, KafkaConsumer
b, topic, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
acked, seen, owned, errors = set(), set(), {}, []
lock = threading.Lock()
producing = threading.Event(); producing.set()
def on_ack(i):
    with lock:
        acked.add(i)
def produce():
    p = KafkaProducer(bootstrap_servers=b, acks="all", retries=1000, retry_backoff_ms=200,
                      request_timeout_ms=5000, max_in_flight_requests_per_connection=1,
                      linger_ms=5, metadata_max_age_ms=1000, reconnect_backoff_max_ms=500)
    end, i = time.time() + seconds, 0
    while time.time() < end:
        f = p.send(topic, key=str(i).encode(), value=str(i).encode())
        f.add_callback(lambda _md, i=i: on_ack(i))
        f.add_errback(lambda e: errors.append(repr(e)))
        i += 1
        time.sleep(0.003)
    p.flush(timeout=120)
    p.close()
    print("sent", i, flush=True)
    producing.clear()
stop = threading.Event()
def member(n):
    c = KafkaConsumer(topic, bootstrap_servers=b, group_id="survivors", auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500,
                      metadata_max_age_ms=1000, reconnect_backoff_max_ms=500)
    while not stop.is_set():
        batch = c.poll(timeout_ms=200)
        with lock:
            owned[n] = sorted(tp.partition for tp in c.assignment())
            for tp, msgs in batch.items():
                seen.update(int(m.value) for m in msgs)
        if batch:
            try:
                c.commit()
            except Exception as e:
                pass  # a rebalance fenced the commit: the next owner reads again
    c.close()
threads = [threading.Thread(target=member, args=(n,)) for n in range(3)]
for t in threads:
    t.start()
    time.sleep(0.3)  # see broker_groups.rs: kafka-python and simultaneous joins
pt = threading.Thread(target=produce); pt.start()
print("started", flush=True)
deadline = time.time() + seconds + 120
final = {}
while time.time() < deadline:
    time.sleep(0.5)
    with lock:
        # The group as it stands now (members leaving at the end rebalance it again).
        final = {n: list(v) for n, v in owned.items()}
        parts = sorted(p for v in final.values() for p in v)
        done = not producing.is_set() and acked <= seen
        if done and len(final) == 3 and parts == [0, 1, 2]:
            break
stop.set()
for t in threads: t.join()
pt.join()
with lock:
    parts = sorted(p for v in final.values() for p in v)
    print("acked", len(acked), flush=True)
    print("missing", len(acked - seen), sorted(acked - seen)[:20], flush=True)
    print("owners", parts == [0, 1, 2], "members", len(final), "each", sorted(len(v) for v in final.values()), flush=True)
    print("errors", len(errors), errors[:3], flush=True)
    print("acked-list", ",".join(str(i) for i in sorted(acked)), flush=True)
"#;

/// The issue's failover tests in one story: kill -9 a partition leader while producing
/// with acks=all and consuming with a group of three; no acknowledged record is lost and
/// the consumers go on; the killed broker comes back into every ISR; then the whole
/// cluster stops and starts again and every acknowledged record is still there.
#[test]
fn kill_9_of_a_leader_loses_no_acknowledged_record_and_the_cluster_restarts_whole() {
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let mut cluster = Cluster::start("failover", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "acked", 3, 3);
    let parts = wait_for(&bootstrap, "acked", "three partitions in sync", |p| {
        p.len() == 3 && p.values().all(|i| i.isrs.len() == 3 && i.leader > 0)
    });
    let victim = parts[&0].leader as u32;

    let mut client = Command::new("python3")
        .arg("-c")
        .arg(PRODUCE_AND_CONSUME)
        .args([&bootstrap, "acked", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(client.stdout.take().expect("piped")).lines();
    let started = lines.next().expect("a line").expect("utf-8");
    assert_eq!(started, "started");
    std::thread::sleep(Duration::from_secs(4));
    cluster.broker(victim).kill();
    let out: Vec<String> = lines.map(|l| l.expect("utf-8")).collect();
    let status = client.wait().expect("python3 finishes");
    let report = out
        .iter()
        .filter(|l| !l.starts_with("acked-list"))
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("killed broker {victim} (leader of acked-0) 4 s into the run\n{report}");
    assert!(status.success(), "the clients failed:\n{report}");
    let line = |prefix: &str| -> String {
        out.iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{report}"))
            .clone()
    };
    let acked: Vec<u64> = line("acked-list ")
        .trim_start_matches("acked-list ")
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    assert!(acked.len() > 1000, "the producer made progress: {report}");
    assert!(
        line("missing ").starts_with("missing 0 "),
        "the group saw every acknowledged record: {report}"
    );
    assert!(
        line("owners ").starts_with("owners True members 3 each [1, 1, 1]"),
        "each partition owned by exactly one member: {report}"
    );

    // The killed broker comes back and rejoins every ISR.
    cluster.broker(victim).restart();
    wait_for(
        &bootstrap,
        "acked",
        "the restarted broker back in every ISR",
        |p| p.len() == 3 && p.values().all(|i| i.isrs.len() == 3),
    );

    // SIGTERM moves leadership away before the broker exits: right after it is gone
    // (well within broker.session.timeout.ms) no partition names it leader.
    let leader = partitions(&bootstrap, "acked")[&0].leader;
    let status = cluster.broker(leader as u32).stop();
    assert!(
        status.success(),
        "broker {leader} exits cleanly: {status:?}"
    );
    let survivors = cluster
        .brokers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as i64 + 1 != leader)
        .map(|(_, b)| b.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let parts = partitions(&survivors, "acked");
    assert!(
        parts.values().all(|i| i.leader != leader && i.leader > 0),
        "leadership moved off the stopped broker {leader}: {parts:?}"
    );
    // The whole cluster stops (SIGTERM) and starts again; everything is read back.
    for id in (1..=3).filter(|&id| id as i64 != leader) {
        let status = cluster.broker(id).stop();
        assert!(status.success(), "broker {id} exits cleanly: {status:?}");
    }
    cluster.restart_stopped();
    wait_for(
        &bootstrap,
        "acked",
        "leaders after a whole-cluster restart",
        |p| p.len() == 3 && p.values().all(|i| i.leader > 0),
    );
    let read: std::collections::BTreeSet<u64> = kcat_read(&bootstrap, "acked", "%s\n")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|i| !read.contains(i))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost after the restart, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

/// The files under `config/cluster/` (the README's cluster on one machine: three voters
/// and a broker-only node) start a cluster that replicates a topic over all four.
#[test]
fn the_config_files_start_a_working_cluster() {
    if !have_kcat() {
        return;
    }
    // The files' ports are all below 32768, where Linux's ephemeral ports begin: a port
    // in that range may be taken by any outgoing connection of a test running alongside.
    let cluster = Cluster::from_configs(
        "config-files",
        &[
            ("config/cluster/broker-1.properties", "127.0.0.1:19092"),
            ("config/cluster/broker-2.properties", "127.0.0.1:29092"),
            ("config/cluster/broker-3.properties", "127.0.0.1:31092"),
            ("config/cluster/broker-4.properties", "127.0.0.1:32092"),
        ],
    );
    let bootstrap = cluster.bootstrap();
    let input: String = (0..1_000).map(|i| format!("r{i}\n")).collect();
    // Auto-created with the files' num.partitions = 6 and replication factor 3.
    kcat(
        &["-b", &bootstrap, "-t", "from-files", "-P", "-X", "acks=all"],
        input.as_bytes(),
    );
    let parts = wait_for(
        &bootstrap,
        "from-files",
        "6 partitions on 3 replicas",
        |p| p.len() == 6 && p.values().all(|i| i.isrs.len() == 3 && i.leader > 0),
    );
    assert!(parts.values().all(|i| i.replicas.len() == 3), "{parts:?}");
    let hosts: std::collections::BTreeSet<i64> =
        parts.values().flat_map(|i| i.replicas.clone()).collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "the broker-only node hosts replicas too: {parts:?}"
    );
    assert_eq!(
        kcat_read_sorted(&bootstrap, "from-files", "%s\n").len(),
        1_000
    );
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

/// Brokers 4 and 5 run `process.roles=broker`: no voter is configured with them. They
/// follow the metadata log as observers (announcing themselves to the voters), take
/// replicas and leadership, and serve clients; a restarted voter and a restarted
/// broker-only node both find each other again, and a topic created after that through
/// a broker-only node (forwarded to the controller) is served by all five.
#[test]
fn broker_only_nodes_follow_the_quorum_and_host_replicas() {
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let mut cluster = Cluster::start("only", 3, FAST_FAILOVER);
    cluster.add_broker_only("only", 4, FAST_FAILOVER);
    cluster.add_broker_only("only", 5, FAST_FAILOVER);
    let b4 = cluster.broker(4).addr.clone();
    let b5 = cluster.broker(5).addr.clone();
    // One cluster id, the one the first active controller wrote to the log (each node's
    // own meta.properties has its own).
    let ids: Vec<String> = cluster
        .brokers
        .iter()
        .map(|b| cluster_id(&b.addr))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let own: Vec<String> = cluster
        .brokers
        .iter()
        .map(|b| std::fs::read_to_string(b.data.join("meta.properties")).unwrap_or_default())
        .collect();
    assert!(
        own.iter()
            .any(|m| m.contains(&format!("cluster.id={}\n", ids[0]))),
        "{ids:?} is some node's proposal: {own:?}"
    );
    // Created through broker 4: forwarded to the active controller.
    create_topic(&b4, "wide", 10, 3);
    let parts = wait_for(&b5, "wide", "ten partitions, all replicas in sync", |p| {
        p.len() == 10 && p.values().all(|i| i.isrs.len() == 3 && i.leader > 0)
    });
    let mut leads: BTreeMap<i64, usize> = BTreeMap::new();
    let mut hosts: BTreeMap<i64, usize> = BTreeMap::new();
    for info in parts.values() {
        *leads.entry(info.leader).or_default() += 1;
        for r in &info.replicas {
            *hosts.entry(*r).or_default() += 1;
        }
    }
    assert_eq!(
        hosts.values().copied().collect::<Vec<_>>(),
        vec![6; 5],
        "30 replicas spread over five brokers: {parts:?}"
    );
    assert_eq!(
        leads.values().copied().collect::<Vec<_>>(),
        vec![2; 5],
        "every broker leads two: {parts:?}"
    );

    let produce = |via: &str, from: usize, to: usize| -> String {
        let input: String = (from..to).map(|i| format!("k{i}\tv{i}\n")).collect();
        kcat(
            &[
                "-b",
                via,
                "-t",
                "wide",
                "-P",
                "-K",
                "\t",
                "-X",
                "acks=all",
                "-X",
                "linger.ms=5",
            ],
            input.as_bytes(),
        );
        input
    };
    let consume_all = |via: &str| kcat_read_sorted(via, "wide", "%k\t%s\n");
    let mut want: Vec<String> = produce(&b4, 0, 5_000).lines().map(str::to_string).collect();

    // A voter restarts (forgetting the observers it learnt of) and broker 5 restarts.
    cluster.broker(1).kill();
    cluster.broker(5).kill();
    cluster.broker(1).restart();
    cluster.broker(5).restart();
    let b1 = cluster.broker(1).addr.clone();
    wait_for(&b1, "wide", "every replica back in sync", |p| {
        p.len() == 10 && p.values().all(|i| i.isrs.len() == 3)
    });
    want.extend(produce(&b5, 5_000, 10_000).lines().map(str::to_string));
    want.sort();
    for via in [&b1, &b4, &b5] {
        assert!(consume_all(via) == want, "every record through {via}");
    }

    // A topic created through broker 5 after the restarts reaches everyone.
    create_topic(&b5, "later", 5, 2);
    for b in [&b1, &b4, &b5] {
        wait_for(b, "later", "the new topic's partitions have leaders", |p| {
            p.len() == 5 && p.values().all(|i| i.leader > 0)
        });
    }
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

/// Topics deleted while a broker was down: on its return it deletes their directories
/// (it knows them by the topic id in their `partition.metadata`), also when a topic of
/// the same name was created again meanwhile, whose records it never serves as the
/// old one's.
#[test]
fn a_returning_broker_deletes_the_directories_of_topics_deleted_meanwhile() {
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let mut cluster = Cluster::start("stale", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    for name in ["dropped", "recreated"] {
        create_topic(&bootstrap, name, 3, 3);
        wait_for(&bootstrap, name, "in sync", |p| {
            p.len() == 3 && p.values().all(|i| i.isrs.len() == 3)
        });
        let input: String = (0..300).map(|i| format!("old-{i}\n")).collect();
        kcat(
            &["-b", &bootstrap, "-t", name, "-P", "-X", "acks=all"],
            input.as_bytes(),
        );
    }
    let data = cluster.broker(3).data.clone();
    let dirs_of = |topic: &str| -> Vec<String> {
        std::fs::read_dir(&data)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.rsplit_once('-').is_some_and(|(t, _)| t == topic))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(dirs_of("dropped").len(), 3);
    let meta = std::fs::read_to_string(data.join("dropped-0").join("partition.metadata"))
        .expect("partition.metadata written");
    assert!(meta.starts_with("version: 0\ntopic_id: "), "{meta}");

    cluster.broker(3).kill();
    let b1 = cluster.broker(1).addr.clone();
    // Retried: the killed broker may have been the active controller, which kafka-python's
    // admin client asks until Metadata names another.
    let admin = |what: &str, call: &str| {
        let script = format!(
            "import sys\nfrom kafka.admin import KafkaAdminClient, NewTopic\n\
             a = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)\n\
             a.{call}\n"
        );
        let start = Instant::now();
        while !Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(&b1)
            .stderr(Stdio::null())
            .status()
            .expect("python3 runs")
            .success()
        {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    admin("deleted", "delete_topics(['dropped', 'recreated'])");
    // Created again once broker 3 is fenced (gone from Metadata's brokers), so on the
    // two live brokers only.
    let start = Instant::now();
    loop {
        let listed = Command::new("kcat")
            .args(["-b", &b1, "-L", "-m", "5"])
            .output()
            .expect("kcat runs");
        let text = String::from_utf8_lossy(&listed.stdout).to_string();
        if listed.status.success() && !text.contains("broker 3 at") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "broker 3 fenced: {text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    admin("recreated", "create_topics([NewTopic('recreated', 3, 2)])");
    let new: String = (0..50).map(|i| format!("new-{i}\n")).collect();
    kcat(
        &["-b", &b1, "-t", "recreated", "-P", "-X", "acks=all"],
        new.as_bytes(),
    );
    cluster.broker(3).restart();
    let start = Instant::now();
    while !(dirs_of("dropped").is_empty() && dirs_of("recreated").is_empty()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "stale directories left: {:?} {:?}",
            dirs_of("dropped"),
            dirs_of("recreated")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = kcat_read_sorted(&bootstrap, "recreated", "%s\n");
    let mut want: Vec<String> = new.lines().map(str::to_string).collect();
    want.sort();
    assert_eq!(got, want, "only the new topic's records");
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

/// A produce sent to a follower gets NOT_LEADER_OR_FOLLOWER (6), as from Kafka, and
/// stores nothing there; the leader takes the same batch.
#[test]
fn a_produce_to_a_follower_gets_not_leader_or_follower() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestKind, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;
    if !have_kcat() || !have_kafka_python() {
        return;
    }
    let cluster = Cluster::start("follower-produce", 3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "led", 1, 3);
    let parts = wait_for(&bootstrap, "led", "in sync", |p| {
        p.len() == 1 && p[&0].isrs.len() == 3 && p[&0].leader > 0
    });
    let leader = parts[&0].leader;
    let produce = |id: i64| -> i16 {
        let mut raw = support::Raw::connect(&cluster.brokers[id as usize - 1].addr);
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("led")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(support::batch(&["only-once"])))])]);
        let ResponseKind::Produce(resp) = raw.call(ApiKey::Produce, 7, RequestKind::Produce(req))
        else {
            panic!("Produce answer");
        };
        resp.responses[0].partition_responses[0].error_code
    };
    for follower in (1..=3).filter(|&b| b != leader) {
        assert_eq!(produce(follower), 6, "broker {follower} is a follower");
    }
    assert_eq!(produce(leader), 0);
    assert_eq!(
        kcat_read_sorted(&bootstrap, "led", "%s\n"),
        vec!["only-once"]
    );
    for b in &cluster.brokers {
        b.assert_no_panic();
    }
}

//! Real-cluster fault tests: the shipped `eddy` binary as three broker processes, each
//! in a network namespace of its own, real TCP between them, faults injected from
//! outside on a schedule one seed decides, a workload of real clients (Eddy's idempotent
//! producer and group consumer, kafka-python's producer with acks=all) logging what they
//! were told, and a checker over that history. The simulator proves the design; this
//! checks the binary on a real kernel, the way Jepsen tests Kafka.
//!
//! A run ([`run_seed`]): start the cluster, create the topic, start the workload, play
//! the schedule for `faults_until_ms`, heal everything, let the producers finish, wait
//! until the group has read every acknowledged record, stop the consumers, read every
//! partition to its end, and check.

pub mod checker;
pub mod cluster;
pub mod faults;
pub mod history;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster::Cluster;
use faults::Episode;

/// The topic the workload writes.
const TOPIC: &str = "events";
const GROUP: &str = "realfault";
const PARTITIONS: u32 = 3;

/// Broker settings of every run: a dead broker noticed within seconds, acks=all needing
/// two of three copies, every internal topic replicated three times.
pub const BROKER_CONFIG: &[&str] = &[
    "num.partitions=3",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=3",
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "group.initial.rebalance.delay.ms=0",
    "auto.create.topics.enable=false",
];

/// kafka-python's producer: acks=all, no retries and one request in flight (so it never
/// writes a record twice nor out of order; kafka-python is not idempotent), a record a
/// tick, every outcome logged. What is unanswered at the end is unknown.
const PYTHON_PRODUCER: &str = r#"
import sys, time, threading
from kafka import KafkaProducer
bootstrap, topic, partition, name, path, duration_ms, rate = sys.argv[1:8]
partition = int(partition)
duration, rate = float(duration_ms) / 1000.0, float(rate)
out = open(path, "a", buffering=1)
lock = threading.Lock()
pending = set()
closed = [False]
def now():
    return int(time.time() * 1000)
def log(seq, outcome, partition, offset):
    with lock:
        if closed[0] or seq not in pending:
            return
        pending.discard(seq)
        out.write("P\t%d\t%s\t%d\t%s\t%d\t%d\n" % (now(), name, seq, outcome, partition, offset))
producer = None
begin = time.time()
while producer is None:
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", retries=0,
            max_in_flight_requests_per_connection=1, linger_ms=5, request_timeout_ms=5000,
            max_block_ms=5000, api_version=(2, 5))
    except Exception as e:
        print("connect:", e, flush=True)
        time.sleep(0.5)
seq = 0
while time.time() - begin < duration:
    with lock:
        pending.add(seq)
    try:
        f = producer.send(topic, partition=partition, key=name.encode(), value=("%s:%d" % (name, seq)).encode())
        f.add_callback(lambda m, s=seq: log(s, "ok", m.partition, m.offset))
        f.add_errback(lambda e, s=seq: (print(s, e, flush=True), log(s, "unknown", -1, -1)))
    except Exception as e:
        print(seq, "not sent:", e, flush=True)
        log(seq, "failed", -1, -1)
    seq += 1
    wait = begin + seq / rate - time.time()
    if wait > 0:
        time.sleep(wait)
try:
    producer.flush(timeout=30)
except Exception as e:
    print("flush:", e, flush=True)
with lock:
    for s in sorted(pending):
        out.write("P\t%d\t%s\t%d\tunknown\t-1\t-1\n" % (now(), name, s))
    closed[0] = True
try:
    producer.close(timeout=5)
except Exception:
    pass
"#;

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Fault kinds the schedule draws from ([`faults::KINDS`]).
    pub kinds: Vec<String>,
    /// When the first fault may start, and by when the last has ended (ms since the
    /// workload began).
    pub faults_from_ms: u64,
    pub faults_until_ms: u64,
    /// How long the producers send.
    pub produce_ms: u64,
    /// Records a second per producer.
    pub rate: u64,
}

impl Plan {
    pub fn new(seed: u64) -> Plan {
        Plan {
            seed,
            kinds: faults::KINDS.iter().map(|k| k.to_string()).collect(),
            faults_from_ms: 4_000,
            faults_until_ms: 40_000,
            // Past the faults, so that every producer shows it recovers.
            produce_ms: 55_000,
            rate: 40,
        }
    }

    pub fn schedule(&self) -> Vec<Episode> {
        let kinds: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        faults::schedule(self.seed, &kinds, self.faults_from_ms, self.faults_until_ms)
    }
}

/// What a run found.
pub struct Report {
    pub seed: u64,
    pub schedule: Vec<Episode>,
    pub summary: checker::Summary,
    pub violations: Vec<checker::Violation>,
    /// Problems of the run itself (a worker that did not finish), besides the checker's.
    pub notes: Vec<String>,
    pub broker_logs: Vec<String>,
    pub wall: Duration,
}

impl Report {
    /// No rule broken, and every worker did its part (a worker that failed or hung
    /// leaves a history that proves little).
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.notes.is_empty()
    }

    pub fn schedule_text(&self) -> String {
        self.schedule
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect::<String>()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {}: {} in {:.0?}; {} faults:\n{}",
            self.seed,
            if self.passed() { "passed" } else { "FAILED" },
            self.wall,
            self.schedule.len(),
            self.schedule_text()
        )?;
        writeln!(f, "checked {}", self.summary)?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for v in &self.violations {
            write!(f, "{v}")?;
        }
        if !self.passed() {
            writeln!(
                f,
                "REPRODUCE WITH: EDDY_FAULT_SEED={} cargo test -p eddy-tests --test real_faults -- --ignored --nocapture",
                self.seed
            )?;
        }
        Ok(())
    }
}

fn sleep_until(begin: Instant, at_ms: u64) {
    if let Some(wait) = Duration::from_millis(at_ms).checked_sub(begin.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// Runs one seed against a fresh cluster of `eddy` and the workload binary `client`.
pub fn run_seed(eddy: &Path, client: &Path, plan: &Plan) -> Report {
    let started = Instant::now();
    let schedule = plan.schedule();
    eprintln!(
        "== real-cluster faults, seed {}: {} faults\n{}",
        plan.seed,
        schedule.len(),
        schedule
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect::<String>()
    );
    let mut cluster = Cluster::start(eddy, BROKER_CONFIG, &format!("seed{}", plan.seed));
    let bootstrap = cluster.bootstrap();
    let dir = cluster.dir.clone();
    let histories = dir.join("histories");
    std::fs::create_dir_all(&histories).expect("history directory");
    let h = |name: &str| -> String {
        histories
            .join(format!("{name}.history"))
            .display()
            .to_string()
    };
    let mut notes = Vec::new();

    assert!(
        cluster.run_client(
            client,
            &strings(&[
                "create-topic",
                &bootstrap,
                TOPIC,
                &PARTITIONS.to_string(),
                "3"
            ]),
            Duration::from_secs(90),
        ),
        "the topic could not be created:\n{}",
        read_logs(&dir)
    );

    let stop = dir.join("stop");
    let produce_ms = plan.produce_ms.to_string();
    let rate = plan.rate.to_string();
    let mut producers = Vec::new();
    // One producer per partition: e1 and e2 (Eddy's), k1 (kafka-python).
    for (partition, name) in ["e1", "e2"].into_iter().enumerate() {
        producers.push(cluster.spawn_client(
            client,
            &strings(&[
                "produce",
                &bootstrap,
                TOPIC,
                &partition.to_string(),
                name,
                &h(name),
                &produce_ms,
                &rate,
            ]),
            &format!("{name}.log"),
        ));
    }
    let script = dir.join("producer.py");
    std::fs::write(&script, PYTHON_PRODUCER).expect("script written");
    producers.push(cluster.spawn_client(
        Path::new("python3"),
        &strings(&[
            script.to_str().expect("utf-8 path"),
            &bootstrap,
            TOPIC,
            "2",
            "k1",
            &h("k1"),
            &produce_ms,
            &rate,
        ]),
        "k1.log",
    ));
    let mut consumers = Vec::new();
    for name in ["c1", "c2"] {
        consumers.push(cluster.spawn_client(
            client,
            &strings(&[
                "consume",
                &bootstrap,
                TOPIC,
                GROUP,
                name,
                &h(name),
                stop.to_str().expect("utf-8 path"),
            ]),
            &format!("{name}.log"),
        ));
    }

    // The faults.
    let begin = Instant::now();
    for episode in &schedule {
        sleep_until(begin, episode.start_ms);
        eprintln!(
            "[{:>6} ms] start: {}",
            begin.elapsed().as_millis(),
            episode.fault
        );
        let storage_errors = storage_errors(&cluster);
        faults::inject(&mut cluster, episode.fault);
        sleep_until(begin, episode.start_ms + episode.duration_ms);
        eprintln!(
            "[{:>6} ms] heal:  {}",
            begin.elapsed().as_millis(),
            episode.fault
        );
        // A full disk must have bitten, and the broker must have said so: each broker
        // holds a replica of every partition, all written to all the time.
        if let faults::Fault::DiskFull { broker } = episode.fault {
            if storage_errors_of(&cluster, broker) <= storage_errors[broker] {
                notes.push(format!(
                    "broker {} reported no storage error while its data disk was full",
                    broker + 1
                ));
            }
        }
        faults::heal(&mut cluster, episode.fault);
    }
    // Whatever is left is healed (the schedule heals each fault itself; this is the
    // belt to those braces).
    cluster.heal_network();
    for i in 0..cluster.brokers.len() {
        cluster.free_disk(i);
    }
    let healed = history::Op::Healed {
        t_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64,
    };
    std::fs::write(h("harness"), format!("{healed}\n")).expect("harness history");
    eprintln!("[{:>6} ms] healed", begin.elapsed().as_millis());

    // Liveness: producers finish, the group reads everything acknowledged.
    for (p, name) in producers.into_iter().zip(["e1", "e2", "k1"]) {
        if !cluster.wait_worker(p, Duration::from_millis(plan.produce_ms + 90_000)) {
            notes.push(format!(
                "producer {name} failed or did not finish in time (see {name}.log)"
            ));
        }
    }
    eprintln!("[{:>6} ms] producers done", begin.elapsed().as_millis());
    let drain = Instant::now();
    loop {
        let ops = history::read_dir(&histories).unwrap_or_default();
        let missing = unread_acked(&ops);
        if missing == 0 {
            break;
        }
        if drain.elapsed() > Duration::from_secs(120) {
            notes.push(format!(
                "the group had not read {missing} acknowledged records 120 s after healing"
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::write(&stop, b"").expect("stop file");
    for (c, name) in consumers.into_iter().zip(["c1", "c2"]) {
        if !cluster.wait_worker(c, Duration::from_secs(90)) {
            notes.push(format!(
                "consumer {name} failed or did not stop in time (see {name}.log)"
            ));
        }
    }
    eprintln!("[{:>6} ms] consumers done", begin.elapsed().as_millis());
    if !cluster.run_client(
        client,
        &strings(&["verify", &bootstrap, TOPIC, GROUP, &h("final")]),
        Duration::from_secs(120),
    ) {
        notes.push("the final read did not finish".to_string());
    }
    let ops = history::read_dir(&histories).expect("histories read");
    let (summary, mut violations) = checker::check(&ops);
    let mut broker_logs = Vec::new();
    for b in &cluster.brokers {
        let log = std::fs::read_to_string(&b.log).unwrap_or_default();
        if log.contains("panicked") {
            violations.push(checker::Violation {
                rule: "broker-panicked",
                detail: format!("broker {} panicked", b.id),
                ops: Vec::new(),
            });
        }
        broker_logs.push(b.log_tail(30));
    }
    if !violations.is_empty() {
        eprintln!("workload logs:\n{}", read_logs(&dir));
    }
    Report {
        seed: plan.seed,
        schedule,
        summary,
        violations,
        notes,
        broker_logs,
        wall: started.elapsed(),
    }
}

/// How many storage errors (a log dir that failed a write) each broker has reported.
fn storage_errors(cluster: &Cluster) -> Vec<usize> {
    (0..cluster.brokers.len())
        .map(|b| storage_errors_of(cluster, b))
        .collect()
}

fn storage_errors_of(cluster: &Cluster, broker: usize) -> usize {
    std::fs::read_to_string(&cluster.brokers[broker].log)
        .unwrap_or_default()
        .matches("storage failed")
        .count()
}

/// Acknowledged records no group member has read yet.
fn unread_acked(ops: &[history::Op]) -> usize {
    use std::collections::BTreeSet;
    let read: BTreeSet<&str> = ops
        .iter()
        .filter_map(|op| match op {
            history::Op::Read { value, .. } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    ops.iter()
        .filter(|op| {
            matches!(op, history::Op::Produce { outcome: history::Outcome::Ok, producer, seq, .. }
                if !read.contains(history::Op::value_of(producer, *seq).as_str()))
        })
        .count()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The last lines of each workload log in `dir`.
fn read_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "log"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "--- {} (last 15 of {} lines)\n",
            f.display(),
            lines.len()
        ));
        for l in &lines[lines.len().saturating_sub(15)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

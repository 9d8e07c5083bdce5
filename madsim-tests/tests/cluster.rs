//! The shipped broker and client, end to end inside madsim (issue 7).
//!
//! Three `eddy_net::broker::Broker`s (each a broker and a controller voter, KRaft
//! combined mode) run as madsim nodes, each with its own IP; a fourth node runs Eddy's
//! own producer (acks=all, idempotent) and, at the end, a consumer that reads every
//! partition back. Meanwhile a fault schedule drawn from the seed kills and restarts
//! brokers, pauses them, cuts links and whole nodes off, and adds packet loss and
//! latency. Then every fault heals (the liveness phase), the brokers are stopped, every
//! replica's log is read from its files, and the fast simulator's checkers judge what
//! the clients observed against what the brokers hold (`eddy_madsim_tests::history`,
//! which lists the checkers used): acknowledged writes survive, offsets are dense, the
//! replicas agree below the high watermark and hold every committed record, the
//! idempotent producer's records are in the log once and in order (KIP-98), consumers
//! read only committed records, the read-back and the group see every acknowledged
//! record, commits never go back, no two group members own a partition at once, a
//! member that resumes a partition misses nothing after the committed offset it resumed
//! from, and every partition has an owner once healed. The members report their view of
//! the group through eddy-client's `GroupObserver`.
//!
//! A record whose send failed or timed out is *unknown*: it may be in the log or not,
//! but at most once and in order.
//!
//! Run with `scripts/madsim` (RUSTFLAGS="--cfg madsim", its own target dir); one seed
//! with `MADSIM_TEST_SEED=<seed>`, many with `MADSIM_TEST_NUM=<n>`. A failing seed
//! prints the command that reproduces it.
//!
//! Storage: under madsim the brokers' storage runs on Eddy's simulated disk
//! (`eddy_net::disk`), a directory per run; a kill first crashes the node's directory,
//! dropping what it had not synced and sometimes leaving a torn tail, which recovery
//! must cut.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eddy_client::{
    Acks, Admin, CommonConfig, Consumer, ConsumerConfig, GroupEvent, GroupObserver, NewTopic,
    OffsetReset, PositionSource, Producer, ProducerConfig, ProducerRecord, RebalanceEvent,
    TopicPartition,
};
use eddy_madsim_tests::history::{
    self, BrokerState, ClientHistory, Consumed, MemberHistory, Outcome, Rebalance, Renewal,
    ReplicaLog, Resume, Send,
};
use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle};
use madsim::time::{sleep, timeout, Instant};

const BROKERS: u8 = 3;
const CLIENT_PORT: u16 = 9092;
const CONTROLLER_PORT: u16 = 9093;
const TOPIC: &str = "madsim";
const GROUP: &str = "madsim-group";
/// Consumer-group members reading while the faults go on.
const MEMBERS: usize = 2;
/// How long the group has, after the read-back, to commit every partition to its end.
const GROUP_CATCH_UP_MS: u64 = 30_000;
const PARTITIONS: u32 = 3;
/// Records the producer sends, one every `SEND_INTERVAL_MS`, so the workload spans the
/// fault phase.
const RECORDS: u64 = 300;
const SEND_INTERVAL_MS: u64 = 60;
/// Sends waiting for their acknowledgement at once (the producer's own limit is per
/// partition; this bounds the test's bookkeeping).
const IN_FLIGHT_MAX: usize = 64;
/// How long faults are injected, in simulated time.
const FAULT_PHASE_MS: u64 = 20_000;
/// How long the healed cluster has to acknowledge or fail every send and serve every
/// record back.
const LIVENESS_MS: u64 = 120_000;

/// Which faults a scenario draws from.
#[derive(Clone, Copy, Debug)]
enum Faults {
    /// Kill a broker and restart it a little later.
    KillRestart,
    /// Kills and restarts, pauses, clogged links and nodes, packet loss and latency.
    Mixed,
}

fn broker_ip(id: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id))
}

fn bootstrap() -> String {
    (1..=BROKERS)
        .map(|id| format!("{}:{CLIENT_PORT}", broker_ip(id)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The run's directory on the simulated disk, named by the seed alone (so nothing of an
/// earlier seed in this process reaches the run) and emptied first: statics outlive a
/// seed, and checking determinism runs the same seed twice.
fn run_dir(seed: u64) -> PathBuf {
    let dir = PathBuf::from(format!("/eddy-madsim/seed-{seed}"));
    eddy_net::disk::clear(&dir);
    dir
}

fn broker_dir(run_dir: &std::path::Path, id: u8) -> PathBuf {
    run_dir.join(format!("broker-{id}"))
}

fn broker_overrides(id: u8, log_dir: &std::path::Path) -> Vec<String> {
    let voters = (1..=BROKERS)
        .map(|v| format!("{v}@{}:{CONTROLLER_PORT}", broker_ip(v)))
        .collect::<Vec<_>>()
        .join(",");
    let ip = broker_ip(id);
    vec![
        "process.roles=broker,controller".into(),
        format!("node.id={id}"),
        format!("controller.quorum.voters={voters}"),
        format!("listeners=PLAINTEXT://{ip}:{CLIENT_PORT},CONTROLLER://{ip}:{CONTROLLER_PORT}"),
        format!("log.dirs={}", log_dir.display()),
        format!("num.partitions={PARTITIONS}"),
        "default.replication.factor=3".into(),
        "min.insync.replicas=2".into(),
        "offsets.topic.replication.factor=3".into(),
        "auto.create.topics.enable=false".into(),
        // Sync before ack, so an acknowledged write survives any crash (the kills here
        // drop unsynced bytes); with Kafka's default flush policy a write whose every
        // copy crashed before syncing may go, which these checkers do not model.
        "log.flush.interval.messages=1".into(),
    ]
}

/// Starts broker `id` as a madsim node; `restart` runs the same init again (recovering
/// the same log dir), as a process restarted by its supervisor.
fn start_broker(handle: &Handle, id: u8, dir: &std::path::Path) -> NodeHandle {
    let log_dir = broker_dir(dir, id);
    handle
        .create_node()
        .name(format!("broker-{id}"))
        .ip(broker_ip(id))
        .init(move || {
            let overrides = broker_overrides(id, &log_dir);
            async move {
                let (cfg, _warnings) =
                    eddy_net::load_broker_config(None, &overrides).expect("broker config");
                // Differs on every start, as the start time in ms does in `eddy broker`;
                // madsim's clock makes it a function of the seed.
                let incarnation = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_millis() as u64;
                let broker = eddy_net::broker::Broker::start(cfg, incarnation)
                    .await
                    .expect("broker starts");
                broker.serve(std::future::pending()).await;
            }
        })
        .build()
}

fn partition_of(n: u64) -> u32 {
    (n % u64::from(PARTITIONS)) as u32
}

fn value_of(n: u64) -> Bytes {
    Bytes::from(format!("r{n}"))
}

fn number_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()?
        .strip_prefix('r')?
        .parse()
        .ok()
}

/// Simulated ms since `started`.
fn ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

/// Simulated ms from `started` to `t`.
fn ms_at(started: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(started).as_millis() as u64
}

/// Sends `RECORDS` records, each to partition `n % PARTITIONS`; returns each send, with
/// when it was made and what it was told.
async fn produce(producer: &Producer, started: Instant) -> Vec<Send> {
    let mut sends = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let done = |n: u64, at: u64, r: eddy_client::Result<eddy_client::RecordMetadata>| Send {
        number: n,
        part: partition_of(n),
        at,
        outcome: match r {
            Ok(meta) => Outcome::Acked {
                at: ms(started),
                offset: meta.offset,
            },
            Err(_) => Outcome::Unknown { at: ms(started) },
        },
    };
    for n in 0..RECORDS {
        let record = ProducerRecord {
            partition: Some(partition_of(n) as i32),
            ..ProducerRecord::new(TOPIC, None, Some(value_of(n)))
        };
        let at = ms(started);
        match producer.send_nowait(record).await {
            Ok(delivery) => in_flight.push_back((n, at, delivery)),
            Err(e) => sends.push(done(n, at, Err(e))),
        }
        while in_flight.len() >= IN_FLIGHT_MAX {
            let (n, at, delivery) = in_flight.pop_front().expect("non-empty");
            let r = delivery.await;
            sends.push(done(n, at, r));
        }
        sleep(Duration::from_millis(SEND_INTERVAL_MS)).await;
    }
    for (n, at, delivery) in in_flight {
        let r = delivery.await;
        sends.push(done(n, at, r));
    }
    sends.sort_by_key(|s| s.number);
    sends
}

/// Injects faults drawn from the seed for `FAULT_PHASE_MS`, one at a time, and heals
/// each before the next. At most one broker is down or cut off at once, so a majority
/// (and min.insync.replicas=2) stays reachable and the cluster can make progress.
async fn inject_faults(
    handle: Handle,
    brokers: Vec<NodeHandle>,
    dir: PathBuf,
    faults: Faults,
    log: &Mutex<Vec<String>>,
) {
    let net = NetSim::current();
    let start = Instant::now();
    let note = |what: String| {
        log.lock()
            .expect("fault log")
            .push(format!("{:>6}ms {what}", start.elapsed().as_millis()));
    };
    while start.elapsed() < Duration::from_millis(FAULT_PHASE_MS) {
        let gap_ms = thread_rng().gen_range(500..2_000);
        sleep(Duration::from_millis(gap_ms)).await;
        let victim = thread_rng().gen_range(0..brokers.len());
        let id = brokers[victim].id();
        let other = brokers[(victim + 1) % brokers.len()].id();
        let hold = Duration::from_millis(thread_rng().gen_range(300..4_000));
        let kind = match faults {
            Faults::KillRestart => 0,
            Faults::Mixed => thread_rng().gen_range(0..5),
        };
        match kind {
            0 => {
                // The power goes with the process: unsynced bytes are lost, maybe torn.
                let lost =
                    eddy_net::disk::crash(&broker_dir(&dir, victim as u8 + 1), thread_rng().gen());
                note(format!(
                    "kill broker-{} for {hold:?} ({} files lose unsynced bytes, {} of them keep a torn tail)",
                    victim + 1,
                    lost.reverted + lost.torn,
                    lost.torn
                ));
                handle.kill(id);
                sleep(hold).await;
                handle.restart(id);
            }
            1 => {
                note(format!("pause broker-{} for {hold:?}", victim + 1));
                handle.pause(id);
                sleep(hold).await;
                handle.resume(id);
            }
            2 => {
                note(format!("clog broker-{} for {hold:?}", victim + 1));
                net.clog_node(id);
                sleep(hold).await;
                net.unclog_node(id);
            }
            3 => {
                note(format!(
                    "clog the links between broker-{} and its neighbour for {hold:?}",
                    victim + 1
                ));
                net.clog_link(id, other);
                net.clog_link(other, id);
                sleep(hold).await;
                net.unclog_link(id, other);
                net.unclog_link(other, id);
            }
            _ => {
                let loss = thread_rng().gen_range(0.01..0.2);
                note(format!(
                    "packet loss {loss:.2}, latency 1..80ms for {hold:?}"
                ));
                net.update_config(|c| {
                    c.packet_loss_rate = loss;
                    c.send_latency = Duration::from_millis(1)..Duration::from_millis(80);
                });
                sleep(hold).await;
                net.update_config(|c| *c = madsim::net::Config::default());
            }
        }
    }
}

/// What the read-back consumer found: every record it read, and each partition's high
/// watermark when it reached it.
struct ReadBack {
    records: Vec<Consumed>,
    high_watermarks: BTreeMap<u32, i64>,
}

/// Reads every partition from the beginning to its high watermark.
async fn read_back(started: Instant) -> Result<ReadBack, String> {
    let mut consumer = Consumer::new(ConsumerConfig {
        common: common_config("reader"),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    consumer.assign(tps.clone());
    let deadline = Instant::now() + Duration::from_millis(LIVENESS_MS);
    // Leaders may still be moving just after the faults heal: retry until the bound.
    while let Err(e) = consumer.seek_to_beginning(&tps).await {
        if Instant::now() >= deadline {
            return Err(format!(
                "liveness: the healed cluster could not list the partitions' start offsets within {LIVENESS_MS} ms: {e}"
            ));
        }
        sleep(Duration::from_millis(500)).await;
    }
    let mut read: Vec<Consumed> = Vec::new();
    let mut high_watermarks = BTreeMap::new();
    loop {
        let records = consumer
            .poll(Duration::from_millis(500))
            .await
            .unwrap_or_default();
        let at = ms(started);
        for r in records {
            read.push(Consumed {
                at,
                part: r.partition as u32,
                offset: r.offset,
                record: r.value.as_deref().and_then(number_of),
            });
        }
        let mut done = true;
        for tp in &tps {
            let position = consumer.position(tp).await.unwrap_or(-1);
            match consumer.high_watermark(tp) {
                Some(hw) if position >= hw => {
                    high_watermarks.insert(tp.partition, hw);
                }
                _ => done = false,
            }
        }
        if done {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "liveness: the healed cluster did not serve every partition up to its high watermark within {LIVENESS_MS} ms; {} records read",
                read.len()
            ));
        }
    }
    let _ = consumer.close().await;
    Ok(ReadBack {
        records: read,
        high_watermarks,
    })
}

/// A member of the group `GROUP`: polls, and after each poll commits the offsets after
/// what it read, until `stop` says the run is over. A commit that fails (the coordinator
/// moving, a timeout) is tried again after the next poll for the partitions the member
/// has held since, as an application committing its position does: otherwise a lost
/// commit of the last records read is never retried and the group stops short of the
/// end (mixed-faults seeds 17, 27, 39, 49, ...). After a rebalance the offsets waiting
/// are dropped: the partitions restart from the committed offsets, and another member
/// may have committed past them meanwhile.
async fn group_member(
    member: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<MemberHistory>>,
) {
    log.lock().expect("member log").joined_at = ms(started);
    let mut consumer = Consumer::new(ConsumerConfig {
        common: common_config(&format!("member-{member}")),
        group_id: Some(GROUP.to_string()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        max_poll_interval_ms: 30_000,
        ..ConsumerConfig::default()
    })
    .expect("consumer");
    consumer.subscribe([TOPIC]).expect("subscribe");
    let observer_log = Arc::clone(&log);
    consumer.set_group_observer(GroupObserver::new(move |event| {
        let at = ms(started);
        let mut log = observer_log.lock().expect("member log");
        match event {
            GroupEvent::SessionRenewed {
                coordinator,
                sent_at,
                session_until,
                ..
            } => log.renewals.push(Renewal {
                at,
                coordinator: *coordinator as u32,
                sent_at: ms_at(started, *sent_at),
                until: ms_at(started, *session_until),
            }),
            GroupEvent::Joined { generation, .. } => log.joins.push((at, *generation)),
            GroupEvent::SessionExpired {
                partitions,
                session_ended_at,
            } => log.rebalances.push((
                at,
                Rebalance::Lost {
                    parts: partitions.iter().map(|tp| tp.partition).collect(),
                    until: ms_at(started, *session_ended_at),
                },
            )),
            GroupEvent::PositionResolved {
                partition,
                offset,
                source,
            } => {
                let (committed, fetch_sent_at) = match source {
                    PositionSource::Committed { fetch_sent_at } => (true, Some(*fetch_sent_at)),
                    PositionSource::Reset { fetch_sent_at } => (false, *fetch_sent_at),
                };
                log.resumes.push(Resume {
                    at,
                    part: partition.partition,
                    offset: *offset,
                    committed,
                    fetch_sent_at: fetch_sent_at.map_or(at, |t| ms_at(started, t)),
                });
            }
            GroupEvent::CommitSent { offsets, .. } => {
                for (tp, offset) in offsets {
                    log.commits_sent.push((at, tp.partition, *offset));
                }
            }
            _ => {}
        }
    }));
    let rebalanced = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&rebalanced);
    let listener_log = Arc::clone(&log);
    consumer.set_rebalance_listener(move |event| {
        flag.store(true, Ordering::Relaxed);
        let parts = |tps: &[TopicPartition]| tps.iter().map(|tp| tp.partition).collect();
        let event = match event {
            RebalanceEvent::Assigned(tps) => Rebalance::Assigned(parts(tps)),
            RebalanceEvent::Revoked(tps) => Rebalance::Revoked(parts(tps)),
        };
        listener_log
            .lock()
            .expect("member log")
            .rebalances
            .push((ms(started), event));
    });
    // The offsets after what was read, not yet acknowledged as committed.
    let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(records) = consumer.poll(Duration::from_millis(200)).await else {
            sleep(Duration::from_millis(100)).await;
            continue;
        };
        if rebalanced.swap(false, Ordering::Relaxed) {
            next.clear();
        }
        {
            let mut log = log.lock().expect("member log");
            let at = ms(started);
            for r in &records {
                log.consumed.push(Consumed {
                    at,
                    part: r.partition as u32,
                    offset: r.offset,
                    record: r.value.as_deref().and_then(number_of),
                });
                next.insert(TopicPartition::new(TOPIC, r.partition as u32), r.offset + 1);
            }
        }
        if !next.is_empty() && consumer.commit_offsets(&next).await.is_ok() {
            let at = ms(started);
            let mut log = log.lock().expect("member log");
            for (tp, offset) in std::mem::take(&mut next) {
                log.commits.push((at, tp.partition, offset));
            }
        }
    }
    let _ = timeout(Duration::from_secs(5), consumer.close()).await;
}

fn common_config(client_id: &str) -> CommonConfig {
    CommonConfig {
        bootstrap_servers: bootstrap(),
        client_id: client_id.to_string(),
        request_timeout_ms: 5_000,
        retry_backoff_ms: 100,
    }
}

/// Simulated time since the run began, for log lines.
struct SimTime(Instant);

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>9.3}s", self.0.elapsed().as_secs_f64())
    }
}

/// `EDDY_LOG=<filter>` (as for `eddy broker`) prints every node's tracing with the
/// simulated time; off by default.
fn init_tracing() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime(Instant::now()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// One run of a scenario: returns a summary of everything the clients observed, which
/// the determinism test compares between two runs of the same seed.
async fn scenario(faults: Faults) -> String {
    init_tracing();
    let handle = Handle::current();
    let seed = handle.seed();
    let dir = run_dir(seed);
    let run = dir.clone();
    let brokers: Vec<NodeHandle> = (1..=BROKERS)
        .map(|id| start_broker(&handle, id, &dir))
        .collect();
    let broker_ids: Vec<_> = brokers.iter().map(NodeHandle::id).collect();
    let main_handle = handle.clone();
    let client = handle
        .create_node()
        .name("client")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)))
        .build();
    let fault_log = std::sync::Arc::new(Mutex::new(Vec::new()));
    let fault_log2 = fault_log.clone();
    let sim_started = Instant::now();
    let result = client
        .spawn(async move {
            let admin = Admin::new(common_config("admin")).expect("admin");
            let topic = NewTopic::new(TOPIC, PARTITIONS as i32, 3);
            let created = timeout(Duration::from_secs(60), async {
                loop {
                    if admin.create_topic_if_missing(&topic).await.is_ok()
                        && admin
                            .wait_for_leaders(TOPIC, Duration::from_secs(10))
                            .await
                            .is_ok()
                    {
                        break;
                    }
                    sleep(Duration::from_millis(500)).await;
                }
            })
            .await;
            admin.close().await;
            if created.is_err() {
                return Err(
                    "liveness: the topic was not created within 60 s of a fault-free start"
                        .to_string(),
                );
            }

            let producer = Producer::new(ProducerConfig {
                common: common_config("producer"),
                acks: Acks::All,
                enable_idempotence: true,
                delivery_timeout_ms: 60_000,
                linger_ms: 5,
                ..ProducerConfig::default()
            })
            .expect("producer");
            let faults_task = madsim::task::spawn(async move {
                inject_faults(handle, brokers, run, faults, &fault_log2).await;
            });
            let stop = Arc::new(AtomicBool::new(false));
            let member_logs: Vec<Arc<Mutex<MemberHistory>>> =
                (0..MEMBERS).map(|_| Arc::default()).collect();
            let members: Vec<_> = member_logs
                .iter()
                .enumerate()
                .map(|(m, log)| {
                    madsim::task::spawn(tracing::Instrument::instrument(
                        group_member(m, sim_started, Arc::clone(&stop), Arc::clone(log)),
                        tracing::info_span!("member", m),
                    ))
                })
                .collect();
            let sends = produce(&producer, sim_started).await;
            // The liveness phase: every fault healed.
            faults_task.await.expect("fault schedule");
            let healed_at = ms(sim_started);
            let _ = timeout(Duration::from_millis(LIVENESS_MS), producer.flush()).await;
            producer.close().await;
            let read = read_back(sim_started).await?;
            let read_at = ms(sim_started);
            // The group catches up with what the read-back found, then stops.
            sleep(Duration::from_millis(GROUP_CATCH_UP_MS)).await;
            stop.store(true, Ordering::Relaxed);
            let end_at = ms(sim_started);
            for member in members {
                let _ = member.await;
            }
            let members: Vec<MemberHistory> = member_logs
                .iter()
                .map(|l| std::mem::take(&mut *l.lock().expect("member log")))
                .collect();
            let leaders = leaders_at_end(&read.high_watermarks).await?;
            let clients = ClientHistory {
                sends,
                read_back: read.records,
                members,
                healed_at,
                end_at,
                // What the healed cluster had: the read-back owes every record acked
                // before it ended, and so does the group, which then had the catch-up.
                liveness_bound_ms: end_at - read_at,
            };
            Ok((clients, leaders))
        })
        .await
        .expect("the client node is never killed");
    let (clients, leaders) = match result {
        Ok(r) => r,
        Err(e) => {
            print_faults(seed, &fault_log);
            panic!(
                "seed {seed} ({faults:?}): {e}\nreproduce with: MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 scripts/madsim {}",
                test_name(faults)
            )
        }
    };
    // What the brokers hold: every replica's log, read from its files once the brokers
    // are stopped (killed, but the disk keeps what they wrote: nothing is torn).
    for id in &broker_ids {
        main_handle.kill(*id);
    }
    let brokers = BrokerState {
        partitions: PARTITIONS,
        brokers: u32::from(BROKERS),
        min_insync_replicas: 2,
        logs: replica_logs(&dir),
        leaders,
    };
    let violations = history::check(&clients, &brokers, GROUP, TOPIC);
    let consumed: usize = clients.members.iter().map(|m| m.consumed.len()).sum();
    let commits: usize = clients.members.iter().map(|m| m.commits.len()).sum();
    let acked = clients
        .sends
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Acked { .. }))
        .count();
    let held: usize = brokers.logs.values().map(Vec::len).sum();
    let renewals: usize = clients.members.iter().map(|m| m.renewals.len()).sum();
    let resumes: usize = clients.members.iter().map(|m| m.resumes.len()).sum();
    let sessions_lost = clients
        .members
        .iter()
        .flat_map(|m| &m.rebalances)
        .filter(|(_, r)| matches!(r, Rebalance::Lost { .. }))
        .count();
    let sim_ms = sim_started.elapsed().as_millis();
    eddy_net::disk::clear(&dir);
    if !violations.is_empty() {
        print_faults(seed, &fault_log);
        panic!(
            "seed {seed} ({faults:?}): {} violations (the group read {consumed} records and had {commits} offset commits acknowledged):\n  {}\nreproduce with: MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 scripts/madsim {}",
            violations.len(),
            violations.join("\n  "),
            test_name(faults),
        );
    }
    print_faults(seed, &fault_log);
    eprintln!(
        "seed {seed} ({faults:?}): {acked}/{RECORDS} acked, {held} records held by the replicas, group: {consumed} records read, {commits} offsets committed, {resumes} partitions resumed, {renewals} sessions renewed, {sessions_lost} lost; {} faults, {sim_ms} simulated ms",
        fault_log.lock().expect("fault log").len()
    );
    let summary = format!(
        "clients={clients:?} brokers={brokers:?} faults={:?} sim_ms={sim_ms}",
        fault_log.lock().expect("fault log")
    );
    // `DefaultHasher::new()` has fixed keys: the same summary hashes the same in every
    // process, so scripts/madsim compares two processes' runs of one seed by this line.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&summary, &mut hasher);
    eprintln!(
        "seed {seed} ({faults:?}) trace hash: {:016x}",
        std::hash::Hasher::finish(&hasher)
    );
    summary
}

/// Each partition's leader at the end, from the metadata, with the high watermark the
/// read-back consumer reached.
async fn leaders_at_end(
    high_watermarks: &BTreeMap<u32, i64>,
) -> Result<BTreeMap<u32, (u32, i64)>, String> {
    let admin = Admin::new(common_config("admin-end")).expect("admin");
    let deadline = Instant::now() + Duration::from_millis(LIVENESS_MS);
    let leaders = loop {
        let described = admin.describe_topics(&[TOPIC.to_string()]).await;
        let leaders: Option<BTreeMap<u32, (u32, i64)>> = described.ok().and_then(|topics| {
            let topic = topics.into_iter().find(|t| t.name == TOPIC)?;
            topic
                .partitions
                .iter()
                .map(|p| {
                    let hw = *high_watermarks.get(&(p.partition as u32))?;
                    (p.leader > 0).then_some((p.partition as u32, (p.leader as u32, hw)))
                })
                .collect()
        });
        if let Some(leaders) = leaders.filter(|l| l.len() == PARTITIONS as usize) {
            break Ok(leaders);
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "liveness: the healed cluster did not name a leader for every partition within {LIVENESS_MS} ms"
            ));
        }
        sleep(Duration::from_millis(500)).await;
    };
    admin.close().await;
    leaders
}

/// Every broker's log of every partition of the topic, read through the storage
/// layer's own recovery (`PartitionDir::open`, which walks and CRC-checks the segments on
/// the simulated disk): (offset, record named) per (broker, partition).
fn replica_logs(dir: &std::path::Path) -> BTreeMap<(u32, u32), ReplicaLog> {
    let config = eddy_net::storage::LogConfig {
        segment_bytes: 1 << 30,
        roll_ms: 7 * 24 * 3_600_000,
        index_interval_bytes: 4_096,
        index_size_max_bytes: 10 << 20,
    };
    let mut logs = BTreeMap::new();
    for id in 1..=BROKERS {
        for p in 0..PARTITIONS {
            let tp = eddy_core::TopicPartition::new(TOPIC, p);
            let path = broker_dir(dir, id).join(eddy_net::storage::partition_dir_name(&tp));
            let (_, recovered) = eddy_net::storage::PartitionDir::open(path, config, None)
                .unwrap_or_else(|e| panic!("broker-{id}'s log of {TOPIC}-{p} reads back: {e}"));
            let mut log = Vec::new();
            for batch in &recovered.batches {
                let base = eddy_core::batch::BatchHeader::parse(batch)
                    .expect("recovery returns whole batches")
                    .base_offset;
                for r in eddy_core::batch::records(batch).expect("uncompressed batches") {
                    log.push((
                        base + i64::from(r.offset_delta),
                        r.value.and_then(number_of),
                    ));
                }
            }
            logs.insert((u32::from(id), p), log);
        }
    }
    logs
}

fn print_faults(seed: u64, log: &Mutex<Vec<String>>) {
    eprintln!("seed {seed}: faults injected:");
    for line in log.lock().expect("fault log").iter() {
        eprintln!("  {line}");
    }
}

fn test_name(faults: Faults) -> &'static str {
    match faults {
        Faults::KillRestart => "acked_writes_survive_broker_kills",
        Faults::Mixed => "acked_writes_survive_mixed_faults",
    }
}

#[madsim::test]
async fn acked_writes_survive_broker_kills() {
    scenario(Faults::KillRestart).await;
}

#[madsim::test]
async fn acked_writes_survive_mixed_faults() {
    scenario(Faults::Mixed).await;
}

/// The same seed twice in one process gives the same run: madsim compares every random
/// draw of the two runs (`check_determinism`), and the clients' observations must be
/// equal too.
///
/// This failed (about 20 simulated s in) until the broker stopped using a
/// `tokio::sync::watch` for "serving clients yet": a watch receiver waits in one of 8
/// queues picked by tokio's thread-local RNG, which tokio seeds from a process-wide
/// counter, so the order connections woke in when a (re)started broker began serving
/// depended on how many tokio RNGs the process had seeded before — a second run in the
/// process, or a tokio runtime built first (madsim's `Builder` builds one), ran the seed
/// differently. `eddy_net::broker::Serving` wakes waiters in order instead.
#[test]
fn same_seed_same_run() {
    static SUMMARIES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let seed: u64 = std::env::var("MADSIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), || async {
        let summary = scenario(Faults::Mixed).await;
        SUMMARIES.lock().expect("summaries").push(summary);
    });
    let summaries = SUMMARIES.lock().expect("summaries");
    assert_eq!(summaries.len(), 2);
    assert!(
        summaries[0] == summaries[1],
        "seed {seed}: two runs observed different things:\n{}\n{}\nreproduce with: MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 scripts/madsim same_seed_same_run",
        summaries[0],
        summaries[1]
    );
}

/// Runs `seed` of a scenario exactly as `#[madsim::test]` runs it (its `Builder`, which
/// runs the seed on a thread of its own). A runtime made and run on the test's own
/// thread used to run some seeds differently (seed 185 passed that way before the fix
/// it guards; the cause was the broker's watch channel, see `same_seed_same_run`); the
/// Builder keeps these tests on the path scripts/madsim takes.
fn run_seed<F: std::future::Future<Output = String> + 'static>(seed: u64, run: fn() -> F) {
    madsim::runtime::Builder {
        seed,
        count: 1,
        jobs: 1,
        config: madsim::Config::default(),
        time_limit: None,
        check: false,
        allow_system_thread: false,
    }
    .run(run);
}

/// Seeds that once failed, each with what the bug was.
///
/// Seed 34 of the mixed faults: broker-1 was killed 0.9 s after its first start, before
/// anything synced `meta.properties` (written with a plain `fs::write`); the simulated
/// disk dropped the unsynced bytes but kept a torn prefix ending in `node.id=`, and the
/// restarted broker refused to start ("the data belongs to node.id=, but this broker is
/// node.id=1"). `meta.properties` and `partition.metadata` are now written through a
/// synced temporary file and a rename (`disk::write_atomically`).
#[test]
fn regression_seed_34_torn_meta_properties() {
    run_seed(34, || scenario(Faults::Mixed));
}

/// Seed 171 of the kill scenario, the first seed seen where the consumer group never
/// read or committed (13 more of seeds 51..=200 failed alike). Cause, found with
/// EDDY_LOG on seeds 76, 179 and 185 of the same failure on a later main (the pipelined
/// produce path changed every trace, and seed 171 no longer reaches the bug): a member
/// joined, the group's coordinator moved (its `__consumer_offsets` leader was killed),
/// and the member's OffsetFetch, answered NOT_COORDINATOR, went on to the old broker
/// forever — eddy-client forgot the coordinator after JoinGroup, SyncGroup and
/// OffsetCommit errors but not after OffsetFetch's — while its heartbeats, which look the
/// coordinator up on their own, kept it in the group holding its partitions. Fixed in
/// `Membership::committed` (Kafka's `markCoordinatorUnknown`).
#[test]
fn regression_seed_171_group_never_commits() {
    run_seed(171, || scenario(Faults::KillRestart));
}

/// Seed 185 of the kill scenario: the member assigned partition 2 never read it, asking
/// the old coordinator for its committed offsets forever (see seed 171).
#[test]
fn regression_seed_185_offset_fetch_after_the_coordinator_moved() {
    run_seed(185, || scenario(Faults::KillRestart));
}

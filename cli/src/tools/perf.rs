//! `eddy perf produce` and `eddy perf consume`: kafka-producer-perf-test and
//! kafka-consumer-perf-test. The producer side prints what Kafka's tool prints — a
//! progress line every `--reporting-interval-ms` and a final line with records/s, MB/s
//! and latency (avg, max, p50, p95, p99, p99.9), latency being the time from `send` to
//! acknowledgement of each record.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use eddy_client::records::parse_compression;
use eddy_client::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use tokio::time::Instant;

use super::{json, Connect};

#[derive(Args)]
pub(crate) struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Produce --num-records records of --record-size bytes as fast as allowed.
    Produce(ProducePerf),
    /// Consume --messages records and report the rate.
    Consume(ConsumePerf),
}

#[derive(Args)]
struct ProducePerf {
    #[command(flatten)]
    connect: Connect,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    num_records: u64,
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Records per second at most; -1 for no limit.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    throughput: i64,
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 5_000)]
    reporting_interval_ms: u64,
    /// Print the final figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ConsumePerf {
    #[command(flatten)]
    connect: Connect,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    messages: u64,
    /// Consume in this group (default: every partition, from the beginning, no group).
    #[arg(long)]
    group: Option<String>,
    /// Give up when no record has come for this long.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[arg(long, default_value_t = 5_000)]
    reporting_interval_ms: u64,
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PerfArgs) -> ExitCode {
    match args.command {
        PerfCommand::Produce(p) => super::run(produce(p)),
        PerfCommand::Consume(c) => super::run(consume(c)),
    }
}

/// Latencies of acknowledged records, in microseconds, and failures.
#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    window_start: usize,
    bytes: u64,
    failed: u64,
    first_error: Option<String>,
}

fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

async fn produce(args: ProducePerf) -> Result<(), String> {
    let acks =
        Acks::parse(&args.acks).ok_or_else(|| format!("--acks {}: use 0, 1 or all", args.acks))?;
    let compression = parse_compression(&args.compression).ok_or_else(|| {
        format!(
            "--compression {}: use none, gzip, snappy, lz4 or zstd",
            args.compression
        )
    })?;
    let producer = Producer::new(ProducerConfig {
        common: args.connect.common(),
        acks,
        compression,
        batch_size: args.batch_size,
        linger_ms: args.linger_ms,
        enable_idempotence: acks == Acks::All,
        ..ProducerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    // Kafka's tool sends random uppercase letters; a fixed pseudo-random payload keeps
    // compression honest without a generator per record.
    let mut seed: u32 = 0x2545_f491;
    let payload: Bytes = (0..args.record_size)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            b'A' + ((seed >> 24) % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let interval = Duration::from_millis(args.reporting_interval_ms);
    let mut next_report = start + interval;
    let mut window = (start, 0usize);
    for i in 0..args.num_records {
        let sent_at = Instant::now();
        let record = ProducerRecord::new(args.topic.clone(), None, Some(payload.clone()));
        let stats2 = stats.clone();
        let size = payload.len() as u64;
        producer
            .send_with_callback(record, move |r| {
                let mut s = stats2.lock().expect("stats");
                match r {
                    Ok(_) => {
                        s.latencies_us.push(sent_at.elapsed().as_micros() as u64);
                        s.bytes += size;
                    }
                    Err(e) => {
                        s.failed += 1;
                        s.first_error.get_or_insert(e.to_string());
                    }
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if args.throughput > 0 {
            let due = start + Duration::from_secs_f64((i + 1) as f64 / args.throughput as f64);
            tokio::time::sleep_until(due).await;
        }
        let now = Instant::now();
        if now >= next_report {
            window = report_window(&stats, window, now);
            next_report = now + interval;
        }
    }
    producer.flush().await;
    let elapsed = start.elapsed().as_secs_f64();
    producer.close().await;
    let s = stats.lock().expect("stats");
    let mut l = s.latencies_us.clone();
    l.sort_unstable();
    let n = l.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        l[((p * n as f64) as usize).min(n - 1)] as f64 / 1000.0
    };
    let avg_ms = if n == 0 {
        0.0
    } else {
        l.iter().sum::<u64>() as f64 / n as f64 / 1000.0
    };
    let max_ms = l.last().copied().unwrap_or(0) as f64 / 1000.0;
    let rate = n as f64 / elapsed;
    let mb_s = mb(s.bytes as f64) / elapsed;
    if args.json {
        println!(
            "{}",
            json::object(&[
                ("records", n.to_string()),
                ("failed", s.failed.to_string()),
                ("seconds", format!("{elapsed:.3}")),
                ("records_per_sec", format!("{rate:.1}")),
                ("mb_per_sec", format!("{mb_s:.2}")),
                ("latency_avg_ms", format!("{avg_ms:.2}")),
                ("latency_max_ms", format!("{max_ms:.2}")),
                ("latency_p50_ms", format!("{:.2}", pct(0.50))),
                ("latency_p95_ms", format!("{:.2}", pct(0.95))),
                ("latency_p99_ms", format!("{:.2}", pct(0.99))),
                ("latency_p999_ms", format!("{:.2}", pct(0.999))),
            ])
        );
    } else {
        println!(
            "{n} records sent, {rate:.1} records/sec ({mb_s:.2} MB/sec), {avg_ms:.2} ms avg latency, \
             {max_ms:.2} ms max latency, {:.0} ms 50th, {:.0} ms 95th, {:.0} ms 99th, {:.0} ms 99.9th.",
            pct(0.50),
            pct(0.95),
            pct(0.99),
            pct(0.999)
        );
    }
    match &s.first_error {
        Some(e) => Err(format!("{} records failed; the first: {e}", s.failed)),
        None => Ok(()),
    }
}

/// Prints one progress line for the records acknowledged since the last one.
fn report_window(
    stats: &Mutex<Stats>,
    (since, from): (Instant, usize),
    now: Instant,
) -> (Instant, usize) {
    let mut s = stats.lock().expect("stats");
    let window = &s.latencies_us[from..];
    let n = window.len();
    let secs = now.duration_since(since).as_secs_f64().max(1e-9);
    let avg = if n == 0 {
        0.0
    } else {
        window.iter().sum::<u64>() as f64 / n as f64 / 1000.0
    };
    let max = window.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
    let rate = n as f64 / secs;
    let avg_size = if s.latencies_us.is_empty() {
        0.0
    } else {
        s.bytes as f64 / s.latencies_us.len() as f64
    };
    eprintln!(
        "{n} records sent, {rate:.1} records/sec ({:.2} MB/sec), {avg:.1} ms avg latency, {max:.1} ms max latency.",
        mb(rate * avg_size)
    );
    let to = s.latencies_us.len();
    s.window_start = to;
    (now, to)
}

async fn consume(args: ConsumePerf) -> Result<(), String> {
    let e = |e: eddy_client::ClientError| e.to_string();
    let mut consumer = Consumer::new(ConsumerConfig {
        common: args.connect.common(),
        group_id: args.group.clone(),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: args.group.is_some(),
        max_poll_records: 10_000,
        ..ConsumerConfig::default()
    })
    .map_err(e)?;
    if args.group.is_some() {
        consumer.subscribe([args.topic.clone()]).map_err(e)?;
    } else {
        let meta = consumer
            .network()
            .topic_or_fetch(&args.topic, false)
            .await
            .map_err(e)?;
        let tps: Vec<TopicPartition> = (0..meta.partitions.len() as u32)
            .map(|p| TopicPartition::new(args.topic.clone(), p))
            .collect();
        consumer.assign(tps.clone());
        consumer.seek_to_beginning(&tps).await.map_err(e)?;
    }
    let start = Instant::now();
    let interval = Duration::from_millis(args.reporting_interval_ms);
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut last_record = Instant::now();
    let mut next_report = start + interval;
    while count < args.messages {
        let records = consumer.poll(Duration::from_millis(500)).await.map_err(e)?;
        let now = Instant::now();
        if records.is_empty() {
            if now.duration_since(last_record) >= Duration::from_millis(args.timeout_ms) {
                eprintln!(
                    "No record for {} ms; stopping after {count} records.",
                    args.timeout_ms
                );
                break;
            }
        } else {
            last_record = now;
        }
        for r in &records {
            count += 1;
            bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64
                + r.key.as_ref().map_or(0, |k| k.len()) as u64;
        }
        if now >= next_report {
            let secs = now.duration_since(start).as_secs_f64();
            eprintln!(
                "{count} records consumed, {:.1} records/sec ({:.2} MB/sec).",
                count as f64 / secs,
                mb(bytes as f64) / secs
            );
            next_report = now + interval;
        }
    }
    let secs = last_record.duration_since(start).as_secs_f64().max(1e-9);
    consumer.close().await.map_err(e)?;
    if args.json {
        println!(
            "{}",
            json::object(&[
                ("records", count.to_string()),
                ("mb", format!("{:.4}", mb(bytes as f64))),
                ("seconds", format!("{secs:.3}")),
                ("records_per_sec", format!("{:.1}", count as f64 / secs)),
                ("mb_per_sec", format!("{:.4}", mb(bytes as f64) / secs)),
            ])
        );
    } else {
        println!("data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, seconds");
        println!(
            "{:.4}, {:.4}, {count}, {:.1}, {secs:.3}",
            mb(bytes as f64),
            mb(bytes as f64) / secs,
            count as f64 / secs
        );
    }
    Ok(())
}

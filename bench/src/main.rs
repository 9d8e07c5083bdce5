//! `eddy-bench`: the end-to-end benchmark (issue 9). It measures this machine's limits
//! (see [`limits`]), then starts release `eddy broker` processes itself — one broker,
//! then three with RF 3 — and drives them with `eddy perf produce` and `eddy perf
//! consume`: acks=1 and acks=all, 100-byte and 1 KiB records, a throughput run and a
//! latency run at a fixed rate for each. It writes BENCHMARKS.md (tables, ratios to the
//! limits, the command, the machine) and the plot, all from this one run.
//!
//! Run it as `scripts/bench`; the criterion benchmarks of the core and the simulator are
//! `cargo bench`.

mod cluster;
mod limits;
mod perf;
mod plot;
mod report;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use report::{Config, Row};

/// A megabyte as `eddy perf` counts it (Kafka's tools divide by 1024 × 1024).
pub(crate) const MB: f64 = 1024.0 * 1024.0;

/// Hand-written text below this line in BENCHMARKS.md (profiles, analysis) is kept when
/// the file is regenerated.
const KEEP_MARKER: &str =
    "<!-- Everything below this line is written by hand and kept by eddy-bench. -->";

#[derive(Parser)]
#[command(about = "Eddy's end-to-end benchmark: brokers, perf tools and this machine's limits")]
struct Args {
    /// The eddy binary (default: `eddy` beside this program).
    #[arg(long)]
    eddy: Option<PathBuf>,
    /// Where BENCHMARKS.md and benchmarks.png are written.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Scratch directory for broker data and limit files (default: a new one in /tmp).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// First of the ports the brokers listen on (two per broker).
    #[arg(long, default_value_t = 25100)]
    base_port: u16,
    /// Seconds each machine limit is measured for.
    #[arg(long, default_value_t = 3.0)]
    limit_seconds: f64,
    /// MiB each throughput run produces (and the consume run reads back).
    #[arg(long, default_value_t = 256)]
    produce_mib: u64,
    /// At most this many records per throughput run (bounds the 100-byte runs).
    #[arg(long, default_value_t = 1_000_000)]
    max_records: u64,
    /// Records per second of the latency runs (at most half the measured throughput).
    #[arg(long, default_value_t = 5_000)]
    latency_rate: u64,
    /// Seconds each latency run lasts.
    #[arg(long, default_value_t = 5)]
    latency_seconds: u64,
    /// Measure and print the machine's limits only (no brokers, no files written).
    #[arg(long)]
    limits_only: bool,
    /// Run only these configurations (comma-separated ids such as `1b-acks1-1k`,
    /// `3b-acksall-100`: brokers, acks, record size) and print their figures without
    /// writing BENCHMARKS.md or the plot: for quick comparisons while working.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The command line to write into BENCHMARKS.md (scripts/bench passes its own).
    #[arg(long, default_value = "scripts/bench")]
    command: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let eddy = match &args.eddy {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("eddy"),
    };
    if !eddy.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p eddy` or pass --eddy",
            eddy.display()
        ));
    }
    let work = match &args.work_dir {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("eddy-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    eprintln!(
        "measuring this machine's limits ({} s each)...",
        args.limit_seconds
    );
    let limits = limits::measure(&work, args.limit_seconds).map_err(|e| e.to_string())?;
    eprint!("{}", report::limits_table(&limits));
    if args.limits_only {
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }

    let selected = |c: &Config| args.only.is_empty() || args.only.contains(&c.id());
    let mut rows = Vec::new();
    for (brokers, rf) in [(1u16, 1u16), (3, 3)] {
        let configs: Vec<Config> = ["1", "all"]
            .into_iter()
            .flat_map(|acks| {
                [100usize, 1024].map(|record_bytes| Config {
                    brokers,
                    replication_factor: rf,
                    acks,
                    record_bytes,
                })
            })
            .filter(selected)
            .collect();
        if configs.is_empty() {
            continue;
        }
        let dir = work.join(format!("cluster-{brokers}"));
        eddy_dir_reset(&dir)?;
        eprintln!("starting {brokers} broker(s) under {}...", dir.display());
        let cluster = cluster::start(&eddy, &dir, brokers, args.base_port)?;
        eprintln!("brokers up (pids {:?})", cluster.pids);
        for config in configs {
            rows.push(measure_config(
                args,
                &eddy,
                &work,
                &cluster.bootstrap,
                config,
            )?);
        }
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&work);
    if !args.only.is_empty() {
        if rows.is_empty() {
            return Err(format!(
                "--only {}: no such configuration; ids look like 1b-acks1-1k or 3b-acksall-100",
                args.only.join(",")
            ));
        }
        eprint!("{}", report::throughput_table(&rows));
        eprint!("{}", report::latency_table(&rows, &limits));
        return Ok(());
    }

    let png = args.out_dir.join("benchmarks.png");
    plot::draw(&png, &rows)?;
    let md = args.out_dir.join("BENCHMARKS.md");
    let kept = std::fs::read_to_string(&md)
        .ok()
        .and_then(|old| old.split_once(KEEP_MARKER).map(|(_, k)| k.to_string()))
        .unwrap_or_default();
    let text = document(args, &limits, &rows, started.elapsed().as_secs_f64(), &kept);
    std::fs::write(&md, text).map_err(|e| format!("{}: {e}", md.display()))?;
    eprintln!(
        "wrote {} and {} in {:.0} s",
        md.display(),
        png.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn eddy_dir_reset(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The throughput run, the consume run over what it produced, and the latency run.
fn measure_config(
    args: &Args,
    eddy: &Path,
    work: &Path,
    bootstrap: &str,
    config: Config,
) -> Result<Row, String> {
    let topic = config.topic();
    perf::create_topic(eddy, bootstrap, &topic, config.replication_factor)?;
    let records = (args.produce_mib << 20)
        .div_ceil(config.record_bytes as u64)
        .min(args.max_records);
    let bytes = records * config.record_bytes as u64;
    let pipe_before =
        limits::pipe_bytes(work, bytes).map_err(|e| format!("the trivial pipe failed: {e}"))?;
    eprintln!(
        "{}: the pipe moves its bytes at {:.0} MB/s; produce {records} records...",
        config.short(),
        pipe_before.mb_per_sec()
    );
    let throughput = perf::produce(
        eddy,
        bootstrap,
        &topic,
        config.acks,
        config.record_bytes,
        records,
        None,
    )?;
    let pipe_after =
        limits::pipe_bytes(work, bytes).map_err(|e| format!("the trivial pipe failed: {e}"))?;
    // The bound is the better of the two: a limit is what the machine can do, and a dip
    // on either side (another process writing) says nothing about Eddy.
    let pipe = if pipe_after.bytes_per_sec > pipe_before.bytes_per_sec {
        pipe_after
    } else {
        pipe_before
    };
    eprintln!(
        "  {:.0} records/s, {:.1} MB/s (the pipe after it: {:.0} MB/s); consuming them...",
        throughput.records_per_sec,
        throughput.mb_per_sec,
        pipe_after.mb_per_sec()
    );
    let loopback_before =
        limits::loopback_bytes(bytes).map_err(|e| format!("loopback TCP failed: {e}"))?;
    let consumed = perf::consume(eddy, bootstrap, &topic, throughput.records)?;
    let loopback_after =
        limits::loopback_bytes(bytes).map_err(|e| format!("loopback TCP failed: {e}"))?;
    let loopback = if loopback_after.bytes_per_sec > loopback_before.bytes_per_sec {
        loopback_after
    } else {
        loopback_before
    };
    eprintln!(
        "  consumed {} records at {:.1} MB/s (loopback TCP beside it: {:.0} MB/s)",
        consumed.records,
        consumed.mb_per_sec,
        loopback.mb_per_sec()
    );
    let latency_rate = args
        .latency_rate
        .min((throughput.records_per_sec / 2.0) as u64)
        .max(1);
    let latency_topic = format!("{topic}-latency");
    perf::create_topic(eddy, bootstrap, &latency_topic, config.replication_factor)?;
    let latency = perf::produce(
        eddy,
        bootstrap,
        &latency_topic,
        config.acks,
        config.record_bytes,
        latency_rate * args.latency_seconds,
        Some(latency_rate),
    )?;
    eprintln!(
        "  at {latency_rate} records/s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
    );
    Ok(Row {
        config,
        throughput,
        consumed,
        latency,
        latency_rate,
        pipe,
        loopback,
    })
}

/// The machine, as far as it matters here.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let kernel = std::process::Command::new("uname")
        .arg("-sr")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{model}, {cores} cores available, {mem_gib:.0} GiB memory, {kernel}")
}

/// `p` (0..1) of sorted `samples`.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

fn document(
    args: &Args,
    limits: &limits::Limits,
    rows: &[Row],
    seconds: f64,
    kept: &str,
) -> String {
    let mut s = String::new();
    s.push_str("# Eddy benchmarks\n\n");
    s.push_str(
        "Written by the end-to-end benchmark (`bench/`, `eddy-bench`) from one run: the \
         machine's limits and every Eddy figure below were measured together, in the \
         order listed. The core's and the simulator's hot paths are criterion benchmarks \
         (`cargo bench -p eddy-core`, `cargo bench -p eddy-sim`); see README.md.\n\n",
    );
    let _ = writeln!(
        s,
        "Command (the whole run, {seconds:.0} s):\n\n```\n{}\n```\n",
        args.command
    );
    let _ = writeln!(s, "Machine: {}.\n", machine());
    s.push_str(
        "Brokers, producer and consumer all run on this one machine, so they share its \
         cores, its loopback and its disk with each other (and, on a shared machine, with \
         whatever else runs): read the figures as ratios within this run, not as absolutes.\n\n",
    );
    s.push_str("## This machine's limits\n\n");
    s.push_str(&report::limits_table(limits));
    s.push_str(
        "\nEach is a trivial program inside `eddy-bench` (`bench/src/limits.rs`): one \
         thread writing 1 MiB chunks, one reading them.\n\n",
    );
    s.push_str("## Throughput\n\n");
    let _ = writeln!(
        s,
        "One producer (`eddy perf produce`, its defaults: batch.size 16384, linger.ms 5, \
         idempotence with acks=all), one topic of one partition per configuration, {} MiB \
         or {} records per run, whichever is fewer; then one consumer \
         (`eddy perf consume`) reads them back from the beginning. A produce run is bound \
         by the trivial pipe divided by the replication factor (on one machine every byte \
         crosses loopback and is written to a file once per replica); the pipe is measured \
         again right before and right after each run, moving the same bytes, and the \
         better of the two is the bound, because on a shared machine the page cache's \
         writeback makes file writes vary several-fold from minute to minute (compare \
         the pipe in the limits table, measured once at the start). A consume run is bound by loopback TCP, measured the same way (the same bytes, \
         before and after, the better of the two). The default flush policy (no fsync before the acknowledgement, as \
         Kafka's) applies.\n",
        args.produce_mib, args.max_records
    );
    s.push_str(&report::throughput_table(rows));
    s.push_str("\n## Latency\n\n");
    let _ = writeln!(
        s,
        "Produce latency from `send` to acknowledgement of each record, at a fixed rate of \
         {} records/s (or half the measured throughput, if lower) for {} s, with \
         linger.ms 0 (a batch goes as soon as the connection is free, so the figures are \
         the system's, not the producer's batching delay), beside the loopback TCP round \
         trip.\n",
        args.latency_rate, args.latency_seconds
    );
    s.push_str(&report::latency_table(rows, limits));
    s.push_str("\n## Plot\n\n![throughput and p99 latency per configuration](benchmarks.png)\n\n");
    if let Some(r) = rows
        .iter()
        .find(|r| r.config.brokers == 1 && r.config.acks == "1" && r.config.record_bytes == 1024)
    {
        let pipe = r.pipe.mb_per_sec();
        let verdict = if r.throughput.mb_per_sec >= pipe / 2.0 {
            "reaches"
        } else {
            "does not reach"
        };
        let _ = writeln!(
            s,
            "**Target**: one broker, acks=1, 1 KiB records, one producer: {:.1} MB/s, {} \
             of the trivial pipe's {pipe:.0} MB/s measured beside it — it {verdict} half \
             of it.\n",
            r.throughput.mb_per_sec,
            report::percent(r.throughput.mb_per_sec, pipe)
        );
    }
    s.push_str(KEEP_MARKER);
    if kept.is_empty() {
        s.push('\n');
    } else {
        s.push_str(kept);
    }
    s
}

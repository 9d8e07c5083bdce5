//! `eddy sim`: runs seeds of a scenario, shows progress, prints a summary and the
//! command that reproduces each failure. Seeds run in parallel on worker threads; each
//! seed is its own deterministic world, so the results do not depend on the threads.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use eddy_sim::{RunReport, Scenario};

#[derive(Args)]
pub(crate) struct SimArgs {
    /// Run exactly this seed (and say what happened in it).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds, starting at --first-seed.
    #[arg(long)]
    seeds: Option<u64>,
    /// The first seed of a --seeds block.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// The scenario file.
    #[arg(long, default_value = "scenarios/steady-state.toml")]
    scenario: PathBuf,
    /// Write every event of a single --seed run to this file.
    #[arg(long, requires = "seed")]
    trace: Option<PathBuf>,
    /// Worker threads for --seeds (default: the number of CPUs).
    #[arg(long)]
    jobs: Option<usize>,
}

pub(crate) fn run(args: SimArgs) -> ExitCode {
    let scenario = match Scenario::from_file(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &scenario.config_warnings {
        eprintln!("warning: {}: {warning}", args.scenario.display());
    }
    match args.seed {
        Some(seed) => run_one(&args, &scenario, seed),
        None => run_many(&args, &scenario),
    }
}

fn reproduce(args: &SimArgs, seed: u64) -> String {
    format!(
        "eddy sim --scenario {} --seed {seed}",
        args.scenario.display()
    )
}

fn run_one(args: &SimArgs, scenario: &Scenario, seed: u64) -> ExitCode {
    let started = Instant::now();
    let mut trace_file = match &args.trace {
        Some(path) => match File::create(path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => {
                eprintln!("error: cannot create trace file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let report = match eddy_sim::run(
        scenario,
        seed,
        trace_file.as_mut().map(|f| f as &mut dyn Write),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(mut f) = trace_file {
        if let Err(e) = f.flush() {
            eprintln!("error: writing the trace failed: {e}");
            return ExitCode::from(2);
        }
    }
    let wall = started.elapsed();
    let s = &report.stats;
    println!("scenario {} seed {seed}", report.scenario);
    println!(
        "  simulated {:.1} s in {:.3} s wall ({:.0}x): {} events, {} messages",
        report.sim_time_ms as f64 / 1000.0,
        wall.as_secs_f64(),
        speedup(report.sim_time_ms, wall),
        s.events,
        s.messages
    );
    println!(
        "  writes: {} sent, {} acknowledged; {} batches read ({} from disk); {} faults, {} crashes, {} torn tails cut",
        s.sent, s.acked, s.read, s.disk_reads, s.faults, s.crashes, s.torn_tails
    );
    print_losses(&report);
    println!("  trace hash {:016x}", report.trace_hash);
    if report.passed() {
        println!("  every invariant held");
        ExitCode::SUCCESS
    } else {
        for v in report.violations.iter().take(10) {
            println!("  VIOLATION {v}");
        }
        if report.violations.len() > 10 {
            println!("  ... and {} more violations", report.violations.len() - 10);
        }
        println!("  REPRODUCE WITH: {}", reproduce(args, seed));
        ExitCode::from(1)
    }
}

fn print_losses(report: &RunReport) {
    let l = report.losses;
    if l.acks1_unreplicated > 0 || l.unsynced_all_crashed > 0 {
        println!(
            "  expected losses (allowed by the configuration): {} acks=1 writes lost before replication, {} committed writes lost with every unsynced copy",
            l.acks1_unreplicated, l.unsynced_all_crashed
        );
    }
}

fn speedup(sim_ms: u64, wall: Duration) -> f64 {
    sim_ms as f64 / 1000.0 / wall.as_secs_f64().max(1e-9)
}

fn run_many(args: &SimArgs, scenario: &Scenario) -> ExitCode {
    let count = args.seeds.unwrap_or(100);
    let first = args.first_seed;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = Instant::now();
    let next = AtomicU64::new(first);
    let done = AtomicU64::new(0);
    let results: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let setup_error: Mutex<Option<String>> = Mutex::new(None);
    println!(
        "scenario {}: seeds {first}..{} on {jobs} threads",
        scenario.name,
        first + count
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                match eddy_sim::run(scenario, seed, None) {
                    Ok(report) => {
                        if !report.passed() {
                            eprintln!("  seed {seed} FAILED: {}", report.violations[0]);
                        }
                        results
                            .lock()
                            .expect("no worker panics while holding it")
                            .push(report);
                    }
                    Err(e) => {
                        *setup_error
                            .lock()
                            .expect("no worker panics while holding it") = Some(e.to_string());
                        break;
                    }
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of((count / 10).max(1)) || n == count {
                    eprintln!(
                        "  {n}/{count} seeds, {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    if let Some(e) = setup_error.into_inner().expect("workers done") {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let wall = started.elapsed();
    let mut results = results.into_inner().expect("workers done");
    results.sort_by_key(|r| r.seed);
    let sim_ms: u64 = results.iter().map(|r| r.sim_time_ms).sum();
    let failed: Vec<&RunReport> = results.iter().filter(|r| !r.passed()).collect();
    let acked: u64 = results.iter().map(|r| r.stats.acked).sum();
    let events: u64 = results.iter().map(|r| r.stats.events).sum();
    let acks1: u64 = results.iter().map(|r| r.losses.acks1_unreplicated).sum();
    let unsynced: u64 = results.iter().map(|r| r.losses.unsynced_all_crashed).sum();
    println!("summary for {}", scenario.name);
    println!("  seeds run:      {}", results.len());
    println!("  simulated time: {:.1} s", sim_ms as f64 / 1000.0);
    println!("  wall time:      {:.1} s", wall.as_secs_f64());
    println!(
        "  speed-up:       {:.0}x over {jobs} threads ({:.0}x per thread)",
        speedup(sim_ms, wall),
        speedup(sim_ms, wall) / jobs as f64
    );
    println!(
        "  events:         {events} ({:.0} per wall second)",
        events as f64 / wall.as_secs_f64().max(1e-9)
    );
    println!("  writes acked:   {acked}");
    if acks1 + unsynced > 0 {
        println!("  expected losses: {acks1} acks=1 writes lost before replication, {unsynced} committed writes lost with every unsynced copy");
    }
    let failovers: Vec<eddy_sim::Failover> = results
        .iter()
        .flat_map(|r| r.failovers.iter().copied())
        .collect();
    if !failovers.is_empty() {
        let elected: Vec<u64> = failovers
            .iter()
            .filter_map(|f| f.elected_after_ms)
            .collect();
        let moved: Vec<u64> = failovers
            .iter()
            .filter_map(|f| f.leadership_moved_after_ms)
            .collect();
        println!(
            "  controller failovers: {} crashes of the active controller; new controller after {}; partition leadership off the crashed broker after {}",
            failovers.len(),
            median_max(elected),
            median_max(moved)
        );
    }
    let joins: Vec<eddy_sim::Rebalance> = results
        .iter()
        .flat_map(|r| r.rebalances.iter().copied())
        .filter(|r| r.group_size_before == 5)
        .collect();
    if !joins.is_empty() {
        let done: Vec<u64> = joins.iter().filter_map(|r| r.completed_after_ms).collect();
        println!(
            "  group rebalances: {} members joined a 5-member group; every member held its new assignment after {} (from the joiner's first JoinGroup)",
            joins.len(),
            median_max(done)
        );
    }
    println!("  failures:       {}", failed.len());
    for r in &failed {
        println!("    seed {}: {}", r.seed, r.violations[0]);
        println!("      REPRODUCE WITH: {}", reproduce(args, r.seed));
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// "median X ms, max Y ms over N" of simulated durations.
fn median_max(mut ms: Vec<u64>) -> String {
    if ms.is_empty() {
        return "(none measured)".to_string();
    }
    ms.sort_unstable();
    format!(
        "median {} ms, max {} ms over {}",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    )
}

//! Real-cluster fault tests (issue 8): three `eddy broker` processes, each in its own
//! network namespace, under faults injected from outside on seeded schedules, with real
//! clients logging a history that `eddy_tests::realfault::checker` checks.
//!
//! The schedules are `#[ignore]`d, so a plain `cargo test` stays quick; scripts/test
//! runs them (as root, as .ci/run does) with
//! `cargo test -p eddy-tests --test real_faults -- --ignored --test-threads=1`.
//! `EDDY_FAULT_SEED=N` runs one seed, `EDDY_FAULT_SEEDS=a-b` a range, and
//! `EDDY_FAULT_KINDS=kill,pause` narrows the fault kinds. `EDDY_BIN` names the `eddy`
//! binary under test (default: the one cargo built beside this test).

use std::path::PathBuf;

use eddy_tests::realfault::checker::check;
use eddy_tests::realfault::cluster::unsupported;
use eddy_tests::realfault::history::{Op, Outcome};
use eddy_tests::realfault::{run_seed, Plan};

/// The seeds CI runs: five schedules of about a minute each.
const CI_SEEDS: std::ops::RangeInclusive<u64> = 1..=5;

/// The `eddy` binary: `EDDY_BIN`, or the one in this test's target directory (built by
/// `cargo test --workspace` for the cli's own tests, or by `cargo build -p eddy`).
fn eddy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("EDDY_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/real_faults-<hash> -> target/<profile>/eddy
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("eddy");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p eddy) or set EDDY_BIN",
        bin.display()
    );
    bin
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("EDDY_FAULT_SEED") {
        return vec![seed.trim().parse().expect("EDDY_FAULT_SEED is a number")];
    }
    if let Ok(range) = std::env::var("EDDY_FAULT_SEEDS") {
        let (a, b) = range
            .split_once('-')
            .expect("EDDY_FAULT_SEEDS is first-last, such as 1-5");
        let (a, b): (u64, u64) = (
            a.parse().expect("first seed"),
            b.parse().expect("last seed"),
        );
        return (a..=b).collect();
    }
    CI_SEEDS.collect()
}

#[test]
#[ignore = "minutes long and needs root; scripts/test runs it with --ignored"]
fn seeded_fault_schedules_against_a_real_cluster_keep_every_acknowledged_write() {
    if let Some(why) = unsupported() {
        if std::env::var_os("EDDY_REQUIRE_CLIENTS").is_some() && why.contains("not installed") {
            panic!("real-cluster fault tests: {why}");
        }
        eprintln!("SKIPPED: real-cluster fault tests: {why}");
        return;
    }
    let eddy = eddy_bin();
    let client = PathBuf::from(env!("CARGO_BIN_EXE_eddy-realfault-client"));
    let kinds: Option<Vec<String>> = std::env::var("EDDY_FAULT_KINDS")
        .ok()
        .map(|k| k.split(',').map(|s| s.trim().to_string()).collect());
    let mut failed = Vec::new();
    let mut totals = (0usize, 0usize, 0usize);
    let mut injected: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for seed in seeds() {
        let mut plan = Plan::new(seed);
        if let Some(k) = &kinds {
            plan.kinds = k.clone();
        }
        let report = run_seed(&eddy, &client, &plan);
        eprintln!("{report}");
        totals.0 += report.schedule.len();
        totals.1 += report.summary.operations();
        totals.2 += report.summary.produced_ok;
        for e in &report.schedule {
            *injected.entry(e.fault.kind()).or_default() += 1;
        }
        if !report.passed() {
            for (i, log) in report.broker_logs.iter().enumerate() {
                eprintln!("--- broker {} log (tail)\n{log}", i + 1);
            }
            failed.push(seed);
        }
    }
    eprintln!(
        "== real-cluster faults: {} faults injected ({injected:?}), {} operations checked, {} acknowledged writes; failed seeds: {failed:?}",
        totals.0, totals.1, totals.2
    );
    assert!(
        failed.is_empty(),
        "seeds {failed:?} failed; each report above says why"
    );
}

/// The checker is shown to fail: one history with a lost acknowledged write, a
/// duplicate and a divergent read yields exactly those three violations.
#[test]
fn the_checker_fails_a_history_with_a_lost_write_a_duplicate_and_a_divergent_read() {
    let produce = |seq: u64, offset: i64| Op::Produce {
        t_ms: seq,
        producer: "e1".into(),
        seq,
        outcome: Outcome::Ok,
        partition: 0,
        offset,
    };
    let read = |member: &str, offset: i64, value: &str| Op::Read {
        t_ms: 0,
        member: member.into(),
        assignment: 1,
        partition: 0,
        offset,
        value: value.into(),
    };
    let fin = |offset: i64, value: &str| Op::FinalRead {
        partition: 0,
        offset,
        value: value.into(),
    };
    let ops = vec![
        produce(0, 0),
        produce(1, 1),
        // Acknowledged, then lost: the final log never has it.
        produce(2, 2),
        read("c1", 0, "e1:0"),
        read("c1", 1, "e1:1"),
        read("c1", 2, "e1:2"),
        // c2 reads offset 1 with other contents than c1 did.
        read("c2", 1, "e1:0"),
        fin(0, "e1:0"),
        fin(1, "e1:1"),
        // e1:1 written twice.
        fin(2, "e1:1"),
        Op::End {
            partition: 0,
            log_end_offset: 3,
            committed: 3,
        },
    ];
    let (_, violations) = check(&ops);
    let mut rules: Vec<&str> = violations.iter().map(|v| v.rule).collect();
    rules.sort();
    rules.dedup();
    assert_eq!(
        rules,
        vec!["acked-write-lost", "divergent-read", "duplicate"],
        "{violations:#?}"
    );
}

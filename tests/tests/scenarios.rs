//! Every scenario under `scenarios/` parses, runs, and keeps every invariant for a few
//! seeds — the quick version of the seed block `.ci/run` runs with `eddy sim --seeds`.

use std::path::{Path, PathBuf};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_issue_asks_for_these_scenarios_and_they_ship() {
    let names: Vec<String> = scenario_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "steady-state",
        "leader-crash",
        "flapping-partition",
        "minority-partition",
        "majority-partition",
        "all-crash-unsynced",
        "all-crash-synced",
        "slow-disk",
        "clock-skew",
        "controller-leader-crash",
        "controller-voter-rejoin",
        "all-voters-restart",
        "broker-fenced-unfenced",
        "topic-creation-under-faults",
        "flapping-elections",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "scenarios/{wanted}.toml is missing"
        );
    }
}

#[test]
fn every_shipped_scenario_keeps_every_invariant() {
    for path in scenario_files() {
        let scenario = eddy_sim::Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        for seed in 1..=3 {
            let report = eddy_sim::run(&scenario, seed, None).expect("runs");
            assert!(
                report.passed(),
                "{} seed {seed}: {:#?}\nREPRODUCE WITH: eddy sim --scenario {} --seed {seed}",
                scenario.name,
                report.violations,
                path.display()
            );
            assert!(
                report.stats.acked > 0,
                "{} seed {seed} acknowledged nothing",
                scenario.name
            );
        }
    }
}

#[test]
fn all_crash_scenarios_show_what_the_flush_policy_promises() {
    // Without sync before ack, crashing every broker at once loses committed writes in
    // some seeds (expected, counted); with it, no seed loses any (and any loss fails).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let unsynced = eddy_sim::Scenario::from_file(&dir.join("all-crash-unsynced.toml")).unwrap();
    let synced = eddy_sim::Scenario::from_file(&dir.join("all-crash-synced.toml")).unwrap();
    let lost: u64 = (1..=10)
        .map(|seed| {
            eddy_sim::run(&unsynced, seed, None)
                .unwrap()
                .losses
                .unsynced_all_crashed
        })
        .sum();
    assert!(
        lost > 0,
        "crashing every broker without fsync should lose something in 10 seeds"
    );
    for seed in 1..=10 {
        let report = eddy_sim::run(&synced, seed, None).unwrap();
        assert!(report.passed(), "{:#?}", report.violations);
        assert_eq!(report.losses.unsynced_all_crashed, 0);
    }
}

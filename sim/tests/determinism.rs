//! The same seed gives the same run: the same trace hash, the same trace, the same
//! report. A difference means something ambient (a clock, a hasher's random state,
//! thread scheduling) leaked into the world.

use std::path::Path;

use eddy_sim::{run, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    Scenario::from_file(&path).expect("shipped scenarios parse")
}

#[test]
fn same_seed_gives_the_same_trace_hash_twice() {
    for name in [
        "steady-state",
        "chaos",
        "group-coordinator-crash-during-rebalance",
        "group-static-rolling-restart",
    ] {
        let s = scenario(name);
        let a = run(&s, 42, None).expect("runs");
        let b = run(&s, 42, None).expect("runs");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{name}: seed 42 gave two different trace hashes"
        );
        assert_eq!(a.stats.events, b.stats.events);
        assert_eq!(a.violations, b.violations);
    }
}

#[test]
fn same_seed_gives_the_same_trace_and_tracing_does_not_change_the_run() {
    let s = scenario("leader-crash");
    let mut first = Vec::new();
    let mut second = Vec::new();
    let a = run(&s, 7, Some(&mut first)).expect("runs");
    let b = run(&s, 7, Some(&mut second)).expect("runs");
    let untraced = run(&s, 7, None).expect("runs");
    assert!(!first.is_empty());
    assert!(first == second, "two traces of seed 7 differ");
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(
        a.trace_hash, untraced.trace_hash,
        "writing a trace changed the run"
    );
}

#[test]
fn different_seeds_give_different_runs() {
    let s = scenario("chaos");
    let hashes: std::collections::BTreeSet<u64> = (1..=8)
        .map(|seed| run(&s, seed, None).expect("runs").trace_hash)
        .collect();
    assert_eq!(
        hashes.len(),
        8,
        "eight seeds should give eight different trace hashes"
    );
}

#[test]
fn runs_on_other_threads_agree_with_this_one() {
    let s = scenario("flapping-partition");
    let here = run(&s, 3, None).expect("runs").trace_hash;
    let there = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| run(&s, 3, None).expect("runs").trace_hash))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect::<Vec<_>>()
    });
    assert!(
        there.iter().all(|&h| h == here),
        "seed 3 on other threads: {there:x?}, here: {here:x}"
    );
}

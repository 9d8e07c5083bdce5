//! `eddy sim` as a user runs it: what it prints, what it exits with, and what it says
//! when the input is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("eddy runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hash_line(out: &str) -> String {
    out.lines()
        .find(|l| l.contains("trace hash"))
        .expect("prints a trace hash")
        .trim()
        .to_string()
}

#[test]
fn one_seed_says_what_happened_and_exits_0() {
    let o = eddy(&[
        "sim",
        "--seed",
        "42",
        "--scenario",
        "scenarios/leader-crash.toml",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("scenario leader-crash seed 42"), "{out}");
    assert!(out.contains("acknowledged"), "{out}");
    assert!(out.contains("crashes"), "{out}");
    assert!(out.contains("every invariant held"), "{out}");
}

#[test]
fn the_same_seed_prints_the_same_hash_and_a_trace_file_does_not_change_it() {
    let trace = std::env::temp_dir().join(format!("eddy-cli-test-{}.trace", std::process::id()));
    let a = eddy(&["sim", "--seed", "9", "--scenario", "scenarios/chaos.toml"]);
    let b = eddy(&[
        "sim",
        "--seed",
        "9",
        "--scenario",
        "scenarios/chaos.toml",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(hash_line(&stdout(&a)), hash_line(&stdout(&b)));
    let written = std::fs::read_to_string(&trace).expect("the trace was written");
    std::fs::remove_file(&trace).ok();
    assert!(
        written.lines().count() > 1000,
        "the trace holds every event"
    );
    assert!(
        written.contains("observe Acked"),
        "the trace shows what clients observed"
    );
}

#[test]
fn many_seeds_end_with_a_summary() {
    let o = eddy(&[
        "sim",
        "--seeds",
        "6",
        "--scenario",
        "scenarios/steady-state.toml",
        "--jobs",
        "2",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    for field in [
        "seeds run:      6",
        "simulated time:",
        "wall time:",
        "speed-up:",
        "failures:       0",
    ] {
        assert!(out.contains(field), "summary lacks {field:?}:\n{out}");
    }
    assert!(
        stderr(&o).contains("6/6 seeds"),
        "progress lines go to stderr"
    );
}

#[test]
fn a_missing_scenario_file_is_a_clear_error_with_exit_2() {
    let o = eddy(&["sim", "--seed", "1", "--scenario", "scenarios/no-such.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("cannot read scenario scenarios/no-such.toml"),
        "{err}"
    );
}

#[test]
fn a_bad_broker_config_in_a_scenario_names_the_key() {
    let dir = std::env::temp_dir().join(format!("eddy-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\n[broker_config]\n\"min.insync.replica\" = \"2\"\n[[topics]]\nname = \"t\"\n",
    )
    .unwrap();
    let o = eddy(&["sim", "--seed", "1", "--scenario", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("min.insync.replica"), "{err}");
    assert!(
        err.contains("min.insync.replicas"),
        "the error suggests the key meant: {err}"
    );
}

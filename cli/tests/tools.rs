//! `eddy topics`, `eddy produce`, `eddy consume`, `eddy groups` and `eddy perf` run as a
//! user runs them, against a real broker.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::Broker;

/// Runs `eddy args...` with `stdin`; returns stdout, failing on a non-zero exit.
fn eddy(args: &[&str], stdin: &str) -> String {
    let (ok, out, err) = eddy_status(args, stdin);
    assert!(ok, "eddy {args:?} failed:\n{err}");
    out
}

fn eddy_status(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let out = child.wait_with_output().expect("eddy finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = Broker::start("tools-topics", &[]);
    let b = ["--bootstrap-server", broker.addr.as_str()];
    let with = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        v.extend(b.iter().map(|s| s.to_string()));
        v
    };
    let run = |rest: &[&str]| {
        let args = with(rest);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        eddy(&refs, "")
    };
    run(&[
        "topics",
        "--create",
        "--topic",
        "orders",
        "--partitions",
        "3",
        "--config",
        "retention.ms=86400000",
    ]);
    assert_eq!(run(&["topics", "--list"]).trim(), "orders");
    let described = run(&["topics", "--describe", "--topic", "orders"]);
    assert!(described.contains("PartitionCount: 3"), "{described}");
    assert!(described.contains("retention.ms=86400000"), "{described}");
    let json = run(&["topics", "--describe", "--topic", "orders", "--json"]);
    assert!(
        json.starts_with(r#"{"topic":"orders","partitions":[{"partition":0"#),
        "{json}"
    );

    run(&[
        "topics",
        "--alter",
        "--topic",
        "orders",
        "--partitions",
        "5",
        "--config",
        "retention.ms=1000",
    ]);
    let described = run(&["topics", "--describe", "--topic", "orders"]);
    assert!(described.contains("PartitionCount: 5"), "{described}");
    assert!(
        described.contains("retention.ms=1000\t") || described.contains("retention.ms=1000\n"),
        "{described}"
    );

    // Creating it again fails with a sentence naming the topic; --if-not-exists passes.
    let args = with(&["topics", "--create", "--topic", "orders"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = eddy_status(&refs, "");
    assert!(
        !ok && err.contains("orders") && err.contains("TopicAlreadyExists"),
        "{err}"
    );
    run(&["topics", "--create", "--topic", "orders", "--if-not-exists"]);

    run(&["topics", "--delete", "--topic", "orders"]);
    assert_eq!(run(&["topics", "--list"]).trim(), "");
}

#[test]
fn produce_then_consume_keys_headers_json_offsets_and_groups() {
    let broker = Broker::start("tools-console", &["group.initial.rebalance.delay.ms=0"]);
    let bs = broker.addr.as_str();
    eddy(
        &[
            "topics",
            "--bootstrap-server",
            bs,
            "--create",
            "--topic",
            "lines",
            "--partitions",
            "2",
        ],
        "",
    );
    let input: String = (0..100).map(|i| format!("k{i}\tline {i}\n")).collect();
    eddy(
        &[
            "produce",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--parse-key",
            "--header",
            "origin=test",
            "--compression",
            "lz4",
        ],
        &input,
    );
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--from-beginning",
            "--max-messages",
            "100",
            "--print-key",
        ],
        "",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("k{i}\tline {i}")).collect();
    want.sort();
    assert_eq!(got, want);

    let json = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--partition",
            "0",
            "--offset",
            "3",
            "--max-messages",
            "1",
            "--json",
        ],
        "",
    );
    assert!(json.contains(r#""partition":0,"offset":3,"#), "{json}");
    assert!(json.contains(r#""headers":{"origin":"test"}"#), "{json}");

    // By time: from the epoch is everything; from the far future is nothing.
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--from-timestamp",
            "0",
            "--max-messages",
            "100",
        ],
        "",
    );
    assert_eq!(out.lines().count(), 100);
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--from-timestamp",
            "99999999999999",
            "--timeout-ms",
            "1000",
        ],
        "",
    );
    assert_eq!(out.lines().count(), 0);

    // A group reads 60, commits what it printed; describe shows the lag of the rest.
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--group",
            "readers",
            "--from-beginning",
            "--max-messages",
            "60",
        ],
        "",
    );
    assert_eq!(out.lines().count(), 60);
    let listed = eddy(&["groups", "--bootstrap-server", bs, "--list"], "");
    assert!(listed.lines().any(|l| l == "readers"), "{listed}");
    let described = eddy(
        &[
            "groups",
            "--bootstrap-server",
            bs,
            "--describe",
            "--group",
            "readers",
            "--json",
        ],
        "",
    );
    let lag: i64 = described
        .lines()
        .map(|l| {
            let at = l.find(r#""lag":"#).expect("lag field") + 6;
            l[at..].split(',').next().unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(lag, 40, "{described}");

    // The group resumes where it committed: the other 40, each once.
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--group",
            "readers",
            "--max-messages",
            "40",
            "--timeout-ms",
            "5000",
        ],
        "",
    );
    assert_eq!(out.lines().count(), 40);

    // Reset to the beginning: a plan first, then executed.
    let plan = eddy(
        &[
            "groups",
            "--bootstrap-server",
            bs,
            "--reset-offsets",
            "--group",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
        ],
        "",
    );
    assert!(plan.contains("dry run"), "{plan}");
    eddy(
        &[
            "groups",
            "--bootstrap-server",
            bs,
            "--reset-offsets",
            "--group",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    let described = eddy(
        &[
            "groups",
            "--bootstrap-server",
            bs,
            "--describe",
            "--group",
            "readers",
        ],
        "",
    );
    assert!(described.contains("lines"), "{described}");
    let out = eddy(
        &[
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "lines",
            "--group",
            "readers",
            "--max-messages",
            "100",
            "--timeout-ms",
            "5000",
        ],
        "",
    );
    assert_eq!(out.lines().count(), 100, "everything again after the reset");
    eddy(
        &[
            "groups",
            "--bootstrap-server",
            bs,
            "--delete",
            "--group",
            "readers",
        ],
        "",
    );
    let listed = eddy(&["groups", "--bootstrap-server", bs, "--list"], "");
    assert!(!listed.lines().any(|l| l == "readers"), "{listed}");
}

#[test]
fn perf_produce_and_consume_report_rates_and_latency_percentiles() {
    let broker = Broker::start("tools-perf", &[]);
    let bs = broker.addr.as_str();
    let out = eddy(
        &[
            "perf",
            "produce",
            "--bootstrap-server",
            bs,
            "--topic",
            "perf",
            "--num-records",
            "5000",
            "--record-size",
            "100",
        ],
        "",
    );
    assert!(out.starts_with("5000 records sent, "), "{out}");
    for field in [
        "records/sec",
        "MB/sec",
        "ms avg latency",
        "ms max latency",
        "ms 50th",
        "ms 99th",
        "ms 99.9th",
    ] {
        assert!(out.contains(field), "{field} in {out}");
    }
    let out = eddy(
        &[
            "perf",
            "consume",
            "--bootstrap-server",
            bs,
            "--topic",
            "perf",
            "--messages",
            "5000",
            "--json",
        ],
        "",
    );
    assert!(out.contains(r#""records":5000"#), "{out}");
}

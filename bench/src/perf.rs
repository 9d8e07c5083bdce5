//! Runs `eddy topics` and `eddy perf produce|consume` against a cluster and reads the
//! figures from their `--json` line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What `eddy perf produce --json` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Produced {
    pub(crate) records: u64,
    pub(crate) records_per_sec: f64,
    pub(crate) mb_per_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

/// What `eddy perf consume --json` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Consumed {
    pub(crate) records: u64,
    pub(crate) records_per_sec: f64,
    pub(crate) mb_per_sec: f64,
}

/// The number after `"key":` in a one-line JSON object of numbers.
pub(crate) fn field(json: &str, key: &str) -> Option<f64> {
    let tag = format!("\"{key}\":");
    let at = json.find(&tag)? + tag.len();
    let rest = json[at..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"').parse().ok()
}

/// The last line of `stdout` that is a JSON object.
fn json_line(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
}

pub(crate) fn parse_produced(stdout: &str) -> Result<Produced, String> {
    let j = json_line(stdout).ok_or_else(|| format!("no JSON line in {stdout:?}"))?;
    let f = |k: &str| field(j, k).ok_or_else(|| format!("no {k} in {j}"));
    Ok(Produced {
        records: f("records")? as u64,
        records_per_sec: f("records_per_sec")?,
        mb_per_sec: f("mb_per_sec")?,
        p50_ms: f("latency_p50_ms")?,
        p99_ms: f("latency_p99_ms")?,
        p999_ms: f("latency_p999_ms")?,
        max_ms: f("latency_max_ms")?,
    })
}

pub(crate) fn parse_consumed(stdout: &str) -> Result<Consumed, String> {
    let j = json_line(stdout).ok_or_else(|| format!("no JSON line in {stdout:?}"))?;
    let f = |k: &str| field(j, k).ok_or_else(|| format!("no {k} in {j}"));
    Ok(Consumed {
        records: f("records")? as u64,
        records_per_sec: f("records_per_sec")?,
        mb_per_sec: f("mb_per_sec")?,
    })
}

fn run(eddy: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new(eddy)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", eddy.display()))?;
    if !out.status.success() {
        return Err(format!(
            "eddy {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates a one-partition topic, retrying while the cluster is still starting.
pub(crate) fn create_topic(
    eddy: &Path,
    bootstrap: &str,
    topic: &str,
    replication_factor: u16,
) -> Result<(), String> {
    let args: Vec<String> = [
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--if-not-exists",
        "--topic",
        topic,
        "--partitions",
        "1",
        "--replication-factor",
        &replication_factor.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let mut last = String::new();
    for _ in 0..60 {
        match run(eddy, &args) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last)
}

/// One `eddy perf produce` run; `rate` caps records per second (a latency run, with
/// linger.ms 0).
pub(crate) fn produce(
    eddy: &Path,
    bootstrap: &str,
    topic: &str,
    acks: &str,
    record_size: usize,
    num_records: u64,
    rate: Option<u64>,
) -> Result<Produced, String> {
    let mut args: Vec<String> = [
        "perf",
        "produce",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--acks",
        acks,
        "--record-size",
        &record_size.to_string(),
        "--num-records",
        &num_records.to_string(),
        "--reporting-interval-ms",
        "1000000",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    if let Some(r) = rate {
        // A latency run: no lingering, so the figure is the system's round trip.
        args.extend(["--throughput".to_string(), r.to_string()]);
        args.extend(["--linger-ms".to_string(), "0".to_string()]);
    }
    parse_produced(&run(eddy, &args)?)
}

/// One `eddy perf consume` run of `messages` records from the beginning.
pub(crate) fn consume(
    eddy: &Path,
    bootstrap: &str,
    topic: &str,
    messages: u64,
) -> Result<Consumed, String> {
    let args: Vec<String> = [
        "perf",
        "consume",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        &messages.to_string(),
        "--timeout-ms",
        "5000",
        "--reporting-interval-ms",
        "1000000",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    parse_consumed(&run(eddy, &args)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_json_is_read_field_by_field() {
        let out = "progress\n{\"records\":5000,\"failed\":0,\"seconds\":1.250,\"records_per_sec\":4000.0,\
                   \"mb_per_sec\":3.91,\"latency_avg_ms\":1.20,\"latency_max_ms\":9.50,\
                   \"latency_p50_ms\":1.00,\"latency_p95_ms\":2.00,\"latency_p99_ms\":3.00,\
                   \"latency_p999_ms\":8.25}\n";
        let p = parse_produced(out).expect("parses");
        assert_eq!(p.records, 5000);
        assert_eq!(p.records_per_sec, 4000.0);
        assert_eq!(p.mb_per_sec, 3.91);
        assert_eq!(
            (p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms),
            (1.0, 3.0, 8.25, 9.5)
        );
    }

    #[test]
    fn consume_json_is_read_and_a_missing_field_is_an_error() {
        let out = "{\"records\":10,\"mb\":0.0010,\"seconds\":0.500,\"records_per_sec\":20.0,\"mb_per_sec\":0.0020}";
        let c = parse_consumed(out).expect("parses");
        assert_eq!(
            (c.records, c.records_per_sec, c.mb_per_sec),
            (10, 20.0, 0.002)
        );
        assert!(parse_consumed("{\"records\":10}").is_err());
        assert!(parse_consumed("no json here").is_err());
    }

    #[test]
    fn a_key_that_is_a_suffix_of_another_is_not_confused_with_it() {
        // "mb" must not match inside "mb_per_sec", nor "records" inside "records_per_sec".
        let j = "{\"mb_per_sec\":7.5,\"mb\":1.5,\"records_per_sec\":3,\"records\":2}";
        assert_eq!(field(j, "mb"), Some(1.5));
        assert_eq!(field(j, "records"), Some(2.0));
    }
}

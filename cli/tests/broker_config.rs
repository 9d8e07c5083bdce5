//! `eddy broker --config`: a Kafka server.properties starts a broker (keys Eddy has no
//! use for are named in warnings), and a bad one stops it before it listens, with a
//! message naming the file, the line and what to do.

mod support;

use std::process::Command;

use support::Raw;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_seed_server_properties_starts_a_broker() {
    let config = root().join("config/server.properties");
    // Started by hand to see its warnings: the file's log.dirs (/tmp/kafka-logs) and port
    // are overridden so the test owns its data and port.
    let data =
        std::env::temp_dir().join(format!("eddy-test-{}-config-seed-file", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["broker", "--config"])
        .arg(&config)
        .arg("--override")
        .arg(format!("log.dirs={}", data.display()))
        .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("eddy runs");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "exited early:\n{text}"
        );
        text.push_str(&line);
        if let Some(rest) = line.split(" listening on ").nth(1) {
            break rest.split(',').next().unwrap().to_string();
        }
    };
    assert!(text.contains("zookeeper.connect: ignored"), "{text}");
    let mut raw = Raw::connect(&addr);
    let resp = raw.call(
        kafka_protocol::messages::ApiKey::ApiVersions,
        3,
        kafka_protocol::messages::RequestKind::ApiVersions(Default::default()),
    );
    assert!(matches!(
        resp,
        kafka_protocol::messages::ResponseKind::ApiVersions(_)
    ));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn a_bad_config_stops_the_broker_with_the_line_and_a_suggestion() {
    let dir = std::env::temp_dir().join(format!("eddy-test-{}-bad-config", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.properties");
    std::fs::write(&file, "broker.id=0\nlog.retention.hourz=5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["broker", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.properties:2"), "{stderr}");
    assert!(
        stderr.contains("log.retention.hours"),
        "suggests the key meant: {stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["broker", "--override", "num.partitions=zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("num.partitions"));
    let _ = std::fs::remove_dir_all(dir);
}

//! Brokers the benchmark starts itself: release `eddy broker` processes, each with its
//! data in a fresh directory, on ports from `--base-port` up, stopped by their own pid
//! when the configuration's runs are done.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster gets to elect its controller and unfence its brokers.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running cluster; dropping it stops the brokers (SIGKILL by pid, then wait).
pub(crate) struct Cluster {
    children: Vec<Child>,
    pub(crate) bootstrap: String,
    pub(crate) pids: Vec<u32>,
}

/// Starts `brokers` brokers (each also a controller voter, when more than one) with their
/// data under `dir`. Client ports are `base_port + 2 * i`, controller ports the next.
pub(crate) fn start(
    eddy: &Path,
    dir: &Path,
    brokers: u16,
    base_port: u16,
) -> Result<Cluster, String> {
    let client_port = |i: u16| base_port + 2 * i;
    let voters: Vec<String> = (0..brokers)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, client_port(i) + 1))
        .collect();
    let mut children = Vec::new();
    let mut pids = Vec::new();
    for i in 0..brokers {
        let data: PathBuf = dir.join(format!("broker-{}", i + 1));
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let mut overrides = vec![
            format!("log.dirs={}", data.display()),
            format!("node.id={}", i + 1),
        ];
        if brokers == 1 {
            overrides.push(format!(
                "listeners=PLAINTEXT://127.0.0.1:{}",
                client_port(i)
            ));
        } else {
            overrides.extend([
                "process.roles=broker,controller".to_string(),
                format!("controller.quorum.voters={}", voters.join(",")),
                format!(
                    "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    client_port(i),
                    client_port(i) + 1
                ),
                format!("default.replication.factor={brokers}"),
                "min.insync.replicas=2".to_string(),
                format!("offsets.topic.replication.factor={brokers}"),
            ]);
        }
        let log =
            File::create(dir.join(format!("broker-{}.log", i + 1))).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(eddy);
        cmd.arg("broker");
        for o in &overrides {
            cmd.args(["--override", o]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", eddy.display()))?;
        pids.push(child.id());
        children.push(child);
    }
    let bootstrap = (0..brokers)
        .map(|i| format!("127.0.0.1:{}", client_port(i)))
        .collect::<Vec<_>>()
        .join(",");
    let cluster = Cluster {
        children,
        bootstrap,
        pids,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    for i in 0..brokers {
        while TcpStream::connect(("127.0.0.1", client_port(i))).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "broker {} did not listen on {} within {START_TIMEOUT:?}; see {}",
                    i + 1,
                    client_port(i),
                    dir.join(format!("broker-{}.log", i + 1)).display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(cluster)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

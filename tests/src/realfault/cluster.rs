//! A three-broker `eddy broker` cluster where each broker is its own host: a network
//! namespace per broker and one for the clients, each with a veth pair into a bridge that
//! lives in a hub namespace of its own, so every address (10.88.0.0/24) exists only
//! inside namespaces this harness made, and two runs side by side never meet. Each
//! broker is a controller voter too (KRaft combined mode), with its own
//! `server.properties`, its metadata log on disk and its data log dir on a small tmpfs
//! that a fault can fill up.
//!
//! [`Cluster`]'s `Drop` kills every process it started, unmounts its tmpfs mounts,
//! deletes its namespaces (which takes the veths with them) and its directory, also when
//! a test panics.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The brokers of every run (node ids 1..=BROKERS).
pub const BROKERS: usize = 3;
/// Size of each broker's data tmpfs: far above what a run writes (a few MB), small
/// enough to fill in a moment.
const TMPFS_MB: u32 = 64;
/// How long a broker may take to serve after a start: it waits for the quorum.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs a command, panicking with what it said when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command whose failure is fine (cleanup of what may already be gone).
pub fn run_quiet(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this machine cannot run the tests, if it cannot: they need root (namespaces,
/// iptables, mounts) and `ip`, `tc` and `iptables-legacy`.
pub fn unsupported() -> Option<String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Some("they need root (network namespaces, iptables, tmpfs mounts); .ci/run runs them as root".into());
    }
    for (tool, probe) in [
        ("ip", "-V"),
        ("tc", "-V"),
        ("iptables-legacy", "--version"),
        ("python3", "--version"),
    ] {
        if !run_quiet(&[tool, probe]) {
            return Some(format!(
                "{tool} is not installed (scripts/test installs iptables and kafka-python)"
            ));
        }
    }
    if !run_quiet(&["python3", "-c", "import kafka"]) {
        return Some("kafka-python is not installed (scripts/test installs it)".into());
    }
    None
}

/// One host: a namespace with an address on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    pub netns: String,
    pub ip: String,
}

/// One broker process and its files.
pub struct Broker {
    pub id: usize,
    pub host: Host,
    pub child: Option<Child>,
    pub paused: bool,
    pub props: PathBuf,
    /// The tmpfs mount holding its data log dir (`<mount>/data`).
    pub tmpfs: PathBuf,
    pub log: PathBuf,
}

impl Broker {
    pub fn addr(&self) -> String {
        format!("{}:9092", self.host.ip)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times its log says it listens (once per start).
    fn starts_logged(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(" listening on ")
            .count()
    }

    /// Its log's last `lines` lines, for a failure report.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The cluster, the client host, and everything to clean up.
pub struct Cluster {
    pub dir: PathBuf,
    pub hub: String,
    pub client: Host,
    pub brokers: Vec<Broker>,
    eddy: PathBuf,
    /// Workload processes started in the client namespace, killed on drop.
    pub workers: Vec<Child>,
    /// Names made, for cleanup: namespaces, mounts.
    namespaces: Vec<String>,
    mounts: Vec<PathBuf>,
}

impl Cluster {
    /// Makes the namespaces, writes each broker's files, starts the three brokers and
    /// waits until each serves.
    pub fn start(eddy: &Path, overrides: &[&str], label: &str) -> Cluster {
        sweep_stale();
        let tag = format!("rf{}", std::process::id());
        let dir =
            std::env::temp_dir().join(format!("eddy-realfault-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("run directory");
        let hub = format!("{tag}-hub");
        let mut cluster = Cluster {
            dir: dir.clone(),
            hub: hub.clone(),
            client: Host {
                netns: String::new(),
                ip: String::new(),
            },
            brokers: Vec::new(),
            eddy: eddy.to_path_buf(),
            workers: Vec::new(),
            namespaces: Vec::new(),
            mounts: Vec::new(),
        };
        // From here on, Drop cleans up whatever was made.
        run(&["ip", "netns", "add", &hub]);
        cluster.namespaces.push(hub.clone());
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        cluster.client = cluster.add_host(&tag, "cl", "10.88.0.100");
        let hosts: Vec<Host> = (1..=BROKERS)
            .map(|id| cluster.add_host(&tag, &format!("b{id}"), &format!("10.88.0.{}", 10 + id)))
            .collect();
        let voters = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| format!("{}@{}:9093", i + 1, h.ip))
            .collect::<Vec<_>>()
            .join(",");
        for (i, host) in hosts.into_iter().enumerate() {
            let id = i + 1;
            let home = dir.join(format!("broker-{id}"));
            let tmpfs = home.join("tmpfs");
            std::fs::create_dir_all(&tmpfs).expect("broker directory");
            run(&[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                &format!("size={TMPFS_MB}m"),
                "eddy-realfault",
                tmpfs.to_str().expect("utf-8 path"),
            ]);
            cluster.mounts.push(tmpfs.clone());
            let props = home.join("server.properties");
            let mut text = format!(
                "process.roles=broker,controller\n\
                 node.id={id}\n\
                 controller.quorum.voters={voters}\n\
                 listeners=PLAINTEXT://{ip}:9092,CONTROLLER://{ip}:9093\n\
                 log.dirs={data}\n\
                 metadata.log.dir={meta}\n",
                ip = host.ip,
                data = tmpfs.join("data").display(),
                meta = home.join("metadata").display(),
            );
            for o in overrides {
                text.push_str(o);
                text.push('\n');
            }
            std::fs::write(&props, text).expect("server.properties written");
            cluster.brokers.push(Broker {
                id,
                host,
                child: None,
                paused: false,
                props,
                tmpfs,
                log: home.join("broker.log"),
            });
        }
        for i in 0..BROKERS {
            cluster.launch(i);
        }
        for i in 0..BROKERS {
            cluster.wait_serving(i, 1);
        }
        cluster
    }

    fn add_host(&mut self, tag: &str, name: &str, ip: &str) -> Host {
        let netns = format!("{tag}-{name}");
        let veth = format!("{tag}{name}");
        run(&["ip", "netns", "add", &netns]);
        self.namespaces.push(netns.clone());
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ]);
        run(&["ip", "link", "set", &veth, "netns", &self.hub]);
        run(&[
            "ip", "-n", &self.hub, "link", "set", &veth, "master", "br0", "up",
        ]);
        run(&[
            "ip",
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        run(&["ip", "-n", &netns, "link", "set", "eth0", "up"]);
        run(&["ip", "-n", &netns, "link", "set", "lo", "up"]);
        Host {
            netns,
            ip: ip.to_string(),
        }
    }

    /// Starts broker `i` (0-based) in its namespace; its stderr goes to its log file.
    fn launch(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        assert!(b.child.is_none(), "broker {} is running", b.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&b.log)
            .expect("broker log");
        let child = Command::new("ip")
            .args(["netns", "exec", &b.host.netns])
            .arg(&self.eddy)
            .arg("broker")
            .arg("--config")
            .arg(&b.props)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("eddy broker starts");
        b.child = Some(child);
        b.paused = false;
    }

    /// Waits until broker `i` has said it listens `starts` times in all.
    fn wait_serving(&mut self, i: usize, starts: usize) {
        let begin = Instant::now();
        loop {
            let b = &mut self.brokers[i];
            if b.starts_logged() >= starts {
                return;
            }
            if let Some(status) = b.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "broker {} exited ({status}) before serving:\n{}",
                    b.id,
                    b.log_tail(40)
                );
            }
            assert!(
                begin.elapsed() < START_TIMEOUT,
                "broker {} does not serve after {START_TIMEOUT:?}:\n{}",
                b.id,
                b.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.brokers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.brokers[i].paused = false;
    }

    /// Starts a killed broker again on its files and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        let starts = self.brokers[i].starts_logged() + 1;
        self.launch(i);
        self.wait_serving(i, starts);
    }

    pub fn signal(&mut self, i: usize, signal: &str) {
        if let Some(pid) = self.brokers[i].pid() {
            run(&["kill", &format!("-{signal}"), &pid.to_string()]);
            self.brokers[i].paused = signal == "STOP";
        }
    }

    /// Every broker's client address, for a bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(Broker::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `program args` in the client namespace, stdout and stderr to `log`.
    pub fn spawn_client(&mut self, program: &Path, args: &[String], log: &str) -> usize {
        let log = File::create(self.dir.join(log)).expect("worker log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.client.netns])
            .arg(program)
            .args(args)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("worker starts");
        self.workers.push(child);
        self.workers.len() - 1
    }

    /// Runs `program args` in the client namespace to the end, within `timeout`.
    pub fn run_client(&mut self, program: &Path, args: &[String], timeout: Duration) -> bool {
        let log = format!("run-{}.log", self.workers.len());
        let w = self.spawn_client(program, args, &log);
        self.wait_worker(w, timeout)
    }

    /// Waits for worker `w` to exit, killing it after `timeout`; whether it succeeded.
    pub fn wait_worker(&mut self, w: usize, timeout: Duration) -> bool {
        let begin = Instant::now();
        loop {
            if let Ok(Some(status)) = self.workers[w].try_wait() {
                return status.success();
            }
            if begin.elapsed() > timeout {
                let _ = self.workers[w].kill();
                let _ = self.workers[w].wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// iptables-legacy inside a namespace (the kernel here has x_tables, not nf_tables).
    pub fn iptables(&self, netns: &str, rule: &[&str]) {
        let mut args = vec!["ip", "netns", "exec", netns, "iptables-legacy", "-w"];
        args.extend_from_slice(rule);
        run(&args);
    }

    /// Takes every network fault away: firewall rules and queueing disciplines in every
    /// host namespace.
    pub fn heal_network(&self) {
        let hosts = self
            .brokers
            .iter()
            .map(|b| &b.host)
            .chain(std::iter::once(&self.client));
        for h in hosts {
            run_quiet(&[
                "ip",
                "netns",
                "exec",
                &h.netns,
                "iptables-legacy",
                "-w",
                "-F",
            ]);
            run_quiet(&[
                "ip", "netns", "exec", &h.netns, "tc", "qdisc", "del", "dev", "eth0", "root",
            ]);
        }
    }

    /// A file that fills broker `i`'s data tmpfs to the last byte.
    pub fn filler(&self, i: usize) -> PathBuf {
        self.brokers[i].tmpfs.join("filler")
    }

    /// Fills broker `i`'s data disk: writes until the file system says it is full.
    pub fn fill_disk(&self, i: usize) {
        let mut f = File::create(self.filler(i)).expect("filler file");
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        // The last few bytes a partial write left.
        while f.write_all(&chunk[..4096]).is_ok() {}
    }

    pub fn free_disk(&self, i: usize) {
        let _ = std::fs::remove_file(self.filler(i));
    }
}

/// Removes what an earlier run left when it was killed before its `Drop` ran (a CI
/// timeout, a ^C): namespaces named `rf<pid>-*` whose test process is gone, after
/// killing the brokers and workers still inside them, and their tmpfs mounts.
fn sweep_stale() {
    let listed = Command::new("ip").args(["netns", "list"]).output();
    let Ok(listed) = listed else { return };
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix("rf")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pids = Command::new("ip").args(["netns", "pids", name]).output();
        for p in pids
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
        {
            run_quiet(&["kill", "-CONT", p]);
            run_quiet(&["kill", "-KILL", p]);
        }
        eprintln!("removing namespace {name}, left by an earlier run (pid {pid} is gone)");
        run_quiet(&["ip", "netns", "del", name]);
        let prefix = format!("eddy-realfault-{pid}-");
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for dir in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                let stale = dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
                if stale {
                    for b in 1..=BROKERS {
                        let mount = dir.join(format!("broker-{b}")).join("tmpfs");
                        run_quiet(&["umount", "-l", mount.to_str().unwrap_or_default()]);
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
        for i in 0..self.brokers.len() {
            if let (true, Some(pid)) = (self.brokers[i].paused, self.brokers[i].pid()) {
                run_quiet(&["kill", "-CONT", &pid.to_string()]);
            }
            self.kill(i);
        }
        for m in &self.mounts {
            run_quiet(&["umount", "-l", m.to_str().unwrap_or_default()]);
        }
        for ns in self.namespaces.iter().rev() {
            run_quiet(&["ip", "netns", "del", ns]);
        }
        // EDDY_KEEP_RUN keeps the logs, histories and data for a look afterwards.
        if std::env::var_os("EDDY_KEEP_RUN").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {}", self.dir.display());
        }
    }
}

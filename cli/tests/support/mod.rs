//! Shared by the broker tests: start a real `eddy broker` process on a free port with a
//! data directory of its own, and speak to it — with the real clients nobody here wrote
//! (kcat, kafka-python), or frame by frame through the `kafka-protocol` crate's client
//! side for the cases a well-behaved client never sends.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A broker process, killed (and its data removed) when dropped.
pub(crate) struct Broker {
    child: Option<Child>,
    pub(crate) addr: String,
    pub(crate) data: PathBuf,
    extra: Vec<String>,
    /// A `--config` file, read before the overrides.
    config: Option<PathBuf>,
    /// Everything the broker wrote to stderr.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// `EDDY_LOG` for the process, when a test reads what it logs below warnings.
    log_filter: Option<String>,
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Broker {
    /// Starts a broker on a port of the OS's choosing, with `overrides` applied.
    pub(crate) fn start(name: &str, overrides: &[&str]) -> Broker {
        Broker::start_logging(name, overrides, None)
    }

    /// [`Broker::start`] with `EDDY_LOG` set to `filter` (such as `info`), for a test that
    /// reads the broker's log.
    pub(crate) fn start_logging(name: &str, overrides: &[&str], filter: Option<&str>) -> Broker {
        let data = fresh_dir(name);
        let mut b = Broker {
            child: None,
            addr: String::new(),
            data,
            extra: overrides.iter().map(|s| s.to_string()).collect(),
            config: None,
            log: Default::default(),
            log_filter: filter.map(str::to_string),
        };
        b.spawn("PLAINTEXT://127.0.0.1:0".to_string());
        b
    }

    fn spawn(&mut self, listener: String) {
        let stderr = self.launch(listener);
        self.wait_listening(stderr);
    }

    /// Starts the process; [`Broker::wait_listening`] waits for it to serve.
    fn launch(&mut self, listener: String) -> BufReader<std::process::ChildStderr> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eddy"));
        cmd.arg("broker");
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--override")
            .arg(format!("log.dirs={}", self.data.display()))
            .arg("--override")
            .arg(format!("listeners={listener}"));
        for o in &self.extra {
            cmd.arg("--override").arg(o);
        }
        if let Some(filter) = &self.log_filter {
            cmd.env("EDDY_LOG", filter);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eddy broker starts");
        let stderr = BufReader::new(child.stderr.take().expect("piped"));
        self.child = Some(child);
        stderr
    }

    /// Reads the broker's log until it says it listens (it has caught up with the
    /// metadata quorum), then keeps draining it in the background.
    fn wait_listening(&mut self, mut stderr: BufReader<std::process::ChildStderr>) {
        let mut line = String::new();
        let mut said = String::new();
        loop {
            line.clear();
            if stderr.read_line(&mut line).expect("reads stderr") == 0 {
                panic!("eddy broker exited before listening:\n{said}");
            }
            said.push_str(&line);
            if let Some(rest) = line.split(" listening on ").nth(1) {
                self.addr = rest.split(',').next().expect("address").to_string();
                break;
            }
        }
        // Keep draining stderr so the broker never blocks on a full pipe, and keep what it
        // says: a panic in any of its tasks is a bug even when the broker survives it.
        let log = self.log.clone();
        log.lock().expect("log lock").push_str(&said);
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                log.lock().expect("log lock").push_str(&line);
                line.clear();
            }
        });
    }

    /// kill -9, as a crash.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for the clean exit.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let c = self.child.take().expect("running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        let mut c = c;
        c.wait().expect("broker exits")
    }

    /// Starts the broker again on the same port and data.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        let listener = format!("PLAINTEXT://{}", self.addr);
        self.spawn(listener);
    }
}

/// A free port on loopback (the OS's pick, released for the broker to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Brokers 1..=n on loopback, each a controller voter too (KRaft combined mode), as
/// `config/` sets up a cluster on one machine.
pub(crate) struct Cluster {
    pub(crate) brokers: Vec<Broker>,
    /// `controller.quorum.voters`, for brokers added later.
    voters: String,
}

impl Cluster {
    /// Starts `n` brokers with `overrides` and waits until each serves clients (which
    /// needs a majority of them up: they are started together).
    pub(crate) fn start(name: &str, n: u32, overrides: &[&str]) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("{}@127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut brokers: Vec<Broker> = (1..=n)
            .map(|id| {
                let mut extra: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
                extra.push(format!("node.id={id}"));
                extra.push("process.roles=broker,controller".to_string());
                extra.push(format!("controller.quorum.voters={voters}"));
                Broker {
                    child: None,
                    addr: format!("127.0.0.1:{}", ports[id as usize - 1].0),
                    data: fresh_dir(&format!("{name}-{id}")),
                    extra,
                    config: None,
                    log: Default::default(),
                    log_filter: None,
                }
            })
            .collect();
        Cluster::launch_all(&mut brokers);
        Cluster { brokers, voters }
    }

    /// Starts broker `id`, a broker only (`process.roles=broker`: no voter, following
    /// the metadata log as an observer), with `overrides`, and waits until it serves.
    pub(crate) fn add_broker_only(&mut self, name: &str, id: u32, overrides: &[&str]) {
        let mut extra: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        extra.push(format!("node.id={id}"));
        extra.push("process.roles=broker".to_string());
        extra.push(format!("controller.quorum.voters={}", self.voters));
        let mut b = Broker {
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            data: fresh_dir(&format!("{name}-{id}")),
            extra,
            config: None,
            log: Default::default(),
            log_filter: None,
        };
        let listener = format!("PLAINTEXT://{}", b.addr);
        b.spawn(listener);
        self.brokers.push(b);
    }

    /// Starts one broker per config file (listeners and quorum as the files say, data
    /// in a fresh directory each), and waits until each serves. `addrs` are the client
    /// addresses the files give.
    pub(crate) fn from_configs(name: &str, configs: &[(&str, &str)]) -> Cluster {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut brokers: Vec<Broker> = configs
            .iter()
            .enumerate()
            .map(|(i, (file, addr))| Broker {
                child: None,
                addr: addr.to_string(),
                data: fresh_dir(&format!("{name}-{i}")),
                extra: Vec::new(),
                config: Some(root.join(file)),
                log: Default::default(),
                log_filter: None,
            })
            .collect();
        Cluster::launch_all(&mut brokers);
        Cluster {
            brokers,
            voters: String::new(),
        }
    }

    fn launch_all(brokers: &mut [Broker]) {
        let launched: Vec<_> = brokers
            .iter_mut()
            .map(|b| {
                let listener = format!("PLAINTEXT://{}", b.addr);
                b.launch(listener)
            })
            .collect();
        for (b, stderr) in brokers.iter_mut().zip(launched) {
            b.wait_listening(stderr);
        }
    }

    /// Every broker's address, for a client's bootstrap list.
    pub(crate) fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(|b| b.addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The broker with node id `id` (1-based).
    pub(crate) fn broker(&mut self, id: u32) -> &mut Broker {
        &mut self.brokers[id as usize - 1]
    }

    /// Starts every stopped broker again, together, and waits until each serves.
    pub(crate) fn restart_stopped(&mut self) {
        let launched: Vec<_> = self
            .brokers
            .iter_mut()
            .filter(|b| b.child.is_none())
            .map(|b| {
                let listener = format!("PLAINTEXT://{}", b.addr);
                let stderr = b.launch(listener);
                (b.addr.clone(), stderr)
            })
            .collect();
        for (addr, stderr) in launched {
            let b = self
                .brokers
                .iter_mut()
                .find(|b| b.addr == addr)
                .expect("launched above");
            b.wait_listening(stderr);
        }
    }
}

impl Broker {
    /// Everything the broker has logged so far.
    pub(crate) fn log_text(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Panics if the broker reported a panic in any of its tasks.
    pub(crate) fn assert_no_panic(&self) {
        let log = self.log.lock().expect("log lock");
        assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_panic();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Whether an outside client is installed. Missing ones fail the test when
/// `EDDY_REQUIRE_CLIENTS` is set (scripts/test sets it after installing them) and skip it
/// with a message otherwise.
pub(crate) fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("EDDY_REQUIRE_CLIENTS").is_some() {
            panic!("{tool} is not installed; scripts/test installs kcat (Debian package kafkacat) and kafka-python");
        }
        eprintln!("SKIPPED: {tool} is not installed (scripts/test installs it)");
    }
    ok
}

pub(crate) fn have_kcat() -> bool {
    have("kcat", &["-V"])
}

pub(crate) fn have_kafka_python() -> bool {
    have("python3", &["-c", "import kafka"])
}

/// Every record of `topic` from the beginning, read with kcat through `bootstrap`, each
/// as `format` (kcat's `-f`) prints it, in the order kcat printed them.
pub(crate) fn kcat_read(bootstrap: &str, topic: &str, format: &str) -> String {
    let out = kcat(
        &[
            "-b",
            bootstrap,
            "-t",
            topic,
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            format,
        ],
        b"",
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// [`kcat_read`]'s lines, sorted.
pub(crate) fn kcat_read_sorted(bootstrap: &str, topic: &str, format: &str) -> Vec<String> {
    let mut lines: Vec<String> = kcat_read(bootstrap, topic, format)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Runs kcat with `args`, feeding `stdin`; returns stdout, failing on a non-zero exit.
pub(crate) fn kcat(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat runs");
    let mut input = child.stdin.take().expect("piped");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("kcat finishes");
    feeder.join().expect("stdin fed");
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a Python script with kafka-python; returns its stdout.
pub(crate) fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raw connection, speaking frames.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    next_correlation_id: i32,
}

impl Raw {
    pub(crate) fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout set");
        Raw {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Writes bytes as they are, with no length prefix.
    pub(crate) fn stream_write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writes");
    }

    /// Sends raw bytes as one frame (length prefix added).
    pub(crate) fn send_frame(&mut self, body: &[u8]) {
        let mut buf = Vec::with_capacity(body.len() + 4);
        buf.extend_from_slice(&(body.len() as i32).to_be_bytes());
        buf.extend_from_slice(body);
        self.stream.write_all(&buf).expect("writes");
    }

    /// Encodes and sends a request; returns its correlation id.
    pub(crate) fn send(&mut self, key: ApiKey, version: i16, req: &RequestKind) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("eddy-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("header encodes");
        req.encode(&mut buf, version).expect("request encodes");
        self.send_frame(&buf);
        correlation_id
    }

    /// Reads one response frame: (correlation id, body after the header).
    pub(crate) fn recv_raw(&mut self, key: ApiKey, version: i16) -> Option<(i32, Bytes)> {
        let mut len = [0u8; 4];
        if self.stream.read_exact(&mut len).is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        let mut body = Bytes::from(body);
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, header_version).expect("header decodes");
        Some((header.correlation_id, body))
    }

    /// Reads and decodes one response.
    pub(crate) fn recv(&mut self, key: ApiKey, version: i16) -> (i32, ResponseKind) {
        let (cid, mut body) = self.recv_raw(key, version).expect("a response");
        let resp = ResponseKind::decode(key, &mut body, version).expect("response decodes");
        (cid, resp)
    }

    /// Sends and waits for the answer.
    pub(crate) fn call(&mut self, key: ApiKey, version: i16, req: RequestKind) -> ResponseKind {
        let cid = self.send(key, version, &req);
        let (got, resp) = self.recv(key, version);
        assert_eq!(got, cid, "responses come back in order");
        resp
    }

    /// Whether the broker closed the connection (reads end of stream or a reset).
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// A v2 record batch of `values`, as a producer builds it.
pub(crate) fn batch(values: &[&str]) -> Bytes {
    let mut b = eddy_core::batch::BatchBuilder::new();
    for v in values {
        b.push(eddy_core::batch::NewRecord {
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            timestamp_ms: 1_000,
            ..Default::default()
        });
    }
    b.build()
}

//! This machine's limits, measured by trivial programs in the same run as Eddy's figures:
//! loopback TCP alone, loopback TCP written straight into a file (the "trivial pipe" a
//! broker with acks=1 competes with), sequential file writes with and without fsync, and
//! the loopback round trip (the floor under any request latency).
//!
//! Each is the simplest loop that does the job: one thread writes fixed-size chunks, one
//! reads them; nothing is parsed, nothing is copied twice. When Debian's `nc`
//! (netcat-openbsd) is installed, the pipe is also measured with it, as a check that the
//! self-written one is not slower than the obvious shell pipe.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Size of each write and read: large, as a broker's appends of many batches are.
const CHUNK_BYTES: usize = 1 << 20;

/// Bytes per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rate {
    pub(crate) bytes_per_sec: f64,
}

impl Rate {
    pub(crate) fn mb_per_sec(self) -> f64 {
        self.bytes_per_sec / crate::MB
    }
}

/// Everything measured about the machine.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) tcp_loopback: Rate,
    pub(crate) tcp_into_file: Rate,
    /// The same pipe through `nc`, when it is installed.
    pub(crate) nc_into_file: Option<Rate>,
    pub(crate) disk_write: Rate,
    pub(crate) disk_write_fsync_1mib: Rate,
    pub(crate) disk_write_fsync_64kib: Rate,
    /// Loopback round trip of a 1 KiB message, p50 and p99, in milliseconds.
    pub(crate) rtt_p50_ms: f64,
    pub(crate) rtt_p99_ms: f64,
}

/// Measures every limit, each for about `seconds`, with scratch files under `dir`.
pub(crate) fn measure(dir: &Path, seconds: f64) -> std::io::Result<Limits> {
    let run = Duration::from_secs_f64(seconds);
    let file = dir.join("limits.bin");
    let tcp_loopback = tcp(None, Amount::For(run))?;
    let tcp_into_file = tcp(Some(&file), Amount::For(run))?;
    let nc_into_file = nc_pipe(dir, run);
    let disk_write = disk(&file, run, None)?;
    let disk_write_fsync_1mib = disk(&file, run, Some(1 << 20))?;
    let disk_write_fsync_64kib = disk(&file, run, Some(64 << 10))?;
    let _ = std::fs::remove_file(&file);
    let (rtt_p50_ms, rtt_p99_ms) = round_trip(run)?;
    Ok(Limits {
        tcp_loopback,
        tcp_into_file,
        nc_into_file,
        disk_write,
        disk_write_fsync_1mib,
        disk_write_fsync_64kib,
        rtt_p50_ms,
        rtt_p99_ms,
    })
}

/// How much a pipe moves: for a time, or a number of bytes.
#[derive(Clone, Copy)]
enum Amount {
    For(Duration),
    Bytes(u64),
}

/// The trivial pipe moving exactly `bytes` into a new file under `dir`, which is removed
/// afterwards: the bound of a produce run of that many bytes, measured right before it,
/// so that both see the same state of the page cache and of whatever else the machine
/// is doing.
pub(crate) fn pipe_bytes(dir: &Path, bytes: u64) -> std::io::Result<Rate> {
    let file = dir.join("pipe.bin");
    let rate = tcp(Some(&file), Amount::Bytes(bytes));
    let _ = std::fs::remove_file(&file);
    rate
}

/// Loopback TCP alone moving exactly `bytes`: the bound of a consume run of that many
/// bytes, measured beside it.
pub(crate) fn loopback_bytes(bytes: u64) -> std::io::Result<Rate> {
    tcp(None, Amount::Bytes(bytes))
}

/// One sender thread writes `CHUNK_BYTES` chunks for `amount`; the receiver reads them
/// and writes them into `into` (or drops them). The rate counts bytes that reached the
/// receiver's end (its file, when there is one).
fn tcp(into: Option<&Path>, amount: Amount) -> std::io::Result<Rate> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        let chunk = vec![b'x'; CHUNK_BYTES];
        let start = Instant::now();
        let mut sent = 0u64;
        loop {
            let n = match amount {
                Amount::For(run) if start.elapsed() < run => CHUNK_BYTES,
                Amount::Bytes(total) if sent < total => {
                    (total - sent).min(CHUNK_BYTES as u64) as usize
                }
                _ => return Ok(()),
            };
            s.write_all(&chunk[..n])?;
            sent += n as u64;
        }
    });
    let (mut conn, _) = listener.accept()?;
    let mut out = match into {
        Some(p) => Some(File::create(p)?),
        None => None,
    };
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    let start = Instant::now();
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(f) = out.as_mut() {
            f.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().expect("sender thread")?;
    Ok(Rate {
        bytes_per_sec: total as f64 / secs,
    })
}

/// `nc -l` into a file, fed by `nc` reading a file of zeros: the shell's trivial pipe.
/// `None` when `nc` is missing or does not behave as netcat-openbsd.
fn nc_pipe(dir: &Path, run: Duration) -> Option<Rate> {
    let source = dir.join("nc-source.bin");
    let sink = dir.join("nc-sink.bin");
    // As much as the self-written pipe moves in about `run` at 1 GB/s, capped at 1 GiB.
    let bytes = (run.as_secs_f64() * 1e9).min((1u64 << 30) as f64) as u64;
    let result = (|| -> Option<Rate> {
        let mut f = File::create(&source).ok()?;
        let chunk = vec![0u8; CHUNK_BYTES];
        for _ in 0..bytes / CHUNK_BYTES as u64 {
            f.write_all(&chunk).ok()?;
        }
        drop(f);
        let port = free_port()?;
        let mut listen = Command::new("nc")
            .args(["-l", "127.0.0.1", &port.to_string()])
            .stdout(File::create(&sink).ok()?)
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let status = Command::new("nc")
            .args(["-N", "127.0.0.1", &port.to_string()])
            .stdin(File::open(&source).ok()?)
            .stderr(Stdio::null())
            .status();
        // A listener that does not exit at the end of its connection is not the nc
        // this expects: give up on it rather than hang the benchmark.
        let deadline = Instant::now() + run + Duration::from_secs(10);
        let exited = loop {
            match listen.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = listen.kill();
                    let _ = listen.wait();
                    break false;
                }
            }
        };
        let secs = start.elapsed().as_secs_f64();
        if !status.ok()?.success() || !exited {
            return None;
        }
        let got = std::fs::metadata(&sink).ok()?.len();
        (got == bytes - bytes % CHUNK_BYTES as u64).then_some(Rate {
            bytes_per_sec: got as f64 / secs,
        })
    })();
    let _ = std::fs::remove_file(&source);
    let _ = std::fs::remove_file(&sink);
    result
}

fn free_port() -> Option<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ok()?;
    l.local_addr().ok().map(|a| a.port())
}

/// Sequential `CHUNK_BYTES` writes to a new file for `run`, with an fdatasync after every
/// `sync_every` bytes (and at the end) when asked.
fn disk(path: &Path, run: Duration, sync_every: Option<usize>) -> std::io::Result<Rate> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    let write_bytes = sync_every.unwrap_or(CHUNK_BYTES).min(CHUNK_BYTES);
    let chunk = vec![b'x'; write_bytes];
    let mut total = 0u64;
    let start = Instant::now();
    while start.elapsed() < run {
        f.write_all(&chunk)?;
        total += write_bytes as u64;
        if sync_every.is_some() {
            f.sync_data()?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(path)?;
    Ok(Rate {
        bytes_per_sec: total as f64 / secs,
    })
}

/// Ping-pong of 1 KiB messages over loopback TCP (Nagle off) for `run`: p50 and p99 of
/// the round trip, in milliseconds.
fn round_trip(run: Duration) -> std::io::Result<(f64, f64)> {
    const MSG: usize = 1024;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut c, _) = listener.accept()?;
        c.set_nodelay(true)?;
        let mut buf = [0u8; MSG];
        loop {
            match c.read_exact(&mut buf) {
                Ok(()) => c.write_all(&buf)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; MSG];
    let mut samples_us = Vec::new();
    let start = Instant::now();
    // A bound on the samples kept, whatever the machine's speed.
    while start.elapsed() < run && samples_us.len() < 1_000_000 {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        samples_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(s);
    echo.join().expect("echo thread")?;
    samples_us.sort_by(f64::total_cmp);
    Ok((
        crate::percentile(&samples_us, 0.50) / 1000.0,
        crate::percentile(&samples_us, 0.99) / 1000.0,
    ))
}

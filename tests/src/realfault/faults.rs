//! Faults injected into a real cluster from outside, on a schedule one printed seed
//! decides: kill -9 and restart, SIGSTOP/SIGCONT past the broker session timeout,
//! network partitions (one broker isolated from everyone, a majority/minority split
//! between brokers, one direction cut) with iptables inside the namespaces, a slow lossy
//! link, and a data disk that fills up.
//!
//! This kernel has no `sch_netem` (nor `fq_codel`, `prio`, or tc's drop action), so the
//! slow link is a token-bucket rate limit (`tc qdisc tbf`, which queues and delays what
//! exceeds it) plus random loss (iptables' `statistic` match), not netem's fixed delay.
//! Episodes follow one another, one fault at a time, with a pause between them.

use std::fmt;

use super::cluster::{Cluster, BROKERS};

/// splitmix64: a seeded generator small enough to keep here, so the schedule is the same
/// on every machine for a seed (no dependency, no ambient randomness).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One kind of fault, with its target (brokers are 0-based here, printed 1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// kill -9, restarted on its files when the episode ends.
    Kill { broker: usize },
    /// SIGSTOP, SIGCONT when the episode ends (longer than broker.session.timeout.ms).
    Pause { broker: usize },
    /// Cut off from the other brokers and from the clients, both ways.
    Isolate { broker: usize },
    /// Majority/minority: `broker` cut off from the other two brokers, both ways; the
    /// clients still reach every broker.
    Split { broker: usize },
    /// Packets from `from` to `to` dropped; the other direction flows.
    OneWay { from: usize, to: usize },
    /// `broker`'s link rate-limited and lossy, both ways.
    SlowLossy { broker: usize, loss_percent: u64 },
    /// `broker`'s data log dir full (ENOSPC) until the episode ends.
    DiskFull { broker: usize },
}

impl Fault {
    /// The kind's name, as in [`KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Isolate { .. } => "isolate",
            Fault::Split { .. } => "split",
            Fault::OneWay { .. } => "one-way",
            Fault::SlowLossy { .. } => "slow-lossy",
            Fault::DiskFull { .. } => "disk-full",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Kill { broker } => write!(f, "kill -9 broker {}, then restart", broker + 1),
            Fault::Pause { broker } => write!(f, "SIGSTOP broker {}, then SIGCONT", broker + 1),
            Fault::Isolate { broker } => write!(f, "isolate broker {} from everyone", broker + 1),
            Fault::Split { broker } => write!(
                f,
                "split brokers: {} alone, the other two together (clients reach all)",
                broker + 1
            ),
            Fault::OneWay { from, to } => {
                write!(
                    f,
                    "drop packets from broker {} to broker {}",
                    from + 1,
                    to + 1
                )
            }
            Fault::SlowLossy {
                broker,
                loss_percent,
            } => write!(
                f,
                "broker {}'s link at 1 mbit/s with {loss_percent}% loss",
                broker + 1
            ),
            Fault::DiskFull { broker } => write!(f, "fill broker {}'s data disk", broker + 1),
        }
    }
}

/// The kinds a schedule draws from, by name (`EDDY_FAULT_KINDS` narrows it).
pub const KINDS: &[&str] = &[
    "kill",
    "pause",
    "isolate",
    "split",
    "one-way",
    "slow-lossy",
    "disk-full",
];

/// One fault from `start_ms` (since the workload began) for `duration_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Episode {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub fault: Fault,
}

impl fmt::Display for Episode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6} ms +{:>5} ms  {}",
            self.start_ms, self.duration_ms, self.fault
        )
    }
}

/// The episodes of `seed` between `first_ms` and `until_ms`, drawn from `kinds`: a
/// seeded shuffle of the kinds, repeated, so each seed meets several different ones.
pub fn schedule(seed: u64, kinds: &[&str], first_ms: u64, until_ms: u64) -> Vec<Episode> {
    assert!(!kinds.is_empty(), "no fault kinds to draw from");
    let mut rng = Rng::new(seed);
    let mut order: Vec<&str> = kinds.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.range(0, i as u64) as usize);
    }
    let mut episodes = Vec::new();
    let mut at = first_ms;
    for kind in order.iter().cycle() {
        let broker = rng.range(0, BROKERS as u64 - 1) as usize;
        let (fault, duration_ms) = match *kind {
            "kill" => (Fault::Kill { broker }, rng.range(2_000, 6_000)),
            // Past broker.session.timeout.ms (3 s in these runs): the broker is fenced.
            "pause" => (Fault::Pause { broker }, rng.range(4_000, 7_000)),
            "isolate" => (Fault::Isolate { broker }, rng.range(4_000, 9_000)),
            "split" => (Fault::Split { broker }, rng.range(4_000, 9_000)),
            "one-way" => {
                let to = (broker + rng.range(1, BROKERS as u64 - 1) as usize) % BROKERS;
                (Fault::OneWay { from: broker, to }, rng.range(4_000, 9_000))
            }
            "slow-lossy" => (
                Fault::SlowLossy {
                    broker,
                    loss_percent: rng.range(5, 20),
                },
                rng.range(5_000, 9_000),
            ),
            "disk-full" => (Fault::DiskFull { broker }, rng.range(3_000, 7_000)),
            other => panic!("unknown fault kind {other}; the kinds are {KINDS:?}"),
        };
        if at + duration_ms > until_ms {
            break;
        }
        episodes.push(Episode {
            start_ms: at,
            duration_ms,
            fault,
        });
        at += duration_ms + rng.range(1_500, 3_500);
    }
    episodes
}

/// Starts `fault`.
pub fn inject(cluster: &mut Cluster, fault: Fault) {
    let ip = |c: &Cluster, b: usize| c.brokers[b].host.ip.clone();
    match fault {
        Fault::Kill { broker } => cluster.kill(broker),
        Fault::Pause { broker } => cluster.signal(broker, "STOP"),
        Fault::Isolate { broker } => {
            let ns = cluster.brokers[broker].host.netns.clone();
            // Everything but loopback, both ways.
            cluster.iptables(&ns, &["-A", "INPUT", "-i", "eth0", "-j", "DROP"]);
            cluster.iptables(&ns, &["-A", "OUTPUT", "-o", "eth0", "-j", "DROP"]);
        }
        Fault::Split { broker } => {
            let ns = cluster.brokers[broker].host.netns.clone();
            for other in (0..BROKERS).filter(|o| *o != broker) {
                let peer = ip(cluster, other);
                cluster.iptables(&ns, &["-A", "INPUT", "-s", &peer, "-j", "DROP"]);
                cluster.iptables(&ns, &["-A", "OUTPUT", "-d", &peer, "-j", "DROP"]);
            }
        }
        Fault::OneWay { from, to } => {
            let ns = cluster.brokers[from].host.netns.clone();
            let peer = ip(cluster, to);
            cluster.iptables(&ns, &["-A", "OUTPUT", "-d", &peer, "-j", "DROP"]);
        }
        Fault::SlowLossy {
            broker,
            loss_percent,
        } => {
            let ns = cluster.brokers[broker].host.netns.clone();
            let p = format!("{:.2}", loss_percent as f64 / 100.0);
            for chain in ["INPUT", "OUTPUT"] {
                let dev = if chain == "INPUT" { "-i" } else { "-o" };
                cluster.iptables(
                    &ns,
                    &[
                        "-A",
                        chain,
                        dev,
                        "eth0",
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        &p,
                        "-j",
                        "DROP",
                    ],
                );
            }
            super::cluster::run(&[
                "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                "rate", "1mbit", "burst", "32kbit", "latency", "400ms",
            ]);
        }
        Fault::DiskFull { broker } => cluster.fill_disk(broker),
    }
}

/// Ends `fault`.
pub fn heal(cluster: &mut Cluster, fault: Fault) {
    match fault {
        Fault::Kill { broker } => cluster.restart(broker),
        Fault::Pause { broker } => cluster.signal(broker, "CONT"),
        Fault::Isolate { .. }
        | Fault::Split { .. }
        | Fault::OneWay { .. }
        | Fault::SlowLossy { .. } => cluster.heal_network(),
        Fault::DiskFull { broker } => cluster.free_disk(broker),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_decides_the_schedule() {
        let a = schedule(7, KINDS, 5_000, 40_000);
        let b = schedule(7, KINDS, 5_000, 40_000);
        let c = schedule(8, KINDS, 5_000, 40_000);
        let show = |s: &[Episode]| s.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(show(&a), show(&b));
        assert_ne!(show(&a), show(&c));
        assert!(a.len() >= 3, "{:?}", show(&a));
        assert!(a.iter().all(|e| e.start_ms + e.duration_ms <= 40_000));
    }
}

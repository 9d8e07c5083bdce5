//! The figures as BENCHMARKS.md shows them: one row per configuration, every Eddy figure
//! beside the machine limit that bounds it and the fraction of that limit it reached.

use std::fmt::Write;

use crate::limits::{Limits, Rate};
use crate::perf::{Consumed, Produced};

/// One benchmarked configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) brokers: u16,
    pub(crate) replication_factor: u16,
    /// `"1"` or `"all"`.
    pub(crate) acks: &'static str,
    pub(crate) record_bytes: usize,
}

impl Config {
    /// A short name, for topics and the plot's axis.
    pub(crate) fn short(&self) -> String {
        format!(
            "{}b/rf{} acks={} {}",
            self.brokers,
            self.replication_factor,
            self.acks,
            size_name(self.record_bytes)
        )
    }

    /// The id `--only` selects this configuration by, e.g. `1b-acks1-1k`.
    pub(crate) fn id(&self) -> String {
        let size = if self.record_bytes.is_multiple_of(1024) {
            format!("{}k", self.record_bytes / 1024)
        } else {
            self.record_bytes.to_string()
        };
        format!("{}b-acks{}-{size}", self.brokers, self.acks)
    }

    pub(crate) fn topic(&self) -> String {
        format!(
            "bench-{}b-rf{}-acks{}-{}",
            self.brokers, self.replication_factor, self.acks, self.record_bytes
        )
    }
}

fn size_name(bytes: usize) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// Everything measured for one configuration.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) config: Config,
    pub(crate) throughput: Produced,
    pub(crate) consumed: Consumed,
    /// The latency run, and the rate it was run at (records/s).
    pub(crate) latency: Produced,
    pub(crate) latency_rate: u64,
    /// The trivial pipe moving the throughput run's bytes: the better of a measure right
    /// before the run and one right after it.
    pub(crate) pipe: Rate,
    /// Loopback TCP moving the consume run's bytes, the better of before and after it.
    pub(crate) loopback: Rate,
}

/// The rate a produce run is bound by, in MB/s: the trivial pipe (loopback TCP into a
/// file, measured with the run's bytes beside it) divided by the replication
/// factor, since on one machine every byte is received over loopback and written to a
/// file once per replica.
pub(crate) fn produce_bound_mb(pipe: Rate, replication_factor: u16) -> f64 {
    pipe.mb_per_sec() / f64::from(replication_factor.max(1))
}

/// The rate a consume run is bound by, in MB/s: loopback TCP alone (fetches are served
/// from memory, not from the disk).
pub(crate) fn consume_bound_mb(loopback: Rate) -> f64 {
    loopback.mb_per_sec()
}

/// `part / whole` as a percentage with one decimal, or "–" when the whole is zero.
pub(crate) fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 || !whole.is_finite() {
        return "–".to_string();
    }
    format!("{:.1}%", 100.0 * part / whole)
}

/// `value / floor` as a multiple with one decimal ("12.5×"), for latencies against the
/// loopback round trip.
pub(crate) fn times(value: f64, floor: f64) -> String {
    if floor <= 0.0 || !floor.is_finite() {
        return "–".to_string();
    }
    format!("{:.0}×", value / floor)
}

/// The limits as a Markdown table.
pub(crate) fn limits_table(l: &Limits) -> String {
    let mut s = String::new();
    s.push_str("| limit | measured |\n|---|---|\n");
    let mut line = |name: &str, v: String| {
        let _ = writeln!(s, "| {name} | {v} |");
    };
    line(
        "loopback TCP, bytes dropped by the receiver",
        format!("{:.0} MB/s", l.tcp_loopback.mb_per_sec()),
    );
    line(
        "**trivial pipe**: loopback TCP written straight into a file (no fsync)",
        format!("{:.0} MB/s", l.tcp_into_file.mb_per_sec()),
    );
    line(
        "the same pipe through `nc -l > file` (netcat-openbsd)",
        l.nc_into_file.map_or("nc not installed".to_string(), |r| {
            format!("{:.0} MB/s", r.mb_per_sec())
        }),
    );
    line(
        "sequential file writes, 1 MiB each, no fsync",
        format!("{:.0} MB/s", l.disk_write.mb_per_sec()),
    );
    line(
        "sequential file writes, fdatasync after every 1 MiB",
        format!("{:.0} MB/s", l.disk_write_fsync_1mib.mb_per_sec()),
    );
    line(
        "sequential file writes, fdatasync after every 64 KiB",
        format!("{:.0} MB/s", l.disk_write_fsync_64kib.mb_per_sec()),
    );
    line(
        "loopback TCP round trip of 1 KiB, p50 / p99",
        format!("{:.3} ms / {:.3} ms", l.rtt_p50_ms, l.rtt_p99_ms),
    );
    s
}

/// The throughput table: produce and consume rates, each with its bound and fraction.
pub(crate) fn throughput_table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str(
        "| configuration | produce records/s | produce MB/s | pipe MB/s ÷ RF | of bound \
         | consume records/s | consume MB/s | loopback TCP MB/s | of bound |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let bound = produce_bound_mb(r.pipe, r.config.replication_factor);
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.1} | {:.0} | {} | {:.0} | {:.1} | {:.0} | {} |",
            r.config.short(),
            r.throughput.records_per_sec,
            r.throughput.mb_per_sec,
            bound,
            percent(r.throughput.mb_per_sec, bound),
            r.consumed.records_per_sec,
            r.consumed.mb_per_sec,
            r.loopback.mb_per_sec(),
            percent(r.consumed.mb_per_sec, consume_bound_mb(r.loopback)),
        );
    }
    s
}

/// The latency table: produce latency (send to acknowledgement) at a fixed rate, and its
/// p50 and p99 as multiples of the loopback round trip's.
pub(crate) fn latency_table(rows: &[Row], l: &Limits) -> String {
    let mut s = String::new();
    s.push_str(
        "| configuration | rate records/s | p50 ms | p99 ms | p99.9 ms | max ms \
         | p50 / loopback p50 | p99 / loopback p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let p = &r.latency;
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.config.short(),
            r.latency_rate,
            p.p50_ms,
            p.p99_ms,
            p.p999_ms,
            p.max_ms,
            times(p.p50_ms, l.rtt_p50_ms),
            times(p.p99_ms, l.rtt_p99_ms),
        );
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn limits(pipe_mb: f64, tcp_mb: f64) -> Limits {
        let rate = |mb: f64| Rate {
            bytes_per_sec: mb * crate::MB,
        };
        Limits {
            tcp_loopback: rate(tcp_mb),
            tcp_into_file: rate(pipe_mb),
            nc_into_file: None,
            disk_write: rate(1.0),
            disk_write_fsync_1mib: rate(1.0),
            disk_write_fsync_64kib: rate(1.0),
            rtt_p50_ms: 0.05,
            rtt_p99_ms: 0.1,
        }
    }

    #[test]
    fn replicated_produce_is_bound_by_the_pipe_shared_by_every_replica() {
        let pipe = Rate {
            bytes_per_sec: 900.0 * crate::MB,
        };
        assert_eq!(produce_bound_mb(pipe, 1), 900.0);
        assert_eq!(produce_bound_mb(pipe, 3), 300.0);
        let loopback = Rate {
            bytes_per_sec: 3000.0 * crate::MB,
        };
        assert_eq!(consume_bound_mb(loopback), 3000.0);
    }

    #[test]
    fn the_limits_table_names_the_trivial_pipe_and_says_when_nc_is_missing() {
        let t = limits_table(&limits(900.0, 3000.0));
        assert!(
            t.contains("loopback TCP written straight into a file (no fsync) | 900 MB/s"),
            "{t}"
        );
        assert!(
            t.contains("bytes dropped by the receiver | 3000 MB/s"),
            "{t}"
        );
        assert!(t.contains("nc not installed"), "{t}");
    }

    #[test]
    fn fractions_and_multiples_print_with_their_unit_and_never_divide_by_zero() {
        assert_eq!(percent(450.0, 900.0), "50.0%");
        assert_eq!(percent(1.0, 0.0), "–");
        assert_eq!(times(2.5, 0.05), "50×");
        assert_eq!(times(2.5, 0.0), "–");
    }

    /// A 3-broker acks=all 1 KiB row producing at 150 MB/s beside a 900 MB/s pipe.
    pub(crate) fn sample_row() -> Row {
        let config = Config {
            brokers: 3,
            replication_factor: 3,
            acks: "all",
            record_bytes: 1024,
        };
        Row {
            config,
            throughput: Produced {
                mb_per_sec: 150.0,
                records_per_sec: 153_600.0,
                ..Produced::default()
            },
            consumed: Consumed::default(),
            latency: Produced::default(),
            latency_rate: 1000,
            pipe: Rate {
                bytes_per_sec: 900.0 * crate::MB,
            },
            loopback: Rate {
                bytes_per_sec: 3000.0 * crate::MB,
            },
        }
    }

    #[test]
    fn a_row_shows_its_figure_beside_its_bound() {
        let t = throughput_table(&[sample_row()]);
        assert!(
            t.contains("| 3b/rf3 acks=all 1 KiB | 153600 | 150.0 | 300 | 50.0% |"),
            "{t}"
        );
    }
}

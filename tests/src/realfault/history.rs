//! The history of a real-cluster run: what each client was told, one line per operation,
//! tab-separated, in files the workload processes append to (one file per process, so
//! lines never interleave). The checker reads them back; tests write them by hand.
//!
//! Lines (times are milliseconds since the Unix epoch, one machine's clock):
//!
//! ```text
//! P  t  producer  seq  outcome  partition  offset  detail      a produce finished
//! A  t  member  assignment  partitions                          a member's new assignment
//! R  t  member  assignment  partition  offset  value            a member read a record
//! C  t_start  t_end  member  partition  offset  outcome         an offset commit finished
//! F  partition  offset  value                                   the final read, after healing
//! E  partition  log_end_offset  committed                       the log end and the group's commit at the end
//! H  t                                                          the harness healed every fault
//! ```
//!
//! A record's value is `producer:seq`, so every read names the write it came from.

use std::fmt;

/// What a client learned of one operation. *Unknown* (a timeout, a lost connection, an
/// error after which the write may or may not have landed) promises nothing either way
/// and is never counted as a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Unknown,
}

impl Outcome {
    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "ok" => Some(Outcome::Ok),
            "failed" => Some(Outcome::Failed),
            "unknown" => Some(Outcome::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        })
    }
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Produce {
        t_ms: u64,
        producer: String,
        seq: u64,
        outcome: Outcome,
        partition: i32,
        /// -1 when not known (not acknowledged, or a duplicate the broker did not place).
        offset: i64,
    },
    Assign {
        t_ms: u64,
        member: String,
        assignment: u64,
        partitions: Vec<i32>,
    },
    Read {
        t_ms: u64,
        member: String,
        assignment: u64,
        partition: i32,
        offset: i64,
        value: String,
    },
    Commit {
        t_start_ms: u64,
        t_end_ms: u64,
        member: String,
        partition: i32,
        offset: i64,
        outcome: Outcome,
    },
    FinalRead {
        partition: i32,
        offset: i64,
        value: String,
    },
    End {
        partition: i32,
        log_end_offset: i64,
        committed: i64,
    },
    Healed {
        t_ms: u64,
    },
}

impl Op {
    /// The value a produce wrote: `producer:seq`.
    pub fn value_of(producer: &str, seq: u64) -> String {
        format!("{producer}:{seq}")
    }

    /// Parses one line; `None` for a line that is not one of the forms above (a torn
    /// last line of a process that was stopped mid-write).
    pub fn parse(line: &str) -> Option<Op> {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| -> Option<i64> { f.get(i)?.parse().ok() };
        let u = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
        let s = |i: usize| -> Option<String> { f.get(i).map(|s| s.to_string()) };
        Some(match *f.first()? {
            "P" => Op::Produce {
                t_ms: u(1)?,
                producer: s(2)?,
                seq: u(3)?,
                outcome: Outcome::parse(f.get(4)?)?,
                partition: n(5)? as i32,
                offset: n(6)?,
            },
            "A" => Op::Assign {
                t_ms: u(1)?,
                member: s(2)?,
                assignment: u(3)?,
                partitions: f
                    .get(4)?
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .collect(),
            },
            "R" => Op::Read {
                t_ms: u(1)?,
                member: s(2)?,
                assignment: u(3)?,
                partition: n(4)? as i32,
                offset: n(5)?,
                value: s(6)?,
            },
            "C" => Op::Commit {
                t_start_ms: u(1)?,
                t_end_ms: u(2)?,
                member: s(3)?,
                partition: n(4)? as i32,
                offset: n(5)?,
                outcome: Outcome::parse(f.get(6)?)?,
            },
            "F" => Op::FinalRead {
                partition: n(1)? as i32,
                offset: n(2)?,
                value: s(3)?,
            },
            "E" => Op::End {
                partition: n(1)? as i32,
                log_end_offset: n(2)?,
                committed: n(3)?,
            },
            "H" => Op::Healed { t_ms: u(1)? },
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Produce {
                t_ms,
                producer,
                seq,
                outcome,
                partition,
                offset,
            } => write!(
                f,
                "P\t{t_ms}\t{producer}\t{seq}\t{outcome}\t{partition}\t{offset}"
            ),
            Op::Assign {
                t_ms,
                member,
                assignment,
                partitions,
            } => {
                let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
                write!(f, "A\t{t_ms}\t{member}\t{assignment}\t{}", list.join(","))
            }
            Op::Read {
                t_ms,
                member,
                assignment,
                partition,
                offset,
                value,
            } => write!(
                f,
                "R\t{t_ms}\t{member}\t{assignment}\t{partition}\t{offset}\t{value}"
            ),
            Op::Commit {
                t_start_ms,
                t_end_ms,
                member,
                partition,
                offset,
                outcome,
            } => write!(
                f,
                "C\t{t_start_ms}\t{t_end_ms}\t{member}\t{partition}\t{offset}\t{outcome}"
            ),
            Op::FinalRead {
                partition,
                offset,
                value,
            } => write!(f, "F\t{partition}\t{offset}\t{value}"),
            Op::End {
                partition,
                log_end_offset,
                committed,
            } => write!(f, "E\t{partition}\t{log_end_offset}\t{committed}"),
            Op::Healed { t_ms } => write!(f, "H\t{t_ms}"),
        }
    }
}

/// Every parsable line of every history file in `dir` (files ending in `.history`).
pub fn read_dir(dir: &std::path::Path) -> std::io::Result<Vec<Op>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "history"))
        .collect();
    files.sort();
    let mut ops = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        ops.extend(text.lines().filter_map(Op::parse));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_form_round_trips() {
        let ops = [
            Op::Produce {
                t_ms: 1,
                producer: "e1".into(),
                seq: 7,
                outcome: Outcome::Unknown,
                partition: 2,
                offset: -1,
            },
            Op::Assign {
                t_ms: 2,
                member: "c1".into(),
                assignment: 3,
                partitions: vec![0, 2],
            },
            Op::Read {
                t_ms: 3,
                member: "c1".into(),
                assignment: 3,
                partition: 0,
                offset: 9,
                value: "e1:7".into(),
            },
            Op::Commit {
                t_start_ms: 4,
                t_end_ms: 5,
                member: "c1".into(),
                partition: 0,
                offset: 10,
                outcome: Outcome::Ok,
            },
            Op::FinalRead {
                partition: 0,
                offset: 9,
                value: "e1:7".into(),
            },
            Op::End {
                partition: 0,
                log_end_offset: 10,
                committed: 10,
            },
            Op::Healed { t_ms: 6 },
        ];
        for op in ops {
            assert_eq!(Op::parse(&op.to_string()), Some(op.clone()), "{op}");
        }
        assert_eq!(Op::parse("P\t1\te1"), None, "a torn line is skipped");
    }
}

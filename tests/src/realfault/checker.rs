//! The checker of a real-cluster history: what the clients were told must be consistent
//! with one log per partition, the same rules the simulator's checkers hold the core to
//! (`sim/src/invariants/`: idempotent-producers, dense-stable-offsets, acked-durability,
//! group-commits-monotonic, group-sees-every-record, liveness), restated over what a
//! client can observe: the simulator's checkers read the brokers' own observations
//! (batches, epochs, HWs), which a real cluster does not hand out.
//!
//! An operation whose outcome is unknown promises nothing: it may appear once or not at
//! all, never twice. Only acknowledged operations are owed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::history::{Op, Outcome};

/// How long after healing a producer may go without an acknowledgement: a broker
/// restarted by the last fault is fenced and its leaderships moved within a few seconds
/// (broker.session.timeout.ms = 3 s), a delivery retried within a request timeout.
pub const PRODUCER_RECOVERY_MS: u64 = 10_000;

/// One broken rule, with the operations that break it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
    pub ops: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.rule, self.detail)?;
        for op in &self.ops {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

/// What was checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub produced_ok: usize,
    pub produced_unknown: usize,
    pub produced_failed: usize,
    pub reads: usize,
    pub commits_ok: usize,
    pub commits_other: usize,
    pub final_records: usize,
}

impl Summary {
    pub fn operations(&self) -> usize {
        self.produced_ok
            + self.produced_unknown
            + self.produced_failed
            + self.reads
            + self.commits_ok
            + self.commits_other
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations: produce ok {} / unknown {} / failed {}, {} group reads, commits ok {} / other {}; {} records in the final log",
            self.operations(),
            self.produced_ok,
            self.produced_unknown,
            self.produced_failed,
            self.reads,
            self.commits_ok,
            self.commits_other,
            self.final_records
        )
    }
}

/// Checks `ops` (every history file of a run, the final read included).
pub fn check(ops: &[Op]) -> (Summary, Vec<Violation>) {
    let mut summary = Summary::default();
    let mut violations = Vec::new();
    let mut bad = |rule: &'static str, detail: String, ops: Vec<String>| {
        violations.push(Violation { rule, detail, ops })
    };

    // Every value some producer tried to write, and the acknowledged ones.
    let mut attempted: BTreeMap<String, &Op> = BTreeMap::new();
    let mut acked: BTreeMap<String, &Op> = BTreeMap::new();
    // The final log: (partition, offset) -> value, and where each value landed.
    let mut log: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let mut placed: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    let mut ends: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Produce {
                producer,
                seq,
                outcome,
                ..
            } => {
                let value = Op::value_of(producer, *seq);
                match outcome {
                    Outcome::Ok => {
                        summary.produced_ok += 1;
                        acked.insert(value.clone(), op);
                    }
                    Outcome::Unknown => summary.produced_unknown += 1,
                    Outcome::Failed => summary.produced_failed += 1,
                }
                attempted.insert(value, op);
            }
            Op::Read { .. } => summary.reads += 1,
            Op::Commit { outcome, .. } => {
                if *outcome == Outcome::Ok {
                    summary.commits_ok += 1
                } else {
                    summary.commits_other += 1
                }
            }
            Op::FinalRead {
                partition,
                offset,
                value,
            } => {
                summary.final_records += 1;
                if let Some(other) = log.insert((*partition, *offset), value) {
                    if other != value {
                        bad(
                            "divergent-read",
                            format!("the final read saw two values at {partition}@{offset}"),
                            vec![format!("{other}"), op.to_string()],
                        );
                    }
                    continue;
                }
                placed
                    .entry(value.as_str())
                    .or_default()
                    .push((*partition, *offset));
            }
            Op::End {
                partition,
                log_end_offset,
                committed,
            } => {
                ends.insert(*partition, (*log_end_offset, *committed));
            }
            Op::Assign { .. } | Op::Healed { .. } => {}
        }
    }

    // Acknowledged writes: exactly once, where the ack said, in their producer's order.
    for (value, op) in &acked {
        let Op::Produce {
            partition, offset, ..
        } = op
        else {
            unreachable!("only produces are acked");
        };
        match placed.get(value.as_str()).map(Vec::as_slice) {
            None | Some([]) => bad(
                "acked-write-lost",
                format!("acknowledged {value} is not in the final log"),
                vec![op.to_string()],
            ),
            Some([(p, o)]) => {
                if *offset >= 0 && (*p, *o) != (*partition, *offset) {
                    bad(
                        "acked-offset-moved",
                        format!("acknowledged {value} at {partition}@{offset} is at {p}@{o}"),
                        vec![op.to_string()],
                    );
                }
            }
            Some(_) => {}
        }
    }
    for (value, at) in &placed {
        if at.len() > 1 {
            let ops = at
                .iter()
                .map(|(p, o)| format!("F\t{p}\t{o}\t{value}"))
                .chain(attempted.get(*value).map(|op| op.to_string()))
                .collect();
            bad(
                "duplicate",
                format!("{value} is in the final log {} times", at.len()),
                ops,
            );
        }
        if !attempted.contains_key(*value) {
            bad(
                "phantom-record",
                format!("{value} is in the final log but no producer sent it"),
                vec![format!("{at:?}")],
            );
        }
    }
    let mut by_producer: BTreeMap<&str, Vec<(u64, &Op)>> = BTreeMap::new();
    for op in acked.values() {
        if let Op::Produce { producer, seq, .. } = op {
            by_producer.entry(producer).or_default().push((*seq, op));
        }
    }
    for (producer, mut sent) in by_producer {
        sent.sort_by_key(|(seq, _)| *seq);
        let mut last: Option<((i32, i64), &Op)> = None;
        for (seq, op) in sent {
            let value = Op::value_of(producer, seq);
            let Some([at]) = placed.get(value.as_str()).map(Vec::as_slice) else {
                continue;
            };
            if let Some((before, before_op)) = last {
                if before.0 == at.0 && before.1 > at.1 {
                    bad(
                        "producer-order",
                        format!(
                            "{producer}'s acknowledged writes are out of the order it sent them in"
                        ),
                        vec![
                            format!("{before_op}  (in the log at {}@{})", before.0, before.1),
                            format!("{op}  (in the log at {}@{})", at.0, at.1),
                        ],
                    );
                }
            }
            last = Some((*at, op));
        }
    }

    // Group reads: the one value at each offset, nothing nobody sent, forward only within
    // an assignment, and every acknowledged write seen.
    let mut read_values: BTreeMap<(i32, i64), &Op> = BTreeMap::new();
    let mut positions: BTreeMap<(&str, u64, i32), &Op> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        let Op::Read {
            member,
            assignment,
            partition,
            offset,
            value,
            ..
        } = op
        else {
            continue;
        };
        seen.insert(value);
        if !attempted.contains_key(value) {
            bad(
                "phantom-read",
                format!("{member} read {value}, which no producer sent"),
                vec![op.to_string()],
            );
        }
        let final_value = log.get(&(*partition, *offset));
        if final_value.is_some_and(|v| v != value) {
            bad(
                "divergent-read",
                format!(
                    "{member} read {value} at {partition}@{offset}, the final log has {}",
                    final_value.expect("some")
                ),
                vec![op.to_string()],
            );
        }
        if let Some(other) = read_values.insert((*partition, *offset), op) {
            if let Op::Read { value: v, .. } = other {
                if v != value {
                    bad(
                        "divergent-read",
                        format!("two reads of {partition}@{offset} saw different values"),
                        vec![other.to_string(), op.to_string()],
                    );
                }
            }
        }
        if let Some(before) = positions.insert((member, *assignment, *partition), op) {
            if let Op::Read { offset: o, .. } = before {
                if o >= offset {
                    bad(
                        "read-went-back",
                        format!(
                            "{member} read {partition}@{offset} after {partition}@{o} in one assignment"
                        ),
                        vec![before.to_string(), op.to_string()],
                    );
                }
            }
        }
    }
    for (value, op) in &acked {
        if !seen.contains(value.as_str()) {
            bad(
                "group-missed-acked",
                format!("the group never read acknowledged {value}"),
                vec![op.to_string()],
            );
        }
    }

    // Commits: an acknowledged commit is never undone by one sent after it was answered.
    let mut commits: BTreeMap<i32, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if let Op::Commit {
            partition,
            outcome: Outcome::Ok,
            ..
        } = op
        {
            commits.entry(*partition).or_default().push(op);
        }
    }
    let times = |op: &Op| match op {
        Op::Commit {
            t_start_ms,
            t_end_ms,
            offset,
            ..
        } => (*t_start_ms, *t_end_ms, *offset),
        _ => unreachable!("commits only"),
    };
    for (partition, list) in commits {
        let mut by_end = list.clone();
        by_end.sort_by_key(|op| times(op).1);
        let mut by_start = list;
        by_start.sort_by_key(|op| times(op).0);
        let mut highest: Option<&Op> = None;
        let mut i = 0;
        for op in by_start {
            let (start, _, offset) = times(op);
            while i < by_end.len() && times(by_end[i]).1 < start {
                if highest.is_none_or(|h| times(h).2 < times(by_end[i]).2) {
                    highest = Some(by_end[i]);
                }
                i += 1;
            }
            if let Some(h) = highest {
                if times(h).2 > offset {
                    bad(
                        "commit-went-back",
                        format!(
                            "partition {partition}: a commit of {offset} acknowledged after one of {} had been",
                            times(h).2
                        ),
                        vec![h.to_string(), op.to_string()],
                    );
                }
            }
        }
    }

    // After healing, every producer gets writes acknowledged again.
    let healed = ops.iter().find_map(|op| match op {
        Op::Healed { t_ms } => Some(*t_ms),
        _ => None,
    });
    if let Some(healed) = healed {
        let mut last: BTreeMap<&str, (u64, Option<&Op>)> = BTreeMap::new();
        for op in ops {
            if let Op::Produce {
                t_ms,
                producer,
                outcome,
                ..
            } = op
            {
                let entry = last.entry(producer).or_insert((0, None));
                if *outcome == Outcome::Ok {
                    entry.0 = entry.0.max(*t_ms);
                } else if *t_ms >= healed {
                    entry.1 = Some(op);
                }
            }
        }
        for (producer, (last_ok, failed_after)) in last {
            if last_ok < healed + PRODUCER_RECOVERY_MS {
                bad(
                    "producer-stalled-after-heal",
                    format!(
                        "{producer} had no write acknowledged from {PRODUCER_RECOVERY_MS} ms after the faults healed (last at {} ms before that)",
                        (healed + PRODUCER_RECOVERY_MS).saturating_sub(last_ok)
                    ),
                    failed_after.map(|op| op.to_string()).into_iter().collect(),
                );
            }
        }
    }

    // After healing: the final read is the whole log, and the group committed its end.
    let mut partitions: BTreeSet<i32> = ends.keys().copied().collect();
    partitions.extend(log.keys().map(|(p, _)| *p));
    for partition in partitions {
        let Some((end, committed)) = ends.get(&partition) else {
            bad(
                "final-read-incomplete",
                format!("partition {partition}: the final read did not reach its end"),
                Vec::new(),
            );
            continue;
        };
        let offsets: Vec<i64> = log
            .range((partition, i64::MIN)..=(partition, i64::MAX))
            .map(|((_, o), _)| *o)
            .collect();
        let dense = offsets.windows(2).all(|w| w[1] == w[0] + 1)
            && offsets.last().is_none_or(|last| last + 1 == *end);
        if !dense || offsets.first().is_some_and(|first| *first != 0) {
            bad(
                "final-read-incomplete",
                format!(
                    "partition {partition}: the final read has {} records, not every offset below the log end {end}",
                    offsets.len()
                ),
                Vec::new(),
            );
        }
        if committed != end {
            bad(
                "group-not-at-end",
                format!(
                    "partition {partition}: the group committed {committed}, the log ends at {end}"
                ),
                Vec::new(),
            );
        }
    }
    (summary, violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(producer: &str, seq: u64, outcome: Outcome, partition: i32, offset: i64) -> Op {
        Op::Produce {
            t_ms: seq,
            producer: producer.into(),
            seq,
            outcome,
            partition,
            offset,
        }
    }

    fn read(member: &str, assignment: u64, partition: i32, offset: i64, value: &str) -> Op {
        Op::Read {
            t_ms: 0,
            member: member.into(),
            assignment,
            partition,
            offset,
            value: value.into(),
        }
    }

    fn final_read(partition: i32, offset: i64, value: &str) -> Op {
        Op::FinalRead {
            partition,
            offset,
            value: value.into(),
        }
    }

    fn commit(start: u64, end: u64, partition: i32, offset: i64) -> Op {
        Op::Commit {
            t_start_ms: start,
            t_end_ms: end,
            member: "c1".into(),
            partition,
            offset,
            outcome: Outcome::Ok,
        }
    }

    /// Three writes of e1 on partition 0, read by the group, committed and read back.
    fn clean() -> Vec<Op> {
        vec![
            produce("e1", 0, Outcome::Ok, 0, 0),
            produce("e1", 1, Outcome::Unknown, 0, -1),
            produce("e1", 2, Outcome::Ok, 0, 2),
            produce("e1", 3, Outcome::Unknown, 0, -1),
            read("c1", 1, 0, 0, "e1:0"),
            read("c1", 1, 0, 1, "e1:1"),
            read("c2", 2, 0, 2, "e1:2"),
            commit(10, 11, 0, 2),
            commit(12, 13, 0, 3),
            final_read(0, 0, "e1:0"),
            final_read(0, 1, "e1:1"),
            final_read(0, 2, "e1:2"),
            Op::End {
                partition: 0,
                log_end_offset: 3,
                committed: 3,
            },
        ]
    }

    fn rules(ops: &[Op]) -> Vec<&'static str> {
        let (_, violations) = check(ops);
        violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_consistent_history_passes_and_unknowns_are_not_owed() {
        let (summary, violations) = check(&clean());
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(summary.produced_ok, 2);
        assert_eq!(summary.produced_unknown, 2);
        assert_eq!(summary.operations(), 9);
    }

    #[test]
    fn a_lost_acknowledged_write_fails() {
        let mut ops = clean();
        ops.retain(|op| !matches!(op, Op::FinalRead { offset: 2, .. }));
        ops.retain(|op| !matches!(op, Op::Read { offset: 2, .. }));
        if let Some(Op::End { log_end_offset, .. }) = ops.last_mut() {
            *log_end_offset = 2;
        }
        let got = rules(&ops);
        assert!(got.contains(&"acked-write-lost"), "{got:?}");
        assert!(got.contains(&"group-missed-acked"), "{got:?}");
    }

    #[test]
    fn a_duplicate_fails() {
        let mut ops = clean();
        ops.push(final_read(0, 3, "e1:2"));
        if let Some(Op::End {
            log_end_offset,
            committed,
            ..
        }) = ops.iter_mut().find(|op| matches!(op, Op::End { .. }))
        {
            *log_end_offset = 4;
            *committed = 4;
        }
        assert_eq!(rules(&ops), vec!["duplicate"]);
    }

    #[test]
    fn a_divergent_read_fails() {
        let mut ops = clean();
        ops.push(read("c2", 5, 0, 1, "e1:3"));
        let got = rules(&ops);
        assert!(got.contains(&"divergent-read"), "{got:?}");
    }

    #[test]
    fn reordered_acknowledged_writes_fail() {
        let mut ops = clean();
        for op in &mut ops {
            if let Op::FinalRead { offset, value, .. } = op {
                *value = match *offset {
                    0 => "e1:2".into(),
                    2 => "e1:0".into(),
                    _ => value.clone(),
                };
            }
        }
        ops.retain(|op| !matches!(op, Op::Read { .. }));
        ops.retain(|op| {
            !matches!(
                op,
                Op::Produce {
                    outcome: Outcome::Ok,
                    ..
                }
            )
        });
        ops.push(produce("e1", 0, Outcome::Ok, 0, -1));
        ops.push(produce("e1", 2, Outcome::Ok, 0, -1));
        let got = rules(&ops);
        assert!(got.contains(&"producer-order"), "{got:?}");
    }

    #[test]
    fn a_read_going_back_within_an_assignment_fails() {
        let mut ops = clean();
        ops.push(read("c1", 1, 0, 0, "e1:0"));
        assert_eq!(rules(&ops), vec!["read-went-back"]);
    }

    #[test]
    fn a_producer_stalled_after_healing_fails() {
        let mut ops = clean();
        ops.push(Op::Healed { t_ms: 1 });
        ops.push(produce("e1", 4, Outcome::Unknown, 0, -1));
        assert_eq!(rules(&ops), vec!["producer-stalled-after-heal"]);
        let mut ops = clean();
        ops.push(Op::Healed { t_ms: 1 });
        ops.push(Op::Produce {
            t_ms: 1 + PRODUCER_RECOVERY_MS,
            producer: "e1".into(),
            seq: 4,
            outcome: Outcome::Ok,
            partition: 0,
            offset: 3,
        });
        ops.push(read("c1", 1, 0, 3, "e1:4"));
        ops.push(final_read(0, 3, "e1:4"));
        if let Some(Op::End {
            log_end_offset,
            committed,
            ..
        }) = ops.iter_mut().find(|op| matches!(op, Op::End { .. }))
        {
            *log_end_offset = 4;
            *committed = 4;
        }
        assert_eq!(rules(&ops), Vec::<&str>::new());
    }

    #[test]
    fn a_commit_going_back_fails() {
        let mut ops = clean();
        ops.push(commit(20, 21, 0, 1));
        assert_eq!(rules(&ops), vec!["commit-went-back"]);
    }

    #[test]
    fn a_group_short_of_the_end_fails() {
        let mut ops = clean();
        if let Some(Op::End { committed, .. }) = ops.last_mut() {
            *committed = 1;
        }
        assert_eq!(rules(&ops), vec!["group-not-at-end"]);
    }
}

//! The madsim suite's checkers are the fast simulator's (`eddy_sim::invariants`): this
//! module turns what the madsim clients observed, and what every broker's log holds at
//! the end of a run, into an `eddy_sim` history and runs the simulator's checkers on it.
//!
//! What each side gives:
//! - the producer (idempotent, acks=all): each record's send, and its outcome —
//!   acknowledged at an offset, or unknown (failed or timed out);
//! - the read-back consumer (reader 0): every record it read after the faults healed;
//! - the group members: what they read, the commits the coordinator acknowledged, and
//!   what the rebalance listener said they were assigned and lost;
//! - the brokers, after the run: every replica's log of every partition, read from its
//!   files, and each partition's leader and high watermark at the end.
//!
//! Each record is its own "batch" in the simulator's terms: record `rN` is
//! `BatchId { producer: PRODUCER, number: N }` at `[offset..=offset]`. Leader epochs are
//! not compared (`epoch` 0): a record's identity is its content, which the idempotent
//! producer makes unique.
//!
//! The end state is fed first (every replica's log, then the leader's high watermark,
//! then each follower's, set to the leader's: after the healed, idle catch-up every
//! replica must hold the committed log), so the model's committed log is the leader's up
//! to its high watermark and every replica is compared with it below that. The clients'
//! observations follow in time order. So "committed" here means committed at the end: a
//! read of a record the end state does not hold is a read of something later lost.
//!
//! Checkers used, and why the others are not:
//! - `acked-durability`, `dense-stable-offsets`, `replica-agreement`,
//!   `idempotent-producers`, `read-committed`, `liveness` (readers: the read-back
//!   consumer), `group-commits-monotonic`, `group-liveness`, `group-sees-every-record`;
//! - not `group-exclusive-ownership`: judging an overlap needs the member's view of its
//!   session (which coordinator renewed it, until when), which eddy-client does not
//!   report; not `group-no-gaps-after-resume`: it needs the offset each member resumed
//!   from (OffsetFetch's answer), also internal to the client; the Raft and controller
//!   checkers need the brokers' internal events, which the madsim run does not see.
//!
//! Two rules of the harness's own come on top, stated over the same history: every
//! record in a log is one the producer sent, to that partition; and the group commits
//! every partition up to its high watermark once healed.

use std::collections::{BTreeMap, BTreeSet};

use eddy_core::{NodeId, Offset, TimeMs};
use eddy_sim::history::{AcksMode, BatchId, BatchRef, MemberRef, Observation};
use eddy_sim::invariants::{CheckContext, CheckerSet, GroupCheck};

/// The producer's number in the history: record `rN` is `BatchId { producer: PRODUCER,
/// number: N }`.
pub const PRODUCER: u32 = 1;
/// Records whose value names no record number: producer 0 (not idempotent), numbered
/// by offset.
const STRANGER: u32 = 0;

/// The fast simulator's checkers run on madsim histories.
pub const CHECKERS: [&str; 9] = [
    "acked-durability",
    "dense-stable-offsets",
    "replica-agreement",
    "idempotent-producers",
    "read-committed",
    "liveness",
    "group-commits-monotonic",
    "group-liveness",
    "group-sees-every-record",
];

/// What the producer was told about one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Acknowledged at this offset of its partition, at this simulated ms.
    Acked { at: TimeMs, offset: i64 },
    /// Failed or timed out (at this ms): may be in the log or not, at most once.
    Unknown { at: TimeMs },
}

/// One record the producer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Send {
    pub number: u64,
    pub part: u32,
    pub at: TimeMs,
    pub outcome: Outcome,
}

/// A record a consumer received: when, where, and which record its value names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Consumed {
    pub at: TimeMs,
    pub part: u32,
    pub offset: i64,
    pub record: Option<u64>,
}

/// What the rebalance listener told a member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rebalance {
    Assigned(Vec<u32>),
    Revoked(Vec<u32>),
}

/// What one group member observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemberHistory {
    /// When it subscribed (its first JoinGroup follows).
    pub joined_at: TimeMs,
    pub consumed: Vec<Consumed>,
    /// Commits the coordinator acknowledged: (ms, partition, offset).
    pub commits: Vec<(TimeMs, u32, i64)>,
    pub rebalances: Vec<(TimeMs, Rebalance)>,
}

/// Everything the clients observed in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientHistory {
    pub sends: Vec<Send>,
    /// The read-back consumer's records (after the faults healed).
    pub read_back: Vec<Consumed>,
    pub members: Vec<MemberHistory>,
    /// When the last fault healed.
    pub healed_at: TimeMs,
    /// When the members stopped: the end of the run the checkers judge.
    pub end_at: TimeMs,
    /// How long the healed cluster had: records acknowledged by `end_at` minus this (or
    /// before healing) are owed to the read-back consumer and the group.
    pub liveness_bound_ms: u64,
}

/// One replica's log: (offset, record its value names), in offset order.
pub type ReplicaLog = Vec<(i64, Option<u64>)>;

/// What the brokers hold at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BrokerState {
    pub partitions: u32,
    pub brokers: u32,
    pub min_insync_replicas: u16,
    /// Every replica's log, per (broker id, partition): (offset, record named), in order.
    pub logs: BTreeMap<(u32, u32), ReplicaLog>,
    /// Per partition: its leader at the end and the leader's high watermark.
    pub leaders: BTreeMap<u32, (u32, i64)>,
}

fn batch(offset: i64, record: Option<u64>) -> BatchRef {
    let id = match record {
        Some(number) => BatchId {
            producer: PRODUCER,
            number,
        },
        None => BatchId {
            producer: STRANGER,
            number: offset as u64,
        },
    };
    BatchRef {
        base_offset: Offset(offset as u64),
        last_offset: Offset(offset as u64),
        id,
        epoch: 0,
    }
}

fn record_id(number: u64) -> BatchId {
    BatchId {
        producer: PRODUCER,
        number,
    }
}

fn member_ref(m: usize) -> MemberRef {
    MemberRef {
        group: 0,
        slot: m as u32,
        incarnation: 0,
    }
}

/// The end state, as observations: every replica's log, then each partition's high
/// watermark reported by its leader and then, at the same value, by every follower.
fn end_state(brokers: &BrokerState, at: TimeMs, violations: &mut Vec<String>) -> Vec<Observation> {
    let mut history = Vec::new();
    for (&(node, part), log) in &brokers.logs {
        for &(offset, record) in log {
            history.push(Observation::Appended {
                at,
                node: NodeId(node),
                part,
                batch: batch(offset, record),
            });
        }
    }
    for part in 0..brokers.partitions {
        let Some(&(leader, hw)) = brokers.leaders.get(&part) else {
            violations.push(format!(
                "[end-state] partition {part} has no leader at the end of the run"
            ));
            continue;
        };
        let hw = Offset(hw.max(0) as u64);
        history.push(Observation::HighWatermark {
            at,
            node: NodeId(leader),
            part,
            hw,
            leader: true,
        });
        for node in (1..=brokers.brokers).filter(|&n| n != leader) {
            history.push(Observation::HighWatermark {
                at,
                node: NodeId(node),
                part,
                hw,
                leader: false,
            });
        }
    }
    history
}

/// The clients' observations, in time order.
fn client_observations(clients: &ClientHistory) -> Vec<Observation> {
    let mut history = Vec::new();
    for s in &clients.sends {
        let id = record_id(s.number);
        history.push(Observation::Sent {
            at: s.at,
            producer: PRODUCER,
            part: s.part,
            id,
            acks: AcksMode::All,
            idempotent: true,
        });
        history.push(match s.outcome {
            Outcome::Acked { at, offset } => Observation::Acked {
                at,
                producer: PRODUCER,
                part: s.part,
                id,
                base_offset: Offset(offset as u64),
                acks: AcksMode::All,
            },
            Outcome::Unknown { at } => Observation::Failed {
                at,
                producer: PRODUCER,
                part: s.part,
                id,
            },
        });
    }
    let read = |reader: u32, c: &Consumed| Observation::Read {
        at: c.at,
        reader,
        part: c.part,
        batch: batch(c.offset, c.record),
    };
    history.extend(clients.read_back.iter().map(|c| read(0, c)));
    for (m, member) in clients.members.iter().enumerate() {
        let who = member_ref(m);
        history.push(Observation::GroupJoining {
            at: member.joined_at,
            member: who,
        });
        for c in &member.consumed {
            // Members are readers too (read-committed), numbered after the read-back.
            history.push(read(1 + m as u32, c));
            history.push(Observation::GroupProcessed {
                at: c.at,
                member: who,
                part: c.part,
                generation: 0,
                from: Offset(c.offset.max(0) as u64),
                batch: batch(c.offset, c.record),
            });
        }
        for &(at, part, offset) in &member.commits {
            history.push(Observation::GroupCommitAcked {
                at,
                member: who,
                part,
                offset: Offset(offset.max(0) as u64),
                generation: 0,
            });
        }
        let mut owned: BTreeSet<u32> = BTreeSet::new();
        for (at, r) in &member.rebalances {
            history.push(match r {
                Rebalance::Assigned(parts) => {
                    owned.extend(parts);
                    Observation::GroupAssigned {
                        at: *at,
                        member: who,
                        generation: 0,
                        owned: owned.iter().copied().collect(),
                    }
                }
                Rebalance::Revoked(parts) => {
                    for p in parts {
                        owned.remove(p);
                    }
                    Observation::GroupRevoked {
                        at: *at,
                        member: who,
                        parts: parts.clone(),
                        until: *at,
                    }
                }
            });
        }
    }
    history.push(Observation::Healed {
        at: clients.healed_at,
    });
    // Stable: observations of one ms keep the order they were made in.
    history.sort_by_key(Observation::at);
    history
}

/// Runs the fast simulator's checkers ([`CHECKERS`]) and the harness's own two rules on
/// one madsim run; returns the violations, each naming its checker.
pub fn check(
    clients: &ClientHistory,
    brokers: &BrokerState,
    group: &str,
    topic: &str,
) -> Vec<String> {
    let mut violations = Vec::new();
    let ctx = CheckContext {
        min_insync_replicas: brokers.min_insync_replicas,
        // log.flush.interval.messages=1: a write is synced before it is acknowledged.
        sync_before_ack: true,
        allow_unsynced_loss: false,
        // The liveness checker owes acknowledged records to the read-back consumer only;
        // the members' reads are judged by read-committed and the group checkers.
        readers: 1,
        liveness_bound_ms: clients.liveness_bound_ms,
        partition_names: (0..brokers.partitions)
            .map(|p| format!("{topic}-{p}"))
            .collect(),
        quorum: false,
        max_controller_elections: None,
        isrs_complete_at_end: false,
        brokers: brokers.brokers,
        groups: vec![GroupCheck {
            name: group.to_string(),
            parts: (0..brokers.partitions).collect(),
            offsets_part: None,
        }],
    };
    let mut set = CheckerSet::named(&ctx, &CHECKERS);
    for obs in end_state(brokers, clients.end_at, &mut violations) {
        set.observe(&obs);
    }
    for obs in client_observations(clients) {
        set.observe(&obs);
    }
    set.finish(clients.end_at);
    violations.extend(set.violations().iter().map(ToString::to_string));
    violations.extend(content(clients, brokers));
    violations.extend(commits_to_end(clients, brokers));
    violations
}

/// Every record a replica holds is one the producer sent, to that partition.
fn content(clients: &ClientHistory, brokers: &BrokerState) -> Vec<String> {
    let sent: BTreeMap<u64, u32> = clients.sends.iter().map(|s| (s.number, s.part)).collect();
    let mut violations = Vec::new();
    for (&(node, part), log) in &brokers.logs {
        for &(offset, record) in log {
            match record.map(|n| (n, sent.get(&n))) {
                Some((_, Some(&p))) if p == part => {}
                Some((n, Some(&p))) => violations.push(format!(
                    "[log-content] broker {node} holds r{n} at offset {offset} of partition {part}, but it was sent to partition {p}"
                )),
                _ => violations.push(format!(
                    "[log-content] broker {node} holds a record the producer never sent at offset {offset} of partition {part} ({record:?})"
                )),
            }
        }
    }
    violations
}

/// Once healed, the group commits every partition up to its leader's high watermark
/// (the members commit after every poll, and retry a failed commit after the next).
fn commits_to_end(clients: &ClientHistory, brokers: &BrokerState) -> Vec<String> {
    let mut last: BTreeMap<u32, (TimeMs, i64)> = BTreeMap::new();
    for member in &clients.members {
        for &(at, part, offset) in &member.commits {
            let e = last.entry(part).or_insert((at, offset));
            if (at, offset) >= *e {
                *e = (at, offset);
            }
        }
    }
    let mut violations = Vec::new();
    for (&part, &(_, hw)) in &brokers.leaders {
        let committed = last.get(&part).map_or(0, |&(_, o)| o);
        if hw > 0 && committed != hw {
            violations.push(format!(
                "[group-commits-to-end] partition {part} ends at offset {hw}, but the group's last acknowledged commit is {committed}"
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u32 = 2;

    /// A clean run: records 0..6 alternate between two partitions, all acknowledged,
    /// every replica holds them, the read-back and the members read them all, and the
    /// group commits both partitions to the end.
    fn clean() -> (ClientHistory, BrokerState) {
        let mut sends = Vec::new();
        let mut logs: BTreeMap<(u32, u32), ReplicaLog> = BTreeMap::new();
        let mut read_back = Vec::new();
        let mut members = vec![MemberHistory::default(), MemberHistory::default()];
        for n in 0..6u64 {
            let part = (n % u64::from(P)) as u32;
            let offset = (n / u64::from(P)) as i64;
            sends.push(Send {
                number: n,
                part,
                at: 100 * n,
                outcome: Outcome::Acked {
                    at: 100 * n + 10,
                    offset,
                },
            });
            for b in 1..=3 {
                logs.entry((b, part)).or_default().push((offset, Some(n)));
            }
            let c = Consumed {
                at: 2_000 + n,
                part,
                offset,
                record: Some(n),
            };
            read_back.push(c);
            members[part as usize]
                .consumed
                .push(Consumed { at: 700, ..c });
        }
        for (m, member) in members.iter_mut().enumerate() {
            member
                .rebalances
                .push((50, Rebalance::Assigned(vec![m as u32])));
            member.commits.push((800, m as u32, 3));
        }
        let clients = ClientHistory {
            sends,
            read_back,
            members,
            healed_at: 1_000,
            end_at: 5_000,
            liveness_bound_ms: 1_000,
        };
        let brokers = BrokerState {
            partitions: P,
            brokers: 3,
            min_insync_replicas: 2,
            logs,
            leaders: (0..P).map(|p| (p, (1 + p, 3))).collect(),
        };
        (clients, brokers)
    }

    fn violations(clients: &ClientHistory, brokers: &BrokerState) -> Vec<String> {
        check(clients, brokers, "g", "t")
    }

    /// Exactly one violation, from the checker `name`.
    fn assert_flags(v: &[String], name: &str) {
        assert!(
            !v.is_empty() && v.iter().all(|v| v.starts_with(&format!("[{name}]"))),
            "expected only [{name}] violations, got {v:#?}"
        );
    }

    #[test]
    fn a_clean_run_passes() {
        let (c, b) = clean();
        assert_eq!(violations(&c, &b), Vec::<String>::new());
    }

    #[test]
    fn an_acked_record_lost_from_every_replica_fails_acked_durability() {
        let (mut c, mut b) = clean();
        // r4 (partition 0, offset 2) is gone everywhere; the high watermark came down.
        for node in 1..=3 {
            b_log(&mut b, node, 0).pop();
        }
        b.leaders.insert(0, (1, 2));
        c.read_back.retain(|r| r.record != Some(4));
        c.members[0].consumed.retain(|r| r.record != Some(4));
        c.members[0].commits = vec![(800, 0, 2)];
        let v = violations(&c, &b);
        assert_flags(&v, "acked-durability");
        assert!(v[0].contains("p1#4"), "{v:?}");
    }

    fn b_log(b: &mut BrokerState, node: u32, part: u32) -> &mut ReplicaLog {
        b.logs.get_mut(&(node, part)).expect("log")
    }

    #[test]
    fn a_follower_that_differs_below_the_high_watermark_fails_replica_agreement() {
        let (c, mut b) = clean();
        b_log(&mut b, 3, 1)[1].1 = Some(1); // r1 where r3 belongs, on broker 3
        let v = violations(&c, &b);
        assert!(
            v.iter().any(|v| v.starts_with("[replica-agreement]")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .all(|v| v.starts_with("[replica-agreement]") || v.starts_with("[log-content]")),
            "{v:?}"
        );
    }

    #[test]
    fn a_follower_missing_a_committed_record_fails_replica_agreement() {
        let (c, mut b) = clean();
        b_log(&mut b, 3, 0).pop();
        assert_flags(&violations(&c, &b), "replica-agreement");
    }

    #[test]
    fn a_gap_in_a_replicas_offsets_fails_dense_stable_offsets() {
        let (c, mut b) = clean();
        b_log(&mut b, 2, 0)[2].0 = 3; // r4 at offset 3, after offset 1
        let v = violations(&c, &b);
        assert!(
            v.iter().any(|v| v.starts_with("[dense-stable-offsets]")),
            "{v:?}"
        );
    }

    #[test]
    fn a_record_twice_in_the_log_fails_idempotent_producers() {
        let (c, mut b) = clean();
        for node in 1..=3 {
            b_log(&mut b, node, 0).push((3, Some(4)));
        }
        b.leaders.insert(0, (1, 4));
        let v = violations(&c, &b);
        assert!(
            v.iter().any(|v| v.starts_with("[idempotent-producers]")),
            "{v:?}"
        );
    }

    #[test]
    fn a_read_of_what_the_log_does_not_hold_fails_read_committed() {
        let (mut c, b) = clean();
        c.members[1].consumed.push(Consumed {
            at: 900,
            part: 1,
            offset: 3,
            record: Some(7),
        });
        assert_flags(&violations(&c, &b), "read-committed");
    }

    #[test]
    fn a_read_back_that_misses_an_acked_record_fails_liveness() {
        let (mut c, b) = clean();
        c.read_back.retain(|r| r.record != Some(2));
        assert_flags(&violations(&c, &b), "liveness");
    }

    #[test]
    fn a_commit_that_goes_back_fails_group_commits_monotonic() {
        let (mut c, b) = clean();
        c.members[1].commits.push((850, 0, 1));
        c.members[0].commits.push((900, 0, 3));
        assert_flags(&violations(&c, &b), "group-commits-monotonic");
    }

    #[test]
    fn a_record_no_member_processed_fails_group_sees_every_record() {
        let (mut c, b) = clean();
        c.members[1].consumed.retain(|r| r.record != Some(5));
        assert_flags(&violations(&c, &b), "group-sees-every-record");
    }

    #[test]
    fn a_partition_nobody_owns_after_healing_fails_group_liveness() {
        let (mut c, b) = clean();
        c.members[1]
            .rebalances
            .push((1_500, Rebalance::Revoked(vec![1])));
        assert_flags(&violations(&c, &b), "group-liveness");
    }

    #[test]
    fn a_record_nobody_sent_fails_log_content() {
        let (c, mut b) = clean();
        b_log(&mut b, 2, 1)[0].1 = None;
        let v = violations(&c, &b);
        assert!(v.iter().any(|v| v.starts_with("[log-content]")), "{v:?}");
    }

    #[test]
    fn a_group_that_stops_short_of_the_end_fails_commits_to_end() {
        let (mut c, b) = clean();
        c.members[0].commits = vec![(800, 0, 2)];
        assert_flags(&violations(&c, &b), "group-commits-to-end");
    }
}

//! The madsim suite's checkers are the fast simulator's (`eddy_sim::invariants`): this
//! module turns what the madsim clients observed, and what every broker's log holds at
//! the end of a run, into an `eddy_sim` history and runs the simulator's checkers on it.
//!
//! What each side gives:
//! - the producer (idempotent, acks=all): each record's send, and its outcome —
//!   acknowledged at an offset, or unknown (failed or timed out);
//! - the read-back consumer (reader 0): every record it read after the faults healed;
//! - the group members: what they read, the commits they sent and those the coordinator
//!   acknowledged, what the rebalance listener said they were assigned and gave up, and
//!   what eddy-client's group observer (`GroupEvent`) reported: which coordinator
//!   accepted each JoinGroup, SyncGroup and Heartbeat and the session end that grants,
//!   the generations joined, when a member's own view of its session ended (its
//!   partitions lost as of then), and where each partition it took over resumed (the
//!   OffsetFetch answer, or `auto.offset.reset`);
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
//!   consumer), `group-commits-monotonic`, `group-liveness`, `group-sees-every-record`,
//!   `group-exclusive-ownership`, `group-no-gaps-after-resume`;
//! - not the Raft and controller checkers: they need the brokers' internal events, which
//!   the madsim run does not see. For the same reason `group-exclusive-ownership` gets
//!   no view of who led `__consumer_offsets` (`GroupCheck::offsets_part` is `None`), so
//!   its two excuses that need one — a zombie coordinator's acceptance, a generation
//!   reused after the coordinator moved — never apply here: the renewals and reused
//!   generations are fed, but judged without excuse.
//!
//! Three rules of the harness's own come on top, stated over the same history: every
//! record in a log is one the producer sent, to that partition; the group commits every
//! partition up to its high watermark once healed; and a member hands out records only
//! while its own view of its session lasts (some accepted request sent at or before,
//! with its session end after) — the rule that makes ownership end where the member
//! reports its partitions lost.

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
pub const CHECKERS: [&str; 11] = [
    "acked-durability",
    "dense-stable-offsets",
    "replica-agreement",
    "idempotent-producers",
    "read-committed",
    "liveness",
    "group-commits-monotonic",
    "group-liveness",
    "group-sees-every-record",
    "group-exclusive-ownership",
    "group-no-gaps-after-resume",
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

/// What the rebalance listener, or the group observer, told a member, in the order it
/// was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rebalance {
    Assigned(Vec<u32>),
    Revoked(Vec<u32>),
    /// The member's view of its session ended at `until` (ms): it lost these partitions
    /// as of then (`GroupEvent::SessionExpired`; the listener's `Revoked` follows).
    Lost {
        parts: Vec<u32>,
        until: TimeMs,
    },
}

/// A JoinGroup, SyncGroup or Heartbeat that `coordinator` accepted
/// (`GroupEvent::SessionRenewed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Renewal {
    pub at: TimeMs,
    pub coordinator: u32,
    pub sent_at: TimeMs,
    pub until: TimeMs,
}

/// Where a member started reading a partition it took over
/// (`GroupEvent::PositionResolved`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Resume {
    pub at: TimeMs,
    pub part: u32,
    pub offset: i64,
    /// Whether it is the committed offset; if not, none was committed and
    /// `auto.offset.reset` chose it.
    pub committed: bool,
    /// When the OffsetFetch that answered was sent.
    pub fetch_sent_at: TimeMs,
}

/// What one group member observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemberHistory {
    /// When it subscribed (its first JoinGroup follows).
    pub joined_at: TimeMs,
    pub consumed: Vec<Consumed>,
    /// Commits the coordinator acknowledged: (ms, partition, offset).
    pub commits: Vec<(TimeMs, u32, i64)>,
    /// Every OffsetCommit sent, acknowledged or not: (ms, partition, offset).
    pub commits_sent: Vec<(TimeMs, u32, i64)>,
    pub rebalances: Vec<(TimeMs, Rebalance)>,
    pub renewals: Vec<Renewal>,
    /// Every JoinGroup answer: (ms, generation).
    pub joins: Vec<(TimeMs, i32)>,
    pub resumes: Vec<Resume>,
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
        history.extend(member_observations(m, member));
    }
    history.push(Observation::Healed {
        at: clients.healed_at,
    });
    // Stable: observations of one ms keep the order they were made in.
    history.sort_by_key(Observation::at);
    history
}

/// One member's observations. Within one ms they go in the order that the member
/// makes them in: assignments, then resumes, then what it processed and committed, then
/// what it gave up (a member that hands records out in the ms its session ends did so
/// before it found the session over).
fn member_observations(m: usize, member: &MemberHistory) -> Vec<Observation> {
    let who = member_ref(m);
    let mut history = vec![Observation::GroupJoining {
        at: member.joined_at,
        member: who,
    }];
    for r in &member.renewals {
        history.push(Observation::GroupSessionRenewed {
            at: r.at,
            member: who,
            coordinator: NodeId(r.coordinator),
            sent_at: r.sent_at,
            until: r.until,
        });
    }
    let mut highest: Option<(i32, TimeMs)> = None;
    for &(at, joined) in &member.joins {
        if let Some((previous, previous_at)) = highest.filter(|&(g, _)| joined <= g) {
            history.push(Observation::GroupGenerationReused {
                at,
                member: who,
                previous,
                previous_at,
                joined,
            });
        }
        if highest.is_none_or(|(g, _)| joined > g) {
            highest = Some((joined, at));
        }
    }
    let mut owned: BTreeSet<u32> = BTreeSet::new();
    let mut given_up = Vec::new();
    for (at, r) in &member.rebalances {
        match r {
            Rebalance::Assigned(parts) => {
                owned.extend(parts);
                history.push(Observation::GroupAssigned {
                    at: *at,
                    member: who,
                    generation: 0,
                    owned: owned.iter().copied().collect(),
                });
            }
            Rebalance::Revoked(parts) | Rebalance::Lost { parts, .. } => {
                for p in parts {
                    owned.remove(p);
                }
                let until = match r {
                    Rebalance::Lost { until, .. } => (*until).min(*at),
                    _ => *at,
                };
                given_up.push(Observation::GroupRevoked {
                    at: *at,
                    member: who,
                    parts: parts.clone(),
                    until,
                });
            }
        }
    }
    for r in &member.resumes {
        history.push(Observation::GroupResumed {
            at: r.at,
            member: who,
            part: r.part,
            offset: Offset(r.offset.max(0) as u64),
            committed: r.committed,
            fetch_sent_at: r.fetch_sent_at,
            reset: false,
        });
    }
    {
        for c in &member.consumed {
            // Members are readers too (read-committed), numbered after the read-back.
            history.push(Observation::Read {
                at: c.at,
                reader: 1 + m as u32,
                part: c.part,
                batch: batch(c.offset, c.record),
            });
            history.push(Observation::GroupProcessed {
                at: c.at,
                member: who,
                part: c.part,
                generation: 0,
                from: Offset(c.offset.max(0) as u64),
                batch: batch(c.offset, c.record),
            });
        }
        for &(at, part, offset) in &member.commits_sent {
            history.push(Observation::GroupCommitSent {
                at,
                member: who,
                part,
                offset: Offset(offset.max(0) as u64),
                generation: 0,
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
    }
    history.extend(given_up);
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
    violations.extend(within_session(clients));
    violations
}

/// A member hands records out only while its own view of its session lasts: some
/// JoinGroup, SyncGroup or Heartbeat accepted by then carries its session past that
/// moment (ms are rounded down on both sides, so the session's last ms counts).
fn within_session(clients: &ClientHistory) -> Vec<String> {
    let mut violations = Vec::new();
    for (m, member) in clients.members.iter().enumerate() {
        for c in &member.consumed {
            let alive = member
                .renewals
                .iter()
                .any(|r| r.at <= c.at && c.at <= r.until);
            if !alive {
                let last = member
                    .renewals
                    .iter()
                    .filter(|r| r.at <= c.at)
                    .map(|r| r.until)
                    .max();
                violations.push(format!(
                    "[group-session-view] member {m} handed out offset {} of partition {} at {} ms, outside its session (the last accepted request carried it to {last:?} ms)",
                    c.offset, c.part, c.at
                ));
                break;
            }
        }
    }
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
            member.joins.push((40, 1));
            member.renewals.push(Renewal {
                at: 40,
                coordinator: 1,
                sent_at: 30,
                until: 10_030,
            });
            member
                .rebalances
                .push((50, Rebalance::Assigned(vec![m as u32])));
            member.resumes.push(Resume {
                at: 60,
                part: m as u32,
                offset: 0,
                committed: false,
                fetch_sent_at: 55,
            });
            member.commits_sent.push((790, m as u32, 3));
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
    fn two_members_owning_one_partition_fail_group_exclusive_ownership() {
        let (mut c, b) = clean();
        // Member 1 is given partition 0 while member 0 still holds it.
        c.members[1]
            .rebalances
            .push((900, Rebalance::Assigned(vec![0])));
        assert_flags(&violations(&c, &b), "group-exclusive-ownership");
    }

    #[test]
    fn a_handover_after_the_old_owners_session_ended_passes() {
        let (mut c, b) = clean();
        // Member 0's session ends at 10_030 and it reports partition 0 lost (at 10_500);
        // member 1 takes partition 0 over at 10_100, from the committed offset.
        c.members[0].rebalances.push((
            10_500,
            Rebalance::Lost {
                parts: vec![0],
                until: 10_030,
            },
        ));
        c.members[0]
            .rebalances
            .push((10_500, Rebalance::Revoked(vec![0])));
        c.members[1].renewals.push(Renewal {
            at: 10_020,
            coordinator: 2,
            sent_at: 10_000,
            until: 20_000,
        });
        c.members[1]
            .rebalances
            .push((10_100, Rebalance::Assigned(vec![0])));
        c.members[1].resumes.push(Resume {
            at: 10_200,
            part: 0,
            offset: 3,
            committed: true,
            fetch_sent_at: 10_150,
        });
        c.end_at = 11_000;
        assert_eq!(violations(&c, &b), Vec::<String>::new());
    }

    #[test]
    fn a_handover_before_the_old_owners_session_ended_fails_group_exclusive_ownership() {
        let (mut c, b) = clean();
        // As above, but member 0 reports its session over only from 10_500 on: it owned
        // partition 0 while member 1 already did.
        c.members[0].rebalances.push((
            10_500,
            Rebalance::Lost {
                parts: vec![0],
                until: 10_500,
            },
        ));
        c.members[1]
            .rebalances
            .push((10_100, Rebalance::Assigned(vec![0])));
        c.end_at = 11_000;
        assert_flags(&violations(&c, &b), "group-exclusive-ownership");
    }

    #[test]
    fn processing_past_the_members_session_fails_ownership_and_session_view() {
        let (mut c, b) = clean();
        // Member 0 hands r0 out again at 10_400, after its session ended at 10_030 (and
        // it reported partition 0 lost as of then).
        c.members[0].consumed.push(Consumed {
            at: 10_400,
            part: 0,
            offset: 0,
            record: Some(0),
        });
        c.members[0].rebalances.push((
            10_500,
            Rebalance::Lost {
                parts: vec![0],
                until: 10_030,
            },
        ));
        c.end_at = 11_000;
        let v = violations(&c, &b);
        assert!(
            v.iter()
                .any(|v| v.starts_with("[group-exclusive-ownership]")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.starts_with("[group-session-view]")),
            "{v:?}"
        );
    }

    #[test]
    fn a_resume_from_an_offset_nobody_committed_fails_group_no_gaps() {
        let (mut c, b) = clean();
        c.members[0].resumes[0].offset = 1;
        c.members[0].resumes[0].committed = true;
        assert_flags(&violations(&c, &b), "group-no-gaps-after-resume");
    }

    #[test]
    fn a_member_that_skips_offsets_after_resuming_fails_group_no_gaps() {
        let (mut c, b) = clean();
        // Member 1 resumes partition 1 at 0 but hands out offset 1 first.
        c.members[1].consumed.swap(0, 1);
        let v = violations(&c, &b);
        assert_flags(&v, "group-no-gaps-after-resume");
    }

    #[test]
    fn processing_a_partition_never_resumed_fails_group_no_gaps() {
        let (mut c, b) = clean();
        c.members[1].resumes.clear();
        assert_flags(&violations(&c, &b), "group-no-gaps-after-resume");
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

use std::fs::OpenOptions;
use std::io::Write;

use bytes::Bytes;
use eddy_core::quorum::{
    DurableState, Effect, Entry, HardState, LogId, LogIndex, Payload, Snapshot, Term,
};
use eddy_core::types::NodeId;
use proptest::prelude::*;

use super::*;
use crate::test_support::TempDir;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: if index.is_multiple_of(3) {
            Payload::LeaderNoop
        } else {
            Payload::Command(Bytes::from(format!("cmd-{term}-{index}")))
        },
    }
}

fn entries(term: u64, from: u64, to: u64) -> Effect {
    Effect::PersistEntries {
        from_index: LogIndex(from),
        entries: (from..=to).map(|i| entry(term, i)).collect(),
    }
}

fn snapshot(term: u64, index: u64) -> Effect {
    Effect::PersistSnapshot(Snapshot {
        last: LogId::new(Term(term), LogIndex(index)),
        data: Bytes::from(format!("image-at-{index}")),
    })
}

fn reopen(dir: &TempDir) -> DurableState {
    RaftStore::open(dir.path()).expect("reopen").1
}

#[test]
fn a_new_dir_holds_nothing() {
    let dir = TempDir::new("raft-new");
    let (_, durable) = RaftStore::open(&dir.path().join("meta")).unwrap();
    assert_eq!(durable, DurableState::default());
}

#[test]
fn votes_entries_truncations_and_snapshots_survive_a_restart() {
    let dir = TempDir::new("raft-roundtrip");
    let (mut store, _) = RaftStore::open(dir.path()).unwrap();
    let vote = HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
    };
    assert_eq!(
        store.write(Effect::PersistHardState(vote)).unwrap(),
        Persisted::HardState(vote)
    );
    store.write(entries(1, 1, 6)).unwrap();
    // Another leader's history from index 4 on.
    let done = store.write(entries(3, 4, 5)).unwrap();
    assert_eq!(done, Persisted::Entries(LogId::new(Term(3), LogIndex(5))));
    let after = reopen(&dir);
    assert_eq!(after.hard_state, vote);
    let ids: Vec<_> = after.entries.iter().map(Entry::id).collect();
    assert_eq!(
        ids,
        vec![
            LogId::new(Term(1), LogIndex(1)),
            LogId::new(Term(1), LogIndex(2)),
            LogId::new(Term(1), LogIndex(3)),
            LogId::new(Term(3), LogIndex(4)),
            LogId::new(Term(3), LogIndex(5)),
        ]
    );
    assert_eq!(
        after.entries[1],
        entry(1, 2),
        "payloads come back as written"
    );
    store.write(snapshot(3, 4)).unwrap();
    store.write(entries(3, 6, 7)).unwrap();
    let after = reopen(&dir);
    assert_eq!(after.snapshot.as_ref().unwrap().last.index, LogIndex(4));
    assert_eq!(
        after.snapshot.as_ref().unwrap().data,
        Bytes::from("image-at-4")
    );
    let indexes: Vec<_> = after.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, vec![5, 6, 7]);
}

#[test]
fn a_torn_append_is_cut_and_what_was_durable_stays() {
    let dir = TempDir::new("raft-torn");
    let (mut store, _) = RaftStore::open(dir.path()).unwrap();
    store.write(entries(1, 1, 3)).unwrap();
    drop(store);
    let log = dir.path().join(LOG_FILE);
    let whole = std::fs::metadata(&log).unwrap().len();
    // Half of a fourth entry's frame, as a crash mid-write leaves it.
    let torn = frame(&encode_entry(&entry(1, 4)));
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&torn[..torn.len() / 2])
        .unwrap();
    let (mut store, durable) = RaftStore::open(dir.path()).unwrap();
    assert_eq!(durable.entries.len(), 3);
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        whole,
        "the tail is cut"
    );
    // And the log goes on from there.
    store.write(entries(1, 4, 4)).unwrap();
    assert_eq!(reopen(&dir).entries.len(), 4);
}

#[test]
fn a_flipped_byte_in_the_log_ends_it_before_that_entry() {
    let dir = TempDir::new("raft-flip");
    let (mut store, _) = RaftStore::open(dir.path()).unwrap();
    store.write(entries(1, 1, 4)).unwrap();
    let third = store.positions[2] as usize;
    drop(store);
    let log = dir.path().join(LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[third + FRAME_HEADER + 3] ^= 0x40;
    std::fs::write(&log, bytes).unwrap();
    let indexes: Vec<_> = reopen(&dir).entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, vec![1, 2]);
}

#[test]
fn a_crash_between_a_snapshot_and_the_log_rewrite_keeps_the_entries_after_it() {
    let dir = TempDir::new("raft-snap-crash");
    let (mut store, _) = RaftStore::open(dir.path()).unwrap();
    store.write(entries(2, 1, 8)).unwrap();
    drop(store);
    // The snapshot's file is replaced; the log's rewrite never happened.
    let Effect::PersistSnapshot(s) = snapshot(2, 5) else {
        unreachable!()
    };
    replace(dir.path(), SNAPSHOT_FILE, &encode_snapshot(&s)).unwrap();
    let (mut store, durable) = RaftStore::open(dir.path()).unwrap();
    let indexes: Vec<_> = durable.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, vec![6, 7, 8]);
    // Truncating and appending still line up with the file.
    store.write(entries(4, 7, 9)).unwrap();
    let ids: Vec<_> = reopen(&dir).entries.iter().map(Entry::id).collect();
    assert_eq!(
        ids,
        vec![
            LogId::new(Term(2), LogIndex(6)),
            LogId::new(Term(4), LogIndex(7)),
            LogId::new(Term(4), LogIndex(8)),
            LogId::new(Term(4), LogIndex(9)),
        ]
    );
}

#[test]
fn a_damaged_quorum_state_is_refused_rather_than_forgetting_a_vote() {
    let dir = TempDir::new("raft-bad-state");
    let (mut store, _) = RaftStore::open(dir.path()).unwrap();
    store
        .write(Effect::PersistHardState(HardState {
            term: Term(7),
            voted_for: Some(NodeId(1)),
        }))
        .unwrap();
    drop(store);
    let path = dir.path().join(STATE_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = RaftStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("quorum state is damaged"), "{err}");
}

/// A write the Raft node could ask for, given what the store holds.
fn arb_write(durable: &DurableState, pick: u8, n: u64, term: u64) -> Effect {
    let first = durable.snapshot_last().index.0 + 1;
    let last = durable.entries.last().map_or(first - 1, |e| e.index.0);
    match pick % 4 {
        0 => Effect::PersistHardState(HardState {
            term: Term(term),
            voted_for: n.is_multiple_of(2).then_some(NodeId(n as u32 % 3)),
        }),
        1 | 2 => {
            // Append at the end, or rewrite from somewhere in the log.
            let from = if pick % 4 == 1 {
                last + 1
            } else {
                first + n % (last + 2 - first)
            };
            entries(term, from, from + n % 4)
        }
        _ => {
            let at = if last >= first {
                first + n % (last + 1 - first)
            } else {
                first - 1
            };
            let at_term = durable
                .entries
                .iter()
                .find(|e| e.index.0 == at)
                .map_or(term, |e| e.term.0);
            snapshot(at_term, at)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever sequence of writes, a restart reads back exactly what the core's model
    /// of a disk holds after them.
    #[test]
    fn reopening_gives_back_the_model(ops in proptest::collection::vec((any::<u8>(), 0u64..50, 1u64..5), 1..30)) {
        let dir = TempDir::new("raft-prop");
        let (mut store, _) = RaftStore::open(dir.path()).unwrap();
        let mut model = DurableState::default();
        for (i, (pick, n, term)) in ops.into_iter().enumerate() {
            let write = arb_write(&model, pick, n, term + i as u64);
            let expected = model.apply_write(write.clone());
            prop_assert_eq!(store.write(write).unwrap(), expected);
            if i % 5 == 4 {
                drop(store);
                let (reopened, durable) = RaftStore::open(dir.path()).unwrap();
                prop_assert_eq!(&durable, &model);
                store = reopened;
            }
        }
        drop(store);
        prop_assert_eq!(reopen(&dir), model);
    }
}

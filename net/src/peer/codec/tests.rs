use super::*;
use proptest::prelude::*;

fn tp() -> impl Strategy<Value = TopicPartition> {
    ("[a-z_.-]{1,12}", 0u32..64).prop_map(|(t, p)| TopicPartition::new(t, p))
}

fn nodes() -> impl Strategy<Value = Vec<NodeId>> {
    proptest::collection::vec((0u32..8).prop_map(NodeId), 0..4)
}

fn error() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::None),
        Just(ErrorCode::NotLeaderOrFollower),
        Just(ErrorCode::FencedLeaderEpoch),
        Just(ErrorCode::OffsetOutOfRange),
    ]
}

fn state() -> impl Strategy<Value = PartitionState> {
    (
        nodes(),
        proptest::option::of(0u32..8),
        any::<u32>(),
        proptest::option::of(any::<u64>()),
        nodes(),
        any::<u32>(),
    )
        .prop_map(|(replicas, leader, e, inc, isr, pe)| PartitionState {
            replicas,
            leader: leader.map(NodeId),
            leader_epoch: Epoch(e),
            leader_incarnation: inc,
            isr,
            partition_epoch: pe,
        })
}

fn alter() -> impl Strategy<Value = AlterPartition> {
    (
        tp(),
        0u32..8,
        any::<u32>(),
        any::<u32>(),
        nodes(),
        proptest::collection::vec((0u32..8, any::<u64>()), 0..3),
    )
        .prop_map(|(partition, l, le, pe, new_isr, added)| AlterPartition {
            partition,
            leader: NodeId(l),
            leader_epoch: Epoch(le),
            partition_epoch: pe,
            new_isr,
            added: added.into_iter().map(|(n, i)| (NodeId(n), i)).collect(),
        })
}

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn log_id() -> impl Strategy<Value = LogId> {
    (any::<u64>(), any::<u64>()).prop_map(|(t, i)| LogId::new(Term(t), LogIndex(i)))
}

fn peer() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        (tp(), any::<u32>(), any::<u32>()).prop_map(|(partition, c, e)| {
            PeerMessage::OffsetForLeaderEpoch {
                partition,
                current_leader_epoch: Epoch(c),
                epoch: Epoch(e),
            }
        }),
        (
            tp(),
            error(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            any::<u64>()
        )
            .prop_map(|(partition, error, c, a, e, o)| {
                PeerMessage::OffsetForLeaderEpochResponse {
                    partition,
                    error,
                    current_leader_epoch: Epoch(c),
                    asked_epoch: Epoch(a),
                    epoch: e.map(Epoch),
                    end_offset: Offset(o),
                }
            }),
        (
            tp(),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(partition, c, o, m, f, i)| PeerMessage::Fetch {
                partition,
                current_leader_epoch: Epoch(c),
                fetch_offset: Offset(o),
                max_bytes: m,
                fetch_id: f,
                incarnation: i,
            }),
        (
            tp(),
            any::<u64>(),
            error(),
            any::<u32>(),
            any::<[u64; 4]>(),
            proptest::collection::vec(bytes(), 0..3)
        )
            .prop_map(|(partition, fetch_id, error, c, o, batches)| {
                PeerMessage::FetchResponse {
                    partition,
                    fetch_id,
                    error,
                    current_leader_epoch: Epoch(c),
                    fetch_offset: Offset(o[0]),
                    high_watermark: Offset(o[1]),
                    log_start_offset: Offset(o[2]),
                    log_end_offset: Offset(o[3]),
                    batches: batches
                        .into_iter()
                        .map(eddy_core::message::FetchedBatch::Bytes)
                        .collect(),
                }
            }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (log_id(), proptest::option::of(bytes())).prop_map(|(id, c)| Entry {
        term: id.term,
        index: id.index,
        payload: c.map_or(Payload::LeaderNoop, Payload::Command),
    })
}

fn raft() -> impl Strategy<Value = RaftMessage> {
    let term = any::<u64>().prop_map(Term);
    prop_oneof![
        (term.clone(), any::<bool>(), log_id()).prop_map(|(term, pre_vote, last_log)| {
            RaftMessage::RequestVote {
                term,
                pre_vote,
                last_log,
            }
        }),
        (term.clone(), any::<bool>(), any::<bool>()).prop_map(|(term, pre_vote, granted)| {
            RaftMessage::RequestVoteResponse {
                term,
                pre_vote,
                granted,
            }
        }),
        (
            term.clone(),
            log_id(),
            proptest::collection::vec(entry(), 0..4),
            any::<u64>()
        )
            .prop_map(|(term, prev_log, entries, c)| RaftMessage::AppendEntries {
                term,
                prev_log,
                entries,
                leader_commit: LogIndex(c),
            }),
        (term.clone(), any::<u64>(), any::<u64>()).prop_map(|(term, a, m)| {
            RaftMessage::AppendEntriesSuccess {
                term,
                appended_index: LogIndex(a),
                match_index: LogIndex(m),
            }
        }),
        (
            term.clone(),
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            any::<u64>()
        )
            .prop_map(|(term, r, ht, hi)| RaftMessage::AppendEntriesConflict {
                term,
                rejected_prev: LogIndex(r),
                hint: ConflictHint {
                    term: ht.map(Term),
                    index: LogIndex(hi)
                },
            }),
        (term.clone(), any::<u64>()).prop_map(|(term, c)| RaftMessage::Heartbeat {
            term,
            commit: LogIndex(c)
        }),
        term.clone()
            .prop_map(|term| RaftMessage::HeartbeatResponse { term }),
        (term.clone(), log_id(), bytes()).prop_map(|(term, last, data)| {
            RaftMessage::InstallSnapshot {
                term,
                snapshot: Snapshot { last, data },
            }
        }),
        (term.clone(), any::<u64>()).prop_map(|(term, l)| {
            RaftMessage::InstallSnapshotResponse {
                term,
                last_index: LogIndex(l),
            }
        }),
        term.prop_map(|term| RaftMessage::Observe { term }),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z._-]{1,12}"
}

fn admin() -> impl Strategy<Value = ControllerInput> {
    prop_oneof![
        (
            name(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec((name(), name()), 0..3)
        )
            .prop_map(|(name, num_partitions, replication_factor, configs)| {
                ControllerInput::CreateTopic {
                    name,
                    num_partitions,
                    replication_factor,
                    configs,
                }
            }),
        name().prop_map(|name| ControllerInput::DeleteTopic { name }),
        (name(), any::<u32>())
            .prop_map(|(topic, count)| ControllerInput::CreatePartitions { topic, count }),
        (
            name(),
            proptest::collection::vec((name(), proptest::option::of(name())), 0..3)
        )
            .prop_map(|(topic, configs)| ControllerInput::AlterConfigs { topic, configs }),
        (0u32..8, any::<u64>()).prop_map(|(b, incarnation)| ControllerInput::ControlledShutdown {
            broker: NodeId(b),
            incarnation
        }),
    ]
}

fn frame() -> impl Strategy<Value = PeerFrame> {
    prop_oneof![
        "[a-z0-9.:]{0,20}".prop_map(|address| PeerFrame::Hello { address }),
        admin().prop_map(PeerFrame::Admin),
        peer().prop_map(PeerFrame::Replication),
        raft().prop_map(PeerFrame::Raft),
        (0u32..8, any::<u64>(), any::<u64>()).prop_map(|(b, incarnation, metadata_offset)| {
            PeerFrame::ToController(ControllerRequest::Heartbeat {
                broker: NodeId(b),
                incarnation,
                metadata_offset,
            })
        }),
        alter().prop_map(|a| PeerFrame::ToController(ControllerRequest::AlterPartition(a))),
        (
            0u32..8,
            any::<u64>(),
            proptest::collection::vec("[a-z:/0-9]{0,12}", 0..3),
            proptest::option::of("[a-z0-9]{0,6}")
        )
            .prop_map(|(b, incarnation, listeners, rack)| PeerFrame::ToController(
                ControllerRequest::Register {
                    broker: NodeId(b),
                    incarnation,
                    listeners,
                    rack,
                }
            )),
        (
            any::<u64>(),
            prop_oneof![Just(Ok(())), error().prop_map(Err)]
        )
            .prop_map(|(incarnation, result)| PeerFrame::FromController(
                ControllerMessage::RegistrationResponse {
                    incarnation,
                    result
                }
            )),
        (
            any::<u64>(),
            prop_oneof![
                any::<bool>().prop_map(|fenced| Ok(HeartbeatState { fenced })),
                error().prop_map(Err)
            ]
        )
            .prop_map(|(incarnation, result)| PeerFrame::FromController(
                ControllerMessage::HeartbeatResponse {
                    incarnation,
                    result
                }
            )),
        proptest::collection::vec((tp(), state()), 0..3)
            .prop_map(|s| PeerFrame::FromController(ControllerMessage::PartitionStates(s))),
        (
            tp(),
            alter(),
            prop_oneof![state().prop_map(Ok), error().prop_map(Err)]
        )
            .prop_map(|(partition, request, result)| {
                PeerFrame::FromController(ControllerMessage::AlterPartitionResponse {
                    partition,
                    request,
                    result,
                })
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_frame_round_trips(from in 0u32..16, f in frame()) {
        let bytes = encode(NodeId(from), &f);
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        prop_assert_eq!(len, bytes.len() - 4);
        prop_assert_eq!(decode(&bytes[4..]), Ok((NodeId(from), f)));
    }

    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&body);
    }

    #[test]
    fn damaged_frames_never_panic(f in frame(), at in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = encode(NodeId(1), &f)[4..].to_vec();
        for (i, b) in at {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = decode(&bytes);
    }
}

#[test]
fn a_count_larger_than_the_frame_is_refused_before_allocating() {
    let mut b = BytesMut::new();
    b.put_u8(VERSION);
    b.put_u32(1);
    b.put_u8(4); // from controller
    b.put_u8(1); // partition states
    b.put_u32(u32::MAX);
    assert!(matches!(decode(&b), Err(DecodeError::Count { .. })));
}

#[test]
fn unknown_versions_and_trailing_bytes_are_refused() {
    let f = PeerFrame::Raft(RaftMessage::HeartbeatResponse { term: Term(3) });
    let mut bytes = encode(NodeId(2), &f)[4..].to_vec();
    bytes.push(0);
    assert_eq!(decode(&bytes), Err(DecodeError::Trailing(1)));
    bytes[0] = 9;
    assert_eq!(decode(&bytes), Err(DecodeError::Version(9)));
    // Version 1's heartbeat had no metadata offset: a peer still speaking it is refused,
    // not read with an offset it never sent.
    bytes[0] = 1;
    assert_eq!(decode(&bytes), Err(DecodeError::Version(1)));
}

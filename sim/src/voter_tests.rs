//! The core's controller voter driven alone, with the simulator's Raft disk.

use eddy_core::controller::voter::{Voter, VoterOut};
use eddy_core::controller::{ControllerConfig, ControllerInput, MetadataFollower};
use eddy_core::message::{ControllerMessage, ControllerRequest};
use eddy_core::quorum::{DurableState, RaftConfig};
use eddy_core::{ErrorCode, NodeId, TimeMs};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::raft_disk::RaftDisk;

/// Drives a voter alone: every write synced at once, every tick 10 ms apart. Returns
/// what it asked for besides writes.
fn step(voter: &mut Voter, disk: &mut RaftDisk, now: TimeMs) -> Vec<VoterOut> {
    let mut seen = Vec::new();
    loop {
        let outs = voter.take_out();
        if outs.is_empty() {
            return seen;
        }
        for out in outs {
            match out {
                VoterOut::Persist(effect) => {
                    let (write, _) = disk.write(effect, now, 0);
                    disk.finish(write);
                    for done in disk.take_unreported() {
                        voter.persisted(now, done);
                    }
                }
                other => seen.push(other),
            }
        }
    }
}

fn single_voter_until_active() -> (Voter, RaftDisk, TimeMs) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut disk = RaftDisk::default();
    let mut voter = Voter::new(
        NodeId(1),
        &[NodeId(1)],
        RaftConfig::default(),
        ControllerConfig::default(),
        0,
        DurableState::default(),
    );
    let mut now = 0;
    while !voter.is_active() {
        now += 10;
        assert!(
            now < 10_000,
            "a lone voter never became the active controller"
        );
        voter.tick(now, &mut rng);
        step(&mut voter, &mut disk, now);
    }
    (voter, disk, now)
}

#[test]
fn a_heartbeat_from_an_unknown_incarnation_is_refused_and_a_registration_is_answered_once_committed(
) {
    let (mut voter, mut disk, now) = single_voter_until_active();
    let heartbeat = ControllerRequest::Heartbeat {
        broker: NodeId(1),
        incarnation: 0,
        metadata_offset: 0,
    };
    voter.request(now, NodeId(1), heartbeat);
    let outs = step(&mut voter, &mut disk, now);
    assert!(voter.committed().broker(NodeId(1)).is_none());
    assert!(
        outs.iter().any(|o| matches!(
            o,
            VoterOut::ToBroker {
                to: NodeId(1),
                msg: ControllerMessage::HeartbeatResponse {
                    incarnation: 0,
                    result: Err(ErrorCode::BrokerIdNotRegistered)
                }
            }
        )),
        "{outs:?}"
    );
    let register = ControllerRequest::Register {
        broker: NodeId(1),
        incarnation: 0,
        listeners: vec!["PLAINTEXT://b1:9092".into()],
        rack: None,
    };
    voter.request(now, NodeId(1), register);
    let outs = step(&mut voter, &mut disk, now);
    assert!(voter.committed().broker(NodeId(1)).is_some());
    assert!(
        outs.iter().any(|o| matches!(
            o,
            VoterOut::ToBroker {
                to: NodeId(1),
                msg: ControllerMessage::RegistrationResponse {
                    incarnation: 0,
                    result: Ok(())
                }
            }
        )),
        "{outs:?}"
    );
    // Registered, its heartbeat unfences it (its image, the voter's own, has the
    // registration) and carries its partitions.
    let heartbeat = ControllerRequest::Heartbeat {
        broker: NodeId(1),
        incarnation: 0,
        metadata_offset: voter.applied().index.0,
    };
    voter.request(now, NodeId(1), heartbeat);
    let outs = step(&mut voter, &mut disk, now);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            VoterOut::ToBroker {
                to: NodeId(1),
                msg: ControllerMessage::PartitionStates(_)
            }
        )),
        "{outs:?}"
    );
    assert!(voter.committed().unfenced_brokers().contains(&NodeId(1)));
    let created = voter.admin(
        now,
        ControllerInput::CreateTopic {
            name: "t".into(),
            num_partitions: Some(2),
            replication_factor: Some(1),
            configs: Vec::new(),
        },
    );
    assert!(created);
    let outs = step(&mut voter, &mut disk, now);
    assert!(voter.committed().topic("t").is_some(), "{outs:?}");
    let updates = outs
        .iter()
        .filter(|o| matches!(o, VoterOut::ToBroker { .. }))
        .count();
    assert_eq!(updates, 2, "each new partition's replica is told: {outs:?}");
}

#[test]
fn a_voter_that_does_not_lead_answers_not_controller() {
    let mut voter = Voter::new(
        NodeId(2),
        &[NodeId(1), NodeId(2), NodeId(3)],
        RaftConfig::default(),
        ControllerConfig::default(),
        0,
        DurableState::default(),
    );
    voter.request(
        0,
        NodeId(3),
        ControllerRequest::Heartbeat {
            broker: NodeId(3),
            incarnation: 0,
            metadata_offset: 0,
        },
    );
    let outs = voter.take_out();
    assert!(
        matches!(
            outs.as_slice(),
            [VoterOut::NotController {
                to: NodeId(3),
                leader: None
            }]
        ),
        "{outs:?}"
    );
}

/// Drives a voter (node 1, the only voter) and an observer (node 2) until quiet: every
/// write synced at once, every Raft message delivered at once.
fn run_pair(
    voter: &mut Voter,
    voter_disk: &mut RaftDisk,
    observer: &mut MetadataFollower,
    observer_disk: &mut RaftDisk,
    now: TimeMs,
) {
    loop {
        let mut moved = false;
        for out in voter.take_out() {
            moved = true;
            match out {
                VoterOut::Persist(effect) => {
                    let (write, _) = voter_disk.write(effect, now, 0);
                    voter_disk.finish(write);
                    for done in voter_disk.take_unreported() {
                        voter.persisted(now, done);
                    }
                }
                VoterOut::Raft { to: NodeId(2), msg } => observer.receive(now, NodeId(1), msg),
                _ => {}
            }
        }
        for out in observer.take_out() {
            moved = true;
            match out {
                VoterOut::Persist(effect) => {
                    let (write, _) = observer_disk.write(effect, now, 0);
                    observer_disk.finish(write);
                    for done in observer_disk.take_unreported() {
                        observer.persisted(now, done);
                    }
                }
                VoterOut::Raft { to: NodeId(1), msg } => voter.receive(now, NodeId(2), msg),
                VoterOut::Raft { to, .. } => panic!("an observer wrote to {to}"),
                VoterOut::Applied { .. } | VoterOut::SnapshotApplied { .. } => {}
                other => panic!("an observer has no controller output: {other:?}"),
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn an_observer_follows_the_committed_log_into_its_own_image_and_recovers_it_from_its_disk() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut voter = Voter::with_observers(
        NodeId(1),
        &[NodeId(1)],
        &[NodeId(2)],
        RaftConfig::default(),
        ControllerConfig::default(),
        0,
        DurableState::default(),
    );
    let mut observer = MetadataFollower::new(
        NodeId(2),
        &[NodeId(1)],
        RaftConfig::default(),
        0,
        DurableState::default(),
    );
    let (mut voter_disk, mut observer_disk) = (RaftDisk::default(), RaftDisk::default());
    let mut now = 0;
    while !voter.is_active() {
        now += 10;
        assert!(now < 10_000, "the voter never became active");
        voter.tick(now, &mut rng);
        observer.tick(now, &mut rng);
        run_pair(
            &mut voter,
            &mut voter_disk,
            &mut observer,
            &mut observer_disk,
            now,
        );
    }
    // A registered, unfenced broker to place replicas on.
    let register = ControllerRequest::Register {
        broker: NodeId(1),
        incarnation: 0,
        listeners: Vec::new(),
        rack: None,
    };
    for req in [Some(register), None] {
        // The heartbeat reports the voter's image, which has the registration by then.
        let req = req.unwrap_or(ControllerRequest::Heartbeat {
            broker: NodeId(1),
            incarnation: 0,
            metadata_offset: voter.applied().index.0,
        });
        voter.request(now, NodeId(1), req);
        run_pair(
            &mut voter,
            &mut voter_disk,
            &mut observer,
            &mut observer_disk,
            now,
        );
    }
    // Enough topics to pass a snapshot (every 16 entries) on both sides.
    for i in 0..20 {
        voter.admin(
            now,
            ControllerInput::CreateTopic {
                name: format!("t{i}"),
                num_partitions: Some(1),
                replication_factor: Some(1),
                configs: Vec::new(),
            },
        );
        now += 10;
        voter.tick(now, &mut rng);
        observer.tick(now, &mut rng);
        run_pair(
            &mut voter,
            &mut voter_disk,
            &mut observer,
            &mut observer_disk,
            now,
        );
    }
    // The observer learns the last commit index with the leader's next heartbeat.
    for _ in 0..100 {
        now += 10;
        voter.tick(now, &mut rng);
        observer.tick(now, &mut rng);
        run_pair(
            &mut voter,
            &mut voter_disk,
            &mut observer,
            &mut observer_disk,
            now,
        );
    }
    assert!(voter.committed().topic("t19").is_some());
    assert_eq!(observer.image(), voter.committed());
    assert_eq!(observer.applied(), voter.applied());
    assert_eq!(observer.leader(), Some(NodeId(1)));
    // A restart replays the snapshot and log it synced.
    let durable = observer_disk.crash(&mut rng, 0.0, 0.0);
    let restarted =
        MetadataFollower::new(NodeId(2), &[NodeId(1)], RaftConfig::default(), now, durable);
    assert!(restarted.image().topic("t0").is_some());
    assert!(
        restarted.applied().index.0 >= 16,
        "{:?}",
        restarted.applied()
    );
}

/// The simulated admin path answers a refusal at once: `admin_decide` hands it back
/// when nothing is to commit, and nothing when records were proposed.
#[test]
fn admin_decide_returns_a_refusal_and_nothing_for_a_proposal() {
    let (mut voter, mut disk, now) = single_voter_until_active();
    let create = |rf: u16| ControllerInput::CreateTopic {
        name: "t".into(),
        num_partitions: Some(1),
        replication_factor: Some(rf),
        configs: Vec::new(),
    };
    // No broker is registered: replication factor 1 cannot be met.
    let refused = voter.admin_decide(now, create(1)).expect("active");
    assert!(
        matches!(
            refused.as_slice(),
            [eddy_core::controller::ControllerReply::CreateTopic {
                result: Err(ErrorCode::InvalidReplicationFactor),
                ..
            }]
        ),
        "{refused:?}"
    );
    step(&mut voter, &mut disk, now);
    let register = ControllerRequest::Register {
        broker: NodeId(1),
        incarnation: 0,
        listeners: Vec::new(),
        rack: None,
    };
    voter.request(now, NodeId(1), register);
    step(&mut voter, &mut disk, now);
    // Its image (the voter's own) holds the registration: the heartbeat unfences it.
    let heartbeat = ControllerRequest::Heartbeat {
        broker: NodeId(1),
        incarnation: 0,
        metadata_offset: voter.applied().index.0,
    };
    voter.request(now, NodeId(1), heartbeat);
    step(&mut voter, &mut disk, now);
    assert_eq!(voter.admin_decide(now, create(1)), Some(Vec::new()));
    step(&mut voter, &mut disk, now);
    assert!(voter.committed().topic("t").is_some());
}

//! The consumer against a fake group coordinator: what a member does when the
//! coordinator says its membership is over (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) in
//! answer to a Heartbeat, an OffsetCommit or a JoinGroup, under the eager and the
//! cooperative protocol.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorResponse, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupResponse, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::net::{TcpListener, TcpStream};

use super::group::decode_subscription;
use super::*;
use crate::connection::fake_broker::{answer, api_versions, read_request_body};

const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
/// The member id the fake coordinator gives the member.
const MEMBER: &str = "m";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn both() -> Vec<TopicPartition> {
    vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
}

/// How the fake coordinator answers: the first Heartbeat, the first OffsetCommit and the
/// n-th JoinGroup get these codes; every other request succeeds.
#[derive(Clone, Default)]
struct Script {
    first_heartbeat: i16,
    first_commit: i16,
    joins: Vec<i16>,
}

/// What the fake coordinator saw.
#[derive(Default)]
struct Seen {
    /// Each JoinGroup's member id and the partitions its subscription claims as owned.
    joins: Vec<(String, Vec<TopicPartition>)>,
    /// Each OffsetCommit's generation and partitions.
    commits: Vec<(i32, Vec<TopicPartition>)>,
    heartbeats: usize,
    generation: i32,
}

/// A one-node cluster (node 1, topic "t" with two partitions) that coordinates group "g"
/// with `MEMBER` as its only member and leader, answering as `script` says.
async fn fake_coordinator(listener: TcpListener, script: Script, seen: Arc<Mutex<Seen>>) {
    loop {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::spawn(serve(socket, script.clone(), Arc::clone(&seen)));
    }
}

async fn serve(mut socket: TcpStream, script: Script, seen: Arc<Mutex<Seen>>) {
    let port = socket.local_addr().unwrap().port() as i32;
    while let Some((header, mut body)) = read_request_body(&mut socket).await {
        let version = header.request_api_version;
        let cid = header.correlation_id;
        let key = ApiKey::try_from(header.request_api_key).unwrap();
        let hv = key.response_header_version(version);
        let sock = &mut socket;
        match key {
            ApiKey::ApiVersions => {
                let resp = api_versions(&[
                    (ApiKey::ApiVersions, 3),
                    (ApiKey::Metadata, 1),
                    (ApiKey::FindCoordinator, 1),
                    (ApiKey::JoinGroup, 5),
                    (ApiKey::SyncGroup, 3),
                    (ApiKey::Heartbeat, 3),
                    (ApiKey::LeaveGroup, 1),
                    (ApiKey::OffsetCommit, 2),
                ]);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::Metadata => {
                let partition = |i| {
                    MetadataResponsePartition::default()
                        .with_partition_index(i)
                        .with_leader_id(BrokerId(1))
                        .with_replica_nodes(vec![BrokerId(1)])
                        .with_isr_nodes(vec![BrokerId(1)])
                };
                let resp = MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(s("127.0.0.1"))
                        .with_port(port)])
                    .with_controller_id(BrokerId(1))
                    .with_topics(vec![MetadataResponseTopic::default()
                        .with_name(Some(TopicName(s("t"))))
                        .with_partitions(vec![partition(0), partition(1)])]);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::FindCoordinator => {
                let resp = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(1))
                    .with_host(s("127.0.0.1"))
                    .with_port(port);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::JoinGroup => {
                let request = JoinGroupRequest::decode(&mut body, version).unwrap();
                let metadata = request.protocols[0].metadata.clone();
                let (_, owned, _) = decode_subscription(&metadata).unwrap();
                let (code, generation) = {
                    let mut seen = seen.lock().unwrap();
                    seen.joins.push((request.member_id.to_string(), owned));
                    let code = script.joins.get(seen.joins.len() - 1).copied();
                    let code = code.unwrap_or(0);
                    if code == 0 {
                        seen.generation += 1;
                    }
                    (code, seen.generation)
                };
                let resp = if code != 0 {
                    JoinGroupResponse::default()
                        .with_error_code(code)
                        .with_generation_id(-1)
                } else {
                    JoinGroupResponse::default()
                        .with_generation_id(generation)
                        .with_protocol_name(Some(request.protocols[0].name.clone()))
                        .with_leader(s(MEMBER))
                        .with_member_id(s(MEMBER))
                        .with_members(vec![JoinGroupResponseMember::default()
                            .with_member_id(s(MEMBER))
                            .with_metadata(metadata)])
                };
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::SyncGroup => {
                // The member is the leader: hand it the assignment it computed.
                let request = SyncGroupRequest::decode(&mut body, version).unwrap();
                let assignment = request
                    .assignments
                    .iter()
                    .find(|a| a.member_id.as_str() == MEMBER)
                    .map_or_else(Bytes::new, |a| a.assignment.clone());
                let resp = SyncGroupResponse::default().with_assignment(assignment);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::Heartbeat => {
                let code = {
                    let mut seen = seen.lock().unwrap();
                    seen.heartbeats += 1;
                    if seen.heartbeats == 1 {
                        script.first_heartbeat
                    } else {
                        0
                    }
                };
                let resp = HeartbeatResponse::default().with_error_code(code);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::OffsetCommit => {
                let request = OffsetCommitRequest::decode(&mut body, version).unwrap();
                let partitions: Vec<TopicPartition> = request
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            TopicPartition::new(t.name.0.to_string(), p.partition_index as u32)
                        })
                    })
                    .collect();
                let code = {
                    let mut seen = seen.lock().unwrap();
                    let generation = request.generation_id_or_member_epoch;
                    seen.commits.push((generation, partitions.clone()));
                    if seen.commits.len() == 1 {
                        script.first_commit
                    } else {
                        0
                    }
                };
                let resp = OffsetCommitResponse::default().with_topics(vec![
                    OffsetCommitResponseTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|tp| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(tp.partition as i32)
                                        .with_error_code(code)
                                })
                                .collect(),
                        ),
                ]);
                answer(sock, cid, hv, version, &resp).await
            }
            ApiKey::LeaveGroup => {
                answer(sock, cid, hv, version, &LeaveGroupResponse::default()).await
            }
            other => panic!("the fake coordinator got an unexpected {other:?}"),
        }
    }
}

/// What the member told its listener and its observer.
#[derive(Default)]
struct Heard {
    rebalances: Vec<RebalanceEvent>,
    ended: Vec<GroupEvent>,
}

/// A subscribed member of group "g" (auto-commit on, so a revocation would commit),
/// using `assignor`, joined once: it owns both partitions of "t" at offset 5.
async fn joined_member(
    assignor: Assignor,
    heartbeat_interval_ms: u64,
    script: Script,
) -> (
    Consumer,
    Arc<Mutex<Seen>>,
    Arc<Mutex<Heard>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let broker = tokio::spawn(fake_coordinator(listener, script, Arc::clone(&seen)));
    let mut consumer = Consumer::new(ConsumerConfig {
        common: CommonConfig {
            bootstrap_servers: addr,
            request_timeout_ms: 5_000,
            retry_backoff_ms: 10,
            ..CommonConfig::default()
        },
        group_id: Some("g".to_string()),
        enable_auto_commit: true,
        auto_commit_interval_ms: 600_000,
        session_timeout_ms: 30_000,
        heartbeat_interval_ms,
        assignors: vec![assignor],
        ..ConsumerConfig::default()
    })
    .unwrap();
    let heard = Arc::new(Mutex::new(Heard::default()));
    let log = Arc::clone(&heard);
    consumer.set_rebalance_listener(move |e| log.lock().unwrap().rebalances.push(e.clone()));
    let log = Arc::clone(&heard);
    consumer.set_group_observer(GroupObserver::new(move |e| {
        if matches!(e, GroupEvent::MembershipEnded { .. }) {
            log.lock().unwrap().ended.push(e.clone());
        }
    }));
    consumer.subscribe(["t"]).unwrap();
    consumer.ensure_group().await.unwrap();
    assert_eq!(consumer.assignment(), both());
    for tp in both() {
        consumer.seek(&tp, 5);
    }
    (consumer, seen, heard, broker)
}

/// Waits (up to 5 s) until the heartbeat task has asked for a rejoin.
async fn until_rejoin_needed(consumer: &Consumer) {
    let group = consumer.group.as_ref().unwrap();
    for _ in 0..500 {
        if group
            .rejoin_needed
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the heartbeat task never asked for a rejoin");
}

/// Checks what a member that lost both partitions once did: the JoinGroups it sent (member
/// id, owned partitions), the OffsetCommits (generation, partitions), that the listener
/// heard the loss between the two assignments, and that the observer heard `ended`
/// (in generation 1, with both partitions).
fn assert_lost_once(
    seen: &Mutex<Seen>,
    heard: &Mutex<Heard>,
    joins: &[(&str, Vec<TopicPartition>)],
    commits: &[(i32, Vec<TopicPartition>)],
    ended: (&'static str, i16),
) {
    let seen = seen.lock().unwrap();
    let sent: Vec<(&str, Vec<TopicPartition>)> = seen
        .joins
        .iter()
        .map(|(member, owned)| (member.as_str(), owned.clone()))
        .collect();
    assert_eq!(sent, joins, "JoinGroups: member id, owned partitions");
    assert_eq!(
        seen.commits, commits,
        "OffsetCommits: generation, partitions"
    );
    let heard = heard.lock().unwrap();
    assert_eq!(
        heard.rebalances,
        [
            RebalanceEvent::Assigned(both()),
            RebalanceEvent::Revoked(both()),
            RebalanceEvent::Assigned(both()),
        ],
        "the listener hears the loss"
    );
    let (api, code) = ended;
    assert_eq!(
        heard.ended,
        [GroupEvent::MembershipEnded {
            api,
            error: KafkaCode(code),
            generation: 1,
            partitions: both(),
        }]
    );
}

/// KIP-429 with Kafka's `onJoinPrepare`: a heartbeat answered ILLEGAL_GENERATION means
/// the coordinator has moved on without this member, so its partitions are lost. Before
/// this was so, the cooperative member rejoined still claiming them as owned (and the
/// leader's sticky assignor honoured the claim, so two members could own one
/// partition), and the listener heard nothing.
#[tokio::test]
async fn cooperative_member_told_illegal_generation_by_a_heartbeat_rejoins_owning_nothing() {
    let script = Script {
        first_heartbeat: ILLEGAL_GENERATION,
        ..Script::default()
    };
    let (mut consumer, seen, heard, broker) =
        joined_member(Assignor::CooperativeSticky, 20, script).await;
    until_rejoin_needed(&consumer).await;
    consumer.ensure_group().await.unwrap();

    assert_lost_once(
        &seen,
        &heard,
        // The member id survives ILLEGAL_GENERATION; the partitions do not.
        &[("", vec![]), (MEMBER, vec![])],
        &[], // nothing is committed for lost partitions
        ("Heartbeat", ILLEGAL_GENERATION),
    );
    broker.abort();
}

/// A commit answered UNKNOWN_MEMBER_ID ends the membership too: the member rejoins under
/// a new member id, owning nothing, and does not commit the lost partitions.
#[tokio::test]
async fn cooperative_member_whose_commit_gets_unknown_member_id_loses_its_partitions() {
    let script = Script {
        first_commit: UNKNOWN_MEMBER_ID,
        ..Script::default()
    };
    let (mut consumer, seen, heard, broker) =
        joined_member(Assignor::CooperativeSticky, 600_000, script).await;
    let err = consumer.commit().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Partition { code, .. } if code.0 == UNKNOWN_MEMBER_ID),
        "{err}"
    );
    assert_eq!(consumer.assignment(), both(), "lost on the next poll");
    consumer.ensure_group().await.unwrap();

    assert_lost_once(
        &seen,
        &heard,
        &[("", vec![]), ("", vec![])],
        &[(1, both())], // only the refused commit
        ("OffsetCommit", UNKNOWN_MEMBER_ID),
    );
    broker.abort();
}

/// Eager: every partition is given up before a rejoin anyway, but lost ones must not be
/// committed first, as a revocation with auto-commit would (under a generation the
/// coordinator no longer has).
#[tokio::test]
async fn eager_member_told_illegal_generation_by_a_commit_does_not_commit_again() {
    let script = Script {
        first_commit: ILLEGAL_GENERATION,
        ..Script::default()
    };
    let (mut consumer, seen, heard, broker) = joined_member(Assignor::Range, 600_000, script).await;
    consumer.commit().await.unwrap_err();
    consumer.ensure_group().await.unwrap();

    assert_lost_once(
        &seen,
        &heard,
        &[("", vec![]), (MEMBER, vec![])],
        &[(1, both())], // only the refused commit
        ("OffsetCommit", ILLEGAL_GENERATION),
    );
    broker.abort();
}

/// A cooperative rebalance (REBALANCE_IN_PROGRESS) keeps the partitions and claims them in
/// the JoinGroup, as KIP-429 wants; if that JoinGroup is answered UNKNOWN_MEMBER_ID, the
/// claim is void: the member gives them up as lost before it joins again, owning none,
/// rather than retrying the join with the same claim.
#[tokio::test]
async fn cooperative_join_answered_unknown_member_id_is_retried_owning_nothing() {
    let script = Script {
        first_heartbeat: REBALANCE_IN_PROGRESS,
        joins: vec![0, UNKNOWN_MEMBER_ID],
        ..Script::default()
    };
    let (mut consumer, seen, heard, broker) =
        joined_member(Assignor::CooperativeSticky, 20, script).await;
    until_rejoin_needed(&consumer).await;
    consumer.ensure_group().await.unwrap();

    assert_lost_once(
        &seen,
        &heard,
        &[
            ("", vec![]),
            (MEMBER, both()), // still the owner: claim them
            ("", vec![]),     // lost: claim nothing
        ],
        &[],
        ("JoinGroup", UNKNOWN_MEMBER_ID),
    );
    broker.abort();
}

//! Group membership in Kafka's classic protocol, from the member's side: find the
//! coordinator, JoinGroup (answering MEMBER_ID_REQUIRED, KIP-394), run the assignor
//! when this member is the leader (the core's range, round-robin and
//! cooperative-sticky), SyncGroup, heartbeats in a background task, LeaveGroup; and the
//! group's committed offsets (OffsetCommit, OffsetFetch).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use eddy_core::group::{Assignor, Generation, Subscription};
use eddy_core::TopicPartition;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use tokio::time::Instant;

use super::events::{emit, GroupEvent, GroupObserver, SessionRequest};
use crate::connection::Connection;
use crate::error::{ClientError, KafkaCode, Result};
use crate::network::NetworkClient;

const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const FENCED_INSTANCE_ID: i16 = 82;
/// The subscription format version written (v1 carries owned partitions, which
/// cooperative-sticky needs).
const SUBSCRIPTION_VERSION: i16 = 1;
/// Join attempts before `join` gives up and reports the last error.
const MAX_JOIN_ATTEMPTS: u32 = 50;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The group's settings.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub group_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    /// `partition.assignment.strategy`, most preferred first.
    pub assignors: Vec<Assignor>,
    /// `default.api.timeout.ms`: how long a commit keeps retrying retriable errors.
    pub default_api_timeout_ms: u64,
}

/// The coordinator's word that this member's membership is over: it answered `api`, sent
/// in `generation`, with `code` (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
/// FENCED_INSTANCE_ID). The partitions the member holds are lost: another member may
/// own them already, so it neither commits them nor claims them when it rejoins (Kafka's
/// `ConsumerCoordinator.onJoinPrepare` after `resetStateOnResponseError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MembershipEnded {
    pub(crate) api: &'static str,
    pub(crate) code: i16,
    pub(crate) generation: i32,
}

/// Whether an answer to a group request means the coordinator no longer knows this
/// member in its generation.
fn ends_membership(code: i16) -> bool {
    matches!(
        code,
        UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID
    )
}

/// Records `ended` for the consumer to act on (from the member's task or its heartbeat
/// task); a later report replaces an earlier one, as both say the same.
fn report_end(slot: &Mutex<Option<MembershipEnded>>, ended: MembershipEnded) {
    *slot.lock().expect("membership end") = Some(ended);
}

/// What a completed join gives the member.
#[derive(Clone, Debug)]
pub(crate) struct Joined {
    pub(crate) generation: i32,
    pub(crate) protocol: Assignor,
    pub(crate) assignment: Vec<TopicPartition>,
}

/// The member's own view of its session: it lasts `session.timeout.ms` past the sending
/// of the last JoinGroup, SyncGroup or Heartbeat the coordinator accepted. The
/// coordinator received that request later, so it cannot have removed the member
/// before this view ends (librdkafka likewise gives its assignment up when its session
/// times out without a successful heartbeat; Java's consumer would go on as a zombie).
/// Shared with the heartbeat task.
pub(crate) struct SessionView {
    timeout: Duration,
    until: Mutex<Option<Instant>>,
    /// Set by [`Membership::set_observer`], which a running heartbeat task must see.
    observer: Mutex<Option<GroupObserver>>,
}

impl SessionView {
    /// `coordinator` accepted `request`, sent at `sent_at`.
    fn renew(&self, request: SessionRequest, coordinator: i32, sent_at: Instant) {
        let until = sent_at + self.timeout;
        {
            let mut current = self.until.lock().expect("session view");
            *current = Some(current.map_or(until, |u| u.max(until)));
        }
        let observer = self.observer.lock().expect("session view").clone();
        emit(&observer, || GroupEvent::SessionRenewed {
            request,
            coordinator,
            sent_at,
            session_until: until,
        });
    }

    /// When the session ended, if it has by `now` (never, before the first acceptance).
    pub(crate) fn ended_by(&self, now: Instant) -> Option<Instant> {
        let until = *self.until.lock().expect("session view");
        until.filter(|&u| u <= now)
    }

    /// Forgets the session (a new one starts with the next acceptance).
    fn reset(&self) {
        *self.until.lock().expect("session view") = None;
    }
}

/// This member's standing in the group.
pub(crate) struct Membership {
    net: NetworkClient,
    pub(crate) config: GroupConfig,
    coordinator: Option<i32>,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    /// Set by the heartbeat task when the coordinator says a rebalance is under way.
    pub(crate) rejoin_needed: Arc<AtomicBool>,
    /// The generation the running heartbeat task serves; it stops when this moves on.
    heartbeat_generation: Arc<AtomicI64>,
    pub(crate) session: Arc<SessionView>,
    /// The end of the membership the coordinator reported (here or to the heartbeat
    /// task), until the consumer gives its partitions up ([`Membership::take_ended`]).
    ended: Arc<Mutex<Option<MembershipEnded>>>,
    pub(crate) observer: Option<GroupObserver>,
}

impl Membership {
    pub(crate) fn new(net: NetworkClient, config: GroupConfig) -> Membership {
        let session_ms = config_session_ms(&config);
        Membership {
            net,
            config,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            rejoin_needed: Arc::new(AtomicBool::new(true)),
            heartbeat_generation: Arc::new(AtomicI64::new(-1)),
            session: Arc::new(SessionView {
                timeout: Duration::from_millis(session_ms),
                until: Mutex::new(None),
                observer: Mutex::new(None),
            }),
            ended: Arc::new(Mutex::new(None)),
            observer: None,
        }
    }

    /// The coordinator answered `api` with `code`, which ends this membership: report it
    /// to the consumer and reset the generation at once, so that nothing more is sent in
    /// it. Without a generation there is nothing to report (a member id the coordinator
    /// handed out with MEMBER_ID_REQUIRED and then forgot, say, when it moved; or an
    /// assign-mode consumer's commit): no partitions came with it.
    fn membership_ended(&mut self, api: &'static str, code: i16) {
        if self.generation >= 0 {
            report_end(
                &self.ended,
                MembershipEnded {
                    api,
                    code,
                    generation: self.generation,
                },
            );
        }
        self.reset_generation(code);
    }

    /// Kafka's `resetStateAndRejoin`: no generation any more, and no member id either
    /// unless the answer was ILLEGAL_GENERATION (the id may still be valid, and rejoining
    /// under it spares the group waiting out the old one); heartbeats stop.
    fn reset_generation(&mut self, code: i16) {
        tracing::debug!(group = %self.config.group_id, member = %self.member_id, generation = self.generation, code = %KafkaCode(code), "membership over; rejoining");
        self.generation = -1;
        if code != ILLEGAL_GENERATION {
            self.member_id.clear();
        }
        self.heartbeat_generation.store(-1, Ordering::SeqCst);
        self.rejoin_needed.store(true, Ordering::SeqCst);
    }

    /// Whether an end of the membership waits for the consumer to act on it.
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.lock().expect("membership end").is_some()
    }

    /// The end of the membership the coordinator reported, if one waits and still
    /// concerns this member: a heartbeat's answer about a generation the member has
    /// since left is ignored (Kafka's `generationUnchanged`). The generation is reset
    /// if it is not already.
    pub(crate) fn take_ended(&mut self) -> Option<MembershipEnded> {
        let ended = self.ended.lock().expect("membership end").take()?;
        if self.generation >= 0 && ended.generation != self.generation {
            return None;
        }
        if self.generation >= 0 {
            self.reset_generation(ended.code);
        }
        Some(ended)
    }

    /// Reports this member's [`GroupEvent`]s to `observer` from now on.
    pub(crate) fn set_observer(&mut self, observer: GroupObserver) {
        *self.session.observer.lock().expect("session view") = Some(observer.clone());
        self.observer = Some(observer);
    }

    /// The member gave its partitions up as lost: its session starts afresh.
    pub(crate) fn session_lost(&self) {
        self.session.reset();
        self.rejoin_needed.store(true, Ordering::SeqCst);
    }

    /// The connection to the group's coordinator, looked up if unknown.
    pub(crate) async fn coordinator(&mut self) -> Result<Arc<Connection>> {
        if let Some(node) = self.coordinator {
            if let Ok(c) = self.net.node(node).await {
                return Ok(c);
            }
            self.coordinator = None;
        }
        let node = find_coordinator(&self.net, &self.config.group_id).await?;
        self.coordinator = Some(node);
        self.net.node(node).await
    }

    /// Kafka's `markCoordinatorUnknown`: COORDINATOR_LOAD_IN_PROGRESS,
    /// COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR (14..=16) mean the coordinator
    /// moved or is moving, so the next request looks it up again (FindCoordinator).
    fn forget_coordinator_if(&mut self, code: i16) {
        if matches!(code, 14..=16) {
            self.coordinator = None;
        }
    }

    /// [`Self::forget_coordinator_if`] for the error of a request to the coordinator.
    /// Every such request must go through here: a member that kept asking a broker that
    /// is no longer the coordinator would never get an answer, while its heartbeats (which
    /// look the coordinator up on their own) keep it in the group holding its partitions.
    fn forget_coordinator_on<T>(&mut self, result: &Result<T>) {
        if let Err(ClientError::Broker { code, .. } | ClientError::Partition { code, .. }) = result
        {
            self.forget_coordinator_if(code.0);
        }
    }

    /// Joins (or rejoins) the group and returns this member's assignment. `owned` is what
    /// the member holds now (for cooperative-sticky).
    pub(crate) async fn join(
        &mut self,
        topics: &BTreeSet<String>,
        owned: &[TopicPartition],
    ) -> Result<Joined> {
        self.heartbeat_generation.store(-1, Ordering::SeqCst);
        let mut last_error = None;
        for _ in 0..MAX_JOIN_ATTEMPTS {
            match self.join_once(topics, owned).await {
                Ok(joined) => {
                    // Whatever ended came before this generation.
                    *self.ended.lock().expect("membership end") = None;
                    self.rejoin_needed.store(false, Ordering::SeqCst);
                    self.start_heartbeat();
                    return Ok(joined);
                }
                // `owned` is lost: the consumer gives it up before joining again
                // owning nothing.
                Err(e) if !owned.is_empty() && self.has_ended() => return Err(e),
                Err(e) if e.is_retriable() || is_rejoin(&e) => {
                    tracing::debug!(group = %self.config.group_id, error = %e, "rejoining");
                    last_error = Some(e);
                    tokio::time::sleep(self.net.retry_backoff()).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("attempts failed"))
    }

    async fn join_once(
        &mut self,
        topics: &BTreeSet<String>,
        owned: &[TopicPartition],
    ) -> Result<Joined> {
        let conn = self.coordinator().await?;
        let metadata = encode_subscription(topics, owned);
        let version = conn.version(ApiKey::JoinGroup)?;
        let mut request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(&self.config.group_id)))
            .with_session_timeout_ms(self.config.session_timeout_ms)
            .with_member_id(s(&self.member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                self.config
                    .assignors
                    .iter()
                    .map(|a| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(a.name()))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        if version >= 1 {
            request.rebalance_timeout_ms = self.config.rebalance_timeout_ms;
        }
        let coordinator = self.coordinator.unwrap_or(-1);
        let sent_at = Instant::now();
        let response = conn.call_at(&request, version).await?;
        match response.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                self.member_id = response.member_id.to_string();
                return Err(self.group_error(&conn, "JoinGroup", MEMBER_ID_REQUIRED));
            }
            code if ends_membership(code) => {
                // Rejoin without the member id, whatever the code (a JoinGroup names no
                // generation, so ILLEGAL_GENERATION is not expected here).
                self.membership_ended("JoinGroup", code);
                self.member_id.clear();
                return Err(self.group_error(&conn, "JoinGroup", code));
            }
            code => {
                self.forget_coordinator_if(code);
                return Err(self.group_error(&conn, "JoinGroup", code));
            }
        }
        self.member_id = response.member_id.to_string();
        self.generation = response.generation_id;
        self.session
            .renew(SessionRequest::JoinGroup, coordinator, sent_at);
        emit(&self.observer, || GroupEvent::Joined {
            coordinator,
            generation: response.generation_id,
            member_id: self.member_id.clone(),
        });
        let protocol_name = response
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let protocol =
            Assignor::from_name(&protocol_name).ok_or_else(|| ClientError::Protocol {
                broker: conn.broker().to_string(),
                api: "JoinGroup",
                reason: format!(
                    "the group chose assignor {protocol_name:?}, which this client does not have"
                ),
            })?;
        let assignments = if response.leader.as_str() == self.member_id {
            self.assign(protocol, &response.members).await?
        } else {
            Vec::new()
        };
        let version = conn.version(ApiKey::SyncGroup)?;
        let mut request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&self.config.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_assignments(assignments);
        if version >= 5 {
            request.protocol_type = Some(s("consumer"));
            request.protocol_name = Some(s(protocol.name()));
        }
        let sent_at = Instant::now();
        let response = conn.call_at(&request, version).await?;
        if response.error_code != 0 {
            if ends_membership(response.error_code) {
                self.membership_ended("SyncGroup", response.error_code);
            }
            self.forget_coordinator_if(response.error_code);
            return Err(self.group_error(&conn, "SyncGroup", response.error_code));
        }
        self.session
            .renew(SessionRequest::SyncGroup, coordinator, sent_at);
        let assignment =
            decode_assignment(&response.assignment).map_err(|reason| ClientError::Protocol {
                broker: conn.broker().to_string(),
                api: "SyncGroup",
                reason,
            })?;
        tracing::debug!(group = %self.config.group_id, member = %self.member_id, generation = self.generation, ?assignment, "joined");
        Ok(Joined {
            generation: self.generation,
            protocol,
            assignment,
        })
    }

    /// The leader's part: run the chosen assignor over every member's subscription.
    async fn assign(
        &self,
        protocol: Assignor,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscriptions = Vec::new();
        let mut all_topics = BTreeSet::new();
        for m in members {
            let (topics, owned, generation) =
                decode_subscription(&m.metadata).map_err(|reason| ClientError::Protocol {
                    broker: "the group leader's input".to_string(),
                    api: "JoinGroup",
                    reason: format!("member {}: {reason}", m.member_id),
                })?;
            all_topics.extend(topics.iter().cloned());
            let mut sub = Subscription::new(m.member_id.to_string(), topics);
            if !owned.is_empty() || generation >= 0 {
                sub = sub.with_owned(owned, Generation(generation.max(0)));
            }
            subscriptions.push(sub);
        }
        let topics: Vec<String> = all_topics.into_iter().collect();
        self.net.refresh_metadata(Some(&topics), false).await?;
        let partitions_per_topic: BTreeMap<String, u32> = topics
            .iter()
            .filter_map(|t| {
                self.net
                    .topic(t)
                    .map(|m| (t.clone(), m.partitions.len() as u32))
            })
            .collect();
        let assignment = protocol.assign(&subscriptions, &partitions_per_topic);
        Ok(assignment
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(encode_assignment(&tps))
            })
            .collect())
    }

    fn group_error(&self, conn: &Connection, api: &'static str, code: i16) -> ClientError {
        ClientError::Broker {
            broker: conn.broker().to_string(),
            api,
            code: KafkaCode(code),
            message: Some(format!("group {}", self.config.group_id)),
        }
    }

    fn start_heartbeat(&self) {
        let generation = i64::from(self.generation);
        self.heartbeat_generation
            .store(generation, Ordering::SeqCst);
        let current = self.heartbeat_generation.clone();
        let rejoin = self.rejoin_needed.clone();
        let net = self.net.clone();
        let mut coordinator = self.coordinator;
        let group_id = self.config.group_id.clone();
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.config.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id));
        let interval = Duration::from_millis(self.config.heartbeat_interval_ms);
        let session = Arc::clone(&self.session);
        let ended = Arc::clone(&self.ended);
        let sent_in = self.generation;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if current.load(Ordering::SeqCst) != generation {
                    return;
                }
                let node = match coordinator {
                    Some(n) => n,
                    // The coordinator moved or died: find the new one (as Kafka's
                    // clients do) and heartbeat there; it knows the member if the group
                    // survived, and says UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION if not.
                    None => match find_coordinator(&net, &group_id).await {
                        Ok(n) => {
                            coordinator = Some(n);
                            n
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "heartbeat: no coordinator yet");
                            continue;
                        }
                    },
                };
                let sent_at = Instant::now();
                let answer = match net.node(node).await {
                    Ok(c) => c.call(&request).await,
                    Err(e) => Err(e),
                };
                if current.load(Ordering::SeqCst) != generation {
                    return;
                }
                match answer {
                    Ok(r) if r.error_code == 0 => {
                        session.renew(SessionRequest::Heartbeat, node, sent_at);
                    }
                    Ok(r) if matches!(r.error_code, 14..=16) => {
                        tracing::debug!(code = %KafkaCode(r.error_code), "heartbeat: coordinator moved");
                        coordinator = None;
                    }
                    Ok(r) if ends_membership(r.error_code) => {
                        tracing::debug!(code = %KafkaCode(r.error_code), "heartbeat: membership over");
                        report_end(
                            &ended,
                            MembershipEnded {
                                api: "Heartbeat",
                                code: r.error_code,
                                generation: sent_in,
                            },
                        );
                        rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(r) => {
                        tracing::debug!(code = %KafkaCode(r.error_code), "heartbeat: rejoin");
                        rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "heartbeat failed; looking the coordinator up again");
                        coordinator = None;
                    }
                }
            }
        });
    }

    /// Leaves the group (on close), so the others rebalance at once rather than after
    /// the session timeout.
    pub(crate) async fn leave(&mut self) -> Result<()> {
        self.heartbeat_generation.store(-1, Ordering::SeqCst);
        if self.member_id.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let version = conn.version(ApiKey::LeaveGroup)?;
        let mut request =
            LeaveGroupRequest::default().with_group_id(GroupId(s(&self.config.group_id)));
        if version >= 3 {
            request.members = vec![MemberIdentity::default().with_member_id(s(&self.member_id))];
        } else {
            request.member_id = s(&self.member_id);
        }
        let response = conn.call_at(&request, version).await?;
        self.member_id.clear();
        self.generation = -1;
        if response.error_code != 0 && response.error_code != UNKNOWN_MEMBER_ID {
            self.forget_coordinator_if(response.error_code);
            return Err(self.group_error(&conn, "LeaveGroup", response.error_code));
        }
        Ok(())
    }

    /// Commits `offsets` under this member's generation, as Kafka's `commitSync` does
    /// (`ConsumerCoordinator.commitOffsetsSync`): a retriable error — the coordinator
    /// moved or is loading (looked up again first), a timeout, a lost connection — is
    /// retried after `retry.backoff.ms` until `default.api.timeout.ms` has passed, and
    /// then returned. An error that ends the member's generation (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID: Kafka's
    /// `CommitFailedException` and kin) or any other error that is not retriable is
    /// returned at once.
    pub(crate) async fn commit(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.default_api_timeout_ms);
        loop {
            let result = self.commit_once(offsets).await;
            match &result {
                Err(e)
                    if e.is_retriable()
                        && !ends_generation(e)
                        && tokio::time::Instant::now() + self.net.retry_backoff() < deadline =>
                {
                    tracing::debug!(error = %e, "offset commit failed; retrying");
                    tokio::time::sleep(self.net.retry_backoff()).await;
                }
                _ => return result,
            }
        }
    }

    /// One OffsetCommit to the coordinator.
    pub(crate) async fn commit_once(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let conn = self.coordinator().await?;
        let (generation, member) = (self.generation, self.member_id.clone());
        emit(&self.observer, || GroupEvent::CommitSent {
            generation,
            offsets: offsets.clone(),
        });
        let result =
            commit_offsets(&conn, &self.config.group_id, generation, &member, offsets).await;
        if let Err(ClientError::Broker { code, .. } | ClientError::Partition { code, .. }) = &result
        {
            if ends_membership(code.0) {
                self.membership_ended("OffsetCommit", code.0);
            } else if code.0 == REBALANCE_IN_PROGRESS {
                self.rejoin_needed.store(true, Ordering::SeqCst);
            }
        }
        self.forget_coordinator_on(&result);
        result
    }

    /// The group's committed offsets for `partitions` (-1 where none).
    pub(crate) async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let conn = self.coordinator().await?;
        let result = fetch_committed(&conn, &self.config.group_id, Some(partitions)).await;
        self.forget_coordinator_on(&result);
        result
    }
}

fn config_session_ms(config: &GroupConfig) -> u64 {
    config.session_timeout_ms.max(0) as u64
}

/// Whether a commit's error says the member's generation is over: retrying cannot help,
/// the member must rejoin.
fn ends_generation(e: &ClientError) -> bool {
    matches!(e, ClientError::Broker { code, .. } | ClientError::Partition { code, .. }
        if matches!(code.0, UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | REBALANCE_IN_PROGRESS | FENCED_INSTANCE_ID))
}

fn is_rejoin(e: &ClientError) -> bool {
    matches!(e, ClientError::Broker { code, .. }
        if matches!(code.0, MEMBER_ID_REQUIRED | UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | REBALANCE_IN_PROGRESS | FENCED_INSTANCE_ID))
}

/// The coordinator of `group_id` (FindCoordinator, retried while it is being elected).
pub(crate) async fn find_coordinator(net: &NetworkClient, group_id: &str) -> Result<i32> {
    let mut last = None;
    for _ in 0..MAX_JOIN_ATTEMPTS {
        let request = FindCoordinatorRequest::default().with_key(s(group_id));
        match net.call_any(&request).await {
            Ok(r) if r.error_code == 0 => return Ok(r.node_id.0),
            Ok(r) => {
                last = Some(ClientError::Broker {
                    broker: "any".to_string(),
                    api: "FindCoordinator",
                    code: KafkaCode(r.error_code),
                    message: Some(format!("group {group_id}")),
                })
            }
            Err(e) if e.is_retriable() => last = Some(e),
            Err(e) => return Err(e),
        }
        tokio::time::sleep(net.retry_backoff()).await;
    }
    Err(last.expect("attempts failed"))
}

/// OffsetCommit for `group_id`; generation -1 and an empty member id commit as a
/// non-member (admin tools, assign-mode consumers).
pub(crate) async fn commit_offsets(
    conn: &Connection,
    group_id: &str,
    generation: i32,
    member_id: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, &offset) in offsets {
        topics.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition as i32)
                .with_committed_offset(offset),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group_id)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let response = conn.call(&request).await?;
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::Partition {
                    broker: conn.broker().to_string(),
                    api: "OffsetCommit",
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    code: KafkaCode(p.error_code),
                });
            }
        }
    }
    Ok(())
}

/// OffsetFetch for `group_id`: `None` asks for every partition the group has offsets for.
pub(crate) async fn fetch_committed(
    conn: &Connection,
    group_id: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let topics = partitions.map(|ps| {
        partition_ids_by_topic(ps)
            .into_iter()
            .map(|(t, ids)| {
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partition_indexes(ids)
            })
            .collect()
    });
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group_id)))
        .with_topics(topics);
    let response = conn.call(&request).await?;
    if response.error_code != 0 {
        return Err(ClientError::Broker {
            broker: conn.broker().to_string(),
            api: "OffsetFetch",
            code: KafkaCode(response.error_code),
            message: Some(format!("group {group_id}")),
        });
    }
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::Partition {
                    broker: conn.broker().to_string(),
                    api: "OffsetFetch",
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    code: KafkaCode(p.error_code),
                });
            }
            out.insert(
                TopicPartition::new(t.name.0.to_string(), p.partition_index as u32),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

/// The partition ids of `partitions`, topic by topic (in topic order), as the group
/// APIs and the consumer protocol list them.
fn partition_ids_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition as i32);
    }
    by_topic
}

/// The consumer protocol's subscription bytes: version, then the struct.
fn encode_subscription(topics: &BTreeSet<String>, owned: &[TopicPartition]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .with_owned_partitions(
            partition_ids_by_topic(owned)
                .into_iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(TopicName(s(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    sub.encode(&mut buf, SUBSCRIPTION_VERSION)
        .expect("a subscription encodes");
    buf.freeze()
}

pub(super) type DecodedSubscription = (Vec<String>, Vec<TopicPartition>, i32);

pub(super) fn decode_subscription(
    bytes: &Bytes,
) -> std::result::Result<DecodedSubscription, String> {
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return Err("the subscription is shorter than its version".to_string());
    }
    // A newer version than the crate knows is read as the newest it knows: Kafka's
    // formats only append fields.
    let version = b.get_i16().clamp(0, 3);
    let sub = ConsumerProtocolSubscription::decode(&mut b, version).map_err(|e| e.to_string())?;
    let owned = sub
        .owned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.topic.0.to_string(), p as u32))
        })
        .collect();
    let generation = if version >= 2 { sub.generation_id } else { -1 };
    Ok((
        sub.topics.iter().map(|t| t.to_string()).collect(),
        owned,
        generation,
    ))
}

fn encode_assignment(tps: &[TopicPartition]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partition_ids_by_topic(tps)
            .into_iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(TopicName(s(t)))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    a.encode(&mut buf, 1).expect("an assignment encodes");
    buf.freeze()
}

fn decode_assignment(bytes: &Bytes) -> std::result::Result<Vec<TopicPartition>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new()); // no assignment (the group has nothing for this member)
    }
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return Err("the assignment is shorter than its version".to_string());
    }
    let version = b.get_i16().clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(&mut b, version).map_err(|e| e.to_string())?;
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.topic.0.to_string(), p as u32))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::fake_broker::{answer, api_versions, read_request};
    use crate::network::CommonConfig;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, FindCoordinatorResponse, MetadataResponse, OffsetCommitResponse,
        OffsetFetchResponse,
    };
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    const NOT_COORDINATOR: i16 = 16;

    /// A one-node "cluster" that names itself node 1 and the group's coordinator, but
    /// answers the first OffsetFetch with NOT_COORDINATOR (as a broker does right after
    /// its `__consumer_offsets` partition moved away), and the n-th OffsetCommit with
    /// `commit_errors[n]` (0 once they run out); it logs the API key of every request it
    /// gets.
    async fn moving_coordinator(
        listener: TcpListener,
        seen: Arc<Mutex<Vec<ApiKey>>>,
        commit_errors: Vec<i16>,
    ) {
        let port = listener.local_addr().unwrap().port() as i32;
        let mut offset_fetches = 0;
        let mut offset_commits = 0;
        let (mut socket, _) = listener.accept().await.unwrap();
        loop {
            let Some((key, version, correlation_id)) = read_request(&mut socket).await else {
                return; // the client hung up
            };
            let key = ApiKey::try_from(key).unwrap();
            seen.lock().unwrap().push(key);
            let header_version = key.response_header_version(version);
            match key {
                ApiKey::ApiVersions => {
                    let resp = api_versions(&[
                        (ApiKey::ApiVersions, 3),
                        (ApiKey::Metadata, 1),
                        (ApiKey::FindCoordinator, 1),
                        (ApiKey::OffsetFetch, 3),
                        (ApiKey::OffsetCommit, 2),
                    ]);
                    answer(&mut socket, correlation_id, header_version, version, &resp).await
                }
                ApiKey::Metadata => {
                    let resp = MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(1))
                            .with_host(s("127.0.0.1"))
                            .with_port(port)])
                        .with_controller_id(BrokerId(1));
                    answer(&mut socket, correlation_id, header_version, version, &resp).await
                }
                ApiKey::FindCoordinator => {
                    let resp = FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(1))
                        .with_host(s("127.0.0.1"))
                        .with_port(port);
                    answer(&mut socket, correlation_id, header_version, version, &resp).await
                }
                ApiKey::OffsetFetch => {
                    offset_fetches += 1;
                    let response = if offset_fetches == 1 {
                        OffsetFetchResponse::default().with_error_code(NOT_COORDINATOR)
                    } else {
                        OffsetFetchResponse::default().with_topics(vec![
                            OffsetFetchResponseTopic::default()
                                .with_name(TopicName(s("t")))
                                .with_partitions(vec![OffsetFetchResponsePartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(42)]),
                        ])
                    };
                    answer(
                        &mut socket,
                        correlation_id,
                        header_version,
                        version,
                        &response,
                    )
                    .await
                }
                ApiKey::OffsetCommit => {
                    let code = commit_errors.get(offset_commits).copied().unwrap_or(0);
                    offset_commits += 1;
                    let response = OffsetCommitResponse::default().with_topics(vec![
                        OffsetCommitResponseTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![OffsetCommitResponsePartition::default()
                                .with_partition_index(0)
                                .with_error_code(code)]),
                    ]);
                    answer(
                        &mut socket,
                        correlation_id,
                        header_version,
                        version,
                        &response,
                    )
                    .await
                }
                other => panic!("the test broker got an unexpected {other:?}"),
            }
        }
    }

    /// Kafka's consumer marks the coordinator unknown when OffsetFetch answers
    /// NOT_COORDINATOR (`ConsumerCoordinator.OffsetFetchResponseHandler`). Before this
    /// was so, a member that joined, then saw the coordinator move before it fetched its
    /// committed offsets, asked the old broker forever and never read its partitions,
    /// while its heartbeats kept it in the group (madsim seeds 76, 179 and 185 of the
    /// kill scenario).
    #[tokio::test]
    async fn offset_fetch_answered_not_coordinator_looks_the_coordinator_up_again() {
        let (mut member, net, seen, broker) =
            member_of_moving_coordinator(Vec::new(), 60_000).await;
        let tp = TopicPartition::new("t", 0);

        let err = member
            .committed(std::slice::from_ref(&tp))
            .await
            .unwrap_err();
        assert!(err.is_retriable(), "NOT_COORDINATOR is retried: {err}");
        let committed = member.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(committed, BTreeMap::from([(tp, 42)]));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ApiKey::ApiVersions,
                ApiKey::FindCoordinator,
                ApiKey::Metadata,
                ApiKey::OffsetFetch,
                // NOT_COORDINATOR: look the coordinator up before asking again.
                ApiKey::FindCoordinator,
                ApiKey::OffsetFetch,
            ]
        );
        net.close().await;
        broker.await.unwrap();
    }

    /// A member of group "g" whose coordinator is a [`moving_coordinator`] answering
    /// OffsetCommit with `commit_errors` in turn.
    async fn member_of_moving_coordinator(
        commit_errors: Vec<i16>,
        default_api_timeout_ms: u64,
    ) -> (
        Membership,
        NetworkClient,
        Arc<Mutex<Vec<ApiKey>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let broker = tokio::spawn(moving_coordinator(listener, seen.clone(), commit_errors));
        let net = NetworkClient::new(CommonConfig {
            bootstrap_servers: addr,
            request_timeout_ms: 5_000,
            retry_backoff_ms: 10,
            ..CommonConfig::default()
        })
        .unwrap();
        let member = Membership::new(
            net.clone(),
            GroupConfig {
                group_id: "g".to_string(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                heartbeat_interval_ms: 1_000,
                assignors: vec![Assignor::Range],
                default_api_timeout_ms,
            },
        );
        (member, net, seen, broker)
    }

    /// [`member_of_moving_coordinator`], already in generation 3.
    async fn committing_member(
        commit_errors: Vec<i16>,
        default_api_timeout_ms: u64,
    ) -> (
        Membership,
        NetworkClient,
        Arc<Mutex<Vec<ApiKey>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (mut member, net, seen, broker) =
            member_of_moving_coordinator(commit_errors, default_api_timeout_ms).await;
        member.generation = 3;
        member.member_id = "m".to_string();
        (member, net, seen, broker)
    }

    fn commits_only(seen: &Mutex<Vec<ApiKey>>) -> Vec<ApiKey> {
        seen.lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|k| matches!(k, ApiKey::OffsetCommit | ApiKey::FindCoordinator))
            .collect()
    }

    const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    const REQUEST_TIMED_OUT: i16 = 7;

    /// Kafka's `commitSync` retries a retriable error until `default.api.timeout.ms`
    /// (`ConsumerCoordinator.commitOffsetsSync`); before this, `commit_offsets` returned
    /// the first one. A coordinator error also makes the member look the coordinator up
    /// again before the retry.
    #[tokio::test]
    async fn a_commit_retries_retriable_errors_until_it_succeeds() {
        let errors = vec![
            COORDINATOR_LOAD_IN_PROGRESS,
            REQUEST_TIMED_OUT,
            NOT_COORDINATOR,
        ];
        let (mut member, net, seen, broker) = committing_member(errors, 60_000).await;
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 7)]);
        member.commit(&offsets).await.unwrap();
        assert_eq!(
            commits_only(&seen),
            [
                ApiKey::FindCoordinator,
                ApiKey::OffsetCommit, // COORDINATOR_LOAD_IN_PROGRESS: look it up again
                ApiKey::FindCoordinator,
                ApiKey::OffsetCommit, // REQUEST_TIMED_OUT: same coordinator
                ApiKey::OffsetCommit, // NOT_COORDINATOR: look it up again
                ApiKey::FindCoordinator,
                ApiKey::OffsetCommit, // ok
            ]
        );
        net.close().await;
        broker.await.unwrap();
    }

    #[tokio::test]
    async fn a_commit_gives_up_on_retriable_errors_after_the_api_timeout() {
        let errors = vec![REQUEST_TIMED_OUT; 1_000];
        let (mut member, net, seen, broker) = committing_member(errors, 200).await;
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 7)]);
        let started = std::time::Instant::now();
        let err = member.commit(&offsets).await.unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let attempts = commits_only(&seen)
            .iter()
            .filter(|k| **k == ApiKey::OffsetCommit)
            .count();
        assert!(
            attempts > 1,
            "retried before giving up: {attempts} attempts"
        );
        net.close().await;
        broker.await.unwrap();
    }

    #[tokio::test]
    async fn a_commit_whose_generation_is_over_fails_at_once() {
        let errors = vec![ILLEGAL_GENERATION, 0];
        let (mut member, net, seen, broker) = committing_member(errors, 60_000).await;
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 7)]);
        let err = member.commit(&offsets).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Partition { code, .. } if code.0 == ILLEGAL_GENERATION),
            "{err}"
        );
        assert!(member.rejoin_needed.load(Ordering::SeqCst));
        assert_eq!(
            commits_only(&seen),
            [ApiKey::FindCoordinator, ApiKey::OffsetCommit]
        );
        net.close().await;
        broker.await.unwrap();
    }

    #[test]
    fn subscription_and_assignment_bytes_round_trip() {
        let topics: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let owned = vec![TopicPartition::new("a", 1), TopicPartition::new("b", 0)];
        let (t, o, _) = decode_subscription(&encode_subscription(&topics, &owned)).unwrap();
        assert_eq!(t, vec!["a", "b"]);
        assert_eq!(o, owned);
        assert_eq!(
            decode_assignment(&encode_assignment(&owned)).unwrap(),
            owned
        );
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
    }

    /// The session view lasts `session.timeout.ms` past the sending of the latest
    /// accepted request (a late answer to an older one does not shorten it), ends
    /// exactly then, and each renewal reaches the observer with its coordinator.
    #[test]
    fn the_session_view_lasts_from_the_latest_accepted_send() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let view = SessionView {
            timeout: Duration::from_millis(10_000),
            until: Mutex::new(None),
            observer: Mutex::new(Some(GroupObserver::new(move |e| {
                log.lock().unwrap().push(e.clone())
            }))),
        };
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            view.ended_by(ms(1_000_000)),
            None,
            "no session before one is accepted"
        );
        view.renew(SessionRequest::SyncGroup, 2, ms(100));
        view.renew(SessionRequest::Heartbeat, 2, ms(1_100));
        view.renew(SessionRequest::Heartbeat, 3, ms(600)); // answered late
        assert_eq!(view.ended_by(ms(11_099)), None);
        assert_eq!(view.ended_by(ms(11_100)), Some(ms(11_100)));
        view.reset();
        assert_eq!(view.ended_by(ms(1_000_000)), None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[2],
            GroupEvent::SessionRenewed {
                request: SessionRequest::Heartbeat,
                coordinator: 3,
                sent_at: ms(600),
                session_until: ms(10_600),
            }
        );
    }
}

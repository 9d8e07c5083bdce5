//! The consumer: `assign` partitions, or `subscribe` to topics as a member of a group,
//! then `poll` for records.
//!
//! Two positions per partition: the *position* (the next offset `poll` hands out, what
//! `commit` commits) and the *fetch position* (the next offset to ask the broker for).
//! They differ only while fetched records wait in the buffer, so a commit never covers
//! a record the application has not been given.
//!
//! A partition with no position starts from the group's committed offset, else where
//! `auto.offset.reset` says. With `enable.auto.commit`, positions are committed every
//! `auto.commit.interval.ms` from `poll`, before a rebalance takes partitions away, and
//! on `close`.
//!
//! A group member also gives its partitions up as lost, and rejoins owning none, once its
//! own view of its session has ended (see [`GroupEvent::SessionExpired`]) or the
//! coordinator answers that its membership is over (UNKNOWN_MEMBER_ID,
//! ILLEGAL_GENERATION, FENCED_INSTANCE_ID; see [`GroupEvent::MembershipEnded`]): the
//! coordinator may have handed them on, so it hands out no more of their records,
//! commits none of their offsets, and does not claim them in its next JoinGroup (Kafka's
//! `onPartitionsLost`, for the eager and the cooperative protocol alike).

mod events;
mod fetcher;
mod group;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use eddy_core::group::{Assignor, RebalanceProtocol};
use eddy_core::TopicPartition;
use tokio::time::Instant;

use crate::error::{ClientError, KafkaCode, Result};
use crate::network::{CommonConfig, NetworkClient};
use events::emit;
pub use events::{GroupEvent, GroupObserver, PositionSource, SessionRequest};
pub use fetcher::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use fetcher::{FetchLimits, PartitionFetch};
pub use group::GroupConfig;
use group::Membership;
pub(crate) use group::{commit_offsets, fetch_committed, find_coordinator};

/// The node id of the broker coordinating `group_id`.
pub async fn find_coordinator_of(net: &NetworkClient, group_id: &str) -> Result<i32> {
    find_coordinator(net, group_id).await
}

/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Rebalance rounds one `poll` goes through before handing control back (a
/// cooperative rebalance takes two).
const MAX_REBALANCE_ROUNDS: u32 = 5;

/// `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail with [`ClientError::NoOffset`].
    None,
}

/// The consumer's settings, under Kafka's names.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub common: CommonConfig,
    /// `group.id`: needed for `subscribe` and for committed offsets.
    pub group_id: Option<String>,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub auto_offset_reset: OffsetReset,
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms`, sent as the rebalance timeout.
    pub max_poll_interval_ms: i32,
    pub heartbeat_interval_ms: u64,
    /// `partition.assignment.strategy`, most preferred first.
    pub assignors: Vec<Assignor>,
    pub fetch_max_wait_ms: i32,
    pub fetch_min_bytes: i32,
    pub fetch_max_bytes: i32,
    pub max_partition_fetch_bytes: i32,
    pub max_poll_records: usize,
    /// `default.api.timeout.ms`: how long `commit`/`commit_offsets` retry retriable
    /// errors (Kafka's `commitSync` without a timeout argument).
    pub default_api_timeout_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            common: CommonConfig::default(),
            group_id: None,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            auto_offset_reset: OffsetReset::Latest,
            session_timeout_ms: 45_000,
            max_poll_interval_ms: 300_000,
            heartbeat_interval_ms: 3_000,
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            max_poll_records: 500,
            default_api_timeout_ms: 60_000,
        }
    }
}

/// A record as `poll` hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What a rebalance did to this member's partitions (Kafka's
/// `ConsumerRebalanceListener`): called from inside `poll`. Partitions lost because the
/// member's session ended or the coordinator ended its membership are `Revoked` too
/// (Kafka's `onPartitionsLost` defaults to `onPartitionsRevoked`); a [`GroupObserver`]
/// tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebalanceEvent {
    Revoked(Vec<TopicPartition>),
    Assigned(Vec<TopicPartition>),
}

type Listener = Box<dyn FnMut(&RebalanceEvent) + Send>;

/// A fetch started while the application works through what the last one brought
/// (fetch pipelining): used by the next `poll` if the positions it fetched from are
/// still the ones to fetch, dropped otherwise (after a seek, pause or rebalance).
struct Prefetch {
    positions: BTreeMap<TopicPartition, i64>,
    handle: tokio::task::JoinHandle<Vec<(TopicPartition, PartitionFetch)>>,
}

/// A Kafka consumer. Owned by one task, as Kafka's is; heartbeats run on their own.
pub struct Consumer {
    net: NetworkClient,
    config: ConsumerConfig,
    subscription: Option<BTreeSet<String>>,
    assigned: BTreeSet<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    fetch_positions: BTreeMap<TopicPartition, i64>,
    high_watermarks: BTreeMap<TopicPartition, i64>,
    paused: BTreeSet<TopicPartition>,
    group: Option<Membership>,
    protocol: Option<Assignor>,
    buffered: VecDeque<ConsumerRecord>,
    last_auto_commit: Instant,
    listener: Option<Listener>,
    prefetch: Option<Prefetch>,
}

impl Consumer {
    pub fn new(config: ConsumerConfig) -> Result<Consumer> {
        let net = NetworkClient::new(config.common.clone())?;
        let group = config.group_id.as_ref().map(|g| {
            Membership::new(
                net.clone(),
                GroupConfig {
                    group_id: g.clone(),
                    session_timeout_ms: config.session_timeout_ms,
                    rebalance_timeout_ms: config.max_poll_interval_ms,
                    heartbeat_interval_ms: config.heartbeat_interval_ms,
                    assignors: config.assignors.clone(),
                    default_api_timeout_ms: config.default_api_timeout_ms,
                },
            )
        });
        Ok(Consumer {
            net,
            config,
            subscription: None,
            assigned: BTreeSet::new(),
            positions: BTreeMap::new(),
            fetch_positions: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            paused: BTreeSet::new(),
            group,
            protocol: None,
            buffered: VecDeque::new(),
            last_auto_commit: Instant::now(),
            listener: None,
            prefetch: None,
        })
    }

    pub fn network(&self) -> &NetworkClient {
        &self.net
    }

    /// Called with each rebalance's revocations and assignments.
    pub fn set_rebalance_listener(
        &mut self,
        listener: impl FnMut(&RebalanceEvent) + Send + 'static,
    ) {
        self.listener = Some(Box::new(listener));
    }

    /// Reports the group member's [`GroupEvent`]s to `observer` (monitoring). A consumer
    /// without `group.id` has no group events.
    pub fn set_group_observer(&mut self, observer: GroupObserver) {
        if let Some(group) = &mut self.group {
            group.set_observer(observer);
        }
    }

    /// Consumes exactly `partitions`, outside any group rebalancing.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.subscription = None;
        self.assigned = partitions.into_iter().collect();
        self.forget_unassigned();
    }

    /// Joins the group (on the next `poll`) to consume `topics`.
    pub fn subscribe(&mut self, topics: impl IntoIterator<Item = impl Into<String>>) -> Result<()> {
        let Some(group) = &self.group else {
            return Err(ClientError::Config(
                "subscribe needs group.id; set one, or use assign".to_string(),
            ));
        };
        group
            .rejoin_needed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.subscription = Some(topics.into_iter().map(Into::into).collect());
        Ok(())
    }

    /// The partitions this consumer has now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().cloned().collect()
    }

    fn forget_unassigned(&mut self) {
        let assigned = &self.assigned;
        self.positions.retain(|tp, _| assigned.contains(tp));
        self.fetch_positions.retain(|tp, _| assigned.contains(tp));
        self.paused.retain(|tp| assigned.contains(tp));
        self.buffered.retain(|r| {
            assigned.contains(&TopicPartition::new(r.topic.clone(), r.partition as u32))
        });
    }

    /// Waits up to `timeout` for records and returns those that came (maybe none).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.lose_if_membership_ended();
            if self.subscription.is_some() {
                self.ensure_group().await?;
            }
            self.maybe_auto_commit().await;
            self.lose_if_membership_ended();
            if !self.buffered.is_empty() {
                return Ok(self.hand_out());
            }
            self.resolve_positions().await?;
            let fetchable = self.fetchable();
            let now = Instant::now();
            if fetchable.is_empty() {
                if now >= deadline {
                    return Ok(Vec::new());
                }
                tokio::time::sleep((deadline - now).min(Duration::from_millis(100))).await;
                continue;
            }
            let wait_ms = (deadline.saturating_duration_since(now).as_millis() as i32)
                .min(self.config.fetch_max_wait_ms)
                .max(0);
            let limits = FetchLimits {
                max_wait_ms: wait_ms,
                min_bytes: self.config.fetch_min_bytes,
                max_bytes: self.config.fetch_max_bytes,
                max_partition_bytes: self.config.max_partition_fetch_bytes,
            };
            let results = match self.prefetch.take() {
                Some(mut p) if p.positions == fetchable => {
                    let left = deadline.saturating_duration_since(now);
                    match tokio::time::timeout(left, &mut p.handle).await {
                        Ok(r) => r.unwrap_or_default(),
                        Err(_) => {
                            // Still waiting at the broker: keep it for the next poll.
                            self.prefetch = Some(p);
                            return Ok(Vec::new());
                        }
                    }
                }
                _ => fetcher::fetch(&self.net, &fetchable, limits).await,
            };
            let mut refresh = false;
            for (tp, result) in results {
                refresh |= self.take_fetched(tp, result).await?;
            }
            if refresh {
                let topics: Vec<String> = fetchable.keys().map(|tp| tp.topic.clone()).collect();
                let _ = self.net.refresh_metadata(Some(&topics), false).await;
                tokio::time::sleep(self.net.retry_backoff()).await;
            }
            self.lose_if_membership_ended();
            if !self.buffered.is_empty() {
                self.start_prefetch();
                return Ok(self.hand_out());
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Gives every partition up as lost, without committing, once this member's own view
    /// of its session has ended or the coordinator has said its membership is over, and
    /// asks to rejoin; returns whether it gave any up.
    fn lose_if_membership_ended(&mut self) -> bool {
        if self.subscription.is_none() {
            return false;
        }
        let Some(group) = &mut self.group else {
            return false;
        };
        let lost: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        if let Some(ended) = group.take_ended() {
            tracing::info!(group = %group.config.group_id, api = ended.api, code = %KafkaCode(ended.code), ?lost, "the coordinator ended this membership; giving up any partitions as lost, rejoining");
            emit(&group.observer, || GroupEvent::MembershipEnded {
                api: ended.api,
                error: KafkaCode(ended.code),
                generation: ended.generation,
                partitions: lost.clone(),
            });
        } else if lost.is_empty() {
            return false;
        } else if let Some(ended) = group.session.ended_by(Instant::now()) {
            tracing::info!(group = %group.config.group_id, ?lost, "session over without an accepted heartbeat; partitions lost, rejoining");
            group.session_lost();
            emit(&group.observer, || GroupEvent::SessionExpired {
                partitions: lost.clone(),
                session_ended_at: ended,
            });
        } else {
            return false;
        }
        if lost.is_empty() {
            return false;
        }
        if let Some(l) = &mut self.listener {
            l(&RebalanceEvent::Revoked(lost));
        }
        self.assigned.clear();
        self.forget_unassigned();
        true
    }

    /// The partitions to fetch and the offsets to fetch them from.
    fn fetchable(&self) -> BTreeMap<TopicPartition, i64> {
        self.fetch_positions
            .iter()
            .filter(|(tp, _)| self.assigned.contains(*tp) && !self.paused.contains(*tp))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    }

    /// Starts the next fetch now, so its answer is on the way while the application
    /// handles the records this poll returns.
    fn start_prefetch(&mut self) {
        let positions = self.fetchable();
        if positions.is_empty() {
            return;
        }
        let limits = FetchLimits {
            max_wait_ms: self.config.fetch_max_wait_ms,
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            max_partition_bytes: self.config.max_partition_fetch_bytes,
        };
        let net = self.net.clone();
        let fetch_from = positions.clone();
        let handle = tokio::spawn(async move { fetcher::fetch(&net, &fetch_from, limits).await });
        self.prefetch = Some(Prefetch { positions, handle });
    }

    /// Buffers one partition's fetch; returns whether metadata needs a refresh.
    async fn take_fetched(&mut self, tp: TopicPartition, result: PartitionFetch) -> Result<bool> {
        let Some(&from) = self.fetch_positions.get(&tp) else {
            return Ok(false); // sought or unassigned meanwhile
        };
        match result {
            PartitionFetch::Records {
                records,
                next_offset,
                high_watermark,
            } => {
                self.high_watermarks.insert(tp.clone(), high_watermark);
                let mut next = from;
                for r in records {
                    // A fetch from the middle of a batch returns the whole batch.
                    if r.offset < from {
                        continue;
                    }
                    next = r.offset + 1;
                    self.buffered.push_back(ConsumerRecord {
                        topic: tp.topic.clone(),
                        partition: tp.partition as i32,
                        offset: r.offset,
                        timestamp_ms: r.timestamp_ms,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
                if let Some(n) = next_offset {
                    next = next.max(n);
                }
                self.fetch_positions.insert(tp, next);
                Ok(false)
            }
            PartitionFetch::Error(e) => {
                let code = match &e {
                    ClientError::Partition { code, .. } => Some(*code),
                    _ => None,
                };
                if code.is_some_and(|c| c.0 == OFFSET_OUT_OF_RANGE) {
                    tracing::info!(%tp, offset = from, "offset out of range; resetting");
                    self.positions.remove(&tp);
                    self.fetch_positions.remove(&tp);
                    return Ok(false);
                }
                if e.is_retriable() {
                    tracing::debug!(%tp, error = %e, "fetch failed; retrying");
                    return Ok(true);
                }
                Err(e)
            }
        }
    }

    /// Hands out up to `max.poll.records` buffered records and moves positions past them.
    fn hand_out(&mut self) -> Vec<ConsumerRecord> {
        let n = self.buffered.len().min(self.config.max_poll_records);
        let out: Vec<ConsumerRecord> = self.buffered.drain(..n).collect();
        for r in &out {
            self.positions.insert(
                TopicPartition::new(r.topic.clone(), r.partition as u32),
                r.offset + 1,
            );
        }
        if self.buffered.is_empty() {
            // Past skipped control batches too.
            for (tp, &f) in &self.fetch_positions {
                self.positions.insert(tp.clone(), f);
            }
        }
        out
    }

    /// Gives every assigned partition without a position one: the committed offset, or
    /// `auto.offset.reset`.
    async fn resolve_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .assigned
            .iter()
            .filter(|tp| !self.fetch_positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut still = missing.clone();
        let mut offset_fetch_sent_at = None;
        if let Some(group) = &mut self.group {
            let fetch_sent_at = Instant::now();
            offset_fetch_sent_at = Some(fetch_sent_at);
            let committed = match group.committed(&missing).await {
                Ok(c) => c,
                // The coordinator may be moving: leave these partitions unresolved and
                // try again on the next poll, rather than reset them.
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "committed offsets unavailable; retrying");
                    tokio::time::sleep(self.net.retry_backoff()).await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let observer = group.observer.clone();
            for (tp, offset) in committed {
                if offset >= 0 {
                    emit(&observer, || GroupEvent::PositionResolved {
                        partition: tp.clone(),
                        offset,
                        source: PositionSource::Committed { fetch_sent_at },
                    });
                    self.set_position(&tp, offset);
                }
            }
            still.retain(|tp| !self.fetch_positions.contains_key(tp));
        }
        if still.is_empty() {
            return Ok(());
        }
        let timestamp = match self.config.auto_offset_reset {
            OffsetReset::Earliest => EARLIEST_TIMESTAMP,
            OffsetReset::Latest => LATEST_TIMESTAMP,
            OffsetReset::None => {
                return Err(ClientError::NoOffset {
                    topic: still[0].topic.clone(),
                    partition: still[0].partition as i32,
                })
            }
        };
        let observer = self.group.as_ref().and_then(|g| g.observer.clone());
        for (tp, offset) in list_offsets(&self.net, &still, timestamp).await? {
            emit(&observer, || GroupEvent::PositionResolved {
                partition: tp.clone(),
                offset,
                source: PositionSource::Reset {
                    fetch_sent_at: offset_fetch_sent_at,
                },
            });
            self.set_position(&tp, offset);
        }
        Ok(())
    }

    fn set_position(&mut self, tp: &TopicPartition, offset: i64) {
        self.positions.insert(tp.clone(), offset);
        self.fetch_positions.insert(tp.clone(), offset);
        self.buffered
            .retain(|r| !(r.topic == tp.topic && r.partition == tp.partition as i32));
    }

    /// Joins or rejoins the group when the coordinator asked for it.
    async fn ensure_group(&mut self) -> Result<()> {
        for _ in 0..MAX_REBALANCE_ROUNDS {
            let Some(group) = &self.group else {
                return Ok(());
            };
            if !group
                .rejoin_needed
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Ok(());
            }
            // Before the eager revocation below, which would commit what is lost.
            self.lose_if_membership_ended();
            let cooperative = self
                .protocol
                .is_some_and(|p| p.rebalance_protocol() == RebalanceProtocol::Cooperative);
            if !cooperative && !self.assigned.is_empty() {
                // Eager: give everything up before rejoining.
                let all: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
                self.revoke(&all).await;
            }
            let topics = self.subscription.clone().unwrap_or_default();
            let owned: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
            let group = self.group.as_mut().expect("checked");
            let joined = match group.join(&topics, &owned).await {
                Ok(joined) => joined,
                // The coordinator ended the membership while this member claimed
                // `owned`: the next round gives them up and joins owning none.
                Err(e) if !owned.is_empty() && group.has_ended() => {
                    tracing::debug!(error = %e, "membership over during the join");
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.protocol = Some(joined.protocol);
            let new: BTreeSet<TopicPartition> = joined.assignment.into_iter().collect();
            let revoked: Vec<TopicPartition> = self.assigned.difference(&new).cloned().collect();
            if !revoked.is_empty() {
                self.revoke(&revoked).await;
                // Cooperative (KIP-429): having given partitions up, rejoin so that the
                // next round hands them to their new owners.
                let group = self.group.as_ref().expect("checked");
                group
                    .rejoin_needed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let added: Vec<TopicPartition> = new.difference(&self.assigned).cloned().collect();
            self.assigned = new;
            if !added.is_empty() {
                if let Some(l) = &mut self.listener {
                    l(&RebalanceEvent::Assigned(added));
                }
            }
            let _ = joined.generation;
        }
        Ok(())
    }

    /// Commits (with auto-commit) and drops `partitions`, telling the listener.
    async fn revoke(&mut self, partitions: &[TopicPartition]) {
        if self.config.enable_auto_commit {
            if let Err(e) = self.commit().await {
                tracing::warn!(error = %e, "commit before a rebalance failed");
            }
        }
        if let Some(l) = &mut self.listener {
            l(&RebalanceEvent::Revoked(partitions.to_vec()));
        }
        for tp in partitions {
            self.assigned.remove(tp);
        }
        self.forget_unassigned();
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit || self.group.is_none() {
            return;
        }
        self.lose_if_membership_ended();
        let interval = Duration::from_millis(self.config.auto_commit_interval_ms);
        if self.last_auto_commit.elapsed() < interval {
            return;
        }
        self.last_auto_commit = Instant::now();
        let offsets = self.positions_to_commit();
        let Some(group) = self.group.as_mut() else {
            return;
        };
        // One attempt, as Kafka's periodic auto-commit is asynchronous and not retried:
        // the next interval commits the positions again.
        if !offsets.is_empty() {
            if let Err(e) = group.commit_once(&offsets).await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }
    }

    /// The position of every assigned partition.
    fn positions_to_commit(&self) -> BTreeMap<TopicPartition, i64> {
        self.positions
            .iter()
            .filter(|(tp, _)| self.assigned.contains(*tp))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    }

    /// Commits the position of every assigned partition, retrying retriable errors until
    /// `default.api.timeout.ms` (Kafka's `commitSync()`).
    pub async fn commit(&mut self) -> Result<()> {
        // Lost partitions are not committed.
        self.lose_if_membership_ended();
        let offsets = self.positions_to_commit();
        self.commit_offsets(&offsets).await
    }

    /// Commits the given offsets (the next offset to read, as Kafka's clients commit),
    /// retrying retriable errors until `default.api.timeout.ms` (Kafka's
    /// `commitSync(offsets)`).
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| ClientError::Config("commit needs group.id".to_string()))?;
        group.commit(offsets).await
    }

    /// The group's committed offsets (-1 where none).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| ClientError::Config("committed needs group.id".to_string()))?;
        group.committed(partitions).await
    }

    /// The next offset `poll` returns for `tp`, resolved first if need be.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        if !self.positions.contains_key(tp) {
            self.resolve_positions().await?;
        }
        self.positions
            .get(tp)
            .copied()
            .ok_or_else(|| ClientError::Config(format!("{tp} is not assigned to this consumer")))
    }

    /// The high watermark of `tp` as the last fetch saw it.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.high_watermarks.get(tp).copied()
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) {
        self.set_position(tp, offset);
    }

    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for (tp, o) in list_offsets(&self.net, partitions, EARLIEST_TIMESTAMP).await? {
            self.set_position(&tp, o);
        }
        Ok(())
    }

    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for (tp, o) in list_offsets(&self.net, partitions, LATEST_TIMESTAMP).await? {
            self.set_position(&tp, o);
        }
        Ok(())
    }

    /// Seeks each partition to the first record at or after `timestamp_ms`.
    pub async fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<()> {
        for (tp, o) in list_offsets(&self.net, partitions, timestamp_ms).await? {
            self.set_position(&tp, o);
        }
        Ok(())
    }

    /// Stops fetching `partitions` (their positions stay) until `resume`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.paused.insert(tp.clone());
        }
        let paused = &self.paused;
        // Records fetched but not handed out are fetched again after resume.
        let mut kept = VecDeque::new();
        for r in self.buffered.drain(..) {
            let tp = TopicPartition::new(r.topic.clone(), r.partition as u32);
            if paused.contains(&tp) {
                let pos = self.positions.get(&tp).copied().unwrap_or(r.offset);
                self.fetch_positions.insert(tp, pos);
            } else {
                kept.push_back(r);
            }
        }
        self.buffered = kept;
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.paused.remove(tp);
        }
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    /// Commits (with auto-commit), leaves the group and closes connections.
    pub async fn close(mut self) -> Result<()> {
        self.lose_if_membership_ended();
        if self.config.enable_auto_commit && self.group.is_some() && !self.assigned.is_empty() {
            if let Err(e) = self.commit().await {
                tracing::warn!(error = %e, "commit on close failed");
            }
        }
        let left = match (&mut self.group, &self.subscription) {
            (Some(g), Some(_)) => g.leave().await,
            _ => Ok(()),
        };
        self.net.close().await;
        left
    }
}

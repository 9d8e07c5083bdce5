//! This process's part of the metadata quorum: the core's [`Voter`] (a controller, alone
//! or in KRaft's combined mode with its broker), or for a broker-only node
//! (`process.roles=broker`) a [`MetadataFollower`] that follows the log as a Raft
//! observer, announcing itself to the voters, which are not configured with it. Either
//! keeps its durable state in [`RaftStore`] files and sends its messages on the peer
//! links.
//!
//! The node actor owns it and calls it on its own task: a tick, a frame from a peer, a
//! request from the local broker. Everything the voter asks for is carried out before
//! the call returns — Raft messages are queued on the links, writes are made durable
//! (synchronously: the metadata log is small and a vote must be durable before it is
//! sent) and reported back — except what concerns the local broker, which is returned.

use std::collections::BTreeMap;
use std::path::PathBuf;

use eddy_core::config::BrokerConfig;
use eddy_core::controller::follower::MetadataFollower;
use eddy_core::controller::voter::{Voter, VoterOut};
use eddy_core::controller::{ControllerConfig, ControllerInput, MetadataImage, MetadataMember};
use eddy_core::message::{ControllerMessage, ControllerRequest};
use eddy_core::quorum::{RaftConfig, RaftMessage};
use eddy_core::types::{NodeId, TimeMs};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::peer::codec::PeerFrame;
use crate::peer::link::PeerLinks;
use crate::raft_store::RaftStore;
use crate::storage::StorageError;

/// Where the quorum's files live: `metadata.log.dir` as Kafka names it, by default
/// inside the first log dir under KRaft's name for the metadata log's directory.
pub(crate) fn metadata_dir(cfg: &BrokerConfig) -> PathBuf {
    let root = cfg.metadata_log_dir.as_ref().unwrap_or(&cfg.log_dirs[0]);
    PathBuf::from(root).join(METADATA_DIR_NAME)
}

/// KRaft's name for the metadata log's directory; partition discovery skips it.
const METADATA_DIR_NAME: &str = "__cluster_metadata-0";

/// The voters, `id` → `host:port` of their peer listener. Empty `controller.quorum.voters`
/// means this node alone.
pub(crate) fn voters(cfg: &BrokerConfig) -> BTreeMap<NodeId, String> {
    cfg.controller_quorum_voters
        .iter()
        .map(|v| (v.id, super::dial_address(&v.host, v.port)))
        .collect()
}

pub(crate) struct Quorum {
    me: NodeId,
    /// A voter, or a broker-only node's observer.
    member: MetadataMember,
    store: RaftStore,
    links: PeerLinks,
    rng: ChaCha8Rng,
    /// The committed image changed since [`Quorum::take_image_changed`] last said so.
    image_changed: bool,
    /// A write failed: the voter waits for a completion that will not come. Said once.
    store_failed: bool,
    /// What an admin request's decision had for the local broker, until
    /// [`Quorum::take_held`].
    held: Vec<ForBroker>,
    /// The latest time the voter was given: the actor's calls may carry a time read
    /// before a nested call gave a later one, and Raft's time never goes back.
    last_now_ms: TimeMs,
}

/// What the quorum has for the local broker.
pub(crate) enum ForBroker {
    /// The controller's answer to this broker's request (an AlterPartition outcome, a
    /// heartbeat's state).
    Message(ControllerMessage),
}

impl Quorum {
    /// Opens the quorum's files and starts the voter on what they hold. `links` reach
    /// every other voter.
    /// `cluster_id` is this node's `meta.properties` id: the one it writes to the log if
    /// it is the first active controller (the log's is the cluster's from then on).
    pub(crate) fn open(
        cfg: &BrokerConfig,
        cluster_id: &str,
        incarnation: u64,
        links: PeerLinks,
        now_ms: TimeMs,
    ) -> Result<Quorum, StorageError> {
        let me = cfg.node_id;
        let (store, durable) = RaftStore::open(&metadata_dir(cfg))?;
        let mut ids: Vec<NodeId> = voters(cfg).into_keys().collect();
        if ids.is_empty() {
            ids.push(me);
        }
        tracing::info!(
            voters = ?ids.iter().map(|v| v.0).collect::<Vec<_>>(),
            term = durable.hard_state.term.0,
            entries = durable.entries.len(),
            snapshot = durable.snapshot.as_ref().map_or(0, |s| s.last.index.0),
            "metadata quorum state recovered"
        );
        let member = if cfg.process_roles.controller {
            MetadataMember::Voter(Box::new(Voter::new(
                me,
                &ids,
                RaftConfig::default(),
                ControllerConfig {
                    cluster_id: Some(cluster_id.to_string()),
                    ..ControllerConfig::from_broker_config(cfg)
                },
                now_ms,
                durable,
            )))
        } else {
            let mut observer =
                MetadataFollower::new(me, &ids, RaftConfig::default(), now_ms, durable);
            observer.announce_as_observer(true);
            MetadataMember::Observer(Box::new(observer))
        };
        let mut quorum = Quorum {
            me,
            member,
            store,
            links,
            // Election jitter only needs to differ between voters and restarts.
            rng: ChaCha8Rng::seed_from_u64(incarnation ^ (u64::from(me.0) << 48)),
            image_changed: true,
            store_failed: false,
            held: Vec::new(),
            last_now_ms: now_ms,
        };
        let local = quorum.drain(now_ms);
        quorum.held.extend(local);
        Ok(quorum)
    }

    /// The links to the voters and to the brokers this node learnt of.
    pub(crate) fn links(&self) -> &PeerLinks {
        &self.links
    }

    pub(crate) fn links_mut(&mut self) -> &mut PeerLinks {
        &mut self.links
    }

    pub(crate) fn image(&self) -> &MetadataImage {
        self.member.image()
    }

    /// The active controller as this node knows it (the quorum's leader).
    pub(crate) fn controller(&self) -> Option<NodeId> {
        self.member.leader()
    }

    /// The last metadata-log index applied to this broker's image, which its heartbeats
    /// report (the controller unfences it only once that reaches its registration).
    pub(crate) fn applied_offset(&self) -> u64 {
        self.member.applied().index.0
    }

    /// See [`Voter::caught_up`].
    pub(crate) fn caught_up(&self) -> bool {
        self.member.caught_up()
    }

    pub(crate) fn is_active(&self) -> bool {
        self.member.is_active()
    }

    /// What [`Quorum::admin`] had for the local broker.
    pub(crate) fn take_held(&mut self) -> Vec<ForBroker> {
        std::mem::take(&mut self.held)
    }

    pub(crate) fn take_image_changed(&mut self) -> bool {
        std::mem::take(&mut self.image_changed)
    }

    pub(crate) fn tick(&mut self, now_ms: TimeMs) -> Vec<ForBroker> {
        let now_ms = self.clock(now_ms);
        self.member.tick(now_ms, &mut self.rng);
        if let Some(voter) = self.member.voter_mut() {
            voter.controller_tick(now_ms);
        }
        self.drain(now_ms)
    }

    pub(crate) fn raft(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        msg: RaftMessage,
    ) -> Vec<ForBroker> {
        let now_ms = self.clock(now_ms);
        self.member.receive(now_ms, from, msg);
        self.drain(now_ms)
    }

    /// A broker's request for the controller: this voter's if it is active, else sent
    /// to the one it knows of (dropped without one: the broker's timers resend it).
    pub(crate) fn controller_request(
        &mut self,
        now_ms: TimeMs,
        from: NodeId,
        req: ControllerRequest,
    ) -> Vec<ForBroker> {
        let now_ms = self.clock(now_ms);
        let Some(voter) = self.member.voter_mut() else {
            // A broker-only node: its own broker's requests go to the quorum's leader.
            if let Some(leader) = self.controller().filter(|_| from == self.me) {
                self.links.send(leader, &PeerFrame::ToController(req));
            }
            return Vec::new();
        };
        if from == self.me && !voter.is_active() {
            if let Some(leader) = voter.leader().filter(|&l| l != self.me) {
                self.links.send(leader, &PeerFrame::ToController(req));
            }
            return Vec::new();
        }
        voter.request(now_ms, from, req);
        self.drain(now_ms)
    }

    /// An admin request: decided here if this voter is the active controller, else
    /// forwarded to the one it knows of. `false` when there is none to ask.
    pub(crate) fn admin(&mut self, now_ms: TimeMs, input: ControllerInput) -> bool {
        let now_ms = self.clock(now_ms);
        if let Some(voter) = self.member.voter_mut() {
            if voter.is_active() {
                let taken = voter.admin(now_ms, input);
                let local = self.drain(now_ms);
                self.held.extend(local);
                return taken;
            }
        }
        match self.controller().filter(|&l| l != self.me) {
            Some(leader) => self.links.send(leader, &PeerFrame::Admin(input)),
            None => false,
        }
    }

    fn clock(&mut self, now_ms: TimeMs) -> TimeMs {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        self.last_now_ms
    }

    /// Carries out what the voter asked for until it asks nothing more.
    fn drain(&mut self, now_ms: TimeMs) -> Vec<ForBroker> {
        let mut local = Vec::new();
        loop {
            let outs = self.member.take_out();
            if outs.is_empty() {
                return local;
            }
            for out in outs {
                match out {
                    VoterOut::Raft { to, msg } => {
                        self.links.send(to, &PeerFrame::Raft(msg));
                    }
                    VoterOut::Persist(effect) => match self.store.write(effect) {
                        Ok(done) => self.member.persisted(now_ms, done),
                        Err(e) => {
                            if !std::mem::replace(&mut self.store_failed, true) {
                                tracing::error!(error = %e, "cannot write the metadata log: this voter stops taking part in the quorum; fix the disk and restart the broker");
                            }
                        }
                    },
                    VoterOut::ToBroker { to, msg } => {
                        if to == self.me {
                            local.push(ForBroker::Message(msg));
                        } else {
                            self.links.send(to, &PeerFrame::FromController(msg));
                        }
                    }
                    VoterOut::NotController { .. } => {
                        // The requester's own timers resend to the controller it learns of.
                    }
                    VoterOut::Applied { .. } | VoterOut::SnapshotApplied { .. } => {
                        self.image_changed = true;
                    }
                    VoterOut::BecameLeader { term, .. } => {
                        tracing::info!(term = term.0, "elected leader of the metadata quorum");
                    }
                    VoterOut::Active(active) => {
                        if active {
                            tracing::info!("this node is the active controller");
                        } else {
                            tracing::info!("this node is no longer the active controller");
                        }
                    }
                }
            }
        }
    }
}

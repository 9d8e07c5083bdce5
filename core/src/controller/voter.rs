//! A controller voter, as a KRaft combined-mode broker runs it beside its broker
//! (`process.roles=broker,controller`): the core's [`RaftNode`] for the metadata log and,
//! while it leads, the core's [`Controller`], driven exactly as `core/src/controller/mod.rs`
//! says a shell must:
//! 1. every voter keeps a *committed* image, applying each applied entry's records in
//!    order (and replacing it on a snapshot);
//! 2. it becomes the active controller when it leads and has applied its own term's
//!    `LeaderNoop`, with a *pending* image copied from the committed one;
//! 3. each request and tick is decided on the pending image; the records go into one
//!    entry, applied to the pending image at once; the replies wait for that entry to
//!    commit;
//! 4. on losing leadership it drops the controller and answers the waiting replies with
//!    NOT_CONTROLLER.
//!
//! It is sans-IO: it returns what to do ([`VoterOut`]); the shell carries it out — the
//! simulator over its simulated network and disk, `eddy broker` over TCP and files —
//! and reports each completed write back with [`Voter::persisted`].

use std::collections::{BTreeMap, VecDeque};

use rand_core::RngCore;

use super::committed::CommittedImage;
use super::{
    encode_records, Controller, ControllerConfig, ControllerInput, ControllerOutput,
    ControllerReply, MetadataImage, MetadataRecord,
};
use crate::message::{ControllerMessage, ControllerRequest};
use crate::quorum::{
    DurableState, Effect, Entry, LogId, LogIndex, Membership, Payload, ProposeError, RaftConfig,
    RaftMessage, RaftNode, Role, Snapshot, Term,
};
use crate::types::{NodeId, TimeMs};

pub use crate::quorum::Persisted;

/// What a voter asks the shell to do or to record.
#[derive(Debug)]
pub enum VoterOut {
    /// A Raft message to another voter.
    Raft { to: NodeId, msg: RaftMessage },
    /// A `Persist*` effect, for the voter's disk.
    Persist(Effect),
    /// A message to a broker (partition states, an AlterPartition answer).
    ToBroker { to: NodeId, msg: ControllerMessage },
    /// This voter is not the active controller: the broker should ask `leader`.
    NotController { to: NodeId, leader: Option<NodeId> },
    /// An entry applied to the committed image, with a hash of its payload.
    Applied {
        index: LogIndex,
        term: Term,
        hash: u64,
    },
    /// The committed image was replaced by a snapshot covering up to `index`.
    SnapshotApplied { index: LogIndex },
    /// This voter became the Raft leader of `term`; its log then held these entries
    /// after its snapshot (`snapshot_index`).
    BecameLeader {
        term: Term,
        snapshot_index: LogIndex,
        log: Vec<(LogIndex, Term)>,
    },
    /// It became (true) or stopped being (false) the active controller.
    Active(bool),
}

/// Replies waiting for their entry to commit.
struct Waiting {
    index: LogIndex,
    /// The broker that asked (None: the admin client, or a tick).
    requester: Option<NodeId>,
    replies: Vec<ControllerReply>,
}

struct Active {
    controller: Controller,
    pending: MetadataImage,
    term: Term,
    waiting: VecDeque<Waiting>,
    /// The last index this controller proposed.
    last_proposed: LogIndex,
}

pub struct Voter {
    raft: RaftNode,
    config: ControllerConfig,
    committed: CommittedImage,
    active: Option<Active>,
    /// Became active during this pump: tick once before returning.
    fresh: bool,
    /// Whether the active controller pushes partition states to brokers (see
    /// [`Voter::set_push_partition_states`]).
    push_partition_states: bool,
    out: Vec<VoterOut>,
}

impl Voter {
    pub fn new(
        id: NodeId,
        voters: &[NodeId],
        raft_config: RaftConfig,
        config: ControllerConfig,
        now_ms: TimeMs,
        durable: DurableState,
    ) -> Voter {
        Voter::with_observers(id, voters, &[], raft_config, config, now_ms, durable)
    }

    /// A voter of a quorum that `observers` (brokers that are no voters, each running a
    /// [`super::MetadataFollower`]) follow: the leader replicates the log to them too.
    pub fn with_observers(
        id: NodeId,
        voters: &[NodeId],
        observers: &[NodeId],
        raft_config: RaftConfig,
        config: ControllerConfig,
        now_ms: TimeMs,
        durable: DurableState,
    ) -> Voter {
        let membership = Membership::new(voters.iter().copied(), observers.iter().copied());
        let raft = RaftNode::new(id, membership, raft_config, now_ms, durable);
        let mut voter = Voter {
            raft,
            config,
            committed: CommittedImage::default(),
            active: None,
            fresh: false,
            push_partition_states: true,
            out: Vec::new(),
        };
        voter.pump(now_ms);
        voter
    }

    /// Whether the active controller sends brokers the partition states its committed
    /// records change, and a registered broker's partitions with each heartbeat answer
    /// (on by default). A shell whose brokers follow the metadata log themselves (each
    /// from its voter's [`Voter::committed`] image or a [`super::MetadataFollower`]'s)
    /// turns it off: brokers then learn partition states only from their own image, as
    /// KRaft's do.
    pub fn set_push_partition_states(&mut self, on: bool) {
        self.push_partition_states = on;
    }

    /// The last entry applied to the committed image.
    pub fn applied(&self) -> LogId {
        self.committed.applied()
    }

    /// Per registered broker: its incarnation and the index of the committed entry that
    /// registered it (for a registration learned from a snapshot, the snapshot's index).
    pub fn registered_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        self.committed.registered_at()
    }

    /// Per registered broker unfenced since it registered: its incarnation and the index
    /// of the committed entry that first unfenced it (or of a snapshot holding that).
    pub fn unfenced_at(&self) -> &BTreeMap<NodeId, (u64, LogIndex)> {
        self.committed.unfenced_at()
    }

    /// Whether the committed image has caught up with the metadata log: this voter
    /// has applied everything a leader announced as committed since it started. A broker
    /// publishes its image to its partitions only once it has caught up after a start
    /// (KRaft's initial catch-up): a restarted voter's image replayed from its own disk
    /// may be far behind.
    pub fn caught_up(&self) -> bool {
        self.raft
            .known_commit()
            .is_some_and(|commit| self.committed.applied().index >= commit)
    }

    pub fn take_out(&mut self) -> Vec<VoterOut> {
        std::mem::take(&mut self.out)
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader()
    }

    pub fn role(&self) -> Role {
        self.raft.role()
    }

    pub fn term(&self) -> Term {
        self.raft.term()
    }

    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    pub fn committed(&self) -> &MetadataImage {
        self.committed.image()
    }

    /// The pending image of the active controller.
    pub fn pending(&self) -> Option<&MetadataImage> {
        self.active.as_ref().map(|a| &a.pending)
    }

    pub fn tick(&mut self, now_ms: TimeMs, rng: &mut impl RngCore) {
        self.raft.tick(now_ms, rng);
        self.pump(now_ms);
    }

    /// The controller's own timer: session expiry and repairs.
    pub fn controller_tick(&mut self, now_ms: TimeMs) {
        if let Some(active) = self.active.as_mut() {
            let output = active.controller.tick(now_ms, &active.pending);
            self.propose(now_ms, None, output);
        }
        self.pump(now_ms);
    }

    pub fn receive(&mut self, now_ms: TimeMs, from: NodeId, msg: RaftMessage) {
        self.raft.receive(now_ms, from, msg);
        self.pump(now_ms);
    }

    pub fn persisted(&mut self, now_ms: TimeMs, done: Persisted) {
        match done {
            Persisted::HardState(hs) => self.raft.hard_state_persisted(now_ms, hs),
            Persisted::Entries(last) => self.raft.entries_persisted(now_ms, last),
            Persisted::Snapshot(last) => self.raft.snapshot_persisted(now_ms, last),
        }
        self.pump(now_ms);
    }

    /// A broker's request. A broker registers on every start (KIP-631); the controller
    /// takes heartbeats only from the registered incarnation and answers others
    /// BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH, upon which the broker registers
    /// again.
    pub fn request(&mut self, now_ms: TimeMs, from: NodeId, req: ControllerRequest) {
        let Some(active) = self.active.as_mut() else {
            self.out.push(VoterOut::NotController {
                to: from,
                leader: self.raft.leader(),
            });
            return;
        };
        match req {
            ControllerRequest::Register {
                broker,
                incarnation,
                listeners,
                rack,
            } => {
                let input = ControllerInput::BrokerRegistration {
                    broker,
                    incarnation,
                    listeners,
                    rack,
                };
                let output = active.controller.handle(now_ms, &active.pending, input);
                self.propose(now_ms, Some(from), output);
            }
            ControllerRequest::Heartbeat {
                broker,
                incarnation,
                metadata_offset,
            } => {
                let input = ControllerInput::BrokerHeartbeat {
                    broker,
                    incarnation,
                    metadata_offset,
                };
                let output = active.controller.handle(now_ms, &active.pending, input);
                self.propose(now_ms, Some(from), output);
            }
            ControllerRequest::AlterPartition(request) => {
                let input = ControllerInput::AlterPartition(request);
                let output = active.controller.handle(now_ms, &active.pending, input);
                self.propose(now_ms, Some(from), output);
            }
        }
        self.pump(now_ms);
    }

    /// An admin request (CreateTopics), handed in by the shell's admin path. Returns
    /// false if this voter is not the active controller.
    pub fn admin(&mut self, now_ms: TimeMs, input: ControllerInput) -> bool {
        self.admin_decide(now_ms, input).is_some()
    }

    /// Like [`Voter::admin`], for a shell that answers the admin client itself: `None` if
    /// this voter is not the active controller; else the decision's replies if it was
    /// refused outright (nothing to commit: the shell may answer at once), or no replies
    /// if its records were proposed (the shell answers once they commit).
    pub fn admin_decide(
        &mut self,
        now_ms: TimeMs,
        input: ControllerInput,
    ) -> Option<Vec<ControllerReply>> {
        let active = self.active.as_mut()?;
        let output = active.controller.handle(now_ms, &active.pending, input);
        let refused = if output.records.is_empty() {
            output.replies.clone()
        } else {
            Vec::new()
        };
        self.propose(now_ms, None, output);
        self.pump(now_ms);
        Some(refused)
    }

    /// Proposes a decision's records as one entry and holds its replies until it
    /// commits; replies of a decision without records wait for what was proposed before.
    fn propose(&mut self, now_ms: TimeMs, requester: Option<NodeId>, output: ControllerOutput) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let ControllerOutput { records, replies } = output;
        if records.is_empty() {
            if active.waiting.is_empty() {
                self.release(requester, replies);
            } else {
                let index = active.last_proposed;
                active.waiting.push_back(Waiting {
                    index,
                    requester,
                    replies,
                });
            }
            return;
        }
        match self.raft.propose(now_ms, encode_records(&records)) {
            Ok(id) => {
                for record in &records {
                    active.pending.apply(record);
                    if let MetadataRecord::RegisterBroker {
                        broker,
                        incarnation,
                        ..
                    } = record
                    {
                        active
                            .controller
                            .registration_at(*broker, *incarnation, id.index.0);
                    }
                }
                active.last_proposed = id.index;
                active.waiting.push_back(Waiting {
                    index: id.index,
                    requester,
                    replies,
                });
            }
            Err(e) => {
                // The requester retries (here or elsewhere); a tick's decision is taken
                // again on the next tick.
                if let Some(to) = requester {
                    self.out.push(VoterOut::NotController {
                        to,
                        leader: self.raft.leader(),
                    });
                }
                if matches!(e, ProposeError::NotLeader { .. }) {
                    self.deactivate();
                }
            }
        }
    }

    fn release(&mut self, requester: Option<NodeId>, replies: Vec<ControllerReply>) {
        for reply in replies {
            match &reply {
                ControllerReply::BrokerHeartbeat {
                    broker,
                    result: Ok(_),
                    ..
                } => {
                    if self.push_partition_states {
                        // The heartbeat's answer carries the broker's partitions as
                        // committed: how a broker that missed an update (or restarted)
                        // catches up.
                        let states = self.committed.image().partitions_hosted_by(*broker);
                        self.out.push(VoterOut::ToBroker {
                            to: *broker,
                            msg: ControllerMessage::PartitionStates(states),
                        });
                    }
                    if let Some((to, msg)) = reply.to_broker_message() {
                        self.out.push(VoterOut::ToBroker { to, msg });
                    }
                }
                _ => {
                    if let Some((to, msg)) = reply.to_broker_message() {
                        self.out.push(VoterOut::ToBroker { to, msg });
                    }
                }
            }
        }
        let _ = requester;
    }

    fn deactivate(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        for waiting in active.waiting {
            if let Some(to) = waiting.requester {
                self.out.push(VoterOut::NotController {
                    to,
                    leader: self.raft.leader(),
                });
            }
        }
        self.out.push(VoterOut::Active(false));
    }

    /// Carries out the Raft node's effects until it has none.
    fn pump(&mut self, now_ms: TimeMs) {
        loop {
            let effects = self.raft.drain_effects();
            if effects.is_empty() {
                if std::mem::take(&mut self.fresh) {
                    // A new controller's first tick fences what expired and repairs
                    // what a predecessor left half done.
                    if let Some(active) = self.active.as_mut() {
                        let output = active.controller.tick(now_ms, &active.pending);
                        self.propose(now_ms, None, output);
                    }
                    continue;
                }
                break;
            }
            for effect in effects {
                match effect {
                    Effect::Send { to, msg } => self.out.push(VoterOut::Raft { to, msg }),
                    Effect::PersistHardState(_)
                    | Effect::PersistEntries { .. }
                    | Effect::PersistSnapshot(_) => self.out.push(VoterOut::Persist(effect)),
                    Effect::Apply(entries) => self.apply(entries),
                    Effect::ApplySnapshot(snapshot) => self.apply_snapshot(snapshot),
                    Effect::LeaderChanged { term, leader } => {
                        if leader == Some(self.raft.id()) {
                            let log = self.raft.log();
                            self.out.push(VoterOut::BecameLeader {
                                term,
                                snapshot_index: log.snapshot().last.index,
                                log: log.entries().iter().map(|e| (e.index, e.term)).collect(),
                            });
                        }
                    }
                }
            }
        }
        let leads = self.raft.role() == Role::Leader;
        if self
            .active
            .as_ref()
            .is_some_and(|a| !leads || a.term != self.raft.term())
        {
            self.deactivate();
        }
        self.committed
            .maybe_snapshot(&mut self.raft, now_ms, &mut self.out);
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            let records = self.committed.apply(&entry, &mut self.out);
            match &entry.payload {
                Payload::LeaderNoop => {
                    let mine = entry.term == self.raft.term()
                        && self.raft.role() == Role::Leader
                        && self.active.is_none();
                    if mine {
                        self.activate(entry.id());
                    }
                }
                Payload::Command(_) => {
                    if self.active.is_some() && self.push_partition_states {
                        let updates = self.committed.image().partition_updates(&records);
                        for (to, msg) in updates {
                            self.out.push(VoterOut::ToBroker { to, msg });
                        }
                    }
                }
            }
            // Replies whose entry is now committed go out.
            while let Some(active) = self.active.as_mut() {
                if active.waiting.front().is_none_or(|w| w.index > entry.index) {
                    break;
                }
                let waiting = active.waiting.pop_front().expect("checked");
                self.release(waiting.requester, waiting.replies);
            }
        }
    }

    /// Becomes the active controller once its own term's `LeaderNoop` (`noop`) applied:
    /// the committed image then holds every committed record. The controller learns where
    /// each registered broker's registration was committed, for the unfencing rule.
    fn activate(&mut self, noop: LogId) {
        let mut controller = Controller::new(self.config.clone());
        for (&broker, &(incarnation, index)) in self.committed.registered_at() {
            controller.registration_at(broker, incarnation, index.0);
        }
        self.active = Some(Active {
            controller,
            pending: self.committed.image().clone(),
            term: noop.term,
            waiting: VecDeque::new(),
            last_proposed: noop.index,
        });
        self.out.push(VoterOut::Active(true));
        self.fresh = true;
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) {
        self.committed.install(&snapshot, &mut self.out);
        // A leader never installs a snapshot; anything active is stale.
        self.deactivate();
    }
}

//! The active controller: routes each input to its handler and collects the records it
//! emits. Each handler works on a [`Step`]: the image as the caller gave it, plus the
//! records emitted so far in this step, applied as they are emitted, so a later decision
//! in the same step sees an earlier one (the second of two brokers fenced in one tick is
//! judged with the first already fenced).
//!
//! The controller's only state of its own is volatile: each broker's last heartbeat.
//! Heartbeat times are not records (KRaft does the same): writing one per heartbeat would
//! fill the log with noise. So a newly elected controller knows nothing of when brokers
//! were last heard from, and gives every registered broker a fresh session starting at
//! its first input: a broker that died just before a failover is fenced one session
//! timeout later than it would have been, never earlier.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::controller::{
    ControllerConfig, ControllerInput, ControllerOutput, ControllerReply, MetadataImage,
    MetadataRecord,
};
use crate::types::{NodeId, TimeMs};

/// When a broker was last heard from, at which incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) incarnation: u64,
    pub(crate) last_heartbeat_ms: TimeMs,
}

/// The active controller's decision logic. Create one when this node becomes the quorum
/// leader, once its image holds every committed record; drop it when leadership is lost.
#[derive(Clone, Debug)]
pub struct Controller {
    pub(crate) config: ControllerConfig,
    pub(crate) sessions: BTreeMap<NodeId, Session>,
    /// Brokers (at an incarnation) that asked for a controlled shutdown: their
    /// heartbeats keep their session but never unfence them. Kept by this controller
    /// only: a successor may unfence one that still heartbeats, which a broker in
    /// shutdown stops doing.
    pub(crate) shutting_down: std::collections::BTreeSet<(NodeId, u64)>,
    /// Per broker: the incarnation last registered and the metadata-log index of the
    /// entry holding that registration, as the shell reports them
    /// ([`Controller::registration_at`]). A heartbeat unfences a broker only once its
    /// metadata offset has reached that index (KRaft's
    /// `currentMetadataOffset >= registerBrokerRecordOffset`).
    pub(crate) registered_at: BTreeMap<NodeId, (u64, u64)>,
    /// Whether the first input has been seen: the one that starts sessions and repairs
    /// what a predecessor left half done.
    activated: bool,
}

/// One decision in progress: the image with this step's records applied so far.
pub(crate) struct Step<'a> {
    image: Cow<'a, MetadataImage>,
    pub(crate) records: Vec<MetadataRecord>,
    pub(crate) replies: Vec<ControllerReply>,
}

impl<'a> Step<'a> {
    fn new(image: &'a MetadataImage) -> Step<'a> {
        Step {
            image: Cow::Borrowed(image),
            records: Vec::new(),
            replies: Vec::new(),
        }
    }

    pub(crate) fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// Appends a record and applies it, so the rest of the step sees it. The image is
    /// copied on the first record only: a step that decides nothing (most heartbeats)
    /// costs no copy.
    pub(crate) fn emit(&mut self, record: MetadataRecord) {
        self.image.to_mut().apply(&record);
        self.records.push(record);
    }

    fn finish(self) -> ControllerOutput {
        ControllerOutput {
            records: self.records,
            replies: self.replies,
        }
    }
}

impl Controller {
    pub fn new(config: ControllerConfig) -> Controller {
        Controller {
            config,
            sessions: BTreeMap::new(),
            shutting_down: Default::default(),
            registered_at: BTreeMap::new(),
            activated: false,
        }
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The shell tells the controller at which metadata-log index the registration of
    /// `broker` at `incarnation` was proposed (its own decisions, once proposed) or
    /// committed (a predecessor's, from the committed image when this one starts). A
    /// later index than the true one only delays unfencing; until the controller knows
    /// an index, the broker stays fenced.
    pub fn registration_at(&mut self, broker: NodeId, incarnation: u64, index: u64) {
        let known = self
            .registered_at
            .entry(broker)
            .or_insert((incarnation, index));
        if known.0 < incarnation {
            *known = (incarnation, index);
        } else if known.0 == incarnation {
            known.1 = known.1.min(index);
        }
    }

    /// Decides on one request. `image` is the active controller's image: committed
    /// records and every record this controller proposed so far.
    pub fn handle(
        &mut self,
        now_ms: TimeMs,
        image: &MetadataImage,
        input: ControllerInput,
    ) -> ControllerOutput {
        let mut step = Step::new(image);
        self.activate(now_ms, &mut step);
        match input {
            ControllerInput::BrokerRegistration {
                broker,
                incarnation,
                listeners,
                rack,
            } => self.register(now_ms, &mut step, broker, incarnation, listeners, rack),
            ControllerInput::BrokerHeartbeat {
                broker,
                incarnation,
                metadata_offset,
            } => self.heartbeat(now_ms, &mut step, broker, incarnation, metadata_offset),
            ControllerInput::UnregisterBroker { broker } => self.unregister(&mut step, broker),
            ControllerInput::ControlledShutdown {
                broker,
                incarnation,
            } => self.controlled_shutdown(&mut step, broker, incarnation),
            ControllerInput::AlterPartition(request) => self.alter_partition(&mut step, request),
            ControllerInput::CreateTopic {
                name,
                num_partitions,
                replication_factor,
                configs,
            } => self.create_topic(&mut step, name, num_partitions, replication_factor, configs),
            ControllerInput::DeleteTopic { name } => self.delete_topic(&mut step, name),
            ControllerInput::CreatePartitions { topic, count } => {
                self.create_partitions(&mut step, topic, count)
            }
            ControllerInput::AlterConfigs { topic, configs } => {
                self.alter_configs(&mut step, topic, configs)
            }
            ControllerInput::ElectLeaders { partitions } => {
                self.elect_preferred_leaders(&mut step, partitions)
            }
        }
        step.finish()
    }

    /// Time passed: fences brokers whose session expired, and brings every partition in
    /// line with the brokers' standing (a new leader where the leader is fenced, fenced
    /// members out of ISRs). The full pass also finishes what a predecessor controller
    /// left half done when it failed between the records of one decision.
    pub fn tick(&mut self, now_ms: TimeMs, image: &MetadataImage) -> ControllerOutput {
        let mut step = Step::new(image);
        self.activate(now_ms, &mut step);
        self.expire_sessions(now_ms, &mut step);
        self.reconcile_all(&mut step);
        step.finish()
    }

    /// On the first input: fresh sessions for everyone, and a repair pass.
    fn activate(&mut self, now_ms: TimeMs, step: &mut Step<'_>) {
        if self.activated {
            return;
        }
        self.activated = true;
        if step.image().cluster_id().is_none() {
            if let Some(id) = self.config.cluster_id.clone() {
                step.emit(MetadataRecord::ClusterId { id });
            }
        }
        self.sync_sessions(now_ms, step.image());
        self.reconcile_all(step);
    }
}

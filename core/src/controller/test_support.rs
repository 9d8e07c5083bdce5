//! What the controller's tests share: a [`Cluster`] drives one [`Controller`] and
//! applies its records, either as if each decision committed at once, or (`lagging`)
//! to the controller's pending image first, committing later or never.

use std::collections::VecDeque;

use super::*;

/// `broker.session.timeout.ms`'s default.
pub(super) const TIMEOUT_MS: u64 = 9_000;

pub(super) struct Cluster {
    pub(super) controller: Controller,
    /// The active controller's image: committed records and its own pending ones.
    pub(super) image: MetadataImage,
    /// The committed records' image: what brokers and the next controller see.
    pub(super) committed: MetadataImage,
    pub(super) now_ms: u64,
    /// Every committed record, in order: the metadata log.
    pub(super) log: Vec<MetadataRecord>,
    /// Whether decisions wait in `uncommitted` until [`Cluster::commit_next`].
    pub(super) lagging: bool,
    /// Decisions proposed but not committed, oldest first, one metadata-log entry each.
    pub(super) uncommitted: VecDeque<Vec<MetadataRecord>>,
    /// Decisions proposed so far: the index of the last metadata-log entry.
    pub(super) log_end: u64,
    /// Where each broker's registration was proposed: (incarnation, entry index).
    pub(super) registered_at: std::collections::BTreeMap<NodeId, (u64, u64)>,
}

impl Cluster {
    pub(super) fn new(config: ControllerConfig) -> Cluster {
        Cluster {
            controller: Controller::new(config),
            image: MetadataImage::new(),
            committed: MetadataImage::new(),
            now_ms: 0,
            log: Vec::new(),
            lagging: false,
            uncommitted: VecDeque::new(),
            log_end: 0,
            registered_at: Default::default(),
        }
    }

    /// Takes a decision: applies it to the controller's image and commits it (or, when
    /// `lagging`, queues it).
    pub(super) fn apply(&mut self, out: ControllerOutput) -> Vec<ControllerReply> {
        if !out.records.is_empty() {
            self.log_end += 1;
        }
        for r in &out.records {
            self.image.apply(r);
            if let MetadataRecord::RegisterBroker {
                broker,
                incarnation,
                ..
            } = r
            {
                // As the voter does once it proposed the entry.
                let at = (*incarnation, self.log_end);
                self.registered_at.insert(*broker, at);
                self.controller
                    .registration_at(*broker, *incarnation, self.log_end);
            }
        }
        if !self.lagging {
            self.commit(&out.records);
        } else if !out.records.is_empty() {
            self.uncommitted.push_back(out.records);
        }
        out.replies
    }

    /// Commits `records` as one metadata-log entry: appends them to the log and applies
    /// them to the committed image (not to the controller's: it applied them when it
    /// decided them).
    pub(super) fn commit(&mut self, records: &[MetadataRecord]) {
        // Through the bytes, as the log carries them.
        let decoded = decode_records(&encode_records(records)).expect("records decode");
        assert_eq!(decoded, records);
        for r in decoded {
            self.committed.apply(&r);
            self.log.push(r);
        }
    }

    /// Commits the oldest `count` pending decisions.
    pub(super) fn commit_next(&mut self, count: usize) {
        for _ in 0..count {
            let Some(batch) = self.uncommitted.pop_front() else {
                return;
            };
            self.commit(&batch);
        }
    }

    /// The active controller fails: what it had not committed is lost, and a new one
    /// starts from the committed image.
    pub(super) fn failover(&mut self) {
        self.uncommitted.clear();
        self.image = self.committed.clone();
        self.controller = Controller::new(self.controller.config().clone());
        // As the voter does on becoming active: the committed registrations' indexes.
        for (&broker, &(incarnation, index)) in &self.registered_at {
            if self
                .committed
                .broker(broker)
                .is_some_and(|b| b.incarnation == incarnation)
            {
                self.controller.registration_at(broker, incarnation, index);
            }
        }
    }

    pub(super) fn handle(&mut self, input: ControllerInput) -> ControllerReply {
        let out = self.controller.handle(self.now_ms, &self.image, input);
        let mut replies = self.apply(out);
        assert_eq!(replies.len(), 1, "one reply per request");
        replies.pop().expect("one reply")
    }

    /// Handles and returns the records that the request produced.
    pub(super) fn handle_records(&mut self, input: ControllerInput) -> Vec<MetadataRecord> {
        let before = self.log.len();
        self.handle(input);
        self.log[before..].to_vec()
    }

    pub(super) fn tick(&mut self, now_ms: u64) -> Vec<MetadataRecord> {
        self.now_ms = now_ms;
        let before = self.log.len();
        let out = self.controller.tick(now_ms, &self.image);
        assert!(self.apply(out).is_empty(), "ticks send no replies");
        self.log[before..].to_vec()
    }

    pub(super) fn register(&mut self, broker: u32, incarnation: u64) {
        let reply = self.handle(ControllerInput::BrokerRegistration {
            broker: NodeId(broker),
            incarnation,
            listeners: vec![format!("PLAINTEXT://b{broker}:9092")],
            rack: None,
        });
        assert!(
            matches!(
                reply,
                ControllerReply::BrokerRegistration { result: Ok(()), .. }
            ),
            "{reply:?}"
        );
        let fenced = self.heartbeat(broker, incarnation);
        assert_eq!(fenced, Ok(HeartbeatState { fenced: false }));
    }

    /// A caught-up heartbeat (its image has everything proposed so far); the reply's
    /// result.
    pub(super) fn heartbeat(
        &mut self,
        broker: u32,
        incarnation: u64,
    ) -> Result<HeartbeatState, ErrorCode> {
        self.heartbeat_at(broker, incarnation, self.log_end)
    }

    /// A heartbeat from a broker whose image has reached entry `metadata_offset`.
    pub(super) fn heartbeat_at(
        &mut self,
        broker: u32,
        incarnation: u64,
        metadata_offset: u64,
    ) -> Result<HeartbeatState, ErrorCode> {
        match self.handle(ControllerInput::BrokerHeartbeat {
            broker: NodeId(broker),
            incarnation,
            metadata_offset,
        }) {
            ControllerReply::BrokerHeartbeat { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn create(
        &mut self,
        name: &str,
        partitions: u32,
        rf: u16,
    ) -> Result<TopicId, ErrorCode> {
        match self.handle(ControllerInput::CreateTopic {
            name: name.to_string(),
            num_partitions: Some(partitions),
            replication_factor: Some(rf),
            configs: Vec::new(),
        }) {
            ControllerReply::CreateTopic { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn state(&self, topic: &str, p: u32) -> PartitionState {
        self.image
            .partition(&TopicPartition::new(topic, p))
            .expect("partition exists")
            .clone()
    }

    pub(super) fn alter(&mut self, request: AlterPartition) -> Result<PartitionState, ErrorCode> {
        match self.handle(ControllerInput::AlterPartition(request)) {
            ControllerReply::AlterPartition { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }
}

pub(super) fn n(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

/// Three brokers at incarnation 1, all caught up.
pub(super) fn three_brokers() -> Cluster {
    let mut c = Cluster::new(ControllerConfig::default());
    for b in 1..=3 {
        c.register(b, 1);
    }
    c
}

/// Keeps `live` brokers' sessions alive until `until_ms`, in heartbeat-interval steps,
/// ticking as it goes.
pub(super) fn run_until(c: &mut Cluster, until_ms: u64, live: &[(u32, u64)]) {
    while c.now_ms < until_ms {
        let now = (c.now_ms + 1_000).min(until_ms);
        c.now_ms = now;
        for &(b, i) in live {
            c.heartbeat(b, i)
                .expect("a live broker's heartbeat is answered");
        }
        c.tick(now);
    }
}

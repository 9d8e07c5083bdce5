//! What the controller's tests share: a [`Cluster`] drives one [`Controller`] and
//! applies its records at once, as if each committed immediately.

use super::*;

/// `broker.session.timeout.ms`'s default.
pub(super) const TIMEOUT_MS: u64 = 9_000;

pub(super) struct Cluster {
    pub(super) controller: Controller,
    pub(super) image: MetadataImage,
    pub(super) now_ms: u64,
    /// Every record applied, in order: the metadata log.
    pub(super) log: Vec<MetadataRecord>,
}

impl Cluster {
    pub(super) fn new(config: ControllerConfig) -> Cluster {
        Cluster {
            controller: Controller::new(config),
            image: MetadataImage::new(),
            now_ms: 0,
            log: Vec::new(),
        }
    }

    fn apply(&mut self, out: ControllerOutput) -> Vec<ControllerReply> {
        self.commit(&out.records);
        out.replies
    }

    /// Commits `records`: appends them to the log and applies them to the image.
    pub(super) fn commit(&mut self, records: &[MetadataRecord]) {
        for r in records {
            // Through the bytes, as the log carries them.
            let decoded = MetadataRecord::decode(&r.encode()).expect("a record decodes");
            assert_eq!(&decoded, r);
            self.image.apply(&decoded);
            self.log.push(decoded);
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

    /// A caught-up heartbeat; the reply's result.
    pub(super) fn heartbeat(
        &mut self,
        broker: u32,
        incarnation: u64,
    ) -> Result<HeartbeatState, ErrorCode> {
        match self.handle(ControllerInput::BrokerHeartbeat {
            broker: NodeId(broker),
            incarnation,
            caught_up: true,
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

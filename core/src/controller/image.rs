//! The metadata image: the cluster's metadata as of some point in the metadata log —
//! registered brokers (their incarnation and whether they are fenced), topics (their id
//! and configs) and partitions (each one's [`PartitionState`]) — built by applying
//! [`MetadataRecord`]s in log order (KIP-500's "metadata as an event log", KIP-631's
//! image). Every controller and every broker holds one; the active controller holds a
//! second one that also has its own proposed, not yet committed records (KRaft keeps the
//! same pair).
//!
//! Applying is deterministic and total over the records a correct controller writes.
//! A record that does not fit the image (fencing a broker that is not registered,
//! changing a partition that does not exist, an elected leader that is fenced) can only
//! come from a controller that decided against another image than the one the log
//! builds, i.e. a bug: it fails an assertion, which the simulator reports with its seed.
//! Each `assert!` below says which rule such a controller broke. Torn or foreign bytes
//! never get here: `decode` refuses them first.
//!
//! The shell should append the records of one controller decision as one Raft entry
//! (`encode_records`), so that they commit whole. If it splits them, a snapshot or a
//! failover may land between a `FenceBroker` and the `PartitionChange`s that move
//! leadership off that broker. `apply` accepts such in-between images, and the next
//! active controller repairs leadership and ISRs on its first tick (see
//! `Controller::tick`); what it cannot repair is a decision's missing tail elsewhere (a
//! topic created with fewer partitions than asked).

use std::collections::BTreeMap;

use crate::controller::codec;
use crate::controller::record::{LeaderChange, MetadataRecord, TopicId};
use crate::metadata::PartitionState;
use crate::types::{Epoch, NodeId, TopicPartition};

/// A broker as registered with the controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BrokerRegistration {
    /// KRaft's broker epoch: a broker restart registers a higher one.
    pub incarnation: u64,
    /// A fenced broker may not lead or join an ISR: it has not caught up since it
    /// registered, or its session expired.
    pub fenced: bool,
    pub listeners: Vec<String>,
    pub rack: Option<String>,
}

/// A topic's identity and per-topic configs. Its partitions live in the image's
/// partition map, numbered `0..partition_count`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicImage {
    pub topic_id: TopicId,
    pub partition_count: u32,
    /// Per-topic overrides (`retention.ms`, `min.insync.replicas`, …); a key absent here
    /// takes the broker's value.
    pub configs: BTreeMap<String, String>,
}

/// The cluster metadata, applied from the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetadataImage {
    brokers: BTreeMap<NodeId, BrokerRegistration>,
    topics: BTreeMap<String, TopicImage>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    next_topic_id: TopicId,
    cluster_id: Option<String>,
}

impl Default for MetadataImage {
    fn default() -> MetadataImage {
        MetadataImage {
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            partitions: BTreeMap::new(),
            // 0 is left unused, as Kafka leaves the zero UUID to mean "no topic id".
            next_topic_id: TopicId(1),
            cluster_id: None,
        }
    }
}

impl MetadataImage {
    /// An empty image: the state before the first record.
    pub fn new() -> MetadataImage {
        MetadataImage::default()
    }

    /// The image the records build from an empty one (a snapshot, or the whole log).
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = &'a MetadataRecord>,
    ) -> MetadataImage {
        let mut image = MetadataImage::new();
        for record in records {
            image.apply(record);
        }
        image
    }

    /// Applies the next committed record. See the module docs for what may not fit.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker {
                broker,
                incarnation,
                listeners,
                rack,
            } => {
                if let Some(old) = self.brokers.get(broker) {
                    assert!(
                        *incarnation > old.incarnation,
                        "{broker} registered at incarnation {incarnation}, not above its \
                         current {}: the controller must refuse a stale registration",
                        old.incarnation
                    );
                }
                let registration = BrokerRegistration {
                    incarnation: *incarnation,
                    fenced: true,
                    listeners: listeners.clone(),
                    rack: rack.clone(),
                };
                self.brokers.insert(*broker, registration);
            }
            MetadataRecord::FenceBroker {
                broker,
                incarnation,
            } => {
                let b = self.registered_mut(*broker, *incarnation, "fenced");
                assert!(
                    !b.fenced,
                    "{broker} fenced twice: the controller fences only live brokers"
                );
                b.fenced = true;
            }
            MetadataRecord::UnfenceBroker {
                broker,
                incarnation,
            } => {
                let b = self.registered_mut(*broker, *incarnation, "unfenced");
                assert!(
                    b.fenced,
                    "{broker} unfenced twice: the controller unfences only fenced brokers"
                );
                b.fenced = false;
            }
            MetadataRecord::UnregisterBroker {
                broker,
                incarnation,
            } => {
                self.registered_mut(*broker, *incarnation, "unregistered");
                self.brokers.remove(broker);
            }
            MetadataRecord::Topic { name, topic_id } => {
                assert!(
                    !self.topics.contains_key(name),
                    "topic {name} created twice: the controller answers TOPIC_ALREADY_EXISTS"
                );
                assert!(
                    self.topics.values().all(|t| t.topic_id != *topic_id),
                    "topic {name} created with {topic_id}, which another topic has: the \
                     controller hands out each id once"
                );
                self.next_topic_id = self.next_topic_id.max(TopicId(topic_id.0 + 1));
                let topic = TopicImage {
                    topic_id: *topic_id,
                    partition_count: 0,
                    configs: BTreeMap::new(),
                };
                self.topics.insert(name.clone(), topic);
            }
            MetadataRecord::Partition { partition, state } => {
                let topic = self.topics.get_mut(&partition.topic).unwrap_or_else(|| {
                    panic!("{partition} created in a topic that does not exist")
                });
                assert_eq!(
                    partition.partition, topic.partition_count,
                    "{partition} created out of order: partitions are numbered densely"
                );
                assert_well_formed(partition, state);
                topic.partition_count += 1;
                self.partitions.insert(partition.clone(), state.clone());
            }
            MetadataRecord::PartitionChange(change) => {
                let tp = &change.partition;
                let old = self
                    .partitions
                    .get(tp)
                    .unwrap_or_else(|| panic!("change to {tp}, which does not exist"))
                    .clone();
                let mut state = old.clone();
                if let Some(leader) = &change.leader {
                    if let Some((l, incarnation)) = leader.leader() {
                        assert!(
                            self.is_eligible(l, incarnation),
                            "{tp}: {l} at incarnation {incarnation} elected while fenced or \
                             no longer at that incarnation"
                        );
                    }
                    if let LeaderChange::Elected {
                        leader, unclean, ..
                    } = leader
                    {
                        assert!(
                            *unclean || old.isr.contains(leader),
                            "{tp}: {leader} elected cleanly from outside the ISR {:?}",
                            old.isr
                        );
                    }
                    let (l, i) = leader.leader().unzip();
                    assert!(
                        l != old.leader || (l.is_some() && i != old.leader_incarnation),
                        "{tp}: a leader change that keeps {l:?}: the leader epoch bumps only \
                         when the leader changes"
                    );
                    state.leader = l;
                    state.leader_incarnation = i;
                    state.leader_epoch = Epoch(old.leader_epoch.0 + 1);
                }
                if let Some(isr) = &change.isr {
                    state.isr = isr.clone();
                }
                state.partition_epoch = old.partition_epoch + 1;
                assert_well_formed(tp, &state);
                self.partitions.insert(tp.clone(), state);
            }
            MetadataRecord::RemoveTopic { name, topic_id } => {
                let topic = self
                    .topics
                    .remove(name)
                    .unwrap_or_else(|| panic!("topic {name} deleted, but it does not exist"));
                assert_eq!(
                    topic.topic_id, *topic_id,
                    "topic {name} deleted by another topic's id"
                );
                for p in 0..topic.partition_count {
                    self.partitions
                        .remove(&TopicPartition::new(name.clone(), p));
                }
            }
            MetadataRecord::TopicConfig { topic, key, value } => {
                let t = self.topics.get_mut(topic).unwrap_or_else(|| {
                    panic!("config {key} set on topic {topic}, which does not exist")
                });
                match value {
                    Some(v) => t.configs.insert(key.clone(), v.clone()),
                    None => t.configs.remove(key),
                };
            }
            MetadataRecord::NextTopicId { next } => {
                self.next_topic_id = self.next_topic_id.max(*next);
            }
            MetadataRecord::ClusterId { id } => {
                self.cluster_id.get_or_insert_with(|| id.clone());
            }
        }
    }

    /// Records that rebuild this image from an empty one: applying them gives an image
    /// equal to `self`. This is the controller's Raft snapshot; its bytes are
    /// [`encode_records`](super::encode_records)'s.
    pub fn snapshot(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if let Some(id) = &self.cluster_id {
            records.push(MetadataRecord::ClusterId { id: id.clone() });
        }
        for (&broker, b) in &self.brokers {
            records.push(MetadataRecord::RegisterBroker {
                broker,
                incarnation: b.incarnation,
                listeners: b.listeners.clone(),
                rack: b.rack.clone(),
            });
            if !b.fenced {
                records.push(MetadataRecord::UnfenceBroker {
                    broker,
                    incarnation: b.incarnation,
                });
            }
        }
        for (name, topic) in &self.topics {
            records.push(MetadataRecord::Topic {
                name: name.clone(),
                topic_id: topic.topic_id,
            });
            for (key, value) in &topic.configs {
                records.push(MetadataRecord::TopicConfig {
                    topic: name.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
            for (tp, state) in self.partitions_of_topic(name) {
                records.push(MetadataRecord::Partition {
                    partition: tp.clone(),
                    state: state.clone(),
                });
            }
        }
        // Last: topics are re-created in name order, not id order, and the counter may
        // be past every live topic's id (deleted topics' ids stay used).
        records.push(MetadataRecord::NextTopicId {
            next: self.next_topic_id,
        });
        records
    }

    pub fn broker(&self, broker: NodeId) -> Option<&BrokerRegistration> {
        self.brokers.get(&broker)
    }

    /// Every registered broker, in id order.
    pub fn brokers(&self) -> impl Iterator<Item = (NodeId, &BrokerRegistration)> + '_ {
        self.brokers.iter().map(|(&id, b)| (id, b))
    }

    /// The registered, unfenced brokers in id order: those that may lead and join ISRs.
    pub fn unfenced_brokers(&self) -> Vec<NodeId> {
        self.brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Whether `broker` is registered at `incarnation` and unfenced: whether it may lead
    /// or join an ISR at that incarnation (KIP-841, KIP-903).
    pub fn is_eligible(&self, broker: NodeId, incarnation: u64) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(|b| !b.fenced && b.incarnation == incarnation)
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    /// Every topic, in name order.
    pub fn topics(&self) -> impl Iterator<Item = (&str, &TopicImage)> + '_ {
        self.topics.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The cluster's id, once the first active controller wrote it.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The id the next created topic gets.
    pub fn next_topic_id(&self) -> TopicId {
        self.next_topic_id
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.partitions.get(tp)
    }

    /// Every partition, in (topic, partition) order.
    pub fn partitions(&self) -> impl Iterator<Item = (&TopicPartition, &PartitionState)> + '_ {
        self.partitions.iter()
    }

    /// How many partitions exist, over all topics.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// One topic's partitions, in partition order.
    pub fn partitions_of_topic<'a>(
        &'a self,
        topic: &str,
    ) -> impl Iterator<Item = (&'a TopicPartition, &'a PartitionState)> + 'a {
        let from = TopicPartition::new(topic, 0);
        let to = TopicPartition::new(topic, u32::MAX);
        self.partitions.range(from..=to)
    }

    /// The partitions `broker` is a replica of, with their states: what a broker must
    /// host (Kafka's LeaderAndIsr for one broker).
    pub fn partitions_hosted_by(&self, broker: NodeId) -> Vec<(TopicPartition, PartitionState)> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.replicas.contains(&broker))
            .map(|(tp, s)| (tp.clone(), s.clone()))
            .collect()
    }

    /// The partition's leader, `None` if it is offline or does not exist.
    pub fn leader_of(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.partitions.get(tp).and_then(|s| s.leader)
    }

    fn registered_mut(
        &mut self,
        broker: NodeId,
        incarnation: u64,
        what: &str,
    ) -> &mut BrokerRegistration {
        let b = self
            .brokers
            .get_mut(&broker)
            .unwrap_or_else(|| panic!("{broker} {what}, but it is not registered"));
        assert_eq!(
            b.incarnation, incarnation,
            "{broker} {what} at incarnation {incarnation}, but it is registered at {}",
            b.incarnation
        );
        b
    }
}

/// A partition state every record must leave: see `codec::check_state`.
fn assert_well_formed(tp: &TopicPartition, state: &PartitionState) {
    if let Err(e) = codec::check_state(state) {
        panic!("{tp}: {e}: {state:?}");
    }
}

//! The bytes of a [`MetadataRecord`], and of a sequence of them (`encode_records`): the
//! payload of a metadata-log entry and of a snapshot. Hand-written rather than derived, so that the format is stated here and
//! changes only on purpose.
//!
//! ```text
//!   record  = version:u8 (= 1)  type:u8  fields…
//!   u32/u64 = big-endian          string = len:u16 utf-8 bytes
//!   option  = 0:u8 | 1:u8 value   list   = count:u16 items…
//!   node    = u32                 partition = topic:string index:u32
//! ```
//!
//! A new field or record type gets a new version; a decoder refuses versions it does not
//! know rather than guess. `decode` never panics, whatever the bytes: a torn or foreign
//! entry is a [`DecodeError`]. It also refuses what `encode` could not have produced from
//! a well-formed record (a leader outside its ISR, a replica listed twice), so a record
//! that decodes is one the image can apply.

use bytes::{BufMut, Bytes, BytesMut};

use crate::controller::record::{LeaderChange, MetadataRecord, PartitionChange, TopicId};
use crate::metadata::PartitionState;
use crate::types::{Epoch, NodeId, TopicPartition};

/// The only format version so far.
const VERSION: u8 = 1;

/// Strings and lists carry 16-bit lengths: topic names are at most 249 bytes, config
/// values and listener lists are short, and replica lists are bounded by the cluster.
const MAX_LEN: usize = u16::MAX as usize;

const REGISTER_BROKER: u8 = 1;
const FENCE_BROKER: u8 = 2;
const UNFENCE_BROKER: u8 = 3;
const UNREGISTER_BROKER: u8 = 4;
const TOPIC: u8 = 5;
const PARTITION: u8 = 6;
const PARTITION_CHANGE: u8 = 7;
const REMOVE_TOPIC: u8 = 8;
const TOPIC_CONFIG: u8 = 9;
const NEXT_TOPIC_ID: u8 = 10;
const CLUSTER_ID: u8 = 11;

/// Why bytes are not a metadata record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("metadata record ends early: {needed} more bytes needed at byte {at}")]
    Truncated { at: usize, needed: usize },
    #[error(
        "metadata record version {0} is not one this Eddy knows (it knows {VERSION}); upgrade Eddy"
    )]
    UnknownVersion(u8),
    #[error("metadata record type {0} is not one this Eddy knows")]
    UnknownType(u8),
    #[error("metadata record has {0} bytes after its end")]
    TrailingBytes(usize),
    #[error("metadata record holds a string that is not UTF-8 at byte {at}")]
    InvalidUtf8 { at: usize },
    #[error("metadata record holds {value} at byte {at} where only 0 or 1 may stand")]
    InvalidFlag { at: usize, value: u8 },
    #[error("metadata record is malformed: {0}")]
    Malformed(&'static str),
}

impl MetadataRecord {
    /// The partition this record creates or changes, if it is about one partition (the
    /// replicas of which the shell tells of its new state).
    pub fn partition(&self) -> Option<&TopicPartition> {
        match self {
            MetadataRecord::Partition { partition, .. } => Some(partition),
            MetadataRecord::PartitionChange(change) => Some(&change.partition),
            _ => None,
        }
    }

    /// The record's bytes.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer(BytesMut::with_capacity(64));
        w.u8(VERSION);
        match self {
            MetadataRecord::RegisterBroker {
                broker,
                incarnation,
                listeners,
                rack,
            } => {
                w.u8(REGISTER_BROKER);
                w.node(*broker);
                w.u64(*incarnation);
                w.len(listeners.len());
                for l in listeners {
                    w.string(l);
                }
                w.option(rack.as_ref(), |w, r| w.string(r));
            }
            MetadataRecord::FenceBroker {
                broker,
                incarnation,
            } => {
                w.u8(FENCE_BROKER);
                w.node(*broker);
                w.u64(*incarnation);
            }
            MetadataRecord::UnfenceBroker {
                broker,
                incarnation,
            } => {
                w.u8(UNFENCE_BROKER);
                w.node(*broker);
                w.u64(*incarnation);
            }
            MetadataRecord::UnregisterBroker {
                broker,
                incarnation,
            } => {
                w.u8(UNREGISTER_BROKER);
                w.node(*broker);
                w.u64(*incarnation);
            }
            MetadataRecord::Topic { name, topic_id } => {
                w.u8(TOPIC);
                w.string(name);
                w.u64(topic_id.0);
            }
            MetadataRecord::Partition { partition, state } => {
                w.u8(PARTITION);
                w.partition(partition);
                w.nodes(&state.replicas);
                w.option(state.leader.as_ref(), |w, l| w.node(*l));
                w.u32(state.leader_epoch.0);
                w.option(state.leader_incarnation.as_ref(), |w, i| w.u64(*i));
                w.nodes(&state.isr);
                w.u32(state.partition_epoch);
            }
            MetadataRecord::PartitionChange(change) => {
                w.u8(PARTITION_CHANGE);
                w.partition(&change.partition);
                w.option(change.leader.as_ref(), |w, l| match l {
                    LeaderChange::Offline => w.u8(0),
                    LeaderChange::Elected {
                        leader,
                        incarnation,
                        unclean,
                    } => {
                        w.u8(1);
                        w.node(*leader);
                        w.u64(*incarnation);
                        w.u8(u8::from(*unclean));
                    }
                });
                w.option(change.isr.as_ref(), |w, isr| w.nodes(isr));
            }
            MetadataRecord::RemoveTopic { name, topic_id } => {
                w.u8(REMOVE_TOPIC);
                w.string(name);
                w.u64(topic_id.0);
            }
            MetadataRecord::TopicConfig { topic, key, value } => {
                w.u8(TOPIC_CONFIG);
                w.string(topic);
                w.string(key);
                w.option(value.as_ref(), |w, v| w.string(v));
            }
            MetadataRecord::NextTopicId { next } => {
                w.u8(NEXT_TOPIC_ID);
                w.u64(next.0);
            }
            MetadataRecord::ClusterId { id } => {
                w.u8(CLUSTER_ID);
                w.string(id);
            }
        }
        w.0.freeze()
    }

    /// The record `bytes` hold. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<MetadataRecord, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let record = match r.u8()? {
            REGISTER_BROKER => {
                let broker = r.node()?;
                let incarnation = r.u64()?;
                let count = r.len()?;
                let mut listeners = Vec::new();
                for _ in 0..count {
                    listeners.push(r.string()?);
                }
                let rack = r.option(|r| r.string())?;
                MetadataRecord::RegisterBroker {
                    broker,
                    incarnation,
                    listeners,
                    rack,
                }
            }
            FENCE_BROKER => MetadataRecord::FenceBroker {
                broker: r.node()?,
                incarnation: r.u64()?,
            },
            UNFENCE_BROKER => MetadataRecord::UnfenceBroker {
                broker: r.node()?,
                incarnation: r.u64()?,
            },
            UNREGISTER_BROKER => MetadataRecord::UnregisterBroker {
                broker: r.node()?,
                incarnation: r.u64()?,
            },
            TOPIC => MetadataRecord::Topic {
                name: r.string()?,
                topic_id: TopicId(r.u64()?),
            },
            PARTITION => {
                let partition = r.partition()?;
                let state = PartitionState {
                    replicas: r.nodes()?,
                    leader: r.option(|r| r.node())?,
                    leader_epoch: Epoch(r.u32()?),
                    leader_incarnation: r.option(|r| r.u64())?,
                    isr: r.nodes()?,
                    partition_epoch: r.u32()?,
                };
                check_state(&state)?;
                MetadataRecord::Partition { partition, state }
            }
            PARTITION_CHANGE => {
                let partition = r.partition()?;
                let leader = r.option(|r| match r.flag()? {
                    false => Ok(LeaderChange::Offline),
                    true => Ok(LeaderChange::Elected {
                        leader: r.node()?,
                        incarnation: r.u64()?,
                        unclean: r.flag()?,
                    }),
                })?;
                let isr = r.option(|r| r.nodes())?;
                if leader.is_none() && isr.is_none() {
                    return Err(DecodeError::Malformed(
                        "a partition change that changes nothing",
                    ));
                }
                if let Some(isr) = &isr {
                    if isr.is_empty() {
                        return Err(DecodeError::Malformed("a partition change to an empty ISR"));
                    }
                    if has_duplicates(isr) {
                        return Err(DecodeError::Malformed("an ISR that names a broker twice"));
                    }
                }
                MetadataRecord::PartitionChange(PartitionChange {
                    partition,
                    leader,
                    isr,
                })
            }
            REMOVE_TOPIC => MetadataRecord::RemoveTopic {
                name: r.string()?,
                topic_id: TopicId(r.u64()?),
            },
            TOPIC_CONFIG => MetadataRecord::TopicConfig {
                topic: r.string()?,
                key: r.string()?,
                value: r.option(|r| r.string())?,
            },
            NEXT_TOPIC_ID => MetadataRecord::NextTopicId {
                next: TopicId(r.u64()?),
            },
            CLUSTER_ID => MetadataRecord::ClusterId { id: r.string()? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        let left = bytes.len() - r.at;
        if left > 0 {
            return Err(DecodeError::TrailingBytes(left));
        }
        Ok(record)
    }
}

/// A sequence of records as one byte string: each record's encoding behind its length as
/// a big-endian u32. It is the payload of one metadata-log entry (one controller
/// decision, so that it commits whole: KRaft likewise appends the records of one
/// decision as one atomic batch) and the `data` of a [`crate::quorum::Snapshot`].
pub fn encode_records(records: &[MetadataRecord]) -> Bytes {
    let mut out = BytesMut::new();
    for record in records {
        let bytes = record.encode();
        out.put_u32(bytes.len() as u32);
        out.put_slice(&bytes);
    }
    out.freeze()
}

/// The records of an entry's or a snapshot's bytes. Never panics. Applying them
/// ([`MetadataImage::apply`](super::MetadataImage::apply)) trusts that the bytes are
/// ones Eddy wrote: the shell checks their checksum first.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let mut records = Vec::new();
    while r.at < bytes.len() {
        let len = r.u32()? as usize;
        // Positions in an error inside a record count from that record's start.
        records.push(MetadataRecord::decode(r.take(len)?)?);
    }
    Ok(records)
}

/// The shape every partition state has: replicas listed once each, a non-empty ISR
/// within them, the leader in the ISR and named with its incarnation.
pub(crate) fn check_state(state: &PartitionState) -> Result<(), DecodeError> {
    if state.replicas.is_empty() {
        return Err(DecodeError::Malformed("a partition with no replicas"));
    }
    if has_duplicates(&state.replicas) || has_duplicates(&state.isr) {
        return Err(DecodeError::Malformed(
            "a replica list or ISR that names a broker twice",
        ));
    }
    if state.isr.is_empty() || state.isr.iter().any(|b| !state.replicas.contains(b)) {
        return Err(DecodeError::Malformed(
            "an ISR that is empty or not within the replicas",
        ));
    }
    if state.leader.is_some_and(|l| !state.isr.contains(&l)) {
        return Err(DecodeError::Malformed("a leader outside the ISR"));
    }
    if state.leader.is_some() != state.leader_incarnation.is_some() {
        return Err(DecodeError::Malformed(
            "a leader without its incarnation, or the reverse",
        ));
    }
    Ok(())
}

fn has_duplicates(nodes: &[NodeId]) -> bool {
    nodes
        .iter()
        .enumerate()
        .any(|(i, n)| nodes[..i].contains(n))
}

struct Writer(BytesMut);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.put_u8(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.put_u32(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.put_u64(v);
    }
    fn len(&mut self, len: usize) {
        // Bigger lists and strings come only from a controller bug: requests are
        // validated (topic names <= 249 bytes) and replica lists bounded by the cluster.
        assert!(
            len <= MAX_LEN,
            "a metadata record list or string of {len} (max {MAX_LEN})"
        );
        self.0.put_u16(len as u16);
    }
    fn string(&mut self, s: &str) {
        self.len(s.len());
        self.0.put_slice(s.as_bytes());
    }
    fn node(&mut self, n: NodeId) {
        self.u32(n.0);
    }
    fn nodes(&mut self, nodes: &[NodeId]) {
        self.len(nodes.len());
        for n in nodes {
            self.node(*n);
        }
    }
    fn partition(&mut self, tp: &TopicPartition) {
        self.string(&tp.topic);
        self.u32(tp.partition);
    }
    fn option<T>(&mut self, v: Option<&T>, put: impl FnOnce(&mut Writer, &T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let left = self.bytes.len() - self.at;
        if left < n {
            return Err(DecodeError::Truncated {
                at: self.at,
                needed: n - left,
            });
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn flag(&mut self) -> Result<bool, DecodeError> {
        let at = self.at;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidFlag { at, value }),
        }
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.len()?;
        let at = self.at;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { at })
    }
    fn node(&mut self) -> Result<NodeId, DecodeError> {
        Ok(NodeId(self.u32()?))
    }
    fn nodes(&mut self) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.len()?;
        // Checked before allocating, so a garbage count cannot ask for memory the bytes
        // do not back.
        let needed = count * 4;
        if self.bytes.len() - self.at < needed {
            return Err(DecodeError::Truncated {
                at: self.at,
                needed: needed - (self.bytes.len() - self.at),
            });
        }
        (0..count).map(|_| self.node()).collect()
    }
    fn partition(&mut self) -> Result<TopicPartition, DecodeError> {
        Ok(TopicPartition {
            topic: self.string()?,
            partition: self.u32()?,
        })
    }
    fn option<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.flag()? {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }
}

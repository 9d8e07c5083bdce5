//! The bytes brokers and controllers exchange on their own listener: Eddy's messages,
//! not Kafka's (DESIGN.md, "The real shell"). Replication (`PeerMessage`), the metadata
//! quorum's Raft traffic (`RaftMessage`) and broker↔controller requests travel as one
//! kind of frame.
//!
//! ```text
//!   frame   = length:u32  version:u8 (= 2)  from:u32  kind:u8  body
//!   u16/u32/u64/i64 big-endian;  bytes = len:u32 …;  string = len:u16 utf-8;
//!   option  = 0:u8 | 1:u8 value;  list = count:u32 items… (count ≤ bytes left)
//! ```
//!
//! Hand-written so the format is stated here and changes only on purpose; a new field
//! means a new version, and a decoder refuses versions it does not know. Decoding never
//! panics and never allocates on a count the frame cannot hold: a peer's bytes are as
//! untrusted as a client's.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use eddy_core::controller::ControllerInput;
use eddy_core::controller::HeartbeatState;
use eddy_core::message::{ControllerMessage, ControllerRequest, FetchedBatch, PeerMessage};
use eddy_core::metadata::{AlterPartition, PartitionState};
use eddy_core::quorum::{
    ConflictHint, Entry, LogId, LogIndex, Payload, RaftMessage, Snapshot, Term,
};
use eddy_core::types::{Epoch, NodeId, Offset, TopicPartition};
use eddy_core::ErrorCode;

/// 2: a broker's heartbeat carries its metadata offset (KIP-631's
/// `currentMetadataOffset`), which the controller needs before it unfences the broker.
const VERSION: u8 = 2;

/// What one frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerFrame {
    /// Broker to broker: follower fetches and their answers.
    Replication(PeerMessage),
    /// Voter to voter.
    Raft(RaftMessage),
    /// Broker to the active controller.
    ToController(ControllerRequest),
    /// Controller to a broker.
    FromController(ControllerMessage),
    /// A broker forwards a client's admin request (CreateTopics, DeleteTopics,
    /// CreatePartitions, IncrementalAlterConfigs) to the active controller, as KRaft
    /// brokers forward them (KIP-590), or asks for its own controlled shutdown. The client learns the outcome from the metadata
    /// log; a request lost on the way times out and the client retries.
    Admin(ControllerInput),
    /// The first frame on every connection a node dials: where the sender can be
    /// reached. A broker-only node is in no one's `controller.quorum.voters`; the voters
    /// and brokers it dials learn its address from this, so that they can answer it
    /// (replicate the metadata log to it, send it fetch responses).
    Hello { address: String },
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame ends early: {0}")]
    Short(&'static str),
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("unknown {what} tag {tag}")]
    Tag { what: &'static str, tag: u8 },
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("{what}: count {count} is more than the {left} bytes left")]
    Count {
        what: &'static str,
        count: u64,
        left: usize,
    },
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

// ----- encoding -----------------------------------------------------------------------

/// Encodes a frame, length prefix included.
pub fn encode(from: NodeId, frame: &PeerFrame) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(0);
    b.put_u8(VERSION);
    b.put_u32(from.0);
    match frame {
        PeerFrame::Replication(m) => {
            b.put_u8(1);
            put_peer(&mut b, m);
        }
        PeerFrame::Raft(m) => {
            b.put_u8(2);
            put_raft(&mut b, m);
        }
        PeerFrame::ToController(m) => {
            b.put_u8(3);
            put_to_controller(&mut b, m);
        }
        PeerFrame::FromController(m) => {
            b.put_u8(4);
            put_from_controller(&mut b, m);
        }
        PeerFrame::Admin(m) => {
            b.put_u8(5);
            put_admin(&mut b, m);
        }
        PeerFrame::Hello { address } => {
            b.put_u8(6);
            put_str(&mut b, address);
        }
    }
    let len = u32::try_from(b.len() - 4).expect("a peer frame is under 4 GiB");
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_u32(u32::try_from(v.len()).expect("under 4 GiB"));
    b.put_slice(v);
}

/// The admin inputs a broker forwards; any other input is a bug in the caller.
fn put_admin(b: &mut BytesMut, m: &ControllerInput) {
    match m {
        ControllerInput::CreateTopic {
            name,
            num_partitions,
            replication_factor,
            configs,
        } => {
            b.put_u8(1);
            put_str(b, name);
            put_opt_u32(b, *num_partitions);
            put_opt_u32(b, replication_factor.map(u32::from));
            b.put_u32(configs.len() as u32);
            for (k, v) in configs {
                put_str(b, k);
                put_str(b, v);
            }
        }
        ControllerInput::DeleteTopic { name } => {
            b.put_u8(2);
            put_str(b, name);
        }
        ControllerInput::CreatePartitions { topic, count } => {
            b.put_u8(3);
            put_str(b, topic);
            b.put_u32(*count);
        }
        ControllerInput::AlterConfigs { topic, configs } => {
            b.put_u8(4);
            put_str(b, topic);
            b.put_u32(configs.len() as u32);
            for (k, v) in configs {
                put_str(b, k);
                match v {
                    None => b.put_u8(0),
                    Some(v) => {
                        b.put_u8(1);
                        put_str(b, v);
                    }
                }
            }
        }
        ControllerInput::ControlledShutdown {
            broker,
            incarnation,
        } => {
            b.put_u8(5);
            b.put_u32(broker.0);
            b.put_u64(*incarnation);
        }
        other => panic!("{other:?} is not forwarded between brokers"),
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u16(u16::try_from(s.len()).expect("names are short"));
    b.put_slice(s.as_bytes());
}

fn put_tp(b: &mut BytesMut, tp: &TopicPartition) {
    put_str(b, &tp.topic);
    b.put_u32(tp.partition);
}

fn put_nodes(b: &mut BytesMut, nodes: &[NodeId]) {
    b.put_u32(nodes.len() as u32);
    for n in nodes {
        b.put_u32(n.0);
    }
}

fn put_opt_u32(b: &mut BytesMut, v: Option<u32>) {
    match v {
        None => b.put_u8(0),
        Some(x) => {
            b.put_u8(1);
            b.put_u32(x);
        }
    }
}

fn put_opt_u64(b: &mut BytesMut, v: Option<u64>) {
    match v {
        None => b.put_u8(0),
        Some(x) => {
            b.put_u8(1);
            b.put_u64(x);
        }
    }
}

fn put_state(b: &mut BytesMut, s: &PartitionState) {
    put_nodes(b, &s.replicas);
    put_opt_u32(b, s.leader.map(|l| l.0));
    b.put_u32(s.leader_epoch.0);
    put_opt_u64(b, s.leader_incarnation);
    put_nodes(b, &s.isr);
    b.put_u32(s.partition_epoch);
}

fn put_alter(b: &mut BytesMut, a: &AlterPartition) {
    put_tp(b, &a.partition);
    b.put_u32(a.leader.0);
    b.put_u32(a.leader_epoch.0);
    b.put_u32(a.partition_epoch);
    put_nodes(b, &a.new_isr);
    b.put_u32(a.added.len() as u32);
    for (n, inc) in &a.added {
        b.put_u32(n.0);
        b.put_u64(*inc);
    }
}

fn put_peer(b: &mut BytesMut, m: &PeerMessage) {
    match m {
        PeerMessage::OffsetForLeaderEpoch {
            partition,
            current_leader_epoch,
            epoch,
        } => {
            b.put_u8(1);
            put_tp(b, partition);
            b.put_u32(current_leader_epoch.0);
            b.put_u32(epoch.0);
        }
        PeerMessage::OffsetForLeaderEpochResponse {
            partition,
            error,
            current_leader_epoch,
            asked_epoch,
            epoch,
            end_offset,
        } => {
            b.put_u8(2);
            put_tp(b, partition);
            b.put_i16(error.code());
            b.put_u32(current_leader_epoch.0);
            b.put_u32(asked_epoch.0);
            put_opt_u32(b, epoch.map(|e| e.0));
            b.put_u64(end_offset.0);
        }
        PeerMessage::Fetch {
            partition,
            current_leader_epoch,
            fetch_offset,
            max_bytes,
            fetch_id,
            incarnation,
        } => {
            b.put_u8(3);
            put_tp(b, partition);
            b.put_u32(current_leader_epoch.0);
            b.put_u64(fetch_offset.0);
            b.put_u32(*max_bytes);
            b.put_u64(*fetch_id);
            b.put_u64(*incarnation);
        }
        PeerMessage::FetchResponse {
            partition,
            fetch_id,
            error,
            current_leader_epoch,
            fetch_offset,
            high_watermark,
            log_start_offset,
            log_end_offset,
            batches,
        } => {
            b.put_u8(4);
            put_tp(b, partition);
            b.put_u64(*fetch_id);
            b.put_i16(error.code());
            b.put_u32(current_leader_epoch.0);
            b.put_u64(fetch_offset.0);
            b.put_u64(high_watermark.0);
            b.put_u64(log_start_offset.0);
            b.put_u64(log_end_offset.0);
            // Only batches in hand go out: the sender resolves references first, and a
            // message ends before any it could not.
            let sent: Vec<&Bytes> = batches.iter().map_while(FetchedBatch::bytes).collect();
            b.put_u32(sent.len() as u32);
            for batch in sent {
                put_bytes(b, batch);
            }
        }
    }
}

fn put_log_id(b: &mut BytesMut, id: LogId) {
    b.put_u64(id.term.0);
    b.put_u64(id.index.0);
}

fn put_entry(b: &mut BytesMut, e: &Entry) {
    put_log_id(b, e.id());
    match &e.payload {
        Payload::LeaderNoop => b.put_u8(0),
        Payload::Command(c) => {
            b.put_u8(1);
            put_bytes(b, c);
        }
    }
}

fn put_raft(b: &mut BytesMut, m: &RaftMessage) {
    match m {
        RaftMessage::RequestVote {
            term,
            pre_vote,
            last_log,
        } => {
            b.put_u8(1);
            b.put_u64(term.0);
            b.put_u8(u8::from(*pre_vote));
            put_log_id(b, *last_log);
        }
        RaftMessage::RequestVoteResponse {
            term,
            pre_vote,
            granted,
        } => {
            b.put_u8(2);
            b.put_u64(term.0);
            b.put_u8(u8::from(*pre_vote));
            b.put_u8(u8::from(*granted));
        }
        RaftMessage::AppendEntries {
            term,
            prev_log,
            entries,
            leader_commit,
        } => {
            b.put_u8(3);
            b.put_u64(term.0);
            put_log_id(b, *prev_log);
            b.put_u32(entries.len() as u32);
            for e in entries {
                put_entry(b, e);
            }
            b.put_u64(leader_commit.0);
        }
        RaftMessage::AppendEntriesSuccess {
            term,
            appended_index,
            match_index,
        } => {
            b.put_u8(4);
            b.put_u64(term.0);
            b.put_u64(appended_index.0);
            b.put_u64(match_index.0);
        }
        RaftMessage::AppendEntriesConflict {
            term,
            rejected_prev,
            hint,
        } => {
            b.put_u8(5);
            b.put_u64(term.0);
            b.put_u64(rejected_prev.0);
            put_opt_u64(b, hint.term.map(|t| t.0));
            b.put_u64(hint.index.0);
        }
        RaftMessage::Heartbeat { term, commit } => {
            b.put_u8(6);
            b.put_u64(term.0);
            b.put_u64(commit.0);
        }
        RaftMessage::HeartbeatResponse { term } => {
            b.put_u8(7);
            b.put_u64(term.0);
        }
        RaftMessage::InstallSnapshot { term, snapshot } => {
            b.put_u8(8);
            b.put_u64(term.0);
            put_log_id(b, snapshot.last);
            put_bytes(b, &snapshot.data);
        }
        RaftMessage::InstallSnapshotResponse { term, last_index } => {
            b.put_u8(9);
            b.put_u64(term.0);
            b.put_u64(last_index.0);
        }
        RaftMessage::Observe { term } => {
            b.put_u8(10);
            b.put_u64(term.0);
        }
    }
}

fn put_to_controller(b: &mut BytesMut, m: &ControllerRequest) {
    match m {
        ControllerRequest::Heartbeat {
            broker,
            incarnation,
            metadata_offset,
        } => {
            b.put_u8(1);
            b.put_u32(broker.0);
            b.put_u64(*incarnation);
            b.put_u64(*metadata_offset);
        }
        ControllerRequest::AlterPartition(a) => {
            b.put_u8(2);
            put_alter(b, a);
        }
        ControllerRequest::Register {
            broker,
            incarnation,
            listeners,
            rack,
        } => {
            b.put_u8(3);
            b.put_u32(broker.0);
            b.put_u64(*incarnation);
            b.put_u32(listeners.len() as u32);
            for l in listeners {
                put_str(b, l);
            }
            match rack {
                Some(r) => {
                    b.put_u8(1);
                    put_str(b, r);
                }
                None => b.put_u8(0),
            }
        }
    }
}

fn put_result_code(b: &mut BytesMut, result: Result<(), ErrorCode>) {
    match result {
        Ok(()) => b.put_u8(1),
        Err(e) => {
            b.put_u8(0);
            b.put_i16(e.code());
        }
    }
}

fn put_from_controller(b: &mut BytesMut, m: &ControllerMessage) {
    match m {
        ControllerMessage::RegistrationResponse {
            incarnation,
            result,
        } => {
            b.put_u8(3);
            b.put_u64(*incarnation);
            put_result_code(b, *result);
        }
        ControllerMessage::HeartbeatResponse {
            incarnation,
            result,
        } => {
            b.put_u8(4);
            b.put_u64(*incarnation);
            put_result_code(b, result.map(|_| ()));
            b.put_u8(u8::from(result.is_ok_and(|s| s.fenced)));
        }
        ControllerMessage::PartitionStates(states) => {
            b.put_u8(1);
            b.put_u32(states.len() as u32);
            for (tp, s) in states {
                put_tp(b, tp);
                put_state(b, s);
            }
        }
        ControllerMessage::AlterPartitionResponse {
            partition,
            request,
            result,
        } => {
            b.put_u8(2);
            put_tp(b, partition);
            put_alter(b, request);
            match result {
                Ok(s) => {
                    b.put_u8(1);
                    put_state(b, s);
                }
                Err(e) => {
                    b.put_u8(0);
                    b.put_i16(e.code());
                }
            }
        }
    }
}

// ----- decoding -----------------------------------------------------------------------

/// A frame's body (after its length prefix): who sent it, and what.
pub fn decode(body: &[u8]) -> Result<(NodeId, PeerFrame), DecodeError> {
    let mut r = Reader(body);
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let from = NodeId(r.u32("sender")?);
    let frame = match r.u8("kind")? {
        1 => PeerFrame::Replication(r.peer()?),
        2 => PeerFrame::Raft(r.raft()?),
        3 => PeerFrame::ToController(r.controller_request()?),
        4 => PeerFrame::FromController(r.controller_message()?),
        5 => PeerFrame::Admin(r.admin()?),
        6 => PeerFrame::Hello {
            address: r.string("address")?,
        },
        tag => return Err(DecodeError::Tag { what: "frame", tag }),
    };
    if !r.0.is_empty() {
        return Err(DecodeError::Trailing(r.0.len()));
    }
    Ok((from, frame))
}

/// One Raft log entry in the frame format's encoding (what the metadata log file
/// stores).
pub(crate) fn encode_entry(e: &Entry) -> Bytes {
    let mut b = BytesMut::new();
    put_entry(&mut b, e);
    b.freeze()
}

/// The inverse of [`encode_entry`]; the whole of `bytes` must be one entry.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader(bytes);
    let entry = r.entry()?;
    if !r.0.is_empty() {
        return Err(DecodeError::Trailing(r.0.len()));
    }
    Ok(entry)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.0.len() < n {
            Err(DecodeError::Short(what))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.0.get_u8())
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::Tag { what, tag }),
        }
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.0.get_u16())
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.need(2, what)?;
        Ok(self.0.get_i16())
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.0.get_u32())
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.need(8, what)?;
        Ok(self.0.get_u64())
    }

    /// A count of items that each take at least one byte.
    fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let count = self.u32(what)?;
        if count as usize > self.0.len() {
            return Err(DecodeError::Count {
                what,
                count: count.into(),
                left: self.0.len(),
            });
        }
        Ok(count as usize)
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(what)? as usize;
        self.need(len, what)?;
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Bytes::copy_from_slice(head))
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = self.u16(what)? as usize;
        self.need(len, what)?;
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(head.to_vec()).map_err(|_| DecodeError::Utf8(what))
    }

    fn opt_u32(&mut self, what: &'static str) -> Result<Option<u32>, DecodeError> {
        Ok(if self.bool(what)? {
            Some(self.u32(what)?)
        } else {
            None
        })
    }

    fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(if self.bool(what)? {
            Some(self.u64(what)?)
        } else {
            None
        })
    }

    fn error(&mut self) -> Result<ErrorCode, DecodeError> {
        let code = self.i16("error code")?;
        // An error code this build does not know is still an error: keep the nearest
        // meaning rather than refuse the frame.
        Ok(ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError))
    }

    fn tp(&mut self) -> Result<TopicPartition, DecodeError> {
        let topic = self.string("topic")?;
        Ok(TopicPartition::new(topic, self.u32("partition")?))
    }

    fn nodes(&mut self, what: &'static str) -> Result<Vec<NodeId>, DecodeError> {
        let n = self.count(what)?;
        (0..n).map(|_| self.u32(what).map(NodeId)).collect()
    }

    fn state(&mut self) -> Result<PartitionState, DecodeError> {
        Ok(PartitionState {
            replicas: self.nodes("replicas")?,
            leader: self.opt_u32("leader")?.map(NodeId),
            leader_epoch: Epoch(self.u32("leader epoch")?),
            leader_incarnation: self.opt_u64("leader incarnation")?,
            isr: self.nodes("isr")?,
            partition_epoch: self.u32("partition epoch")?,
        })
    }

    fn alter(&mut self) -> Result<AlterPartition, DecodeError> {
        let partition = self.tp()?;
        let leader = NodeId(self.u32("leader")?);
        let leader_epoch = Epoch(self.u32("leader epoch")?);
        let partition_epoch = self.u32("partition epoch")?;
        let new_isr = self.nodes("new isr")?;
        let n = self.count("added")?;
        let added = (0..n)
            .map(|_| Ok((NodeId(self.u32("added")?), self.u64("incarnation")?)))
            .collect::<Result<_, DecodeError>>()?;
        Ok(AlterPartition {
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            new_isr,
            added,
        })
    }

    fn peer(&mut self) -> Result<PeerMessage, DecodeError> {
        Ok(match self.u8("replication message")? {
            1 => PeerMessage::OffsetForLeaderEpoch {
                partition: self.tp()?,
                current_leader_epoch: Epoch(self.u32("epoch")?),
                epoch: Epoch(self.u32("epoch")?),
            },
            2 => PeerMessage::OffsetForLeaderEpochResponse {
                partition: self.tp()?,
                error: self.error()?,
                current_leader_epoch: Epoch(self.u32("epoch")?),
                asked_epoch: Epoch(self.u32("epoch")?),
                epoch: self.opt_u32("epoch")?.map(Epoch),
                end_offset: Offset(self.u64("end offset")?),
            },
            3 => PeerMessage::Fetch {
                partition: self.tp()?,
                current_leader_epoch: Epoch(self.u32("epoch")?),
                fetch_offset: Offset(self.u64("fetch offset")?),
                max_bytes: self.u32("max bytes")?,
                fetch_id: self.u64("fetch id")?,
                incarnation: self.u64("incarnation")?,
            },
            4 => {
                let partition = self.tp()?;
                let fetch_id = self.u64("fetch id")?;
                let error = self.error()?;
                let current_leader_epoch = Epoch(self.u32("epoch")?);
                let fetch_offset = Offset(self.u64("fetch offset")?);
                let high_watermark = Offset(self.u64("high watermark")?);
                let log_start_offset = Offset(self.u64("log start offset")?);
                let log_end_offset = Offset(self.u64("log end offset")?);
                let n = self.count("batches")?;
                let batches = (0..n)
                    .map(|_| self.bytes("batch").map(FetchedBatch::Bytes))
                    .collect::<Result<_, _>>()?;
                PeerMessage::FetchResponse {
                    partition,
                    fetch_id,
                    error,
                    current_leader_epoch,
                    fetch_offset,
                    high_watermark,
                    log_start_offset,
                    log_end_offset,
                    batches,
                }
            }
            tag => {
                return Err(DecodeError::Tag {
                    what: "replication message",
                    tag,
                })
            }
        })
    }

    fn admin(&mut self) -> Result<ControllerInput, DecodeError> {
        Ok(match self.u8("admin request")? {
            1 => {
                let name = self.string("topic")?;
                let num_partitions = self.opt_u32("partitions")?;
                let replication_factor = match self.opt_u32("replication factor")? {
                    None => None,
                    Some(rf) => Some(u16::try_from(rf).map_err(|_| DecodeError::Tag {
                        what: "replication factor",
                        tag: 0xff,
                    })?),
                };
                let n = self.count("configs")?;
                let configs = (0..n)
                    .map(|_| Ok((self.string("config key")?, self.string("config value")?)))
                    .collect::<Result<_, DecodeError>>()?;
                ControllerInput::CreateTopic {
                    name,
                    num_partitions,
                    replication_factor,
                    configs,
                }
            }
            2 => ControllerInput::DeleteTopic {
                name: self.string("topic")?,
            },
            3 => ControllerInput::CreatePartitions {
                topic: self.string("topic")?,
                count: self.u32("partition count")?,
            },
            4 => {
                let topic = self.string("topic")?;
                let n = self.count("configs")?;
                let configs = (0..n)
                    .map(|_| {
                        let key = self.string("config key")?;
                        let value = if self.bool("config value")? {
                            Some(self.string("config value")?)
                        } else {
                            None
                        };
                        Ok((key, value))
                    })
                    .collect::<Result<_, DecodeError>>()?;
                ControllerInput::AlterConfigs { topic, configs }
            }
            5 => ControllerInput::ControlledShutdown {
                broker: NodeId(self.u32("broker")?),
                incarnation: self.u64("incarnation")?,
            },
            tag => {
                return Err(DecodeError::Tag {
                    what: "admin request",
                    tag,
                })
            }
        })
    }

    fn entry(&mut self) -> Result<Entry, DecodeError> {
        let id = self.log_id()?;
        let payload = if self.bool("payload")? {
            Payload::Command(self.bytes("command")?)
        } else {
            Payload::LeaderNoop
        };
        Ok(Entry {
            term: id.term,
            index: id.index,
            payload,
        })
    }

    fn log_id(&mut self) -> Result<LogId, DecodeError> {
        Ok(LogId::new(
            Term(self.u64("term")?),
            LogIndex(self.u64("index")?),
        ))
    }

    fn raft(&mut self) -> Result<RaftMessage, DecodeError> {
        let tag = self.u8("raft message")?;
        let term = Term(self.u64("term")?);
        Ok(match tag {
            1 => RaftMessage::RequestVote {
                term,
                pre_vote: self.bool("pre-vote")?,
                last_log: self.log_id()?,
            },
            2 => RaftMessage::RequestVoteResponse {
                term,
                pre_vote: self.bool("pre-vote")?,
                granted: self.bool("granted")?,
            },
            3 => {
                let prev_log = self.log_id()?;
                let n = self.count("entries")?;
                let entries = (0..n)
                    .map(|_| self.entry())
                    .collect::<Result<_, DecodeError>>()?;
                RaftMessage::AppendEntries {
                    term,
                    prev_log,
                    entries,
                    leader_commit: LogIndex(self.u64("commit")?),
                }
            }
            4 => RaftMessage::AppendEntriesSuccess {
                term,
                appended_index: LogIndex(self.u64("index")?),
                match_index: LogIndex(self.u64("index")?),
            },
            5 => RaftMessage::AppendEntriesConflict {
                term,
                rejected_prev: LogIndex(self.u64("index")?),
                hint: ConflictHint {
                    term: self.opt_u64("hint term")?.map(Term),
                    index: LogIndex(self.u64("hint index")?),
                },
            },
            6 => RaftMessage::Heartbeat {
                term,
                commit: LogIndex(self.u64("commit")?),
            },
            7 => RaftMessage::HeartbeatResponse { term },
            8 => RaftMessage::InstallSnapshot {
                term,
                snapshot: Snapshot {
                    last: self.log_id()?,
                    data: self.bytes("snapshot")?,
                },
            },
            9 => RaftMessage::InstallSnapshotResponse {
                term,
                last_index: LogIndex(self.u64("index")?),
            },
            10 => RaftMessage::Observe { term },
            tag => {
                return Err(DecodeError::Tag {
                    what: "raft message",
                    tag,
                })
            }
        })
    }

    fn controller_request(&mut self) -> Result<ControllerRequest, DecodeError> {
        Ok(match self.u8("controller request")? {
            1 => ControllerRequest::Heartbeat {
                broker: NodeId(self.u32("broker")?),
                incarnation: self.u64("incarnation")?,
                metadata_offset: self.u64("metadata offset")?,
            },
            2 => ControllerRequest::AlterPartition(self.alter()?),
            3 => {
                let broker = NodeId(self.u32("broker")?);
                let incarnation = self.u64("incarnation")?;
                let n = self.count("listeners")?;
                let listeners = (0..n)
                    .map(|_| self.string("listener"))
                    .collect::<Result<_, DecodeError>>()?;
                let rack = if self.bool("rack")? {
                    Some(self.string("rack")?)
                } else {
                    None
                };
                ControllerRequest::Register {
                    broker,
                    incarnation,
                    listeners,
                    rack,
                }
            }
            tag => {
                return Err(DecodeError::Tag {
                    what: "controller request",
                    tag,
                })
            }
        })
    }

    fn controller_message(&mut self) -> Result<ControllerMessage, DecodeError> {
        Ok(match self.u8("controller message")? {
            1 => {
                let n = self.count("partition states")?;
                let states = (0..n)
                    .map(|_| Ok((self.tp()?, self.state()?)))
                    .collect::<Result<_, DecodeError>>()?;
                ControllerMessage::PartitionStates(states)
            }
            2 => {
                let partition = self.tp()?;
                let request = self.alter()?;
                let result = if self.bool("result")? {
                    Ok(self.state()?)
                } else {
                    Err(self.error()?)
                };
                ControllerMessage::AlterPartitionResponse {
                    partition,
                    request,
                    result,
                }
            }
            3 => {
                let incarnation = self.u64("incarnation")?;
                let result = if self.bool("result")? {
                    Ok(())
                } else {
                    Err(self.error()?)
                };
                ControllerMessage::RegistrationResponse {
                    incarnation,
                    result,
                }
            }
            4 => {
                let incarnation = self.u64("incarnation")?;
                let ok = self.bool("result")?;
                let error = if ok { None } else { Some(self.error()?) };
                let fenced = self.bool("fenced")?;
                let result = match error {
                    None => Ok(HeartbeatState { fenced }),
                    Some(e) => Err(e),
                };
                ControllerMessage::HeartbeatResponse {
                    incarnation,
                    result,
                }
            }
            tag => {
                return Err(DecodeError::Tag {
                    what: "controller message",
                    tag,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests;

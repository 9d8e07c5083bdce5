//! The client's errors. Each names what a person needs to act on it: the broker that
//! answered (or did not), and the topic and partition the answer was about.

use std::fmt;

use kafka_protocol::error::ResponseError;

/// A Kafka error code as a broker put it on the wire, printed with Kafka's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// Whether Kafka's clients retry a request that got this code (its
    /// `RetriableException` family), after refreshing metadata where it is about leaders.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
            // Not in the crate's retriable list, but Kafka's clients retry them after
            // looking the coordinator up again.
            || matches!(self.0, 14..=16)
    }

    /// Whether the answer means the client's view of partition leadership is stale
    /// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE,
    /// FENCED/UNKNOWN_LEADER_EPOCH, KAFKA_STORAGE_ERROR): refresh metadata and retry.
    pub fn needs_metadata_refresh(self) -> bool {
        matches!(self.0, 3 | 5 | 6 | 56 | 74 | 75)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ResponseError::try_from_code(self.0) {
            Some(e) => write!(f, "{e:?} (error code {})", self.0),
            None => write!(f, "error code {}", self.0),
        }
    }
}

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to broker {broker}: {source}.")]
    Connect {
        broker: String,
        #[source]
        source: std::io::Error,
    },
    #[error("The connection to broker {broker} failed: {reason}.")]
    Connection { broker: String, reason: String },
    #[error("Broker {broker} did not answer {api} within {timeout_ms} ms (request.timeout.ms).")]
    Timeout {
        broker: String,
        api: &'static str,
        timeout_ms: u64,
    },
    #[error("No broker in the bootstrap list {bootstrap} could be reached: {last}.")]
    NoBrokerReachable { bootstrap: String, last: String },
    #[error(
        "Broker {broker} serves {api} in versions {broker_min}..={broker_max}, but this client \
         speaks {client_min}..={client_max}; upgrade one of them."
    )]
    UnsupportedVersion {
        broker: String,
        api: &'static str,
        broker_min: i16,
        broker_max: i16,
        client_min: i16,
        client_max: i16,
    },
    #[error("Broker {broker} sent a response to {api} this client cannot read: {reason}.")]
    Protocol {
        broker: String,
        api: &'static str,
        reason: String,
    },
    #[error("Broker {broker} answered {api} for partition {topic}-{partition} with {code}.")]
    Partition {
        broker: String,
        api: &'static str,
        topic: String,
        partition: i32,
        code: KafkaCode,
    },
    #[error("Broker {broker} answered {api} for topic {topic} with {code}{}.", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Topic {
        broker: String,
        api: &'static str,
        topic: String,
        code: KafkaCode,
        message: Option<String>,
    },
    #[error("Broker {broker} answered {api} with {code}{}.", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        broker: String,
        api: &'static str,
        code: KafkaCode,
        message: Option<String>,
    },
    #[error("Topic {topic} does not exist (no broker knows it); create it first.")]
    UnknownTopic { topic: String },
    #[error(
        "Partition {topic}-{partition} does not exist: the topic has {partitions} partitions."
    )]
    UnknownPartition {
        topic: String,
        partition: i32,
        partitions: usize,
    },
    #[error(
        "A record for {topic}-{partition} may or may not have been written: {reason}; it \
         is not sent again, because the broker could no longer recognise a duplicate."
    )]
    OutcomeUnknown {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error(
        "A record for {topic}-{partition} was not acknowledged within delivery.timeout.ms = \
         {timeout_ms}; last error: {last_error}."
    )]
    DeliveryTimeout {
        topic: String,
        partition: i32,
        timeout_ms: u64,
        last_error: String,
    },
    #[error(
        "Partition {topic}-{partition} has no committed offset and no position to start from, \
         and auto.offset.reset = none; seek first."
    )]
    NoOffset { topic: String, partition: i32 },
    #[error("Invalid configuration: {0}")]
    Config(String),
    #[error("The {0} has been closed.")]
    Closed(&'static str),
}

impl ClientError {
    /// Whether trying again (after a metadata refresh and a backoff) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Connection { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBrokerReachable { .. } => true,
            ClientError::Partition { code, .. }
            | ClientError::Topic { code, .. }
            | ClientError::Broker { code, .. } => code.is_retriable(),
            ClientError::UnknownTopic { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

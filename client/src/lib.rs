//! Eddy's Kafka client: a producer, a consumer and an admin client speaking the Kafka
//! wire protocol (through the `kafka-protocol` crate's client side) to Eddy or to any
//! Kafka broker. It is written on tokio APIs only, so the same code runs on real sockets
//! and, under `--cfg madsim`, inside the simulator.
//!
//! - [`connection`]: one pipelined connection per broker, with ApiVersions negotiation.
//! - [`network`]: the bootstrap list, the connection pool and the metadata cache.
//! - [`partitioner`]: murmur2 exactly as the Java client computes it.
//! - [`records`]: building (and compressing) batches, reading fetched ones.
//! - [`producer`]: `send` → offset; batching, compression, acks, retries, idempotence.
//! - [`consumer`]: `assign` or `subscribe` (group membership), `poll`, commits, seeks.
//! - [`admin`]: topics, partitions, configs, groups and their offsets, the cluster.
//!
//! The record batch format (v2 encoding, CRC-32C) and the group assignors are the
//! core's (`eddy_core::batch`, `eddy_core::group`), so the simulator's clients and this
//! one build the same bytes and make the same assignments.

pub mod admin;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod network;
pub mod partitioner;
pub mod producer;
pub mod records;
mod versions;

pub use admin::{Admin, NewTopic};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupEvent, GroupObserver, OffsetReset,
    PositionSource, RebalanceEvent, SessionRequest,
};
pub use eddy_core::TopicPartition;
pub use error::{ClientError, KafkaCode, Result};
pub use network::{CommonConfig, NetworkClient};
pub use producer::{Acks, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

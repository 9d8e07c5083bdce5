//! Eddy's core: the pure state machines of a Kafka-compatible broker.
//!
//! Everything here is sans-IO (see `../shared/DESIGN.md`, "The core contract"): inputs
//! come in with the current time, effects go out, and nothing here reads a clock, sleeps,
//! spawns, opens a socket or a file, or draws a random number of its own. The same code
//! runs under the seeded simulator (`eddy-sim`) and behind the real shell (`eddy-net`).

pub mod batch;
pub mod config;
pub mod controller;
pub mod error;
pub mod group;
pub mod log;
pub mod message;
pub mod metadata;
pub mod node;
pub mod producer_state;
pub mod quorum;
pub mod replica;
pub mod types;

pub use error::ErrorCode;
pub use types::{Epoch, NodeId, Offset, TimeMs, TopicPartition};

//! Brokers and controllers talking among themselves, on their own listener: the frames
//! (`codec`) and the connections that carry them (`link`). The multi-broker cluster
//! (issues 3 and 5) drives the node's replication and the metadata quorum over these.

pub mod codec;
pub mod link;

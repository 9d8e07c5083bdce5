//! Brokers and controllers talking among themselves, on their own listener: the frames
//! (`codec`) today; connections, reconnection and timeouts come with the multi-broker
//! cluster (issues 3 and 5).

pub mod codec;

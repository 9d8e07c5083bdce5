//! Replica placement: which brokers host a new partition, and which of them is its
//! preferred leader (the first replica).
//!
//! Kafka's rack-unaware assignment picks a random start broker and shift per topic, which
//! balances the partitions of one topic but lets many small topics pile leaders onto the
//! same brokers. Eddy has no randomness of its own, and wants the whole cluster balanced,
//! so it places greedily on the current load instead:
//!
//! - the preferred leader is the unfenced broker that is preferred leader of the fewest
//!   partitions (then: hosts the fewest replicas);
//! - the followers are the other brokers hosting the fewest replicas;
//! - ties go round-robin: candidates are ranked from a start that moves one broker per
//!   partition in the cluster, so equal brokers take turns instead of the lowest id
//!   always winning.
//!
//! For topics of one replication factor created on a steady set of brokers, this keeps
//! every broker within one of the average in both preferred leaderships and replicas
//! (the property test in `tests.rs`). Mixed replication factors, deletions and fenced
//! brokers make it best effort: it always fills the least-loaded brokers first.

use std::collections::BTreeMap;

use crate::controller::MetadataImage;
use crate::types::NodeId;

#[derive(Clone, Copy, Default)]
struct Load {
    leaders: u64,
    replicas: u64,
}

/// Replica lists for `count` new partitions of `replication_factor` replicas each, on
/// `brokers` (the unfenced brokers, in id order).
///
/// The caller has checked `1 <= replication_factor <= brokers.len()`.
pub(crate) fn assign(
    image: &MetadataImage,
    brokers: &[NodeId],
    count: u32,
    replication_factor: usize,
) -> Vec<Vec<NodeId>> {
    assert!(
        (1..=brokers.len()).contains(&replication_factor),
        "placement of {replication_factor} replicas on {} brokers: the caller checks this",
        brokers.len()
    );
    let n = brokers.len();
    let mut load: BTreeMap<NodeId, Load> = brokers.iter().map(|&b| (b, Load::default())).collect();
    for (_, state) in image.partitions() {
        for (i, r) in state.replicas.iter().enumerate() {
            if let Some(l) = load.get_mut(r) {
                l.replicas += 1;
                l.leaders += u64::from(i == 0);
            }
        }
    }
    // Loads by position in `brokers`, so that ties break by rotated position.
    let mut loads: Vec<Load> = brokers.iter().map(|b| load[b]).collect();
    let mut lists = Vec::with_capacity(count as usize);
    // `placed`: partitions in the cluster before this one, which turns the tie-break.
    for placed in image.partition_count()..image.partition_count() + count as usize {
        let start = placed % n;
        let rotated = |i: usize| (i + n - start) % n;
        let leader = (0..n)
            .min_by_key(|&i| (loads[i].leaders, loads[i].replicas, rotated(i)))
            .expect("at least one broker");
        let mut followers: Vec<usize> = (0..n).filter(|&i| i != leader).collect();
        followers.sort_by_key(|&i| (loads[i].replicas, rotated(i)));
        followers.truncate(replication_factor - 1);

        loads[leader].leaders += 1;
        let mut replicas = Vec::with_capacity(replication_factor);
        for i in std::iter::once(leader).chain(followers) {
            loads[i].replicas += 1;
            replicas.push(brokers[i]);
        }
        lists.push(replicas);
    }
    lists
}

//! `cooperative-sticky`, Kafka's `CooperativeStickyAssignor` (KIP-429): an assignment as
//! balanced as the subscriptions allow, in which each member keeps as many of the
//! partitions it owns as that balance leaves it, and no partition changes hands within
//! one rebalance.
//!
//! It works in two steps. First it computes a *target* assignment:
//!
//! 1. Every member keeps the partitions it validly owns: claimed in the current
//!    generation (the highest any member reports — older claims are stale, and their
//!    holders' commits are fenced anyway), of a topic it still subscribes to, and
//!    claimed by no one else in that generation (two claims in one generation mean one
//!    of them is wrong, so neither is trusted, as in Kafka).
//! 2. Each partition nobody keeps goes to the least-loaded member subscribed to its
//!    topic, the partitions with the fewest possible owners first.
//! 3. Balance by augmenting paths: while a chain of moves — member `u` gives a
//!    partition to `w1`, `w1` gives one to `w2`, … up to `v`, each to a subscriber of
//!    the partition's topic — leads from `u` to a member `v` with at least two fewer
//!    partitions than `u`, apply it (`u` loses one, `v` gains one, the rest are
//!    unchanged). First only through partitions handed out in step 2, then through any.
//!    Each path lowers the sum of squared counts, so this ends, and it ends at the
//!    lowest sum the subscriptions allow (no such path is left: the optimality condition
//!    of this convex assignment problem). Single moves are not enough: with
//!    subscriptions {t0}, {t0, t1}, {t1} a count of 3, 4, 5 is balanced only by a chain.
//!    At the optimum, members with the same subscription are within one.
//!
//! Why paths through new partitions first: in the follow-up rebalance, members own a
//! subset of the previous target and the revoked partitions are new. Completing that
//! subset optimally needs only paths through new partitions (the previous target is one
//! such completion, and it was optimal), so the follow-up revokes nothing more and every
//! partition is assigned once it completes.
//!
//! Then the cooperative step: a partition whose target owner is not its only
//! current-generation claimant is left out of this rebalance's assignment. Its owner,
//! not finding it in its assignment, revokes it and rejoins, and the follow-up
//! rebalance — where nobody claims it any more — gives it to its new owner. So no
//! partition is assigned to one member while another may still be consuming it.
//!
//! Kafka's algorithm differs in its details, so the two need not choose the same
//! partitions; the properties above are what they share. A partition claimed twice in
//! one generation waits a rebalance here, like any partition whose owner changes: the
//! safe choice, since either claimant may still be consuming it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{empty_assignment, GroupAssignment, Subscription};
use crate::types::TopicPartition;

pub(super) fn assign(
    members: &[Subscription],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> GroupAssignment {
    // Members by index, in member id order, so that every tie breaks the same way
    // whatever order the members came in.
    let mut sorted: Vec<&Subscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));

    // Every partition of a subscribed topic, with the members that may own it.
    let mut subscribers: BTreeMap<TopicPartition, Vec<usize>> = BTreeMap::new();
    for (topic, &partition_count) in partitions_per_topic {
        let eligible: Vec<usize> = (0..sorted.len())
            .filter(|&i| sorted[i].topics.contains(topic))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for partition in 0..partition_count {
            subscribers.insert(
                TopicPartition::new(topic.as_str(), partition),
                eligible.clone(),
            );
        }
    }

    // Claims made in the current generation. `None` ranks below every generation, so
    // when no member reports one, all claims count (Kafka's DEFAULT_GENERATION).
    let current_generation = sorted.iter().map(|m| m.generation).max().flatten();
    let mut claimants: BTreeMap<&TopicPartition, BTreeSet<usize>> = BTreeMap::new();
    for (i, m) in sorted.iter().enumerate() {
        if m.generation == current_generation {
            for tp in &m.owned_partitions {
                claimants.entry(tp).or_default().insert(i);
            }
        }
    }

    let mut target = Target::new(sorted.len());

    // Step 1: keep valid, uncontested claims.
    for (tp, eligible) in &subscribers {
        if let Some(claims) = claimants.get(tp) {
            if let [only] = claims.iter().copied().collect::<Vec<_>>()[..] {
                if eligible.contains(&only) {
                    target.give(tp.clone(), only, false);
                }
            }
        }
    }

    // Step 2: hand out the rest, the most constrained partitions first.
    let mut unowned: Vec<(&TopicPartition, &Vec<usize>)> = subscribers
        .iter()
        .filter(|(tp, _)| !target.owner.contains_key(*tp))
        .collect();
    unowned.sort_by_key(|(tp, eligible)| (eligible.len(), *tp));
    for (tp, eligible) in unowned {
        let member = target
            .least_loaded(eligible)
            .expect("a topic with a subscriber");
        target.give(tp.clone(), member, true);
    }

    // Step 3: balance. Each path lowers the sum of squared counts by at least two, and
    // that sum starts at most at the square of the partition count: the bound is an
    // assertion, not a cut-off.
    let paths_max = subscribers.len() * subscribers.len() / 2 + 1;
    let mut paths = 0;
    for new_only in [true, false] {
        while let Some(path) = target.improving_path(&subscribers, new_only) {
            for (tp, to) in path {
                target.move_to(&tp, to);
            }
            paths += 1;
            assert!(paths <= paths_max, "balancing must converge");
        }
    }
    assert_eq!(
        target.owner.len(),
        subscribers.len(),
        "the target covers every partition"
    );

    // The cooperative step: hand out only what no one else may still be consuming.
    let mut assignment = empty_assignment(members);
    for (tp, &member) in &target.owner {
        let free = claimants
            .get(tp)
            .is_none_or(|claims| claims.iter().all(|&c| c == member));
        if free {
            assignment
                .get_mut(&sorted[member].member_id)
                .expect("every member has an entry")
                .push(tp.clone());
        }
    }
    assignment
}

/// The target assignment under construction.
struct Target {
    owner: BTreeMap<TopicPartition, usize>,
    /// Per member: its partitions, the flag saying whether it got each one in this
    /// rebalance (step 2, or moved in step 3) rather than keeping it.
    held: Vec<BTreeMap<TopicPartition, bool>>,
}

impl Target {
    fn new(member_count: usize) -> Target {
        Target {
            owner: BTreeMap::new(),
            held: vec![BTreeMap::new(); member_count],
        }
    }

    fn count(&self, member: usize) -> usize {
        self.held[member].len()
    }

    fn give(&mut self, tp: TopicPartition, member: usize, new: bool) {
        let previous = self.owner.insert(tp.clone(), member);
        assert!(previous.is_none(), "{tp} given twice");
        self.held[member].insert(tp, new);
    }

    fn move_to(&mut self, tp: &TopicPartition, to: usize) {
        let from = self.owner.remove(tp).expect("only a held partition moves");
        self.held[from].remove(tp);
        self.give(tp.clone(), to, true);
    }

    /// The member of `eligible` with the fewest partitions, the first in member id order
    /// among equals.
    fn least_loaded(&self, eligible: &[usize]) -> Option<usize> {
        eligible.iter().copied().min_by_key(|&m| (self.count(m), m))
    }

    fn movable(&self, member: usize, new_only: bool) -> impl Iterator<Item = &TopicPartition> {
        let wanted: &[bool] = if new_only { &[true] } else { &[true, false] };
        wanted.iter().flat_map(move |&want_new| {
            self.held[member]
                .iter()
                .filter(move |(_, &new)| new == want_new)
                .map(|(tp, _)| tp)
        })
    }

    /// The moves of an augmenting path from a member to one with at least two fewer
    /// partitions, each move a partition and the member it goes to; `None` when balance
    /// is optimal. Sources are tried from the most loaded; a breadth-first search from
    /// each finds the least-loaded member it can reach, the nearest among equals.
    fn improving_path(
        &self,
        subscribers: &BTreeMap<TopicPartition, Vec<usize>>,
        new_only: bool,
    ) -> Option<Vec<(TopicPartition, usize)>> {
        let member_count = self.held.len();
        let mut by_load: Vec<usize> = (0..member_count).collect();
        by_load.sort_by_key(|&m| (Reverse(self.count(m)), m));
        // A path improves balance only from a member holding at least two more than its
        // sink, so sources below the least loaded + 2 (and everything after them, in this
        // order) cannot start one. In a balanced group that is every member: no search.
        let least = (0..member_count).map(|m| self.count(m)).min()?;
        for source in by_load {
            if self.count(source) < least + 2 {
                break;
            }
            // For each member reached: the member it was reached from, and the partition
            // that would move between them.
            let mut via: Vec<Option<(usize, &TopicPartition)>> = vec![None; member_count];
            let mut reached_order = Vec::new();
            let mut queue = VecDeque::from([source]);
            while let Some(from) = queue.pop_front() {
                for tp in self.movable(from, new_only) {
                    for &to in &subscribers[tp] {
                        if to != source && via[to].is_none() {
                            via[to] = Some((from, tp));
                            reached_order.push(to);
                            queue.push_back(to);
                        }
                    }
                }
            }
            let Some(sink) = reached_order.into_iter().min_by_key(|&m| self.count(m)) else {
                continue;
            };
            if self.count(sink) + 2 > self.count(source) {
                continue;
            }
            let mut path = Vec::new();
            let mut to = sink;
            while to != source {
                let (from, tp) = via[to].expect("every reached member has a predecessor");
                path.push((tp.clone(), to));
                to = from;
            }
            path.reverse();
            return Some(path);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::group::assignor::test_support::{topics, tps};
    use crate::group::{Assignor, Generation, GroupAssignment, Subscription};
    use std::collections::BTreeMap;

    fn sticky(members: &[Subscription], topics: &BTreeMap<String, u32>) -> GroupAssignment {
        Assignor::CooperativeSticky.assign(members, topics)
    }

    /// The first example of Kafka's `StickyAssignor` javadoc: three members, four topics
    /// of two partitions, all subscribed to all. Then C1 leaves: C0 and C2 keep all they
    /// had and split C1's three, where round robin would reshuffle.
    #[test]
    fn javadoc_example_one_member_leaves_and_the_others_keep_theirs() {
        let all = ["t0", "t1", "t2", "t3"];
        let meta = topics(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
        let members = [
            Subscription::new("C0", all),
            Subscription::new("C1", all),
            Subscription::new("C2", all),
        ];
        let a = sticky(&members, &meta);
        assert_eq!(a["C0"], tps(&[("t0", 0), ("t1", 1), ("t3", 0)]));
        assert_eq!(a["C1"], tps(&[("t0", 1), ("t2", 0), ("t3", 1)]));
        assert_eq!(a["C2"], tps(&[("t1", 0), ("t2", 1)]));

        let g = Generation(1);
        let after = [
            Subscription::new("C0", all).with_owned(a["C0"].clone(), g),
            Subscription::new("C2", all).with_owned(a["C2"].clone(), g),
        ];
        let b = sticky(&after, &meta);
        assert_eq!(b["C0"], tps(&[("t0", 0), ("t1", 1), ("t2", 0), ("t3", 0)]));
        assert_eq!(b["C2"], tps(&[("t0", 1), ("t1", 0), ("t2", 1), ("t3", 1)]));
    }

    /// The `StickyAssignor` javadoc's second example: differing subscriptions, balanced
    /// as far as they allow; when C0 leaves, C1 and C2 keep everything they had.
    #[test]
    fn javadoc_example_differing_subscriptions() {
        let meta = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let c1 = || Subscription::new("C1", ["t0", "t1"]);
        let c2 = || Subscription::new("C2", ["t0", "t1", "t2"]);
        let members = [Subscription::new("C0", ["t0"]), c1(), c2()];
        let a = sticky(&members, &meta);
        assert_eq!(a["C0"], tps(&[("t0", 0)]));
        assert_eq!(a["C1"], tps(&[("t1", 0), ("t1", 1)]));
        assert_eq!(a["C2"], tps(&[("t2", 0), ("t2", 1), ("t2", 2)]));

        let g = Generation(1);
        let after = [
            c1().with_owned(a["C1"].clone(), g),
            c2().with_owned(a["C2"].clone(), g),
        ];
        let b = sticky(&after, &meta);
        assert_eq!(b["C1"], tps(&[("t0", 0), ("t1", 0), ("t1", 1)]));
        assert_eq!(b["C2"], tps(&[("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    /// KIP-429's incremental rebalance: a joining member gets nothing in the first
    /// rebalance, the owner keeps what it is not giving up, and the follow-up hands over
    /// the revoked partitions.
    #[test]
    fn a_joining_member_gets_partitions_only_after_their_owner_revoked_them() {
        let meta = topics(&[("t", 4)]);
        let all = tps(&[("t", 0), ("t", 1), ("t", 2), ("t", 3)]);
        let first = sticky(
            &[
                Subscription::new("a", ["t"]).with_owned(all.clone(), Generation(1)),
                Subscription::new("b", ["t"]),
            ],
            &meta,
        );
        assert_eq!(first["a"], tps(&[("t", 2), ("t", 3)]));
        assert_eq!(first["b"], tps(&[]));

        let follow_up = sticky(
            &[
                Subscription::new("a", ["t"]).with_owned(first["a"].clone(), Generation(2)),
                Subscription::new("b", ["t"]).with_owned(first["b"].clone(), Generation(2)),
            ],
            &meta,
        );
        assert_eq!(follow_up["a"], tps(&[("t", 2), ("t", 3)]));
        assert_eq!(follow_up["b"], tps(&[("t", 0), ("t", 1)]));
    }

    /// Regression, found by `cooperative_sticky_assigns_every_partition_after_the_follow_up_rebalance`:
    /// balancing by single moves stopped at loads 3, 4, 5 here, though a chain (c gives
    /// b a t1 partition, b gives a a t0 one) reaches 4, 4, 4; the follow-up rebalance
    /// then found the chain and revoked again, so a partition stayed unassigned after
    /// it. Balancing by augmenting paths settles in one follow-up.
    #[test]
    fn balance_follows_chains_of_moves_across_subscriptions() {
        let meta = topics(&[("t0", 5), ("t1", 7)]);
        let g = Generation(1);
        let first = sticky(
            &[
                Subscription::new("a", ["t0"])
                    .with_owned(tps(&[("t0", 0), ("t0", 1), ("t0", 2)]), g),
                Subscription::new("b", ["t0", "t1"])
                    .with_owned(tps(&[("t0", 3), ("t0", 4), ("t1", 0), ("t1", 1)]), g),
                Subscription::new("c", ["t1"]).with_owned(
                    tps(&[("t1", 2), ("t1", 3), ("t1", 4), ("t1", 5), ("t1", 6)]),
                    g,
                ),
            ],
            &meta,
        );
        // b gives up t0-3 for a and c gives up t1-2 for b; neither is handed over yet.
        assert_eq!(first["a"], tps(&[("t0", 0), ("t0", 1), ("t0", 2)]));
        assert_eq!(first["b"], tps(&[("t0", 4), ("t1", 0), ("t1", 1)]));
        assert_eq!(
            first["c"],
            tps(&[("t1", 3), ("t1", 4), ("t1", 5), ("t1", 6)])
        );

        let g = Generation(2);
        let follow_up = sticky(
            &[
                Subscription::new("a", ["t0"]).with_owned(first["a"].clone(), g),
                Subscription::new("b", ["t0", "t1"]).with_owned(first["b"].clone(), g),
                Subscription::new("c", ["t1"]).with_owned(first["c"].clone(), g),
            ],
            &meta,
        );
        assert_eq!(
            follow_up["a"],
            tps(&[("t0", 0), ("t0", 1), ("t0", 2), ("t0", 3)])
        );
        assert_eq!(
            follow_up["b"],
            tps(&[("t0", 4), ("t1", 0), ("t1", 1), ("t1", 2)])
        );
        assert_eq!(follow_up["c"], first["c"]);
    }

    /// Regression, found at 100 000 cases once balancing tried all partitions at once:
    /// the follow-up rebalance completed the owned subset with a path that moved an
    /// owned partition although one through the revoked (new) partitions existed, so it
    /// revoked again. Paths through new partitions are now tried first.
    #[test]
    fn follow_up_rebalance_moves_only_the_revoked_partitions() {
        let meta = topics(&[("t0", 5), ("t1", 7), ("t2", 1), ("t3", 8)]);
        let g = Generation(2);
        let members = [
            Subscription::new("m0", ["gone", "t1", "t3"]),
            Subscription::new("m1", ["gone", "t2"]).with_owned(tps(&[("t0", 1), ("t3", 0)]), g),
            Subscription::new("m2", ["t1", "t3"]).with_owned(tps(&[("t3", 1), ("t3", 2)]), g),
            Subscription::new("m3", ["t0", "t2", "t3"]),
            Subscription::new("m4", ["gone", "t0", "t1", "t2"]),
        ];
        let first = sticky(&members, &meta);
        let next: Vec<Subscription> = members
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.owned_partitions = first[&m.member_id].clone();
                m.generation = Some(Generation(3));
                m
            })
            .collect();
        let follow_up = sticky(&next, &meta);
        let assigned: usize = follow_up.values().map(Vec::len).sum();
        assert_eq!(assigned, 5 + 7 + 1 + 8, "{follow_up:?}");
        for m in &next {
            for tp in &m.owned_partitions {
                assert!(
                    follow_up[&m.member_id].contains(tp),
                    "{tp} revoked again from {}",
                    m.member_id
                );
            }
        }
    }

    /// A claim from an older generation is ignored: the member with the current
    /// generation keeps the partition, and no revocation is waited for.
    #[test]
    fn a_claim_from_an_older_generation_loses_to_the_current_one() {
        let meta = topics(&[("t", 2)]);
        let a = sticky(
            &[
                Subscription::new("a", ["t"]).with_owned(tps(&[("t", 0), ("t", 1)]), Generation(3)),
                Subscription::new("b", ["t"]).with_owned(tps(&[("t", 0)]), Generation(5)),
            ],
            &meta,
        );
        assert_eq!(a["b"], tps(&[("t", 0)]));
        assert_eq!(a["a"], tps(&[("t", 1)]));
    }

    /// Two claims in the same generation: neither is trusted, and the partition waits a
    /// rebalance so that neither claimant can still be consuming it when it is given.
    #[test]
    fn a_partition_claimed_twice_in_one_generation_is_withheld_once() {
        let meta = topics(&[("t", 2)]);
        let g = Generation(4);
        let a = sticky(
            &[
                Subscription::new("a", ["t"]).with_owned(tps(&[("t", 0), ("t", 1)]), g),
                Subscription::new("b", ["t"]).with_owned(tps(&[("t", 0)]), g),
            ],
            &meta,
        );
        assert_eq!(a["a"], tps(&[("t", 1)]));
        assert_eq!(a["b"], tps(&[]));
    }

    /// A member that unsubscribed from a topic but still claims its partition has it
    /// revoked before anyone else gets it.
    #[test]
    fn a_partition_of_an_unsubscribed_topic_is_revoked_before_it_moves() {
        let meta = topics(&[("t", 1), ("u", 1)]);
        let g = Generation(2);
        let a = sticky(
            &[
                Subscription::new("a", ["u"]).with_owned(tps(&[("t", 0), ("u", 0)]), g),
                Subscription::new("b", ["t"]).with_owned(tps(&[]), g),
            ],
            &meta,
        );
        assert_eq!(a["a"], tps(&[("u", 0)]));
        assert_eq!(a["b"], tps(&[]));
    }
}

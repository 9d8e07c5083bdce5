//! Property tests of the partition assignors (`eddy_core::group::Assignor`). proptest
//! generates groups of up to six members over up to four topics of up to eight
//! partitions, with differing subscriptions (including a topic missing from the
//! metadata), some static members, and — for `cooperative-sticky` — arbitrary owned
//! partitions claimed in arbitrary generations, so stale, conflicting and impossible
//! claims all occur. A "rebalance" feeds an assignment back as every member's owned
//! partitions in the next generation, as members do in KIP-429.
//!
//! What they show: `range` and `roundrobin` give every subscribed partition to exactly
//! one subscriber; `cooperative-sticky` never gives a partition to one member while
//! another member of the current generation claims it, and gives every partition after
//! the follow-up rebalance; the balance each assignor promises (per topic for `range`,
//! per subscription for the others); `cooperative-sticky` is stable once settled and
//! moves only as many partitions as balance requires when a member joins or leaves; and
//! no assignor's output depends on the order the members are given in.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use eddy_core::group::{select_protocol, Assignor, Generation, GroupAssignment, Subscription};
use eddy_core::TopicPartition;

/// Topic names members may subscribe to; the last is never in the metadata.
const TOPIC_NAMES: [&str; 5] = ["t0", "t1", "t2", "t3", "gone"];
const MEMBERS_MAX: usize = 6;
const PARTITIONS_PER_TOPIC_MAX: u32 = 8;

#[derive(Clone, Debug)]
struct Group {
    partitions_per_topic: BTreeMap<String, u32>,
    members: Vec<Subscription>,
}

fn partitions_per_topic() -> impl Strategy<Value = BTreeMap<String, u32>> {
    prop::collection::vec(1..=PARTITIONS_PER_TOPIC_MAX, 1..=4).prop_map(|counts| {
        counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| (TOPIC_NAMES[i].to_string(), n))
            .collect()
    })
}

fn claims() -> impl Strategy<Value = (Vec<(usize, u32)>, Option<i32>)> {
    (
        prop::collection::vec(
            (0..TOPIC_NAMES.len(), 0..PARTITIONS_PER_TOPIC_MAX + 2),
            0..8,
        ),
        prop_oneof![Just(None), (1..=3i32).prop_map(Some)],
    )
}

/// A group with any subscriptions and any claims.
fn group() -> impl Strategy<Value = Group> {
    let member = (
        0u32..1 << TOPIC_NAMES.len(),
        prop::option::of(0u8..4),
        claims(),
    );
    (
        partitions_per_topic(),
        prop::collection::vec(member, 1..=MEMBERS_MAX),
    )
        .prop_map(|(partitions_per_topic, specs)| {
            let members = specs
                .into_iter()
                .enumerate()
                .map(|(k, (topic_mask, instance_rank, (owned, generation)))| {
                    let topics = (0..TOPIC_NAMES.len())
                        .filter(|i| topic_mask & (1 << i) != 0)
                        .map(|i| TOPIC_NAMES[i]);
                    let mut m = Subscription::new(format!("m{k}"), topics);
                    // Instance ids sort in another order than member ids.
                    m.group_instance_id = instance_rank.map(|r| format!("i{r}-{k}"));
                    m.owned_partitions = owned
                        .into_iter()
                        .map(|(t, p)| TopicPartition::new(TOPIC_NAMES[t], p))
                        .collect();
                    m.generation = generation.map(Generation);
                    m
                })
                .collect();
            Group {
                partitions_per_topic,
                members,
            }
        })
}

/// A group whose members all subscribe to every topic, owning nothing.
fn identical_group() -> impl Strategy<Value = Group> {
    (partitions_per_topic(), 1..=MEMBERS_MAX).prop_map(|(partitions_per_topic, n)| {
        let topics: Vec<String> = partitions_per_topic.keys().cloned().collect();
        Group {
            members: (0..n)
                .map(|k| Subscription::new(format!("m{k}"), topics.clone()))
                .collect(),
            partitions_per_topic,
        }
    })
}

/// Every partition of a topic in the metadata that some member subscribes to.
fn subscribed_partitions(g: &Group) -> BTreeSet<TopicPartition> {
    g.partitions_per_topic
        .iter()
        .filter(|(t, _)| g.members.iter().any(|m| m.topics.contains(*t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.as_str(), p)))
        .collect()
}

fn owners(a: &GroupAssignment) -> BTreeMap<TopicPartition, Vec<&str>> {
    let mut owners: BTreeMap<TopicPartition, Vec<&str>> = BTreeMap::new();
    for (member, partitions) in a {
        for tp in partitions {
            owners.entry(tp.clone()).or_default().push(member);
        }
    }
    owners
}

fn subscription<'a>(g: &'a Group, member_id: &str) -> &'a Subscription {
    g.members.iter().find(|m| m.member_id == member_id).unwrap()
}

/// The next generation after `g`'s highest.
fn next_generation(g: &Group) -> Generation {
    let highest = g.members.iter().filter_map(|m| m.generation).max();
    Generation(highest.map_or(1, |h| h.0 + 1))
}

/// `g` after a rebalance that assigned `a`: every member owns what it was given.
fn rebalanced(g: &Group, a: &GroupAssignment) -> Group {
    let generation = next_generation(g);
    let mut next = g.clone();
    for m in &mut next.members {
        m.owned_partitions = a[&m.member_id].clone();
        m.generation = Some(generation);
    }
    next
}

fn sticky(g: &Group) -> GroupAssignment {
    Assignor::CooperativeSticky.assign(&g.members, &g.partitions_per_topic)
}

/// Runs `cooperative-sticky` and its follow-up rebalance; returns the group as it then
/// stands and the settled assignment.
fn settle(g: &Group) -> (Group, GroupAssignment) {
    let first = sticky(g);
    let g1 = rebalanced(g, &first);
    let follow_up = sticky(&g1);
    (rebalanced(&g1, &follow_up), follow_up)
}

/// Checks that `a` gives every subscribed partition of `g` to exactly one member
/// subscribed to its topic.
fn assert_exactly_once_to_a_subscriber(
    g: &Group,
    a: &GroupAssignment,
) -> Result<(), TestCaseError> {
    let owners = owners(a);
    let assigned: BTreeSet<TopicPartition> = owners.keys().cloned().collect();
    prop_assert_eq!(&assigned, &subscribed_partitions(g));
    for (tp, members) in &owners {
        prop_assert_eq!(members.len(), 1, "{} given to {:?}", tp, members);
        prop_assert!(subscription(g, members[0]).topics.contains(&tp.topic));
    }
    Ok(())
}

/// Members grouped by identical subscription, each with its partition count.
fn counts_by_subscription(g: &Group, a: &GroupAssignment) -> Vec<Vec<usize>> {
    let mut by_topics: BTreeMap<&BTreeSet<String>, Vec<usize>> = BTreeMap::new();
    for m in &g.members {
        by_topics
            .entry(&m.topics)
            .or_default()
            .push(a[&m.member_id].len());
    }
    by_topics.into_values().collect()
}

/// Kafka's layout order for `range` and `roundrobin` (KIP-345), written out again here.
fn kafka_order(g: &Group) -> Vec<&Subscription> {
    let mut sorted: Vec<&Subscription> = g.members.iter().collect();
    sorted.sort_by_key(|m| {
        (
            m.group_instance_id.is_none(),
            m.group_instance_id.clone(),
            m.member_id.clone(),
        )
    });
    sorted
}

/// The fewest partitions that must change owner (counting those of departed members
/// and those nobody owned) to go from `before` to a balanced assignment of a group
/// whose members all subscribe to every topic: the members that own the most keep
/// the `n % m` larger shares.
fn minimum_moves(g: &Group, before: &GroupAssignment) -> usize {
    let n: usize = g.partitions_per_topic.values().map(|&c| c as usize).sum();
    let m = g.members.len();
    let (quota, with_extra) = (n / m, n % m);
    let mut owned: Vec<usize> = g
        .members
        .iter()
        .map(|s| before.get(&s.member_id).map_or(0, Vec::len))
        .collect();
    owned.sort_unstable_by(|a, b| b.cmp(a));
    let kept: usize = owned
        .iter()
        .enumerate()
        .map(|(i, &c)| c.min(quota + usize::from(i < with_extra)))
        .sum();
    n - kept
}

fn changed_owners(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    let (before, after) = (owners(before), owners(after));
    after
        .iter()
        .filter(|(tp, members)| before.get(*tp) != Some(members))
        .count()
}

proptest! {
    // The groups are small, so cases are cheap (about 0.1 ms each): 4096 per property
    // keeps the file near one second and reaches cases 256 would miss.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn range_and_roundrobin_assign_every_subscribed_partition_exactly_once_to_a_subscriber(g in group()) {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let a = assignor.assign(&g.members, &g.partitions_per_topic);
            assert_exactly_once_to_a_subscriber(&g, &a)?;
        }
    }

    /// The cooperative safety rule: a partition goes to at most one member, that member
    /// subscribes to its topic, and no other member claiming it in the current
    /// generation (the highest reported) may still hold it. Claims from older
    /// generations are stale: their holders are fenced by generation.
    #[test]
    fn cooperative_sticky_never_assigns_a_partition_another_current_member_still_owns(g in group()) {
        let a = sticky(&g);
        let current = g.members.iter().map(|m| m.generation).max().flatten();
        for (tp, members) in owners(&a) {
            prop_assert_eq!(members.len(), 1, "{} given to {:?}", tp, members);
            prop_assert!(subscription(&g, members[0]).topics.contains(&tp.topic));
            for other in &g.members {
                if other.member_id != members[0] && other.generation == current {
                    prop_assert!(!other.owned_partitions.contains(&tp),
                        "{} given to {} while {} owns it", tp, members[0], other.member_id);
                }
            }
        }
    }

    #[test]
    fn cooperative_sticky_assigns_every_partition_after_the_follow_up_rebalance(g in group()) {
        let (settled_group, settled) = settle(&g);
        assert_exactly_once_to_a_subscriber(&settled_group, &settled)?;
    }

    /// What Kafka's `RangeAssignor` promises: for each topic, its subscribers, laid out
    /// in Kafka's order, get counts that never increase along that order and differ by at
    /// most one. Across topics there is no promise beyond this: with identical
    /// subscriptions over `t` topics, members differ by at most `t`.
    #[test]
    fn range_balances_each_topic_within_one_with_the_extras_to_the_first_members(g in group()) {
        let a = Assignor::Range.assign(&g.members, &g.partitions_per_topic);
        for topic in g.partitions_per_topic.keys() {
            let counts: Vec<usize> = kafka_order(&g)
                .into_iter()
                .filter(|m| m.topics.contains(topic))
                .map(|m| a[&m.member_id].iter().filter(|tp| &tp.topic == topic).count())
                .collect();
            prop_assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{}: {:?}", topic, counts);
            if let (Some(first), Some(last)) = (counts.first(), counts.last()) {
                prop_assert!(first - last <= 1, "{}: {:?}", topic, counts);
            }
        }
    }

    #[test]
    fn range_with_identical_subscriptions_differs_by_at_most_the_topic_count(g in identical_group()) {
        let a = Assignor::Range.assign(&g.members, &g.partitions_per_topic);
        let counts: Vec<usize> = a.values().map(Vec::len).collect();
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        prop_assert!(spread <= g.partitions_per_topic.len(), "{:?}", counts);
    }

    #[test]
    fn roundrobin_with_identical_subscriptions_is_balanced_within_one(g in identical_group()) {
        let a = Assignor::RoundRobin.assign(&g.members, &g.partitions_per_topic);
        let counts: Vec<usize> = a.values().map(Vec::len).collect();
        prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
    }

    /// Once settled, members with the same subscription are within one of each other,
    /// and more: no partition could go to a subscriber of its topic that has two fewer
    /// partitions than its owner (Kafka's balance criterion for differing subscriptions).
    #[test]
    fn cooperative_sticky_settles_balanced_within_one_per_subscription(g in group()) {
        let (settled_group, settled) = settle(&g);
        for counts in counts_by_subscription(&settled_group, &settled) {
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
        }
        for (owner, partitions) in &settled {
            for tp in partitions {
                for other in &settled_group.members {
                    if other.topics.contains(&tp.topic) {
                        prop_assert!(settled[&other.member_id].len() + 1 >= partitions.len(),
                            "{} could move from {} to {}", tp, owner, other.member_id);
                    }
                }
            }
        }
    }

    /// The balance is the best the subscriptions allow: no chain of moves (each to a
    /// subscriber of the moved partition's topic) leads from a member to one with two
    /// fewer partitions. Checked here by reachability, independently of the assignor's
    /// own search.
    #[test]
    fn cooperative_sticky_settles_where_no_chain_of_moves_improves_balance(g in group()) {
        let (settled_group, settled) = settle(&g);
        let load = |m: &str| settled[m].len();
        for source in &settled_group.members {
            let mut reached: BTreeSet<&str> = BTreeSet::from([source.member_id.as_str()]);
            let mut frontier = vec![source.member_id.as_str()];
            while let Some(from) = frontier.pop() {
                for tp in &settled[from] {
                    for to in &settled_group.members {
                        if to.topics.contains(&tp.topic) && reached.insert(&to.member_id) {
                            frontier.push(&to.member_id);
                        }
                    }
                }
            }
            for to in reached {
                prop_assert!(load(to) + 1 >= load(&source.member_id),
                    "a chain of moves from {} to {} would balance better: {:?}",
                    source.member_id, to, settled);
            }
        }
    }

    #[test]
    fn cooperative_sticky_is_stable_once_settled(g in group()) {
        let (settled_group, settled) = settle(&g);
        prop_assert_eq!(sticky(&settled_group), settled);
    }

    /// A member joins a settled group of identical subscriptions: over the rebalance
    /// and its follow-up, exactly as many partitions change owner as balance requires,
    /// and the first rebalance only takes away, never hands over.
    #[test]
    fn cooperative_sticky_moves_the_minimum_when_a_member_joins(g in identical_group()) {
        let (mut g, before) = settle(&g);
        let topics = g.members[0].topics.clone();
        g.members.push(Subscription::new("new", topics));
        let first = sticky(&g);
        let before_owners = owners(&before);
        for (tp, members) in owners(&first) {
            prop_assert_eq!(before_owners.get(&tp), Some(&members), "{} handed over at once", tp);
        }
        let (_, after) = settle(&g);
        prop_assert_eq!(changed_owners(&before, &after), minimum_moves(&g, &before));
    }

    #[test]
    fn cooperative_sticky_moves_the_minimum_when_a_member_leaves(
        g in identical_group().prop_filter("two members", |g| g.members.len() >= 2),
        leaver in any::<prop::sample::Index>(),
    ) {
        let (mut g, before) = settle(&g);
        g.members.remove(leaver.index(g.members.len()));
        let after = sticky(&g);
        // The leaver's partitions are free: nothing waits for a follow-up.
        assert_exactly_once_to_a_subscriber(&g, &after)?;
        prop_assert_eq!(changed_owners(&before, &after), minimum_moves(&g, &before));
    }

    #[test]
    fn every_assignor_gives_the_same_assignment_whatever_the_member_order(
        (g, shuffled) in group().prop_flat_map(|g| {
            let members = g.members.clone();
            (Just(g), Just(members).prop_shuffle())
        })
    ) {
        for assignor in Assignor::ALL {
            prop_assert_eq!(
                assignor.assign(&g.members, &g.partitions_per_topic),
                assignor.assign(&shuffled, &g.partitions_per_topic),
                "{}", assignor.name()
            );
        }
    }

    #[test]
    fn select_protocol_picks_a_protocol_every_member_lists(
        prefs in prop::collection::vec(
            Just(Assignor::ALL.map(|a| a.name()).to_vec()).prop_shuffle()
                .prop_flat_map(|names| (1..=names.len()).prop_map(move |n| names[..n].to_vec())),
            1..=MEMBERS_MAX,
        )
    ) {
        match select_protocol(&prefs) {
            Some(chosen) => prop_assert!(prefs.iter().all(|p| p.contains(&chosen))),
            None => prop_assert!(Assignor::ALL
                .iter()
                .all(|a| prefs.iter().any(|p| !p.contains(&a.name())))),
        }
    }
}

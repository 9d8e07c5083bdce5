//! `roundrobin`, Kafka's `RoundRobinAssignor`: every partition of every subscribed topic,
//! sorted by topic then partition, is dealt in turn to the members in
//! `kafka_member_order`, skipping a member that does not subscribe to the partition's
//! topic. With identical subscriptions the counts differ by at most one; with differing
//! subscriptions the skips can leave the members far apart (the javadoc's second
//! example), which is what `cooperative-sticky` is for.

use std::collections::BTreeMap;

use super::{empty_assignment, kafka_member_order, GroupAssignment, Subscription};
use crate::types::TopicPartition;

pub(super) fn assign(
    members: &[Subscription],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> GroupAssignment {
    let mut assignment = empty_assignment(members);
    let mut sorted: Vec<&Subscription> = members.iter().collect();
    sorted.sort_by(|a, b| kafka_member_order(a, b));
    // The dealer's position, carried from one partition to the next across topics.
    let mut turn = 0usize;
    for (topic, &partition_count) in partitions_per_topic {
        if !sorted.iter().any(|m| m.topics.contains(topic)) {
            continue;
        }
        for partition in 0..partition_count {
            // Bounded: some member subscribes, so at most one lap finds it.
            let skips = (0..sorted.len())
                .find(|k| sorted[(turn + k) % sorted.len()].topics.contains(topic))
                .expect("some member subscribes to the topic");
            let member = sorted[(turn + skips) % sorted.len()];
            assignment
                .get_mut(&member.member_id)
                .expect("every member has an entry")
                .push(TopicPartition::new(topic.as_str(), partition));
            turn = (turn + skips + 1) % sorted.len();
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use crate::group::assignor::test_support::{topics, tps};
    use crate::group::{Assignor, Subscription};

    /// The first example of Kafka's `RoundRobinAssignor` javadoc.
    #[test]
    fn javadoc_example_two_members_two_topics_of_three() {
        let members = [
            Subscription::new("C0", ["t0", "t1"]),
            Subscription::new("C1", ["t0", "t1"]),
        ];
        let a = Assignor::RoundRobin.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(a["C0"], tps(&[("t0", 0), ("t0", 2), ("t1", 1)]));
        assert_eq!(a["C1"], tps(&[("t0", 1), ("t1", 0), ("t1", 2)]));
    }

    /// The javadoc's second example: differing subscriptions skip members and unbalance.
    #[test]
    fn javadoc_example_differing_subscriptions_skip_members() {
        let members = [
            Subscription::new("C0", ["t0"]),
            Subscription::new("C1", ["t0", "t1"]),
            Subscription::new("C2", ["t0", "t1", "t2"]),
        ];
        let a = Assignor::RoundRobin.assign(&members, &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(a["C0"], tps(&[("t0", 0)]));
        assert_eq!(a["C1"], tps(&[("t1", 0)]));
        assert_eq!(a["C2"], tps(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    /// Static members are dealt to in `group.instance.id` order, whatever their member ids.
    #[test]
    fn static_members_are_dealt_to_in_instance_id_order() {
        let members = [
            Subscription::new("m9", ["t"]).with_group_instance_id("I0"),
            Subscription::new("m1", ["t"]).with_group_instance_id("I1"),
        ];
        let a = Assignor::RoundRobin.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(a["m9"], tps(&[("t", 0), ("t", 2)]));
        assert_eq!(a["m1"], tps(&[("t", 1)]));
    }
}

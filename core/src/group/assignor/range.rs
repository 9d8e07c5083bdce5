//! `range`, Kafka's `RangeAssignor`: topic by topic, the partitions in numeric order are
//! cut into consecutive ranges, one per member subscribed to the topic, members in
//! `kafka_member_order`. With `n` partitions and `m` members each gets `n / m`, and the
//! first `n % m` get one more. Balance is per topic only: the same members get the extra
//! partition of every topic, so across `t` topics two members with the same
//! subscription can differ by up to `t` partitions.

use std::collections::BTreeMap;

use super::{empty_assignment, kafka_member_order, GroupAssignment, Subscription};
use crate::types::TopicPartition;

pub(super) fn assign(
    members: &[Subscription],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> GroupAssignment {
    let mut assignment = empty_assignment(members);
    for (topic, &partition_count) in partitions_per_topic {
        let mut subscribers: Vec<&Subscription> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_by(|a, b| kafka_member_order(a, b));
        let member_count = subscribers.len() as u32;
        let per_member = partition_count / member_count;
        let with_extra = partition_count % member_count;
        let mut next = 0;
        for (i, member) in (0u32..).zip(&subscribers) {
            let len = per_member + u32::from(i < with_extra);
            let partitions = &mut assignment
                .get_mut(&member.member_id)
                .expect("every member has an entry");
            partitions.extend((next..next + len).map(|p| TopicPartition::new(topic.as_str(), p)));
            next += len;
        }
        assert_eq!(next, partition_count, "the ranges cover the topic");
    }
    assignment
}

#[cfg(test)]
mod tests {
    use crate::group::assignor::test_support::{topics, tps};
    use crate::group::{Assignor, Subscription};

    /// The example of Kafka's `RangeAssignor` javadoc.
    #[test]
    fn javadoc_example_two_members_two_topics_of_three() {
        let members = [
            Subscription::new("C0", ["t0", "t1"]),
            Subscription::new("C1", ["t0", "t1"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(a["C0"], tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]));
        assert_eq!(a["C1"], tps(&[("t0", 2), ("t1", 2)]));
    }

    /// The javadoc's KIP-345 example: after a rolling bounce C0 comes back as C3 and C1
    /// as C2. By member id the ranges would swap; static members under I0 and I1 keep
    /// theirs.
    #[test]
    fn static_members_keep_their_ranges_across_new_member_ids() {
        let members = [
            Subscription::new("C3", ["t0", "t1"]).with_group_instance_id("I0"),
            Subscription::new("C2", ["t0", "t1"]).with_group_instance_id("I1"),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(a["C3"], tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]));
        assert_eq!(a["C2"], tps(&[("t0", 2), ("t1", 2)]));
    }

    #[test]
    fn members_beyond_the_partition_count_sit_idle() {
        let members = [
            Subscription::new("a", ["t"]),
            Subscription::new("b", ["t"]),
            Subscription::new("c", ["t"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t", 2)]));
        assert_eq!(a["a"], tps(&[("t", 0)]));
        assert_eq!(a["b"], tps(&[("t", 1)]));
        assert_eq!(a["c"], tps(&[]));
    }

    #[test]
    fn each_topic_is_split_among_its_own_subscribers_only() {
        let members = [
            Subscription::new("a", ["t0"]),
            Subscription::new("b", ["t0", "t1"]),
            Subscription::new("c", ["t1", "unknown"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t0", 3), ("t1", 4)]));
        assert_eq!(a["a"], tps(&[("t0", 0), ("t0", 1)]));
        assert_eq!(a["b"], tps(&[("t0", 2), ("t1", 0), ("t1", 1)]));
        assert_eq!(a["c"], tps(&[("t1", 2), ("t1", 3)]));
    }
}

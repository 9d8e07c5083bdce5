//! Partition leadership and ISRs: leader election when a leader is fenced, ISR shrink
//! when a member is fenced, the leader's own ISR changes (AlterPartition, KIP-497) and
//! preferred-leader election.
//!
//! The rules (KIP-841, KIP-903), each kept by [`Controller::reconcile`]:
//! - a fenced broker leaves every ISR, unless it is the last member: the last member
//!   stays, because it is the only broker known to hold every committed record, and the
//!   partition waits (offline) for it rather than lose them;
//! - a leader must be unfenced and at the incarnation it was elected at; otherwise the
//!   first unfenced ISR member in replica order is elected (clean election);
//! - with no such member the partition goes offline, unless unclean election is enabled
//!   for its topic: then the first unfenced replica leads, alone in the ISR, and the
//!   record says the election was unclean (acknowledged writes may be lost).

use crate::controller::active::Step;
use crate::controller::{
    Controller, ControllerReply, LeaderChange, MetadataImage, MetadataRecord, PartitionChange,
};
use crate::error::ErrorCode;
use crate::metadata::AlterPartition;
use crate::types::{NodeId, TopicPartition};

/// The topic config that overrides `unclean.leader.election.enable` for one topic.
pub(crate) const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

impl Controller {
    /// Reconciles every partition.
    pub(crate) fn reconcile_all(&self, step: &mut Step<'_>) {
        let tps: Vec<TopicPartition> = step
            .image()
            .partitions()
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            self.reconcile(step, &tp);
        }
    }

    /// Reconciles the partitions `broker` is a replica of.
    pub(crate) fn reconcile_hosted_by(&self, step: &mut Step<'_>, broker: NodeId) {
        let tps: Vec<TopicPartition> = step
            .image()
            .partitions()
            .filter(|(_, s)| s.replicas.contains(&broker))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            self.reconcile(step, &tp);
        }
    }

    /// Brings one partition in line with the brokers' standing (see the module docs),
    /// emitting a [`PartitionChange`] if anything moves.
    pub(crate) fn reconcile(&self, step: &mut Step<'_>, tp: &TopicPartition) {
        let image = step.image();
        let Some(state) = image.partition(tp) else {
            return;
        };
        let unfenced = |b: &NodeId| image.broker(*b).is_some_and(|r| !r.fenced);

        let mut isr: Vec<NodeId> = state.isr.iter().copied().filter(unfenced).collect();
        if isr.is_empty() {
            // KIP-841: the last member stays. When several go at once, keep the leader:
            // it holds everything any of them had.
            let keep = state
                .leader
                .filter(|l| state.isr.contains(l))
                .unwrap_or(state.isr[0]);
            isr = vec![keep];
        }

        let leader_holds = match (state.leader, state.leader_incarnation) {
            (Some(l), Some(i)) => image.is_eligible(l, i),
            _ => false,
        };
        let mut leader = None;
        if !leader_holds {
            let clean = state
                .replicas
                .iter()
                .find(|b| isr.contains(b) && unfenced(b));
            if let Some(&b) = clean {
                leader = Some(elected(image, b, false));
            } else if self.unclean_allowed(image, &tp.topic) {
                if let Some(&b) = state.replicas.iter().find(|b| unfenced(b)) {
                    leader = Some(elected(image, b, true));
                    isr = vec![b];
                }
            }
            if leader.is_none() && state.leader.is_some() {
                leader = Some(LeaderChange::Offline);
            }
        }
        let isr = (isr != state.isr).then_some(isr);
        if leader.is_some() || isr.is_some() {
            step.emit(MetadataRecord::PartitionChange(PartitionChange {
                partition: tp.clone(),
                leader,
                isr,
            }));
        }
    }

    fn unclean_allowed(&self, image: &MetadataImage, topic: &str) -> bool {
        image
            .topic(topic)
            .and_then(|t| t.configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
            .map_or(self.config.unclean_leader_election_enable, |v| {
                v.eq_ignore_ascii_case("true")
            })
    }

    /// A leader's ISR change (KIP-497), under the rules in this module's parent (`controller/mod.rs`).
    pub(crate) fn alter_partition(&self, step: &mut Step<'_>, request: AlterPartition) {
        let result = check_alter_partition(step.image(), &request).map(|change| {
            if let Some(change) = change {
                step.emit(MetadataRecord::PartitionChange(change));
            }
            step.image()
                .partition(&request.partition)
                .expect("checked above")
                .clone()
        });
        step.replies
            .push(ControllerReply::AlterPartition { request, result });
    }

    /// ElectLeaders with the preferred election type: each partition's first replica
    /// leads again, if it is an unfenced ISR member.
    pub(crate) fn elect_preferred_leaders(
        &self,
        step: &mut Step<'_>,
        partitions: Vec<TopicPartition>,
    ) {
        let mut results = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let image = step.image();
            let result = match image.partition(&tp) {
                None => Err(ErrorCode::UnknownTopicOrPartition),
                Some(state) => {
                    let preferred = state.replicas[0];
                    let eligible = state.isr.contains(&preferred)
                        && image.broker(preferred).is_some_and(|b| !b.fenced);
                    if state.leader == Some(preferred) {
                        Err(ErrorCode::ElectionNotNeeded)
                    } else if !eligible {
                        Err(ErrorCode::PreferredLeaderNotAvailable)
                    } else {
                        let leader = Some(elected(image, preferred, false));
                        step.emit(MetadataRecord::PartitionChange(PartitionChange {
                            partition: tp.clone(),
                            leader,
                            isr: None,
                        }));
                        Ok(())
                    }
                }
            };
            results.push((tp, result));
        }
        step.replies.push(ControllerReply::ElectLeaders { results });
    }
}

fn elected(image: &MetadataImage, broker: NodeId, unclean: bool) -> LeaderChange {
    let incarnation = image
        .broker(broker)
        .expect("only registered brokers are elected")
        .incarnation;
    LeaderChange::Elected {
        leader: broker,
        incarnation,
        unclean,
    }
}

/// The change an AlterPartition asks for (`None`: the ISR it asks for is the current
/// one), or the Kafka error that refuses it.
fn check_alter_partition(
    image: &MetadataImage,
    req: &AlterPartition,
) -> Result<Option<PartitionChange>, ErrorCode> {
    let state = image
        .partition(&req.partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    // The leader must be the current one, at the incarnation it was elected at: a leader
    // that restarted since lost its standing with it.
    let leader_current = state.leader == Some(req.leader)
        && state
            .leader_incarnation
            .is_some_and(|i| image.is_eligible(req.leader, i));
    if !leader_current {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    if req.leader_epoch != state.leader_epoch {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    if req.partition_epoch != state.partition_epoch {
        return Err(ErrorCode::InvalidUpdateVersion);
    }
    let duplicated = req
        .new_isr
        .iter()
        .enumerate()
        .any(|(i, b)| req.new_isr[..i].contains(b));
    if !req.new_isr.contains(&req.leader)
        || duplicated
        || req.new_isr.iter().any(|r| !state.replicas.contains(r))
    {
        return Err(ErrorCode::InvalidRequest);
    }
    // A joining member must be unfenced (KIP-841) and at the incarnation the leader saw
    // it fetch at (KIP-903): one that restarted since may have lost what it fetched.
    let ineligible = req
        .new_isr
        .iter()
        .filter(|r| !state.isr.contains(r))
        .any(|r| {
            let seen = req.added.iter().find(|(n, _)| n == r).map(|&(_, i)| i);
            !seen.is_some_and(|i| image.is_eligible(*r, i))
        });
    if ineligible {
        return Err(ErrorCode::IneligibleReplica);
    }
    if req.new_isr == state.isr {
        return Ok(None);
    }
    Ok(Some(PartitionChange {
        partition: req.partition.clone(),
        leader: None,
        isr: Some(req.new_isr.clone()),
    }))
}

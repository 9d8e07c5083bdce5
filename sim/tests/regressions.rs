//! Seeds that once failed, each frozen as a test with a one-line postmortem (in the
//! manner of sled's regression file). The event stream of a seed shifts as the code
//! changes, so a seed here may no longer walk the exact path that failed; it stays as a
//! run that must pass, next to the story of what broke.

use std::path::Path;

use eddy_sim::{run, Scenario};

fn assert_passes(name: &str, seed: u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    let scenario = Scenario::from_file(&path).expect("shipped scenarios parse");
    // Most seeds below were found with the simulator's former stand-in controller (one
    // process outside the brokers, removed since). They replay with the metadata quorum:
    // a different event stream, so there the seed is one more run that must pass.
    let report = run(&scenario, seed, None).expect("runs");
    assert!(
        report.passed(),
        "{name} seed {seed} failed again: {:#?}\nREPRODUCE WITH: eddy sim --scenario scenarios/{name}.toml --seed {seed}",
        report.violations
    );
}

/// A producer's retry landed at the same offsets in a later leader epoch; the checkers'
/// model named batches without their epoch, so the follower truncating the old copy
/// looked like a committed batch being cut. Fix: the epoch is part of a batch's identity.
#[test]
fn slow_disk_28_retry_at_same_offsets_in_a_new_epoch() {
    assert_passes("slow-disk", 28);
}

/// A follower reported an offset and then crashed before the leader acknowledged; the
/// ack check counted live copies only and called a correct ack premature. Fix: copies a
/// broker lost in a crash still count for the ack they justified.
#[test]
fn slow_disk_64_follower_crashed_between_fetch_and_ack() {
    assert_passes("slow-disk", 64);
}

/// After every broker crashed, the log no longer held an idempotent producer's last
/// batches; it answered OUT_OF_ORDER_SEQUENCE_NUMBER and the producer stopped for good.
/// Fix: bump the producer epoch and restart sequences (KIP-360).
#[test]
fn all_crash_unsynced_1_producer_sequence_lost_with_the_log() {
    assert_passes("all-crash-unsynced", 1);
}

/// A follower's lost fetch was retried only after Kafka's 30 s replica.socket.timeout.ms,
/// past the liveness bound. Fix: the key is configurable and the lossy scenarios set it.
#[test]
fn flapping_partition_12_lost_fetch_waits_out_the_socket_timeout() {
    assert_passes("flapping-partition", 12);
}

/// Iterating OffsetForLeaderEpoch (KIP-279) asked forever about an empty epoch at the
/// log end that truncation never removed. Fix: truncation forgets empty epochs.
#[test]
fn flapping_partition_1_offset_for_leader_epoch_loop_on_an_empty_epoch() {
    assert_passes("flapping-partition", 1);
}

/// A non-idempotent acks=1 retry left the same batch at two offsets; one copy was
/// committed, the acknowledged one was not, and the checker judged by batch id. Fix:
/// judge a write at the offset its producer was told.
#[test]
fn flapping_partition_75_acks1_judged_at_its_acknowledged_offset() {
    assert_passes("flapping-partition", 75);
}

/// The only ISR member crashed unsynced and came back as leader without the data while
/// a follower outside the ISR still had it. Kafka promises only ISR copies (KIP-966
/// exists for this case); the model now counts ISR copies only.
#[test]
fn chaos_510_last_isr_member_restarts_without_the_data() {
    assert_passes("chaos", 510);
}

/// An idempotent producer that bumped its epoch resent a batch whose earlier attempt
/// was already in the log: a duplicate. Fix: fail that batch instead (KIP-360).
#[test]
fn chaos_66_resend_under_a_new_producer_epoch_duplicates() {
    assert_passes("chaos", 66);
}

/// Committed data was lost (allowed) and rewritten below a reader's position; the
/// reader, validating as KIP-320 does, never saw the new data there. Fix: consumers
/// validate their position after leader changes, and liveness does not ask for data
/// in a rewritten range.
#[test]
fn chaos_1859_reader_passed_a_rewritten_range() {
    assert_passes("chaos", 1859);
}

/// The controller fenced an isolated leader while the only other ISR member had crashed
/// but was not yet fenced; that member came back without the data and led. Kafka's
/// promise ("one in-sync replica alive") was void from the ISR change on; the model now
/// re-judges what may be lost whenever the ISR changes, not only on crashes.
#[test]
fn chaos_20546_isr_shrinks_to_a_crashed_member() {
    assert_passes("chaos", 20546);
}

/// Two replicas restarted at once; the controller, not yet told of one restart, elected
/// that broker on its old standing. The new process, which had lost the committed batch,
/// led, and the one live ISR member truncated the batch to follow it. Fix: a partition
/// state names the leader's incarnation, and a broker that restarted since takes no role
/// on it (KRaft's broker epochs).
#[test]
fn chaos_61014_restarted_broker_led_on_its_previous_incarnation() {
    assert_passes("chaos", 61014);
}

/// With brokers following their own metadata images: n1 came back from a long pause
/// with an image (a snapshot delivered late) that still had it leading events-2 at
/// leader epoch 1, and n3, whose image lacked the entry that moved leadership to n2 at
/// epoch 2 (n2 paused before announcing its commit), followed n1 and truncated a batch
/// n2 had committed. Change: brokers follow their own images only the KRaft way — the
/// heartbeat carries the broker's metadata offset, the controller unfences it once that
/// reaches its registration, and the broker acts on its image only after that answer
/// (checker broker-image-unfenced). The seed's event stream changed with it; note that
/// a replica outside the ISR following a deposed leader from a lagging image is not
/// excluded by that rule (see the report on issue 3).
#[test]
fn clock_skew_182_broker_followed_a_deposed_leader_from_a_lagging_image() {
    assert_passes("clock-skew", 182);
}

/// A restarted follower's first fetch reached the new leader before the leader had
/// learned its new leader epoch; the leader answered at its old epoch and the follower
/// ignored the answer as "from another epoch", leaving the fetch in flight until
/// replica.socket.timeout.ms (30 s): it never rejoined the ISR in time and acks=all
/// writes stalled. Found with the metadata quorum, whose notifications reach replicas
/// at different times. Fix: an answer to the fetch in flight ends it, whatever epoch it
/// names; the follower retries after replica.fetch.backoff.ms. (The event stream has
/// changed since, so this seed no longer walks that path; it stays as a run that must
/// pass.)
#[test]
fn topic_creation_under_faults_745_fetch_answered_at_the_leaders_old_epoch() {
    assert_passes("topic-creation-under-faults", 745);
}

/// Runs a seed of a consumer-group scenario with the controller it ships with (group
/// seeds were found with the metadata quorum; the stand-in has no say in them).
fn assert_group_passes(name: &str, seed: u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    let scenario = Scenario::from_file(&path).expect("shipped scenarios parse");
    let report = run(&scenario, seed, None).expect("runs");
    assert!(
        report.passed(),
        "{name} seed {seed} failed again: {:#?}\nREPRODUCE WITH: eddy sim --scenario scenarios/{name}.toml --seed {seed}",
        report.violations
    );
}

/// The group leader's SyncGroup died with its coordinator after the append that made
/// its generation Stable; it rejoined reporting the older generation its partitions
/// were assigned in, KIP-792's rule in cooperative-sticky dropped its claims in favour
/// of a member of the newer generation, and two members owned one partition for 13 ms.
/// Fix (the simulated client): report the generation last joined, as Java's
/// ConsumerCoordinator does.
#[test]
fn group_coordinator_crash_during_rebalance_14_leader_reported_its_assignment_generation() {
    assert_group_passes("group-coordinator-crash-during-rebalance", 14);
}

/// The last in-sync replica of `__consumer_offsets-0` crashed before syncing and came
/// back as its leader with an empty log (Kafka's promise without sync-before-ack): the
/// groups' committed offsets vanished and OffsetFetch answered "none". The checker
/// called that a commit going backwards. Fix (the checker): committed offsets lost with
/// every unsynced copy are excused and counted, as for records.
#[test]
fn group_coordinator_crash_during_rebalance_488_offsets_lost_with_every_unsynced_copy() {
    assert_group_passes("group-coordinator-crash-during-rebalance", 488);
}

/// The same loss in part: OffsetFetch returned an older committed offset than one
/// acknowledged before the crash.
#[test]
fn group_coordinator_crash_during_rebalance_652_older_offset_after_unsynced_loss() {
    assert_group_passes("group-coordinator-crash-during-rebalance", 652);
}

// The group-coordinator-faults seeds below were found while the scenario ran at
// network loss 0.01; it now runs at 0.003 (more records get through), so they replay
// other paths and stay as runs that must pass.

/// A data partition lost its committed tail with every unsynced copy; a member's
/// position was past the new log end, it reset to the earliest offset (OFFSET_OUT_OF_RANGE,
/// `auto.offset.reset`) and committed lower offsets from there. The checker called that
/// a commit going backwards. Fix (the checker): commits start over after an explicit
/// reset.
#[test]
fn group_coordinator_faults_44_commits_start_over_after_a_reset() {
    assert_group_passes("group-coordinator-faults", 44);
}

/// A partition's committed tail was lost with every unsynced copy and no leader wrote
/// over those offsets before the end; the checker still expected the group to process
/// the lost batches. Fix (the checker): data the model says may be lost is excused.
#[test]
fn group_coordinator_faults_259_lost_tail_never_rewritten() {
    assert_group_passes("group-coordinator-faults", 259);
}

/// `__consumer_offsets-0` lost its tail with every unsynced copy; the new coordinator
/// loaded the group at generation 1, where one static member owned every partition,
/// and that member, rejoining under its instance id, got them all while another member
/// still owned one. Fix (the checker): an overlap after such a loss and a generation
/// going back is Kafka's promise without sync-before-ack, not a coordinator bug.
#[test]
fn group_coordinator_faults_315_group_loaded_at_an_older_generation() {
    assert_group_passes("group-coordinator-faults", 315);
}

/// Found when brokers first followed their own metadata images (before the admin client
/// went over the network, which moved the event stream on): a broker resumed from a long
/// pause as the leader of the group's `__consumer_offsets` partition in its stale image
/// and, for the few milliseconds before its image caught up, acked a member's heartbeat
/// as a zombie coordinator; the member counted its session from that ack, while the real
/// coordinator, which had loaded the group during the pause, expired it and gave its
/// partition to another member. KRaft brokers have the same window: the checker now
/// excuses an overlap carried only by a zombie coordinator's renewal (members record
/// which coordinator accepted each request). Stays as a run that must pass.
#[test]
fn group_chaos_842_zombie_coordinator_after_a_pause_acked_a_heartbeat() {
    assert_group_passes("group-chaos", 842);
}

/// The same zombie-coordinator window as seed 842, in group b (static members): the
/// paused broker acked member 6's heartbeat as it resumed.
#[test]
fn group_chaos_731_zombie_coordinator_after_a_pause_acked_a_heartbeat() {
    assert_group_passes("group-chaos", 731);
}

/// group-chaos seed 1958 (found by a 4,000-seed sweep, 2026-12-01): generation 4 of
/// group a was joined at 9.1 s but never stored (its SyncGroup did not complete before
/// the coordinator moved), so the group came back at generation 2 and rebalanced to 3
/// and then 4 again. Members that had joined the lost generation 4 reported it in their
/// subscriptions; the cooperative-sticky assignor, as Java's `AbstractStickyAssignor`
/// does, dropped the claim of the member at generation 3 and gave its partition to
/// another member at once: 12 ms of overlap. Kafka has the same window; the checker now
/// excuses overlaps after a member joins a generation no higher than one it joined
/// before with a new offsets-partition leader in between.
#[test]
fn group_chaos_1958_a_generation_reused_after_the_coordinator_moved() {
    assert_group_passes("group-chaos", 1958);
}

/// group-chaos seed 5704 (found by a 2,000-seed sweep, 2026-12-01): a member processed a
/// fetch of t-0 and, in the same millisecond, took the SyncGroup answer that revoked
/// t-0, reporting its ownership ended at that millisecond. The checker's half-open
/// interval made the processing look unowned. Processing observed while the interval
/// was still open counts as owned now (and processing after the revocation was
/// observed, in the same millisecond, still fails; see the checker's tests).
#[test]
fn group_chaos_5704_processing_in_the_millisecond_of_a_revocation() {
    assert_group_passes("group-chaos", 5704);
}

//! The messages Raft voters exchange (Raft §5, thesis §9.6 for pre-vote). Eddy's own, not
//! KRaft's wire format: the shell decides how they travel. Every message carries the
//! sender's term, so that a stale leader or candidate learns it is stale.

use crate::quorum::{Entry, LogId, LogIndex, Snapshot, Term};

/// Where a follower's log diverged from an AppendEntries, so the leader can skip back
/// over a whole term at once instead of one entry per round trip (thesis §5.4.1's
/// optimisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConflictHint {
    /// The follower's term at the rejected `prev_log.index`, or `None` when its log is
    /// shorter than that.
    pub term: Option<Term>,
    /// The first index the follower holds with `term`, or its last index + 1 when
    /// `term` is `None`.
    pub index: LogIndex,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftMessage {
    /// A candidate asks for a vote. With `pre_vote`, it asks whether it *could* win
    /// `term` (its own term + 1) without having moved to that term: receivers do not
    /// change their term or their vote for it.
    RequestVote {
        term: Term,
        pre_vote: bool,
        last_log: LogId,
    },
    /// The answer. A granted pre-vote echoes the term it was asked for; a refusal carries
    /// the receiver's own term.
    RequestVoteResponse {
        term: Term,
        pre_vote: bool,
        granted: bool,
    },
    /// The leader replicates `entries`, which follow `prev_log` in its log, and says how
    /// far it has committed.
    AppendEntries {
        term: Term,
        prev_log: LogId,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    /// Success: the follower's log matches the leader's up to `appended_index`, of which
    /// `match_index` is durable (what the leader may count toward commitment).
    AppendEntriesSuccess {
        term: Term,
        appended_index: LogIndex,
        match_index: LogIndex,
    },
    /// Failure: the follower does not have `rejected_prev` (or has it with another term).
    AppendEntriesConflict {
        term: Term,
        rejected_prev: LogIndex,
        hint: ConflictHint,
    },
    /// The leader is alive, and has committed `commit` as far as it knows this follower
    /// matches it (never beyond the follower's durable match, so the follower holds it).
    Heartbeat { term: Term, commit: LogIndex },
    /// Also the answer to any leader message from an older term: the stale leader sees
    /// the higher term and steps down.
    HeartbeatResponse { term: Term },
    /// The entries the follower needs were compacted away: here is the snapshot instead.
    InstallSnapshot { term: Term, snapshot: Snapshot },
    /// Sent once the snapshot is durable (or at once, when the follower had already
    /// committed past it): the follower durably holds everything up to `last_index`.
    InstallSnapshotResponse { term: Term, last_index: LogIndex },
    /// An observer that knows no live leader asks every voter to replicate the log to it.
    /// KRaft's observers fetch from the leader; Eddy's leaders push, so a leader must
    /// learn of an observer it was not configured with (a broker-only node that joined,
    /// or any observer after the leader restarted). `term` is the observer's: it never
    /// moves a voter's term.
    Observe { term: Term },
}

impl RaftMessage {
    pub fn term(&self) -> Term {
        match self {
            RaftMessage::RequestVote { term, .. }
            | RaftMessage::RequestVoteResponse { term, .. }
            | RaftMessage::AppendEntries { term, .. }
            | RaftMessage::AppendEntriesSuccess { term, .. }
            | RaftMessage::AppendEntriesConflict { term, .. }
            | RaftMessage::Heartbeat { term, .. }
            | RaftMessage::HeartbeatResponse { term }
            | RaftMessage::InstallSnapshot { term, .. }
            | RaftMessage::InstallSnapshotResponse { term, .. }
            | RaftMessage::Observe { term } => *term,
        }
    }

    /// Messages only a leader sends: receiving one in a term establishes who leads it.
    pub(crate) fn is_from_leader(&self) -> bool {
        matches!(
            self,
            RaftMessage::AppendEntries { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::InstallSnapshot { .. }
        )
    }
}

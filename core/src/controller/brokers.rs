//! Broker lifecycle (KIP-631): registration, heartbeats, sessions and fencing.
//!
//! A broker registers at each start with a higher incarnation (KRaft's broker epoch) and
//! starts fenced. It heartbeats with the metadata offset its image has reached; once that
//! offset reaches the entry that registered it (KRaft's
//! `currentMetadataOffset >= registerBrokerRecordOffset`), it is unfenced and may lead and
//! join ISRs: its image then knows this incarnation's standing, so nothing it acts on
//! comes from before its restart. A broker silent for longer than
//! `broker.session.timeout.ms` is fenced again. A new registration fences the old
//! incarnation at once: the broker restarted and may have lost unsynced data, so its old
//! ISR memberships and leaderships are void (KIP-903).
//!
//! Fencing and unfencing here only write the broker records; what they mean for
//! partitions is worked out by `partitions.rs` on the image with them applied.

use crate::controller::active::{Session, Step};
use crate::controller::{
    Controller, ControllerReply, HeartbeatState, MetadataImage, MetadataRecord,
};
use crate::error::ErrorCode;
use crate::types::{NodeId, TimeMs};

/// The most listeners one broker may register: a handful is normal (one per security
/// protocol or network); the bound keeps a broken peer from bloating every image.
pub const MAX_LISTENERS: usize = 16;
/// The longest listener or rack string accepted, in bytes.
pub const MAX_REGISTRATION_STRING_BYTES: usize = 1_024;

impl Controller {
    pub(crate) fn register(
        &mut self,
        now_ms: TimeMs,
        step: &mut Step<'_>,
        broker: NodeId,
        incarnation: u64,
        listeners: Vec<String>,
        rack: Option<String>,
    ) {
        let oversized = listeners.len() > MAX_LISTENERS
            || listeners
                .iter()
                .chain(rack.as_ref())
                .any(|s| s.len() > MAX_REGISTRATION_STRING_BYTES);
        let result = match step.image().broker(broker) {
            _ if oversized => Err(ErrorCode::InvalidRequest),
            // A retry of the registration that got us here: nothing new.
            Some(b) if b.incarnation == incarnation => Ok(()),
            // A registration that was overtaken by a later one (a delayed request of a
            // previous run): refusing it keeps it from fencing the live incarnation.
            Some(b) if b.incarnation > incarnation => Err(ErrorCode::StaleBrokerEpoch),
            _ => {
                step.emit(MetadataRecord::RegisterBroker {
                    broker,
                    incarnation,
                    listeners,
                    rack,
                });
                self.sessions.insert(
                    broker,
                    Session {
                        incarnation,
                        last_heartbeat_ms: now_ms,
                    },
                );
                // The old incarnation's leaderships and ISR memberships go.
                self.reconcile_hosted_by(step, broker);
                Ok(())
            }
        };
        step.replies.push(ControllerReply::BrokerRegistration {
            broker,
            incarnation,
            result,
        });
    }

    pub(crate) fn heartbeat(
        &mut self,
        now_ms: TimeMs,
        step: &mut Step<'_>,
        broker: NodeId,
        incarnation: u64,
        metadata_offset: u64,
    ) {
        let result = match step.image().broker(broker) {
            None => Err(ErrorCode::BrokerIdNotRegistered),
            // An older incarnation (a heartbeat in flight across a restart), or a newer
            // one that has not registered: either way not the registered broker.
            Some(b) if b.incarnation != incarnation => Err(ErrorCode::StaleBrokerEpoch),
            Some(b) => {
                let fenced = b.fenced;
                self.sessions.insert(
                    broker,
                    Session {
                        incarnation,
                        last_heartbeat_ms: now_ms,
                    },
                );
                let shutting_down = self.shutting_down.contains(&(broker, incarnation));
                let caught_up =
                    self.registered_at
                        .get(&broker)
                        .is_some_and(|&(registered, index)| {
                            registered == incarnation && metadata_offset >= index
                        });
                if fenced && caught_up && !shutting_down {
                    step.emit(MetadataRecord::UnfenceBroker {
                        broker,
                        incarnation,
                    });
                    // Offline partitions it may lead come back (KIP-841: it is their last
                    // ISR member, at the incarnation it has now).
                    self.reconcile_hosted_by(step, broker);
                }
                Ok(HeartbeatState {
                    fenced: fenced && (!caught_up || shutting_down),
                })
            }
        };
        step.replies.push(ControllerReply::BrokerHeartbeat {
            broker,
            incarnation,
            result,
        });
    }

    /// Fences a broker that is stopping on purpose, so leadership moves before it goes.
    pub(crate) fn controlled_shutdown(
        &mut self,
        step: &mut Step<'_>,
        broker: NodeId,
        incarnation: u64,
    ) {
        let result = match step.image().broker(broker) {
            None => Err(ErrorCode::BrokerIdNotRegistered),
            Some(b) if b.incarnation != incarnation => Err(ErrorCode::StaleBrokerEpoch),
            Some(b) => {
                self.shutting_down.retain(|(id, _)| *id != broker);
                self.shutting_down.insert((broker, incarnation));
                if !b.fenced {
                    step.emit(MetadataRecord::FenceBroker {
                        broker,
                        incarnation,
                    });
                    self.reconcile_hosted_by(step, broker);
                }
                Ok(())
            }
        };
        step.replies.push(ControllerReply::ControlledShutdown {
            broker,
            incarnation,
            result,
        });
    }

    pub(crate) fn unregister(&mut self, step: &mut Step<'_>, broker: NodeId) {
        let result = match step.image().broker(broker) {
            None => Err(ErrorCode::BrokerIdNotRegistered),
            Some(b) => {
                let incarnation = b.incarnation;
                step.emit(MetadataRecord::UnregisterBroker {
                    broker,
                    incarnation,
                });
                self.sessions.remove(&broker);
                self.registered_at.remove(&broker);
                self.reconcile_hosted_by(step, broker);
                Ok(())
            }
        };
        step.replies
            .push(ControllerReply::UnregisterBroker { broker, result });
    }

    /// Fences every unfenced broker not heard from within the session timeout. The
    /// partitions are reconciled by the caller.
    pub(crate) fn expire_sessions(&mut self, now_ms: TimeMs, step: &mut Step<'_>) {
        self.sync_sessions(now_ms, step.image());
        let timeout_ms = self.config.broker_session_timeout_ms;
        let expired: Vec<(NodeId, u64)> = step
            .image()
            .brokers()
            .filter(|(id, b)| {
                let session = self.sessions[id];
                !b.fenced && now_ms.saturating_sub(session.last_heartbeat_ms) > timeout_ms
            })
            .map(|(id, b)| (id, b.incarnation))
            .collect();
        for (broker, incarnation) in expired {
            step.emit(MetadataRecord::FenceBroker {
                broker,
                incarnation,
            });
        }
    }

    /// One session per registered broker, at its registered incarnation. A broker this
    /// controller has no session for (it just became active, or the registration came
    /// from a predecessor's pending records) starts one now.
    pub(crate) fn sync_sessions(&mut self, now_ms: TimeMs, image: &MetadataImage) {
        self.sessions.retain(|id, _| image.broker(*id).is_some());
        for (id, b) in image.brokers() {
            let fresh = Session {
                incarnation: b.incarnation,
                last_heartbeat_ms: now_ms,
            };
            let session = self.sessions.entry(id).or_insert(fresh);
            if session.incarnation != b.incarnation {
                *session = fresh;
            }
        }
    }
}

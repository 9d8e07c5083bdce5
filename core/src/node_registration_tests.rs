//! The node's side of KIP-631: it registers on start, heartbeats only once registered,
//! and registers again when the controller answers that it does not know it.

use super::*;
use crate::controller::HeartbeatState;

const INCARNATION: u64 = 7;

fn node() -> Node {
    Node::new(NodeId(1), INCARNATION, NodeConfig::default(), Vec::new())
}

/// The requests to the controller a tick at `now_ms` sends.
fn tick(node: &mut Node, now_ms: TimeMs) -> Vec<ControllerRequest> {
    node.handle(now_ms, Input::Tick)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Controller(req) => Some(req),
            _ => None,
        })
        .collect()
}

fn register() -> ControllerRequest {
    ControllerRequest::Register {
        broker: NodeId(1),
        incarnation: INCARNATION,
        listeners: vec!["PLAINTEXT://b1:9092".into()],
        rack: Some("r1".into()),
    }
}

fn heartbeat() -> ControllerRequest {
    ControllerRequest::Heartbeat {
        broker: NodeId(1),
        incarnation: INCARNATION,
        metadata_offset: 0,
    }
}

fn registered(node: &mut Node, now_ms: TimeMs, incarnation: u64) {
    let msg = ControllerMessage::RegistrationResponse {
        incarnation,
        result: Ok(()),
    };
    node.handle(now_ms, Input::Controller(msg));
}

fn started() -> Node {
    let mut node = node();
    node.set_registration(vec!["PLAINTEXT://b1:9092".into()], Some("r1".into()));
    node
}

#[test]
fn a_starting_node_registers_and_retries_until_answered() {
    let mut node = started();
    assert_eq!(tick(&mut node, 0), vec![register()]);
    assert_eq!(tick(&mut node, 1_000), vec![]);
    // No answer within the heartbeat interval: the registration goes again.
    assert_eq!(tick(&mut node, 2_000), vec![register()]);
    assert!(!node.is_registered());
}

#[test]
fn a_registered_node_heartbeats_at_once_and_then_every_interval() {
    let mut node = started();
    tick(&mut node, 0);
    registered(&mut node, 500, INCARNATION);
    assert!(node.is_registered());
    assert_eq!(tick(&mut node, 510), vec![heartbeat()]);
    assert_eq!(tick(&mut node, 1_000), vec![]);
    assert_eq!(tick(&mut node, 2_510), vec![heartbeat()]);
}

#[test]
fn an_answer_to_another_incarnation_is_ignored() {
    let mut node = started();
    tick(&mut node, 0);
    registered(&mut node, 500, INCARNATION - 1);
    assert!(!node.is_registered());
    assert_eq!(tick(&mut node, 2_000), vec![register()]);
}

#[test]
fn a_heartbeat_the_controller_does_not_know_makes_the_node_register_again() {
    for error in [
        ErrorCode::BrokerIdNotRegistered,
        ErrorCode::StaleBrokerEpoch,
    ] {
        let mut node = started();
        tick(&mut node, 0);
        registered(&mut node, 500, INCARNATION);
        assert_eq!(tick(&mut node, 510), vec![heartbeat()]);
        let msg = ControllerMessage::HeartbeatResponse {
            incarnation: INCARNATION,
            result: Err(error),
        };
        node.handle(600, Input::Controller(msg));
        assert!(!node.is_registered(), "{error:?}");
        assert_eq!(tick(&mut node, 610), vec![register()], "{error:?}");
    }
}

#[test]
fn a_fenced_heartbeat_answer_keeps_the_node_registered() {
    let mut node = started();
    tick(&mut node, 0);
    registered(&mut node, 500, INCARNATION);
    let msg = ControllerMessage::HeartbeatResponse {
        incarnation: INCARNATION,
        result: Ok(HeartbeatState { fenced: true }),
    };
    node.handle(600, Input::Controller(msg));
    assert!(node.is_registered());
    assert_eq!(tick(&mut node, 2_510), vec![heartbeat()]);
}

/// KIP-631: the heartbeat reports how far the broker's metadata image has got, and the
/// node counts itself caught up only once the controller answered one unfenced (an
/// answer to another incarnation, or a fenced one, does not count).
#[test]
fn heartbeats_carry_the_metadata_offset_and_an_unfenced_answer_marks_the_node_caught_up() {
    let mut node = started();
    tick(&mut node, 0);
    registered(&mut node, 500, INCARNATION);
    node.set_metadata_offset(41);
    node.set_metadata_offset(40);
    let with_offset = ControllerRequest::Heartbeat {
        broker: NodeId(1),
        incarnation: INCARNATION,
        metadata_offset: 41,
    };
    assert_eq!(tick(&mut node, 510), vec![with_offset]);
    assert!(!node.is_caught_up());
    for (incarnation, fenced) in [(INCARNATION, true), (INCARNATION - 1, false)] {
        let msg = ControllerMessage::HeartbeatResponse {
            incarnation,
            result: Ok(HeartbeatState { fenced }),
        };
        node.handle(600, Input::Controller(msg));
        assert!(!node.is_caught_up(), "{incarnation} {fenced}");
    }
    let msg = ControllerMessage::HeartbeatResponse {
        incarnation: INCARNATION,
        result: Ok(HeartbeatState { fenced: false }),
    };
    node.handle(700, Input::Controller(msg));
    assert!(node.is_caught_up());
}

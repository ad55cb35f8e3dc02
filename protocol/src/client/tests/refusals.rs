//! Refusal close codes (4001, 4003), going offline and online, the heartbeat timeout, and a
//! heartbeat on the page becoming visible.

use super::{Client, config, ms};
use crate::client::{Action, ConnectionState, Event};

/// Closes the transport with `code`, returns the events that caused.
fn closed_with(c: &mut Client, code: u16) -> Vec<Event> {
    c.session.handle_close(c.now, Some(code));
    c.events()
}

#[test]
fn forbidden_stops_reconnecting_until_connect() {
    let mut c = Client::quiet();
    c.open();
    c.drain();
    let events = closed_with(&mut c, 4003);
    assert_eq!(
        events,
        [
            Event::Refused { code: 4003 },
            Event::Close { code: Some(4003) }
        ]
    );
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
    assert_eq!(c.session.poll_timeout(), None, "no reconnect is scheduled");
    c.advance(60_000);
    assert_eq!(c.actions(), []);

    // A later connect starts again.
    c.session.connect(c.now);
    assert_eq!(c.actions(), [Action::Connect]);
}

#[test]
fn unauthorized_reconnects_at_once_then_refuses_a_second_time() {
    let mut c = Client::quiet();
    c.open();
    c.drain();
    assert_eq!(
        closed_with(&mut c, 4001),
        [Event::Close { code: Some(4001) }]
    );
    assert_eq!(
        c.next_timeout_in(),
        Some(0),
        "at once, not after the backoff"
    );
    c.advance(0);
    assert_eq!(
        c.actions(),
        [Action::Connect],
        "the driver evaluates the token afresh"
    );
    c.session.handle_open(c.now);
    c.drain();
    // Refused again before anything proved the new connection.
    let events = closed_with(&mut c, 4001);
    assert_eq!(events[0], Event::Refused { code: 4001 });
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
    assert_eq!(c.session.poll_timeout(), None);
}

#[test]
fn unauthorized_after_a_channel_joined_reconnects_at_once_again() {
    let mut c = Client::quiet();
    c.open();
    c.joined("room:a");
    closed_with(&mut c, 4001);
    c.advance(0);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session.handle_open(c.now);
    // A join is accepted: the connection proved itself, so a token that expires later gets
    // the immediate reconnect again.
    c.joined("room:b");
    let events = closed_with(&mut c, 4001);
    assert!(!events.iter().any(|e| matches!(e, Event::Refused { .. })));
    assert_eq!(c.next_timeout_in(), Some(0));
}

#[test]
fn a_refusal_while_connecting_refuses_too() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    c.drain();
    // The server accepted the upgrade and closed at once: no open was reported.
    let events = closed_with(&mut c, 4003);
    assert_eq!(events[0], Event::Refused { code: 4003 });
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
}

#[test]
fn offline_closes_at_once_and_online_reconnects_at_once() {
    let mut c = Client::quiet();
    c.open();
    c.joined("room:a");
    c.session.handle_online(false, c.now);
    assert_eq!(
        c.actions(),
        [Action::Close {
            code: None,
            reason: "offline".into()
        }]
    );
    let events = c.events();
    assert_eq!(events.last(), Some(&Event::Close { code: Some(1006) }));
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
    // Nothing is tried while offline, nor when the page is shown meanwhile.
    c.advance(60_000);
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), []);

    c.session.handle_online(true, c.now);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session.handle_open(c.now);
    assert_eq!(c.sent().len(), 1, "the channel rejoins");
}

#[test]
fn a_reconnect_due_while_offline_waits_for_online() {
    let mut c = Client::quiet();
    c.open();
    c.session.handle_close(c.now, Some(1006));
    c.session.handle_online(false, c.now);
    c.advance(60_000);
    assert_eq!(c.actions(), []);
    c.session.handle_online(true, c.now);
    assert_eq!(c.actions(), [Action::Connect]);
}

#[test]
fn online_without_wanting_a_connection_does_nothing() {
    let mut c = Client::quiet();
    c.session.handle_online(false, c.now);
    c.session.handle_online(true, c.now);
    assert_eq!(c.actions(), []);
}

#[test]
fn heartbeat_timeout_is_its_own_setting() {
    let mut c = Client::new(config().heartbeat_timeout(Some(ms(5_000))));
    c.open();
    c.advance_to(30_000);
    assert_eq!(c.sent().len(), 1);
    c.drain();
    c.advance_to(34_999);
    assert!(c.session.is_connected());
    c.advance_to(35_000);
    assert!(
        !c.session.is_connected(),
        "closed 5 s after the unanswered heartbeat"
    );
    assert!(c.actions().contains(&Action::Close {
        code: Some(1000),
        reason: "heartbeat timeout".into()
    }));
}

#[test]
fn becoming_visible_checks_an_open_connection_with_a_heartbeat() {
    let mut c = Client::new(config());
    c.open();
    c.drain();
    c.advance_to(10_000);
    c.session.handle_visibility(false, c.now);
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.sent(), [r#"[null,"1","phoenix","heartbeat",{}]"#]);
    // Unanswered, it times out after the interval as any other.
    c.advance_to(40_000);
    assert!(!c.session.is_connected());
}

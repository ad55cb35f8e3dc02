//! The connection: heartbeats, reconnects and their backoff, visibility, disconnect.

use std::time::Duration;

use super::{Client, config, ms};
use crate::client::{
    Action, Backoff, ChannelState, ConnectionState, Event, Session, StateCause, Timestamp,
};

const HEARTBEAT: &str = r#"[null,"1","phoenix","heartbeat",{}]"#;

#[test]
fn heartbeat_every_interval_after_its_reply() {
    let mut c = Client::new(config());
    c.open();
    assert_eq!(c.events(), [Event::Open]);
    assert_eq!(c.next_timeout_in(), Some(30_000));
    c.advance_to(29_999);
    assert_eq!(c.sent(), Vec::<String>::new());
    c.advance_to(30_000);
    assert_eq!(c.sent(), [HEARTBEAT]);

    // The reply comes after a second; the next heartbeat is an interval after it.
    c.advance_to(31_000);
    c.recv(r#"[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]"#);
    assert_eq!(c.next_timeout_in(), Some(30_000));
    c.advance_to(61_000);
    assert_eq!(c.sent(), [r#"[null,"2","phoenix","heartbeat",{}]"#]);
    assert!(c.session.is_connected());
}

#[test]
fn unanswered_heartbeat_closes_and_reconnects() {
    let mut c = Client::new(config());
    c.open();
    let room = c.joined("room:lobby");
    c.advance_to(30_000);
    assert_eq!(c.sent(), [r#"[null,"4","phoenix","heartbeat",{}]"#]);

    c.advance_to(59_999);
    assert!(c.session.is_connected());
    c.advance_to(60_000);
    assert_eq!(
        c.actions(),
        [Action::Close {
            code: Some(1000),
            reason: "heartbeat timeout".into()
        }]
    );
    let events = c.events();
    assert_eq!(
        Client::state_changes(&events),
        [(room, ChannelState::Errored, StateCause::ConnectionLost)]
    );
    assert_eq!(events.last(), Some(&Event::Close { code: Some(1000) }));
    assert_eq!(c.session.connection_state(), ConnectionState::Reconnecting);

    // A late reply to the dead connection's heartbeat changes nothing.
    c.recv(r#"[null,"4","phoenix","phx_reply",{"status":"ok","response":{}}]"#);
    assert_eq!(c.next_timeout_in(), Some(10));
    c.advance(10);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session.handle_open(c.now);
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{}]"#]);
}

#[test]
fn no_heartbeat_when_disabled() {
    let mut c = Client::quiet();
    c.open();
    assert_eq!(c.session.poll_timeout(), None);
    c.advance_to(600_000);
    assert_eq!(c.sent(), Vec::<String>::new());
}

/// Fails `attempts` connection attempts in a row (each closes before opening) and returns the
/// delay before each reconnect, in microseconds.
fn failing_delays_us(session_config: crate::client::ClientConfig, attempts: usize) -> Vec<u64> {
    let mut c = Client::new(session_config);
    c.session.connect(c.now);
    assert_eq!(c.actions(), [Action::Connect]);
    (0..attempts)
        .map(|_| {
            c.session.handle_close(c.now, Some(1006));
            let delay = c.advance_to_next();
            assert_eq!(
                c.actions(),
                [Action::Connect],
                "params re-evaluated each time"
            );
            delay.as_micros() as u64
        })
        .collect()
}

/// The same in milliseconds, for schedules without jitter.
fn failing_delays(session_config: crate::client::ClientConfig, attempts: usize) -> Vec<u64> {
    failing_delays_us(session_config, attempts)
        .into_iter()
        .map(|us| us / 1000)
        .collect()
}

#[test]
fn reconnect_backoff_follows_phoenix_schedule() {
    assert_eq!(
        failing_delays(config(), 11),
        [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000]
    );
    let custom = config().reconnect_after(Backoff::steps([ms(7)], ms(70)));
    assert_eq!(failing_delays(custom, 3), [7, 70, 70]);
    fn doubling(tries: u32) -> Duration {
        ms(100 << tries.min(10))
    }
    let function = config().reconnect_after(Backoff::Custom(doubling));
    assert_eq!(failing_delays(function, 3), [200, 400, 800]);
}

#[test]
fn reconnect_backoff_resets_once_open() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    for _ in 0..3 {
        c.session.handle_close(c.now, None);
        c.advance(c.next_timeout_in().expect("scheduled"));
    }
    c.session.handle_open(c.now);
    c.session.handle_close(c.now, Some(1001));
    assert_eq!(c.next_timeout_in(), Some(10));
}

#[test]
fn jitter_is_bounded_and_replays_from_the_seed() {
    let base = [
        10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000, 5000,
    ];
    let jittered = |seed| failing_delays_us(config().jitter(0.5).seed(seed), base.len());
    let a = jittered(7);
    for (delay, base) in a.iter().zip(base) {
        // Half to one and a half times the base.
        assert!(
            *delay >= base * 500 && *delay < base * 1500,
            "{delay} µs vs {base} ms"
        );
    }
    assert_eq!(a, jittered(7), "same seed, same delays");
    assert_ne!(a, jittered(8), "another seed, other delays");
    assert!(
        a.iter().zip(base).any(|(d, b)| *d != b * 1000),
        "jitter applied"
    );
}

#[test]
fn any_close_but_disconnect_reconnects() {
    for code in [Some(1000), Some(1001), Some(1006), Some(1012), None] {
        let mut c = Client::quiet();
        c.open();
        c.drain();
        c.session.handle_close(c.now, code);
        assert_eq!(c.events(), [Event::Close { code }]);
        assert_eq!(c.actions(), []);
        assert_eq!(c.session.connection_state(), ConnectionState::Reconnecting);
        c.advance(10);
        assert_eq!(c.actions(), [Action::Connect], "after close {code:?}");
    }
}

#[test]
fn disconnect_closes_and_stays_closed() {
    let mut c = Client::new(config());
    c.open();
    c.drain();
    c.session.disconnect(c.now, Some(1000));
    assert_eq!(
        c.actions(),
        [Action::Close {
            code: Some(1000),
            reason: String::new()
        }]
    );
    assert_eq!(c.events(), [Event::Close { code: Some(1000) }]);
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
    assert_eq!(c.session.poll_timeout(), None, "no heartbeat, no reconnect");
    // The transport's own close event after ours is not reported again.
    c.session.handle_close(c.now, Some(1000));
    assert_eq!(c.events(), []);
    c.advance(60_000);
    assert_eq!(c.actions(), []);
}

#[test]
fn disconnect_while_reconnecting_cancels_it() {
    let mut c = Client::quiet();
    c.open();
    c.session.handle_close(c.now, None);
    c.drain();
    c.session.disconnect(c.now, None);
    assert_eq!(c.actions(), [], "no transport to close");
    assert_eq!(c.session.poll_timeout(), None);
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);
}

#[test]
fn disconnect_then_connect_rejoins() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session.disconnect(c.now, None);
    assert_eq!(c.state(room), ChannelState::Errored);
    c.drain();
    c.advance(60_000);
    assert_eq!(c.actions(), []);

    c.open();
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{}]"#]);
    c.ok_join(room);
    assert_eq!(c.state(room), ChannelState::Joined);
}

#[test]
fn connect_is_idempotent() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    c.session.connect(c.now);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session.handle_open(c.now);
    c.session.connect(c.now);
    c.session.handle_close(c.now, None);
    c.session.connect(c.now);
    assert_eq!(c.actions(), [], "phoenix.js keeps its reconnect schedule");
    assert_eq!(c.session.connection_state(), ConnectionState::Reconnecting);
}

#[test]
fn transport_events_without_a_transport_are_ignored() {
    let mut s = Session::new(config());
    let now = Timestamp::ZERO;
    s.handle_open(now);
    s.handle_error(now);
    s.handle_close(now, None);
    assert_eq!(
        s.handle_text(now, "garbage").map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.connection_state(), ConnectionState::Closed);
}

#[test]
fn error_then_close_errors_channels_once() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session.handle_error(c.now);
    let events = c.events();
    assert_eq!(events.first(), Some(&Event::Error));
    assert_eq!(
        Client::state_changes(&events),
        [(room, ChannelState::Errored, StateCause::ConnectionLost)]
    );
    c.session.handle_close(c.now, Some(1006));
    assert_eq!(c.events(), [Event::Close { code: Some(1006) }]);
    assert_eq!(c.session.connection_state(), ConnectionState::Reconnecting);
}

#[test]
fn frames_not_taken_before_a_close_are_dropped() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session
        .push(room, "shout", super::json("{}"), None, c.now)
        .expect("pushes");
    c.session.handle_close(c.now, None);
    assert_eq!(c.sent(), Vec::<String>::new());
}

#[test]
fn disconnect_keeps_frames_queued_before_it() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session.leave(room, c.now).expect("leaves");
    c.session.disconnect(c.now, Some(1000));
    assert_eq!(c.sent(), [r#"["3","4","room:lobby","phx_leave",{}]"#]);
    assert!(matches!(&c.actions()[..], [Action::Close { .. }]));
}

#[test]
fn a_reconnect_due_while_hidden_waits_for_visibility() {
    let mut c = Client::quiet();
    c.open();
    c.session.handle_visibility(false, c.now);
    c.session.handle_close(c.now, None);
    c.advance(60_000);
    assert_eq!(c.actions(), []);
    assert_eq!(c.session.connection_state(), ConnectionState::Closed);

    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), [Action::Connect]);
    assert_eq!(c.session.connection_state(), ConnectionState::Connecting);
}

#[test]
fn becoming_visible_reconnects_at_once_with_a_fresh_backoff() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    for _ in 0..10 {
        c.session.handle_close(c.now, None);
        c.advance(c.next_timeout_in().expect("scheduled"));
    }
    c.session.handle_close(c.now, None);
    assert_eq!(c.next_timeout_in(), Some(5000));
    c.actions();

    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session.handle_close(c.now, None);
    assert_eq!(c.next_timeout_in(), Some(10), "backoff starts over");
}

#[test]
fn becoming_visible_replaces_a_pending_attempt_once() {
    let mut c = Client::quiet();
    c.open();
    c.session.handle_close(c.now, None);
    c.advance(10);
    assert_eq!(c.actions(), [Action::Connect]);
    c.events();

    // The attempt made by the backoff may be stuck after the tab slept: replace it.
    c.session.handle_visibility(true, c.now);
    assert_eq!(
        c.actions(),
        [
            Action::Close {
                code: None,
                reason: String::new()
            },
            Action::Connect
        ]
    );
    assert_eq!(c.events(), [Event::Close { code: None }]);
    // `resume` and `visibilitychange` both fire: the second signal keeps the new attempt.
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), []);
}

#[test]
fn visibility_changes_nothing_when_connected_or_disconnected_on_purpose() {
    let mut c = Client::quiet();
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), [], "never connected");
    c.open();
    c.session.handle_visibility(false, c.now);
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), [], "connected");
    c.session.disconnect(c.now, None);
    c.actions();
    c.session.handle_visibility(true, c.now);
    assert_eq!(c.actions(), [], "disconnected by the user");
}

#[test]
fn a_failed_first_attempt_is_retried() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    c.actions();
    c.session.handle_error(c.now);
    c.session.handle_close(c.now, Some(1006));
    assert_eq!(
        c.events(),
        [Event::Error, Event::Close { code: Some(1006) }]
    );
    c.advance(10);
    assert_eq!(c.actions(), [Action::Connect]);
}

#[test]
fn every_reconnect_asks_the_driver_to_connect_again() {
    let mut c = Client::quiet();
    let mut connects = 0;
    c.session.connect(c.now);
    for _ in 0..3 {
        connects += c.actions().len();
        c.session.handle_open(c.now);
        c.session.handle_close(c.now, Some(1001));
        c.advance_to_next();
    }
    connects += c.actions().len();
    assert_eq!(connects, 4, "the first connect and three reconnects");
}

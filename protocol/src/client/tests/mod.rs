//! Tests of the client session on a virtual clock: a [`Client`] wraps a session with a clock and
//! drains its outputs, so each test reads as the frames, actions and events it expects.

mod channels;
mod connection;
mod golden;
mod pushes;
mod refusals;
mod resume;

use std::time::Duration;

use super::{Action, ChannelId, ChannelState, ClientConfig, Event, Session, StateCause, Timestamp};
use crate::{Payload, Wire};

/// A session, its virtual clock, and helpers that drain its outputs.
struct Client {
    session: Session,
    now: Timestamp,
}

/// Test config: phoenix.js's defaults without jitter, so delays are exact.
fn config() -> ClientConfig {
    ClientConfig::default().jitter(0.0)
}

fn json(text: &str) -> Payload {
    Payload::from_json_str(text).expect("test JSON is valid")
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

impl Client {
    fn new(config: ClientConfig) -> Self {
        Client {
            session: Session::new(config),
            now: Timestamp::ZERO,
        }
    }

    /// The default client, without heartbeats (most tests are not about them).
    fn quiet() -> Self {
        Client::new(config().heartbeat_interval(None))
    }

    /// Milliseconds on the virtual clock.
    fn millis(&self) -> u64 {
        self.now.as_duration().as_millis() as u64
    }

    /// Everything transmitted since the last call, text as is and binary as `bin:<hex>`.
    fn sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.session.poll_transmit())
            .map(|wire| match wire {
                Wire::Text(text) => text.as_str().to_owned(),
                Wire::Binary(bytes) => format!("bin:{}", hex(&bytes)),
            })
            .collect()
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.session.poll_action()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Drops every pending output.
    fn drain(&mut self) {
        self.sent();
        self.actions();
        self.events();
    }

    /// Moves the clock to `millis`, firing every deadline on the way at its own time.
    fn advance_to(&mut self, millis: u64) {
        let target = Timestamp::from_millis(millis);
        assert!(target >= self.now, "the clock never goes back");
        while let Some(at) = self.session.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.session.handle_timeout(self.now);
        }
        self.now = target;
    }

    /// Moves the clock to the next deadline exactly, and fires it; returns how far that was.
    fn advance_to_next(&mut self) -> Duration {
        let at = self.session.poll_timeout().expect("a deadline is set");
        let delay = at.saturating_duration_since(self.now);
        self.now = self.now.max(at);
        self.session.handle_timeout(self.now);
        delay
    }

    fn advance(&mut self, millis: u64) {
        self.advance_to(self.millis() + millis);
    }

    /// Milliseconds until the next deadline.
    fn next_timeout_in(&self) -> Option<u64> {
        self.session
            .poll_timeout()
            .map(|at| at.saturating_duration_since(self.now).as_millis() as u64)
    }

    fn recv(&mut self, text: &str) {
        self.session
            .handle_text(self.now, text)
            .expect("test frames decode");
    }

    /// Connects and opens the transport.
    fn open(&mut self) {
        self.session.connect(self.now);
        assert_eq!(self.actions(), [Action::Connect]);
        self.session.handle_open(self.now);
    }

    /// The transport closed under the session, and the reconnect that follows opens.
    fn reconnect(&mut self) {
        self.session.handle_close(self.now, Some(1006));
        let delay = self.next_timeout_in().expect("a reconnect is scheduled");
        self.advance(delay);
        assert_eq!(self.actions(), [Action::Connect]);
        self.session.handle_open(self.now);
    }

    /// A channel for `topic` joined (the join answered ok); outputs drained.
    fn joined(&mut self, topic: &str) -> ChannelId {
        let channel = self.session.channel(topic, Payload::empty());
        self.session
            .join(channel, None, self.now)
            .expect("a new channel joins");
        self.ok_join(channel);
        self.drain();
        channel
    }

    /// Answers the channel's current join with ok.
    fn ok_join(&mut self, channel: ChannelId) {
        let join_ref = self.join_ref(channel);
        let topic = self
            .session
            .channel_topic(channel)
            .expect("channel exists")
            .to_owned();
        self.recv(&reply(&join_ref, &join_ref, &topic, "ok", "{}"));
    }

    fn join_ref(&self, channel: ChannelId) -> String {
        self.session
            .join_ref(channel)
            .expect("the channel has a join out")
            .to_owned()
    }

    fn state(&self, channel: ChannelId) -> ChannelState {
        self.session.channel_state(channel).expect("channel exists")
    }

    /// The channel state changes among `events`.
    fn state_changes(events: &[Event]) -> Vec<(ChannelId, ChannelState, StateCause)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelState {
                    channel,
                    state,
                    cause,
                } => Some((*channel, *state, cause.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A V2 reply as Phoenix sends it.
fn reply(join_ref: &str, msg_ref: &str, topic: &str, status: &str, response: &str) -> String {
    format!(
        r#"["{join_ref}","{msg_ref}","{topic}","phx_reply",{{"response":{response},"status":"{status}"}}]"#
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

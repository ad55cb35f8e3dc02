//! Byte for byte against phoenix.js: the session replays the script `tests/golden/capture.mjs` ran
//! against the official client, is fed the same server frames, and must send exactly the frames
//! phoenix.js sent.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::{Client, config, hex};
use crate::client::{ChannelState, Event};
use crate::{Direction, Payload, Serializer};

// Included rather than read, so the tests also run where there is no file system (wasm).
const V2_JSON: &str = include_str!("../../../tests/golden/v2_json.json");
const V2_BINARY: &str = include_str!("../../../tests/golden/v2_binary.json");
#[cfg(feature = "v1")]
const V1_JSON: &str = include_str!("../../../tests/golden/v1_json.json");

/// One captured frame: its direction and its bytes (text, or `bin:<hex>` as `Client::sent` shows
/// binary frames).
struct Frame {
    to_server: bool,
    wire: String,
}

/// The golden frames by name, and the client-to-server names not yet checked.
struct Replay {
    client: Client,
    serializer: Serializer,
    frames: BTreeMap<String, Frame>,
    unchecked: Vec<String>,
}

impl Replay {
    fn new(serializer: Serializer, files: &[&str]) -> Self {
        let mut frames = BTreeMap::new();
        for file in files {
            let entries: Vec<Value> = serde_json::from_str(file).expect("golden files are JSON");
            for entry in entries {
                let name = entry["name"].as_str().expect("named").to_owned();
                let to_server = entry["direction"] == "client_to_server";
                let wire = match (entry["text"].as_str(), entry["binary_hex"].as_str()) {
                    (Some(text), _) => text.to_owned(),
                    (None, Some(hex)) => format!("bin:{hex}"),
                    (None, None) => panic!("{name}: neither text nor binary_hex"),
                };
                frames.insert(name, Frame { to_server, wire });
            }
        }
        let unchecked = frames
            .iter()
            .filter(|(_, f)| f.to_server)
            .map(|(name, _)| name.clone())
            .collect();
        // As capture.mjs: heartbeats and timeouts far away, the heartbeat sent on demand.
        let config = config()
            .serializer(serializer)
            .heartbeat_interval(Some(Duration::from_secs(3600)))
            .timeout(Duration::from_secs(3600));
        let mut client = Client::new(config);
        client.open();
        client.drain();
        Replay {
            client,
            serializer,
            frames,
            unchecked,
        }
    }

    fn frame(&self, name: &str) -> &Frame {
        self.frames
            .get(name)
            .unwrap_or_else(|| panic!("no golden frame named {name:?}"))
    }

    /// The payload phoenix.js sent in the frame `name`, for making the same call.
    fn payload_of(&self, name: &str) -> Payload {
        let frame = self.frame(name);
        let decoded = match frame.wire.strip_prefix("bin:") {
            Some(hex) => self
                .serializer
                .decode_binary(Direction::ToServer, Bytes::from(unhex(hex))),
            None => self
                .serializer
                .decode_text(Direction::ToServer, &frame.wire),
        };
        decoded.expect("golden frames decode").payload().clone()
    }

    /// The session sent exactly the frame phoenix.js sent.
    fn expect_sent(&mut self, name: &str) {
        let expected = self.frame(name).wire.clone();
        assert!(self.frame(name).to_server, "{name} is a client frame");
        assert_eq!(self.client.sent(), [expected], "{name}");
        self.unchecked.retain(|n| n != name);
    }

    /// Feeds the server frame `name` to the session.
    fn server_sends(&mut self, name: &str) -> Vec<Event> {
        let frame = self.frame(name);
        assert!(!frame.to_server, "{name} is a server frame");
        let wire = frame.wire.clone();
        let now = self.client.now;
        let result = match wire.strip_prefix("bin:") {
            Some(hex) => self
                .client
                .session
                .handle_binary(now, Bytes::from(unhex(hex))),
            None => self.client.session.handle_text(now, &wire),
        };
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(self.client.sent(), Vec::<String>::new(), "{name}");
        self.client.events()
    }

    /// phoenix.js's `socket.sendHeartbeat()`: here, the heartbeat coming due.
    fn heartbeat(&mut self) {
        let due = self.client.next_timeout_in().expect("heartbeat scheduled");
        self.client.advance(due);
    }

    fn finish(mut self) {
        assert_eq!(
            self.unchecked,
            Vec::<String>::new(),
            "every frame phoenix.js sent is checked"
        );
        assert_eq!(self.client.session.poll_action(), None);
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn v2_frames_match_phoenix_js() {
    let mut r = Replay::new(Serializer::V2, &[V2_JSON, V2_BINARY]);
    let now = r.client.now;

    let params = r.payload_of("join with params");
    let room = r.client.session.channel("room:1", params);
    r.client.session.join(room, None, now).expect("joins");
    r.expect_sent("join with params");
    let events = r.server_sends("join reply ok");
    assert!(events.contains(&Event::ChannelState {
        channel: room,
        state: ChannelState::Joined,
        cause: crate::client::StateCause::JoinOk,
    }));

    for (push, answer) in [
        ("push", "push reply ok with response"),
        ("push with empty payload", "push reply error"),
    ] {
        let payload = r.payload_of(push);
        let event = if push == "push" { "new_msg" } else { "bad_msg" };
        let id = r
            .client
            .session
            .push(room, event, payload, None, now)
            .expect("pushes");
        r.expect_sent(push);
        let events = r.server_sends(answer);
        assert!(matches!(&events[..], [Event::Reply { push, .. }] if *push == id));
    }

    r.heartbeat();
    r.expect_sent("heartbeat");
    r.server_sends("heartbeat reply");

    for name in ["server push to one channel", "broadcast", "presence_state"] {
        let events = r.server_sends(name);
        assert!(
            matches!(&events[..], [Event::Message { channel, .. }] if *channel == room),
            "{name}"
        );
    }

    let upload = r.payload_of("binary push");
    assert!(upload.as_binary().is_some());
    let id = r
        .client
        .session
        .push(room, "upload", upload, None, r.client.now)
        .expect("pushes binary");
    r.expect_sent("binary push");
    let events = r.server_sends("binary reply");
    assert!(matches!(&events[..],
        [Event::Reply { push, response: Payload::Binary(b), .. }] if *push == id && hex(b) == "090807"));
    for name in ["binary server push", "binary broadcast"] {
        assert_eq!(r.server_sends(name).len(), 1, "{name}");
    }
    assert_eq!(r.server_sends("binary reply with empty payload"), []);

    r.client.session.leave(room, r.client.now).expect("leaves");
    r.expect_sent("leave");
    assert_eq!(r.client.state(room), ChannelState::Closed);
    r.client.events();
    assert_eq!(r.server_sends("leave reply"), []);
    assert_eq!(r.server_sends("phx_close"), []);

    let nope = r.client.session.channel("nope:1", Payload::empty());
    r.client
        .session
        .join(nope, None, r.client.now)
        .expect("joins");
    r.expect_sent("join without params");
    r.server_sends("join reply error unmatched topic");
    assert_eq!(r.client.state(nope), ChannelState::Errored);
    r.server_sends("phx_error");
    r.finish();
}

#[cfg(feature = "v1")]
#[test]
fn v1_frames_match_phoenix_js() {
    let mut r = Replay::new(Serializer::V1Json, &[V1_JSON]);
    let now = r.client.now;

    let params = r.payload_of("join with params");
    let room = r.client.session.channel("room:1", params);
    r.client.session.join(room, None, now).expect("joins");
    r.expect_sent("join with params");
    r.server_sends("join reply ok");
    assert_eq!(r.client.state(room), ChannelState::Joined);

    let payload = r.payload_of("push");
    let id = r
        .client
        .session
        .push(room, "new_msg", payload, None, now)
        .expect("pushes");
    r.expect_sent("push");
    let events = r.server_sends("push reply ok with response");
    assert!(matches!(&events[..], [Event::Reply { push, .. }] if *push == id));

    r.heartbeat();
    r.expect_sent("heartbeat");
    r.server_sends("heartbeat reply");
    // Answered, so the next heartbeat is a full interval away rather than a timeout.
    assert_eq!(r.client.next_timeout_in(), Some(3_600_000));

    let events = r.server_sends("broadcast");
    assert!(matches!(&events[..], [Event::Message { event, .. }] if event == "new_msg"));

    r.client.session.leave(room, r.client.now).expect("leaves");
    r.expect_sent("leave");
    r.server_sends("leave reply");
    r.server_sends("phx_close");
    assert_eq!(r.client.actions(), Vec::<crate::client::Action>::new());
    r.finish();
}

//! The browser package's wasm: the shared [`Core`] with a host in JavaScript, behind exported
//! functions that take and return numbers (feature `browser`, built by `scripts/build-client`):
//! `step`, `create` and `free` make and free a core, and [`call`] does everything else on one.
//!
//! Everything that touches a JavaScript value is JavaScript (`src/browser/*.js`, made into the
//! package's `web.js`): the WebSocket and its send queue, the timer, the page's visibility, the
//! V2 frames (`JSON.parse`/`JSON.stringify`, the binary layout), the payloads, the callbacks and
//! phoenix.js's `Socket`/`Channel`/`Push` classes. The wasm keeps the decisions: connection
//! states, heartbeats, backoffs and jitter, joins and rejoins, refs, buffering and timeouts.
//!
//! No wasm-bindgen: only numbers cross, so plain wasm exports and imports (`host.js` loads the
//! module and gives its imports) need no glue, and the module no externref table, class wrapper
//! or borrow flags. A socket's core is a handle, an index into [`CORES`].
//!
//! | import (module `a`) | arguments |
//! |---|---|
//! | `s` (send) | kind (0 join, 1 leave, 2 push, 3 heartbeat), channel, push, join_ref, ref (-1: none) |
//! | `e` (emit) | kind ([`emit`] codes: events, and `CONNECT`), channel, push or state, code or cause |
//! | `c` (close) | code (-1: the default), reason (0 disconnect, 1 heartbeat timeout, 2 visibility, 3 offline) |
//!
//! The core calls those while one of the exports runs, and JavaScript only queues what they ask
//! for; it acts once the export has returned, so that user code never runs inside the core and
//! never re-enters it.
//!
//! Ids, refs and codes cross as `f64`/`u32`/`i32`: JavaScript numbers. Refs are exact up to 2^53,
//! far beyond what a page sends.
#![expect(
    unsafe_code,
    reason = "the module's imports and exports (`unsafe extern` of safe functions, `export_name`); no unsafe code"
)]

pub(crate) mod alloc;

use alight_protocol::client::{
    ChannelId, ChannelState, CloseReason, ConnectionState, Core, CoreConfig, CoreEvent, Delays,
    FOREIGN_REF, Host, InBody, Incoming, JoinError, Outgoing, PushError, Ref, StateCause,
    Timestamp,
};
use std::cell::RefCell;

// One letter each (module `a`; `s`end, `e`mit, `c`lose): the names ship in the module and in
// web.js.
#[link(wasm_import_module = "a")]
unsafe extern "C" {
    // Safe to call: JavaScript functions of numbers, which never call back into the module.
    #[link_name = "s"]
    safe fn host_send(kind: u32, channel: u32, push: u32, join_ref: f64, msg_ref: f64);
    #[link_name = "e"]
    safe fn host_emit(kind: u32, channel: u32, push: u32, code: i32);
    #[link_name = "c"]
    safe fn host_close(code: i32, reason: u32);
}

/// What `emit` reports, by its first argument.
mod emit {
    pub(super) const OPEN: u32 = 0;
    /// `code`: the close code, or -1.
    pub(super) const CLOSE: u32 = 1;
    pub(super) const ERROR: u32 = 2;
    /// A reply with status `ok` (`code` 1) or another (0): the frame being handled has it.
    pub(super) const REPLY: u32 = 3;
    pub(super) const LEFT: u32 = 4;
    pub(super) const TIMEOUT: u32 = 5;
    /// The frame being handled, for the channel.
    pub(super) const MESSAGE: u32 = 6;
    /// `push`: the state (0 closed, 1 joining, 2 joined, 3 errored); `code`: the cause, as
    /// `cause_code` numbers them.
    pub(super) const STATE: u32 = 7;
    /// Not an event: open a transport (one import fewer than a `connect` of its own).
    pub(super) const CONNECT: u32 = 8;
    /// The server refused the connection: `code` is its close code (the close follows).
    pub(super) const REFUSED: u32 = 9;
}

/// The host: every call goes to `host.js`, which hands it to the socket whose core is running.
#[derive(Debug)]
struct JsHost;

impl Host for JsHost {
    /// A number per topic, given by JavaScript; 0 is no channel's topic.
    type Topic = u32;
    /// Kept by JavaScript, by channel.
    type Params = ();
    /// Kept by JavaScript, by push id.
    type Push = ();
    /// The frame being handled, kept by JavaScript.
    type Message = ();

    fn send(&mut self, frame: Outgoing<'_, Self>) {
        let opt = |r: Option<Ref>| r.map_or(-1.0, |r| r as f64);
        match frame {
            Outgoing::Join {
                channel, join_ref, ..
            } => host_send(0, id(channel.as_u64()), 0, join_ref as f64, join_ref as f64),
            Outgoing::Leave {
                channel,
                join_ref,
                msg_ref,
                ..
            } => host_send(1, id(channel.as_u64()), 0, opt(join_ref), msg_ref as f64),
            Outgoing::Push {
                push,
                channel,
                join_ref,
                msg_ref,
                ..
            } => host_send(
                2,
                id(channel.as_u64()),
                id(push.as_u64()),
                opt(join_ref),
                msg_ref as f64,
            ),
            Outgoing::Heartbeat { msg_ref } => host_send(3, 0, 0, -1.0, msg_ref as f64),
        }
    }

    fn emit(&mut self, event: CoreEvent<()>) {
        let (kind, channel, push, code) = match event {
            CoreEvent::Open => (emit::OPEN, 0, 0, 0),
            CoreEvent::Close { code } => (emit::CLOSE, 0, 0, code.map_or(-1, i32::from)),
            CoreEvent::Error => (emit::ERROR, 0, 0, 0),
            CoreEvent::Refused { code } => (emit::REFUSED, 0, 0, i32::from(code)),
            CoreEvent::Reply {
                push, channel, ok, ..
            } => (emit::REPLY, channel.as_u64(), push.as_u64(), i32::from(ok)),
            CoreEvent::Left { push, channel } => (emit::LEFT, channel.as_u64(), push.as_u64(), 0),
            CoreEvent::Timeout { push, channel } => {
                (emit::TIMEOUT, channel.as_u64(), push.as_u64(), 0)
            }
            CoreEvent::Message { channel, .. } => (emit::MESSAGE, channel.as_u64(), 0, 0),
            CoreEvent::ChannelState {
                channel,
                state,
                cause,
            } => (
                emit::STATE,
                channel.as_u64(),
                u64::from(state_code(Some(state))),
                cause_code(&cause),
            ),
            // Events added to the core later reach the page once this knows them.
            _ => return,
        };
        host_emit(kind, id(channel), id(push), code);
    }

    fn connect(&mut self) {
        host_emit(emit::CONNECT, 0, 0, 0);
    }

    fn close(&mut self, code: Option<u16>, reason: CloseReason) {
        let reason = match reason {
            CloseReason::HeartbeatTimeout => 1,
            CloseReason::Visibility => 2,
            CloseReason::Offline => 3,
            _ => 0,
        };
        host_close(code.map_or(-1, i32::from), reason);
    }
}

/// An id as JavaScript holds it: ids count up from 1 within a socket, and a page makes fewer
/// than 2^32 channels and pushes.
fn id(n: u64) -> u32 {
    n as u32
}

/// 0 closed (or no such channel), 1 joining, 2 joined, 3 errored.
fn state_code(state: Option<ChannelState>) -> u32 {
    match state {
        Some(ChannelState::Joining) => 1,
        Some(ChannelState::Joined) => 2,
        Some(ChannelState::Errored) => 3,
        _ => 0,
    }
}

/// Why a channel's state changed, as `socket.js` reads it: 1 the server's `phx_error` (the frame
/// being handled has its payload), 2 the connection was lost, 3 the server's `phx_close` (the
/// frame has its payload), 0 anything else.
fn cause_code(cause: &StateCause<()>) -> i32 {
    match cause {
        StateCause::ServerError(()) => 1,
        StateCause::ConnectionLost => 2,
        StateCause::ServerClose(()) => 3,
        _ => 0,
    }
}

/// A time from `performance.now()` (ms), to the microsecond.
fn at(now: f64) -> Timestamp {
    Timestamp::from_micros((now * 1000.0) as u64)
}

/// Milliseconds as the core's microseconds; NaN and negatives are 0 and anything too large the
/// longest delay (`as` saturates).
fn micros(ms: f64) -> u64 {
    (ms * 1000.0) as u64
}

/// A timeout option, µs: anything but a positive number means the default.
fn timeout(ms: f64) -> Option<u64> {
    (ms > 0.0).then(|| micros(ms))
}

/// A ref from `frames.js`'s `refNumber`: -1 none, -2 not one of ours.
fn incoming_ref(r: f64) -> Option<Ref> {
    if r == -1.0 {
        None
    } else if r < 0.0 {
        Some(FOREIGN_REF)
    } else {
        Some(r as Ref)
    }
}

thread_local! {
    /// Every socket's core, by handle (`None` once freed), and the backoff delays given for the
    /// next core (`step`), µs.
    static CORES: RefCell<Cores> = const { RefCell::new(Cores { cores: Vec::new(), steps: [Vec::new(), Vec::new()] }) };
}

struct Cores {
    cores: Vec<Option<Core<JsHost>>>,
    steps: [Vec<u64>; 2],
}

/// One delay of the reconnect (`which` 0) or rejoin (1) backoff of the next core: tries 1, 2, ...
/// in order, the last for every later try. `socket.js` gives phoenix.js's when the page gives
/// none.
#[unsafe(export_name = "step")]
pub extern "C" fn step(which: u32, ms: f64) {
    CORES.with_borrow_mut(|all| {
        if let Some(steps) = all.steps.get_mut(which as usize) {
            steps.push(micros(ms));
        }
    });
}

/// A core with these options (0 or less, or NaN: phoenix.js's default), the backoffs given by
/// `step` and a jitter seed; returns its handle.
#[unsafe(export_name = "create")]
pub extern "C" fn create(
    timeout_ms: f64,
    heartbeat_ms: f64,
    heartbeat_timeout_ms: f64,
    jitter: f64,
    seed: f64,
) -> u32 {
    CORES.with_borrow_mut(|all| {
        let [reconnect, rejoin] = std::mem::take(&mut all.steps);
        // The defaults are `ClientConfig::default()`'s, phoenix.js's.
        let config = CoreConfig {
            heartbeat_interval: Some(timeout(heartbeat_ms).unwrap_or(30_000_000)),
            heartbeat_timeout: timeout(heartbeat_timeout_ms),
            timeout: timeout(timeout_ms).unwrap_or(10_000_000),
            reconnect_after: Delays::Steps(reconnect),
            rejoin_after: Delays::Steps(rejoin),
            jitter: if jitter.is_nan() { 0.2 } else { jitter },
            seed: seed as u64,
        };
        all.cores.push(Some(Core::new(config, JsHost)));
        (all.cores.len() - 1) as u32
    })
}

/// Frees a core (its JavaScript driver was collected).
#[unsafe(export_name = "free")]
pub extern "C" fn free(handle: u32) {
    CORES.with_borrow_mut(|all| {
        if let Some(core) = all.cores.get_mut(handle as usize) {
            *core = None;
        }
    });
}

/// Every other call on the core `handle`, by `op`, at `now` (ms, as `performance.now()`), with
/// the arguments `a` to `d` the table names; returns what it names, else 0 (and 0 for a freed
/// or unknown handle). One export rather than one per call: each export carries its own look-up
/// of the core, and its name ships in the module and in web.js.
///
/// | op | call | `a`, `b`, `c`, `d` | returns |
/// |---|---|---|---|
/// | 0 | connect | | |
/// | 1 | disconnect | the close code (-1: the transport's default) | |
/// | 2 | the page was hidden or shown, the network went down or came back | 0 hidden, 1 shown, 2 offline, 3 online | |
/// | 3 | the transport opened | | |
/// | 4 | the transport closed | the close code (-1: none reported) | |
/// | 5 | the transport errored | | |
/// | 6 | a frame arrived | its join_ref and ref (`refNumber`), its topic's number (0: no channel's), its kind (0 reply ok, 1 another reply, 2 `phx_error`, 3 `phx_close`, 4 any other event) | |
/// | 7 | a timeout | | |
/// | 8 | the next deadline | | ms, as `now`, or -1 |
/// | 9 | the connection's state | | 0 closed (or reconnecting), 1 connecting, 2 open |
/// | 10 | a new channel | its topic's number (not 0) | its id |
/// | 11 | join | channel, timeout | the join's push id, or -1 (no such channel), -2 (already joined) |
/// | 12 | push | channel, timeout | the push id, or -1 (no such channel), -2 (not joined) |
/// | 13 | leave | channel | the leave's push id, or -1 (nothing to leave) |
/// | 14 | remove a channel | channel | |
/// | 15 | a channel's state | channel | as `emit` numbers them |
/// | 16 | a channel's join ref | channel | the ref of its current join, or -1 |
/// | 17 | whether the timeout at `now` rejoins a channel (JavaScript evaluates its params function first) | channel | 1 or 0 |
///
/// Timeouts are as `create`'s options, per call (0 or less, or NaN: the channel's default).
/// `CORES` is borrowed meanwhile: the host never calls the module from its imports.
#[unsafe(export_name = "call")]
pub extern "C" fn call(handle: u32, op: u32, now: f64, a: f64, b: f64, c: f64, d: f64) -> f64 {
    let now = at(now);
    let channel = channel_id(a as u32);
    // A close code: -1 (or anything that is not one) is none.
    let code = u16::try_from(a as i32).ok();
    CORES.with_borrow_mut(|all| {
        let Some(Some(core)) = all.cores.get_mut(handle as usize) else {
            return 0.0;
        };
        match op {
            0 => core.connect(now),
            1 => core.disconnect(now, code),
            2 => match a as u32 {
                signal @ (0 | 1) => core.handle_visibility(signal == 1, now),
                signal => core.handle_online(signal == 3, now),
            },
            3 => core.handle_open(now),
            4 => core.handle_close(now, code),
            5 => core.handle_error(now),
            6 => core.handle_frame(now, incoming(a, b, c as u32, d as u32)),
            7 => core.handle_timeout(now),
            8 => {
                return core
                    .poll_timeout()
                    .map_or(-1.0, |t| t.as_micros() as f64 / 1000.0);
            }
            9 => {
                return match core.connection_state() {
                    ConnectionState::Connecting => 1.0,
                    ConnectionState::Open => 2.0,
                    _ => 0.0,
                };
            }
            10 => return f64::from(id(core.channel(a as u32, ()).as_u64())),
            11 => {
                return match core.join(channel, timeout(b), now) {
                    Ok(push) => f64::from(id(push.as_u64())),
                    Err(JoinError::AlreadyJoined) => -2.0,
                    Err(_) => -1.0,
                };
            }
            12 => {
                return match core.push(channel, (), timeout(b), now) {
                    Ok(push) => f64::from(id(push.as_u64())),
                    Err(PushError::NotJoined) => -2.0,
                    Err(_) => -1.0,
                };
            }
            13 => {
                return core
                    .leave(channel, now)
                    .map_or(-1.0, |push| f64::from(id(push.as_u64())));
            }
            14 => {
                core.remove_channel(channel);
            }
            15 => return f64::from(state_code(core.channel_state(channel))),
            16 => return core.join_ref(channel).map_or(-1.0, |r| r as f64),
            17 => return f64::from(u8::from(core.rejoin_due(channel, now))),
            _ => {}
        }
        0.0
    })
}

/// A frame from `call`'s arguments (op 6).
fn incoming(join_ref: f64, msg_ref: f64, topic: u32, kind: u32) -> Incoming<u32, ()> {
    let body = match kind {
        0 => InBody::Reply { ok: true, msg: () },
        1 => InBody::Reply { ok: false, msg: () },
        2 => InBody::Error(()),
        3 => InBody::Close(()),
        _ => InBody::Event(()),
    };
    Incoming {
        join_ref: incoming_ref(join_ref),
        msg_ref: incoming_ref(msg_ref),
        topic,
        body,
    }
}

fn channel_id(n: u32) -> ChannelId {
    ChannelId::from_u64(u64::from(n))
}

//! The browser client in a real browser (headless Chromium) against a real server.
//!
//! Run with: `scripts/test-client` (it starts the servers and passes their URLs at compile time:
//! `ALIGHT_TEST_SERVER` (`ws://…/socket` of `conformance-server`), `ALIGHT_TEST_HTTP` (its
//! `http://…`), `ALIGHT_SILENT_SERVER` (`ws://…/socket` of a server that accepts and never
//! answers)). Without them the tests pass without doing anything, so that `cargo test
//! --target wasm32-unknown-unknown` elsewhere does not fail for want of servers.
//!
//! Every wait is on an event, under a deadline.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use alight_client::{Callbacks, Client, Push};
use js_sys::{Array, ArrayBuffer, Function, JSON, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: Option<&str> = option_env!("ALIGHT_TEST_SERVER");
const HTTP: Option<&str> = option_env!("ALIGHT_TEST_HTTP");
const SILENT: Option<&str> = option_env!("ALIGHT_SILENT_SERVER");

/// Set by the runner with the three above, so that tests do not pass by skipping.
const REQUIRED: Option<&str> = option_env!("ALIGHT_BROWSER_SERVERS_REQUIRED");

/// How long one wait may take.
const DEADLINE_MS: f64 = 5000.0;

#[wasm_bindgen]
extern "C" {
    // Namespaced, so as not to clash with the library's own `setTimeout` imports at link time.
    #[wasm_bindgen(js_namespace = globalThis, js_name = setTimeout)]
    fn set_timeout(handler: &JsValue, ms: f64) -> JsValue;
    #[wasm_bindgen(js_namespace = globalThis, js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_name = fetch)]
    fn fetch(url: &str, init: &JsValue) -> Promise;
}

// The options as the package's `Socket` reads them before it makes its `Client`.
#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    #[wasm_bindgen(js_name = readOptions)]
    fn read_options(opts: &JsValue) -> Array;
}

/// Values recorded by callbacks, which a test awaits by count.
#[derive(Clone, Default)]
struct Recorder {
    inner: Rc<RefCell<Recorded>>,
}

/// The values so far, and the promises waiting for a count (`resolve` functions).
type Recorded = (Vec<JsValue>, Vec<(usize, Function)>);

impl Recorder {
    /// A callback that records its first argument.
    fn callback(&self) -> Function {
        let this = self.clone();
        Closure::<dyn Fn(JsValue)>::new(move |value| this.push(value))
            .into_js_value()
            .unchecked_into()
    }

    fn push(&self, value: JsValue) {
        let ready: Vec<Function> = {
            let mut inner = self.inner.borrow_mut();
            inner.0.push(value);
            let count = inner.0.len();
            let (ready, waiting) = inner.1.drain(..).partition(|(n, _)| *n <= count);
            inner.1 = waiting;
            ready.into_iter().map(|(_, resolve)| resolve).collect()
        };
        for resolve in ready {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    fn len(&self) -> usize {
        self.inner.borrow().0.len()
    }

    /// The `n`th value (from 1), once recorded.
    async fn nth(&self, n: usize, what: &str) -> JsValue {
        let inner = self.inner.clone();
        let promise = Promise::new(&mut |resolve, _| {
            let mut inner = inner.borrow_mut();
            if inner.0.len() >= n {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            } else {
                inner.1.push((n, resolve));
            }
        });
        within(promise, what).await;
        self.inner.borrow().0[n - 1].clone()
    }
}

/// Awaits `promise`, failing the test if it has not resolved within the deadline.
async fn within(promise: Promise, what: &str) -> JsValue {
    let message = format!("timed out after {DEADLINE_MS} ms waiting for {what}");
    let timer = Rc::new(RefCell::new(JsValue::UNDEFINED));
    let expired = {
        let timer = timer.clone();
        Promise::new(&mut |_, reject| {
            let message = message.clone();
            let fire = Closure::once_into_js(move || {
                let _ = reject.call1(&JsValue::UNDEFINED, &JsValue::from_str(&message));
            });
            *timer.borrow_mut() = set_timeout(&fire, DEADLINE_MS);
        })
    };
    let result = JsFuture::from(Promise::race(&Array::of2(&promise, &expired))).await;
    clear_timeout(&timer.borrow());
    match result {
        Ok(value) => value,
        Err(error) => panic!(
            "{}",
            error.as_string().unwrap_or_else(|| format!("{error:?}"))
        ),
    }
}

/// `{status, response}` of the first answer to `push`.
async fn settle(push: &Push, what: &str) -> (String, JsValue) {
    let answers = Recorder::default();
    for status in ["ok", "error", "timeout"] {
        let answers = answers.clone();
        let callback: Function = Closure::<dyn Fn(JsValue)>::new(move |response| {
            answers.push(Array::of2(&status.into(), &response).into());
        })
        .into_js_value()
        .unchecked_into();
        push.receive(status, &callback);
    }
    let answer: Array = answers.nth(1, what).await.unchecked_into();
    (answer.get(0).as_string().unwrap_or_default(), answer.get(1))
}

fn json(value: &JsValue) -> String {
    JSON::stringify(value)
        .map(String::from)
        .unwrap_or_else(|_| "<not JSON>".to_owned())
}

fn parse(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

fn options(extra: &[(&str, JsValue)]) -> JsValue {
    let options = Object::new();
    let fast: Function = Closure::<dyn Fn(u32) -> u32>::new(|_| 50)
        .into_js_value()
        .unchecked_into();
    let _ = Reflect::set(&options, &"reconnectAfterMs".into(), &fast);
    let _ = Reflect::set(&options, &"rejoinAfterMs".into(), &fast);
    for (key, value) in extra {
        let _ = Reflect::set(&options, &(*key).into(), value);
    }
    options.into()
}

/// A connected socket (the `Client` the package's `Socket` is made of), with its
/// `onOpen`/`onClose`/`onMessage` recorders.
struct Connected {
    socket: Client,
    opens: Recorder,
    closes: Recorder,
    messages: Recorder,
}

async fn connect(url: &str, opts: JsValue) -> Connected {
    let (opens, closes, messages) = (
        Recorder::default(),
        Recorder::default(),
        Recorder::default(),
    );
    let callbacks = Callbacks::new();
    callbacks.on_ref("open", &opens.callback());
    callbacks.on_ref("close", &closes.callback());
    callbacks.on_ref("message", &messages.callback());
    let socket = Client::new(url.to_owned(), read_options(&opts), callbacks);
    socket.connect(JsValue::UNDEFINED).expect("connect");
    opens.nth(1, "the socket to open").await;
    Connected {
        socket,
        opens,
        closes,
        messages,
    }
}

/// A channel of `socket`: its number, and its `on` callbacks.
struct Channel<'a> {
    socket: &'a Client,
    id: usize,
    callbacks: Callbacks,
}

impl Channel<'_> {
    fn new<'a>(socket: &'a Client, topic: &str, params: JsValue) -> Channel<'a> {
        let callbacks = Callbacks::new();
        let id = socket
            .channel(topic.into(), params, callbacks.clone())
            .expect("channel");
        Channel {
            socket,
            id,
            callbacks,
        }
    }

    fn push(&self, event: &str, payload: JsValue, timeout: Option<f64>) -> Push {
        let push = self
            .socket
            .send(Client::PUSH, self.id, Some(event.into()), payload, timeout);
        push.expect("push").expect("joined")
    }

    fn join(&self) -> Push {
        let push = self
            .socket
            .send(Client::JOIN, self.id, None, JsValue::UNDEFINED, None);
        push.expect("join").expect("a push")
    }
}

/// POSTs to one of the fixture's test routes (the answer is opaque to the page, which has no
/// CORS, but the request is made) and returns the code of the socket's next close.
async fn post_then_close_code(c: &Connected, url: &str, what: &str) -> Option<f64> {
    let closes = c.closes.len();
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"POST".into());
    let _ = Reflect::set(&init, &"mode".into(), &"no-cors".into());
    within(fetch(url, &init.into()), what).await;
    let close = c.closes.nth(closes + 1, "the close").await;
    Reflect::get(&close, &"code".into())
        .ok()
        .and_then(|code| code.as_f64())
}

async fn join(channel: &Channel<'_>) -> JsValue {
    let push = channel.join();
    let (status, response) = settle(&push, "the join").await;
    assert_eq!(status, "ok", "join: {}", json(&response));
    response
}

#[wasm_bindgen_test]
fn the_runner_passed_the_servers() {
    if REQUIRED.is_some() {
        assert!(SERVER.is_some() && HTTP.is_some() && SILENT.is_some());
    }
}

#[wasm_bindgen_test]
async fn join_push_and_the_three_answers() {
    let Some(server) = SERVER else { return };
    let c = connect(server, options(&[])).await;
    assert_eq!(c.socket.state(None, false), "open");
    let channel = Channel::new(&c.socket, "room:web", parse(r#"{"from":"browser"}"#));
    assert_eq!(json(&join(&channel).await), r#"{"user":null}"#);
    assert_eq!(c.socket.state(Some(channel.id), false), "joined");

    let push = channel.push("ping", parse(r#"{"n":1,"s":"ü ✓"}"#), None);
    let (status, response) = settle(&push, "ping").await;
    assert_eq!(
        (status.as_str(), json(&response).as_str()),
        ("ok", r#"{"n":1,"s":"ü ✓"}"#)
    );

    let push = channel.push("fail", parse("{}"), None);
    let (status, response) = settle(&push, "fail").await;
    assert_eq!(
        (status.as_str(), json(&response).as_str()),
        ("error", r#"{"reason":"failed"}"#)
    );

    let push = channel.push("noreply", parse("{}"), Some(200.0));
    assert_eq!(settle(&push, "noreply").await.0, "timeout");

    // Binary: an ArrayBuffer out, an ArrayBuffer back.
    let bytes = Uint8Array::from(&[0u8, 1, 254, 255][..]).buffer();
    let push = channel.push("ping", bytes.into(), None);
    let (status, response) = settle(&push, "binary ping").await;
    assert_eq!(status, "ok");
    let response: ArrayBuffer = response.dyn_into().expect("an ArrayBuffer");
    assert_eq!(Uint8Array::new(&response).to_vec(), [0, 1, 254, 255]);
    c.socket.disconnect(None, None);
}

#[wasm_bindgen_test]
async fn broadcast_reaches_every_socket() {
    let Some(server) = SERVER else { return };
    let a = connect(server, options(&[])).await;
    let b = connect(server, options(&[])).await;
    let ca = Channel::new(&a.socket, "room:web-bcast", JsValue::UNDEFINED);
    let cb = Channel::new(&b.socket, "room:web-bcast", JsValue::UNDEFINED);
    join(&ca).await;
    join(&cb).await;
    let (heard_a, heard_b) = (Recorder::default(), Recorder::default());
    ca.callbacks.on("shout", &heard_a.callback());
    cb.callbacks.on("shout", &heard_b.callback());
    let push = ca.push("shout", parse(r#"{"body":"hi"}"#), None);
    assert_eq!(settle(&push, "shout").await.0, "ok");
    assert_eq!(
        json(&heard_a.nth(1, "the sender's shout").await),
        r#"{"body":"hi"}"#
    );
    assert_eq!(
        json(&heard_b.nth(1, "the other's shout").await),
        r#"{"body":"hi"}"#
    );
    for c in [&a, &b] {
        c.socket.disconnect(None, None);
    }
}

#[wasm_bindgen_test]
async fn reconnects_and_rejoins_after_the_server_drops_the_socket() {
    let (Some(server), Some(http)) = (SERVER, HTTP) else {
        return;
    };
    let token_calls = Rc::new(RefCell::new(0u32));
    let token: Function = {
        let calls = token_calls.clone();
        Closure::<dyn Fn() -> Promise>::new(move || {
            *calls.borrow_mut() += 1;
            Promise::resolve(&JsValue::from_str("valid-token"))
        })
        .into_js_value()
        .unchecked_into()
    };
    let c = connect(server, options(&[("authToken", token.into())])).await;
    let channel = Channel::new(&c.socket, "private:web", JsValue::UNDEFINED);
    let joins = Recorder::default();
    channel.join().receive("ok", &joins.callback());
    assert_eq!(
        json(&joins.nth(1, "the first join").await),
        r#"{"user":"alice"}"#
    );

    // The server closes every socket of user_socket:alice (1001).
    let code = post_then_close_code(
        &c,
        &format!("{http}/test/disconnect/user_socket:alice"),
        "the disconnect request",
    )
    .await;
    assert_eq!(code, Some(1001.0));
    c.opens.nth(2, "the reconnect").await;
    assert_eq!(
        json(&joins.nth(2, "the rejoin").await),
        r#"{"user":"alice"}"#
    );
    assert_eq!(
        *token_calls.borrow(),
        2,
        "the token function is called on every connect"
    );
    c.socket.disconnect(None, None);
}

#[wasm_bindgen_test]
async fn heartbeats_are_answered_and_a_silent_server_is_detected() {
    let (Some(server), Some(silent)) = (SERVER, SILENT) else {
        return;
    };
    let interval = [("heartbeatIntervalMs", JsValue::from(100))];

    // Answered: the connection stays open across several heartbeats.
    let c = connect(server, options(&interval)).await;
    let mut replies = 0;
    let mut n = 0;
    while replies < 3 {
        n += 1;
        let message = c.messages.nth(n, "a heartbeat reply").await;
        let topic = Reflect::get(&message, &"topic".into())
            .ok()
            .and_then(|t| t.as_string());
        if topic.as_deref() == Some("phoenix") {
            replies += 1;
        }
    }
    assert_eq!(c.closes.len(), 0);
    c.socket.disconnect(None, None);

    // Unanswered: closed with 1000 "heartbeat timeout" by the next tick, then reconnected.
    let s = connect(silent, options(&interval)).await;
    let close = s.closes.nth(1, "the heartbeat timeout").await;
    assert_eq!(
        json(&close),
        r#"{"code":1000,"reason":"heartbeat timeout","wasClean":true}"#
    );
    s.opens.nth(2, "the reconnect").await;
    s.socket.disconnect(None, None);
}

#[wasm_bindgen_test]
async fn after_the_server_restarts_it_reconnects_rejoins_and_sends_the_push_made_offline() {
    let (Some(server), Some(http)) = (SERVER, HTTP) else {
        return;
    };
    let c = connect(server, options(&[])).await;
    let channel = Channel::new(&c.socket, "room:web-restart", JsValue::UNDEFINED);
    let joins = Recorder::default();
    channel.join().receive("ok", &joins.callback());
    joins.nth(1, "the first join").await;

    // The fixture closes every socket with 1012, as a stopping process does, then binds its
    // address again with a new endpoint that knows nothing of this client.
    let code =
        post_then_close_code(&c, &format!("{http}/test/restart"), "the restart request").await;
    assert_eq!(code, Some(1012.0));

    // Made while the socket is down: buffered, sent once the channel has joined again.
    assert_ne!(c.socket.state(None, false), "open");
    let push = channel.push("ping", parse(r#"{"made":"offline"}"#), Some(10_000.0));
    c.opens
        .nth(2, "the reconnect to the restarted server")
        .await;
    joins.nth(2, "the rejoin").await;
    let (status, response) = settle(&push, "the push made offline").await;
    assert_eq!(
        (status.as_str(), json(&response).as_str()),
        ("ok", r#"{"made":"offline"}"#)
    );
    c.socket.disconnect(None, None);
}

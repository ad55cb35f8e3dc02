//! The fixture server: channels whose behaviour every test suite relies on.
//!
//! | topic | join | events |
//! |---|---|---|
//! | `room:*` | ok, reply `{"user": name or null}`; params `{"refuse": r}` → error `{"reason": r}`; `{"crash": true}` → join crashes | see below |
//! | `private:*` | only with a valid token (`{"reason":"unauthorized"}` otherwise) | as `room:*` |
//! | `presence:*` | tracks `{"name": n}` and pushes `presence_state`; reply `{"phx_ref": r}` (or `{}`) | see below |
//! | `history:*` | as `room:*`, keeping history: the last 10,000 broadcasts for at least 5 min | as `room:*` |
//! | `brief:*` | as `room:*`, keeping the last 3 broadcasts | as `room:*` |
//!
//! A join of `room:*`, `history:*` or `brief:*` with `{"publish_during_join": n}` publishes
//! `during_join` `{"n": n}` on its topic through the PubSub while it runs, as another socket might.
//!
//! Events of `room:*`: `shout` broadcasts `shout` to all (sender included) and replies ok `{}`;
//! `shout_from` broadcasts `shout` to all but the sender; `ping` replies ok with the payload (binary
//! too); `fail` replies error `{"reason":"failed"}`; `noreply` never replies; `crash` panics;
//! `stop` replies ok then closes the channel; `push_me` pushes `pushed` with the payload then
//! replies ok; `count` replies ok `{"count": n}` with n counting this channel's `count`s.
//! Broadcasts of `censored` are intercepted and reach each client as `{"censored": true}`; those of
//! `forwarded` are intercepted and sent on unchanged (`Outgoing::Forward`).
//!
//! `presence:*` tracks presence: a join with `{"name": n}` tracks key `n` with meta
//! `{"online_at": 1700000000}` and pushes `presence_state` (a join without a name only watches);
//! `{"name": n, "then": "refuse"}` or `"crash"` tracks, then refuses or crashes the join. Events:
//! `update` merges the payload (an object) into the meta and replies ok `{"phx_ref": r}`;
//! `untrack` replies ok `{"untracked": bool}`; `list` replies ok with the server's list of the
//! topic; `crash` panics.
//!
//! Connect: token `valid-token` → socket id `user_socket:alice`, user `alice`; token `bad-token` →
//! refused (403); no token → anonymous. With [`Config::jwt`] set, the endpoint verifies the token
//! (`authToken` or the `token` param) and the JWT's `sub` is the user.
//! HTTP: `POST /api/broadcast` with key [`API_KEY`]; `POST /test/disconnect/{socket_id}`;
//! `POST /test/restart` restarts the server: every socket is closed with 1012 as on shutdown,
//! the address is bound again and a new endpoint (no state kept) serves on it, as when a process
//! is restarted (answered with `ok` before the shutdown starts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alight_protocol::Payload;
use alight_server::{
    Alight, Broadcast, Channel, Config, ConnectError, Connected, Context, HandleIn, History,
    JoinError, Outgoing,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The API key of the fixture's `/api/broadcast`.
pub const API_KEY: &str = "test-api-key";

/// The user a socket connected as.
#[derive(Debug, Clone)]
pub struct User(pub String);

/// `room:*` and `private:*`.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// Whether joining needs a signed-in user.
    pub private: bool,
}

fn json_payload(value: serde_json::Value) -> Payload {
    Payload::json(&value).unwrap_or_else(|_| Payload::empty())
}

impl Channel for Room {
    type State = u64;

    async fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> Result<(u64, Payload), JoinError> {
        let user = ctx.socket().assign::<User>().map(|u| u.0.clone());
        if self.private && user.is_none() {
            return Err(JoinError::reason("unauthorized"));
        }
        let params: serde_json::Value = params.deserialize().unwrap_or(serde_json::Value::Null);
        if let Some(reason) = params.get("refuse").and_then(|r| r.as_str()) {
            return Err(JoinError::reason(reason));
        }
        if params.get("crash").and_then(|c| c.as_bool()) == Some(true) {
            panic!("fixture: join asked to crash");
        }
        if let Some(n) = params.get("publish_during_join") {
            let message =
                Broadcast::new(ctx.topic(), "during_join", json_payload(json!({ "n": n })));
            ctx.pubsub().broadcast(Arc::new(message), None);
        }
        Ok((0, json_payload(json!({ "user": user }))))
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        count: &mut u64,
        ctx: &mut Context<'_>,
    ) -> HandleIn {
        match event {
            "shout" => {
                ctx.broadcast("shout", payload);
                HandleIn::ok(Payload::empty())
            }
            "shout_from" => {
                ctx.broadcast_from("shout", payload);
                HandleIn::ok(Payload::empty())
            }
            "ping" => HandleIn::ok(payload),
            "fail" => HandleIn::error_reason("failed"),
            "noreply" => HandleIn::NoReply,
            "crash" => panic!("fixture: handle_in asked to crash"),
            "stop" => HandleIn::Stop {
                reply: Some(("ok".to_owned(), Payload::empty())),
            },
            "push_me" => {
                ctx.push("pushed", payload);
                HandleIn::ok(Payload::empty())
            }
            "count" => {
                *count += 1;
                HandleIn::ok(json_payload(json!({ "count": *count })))
            }
            _ => HandleIn::error_reason("unknown event"),
        }
    }

    fn intercepts(&self) -> &[&str] {
        &["censored", "forwarded"]
    }

    async fn handle_out(
        &self,
        event: &str,
        _payload: &Payload,
        _count: &mut u64,
        _ctx: &mut Context<'_>,
    ) -> Outgoing {
        match event {
            "forwarded" => Outgoing::Forward,
            _ => Outgoing::Push(json_payload(json!({ "censored": true }))),
        }
    }
}

/// The `online_at` of every meta the `presence:*` fixture tracks.
pub const ONLINE_AT: u64 = 1_700_000_000;

/// `presence:*`: tracks the joining `name` (see the module table).
#[derive(Debug, Clone, Copy)]
pub struct PresenceRoom;

impl Channel for PresenceRoom {
    /// The tracked name, if any.
    type State = Option<String>;

    async fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> Result<(Option<String>, Payload), JoinError> {
        let params: serde_json::Value = params.deserialize().unwrap_or(serde_json::Value::Null);
        let name = params
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_owned);
        let mut reply = json!({});
        if let Some(name) = &name {
            let phx_ref = ctx
                .track(name, &json!({ "online_at": ONLINE_AT }))
                .map_err(|err| JoinError::reason(&err.to_string()))?;
            reply = json!({ "phx_ref": phx_ref });
        }
        match params.get("then").and_then(|t| t.as_str()) {
            Some("refuse") => return Err(JoinError::reason("refused after tracking")),
            Some("crash") => panic!("fixture: join asked to crash after tracking"),
            _ => {}
        }
        ctx.push_presence_state();
        Ok((name, json_payload(reply)))
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        name: &mut Option<String>,
        ctx: &mut Context<'_>,
    ) -> HandleIn {
        match (event, name.as_deref()) {
            ("update", Some(name)) => {
                let mut meta = json!({ "online_at": ONLINE_AT });
                if let (Some(meta), Ok(serde_json::Value::Object(fields))) = (
                    meta.as_object_mut(),
                    payload.deserialize::<serde_json::Value>(),
                ) {
                    meta.extend(fields);
                }
                match ctx.update(name, &meta) {
                    Ok(phx_ref) => HandleIn::ok(json_payload(json!({ "phx_ref": phx_ref }))),
                    Err(err) => HandleIn::error_reason(&err.to_string()),
                }
            }
            ("untrack", Some(name)) => {
                let untracked = ctx.untrack(name);
                HandleIn::ok(json_payload(json!({ "untracked": untracked })))
            }
            ("update" | "untrack", None) => HandleIn::error_reason("not tracked"),
            ("list", _) => HandleIn::ok(
                Payload::json(&ctx.presence_list()).unwrap_or_else(|_| Payload::empty()),
            ),
            ("crash", _) => panic!("fixture: handle_in asked to crash"),
            _ => HandleIn::error_reason("unknown event"),
        }
    }
}

/// The fixture endpoint with `config`.
pub fn alight(config: Config) -> Alight {
    Alight::builder()
        .config(config)
        .on_connect(|info| async move {
            // With JWT auth on, the endpoint verified the token: its subject is the user.
            if let Some(claims) = &info.claims {
                let user = claims.sub.clone().unwrap_or_default();
                return Ok(Connected::new()
                    .id(format!("user_socket:{user}"))
                    .assign(User(user)));
            }
            match info.token.as_deref() {
                None => Ok(Connected::new()),
                Some("valid-token") => Ok(Connected::new()
                    .id("user_socket:alice")
                    .assign(User("alice".to_owned()))),
                Some("banned-token") => Err(ConnectError::forbidden("banned")),
                Some(_) => Err(ConnectError::new("invalid token")),
            }
        })
        .channel("room:*", Room { private: false })
        .channel("private:*", Room { private: true })
        .channel("presence:*", PresenceRoom)
        .channel("history:*", Room { private: false })
        .history(History::last(10_000).for_at_least(Duration::from_secs(300)))
        .channel("brief:*", Room { private: false })
        .history(History::last(3))
        .build()
}

/// The fixture's axum app: socket, API and the test-only routes; `POST /test/restart` notifies
/// `restart`.
pub fn app(alight: &Alight, restart: Arc<Notify>) -> Router {
    Router::new()
        .merge(alight.router())
        .merge(alight.api_router(Some(API_KEY.to_owned())))
        .route(
            "/test/disconnect/{socket_id}",
            post(
                |State(alight): State<Alight>, Path(id): Path<String>| async move {
                    alight.disconnect(&id);
                    "ok"
                },
            ),
        )
        .with_state(alight.clone())
        .route(
            "/test/restart",
            post(move || async move {
                restart.notify_one();
                "ok"
            }),
        )
}

/// A fixture server on loopback; it shuts down when dropped.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The endpoint, to broadcast or inspect from tests (the first one: after `POST
    /// /test/restart` another serves).
    pub alight: Alight,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// `ws://…/socket/websocket?vsn=…`
    pub fn ws_url(&self, vsn: &str) -> String {
        format!("ws://{}/socket/websocket?vsn={vsn}", self.addr)
    }

    /// `http://…`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown and waits until every socket is closed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// Starts the fixture on `addr` (use `127.0.0.1:0`).
pub async fn start_on(addr: SocketAddr, config: Config) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let endpoint = alight(config.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve_until_stopped(
        listener,
        endpoint.clone(),
        config,
        stopped,
    ));
    Ok(Server {
        addr,
        alight: endpoint,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Serves `endpoint` on `listener` until `stopped` turns true; on `POST /test/restart`, shuts the
/// endpoint down (sockets closed with 1012), binds the same address again and serves a new one.
async fn serve_until_stopped(
    mut listener: TcpListener,
    mut endpoint: Alight,
    config: Config,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    loop {
        let restart = Arc::new(Notify::new());
        let app = app(&endpoint, restart.clone());
        let mut stop = stopped.clone();
        let signal = async move {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => {}
                () = restart.notified() => {}
            }
        };
        endpoint.serve(listener, app, signal).await?;
        // Stopped (or the `Server` is gone), else restarted.
        if *stopped.borrow() || stopped.has_changed().is_err() {
            return Ok(());
        }
        listener = TcpListener::bind(addr).await?;
        endpoint = alight(config.clone());
    }
}

/// Starts the fixture on `127.0.0.1:0` with a short shutdown timeout.
pub async fn start(config: Config) -> std::io::Result<Server> {
    start_on(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config.shutdown_timeout(Duration::from_secs(5)),
    )
    .await
}

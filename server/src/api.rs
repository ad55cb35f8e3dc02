//! Publishing from outside a channel: [`Alight`]'s broadcast, push and disconnect methods, and
//! the HTTP routes for other services: `POST /api/broadcast`, `GET /healthz`, `GET /metrics`.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `POST /api/broadcast` `{topic, event, payload}` | `Authorization: Bearer <api key>` | 202 `{"status":"accepted"}` once every subscriber on this node has taken the message (see [`Alight::broadcast_and_wait`]); 401 without a valid key; 400/415/422 for a bad body; 422 `{"error": <reason>}` for an event that the topic's schema (a [`TypedChannel`](crate::TypedChannel)'s) does not declare or whose payload does not fit it |
//! | `GET /healthz` | none | 200 `ok`; 200 `degraded: <reason>` while the PubSub cannot reach the other nodes (this node still serves its own sockets); 503 `shutting down` during shutdown |
//! | `GET /metrics` | none, or `Authorization: Bearer <metrics key>` with [`Alight::api_router_with_metrics_key`] | 200, Prometheus/OpenMetrics text; 401 without the metrics key when one is set |

use std::sync::Arc;

use alight_protocol::Payload;
use alight_protocol::schema::{Events, Schema, SchemaError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::Alight;
use crate::backpressure;
use crate::broadcast::Broadcast;
use crate::pubsub::BroadcastError;

#[derive(Clone)]
struct ApiState {
    alight: Alight,
    api_key: Option<Arc<str>>,
    /// When set, `GET /metrics` needs it as its bearer token.
    metrics_key: Option<Arc<str>>,
}

/// Why [`Alight::publish`] sent nothing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not in the schema's topic family.
    #[error("topic `{topic}` does not match the schema's topic pattern `{pattern}`")]
    WrongTopic {
        /// The topic given.
        topic: String,
        /// The schema's `TOPIC`.
        pattern: &'static str,
    },
    /// The event could not be encoded.
    #[error("the event cannot be encoded")]
    Encode(#[source] SchemaError),
}

#[derive(Deserialize)]
struct BroadcastRequest {
    topic: String,
    event: String,
    payload: Box<RawValue>,
}

impl Alight {
    /// Broadcasts `event` with `payload` to every subscriber of `topic`.
    ///
    /// Returns at once: a caller that broadcasts in a loop can queue faster than the subscribers'
    /// sockets are written, and their queues overflow (closing them as slow consumers). Use
    /// [`broadcast_and_wait`](Self::broadcast_and_wait) to be paced by the fan-out.
    pub fn broadcast(&self, topic: impl Into<String>, event: impl Into<String>, payload: Payload) {
        let message = Broadcast::new(topic, event, payload);
        self.state().pubsub.broadcast(Arc::new(message), None);
    }

    /// Broadcasts like [`broadcast`](Self::broadcast), then waits until every subscriber on this
    /// node has taken the message from its queue to write it. `POST /api/broadcast` answers after
    /// this, so an HTTP client sending one broadcast after another is paced by the fan-out.
    ///
    /// Subscribers that keep taking their messages keep the caller waiting however long the
    /// fan-out takes; one that stops reading holds it only briefly (and is closed once its queue
    /// overflows).
    ///
    /// ```no_run
    /// # async fn example(alight: alight_server::Alight) -> Result<(), alight_protocol::JsonError> {
    /// use alight_protocol::Payload;
    ///
    /// for n in 0..1000 {
    ///     let payload = Payload::from_json_str(&format!(r#"{{"n":{n}}}"#))?;
    ///     alight.broadcast_and_wait("room:lobby", "tick", payload).await;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn broadcast_and_wait(
        &self,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: Payload,
    ) {
        let message = Arc::new(Broadcast::new(topic, event, payload));
        let sent = Arc::downgrade(&message);
        self.state().pubsub.broadcast(message, None);
        backpressure::until_taken(&sent).await;
    }

    /// Broadcasts one of the schema `S`'s `Out` events to every subscriber of `topic`, as
    /// [`broadcast`](Self::broadcast) does; the typed way to publish from outside a channel.
    ///
    /// ```
    /// # use alight_protocol::schema::Schema;
    /// # use serde::{Deserialize, Serialize};
    /// # alight_protocol::events! {
    /// #     #[derive(Serialize, Deserialize)]
    /// #     #[serde(rename_all = "snake_case")]
    /// #     pub enum CounterOut { Total { value: u64 } }
    /// # }
    /// # pub struct CounterSchema;
    /// # impl Schema for CounterSchema {
    /// #     const TOPIC: &'static str = "counter:*";
    /// #     type JoinParams = ();
    /// #     type JoinReply = ();
    /// #     type In = CounterOut;
    /// #     type Reply = ();
    /// #     type Out = CounterOut;
    /// # }
    /// # let alight = alight_server::Alight::builder().build();
    /// alight.publish::<CounterSchema>("counter:lobby", &CounterOut::Total { value: 3 })?;
    /// assert!(alight.publish::<CounterSchema>("room:1", &CounterOut::Total { value: 3 }).is_err());
    /// # Ok::<(), alight_server::PublishError>(())
    /// ```
    pub fn publish<S: Schema>(
        &self,
        topic: impl Into<String>,
        event: &S::Out,
    ) -> Result<(), PublishError> {
        let topic = topic.into();
        if !S::matches_topic(&topic) {
            return Err(PublishError::WrongTopic {
                topic,
                pattern: S::TOPIC,
            });
        }
        let (event, payload) = event.to_parts().map_err(PublishError::Encode)?;
        self.broadcast(topic, event, payload);
        Ok(())
    }

    /// [`broadcast_and_wait`](Self::broadcast_and_wait), telling whether the broadcast was
    /// accepted: on a topic that keeps [history](crate::History), its store may refuse it (a Redis
    /// store while Redis is unreachable), and then it was delivered nowhere.
    ///
    /// ```no_run
    /// # async fn example(alight: alight_server::Alight) {
    /// use alight_protocol::Payload;
    ///
    /// if let Err(err) = alight.try_broadcast_and_wait("room:1", "tick", Payload::empty()).await {
    ///     eprintln!("not sent, try later: {err}");
    /// }
    /// # }
    /// ```
    pub async fn try_broadcast_and_wait(
        &self,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: Payload,
    ) -> Result<(), BroadcastError> {
        let message = Arc::new(Broadcast::new(topic, event, payload));
        let sent = Arc::downgrade(&message);
        self.state().pubsub.try_broadcast(message, None).await?;
        backpressure::until_taken(&sent).await;
        Ok(())
    }

    /// Pushes `event` to the channel on `topic` of every socket connected with `socket_id`.
    pub fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload) {
        self.state()
            .pubsub
            .push_to_socket(socket_id, topic, event, payload);
    }

    /// Closes every socket connected with `socket_id` (close code 1001).
    pub fn disconnect(&self, socket_id: &str) {
        self.state().pubsub.disconnect(socket_id);
    }

    /// `POST /api/broadcast` (guarded by `api_key`; without a key the route answers 401 to
    /// everyone), `GET /healthz` and `GET /metrics`, for any app state.
    pub fn api_router<S: Clone + Send + Sync + 'static>(
        &self,
        api_key: Option<String>,
    ) -> Router<S> {
        self.api_router_with_metrics_key(api_key, None)
    }

    /// [`Alight::api_router`], with `GET /metrics` guarded by `metrics_key` (as a bearer token,
    /// which Prometheus sends with `authorization: {credentials: ...}`) when it is `Some`.
    ///
    /// ```
    /// # let alight = alight_server::Alight::builder().build();
    /// let api = alight.api_router_with_metrics_key::<()>(
    ///     Some("api-key".into()),
    ///     Some("metrics-key".into()),
    /// );
    /// # let _ = api;
    /// ```
    pub fn api_router_with_metrics_key<S: Clone + Send + Sync + 'static>(
        &self,
        api_key: Option<String>,
        metrics_key: Option<String>,
    ) -> Router<S> {
        let state = ApiState {
            alight: self.clone(),
            api_key: api_key.map(Arc::from),
            metrics_key: metrics_key.map(Arc::from),
        };
        Router::new()
            .route("/api/broadcast", post(broadcast))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(state)
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive
/// (RFC 9110 section 11.1), so `bearer` and `BEARER` are read too.
///
/// ```
/// use alight_server::bearer_token;
/// use axum::http::{HeaderMap, HeaderValue, header};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
/// assert_eq!(bearer_token(&headers), Some("abc"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request carries `Authorization: Bearer <key>`, compared in constant time.
pub(crate) fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    let Some(given) = bearer_token(headers) else {
        return false;
    };
    given.len() == key.len()
        && given
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn broadcast(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<BroadcastRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let authorized = state
        .api_key
        .as_deref()
        .is_some_and(|key| bearer_matches(&headers, key));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "missing or invalid API key"})),
        )
            .into_response();
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            return (
                status,
                Json(serde_json::json!({"error": rejection.body_text()})),
            )
                .into_response();
        }
    };
    let payload = Payload::Json(request.payload.into());
    if let Some(check) = state.alight.state().channels.out_check(&request.topic)
        && let Err(error) = check(&request.event, &payload)
    {
        let reason = crate::typed::invalid_reason("the topic's schema refuses this event", &error);
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": reason})),
        )
            .into_response();
    }
    let sent = state
        .alight
        .try_broadcast_and_wait(request.topic, request.event, payload)
        .await;
    if let Err(err) = sent {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(serde_json::json!({"error": err.to_string()})),
        )
            .into_response();
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "accepted"})),
    )
        .into_response()
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.alight.state().shutdown.is_started() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else if let Some(reason) = state.alight.state().pubsub.degraded() {
        (StatusCode::OK, format!("degraded: {reason}")).into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(key) = &state.metrics_key
        && !bearer_matches(&headers, key)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or invalid metrics key",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.alight.metrics_text(),
    )
        .into_response()
}

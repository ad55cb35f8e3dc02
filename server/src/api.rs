//! The HTTP side: `POST /api/broadcast` for other services, `GET /healthz`, `GET /metrics`.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `POST /api/broadcast` `{topic, event, payload}` | `Authorization: Bearer <api key>` | 202 `{"status":"accepted"}` once every subscriber on this node has taken the message (at most 100 ms); 401 without a valid key; 400/415/422 for a bad body |
//! | `GET /healthz` | none | 200 `ok` (503 `shutting down` during shutdown) |
//! | `GET /metrics` | none | 200, Prometheus/OpenMetrics text |

use std::sync::Arc;

use alight_protocol::Payload;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Alight;

#[derive(Clone)]
struct ApiState {
    alight: Alight,
    api_key: Option<Arc<str>>,
}

#[derive(Deserialize)]
struct BroadcastRequest {
    topic: String,
    event: String,
    payload: Box<RawValue>,
}

impl Alight {
    /// `POST /api/broadcast` (guarded by `api_key`; without a key the route answers 401 to
    /// everyone), `GET /healthz` and `GET /metrics`, for any app state.
    pub fn api_router<S: Clone + Send + Sync + 'static>(
        &self,
        api_key: Option<String>,
    ) -> Router<S> {
        let state = ApiState {
            alight: self.clone(),
            api_key: api_key.map(Arc::from),
        };
        Router::new()
            .route("/api/broadcast", post(broadcast))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(state)
    }
}

/// Whether the request carries `Authorization: Bearer <key>`, compared in constant time.
pub fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
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
    state
        .alight
        .broadcast_and_wait(
            request.topic,
            request.event,
            Payload::Json(request.payload.into()),
        )
        .await;
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "accepted"})),
    )
        .into_response()
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.alight.hub.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.alight.metrics_text(),
    )
        .into_response()
}

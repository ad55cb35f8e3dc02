//! The demo's HTTP API: logging in, and creating notifications.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `POST /api/login` `{user_id}` | none (the demo has no passwords) | 200 `{user_id, token}` |
//! | `POST /api/notifications` `{user_id, title, body, sender?}` | `Authorization: Bearer <api key>`, or `Bearer <login token>` (the demo page's form) | 201 `{user_id, notification}`, after the row is committed and broadcast on `notifications:<user_id>`; the sender is the token's user, or the API key's `sender` (default `"system"`) |
//!
//! Every refusal is JSON `{"error": "..."}` ([`ApiError`](alight_demo_schema::ApiError)): 401 with
//! `WWW-Authenticate: Bearer` without a valid key or token (or an expired token); 400, 413 or 415
//! for a body that is not JSON or too large; 422 for JSON of the wrong shape or with invalid
//! fields; 429 with `Retry-After` when a logged-in user creates more than [`CREATE_BURST`]
//! notifications at once or [`CREATE_PER_SECOND`] a second over time (the API key is not
//! limited: it belongs to trusted services); 500 when the database fails (the cause goes to the
//! log).
//!
//! The login is password-less: anyone may log in as any user id. The rate limit bounds what one
//! token can do, not who gets one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use alight_demo_schema::{
    ApiError, LoginRequest, LoginResponse, MAX_BODY_CHARS, MAX_TITLE_CHARS, NewNotification,
    NotificationCreated, is_valid_user_id,
};
use alight_server::PubSub;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tracing::error;

use crate::notifications::Notifications;
use crate::token::TokenKey;

/// Notifications a logged-in user may create at once.
pub const CREATE_BURST: f64 = 20.0;
/// Notifications a logged-in user may create per second, over time.
pub const CREATE_PER_SECOND: f64 = 5.0;
/// Users whose budgets are remembered before the full ones are forgotten.
const CREATE_USERS_KEPT: usize = 10_000;

/// Per-user token buckets for notification creation. Locked briefly by each create request.
#[derive(Debug, Default)]
pub struct CreationLimit {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl CreationLimit {
    /// Takes one creation from `user_id`'s budget at `now`; whether there was one.
    fn take(&self, user_id: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= CREATE_USERS_KEPT && !buckets.contains_key(user_id) {
            // Forget the users whose budget is full again: they lose nothing.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * CREATE_PER_SECOND < CREATE_BURST
            });
        }
        let (tokens, at) = buckets
            .entry(user_id.to_owned())
            .or_insert((CREATE_BURST, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * CREATE_PER_SECOND).min(CREATE_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The largest request body accepted, in bytes (a full title and body fit several times over).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Creates and broadcasts notifications.
    pub notifications: Notifications,
    /// Where they are broadcast.
    pub pubsub: Arc<dyn PubSub>,
    /// Signs and verifies login tokens.
    pub tokens: TokenKey,
    /// The API key other services present.
    pub api_key: Arc<str>,
    /// Per-user budgets of notification creation.
    pub creation: Arc<CreationLimit>,
}

/// `POST /api/login` and `POST /api/notifications`, for any app state.
pub fn router<S: Clone + Send + Sync + 'static>(state: ApiState) -> Router<S> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/notifications", post(create_notification))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A refused request: its status and what to tell the client.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: String,
}

impl Refusal {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Refusal {
            status,
            error: error.into(),
        }
    }

    fn invalid(error: impl Into<String>) -> Self {
        Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, error)
    }
}

impl From<JsonRejection> for Refusal {
    fn from(rejection: JsonRejection) -> Self {
        Refusal::new(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Json(ApiError { error: self.error });
        if self.status == StatusCode::UNAUTHORIZED {
            (self.status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else if self.status == StatusCode::TOO_MANY_REQUESTS {
            (self.status, [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

fn check_user_id(user_id: &str) -> Result<(), Refusal> {
    if is_valid_user_id(user_id) {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "user_id must be 1 to 64 ASCII letters, digits, `_` or `-`",
        ))
    }
}

async fn login(
    State(state): State<ApiState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, Refusal> {
    let Json(LoginRequest { user_id }) = body?;
    check_user_id(&user_id)?;
    let token = state.tokens.sign(&user_id);
    Ok(Json(LoginResponse { user_id, token }))
}

/// Who a request's bearer token speaks for.
enum Caller<'t> {
    /// The API key: a trusted service.
    Service,
    /// A login token of this user.
    User(&'t str),
}

/// The caller a request's bearer token names (the scheme is case-insensitive), if valid.
fn caller<'h>(state: &ApiState, headers: &'h HeaderMap) -> Option<Caller<'h>> {
    let token = alight_server::bearer_token(headers)?;
    if is_api_key(token, &state.api_key) {
        return Some(Caller::Service);
    }
    state.tokens.verify(token).ok().map(Caller::User)
}

/// Whether `given` is the API key. Their digests are compared, so the time the comparison takes
/// says nothing about the key.
fn is_api_key(given: &str, key: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(key.as_bytes())
}

/// Checks a new notification's fields against the schema's limits.
fn validate(new: &NewNotification) -> Result<(), Refusal> {
    check_user_id(&new.user_id)?;
    if let Some(sender) = &new.sender
        && !is_valid_user_id(sender)
    {
        return Err(Refusal::invalid(
            "sender must be 1 to 64 ASCII letters, digits, `_` or `-`",
        ));
    }
    if new.title.trim().is_empty() {
        return Err(Refusal::invalid("title must not be empty"));
    }
    if new.title.chars().count() > MAX_TITLE_CHARS {
        return Err(Refusal::invalid(format!(
            "title must be at most {MAX_TITLE_CHARS} characters"
        )));
    }
    if new.body.chars().count() > MAX_BODY_CHARS {
        return Err(Refusal::invalid(format!(
            "body must be at most {MAX_BODY_CHARS} characters"
        )));
    }
    Ok(())
}

async fn create_notification(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<NewNotification>, JsonRejection>,
) -> Result<(StatusCode, Json<NotificationCreated>), Refusal> {
    let caller = caller(&state, &headers);
    match caller {
        None => {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "missing or invalid API key or login token",
            ));
        }
        Some(Caller::User(user)) if !state.creation.take(user, Instant::now()) => {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many notifications: try again in a second",
            ));
        }
        Some(_) => {}
    }
    let Json(new) = body?;
    validate(&new)?;
    let NewNotification {
        user_id,
        title,
        body,
        sender,
    } = new;
    let sender = match caller {
        Some(Caller::User(user)) => user.to_owned(),
        _ => sender.unwrap_or_else(|| "system".to_owned()),
    };
    let notification = state
        .notifications
        .create(state.pubsub.clone(), user_id.clone(), sender, title, body)
        .await
        .map_err(|err| {
            error!(
                error = &err as &(dyn std::error::Error + 'static),
                "cannot store a notification"
            );
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the notification could not be stored",
            )
        })?;
    Ok((
        StatusCode::CREATED,
        Json(NotificationCreated {
            user_id,
            notification,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(user_id: &str, title: &str, body: &str) -> NewNotification {
        NewNotification {
            user_id: user_id.into(),
            title: title.into(),
            body: body.into(),
            sender: None,
        }
    }

    #[test]
    fn creation_is_limited_per_user() {
        let limit = CreationLimit::default();
        let start = Instant::now();
        for _ in 0..CREATE_BURST as usize {
            assert!(limit.take("ann", start));
        }
        assert!(!limit.take("ann", start));
        // Others have their own budget, and it refills.
        assert!(limit.take("bob", start));
        let later = start + std::time::Duration::from_secs(1);
        assert!(limit.take("ann", later));
    }

    #[test]
    fn validation() {
        assert!(validate(&new("alice", "Hi", "")).is_ok());
        assert!(validate(&new("alice", &"é".repeat(MAX_TITLE_CHARS), "")).is_ok());
        for (bad, expected) in [
            (new("", "Hi", ""), "user_id"),
            (new("a:b", "Hi", ""), "user_id"),
            (new("alice", "  ", ""), "title must not be empty"),
            (
                new("alice", &"x".repeat(MAX_TITLE_CHARS + 1), ""),
                "title must be at most",
            ),
            (
                new("alice", "Hi", &"x".repeat(MAX_BODY_CHARS + 1)),
                "body must be at most",
            ),
        ] {
            let refusal = validate(&bad).expect_err("must refuse");
            assert_eq!(refusal.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(refusal.error.contains(expected), "{}", refusal.error);
        }
    }
}

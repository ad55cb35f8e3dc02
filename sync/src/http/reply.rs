//! Electric's response headers and error replies.
//!
//! | reply | status | body | `cache-control` |
//! |---|---|---|---|
//! | snapshot (`offset=-1`) | 200 | messages, then up-to-date | `max-age=604800, s-maxage=3600, stale-while-revalidate=2629746` |
//! | catch-up (`offset=<n>_0`, not live) | 200 | messages, up-to-date when caught up | `max-age=60, stale-while-revalidate=300` |
//! | long-poll (`live=true`) | 200 | messages and up-to-date, or only up-to-date after the hold | `max-age=5, stale-while-revalidate=5` |
//! | SSE (`live_sse=true`) | 200 | `data:` events, `: keep-alive` comments | `max-age=59` |
//! | must-refetch | 409 | `[{"headers":{"control":"must-refetch"}}]`, the new `electric-handle` | `max-age=60, must-revalidate` |
//! | bad parameter | 400 | `{"message":"Invalid request","errors":{field:[why]}}` | `no-store` |
//! | no identity / not allowed | 401 (`www-authenticate: Bearer`) / 403 | `{"message": ...}` | `no-store` |
//! | a limit reached | 503 with `retry-after` | `{"message": ...}` | `no-store` |
//! | database failure | 500 | `{"message": ...}` (cause in the log) | `no-store` |
//!
//! Responses computed for an identity are `private` (a shared cache must never hand alice's rows
//! to bob); anonymous ones are `public`, as Electric's. Every response varies on `authorization`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::schema::TableSchema;

/// `electric-handle`.
pub const HANDLE: HeaderName = HeaderName::from_static("electric-handle");
/// `electric-offset`.
pub const OFFSET: HeaderName = HeaderName::from_static("electric-offset");
/// `electric-schema`.
pub const SCHEMA: HeaderName = HeaderName::from_static("electric-schema");
/// `electric-up-to-date`.
pub const UP_TO_DATE: HeaderName = HeaderName::from_static("electric-up-to-date");
/// `electric-cursor`.
pub const CURSOR: HeaderName = HeaderName::from_static("electric-cursor");

/// The headers a browser client must be allowed to read.
pub const EXPOSED: &str = "electric-handle, electric-offset, electric-schema, electric-up-to-date, electric-cursor, etag, retry-after";

/// Which `cache-control` a reply gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// The first chunk of a shape.
    Snapshot,
    /// A catch-up chunk.
    CatchUp,
    /// A long-poll answer.
    Live,
    /// A Server-Sent Events stream.
    Sse,
}

impl Caching {
    /// The header value; `private` when computed for an identity.
    pub fn header(self, private: bool) -> HeaderValue {
        let scope = if private { "private" } else { "public" };
        let rest = match self {
            Caching::Snapshot => "max-age=604800, s-maxage=3600, stale-while-revalidate=2629746",
            Caching::CatchUp => "max-age=60, stale-while-revalidate=300",
            Caching::Live => "max-age=5, stale-while-revalidate=5",
            Caching::Sse => "max-age=59",
        };
        HeaderValue::try_from(format!("{scope}, {rest}")).expect("cache-control values are ASCII")
    }
}

/// Sets `name` to `value` when `value` is a valid header value (handles and offsets are ASCII
/// this server made; a client's cursor is only echoed if valid).
pub fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The `electric-schema` of `columns` in `schema` with key `key`.
pub fn schema_header(schema: &TableSchema, columns: &[usize], key: &[usize]) -> String {
    let mut object = serde_json::Map::new();
    for i in columns {
        let mut info = serde_json::Map::new();
        info.insert("type".into(), schema.electric_type(*i).into());
        if let Some(pk) = key.iter().position(|k| k == i) {
            info.insert("pk_index".into(), pk.into());
        }
        if schema.columns[*i].not_null {
            info.insert("not_null".into(), true.into());
        }
        object.insert(schema.columns[*i].name.clone(), info.into());
    }
    serde_json::Value::Object(object).to_string()
}

/// Seconds from the Unix epoch to 2024-10-09, where Electric counts live cursor intervals from.
const CURSOR_EPOCH: u64 = 1_728_432_000;

/// The next `electric-cursor`: the end of the current interval of `interval_secs`, counted from
/// Electric's epoch, and never the cursor the client sent (so the next live URL differs).
pub fn next_cursor(interval_secs: u64, previous: Option<&str>) -> String {
    let interval = interval_secs.max(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut cursor = (now.saturating_sub(CURSOR_EPOCH) / interval + 1) * interval;
    if previous.and_then(|p| p.parse::<u64>().ok()) == Some(cursor) {
        cursor += interval;
    }
    cursor.to_string()
}

/// An error reply with a JSON body.
#[derive(Debug)]
pub struct ErrorReply {
    status: StatusCode,
    body: serde_json::Value,
    retry_after: bool,
}

impl ErrorReply {
    /// `status` with `{"message": message}`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            body: json!({"message": message.into()}),
            retry_after: false,
        }
    }

    /// 400 with Electric's `errors` by field.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ErrorReply {
        let mut errors = serde_json::Map::new();
        errors.insert(field.to_owned(), json!([reason.into()]));
        ErrorReply {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Invalid request", "errors": errors}),
            retry_after: false,
        }
    }

    /// 503 with `retry-after`.
    pub fn overloaded(message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            retry_after: true,
            ..ErrorReply::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The 409 that sends the client back to `offset=-1` with `handle`.
pub fn must_refetch(handle: &str, private: bool) -> Response {
    let body = serde_json::Value::Array(vec![crate::message::must_refetch()]);
    let mut response = (StatusCode::CONFLICT, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    set(headers, HANDLE, handle);
    let scope = if private { "private" } else { "public" };
    set(
        headers,
        header::CACHE_CONTROL,
        &format!("{scope}, max-age=60, must-revalidate"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_moves_past_the_clients() {
        let first = next_cursor(20, None);
        let n: u64 = first.parse().expect("a number");
        assert_eq!(n % 20, 0);
        assert_ne!(next_cursor(20, Some(&first)), first);
    }
}

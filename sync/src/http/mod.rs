//! Electric's HTTP shape API: `GET /v1/shape`, as an axum [`Router`] the stock
//! `@electric-sql/client` (`ShapeStream`, `Shape`) works against unchanged.
//!
//! - [`query`]: the query string, checked as Electric checks it.
//! - [`reply`]: headers, cache control, error replies (the table of statuses is there).
//! - `sse`: the Server-Sent Events variant of a live request.
//!
//! A request runs: identify (the application's hook, from the headers) -> check the query ->
//! resolve the shape with the table's authorization filter -> then by offset: `-1` streams a
//! snapshot; `now` answers up-to-date at the current end; `<n>_0` answers the changes after `n`
//! (holding a `live` request until there are some, or for the long-poll timeout; `live_sse`
//! streams them). A handle that is not the shape's live handle, or an offset older than the feed
//! holds, gets a 409 with the handle to start again from.

pub mod query;
pub mod reply;
mod sse;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;

use crate::db::{ServeError, ShapeOrLimit, SnapshotPart, SyncDb};
use crate::live_shapes::Shape;
use crate::message;
use crate::shape::ShapeError;
use crate::shared_read::json_body;
use crate::table::{Denied, Identity};
use query::{Offset, ShapeQuery};
use reply::{Caching, ErrorReply};

type Identify = dyn Fn(&HeaderMap) -> Option<Identity> + Send + Sync;

#[derive(Clone)]
struct ApiState {
    db: SyncDb,
    identify: Arc<Identify>,
}

/// `GET /v1/shape` (and its CORS preflight) over `db`; `identify` finds the request's identity
/// in its headers (a bearer token, say), `None` for an anonymous request.
pub fn router<S: Clone + Send + Sync + 'static>(
    db: SyncDb,
    identify: impl Fn(&HeaderMap) -> Option<Identity> + Send + Sync + 'static,
) -> Router<S> {
    Router::new()
        .route("/v1/shape", get(get_shape).options(preflight))
        .layer(middleware::from_fn(cors))
        .with_state(ApiState {
            db,
            identify: Arc::new(identify),
        })
}

/// The bearer token of `headers`' `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Lets browser pages on other origins read shapes and Electric's headers.
async fn cors(request: Request, next: Next) -> Response {
    let asked = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let is_preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(reply::EXPOSED),
    );
    headers.append(header::VARY, HeaderValue::from_static("authorization"));
    if is_preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            asked.unwrap_or(HeaderValue::from_static("authorization")),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}

fn shape_error(err: ShapeOrLimit) -> ErrorReply {
    match err {
        ShapeOrLimit::Limit(limit) => ErrorReply::overloaded(limit.to_string()),
        ShapeOrLimit::Shape(err) => match err {
            ShapeError::UnknownTable(_) => ErrorReply::invalid("table", err.to_string()),
            ShapeError::UnknownColumn(_) | ShapeError::MissingKey(_) => {
                ErrorReply::invalid("columns", err.to_string())
            }
            ShapeError::Where(_) | ShapeError::Bind(_) => {
                ErrorReply::invalid("where", err.to_string())
            }
            ShapeError::Denied(Denied::Unauthenticated) => {
                ErrorReply::new(StatusCode::UNAUTHORIZED, err.to_string())
            }
            ShapeError::Denied(Denied::Forbidden(_)) => {
                ErrorReply::new(StatusCode::FORBIDDEN, err.to_string())
            }
            ShapeError::BadAuthFilter { .. } => {
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "cannot apply an authorization filter"
                );
                ErrorReply::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server's authorization rule failed",
                )
            }
        },
    }
}

fn server_error(err: &(dyn std::error::Error + 'static)) -> ErrorReply {
    tracing::error!(error = err, "cannot serve a shape");
    ErrorReply::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the database failed; retry",
    )
}

/// What every response of a shape carries.
struct Meta<'a> {
    shape: &'a Arc<Shape>,
    query: &'a ShapeQuery,
    private: bool,
}

impl Meta<'_> {
    fn headers(&self, next: i64, caching: Caching, up_to_date: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let offset = Offset::render(next);
        if caching != Caching::Sse {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        reply::set(&mut headers, reply::HANDLE, &self.shape.handle);
        reply::set(&mut headers, reply::OFFSET, &offset);
        headers.insert(header::CACHE_CONTROL, caching.header(self.private));
        let start = match self.query.offset {
            Offset::Start => "-1".to_owned(),
            Offset::Now => "now".to_owned(),
            Offset::After(n) => Offset::render(n),
        };
        reply::set(
            &mut headers,
            header::ETAG,
            &format!("\"{}:{start}:{offset}\"", self.shape.handle),
        );
        if up_to_date {
            headers.insert(reply::UP_TO_DATE, HeaderValue::from_static(""));
        }
        if self.query.live {
            let interval = 20;
            reply::set(
                &mut headers,
                reply::CURSOR,
                &reply::next_cursor(interval, self.query.cursor.as_deref()),
            );
        }
        headers
    }

    fn with_schema(&self, db: &SyncDb, headers: &mut HeaderMap) {
        let entry = &db.tables()[self.shape.def.table];
        reply::set(
            headers,
            reply::SCHEMA,
            &reply::schema_header(&entry.schema, &self.shape.def.columns, &entry.key),
        );
    }
}

async fn get_shape(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match serve(&state, &headers, &pairs).await {
        Ok(response) => response,
        Err(reply) => reply.into_response(),
    }
}

async fn serve(
    state: &ApiState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Response, ErrorReply> {
    let db = &state.db;
    let identity = (state.identify)(headers);
    let query = query::parse(pairs).map_err(|e| ErrorReply::invalid(e.field, e.reason))?;
    let shape = db
        .shape(&query.shape, identity.as_ref())
        .map_err(shape_error)?;
    let meta = Meta {
        shape: &shape,
        query: &query,
        private: identity.is_some(),
    };
    if query.offset != Offset::Start
        && let Some(handle) = &query.handle
        && *handle != shape.handle
    {
        return Ok(reply::must_refetch(&shape.handle, meta.private));
    }
    match query.offset {
        Offset::Start => snapshot(db, &meta).await,
        Offset::Now => {
            let head = db.feed().head();
            let mut headers = meta.headers(head, Caching::CatchUp, true);
            meta.with_schema(db, &mut headers);
            Ok((headers, json_body(Vec::new(), true)).into_response())
        }
        Offset::After(after) => {
            if after > db.feed().head() {
                let known = db.database_head().await.map_err(|e| server_error(&e))?;
                if after > known {
                    return Err(ErrorReply::invalid(
                        "offset",
                        "out of bounds for this shape",
                    ));
                }
            }
            if query.sse {
                let subscription = db
                    .live_shapes()
                    .subscribe(&shape)
                    .map_err(|e| ErrorReply::overloaded(e.to_string()))?;
                let headers = meta.headers(after, Caching::Sse, false);
                Ok(sse::stream(
                    db.clone(),
                    shape.clone(),
                    after,
                    subscription,
                    headers,
                ))
            } else if query.live {
                long_poll(db, &meta, after, identity.as_ref()).await
            } else {
                catch_up(db, &meta, after, identity.as_ref())
            }
        }
    }
}

/// The 409 for a shape whose clients cannot continue: a new handle for the same definition.
fn expired(
    db: &SyncDb,
    meta: &Meta<'_>,
    identity: Option<&Identity>,
) -> Result<Response, ErrorReply> {
    db.live_shapes().expire(meta.shape);
    let fresh = db.shape(&meta.query.shape, identity).map_err(shape_error)?;
    Ok(reply::must_refetch(&fresh.handle, meta.private))
}

fn catch_up(
    db: &SyncDb,
    meta: &Meta<'_>,
    after: i64,
    identity: Option<&Identity>,
) -> Result<Response, ErrorReply> {
    let Some((messages, next)) = db.changes_since(meta.shape, after) else {
        return expired(db, meta, identity);
    };
    let up_to_date = next >= db.feed().head();
    let mut headers = meta.headers(next, Caching::CatchUp, up_to_date);
    meta.with_schema(db, &mut headers);
    Ok((headers, json_body(messages, up_to_date)).into_response())
}

async fn long_poll(
    db: &SyncDb,
    meta: &Meta<'_>,
    after: i64,
    identity: Option<&Identity>,
) -> Result<Response, ErrorReply> {
    let _subscription = db
        .live_shapes()
        .subscribe(meta.shape)
        .map_err(|e| ErrorReply::overloaded(e.to_string()))?;
    // Woken only by changes this shape's filter matches (see `crate::index`), or a rotation.
    let mut wakeups = meta.shape.wakeups();
    let mut rotations = db.live_shapes().rotations();
    let deadline = tokio::time::Instant::now() + db.config().long_poll_timeout;
    let mut at = after;
    loop {
        wakeups.borrow_and_update();
        rotations.borrow_and_update();
        if !db.live_shapes().is_live(&meta.shape.handle) {
            let fresh = db.shape(&meta.query.shape, identity).map_err(shape_error)?;
            return Ok(reply::must_refetch(&fresh.handle, meta.private));
        }
        // Built once for every long-poll of this shape woken at this offset.
        let Some(read) = db.shared_read(meta.shape, at) else {
            return expired(db, meta, identity);
        };
        at = read.next;
        if read.has_messages {
            let headers = meta.headers(read.next, Caching::Live, read.up_to_date);
            return Ok((headers, Body::from(read.body.clone())).into_response());
        }
        if at < db.feed().head() {
            // A chunk cut at its size bound, with nothing for this shape: read on.
            continue;
        }
        tokio::select! {
            _ = wakeups.changed() => {}
            _ = rotations.changed() => {}
            () = tokio::time::sleep_until(deadline) => {
                let headers = meta.headers(at, Caching::Live, true);
                return Ok((headers, json_body(Vec::new(), true)).into_response());
            }
        }
    }
}

async fn snapshot(db: &SyncDb, meta: &Meta<'_>) -> Result<Response, ErrorReply> {
    let (head, chunks) = db
        .snapshot(meta.shape.clone())
        .await
        .map_err(|e| server_error(&e))?;
    let mut headers = meta.headers(head, Caching::Snapshot, true);
    meta.with_schema(db, &mut headers);
    // The rows, then the closing up-to-date; a snapshot that fails or stops early errors the
    // body, so the client sees a broken response (and retries), never a short one.
    let tail = format!("{}]", message::up_to_date(None));
    let rows = stream::unfold(Some(chunks), move |chunks| {
        let tail = tail.clone();
        async move {
            let mut chunks = chunks?;
            match chunks.recv().await {
                Some(Ok(SnapshotPart::Rows(bytes))) => Some((Ok(bytes), Some(chunks))),
                Some(Ok(SnapshotPart::End)) => Some((Ok(Bytes::from(tail)), None)),
                Some(Err(err)) => Some((Err(err), None)),
                None => Some((Err(ServeError::Incomplete), None)),
            }
        }
    });
    let body = stream::once(async { Ok(Bytes::from_static(b"[")) }).chain(rows);
    Ok((headers, Body::from_stream(body)).into_response())
}

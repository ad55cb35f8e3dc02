//! Live database rows for Alight: tables of a SQLite file served as *shapes* (the rows of a table
//! that match a filter), first as a snapshot, then as the stream of committed changes, with
//! Electric's HTTP shape protocol, so the stock `@electric-sql/client` works against it.
//!
//! # Layout
//! From the database up:
//! - [`value`]: SQLite values, compared as SQLite compares them, rendered as Electric sends them;
//!   [`schema`]: a table's columns and their Electric types.
//! - [`capture`]: triggers write every committed row change (whichever process made it) into a
//!   change-log table; a watcher thread publishes it, whole transactions in commit order, to the
//!   [`feed`], the bounded in-memory log of changes readers wait on.
//! - [`filter`]: the `where` subset: parsed, bound to a table, run as SQL with bound parameters
//!   (snapshots) or in Rust (changes), with the same result.
//! - [`table`]: what the server declares ([`SyncTable`]: readable columns, key, the
//!   authorization hook from [`Identity`] to [`Filter`]); [`shape`]: a client's request resolved
//!   into a shape; [`live_shapes`]: live shapes and their handles, bounded, and [`index`]: which of
//!   them a change concerns, by equality column, so only those wake; [`message`]: Electric's
//!   change and control messages for one shape; [`shared_read`]: a shape's last read of its
//!   changes, built once for all the long-polls that ask at the same offset.
//! - [`db`]: [`SyncDb`], which ties them together (snapshot and changes join without gap or
//!   duplicate); [`config`]: its limits.
//! - [`http`]: `GET /v1/shape`, Electric's HTTP API, as an axum router; [`channel`]: the same
//!   shapes over Alight channels (`shape:<table>`), for the socket clients.
//! - `typescript`: TypeScript declarations of the tables' rows ([`typescript_rows`]), for the
//!   application's `LiveCollection<Row>`.
//!
//! # Example
//! ```no_run
//! use alight_sync::{Config, Denied, Filter, SqlValue, SyncDb, SyncTable, Identity};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let notifications = SyncTable::new("notifications").authorize(|who| {
//!     let who = who.ok_or(Denied::Unauthenticated)?;
//!     Ok(Filter::eq("user_id", SqlValue::Text(who.subject().to_owned())))
//! });
//! let db = SyncDb::open(std::path::Path::new("app.db"), vec![notifications], Config::default())?;
//! // Here the bearer token is the user id; check a real token instead.
//! let app: axum::Router = alight_sync::http::router(db, |headers| {
//!     alight_sync::http::bearer(headers).map(Identity::new)
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod capture;
pub mod channel;
pub mod config;
pub mod db;
pub mod feed;
pub mod filter;
pub mod http;
pub mod index;
pub mod live_shapes;
pub mod message;
pub mod schema;
pub mod shape;
pub mod shared_read;
pub mod table;
mod typescript;
pub mod value;

pub use config::Config;
pub use db::{OpenError, ServeError, ShapeOrLimit, SyncDb};
pub use shape::{Replica, ShapeError, ShapeRequest};
pub use table::{Denied, Filter, Identity, SyncTable};
pub use typescript::typescript_rows;
pub use value::SqlValue;

//! The demo's notifications as a shape: `GET /v1/shape?table=notifications` answers the
//! logged-in user's rows, then their changes, to the stock `@electric-sql/client` (see
//! `alight_sync::http`), and the socket's `shape:notifications` channel serves the same shape to
//! the page's bell (see `alight_sync::channel`).
//!
//! The identity is the login token from `POST /api/login`, sent as `Authorization: Bearer
//! <token>`; without a valid one the shape is a 401. Over the socket, the identity is the user
//! whose token the socket connected with. The authorization rule adds
//! `user_id = <the token's user>` to every shape, so no `where` a client sends can reach another
//! user's rows. Writes from anywhere show up: the API, the channel's mark-read, or the `sqlite3`
//! shell on `<data>/alight.db` (the capture reads the file's change log, see `alight_sync::capture`).

use std::path::Path;

use alight_sync::channel::ShapeChannel;
use alight_sync::{Config, Denied, Filter, Identity, OpenError, SqlValue, SyncDb, SyncTable};
use axum::Router;

use crate::token::{TokenKey, User};

/// The syncable `notifications` table: every column readable, rows by owner.
fn notifications() -> SyncTable {
    SyncTable::new("notifications").authorize(|who: Option<&Identity>| {
        let who = who.ok_or(Denied::Unauthenticated)?;
        Ok(Filter::eq(
            "user_id",
            SqlValue::Text(who.subject().to_owned()),
        ))
    })
}

/// The TypeScript row types of the syncable tables, read from `conn`'s schema (a migrated
/// database): what `alight-demo --emit-ts` writes, and what `demo/static/rows.d.ts` holds.
pub fn typescript_rows(conn: &rusqlite::Connection) -> Result<String, OpenError> {
    alight_sync::typescript_rows(conn, &[notifications()])
}

/// The demo's generated row types, checked in at `demo/static/rows.d.ts` for the pages'
/// TypeScript (`LiveCollection<NotificationsRow>`); a test keeps it equal to
/// [`typescript_rows`].
#[cfg(test)]
const ROWS_TS: &str = include_str!("../static/rows.d.ts");

/// Opens the shape engine on the (already migrated) database at `path`.
pub fn open(path: &Path) -> Result<SyncDb, OpenError> {
    SyncDb::open(path, vec![notifications()], Config::default())
}

/// `GET /v1/shape` over `db`, identifying requests by their login token.
pub fn router<S: Clone + Send + Sync + 'static>(db: SyncDb, tokens: TokenKey) -> Router<S> {
    alight_sync::http::router(db, move |headers| {
        let token = alight_sync::http::bearer(headers)?;
        tokens.verify(token).ok().map(Identity::new)
    })
}

/// The `shape:*` channel over `db`, identifying sockets by the user their token named.
pub fn channel(db: SyncDb) -> ShapeChannel {
    ShapeChannel::new(db, |socket| {
        socket.assign::<User>().map(|user| Identity::new(user.id()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    #[test]
    fn the_checked_in_row_types_are_the_generated_ones() -> Result<(), Box<dyn std::error::Error>> {
        let db = Db::open_in_memory()?;
        let generated = typescript_rows(db.connection())?;
        assert!(
            generated == ROWS_TS,
            "demo/static/rows.d.ts is not what the schema gives; write it again with \
             `cargo run -p alight-demo -- --emit-ts demo/static/rows.d.ts`:\n{generated}"
        );
        assert!(generated.contains("export type NotificationsRow = {"));
        Ok(())
    }
}

//! What the server declares: which tables are syncable ([`SyncTable`]), which of their columns
//! may be read, their primary key, and the authorization hook that turns the request's
//! [`Identity`] into the [`Filter`] every shape of the table gets (or a [`Denied`]).

use std::fmt;
use std::sync::Arc;

use crate::filter::{CmpOp, Expr, Operand, ParseError, parse};
use crate::value::SqlValue;

/// Who is asking, as the application's `identify` hook established it (the user id behind a
/// bearer token, say).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    subject: String,
}

impl Identity {
    /// The identity of `subject`.
    pub fn new(subject: impl Into<String>) -> Identity {
        Identity {
            subject: subject.into(),
        }
    }

    /// The subject (user id).
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// Why the authorization hook refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// No identity, and the table needs one: HTTP 401.
    #[error("authentication required")]
    Unauthenticated,
    /// The identity may not read the table: HTTP 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// The rows an identity may see: a condition the server adds (with `AND`) to every shape of the
/// table, whatever `where` the client sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub(crate) expr: Expr,
    pub(crate) params: Vec<SqlValue>,
}

impl Filter {
    /// Every row.
    pub fn all() -> Filter {
        Filter {
            expr: Expr::True,
            params: Vec::new(),
        }
    }

    /// The rows whose `column` equals `value`.
    ///
    /// ```
    /// use alight_sync::{Filter, SqlValue};
    /// let mine = Filter::eq("user_id", SqlValue::Text("alice".into()));
    /// assert_ne!(mine, Filter::all());
    /// ```
    pub fn eq(column: impl Into<String>, value: SqlValue) -> Filter {
        Filter {
            expr: Expr::Compare {
                column: column.into(),
                op: CmpOp::Eq,
                value: Operand::Literal(value),
            },
            params: Vec::new(),
        }
    }

    /// A filter in the `where` subset, with values for its `$n`.
    pub fn parse(where_: &str, params: Vec<SqlValue>) -> Result<Filter, ParseError> {
        Ok(Filter {
            expr: parse(where_)?,
            params,
        })
    }
}

type Authorize = dyn Fn(Option<&Identity>) -> Result<Filter, Denied> + Send + Sync;

/// A table the server makes syncable.
///
/// ```
/// use alight_sync::{Denied, Filter, SqlValue, SyncTable};
/// let notifications = SyncTable::new("notifications")
///     .columns(["id", "user_id", "title", "read_at"])
///     .authorize(|who| {
///         let who = who.ok_or(Denied::Unauthenticated)?;
///         Ok(Filter::eq("user_id", SqlValue::Text(who.subject().to_owned())))
///     });
/// # let _ = notifications;
/// ```
#[derive(Clone)]
pub struct SyncTable {
    pub(crate) name: String,
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) primary_key: Option<Vec<String>>,
    pub(crate) authorize: Arc<Authorize>,
}

impl fmt::Debug for SyncTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncTable")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .field("primary_key", &self.primary_key)
            .finish_non_exhaustive()
    }
}

impl SyncTable {
    /// Declares `name`; until [`SyncTable::authorize`] or [`SyncTable::public`] is called, every
    /// request for it is refused (403).
    pub fn new(name: impl Into<String>) -> SyncTable {
        SyncTable {
            name: name.into(),
            columns: None,
            primary_key: None,
            authorize: Arc::new(|_| {
                Err(Denied::Forbidden(
                    "the table has no authorization rule".into(),
                ))
            }),
        }
    }

    /// The columns clients may read (and filter on); all of them by default. The primary key
    /// must be among them.
    pub fn columns<I, S>(mut self, columns: I) -> SyncTable
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The primary key, for a table whose declared key is not the row's identity (or that has
    /// none); the declared `PRIMARY KEY` by default.
    pub fn primary_key<I, S>(mut self, columns: I) -> SyncTable
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.primary_key = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The authorization hook: from the request's identity (`None` when the `identify` hook
    /// found none) to the filter its shapes get, or a refusal.
    pub fn authorize(
        mut self,
        hook: impl Fn(Option<&Identity>) -> Result<Filter, Denied> + Send + Sync + 'static,
    ) -> SyncTable {
        self.authorize = Arc::new(hook);
        self
    }

    /// Everyone, signed in or not, may read every row.
    pub fn public(self) -> SyncTable {
        self.authorize(|_| Ok(Filter::all()))
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

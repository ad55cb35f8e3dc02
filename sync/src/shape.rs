//! A shape: the rows of one table that match a filter, with some of their columns. A
//! [`ShapeRequest`] (what the client asks) plus the identity's authorization filter resolve
//! into a [`ShapeDef`] (what the server serves), or a [`ShapeError`] that says why not.

use crate::filter::{self, BindError, Cond, Expr, ParseError};
use crate::schema::TableSchema;
use crate::table::{Denied, Identity, SyncTable};
use crate::value::SqlValue;

/// How much of a row updates and deletes carry (Electric's `replica`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replica {
    /// Updates carry the key and the changed columns; deletes the key.
    #[default]
    Default,
    /// Updates and deletes carry the whole row; updates also `old_value` with the previous
    /// values of the changed columns.
    Full,
}

/// What a client asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapeRequest {
    /// The table.
    pub table: String,
    /// A filter in the supported subset ([`filter::parse()`]).
    pub where_: Option<String>,
    /// The values of `$1`, `$2`, ... in `where_`.
    pub params: Vec<SqlValue>,
    /// The columns to send (all readable ones when `None`); must include the primary key.
    pub columns: Option<Vec<String>>,
    /// How much of a row changes carry.
    pub replica: Replica,
}

/// Why a shape request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The table is not declared syncable (or does not exist).
    #[error("table `{0}` does not exist or is not syncable")]
    UnknownTable(String),
    /// A requested column is not in the table or may not be read.
    #[error("unknown column `{0}`")]
    UnknownColumn(String),
    /// `columns` leaves out part of the primary key.
    #[error("columns must include the primary key column `{0}`")]
    MissingKey(String),
    /// The `where` is outside the supported subset.
    #[error(transparent)]
    Where(#[from] ParseError),
    /// The `where` names an unknown column or a parameter without a value.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The authorization hook's own filter does not bind: a server bug, answered with 500.
    #[error("the authorization filter of `{table}` is invalid")]
    BadAuthFilter {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: BindError,
    },
    /// The authorization hook refused.
    #[error(transparent)]
    Denied(#[from] Denied),
}

/// A syncable table: its schema and its declaration, resolved.
#[derive(Debug)]
pub struct TableEntry {
    /// Its columns.
    pub schema: TableSchema,
    /// Which columns clients may read.
    pub readable: Vec<bool>,
    /// The key columns (indexes into the schema's columns).
    pub key: Vec<usize>,
    /// The declaration.
    pub decl: SyncTable,
}

/// A resolved shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeDef {
    /// The table's index among the engine's tables.
    pub table: usize,
    /// The rows: the authorization filter `AND` the client's `where`.
    pub cond: Cond,
    /// The columns sent, as indexes in table order.
    pub columns: Vec<usize>,
    /// How much of a row changes carry.
    pub replica: Replica,
    /// What identifies the definition (equal keys, equal shapes).
    pub key: String,
}

impl ShapeDef {
    /// Resolves `request` for `identity` against `tables`.
    pub fn resolve(
        tables: &[TableEntry],
        request: &ShapeRequest,
        identity: Option<&Identity>,
    ) -> Result<ShapeDef, ShapeError> {
        let (index, entry) = tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.schema.name == request.table)
            .ok_or_else(|| ShapeError::UnknownTable(request.table.clone()))?;
        let auth = (entry.decl.authorize)(identity)?;
        let schema = &entry.schema;
        let readable = |i: usize| entry.readable[i];
        let mut columns = match &request.columns {
            None => (0..schema.columns.len()).filter(|i| readable(*i)).collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    schema
                        .column_index(name)
                        .filter(|i| readable(*i))
                        .ok_or_else(|| ShapeError::UnknownColumn(name.clone()))
                })
                .collect::<Result<Vec<usize>, _>>()?,
        };
        columns.sort_unstable();
        columns.dedup();
        if let Some(missing) = entry.key.iter().find(|k| !columns.contains(k)) {
            return Err(ShapeError::MissingKey(
                schema.columns[*missing].name.clone(),
            ));
        }
        let where_ = match &request.where_ {
            Some(text) if !text.trim().is_empty() => filter::parse(text)?,
            _ => Expr::True,
        };
        let client = where_.bind(schema, &readable, &request.params)?;
        let server = auth
            .expr
            .bind(schema, &|_| true, &auth.params)
            .map_err(|source| ShapeError::BadAuthFilter {
                table: schema.name.clone(),
                source,
            })?;
        let cond = match (server, client) {
            (Cond::True, c) | (c, Cond::True) => c,
            (s, c) => Cond::And(vec![s, c]),
        };
        let key = format!(
            "{}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
            schema.name, columns, request.replica, cond
        );
        Ok(ShapeDef {
            table: index,
            cond,
            columns,
            replica: request.replica,
            key,
        })
    }
}

/// Splits Electric's `columns` parameter (`id,title` or `"id","ti""tle"`) into names.
pub fn parse_columns(text: &str) -> Result<Vec<String>, ParseError> {
    let mut names = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            let end = end.ok_or(ParseError::Unterminated {
                at: text.len() - rest.len(),
            })?;
            (name, quoted[end..].trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim().to_owned(), &rest[end..])
        };
        if name.is_empty() {
            return Err(ParseError::UnexpectedEnd {
                expected: "a column name",
            });
        }
        names.push(name);
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => "",
            None => {
                return Err(ParseError::Unsupported {
                    what: "text after a quoted column name".into(),
                    at: text.len() - after.len(),
                });
            }
        };
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_plain_and_quoted() {
        assert_eq!(
            parse_columns("id, title").expect("parses"),
            vec!["id", "title"]
        );
        assert_eq!(
            parse_columns(r#""id","a,b","q""x""#).expect("parses"),
            vec!["id", "a,b", "q\"x"]
        );
        assert!(parse_columns(r#""id"#).is_err());
        assert!(parse_columns("id,,x").is_err());
    }
}

//! SQLite values as the sync engine carries them: read from a row, from the change log's JSON, or
//! from a `where` parameter, compared the way SQLite compares them, and rendered as Electric sends
//! values (text, like Postgres' text format; `null` stays JSON `null`).
//!
//! # Comparison
//! [`SqlValue::compare`] follows SQLite's rules for the BINARY collation: `NULL` compares as
//! unknown (`None`), integers and reals compare numerically, numbers sort before text and text
//! compares byte-wise. Operands are coerced to the column's [`Affinity`] first
//! ([`SqlValue::with_affinity`]), which is what SQLite does with a bound parameter compared to a
//! column, so a change evaluated here and a snapshot filtered by SQLite agree.

use std::cmp::Ordering;

use rusqlite::types::{ToSqlOutput, Value as RusqliteValue, ValueRef};

/// One SQLite value. Blobs are carried as their hexadecimal text (the change log stores rows as
/// JSON, which has no bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
}

/// A column's type affinity, from its declared type (<https://sqlite.org/datatype3.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    /// `INT` anywhere in the declared type.
    Integer,
    /// `CHAR`, `CLOB` or `TEXT`.
    Text,
    /// `BLOB` or no declared type.
    Blob,
    /// `REAL`, `FLOA` or `DOUB`.
    Real,
    /// Anything else (`NUMERIC`, `DECIMAL`, `BOOLEAN`, `DATE`).
    Numeric,
}

impl Affinity {
    /// The affinity SQLite gives a column declared as `declared`.
    pub fn of(declared: &str) -> Affinity {
        let upper = declared.to_ascii_uppercase();
        if upper.contains("INT") {
            Affinity::Integer
        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
            Affinity::Text
        } else if upper.is_empty() || upper.contains("BLOB") {
            Affinity::Blob
        } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }
}

impl SqlValue {
    /// The value of a column read by rusqlite.
    pub fn from_ref(value: ValueRef<'_>) -> SqlValue {
        match value {
            ValueRef::Null => SqlValue::Null,
            ValueRef::Integer(i) => SqlValue::Integer(i),
            ValueRef::Real(f) => SqlValue::Real(f),
            ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => SqlValue::Text(hex(b)),
        }
    }

    /// The value of a field of the change log's JSON rows.
    pub fn from_json(value: &serde_json::Value) -> SqlValue {
        match value {
            serde_json::Value::Null => SqlValue::Null,
            serde_json::Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => SqlValue::Text(s.clone()),
            other => SqlValue::Text(other.to_string()),
        }
    }

    /// The value as SQLite would store it in a column of `affinity` (numeric text becomes a
    /// number in numeric columns, numbers become text in text columns).
    pub fn with_affinity(self, affinity: Affinity) -> SqlValue {
        match (affinity, self) {
            (Affinity::Integer | Affinity::Numeric | Affinity::Real, SqlValue::Text(text)) => {
                let trimmed = text.trim();
                if let Ok(i) = trimmed.parse::<i64>() {
                    if affinity == Affinity::Real {
                        SqlValue::Real(i as f64)
                    } else {
                        SqlValue::Integer(i)
                    }
                } else if let Ok(f) = trimmed.parse::<f64>()
                    && f.is_finite()
                {
                    SqlValue::Real(f)
                } else {
                    SqlValue::Text(text)
                }
            }
            (Affinity::Text, SqlValue::Integer(i)) => SqlValue::Text(i.to_string()),
            (Affinity::Text, SqlValue::Real(f)) => SqlValue::Text(render_real(f)),
            (_, value) => value,
        }
    }

    /// SQLite's comparison; `None` when either side is `NULL` (the result is unknown).
    pub fn compare(&self, other: &SqlValue) -> Option<Ordering> {
        use SqlValue::{Integer, Null, Real, Text};
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Integer(a), Integer(b)) => Some(a.cmp(b)),
            (Integer(a), Real(b)) => (*a as f64).partial_cmp(b),
            (Real(a), Integer(b)) => a.partial_cmp(&(*b as f64)),
            (Real(a), Real(b)) => a.partial_cmp(b),
            (Integer(_) | Real(_), Text(_)) => Some(Ordering::Less),
            (Text(_), Integer(_) | Real(_)) => Some(Ordering::Greater),
            (Text(a), Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        }
    }

    /// The value in Electric's text form (`None` for `NULL`).
    pub fn render(&self) -> Option<String> {
        match self {
            SqlValue::Null => None,
            SqlValue::Integer(i) => Some(i.to_string()),
            SqlValue::Real(f) => Some(render_real(*f)),
            SqlValue::Text(t) => Some(t.clone()),
        }
    }

    /// The value as JSON for a message's `value` (a string, or `null`).
    pub fn to_json(&self) -> serde_json::Value {
        self.render()
            .map_or(serde_json::Value::Null, serde_json::Value::String)
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(RusqliteValue::Null),
            SqlValue::Integer(i) => ToSqlOutput::Owned(RusqliteValue::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Owned(RusqliteValue::Real(*f)),
            SqlValue::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

/// A real as text: integral values keep one decimal (`1.0`), as SQLite prints them.
fn render_real(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// Lower-case hexadecimal, for blobs.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_from_declared_types() {
        assert_eq!(Affinity::of("INTEGER"), Affinity::Integer);
        assert_eq!(Affinity::of("bigint"), Affinity::Integer);
        assert_eq!(Affinity::of("VARCHAR(10)"), Affinity::Text);
        assert_eq!(Affinity::of(""), Affinity::Blob);
        assert_eq!(Affinity::of("DOUBLE"), Affinity::Real);
        assert_eq!(Affinity::of("BOOLEAN"), Affinity::Numeric);
    }

    #[test]
    fn parameters_take_the_column_affinity() {
        let five = SqlValue::Text("5".into());
        assert_eq!(
            five.clone().with_affinity(Affinity::Integer),
            SqlValue::Integer(5)
        );
        assert_eq!(five.clone().with_affinity(Affinity::Text), five);
        assert_eq!(
            SqlValue::Integer(7).with_affinity(Affinity::Text),
            SqlValue::Text("7".into())
        );
        assert_eq!(
            SqlValue::Text("x".into()).with_affinity(Affinity::Integer),
            SqlValue::Text("x".into())
        );
    }

    #[test]
    fn comparison_follows_sqlite() {
        use SqlValue::*;
        assert_eq!(Integer(2).compare(&Real(2.0)), Some(Ordering::Equal));
        assert_eq!(Integer(9).compare(&Text("1".into())), Some(Ordering::Less));
        assert_eq!(Null.compare(&Null), None);
        assert_eq!(
            Text("B".into()).compare(&Text("a".into())),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn rendering() {
        assert_eq!(SqlValue::Real(1.0).render().as_deref(), Some("1.0"));
        assert_eq!(SqlValue::Real(0.5).render().as_deref(), Some("0.5"));
        assert_eq!(SqlValue::Null.to_json(), serde_json::Value::Null);
        assert_eq!(
            SqlValue::from_ref(ValueRef::Blob(&[0xab, 1])),
            SqlValue::Text("ab01".into())
        );
    }
}

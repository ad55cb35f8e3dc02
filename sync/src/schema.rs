//! A table's columns as SQLite declares them (`PRAGMA table_info`), and how Electric names their
//! types in the `electric-schema` header.
//!
//! | SQLite declared type | affinity | Electric type | JS value with the stock parser |
//! |---|---|---|---|
//! | `BIGINT`, `INT8` | integer | `int8` | `BigInt` |
//! | other `INT` types (`INTEGER`) | integer | `int4` | `number` |
//! | `REAL`, `FLOAT`, `DOUBLE` | real | `float8` | `number` |
//! | `BOOLEAN`, `BOOL` | numeric | `bool` | `boolean` (values sent as `true`/`false`) |
//! | `JSON` | numeric | `json` | parsed JSON |
//! | text types | text | `text` | `string` |
//! | anything else | - | `text` | `string` |
//!
//! SQLite's `INTEGER` is 64-bit, but `int4` is what Postgres calls `INTEGER` and what Electric
//! users get as a JS number; declare a column `BIGINT` to receive exact `BigInt`s.

use rusqlite::Connection;

use crate::value::{Affinity, SqlValue};

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its declared type, as written in `CREATE TABLE`.
    pub declared: String,
    /// Its affinity.
    pub affinity: Affinity,
    /// `NOT NULL` (or part of the primary key).
    pub not_null: bool,
}

/// A table's columns, in declaration order, and its primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// Its columns.
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
}

impl TableSchema {
    /// Reads `table`'s columns; `None` if there is no such table.
    pub fn load(conn: &Connection, table: &str) -> rusqlite::Result<Option<TableSchema>> {
        let mut stmt =
            conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")?;
        let mut columns = Vec::new();
        let mut keyed = Vec::new();
        let mut rows = stmt.query([table])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let declared: String = row.get(1)?;
            let pk: i64 = row.get(3)?;
            if pk > 0 {
                keyed.push((pk, columns.len()));
            }
            columns.push(Column {
                affinity: Affinity::of(&declared),
                not_null: row.get::<_, bool>(2)? || pk > 0,
                name,
                declared,
            });
        }
        if columns.is_empty() {
            return Ok(None);
        }
        keyed.sort_unstable();
        Ok(Some(TableSchema {
            name: table.to_owned(),
            columns,
            primary_key: keyed.into_iter().map(|(_, i)| i).collect(),
        }))
    }

    /// The index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Column `index`'s name as a quoted SQL identifier.
    pub fn quoted(&self, index: usize) -> String {
        quote_ident(&self.columns[index].name)
    }

    /// The Electric type name of column `index`.
    pub fn electric_type(&self, index: usize) -> &'static str {
        let declared = self.columns[index].declared.to_ascii_uppercase();
        if declared.contains("BIGINT") || declared.contains("INT8") {
            "int8"
        } else if declared.contains("BOOL") {
            "bool"
        } else if declared.contains("JSON") {
            "json"
        } else {
            match self.columns[index].affinity {
                Affinity::Integer => "int4",
                Affinity::Real => "float8",
                _ => "text",
            }
        }
    }

    /// A value of column `index` as Electric sends it: text, `true`/`false` for booleans, JSON
    /// `null` for `NULL`.
    pub fn render(&self, index: usize, value: &SqlValue) -> serde_json::Value {
        if self.electric_type(index) == "bool"
            && let SqlValue::Integer(i) = value
        {
            return serde_json::Value::String(if *i != 0 { "true" } else { "false" }.into());
        }
        value.to_json()
    }
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The schema the filter tests use.
    pub(crate) fn notifications_schema() -> TableSchema {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(
            "CREATE TABLE notifications (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
                 title TEXT NOT NULL, priority REAL, read_at INTEGER);",
        )
        .expect("creates the table");
        TableSchema::load(&conn, "notifications")
            .expect("reads the schema")
            .expect("the table exists")
    }

    #[test]
    fn loads_columns_and_key() -> rusqlite::Result<()> {
        let table = notifications_schema();
        assert_eq!(table.primary_key, vec![0]);
        assert_eq!(table.columns[1].name, "user_id");
        assert!(table.columns[0].not_null && !table.columns[3].not_null);
        assert_eq!(table.electric_type(0), "int4");
        assert_eq!(table.electric_type(3), "float8");
        assert_eq!(table.electric_type(1), "text");
        let conn = Connection::open_in_memory()?;
        assert_eq!(TableSchema::load(&conn, "missing")?, None);
        conn.execute_batch("CREATE TABLE t (a TEXT, b BIGINT, PRIMARY KEY (b, a))")?;
        let t = TableSchema::load(&conn, "t")?.expect("exists");
        assert_eq!(t.primary_key, vec![1, 0]);
        assert_eq!(t.electric_type(1), "int8");
        Ok(())
    }
}

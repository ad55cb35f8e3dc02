//! Row filters: a client's `where`, and the filter an authorization hook adds.
//!
//! A filter is parsed ([`parse()`]) into an [`Expr`] over column names, then bound to a table
//! ([`Expr::bind`]) into a [`Cond`]: columns become indexes, `$n` become values, and every value
//! takes the column's affinity. A [`Cond`] runs two ways that agree: as SQL with bound parameters
//! for a snapshot ([`Cond::to_sql`]; no value is ever written into the SQL text), and in Rust on
//! a changed row ([`Cond::eval`], SQLite's three-valued logic).

pub mod parse;

use crate::schema::TableSchema;
use crate::value::SqlValue;

pub use parse::{ParseError, parse};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>` or `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `$n`, 1-based.
    Param(usize),
    /// A literal.
    Literal(SqlValue),
}

/// A parsed filter over column names.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every row.
    True,
    /// `column op value`.
    Compare {
        /// The column's name.
        column: String,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Operand,
    },
    /// `column [NOT] IN (values)`.
    In {
        /// The column's name.
        column: String,
        /// `NOT IN`.
        negated: bool,
        /// The list.
        values: Vec<Operand>,
    },
    /// `column IS [NOT] NULL`.
    IsNull {
        /// The column's name.
        column: String,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// All of them.
    And(Vec<Expr>),
    /// Any of them.
    Or(Vec<Expr>),
    /// The negation.
    Not(Box<Expr>),
}

/// Why a filter could not be bound to a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The filter names a column the table does not have or that may not be read.
    #[error("unknown column `{0}` in where")]
    UnknownColumn(String),
    /// `$n` has no value in `params`.
    #[error("parameter ${0} has no value in params")]
    MissingParam(usize),
}

/// A filter bound to a table: columns are indexes into the table's columns, values are final.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Every row.
    True,
    /// `column op value`.
    Compare {
        /// Index of the column.
        column: usize,
        /// The operator.
        op: CmpOp,
        /// The value, with the column's affinity.
        value: SqlValue,
    },
    /// `column [NOT] IN (values)`.
    In {
        /// Index of the column.
        column: usize,
        /// `NOT IN`.
        negated: bool,
        /// The values, with the column's affinity.
        values: Vec<SqlValue>,
    },
    /// `column IS [NOT] NULL`.
    IsNull {
        /// Index of the column.
        column: usize,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// All of them.
    And(Vec<Cond>),
    /// Any of them.
    Or(Vec<Cond>),
    /// The negation.
    Not(Box<Cond>),
}

impl Expr {
    /// Binds the expression to `table`: `visible(column)` says which columns it may name, and
    /// `params[n - 1]` is the value of `$n`.
    pub fn bind(
        &self,
        table: &TableSchema,
        visible: &dyn Fn(usize) -> bool,
        params: &[SqlValue],
    ) -> Result<Cond, BindError> {
        let column = |name: &str| {
            table
                .column_index(name)
                .filter(|i| visible(*i))
                .ok_or_else(|| BindError::UnknownColumn(name.to_owned()))
        };
        let value = |index: usize, operand: &Operand| -> Result<SqlValue, BindError> {
            let raw = match operand {
                Operand::Param(n) => params
                    .get(n - 1)
                    .cloned()
                    .ok_or(BindError::MissingParam(*n))?,
                Operand::Literal(value) => value.clone(),
            };
            Ok(raw.with_affinity(table.columns[index].affinity))
        };
        let all = |exprs: &[Expr]| -> Result<Vec<Cond>, BindError> {
            exprs
                .iter()
                .map(|e| e.bind(table, visible, params))
                .collect()
        };
        Ok(match self {
            Expr::True => Cond::True,
            Expr::Compare {
                column: name,
                op,
                value: operand,
            } => {
                let index = column(name)?;
                Cond::Compare {
                    column: index,
                    op: *op,
                    value: value(index, operand)?,
                }
            }
            Expr::In {
                column: name,
                negated,
                values,
            } => {
                let index = column(name)?;
                Cond::In {
                    column: index,
                    negated: *negated,
                    values: values
                        .iter()
                        .map(|v| value(index, v))
                        .collect::<Result<_, _>>()?,
                }
            }
            Expr::IsNull {
                column: name,
                negated,
            } => Cond::IsNull {
                column: column(name)?,
                negated: *negated,
            },
            Expr::And(exprs) => Cond::And(all(exprs)?),
            Expr::Or(exprs) => Cond::Or(all(exprs)?),
            Expr::Not(expr) => Cond::Not(Box::new(expr.bind(table, visible, params)?)),
        })
    }
}

impl Cond {
    /// Appends the condition as SQL over `table`'s quoted column names to `sql`, its values to
    /// `binds` (as `?` placeholders).
    pub fn to_sql(&self, table: &TableSchema, sql: &mut String, binds: &mut Vec<SqlValue>) {
        let join = |conds: &[Cond],
                    sep: &str,
                    empty: &str,
                    sql: &mut String,
                    binds: &mut Vec<SqlValue>| {
            if conds.is_empty() {
                sql.push_str(empty);
                return;
            }
            sql.push('(');
            for (i, cond) in conds.iter().enumerate() {
                if i > 0 {
                    sql.push_str(sep);
                }
                cond.to_sql(table, sql, binds);
            }
            sql.push(')');
        };
        match self {
            Cond::True => sql.push('1'),
            Cond::Compare { column, op, value } => {
                sql.push_str(&table.quoted(*column));
                sql.push(' ');
                sql.push_str(op.sql());
                sql.push_str(" ?");
                binds.push(value.clone());
            }
            Cond::In {
                column,
                negated,
                values,
            } => {
                sql.push_str(&table.quoted(*column));
                sql.push_str(if *negated { " NOT IN (" } else { " IN (" });
                for (i, value) in values.iter().enumerate() {
                    sql.push_str(if i == 0 { "?" } else { ", ?" });
                    binds.push(value.clone());
                }
                sql.push(')');
            }
            Cond::IsNull { column, negated } => {
                sql.push_str(&table.quoted(*column));
                sql.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Cond::And(conds) => join(conds, " AND ", "1", sql, binds),
            Cond::Or(conds) => join(conds, " OR ", "0", sql, binds),
            Cond::Not(cond) => {
                sql.push_str("NOT (");
                cond.to_sql(table, sql, binds);
                sql.push(')');
            }
        }
    }

    /// Whether `row` (all the table's columns, in order) satisfies the condition: `Some(true)`,
    /// `Some(false)`, or `None` for SQL's unknown (which a `WHERE` treats as false).
    pub fn eval(&self, row: &[SqlValue]) -> Option<bool> {
        let cell = |i: usize| row.get(i).unwrap_or(&SqlValue::Null);
        match self {
            Cond::True => Some(true),
            Cond::Compare { column, op, value } => {
                cell(*column).compare(value).map(|o| op.holds(o))
            }
            Cond::In {
                column,
                negated,
                values,
            } => {
                let left = cell(*column);
                if *left == SqlValue::Null {
                    return None;
                }
                let mut unknown = false;
                for value in values {
                    match left.compare(value) {
                        Some(std::cmp::Ordering::Equal) => return Some(!negated),
                        None => unknown = true,
                        Some(_) => {}
                    }
                }
                if unknown { None } else { Some(*negated) }
            }
            Cond::IsNull { column, negated } => {
                Some((*cell(*column) == SqlValue::Null) != *negated)
            }
            Cond::And(conds) => {
                let mut result = Some(true);
                for cond in conds {
                    match cond.eval(row) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            Cond::Or(conds) => {
                let mut result = Some(false);
                for cond in conds {
                    match cond.eval(row) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            Cond::Not(cond) => cond.eval(row).map(|b| !b),
        }
    }

    /// Whether `row` is in the filtered set (unknown counts as no, as in a `WHERE`).
    pub fn matches(&self, row: &[SqlValue]) -> bool {
        self.eval(row) == Some(true)
    }

    /// The `column = value` terms every matching row must satisfy (the top-level conjunction's
    /// equalities); what an equality index can key on.
    pub fn equalities(&self) -> Vec<(usize, &SqlValue)> {
        match self {
            Cond::Compare {
                column,
                op: CmpOp::Eq,
                value,
            } => vec![(*column, value)],
            Cond::And(conds) => conds.iter().flat_map(Cond::equalities).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::notifications_schema;
    use rusqlite::Connection;

    fn bind(where_: &str, params: &[&str]) -> Result<Cond, BindError> {
        let table = notifications_schema();
        let params: Vec<SqlValue> = params.iter().map(|p| SqlValue::Text((*p).into())).collect();
        parse(where_)
            .expect("parses")
            .bind(&table, &|_| true, &params)
    }

    /// Every filter gives the same rows in SQLite and in `eval`.
    #[test]
    fn sql_and_eval_agree() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE notifications (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
                 title TEXT NOT NULL, priority REAL, read_at INTEGER);
             INSERT INTO notifications VALUES
                 (1, 'alice', 'a', 1.5, NULL), (2, 'bob', 'b', NULL, 10),
                 (3, 'alice', 'c', 3, 20), (4, 'carol', '10', 0, NULL);",
        )?;
        let table = notifications_schema();
        for (where_, params) in [
            ("user_id = $1", vec!["alice"]),
            ("id = $1", vec!["3"]),
            ("id >= '2' AND read_at IS NOT NULL", vec![]),
            ("NOT (user_id = 'alice') OR priority > 1", vec![]),
            ("priority IN (1.5, $1) OR read_at IS NULL", vec!["3"]),
            ("priority NOT IN (0, 3)", vec![]),
            ("NOT (priority < 2)", vec![]),
            ("title = 10", vec![]),
            ("title > 'b' AND NOT (id <> 3)", vec![]),
        ] {
            let cond = bind(where_, &params).expect("binds");
            let mut sql = String::from("SELECT * FROM notifications WHERE ");
            let mut binds = Vec::new();
            cond.to_sql(&table, &mut sql, &mut binds);
            let mut stmt = conn.prepare(&sql)?;
            let mut from_sql = Vec::new();
            let mut all = Vec::new();
            let mut rows = stmt.query(rusqlite::params_from_iter(binds.iter()))?;
            while let Some(row) = rows.next()? {
                from_sql.push(row.get::<_, i64>(0)?);
            }
            let mut stmt = conn.prepare("SELECT * FROM notifications")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let values: Vec<SqlValue> = (0..5)
                    .map(|i| row.get_ref(i).map(SqlValue::from_ref))
                    .collect::<Result<_, _>>()?;
                if cond.matches(&values) {
                    all.push(row.get::<_, i64>(0)?);
                }
            }
            assert_eq!(from_sql, all, "{where_}");
            assert!(
                !sql.contains("alice"),
                "values are bound, not written: {sql}"
            );
        }
        Ok(())
    }

    #[test]
    fn binding_errors() {
        assert_eq!(
            bind("secret = 1", &[]),
            Err(BindError::UnknownColumn("secret".into()))
        );
        assert_eq!(bind("id = $2", &["1"]), Err(BindError::MissingParam(2)));
        let table = notifications_schema();
        let hidden = parse("read_at IS NULL")
            .expect("parses")
            .bind(&table, &|i| i != 4, &[]);
        assert_eq!(hidden, Err(BindError::UnknownColumn("read_at".into())));
    }

    #[test]
    fn equalities_of_the_top_level_conjunction() {
        let cond = bind("user_id = $1 AND (id = 2 OR id = 3)", &["alice"]).expect("binds");
        assert_eq!(
            cond.equalities(),
            vec![(1, &SqlValue::Text("alice".into()))]
        );
    }
}

//! Which live shapes a change can concern, without evaluating every shape: shapes are indexed by
//! one of their equality columns, as Electric does.
//!
//! A shape whose filter requires `column = value` (a term of its top-level `AND`, see
//! [`Cond::equalities`](crate::filter::Cond::equalities)) is filed under `(column, value)`; a row
//! can only match it if the row's `column` holds `value`. A change looks up its old and new rows'
//! values in each indexed column of its table, so the work per change is one hash lookup per
//! indexed column plus the shapes it finds, not one evaluation per live shape. Shapes without an
//! equality (`id > 5`, `a = 1 OR b = 2`) are evaluated for every change of their table.
//!
//! Values are keyed the way SQLite compares them: an integral real and the same integer are one
//! key (`2.0 = 2`), text is compared byte-wise, `NULL` never equals anything and is never a key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::feed::Change;
use crate::registry::Shape;
use crate::value::SqlValue;

/// A value as an index key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Integer(i64),
    Real(u64),
    Text(String),
}

fn key(value: &SqlValue) -> Option<Key> {
    match value {
        SqlValue::Null => None,
        SqlValue::Integer(i) => Some(Key::Integer(*i)),
        SqlValue::Real(f) => {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Some(Key::Integer(*f as i64))
            } else {
                Some(Key::Real(f.to_bits()))
            }
        }
        SqlValue::Text(t) => Some(Key::Text(t.clone())),
    }
}

#[derive(Debug, Default)]
struct TableIndex {
    /// column -> value -> shapes (by handle).
    by_value: HashMap<usize, HashMap<Key, HashMap<String, Arc<Shape>>>>,
    /// Shapes without an equality: evaluated for every change.
    scan: HashMap<String, Arc<Shape>>,
}

/// The live shapes of every table, by equality column.
#[derive(Debug, Default)]
pub struct ShapeIndex {
    tables: HashMap<usize, TableIndex>,
}

impl ShapeIndex {
    /// Files `shape`.
    pub fn insert(&mut self, shape: &Arc<Shape>) {
        let table = self.tables.entry(shape.def.table).or_default();
        match shape
            .def
            .cond
            .equalities()
            .first()
            .and_then(|(c, v)| Some((*c, key(v)?)))
        {
            Some((column, value)) => {
                table
                    .by_value
                    .entry(column)
                    .or_default()
                    .entry(value)
                    .or_default()
                    .insert(shape.handle.clone(), shape.clone());
            }
            None => {
                table.scan.insert(shape.handle.clone(), shape.clone());
            }
        }
    }

    /// Removes `shape`.
    pub fn remove(&mut self, shape: &Shape) {
        let Some(table) = self.tables.get_mut(&shape.def.table) else {
            return;
        };
        match shape
            .def
            .cond
            .equalities()
            .first()
            .and_then(|(c, v)| Some((*c, key(v)?)))
        {
            Some((column, value)) => {
                if let Some(values) = table.by_value.get_mut(&column) {
                    if let Some(shapes) = values.get_mut(&value) {
                        shapes.remove(&shape.handle);
                        if shapes.is_empty() {
                            values.remove(&value);
                        }
                    }
                    if values.is_empty() {
                        table.by_value.remove(&column);
                    }
                }
            }
            None => {
                table.scan.remove(&shape.handle);
            }
        }
    }

    /// The shapes `changes` concern (each once), and how many filter evaluations that took.
    pub fn matching<'c>(
        &self,
        changes: impl IntoIterator<Item = &'c Change>,
    ) -> (Vec<Arc<Shape>>, usize) {
        let mut found: HashMap<&str, &Arc<Shape>> = HashMap::new();
        let mut evaluations = 0;
        for change in changes {
            let Some(table) = self.tables.get(&change.table) else {
                continue;
            };
            let rows: Vec<&[SqlValue]> = [change.old.as_deref(), change.new.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            for shape in table.scan.values() {
                if found.contains_key(shape.handle.as_str()) {
                    continue;
                }
                evaluations += 1;
                if rows.iter().any(|row| shape.def.cond.matches(row)) {
                    found.insert(shape.handle.as_str(), shape);
                }
            }
            for (column, values) in &table.by_value {
                for row in &rows {
                    let Some(value) = row.get(*column).and_then(key) else {
                        continue;
                    };
                    for shape in values.get(&value).into_iter().flat_map(HashMap::values) {
                        if found.contains_key(shape.handle.as_str()) {
                            continue;
                        }
                        evaluations += 1;
                        if rows.iter().any(|row| shape.def.cond.matches(row)) {
                            found.insert(shape.handle.as_str(), shape);
                        }
                    }
                }
            }
        }
        (found.into_values().cloned().collect(), evaluations)
    }
}

#[cfg(test)]
mod tests {
    use crate::feed::{Change, Op};
    use crate::filter::{CmpOp, Cond};
    use crate::registry::Registry;
    use crate::shape::{Replica, ShapeDef};
    use crate::value::SqlValue;
    use std::sync::Arc;

    fn owner_is(owner: &str) -> ShapeDef {
        let cond = Cond::And(vec![
            Cond::Compare {
                column: 1,
                op: CmpOp::Eq,
                value: SqlValue::Text(owner.into()),
            },
            Cond::IsNull {
                column: 2,
                negated: true,
            },
        ]);
        ShapeDef {
            table: 0,
            key: format!("{cond:?}"),
            cond,
            columns: vec![0, 1, 2],
            replica: Replica::Default,
        }
    }

    fn change(old: Option<&str>, new: Option<&str>) -> Arc<Change> {
        let row = |owner: &str| {
            vec![
                SqlValue::Integer(1),
                SqlValue::Text(owner.into()),
                SqlValue::Real(2.0),
            ]
        };
        Arc::new(Change {
            id: 1,
            batch_end: 1,
            table: 0,
            op: Op::Update,
            old: old.map(row),
            new: new.map(row),
        })
    }

    #[test]
    fn a_change_is_evaluated_against_the_shapes_of_its_values_only() {
        let registry = Registry::new(1, 20_000, 10);
        let shapes: Vec<_> = (0..10_000)
            .map(|i| {
                registry
                    .get_or_create(owner_is(&format!("u{i}")))
                    .expect("room")
            })
            .collect();
        let scan = registry
            .get_or_create(ShapeDef {
                table: 0,
                cond: Cond::Compare {
                    column: 0,
                    op: CmpOp::Gt,
                    value: SqlValue::Integer(0),
                },
                columns: vec![0],
                replica: Replica::Default,
                key: "scan".into(),
            })
            .expect("room");
        let mut woken: Vec<_> = shapes.iter().map(|s| s.wakeups()).collect();
        let mut scan_woken = scan.wakeups();
        // A row moving from u7 to u42 concerns both, and the shape without an equality.
        let evaluations = registry.dispatch(&[change(Some("u7"), Some("u42"))]);
        assert_eq!(
            evaluations, 3,
            "two indexed candidates and one scanned shape"
        );
        assert!(woken[7].has_changed().expect("open"));
        assert!(woken[42].has_changed().expect("open"));
        assert!(!woken[8].has_changed().expect("open"));
        assert!(scan_woken.has_changed().expect("open"));
        woken[7].borrow_and_update();
        scan_woken.borrow_and_update();
        // A value no shape is filed under costs only the scanned shape.
        assert_eq!(registry.dispatch(&[change(None, Some("nobody"))]), 1);
        assert!(!woken[7].has_changed().expect("open"));
        // A removed shape is no longer found.
        registry.expire(&shapes[42]);
        woken[42].borrow_and_update();
        registry.dispatch(&[change(None, Some("u42"))]);
        assert!(!woken[42].has_changed().expect("open"));
    }

    #[test]
    fn integral_reals_and_integers_share_a_key() {
        assert_eq!(
            super::key(&SqlValue::Real(2.0)),
            super::key(&SqlValue::Integer(2))
        );
        assert_ne!(
            super::key(&SqlValue::Real(2.5)),
            super::key(&SqlValue::Integer(2))
        );
        assert_eq!(super::key(&SqlValue::Null), None);
    }
}

//! Electric's messages: what a committed change looks like to one shape.
//!
//! | the row before / after | message |
//! |---|---|
//! | - / in the shape (insert) | `insert` with the selected columns |
//! | in / in (update) | `update`: `replica=default` the key and the changed columns, `full` every selected column plus `old_value` (the previous values of the changed ones); nothing when no selected column changed |
//! | in / out (update moved it out) | `delete` |
//! | out / in (update moved it in) | `insert` with the selected columns |
//! | in / - (delete) | `delete`: the key (`default`) or the row (`full`) |
//! | an update that changes the key | `delete` of the old key, `insert` of the new |
//!
//! Headers: `operation`, `relation` (`["main", table]`), `lsn` (the change's log id, the number in
//! its offset `<lsn>_0`), `op_position`, `txids` (the batch's last id) and `last` on a batch's final
//! message. A key is `"main"."<table>"/"<key value>"[/"<key value>"...]`.

use serde_json::{Map, Value, json};

use crate::feed::{Change, Op};
use crate::schema::TableSchema;
use crate::shape::{Replica, ShapeDef};
use crate::value::SqlValue;

/// The control message that ends a batch the client is caught up to.
pub fn up_to_date(global_last_seen_lsn: Option<i64>) -> Value {
    match global_last_seen_lsn {
        Some(lsn) => {
            json!({"headers": {"control": "up-to-date", "global_last_seen_lsn": lsn.to_string()}})
        }
        None => json!({"headers": {"control": "up-to-date"}}),
    }
}

/// The control message that tells the client to drop its rows and start again.
pub fn must_refetch() -> Value {
    json!({"headers": {"control": "must-refetch"}})
}

/// The key of `row` in `schema` with key columns `key`.
pub fn row_key(schema: &TableSchema, key: &[usize], row: &[SqlValue]) -> String {
    let mut out = format!("\"main\".\"{}\"", escape(&schema.name));
    for i in key {
        let text = row.get(*i).and_then(SqlValue::render).unwrap_or_default();
        out.push_str("/\"");
        out.push_str(&escape(&text));
        out.push('"');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('"', "\"\"")
}

fn select(schema: &TableSchema, columns: impl Iterator<Item = usize>, row: &[SqlValue]) -> Value {
    let mut object = Map::new();
    for i in columns {
        let value = row.get(i).unwrap_or(&SqlValue::Null);
        object.insert(schema.columns[i].name.clone(), schema.render(i, value));
    }
    Value::Object(object)
}

/// A snapshot row as an `insert`.
pub fn snapshot_insert(
    shape: &ShapeDef,
    schema: &TableSchema,
    key: &[usize],
    row: &[SqlValue],
) -> Value {
    json!({
        "key": row_key(schema, key, row),
        "value": select(schema, shape.columns.iter().copied(), row),
        "headers": {"operation": "insert", "relation": ["main", schema.name]},
    })
}

/// The messages `change` makes for `shape` (none, one, or two for a key change).
pub fn for_change(
    shape: &ShapeDef,
    schema: &TableSchema,
    key: &[usize],
    change: &Change,
) -> Vec<Value> {
    let was_in = change.old.as_deref().is_some_and(|r| shape.cond.matches(r));
    let is_in = change.new.as_deref().is_some_and(|r| shape.cond.matches(r));
    let headers = |operation: &str| {
        json!({
            "operation": operation,
            "relation": ["main", schema.name],
            "lsn": change.id.to_string(),
            "op_position": 0,
            "txids": [change.batch_end],
        })
    };
    let insert = |row: &[SqlValue]| {
        json!({
            "key": row_key(schema, key, row),
            "value": select(schema, shape.columns.iter().copied(), row),
            "headers": headers("insert"),
        })
    };
    let delete = |row: &[SqlValue]| {
        let value = match shape.replica {
            Replica::Default => select(schema, key.iter().copied(), row),
            Replica::Full => select(schema, shape.columns.iter().copied(), row),
        };
        json!({"key": row_key(schema, key, row), "value": value, "headers": headers("delete")})
    };
    let mut out = match (change.op, change.old.as_deref(), change.new.as_deref()) {
        (Op::Insert, _, Some(new)) if is_in => vec![insert(new)],
        (Op::Delete, Some(old), _) if was_in => vec![delete(old)],
        (Op::Update, Some(old), Some(new)) => match (was_in, is_in) {
            (true, true) => update(
                shape,
                schema,
                key,
                old,
                new,
                headers("update"),
                &insert,
                &delete,
            ),
            (true, false) => vec![delete(old)],
            (false, true) => vec![insert(new)],
            (false, false) => Vec::new(),
        },
        _ => Vec::new(),
    };
    if change.id == change.batch_end
        && let Some(Value::Object(last)) = out.last_mut()
        && let Some(Value::Object(headers)) = last.get_mut("headers")
    {
        headers.insert("last".into(), Value::Bool(true));
    }
    out
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the closures share its headers"
)]
fn update(
    shape: &ShapeDef,
    schema: &TableSchema,
    key: &[usize],
    old: &[SqlValue],
    new: &[SqlValue],
    headers: Value,
    insert: &dyn Fn(&[SqlValue]) -> Value,
    delete: &dyn Fn(&[SqlValue]) -> Value,
) -> Vec<Value> {
    if key.iter().any(|i| old.get(*i) != new.get(*i)) {
        return vec![delete(old), insert(new)];
    }
    let changed: Vec<usize> = shape
        .columns
        .iter()
        .copied()
        .filter(|i| old.get(*i) != new.get(*i))
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let mut message = Map::new();
    message.insert("key".into(), Value::String(row_key(schema, key, new)));
    match shape.replica {
        Replica::Default => {
            let columns = key.iter().copied().chain(changed.iter().copied());
            message.insert("value".into(), select(schema, columns, new));
        }
        Replica::Full => {
            message.insert(
                "value".into(),
                select(schema, shape.columns.iter().copied(), new),
            );
            message.insert(
                "old_value".into(),
                select(schema, changed.iter().copied(), old),
            );
        }
    }
    message.insert("headers".into(), headers);
    vec![Value::Object(message)]
}

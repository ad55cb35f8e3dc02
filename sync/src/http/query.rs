//! The query string of `GET /v1/shape`, read and checked the way Electric checks it.
//!
//! | parameter | accepted |
//! |---|---|
//! | `table` | required |
//! | `where` | the subset of [`crate::filter::parse()`] |
//! | `params` | `params[1]=a&params[2]=b` (what `@electric-sql/client` sends), or JSON: `params={"1":"a"}` / `["a"]` |
//! | `columns` | `id,title` or `"id","title"` |
//! | `replica` | `default` or `full` |
//! | `offset` | `-1`, `now`, or an offset this server returned (`<n>_<m>`); not `-1` needs `handle` |
//! | `handle` | a handle this server returned |
//! | `live` | `true`/`false`; `true` needs an offset other than `-1` |
//! | `live_sse`, `experimental_live_sse` | `true` with `live=true`: Server-Sent Events |
//! | `cursor` | echoed by the client from `electric-cursor`; only makes URLs distinct |
//!
//! | `log` | `full` (default) or `changes_only`: no snapshot, `offset=-1` starts at the current end |
//!
//! `subset__*` (on-demand snapshots) are refused with a 400 naming them. Others (`expired_handle`,
//! `cache-buster`, application parameters) are ignored.

use std::collections::BTreeMap;

use crate::shape::{Replica, ShapeRequest, parse_columns};
use crate::value::SqlValue;

/// Most `$n` parameters accepted.
const MAX_PARAMS: usize = 100;
/// Longest parameter value accepted, in bytes.
const MAX_PARAM_LEN: usize = 4096;

/// Where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// `-1`: from a snapshot.
    Start,
    /// `now`: from the current end, without a snapshot.
    Now,
    /// After change-log id `n` (`<n>_<m>`).
    After(i64),
}

impl Offset {
    /// The offset as Electric writes it.
    pub fn render(position: i64) -> String {
        format!("{position}_0")
    }
}

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeQuery {
    /// The shape.
    pub shape: ShapeRequest,
    /// Where to start.
    pub offset: Offset,
    /// The handle the client holds.
    pub handle: Option<String>,
    /// Long-poll (or SSE).
    pub live: bool,
    /// Server-Sent Events.
    pub sse: bool,
    /// The client's cursor.
    pub cursor: Option<String>,
}

/// A refused parameter: Electric's `{"message": "Invalid request", "errors": {field: [why]}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {field}: {reason}")]
pub struct QueryError {
    /// The parameter.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> QueryError {
    QueryError {
        field,
        reason: reason.into(),
    }
}

fn boolean(field: &'static str, value: Option<&str>) -> Result<bool, QueryError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(invalid(field, "must be true or false")),
    }
}

/// Reads the decoded `pairs` of a query string.
pub fn parse(pairs: &[(String, String)]) -> Result<ShapeQuery, QueryError> {
    let mut single: BTreeMap<&str, &str> = BTreeMap::new();
    let mut params: BTreeMap<usize, String> = BTreeMap::new();
    for (key, value) in pairs {
        if let Some(index) = key
            .strip_prefix("params[")
            .and_then(|k| k.strip_suffix(']'))
        {
            let n = index
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PARAMS).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "params",
                        format!("`{index}` is not a parameter number from 1 to {MAX_PARAMS}"),
                    )
                })?;
            params.insert(n, value.clone());
        } else {
            single.insert(key.as_str(), value.as_str());
        }
    }
    if let Some(json) = single.get("params") {
        params.extend(json_params(json)?);
    }
    if params.values().any(|v| v.len() > MAX_PARAM_LEN) {
        return Err(invalid("params", "a value is too long"));
    }
    let table = single
        .get("table")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("table", "can't be blank"))?;
    let table = table
        .strip_prefix("main.")
        .unwrap_or(table)
        .trim_matches('"')
        .to_owned();
    let replica = match single.get("replica").copied() {
        None | Some("default") => Replica::Default,
        Some("full") => Replica::Full,
        Some(_) => return Err(invalid("replica", "must be one of default, full")),
    };
    let columns = single
        .get("columns")
        .map(|c| parse_columns(c).map_err(|e| invalid("columns", e.to_string())))
        .transpose()?;
    let offset = match single.get("offset").copied() {
        None | Some("-1") => Offset::Start,
        Some("now") => Offset::Now,
        Some(text) => text
            .split_once('_')
            .and_then(|(a, b)| {
                let a = a.parse::<i64>().ok().filter(|a| *a >= 0)?;
                (b == "inf" || b.parse::<u64>().is_ok()).then_some(a)
            })
            .map(Offset::After)
            .ok_or_else(|| invalid("offset", "has invalid format"))?,
    };
    if let Some(key) = single.keys().find(|k| k.starts_with("subset__")) {
        return Err(invalid(
            "subset",
            format!("`{key}`: subset snapshots are not supported"),
        ));
    }
    let offset = match single.get("log").copied() {
        None | Some("full") => offset,
        Some("changes_only") if offset == Offset::Start => Offset::Now,
        Some("changes_only") => offset,
        Some(_) => return Err(invalid("log", "must be one of full, changes_only")),
    };
    let handle = single.get("handle").map(|h| (*h).to_owned());
    if handle.is_none() && matches!(offset, Offset::After(_)) {
        return Err(invalid("handle", "can't be blank when offset != -1"));
    }
    let live = boolean("live", single.get("live").copied())?;
    let sse = boolean("live_sse", single.get("live_sse").copied())?
        || boolean(
            "experimental_live_sse",
            single.get("experimental_live_sse").copied(),
        )?;
    if live && offset == Offset::Start {
        return Err(invalid("live", "can't be true when offset == -1"));
    }
    if sse && !live {
        return Err(invalid("live_sse", "can't be true unless live is true"));
    }
    // `$n` without a value is caught when the where is bound; gaps stay gaps.
    let count = params.keys().next_back().copied().unwrap_or(0);
    let mut values = vec![SqlValue::Null; count];
    for (n, value) in params {
        values[n - 1] = SqlValue::Text(value);
    }
    Ok(ShapeQuery {
        shape: ShapeRequest {
            table,
            where_: single.get("where").map(|w| (*w).to_owned()),
            params: values,
            columns,
            replica,
        },
        offset,
        handle,
        live,
        sse,
        cursor: single.get("cursor").map(|c| (*c).to_owned()),
    })
}

/// `params` as JSON: an object by number (`{"1": "a"}`) or an array (`["a"]`).
fn json_params(json: &str) -> Result<BTreeMap<usize, String>, QueryError> {
    let bad = || {
        invalid(
            "params",
            "must be params[n]=value pairs, a JSON object by number or a JSON array",
        )
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(|_| bad())?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = BTreeMap::new();
    match value {
        serde_json::Value::Array(items) if items.len() <= MAX_PARAMS => {
            for (i, item) in items.iter().enumerate() {
                out.insert(i + 1, text(item).ok_or_else(bad)?);
            }
        }
        serde_json::Value::Object(map) if map.len() <= MAX_PARAMS => {
            for (k, v) in &map {
                let n = k
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PARAMS).contains(n))
                    .ok_or_else(bad)?;
                out.insert(n, text(v).ok_or_else(bad)?);
            }
        }
        _ => return Err(bad()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ShapeQuery, QueryError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse(&pairs)
    }

    #[test]
    fn reads_what_the_stock_client_sends() {
        let q = query(&[
            ("table", "items"),
            ("where", "a = $1 AND b = $2"),
            ("params[1]", "x"),
            ("params[2]", "7"),
            ("columns", "\"id\",\"a\""),
            ("replica", "full"),
            ("offset", "12_0"),
            ("handle", "1-2"),
            ("live", "true"),
            ("live_sse", "true"),
            ("cursor", "100"),
            ("log", "full"),
        ])
        .expect("valid");
        assert_eq!(
            q.shape.params,
            vec![SqlValue::Text("x".into()), SqlValue::Text("7".into())]
        );
        assert_eq!(q.shape.columns, Some(vec!["id".into(), "a".into()]));
        assert_eq!(q.shape.replica, Replica::Full);
        assert_eq!(q.offset, Offset::After(12));
        assert!(q.live && q.sse);
        let json = query(&[("table", "items"), ("params", r#"{"1":"x"}"#)]).expect("valid");
        assert_eq!(json.shape.params, vec![SqlValue::Text("x".into())]);
        let array = query(&[("table", "items"), ("params", r#"["x", 2]"#)]).expect("valid");
        assert_eq!(array.shape.params[1], SqlValue::Text("2".into()));
    }

    #[test]
    fn refuses_what_electric_refuses() {
        for (pairs, field) in [
            (vec![], "table"),
            (vec![("table", "t"), ("offset", "x")], "offset"),
            (
                vec![("table", "t"), ("offset", "-5_0"), ("handle", "h")],
                "offset",
            ),
            (vec![("table", "t"), ("offset", "3_0")], "handle"),
            (vec![("table", "t"), ("live", "true")], "live"),
            (vec![("table", "t"), ("replica", "half")], "replica"),
            (vec![("table", "t"), ("params[0]", "x")], "params"),
            (vec![("table", "t"), ("params", "{")], "params"),
            (
                vec![("table", "t"), ("offset", "now"), ("live_sse", "true")],
                "live_sse",
            ),
        ] {
            assert_eq!(
                query(&pairs).map(|_| ()).map_err(|e| e.field),
                Err(field),
                "{pairs:?}"
            );
        }
    }
}

//! Phoenix presence payloads, read for their keys only.
//!
//! | event | payload | what the generator reads |
//! |---|---|---|
//! | `presence_state` | `{key: {metas: [...]}, ...}` | the keys |
//! | `presence_diff` | `{joins: <state shape>, leaves: <state shape>}` | the keys of each side |
//!
//! A presence run's clients read up to a few gigabytes of these between them, so the scanner
//! skips every value (the metas) byte by byte, minding only strings and nesting, and builds
//! nothing.

use super::scan;

/// Skips the JSON value at `at` (after whitespace); returns the position after it, or `None` if
/// the text ends first. Assumes valid JSON, as the server writes; it only has to find the end.
pub fn skip_value(text: &str, at: usize) -> Option<usize> {
    let s = text.as_bytes();
    let at = scan::ws(s, at);
    match *s.get(at)? {
        b'"' => skip_string(s, at + 1),
        b'{' | b'[' => skip_nested(s, at),
        // A number, `true`, `false` or `null`: up to the next delimiter.
        _ => {
            let len = s[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(s.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// From just inside a string's opening quote to just after its closing one.
fn skip_string(s: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// From an opening `{` or `[` to just after the bracket that closes it: the hot loop of a
/// presence run, one pass over every byte of every state and diff.
fn skip_nested(s: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    while let Some(&b) = s.get(i) {
        i += 1;
        match b {
            b'"' => i = skip_string(s, i)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Calls `member(key, value)` for each member of the JSON object `text`, the key raw (escapes as
/// on the wire) and the value as its text; `None` if `text` is not an object.
pub fn members<'a>(text: &'a str, mut member: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let s = text.as_bytes();
    let mut at = scan::byte(s, 0, b'{')?;
    if scan::byte(s, at, b'}').is_some() {
        return Some(());
    }
    loop {
        let (key, next) = scan::string(text, at)?;
        let start = scan::ws(s, scan::byte(s, next, b':')?);
        let end = skip_value(text, start)?;
        member(key, &text[start..end]);
        let after = scan::ws(s, end);
        match s.get(after)? {
            b',' => at = after + 1,
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// The keys of a `presence_state` payload, or of one side of a diff.
pub fn state_keys<'a>(state: &'a str, mut key: impl FnMut(&'a str)) -> Option<()> {
    members(state, |k, _| key(k))
}

/// The `joins` and `leaves` sides of a `presence_diff` payload (either may be missing).
pub fn diff_sides(diff: &str) -> Option<(Option<&str>, Option<&str>)> {
    let mut joins = None;
    let mut leaves = None;
    members(diff, |key, value| match key {
        "joins" => joins = Some(value),
        "leaves" => leaves = Some(value),
        _ => {}
    })?;
    Some((joins, leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(state: &str) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        state_keys(state, |k| out.push(k))?;
        Some(out)
    }

    #[test]
    fn reads_the_keys_of_a_state() {
        let state = r#"{"m1":{"metas":[{"online_at":1,"phx_ref":"A}"}]}, "m\"2" : {"metas":[{"x":[1,{"y":"]"}],"z":null,"phx_ref":"B"}]}}"#;
        assert_eq!(keys(state), Some(vec!["m1", r#"m\"2"#]));
        assert_eq!(keys("{}"), Some(vec![]));
        assert_eq!(keys(" { } "), Some(vec![]));
        assert_eq!(keys("[]"), None);
        assert_eq!(keys(r#"{"a":{"metas":[}"#), None);
    }

    /// How fast the scanner reads a ten-thousand-member state (`cargo test -p alight-bench
    /// --release --lib -- --ignored --nocapture scanner_speed`).
    #[test]
    #[ignore = "measurement"]
    fn scanner_speed() {
        let members: Vec<String> = (0..10_000)
            .map(|i| format!(r#""m{i}":{{"metas":[{{"online_at":1764305815123,"phx_ref":"AAAAAAAAAAEB{i}"}}]}}"#))
            .collect();
        let state = format!("{{{}}}", members.join(","));
        let started = std::time::Instant::now();
        let mut count = 0;
        for _ in 0..100 {
            state_keys(&state, |_| count += 1);
        }
        let elapsed = started.elapsed();
        assert_eq!(count, 1_000_000);
        println!(
            "{} KB state: {:?} per scan, {:.0} MB/s",
            state.len() / 1000,
            elapsed / 100,
            (state.len() * 100) as f64 / elapsed.as_secs_f64() / 1e6
        );
    }

    #[test]
    fn splits_a_diff() {
        let diff = r#"{"joins":{"a":{"metas":[]}},"leaves":{}}"#;
        assert_eq!(
            diff_sides(diff),
            Some((Some(r#"{"a":{"metas":[]}}"#), Some("{}")))
        );
        assert_eq!(diff_sides(r#"{"leaves":{}}"#), Some((None, Some("{}"))));
        assert_eq!(skip_value("12,", 0), Some(2));
        assert_eq!(skip_value(" true}", 0), Some(5));
    }
}

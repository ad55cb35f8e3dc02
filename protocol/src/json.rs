//! JSON text: [`RawJson`], a validated JSON value kept as its source text, and the scanner that
//! validates it and reads frames.
//!
//! Frames only ever need a few strings out of their JSON (refs, topic, event, a reply's status);
//! payloads are carried as text and handed on untouched. So instead of a general JSON parser this
//! module has a small scanner: it checks a value's grammar (RFC 8259) without building anything,
//! iteratively, so nesting costs no stack; it unescapes the few strings a frame needs; and it
//! never panics. Keeping it small matters to the browser client, which links no other JSON code.
//!
//! What it accepts is what `JSON.parse` accepts, with one exception that Rust imposes: a string
//! escape naming a lone UTF-16 surrogate (`"\ud800"`) is valid inside a payload, which stays text,
//! but cannot become a Rust string, so [`Scanner::unescape`] refuses it.

use std::fmt;

use thiserror::Error;

/// Why a text is not one JSON value.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("{kind} at byte {offset}")]
pub struct JsonError {
    /// What is wrong.
    pub kind: JsonErrorKind,
    /// Where: the byte offset into the text.
    pub offset: usize,
}

/// What is wrong with a JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The text ends in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start a value here.
    ExpectedValue,
    /// A member name must be a string, followed by `:`.
    ExpectedMemberName,
    /// A `:` must separate a member name from its value.
    ExpectedColon,
    /// An array or object continues with `,` or ends with its closing bracket.
    ExpectedCommaOrClose,
    /// A number that does not follow JSON's grammar (`01`, `1.`, `+1`, `.5`, `1e`).
    InvalidNumber,
    /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`.
    InvalidEscape,
    /// A raw control character (below U+0020) inside a string.
    ControlCharacter,
    /// Something follows the value.
    TrailingCharacters,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonErrorKind::UnexpectedEnd => "JSON ends early",
            JsonErrorKind::ExpectedValue => "expected a JSON value",
            JsonErrorKind::ExpectedMemberName => "expected a member name (a string)",
            JsonErrorKind::ExpectedColon => "expected `:` after a member name",
            JsonErrorKind::ExpectedCommaOrClose => "expected `,` or a closing bracket",
            JsonErrorKind::InvalidNumber => "invalid number",
            JsonErrorKind::InvalidEscape => "invalid escape in a string",
            JsonErrorKind::ControlCharacter => "control character in a string",
            JsonErrorKind::TrailingCharacters => "characters after the JSON value",
        })
    }
}

/// One JSON value, kept as its source text (without surrounding whitespace), known to be valid.
///
/// Payloads travel as `RawJson`: relaying one never parses or re-serializes it, and its bytes
/// (key order, number spelling, escapes, inner whitespace) are the sender's.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// Checks that `text` is one JSON value (surrounding whitespace allowed, and dropped).
    ///
    /// ```
    /// use alight_protocol::RawJson;
    /// assert_eq!(RawJson::from_string(" [1, 2] ".to_owned())?.get(), "[1, 2]");
    /// assert!(RawJson::from_string("{".to_owned()).is_err());
    /// # Ok::<(), alight_protocol::JsonError>(())
    /// ```
    pub fn from_string(text: String) -> Result<Self, JsonError> {
        let (start, end) = Scanner::new(&text).whole_value()?;
        if start == 0 && end == text.len() {
            Ok(RawJson(text.into_boxed_str()))
        } else {
            // The span starts and ends at ASCII bytes, so `get` always succeeds.
            Ok(RawJson(text.get(start..end).unwrap_or_default().into()))
        }
    }

    /// JSON `null`.
    pub fn null() -> Self {
        RawJson("null".into())
    }

    /// The empty object `{}`.
    pub fn empty_object() -> Self {
        RawJson("{}".into())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// Wraps text that is known to be exactly one JSON value: a span the scanner validated, or
    /// serde_json's output.
    pub(crate) fn trusted(text: impl Into<Box<str>>) -> Self {
        RawJson(text.into())
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawJson(")?;
        f.write_str(&self.0)?;
        f.write_str(")")
    }
}

/// serde_json validated it already; nothing is copied or checked again.
impl From<Box<serde_json::value::RawValue>> for RawJson {
    fn from(raw: Box<serde_json::value::RawValue>) -> Self {
        RawJson(raw.into())
    }
}

/// Which container a nesting level is; see [`Nesting`].
const OBJECT: u64 = 1;

/// The open arrays and objects around the scanner's position, one bit each: 64 levels in a
/// word, deeper ones spilled to the heap, so typical payloads allocate nothing.
#[derive(Default)]
struct Nesting {
    top: u64,
    rest: Vec<u64>,
    depth: usize,
}

impl Nesting {
    fn push(&mut self, kind: u64) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.rest.push(self.top);
            self.top = 0;
        }
        self.top = (self.top << 1) | kind;
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.top >>= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.top = self.rest.pop().unwrap_or(0);
        }
    }

    /// The innermost open container's closing byte, if any is open.
    fn closer(&self) -> Option<u8> {
        match (self.depth, self.top & OBJECT) {
            (0, _) => None,
            (_, OBJECT) => Some(b'}'),
            _ => Some(b']'),
        }
    }
}

/// A cursor over JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0 }
    }

    /// The text from `start` to the current position. Both are at token boundaries, which are
    /// ASCII bytes, so this never fails; `get` keeps the string slicing panic (and the
    /// formatting it links) out of the browser package.
    fn slice(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn error(&self, kind: JsonErrorKind) -> JsonError {
        let kind = if self.pos >= self.text.len() {
            JsonErrorKind::UnexpectedEnd
        } else {
            kind
        };
        JsonError {
            kind,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Skips whitespace and returns the next byte, without consuming it.
    pub(crate) fn peek_token(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
        self.peek()
    }

    /// Skips whitespace and consumes `byte` if it comes next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek_token() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Skips whitespace and consumes `byte`, or fails with `kind`.
    fn expect(&mut self, byte: u8, kind: JsonErrorKind) -> Result<(), JsonError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(kind))
        }
    }

    /// Consumes the next array element's or object member's separator: `Ok(true)` after `,`,
    /// `Ok(false)` after the closing `close`.
    pub(crate) fn next_item(&mut self, close: u8) -> Result<bool, JsonError> {
        if self.eat(b',') {
            Ok(true)
        } else if self.eat(close) {
            Ok(false)
        } else {
            Err(self.error(JsonErrorKind::ExpectedCommaOrClose))
        }
    }

    /// Checks that only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<(), JsonError> {
        match self.peek_token() {
            None => Ok(()),
            Some(_) => Err(self.error(JsonErrorKind::TrailingCharacters)),
        }
    }

    /// The whole text as one value: its span, without surrounding whitespace.
    pub(crate) fn whole_value(&mut self) -> Result<(usize, usize), JsonError> {
        let span = self.value_span()?;
        self.end()?;
        Ok(span)
    }

    /// Skips (and checks) the next value; returns its text.
    pub(crate) fn value(&mut self) -> Result<&'a str, JsonError> {
        let (start, _) = self.value_span()?;
        Ok(self.slice(start))
    }

    /// Skips (and checks) the next value, however deeply nested, without recursion; returns
    /// where it starts and ends.
    fn value_span(&mut self) -> Result<(usize, usize), JsonError> {
        let mut nesting = Nesting::default();
        self.peek_token();
        let start = self.pos;
        loop {
            // A value (or, in an object, a member) is due.
            match self.peek_token() {
                Some(b'[') => {
                    self.pos += 1;
                    if !self.eat(b']') {
                        nesting.push(0);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.pos += 1;
                    if !self.eat(b'}') {
                        nesting.push(OBJECT);
                        self.member_name()?;
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                _ => return Err(self.error(JsonErrorKind::ExpectedValue)),
            }
            // A value ended: close the containers it ends, or go on to the next item.
            loop {
                let Some(close) = nesting.closer() else {
                    return Ok((start, self.pos));
                };
                if self.next_item(close)? {
                    if close == b'}' {
                        self.member_name()?;
                    }
                    break;
                }
                nesting.pop();
            }
        }
    }

    /// Consumes a member name and its `:`; returns the name as it is written (quotes included).
    pub(crate) fn member_name(&mut self) -> Result<&'a str, JsonError> {
        if self.peek_token() != Some(b'"') {
            return Err(self.error(JsonErrorKind::ExpectedMemberName));
        }
        let start = self.pos;
        self.string()?;
        let name = self.slice(start);
        self.expect(b':', JsonErrorKind::ExpectedColon)?;
        Ok(name)
    }

    /// Consumes a string literal; the scanner is at its opening quote.
    fn string(&mut self) -> Result<(), JsonError> {
        let bytes = self.text.as_bytes();
        self.pos += 1;
        loop {
            self.pos = skip_plain(bytes, self.pos);
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match bytes.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            if hex4(bytes, self.pos).is_none() {
                                return Err(self.error(JsonErrorKind::InvalidEscape));
                            }
                            self.pos += 4;
                        }
                        _ => return Err(self.error(JsonErrorKind::InvalidEscape)),
                    }
                }
                Some(0x00..=0x1f) => return Err(self.error(JsonErrorKind::ControlCharacter)),
                Some(_) => self.pos += 1,
                None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
            }
        }
    }

    /// Consumes a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error(JsonErrorKind::InvalidNumber)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(self.error(JsonErrorKind::InvalidNumber));
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), JsonError> {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        if rest.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(JsonErrorKind::ExpectedValue))
        }
    }

    /// The string a validated string literal (quotes included) stands for; `None` if it
    /// escapes a lone UTF-16 surrogate, which no Rust string can hold.
    pub(crate) fn unescape(literal: &str) -> Option<String> {
        let inner = literal.get(1..literal.len().saturating_sub(1))?;
        if !inner.contains('\\') {
            return Some(inner.to_owned());
        }
        let bytes = inner.as_bytes();
        let mut out = String::with_capacity(inner.len());
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'\\' {
                i += 1;
                continue;
            }
            out.push_str(inner.get(start..i)?);
            let escape = *bytes.get(i + 1)?;
            i += 2;
            let c = match escape {
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let unit = hex4(bytes, i)?;
                    i += 4;
                    match unit {
                        0xd800..=0xdbff => {
                            // A high surrogate must be followed by an escaped low one.
                            if bytes.get(i..i + 2) != Some(b"\\u") {
                                return None;
                            }
                            let low = hex4(bytes, i + 2)?;
                            if !(0xdc00..=0xdfff).contains(&low) {
                                return None;
                            }
                            i += 6;
                            char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?
                        }
                        unit => char::from_u32(unit)?,
                    }
                }
                other => char::from(other),
            };
            out.push(c);
            start = i;
        }
        out.push_str(inner.get(start..)?);
        Some(out)
    }
}

/// The first position at or after `from` whose byte a JSON string cannot hold as it is: `"`,
/// `\\` or a control character (or `bytes.len()` if there is none).
///
/// Strings are most of a frame's bytes, so this looks at eight bytes per step (SWAR: each test
/// below sets the high bit of every byte lane that matches, and the lowest set bit is exact,
/// since a borrow only carries into higher lanes); other bytes, UTF-8 included, pass as they are.
pub(crate) fn skip_plain(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut pos = from;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let zero = |v: u64| v.wrapping_sub(ONES) & !v;
        let quote = zero(x ^ (ONES * u64::from(b'"')));
        let backslash = zero(x ^ (ONES * u64::from(b'\\')));
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let found = (quote | backslash | control) & HIGH;
        if found != 0 {
            return pos + (found.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        pos += 1;
    }
    pos
}

/// The value of the four hex digits at `at`, if there are four.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0, |value, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(value << 4 | u32::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(text: &str) -> bool {
        RawJson::from_string(text.to_owned()).is_ok()
    }

    #[test]
    fn accepts_what_json_parse_accepts() {
        for text in [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "12",
            "-1.5e+10",
            "1E-2",
            "0.0",
            "123456789012345678901234567890",
            r#""""#,
            r#""a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#,
            r#""\ud800""#,
            "\"ünï€😀\u{7f}\"",
            "[]",
            "{}",
            " [ 1 , [ ] , { } , \"x\" ] ",
            r#"{"a":{"b":[{"c":null}]},"a":1}"#,
            "\t\n\r{ \"k\" : [ true , false ] }\n",
        ] {
            assert!(valid(text), "{text:?} is JSON");
        }
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for text in [
            "",
            " ",
            "nul",
            "nulls",
            "True",
            "01",
            "-",
            "-a",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "NaN",
            "Infinity",
            "\"",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "[",
            "[1",
            "[1,",
            "[1,]",
            "[,1]",
            "[1 2]",
            "]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{1:1}",
            "{\"a\" 1}",
            "[}",
            "{]",
            "[1]]",
            "[] []",
            "'a'",
            "\u{feff}{}",
            "\u{a0}1",
        ] {
            assert!(!valid(text), "{text:?} is not JSON");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_short_inputs() {
        // Every string of up to four pieces from an alphabet of JSON's structural pieces.
        let alphabet = [
            "[", "]", "{", "}", ",", ":", "\"", "\\", "0", "1", "-", ".", "e", "n", "u", " ", "a",
        ];
        let mut texts = vec![String::new()];
        let mut layer = texts.clone();
        for _ in 0..4 {
            layer = layer
                .iter()
                .flat_map(|text| alphabet.iter().map(move |piece| format!("{text}{piece}")))
                .collect();
            texts.extend(layer.iter().cloned());
        }
        for text in texts {
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            assert_eq!(valid(&text), theirs, "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_uses_no_stack() {
        let deep = format!("{}1{}", "[{\"a\":".repeat(50_000), "}]".repeat(50_000));
        assert!(valid(&deep));
        let unbalanced = format!("{}{}", "[".repeat(1000), "]".repeat(999));
        assert!(!valid(&unbalanced));
        let crossed = format!("{}{}", "[".repeat(70), "}".repeat(70));
        assert!(!valid(&crossed));
        let mixed: String = (0..200)
            .map(|i| if i % 3 == 0 { "{\"k\":" } else { "[" })
            .collect();
        let closed: String = (0..200)
            .rev()
            .map(|i| if i % 3 == 0 { "}" } else { "]" })
            .collect();
        assert!(valid(&format!("{mixed}0{closed}")));
    }

    #[test]
    fn keeps_the_text_without_surrounding_whitespace() {
        let raw = RawJson::from_string(" \n{ \"a\" : 1 }\t".to_owned()).expect("valid");
        assert_eq!(raw.get(), "{ \"a\" : 1 }");
    }

    #[test]
    fn errors_say_where() {
        let error = RawJson::from_string("[1,x]".to_owned()).expect_err("invalid");
        assert_eq!(error.kind, JsonErrorKind::ExpectedValue);
        assert_eq!(error.offset, 3);
        assert_eq!(error.to_string(), "expected a JSON value at byte 3");
        let error = RawJson::from_string("[1".to_owned()).expect_err("invalid");
        assert_eq!(error.kind, JsonErrorKind::UnexpectedEnd);
        let error = RawJson::from_string("1 2".to_owned()).expect_err("invalid");
        assert_eq!(error.kind, JsonErrorKind::TrailingCharacters);
    }

    #[test]
    fn skips_exactly_the_bytes_a_string_holds_as_they_are() {
        // Each special byte at every offset of a run of 20 characters, ASCII or UTF-8.
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for filler in ["a", "\u{7f}", "é", "\u{ff}"] {
                let plain: Vec<u8> = filler.repeat(20).into_bytes();
                for at in 0..plain.len() {
                    let mut bytes = plain.clone();
                    bytes[at] = special;
                    for from in 0..=at {
                        let expected = bytes[from..]
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                            .map_or(bytes.len(), |i| from + i);
                        assert_eq!(skip_plain(&bytes, from), expected, "{bytes:?} from {from}");
                    }
                }
                assert_eq!(skip_plain(&plain, 0), plain.len());
            }
        }
        // Bytes just above and below the special ones are plain.
        let near = [
            0x20u8, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0x9f, 0x20,
        ];
        assert_eq!(skip_plain(&near, 0), near.len());
    }

    #[test]
    fn unescapes_like_serde_json() {
        for literal in [
            r#""plain""#,
            r#""a\"\\\/\b\f\n\r\t""#,
            r#""\u00e9\u20AC\ud83d\ude00x""#,
            r#""\u0000\u001f""#,
            "\"ünï\"",
            r#""""#,
        ] {
            let theirs: String = serde_json::from_str(literal).expect("valid");
            assert_eq!(Scanner::unescape(literal), Some(theirs), "{literal}");
        }
        for literal in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800""#,
        ] {
            assert_eq!(Scanner::unescape(literal), None, "{literal}");
        }
    }
}

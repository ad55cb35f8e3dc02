//! The bare server's wire: a V2 JSON frame read in place, and the frames it writes.
//!
//! A client frame is `[join_ref, ref, topic, event, payload]`. [`Frame::parse`] checks the whole
//! text against JSON's grammar in one pass and keeps slices of it: the first two elements and the
//! payload as their raw JSON text (a reply repeats them verbatim, so they are never decoded), the
//! topic and event as raw literals plus their value, which borrows from the text unless the
//! literal has an escape. Nothing is allocated for a frame without escapes in its topic or event.
//!
//! Every frame written is the concatenation of a few raw pieces into one `String` of the exact
//! length ([`concat`]), so its bytes become the message without a copy or a second allocation.

use std::borrow::Cow;

use axum::extract::ws::Utf8Bytes;

/// Nesting the payload may have, as `serde_json`'s default recursion limit.
const MAX_DEPTH: u32 = 128;

/// Why a client frame does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{expected} expected at byte {at} of the frame")]
pub struct FrameError {
    /// Byte offset of the first byte that does not fit.
    pub at: usize,
    /// What the grammar wanted there.
    pub expected: &'static str,
}

/// A JSON string literal of the frame: its raw text (quotes included) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal<'a> {
    /// The literal as sent, e.g. `"room:bench"`.
    pub raw: &'a str,
    /// What it means, borrowed unless the literal has escapes.
    pub value: Cow<'a, str>,
}

/// A client frame, borrowed from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `null` or a string literal, raw.
    pub join_ref: &'a str,
    /// `null` or a string literal, raw.
    pub msg_ref: &'a str,
    /// The topic.
    pub topic: Literal<'a>,
    /// The event.
    pub event: Literal<'a>,
    /// The payload: any JSON value, raw.
    pub payload: &'a str,
}

impl<'a> Frame<'a> {
    /// Reads `[join_ref, ref, topic, event, payload]`, the refs `null` or strings.
    pub fn parse(text: &'a str) -> Result<Frame<'a>, FrameError> {
        let mut scan = Scan { text, at: 0 };
        scan.eat(b'[', "`[`")?;
        let join_ref = scan.ref_or_null()?;
        scan.eat(b',', "`,`")?;
        let msg_ref = scan.ref_or_null()?;
        scan.eat(b',', "`,`")?;
        let topic = scan.literal()?;
        scan.eat(b',', "`,`")?;
        let event = scan.literal()?;
        scan.eat(b',', "`,`")?;
        scan.whitespace();
        let start = scan.at;
        scan.value(0)?;
        let payload = &text[start..scan.at];
        scan.eat(b']', "`]`")?;
        scan.whitespace();
        if scan.at != text.len() {
            return Err(scan.error("the end of the frame"));
        }
        Ok(Frame {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
        })
    }

    /// `[join_ref,ref,topic,"phx_reply",{"status":status,"response":response}]`; `response` is
    /// raw JSON.
    pub fn reply(&self, ok: bool, response: &str) -> Utf8Bytes {
        let status = if ok { "ok" } else { "error" };
        concat(&[
            "[",
            self.join_ref,
            ",",
            self.msg_ref,
            ",",
            self.topic.raw,
            ",\"phx_reply\",{\"status\":\"",
            status,
            "\",\"response\":",
            response,
            "}]",
        ])
    }

    /// The broadcast of this frame's payload as `event` to the topic: `[null,null,topic,event,payload]`.
    pub fn broadcast(&self) -> Utf8Bytes {
        concat(&[
            "[null,null,",
            self.topic.raw,
            ",",
            self.event.raw,
            ",",
            self.payload,
            "]",
        ])
    }
}

/// `[join_ref,join_ref,topic,"phx_close",{}]`: the channel on `topic_raw` has closed.
pub fn phx_close(join_ref: &str, topic_raw: &str) -> Utf8Bytes {
    concat(&[
        "[",
        join_ref,
        ",",
        join_ref,
        ",",
        topic_raw,
        ",\"phx_close\",{}]",
    ])
}

/// `parts` joined into one message, allocated once at its exact length.
pub fn concat(parts: &[&str]) -> Utf8Bytes {
    let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        text.push_str(part);
    }
    // A `String` whose length is its capacity becomes `Bytes` without another allocation.
    Utf8Bytes::from(text)
}

/// A cursor over the frame's text.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn error(&self, expected: &'static str) -> FrameError {
        FrameError {
            at: self.at,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace, then `byte`.
    fn eat(&mut self, byte: u8, expected: &'static str) -> Result<(), FrameError> {
        self.whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// `null` or a string literal, raw.
    fn ref_or_null(&mut self) -> Result<&'a str, FrameError> {
        self.whitespace();
        let start = self.at;
        match self.peek() {
            Some(b'n') => self.word("null")?,
            Some(b'"') => {
                self.string()?;
            }
            _ => return Err(self.error("a string or null")),
        }
        Ok(&self.text[start..self.at])
    }

    /// A string literal and its value.
    fn literal(&mut self) -> Result<Literal<'a>, FrameError> {
        self.whitespace();
        let start = self.at;
        let escaped = self.string()?;
        let raw = &self.text[start..self.at];
        let inner = &raw[1..raw.len() - 1];
        let value = if escaped {
            Cow::Owned(unescape(inner).map_err(|offset| FrameError {
                at: start + 1 + offset,
                expected: "a valid \\u escape",
            })?)
        } else {
            Cow::Borrowed(inner)
        };
        Ok(Literal { raw, value })
    }

    /// Skips a string literal (at its opening quote); returns whether it has escapes.
    fn string(&mut self) -> Result<bool, FrameError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("a string"));
        }
        self.at += 1;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at = skip_plain(bytes, self.at);
            match bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                    match bytes.get(self.at) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1;
                        }
                        Some(b'u') => {
                            let hex = bytes.get(self.at + 1..self.at + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.error("four hex digits after \\u"));
                            }
                            self.at += 5;
                        }
                        _ => return Err(self.error("an escape")),
                    }
                }
                Some(0..=0x1f) => return Err(self.error("no control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("the end of the string")),
            }
        }
    }

    fn word(&mut self, word: &'static str) -> Result<(), FrameError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error(word))
        }
    }

    /// Skips one JSON value (after whitespace).
    fn value(&mut self, depth: u32) -> Result<(), FrameError> {
        self.whitespace();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b't') => self.word("true"),
            Some(b'f') => self.word("false"),
            Some(b'n') => self.word("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("a JSON value")),
        }
    }

    fn object(&mut self, depth: u32) -> Result<(), FrameError> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        self.at += 1;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.whitespace();
            self.string()?;
            self.eat(b':', "`:`")?;
            self.value(depth)?;
            self.whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("`,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: u32) -> Result<(), FrameError> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        self.at += 1;
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("`,` or `]`")),
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), FrameError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), FrameError> {
        let start = self.at;
        self.digits();
        if self.at == start {
            return Err(self.error("a digit"));
        }
        Ok(())
    }
}

/// The offset of the first eight-byte word from `at` that holds a quote, a backslash or a control
/// character (or of the last short word): a string's plain bytes are skipped a word at a time.
fn skip_plain(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = bytes.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("a slice of eight bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte is zero (or below 0x20) exactly when the word has a high bit set here; bytes
        // of 0x80 and above have their own high bit set in `w` and are masked out by `!w`.
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        if special & HIGH != 0 {
            break;
        }
        at += 8;
    }
    at
}

/// The value of a string literal's inside whose escapes [`Scan::string`] has checked; `Err` with
/// the offset of a `\u` escape that is half of a surrogate pair without the other half.
fn unescape(inner: &str) -> Result<String, usize> {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let offset = inner.len() - rest.len() + at;
        let escape = &rest[at + 1..];
        let (c, used) = match escape.as_bytes().first() {
            Some(b'b') => ('\u{8}', 1),
            Some(b'f') => ('\u{c}', 1),
            Some(b'n') => ('\n', 1),
            Some(b'r') => ('\r', 1),
            Some(b't') => ('\t', 1),
            Some(b'u') => {
                let high = hex4(escape.get(1..5)).ok_or(offset)?;
                if (0xd800..0xdc00).contains(&high) {
                    let low = escape
                        .get(5..7)
                        .filter(|s| *s == "\\u")
                        .and_then(|_| hex4(escape.get(7..11)))
                        .filter(|low| (0xdc00..0xe000).contains(low))
                        .ok_or(offset)?;
                    let c = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                    (char::from_u32(c).ok_or(offset)?, 11)
                } else {
                    (char::from_u32(high).ok_or(offset)?, 5)
                }
            }
            // `"`, `\` and `/` stand for themselves.
            Some(&b) => (char::from(b), 1),
            None => return Err(offset),
        };
        out.push(c);
        rest = &escape[used..];
    }
    out.push_str(rest);
    Ok(out)
}

fn hex4(digits: Option<&str>) -> Option<u32> {
    u32::from_str_radix(digits?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_is_read_in_place() -> Result<(), FrameError> {
        let text = r#"["1","7","room:bench","ping",{"t":12,"p":[1.5e3,-0,true,null,"x\"y"]}]"#;
        let f = Frame::parse(text)?;
        assert_eq!(f.join_ref, r#""1""#);
        assert_eq!(f.msg_ref, r#""7""#);
        assert_eq!(f.topic.raw, r#""room:bench""#);
        assert!(matches!(f.topic.value, Cow::Borrowed("room:bench")));
        assert_eq!(f.event.value, "ping");
        assert_eq!(f.payload, r#"{"t":12,"p":[1.5e3,-0,true,null,"x\"y"]}"#);
        assert_eq!(
            &*f.reply(true, f.payload),
            r#"["1","7","room:bench","phx_reply",{"status":"ok","response":{"t":12,"p":[1.5e3,-0,true,null,"x\"y"]}}]"#
        );
        let shout = Frame::parse(r#"[ null , "2" , "room:a" , "shout" , 5 ]"#)?;
        assert_eq!(shout.join_ref, "null");
        assert_eq!(&*shout.broadcast(), r#"[null,null,"room:a","shout",5]"#);
        assert_eq!(
            &*shout.reply(false, r#"{"reason":"unknown event"}"#),
            r#"[null,"2","room:a","phx_reply",{"status":"error","response":{"reason":"unknown event"}}]"#
        );
        assert_eq!(
            &*phx_close(r#""3""#, r#""room:a""#),
            r#"["3","3","room:a","phx_close",{}]"#
        );
        Ok(())
    }

    #[test]
    fn escaped_topics_are_decoded_and_replied_as_sent() -> Result<(), FrameError> {
        let f = Frame::parse(r#"["1","1","room\u003abench\/\ud83d\ude00\n","phx_join",{}]"#)?;
        assert_eq!(f.topic.value, "room:bench/😀\n");
        assert_eq!(f.topic.raw, r#""room\u003abench\/\ud83d\ude00\n""#);
        let reply = f.reply(true, "{}");
        assert!(reply.contains(r#""room\u003abench\/\ud83d\ude00\n""#));
        Ok(())
    }

    #[test]
    fn what_is_not_json_or_not_a_frame_is_refused_where_it_goes_wrong() {
        let at = |text: &str| Frame::parse(text).map(drop).map_err(|e| e.at);
        assert_eq!(at(r#"["1","1","t","e",{}]"#), Ok(()));
        // Not JSON.
        assert_eq!(at(r#"["1","1","t","e",{]"#), Err(18));
        assert_eq!(at(r#"["1","1","t","e",01]"#), Err(18));
        assert_eq!(at(r#"["1","1","t","e",1.]"#), Err(19));
        assert_eq!(at(r#"["1","1","t","e",tru]"#), Err(17));
        assert_eq!(at(r#"["1","1","t","e","a\x"]"#), Err(20));
        assert_eq!(at(r#"["1","1","t","e","a\u12"]"#), Err(20));
        assert_eq!(at("[\"1\",\"1\",\"t\",\"e\",\"a\tb\"]"), Err(19));
        assert_eq!(at(r#"["1","1","t","e",[1 2]]"#), Err(20));
        assert_eq!(at(r#"["1","1","t","e",{"a" 1}]"#), Err(22));
        assert_eq!(at(r#"["1","1","t","e","#), Err(17));
        // Not a frame.
        assert_eq!(at(r#"["1",1,"t","e",{}]"#), Err(5));
        assert_eq!(at(r#"["1","1",null,"e",{}]"#), Err(9));
        assert_eq!(at(r#"["1","1","t","e"]"#), Err(16));
        assert_eq!(at(r#"["1","1","t","e",{},6]"#), Err(19));
        assert_eq!(at(r#"["1","1","t","e",{}] x"#), Err(21));
        assert_eq!(at(r#"["1","1","\udc00","e",{}]"#), Err(10));
        let deep = format!(
            r#"["1","1","t","e",{}1{}]"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(at(&deep), Err(145));
    }

    #[test]
    fn strings_are_read_to_their_end_whatever_the_word_boundaries() {
        for at in 0..20 {
            let plain = "é".repeat(at / 2) + &"x".repeat(at % 2);
            let specials = [
                (r#"\""#, true),
                (r"\\", true),
                (r"\t", true),
                ("\t", false),
                ("\u{1}", false),
            ];
            for (special, ok) in specials {
                let payload = format!(r#""{plain}{special}{}""#, "y".repeat(9));
                let text = format!(r#"["1","1","t","e",{payload}]"#);
                match Frame::parse(&text) {
                    Ok(f) => {
                        assert!(ok, "{text}");
                        assert_eq!(f.payload, payload);
                    }
                    Err(err) => assert!(!ok, "{text}: {err}"),
                }
            }
        }
    }

    #[test]
    fn it_agrees_with_serde_json_on_what_is_json() {
        let payloads = [
            "0",
            "-1.25E+7",
            "\"\\\\\"",
            "[]",
            "{}",
            r#"{"a":[{"b":null}],"c":"é"}"#,
            "1e",
            "-",
            "[1,]",
            r#"{"a":1,}"#,
            "\"\u{7f}\"",
            "nul",
            "[[]]]",
        ];
        for payload in payloads {
            let text = format!(r#"["1","1","t","e",{payload}]"#);
            let ours = Frame::parse(&text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(payload).is_ok();
            assert_eq!(ours, theirs, "{payload}");
        }
    }
}

//! What a connection attempt puts on the wire before the first frame: the WebSocket URL and the
//! subprotocols that carry the auth token, as phoenix.js builds them. The native client uses
//! these; the browser package makes the same in JavaScript (`browser/connect.js`, `websocketArgs`),
//! from JS values, with `btoa` and `encodeURIComponent`.
//!
//! | phoenix.js | here |
//! |---|---|
//! | `` `${endPoint}/websocket` `` + `Ajax.appendParams(params)` + `&vsn=2.0.0` | [`websocket_url`] |
//! | `encodeURIComponent` | [`encode_uri_component`] |
//! | `["phoenix", "base64url.bearer.phx." + btoa(token).replace(/=/g, "")]` | [`auth_protocols`] |

use thiserror::Error;

/// The subprotocol every Phoenix socket offers first, and the server answers with.
pub const PHOENIX_PROTOCOL: &str = "phoenix";

/// The prefix of the subprotocol that carries the auth token.
pub const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// Why an auth token cannot be sent.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// phoenix.js encodes the token with `btoa`, which takes only characters up to U+00FF (one
    /// byte each); a token with other characters fails there too. Encode such a token (as
    /// base64 or JSON, say) before handing it over.
    #[error(
        "the auth token has a character above U+00FF at index {index}; btoa, and so Phoenix, accepts only Latin-1"
    )]
    NotLatin1 {
        /// The index of the first such character, in characters.
        index: usize,
    },
}

/// The WebSocket URL for `endpoint` (`ws://host/socket`): `{endpoint}/websocket`, then `query`
/// (already encoded, as [`encode_uri_component`] does; may be empty), then `vsn`.
///
/// ```
/// use alight_client::connect::websocket_url;
///
/// assert_eq!(
///     websocket_url("ws://localhost:4000/socket", "token=abc", "2.0.0"),
///     "ws://localhost:4000/socket/websocket?token=abc&vsn=2.0.0"
/// );
/// assert_eq!(websocket_url("/socket", "", "2.0.0"), "/socket/websocket?vsn=2.0.0");
/// ```
pub fn websocket_url(endpoint: &str, query: &str, vsn: &str) -> String {
    // Concatenation rather than `format!`: this runs in the browser package, where every
    // formatting call site adds code.
    let mut url = [endpoint, "/websocket"].concat();
    for part in [query, "vsn="] {
        if part.is_empty() {
            continue;
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(part);
    }
    url.push_str(&encode_uri_component(vsn));
    url
}

/// Percent-encodes `text` as JavaScript's `encodeURIComponent` does: UTF-8, and every byte but
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as `%XX`.
///
/// ```
/// use alight_client::connect::encode_uri_component;
///
/// assert_eq!(encode_uri_component("a b&c=ü"), "a%20b%26c%3D%C3%BC");
/// ```
pub fn encode_uri_component(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// The subprotocols to offer for `token`: `phoenix`, then the token as phoenix.js encodes it
/// (`btoa`, so the standard base64 alphabet despite the `base64url` prefix, without `=`).
///
/// ```
/// use alight_client::connect::auth_protocols;
///
/// assert_eq!(auth_protocols("a?>~b")?, ["phoenix", "base64url.bearer.phx.YT8+fmI"]);
/// # Ok::<(), alight_client::connect::TokenError>(())
/// ```
pub fn auth_protocols(token: &str) -> Result<[String; 2], TokenError> {
    let mut bytes = Vec::with_capacity(token.len());
    for (index, c) in token.chars().enumerate() {
        let byte = u8::try_from(u32::from(c)).map_err(|_| TokenError::NotLatin1 { index })?;
        bytes.push(byte);
    }
    Ok([
        PHOENIX_PROTOCOL.to_owned(),
        [AUTH_TOKEN_PREFIX, &base64_unpadded(&bytes)].concat(),
    ])
}

/// Standard base64 (`+`, `/`) without padding.
fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        // A chunk of k bytes gives k + 1 characters.
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_btoa() {
        // btoa("") = "", btoa("f") = "Zg==", "fo" = "Zm8=", "foo" = "Zm9v", "foob" = "Zm9vYg=="
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("valid-token", "dmFsaWQtdG9rZW4"),
            ("ÿ", "/w"),
        ] {
            let [phoenix, auth] = auth_protocols(input).expect("latin-1");
            assert_eq!(phoenix, "phoenix");
            assert_eq!(auth, format!("{AUTH_TOKEN_PREFIX}{expected}"), "{input:?}");
        }
    }

    #[test]
    fn tokens_beyond_latin1_are_refused_as_btoa_does() {
        assert_eq!(
            auth_protocols("ok✓"),
            Err(TokenError::NotLatin1 { index: 2 })
        );
    }

    #[test]
    fn urls_are_phoenix_js_urls() {
        assert_eq!(
            websocket_url("ws://h/socket?x=1", "a=b", "2.0.0"),
            "ws://h/socket?x=1/websocket&a=b&vsn=2.0.0",
            "phoenix.js appends /websocket to the endpoint as given"
        );
        assert_eq!(
            websocket_url("wss://h/socket", "", "1.0.0"),
            "wss://h/socket/websocket?vsn=1.0.0"
        );
        assert_eq!(encode_uri_component("-_.!~*'()"), "-_.!~*'()");
        assert_eq!(encode_uri_component("a[b]/?#"), "a%5Bb%5D%2F%3F%23");
    }
}

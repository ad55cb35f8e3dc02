//! Login tokens: `<user_id>.<expiry><signature>`, the expiry in decimal seconds since the Unix
//! epoch and the signature HMAC-SHA256 over both with the demo's token secret, base64url without
//! padding (always [`SIGNATURE_CHARS`] characters, so where the expiry ends is known).
//!
//! The demo's login is password-less: anyone may log in as any user id, so a token proves only
//! that this server issued it for that id; what matters is that a client cannot forge one for
//! another user or extend one. Tokens expire [`TOKEN_TTL`] after login (a socket connected with
//! one stays connected; the page logs in again for the next); replacing `<data>/token_secret` (or
//! `ALIGHT_TOKEN_SECRET`) revokes them all.
//!
//! Tokens use only ASCII letters, digits, `-`, `_` and `.`, so phoenix.js's `btoa(authToken)`
//! never contains `/` (nor `+`): the result travels in `Sec-WebSocket-Protocol`, where browsers and
//! `ws` refuse a `/`.
//!
//! [`connect`] is the socket's connect callback: phoenix.js sends the token as `authToken` (or as
//! the `token` param); a valid one assigns the [`User`] and names the socket `user_socket:<id>`,
//! an invalid or expired one is refused (the socket is closed at once with 4001 `unauthorized`,
//! which the page shows as "log in again"), and a socket without one connects anonymously (it may
//! join `room:*`, not `notifications:*`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alight_server::{ConnectError, ConnectInfo, Connected};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use alight_demo_schema::is_valid_user_id;

type HmacSha256 = Hmac<Sha256>;

/// What the MAC covers before the user id, so that a signature made for another purpose with the
/// same key can never pass as a login token.
const CONTEXT: &[u8] = b"alight-demo login v2\n";

/// How long a login token is valid, at least: expiries are rounded up to the next
/// [`EXPIRY_STEP`], so that logins close together get the same token.
pub const TOKEN_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// What expiries are rounded up to.
const EXPIRY_STEP: u64 = 60 * 60;
/// The length of an HMAC-SHA256 signature in base64url without padding.
const SIGNATURE_CHARS: usize = 43;

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not `<user_id>.<expiry><signature>` with a valid user id.
    #[error("malformed token: expected `<user_id>.<expiry><signature>` from POST /api/login")]
    Malformed,
    /// The token's expiry has passed.
    #[error("expired token: log in again with POST /api/login")]
    Expired,
    /// The signature does not match: forged, altered, or signed with another secret.
    #[error("invalid token: log in again with POST /api/login")]
    BadSignature,
}

/// Signs and verifies login tokens with one secret.
#[derive(Clone)]
pub struct TokenKey {
    /// HMAC keyed with the secret, cloned for each token (cheaper than keying again).
    keyed: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A key over `secret` (any length; the demo uses 128 random bits as hex).
    pub fn new(secret: &[u8]) -> Self {
        let keyed =
            <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        TokenKey { keyed }
    }

    fn mac(&self, user_id: &str, expiry: u64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(CONTEXT);
        mac.update(user_id.as_bytes());
        mac.update(b"\n");
        mac.update(expiry.to_string().as_bytes());
        mac
    }

    /// A token naming `user_id` (which the caller has checked with [`is_valid_user_id`]), valid
    /// for [`TOKEN_TTL`] and at most an [`EXPIRY_STEP`] more.
    pub fn sign(&self, user_id: &str) -> String {
        let expiry = now_secs()
            .saturating_add(TOKEN_TTL.as_secs())
            .div_ceil(EXPIRY_STEP)
            .saturating_mul(EXPIRY_STEP);
        self.sign_until(user_id, expiry)
    }

    /// A token naming `user_id`, valid until `expiry` (seconds since the Unix epoch).
    pub fn sign_until(&self, user_id: &str, expiry: u64) -> String {
        let signature = self.mac(user_id, expiry).finalize().into_bytes();
        format!("{user_id}.{expiry}{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user id a token names, if this key signed it and it has not expired. Compares in
    /// constant time.
    pub fn verify<'t>(&self, token: &'t str) -> Result<&'t str, TokenError> {
        self.verify_at(token, now_secs())
    }

    /// [`TokenKey::verify`] at `now` (seconds since the Unix epoch).
    pub fn verify_at<'t>(&self, token: &'t str, now: u64) -> Result<&'t str, TokenError> {
        let (user_id, rest) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let split = rest
            .len()
            .checked_sub(SIGNATURE_CHARS)
            .filter(|&at| rest.is_char_boundary(at))
            .ok_or(TokenError::Malformed)?;
        let (expiry, signature) = rest.split_at(split);
        if !is_valid_user_id(user_id)
            || expiry.is_empty()
            || !expiry.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(TokenError::Malformed);
        }
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(user_id, expiry)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        if expiry <= now {
            return Err(TokenError::Expired);
        }
        Ok(user_id)
    }
}

/// The user a socket's token names, assigned at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(Arc<str>);

impl User {
    /// The user id.
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// The socket's connect callback; see the [module docs](self).
pub fn connect(key: &TokenKey, info: &ConnectInfo) -> Result<Connected, ConnectError> {
    let token = info
        .token
        .as_deref()
        .or_else(|| info.params.get("token").map(String::as_str))
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Ok(Connected::new());
    };
    let user_id = key
        .verify(token)
        .map_err(|err| ConnectError::new(err.to_string()))?;
    Ok(Connected::new()
        .id(format!("user_socket:{user_id}"))
        .assign(User(Arc::from(user_id))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let key = TokenKey::new(b"secret");
        let token = key.sign("alice");
        assert!(token.starts_with("alice."));
        assert_eq!(key.verify(&token), Ok("alice"));
        // Deterministic: the same user and expiry give the same token from the same key.
        assert_eq!(key.sign_until("alice", 100), key.sign_until("alice", 100));
    }

    #[test]
    fn tokens_expire() {
        let key = TokenKey::new(b"secret");
        let token = key.sign_until("alice", 1_000);
        assert_eq!(key.verify_at(&token, 999), Ok("alice"));
        assert_eq!(key.verify_at(&token, 1_000), Err(TokenError::Expired));
        // The expiry cannot be moved: it is signed.
        let moved = token.replacen(".1000", ".9000", 1);
        assert_eq!(key.verify_at(&moved, 999), Err(TokenError::BadSignature));
    }

    #[test]
    fn refuses_forgeries() {
        let key = TokenKey::new(b"secret");
        let alice = key.sign("alice");
        let (_, rest) = alice.split_once('.').expect("has a dot");
        // Alice's signature does not name bob.
        assert_eq!(
            key.verify(&format!("bob.{rest}")),
            Err(TokenError::BadSignature)
        );
        // Another key's token is refused.
        assert_eq!(
            TokenKey::new(b"other").verify(&alice),
            Err(TokenError::BadSignature)
        );
        // A truncated token is refused.
        assert!(key.verify(&alice[..alice.len() - 3]).is_err());
    }

    #[test]
    fn phoenix_js_can_send_every_token_as_a_subprotocol() {
        use base64::engine::general_purpose::STANDARD;
        let key = TokenKey::new(b"secret");
        for n in 0..2000 {
            let token = key.sign(&format!("user-{n}_X"));
            // What phoenix.js puts in Sec-WebSocket-Protocol: btoa(token) without padding.
            let sent = STANDARD.encode(&token);
            assert!(!sent.contains(['/', '+']), "{token} -> {sent}");
            assert_eq!(key.verify(&token), Ok(format!("user-{n}_X").as_str()));
        }
    }

    #[test]
    fn refuses_malformed_tokens() {
        let key = TokenKey::new(b"secret");
        for token in [
            "",
            "alice",
            ".sig",
            "alice.c2ln",
            "al ice.1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "alice.1!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "a:b.1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "alice.x1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "alice.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(key.verify(token), Err(TokenError::Malformed), "{token:?}");
        }
    }
}

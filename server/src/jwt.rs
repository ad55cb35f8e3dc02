//! JWT connect auth with expiry for the life of the socket and in-band refresh.
//!
//! Set with [`Config::jwt`](crate::Config::jwt). Then:
//!
//! | when | what the server does |
//! |---|---|
//! | upgrade | reads the token from phoenix.js `authToken` (the `Sec-WebSocket-Protocol` header) or the `token` param (phoenix.js `params`, a function re-evaluated on every reconnect); a missing, invalid or expired token is refused: the socket is closed at once with 4001 `unauthorized` ([`Refusal::Unauthorized`](crate::Refusal::Unauthorized)), or answered HTTP 403 with the reason when [`Config::close_on_refusal`](crate::Config::close_on_refusal) is off |
//! | connected | the [`Claims`] are in the socket's assigns (`socket.assign::<Claims>()`) and in [`ConnectInfo::claims`](crate::ConnectInfo::claims) for the connect callback |
//! | join | the topic must be allowed by the claims ([`JwtAuth::authorize`]; by default the `channels` claim, when present, lists the topics or `prefix*` patterns allowed); otherwise the join error `{"reason":"unauthorized"}` |
//! | `exp` passes | the socket is closed with [`close_code::TOKEN_EXPIRED`](crate::close_code::TOKEN_EXPIRED) (4001); phoenix.js reconnects, re-evaluating its `params` function or `authToken` |
//! | `access_token` event `{"access_token": t}` on a joined topic (Supabase realtime-js) | `t` is verified; valid: its claims replace the socket's, the expiry moves, every joined channel the new claims no longer allow is closed (`phx_close`, `terminate` with [`Terminate::Leave`](crate::Terminate::Leave)) and the reply is ok; invalid: the reply is an error `{"reason": why}` and the old token stays in force |
//!
//! Built on `jsonwebtoken` (Keats), the most used and actively released Rust JWT crate, with its
//! pure-Rust `rust_crypto` backend (no C toolchain, unlike `aws_lc_rs`). `jwt-simple` also builds
//! to WASM, which the server does not need, and has fewer users.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims of a verified token: `sub`, `exp` and every other claim, as JSON.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Claims {
    /// Who the token is for.
    #[serde(default)]
    pub sub: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Every other claim (`channels`, `role`...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// Whether `topic` is allowed by the `channels` claim: absent allows every topic; else an
    /// entry equal to the topic, or ending in `*` and a prefix of it.
    pub fn allows_channel(&self, topic: &str) -> bool {
        match self.extra.get("channels") {
            None => true,
            Some(serde_json::Value::Array(channels)) => channels
                .iter()
                .filter_map(serde_json::Value::as_str)
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => topic.starts_with(prefix),
                    None => pattern == topic,
                }),
            Some(_) => false,
        }
    }

    /// How long until the token expires, from `now` (zero when it has).
    pub(crate) fn remaining(&self, now: SystemTime) -> Duration {
        let exp = UNIX_EPOCH + Duration::from_secs(self.exp);
        exp.duration_since(now).unwrap_or(Duration::ZERO)
    }
}

type Authorize = dyn Fn(&Claims, &str) -> bool + Send + Sync;

/// How tokens are verified and what their claims allow. Cheap to clone.
///
/// ```
/// use alight_server::{Config, JwtAuth};
///
/// let auth = JwtAuth::hs256(b"a secret of at least 32 bytes, really")?
///     .authorize(|claims, topic| topic == format!("user:{}", claims.sub.as_deref().unwrap_or("")));
/// let config = Config::default().jwt(auth);
/// # let _ = config;
/// # Ok::<(), alight_server::JwtError>(())
/// ```
#[derive(Clone)]
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    authorize: Arc<Authorize>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The connection carried no token.
    #[error("no token")]
    Missing,
    /// The token is expired, badly signed or malformed.
    #[error("invalid token: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// The key cannot verify tokens (e.g. an empty HMAC secret).
    #[error("unusable JWT key: {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
}

impl JwtAuth {
    /// Tokens signed with HMAC-SHA256 and `secret`; `exp` required, no leeway. An empty secret
    /// is refused.
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let key = DecodingKey::from_secret(secret).map_err(JwtError::Key)?;
        Ok(JwtAuth::new(key, validation))
    }

    /// Tokens checked with `key` and `validation` (algorithms, audience, issuer, leeway). `exp` is
    /// always required: the socket's life is bounded by it.
    pub fn new(key: DecodingKey, mut validation: Validation) -> Self {
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp"]);
        JwtAuth {
            key,
            validation,
            authorize: Arc::new(|claims: &Claims, topic: &str| claims.allows_channel(topic)),
        }
    }

    /// Decides which topics a socket with these claims may join (and keep after a refresh),
    /// replacing the default, [`Claims::allows_channel`].
    pub fn authorize<F>(mut self, authorize: F) -> Self
    where
        F: Fn(&Claims, &str) -> bool + Send + Sync + 'static,
    {
        self.authorize = Arc::new(authorize);
        self
    }

    /// The claims of `token`, once its signature and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(JwtError::Invalid)
    }

    /// Whether `claims` allow joining `topic`.
    pub fn allows(&self, claims: &Claims, topic: &str) -> bool {
        (self.authorize)(claims, topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"test secret of thirty-two bytes!";

    fn token(exp: u64, channels: Option<&[&str]>) -> String {
        let mut claims = serde_json::json!({ "sub": "ann", "exp": exp });
        if let Some(channels) = channels {
            claims["channels"] = serde_json::json!(channels);
        }
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET).expect("a non-empty secret"),
        )
        .expect("HS256 encodes")
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[test]
    fn a_valid_token_gives_its_claims() {
        let auth = JwtAuth::hs256(SECRET).expect("a non-empty secret");
        let claims = auth
            .verify(&token(now() + 60, None))
            .expect("a valid token");
        assert_eq!(claims.sub.as_deref(), Some("ann"));
        assert!(claims.remaining(SystemTime::now()) > Duration::from_secs(50));
        assert!(auth.allows(&claims, "anything"));
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let auth = JwtAuth::hs256(SECRET).expect("a non-empty secret");
        assert!(auth.verify(&token(now() - 120, None)).is_err());
        let other =
            JwtAuth::hs256(b"another secret of thirty-two byte").expect("a non-empty secret");
        assert!(other.verify(&token(now() + 60, None)).is_err());
        assert!(auth.verify("not.a.token").is_err());
    }

    #[test]
    fn the_channels_claim_limits_topics() {
        let auth = JwtAuth::hs256(SECRET).expect("a non-empty secret");
        let claims = auth
            .verify(&token(now() + 60, Some(&["room:*", "user:ann"])))
            .expect("a valid token");
        assert!(auth.allows(&claims, "room:1"));
        assert!(auth.allows(&claims, "user:ann"));
        assert!(!auth.allows(&claims, "user:bob"));
    }
}

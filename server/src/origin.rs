//! [`CheckOrigin`]: which browser pages may open a socket, as Phoenix's `check_origin`.
//!
//! Browsers send cookies and other ambient credentials with a WebSocket upgrade from any page,
//! and a WebSocket is not bound by the same-origin policy: without a check, a foreign page can
//! open a socket in its visitor's name (cross-site WebSocket hijacking). Browsers always send
//! `Origin` with an upgrade; other clients usually send none.
//!
//! | `Origin` header | [`CheckOrigin::SameHost`] (default) | [`CheckOrigin::Allow`] | [`CheckOrigin::Any`] |
//! |---|---|---|---|
//! | absent (not a browser) | accepted | accepted | accepted |
//! | host equal to the `Host` header's | accepted | if listed | accepted |
//! | any other, or unparsable | 403 | if listed | accepted |
//!
//! Hosts compare without their port and case-insensitively, as Phoenix's default does, so a page
//! served on another port of the same host (a development server) is accepted.

/// Which `Origin`s may open a socket; set with
/// [`Config::check_origin`](crate::Config::check_origin). See the module table.
///
/// ```
/// use alight_server::{CheckOrigin, Config};
///
/// let config = Config::default().check_origin(CheckOrigin::allow([
///     "https://example.com",
///     "//*.example.com",
/// ]));
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOrigin {
    /// The origin's host must equal the host the request was sent to (its `Host` header).
    /// Behind a proxy that rewrites `Host`, list the public origins with [`CheckOrigin::Allow`].
    #[default]
    SameHost,
    /// Only the listed origins, each `scheme://host[:port]`, `//host` (any scheme and port) or
    /// `//*.domain` (the domain's subdomains).
    Allow(Vec<String>),
    /// Every origin (Phoenix's `check_origin: false`): only for sockets that carry no ambient
    /// credentials.
    Any,
}

impl CheckOrigin {
    /// [`CheckOrigin::Allow`] with `origins`.
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CheckOrigin::Allow(origins.into_iter().map(Into::into).collect())
    }

    /// Whether an upgrade with this `Origin` header (if any), sent to `host` (the `Host` header),
    /// is accepted.
    pub(crate) fn accepts(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        match self {
            CheckOrigin::Any => true,
            CheckOrigin::SameHost => {
                let Some(origin) = Origin::parse(origin) else {
                    return false;
                };
                host.map(strip_port)
                    .is_some_and(|host| host.eq_ignore_ascii_case(origin.host))
            }
            CheckOrigin::Allow(list) => {
                let Some(origin) = Origin::parse(origin) else {
                    return false;
                };
                list.iter().any(|allowed| origin.matches(allowed))
            }
        }
    }
}

/// The parts of an `Origin` header.
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
}

impl<'a> Origin<'a> {
    /// `scheme://host[:port]`; `None` for `null` and anything else.
    fn parse(text: &'a str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if scheme.is_empty() || authority.is_empty() || authority.contains(['/', '@']) {
            return None;
        }
        let (host, port) = split_port(authority);
        Some(Origin { scheme, host, port })
    }

    /// Whether this origin matches an entry of [`CheckOrigin::Allow`].
    fn matches(&self, allowed: &str) -> bool {
        let (scheme, authority) = match allowed.split_once("//") {
            Some((scheme, authority)) => (scheme.strip_suffix(':').unwrap_or(scheme), authority),
            None => ("", allowed),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = split_port(authority);
        let scheme_ok = scheme.is_empty() || scheme.eq_ignore_ascii_case(self.scheme);
        let port_ok = port.is_none() || port == self.port;
        let host_ok = match host.strip_prefix("*.") {
            Some(domain) => self
                .host
                .len()
                .checked_sub(domain.len() + 1)
                .is_some_and(|at| {
                    self.host.as_bytes()[at] == b'.'
                        && self.host[at + 1..].eq_ignore_ascii_case(domain)
                }),
            None => host.eq_ignore_ascii_case(self.host),
        };
        scheme_ok && port_ok && host_ok
    }
}

/// `host[:port]` (IPv6 hosts in brackets) into host and port.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

fn strip_port(authority: &str) -> &str {
    split_port(authority).0
}

#[cfg(test)]
mod tests {
    use super::CheckOrigin;

    #[test]
    fn same_host_accepts_its_own_host_on_any_port_and_no_origin() {
        let check = CheckOrigin::SameHost;
        assert!(check.accepts(None, Some("example.com")));
        assert!(check.accepts(Some("https://example.com"), Some("example.com")));
        assert!(check.accepts(Some("http://EXAMPLE.com:5173"), Some("example.com:4000")));
        assert!(check.accepts(Some("http://[::1]:3000"), Some("[::1]:4000")));
        assert!(!check.accepts(Some("https://evil.com"), Some("example.com")));
        assert!(!check.accepts(Some("https://example.com.evil.com"), Some("example.com")));
        assert!(!check.accepts(Some("null"), Some("example.com")));
        assert!(!check.accepts(Some("https://example.com"), None));
    }

    #[test]
    fn allow_matches_scheme_host_port_and_subdomains() {
        let check =
            CheckOrigin::allow(["https://app.example.com", "//*.example.org", "//a.io:8080"]);
        assert!(check.accepts(Some("https://app.example.com"), None));
        assert!(!check.accepts(Some("http://app.example.com"), None));
        assert!(check.accepts(Some("http://x.example.org"), None));
        assert!(check.accepts(Some("https://a.b.example.org:9"), None));
        assert!(!check.accepts(Some("https://example.org"), None));
        assert!(!check.accepts(Some("https://badexample.org"), None));
        assert!(check.accepts(Some("https://a.io:8080"), None));
        assert!(!check.accepts(Some("https://a.io:8081"), None));
        assert!(check.accepts(None, None));
    }

    #[test]
    fn any_accepts_everything() {
        assert!(CheckOrigin::Any.accepts(Some("https://evil.com"), Some("example.com")));
    }
}

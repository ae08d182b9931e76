//! The origin allow-list (`ALLOWED_ORIGINS`): which web origins may open a
//! session or call the HTTP routes.
//!
//! Origins compare as `scheme://host[:port]`: scheme and host without
//! regard to case, a default port (80 for http/ws, 443 for https/wss) left
//! out, no trailing slash. A request without an `Origin` header is allowed:
//! browsers always send one on a WebSocket upgrade and on cross-origin
//! requests, and clients that send none (command-line tools, servers) are
//! not what an origin check can stop.

use std::fmt;

/// The origins allowed to connect; empty (the default) allows any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    /// Normalized origins; empty means any.
    list: Vec<String>,
}

/// An entry of an origin list that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOrigin(pub String);

impl fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an origin (scheme://host[:port]): {:?}", self.0)
    }
}

impl std::error::Error for BadOrigin {}

impl Origins {
    /// Any origin (the default).
    pub fn any() -> Self {
        Origins::default()
    }

    /// A comma-separated list; empty, or any entry `*`, allows any origin.
    pub fn parse(list: &str) -> Result<Self, BadOrigin> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(Origins::any());
            }
            origins.push(normalize(entry).ok_or_else(|| BadOrigin(entry.to_owned()))?);
        }
        Ok(Origins { list: origins })
    }

    /// True when every origin is allowed.
    pub fn is_any(&self) -> bool {
        self.list.is_empty()
    }

    /// May a request with this `Origin` header (if any) go on?
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.is_any() => true,
            None => true,
            Some(origin) => normalize(origin).is_some_and(|o| self.list.contains(&o)),
        }
    }

    /// The refusal's text for a request from `origin`, when it is not
    /// allowed (`origin not allowed: https://evil.example`).
    pub fn refusal(&self, origin: Option<&str>) -> Option<String> {
        (!self.allows(origin)).then(|| {
            let shown: String = origin.unwrap_or_default().chars().take(200).collect();
            format!("origin not allowed: {shown}")
        })
    }
}

/// `scheme://host[:port]` in lower case, without a default port or a
/// trailing slash; `None` for anything else (a path, user info, no host).
/// `null` (the origin of sandboxed documents) stays `null`.
fn normalize(origin: &str) -> Option<String> {
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") {
        return Some("null".into());
    }
    let origin = origin.strip_suffix('/').unwrap_or(origin);
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid_scheme || rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let rest = rest.to_ascii_lowercase();
    // The port follows the last colon outside an IPv6 literal.
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest.as_str(), None),
    };
    if host.is_empty() {
        return None;
    }
    let default = match scheme.as_str() {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    match port {
        Some(port) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => None,
        Some(port) if Some(port) != default => Some(format!("{scheme}://{host}:{port}")),
        _ => Some(format!("{scheme}://{host}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_normalized_and_exactly() {
        let list = Origins::parse("https://Chat.Example, http://localhost:8080/ ").unwrap();
        assert!(list.allows(Some("https://chat.example")));
        assert!(list.allows(Some("HTTPS://CHAT.EXAMPLE:443")));
        assert!(list.allows(Some("http://localhost:8080")));
        assert!(!list.allows(Some("http://localhost:8081")));
        assert!(!list.allows(Some("http://chat.example")), "scheme counts");
        assert!(!list.allows(Some("https://chat.example.evil")));
        assert!(!list.allows(Some("https://evil.example")));
        assert!(!list.allows(Some("null")));
        assert!(!list.allows(Some("garbage")));
        assert!(list.allows(None), "no Origin header: not a browser");
        assert_eq!(
            list.refusal(Some("https://evil.example")).as_deref(),
            Some("origin not allowed: https://evil.example")
        );
        assert_eq!(list.refusal(Some("https://chat.example")), None);
        let v6 = Origins::parse("http://[::1]:3000").unwrap();
        assert!(v6.allows(Some("http://[::1]:3000")));
        assert!(!v6.allows(Some("http://[::1]")));
    }

    #[test]
    fn empty_or_star_allows_any_and_bad_entries_are_named() {
        for any in ["", " , ", "*", "https://a.example,*"] {
            let origins = Origins::parse(any).unwrap();
            assert!(origins.is_any() && origins.allows(Some("https://x.example")));
        }
        for bad in [
            "chat.example",
            "https://a.example/path",
            "https://",
            "https://a:b",
        ] {
            assert_eq!(
                Origins::parse(&format!("https://ok.example,{bad}")),
                Err(BadOrigin(bad.into()))
            );
        }
    }
}

//! The HTTP/1.1 upgrade handshake (RFC 6455 §4), both roles.
//!
//! Parsing is incremental: call the parser with everything received so far;
//! `Ok(None)` means "need more bytes". Bytes after the head belong to the
//! frame parser and are never consumed here.

mod client;
mod extensions;
mod head;
mod headers;
mod server;

pub(crate) use client::{check_connect_response, parse_response};
pub use client::{ClientRequest, Response};
pub use extensions::{format_extensions, parse_extensions};
pub use head::{BareLf, HeadScan};
pub(crate) use headers::HeaderList;
pub(crate) use server::switching_protocols;
pub use server::{parse_request, reason_phrase, Accept, Reject, Request};

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha1::{Digest, Sha1};

/// The GUID appended to the key before hashing (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most headers accepted in a request or response head.
const MAX_HEADERS: usize = 64;

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    accept_key_in(key, &mut [0; ACCEPT_LEN]).to_owned()
}

/// The length of a `Sec-WebSocket-Accept` value: 20 bytes in base64.
pub(crate) const ACCEPT_LEN: usize = 28;

/// [`accept_key`] written into `buf`, without an allocation.
pub(crate) fn accept_key_in<'a>(key: &[u8], buf: &'a mut [u8; ACCEPT_LEN]) -> &'a str {
    // 20 bytes are always 28 base64 characters (ASCII): neither fails.
    let len = STANDARD
        .encode_slice(accept_digest(key), buf)
        .unwrap_or_default();
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// SHA-1 of the key and the GUID: the `Sec-WebSocket-Accept` value before
/// base64 (20 bytes, so always 28 base64 characters).
fn accept_digest(key: &[u8]) -> impl AsRef<[u8]> {
    Sha1::new().chain_update(key).chain_update(GUID).finalize()
}

/// A `Sec-WebSocket-Key`: 16 random bytes, base64-encoded.
pub fn key_from_nonce(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// Why an opening handshake failed, naming the check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Server role: the request was refused with this HTTP status (by the
    /// parser or by the application); `reason` says why.
    Rejected {
        /// HTTP status sent.
        status: u16,
        /// Why.
        reason: String,
    },
    /// Client role: the response status was not 101 (not 200 for an
    /// extended CONNECT over HTTP/2).
    Status(u16),
    /// The head is not valid HTTP/1.1.
    Malformed(String),
    /// The head exceeded the configured limit.
    HeadTooLarge,
    /// Client role: `Upgrade: websocket` is missing.
    MissingUpgrade,
    /// Client role: `Connection` has no `upgrade` token.
    MissingConnectionUpgrade,
    /// Client role: `Sec-WebSocket-Accept` is missing or wrong.
    BadAccept,
    /// Client role: the server chose a subprotocol that was not offered.
    UnofferedProtocol(String),
    /// Client role: the server accepted an extension that was not offered,
    /// or with parameters we cannot honour.
    BadExtension(String),
    /// A `ws://` URL could not be used.
    InvalidUrl(String),
    /// The handshake did not finish in time.
    Timeout,
    /// The transport closed before the handshake finished.
    Eof,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status, reason } => {
                write!(f, "upgrade request rejected with {status}: {reason}")
            }
            Self::Status(status) => {
                write!(
                    f,
                    "server answered {status} instead of 101 Switching Protocols"
                )
            }
            Self::Malformed(why) => write!(f, "malformed HTTP head: {why}"),
            Self::HeadTooLarge => f.write_str("HTTP head is larger than the configured limit"),
            Self::MissingUpgrade => f.write_str("response is missing Upgrade: websocket"),
            Self::MissingConnectionUpgrade => {
                f.write_str("response is missing Connection: Upgrade")
            }
            Self::BadAccept => f.write_str("response has a missing or wrong Sec-WebSocket-Accept"),
            Self::UnofferedProtocol(protocol) => {
                write!(
                    f,
                    "server chose subprotocol {protocol:?}, which was not offered"
                )
            }
            Self::BadExtension(why) => write!(f, "server accepted an unusable extension: {why}"),
            Self::InvalidUrl(why) => write!(f, "invalid WebSocket URL: {why}"),
            Self::Timeout => f.write_str("opening handshake timed out"),
            Self::Eof => f.write_str("connection closed during the opening handshake"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// httparse's headers as `(name, value)` pairs.
fn raw_pairs<'a>(
    raw: &'a [httparse::Header<'a>],
) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
    raw.iter().map(|header| (header.name, header.value))
}

/// Whether any of the comma-separated lists in `values` holds `token`
/// (case-insensitive), as in `Connection: keep-alive, Upgrade`.
fn has_token<'a>(mut values: impl Iterator<Item = &'a str>, token: &str) -> bool {
    values.any(|value| {
        value
            .split(',')
            .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
    })
}

/// Strip HTTP optional whitespace (spaces and tabs) from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` may appear in an HTTP token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Append `(name, value)` to `headers` unless it could break the head: the
/// name must be a token and the value free of control characters (CR, LF…).
fn push_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    if is_token(&name) && !value.chars().any(|c| c.is_control() && c != '\t') {
        headers.push((name, value));
    }
}

/// Write `Name: value\r\n`.
fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An HTTP head from a first line and header lines (tests of both roles).
#[cfg(test)]
pub(crate) fn test_head(first_line: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{first_line}\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §1.3 and §4.2.2: the accept value.
    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    // RFC 6455 §4.1: the key is 16 random bytes, base64-encoded.
    #[test]
    fn key_from_nonce_is_base64_of_16_bytes() {
        assert_eq!(
            key_from_nonce(*b"the sample nonce"),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(key_from_nonce([0; 16]).len(), 24);
    }

    #[test]
    fn token_lists_are_case_insensitive_and_whitespace_tolerant() {
        assert!(has_token(["keep-alive, Upgrade"].into_iter(), "upgrade"));
        assert!(has_token(
            ["keep-alive", " UPGRADE\t"].into_iter(),
            "upgrade"
        ));
        assert!(!has_token(["keep-alive, upgraded"].into_iter(), "upgrade"));
        assert!(!has_token(std::iter::empty(), "upgrade"));
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let headers = HeaderList::collect("", [("Host", "a"), ("HOST", "b")], 0).unwrap();
        assert_eq!(headers.get("host"), Some("a"));
        assert_eq!(headers.values("hOsT").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(headers.get("origin"), None);
    }

    #[test]
    fn accept_key_in_a_buffer_is_accept_key() {
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        let mut buf = [0; ACCEPT_LEN];
        assert_eq!(accept_key_in(key, &mut buf), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(accept_key(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn unsafe_headers_are_not_added() {
        let mut headers = Vec::new();
        push_header(&mut headers, "X-Ok".into(), "fine value".into());
        push_header(&mut headers, "X-Bad".into(), "a\r\nInjected: yes".into());
        push_header(&mut headers, "Bad Name".into(), "v".into());
        assert_eq!(headers, [("X-Ok".to_owned(), "fine value".to_owned())]);
    }

    #[test]
    fn errors_name_the_failed_check() {
        assert_eq!(
            HandshakeError::MissingUpgrade.to_string(),
            "response is missing Upgrade: websocket"
        );
        assert_eq!(
            HandshakeError::Status(404).to_string(),
            "server answered 404 instead of 101 Switching Protocols"
        );
        assert!(HandshakeError::UnofferedProtocol("x".into())
            .to_string()
            .contains("\"x\""));
    }
}

//! The client side of the HTTP/1.1 upgrade (RFC 6455 §4.1), minimal: the
//! request is built once per connection and the response is only checked
//! for its `101` status line.

use std::net::SocketAddr;

use crate::rng::Rng;

/// Largest response head accepted before giving up on a connection.
pub const MAX_RESPONSE_HEAD: usize = 8192;

/// Builds an upgrade request for `path` on `target` with a fresh key.
/// With `deflate`, it offers permessage-deflate.
pub fn request(target: SocketAddr, path: &str, deflate: bool, rng: &mut Rng) -> Vec<u8> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next_u64().to_ne_bytes());
    nonce[8..].copy_from_slice(&rng.next_u64().to_ne_bytes());
    let offer = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n",
        base64(&nonce)
    )
    .into_bytes()
}

/// permessage-deflate in a response head: `None` when not negotiated,
/// else whether the server resets its context after every message.
pub fn deflate_answer(head: &[u8]) -> Option<bool> {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let line = head
        .lines()
        .find(|l| l.starts_with("sec-websocket-extensions:") && l.contains("permessage-deflate"))?;
    Some(line.contains("server_no_context_takeover"))
}

/// What the bytes received so far say about the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// The head is not complete yet.
    Partial,
    /// `101 Switching Protocols`; frames start at this offset.
    Upgraded(usize),
    /// Any other status, or a head too large.
    Refused(String),
}

/// Looks at the response bytes received so far.
pub fn parse_response(buf: &[u8]) -> Response {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_RESPONSE_HEAD {
            Response::Refused("response head too large".into())
        } else {
            Response::Partial
        };
    };
    let status_line = buf[..end].split(|&b| b == b'\r').next().unwrap_or_default();
    if status_line.starts_with(b"HTTP/1.1 101") {
        Response::Upgraded(end + 4)
    } else {
        Response::Refused(String::from_utf8_lossy(status_line).into_owned())
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn request_has_the_upgrade_headers() {
        let req = request(
            "127.0.0.1:9001".parse().unwrap(),
            "/chat",
            false,
            &mut Rng::new(1),
        );
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("GET /chat HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"));
        assert!(req.contains("Sec-WebSocket-Version: 13\r\n"));
        let key = req
            .split("Sec-WebSocket-Key: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        assert!(key.len() == 24 && key.ends_with("=="), "{key}");
        assert!(req.ends_with("\r\n\r\n"));
        assert!(!req.contains("Extensions"));
        let req = request(
            "127.0.0.1:9001".parse().unwrap(),
            "/",
            true,
            &mut Rng::new(1),
        );
        let req = String::from_utf8(req).unwrap();
        assert!(req.ends_with(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ));
    }

    #[test]
    fn deflate_answer_is_read_from_the_head() {
        let head = |ext: &str| {
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{ext}\r\n")
        };
        assert_eq!(deflate_answer(head("").as_bytes()), None);
        let takeover = head("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(deflate_answer(takeover.as_bytes()), Some(false));
        let reset =
            head("sec-websocket-extensions: permessage-deflate; server_no_context_takeover\r\n");
        assert_eq!(deflate_answer(reset.as_bytes()), Some(true));
    }

    #[test]
    fn response_parsing() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x00";
        assert_eq!(parse_response(ok), Response::Upgraded(ok.len() - 2));
        assert_eq!(parse_response(&ok[..20]), Response::Partial);
        let no = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert_eq!(
            parse_response(no),
            Response::Refused("HTTP/1.1 404 Not Found".into())
        );
        assert!(matches!(
            parse_response(&[b'x'; MAX_RESPONSE_HEAD + 1]),
            Response::Refused(_)
        ));
    }
}

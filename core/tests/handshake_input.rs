//! Upgrade heads as they arrive: in pieces, and with bare-LF line endings.

mod common;

use std::{sync::Arc, time::Instant};

use common::*;
use hubbub_core::{Config, Connection, Event, HandshakeError};

/// A large head dripped a byte at a time is parsed once, when its blank
/// line arrives: no event before, the request after (its scanner's
/// one-pass bound is the unit test `handshake::head`).
#[test]
fn head_fed_a_byte_at_a_time_is_accepted() {
    let mut head = REQUEST[..REQUEST.len() - 2].to_vec();
    while head.len() < 8 << 10 {
        head.extend_from_slice(format!("X-Padding: {}\r\n", "a".repeat(400)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(Config::default()), now);
    for (i, byte) in head.iter().enumerate() {
        server.handle_input(now, &[*byte]);
        if i + 1 < head.len() {
            assert!(server.poll_event().is_none(), "event at byte {i}");
        }
    }
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    assert_eq!(server.request().unwrap().path(), "/chat");
}

/// RFC 9112 §2.2 lets a recipient accept LF alone as a line ending; we
/// refuse it (400 naming the problem), as the HTTP routes do.
#[test]
fn bare_lf_in_the_request_head_is_400() {
    let request = String::from_utf8(REQUEST.to_vec()).unwrap().replacen(
        "Host: server.example.com\r\n",
        "Host: server.example.com\n",
        1,
    );
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(Config::default()), now);
    server.handle_input(now, request.as_bytes());
    match server.poll_event() {
        Some(Event::HandshakeFailed(HandshakeError::Rejected { status, reason })) => {
            assert_eq!(status, 400);
            assert!(reason.contains("bare LF"), "{reason}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    let answer = String::from_utf8(drain(&mut server)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("bare LF"), "{answer}");
}

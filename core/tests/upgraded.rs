//! A server connection that starts open (`Connection::upgraded`) after an
//! HTTP server answered the upgrade with the headers of `Request::negotiate`,
//! against a normal client connection.

mod common;

use std::{sync::Arc, time::Instant};

use common::*;
use hubbub_core::{
    handshake::parse_request, Accept, ClientRequest, Config, Connection, Event, Message, Opened,
    Request, Upgrade,
};

/// The request head as an HTTP server hands it over: target and headers.
fn split_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let head = std::str::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n").filter(|line| !line.is_empty());
    let target = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_lowercase(), value.trim().to_owned())
        })
        .collect();
    (target, headers)
}

/// The `101` an HTTP server writes with `upgrade`'s headers.
fn response_head(upgrade: &Upgrade) -> Vec<u8> {
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in &upgrade.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn opened(events: &mut Vec<Event>) -> Opened {
    match events.remove(0) {
        Event::Open(opened) => opened,
        other => panic!("expected Open, got {other:?}"),
    }
}

/// A client connection, and a server built with `upgraded` from the
/// client's request, negotiated with `accept`; both open, reporting the
/// same `Opened`, which is returned.
fn upgraded_pair(client_config: Config, server_config: Config, accept: Accept) -> (Pair, Opened) {
    let now = Instant::now();
    let request = ClientRequest::new("example.com", "/chat?room=1")
        .protocol("chat")
        .protocol("superchat");
    let mut client = Connection::client(Arc::new(client_config), now, &request, [9; 32]);
    let (target, headers) = split_head(&drain(&mut client));
    let request = Request::from_parts(&target, headers).unwrap();
    assert_eq!(request.path(), "/chat");
    let server_config = Arc::new(server_config);
    let upgrade = request.negotiate(&server_config, accept).unwrap();
    client.handle_input(now, &response_head(&upgrade));
    let mut server = Connection::upgraded(server_config, upgrade.negotiated, now);
    assert_eq!(server.pending_bytes(), 0, "no handshake bytes go out");
    let mut server_events = events(&mut server);
    let mut client_events = events(&mut client);
    let server_open = opened(&mut server_events);
    assert_eq!(opened(&mut client_events), server_open);
    assert!(server_events.is_empty() && client_events.is_empty());
    assert!(server.is_open() && client.is_open());
    let pair = Pair {
        client,
        server,
        now,
        client_events,
        server_events,
    };
    (pair, server_open)
}

/// Messages both ways, several of them (a compressor that keeps its
/// context must still agree with its peer on the second and later).
fn exchange(pair: &mut Pair) {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let sent = vec![
        Message::text(text.clone()),
        Message::binary(text.clone().into_bytes()),
        Message::text(text.clone()),
        Message::text("short"),
    ];
    for message in &sent {
        pair.client.send(message.clone()).unwrap();
        pair.server.send(message.clone()).unwrap();
    }
    pair.pump();
    assert_eq!(messages(&pair.server_events), sent);
    assert_eq!(messages(&pair.client_events), sent);
}

#[test]
fn upgraded_server_exchanges_messages_with_a_client() {
    let (mut pair, opened) = upgraded_pair(
        Config::default(),
        Config::default(),
        Accept::new().protocol("superchat"),
    );
    assert_eq!(opened.protocol.as_deref(), Some("superchat"));
    assert_eq!(opened.extensions, None);
    assert_eq!(
        pair.client.response().unwrap().protocol(),
        Some("superchat")
    );
    exchange(&mut pair);
    // The close handshake works as after `accept`.
    pair.client
        .close(pair.now, hubbub_core::CloseCode::NORMAL, "bye")
        .unwrap();
    pair.pump();
    assert!(pair.server.is_closed() && pair.client.is_closed());
}

#[test]
fn unoffered_subprotocol_is_refused() {
    let request = Request::from_parts("/", valid_headers()).unwrap();
    let error = request
        .negotiate(&Config::default(), Accept::new().protocol("other"))
        .unwrap_err();
    assert_eq!(
        error,
        hubbub_core::UsageError::UnofferedProtocol("other".into())
    );
}

fn valid_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
}

/// The request head `parse_request` would see for `headers`.
fn as_head(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = String::from("GET /chat HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

// Bad requests get the same `Reject` as from `parse_request`: 400 for a
// missing or malformed header, 426 (naming version 13) for another version.
#[test]
fn bad_requests_are_rejected_like_parse_request() {
    let cases: [(&str, Option<&str>, u16); 5] = [
        ("Sec-WebSocket-Key", None, 400),
        ("Sec-WebSocket-Key", Some("c2hvcnQ="), 400),
        ("Upgrade", None, 400),
        ("Host", None, 400),
        ("Sec-WebSocket-Version", Some("8"), 426),
    ];
    for (name, value, status) in cases {
        let mut headers = valid_headers();
        headers.retain(|(n, _)| *n != name);
        if let Some(value) = value {
            headers.push((name, value));
        }
        let reject = Request::from_parts("/chat", headers.clone()).unwrap_err();
        assert_eq!(reject.status(), status, "{name}: {value:?}");
        assert_eq!(
            Err(reject.clone()),
            parse_request(&as_head(&headers), 1 << 16).map(|_| ()),
            "{name}: {value:?}"
        );
        if status == 426 {
            assert!(reject
                .headers()
                .any(|h| h == ("Sec-WebSocket-Version", "13")));
        }
    }
    // A value that is not text.
    let mut headers: Vec<(&str, &[u8])> = vec![("X-Bin", b"\x01")];
    headers.extend(valid_headers().into_iter().map(|(n, v)| (n, v.as_bytes())));
    assert_eq!(Request::from_parts("/", headers).unwrap_err().status(), 400);
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use hubbub_core::DeflateConfig;

    fn with_deflate(server_nct: bool, client_nct: bool) -> Config {
        Config {
            deflate: Some(DeflateConfig {
                server_no_context_takeover: server_nct,
                client_no_context_takeover: client_nct,
                ..DeflateConfig::default()
            }),
            ..Config::default()
        }
    }

    /// Whether every data frame in `wire` has RSV1 (compressed) set, and
    /// there is at least one.
    fn all_compressed(wire: &[u8]) -> bool {
        let frames = parse_frames(wire);
        !frames.is_empty() && frames.iter().all(|f| f.1 & 0b100 != 0)
    }

    // Compressed messages round-trip with either end keeping its context
    // between messages, or neither, or both resetting.
    #[test]
    fn compressed_messages_round_trip_in_every_context_takeover_mode() {
        for (server_nct, client_nct) in [(true, false), (false, true), (false, false), (true, true)]
        {
            let config = with_deflate(server_nct, client_nct);
            let (mut pair, opened) = upgraded_pair(config.clone(), config, Accept::new());
            let extensions = opened.extensions.unwrap();
            assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
            assert_eq!(
                extensions.contains("server_no_context_takeover"),
                server_nct,
                "{extensions}"
            );
            assert_eq!(
                extensions.contains("client_no_context_takeover"),
                client_nct,
                "{extensions}"
            );
            assert!(pair.server.has_extension() && pair.client.has_extension());
            // The frames on the wire are compressed, both ways.
            let big = "compress me ".repeat(100);
            pair.client.send(Message::text(big.clone())).unwrap();
            pair.server.send(Message::text(big.clone())).unwrap();
            let (to_server, to_client) = (drain(&mut pair.client), drain(&mut pair.server));
            assert!(all_compressed(&to_server) && all_compressed(&to_client));
            assert!(to_server.len() < big.len() / 4 && to_client.len() < big.len() / 4);
            pair.server.handle_input(pair.now, &to_server);
            pair.client.handle_input(pair.now, &to_client);
            pair.server_events.extend(events(&mut pair.server));
            pair.client_events.extend(events(&mut pair.client));
            assert_eq!(messages(&pair.server_events), [Message::text(big.clone())]);
            assert_eq!(messages(&pair.client_events), [Message::text(big)]);
            pair.server_events.clear();
            pair.client_events.clear();
            exchange(&mut pair);
        }
    }

    // `Connection::accept` answers with exactly the headers of
    // `Request::negotiate`: one code path.
    #[test]
    fn accept_writes_the_negotiated_headers() {
        let config = with_deflate(true, true);
        let mut offer = valid_headers();
        offer.push(("Sec-WebSocket-Protocol", "chat"));
        offer.push((
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits",
        ));
        let accept = || Accept::new().protocol("chat").header("X-Served-By", "test");
        let upgrade = Request::from_parts("/chat", offer.clone())
            .unwrap()
            .negotiate(&config, accept())
            .unwrap();
        assert_eq!(
            upgrade.negotiated.extensions(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        let now = Instant::now();
        let mut server = Connection::server(Arc::new(config), now);
        server.handle_input(now, &as_head(&offer));
        assert!(matches!(server.poll_event(), Some(Event::Request)));
        server.accept(now, accept()).unwrap();
        assert_eq!(drain(&mut server), response_head(&upgrade));
    }
}

//! RFC 8441 from the client's side: the headers of an extended CONNECT and
//! the checks on its answer (`Connection::client_upgraded`), which are a
//! `101`'s without `Upgrade`, `Connection` and `Sec-WebSocket-Accept`;
//! then a client connection and a server connection opened over one
//! "stream" exchange messages, permessage-deflate included.
#![cfg(feature = "deflate")]

mod common;

use common::drain;
use std::{sync::Arc, time::Instant};

use hubbub_core::{
    Accept, ClientRequest, Config, Connection, DeflateConfig, Event, HandshakeError, Message,
    Request,
};

fn deflate() -> Arc<Config> {
    Arc::new(Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    })
}

fn request() -> ClientRequest {
    ClientRequest::from_url("wss://example.com/chat")
        .unwrap()
        .protocol("chat")
        .protocol("superchat")
        .header("Origin", "https://example.com")
        .header("Upgrade", "websocket")
}

fn open(status: u16, headers: &[(&str, &str)]) -> Result<Connection, HandshakeError> {
    let headers = headers.iter().map(|(n, v)| (*n, v.as_bytes()));
    Connection::client_upgraded(
        deflate(),
        Instant::now(),
        &request(),
        status,
        headers,
        [1; 32],
    )
}

#[test]
fn the_request_offers_what_an_http1_request_offers() {
    let headers = request().extended_connect_headers(&deflate());
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("sec-websocket-version"), Some("13"));
    assert_eq!(get("sec-websocket-protocol"), Some("chat, superchat"));
    assert!(get("sec-websocket-extensions")
        .unwrap()
        .starts_with("permessage-deflate"));
    assert_eq!(get("origin"), Some("https://example.com"));
    // Connection-specific headers have no place in HTTP/2.
    assert_eq!(get("upgrade"), None);
    assert!(headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
}

#[test]
fn a_200_opens_with_the_chosen_protocol_and_extension() {
    let mut conn = open(
        200,
        &[
            ("sec-websocket-protocol", "superchat"),
            (
                "sec-websocket-extensions",
                "permessage-deflate; server_no_context_takeover",
            ),
        ],
    )
    .unwrap();
    match conn.poll_event() {
        Some(Event::Open(opened)) => {
            assert_eq!(opened.protocol.as_deref(), Some("superchat"));
            assert!(opened.extensions.unwrap().starts_with("permessage-deflate"));
        }
        other => panic!("expected Open, got {other:?}"),
    }
    let response = conn.response().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.protocol(), Some("superchat"));
    assert!(conn.is_open());
}

#[test]
fn answers_are_checked_as_a_101_is() {
    let error = |status, headers: &[(&str, &str)]| open(status, headers).err().unwrap();
    assert_eq!(error(403, &[]), HandshakeError::Status(403));
    assert_eq!(error(101, &[]), HandshakeError::Status(101));
    assert_eq!(
        error(200, &[("sec-websocket-protocol", "other")]),
        HandshakeError::UnofferedProtocol("other".into())
    );
    assert!(matches!(
        error(200, &[("sec-websocket-extensions", "x-unknown")]),
        HandshakeError::BadExtension(_)
    ));
    assert!(matches!(
        error(
            200,
            &[("sec-websocket-extensions", "permessage-deflate; bogus=1")]
        ),
        HandshakeError::BadExtension(_)
    ));
}

/// Both ends over one in-memory "stream": the server side negotiates from
/// the CONNECT's headers, the client checks the 200's, and a compressed
/// message goes each way.
#[test]
fn both_ends_talk_over_the_stream() {
    let config = deflate();
    let request = request();
    let headers = request.extended_connect_headers(&config);
    let server_request = Request::from_extended_connect(
        "/chat",
        std::iter::once(("host", "example.com".as_bytes()))
            .chain(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
    )
    .unwrap();
    let upgrade = server_request
        .negotiate(&config, Accept::new().protocol("chat"))
        .unwrap();
    let now = Instant::now();
    let mut server = Connection::upgraded(config.clone(), upgrade.negotiated, now);
    let answer = upgrade
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let mut client =
        Connection::client_upgraded(config, now, &request, 200, answer, [9; 32]).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    assert!(
        matches!(client.poll_event(), Some(Event::Open(o)) if o.protocol.as_deref() == Some("chat"))
    );
    let text = "over HTTP/2 ".repeat(100);
    client.send(Message::text(text.clone())).unwrap();
    let bytes = drain(&mut client);
    assert!(bytes.len() < text.len() / 4, "compressed: {}", bytes.len());
    server.handle_input(now, &bytes);
    match server.poll_event() {
        Some(Event::Message(message)) => assert_eq!(message, Message::text(text.clone())),
        other => panic!("expected the message, got {other:?}"),
    }
    server.send(Message::text(text.clone())).unwrap();
    client.handle_input(now, &drain(&mut server));
    assert!(matches!(client.poll_event(), Some(Event::Message(m)) if m == Message::text(text)));
}

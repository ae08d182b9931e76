//! RFC 6455 §9: the extension point. A toy extension that claims RSV1 and
//! inverts every byte shows that negotiation, RSV handling and per-message
//! transforms plug in without touching the core (permessage-deflate uses the
//! same trait).

mod common;

use std::sync::Arc;

use common::*;
use hubbub_core::{
    extension::{DecodeError, Extension, ExtensionFactory, Offer, Sink},
    Accept, ClientRequest, Config, Connection, Event, Message, ProtocolError,
};

struct Invert;

impl Extension for Invert {
    fn rsv_bits(&self) -> u8 {
        0b100
    }
    fn decode(&mut self, input: &[u8], _last: bool, sink: Sink<'_>) -> Result<(), DecodeError> {
        let inverted: Vec<u8> = input.iter().map(|b| !b).collect();
        sink(&inverted)
    }
    fn encode(&mut self, payload: &[u8], _is_text: bool) -> Option<(u8, Vec<u8>)> {
        // Leave short messages alone, to show mixed traffic works.
        (payload.len() > 3).then(|| (0b100, payload.iter().map(|b| !b).collect()))
    }
}

struct InvertFactory;

impl ExtensionFactory for InvertFactory {
    fn name(&self) -> &str {
        "x-invert"
    }
    fn accept_offer(&self, offers: &[&Offer]) -> Option<(Offer, Box<dyn Extension>)> {
        offers.iter().find(|o| o.param("ok").is_some()).map(|_| {
            (
                Offer {
                    name: "x-invert".into(),
                    params: vec![],
                },
                Box::new(Invert) as Box<dyn Extension>,
            )
        })
    }
    fn client_offers(&self) -> Vec<Offer> {
        vec![
            Offer {
                name: "x-invert".into(),
                params: vec![("unsupported".into(), None)],
            },
            Offer {
                name: "x-invert".into(),
                params: vec![("ok".into(), Some("1".into()))],
            },
        ]
    }
    fn accept_response(&self, _response: &Offer) -> Result<Box<dyn Extension>, String> {
        Ok(Box::new(Invert))
    }
}

fn with_ext() -> Config {
    Config {
        extensions: vec![Arc::new(InvertFactory)],
        max_message_size: 100,
        ..Config::default()
    }
}

#[test]
fn negotiated_both_ways_and_transforms_messages() {
    let mut pair = Pair::new(with_ext(), with_ext());
    assert_eq!(
        pair.client.response().unwrap().extensions()[0].name,
        "x-invert"
    );
    pair.client
        .send(Message::Text("hello world".into()))
        .unwrap();
    pair.client.send(Message::Text("hi".into())).unwrap(); // sent untransformed
                                                           // On the wire the first message has RSV1 and inverted bytes.
    let wire = drain(&mut pair.client);
    let frames = parse_frames(&wire);
    assert_eq!((frames[0].1, frames[1].1), (0b100, 0));
    assert_eq!(
        frames[0].3,
        b"hello world".iter().map(|b| !b).collect::<Vec<_>>()
    );
    pair.server.handle_input(pair.now, &wire);
    let got: Vec<Event> = events(&mut pair.server);
    assert!(matches!(&got[0], Event::Message(Message::Text(t)) if t == "hello world"));
    assert!(matches!(&got[1], Event::Message(Message::Text(t)) if t == "hi"));
}

#[test]
fn server_without_the_extension_declines_it() {
    let mut pair = Pair::new(with_ext(), Config::default());
    assert!(pair.client.response().unwrap().extensions().is_empty());
    pair.client
        .send(Message::Text("plain text".into()))
        .unwrap();
    pair.pump();
    assert!(
        matches!(&pair.server_events[0], Event::Message(Message::Text(t)) if t == "plain text")
    );
}

#[test]
fn rsv1_only_on_first_frame_and_limit_applies_after_decoding() {
    let (mut server, now) = {
        let now = std::time::Instant::now();
        let mut server = Connection::server(Arc::new(with_ext()), now);
        let request = String::from_utf8(REQUEST.to_vec()).unwrap().replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: x-invert; ok\r\n\r\n",
        );
        server.handle_input(now, request.as_bytes());
        assert!(matches!(server.poll_event(), Some(Event::Request)));
        server.accept(now, Accept::new()).unwrap();
        drain(&mut server);
        events(&mut server);
        (server, now)
    };
    // RSV1 on a continuation frame is a protocol error.
    server.handle_input(
        now,
        &[
            frame(false, 0b100, 2, Some(MASK), b"ab"),
            frame(true, 0b100, 0, Some(MASK), b"cd"),
        ]
        .concat(),
    );
    let got = events(&mut server);
    assert!(
        got.iter()
            .any(|e| matches!(e, Event::ProtocolError(ProtocolError::ReservedBits))),
        "{got:?}"
    );

    let config = Config {
        max_message_size: 10,
        ..with_ext()
    };
    let now = std::time::Instant::now();
    let mut server = Connection::server(Arc::new(config), now);
    let request = String::from_utf8(REQUEST.to_vec()).unwrap().replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: x-invert; ok\r\n\r\n",
    );
    server.handle_input(now, request.as_bytes());
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    drain(&mut server);
    let inverted: Vec<u8> = [b'z'; 11].iter().map(|b| !b).collect();
    let (_, out) = respond(
        &mut server,
        now,
        &frame(true, 0b100, 2, Some(MASK), &inverted),
    );
    assert_eq!(close_of(&out).map(|c| c.0), Some(1009));
}

#[test]
fn client_rejects_unoffered_extension() {
    let now = std::time::Instant::now();
    let mut client = Connection::client(
        Arc::new(Config::default()),
        now,
        &ClientRequest::new("h", "/"),
        [1; 32],
    );
    let request = drain(&mut client);
    let key = String::from_utf8_lossy(&request)
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").map(str::to_owned))
        .unwrap();
    let accept = hubbub_core::handshake::accept_key(key.as_bytes());
    let response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: x-invert\r\n\r\n");
    client.handle_input(now, response.as_bytes());
    assert!(matches!(
        client.poll_event(),
        Some(Event::HandshakeFailed(
            hubbub_core::HandshakeError::BadExtension(_)
        ))
    ));
}

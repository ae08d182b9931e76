//! RFC 7692 permessage-deflate: negotiation for both roles, the RFC's own
//! wire examples (§7.2.3), limits (message size after inflation, ratio cap),
//! the compression threshold, context takeover, and compress-once broadcast.

mod common;

use std::{io::IoSlice, sync::Arc, time::Instant};

use common::*;
use hubbub_core::{
    Accept, ClientRequest, Config, Connection, DeflateConfig, EncodedFrame, Event, HandshakeError,
    Message,
};
use proptest::prelude::*;

fn config(deflate: DeflateConfig) -> Config {
    Config {
        deflate: Some(deflate),
        max_message_size: 1 << 20,
        ..Config::default()
    }
}

fn deflate() -> Config {
    config(DeflateConfig::default())
}

/// Context takeover both ways (the default asks `server_no_context_takeover`).
fn takeover() -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: false,
        ..DeflateConfig::default()
    }
}

/// The RFC's sample request plus `headers`, accepted by a server with
/// `config`; returns the server and the negotiated extension.
fn server_with(config: Config, headers: &[&str]) -> (Connection, Option<String>) {
    let head = std::str::from_utf8(REQUEST).unwrap().trim_end();
    let mut request = head.to_owned();
    for header in headers {
        request.push_str("\r\n");
        request.push_str(header);
    }
    request.push_str("\r\n\r\n");
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(config), now);
    server.handle_input(now, request.as_bytes());
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    let Some(Event::Open(opened)) = server.poll_event() else {
        panic!("not opened")
    };
    let head = String::from_utf8(drain(&mut server)).unwrap();
    // The response carries exactly what Opened reports.
    let header = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned);
    assert_eq!(header, opened.extensions);
    (server, opened.extensions)
}

fn negotiated(config: Config, offers: &str) -> Option<String> {
    server_with(config, &[&format!("Sec-WebSocket-Extensions: {offers}")]).1
}

/// A client with `config` whose server answered with `extensions`: the
/// first event (Open or HandshakeFailed) and the client.
fn client_with(config: Config, extensions: Option<&str>) -> (Connection, Event, String) {
    let now = Instant::now();
    let request = ClientRequest::new("h", "/");
    let mut client = Connection::client(Arc::new(config), now, &request, [1; 32]);
    let request = String::from_utf8(drain(&mut client)).unwrap();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = hubbub_core::handshake::accept_key(key.as_bytes());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(value) = extensions {
        response.push_str(&format!("Sec-WebSocket-Extensions: {value}\r\n"));
    }
    response.push_str("\r\n");
    client.handle_input(now, response.as_bytes());
    let event = client.poll_event().unwrap();
    let offer = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .unwrap_or_default()
        .to_owned();
    (client, event, offer)
}

// ----- negotiation: server ---------------------------------------------------

// RFC 7692 §5, §7.1: the server's answer to each offer, declined offers
// falling through to the next, and the connection opening without the
// extension when none is acceptable.
#[test]
fn server_negotiation_table() {
    let base = takeover();
    let table: &[(DeflateConfig, &str, Option<&str>)] = &[
        (base.clone(), "permessage-deflate", Some("permessage-deflate")),
        (base.clone(), "x-foo, permessage-deflate", Some("permessage-deflate")),
        (base.clone(), "PerMessage-Deflate", Some("permessage-deflate")),
        // Without a cap of ours, client_max_window_bits needs no answer.
        (base.clone(), "permessage-deflate; client_max_window_bits", Some("permessage-deflate")),
        (
            DeflateConfig { client_max_window_bits: Some(10), ..base.clone() },
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate; client_max_window_bits=10"),
        ),
        (
            DeflateConfig { client_max_window_bits: Some(12), ..base.clone() },
            "permessage-deflate; client_max_window_bits=9",
            Some("permessage-deflate; client_max_window_bits=9"),
        ),
        // The client did not say it supports client_max_window_bits.
        (
            DeflateConfig { client_max_window_bits: Some(10), ..base.clone() },
            "permessage-deflate",
            Some("permessage-deflate"),
        ),
        (
            base.clone(),
            "permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            base.clone(),
            "permessage-deflate; server_max_window_bits=\"11\"",
            Some("permessage-deflate; server_max_window_bits=11"),
        ),
        (
            DeflateConfig { server_max_window_bits: Some(10), ..base.clone() },
            "permessage-deflate",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            DeflateConfig { server_max_window_bits: Some(10), ..base.clone() },
            "permessage-deflate; server_max_window_bits=12",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            DeflateConfig { server_max_window_bits: Some(10), ..base.clone() },
            "permessage-deflate; server_max_window_bits=9",
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        (
            base.clone(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            DeflateConfig { server_no_context_takeover: true, ..base.clone() },
            "permessage-deflate",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            DeflateConfig { client_no_context_takeover: true, ..base.clone() },
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        // Window 8 for our compressor: declined, the next offer wins.
        (base.clone(), "permessage-deflate; server_max_window_bits=8", None),
        (
            base.clone(),
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        // Malformed offers are declined, never a failed handshake.
        (base.clone(), "permessage-deflate; server_max_window_bits", None),
        (base.clone(), "permessage-deflate; server_max_window_bits=16", None),
        (base.clone(), "permessage-deflate; server_max_window_bits=7", None),
        (base.clone(), "permessage-deflate; server_max_window_bits=010", None),
        (base.clone(), "permessage-deflate; client_max_window_bits=abc", None),
        (base.clone(), "permessage-deflate; client_no_context_takeover=1", None),
        (base.clone(), "permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        (base.clone(), "permessage-deflate; mystery", None),
        // Not even extension-list syntax: skipped, not a 400.
        (base.clone(), "permessage-deflate; =1", None),
        (base.clone(), "permessage-deflate; server_max_window_bits=\"1", None),
        (
            base.clone(),
            "permessage-deflate; mystery, permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
    ];
    for (deflate, offers, want) in table {
        assert_eq!(
            negotiated(config(deflate.clone()), offers).as_deref(),
            *want,
            "offers {offers:?} with {deflate:?}"
        );
    }
    // The default: our compressor keeps no context.
    assert_eq!(
        negotiated(deflate(), "permessage-deflate").as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // Off: never negotiated.
    assert_eq!(negotiated(Config::default(), "permessage-deflate"), None);
}

#[test]
fn offers_in_several_headers() {
    let (_, got) = server_with(
        config(DeflateConfig {
            client_max_window_bits: Some(10),
            ..takeover()
        }),
        &[
            "Sec-WebSocket-Extensions: x-foo, permessage-deflate; server_max_window_bits=8",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12",
        ],
    );
    assert_eq!(
        got.as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
}

// ----- negotiation: client ---------------------------------------------------

#[test]
fn client_offer_follows_config() {
    let (_, _, offer) = client_with(deflate(), None);
    assert_eq!(
        offer,
        "permessage-deflate; server_no_context_takeover; client_max_window_bits"
    );
    let (_, _, offer) = client_with(config(takeover()), None);
    assert_eq!(offer, "permessage-deflate; client_max_window_bits");
    let (_, _, offer) = client_with(
        config(DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
            ..DeflateConfig::default()
        }),
        None,
    );
    assert_eq!(
        offer,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=11"
    );
    let (_, _, offer) = client_with(Config::default(), None);
    assert_eq!(offer, "");
}

// RFC 7692 §7.1: responses the client accepts, and those it must fail.
#[test]
fn client_validates_response() {
    let asking = || {
        config(DeflateConfig {
            server_max_window_bits: Some(10),
            ..DeflateConfig::default()
        })
    };
    let deflate = || config(takeover());
    let ok: &[(Config, Option<&str>)] = &[
        (deflate(), None),
        (deflate(), Some("permessage-deflate")),
        (
            deflate(),
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        (
            deflate(),
            Some("permessage-deflate; client_max_window_bits=10"),
        ),
        (
            deflate(),
            Some("permessage-deflate; client_max_window_bits=8"),
        ),
        (
            deflate(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            asking(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"),
        ),
        (
            asking(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=\"8\""),
        ),
    ];
    for (config, response) in ok {
        let (_, event, _) = client_with(config.clone(), *response);
        let Event::Open(opened) = event else {
            panic!("{response:?}: {event:?}")
        };
        assert_eq!(
            opened.extensions.is_some(),
            response.is_some(),
            "{response:?}"
        );
    }
    let bad: &[(Config, &str, &str)] = &[
        (
            deflate(),
            "permessage-deflate; mystery",
            "unknown parameter",
        ),
        (
            deflate(),
            "permessage-deflate; client_max_window_bits",
            "needs a value",
        ),
        (
            deflate(),
            "permessage-deflate; server_max_window_bits=16",
            "not in 8..15",
        ),
        (
            deflate(),
            "permessage-deflate; server_no_context_takeover=yes",
            "takes no value",
        ),
        (
            deflate(),
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "twice",
        ),
        (
            asking(),
            "permessage-deflate; server_max_window_bits=10",
            "server_no_context_takeover",
        ),
        (
            asking(),
            "permessage-deflate; server_no_context_takeover",
            "not accepted",
        ),
        (
            asking(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "above the requested 10",
        ),
        (Config::default(), "permessage-deflate", "not offered"),
    ];
    for (config, response, why) in bad {
        let (_, event, _) = client_with(config.clone(), Some(response));
        match event {
            Event::HandshakeFailed(HandshakeError::BadExtension(e)) => {
                assert!(e.contains(why), "{response}: {e}")
            }
            other => panic!("{response}: {other:?}"),
        }
    }
}

// zlib cannot compress with an 8-bit window: a client limited to it keeps
// the extension, sends plain messages and still inflates the server's.
#[test]
fn client_limited_to_window_8_sends_plain() {
    let response = "permessage-deflate; client_max_window_bits=8";
    let (mut client, event, _) = client_with(config(takeover()), Some(response));
    assert!(matches!(event, Event::Open(_)));
    client.send(Message::Text(json(1000))).unwrap();
    let frames = parse_frames(&drain(&mut client));
    assert_eq!((frames[0].1, frames[0].3.len()), (0, 1000));
    let hello = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(
        texts(&respond(&mut client, Instant::now(), &hello).0),
        ["Hello"]
    );
}

// ----- the RFC's wire examples (§7.2.3), received by a client ---------------

fn deflate_client() -> Connection {
    let (client, event, _) = client_with(config(takeover()), Some("permessage-deflate"));
    assert!(matches!(event, Event::Open(_)));
    client
}

fn texts(events: &[Event]) -> Vec<String> {
    messages(events)
        .into_iter()
        .map(|m| match m {
            Message::Text(t) => t,
            other => panic!("not text: {other:?}"),
        })
        .collect()
}

#[test]
fn rfc_7692_examples() {
    let now = Instant::now();
    let cases: &[(&str, &[u8], &[&str])] = &[
        (
            "7.2.3.1 one frame",
            &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            &["Hello"],
        ),
        (
            "7.2.3.1 fragmented",
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ],
            &["Hello"],
        ),
        (
            "7.2.3.2 shared window",
            &[
                0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11,
                0x00, 0x00,
            ],
            &["Hello", "Hello"],
        ),
        (
            "7.2.3.3 stored block",
            &[
                0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            &["Hello"],
        ),
        (
            "7.2.3.4 BFINAL set",
            &[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &["Hello"],
        ),
        (
            "7.2.3.5 two blocks",
            &[
                0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
                0x00,
            ],
            &["Hello"],
        ),
        // An uncompressed message on a compressed connection (§6).
        (
            "uncompressed",
            &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
            &["Hello"],
        ),
    ];
    for (name, wire, want) in cases {
        // Whole, and byte by byte (every split of the compressed payload).
        let mut whole = deflate_client();
        let (events, _) = respond(&mut whole, now, wire);
        assert_eq!(texts(&events), *want, "{name}");
        let mut bytewise = deflate_client();
        let mut events = Vec::new();
        for b in wire.iter() {
            events.extend(respond(&mut bytewise, now, std::slice::from_ref(b)).0);
        }
        assert_eq!(texts(&events), *want, "{name}, byte by byte");
    }
    // After a BFINAL message the next one starts a fresh stream.
    let mut client = deflate_client();
    let mut wire = vec![0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    wire.extend_from_slice(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    assert_eq!(
        texts(&respond(&mut client, now, &wire).0),
        ["Hello", "Hello"]
    );
}

// ----- protocol errors ------------------------------------------------------

fn close_code(config: Config, frames: &[Vec<u8>]) -> Option<u16> {
    let (mut server, now) = open_server_with(config);
    let mut out = Vec::new();
    for f in frames {
        out.extend(respond(&mut server, now, f).1);
    }
    close_of(&out).map(|c| c.0)
}

/// A server that negotiated permessage-deflate with the default offer.
fn open_server_with(config: Config) -> (Connection, Instant) {
    let (server, got) = server_with(config, &["Sec-WebSocket-Extensions: permessage-deflate"]);
    assert!(got.is_some());
    (server, Instant::now())
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.len() < out.capacity());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn invalid_input_closes_with_the_right_code() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    // RSV1 on a continuation frame (§6.1): 1002.
    let first = frame(false, 0b100, 1, Some(MASK), &hello[..3]);
    let second = frame(true, 0b100, 0, Some(MASK), &hello[3..]);
    assert_eq!(close_code(deflate(), &[first, second]), Some(1002));
    // Control frames are never compressed: RSV1 on a ping is 1002.
    assert_eq!(
        close_code(deflate(), &[frame(true, 0b100, 9, Some(MASK), b"")]),
        Some(1002)
    );
    // RSV2/RSV3 are not ours.
    assert_eq!(
        close_code(deflate(), &[frame(true, 0b010, 1, Some(MASK), &hello)]),
        Some(1002)
    );
    // Not DEFLATE data: 1002.
    assert_eq!(
        close_code(deflate(), &[frame(true, 0b100, 2, Some(MASK), &[0xff; 16])]),
        Some(1002)
    );
    // Invalid UTF-8 in the inflated text, also split across frames: 1007.
    let bad = compress(b"ok \xff\xfe not text");
    assert_eq!(
        close_code(deflate(), &[frame(true, 0b100, 1, Some(MASK), &bad)]),
        Some(1007)
    );
    let truncated = compress("é".as_bytes().split_at(1).0);
    assert_eq!(
        close_code(deflate(), &[frame(true, 0b100, 1, Some(MASK), &truncated)]),
        Some(1007)
    );
    // Without the extension, RSV1 is 1002.
    let (mut server, now) = open_server(Config::default());
    let out = respond(&mut server, now, &frame(true, 0b100, 1, Some(MASK), &hello)).1;
    assert_eq!(close_of(&out).map(|c| c.0), Some(1002));
}

// ----- limits -----------------------------------------------------------------

#[test]
fn decompression_bomb_closes_1009() {
    // 16 MiB of zeros compress to ~16 KiB; the limit is 64 KiB after inflation.
    let bomb = compress(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 32 << 10);
    let limited = Config {
        max_message_size: 64 << 10,
        ..deflate()
    };
    let (mut server, now) = open_server_with(limited);
    let (events, out) = respond(&mut server, now, &frame(true, 0b100, 2, Some(MASK), &bomb));
    assert_eq!(close_of(&out).map(|c| c.0), Some(1009));
    assert!(messages(&events).is_empty());
    // The same data in many small frames.
    let (mut server, now) = open_server_with(Config {
        max_message_size: 64 << 10,
        ..deflate()
    });
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = bomb.chunks(100).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        out.extend(
            respond(
                &mut server,
                now,
                &frame(
                    last,
                    if i == 0 { 0b100 } else { 0 },
                    if i == 0 { 2 } else { 0 },
                    Some(MASK),
                    piece,
                ),
            )
            .1,
        );
    }
    assert_eq!(close_of(&out).map(|c| c.0), Some(1009));
    // Exactly at the limit is fine.
    let at_limit = compress(&vec![b'a'; 64 << 10]);
    let (mut server, now) = open_server_with(Config {
        max_message_size: 64 << 10,
        ..deflate()
    });
    let (events, _) = respond(
        &mut server,
        now,
        &frame(true, 0b100, 2, Some(MASK), &at_limit),
    );
    assert_eq!(messages(&events)[0].len(), 64 << 10);
}

#[test]
fn ratio_cap() {
    // 1 MiB of zeros: a ratio near 1000, far above a cap of 100.
    let zeros = compress(&vec![0u8; 1 << 20]);
    let big = |max_ratio| Config {
        max_message_size: 4 << 20,
        ..config(DeflateConfig {
            max_ratio,
            ..DeflateConfig::default()
        })
    };
    assert_eq!(
        close_code(big(Some(100)), &[frame(true, 0b100, 2, Some(MASK), &zeros)]),
        Some(1009)
    );
    let (mut server, now) = open_server_with(big(None));
    let (events, out) = respond(&mut server, now, &frame(true, 0b100, 2, Some(MASK), &zeros));
    assert_eq!(close_of(&out), None);
    assert_eq!(messages(&events)[0].len(), 1 << 20);
    // Below the floor (64 KiB inflated) the ratio is not checked.
    let small = compress(&[0u8; 60 << 10]);
    let (mut server, now) = open_server_with(big(Some(2)));
    let (events, _) = respond(&mut server, now, &frame(true, 0b100, 2, Some(MASK), &small));
    assert_eq!(messages(&events)[0].len(), 60 << 10);
}

// ----- sending ----------------------------------------------------------------

const JSON: &str = r#"{"type":"chat.message","payload":{"room":"lobby","user":"alice","text":"hello everyone, how are you today?","ts":1732700000}}"#;

fn json(len: usize) -> String {
    JSON.repeat(len / JSON.len() + 1)[..len].to_owned()
}

#[test]
fn threshold_rsv1_and_fragments() {
    let (mut server, _) = open_server_with(Config {
        fragment_size: Some(100),
        ..deflate()
    });
    // Below the threshold (128 bytes): sent plain.
    server.send(Message::Text(json(127))).unwrap();
    let frames = parse_frames(&drain(&mut server));
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].1, 0);
    // Above: compressed, RSV1 on the first frame only, fragmented.
    server.send(Message::Text(json(4000))).unwrap();
    let frames = parse_frames(&drain(&mut server));
    assert!(frames.len() > 1);
    assert_eq!(frames[0].1, 0b100);
    assert!(frames[1..].iter().all(|f| f.1 == 0 && f.2 == 0));
    let wire: usize = frames.iter().map(|f| f.3.len()).sum();
    assert!(wire < 1000, "4000 bytes of JSON compressed to {wire}");
    // Control frames are never compressed.
    server.ping(&[b'x'; 125]).unwrap();
    let frames = parse_frames(&drain(&mut server));
    assert_eq!((frames[0].1, frames[0].2), (0, 9));
}

/// Sizes of the compressed payloads of `n` copies of the same message.
fn repeated_sizes(deflate: DeflateConfig, offer: &str, n: usize) -> Vec<usize> {
    let (mut server, got) = server_with(
        config(deflate),
        &[&format!("Sec-WebSocket-Extensions: {offer}")],
    );
    assert!(got.is_some());
    (0..n)
        .map(|_| {
            server.send(Message::Text(json(1024))).unwrap();
            let frames = parse_frames(&drain(&mut server));
            assert_eq!(frames[0].1, 0b100);
            frames[0].3.len()
        })
        .collect()
}

#[test]
fn context_takeover_or_reset() {
    // Takeover: the second copy refers back to the first.
    let sizes = repeated_sizes(takeover(), "permessage-deflate", 3);
    assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
    // No takeover, asked by the client or set by us: every copy alike.
    for (deflate, offer) in [
        (takeover(), "permessage-deflate; server_no_context_takeover"),
        (DeflateConfig::default(), "permessage-deflate"),
    ] {
        let sizes = repeated_sizes(deflate, offer, 3);
        assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
    }
}

// Every parameter set, both roles, over the two-peer harness: messages of
// many sizes both ways, text and binary, fragmented or not.
#[test]
fn round_trips_every_parameter_set() {
    let sets = [
        takeover(),
        DeflateConfig::default(),
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        },
        DeflateConfig {
            server_max_window_bits: Some(9),
            client_max_window_bits: Some(9),
            ..DeflateConfig::default()
        },
        DeflateConfig {
            server_max_window_bits: Some(12),
            client_no_context_takeover: true,
            min_compress_size: 0,
            ..DeflateConfig::default()
        },
    ];
    for set in sets {
        for fragment_size in [None, Some(7), Some(1000)] {
            let cfg = Config {
                fragment_size,
                ..config(set.clone())
            };
            let mut pair = Pair::new(cfg.clone(), cfg);
            for (i, len) in [0usize, 1, 127, 128, 1000, 5000, 70_000]
                .into_iter()
                .enumerate()
            {
                let text = json(len);
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                pair.client.send(Message::Text(text.clone())).unwrap();
                pair.server
                    .send(Message::Binary(data.clone().into()))
                    .unwrap();
                pair.pump();
                let got_server = messages(&pair.server_events);
                let got_client = messages(&pair.client_events);
                let ctx = format!("{set:?} {fragment_size:?} {len}");
                assert!(got_server.get(i) == Some(&Message::Text(text)), "{ctx}");
                assert!(
                    got_client.get(i) == Some(&Message::Binary(data.into())),
                    "{ctx}"
                );
            }
        }
    }
}

// ----- compress-once broadcast ----------------------------------------------

/// The addresses of the byte slices `conn` would write.
fn slice_addrs(conn: &Connection) -> Vec<usize> {
    let mut slots = [IoSlice::new(&[]); 8];
    let n = conn.transmit_slices(&mut slots);
    slots[..n].iter().map(|s| s.as_ptr() as usize).collect()
}

#[test]
fn broadcast_is_compressed_once_per_parameter_set() {
    let no_takeover = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover";
    let mut a = server_with(deflate(), &[no_takeover]).0;
    let mut b = server_with(deflate(), &[no_takeover]).0;
    let narrow = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=9";
    let mut c = server_with(deflate(), &[narrow]).0;
    let mut takeover = server_with(
        config(takeover()),
        &["Sec-WebSocket-Extensions: permessage-deflate"],
    )
    .0;
    let mut plain = server_with(deflate(), &[]).0;
    // Small encoded frames are copied into each connection's coalescing
    // buffer; a message that stays above 1 KiB compressed is shared.
    let text = letters(3000);
    let frame = EncodedFrame::text(&text);
    for conn in [&mut a, &mut b, &mut c, &mut takeover, &mut plain] {
        conn.send_encoded(&frame).unwrap();
    }
    // a and b share the very same compressed bytes; c has its own.
    assert_eq!(slice_addrs(&a), slice_addrs(&b));
    assert_ne!(slice_addrs(&a), slice_addrs(&c));
    // The connection without the extension writes the frame as it is.
    assert_eq!(
        slice_addrs(&plain),
        vec![frame.as_bytes().as_ptr() as usize]
    );
    let wires: Vec<Vec<u8>> = [&mut a, &mut b, &mut c, &mut takeover, &mut plain]
        .into_iter()
        .map(drain)
        .collect();
    assert_eq!(wires[4], frame.as_bytes()[..]);
    for wire in &wires[..4] {
        let frames = parse_frames(wire);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1, 0b100);
        assert!((1024..2500).contains(&frames[0].3.len()));
    }
    // Every compressed variant inflates to the message.
    for (wire, offer) in [(&wires[0], no_takeover), (&wires[2], narrow)] {
        let (client, _, _) = client_with(
            deflate(),
            Some(offer.trim_start_matches("Sec-WebSocket-Extensions: ")),
        );
        let mut client = client;
        let (events, _) = respond(&mut client, Instant::now(), wire);
        assert_eq!(texts(&events), std::slice::from_ref(&text));
    }
}

/// `len` pseudo-random lowercase letters: compressible, but not much.
fn letters(len: usize) -> String {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + (state >> 16) as u8 % 26)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    // Any text, any fragment size, any split of the wire: what one side
    // sends compressed, the other receives intact.
    #[test]
    fn compressed_text_survives_any_split(
        text in "\\PC{0,600}",
        fragment in 1usize..300,
        cut in 0usize..2000,
        no_takeover in any::<bool>(),
    ) {
        let set = DeflateConfig {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            min_compress_size: 0,
            ..DeflateConfig::default()
        };
        let cfg = Config { fragment_size: Some(fragment), ..config(set) };
        let mut pair = Pair::new(cfg.clone(), cfg);
        for _ in 0..2 {
            pair.client.send(Message::Text(text.clone())).unwrap();
        }
        let wire = drain(&mut pair.client);
        let cut = cut.min(wire.len());
        let now = pair.now;
        let mut events = respond(&mut pair.server, now, &wire[..cut]).0;
        events.extend(respond(&mut pair.server, now, &wire[cut..]).0);
        prop_assert_eq!(texts(&events), vec![text.clone(), text]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // Fuzzing the inflater: a compressed message (valid, bit-flipped,
    // truncated or pure garbage), text or binary, in 1-3 fragments, with or
    // without context takeover, under a small message limit. The server
    // never panics, delivers only what inflates within the limit (valid
    // UTF-8 for text), and otherwise closes with 1002, 1007 or 1009 as its
    // last word.
    #[test]
    fn arbitrary_compressed_input_ends_cleanly(
        source in proptest::collection::vec(any::<u8>(), 0..600),
        garbage in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 0..4),
        keep in any::<usize>(),
        text in any::<bool>(),
        fragments in 1usize..4,
        context_takeover in any::<bool>(),
    ) {
        // The inflater keeps its window across messages unless the server
        // asks the client not to (client_no_context_takeover).
        let set = DeflateConfig {
            client_no_context_takeover: !context_takeover,
            ..DeflateConfig::default()
        };
        let (mut server, now) = open_server_with(Config {
            max_message_size: 300,
            ..config(set)
        });
        let mut payload = if garbage { source.clone() } else { compress(&source) };
        for (at, bit) in &flips {
            if !payload.is_empty() {
                let at = at % payload.len();
                payload[at] ^= 1 << bit;
            }
        }
        payload.truncate(keep % (payload.len() + 1));
        let opcode = if text { 1 } else { 2 };
        let size = payload.len() / fragments + 1;
        let pieces: Vec<&[u8]> = payload.chunks(size).collect();
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let first = i == 0;
            let last = i + 1 == pieces.len();
            let (rsv, op) = if first { (0b100, opcode) } else { (0, 0) };
            wire.extend(frame(last, rsv, op, Some(MASK), piece));
        }
        if pieces.is_empty() {
            wire.extend(frame(true, 0b100, opcode, Some(MASK), &[]));
        }
        let (events, out) = respond(&mut server, now, &wire);
        for event in &events {
            match event {
                Event::Message(Message::Text(t)) => prop_assert!(t.len() <= 300 && text),
                Event::Message(Message::Binary(b)) => prop_assert!(b.len() <= 300 && !text),
                Event::Closed(_) | Event::ProtocolError(_) => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        if let Some((code, _)) = close_of(&out) {
            prop_assert!(matches!(code, 1002 | 1007 | 1009), "closed with {}", code);
            prop_assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
        } else {
            prop_assert_eq!(events.len(), 1, "a message or a close: {:?}", events);
        }
        // A clean message after it, while the connection is open: intact
        // without context takeover (the inflater starts afresh). With it,
        // a message that ended mid-block (truncated, yet not invalid so
        // far) leaves the shared window broken, as raw DEFLATE cannot tell:
        // the next message then inflates or closes, but never panics.
        if server.is_open() {
            let ok = compress(b"still here");
            let (events, out) =
                respond(&mut server, now, &frame(true, 0b100, 1, Some(MASK), &ok));
            if context_takeover {
                if let Some((code, _)) = close_of(&out) {
                    prop_assert!(matches!(code, 1002 | 1007 | 1009), "closed with {}", code);
                }
            } else {
                prop_assert_eq!(texts(&events), vec!["still here".to_owned()]);
            }
        }
    }
}

// ----- the receive budget shared by connections ----------------------------

// A deflate bomb per connection: 1 MiB of zeros compress to ~1 KiB, sent
// as an unfinished message (no FIN). Each connection may hold its 1 MiB
// (under max_message_size), but together they stop at the budget: the
// connections past it close with 1009 naming Config::receive_budget, and
// the memory held stays bounded. Dropping connections releases their
// share; a normal large message then passes.
#[test]
fn unfinished_compressed_messages_share_one_budget() {
    let budget = Arc::new(hubbub_core::ReceiveBudget::new(4 << 20));
    let shared = Config {
        max_message_size: 16 << 20,
        receive_budget: Some(budget.clone()),
        ..deflate()
    };
    let bomb = compress(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < 8 << 10, "{} bytes", bomb.len());
    let mut open = Vec::new();
    let mut cut = 0;
    for _ in 0..40 {
        let (mut server, now) = open_server_with(shared.clone());
        let (events, out) = respond(&mut server, now, &frame(false, 0b100, 2, Some(MASK), &bomb));
        assert!(messages(&events).is_empty());
        match close_of(&out) {
            None => open.push(server),
            Some((code, reason)) => {
                assert_eq!(code, 1009);
                assert_eq!(
                    reason,
                    "message too big: receive budget of 4194304 bytes in use (Config::receive_budget)"
                );
                cut += 1;
            }
        }
        assert!(budget.used() <= budget.limit(), "{budget:?}");
    }
    // 1 MiB each (its buffer's capacity, charged in 64 KiB steps): four fit.
    assert_eq!((open.len(), cut), (4, 36));
    assert!(budget.used() > 3 << 20);
    drop(open);
    assert_eq!(budget.used(), 0, "released when the connections go");
    // Messages that complete release their charge too.
    let (mut server, now) = open_server_with(shared.clone());
    let text = "all work and no play ".repeat(100_000); // ~2 MiB
    let packed = compress(text.as_bytes());
    let pieces: Vec<&[u8]> = packed.chunks(4 << 10).collect();
    let mut got = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let (fin, rsv, opcode) = match i {
            0 => (pieces.len() == 1, 0b100, 1),
            _ => (i + 1 == pieces.len(), 0, 0),
        };
        let (events, out) = respond(
            &mut server,
            now,
            &frame(fin, rsv, opcode, Some(MASK), piece),
        );
        assert_eq!(close_of(&out), None);
        got.extend(messages(&events));
    }
    assert_eq!(got, [Message::Text(text)]);
    assert_eq!(budget.used(), 0);
}

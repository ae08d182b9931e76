//! RFC 6455 §5 (framing) and §8 (error handling), server role receiving
//! hand-built frames: fed whole, one byte at a time, and with trailing bytes.

mod common;

use common::*;
use hubbub_core::{Closed, Config, Connection, Event, Message, ProtocolError};

/// Feed `wire` to a fresh open server in pieces of `step` bytes; return the
/// events and what the server wrote.
fn feed(config: Config, wire: &[u8], step: usize) -> (Vec<Event>, Vec<u8>) {
    let (mut server, now) = open_server(config);
    for piece in wire.chunks(step.max(1)) {
        server.handle_input(now, piece);
    }
    (events(&mut server), drain(&mut server))
}

/// Every way of splitting the input must give the same result.
fn feed_all_ways(wire: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let whole = feed(Config::default(), wire, wire.len());
    for step in [1, 2, 3, 7] {
        let split = feed(Config::default(), wire, step);
        assert_eq!(
            format!("{:?}", split.0),
            format!("{:?}", whole.0),
            "step {step}"
        );
        assert_eq!(split.1, whole.1, "step {step}");
    }
    whole
}

fn protocol_error(events: &[Event]) -> Option<ProtocolError> {
    events.iter().find_map(|e| match e {
        Event::ProtocolError(p) => Some(p.clone()),
        _ => None,
    })
}

/// Assert the server failed the connection with `code`.
fn assert_fails(wire: &[u8], code: u16) -> ProtocolError {
    let (events, out) = feed_all_ways(wire);
    assert_eq!(
        close_of(&out).map(|c| c.0),
        Some(code),
        "events: {events:?}"
    );
    let closed = events.iter().find_map(|e| match e {
        Event::Closed(c) => Some(c.clone()),
        _ => None,
    });
    assert!(
        matches!(closed, Some(Closed { clean: false, .. })),
        "{closed:?}"
    );
    protocol_error(&events).expect("a ProtocolError event")
}

// ----- §5.2 base framing ----------------------------------------------------

#[test]
fn text_and_binary_all_length_forms() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 65537] {
        let text = "a".repeat(len);
        let wire = [
            client_frame(true, 1, text.as_bytes()),
            client_frame(true, 2, &vec![9; len]),
        ]
        .concat();
        let (events, out) = feed(
            Config::default().tap(|c| c.max_message_size = 1 << 20),
            &wire,
            wire.len(),
        );
        assert_eq!(
            messages(&events),
            vec![Message::Text(text), Message::Binary(vec![9u8; len].into())]
        );
        assert!(out.is_empty());
    }
}

#[test]
fn trailing_bytes_wait_for_next_frame() {
    let first = client_frame(true, 1, b"one");
    let second = client_frame(true, 1, b"two");
    let (mut server, now) = open_server(Config::default());
    let mut wire = first.clone();
    wire.extend_from_slice(&second[..3]); // half a header of the next frame
    server.handle_input(now, &wire);
    assert_eq!(
        messages(&events(&mut server)),
        vec![Message::Text("one".into())]
    );
    server.handle_input(now, &second[3..]);
    assert_eq!(
        messages(&events(&mut server)),
        vec![Message::Text("two".into())]
    );
}

#[test]
fn many_frames_in_one_read() {
    let wire: Vec<u8> = (0..100)
        .flat_map(|i| client_frame(true, 1, format!("m{i}").as_bytes()))
        .collect();
    let (events, _) = feed_all_ways(&wire);
    let got = messages(&events);
    assert_eq!(got.len(), 100);
    assert_eq!(got[99], Message::Text("m99".into()));
}

// §5.1: a server MUST close on an unmasked frame.
#[test]
fn unmasked_client_frame_is_protocol_error() {
    let e = assert_fails(&frame(true, 0, 1, None, b"hi"), 1002);
    assert_eq!(e, ProtocolError::UnmaskedFrame);
}

// §5.2: RSV bits without an extension.
#[test]
fn reserved_bits_fail() {
    for rsv in 1..8 {
        assert_eq!(
            assert_fails(&frame(true, rsv, 1, Some(MASK), b"x"), 1002),
            ProtocolError::ReservedBits
        );
    }
}

// §5.2: reserved opcodes.
#[test]
fn reserved_opcodes_fail() {
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        assert_eq!(
            assert_fails(&client_frame(true, op, b""), 1002),
            ProtocolError::ReservedOpcode(op)
        );
    }
}

#[test]
fn length_with_msb_fails() {
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
    wire.extend_from_slice(&MASK);
    assert_eq!(assert_fails(&wire, 1002), ProtocolError::InvalidLength);
}

// ----- §5.4 fragmentation ---------------------------------------------------

#[test]
fn fragmented_message_with_interleaved_control() {
    let wire = [
        client_frame(false, 1, b"Hel"),
        client_frame(true, 9, b"ping!"),
        client_frame(false, 0, b"lo, "),
        client_frame(true, 0, b"world"),
    ]
    .concat();
    let (events, out) = feed_all_ways(&wire);
    assert_eq!(
        messages(&events),
        vec![Message::Text("Hello, world".into())]
    );
    assert!(matches!(&events[0], Event::Ping(p) if &p[..] == b"ping!"));
    assert_eq!(parse_frames(&out), vec![(true, 0, 0xa, b"ping!".to_vec())]);
}

#[test]
fn continuation_without_start_fails() {
    assert_eq!(
        assert_fails(&client_frame(true, 0, b"x"), 1002),
        ProtocolError::UnexpectedContinuation
    );
}

#[test]
fn new_message_inside_fragmented_fails() {
    let wire = [client_frame(false, 1, b"a"), client_frame(true, 1, b"b")].concat();
    assert_eq!(
        assert_fails(&wire, 1002),
        ProtocolError::ExpectedContinuation
    );
}

#[test]
fn empty_fragments() {
    let wire = [
        client_frame(false, 2, b""),
        client_frame(false, 0, b""),
        client_frame(true, 0, b""),
    ]
    .concat();
    let (events, _) = feed_all_ways(&wire);
    assert_eq!(messages(&events), vec![Message::Binary(vec![].into())]);
}

// ----- §5.5 control frames ----------------------------------------------------

#[test]
fn control_frame_rules() {
    assert_eq!(
        assert_fails(&client_frame(true, 9, &[0; 126]), 1002),
        ProtocolError::ControlFrameTooLong
    );
    assert_eq!(
        assert_fails(&client_frame(false, 9, b"x"), 1002),
        ProtocolError::FragmentedControlFrame
    );
    // 125 bytes is fine and echoed as a pong.
    let (events, out) = feed_all_ways(&client_frame(true, 9, &[b'p'; 125]));
    assert!(matches!(&events[0], Event::Ping(p) if p.len() == 125));
    assert_eq!(parse_frames(&out), vec![(true, 0, 0xa, vec![b'p'; 125])]);
}

#[test]
fn pong_is_reported_not_answered() {
    let (events, out) = feed_all_ways(&client_frame(true, 0xa, b"unsolicited"));
    assert!(matches!(&events[0], Event::Pong(p) if &p[..] == b"unsolicited"));
    assert!(out.is_empty());
}

#[test]
fn auto_pong_can_be_disabled() {
    let config = Config {
        auto_pong: false,
        ..Config::default()
    };
    let (events, out) = feed(config, &client_frame(true, 9, b"x"), 100);
    assert!(matches!(&events[0], Event::Ping(_)));
    assert!(out.is_empty());
}

// ----- §8.1 UTF-8 -------------------------------------------------------------

#[test]
fn invalid_utf8_fails_with_1007() {
    assert_eq!(
        assert_fails(
            &client_frame(
                true,
                1,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
            ),
            1007
        ),
        ProtocolError::InvalidUtf8
    );
    // Truncated at the end of the message.
    assert_eq!(
        assert_fails(&client_frame(true, 1, b"ok\xe2\x82"), 1007),
        ProtocolError::InvalidUtf8
    );
    // Split across fragments: valid.
    let euro = "€".as_bytes();
    let wire = [
        client_frame(false, 1, &euro[..1]),
        client_frame(true, 0, &euro[1..]),
    ]
    .concat();
    assert_eq!(
        messages(&feed_all_ways(&wire).0),
        vec![Message::Text("€".into())]
    );
}

/// Text of exactly `len` bytes with 1- to 4-byte characters throughout.
fn mixed_text(len: usize) -> String {
    let mut text = String::new();
    while text.len() + 4 <= len {
        text.push(['a', 'é', '€', '𝄞', ' '][text.len() % 5]);
    }
    while text.len() < len {
        text.push('x');
    }
    text
}

/// Whole text messages take the one-`Vec` path under 64 bytes and the
/// simdutf8 paths from 64 up (stack buffers of 256 B, 1 KiB and 2 KiB, then
/// 2 KiB pieces; unmasked, in place): every size around a boundary, valid
/// and invalid, masked (server) and unmasked (client), in one read and
/// with the header read first.
#[test]
fn whole_text_messages_of_every_path() {
    let config = || Config::default().tap(|c| c.max_message_size = 1 << 20);
    let sizes = [
        0usize, 1, 3, 62, 63, 64, 65, 127, 128, 255, 256, 257, 1023, 1024, 1025, 2047, 2048, 2049,
        4095, 4096, 4097, 65_000, 70_000,
    ];
    for len in sizes {
        let text = mixed_text(len);
        let mut cases: Vec<(Vec<u8>, bool)> = vec![(text.clone().into_bytes(), true)];
        for at in [0, len / 2, len.saturating_sub(1)] {
            if at < len {
                let mut bad = text.clone().into_bytes();
                bad[at] = 0xff;
                cases.push((bad, false));
            }
        }
        if len >= 3 {
            // A surrogate, and a character cut off by the end of the message.
            let mut bad = mixed_text(len - 3).into_bytes();
            bad.extend_from_slice(b"\xed\xa0\x80");
            cases.push((bad, false));
            let mut tail = mixed_text(len - 2).into_bytes();
            tail.extend_from_slice(b"\xe2\x82");
            cases.push((tail, false));
        }
        for (payload, valid) in cases {
            assert_eq!(payload.len(), len);
            let expect = valid.then(|| String::from_utf8(payload.clone()).unwrap());
            // Server: masked, in one read and with the header read first.
            let wire = client_frame(true, 1, &payload);
            let head = wire.len() - len;
            for first in [wire.len(), head] {
                let (mut server, now) = open_server(config());
                server.handle_input(now, &wire[..first]);
                server.handle_input(now, &wire[first..]);
                let events = events(&mut server);
                check_text(&events, expect.as_deref(), len, first);
            }
            // Client: unmasked.
            let wire = frame(true, 0, 1, None, &payload);
            let mut pair = Pair::new(config(), config());
            pair.client.handle_input(pair.now, &wire);
            let events = events(&mut pair.client);
            check_text(&events, expect.as_deref(), len, wire.len());
        }
    }
}

fn check_text(events: &[Event], expect: Option<&str>, len: usize, first: usize) {
    match expect {
        Some(text) => assert_eq!(
            messages(events),
            vec![Message::Text(text.into())],
            "{len} B, first read {first}"
        ),
        None => assert_eq!(
            protocol_error(events),
            Some(ProtocolError::InvalidUtf8),
            "{len} B, first read {first}"
        ),
    }
}

/// Autobahn 6.4.x: the server must fail as soon as the invalid byte arrives,
/// before the rest of the message.
#[test]
fn invalid_utf8_fails_fast_mid_frame_and_mid_message() {
    let (mut server, now) = open_server(Config::default());
    let wire = client_frame(
        true,
        1,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\xcd\x80edited",
    );
    // Header + payload up to and including 0xf4 0x90: must already fail.
    let cut = 6 + 13;
    let (_, out) = respond(&mut server, now, &wire[..cut]);
    assert_eq!(close_of(&out).map(|c| c.0), Some(1007));

    let (mut server, now) = open_server(Config::default());
    server.handle_input(now, &client_frame(false, 1, b"valid "));
    let (_, out) = respond(&mut server, now, &client_frame(false, 0, b"\xf4\x90"));
    assert_eq!(close_of(&out).map(|c| c.0), Some(1007));
}

// ----- limits -----------------------------------------------------------------

#[test]
fn frame_and_message_limits_close_1009() {
    let small = || Config {
        max_message_size: 100,
        ..Config::default()
    };
    let (_, out) = feed(small(), &client_frame(true, 2, &[0; 101]), 1000);
    assert_eq!(close_of(&out).map(|c| c.0), Some(1009));
    // Exactly at the limit is fine.
    let (events, _) = feed(small(), &client_frame(true, 2, &[0; 100]), 1000);
    assert_eq!(messages(&events).len(), 1);
    // Counted across fragments.
    let wire = [
        client_frame(false, 2, &[0; 60]),
        client_frame(true, 0, &[0; 60]),
    ]
    .concat();
    let (events, out) = feed(small(), &wire, 1000);
    assert_eq!(
        close_of(&out),
        Some((
            1009,
            "message too big: more than 100 bytes (Config::max_message_size)".into()
        ))
    );
    assert_eq!(
        protocol_error(&events),
        Some(ProtocolError::MessageTooLarge { limit: 100 })
    );
    // A separate frame limit.
    let config = Config {
        max_frame_size: Some(10),
        ..Config::default()
    };
    let (events, out) = feed(config, &client_frame(true, 2, &[0; 11]), 1000);
    assert_eq!(
        protocol_error(&events),
        Some(ProtocolError::FrameTooLarge { limit: 10 })
    );
    assert_eq!(
        close_of(&out),
        Some((
            1009,
            "frame too big: more than 10 bytes (Config::max_frame_size)".into()
        ))
    );
}

// The default limit is 1 MiB: a message of that size passes, one byte
// more closes 1009 with a reason that names the limit and the setting.
#[test]
fn default_message_limit_is_one_mib() {
    let limit = 1 << 20;
    assert_eq!(Config::default().max_message_size, limit);
    let (events, _) = feed(
        Config::default(),
        &client_frame(true, 2, &vec![7; limit]),
        1 << 16,
    );
    assert_eq!(messages(&events).len(), 1);
    let wire = client_frame(true, 2, &vec![7; limit + 1]);
    let (events, out) = feed(Config::default(), &wire, 1 << 16);
    assert!(messages(&events).is_empty());
    assert_eq!(
        close_of(&out),
        Some((
            1009,
            "message too big: more than 1048576 bytes (Config::max_message_size)".into()
        ))
    );
}

#[test]
fn huge_claimed_length_fails_before_payload() {
    // The header claims 2^62 bytes; nothing beyond the header is sent.
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 62).to_be_bytes());
    wire.extend_from_slice(&MASK);
    let (events, out) = feed(Config::default(), &wire, 1);
    assert_eq!(close_of(&out).map(|c| c.0), Some(1009));
    // The frame alone is over the message limit (the default 1 MiB).
    assert_eq!(
        protocol_error(&events),
        Some(ProtocolError::MessageTooLarge { limit: 1 << 20 })
    );
}

#[test]
fn nothing_is_processed_after_failing() {
    let wire = [
        frame(true, 0, 1, None, b"unmasked"),
        client_frame(true, 1, b"after"),
    ]
    .concat();
    let (events, out) = feed_all_ways(&wire);
    assert!(messages(&events).is_empty());
    assert_eq!(parse_frames(&out).len(), 1, "only the close frame");
}

/// Helper to tweak a config inline.
trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl Tap for Config {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn client_rejects_masked_server_frames() {
    let mut pair = Pair::open();
    let now = pair.now;
    pair.client
        .handle_input(now, &frame(true, 0, 1, Some(MASK), b"masked"));
    let events: Vec<Event> = events(&mut pair.client);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ProtocolError(ProtocolError::MaskedFrame))));
    let _ = Connection::is_closed(&pair.client);
    assert!(pair.client.is_closed());
}

// An uncompressed frame announcing 1 MiB reserves room for it when its
// first bytes arrive: that reservation is charged to the shared receive
// budget before it is made, so headers alone cannot make the server hold
// more than the budget across connections.
#[test]
fn partial_frames_are_charged_to_the_receive_budget() {
    let budget = std::sync::Arc::new(hubbub_core::ReceiveBudget::new(3 << 20));
    let config = Config {
        receive_budget: Some(budget.clone()),
        ..Config::default()
    };
    let big = client_frame(true, 2, &vec![7u8; 1 << 20]);
    let mut held = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (mut server, now) = open_server(config.clone());
        // The header and 10 bytes of payload.
        let (_, out) = respond(&mut server, now, &big[..24]);
        codes.push(close_of(&out).map(|c| c.0));
        held.push(server);
    }
    assert_eq!(codes, [None, None, None, Some(1009), Some(1009)]);
    assert!(budget.used() <= 3 << 20);
    // The first one completes its message: delivered, charge released.
    let (events, _) = respond(&mut held[0], std::time::Instant::now(), &big[24..]);
    assert_eq!(messages(&events)[0].len(), 1 << 20);
    assert_eq!(budget.used(), 2 << 20);
    drop(held);
    assert_eq!(budget.used(), 0);
}

//! RFC 6455 §5.5.1 and §7 (closing), and the core's named timers, on a
//! virtual clock: no sleeps anywhere.

mod common;

use std::time::Duration;

use common::*;
use hubbub_core::{
    CloseCode, Closed, Config, Event, Initiator, Message, ProtocolError, UsageError,
};

fn closed(events: &[Event]) -> Option<Closed> {
    events.iter().find_map(|e| match e {
        Event::Closed(c) => Some(c.clone()),
        _ => None,
    })
}

// §7.4.1 / §7.4.2: which received codes are valid.
#[test]
fn received_close_codes() {
    let valid = [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ];
    let invalid = [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ];
    for code in valid {
        let (mut server, now) = open_server(Config::default());
        let (events, out) = respond(
            &mut server,
            now,
            &client_frame(true, 8, &close_payload(code, "bye")),
        );
        assert_eq!(
            close_of(&out),
            Some((code, String::new())),
            "echo of {code}"
        );
        let c = closed(&events).unwrap();
        assert_eq!(
            (c.code, c.reason.as_str(), c.clean, c.initiator),
            (CloseCode(code), "bye", true, Initiator::Remote)
        );
    }
    for code in invalid {
        let (mut server, now) = open_server(Config::default());
        let (events, out) = respond(
            &mut server,
            now,
            &client_frame(true, 8, &close_payload(code, "")),
        );
        assert_eq!(close_of(&out).map(|c| c.0), Some(1002), "code {code}");
        assert!(events.iter().any(
            |e| matches!(e, Event::ProtocolError(ProtocolError::InvalidCloseCode(c)) if *c == code)
        ));
    }
}

#[test]
fn close_payload_edge_cases() {
    // Empty: a close without status, echoed empty, reported as 1005.
    let (mut server, now) = open_server(Config::default());
    let (events, out) = respond(&mut server, now, &client_frame(true, 8, b""));
    assert_eq!(parse_frames(&out), vec![(true, 0, 8, vec![])]);
    assert_eq!(closed(&events).unwrap().code, CloseCode::NO_STATUS);
    // One byte: protocol error.
    let (mut server, now) = open_server(Config::default());
    let (_, out) = respond(&mut server, now, &client_frame(true, 8, b"\x03"));
    assert_eq!(close_of(&out).map(|c| c.0), Some(1002));
    // Reason not UTF-8: 1007.
    let (mut server, now) = open_server(Config::default());
    let (_, out) = respond(&mut server, now, &client_frame(true, 8, b"\x03\xe8\xff"));
    assert_eq!(close_of(&out).map(|c| c.0), Some(1007));
}

#[test]
fn close_inside_fragmented_message_is_ordinary() {
    let (mut server, now) = open_server(Config::default());
    let input = [
        client_frame(false, 1, b"half"),
        client_frame(true, 8, &close_payload(1000, "")),
    ]
    .concat();
    let (events, out) = respond(&mut server, now, &input);
    assert_eq!(close_of(&out), Some((1000, String::new())));
    let c = closed(&events).unwrap();
    assert!(c.clean);
}

#[test]
fn nothing_after_close() {
    let (mut server, now) = open_server(Config::default());
    server.handle_input(
        now,
        &[
            client_frame(true, 8, &close_payload(1000, "")),
            client_frame(true, 1, b"late"),
        ]
        .concat(),
    );
    let events = events(&mut server);
    assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
    assert_eq!(
        server.send(Message::Text("x".into())),
        Err(UsageError::NotOpen)
    );
    assert!(server.is_closed());
}

#[test]
fn client_initiated_close_handshake() {
    let mut pair = Pair::open();
    pair.client
        .close(pair.now, CloseCode::NORMAL, "done")
        .unwrap();
    assert_eq!(
        pair.client.send(Message::Text("x".into())),
        Err(UsageError::NotOpen)
    );
    pair.pump();
    let s = closed(&pair.server_events).unwrap();
    assert_eq!(
        (s.code, s.reason.as_str(), s.clean, s.initiator),
        (CloseCode::NORMAL, "done", true, Initiator::Remote)
    );
    let c = closed(&pair.client_events).unwrap();
    assert_eq!(
        (c.code, c.clean, c.initiator),
        (CloseCode::NORMAL, true, Initiator::Local)
    );
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

#[test]
fn server_initiated_close_after_queued_data() {
    let mut pair = Pair::open();
    pair.server
        .send(Message::Text("last words".into()))
        .unwrap();
    pair.server
        .close(pair.now, CloseCode::GOING_AWAY, "shutdown")
        .unwrap();
    pair.pump();
    let got: Vec<&Event> = pair.client_events.iter().collect();
    assert!(matches!(got[0], Event::Message(Message::Text(t)) if t == "last words"));
    let c = closed(&pair.client_events).unwrap();
    assert_eq!(
        (c.code, c.reason.as_str()),
        (CloseCode::GOING_AWAY, "shutdown")
    );
}

#[test]
fn simultaneous_close() {
    let mut pair = Pair::open();
    pair.client.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.server.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.pump();
    for events in [&pair.client_events, &pair.server_events] {
        let c = closed(events).unwrap();
        assert!(c.clean);
        assert_eq!(c.initiator, Initiator::Local);
    }
}

#[test]
fn close_argument_checks() {
    let mut pair = Pair::open();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(
            pair.client.close(pair.now, CloseCode(code), ""),
            Err(UsageError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        pair.client
            .close(pair.now, CloseCode::NORMAL, &"x".repeat(124)),
        Err(UsageError::CloseReasonTooLong)
    );
    assert!(pair
        .client
        .close(pair.now, CloseCode::NORMAL, &"x".repeat(123))
        .is_ok());
    assert_eq!(
        pair.client.close(pair.now, CloseCode::NORMAL, ""),
        Err(UsageError::NotOpen)
    );
    assert_eq!(
        pair.client.ping(&[0; 126]),
        Err(UsageError::ControlPayloadTooLong)
    );
}

#[test]
fn eof_without_close_is_1006() {
    let mut pair = Pair::open();
    pair.server.handle_eof(pair.now);
    let c = closed(&events(&mut pair.server)).unwrap();
    assert_eq!((c.code, c.clean), (CloseCode::ABNORMAL, false));
    assert!(pair.server.is_finished());
}

// ----- timers ----------------------------------------------------------------

fn quiet_config() -> Config {
    Config {
        idle_timeout: None,
        ping_interval: None,
        ..Config::default()
    }
}

#[test]
fn close_handshake_timeout() {
    let mut pair = Pair::new(quiet_config(), quiet_config());
    pair.server.close(pair.now, CloseCode::NORMAL, "").unwrap();
    drain(&mut pair.server); // the close frame is lost: the client never answers
                             // No idle or keep-alive timer: the close handshake's is the only one.
    let deadline = pair.server.poll_timeout().unwrap();
    assert_eq!(deadline - pair.now, Duration::from_secs(5));
    pair.server
        .handle_timeout(deadline - Duration::from_millis(1)); // early: no-op
    assert!(!pair.server.is_closed());
    pair.server.handle_timeout(deadline);
    let c = closed(&events(&mut pair.server)).unwrap();
    assert_eq!((c.code, c.clean), (CloseCode::ABNORMAL, false));
}

#[test]
fn idle_timeout_closes_with_1001() {
    let server = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ping_interval: None,
        ..Config::default()
    };
    let mut pair = Pair::new(quiet_config(), server);
    pair.advance(Duration::from_secs(6));
    pair.client
        .send(Message::Text("still here".into()))
        .unwrap();
    pair.pump();
    pair.advance(Duration::from_secs(6)); // 12 s since open, 6 since last input
    assert!(pair.server.is_open());
    pair.advance(Duration::from_secs(5));
    let c = closed(&pair.client_events).unwrap();
    assert_eq!(
        (c.code, c.reason.as_str()),
        (CloseCode::GOING_AWAY, "idle timeout")
    );
}

#[test]
fn keep_alive_pings_keep_a_live_peer_open() {
    let server = Config {
        idle_timeout: Some(Duration::from_secs(60)),
        ping_interval: Some(Duration::from_secs(30)),
        ..Config::default()
    };
    let mut pair = Pair::new(quiet_config(), server);
    for _ in 0..10 {
        pair.advance(Duration::from_secs(30));
    }
    assert!(pair.server.is_open() && pair.client.is_open());
    let pings = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::Ping(_)))
        .count();
    assert_eq!(pings, 10);
    assert_eq!(
        pair.server_events
            .iter()
            .filter(|e| matches!(e, Event::Pong(_)))
            .count(),
        10
    );
}

#[test]
fn pong_deadline_closes_silent_peer() {
    let server = Config {
        idle_timeout: None,
        ping_interval: Some(Duration::from_secs(30)),
        pong_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let (mut server, mut now) = open_server(server);
    now += Duration::from_secs(30);
    server.handle_timeout(now);
    assert_eq!(
        parse_frames(&drain(&mut server)),
        vec![(true, 0, 9, vec![])]
    );
    // The pong deadline (10 s) comes before the next keep-alive ping (30 s).
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(10)));
    now += Duration::from_secs(10);
    server.handle_timeout(now);
    assert_eq!(
        close_of(&drain(&mut server)),
        Some((1001, "ping timeout".into()))
    );
}

#[test]
fn handshake_deadline() {
    let config = Config {
        handshake_timeout: Some(Duration::from_secs(3)),
        ..Config::default()
    };
    let now = std::time::Instant::now();
    let mut server = hubbub_core::Connection::server(std::sync::Arc::new(config), now);
    server.handle_input(now, &REQUEST[..10]);
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(3)));
    server.handle_timeout(now + Duration::from_secs(3));
    assert!(matches!(
        server.poll_event(),
        Some(Event::HandshakeFailed(hubbub_core::HandshakeError::Timeout))
    ));
    assert!(server.is_closed());
}

#[test]
fn linger_then_finished() {
    let (mut server, now) = open_server(Config::default());
    respond(
        &mut server,
        now,
        &client_frame(true, 8, &close_payload(1000, "")),
    );
    assert!(server.is_closed() && !server.is_finished());
    let linger = server.poll_timeout().unwrap();
    server.handle_timeout(linger);
    assert!(server.is_finished());
    assert_eq!(server.poll_timeout(), None);
}

/// Autobahn 3.2 / 7.1.x: a message and then a bad frame (or a close) in the
/// same read. The message is delivered while the connection is still open,
/// so the application's answer goes out before our close frame.
#[test]
fn answers_to_earlier_messages_precede_the_close() {
    for (second, code) in [
        (frame(true, 2, 1, Some(MASK), b"rsv"), 1002),
        (client_frame(true, 8, &close_payload(1000, "")), 1000),
        (client_frame(true, 1, b"\xff"), 1007),
    ] {
        let (mut server, now) = open_server(Config::default());
        server.handle_input(now, &[client_frame(true, 1, b"first"), second].concat());
        while let Some(event) = server.poll_event() {
            if let Event::Message(m) = event {
                server.send(m).unwrap(); // still open here
            }
        }
        let frames = parse_frames(&drain(&mut server));
        assert_eq!(frames[0], (true, 0, 1, b"first".to_vec()), "echo first");
        assert_eq!(close_of(&drain_all(frames)).map(|c| c.0), Some(code));
        assert!(server.is_closed());
    }
}

fn drain_all(frames: Vec<(bool, u8, u8, Vec<u8>)>) -> Vec<u8> {
    // Re-encode parsed server frames to feed `close_of`.
    frames
        .into_iter()
        .flat_map(|(fin, rsv, op, payload)| frame(fin, rsv, op, None, &payload))
        .collect()
}

// ----- message deadline (Config::message_timeout) ---------------------------

fn dripped_config() -> Config {
    Config {
        message_timeout: Some(Duration::from_secs(30)),
        ..Config::default()
    }
}

/// Feed `bytes` one a second from `now` on; returns the events and output
/// of every step and the time after the last.
fn drip(
    server: &mut hubbub_core::Connection,
    mut now: std::time::Instant,
    bytes: &[u8],
) -> (Vec<Event>, Vec<u8>, std::time::Instant) {
    let (mut all, mut out) = (Vec::new(), Vec::new());
    for byte in bytes {
        now += Duration::from_secs(1);
        server.handle_timeout(now);
        let (events, wire) = respond(server, now, &[*byte]);
        all.extend(events);
        out.extend(wire);
    }
    (all, out, now)
}

// Each byte resets the idle and keep-alive timers; the message deadline
// runs from the first byte of the message and cuts a dripping peer with
// 1008, the reason naming the setting.
#[test]
fn dripped_message_is_cut_at_the_message_deadline() {
    let (mut server, now) = open_server(dripped_config());
    let frame = client_frame(true, 1, &[b'x'; 100]);
    let (events, out, now) = drip(&mut server, now, &frame[..29]);
    assert!(events.is_empty() && out.is_empty(), "cut early: {events:?}");
    // The first byte came at +1 s: the deadline is +31 s, 2 s from now.
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(2)));
    let (events, out, _) = drip(&mut server, now, &frame[29..31]);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ProtocolError(ProtocolError::MessageTimeout { limit }) if *limit == Duration::from_secs(30)
    )));
    let c = closed(&events).unwrap();
    assert_eq!(
        (c.code, c.reason.as_str(), c.clean),
        (
            CloseCode::POLICY_VIOLATION,
            "message not completed within 30 s (Config::message_timeout)",
            false
        )
    );
    assert_eq!(close_of(&out).map(|c| c.0), Some(1008));
}

// A fragmented message: the deadline covers all its frames, and control
// frames between them (answered as usual) do not restart it.
#[test]
fn fragments_and_pings_between_them_share_one_deadline() {
    let (mut server, mut now) = open_server(dripped_config());
    let (first, _) = respond(&mut server, now, &client_frame(false, 1, b"part one"));
    assert!(first.is_empty());
    for _ in 0..2 {
        now += Duration::from_secs(14);
        let (pinged, out) = respond(&mut server, now, &client_frame(true, 9, b"hi"));
        assert!(matches!(pinged[..], [Event::Ping(_)]));
        assert_eq!(parse_frames(&out)[0].2, 0xA, "answered with a pong");
        let (more, _) = respond(&mut server, now, &client_frame(false, 0, b"more"));
        assert!(more.is_empty());
    }
    now += Duration::from_secs(2); // 30 s after the first fragment
    server.handle_timeout(now);
    let c = closed(&events(&mut server)).unwrap();
    assert_eq!(c.code, CloseCode::POLICY_VIOLATION);
}

// Messages that complete are never cut, however long the connection
// streams them, even when every read ends inside the next message; a
// control frame dripped alone is cut like a message.
#[test]
fn completed_messages_restart_the_deadline() {
    let (mut server, mut now) = open_server(dripped_config());
    let mut wire = Vec::new();
    for i in 0..40u8 {
        wire.extend(client_frame(true, 2, &[i; 1000]));
    }
    // Reads of 700 bytes, 10 s apart: each ends inside a message, and each
    // message completes within 20 s of its first byte.
    let mut received = 0;
    for read in wire.chunks(700) {
        now += Duration::from_secs(10);
        server.handle_timeout(now);
        let (events, out) = respond(&mut server, now, read);
        assert!(
            out.is_empty() || close_of(&out).is_none(),
            "cut: {events:?}"
        );
        received += messages(&events).len();
    }
    assert_eq!(received, 40);
    assert!(server.is_open());
    // Between messages no message deadline is armed: only idle/keep-alive.
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(30)));
    let ping = client_frame(true, 9, b"slow ping");
    let (dripped, _, _) = drip(&mut server, now, &ping[..ping.len() - 1]);
    assert!(dripped.is_empty());
    // Its first byte came at +1 s.
    server.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(
        closed(&events(&mut server)).unwrap().code,
        CloseCode::POLICY_VIOLATION
    );
}

// `None` turns the deadline off.
#[test]
fn no_message_deadline_when_off() {
    let config = Config {
        message_timeout: None,
        idle_timeout: None,
        ping_interval: None,
        ..Config::default()
    };
    let (mut server, now) = open_server(config);
    let frame = client_frame(true, 1, &[b'x'; 100]);
    let (events, _, _) = drip(&mut server, now, &frame[..60]);
    assert!(events.is_empty());
    assert_eq!(server.poll_timeout(), None);
}

//! A client core and a server core back to back, no sockets: messages both
//! ways, fragmentation, ping/pong, broadcast frames.

mod common;

use bytes::Bytes;
use common::*;
use hubbub_core::{Config, EncodedFrame, Event, Message, UsageError};

#[test]
fn echo_both_ways() {
    let mut pair = Pair::open();
    let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let config = || Config {
        max_message_size: 1 << 20,
        ..Config::default()
    };
    let mut pair_big = Pair::new(config(), config());
    pair.client.send(Message::Text("hello".into())).unwrap();
    pair.client.send(Message::Binary(Bytes::new())).unwrap();
    pair.pump();
    assert_eq!(
        messages(&pair.server_events),
        vec![Message::Text("hello".into()), Message::Binary(Bytes::new())]
    );
    pair.server
        .send(Message::Text("héllo back".into()))
        .unwrap();
    pair.pump();
    assert_eq!(
        messages(&pair.client_events),
        vec![Message::Text("héllo back".into())]
    );

    pair_big.client.send(Message::Binary(big.clone())).unwrap();
    pair_big.server.send(Message::Binary(big.clone())).unwrap();
    pair_big.pump();
    assert_eq!(
        messages(&pair_big.server_events),
        vec![Message::Binary(big.clone())]
    );
    assert_eq!(
        messages(&pair_big.client_events),
        vec![Message::Binary(big)]
    );
}

#[test]
fn fragmented_sending() {
    let config = Config {
        fragment_size: Some(4),
        ..Config::default()
    };
    let mut pair = Pair::new(config.clone(), config);
    pair.client
        .send(Message::Text("fragmented text €".into()))
        .unwrap();
    let wire = drain(&mut pair.client);
    let frames = parse_frames(&wire);
    assert_eq!(frames.len(), 5); // 19 bytes in 4-byte fragments
    assert_eq!((frames[0].0, frames[0].2), (false, 1));
    assert!(frames[1..4].iter().all(|f| !f.0 && f.2 == 0));
    assert_eq!((frames[4].0, frames[4].2), (true, 0));
    pair.server.handle_input(pair.now, &wire);
    assert_eq!(
        messages(&events(&mut pair.server)),
        vec![Message::Text("fragmented text €".into())]
    );
}

#[test]
fn client_frames_are_masked_server_frames_are_not() {
    let mut pair = Pair::open();
    pair.client.send(Message::Text("x".into())).unwrap();
    pair.server.send(Message::Text("y".into())).unwrap();
    assert_ne!(drain(&mut pair.client)[1] & 0x80, 0);
    assert_eq!(drain(&mut pair.server)[1] & 0x80, 0);
}

#[test]
fn application_ping_and_pong() {
    let mut pair = Pair::open();
    pair.client.ping(b"are you there").unwrap();
    pair.pump();
    assert!(matches!(&pair.server_events[0], Event::Ping(p) if &p[..] == b"are you there"));
    assert!(matches!(&pair.client_events[0], Event::Pong(p) if &p[..] == b"are you there"));
}

#[test]
fn encoded_frame_reaches_many_connections_shared_when_large() {
    let small = EncodedFrame::text("to everyone");
    let large_text = "x".repeat(2000);
    let large = EncodedFrame::text(&large_text);
    let mut pairs: Vec<Pair> = (0..5).map(|_| Pair::open()).collect();
    for pair in &mut pairs {
        pair.server.send_encoded(&small).unwrap();
        pair.server.send_encoded(&large).unwrap();
        let mut slots = [std::io::IoSlice::new(&[]); 4];
        let n = pair.server.transmit_slices(&mut slots);
        // The small frame is copied into the coalescing buffer; the large
        // one follows by reference.
        assert_eq!(n, 2);
        assert_eq!(&slots[0][..], &small.as_bytes()[..], "small: copied");
        assert_eq!(
            slots[1].as_ptr(),
            large.as_bytes().as_ptr(),
            "large: no copy"
        );
        pair.pump();
        assert_eq!(
            messages(&pair.client_events),
            vec![
                Message::Text("to everyone".into()),
                Message::Text(large_text.clone())
            ]
        );
    }
    assert_eq!(
        pairs[0].client.send_encoded(&small),
        Err(UsageError::EncodedFrameOnClient)
    );
}

#[test]
fn pong_goes_ahead_of_queued_data() {
    let mut pair = Pair::open();
    for i in 0..3 {
        pair.server
            .send(Message::Text(format!("queued {i}")))
            .unwrap();
    }
    pair.client.ping(b"p").unwrap();
    let ping = drain(&mut pair.client);
    pair.server.handle_input(pair.now, &ping);
    let frames = parse_frames(&drain(&mut pair.server));
    assert_eq!(frames[0].2, 0xa, "pong first");
    assert_eq!(frames.len(), 4);
}

#[test]
fn subprotocol_must_have_been_offered() {
    let now = std::time::Instant::now();
    let request = hubbub_core::ClientRequest::new("localhost", "/")
        .protocol("chat.v2")
        .protocol("chat.v1");
    let mut client = hubbub_core::Connection::client(
        std::sync::Arc::new(Config::default()),
        now,
        &request,
        [3; 32],
    );
    let mut server = hubbub_core::Connection::server(std::sync::Arc::new(Config::default()), now);
    server.handle_input(now, &drain(&mut client));
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    assert_eq!(
        server.request().unwrap().protocols(),
        ["chat.v2", "chat.v1"]
    );
    let wrong = hubbub_core::Accept::new().protocol("chat.v3");
    assert_eq!(
        server.accept(now, wrong),
        Err(UsageError::UnofferedProtocol("chat.v3".into()))
    );
    server
        .accept(now, hubbub_core::Accept::new().protocol("chat.v1"))
        .unwrap();
    client.handle_input(now, &drain(&mut server));
    assert!(
        matches!(client.poll_event(), Some(Event::Open(o)) if o.protocol.as_deref() == Some("chat.v1"))
    );
}

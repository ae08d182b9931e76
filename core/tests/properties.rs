//! Property tests: random messages, fragment sizes and read splits survive
//! the round trip; arbitrary bytes never panic and always end cleanly.

mod common;

use std::{io::IoSlice, sync::Arc, time::Instant};

use bytes::Bytes;
use common::*;
use hubbub_core::{Config, Connection, Event, Message};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        "\\PC{0,300}".prop_map(Message::Text),
        proptest::collection::vec(any::<u8>(), 0..3000)
            .prop_map(|v| Message::Binary(Bytes::from(v))),
    ]
}

/// Move everything `from` wants to write into `to`, in reads of the given sizes.
fn transfer(from: &mut Connection, to: &mut Connection, now: Instant, splits: &[usize]) {
    let mut wire = Vec::new();
    while from.pending_bytes() > 0 {
        let mut slots = [IoSlice::new(&[]); 8];
        let n = from.transmit_slices(&mut slots);
        let len: usize = slots[..n].iter().map(|s| s.len()).sum();
        slots[..n].iter().for_each(|s| wire.extend_from_slice(s));
        from.advance_transmit(len);
    }
    let mut rest = &wire[..];
    for split in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((*split).clamp(1, rest.len()));
        to.handle_input(now, piece);
        rest = tail;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn messages_round_trip(messages in proptest::collection::vec(message(), 1..20),
                           fragment in proptest::option::of(1usize..500),
                           splits in proptest::collection::vec(1usize..700, 1..8)) {
        let config = Config { fragment_size: fragment, ..Config::default() };
        let mut pair = Pair::new(config.clone(), config);
        for m in &messages {
            pair.client.send(m.clone()).unwrap();
            pair.server.send(m.clone()).unwrap();
        }
        let now = pair.now;
        transfer(&mut pair.client, &mut pair.server, now, &splits);
        transfer(&mut pair.server, &mut pair.client, now, &splits);
        for conn in [&mut pair.server, &mut pair.client] {
            let got: Vec<Message> = events(conn).into_iter().filter_map(|e| match e {
                Event::Message(m) => Some(m),
                Event::Ping(_) | Event::Pong(_) => None,
                other => panic!("unexpected {other:?}"),
            }).collect();
            prop_assert_eq!(&got, &messages);
        }
    }

    #[test]
    fn arbitrary_bytes_end_cleanly(garbage in proptest::collection::vec(any::<u8>(), 0..400),
                                   splits in proptest::collection::vec(1usize..50, 1..5),
                                   masked_prefix in any::<bool>()) {
        let (mut server, now) = open_server(Config { max_message_size: 256, ..Config::default() });
        // Half the cases start with a valid masked frame header so the
        // decoder gets past the first byte checks more often.
        let mut wire = if masked_prefix { client_frame(false, 1, b"ok")} else { vec![] };
        wire.extend_from_slice(&garbage);
        let mut rest = &wire[..];
        let mut seen_end = false;
        for split in splits.iter().cycle() {
            if rest.is_empty() { break; }
            let (piece, tail) = rest.split_at((*split).min(rest.len()));
            server.handle_input(now, piece);
            rest = tail;
            for event in events(&mut server) {
                prop_assert!(!seen_end, "event after the terminal one: {:?}", event);
                if matches!(event, Event::Closed(_)) { seen_end = true; }
            }
        }
        server.handle_eof(now);
        let end = events(&mut server);
        prop_assert!(seen_end || matches!(end.last(), Some(Event::Closed(_))));
        prop_assert!(server.is_finished() || server.is_closed());
        // Whatever the server wrote is well-formed, unmasked frames.
        for (_, _, opcode, _) in parse_frames(&drain(&mut server)) {
            prop_assert!(matches!(opcode, 0x8 | 0xa), "server only pongs or closes, wrote {}", opcode);
        }
    }

    #[test]
    fn arbitrary_request_bytes_never_panic(garbage in proptest::collection::vec(any::<u8>(), 0..600),
                                           split in 1usize..64) {
        let now = Instant::now();
        let mut server = Connection::server(Arc::new(Config::default()), now);
        for piece in garbage.chunks(split) {
            server.handle_input(now, piece);
        }
        server.handle_eof(now);
        let events = events(&mut server);
        prop_assert!(matches!(events.last(), Some(Event::HandshakeFailed(_)) | Some(Event::Request)));
    }
}

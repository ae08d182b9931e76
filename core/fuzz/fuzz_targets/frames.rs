//! Arbitrary bytes into the frame decoder of an open connection, server or
//! client role, cut into pieces at fuzzer-chosen points.
//!
//! Input layout: `flags`, then `(flags & 7) + 1` split bytes, then the bytes
//! fed to the connection. Split bytes are used in turn (cyclically) for the
//! size of each piece fed (`s + 1`, or everything left for 255), the size of
//! each partial write, the clock step and the application action.
//!
//! | flag bit | meaning |
//! | --- | --- |
//! | `0x08` | client role (fed as server frames) instead of server |
//! | `0x10` | tight limits (256 B messages, 64 B frames, 16 B fragments) |
//! | `0x20` | advance the clock after each piece and fire timers |
//! | `0x40` | the application sends, pings or closes between pieces |
//! | `0x80` | the transport reports EOF at the end |
//!
//! Invariants checked after every piece:
//! - no panic;
//! - after `ProtocolError` only `Closed` may follow, and it does, in the same
//!   drain; after `Closed` nothing at all; no `Open`/`Request` once open;
//! - `is_closed()` agrees with the events; once closed and drained nothing
//!   more is queued for writing;
//! - delivered messages respect `max_message_size`, ping/pong payloads 125;
//! - the output, written in fuzzer-sized partial writes, is a sequence of
//!   well-formed frames: known opcode, no RSV bits, minimal length encoding,
//!   unmasked from a server and masked from a client, control frames final
//!   and at most 125 bytes, continuations only inside a fragmented message,
//!   text valid UTF-8, close payloads empty or a valid code and UTF-8
//!   reason, nothing after the close frame, and every write ends whole;
//! - every ping delivered (with `auto_pong`) is answered by a pong carrying
//!   the same payload.
#![no_main]

use std::{
    io::IoSlice,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_core::{
    handshake::accept_key, Accept, ClientRequest, CloseCode, Config, Connection, Event, Message,
};
use libfuzzer_sys::fuzz_target;

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

const CLIENT: u8 = 0x08;
const TIGHT: u8 = 0x10;
const TIMERS: u8 = 0x20;
const ACTIONS: u8 = 0x40;
const EOF: u8 = 0x80;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let split_count = (flags & 0x07) as usize + 1;
    if rest.len() < split_count {
        return;
    }
    let (splits, body) = rest.split_at(split_count);
    run(flags, splits, body);
});

/// Cycles through the split bytes.
struct Splits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Splits<'_> {
    fn next(&mut self) -> u8 {
        let byte = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        byte
    }
}

fn config(flags: u8) -> Config {
    if flags & TIGHT != 0 {
        Config {
            max_message_size: 256,
            max_frame_size: Some(64),
            fragment_size: Some(16),
            ..Config::default()
        }
    } else {
        Config::default()
    }
}

fn run(flags: u8, splits: &[u8], body: &[u8]) {
    let config = config(flags);
    let max_message = config.max_message_size;
    let auto_pong = config.auto_pong;
    let mut now = Instant::now();
    let mut splits = Splits {
        bytes: splits,
        at: 0,
    };
    let mut conn = if flags & CLIENT != 0 {
        open_client(Arc::new(config), now)
    } else {
        open_server(Arc::new(config), now)
    };
    let mut wire = WireCheck::new(flags & CLIENT != 0);
    let mut events = EventCheck::default();

    let mut rest = body;
    while !rest.is_empty() {
        let size = match splits.next() {
            255 => rest.len(),
            s => (s as usize + 1).min(rest.len()),
        };
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        conn.handle_input(now, piece);
        events.drain(&mut conn, max_message, auto_pong);
        if flags & TIMERS != 0 {
            now += Duration::from_secs(splits.next() as u64);
            conn.handle_timeout(now);
            events.drain(&mut conn, max_message, auto_pong);
        }
        if flags & ACTIONS != 0 {
            act(&mut conn, now, splits.next());
            events.drain(&mut conn, max_message, auto_pong);
        }
        write_out(&mut conn, &mut wire, &mut splits, &events);
    }
    if flags & EOF != 0 {
        conn.handle_eof(now);
        events.drain(&mut conn, max_message, auto_pong);
        assert!(events.closed, "EOF must end the connection");
        assert!(conn.is_finished());
        write_out(&mut conn, &mut wire, &mut splits, &events);
    }
    // Every ping delivered while open was answered with the same payload.
    let mut pongs = wire.pongs.clone();
    for ping in &events.pings_to_answer {
        let at = pongs.iter().position(|p| p == ping);
        let at = at.unwrap_or_else(|| panic!("ping {ping:?} was not answered"));
        pongs.swap_remove(at);
    }
}

/// The application does something, chosen by `choice`.
fn act(conn: &mut Connection, now: Instant, choice: u8) {
    let open = conn.is_open();
    let result = match choice % 8 {
        0 => conn.send(Message::Text("héllo ✓".repeat(choice as usize / 8))),
        1 => conn.send(Message::Binary(vec![choice; choice as usize * 3].into())),
        2 => conn.ping(b"app"),
        3 => conn.close(now, CloseCode::NORMAL, "bye"),
        _ => return,
    };
    assert_eq!(
        result.is_ok(),
        open,
        "command on {} connection: {result:?}",
        if open { "an open" } else { "a non-open" }
    );
}

/// Write the queued bytes in partial writes of fuzzer-chosen sizes.
fn write_out(
    conn: &mut Connection,
    wire: &mut WireCheck,
    splits: &mut Splits,
    events: &EventCheck,
) {
    if events.closed && wire.drained_after_close {
        assert_eq!(
            conn.pending_bytes(),
            0,
            "bytes queued after Closed was drained"
        );
    }
    while conn.pending_bytes() > 0 {
        let mut slots = [IoSlice::new(&[]); 8];
        let n = conn.transmit_slices(&mut slots);
        assert!(n > 0, "bytes pending but no slice filled");
        let budget = splits.next() as usize * 3 + 1;
        let mut written = 0;
        for slot in &slots[..n] {
            assert!(!slot.is_empty(), "empty slice");
            let take = slot.len().min(budget - written);
            wire.feed(&slot[..take]);
            written += take;
            if written == budget {
                break;
            }
        }
        conn.advance_transmit(written);
    }
    // Queued output only ever holds whole frames.
    assert!(
        wire.buf.is_empty(),
        "output ends inside a frame: {:?}",
        wire.buf
    );
    if events.closed {
        wire.drained_after_close = true;
    }
}

/// A server that accepted the RFC's sample request, its `101` written out.
fn open_server(config: Arc<Config>, now: Instant) -> Connection {
    let mut server = Connection::server(config, now);
    server.handle_input(now, REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    assert!(server.poll_event().is_none());
    let head = take_all(&mut server);
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    server
}

/// A client whose request was answered by a valid `101`.
fn open_client(config: Arc<Config>, now: Instant) -> Connection {
    let request = ClientRequest::new("server.example.com", "/chat");
    let mut client = Connection::client(config, now, &request, [7; 32]);
    let head = String::from_utf8(take_all(&mut client)).expect("request is text");
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("request carries a key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    client.handle_input(now, response.as_bytes());
    assert!(matches!(client.poll_event(), Some(Event::Open(_))));
    assert!(client.poll_event().is_none());
    assert_eq!(client.pending_bytes(), 0);
    client
}

fn take_all(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.pending_bytes() > 0 {
        let mut slots = [IoSlice::new(&[]); 8];
        let n = conn.transmit_slices(&mut slots);
        let mut written = 0;
        for slot in &slots[..n] {
            out.extend_from_slice(slot);
            written += slot.len();
        }
        conn.advance_transmit(written);
    }
    out
}

/// What the connection has reported so far.
#[derive(Default)]
struct EventCheck {
    errored: bool,
    closed: bool,
    pings_to_answer: Vec<Vec<u8>>,
}

impl EventCheck {
    fn drain(&mut self, conn: &mut Connection, max_message: usize, auto_pong: bool) {
        while let Some(event) = conn.poll_event() {
            assert!(!self.closed, "event after Closed: {event:?}");
            if self.errored {
                assert!(
                    matches!(event, Event::Closed(_)),
                    "ProtocolError followed by {event:?}"
                );
            }
            match event {
                Event::Message(message) => {
                    assert!(
                        message.len() <= max_message,
                        "message of {} bytes",
                        message.len()
                    );
                }
                Event::Ping(payload) => {
                    assert!(payload.len() <= 125);
                    if auto_pong {
                        self.pings_to_answer.push(payload.to_vec());
                    }
                }
                Event::Pong(payload) => assert!(payload.len() <= 125),
                Event::ProtocolError(_) => self.errored = true,
                Event::Closed(_) => self.closed = true,
                other => panic!("unexpected event on an open connection: {other:?}"),
            }
        }
        assert!(!self.errored || self.closed, "ProtocolError without Closed");
        assert_eq!(
            conn.is_closed(),
            self.closed,
            "is_closed() disagrees with the events"
        );
    }
}

/// Parses the output stream frame by frame.
struct WireCheck {
    /// The client masks every frame; the server none.
    client: bool,
    /// Bytes of an incomplete frame.
    buf: Vec<u8>,
    /// Inside a fragmented data message: whether it is text, and its bytes.
    message: Option<(bool, Vec<u8>)>,
    close_sent: bool,
    drained_after_close: bool,
    pongs: Vec<Vec<u8>>,
}

impl WireCheck {
    fn new(client: bool) -> Self {
        WireCheck {
            client,
            buf: Vec::new(),
            message: None,
            close_sent: false,
            drained_after_close: false,
            pongs: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while let Some(used) = self.frame() {
            self.buf.drain(..used);
        }
    }

    /// Check the first frame in `buf` if it is complete; returns its size.
    fn frame(&mut self) -> Option<usize> {
        let buf = &self.buf;
        let [b0, b1, ..] = buf[..] else { return None };
        let (len, mut at) = match b1 & 0x7f {
            126 => {
                let len = u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap()) as u64;
                assert!(len >= 126, "length {len} not minimally encoded (16 bit)");
                (len, 4)
            }
            127 => {
                let len = u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap());
                assert!(
                    len > 0xffff && len >> 63 == 0,
                    "length {len} badly encoded (64 bit)"
                );
                (len, 10)
            }
            short => (short as u64, 2),
        };
        let masked = b1 & 0x80 != 0;
        assert_eq!(masked, self.client, "masking wrong for the role");
        let mask = if masked {
            let key: [u8; 4] = buf.get(at..at + 4)?.try_into().unwrap();
            at += 4;
            key
        } else {
            [0; 4]
        };
        let end = at + usize::try_from(len).expect("frame length fits");
        let mut payload = buf.get(at..end)?.to_vec();
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= mask[i % 4]);

        assert!(!self.close_sent, "frame written after the close frame");
        let fin = b0 & 0x80 != 0;
        assert_eq!(b0 & 0x70, 0, "RSV bits set without an extension");
        match b0 & 0x0f {
            op @ (0x1 | 0x2) => {
                assert!(
                    self.message.is_none(),
                    "new data frame inside a fragmented message"
                );
                self.message = Some((op == 0x1, payload));
                if fin {
                    self.finish_message();
                }
            }
            0x0 => {
                let (_, data) = self
                    .message
                    .as_mut()
                    .expect("continuation outside a message");
                data.extend_from_slice(&payload);
                if fin {
                    self.finish_message();
                }
            }
            op @ 0x8..=0xa => {
                assert!(fin, "fragmented control frame");
                assert!(len <= 125, "control frame of {len} bytes");
                match op {
                    0x8 => {
                        check_close_payload(&payload);
                        self.close_sent = true;
                    }
                    0xa => self.pongs.push(payload),
                    _ => {}
                }
            }
            op => panic!("reserved opcode {op:#x} written"),
        }
        Some(end)
    }

    fn finish_message(&mut self) {
        let (text, data) = self.message.take().unwrap();
        if text {
            assert!(
                std::str::from_utf8(&data).is_ok(),
                "text message is not UTF-8"
            );
        }
    }
}

fn check_close_payload(payload: &[u8]) {
    match payload {
        [] => {}
        [_] => panic!("one-byte close payload"),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            assert!(code.is_valid_on_wire(), "close code {code} sent");
            assert!(
                std::str::from_utf8(reason).is_ok(),
                "close reason is not UTF-8"
            );
        }
    }
}

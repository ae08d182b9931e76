//! The entry points of hubbub's fuzz targets: every parser that reads peer
//! bytes, each behind a function that takes arbitrary bytes, feeds them
//! through the public API, and asserts the invariants below (a broken one
//! panics, which libFuzzer reports as a crash).
//!
//! The fuzz targets in `fuzz_targets/` are one call each; the main
//! workspace's `tests/tests/fuzz_corpus.rs` includes this file and replays
//! every file of `fuzz/corpus/<target>/` through [`TARGETS`], so CI checks
//! the corpus on stable Rust without libFuzzer.
//!
//! | target | parser |
//! | --- | --- |
//! | `handshake` | the server's upgrade request (`parse_request`, `Connection::server`), `Sec-WebSocket-Extensions` |
//! | `client_response` | the client's reader of the server's `101` (and the frames after it) |
//! | `frames` | frames into an open `Connection`, server or client role |
//! | `frames_deflate` | the same with permessage-deflate negotiated |
//! | `http_request` | hubbub-http's `RequestReader` (pipelined HTTP/1.1 requests) |
//! | `envelope` | hubbub-hub's `Envelope::parse` (the typed JSON events) |
//!
//! ## `frames` and `frames_deflate`
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
//! - delivered messages respect `max_message_size` (after inflating),
//!   ping/pong payloads 125;
//! - the output, written in fuzzer-sized partial writes, is a sequence of
//!   well-formed frames: known opcode, RSV1 only on the first frame of a
//!   compressed message (and only with deflate), no RSV2/RSV3, minimal
//!   length encoding, unmasked from a server and masked from a client,
//!   control frames final and at most 125 bytes, continuations only inside
//!   a fragmented message, uncompressed text valid UTF-8, close payloads
//!   empty or a valid code and UTF-8 reason, nothing after the close frame,
//!   and every write ends whole;
//! - every ping delivered (with `auto_pong`) is answered by a pong carrying
//!   the same payload.
//!
//! ## `client_response`
//!
//! Input layout: `flags` (bit `0x01`: the client offers permessage-deflate;
//! the other bits, plus one, are the size of each piece fed), then the
//! bytes the server sends. Every `@KEY` in them is replaced by the accept
//! key of the client's request, so that the fuzzer reaches past the key
//! check. The client either opens (on a `101` with the right key) or fails
//! the handshake; either way it never panics and events stay in order.
//!
//! ## `http_request`
//!
//! Input layout: `flags` (bit `0x01`: upgrades enabled; bit `0x02`: tight
//! limits; the other bits, plus one, are the size of each piece fed), then
//! the bytes. Requests are taken after every piece until the reader asks
//! for more. Checked: bodies within `max_body`, no more requests than
//! bytes, what stays buffered within one request's limits plus a piece,
//! and a failed reader stays failed.
//!
//! ## `envelope`
//!
//! The input as text (lossy UTF-8): a parsed envelope has a non-empty type,
//! and its JSON parses back to the same type, room and id.

use std::{
    io::IoSlice,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_core::{
    handshake::{accept_key, format_extensions, parse_extensions, parse_request},
    Accept, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Message,
};
use hubbub_http::{Limits, Next, RequestReader};
use hubbub_hub::Envelope;

/// A target's entry point: arbitrary bytes in, a panic when an invariant
/// breaks.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/` file and its
/// corpus directory) and its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("handshake", handshake),
    ("client_response", client_response),
    ("frames", frames),
    ("frames_deflate", frames_deflate),
    ("http_request", http_request),
    ("envelope", envelope),
];

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

const REQUEST_DEFLATE: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

const CLIENT: u8 = 0x08;
const TIGHT: u8 = 0x10;
const TIMERS: u8 = 0x20;
const ACTIONS: u8 = 0x40;
const EOF: u8 = 0x80;

/// Arbitrary bytes as an upgrade request: the head parser at two limits,
/// the extensions parser (what is formatted parses back the same), and a
/// server connection fed the bytes, which either accepts (with deflate, when
/// offered) and answers `101`, or fails and answers an HTTP error.
pub fn handshake(data: &[u8]) {
    for limit in [64, 8 << 10] {
        if let Ok(Some((request, len))) = parse_request(data, limit) {
            assert!(len <= data.len() && len <= limit);
            assert!(request.target().starts_with(request.path()));
        }
    }
    if let Ok(value) = std::str::from_utf8(data) {
        if let Ok(offers) = parse_extensions(value) {
            assert_eq!(parse_extensions(&format_extensions(&offers)), Ok(offers));
        }
    }
    let now = Instant::now();
    let config = Arc::new(config(0, true));
    let mut server = Connection::server(config, now);
    server.handle_input(now, data);
    match server.poll_event() {
        None => assert!(!server.is_open()),
        Some(Event::Request) => {
            assert!(server.request().is_some(), "Request without a request");
            server.accept(now, Accept::new()).unwrap();
            assert!(matches!(server.poll_event(), Some(Event::Open(_))));
            assert!(take_all(&mut server).starts_with(b"HTTP/1.1 101 "));
        }
        Some(Event::HandshakeFailed(_)) => {
            let head = take_all(&mut server);
            assert!(
                head.starts_with(b"HTTP/1.1 4") || head.starts_with(b"HTTP/1.1 5"),
                "a failed handshake answers an HTTP error: {:?}",
                String::from_utf8_lossy(&head)
            );
        }
        Some(other) => panic!("unexpected event reading a request: {other:?}"),
    }
}

/// Arbitrary bytes as the server's answer to a client (see the module doc).
pub fn client_response(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let deflate = flags & 0x01 != 0;
    let piece = usize::from(flags >> 1) + 1;
    let now = Instant::now();
    let mut request = ClientRequest::new("server.example.com", "/chat");
    if flags & 0x02 != 0 {
        request = request.protocol("chat");
    }
    let mut client = Connection::client(Arc::new(config(0, deflate)), now, &request, [7; 32]);
    let key = request_key(&take_all(&mut client));
    let accept = accept_key(key.as_bytes());
    let input = replace_all(rest, b"@KEY", accept.as_bytes());

    let mut opened = false;
    let mut events = EventCheck::default();
    for chunk in input.chunks(piece) {
        client.handle_input(now, chunk);
        if !opened {
            match client.poll_event() {
                None => continue,
                Some(Event::Open(_)) => opened = true,
                Some(Event::HandshakeFailed(_)) => {
                    assert!(client.poll_event().is_none(), "event after HandshakeFailed");
                    assert!(!client.is_open());
                    return;
                }
                Some(other) => panic!("unexpected event reading a response: {other:?}"),
            }
        }
        events.drain(&mut client, 1 << 20, true);
        // Drop what the client writes back (pongs, close).
        take_all(&mut client);
    }
    client.handle_eof(now);
    if opened {
        events.drain(&mut client, 1 << 20, true);
        assert!(events.closed, "EOF must end an open connection");
    }
}

/// Arbitrary frames into an open connection (see the module doc).
pub fn frames(data: &[u8]) {
    frames_with(data, false);
}

/// Arbitrary frames into an open connection that negotiated
/// permessage-deflate (see the module doc).
pub fn frames_deflate(data: &[u8]) {
    frames_with(data, true);
}

fn frames_with(data: &[u8], deflate: bool) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let split_count = (flags & 0x07) as usize + 1;
    if rest.len() < split_count {
        return;
    }
    let (splits, body) = rest.split_at(split_count);
    run(flags, splits, body, deflate);
}

/// Arbitrary bytes into hubbub-http's request reader (see the module doc).
pub fn http_request(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let limits = if flags & 0x02 != 0 {
        Limits {
            max_head: 128,
            max_headers: 4,
            max_body: 32,
        }
    } else {
        Limits::default()
    };
    let piece = usize::from(flags >> 2) + 1;
    let mut reader = RequestReader::new(limits, flags & 0x01 != 0);
    let mut requests = 0;
    for chunk in rest.chunks(piece) {
        reader.feed(chunk);
        loop {
            match reader.next_request() {
                Next::Incomplete => {
                    assert!(
                        reader.buffered_len() <= limits.max_head + limits.max_body + piece,
                        "{} bytes buffered for an incomplete request",
                        reader.buffered_len()
                    );
                    break;
                }
                Next::Request(request) => {
                    requests += 1;
                    assert!(requests <= rest.len(), "more requests than bytes");
                    assert!(request.body.len() <= limits.max_body);
                    assert!(request.version <= 1);
                    assert!(!request.method.is_empty());
                    let _ = (request.keep_alive(), request.query_param("a"));
                }
                Next::Continue => {
                    // Reported once per request: the next call reads on.
                    assert_ne!(reader.next_request(), Next::Continue);
                    break;
                }
                Next::Upgrade => {
                    assert!(flags & 0x01 != 0, "upgrade reported while disabled");
                    return;
                }
                Next::Error(error) => {
                    assert!(
                        (400..600).contains(&error.status),
                        "status {}",
                        error.status
                    );
                    assert!(matches!(reader.next_request(), Next::Error(_)));
                    return;
                }
            }
        }
    }
    reader.release_idle();
}

/// Arbitrary text as a typed envelope (see the module doc).
pub fn envelope(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(envelope) = Envelope::parse(&text) {
        assert!(!envelope.event_type.is_empty());
        let _ = envelope.room_name();
        let again = Envelope::parse(&envelope.to_json()).expect("its own JSON parses");
        assert_eq!(again.event_type, envelope.event_type);
        assert_eq!(again.room, envelope.room);
        assert_eq!(again.id, envelope.id);
    }
}

/// The `Sec-WebSocket-Key` of a client's request head.
fn request_key(head: &[u8]) -> String {
    let head = String::from_utf8_lossy(head);
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("request carries a key")
}

/// `haystack` with every `needle` replaced by `with`.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

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

fn config(flags: u8, deflate: bool) -> Config {
    let base = Config {
        deflate: deflate.then(|| DeflateConfig {
            // Compress even the short replies of `act`.
            min_compress_size: 0,
            ..DeflateConfig::default()
        }),
        ..Config::default()
    };
    if flags & TIGHT != 0 {
        Config {
            max_message_size: 256,
            max_frame_size: Some(64),
            fragment_size: Some(16),
            ..base
        }
    } else {
        base
    }
}

fn run(flags: u8, splits: &[u8], body: &[u8], deflate: bool) {
    let config = config(flags, deflate);
    let max_message = config.max_message_size;
    let auto_pong = config.auto_pong;
    let mut now = Instant::now();
    let mut splits = Splits {
        bytes: splits,
        at: 0,
    };
    let mut conn = if flags & CLIENT != 0 {
        open_client(Arc::new(config), now, deflate)
    } else {
        open_server(Arc::new(config), now, deflate)
    };
    let mut wire = WireCheck::new(flags & CLIENT != 0, deflate);
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
fn open_server(config: Arc<Config>, now: Instant, deflate: bool) -> Connection {
    let mut server = Connection::server(config, now);
    server.handle_input(now, if deflate { REQUEST_DEFLATE } else { REQUEST });
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    assert!(server.poll_event().is_none());
    let head = take_all(&mut server);
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(
        contains(&head, b"permessage-deflate"),
        deflate,
        "permessage-deflate negotiated as asked"
    );
    server
}

/// A client whose request was answered by a valid `101`.
fn open_client(config: Arc<Config>, now: Instant, deflate: bool) -> Connection {
    let request = ClientRequest::new("server.example.com", "/chat");
    let mut client = Connection::client(config, now, &request, [7; 32]);
    let key = request_key(&take_all(&mut client));
    let extension = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extension}\r\n",
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
    /// permessage-deflate is on: RSV1 may mark a message compressed.
    deflate: bool,
    /// The message being read is compressed (its text is not checked).
    compressed: bool,
    /// Bytes of an incomplete frame.
    buf: Vec<u8>,
    /// Inside a fragmented data message: whether it is text, and its bytes.
    message: Option<(bool, Vec<u8>)>,
    close_sent: bool,
    drained_after_close: bool,
    pongs: Vec<Vec<u8>>,
}

impl WireCheck {
    fn new(client: bool, deflate: bool) -> Self {
        WireCheck {
            client,
            deflate,
            compressed: false,
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
        let rsv1 = b0 & 0x40 != 0;
        assert_eq!(b0 & 0x30, 0, "RSV2/RSV3 set without an extension");
        assert!(
            !rsv1 || (self.deflate && matches!(b0 & 0x0f, 0x1 | 0x2)),
            "RSV1 set outside the first frame of a compressed message"
        );
        match b0 & 0x0f {
            op @ (0x1 | 0x2) => {
                assert!(
                    self.message.is_none(),
                    "new data frame inside a fragmented message"
                );
                self.compressed = rsv1;
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
        if text && !self.compressed {
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

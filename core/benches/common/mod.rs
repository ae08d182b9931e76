//! Workloads shared by the `throughput` (criterion) and `profile`
//! (fixed-count, for callgrind) benches: the same wire bytes and the same
//! in-memory "socket" for hubbub-core and tungstenite.
#![allow(dead_code)] // each bench uses a part

use std::{
    hint::black_box,
    io::{self, IoSlice, Read, Write},
    sync::Arc,
    time::Instant,
};

use hubbub_core::{Accept, Config, Connection, Event, Message};
use tungstenite::protocol::{Role as TRole, WebSocket, WebSocketConfig};

/// Largest read or write a "socket" call moves, as a 64 KiB read buffer would.
pub(crate) const IO_CHUNK: usize = 64 << 10;

/// The message sizes compared, with how many messages one iteration handles.
pub(crate) const SIZES: [(&str, usize, usize); 3] = [
    ("20B", 20, 1000),
    ("1KiB", 1024, 1000),
    ("64KiB", 64 << 10, 16),
];

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Text of exactly `len` bytes: JSON-ish ASCII with some multi-byte
/// characters, so UTF-8 validation cannot take an all-ASCII shortcut.
pub(crate) fn text(len: usize) -> String {
    const PATTERN: &str = r#"{"user":"zoë","msg":"héllo wörld ✓","n":12345},"#;
    let mut s = String::with_capacity(len + PATTERN.len());
    while s.len() < len {
        s.push_str(PATTERN);
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < len {
        s.push('x');
    }
    s
}

/// `count` masked client text frames of `payload`, each with its own mask.
pub(crate) fn client_frames(payload: &[u8], count: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(count * (payload.len() + 14));
    let mut seed = 0x9e37_79b9u32;
    for _ in 0..count {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mask = seed.to_be_bytes();
        wire.push(0x81);
        match payload.len() {
            n if n < 126 => wire.push(0x80 | n as u8),
            n if n < 65536 => {
                wire.push(0x80 | 126);
                wire.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                wire.push(0x80 | 127);
                wire.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        wire.extend_from_slice(&mask);
        wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    wire
}

fn hubbub_config() -> Arc<Config> {
    Arc::new(Config {
        max_message_size: 1 << 20,
        ..Config::default()
    })
}

fn tungstenite_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(IO_CHUNK)
        .max_message_size(Some(1 << 20))
}

/// A server that accepted the RFC's sample request, its `101` written out.
fn hubbub_server(now: Instant) -> Connection {
    let mut server = Connection::server(hubbub_config(), now);
    server.handle_input(now, REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    let mut sink = Vec::new();
    drain(&mut server, &mut sink);
    server
}

/// Write everything queued into `sink`, as vectored socket writes of at
/// most [`IO_CHUNK`] bytes would.
fn drain(conn: &mut Connection, sink: &mut Vec<u8>) {
    while conn.pending_bytes() > 0 {
        let mut slots = [IoSlice::new(&[]); 64];
        let n = conn.transmit_slices(&mut slots);
        let mut written = 0;
        for slot in &slots[..n] {
            let take = slot.len().min(IO_CHUNK - written);
            sink.extend_from_slice(&slot[..take]);
            written += take;
            if written == IO_CHUNK {
                break;
            }
        }
        conn.advance_transmit(written);
    }
}

/// An in-memory socket: reads replay `wire` from `pos` at most
/// [`IO_CHUNK`] bytes at a time; writes append to `out`.
struct Replay {
    wire: Arc<Vec<u8>>,
    pos: usize,
    out: Vec<u8>,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.wire[self.pos..];
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len()).min(IO_CHUNK);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One side of one comparison; `run` handles `count` messages.
pub(crate) trait Workload {
    fn run(&mut self);
}

/// hubbub server reading `count` masked text messages.
pub(crate) struct HubbubDecode {
    now: Instant,
    server: Connection,
    wire: Vec<u8>,
    read_buf: Vec<u8>,
    count: usize,
}

impl HubbubDecode {
    pub(crate) fn new(size: usize, count: usize) -> Self {
        let now = Instant::now();
        HubbubDecode {
            now,
            server: hubbub_server(now),
            wire: client_frames(text(size).as_bytes(), count),
            read_buf: vec![0u8; IO_CHUNK],
            count,
        }
    }
}

impl Workload for HubbubDecode {
    fn run(&mut self) {
        let mut delivered = 0;
        for piece in self.wire.chunks(IO_CHUNK) {
            // The socket read: the same copy tungstenite's `Read` does.
            let buf = &mut self.read_buf[..piece.len()];
            buf.copy_from_slice(piece);
            self.server.handle_input(self.now, buf);
            while let Some(event) = self.server.poll_event() {
                match event {
                    Event::Message(message) => {
                        black_box(message);
                        delivered += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(delivered, self.count);
    }
}

/// tungstenite server reading `count` masked text messages.
pub(crate) struct TungsteniteDecode {
    ws: WebSocket<Replay>,
    count: usize,
}

impl TungsteniteDecode {
    pub(crate) fn new(size: usize, count: usize) -> Self {
        let stream = Replay {
            wire: Arc::new(client_frames(text(size).as_bytes(), count)),
            pos: 0,
            out: Vec::new(),
        };
        let ws = WebSocket::from_raw_socket(stream, TRole::Server, Some(tungstenite_config()));
        TungsteniteDecode { ws, count }
    }
}

impl Workload for TungsteniteDecode {
    fn run(&mut self) {
        self.ws.get_mut().pos = 0;
        for _ in 0..self.count {
            match self.ws.read().unwrap() {
                message @ tungstenite::Message::Text(_) => {
                    black_box(message);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// hubbub server sending `count` text messages, each written out at once.
pub(crate) struct HubbubEncode {
    server: Connection,
    payload: String,
    sink: Vec<u8>,
    count: usize,
}

impl HubbubEncode {
    pub(crate) fn new(size: usize, count: usize) -> Self {
        HubbubEncode {
            server: hubbub_server(Instant::now()),
            payload: text(size),
            sink: Vec::with_capacity(count * (size + 14)),
            count,
        }
    }
}

impl Workload for HubbubEncode {
    fn run(&mut self) {
        self.sink.clear();
        for _ in 0..self.count {
            // Both sides start from an owned String, as an application would.
            let message = Message::Text(self.payload.clone());
            self.server.send(message).unwrap();
            drain(&mut self.server, &mut self.sink);
        }
        black_box(&self.sink);
    }
}

/// tungstenite server sending `count` text messages (`send` flushes).
pub(crate) struct TungsteniteEncode {
    ws: WebSocket<Replay>,
    payload: String,
    count: usize,
}

impl TungsteniteEncode {
    pub(crate) fn new(size: usize, count: usize) -> Self {
        let stream = Replay {
            wire: Arc::new(Vec::new()),
            pos: 0,
            out: Vec::with_capacity(count * (size + 14)),
        };
        let ws = WebSocket::from_raw_socket(stream, TRole::Server, Some(tungstenite_config()));
        TungsteniteEncode {
            ws,
            payload: text(size),
            count,
        }
    }
}

impl Workload for TungsteniteEncode {
    fn run(&mut self) {
        self.ws.get_mut().out.clear();
        for _ in 0..self.count {
            let message = tungstenite::Message::Text(self.payload.clone().into());
            self.ws.send(message).unwrap();
        }
        black_box(&self.ws.get_ref().out);
    }
}

/// The workload `kind` ("decode" or "encode") of `library` ("hubbub" or
/// "tungstenite").
pub(crate) fn workload(
    kind: &str,
    library: &str,
    size: usize,
    count: usize,
) -> Option<Box<dyn Workload>> {
    Some(match (kind, library) {
        ("decode", "hubbub") => Box::new(HubbubDecode::new(size, count)),
        ("decode", "tungstenite") => Box::new(TungsteniteDecode::new(size, count)),
        ("encode", "hubbub") => Box::new(HubbubEncode::new(size, count)),
        ("encode", "tungstenite") => Box::new(TungsteniteEncode::new(size, count)),
        _ => return None,
    })
}

/// XOR with `mask` one byte at a time: the baseline for `apply_mask`.
#[allow(clippy::needless_range_loop)] // naive on purpose
pub(crate) fn naive_mask(buf: &mut [u8], mask: [u8; 4]) {
    for i in 0..buf.len() {
        buf[i] ^= mask[i % 4];
    }
}

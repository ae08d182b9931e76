//! Test support: a virtual clock, hand-built wire frames (independent of the
//! crate's encoder), and a client/server pair wired back to back.
#![allow(dead_code)]

use std::{
    io::IoSlice,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_core::{Accept, ClientRequest, Config, Connection, Event, Message};

pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(crate) const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a peer would put it on the wire, built byte by byte per §5.2.
pub(crate) fn frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | rsv << 4 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65536 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame (what a server receives).
pub(crate) fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, Some(MASK), payload)
}

pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Everything the connection wants to write, drained as a transport would.
pub(crate) fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    while conn.pending_bytes() > 0 {
        let mut slots = [IoSlice::new(&[]); 16];
        let n = conn.transmit_slices(&mut slots);
        let written: usize = slots[..n].iter().map(|s| s.len()).sum();
        for slot in &slots[..n] {
            wire.extend_from_slice(slot);
        }
        conn.advance_transmit(written);
    }
    wire
}

pub(crate) fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Split a server's output into frames: (fin, rsv, opcode, payload).
pub(crate) fn parse_frames(mut wire: &[u8]) -> Vec<(bool, u8, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (b0, b1) = (wire[0], wire[1]);
        let (len, mut at) = match b1 & 0x7f {
            126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let m = [wire[at], wire[at + 1], wire[at + 2], wire[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        let mut payload = wire[at..at + len].to_vec();
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= m[i % 4]);
        }
        frames.push((b0 & 0x80 != 0, (b0 >> 4) & 7, b0 & 0x0f, payload));
        wire = &wire[at + len..];
    }
    frames
}

/// The close frames in a server's output as (code, reason).
pub(crate) fn close_of(wire: &[u8]) -> Option<(u16, String)> {
    parse_frames(wire)
        .into_iter()
        .find(|f| f.2 == 8)
        .map(|(_, _, _, p)| {
            if p.is_empty() {
                (1005, String::new())
            } else {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    String::from_utf8(p[2..].to_vec()).unwrap(),
                )
            }
        })
}

/// A server that has accepted the RFC's sample request, output drained.
pub(crate) fn open_server(config: Config) -> (Connection, Instant) {
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(config), now);
    server.handle_input(now, REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    drain(&mut server);
    (server, now)
}

/// A client and a server joined by an in-memory pipe, on a virtual clock.
pub(crate) struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub now: Instant,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
}

impl Pair {
    pub(crate) fn new(client_config: Config, server_config: Config) -> Pair {
        let now = Instant::now();
        let request = ClientRequest::new("localhost", "/chat");
        let client = Connection::client(Arc::new(client_config), now, &request, [7; 32]);
        let server = Connection::server(Arc::new(server_config), now);
        let mut pair = Pair {
            client,
            server,
            now,
            client_events: vec![],
            server_events: vec![],
        };
        pair.pump();
        assert!(matches!(pair.server_events.remove(0), Event::Request));
        pair.server.accept(pair.now, Accept::new()).unwrap();
        pair.pump();
        assert!(matches!(pair.server_events.remove(0), Event::Open(_)));
        assert!(matches!(pair.client_events.remove(0), Event::Open(_)));
        pair
    }

    pub(crate) fn open() -> Pair {
        Pair::new(Config::default(), Config::default())
    }

    /// Move bytes both ways until both sides are quiet; collect events.
    pub(crate) fn pump(&mut self) {
        for _ in 0..1000 {
            let to_server = drain(&mut self.client);
            let to_client = drain(&mut self.server);
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
            if !to_server.is_empty() {
                self.server.handle_input(self.now, &to_server);
            }
            if !to_client.is_empty() {
                self.client.handle_input(self.now, &to_client);
            }
            self.client_events.extend(events(&mut self.client));
            self.server_events.extend(events(&mut self.server));
        }
        self.client_events.extend(events(&mut self.client));
        self.server_events.extend(events(&mut self.server));
    }

    /// Advance the virtual clock, firing due timers on both sides.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.pump();
    }
}

/// Feed `input`, then follow the documented polling order: take the events,
/// then the bytes to write.
pub(crate) fn respond(conn: &mut Connection, now: Instant, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
    conn.handle_input(now, input);
    let events = events(conn);
    (events, drain(conn))
}

/// The data messages among `events`, in order.
pub(crate) fn messages(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

//! hubbub-core against tungstenite, both driving in-memory streams.
//!
//! * `decode`: the server reads masked client text messages (parse, unmask,
//!   UTF-8 validation, an owned message delivered). Both sides get the same
//!   wire bytes, copied out of a "socket" in reads of at most 64 KiB.
//! * `encode`: the server sends text messages, each written out to a `Vec`
//!   "socket" at once (tungstenite's `send` flushes; hubbub drains
//!   `transmit_slices` after each `send`).
//! * `mask`: `hubbub_core::apply_mask` against a byte-at-a-time loop.
//!
//! After criterion's own output, a summary table gives messages/s, bytes/s
//! and the hubbub/tungstenite ratio for every pair measured in this run.
//!
//! Run with `cargo bench -p hubbub-core --bench throughput`.

use std::{
    hint::black_box,
    io::{self, IoSlice, Read, Write},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use hubbub_core::{apply_mask, Accept, Config, Connection, Event, Message};
use tungstenite::protocol::{Role as TRole, WebSocket, WebSocketConfig};

/// Largest read or write a "socket" call moves, as a 64 KiB read buffer would.
const IO_CHUNK: usize = 64 << 10;

/// The message sizes compared, with how many messages one iteration handles.
const SIZES: [(&str, usize, usize); 3] = [
    ("20B", 20, 1000),
    ("1KiB", 1024, 1000),
    ("64KiB", 64 << 10, 16),
];

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Text of exactly `len` bytes: JSON-ish ASCII with some multi-byte
/// characters, so UTF-8 validation cannot take an all-ASCII shortcut.
fn text(len: usize) -> String {
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
fn client_frames(payload: &[u8], count: usize) -> Vec<u8> {
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

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, size, count) in SIZES {
        let payload = text(size);
        let wire = Arc::new(client_frames(payload.as_bytes(), count));
        group.throughput(Throughput::Elements(count as u64));

        group.bench_function(BenchmarkId::new("hubbub", name), |b| {
            let now = Instant::now();
            let mut server = hubbub_server(now);
            let mut read_buf = vec![0u8; IO_CHUNK];
            b.iter(|| {
                let mut delivered = 0;
                for piece in wire.chunks(IO_CHUNK) {
                    // The socket read: the same copy tungstenite's `Read` does.
                    read_buf[..piece.len()].copy_from_slice(piece);
                    server.handle_input(now, &read_buf[..piece.len()]);
                    while let Some(event) = server.poll_event() {
                        match event {
                            Event::Message(message) => {
                                black_box(message);
                                delivered += 1;
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                assert_eq!(delivered, count);
            });
        });

        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            let stream = Replay {
                wire: wire.clone(),
                pos: 0,
                out: Vec::new(),
            };
            let mut ws =
                WebSocket::from_raw_socket(stream, TRole::Server, Some(tungstenite_config()));
            b.iter(|| {
                ws.get_mut().pos = 0;
                for _ in 0..count {
                    match ws.read().unwrap() {
                        message @ tungstenite::Message::Text(_) => {
                            black_box(message);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, size, count) in SIZES {
        let payload = text(size);
        group.throughput(Throughput::Elements(count as u64));

        group.bench_function(BenchmarkId::new("hubbub", name), |b| {
            let now = Instant::now();
            let mut server = hubbub_server(now);
            let mut sink = Vec::with_capacity(count * (size + 14));
            b.iter(|| {
                sink.clear();
                for _ in 0..count {
                    server.send(Message::Text(payload.clone())).unwrap();
                    drain(&mut server, &mut sink);
                }
                black_box(&sink);
            });
        });

        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            let stream = Replay {
                wire: Arc::new(Vec::new()),
                pos: 0,
                out: Vec::with_capacity(count * (size + 14)),
            };
            let mut ws =
                WebSocket::from_raw_socket(stream, TRole::Server, Some(tungstenite_config()));
            b.iter(|| {
                ws.get_mut().out.clear();
                for _ in 0..count {
                    ws.send(tungstenite::Message::Text(payload.clone().into()))
                        .unwrap();
                }
                black_box(&ws.get_ref().out);
            });
        });
    }
    group.finish();
}

fn naive_mask(buf: &mut [u8], mask: [u8; 4]) {
    for i in 0..buf.len() {
        buf[i] ^= mask[i % 4];
    }
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (name, size) in [
        ("20B", 20),
        ("1KiB", 1024),
        ("64KiB", 64 << 10),
        ("1MiB", 1 << 20),
    ] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("apply_mask", name), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box([0x37, 0xfa, 0x21, 0x3d])));
        });
        group.bench_function(BenchmarkId::new("naive", name), |b| {
            b.iter(|| naive_mask(black_box(&mut buf), black_box([0x37, 0xfa, 0x21, 0x3d])));
        });
    }
    group.finish();
}

/// Where criterion writes its results: `<target>/criterion`, found from this
/// executable's path (`<target>/<profile>/deps/<bench>`).
fn criterion_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("bench binary lives in <target>/<profile>/deps");
    target.join("criterion")
}

fn config() -> Criterion {
    Criterion::default()
        .output_directory(&criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, encode, mask
}

/// Mean seconds per iteration of one benchmark, if it was measured by this
/// run (its estimates file is newer than `since`).
fn mean_seconds(group: &str, function: &str, param: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join(param)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    // {"mean":{"confidence_interval":{...},"point_estimate":<ns>,...},...}
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    Some(value[..end].trim().parse::<f64>().ok()? * 1e-9)
}

fn summary(since: SystemTime) {
    let mut lines = Vec::new();
    for group in ["decode", "encode"] {
        for (name, size, count) in SIZES {
            let (Some(ours), Some(theirs)) = (
                mean_seconds(group, "hubbub", name, since),
                mean_seconds(group, "tungstenite", name, since),
            ) else {
                continue;
            };
            let (ours, theirs) = (count as f64 / ours, count as f64 / theirs);
            lines.push(format!(
                "{group:<7} {name:>6} | hubbub {:>8.3} M msg/s {:>7.3} GB/s | tungstenite {:>8.3} M msg/s {:>7.3} GB/s | ratio {:>5.2}x",
                ours / 1e6,
                ours * size as f64 / 1e9,
                theirs / 1e6,
                theirs * size as f64 / 1e9,
                ours / theirs
            ));
        }
    }
    for name in ["20B", "1KiB", "64KiB", "1MiB"] {
        let size = match name {
            "20B" => 20.0,
            "1KiB" => 1024.0,
            "64KiB" => 65536.0,
            _ => 1048576.0,
        };
        let (Some(ours), Some(naive)) = (
            mean_seconds("mask", "apply_mask", name, since),
            mean_seconds("mask", "naive", name, since),
        ) else {
            continue;
        };
        lines.push(format!(
            "mask    {name:>6} | apply_mask {:>7.2} GB/s | naive {:>7.2} GB/s | ratio {:>5.2}x",
            size / ours / 1e9,
            size / naive / 1e9,
            naive / ours
        ));
    }
    if !lines.is_empty() {
        println!("\nSummary (payload bytes; GB = 1e9 bytes):");
        for line in lines {
            println!("{line}");
        }
    }
}

fn main() {
    let start = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(start);
}

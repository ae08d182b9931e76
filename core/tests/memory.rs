//! An idle connection is small: a few hundred bytes of state, no heap after
//! the handshake, and at rest only small reusable buffers of bounded size
//! once data has passed (ARCHITECTURE.md §6).
//! Measured with a counting global allocator.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use common::*;
use hubbub_core::{Config, Connection, Event};

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread: each test measures
    /// its own thread, undisturbed by the test harness's other threads.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // Ignored while the thread-local is being torn down.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

/// Bytes this thread holds, as counted so far.
fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: `GlobalAlloc`'s contract is upheld by `System`, to which every
// method is forwarded with the caller's arguments unchanged: `alloc` returns
// what `System.alloc` returned for the same layout (a block fitting it, or
// null on failure), and `dealloc` hands `System` back a pointer it
// allocated with that same layout (below). `realloc` and `alloc_zeroed` are
// the trait's defaults, written in terms of these two. The only other thing
// done is `count`: a thread-local `Cell` update through `try_with`, which
// neither allocates (a `const`-initialized `Cell<isize>` needs no lazy
// allocation, so it cannot re-enter the allocator) nor panics (`try_with`
// returns an error during teardown, and the result is ignored).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: our caller guarantees what `GlobalAlloc::alloc` requires
        // of it (`layout` has a non-zero size); `System.alloc` requires the
        // same, and gets that very `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: our caller guarantees that `ptr` was returned by this
        // allocator with `layout` and not freed since. Every block this
        // allocator hands out (from `alloc`, or from the default
        // `realloc`/`alloc_zeroed`, which call `alloc`) is `System`'s,
        // allocated with the layout the caller gave, so `ptr` is currently
        // allocated by `System` with `layout`, as `System.dealloc` requires.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The outbox's queues, boxed: held at rest only with a kept coalescing
/// buffer (112 bytes on 64-bit targets, rounded up).
const OUTBOX_QUEUES: isize = 128;

/// The most the outbox keeps at rest once data messages have passed: its
/// coalescing buffer, reused for the next small frames if its capacity is at
/// most 512 (outbox.rs `TAIL_KEEP`), and the queues holding it.
const OUTBOX_KEPT: isize = 512 + OUTBOX_QUEUES;

/// The most the event queue keeps at rest once data messages have passed:
/// its first allocation, 4 entries of 56 bytes on 64-bit targets
/// (connection.rs `EVENTS_KEEP`).
const EVENTS_KEPT: isize = 4 * 56;

#[test]
fn idle_connection_cost() {
    let size = size_of::<Connection>();
    println!("size_of::<Connection>() = {size}");
    // Most of an idle connection's memory on every runtime (the driver and
    // the session's task embed it): rarely used state is boxed.
    assert!(size <= 352, "Connection grew to {size} bytes");

    // Heap held by an open server connection (the shared Arc<Config>
    // excluded): none after the handshake alone...
    let config = std::sync::Arc::new(Config::default());
    let now = std::time::Instant::now();
    let before = live();
    let mut server = Connection::server(config, now);
    server.handle_input(now, REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, hubbub_core::Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    assert!(server.poll_event().is_none());
    drain(&mut server);
    let held = live() - before;
    println!("heap held at rest after the handshake: {held} bytes");
    assert_eq!(held, 0, "held after the handshake alone");
    // (Printing may allocate: the test harness captures the output.)
    let before = live();
    // ...and its small reusable buffers once data has passed.
    for i in 0..50 {
        server.handle_input(
            now,
            &client_frame(true, 1, format!("message {i}").as_bytes()),
        );
        server.handle_input(now, &client_frame(false, 2, &[1; 3000]));
        server.handle_input(now, &client_frame(true, 0, &[2; 10]));
        // Coalesced (≤ 1 KiB) but over the kept size: released when written.
        server.handle_input(now, &client_frame(true, 2, &[3; 1000]));
        server.handle_input(now, &client_frame(true, 9, b"ping"));
        while let Some(event) = server.poll_event() {
            if let Event::Message(m) = event {
                server.send(m).unwrap();
            }
        }
        drain(&mut server);
    }
    // Last, a small echo: its coalescing buffer is the one kept.
    server.handle_input(now, &client_frame(true, 1, b"last"));
    while let Some(event) = server.poll_event() {
        if let Event::Message(m) = event {
            server.send(m).unwrap();
        }
    }
    drain(&mut server);
    let after = live();
    println!("heap held at rest after traffic: {} bytes", after - before);
    assert!(
        after - before <= OUTBOX_KEPT + EVENTS_KEPT,
        "an idle connection holds {} bytes, more than its bounded buffers",
        after - before
    );
    drop(server);
}

/// A frame's header alone allocates only the message's small reassembly
/// state (boxed, so that an idle connection does not carry its room); its
/// first payload bytes reserve room for the rest of the frame (it passed
/// the limits), and the message is received into that buffer without
/// growing it (ARCHITECTURE.md §5).
#[test]
fn header_alone_reserves_nothing() {
    let (mut server, now) = open_server(Config::default());
    // A first message: the event queue is then kept (not counted below).
    server.handle_input(now, &client_frame(true, 1, b"warm"));
    while server.poll_event().is_some() {}
    drain(&mut server);
    let len = 60_000;
    for (opcode, payload) in [(1u8, vec![b'a'; len]), (2, vec![7u8; len])] {
        let wire = client_frame(true, opcode, &payload);
        let header = wire.len() - len;
        let before = live();
        server.handle_input(now, &wire[..header]);
        let state = live() - before;
        assert!(state <= 64, "header alone: {state} bytes");
        server.handle_input(now, &wire[header..header + 1]);
        let reserved = live() - before - state;
        assert_eq!(reserved, len as isize, "reserved on the first byte");
        server.handle_input(now, &wire[header + 1..]);
        // The reassembly state is freed with the message complete.
        let held = live() - before;
        assert_eq!(held, reserved, "the buffer grew");
        let message = match server.poll_event() {
            Some(Event::Message(message)) => message,
            other => panic!("expected the message, got {other:?}"),
        };
        assert_eq!(message.as_bytes(), &payload[..]);
    }
}

/// permessage-deflate's cost per connection at rest, for each parameter
/// set, after a compressed 1 KiB JSON message each way: nothing beyond the
/// codec's small struct on a side without context takeover; one zlib
/// stream per side that keeps its context. The figures printed here are
/// the ones in bench/README.md (measurement notes).
#[test]
#[cfg(feature = "deflate")]
fn deflate_cost_per_mode() {
    use hubbub_core::DeflateConfig;
    let json = r#"{"type":"chat.message","payload":{"room":"lobby","user":"alice","text":"hello everyone, how are you today?","ts":1732700000}}"#
        .repeat(8);
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut compressed = Vec::with_capacity(2048);
    c.compress_vec(
        json.as_bytes(),
        &mut compressed,
        flate2::FlushCompress::Sync,
    )
    .unwrap();
    compressed.truncate(compressed.len() - 4);
    let incoming = frame(true, 0b100, 1, Some(MASK), &compressed);
    let plain = frame(true, 0, 1, Some(MASK), json.as_bytes());
    let base = DeflateConfig {
        server_no_context_takeover: false,
        ..DeflateConfig::default()
    };
    // (mode, server config, client offer, at most this many bytes at rest)
    let modes: [(&str, Option<DeflateConfig>, &str, isize); 6] = [
        ("off", None, "", 0),
        (
            "takeover both ways, 15 bits",
            Some(base.clone()),
            "permessage-deflate",
            440 << 10,
        ),
        (
            "server_no_context_takeover",
            Some(base.clone()),
            "permessage-deflate; server_no_context_takeover",
            50 << 10,
        ),
        (
            "client_no_context_takeover",
            Some(base.clone()),
            "permessage-deflate; client_no_context_takeover",
            390 << 10,
        ),
        (
            "no context takeover both ways",
            Some(base.clone()),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            512 + OUTBOX_QUEUES,
        ),
        (
            "takeover both ways, 9 bits",
            Some(DeflateConfig {
                client_max_window_bits: Some(9),
                ..base
            }),
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
            310 << 10,
        ),
    ];
    // The first pass also creates the thread's shared compressor (used by
    // every connection without server context takeover); the second
    // measures what each connection holds.
    let mut off = 0;
    let (mut first_pass, mut second_pass) = (Vec::new(), Vec::new());
    for (pass, (mode, deflate, offer, bound)) in modes
        .iter()
        .cloned()
        .map(|m| (0, m))
        .chain(modes.iter().cloned().map(|m| (1, m)))
    {
        let head = std::str::from_utf8(&REQUEST[..REQUEST.len() - 2]).unwrap();
        let (request, incoming) = match deflate {
            Some(_) => (
                format!("{head}Sec-WebSocket-Extensions: {offer}\r\n\r\n"),
                &incoming,
            ),
            None => (format!("{head}\r\n"), &plain),
        };
        let config = std::sync::Arc::new(Config {
            deflate,
            ..Config::default()
        });
        let now = std::time::Instant::now();
        let before = live();
        let mut server = Connection::server(config, now);
        server.handle_input(now, request.as_bytes());
        assert!(matches!(server.poll_event(), Some(Event::Request)));
        server.accept(now, hubbub_core::Accept::new()).unwrap();
        assert!(matches!(server.poll_event(), Some(Event::Open(_))));
        drain(&mut server);
        for _ in 0..3 {
            server.handle_input(now, incoming);
            match server.poll_event() {
                Some(Event::Message(m)) => {
                    assert_eq!(m.as_bytes(), json.as_bytes());
                    server.send(m).unwrap();
                }
                other => panic!("{mode}: {other:?}"),
            }
            drain(&mut server);
        }
        let held = live() - before;
        drop(server);
        if pass == 0 {
            first_pass.push(held);
            continue;
        }
        second_pass.push(held);
        if mode == "off" {
            off = held;
        }
        println!(
            "{mode:32} {:>7} bytes at rest ({:+} over no deflate)",
            held,
            held - off
        );
        assert!(held - off <= bound, "{mode}: {held} bytes");
    }
    let shared = first_pass[2] - second_pass[2];
    println!("shared per-thread compressor (15 bits, level 6): {shared} bytes");
    assert!(shared <= 390 << 10, "shared compressor: {shared} bytes");
}

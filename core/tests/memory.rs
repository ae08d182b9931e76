//! An idle connection is small: a few hundred bytes of state, and at rest
//! only small reusable buffers of bounded size (ARCHITECTURE.md §6).
//! Measured with a counting global allocator.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

use common::*;
use hubbub_core::{Config, Connection, Event};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    // SAFETY: forwards to the system allocator unchanged; only counts.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    // SAFETY: as above.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most the outbox keeps at rest: its coalescing buffer, reused for the
/// next small frames if its capacity is at most this (outbox.rs `TAIL_KEEP`).
const OUTBOX_KEPT: isize = 512;

/// The most the event queue keeps at rest: its first allocation, 4 entries
/// of 56 bytes on 64-bit targets (connection.rs `EVENTS_KEEP`).
const EVENTS_KEPT: isize = 4 * 56;

#[test]
fn idle_connection_cost() {
    let size = std::mem::size_of::<Connection>();
    println!("size_of::<Connection>() = {size}");
    assert!(size <= 512, "Connection grew to {size} bytes");

    // Heap held by an open server connection after traffic has passed
    // (the shared Arc<Config> excluded).
    let config = std::sync::Arc::new(Config::default());
    let now = std::time::Instant::now();
    let before = LIVE.load(Ordering::SeqCst);
    let mut server = Connection::server(config, now);
    server.handle_input(now, REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request)));
    server.accept(now, hubbub_core::Accept::new()).unwrap();
    drain(&mut server);
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
    let after = LIVE.load(Ordering::SeqCst);
    println!("heap held at rest after traffic: {} bytes", after - before);
    assert!(
        after - before <= OUTBOX_KEPT + EVENTS_KEPT,
        "an idle connection holds {} bytes, more than its bounded buffers",
        after - before
    );
    drop(server);
}

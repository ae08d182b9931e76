//! What an idle connection costs the server in heap bytes, counted by a
//! global allocator (requested sizes; malloc's own overhead and the kernel's
//! socket buffers are not included). The clients are raw sockets in this
//! process that allocate nothing after connecting.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::{Read, Write},
    net::TcpStream,
    sync::{
        atomic::{AtomicIsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::eventually;
use hubbub_mio::{Config, Hub, LoopServer};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the wrapper only adds to a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Open `n` WebSocket connections and read their `101`s.
fn open(addr: std::net::SocketAddr, n: usize, into: &mut Vec<TcpStream>) {
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(common::BOUND)).unwrap();
        stream.write_all(REQUEST).unwrap();
        let mut head = [0u8; 129]; // the whole 101 answer
        stream.read_exact(&mut head).unwrap();
        assert!(head.starts_with(b"HTTP/1.1 101"));
        into.push(stream);
    }
}

#[test]
fn an_idle_connection_costs_under_two_kib_of_heap() {
    let hub = Hub::builder().build();
    let handle = LoopServer::new(hub.clone(), Arc::new(Config::default()))
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let mut clients = Vec::with_capacity(1000);
    // Warm up: the loop's read buffer, first slab and ready-list growth.
    open(handle.local_addr(), 20, &mut clients);
    eventually("warm-up sessions", || hub.session_count() == 20);
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Ordering::SeqCst);
    const N: isize = 300;
    open(handle.local_addr(), N as usize, &mut clients);
    eventually("all sessions", || hub.session_count() == 320);
    std::thread::sleep(Duration::from_millis(100));
    let per = (LIVE.load(Ordering::SeqCst) - before) / N;
    println!("heap per idle connection: {per} bytes");
    assert!(per < 2048, "{per} bytes");
    drop(clients);
    handle.shutdown(Duration::from_secs(1));
}

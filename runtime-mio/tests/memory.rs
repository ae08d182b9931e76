//! What an idle connection costs the server in heap bytes, counted by a
//! global allocator (requested sizes; malloc's own overhead and the kernel's
//! socket buffers are not included). The clients are raw sockets in this
//! process that allocate nothing after connecting. The tests take turns
//! (one counter for the process). bench/README.md (measurement notes) has
//! the breakdown.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicIsize, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::eventually;
use hubbub_mio::{Config, Hub, LoopServer, Mio, Server, WebSocket};
use hubbub_ws::Runtime;

/// One test at a time: they share the counter.
static TURN: Mutex<()> = Mutex::new(());

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: `GlobalAlloc`'s contract is upheld by `System`, to which every
// method is forwarded with the caller's arguments unchanged: `alloc` returns
// what `System.alloc` returned for the same layout (a block fitting it, or
// null on failure), and `dealloc` hands `System` back a pointer it
// allocated with that same layout (below). `realloc` and `alloc_zeroed` are
// the trait's defaults, which are written in terms of these two. The only
// other thing done is a relaxed atomic add/sub on a static, which neither
// allocates (so cannot re-enter the allocator) nor unwinds (the contract
// forbids unwinding out of these methods).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: our caller guarantees what `GlobalAlloc::alloc` requires
        // of it (`layout` has a non-zero size); `System.alloc` requires the
        // same, and gets that very `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
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

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Open `n` WebSocket connections and read their `101`s.
fn open(addr: SocketAddr, n: usize, into: &mut Vec<TcpStream>) {
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

/// Heap bytes per connection held by the `n` connections opened by `open`,
/// after a warm-up of 20 (the loops' read buffers, first slab growth).
fn per_connection(mut open_and_wait: impl FnMut(usize, &mut Vec<TcpStream>)) -> isize {
    let mut clients = Vec::with_capacity(1000);
    open_and_wait(20, &mut clients);
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Ordering::SeqCst);
    const N: usize = 300;
    open_and_wait(N, &mut clients);
    // Let the sessions settle (handshake state freed once open).
    std::thread::sleep(Duration::from_millis(100));
    (LIVE.load(Ordering::SeqCst) - before) / N as isize
}

/// A hub session on the loop server: the task running `run_session`, the
/// realtime `Session` with the upgrade request, the hub's index entry and
/// the loop's slots.
#[test]
fn an_idle_hub_session_costs_under_1300_bytes_of_heap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hub = Hub::builder().build();
    let handle = LoopServer::new(hub.clone(), Arc::new(Config::default()))
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let per = per_connection(|n, clients| {
        let expected = hub.session_count() + n;
        open(handle.local_addr(), n, clients);
        eventually("sessions", || hub.session_count() == expected);
    });
    println!("heap per idle hub session: {per} bytes");
    // 1188 bytes when LoopServer ran its own accept loop; since it shares
    // the server loop of every runtime (hubbub_ws::serving), each session's
    // task also holds its count and abort slot (about 60 bytes).
    assert!(per < 1300, "{per} bytes");
    handle.shutdown(Duration::from_secs(1));
}

/// A plain WebSocket served by the adapter's `Server` on the default
/// loops, its handler waiting in `recv()`, with no idle or keep-alive timer
/// (what `echo --runtime mio` holds in the benchmark's idle row): the task,
/// one future holding the handshake and then the handler, and the loop's
/// slots; the handshake's timer is cancelled once open. (574 bytes in a
/// debug build with a separate waker, a boxed future and a source slot;
/// 432 with the task in one allocation and the socket registered for it.)
#[test]
fn an_idle_websocket_costs_under_512_bytes_of_heap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    let listener = Mio::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1024).unwrap();
    let addr = Mio::local_addr(&listener).unwrap();
    let no_timers = Config {
        idle_timeout: None,
        ping_interval: None,
        pong_timeout: None,
        ..Config::default()
    };
    Mio::spawn(
        Server::new(no_timers).serve(listener, |mut ws: WebSocket, _| async move {
            WAITING.fetch_add(1, Ordering::SeqCst);
            while ws.recv().await.is_some() {}
        }),
    );
    let per = per_connection(|n, clients| {
        let expected = WAITING.load(Ordering::SeqCst) + n;
        open(addr, n, clients);
        eventually("handlers", || WAITING.load(Ordering::SeqCst) == expected);
    });
    println!("heap per idle WebSocket: {per} bytes");
    assert!(per < 512, "{per} bytes");
}

/// The size of the future a closure returns (without calling it).
fn future_size<A, F, C: FnOnce(A) -> F>(_: &C) -> usize {
    size_of::<F>()
}

/// The futures an idle session's task is made of stay about the size of
/// its driver: the handshake's state (and on a shared port, the HTTP
/// phase's, several KiB) is boxed while it runs, not kept for the session's
/// life.
#[test]
fn session_futures_stay_small() {
    use hubbub_hub::run_session;
    use hubbub_mio::{
        driver::Driver,
        http::{serve_shared, HttpApp},
        LoopTimer, MioIo,
    };
    let driver = size_of::<Driver<MioIo, LoopTimer>>();
    let hub = Hub::builder().build();
    let app = HttpApp::builder(hub.clone()).build();
    let config = Arc::new(Config::default());
    let session =
        future_size(&|driver: Driver<MioIo, LoopTimer>| run_session(driver, hub.clone(), None));
    let shared = future_size(&|io: MioIo| {
        serve_shared(io, LoopTimer::default(), &app, config.clone(), None)
    });
    println!("driver {driver} B, run_session {session} B, serve_shared {shared} B");
    assert!(driver <= 480, "the driver grew to {driver} bytes");
    assert!(session <= driver + 160, "run_session: {session} bytes");
    assert!(shared <= session + 96, "serve_shared: {shared} bytes");
}

//! hubbub connections driven from an application's own `mio::Poll` loop,
//! beside the application's own sources: the shape the crate docs show.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use common::{clients, eventually, next, peer, send};
use hubbub_mio::{Config, Connections, Hub, Remote};
use mio::{net::TcpListener, Events, Interest, Poll, Token};

/// The application's own token, below hubbub's.
const LISTENER: Token = Token(0);
const HUBBUB: Token = Token(10);

/// What the application's loop reports back to the test.
struct Report {
    /// Events that `handle_event` declined (all on the listener).
    declined: usize,
    /// Connections still running when the loop ended.
    left: usize,
}

/// The application: its loop on its own thread; returns the address, the
/// loop's waker (mio allows one per poll: `Connections` has it), the stop
/// flag and the thread.
fn application(
    hub: Hub,
    config: Config,
) -> (
    SocketAddr,
    Remote,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    thread::JoinHandle<Report>,
) {
    let (ready, started) = mpsc::channel();
    let running = Arc::new(AtomicUsize::new(0));
    let published = running.clone();
    let thread = thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
        let mut connections =
            Connections::new(poll.registry(), HUBBUB, hub, Arc::new(config)).unwrap();
        let remote = connections.remote();
        ready
            .send((listener.local_addr().unwrap(), remote, stopping.clone()))
            .unwrap();
        let mut events = Events::with_capacity(64);
        let mut declined = 0;
        while !stopping.load(Ordering::SeqCst) {
            poll.poll(&mut events, connections.next_timeout()).unwrap();
            for event in &events {
                if connections.handle_event(event) {
                    continue;
                }
                assert_eq!(event.token(), LISTENER);
                declined += 1;
                while let Ok((stream, peer)) = listener.accept() {
                    connections.accept(poll.registry(), stream, peer).unwrap();
                }
            }
            connections.process();
            published.store(connections.len(), Ordering::SeqCst);
        }
        let left = connections.len();
        connections.abort_all();
        Report { declined, left }
    });
    let (addr, stop, stopping) = started.recv().unwrap();
    (addr, stop, stopping, running, thread)
}

#[test]
fn connections_run_inside_an_application_loop() {
    let closed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = closed.clone();
    let hub = Hub::builder()
        .on_message(|session, text| {
            session
                .send_text(format!("echo {text}"))
                .expect("reply to an open session");
        })
        .on_close(move |_, code, _| log.lock().unwrap().push(code.0))
        .build();
    let config = Config {
        // A deadline in the application's loop: its poll timeout.
        idle_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let (addr, stop, stopping, running, thread) = application(hub.clone(), config);
    clients().block_on(async {
        let mut a = peer(addr, "/").await;
        let mut b = peer(addr, "/").await;
        send(&mut a, "one").await;
        assert_eq!(next(&mut a).await, "echo one");
        // A broadcast from this thread reaches the loop through its waker.
        eventually("two sessions", || hub.session_count() == 2);
        let other = hub.clone();
        thread::spawn(move || assert_eq!(other.broadcast_text("news", None), 2))
            .join()
            .unwrap();
        assert_eq!(next(&mut a).await, "news");
        assert_eq!(next(&mut b).await, "news");
        // The idle timeout fires from the loop's timer heap.
        assert_eq!(next(&mut a).await, "close 1001");
        assert_eq!(next(&mut a).await, "end");
        assert_eq!(next(&mut b).await, "close 1001");
        assert_eq!(next(&mut b).await, "end");
    });
    eventually("both on_close", || closed.lock().unwrap().len() == 2);
    assert_eq!(*closed.lock().unwrap(), [1001, 1001]);
    // Both peers are gone: their connections end (the loop turns on EOF).
    eventually("connections end", || running.load(Ordering::SeqCst) == 0);
    stopping.store(true, Ordering::SeqCst);
    stop.wake();
    let report = thread.join().unwrap();
    assert!(
        report.declined >= 1,
        "the listener's events are the application's"
    );
    assert_eq!(report.left, 0);
}

#[test]
fn aborting_an_application_loop_ends_its_sessions() {
    let closed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = closed.clone();
    let hub = Hub::builder()
        .on_close(move |_, code, _| log.lock().unwrap().push(code.0))
        .build();
    let (addr, stop, stopping, _, thread) = application(hub.clone(), Config::default());
    let rt = clients();
    let _open = rt.block_on(async {
        let ws = peer(addr, "/").await;
        eventually("the session", || hub.session_count() == 1);
        ws
    });
    stopping.store(true, Ordering::SeqCst);
    stop.wake();
    let report = thread.join().unwrap();
    assert_eq!(report.left, 1);
    assert_eq!(hub.session_count(), 0);
    assert_eq!(*closed.lock().unwrap(), [1006]);
}

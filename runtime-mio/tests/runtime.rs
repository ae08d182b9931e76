//! `Mio` as a `Runtime`: where spawned tasks run, and sleeping on the
//! loops' timer heap. (The WebSocket behaviour on mio is the cross-runtime
//! suite's, `hubbub-tests` `on_mio`.)

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use hubbub_mio::Mio;
use hubbub_ws::Runtime;

const BOUND: Duration = Duration::from_secs(10);

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn tasks_run_on_the_default_loops_wherever_they_are_spawned() {
    let (tx, rx) = mpsc::channel();
    for _ in 0..4 {
        let tx = tx.clone();
        Mio::spawn(async move {
            let parent = thread_name();
            let tx2 = tx.clone();
            Mio::spawn(async move {
                // Ignored: the receiver is gone only once the test gave up
                // waiting (`recv_timeout` below fails it).
                let _ = tx2.send((parent, thread_name()));
            });
        });
    }
    for _ in 0..4 {
        let (parent, child) = rx.recv_timeout(BOUND).expect("a task ran");
        assert!(parent.starts_with("hubbub-mio-rt-"), "{parent}");
        assert!(child.starts_with("hubbub-mio-rt-"), "{child}");
    }
}

#[test]
fn sleep_waits_at_least_its_duration_on_a_loop_and_off_it() {
    // Off any loop: block_on's thread waits for a default loop's timer.
    let start = Instant::now();
    hubbub_mio::block_on(Mio::sleep(Duration::from_millis(30)));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(30), "{waited:?}");
    assert!(waited < BOUND, "{waited:?}");
    // On a loop.
    let (tx, rx) = mpsc::channel();
    Mio::spawn(async move {
        let start = Instant::now();
        Mio::sleep(Duration::from_millis(30)).await;
        // Ignored: the receiver is gone only once the test gave up waiting
        // (`recv_timeout` below fails it).
        let _ = tx.send(start.elapsed());
    });
    let waited = rx.recv_timeout(BOUND).expect("the sleep ended");
    assert!(waited >= Duration::from_millis(30), "{waited:?}");
}

#[test]
fn resolve_and_connect_errors_are_clear() {
    let addrs = hubbub_mio::block_on(Mio::resolve("localhost", 9)).unwrap();
    assert!(addrs.iter().all(|a| a.port() == 9) && !addrs.is_empty());
    // A closed loopback port: refused, not a hang.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let error = hubbub_mio::block_on(Mio::connect(addr)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

//! The built-in mio server end to end, against tokio-tungstenite clients:
//! echo, many connections, threads, hub callbacks and rooms driven from
//! other threads, timers, panics and the two-phase shutdown.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{bounded, clients, eventually, next, peer, send};
use futures_util::{SinkExt, StreamExt};
use hubbub_mio::{CloseCode, Config, Hub, LoopServer, LoopServerHandle};
use tokio_tungstenite::tungstenite::Message as TMessage;

/// Echoes; a send failing because the client has already gone (several
/// tests close or drop clients mid-stream) is ignored: each test asserts on
/// the echoes its clients receive.
fn echo_hub() -> Hub {
    Hub::builder()
        .on_message(|session, text| {
            let _ = session.send_text(text);
        })
        .on_binary(|session, data| {
            let _ = session.send_binary(data.clone());
        })
        .build()
}

fn start(hub: Hub, config: Config, threads: usize) -> LoopServerHandle {
    LoopServer::new(hub, Arc::new(config))
        .threads(threads)
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap()
}

/// The codes `on_close` saw.
type Codes = Arc<Mutex<Vec<u16>>>;

/// An `on_close` that logs its code, and the log.
fn closes() -> (Codes, impl Fn(&hubbub_mio::Session, CloseCode, &str)) {
    let seen = Codes::default();
    let log = seen.clone();
    (
        seen,
        move |_: &hubbub_mio::Session, code: CloseCode, _: &str| log.lock().unwrap().push(code.0),
    )
}

#[test]
fn echo_text_and_binary_in_order() {
    let config = Config {
        max_message_size: 1 << 20,
        ..Config::default()
    };
    let handle = start(echo_hub(), config, 1);
    clients().block_on(async {
        let mut ws = peer(handle.local_addr(), "/").await;
        for i in 0..50 {
            send(&mut ws, &format!("m{i}")).await;
        }
        for i in 0..50 {
            assert_eq!(next(&mut ws).await, format!("m{i}"));
        }
        // Larger than the 64 KiB read buffer, and binary.
        let big = vec![7u8; 300_000];
        bounded("send", ws.send(TMessage::binary(big.clone())))
            .await
            .unwrap();
        match bounded("echo", ws.next()).await {
            Some(Ok(TMessage::Binary(data))) => assert_eq!(data, big),
            other => panic!("{other:?}"),
        }
        bounded("close", ws.close(None)).await.unwrap();
        assert_eq!(next(&mut ws).await, "close 1005");
    });
    eventually("session ends", || handle.hub().session_count() == 0);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn many_connections_on_several_loops() {
    let handle = start(echo_hub(), Config::default(), 3);
    let addr = handle.local_addr();
    clients().block_on(async {
        let mut peers = Vec::new();
        for _ in 0..200 {
            peers.push(peer(addr, "/").await);
        }
        // The 101 leaves before the session registers.
        eventually("200 sessions", || handle.hub().session_count() == 200);
        for (i, ws) in peers.iter_mut().enumerate() {
            send(ws, &format!("hello {i}")).await;
        }
        for (i, ws) in peers.iter_mut().enumerate() {
            assert_eq!(next(ws).await, format!("hello {i}"));
        }
    });
    eventually("sessions end", || handle.hub().session_count() == 0);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn rooms_and_broadcast_from_another_thread() {
    let (seen, on_close) = closes();
    let hub = Hub::builder()
        .on_open(|session| {
            if let Some(hub) = session.hub() {
                hub.join(session, session.path().trim_start_matches('/'));
            }
        })
        .on_message(|session, text| {
            if let Some(hub) = session.hub() {
                hub.broadcast_text(text, Some(session));
            }
        })
        .on_close(on_close)
        .build();
    let handle = start(hub, Config::default(), 2);
    let addr = handle.local_addr();
    clients().block_on(async {
        let mut red = peer(addr, "/red").await;
        let mut blue = [peer(addr, "/blue").await, peer(addr, "/blue").await];
        eventually("three sessions", || handle.hub().session_count() == 3);
        // From this (non-loop) thread: through the loops' wakers.
        let hub = handle.hub().clone();
        std::thread::spawn(move || {
            assert_eq!(hub.room_text("blue", "to blue", None), 2);
            assert_eq!(hub.broadcast_text("to all", None), 3);
        })
        .join()
        .unwrap();
        for ws in &mut blue {
            assert_eq!(next(ws).await, "to blue");
            assert_eq!(next(ws).await, "to all");
        }
        assert_eq!(next(&mut red).await, "to all");
        // A message becomes a broadcast to the others, across loops.
        send(&mut red, "from red").await;
        for ws in &mut blue {
            assert_eq!(next(ws).await, "from red");
        }
        bounded("close", red.close(None)).await.unwrap();
        assert_eq!(next(&mut red).await, "close 1005");
        drop(red);
        // Blue is still open: only red's session has ended.
        eventually("red's on_close", || !seen.lock().unwrap().is_empty());
        assert_eq!(*seen.lock().unwrap(), [1005]);
        assert_eq!(handle.hub().members("blue").len(), 2);
    });
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn idle_timeout_closes_with_1001() {
    let (seen, on_close) = closes();
    let hub = Hub::builder().on_close(on_close).build();
    let config = Config {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let handle = start(hub, config, 1);
    clients().block_on(async {
        let started = Instant::now();
        let mut ws = peer(handle.local_addr(), "/").await;
        assert_eq!(next(&mut ws).await, "close 1001");
        let waited = started.elapsed();
        // tungstenite answers the close as it reads on.
        assert_eq!(next(&mut ws).await, "end");
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
    });
    eventually("on_close", || seen.lock().unwrap().len() == 1);
    assert_eq!(*seen.lock().unwrap(), [1001]);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn keepalive_pings_keep_a_quiet_peer_open() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(50)),
        pong_timeout: Some(Duration::from_millis(500)),
        ..Config::default()
    };
    let handle = start(echo_hub(), config, 1);
    clients().block_on(async {
        let mut ws = peer(handle.local_addr(), "/").await;
        // Several ping intervals pass; tungstenite answers the pings.
        let mut pings = 0;
        while pings < 3 {
            match bounded("a ping", ws.next()).await {
                Some(Ok(TMessage::Ping(_))) => pings += 1,
                other => panic!("{other:?}"),
            }
        }
        send(&mut ws, "still here").await;
        assert_eq!(next(&mut ws).await, "still here");
    });
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_panicking_callback_ends_only_its_connection() {
    let (seen, on_close) = closes();
    let hub = Hub::builder()
        .on_message(|session, text| {
            assert_ne!(text, "panic", "a test panic");
            session.send_text(text).expect("echo to an open session");
        })
        .on_close(on_close)
        .build();
    let handle = start(hub, Config::default(), 1);
    clients().block_on(async {
        let mut calm = peer(handle.local_addr(), "/").await;
        let mut wild = peer(handle.local_addr(), "/").await;
        send(&mut wild, "panic").await;
        assert_eq!(next(&mut wild).await, "end");
        send(&mut calm, "fine").await;
        assert_eq!(next(&mut calm).await, "fine");
    });
    eventually("on_close", || seen.lock().unwrap().len() == 1);
    assert_eq!(*seen.lock().unwrap(), [1006]);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn shutdown_closes_with_1001_then_drops_what_is_left() {
    let (seen, on_close) = closes();
    let hub = Hub::builder().on_close(on_close).build();
    let handle = start(hub, Config::default(), 2);
    let addr = handle.local_addr();
    // A raw client that completes the handshake, then never reads again.
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    stuck.set_read_timeout(Some(common::BOUND)).unwrap();
    let mut head = [0u8; 12];
    stuck.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let rt = clients();
    let mut polite = rt.block_on(async {
        let polite = [peer(addr, "/").await, peer(addr, "/").await];
        eventually("three sessions", || handle.hub().session_count() == 3);
        polite
    });
    let hub = handle.hub().clone();
    // The polite peers answer the close while shutdown waits for them; the
    // stuck one does not, and is dropped when the grace period ends.
    let started = Instant::now();
    let shutting = std::thread::spawn(move || handle.shutdown(Duration::from_millis(300)));
    rt.block_on(async {
        for ws in &mut polite {
            assert_eq!(next(ws).await, "close 1001");
            assert_eq!(next(ws).await, "end"); // the answer is sent
        }
    });
    shutting.join().unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(hub.session_count(), 0);
    let mut codes = seen.lock().unwrap().clone();
    codes.sort();
    assert_eq!(codes, [1001, 1001, 1006]);
    // The listener is gone.
    assert!(TcpStream::connect(addr).is_err());
    drop(stuck);
}

#[test]
fn shutdown_without_sessions_is_prompt() {
    let handle = start(echo_hub(), Config::default(), 4);
    let started = Instant::now();
    handle.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A plain WebSocket echo over the driver, as `LoopServer::handler` runs it.
async fn plain_echo(mut driver: hubbub_mio::MioDriver) {
    use std::task::Poll;
    if driver
        .open(|_| Ok(hubbub_mio::Accept::new()))
        .await
        .is_err()
    {
        return;
    }
    std::future::poll_fn(|cx| loop {
        match driver.poll_event(cx) {
            Poll::Ready(Ok(Some(hubbub_mio::Event::Message(message)))) => {
                // Ignored: a closing connection refuses it; the client
                // asserts on the echoes it gets.
                let _ = driver.conn().send(message);
            }
            Poll::Ready(Ok(None)) => return Poll::Ready(()),
            Poll::Ready(_) => {}
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

#[test]
fn a_handler_serves_plain_websockets_without_the_hub() {
    let hub = Hub::builder().build();
    let handle = LoopServer::new(hub.clone(), Arc::new(Config::default()))
        .handler(plain_echo)
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    clients().block_on(async {
        let mut ws = peer(handle.local_addr(), "/any/path").await;
        for i in 0..20 {
            send(&mut ws, &format!("p{i}")).await;
        }
        for i in 0..20 {
            assert_eq!(next(&mut ws).await, format!("p{i}"));
        }
        // No hub session was made for it.
        assert_eq!(hub.session_count(), 0);
        bounded("close", ws.close(None)).await.unwrap();
        assert_eq!(next(&mut ws).await, "close 1005");
    });
    let started = Instant::now();
    handle.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

/// Counts the handler futures dropped.
struct Dropped(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Each loop serves the shared server on its own thread, and everything
/// stays there: the listener, the accept loop and the connections (the
/// runtime's default loops are never started in this test binary). A
/// handler's connection still running after the grace period is dropped
/// (phase one asks nothing of it), and the listener is gone.
#[test]
fn a_handlers_connections_are_dropped_after_the_grace_period() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let handle = LoopServer::new(Hub::builder().build(), Arc::new(Config::default()))
        .threads(2)
        .handler(move |driver| {
            let guard = Dropped(count.clone());
            async move {
                let _guard = guard;
                plain_echo(driver).await;
            }
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let addr = handle.local_addr();
    let names = thread_names();
    for n in 0..2 {
        assert!(names.contains(&format!("hubbub-mio-{n}")), "{names:?}");
    }
    let rt = clients();
    let mut ws = rt.block_on(async {
        let mut ws = peer(addr, "/").await;
        send(&mut ws, "hi").await;
        assert_eq!(next(&mut ws).await, "hi");
        ws
    });
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n.starts_with("hubbub-mio-rt")),
        "{names:?}"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    let started = Instant::now();
    handle.shutdown(Duration::from_millis(300));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    // Dropped without a close frame; nothing listens any more.
    rt.block_on(async { assert_eq!(next(&mut ws).await, "end") });
    assert!(TcpStream::connect(addr).is_err());
}

/// Dropping the handle starts the shutdown without waiting for it: the
/// sessions get close 1001, end, and the listener closes.
#[test]
fn dropping_the_handle_shuts_the_server_down() {
    let (seen, on_close) = closes();
    let hub = Hub::builder().on_close(on_close).build();
    let handle = start(hub.clone(), Config::default(), 2);
    let addr = handle.local_addr();
    clients().block_on(async {
        let mut ws = peer(addr, "/").await;
        eventually("the session", || hub.session_count() == 1);
        drop(handle);
        assert_eq!(next(&mut ws).await, "close 1001");
        assert_eq!(next(&mut ws).await, "end");
    });
    eventually("on_close", || seen.lock().unwrap().len() == 1);
    assert_eq!(*seen.lock().unwrap(), [1001]);
    assert_eq!(hub.session_count(), 0);
    eventually("the listener closes", || TcpStream::connect(addr).is_err());
}

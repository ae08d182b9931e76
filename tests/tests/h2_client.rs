//! The client side of WebSockets over HTTP/2 (RFC 8441) on every runtime:
//! our client with an `H2Pool` against our server (`http2::start`):
//! several WebSockets to one origin on one connection, echo with a large
//! message and permessage-deflate, the fallbacks to HTTP/1.1 (a server
//! without ALPN h2; an h2 server without extended CONNECT), a refused
//! CONNECT, and the hub's reconnecting `Client` over h2. `hypercorn_echo`
//! (ignored) runs against Python's hypercorn: scripts/interop-python.sh.
//!
//! `cargo test -p hubbub-tests --test h2_client`

mod common;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use common::{
    bounded,
    certs::{ServerFiles, TestPki},
    payload, until,
};
use hubbub_core::DeflateConfig;
use hubbub_hub::{http2, HubLimits, Origins};
use hubbub_tests::{cross_runtime, prelude::*, Tokio};
use hubbub_ws::{
    h2::{offer_h2, H2Config, H2Pool},
    tls::TlsAcceptor,
};

cross_runtime!(
    websockets_to_one_origin_share_one_connection,
    a_full_connection_opens_another,
    falls_back_to_http1_without_alpn_h2,
    falls_back_to_http1_without_extended_connect,
    a_refused_connect_is_the_error,
    the_reconnecting_client_reconnects_over_h2,
    the_callback_client_over_h2,
);

fn config() -> Config {
    Config {
        max_message_size: 4 << 20,
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    }
}

/// A client trusting `pki`'s CA, with `pool`.
fn client(pki: &TestPki, pool: &H2Pool) -> ClientConfig {
    ClientConfig {
        config: Arc::new(config()),
        ..ClientConfig::default()
    }
    .trust_pem_ca(&pki.ca)
    .unwrap()
    .with_h2(pool.clone())
}

fn wss(addr: SocketAddr, path: &str) -> String {
    format!("wss://localhost:{}{path}", addr.port())
}

/// A hub echoing text and binary, and the peers its sessions came from.
fn echo_hub(peers: Arc<Mutex<Vec<SocketAddr>>>) -> Hub {
    Hub::builder()
        .on_open(move |session| {
            if let Some(peer) = session.peer_addr() {
                peers.lock().unwrap().push(peer);
            }
        })
        .on_message(|session, text| {
            let _ = session.send_text(text);
        })
        .on_binary(|session, data| {
            let _ = session.send_binary(Bytes::copy_from_slice(data));
        })
        .build()
}

fn h2_acceptor(files: &ServerFiles) -> TlsAcceptor {
    let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap();
    acceptor.reload(offer_h2(&acceptor.config()));
    acceptor
}

/// `hub` served by `http2::start` (ALPN h2 and http/1.1) at `addr`.
async fn h2_hub<R: Rt>(files: &ServerFiles, hub: Hub, addr: &str) -> HubHandle {
    let server = HubServer::<R>::bind(addr, hub, Arc::new(config()))
        .await
        .unwrap()
        .tls(h2_acceptor(files));
    http2::start(server, H2Config::default()).unwrap()
}

async fn echo<R: Rt>(ws: &mut RuntimeWebSocket<R>, message: Message) {
    ws.send(message.clone()).await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, message);
}

async fn close<R: Rt>(mut ws: RuntimeWebSocket<R>) {
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    bounded("close", async { while ws.recv().await.is_some() {} }).await;
}

async fn websockets_to_one_origin_share_one_connection<R: Rt>() {
    let pki = TestPki::new("h2-share");
    let peers = Arc::new(Mutex::new(Vec::new()));
    let hub = echo_hub(peers.clone());
    let handle = h2_hub::<R>(&pki.server("server"), hub.clone(), "127.0.0.1:0").await;
    let pool = H2Pool::new();
    let config = client(&pki, &pool);
    let url = wss(handle.local_addr(), "/");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        // Clones of the configuration share the pool.
        let (ws, response) = bounded(
            "connect",
            hubbub_ws::connect_with::<R>(&url, &config.clone()),
        )
        .await
        .unwrap();
        assert!(ws.get_ref().is_h2());
        assert!(ws.get_ref().stream().is_none());
        assert_eq!(response.status(), 200);
        assert_eq!(response.extensions()[0].name, "permessage-deflate");
        sockets.push(ws);
    }
    assert_eq!(pool.connections(), 1);
    for (i, ws) in sockets.iter_mut().enumerate() {
        echo::<R>(ws, Message::text(format!("hello {i}"))).await;
    }
    // 200 KB, more than a stream's window: flow control both ways.
    let big = Message::binary(payload(200_000, 7));
    echo::<R>(&mut sockets[1], big).await;
    // Compressible: permessage-deflate at work on an h2 stream.
    echo::<R>(&mut sockets[2], Message::text("abc".repeat(50_000))).await;
    assert_eq!(hub.metrics().h2_sessions.get(), 3);
    let ports: BTreeSet<u16> = peers.lock().unwrap().iter().map(|p| p.port()).collect();
    assert_eq!(ports.len(), 1, "one TCP connection: {ports:?}");
    // Closing one leaves the others on their connection.
    let first = sockets.remove(0);
    close::<R>(first).await;
    echo::<R>(&mut sockets[0], Message::text("still here")).await;
    for ws in sockets.drain(..) {
        close::<R>(ws).await;
    }
    // The last one gone, the pool lets go of the connection.
    assert_eq!(pool.connections(), 0);
    // A later connect opens a new one.
    let (mut ws, _) = bounded("connect", hubbub_ws::connect_with::<R>(&url, &config))
        .await
        .unwrap();
    echo::<R>(&mut ws, Message::text("again")).await;
    assert_eq!(pool.connections(), 1);
    assert_eq!(hub.metrics().h2_sessions.get(), 4);
    let ports: BTreeSet<u16> = peers.lock().unwrap().iter().map(|p| p.port()).collect();
    assert_eq!(ports.len(), 2, "a second connection: {ports:?}");
    close::<R>(ws).await;
    handle.shutdown(Duration::from_secs(1)).await;
}

/// A pool of 2 WebSockets per connection: 5 concurrent connects make 3
/// connections (the server sees 3 peer ports), none more.
async fn a_full_connection_opens_another<R: Rt>() {
    let pki = TestPki::new("h2-full");
    let peers = Arc::new(Mutex::new(Vec::new()));
    let hub = echo_hub(peers.clone());
    let handle = h2_hub::<R>(&pki.server("server"), hub.clone(), "127.0.0.1:0").await;
    let pool = H2Pool::new().max_streams(2);
    let config = client(&pki, &pool);
    let url = wss(handle.local_addr(), "/");
    let connects = (0..5).map(|_| hubbub_ws::connect_with::<R>(&url, &config));
    let opened = bounded("connects", futures_util::future::join_all(connects)).await;
    let mut sockets = Vec::new();
    for result in opened {
        let (ws, _) = result.unwrap();
        assert!(ws.get_ref().is_h2());
        sockets.push(ws);
    }
    assert_eq!(pool.connections(), 3);
    for (i, ws) in sockets.iter_mut().enumerate() {
        echo::<R>(ws, Message::text(format!("hello {i}"))).await;
    }
    let ports: BTreeSet<u16> = peers.lock().unwrap().iter().map(|p| p.port()).collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
    assert_eq!(hub.metrics().h2_sessions.get(), 5);
    for ws in sockets {
        close::<R>(ws).await;
    }
    assert_eq!(pool.connections(), 0);
    handle.shutdown(Duration::from_secs(1)).await;
}

/// A TLS hub without ALPN h2 (HTTP/1.1 only): the upgrade goes on over
/// the same TLS stream.
async fn falls_back_to_http1_without_alpn_h2<R: Rt>() {
    let pki = TestPki::new("h2-alpn");
    let files = pki.server("server");
    let hub = echo_hub(Arc::new(Mutex::new(Vec::new())));
    let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap();
    let handle = HubServer::<R>::bind("127.0.0.1:0", hub.clone(), Arc::new(config()))
        .await
        .unwrap()
        .tls(acceptor)
        .start()
        .unwrap();
    let pool = H2Pool::new();
    let url = wss(handle.local_addr(), "/");
    let (mut ws, response) = bounded(
        "connect",
        hubbub_ws::connect_with::<R>(&url, &client(&pki, &pool)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    assert!(ws.get_ref().tls().is_some() && !ws.get_ref().is_h2());
    let alpn = ws.get_ref().tls().unwrap().alpn_protocol();
    assert_eq!(alpn, Some(&b"http/1.1"[..]));
    echo::<R>(&mut ws, Message::text("over HTTP/1.1")).await;
    assert_eq!(pool.connections(), 0);
    assert!(!pool.is_http1_only("localhost", handle.local_addr().port()));
    assert_eq!(hub.metrics().h2_sessions.get(), 0);
    close::<R>(ws).await;
    handle.shutdown(Duration::from_secs(1)).await;
}

/// An h2 server (the `h2` crate's, in the test) that does not announce
/// extended CONNECT: the origin is remembered as HTTP/1.1-only and the
/// WebSocket opens over a new connection offering `http/1.1` only. The
/// same TLS port serves HTTP/1.1 upgrades with our server's code.
async fn falls_back_to_http1_without_extended_connect<R: Rt>() {
    let pki = TestPki::new("h2-noconnect");
    let files = pki.server("server");
    let acceptor = h2_acceptor(&files);
    let (listener, addr) = listen::<R>();
    let h2_connections = Arc::new(AtomicUsize::new(0));
    let counted = h2_connections.clone();
    let server_config = Arc::new(config());
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((stream, _)) = R::accept(&listener).await else {
                return;
            };
            let Some(tls) = hubbub_ws::serving::handshake::<R>(&acceptor, stream).await else {
                continue;
            };
            if http2::is_h2(&tls) {
                counted.fetch_add(1, Ordering::SeqCst);
                // SETTINGS without ENABLE_CONNECT_PROTOCOL; no request answered.
                R::spawn(async move {
                    let io = hubbub_ws::h2::TransportIo(tls);
                    if let Ok(mut connection) = h2::server::handshake(io).await {
                        while let Some(Ok((_, mut respond))) = connection.accept().await {
                            let response = http::Response::builder().status(400).body(()).unwrap();
                            let _ = respond.send_response(response, true);
                        }
                    }
                });
            } else {
                let config = server_config.clone();
                R::spawn(async move {
                    let timer = R::Timer::default();
                    let decide = |_: &Request| Ok(Accept::new());
                    if let Ok(mut ws) = hubbub_ws::accept_with(tls, timer, config, decide).await {
                        while let Some(Ok(message)) = ws.recv().await {
                            let _ = ws.send(message).await;
                        }
                    }
                });
            }
        }
    });
    let pool = H2Pool::new();
    let config = client(&pki, &pool);
    let url = wss(addr, "/");
    for round in 0..2 {
        let (mut ws, response) = bounded("connect", hubbub_ws::connect_with::<R>(&url, &config))
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        assert!(!ws.get_ref().is_h2());
        let alpn = ws.get_ref().tls().unwrap().alpn_protocol();
        assert_eq!(alpn, Some(&b"http/1.1"[..]));
        echo::<R>(&mut ws, Message::text(format!("round {round}"))).await;
        assert!(pool.is_http1_only("localhost", addr.port()));
        close::<R>(ws).await;
    }
    // Only the first connect tried h2.
    assert_eq!(h2_connections.load(Ordering::SeqCst), 1);
    assert_eq!(pool.connections(), 0);
}

/// A CONNECT the hub refuses (an origin not on its list) fails as a
/// refused HTTP/1.1 upgrade does; the connection stays usable.
async fn a_refused_connect_is_the_error<R: Rt>() {
    let pki = TestPki::new("h2-refused");
    let hub = Hub::builder()
        .limits(HubLimits {
            origins: Origins::parse("https://chat.example").unwrap(),
            ..HubLimits::default()
        })
        .on_message(|session, text| {
            let _ = session.send_text(text);
        })
        .build();
    let handle = h2_hub::<R>(&pki.server("server"), hub.clone(), "127.0.0.1:0").await;
    let pool = H2Pool::new();
    let config = client(&pki, &pool);
    let url = wss(handle.local_addr(), "/");
    let request = |origin: &str| {
        ClientRequest::from_url(&url)
            .unwrap()
            .header("Origin", origin)
    };
    let error = bounded(
        "refused",
        hubbub_ws::connect_with::<R>(request("https://evil.example"), &config),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::Status(403))),
        "{error:?}"
    );
    let (mut ws, _) = bounded(
        "allowed",
        hubbub_ws::connect_with::<R>(request("https://chat.example"), &config),
    )
    .await
    .unwrap();
    assert!(ws.get_ref().is_h2());
    echo::<R>(&mut ws, Message::text("allowed")).await;
    assert_eq!(hub.metrics().h2_sessions.get(), 1);
    assert_eq!(
        hub.metrics().handshakes_rejected.snapshot().get(&403),
        Some(&1)
    );
    close::<R>(ws).await;
    handle.shutdown(Duration::from_secs(1)).await;
}

/// The hub's reconnecting `Client` with an `H2Pool`: over h2, and again
/// over h2 after the server restarts on the same port.
async fn the_reconnecting_client_reconnects_over_h2<R: Rt>() {
    let pki = TestPki::new("h2-reconnect");
    let files = pki.server("server");
    let peers = Arc::new(Mutex::new(Vec::new()));
    let hub = echo_hub(peers.clone());
    let handle = h2_hub::<R>(&files, hub.clone(), "127.0.0.1:0").await;
    let addr = handle.local_addr();
    let pool = H2Pool::new();
    let config = ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts: None,
            jitter: 0.5,
        }),
        connect_timeout: Some(Duration::from_secs(2)),
        ..client(&pki, &pool)
    };
    let mut client = bounded("connect", Client::<R>::connect(&wss(addr, "/"), config))
        .await
        .unwrap();
    client.send("first life").await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(got)))) => assert_eq!(got, "first life"),
        other => panic!("expected the echo, got {other:?}"),
    }
    assert_eq!(hub.metrics().h2_sessions.get(), 1);
    assert_eq!(pool.connections(), 1);

    handle.shutdown(Duration::from_secs(1)).await;
    // The session is closed with 1001 (an I/O error may come first: the
    // server may end the connection before the client's close reply is
    // written to the stream).
    let mut disconnected = None;
    for _ in 0..3 {
        match bounded("disconnect", client.next_event()).await {
            Some(Ok(ClientEvent::Disconnected(closed))) => {
                disconnected = closed;
                break;
            }
            Some(Err(Error::Io(_))) => {}
            other => panic!("expected a disconnection, got {other:?}"),
        }
    }
    assert_eq!(
        disconnected.map(|closed| closed.code),
        Some(CloseCode::GOING_AWAY)
    );
    let hub2 = echo_hub(peers.clone());
    let restart = {
        let hub2 = hub2.clone();
        let addr = addr.to_string();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            h2_hub::<R>(&files, hub2, &addr).await
        }
    };
    let restart = tokio::spawn(restart);
    match bounded("reconnect", client.next_event()).await {
        Some(Ok(ClientEvent::Reconnected { .. })) => {}
        other => panic!("expected a reconnection, got {other:?}"),
    }
    let handle = restart.await.unwrap();
    client.send("second life").await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(got)))) => assert_eq!(got, "second life"),
        other => panic!("expected the echo, got {other:?}"),
    }
    assert_eq!(hub2.metrics().h2_sessions.get(), 1);
    until("one pooled connection", || pool.connections() == 1).await;
    let closed = bounded("close", client.close(CloseCode::NORMAL, ""))
        .await
        .unwrap()
        .unwrap();
    assert!(closed.clean);
    handle.shutdown(Duration::from_secs(1)).await;
}

/// The hub's callback client (`Client::builder`) with an `H2Pool`: its
/// session runs over an HTTP/2 stream and knows the server's address.
async fn the_callback_client_over_h2<R: Rt>() {
    let pki = TestPki::new("h2-callback");
    let hub = echo_hub(Arc::new(Mutex::new(Vec::new())));
    let handle = h2_hub::<R>(&pki.server("server"), hub.clone(), "127.0.0.1:0").await;
    let pool = H2Pool::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = bounded(
        "connect",
        Client::<R>::builder(wss(handle.local_addr(), "/"))
            .config(client(&pki, &pool))
            .on_message(move |_, text| {
                let _ = tx.send(text.to_owned());
            })
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(client.peer_addr(), Some(handle.local_addr()));
    client.send_text("called back").unwrap();
    assert_eq!(bounded("echo", rx.recv()).await.unwrap(), "called back");
    assert_eq!(hub.metrics().h2_sessions.get(), 1);
    assert_eq!(pool.connections(), 1);
    client.close(CloseCode::NORMAL, "");
    bounded("closed", client.closed()).await;
    until("the pool let go", || pool.connections() == 0).await;
    handle.shutdown(Duration::from_secs(1)).await;
}

/// Python's hypercorn (an independent HTTP/2 server with RFC 8441) with
/// interop/python/h2_echo_asgi.py, over TLS: our client opens several
/// WebSockets on one connection and echoes. `HUBBUB_HYPERCORN_ADDR` is its
/// `127.0.0.1:port`, `HUBBUB_HYPERCORN_CA` the CA that signed its
/// certificate (scripts/interop-python.sh sets both).
#[test]
#[ignore = "needs hypercorn: run scripts/interop-python.sh"]
fn hypercorn_echo() {
    hubbub_tests::run(async {
        let addr = std::env::var("HUBBUB_HYPERCORN_ADDR").expect("HUBBUB_HYPERCORN_ADDR");
        let ca = std::env::var("HUBBUB_HYPERCORN_CA").expect("HUBBUB_HYPERCORN_CA");
        let pool = H2Pool::new();
        let config = ClientConfig {
            config: Arc::new(config()),
            ..ClientConfig::default()
        }
        .trust_pem_ca(ca)
        .unwrap()
        .with_h2(pool.clone());
        let url = format!("wss://localhost:{}/echo", addr.rsplit(':').next().unwrap());
        let mut sockets = Vec::new();
        for i in 0..3 {
            let (mut ws, response) =
                bounded("connect", hubbub_ws::connect_with::<Tokio>(&url, &config))
                    .await
                    .unwrap();
            assert_eq!(response.status(), 200, "an extended CONNECT answered 200");
            assert!(ws.get_ref().is_h2());
            echo::<Tokio>(&mut ws, Message::text(format!("hello {i}"))).await;
            sockets.push(ws);
        }
        assert_eq!(pool.connections(), 1);
        echo::<Tokio>(&mut sockets[0], Message::binary(payload(100_000, 3))).await;
        for ws in sockets {
            close::<Tokio>(ws).await;
        }
        assert_eq!(pool.connections(), 0);
    });
}

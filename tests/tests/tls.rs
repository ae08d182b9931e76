//! TLS (`wss://`, `https://`) on every runtime, with certificates made by
//! rcgen in the tests: our client and our servers (`Server`, `HubServer`,
//! HTTP and WebSocket on one port), tokio-tungstenite with rustls as an
//! independent client, certificate reload, and bad input (plaintext to the
//! TLS port, a truncated ClientHello, expired and wrong-host certificates,
//! missing or bad PEM files).

mod common;

use std::{
    io::{Read, Write},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use common::{
    bounded,
    certs::{ServerFiles, TestPki},
    echo,
    http::https_request,
    payload,
};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::DeflateConfig;
use hubbub_http::HttpApp;
use hubbub_tests::prelude::*;
use hubbub_ws::tls::{client_config_with_ca_file, TlsAcceptor};
use serde_json::json;
use tokio::sync::mpsc;

fn acceptor(files: &ServerFiles) -> TlsAcceptor {
    TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap()
}

fn trusting(pki: &TestPki, config: Config) -> ClientConfig {
    ClientConfig {
        config: Arc::new(config),
        ..ClientConfig::default()
    }
    .trust_pem_ca(&pki.ca)
    .unwrap()
}

fn wss(addr: SocketAddr) -> String {
    format!("wss://127.0.0.1:{}/", addr.port())
}

/// Our TLS echo server on runtime `R`.
fn tls_echo_server<R: Rt>(acceptor: TlsAcceptor, config: Config) -> SocketAddr {
    let (listener, addr) = listen::<R>();
    let (tx, _rx) = mpsc::unbounded_channel();
    let serve = Server::<R>::new(config)
        .tls(acceptor)
        .serve(listener, move |ws, _| echo::<R>(ws, tx.clone()));
    tokio::spawn(serve);
    addr
}

async fn round_trip<R: Rt>(ws: &mut RuntimeWebSocket<R>, message: Message) {
    ws.send(message.clone()).await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, message);
}

async fn wss_echo_with_deflate<R: Rt>() {
    let pki = TestPki::new("echo");
    let config = Config {
        max_message_size: 16 << 20,
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };
    let addr = tls_echo_server::<R>(acceptor(&pki.server("server")), config.clone());
    let client = trusting(&pki, config);
    let mut ws = bounded("connect", connect_with::<R>(wss(addr), &client))
        .await
        .unwrap();
    assert!(ws.get_ref().is_tls());
    let tls = ws.get_ref().tls().unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(ws
        .extensions()
        .unwrap_or_default()
        .starts_with("permessage-deflate"));
    round_trip::<R>(&mut ws, Message::text("hello over TLS")).await;
    round_trip::<R>(&mut ws, Message::Binary(Bytes::from(payload(1000, 7)))).await;
    // Larger than a TLS record and than rustls's buffer limit.
    round_trip::<R>(&mut ws, Message::Binary(Bytes::from(payload(3 << 20, 1)))).await;
    round_trip::<R>(&mut ws, Message::Text("x".repeat(200_000))).await;
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    while bounded("close", ws.recv()).await.is_some() {}
    let closed = ws.closed().unwrap();
    assert!(closed.clean, "{closed:?}");
}

async fn tungstenite_rustls_client<R: Rt>() {
    let pki = TestPki::new("tungstenite");
    let addr = tls_echo_server::<R>(acceptor(&pki.server("server")), Config::default());
    let tls = client_config_with_ca_file(&pki.ca).unwrap();
    let (mut ws, _) = bounded(
        "tungstenite connect",
        tokio_tungstenite::connect_async_tls_with_config(
            wss(addr),
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        ),
    )
    .await
    .unwrap();
    use tokio_tungstenite::tungstenite::Message as T;
    for message in [
        T::text("hi from tungstenite"),
        T::binary(payload(100_000, 3)),
    ] {
        ws.send(message.clone()).await.unwrap();
        let echoed = bounded("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(None).await.unwrap();
}

/// A hub that echoes text.
fn echo_hub() -> Hub {
    Hub::builder()
        .on_message(|session, text| {
            let _ = session.send_text(format!("echo: {text}"));
        })
        .build()
}

async fn hub_server_and_reconnecting_client_over_tls<R: Rt>() {
    let pki = TestPki::new("hub");
    let server = HubServer::<R>::bind("127.0.0.1:0", echo_hub(), Arc::new(Config::default()))
        .await
        .unwrap()
        .tls(acceptor(&pki.server("server")))
        .start()
        .unwrap();
    let url = wss(server.local_addr());
    let config = ClientConfig {
        reconnect: Some(Reconnect::default()),
        ..trusting(&pki, Config::default())
    };
    // The stream client.
    let mut client = Client::<R>::connect(&url, config.clone()).await.unwrap();
    client.send(Message::text("one")).await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(t)))) => assert_eq!(t, "echo: one"),
        other => panic!("{other:?}"),
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
    // The callback client.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = Client::<R>::builder(url.as_str())
        .config(config)
        .on_message(move |_, text| {
            let _ = tx.send(text.to_owned());
        })
        .connect()
        .await
        .unwrap();
    handle.send_text("two").unwrap();
    assert_eq!(bounded("echo", rx.recv()).await.unwrap(), "echo: two");
    handle.close(CloseCode::NORMAL, "");
    server.shutdown(Duration::from_secs(1)).await;
}

/// A TLS hub server for `echo_hub` on `addr`.
async fn tls_hub<R: Rt>(addr: SocketAddr, acceptor: TlsAcceptor) -> HubHandle {
    HubServer::<R>::bind(addr, echo_hub(), Arc::new(Config::default()))
        .await
        .unwrap()
        .tls(acceptor)
        .start()
        .unwrap()
}

async fn reconnecting_client_over_tls_after_a_restart<R: Rt>() {
    let pki = TestPki::new("restart");
    let acceptor = acceptor(&pki.server("server"));
    let server = tls_hub::<R>("127.0.0.1:0".parse().unwrap(), acceptor.clone()).await;
    let addr = server.local_addr();
    let config = ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..Reconnect::default()
        }),
        ..trusting(&pki, Config::default())
    };
    let mut client = bounded("connect", Client::<R>::connect(&wss(addr), config))
        .await
        .unwrap();
    client.send(Message::text("first")).await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(t)))) => assert_eq!(t, "echo: first"),
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
    match bounded("disconnect", client.next_event()).await {
        Some(Ok(ClientEvent::Disconnected(_))) => {}
        other => panic!("expected a disconnection, got {other:?}"),
    }
    let _server = tls_hub::<R>(addr, acceptor).await;
    match bounded("reconnect", client.next_event()).await {
        Some(Ok(ClientEvent::Reconnected { .. })) => {}
        other => panic!("expected a reconnection, got {other:?}"),
    }
    client.send(Message::text("second")).await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(t)))) => assert_eq!(t, "echo: second"),
        other => panic!("{other:?}"),
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
}

async fn http_and_websocket_on_one_tls_port<R: Rt>() {
    let pki = TestPki::new("shared");
    let hub = echo_hub();
    let app = HttpApp::builder(hub.clone()).build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
        .await
        .unwrap()
        .tls(acceptor(&pki.server("server")));
    let handle = app.start_shared(server).unwrap();
    let addr = handle.local_addr();
    let ca = pki.ca.clone();
    let answer = tokio::task::spawn_blocking(move || {
        https_request(
            addr,
            &ca,
            "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let client = trusting(&pki, Config::default());
    let url = format!("wss://localhost:{}/", addr.port());
    let mut ws = bounded("connect", connect_with::<R>(url, &client))
        .await
        .unwrap();
    ws.send(Message::text("shared")).await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("echo: shared"));
    handle.shutdown(Duration::from_secs(1)).await;
}

async fn reload_keeps_open_connections_and_serves_the_new_certificate<R: Rt>() {
    let (old_ca, new_ca) = (TestPki::new("old"), TestPki::new("new"));
    let files = old_ca.server("server");
    let acceptor = acceptor(&files);
    let addr = tls_echo_server::<R>(acceptor.clone(), Config::default());
    let mut a = connect_with::<R>(wss(addr), &trusting(&old_ca, Config::default()))
        .await
        .unwrap();
    round_trip::<R>(&mut a, Message::text("before")).await;

    // Renew the files with a certificate of another CA, and reload.
    let renewed = new_ca.server("server");
    std::fs::copy(&renewed.cert, &files.cert).unwrap();
    std::fs::copy(&renewed.key, &files.key).unwrap();
    acceptor.reload_from_files().unwrap();

    round_trip::<R>(&mut a, Message::text("after, on the old session")).await;
    let refused = connect_with::<R>(wss(addr), &trusting(&old_ca, Config::default()))
        .await
        .err()
        .unwrap();
    assert!(matches!(refused, Error::Tls(_)), "{refused}");
    let mut b = connect_with::<R>(wss(addr), &trusting(&new_ca, Config::default()))
        .await
        .unwrap();
    round_trip::<R>(&mut b, Message::text("new session")).await;

    // A bad file on reload: named, and the certificate in use stays.
    std::fs::write(&files.cert, "not a certificate").unwrap();
    let error = acceptor.reload_from_files().unwrap_err().to_string();
    assert!(error.contains(&files.cert.display().to_string()), "{error}");
    let mut c = connect_with::<R>(wss(addr), &trusting(&new_ca, Config::default()))
        .await
        .unwrap();
    round_trip::<R>(&mut c, Message::text("still the new one")).await;
}

/// Read from `stream` until the server closes it (bounded).
async fn closed_by_server(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    bounded("the server closes", async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

async fn plaintext_to_the_tls_port_is_closed<R: Rt>() {
    use tokio::io::AsyncWriteExt;
    let pki = TestPki::new("plaintext");
    let acceptor = acceptor(&pki.server("server"));
    let addr = tls_echo_server::<R>(acceptor.clone(), Config::default());
    // A good connection, open throughout.
    let mut good = connect_with::<R>(wss(addr), &trusting(&pki, Config::default()))
        .await
        .unwrap();
    for request in [
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(request.as_bytes()).await.unwrap();
        closed_by_server(&mut raw).await;
        round_trip::<R>(&mut good, Message::text("unaffected")).await;
    }
    assert!(acceptor.failed_handshakes() >= 2);
}

async fn truncated_client_hello_is_dropped_at_the_deadline<R: Rt>() {
    use tokio::io::AsyncWriteExt;
    let pki = TestPki::new("truncated");
    let acceptor = acceptor(&pki.server("server")).handshake_timeout(Duration::from_millis(300));
    let addr = tls_echo_server::<R>(acceptor.clone(), Config::default());
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A handshake record header announcing 200 bytes, and the start of a
    // ClientHello; then silence.
    raw.write_all(&[
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ])
    .await
    .unwrap();
    let mut good = connect_with::<R>(wss(addr), &trusting(&pki, Config::default()))
        .await
        .unwrap();
    closed_by_server(&mut raw).await;
    assert_eq!(acceptor.failed_handshakes(), 1);
    round_trip::<R>(&mut good, Message::text("unaffected")).await;
}

async fn expired_and_wrong_host_certificates_are_refused<R: Rt>() {
    let pki = TestPki::new("refused");
    for (files, why) in [
        (pki.expired("expired"), "expired"),
        (pki.other_host("other"), "not valid for name"),
    ] {
        let addr = tls_echo_server::<R>(acceptor(&files), Config::default());
        let error = bounded(
            "connect",
            connect_with::<R>(wss(addr), &trusting(&pki, Config::default())),
        )
        .await
        .err()
        .unwrap();
        let message = error.to_string();
        assert!(matches!(error, Error::Tls(_)), "{message}");
        assert!(message.starts_with("TLS handshake failed"), "{message}");
        assert!(message.to_lowercase().contains(why), "{message}");
    }
    // Not trusting the CA at all: webpki roots by default.
    let addr = tls_echo_server::<R>(acceptor(&pki.server("server")), Config::default());
    let error = connect::<R>(&wss(addr)).await.err().unwrap().to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

/// An HTTP-only port over TLS (`serve_http_with`): a GET is answered;
/// plaintext HTTP to it is not.
async fn https_only_port<R: Rt>() {
    let pki = TestPki::new("https");
    let app = HttpApp::builder(Hub::builder().build()).build();
    let (listener, addr) = listen::<R>();
    let acceptor = acceptor(&pki.server("server"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    R::spawn(async move {
        let serve = std::pin::pin!(hubbub_http::serve_http_with::<R>(
            listener,
            app,
            Some(acceptor)
        ));
        futures_util::future::select(serve, stopped).await;
    });
    let ca = pki.ca.clone();
    let (secure, plain) = tokio::task::spawn_blocking(move || {
        let request = "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let secure = https_request(addr, &ca, request);
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut plain = Vec::new();
        let _ = tcp.read_to_end(&mut plain);
        (secure, plain)
    })
    .await
    .unwrap();
    assert!(secure.starts_with("HTTP/1.1 200"), "{secure}");
    assert!(!plain.starts_with(b"HTTP/"), "{plain:?}");
    drop(stop);
}

hubbub_tests::cross_runtime!(
    https_only_port,
    wss_echo_with_deflate,
    tungstenite_rustls_client,
    hub_server_and_reconnecting_client_over_tls,
    reconnecting_client_over_tls_after_a_restart,
    http_and_websocket_on_one_tls_port,
    reload_keeps_open_connections_and_serves_the_new_certificate,
    plaintext_to_the_tls_port_is_closed,
    truncated_client_hello_is_dropped_at_the_deadline,
    expired_and_wrong_host_certificates_are_refused,
);

#[test]
fn bad_pem_files_are_named() {
    let pki = TestPki::new("files");
    let good = pki.server("server");
    let other = pki.server("other");
    let error = |cert: &std::path::Path, key: &std::path::Path| {
        TlsAcceptor::from_pem_files(cert, key)
            .unwrap_err()
            .to_string()
    };
    let missing = pki.dir().join("missing.pem");
    let text = pki.file("text.pem", "hello\n");
    let broken = pki.file(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
    );
    let cases = [
        (error(&missing, &good.key), missing.clone(), "No such file"),
        (error(&good.cert, &missing), missing.clone(), "No such file"),
        (error(&text, &good.key), text.clone(), "no certificate"),
        (error(&broken, &good.key), broken.clone(), "PEM"),
        (
            error(&good.cert, &good.cert),
            good.cert.clone(),
            "no private key",
        ),
        (
            error(&good.cert, &other.key),
            other.key.clone(),
            "does not match",
        ),
    ];
    for (message, file, why) in cases {
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains(why), "{message}");
    }
    // The client's CA file too.
    let message = client_config_with_ca_file(&text).unwrap_err().to_string();
    assert!(message.contains(&text.display().to_string()), "{message}");
    // And a good pair loads, with ALPN http/1.1.
    let config = TlsAcceptor::from_pem_files(&good.cert, &good.key)
        .unwrap()
        .config();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    let _ = json!(null);
}

/// Our client over TLS against a Python `websockets` wss:// echo server
/// (`HUBBUB_INTEROP_WSS_URL`, its CA in `HUBBUB_INTEROP_CA`), on every
/// runtime: text and binary of many sizes, with compression.
#[test]
#[ignore = "needs the Python TLS server: run scripts/interop-python.sh"]
fn python_tls_server() {
    hubbub_tests::run(python_tls_round_trips::<hubbub_tests::Tokio>());
    hubbub_tests::run(python_tls_round_trips::<hubbub_tests::Smol>());
    hubbub_tests::run(python_tls_round_trips::<hubbub_tests::Mio>());
}

async fn python_tls_round_trips<R: Rt>() {
    let url = std::env::var("HUBBUB_INTEROP_WSS_URL")
        .expect("HUBBUB_INTEROP_WSS_URL: the URL of the Python websockets wss:// echo server");
    let ca = std::env::var("HUBBUB_INTEROP_CA").expect("HUBBUB_INTEROP_CA: its CA (PEM)");
    let config = ClientConfig {
        config: Arc::new(Config {
            max_message_size: 16 << 20,
            deflate: Some(DeflateConfig::default()),
            ..Config::default()
        }),
        ..ClientConfig::default()
    }
    .trust_pem_ca(ca)
    .unwrap();
    let mut ws = bounded("connect", connect_with::<R>(url.as_str(), &config))
        .await
        .unwrap();
    assert!(ws.get_ref().is_tls());
    assert!(ws
        .extensions()
        .unwrap_or_default()
        .starts_with("permessage-deflate"));
    for len in [0, 1, 100, 16_384, 16_385, 65_536, 300_000, 2 << 20] {
        round_trip::<R>(&mut ws, Message::Text("t".repeat(len))).await;
        round_trip::<R>(&mut ws, Message::Binary(Bytes::from(payload(len, 5)))).await;
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while bounded("close", ws.recv()).await.is_some() {}
    // Without its CA: the webpki roots do not know it.
    let error = connect::<R>(&url).await.err().unwrap();
    assert!(matches!(error, Error::Tls(_)), "{error}");
}

/// hubbub-mio's `LoopServer` over TLS: hub sessions on two loop threads.
#[test]
fn mio_loop_server_over_tls() {
    let pki = TestPki::new("loop");
    let handle = hubbub_mio::LoopServer::new(echo_hub(), Arc::new(Config::default()))
        .threads(2)
        .tls(acceptor(&pki.server("server")))
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let url = wss(handle.local_addr());
    hubbub_tests::run(async {
        let config = trusting(&pki, Config::default());
        for n in 0..4 {
            let mut ws = connect_with::<hubbub_tests::Mio>(url.as_str(), &config)
                .await
                .unwrap();
            ws.send(Message::text(format!("{n}"))).await.unwrap();
            let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
            assert_eq!(echoed, Message::text(format!("echo: {n}")));
        }
    });
    handle.shutdown(Duration::from_secs(1));
}

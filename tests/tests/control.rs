//! Ping/pong and the close handshake, both ways, with tokio-tungstenite as
//! the independent peer.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bounded, echo_server, tungstenite_echo_server, url};
use futures_util::{SinkExt, StreamExt};
use hubbub_tests::prelude::*;
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite;

async fn our_server_answers_pings<R: Rt>() {
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let (mut ws, _) = bounded("connect", tokio_tungstenite::connect_async(url(addr)))
        .await
        .unwrap();
    ws.send(tungstenite::Message::Ping(Bytes::from_static(
        b"are you there",
    )))
    .await
    .unwrap();
    match bounded("pong", ws.next()).await {
        Some(Ok(tungstenite::Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Pings are not stream items on our side: the echo of the next message
    // is the next thing the client sees.
    ws.send(tungstenite::Message::text("after ping"))
        .await
        .unwrap();
    match bounded("echo", ws.next()).await {
        Some(Ok(tungstenite::Message::Text(text))) => assert_eq!(text.as_str(), "after ping"),
        other => panic!("expected the echo, got {other:?}"),
    }
}

async fn our_client_pings_and_records_the_pong<R: Rt>() {
    let (addr, _server) = tungstenite_echo_server().await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    assert!(ws.last_pong().is_none());
    ws.ping(b"hello?").await.unwrap();
    // The pong is recorded while the stream is polled; a message sent after
    // the ping comes back after the pong.
    ws.send("marker").await.unwrap();
    assert_eq!(
        bounded("echo", ws.recv()).await.unwrap().unwrap(),
        Message::Text("marker".into())
    );
    assert_eq!(ws.last_pong().map(|p| &p[..]), Some(&b"hello?"[..]));
    // Too long for a control frame: refused, nothing sent.
    assert!(matches!(
        ws.ping(&[0; 126]).await,
        Err(Error::Usage(UsageError::ControlPayloadTooLong))
    ));
}

async fn client_close_with_code_and_reason_reaches_our_server<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(Config::default()).await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    let closed = bounded("close", ws.close(CloseCode(4321), "going home"))
        .await
        .unwrap();
    // Our side: the server echoed our code.
    assert_eq!(closed.code.0, 4321);
    assert!(closed.clean);
    assert_eq!(closed.initiator, Initiator::Local);
    let server_side = bounded("server end", ends.recv()).await.unwrap().unwrap();
    assert_eq!(server_side.code.0, 4321);
    assert_eq!(server_side.reason, "going home");
    assert_eq!(server_side.initiator, Initiator::Remote);
    assert!(server_side.clean);
    // Nothing may be sent once closed.
    assert!(matches!(ws.send("late").await, Err(Error::Closed)));
    assert!(ws.recv().await.is_none());
}

async fn invalid_close_codes_are_refused_locally<R: Rt>() {
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    for code in [1005, 1006, 1015, 999, 5000] {
        assert!(
            matches!(ws.start_close(CloseCode(code), ""), Err(Error::Usage(UsageError::InvalidCloseCode(c))) if c == code)
        );
    }
    assert!(matches!(
        ws.start_close(CloseCode::NORMAL, &"r".repeat(124)),
        Err(Error::Usage(_))
    ));
    // Still open and usable.
    ws.send("still here").await.unwrap();
    assert_eq!(
        bounded("echo", ws.recv()).await.unwrap().unwrap(),
        Message::Text("still here".into())
    );
}

/// A server that greets, then closes with 4000 "server says bye".
async fn closing_server<R: Rt>() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Closed>) {
    let (listener, addr) = listen::<R>();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        Server::<R>::new(Config::default()).serve(listener, move |mut ws, _| {
            let tx = tx.clone();
            async move {
                ws.send("welcome").await.unwrap();
                let closed = ws.close(CloseCode(4000), "server says bye").await.unwrap();
                // Ignored: the test may drop the receiver once it has what it
                // checks; the `Closed` it expects is asserted there.
                let _ = tx.send(closed);
            }
        }),
    );
    (addr, rx)
}

async fn server_initiated_close_to_tungstenite_client<R: Rt>() {
    let (addr, mut ends) = closing_server::<R>().await;
    let (mut ws, _) = bounded("connect", tokio_tungstenite::connect_async(url(addr)))
        .await
        .unwrap();
    match bounded("greeting", ws.next()).await {
        Some(Ok(tungstenite::Message::Text(text))) => assert_eq!(text.as_str(), "welcome"),
        other => panic!("expected the greeting, got {other:?}"),
    }
    match bounded("close", ws.next()).await {
        Some(Ok(tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "server says bye");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // tungstenite answers the close; the stream then ends.
    while let Some(Ok(_)) = bounded("end", ws.next()).await {}
    drop(ws); // the server waits for our end of stream before it is done
    let server_side = bounded("server end", ends.recv()).await.unwrap();
    assert_eq!(
        (server_side.code.0, server_side.clean, server_side.initiator),
        (4000, true, Initiator::Local)
    );
}

async fn server_initiated_close_to_our_client<R: Rt>() {
    let (addr, mut ends) = closing_server::<R>().await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    assert_eq!(
        bounded("greeting", ws.recv()).await.unwrap().unwrap(),
        Message::Text("welcome".into())
    );
    assert!(bounded("end", ws.recv()).await.is_none());
    let closed = ws.closed().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str()),
        (4000, "server says bye")
    );
    assert_eq!((closed.clean, closed.initiator), (true, Initiator::Remote));
    let server_side = bounded("server end", ends.recv()).await.unwrap();
    assert_eq!(server_side.code.0, 4000);
    assert!(server_side.clean);
}

async fn close_without_answer_times_out<R: Rt>() {
    // A peer that completes the handshake and then never reads: our close
    // handshake gives up after close_timeout with 1006.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(ws);
    });
    let config = ClientConfig {
        config: std::sync::Arc::new(Config {
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        }),
        ..Default::default()
    };
    let mut ws = bounded("connect", connect_with::<R>(&url(addr), &config))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let closed = bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert_eq!(closed.code.0, 1006);
    assert!(!closed.clean);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
    silent.abort();
}

async fn client_lets_the_server_close_tcp_first<R: Rt>() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw server: answers the upgrade, sends a close frame, reads the echo.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = hubbub_core::handshake::accept_key(key.as_bytes());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.unwrap();
        // The masked close echo: 2 + 4 + 2 bytes.
        let mut echo = [0; 8];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo[0], 0x88);
        // The client must not send FIN before we do (RFC 6455 §7.1.1).
        let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        assert!(early.is_err(), "client closed TCP first: {early:?}");
        stream.shutdown().await.unwrap();
        // Now it does, promptly.
        let n = bounded("client FIN", stream.read(&mut buf)).await.unwrap();
        assert_eq!(n, 0);
    });
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    assert!(bounded("end", ws.recv()).await.is_none());
    assert_eq!(ws.closed().unwrap().code.0, 1000);
    bounded("server", server).await.unwrap();
}

hubbub_tests::cross_runtime!(
    our_server_answers_pings,
    our_client_pings_and_records_the_pong,
    client_close_with_code_and_reason_reaches_our_server,
    invalid_close_codes_are_refused_locally,
    server_initiated_close_to_tungstenite_client,
    server_initiated_close_to_our_client,
    close_without_answer_times_out,
    client_lets_the_server_close_tcp_first,
);

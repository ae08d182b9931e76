//! Data messages over loopback: our client and tokio-tungstenite against our
//! server, and our client against a tokio-tungstenite server.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{big_config, bounded, echo_server, payload, tungstenite_echo_server, url};
use futures_util::{SinkExt, StreamExt};
use hubbub_tests::prelude::*;
use tokio_tungstenite::tungstenite;

/// The messages every peer pairing exchanges: text, binary, empty ones,
/// multi-byte UTF-8, and large ones (several MiB).
fn messages() -> Vec<Message> {
    vec![
        Message::Text("hello".into()),
        Message::Binary(Bytes::from_static(&[0, 1, 2, 255])),
        Message::Text(String::new()),
        Message::Binary(Bytes::new()),
        Message::Text("κόσμε — 世界 — 🎉".into()),
        Message::Text("x".repeat(70_000)),
        Message::Binary(payload(5 << 20, 7).into()),
        Message::Text("a".repeat(3 << 20)),
        Message::Text("after the large ones".into()),
    ]
}

fn client_config(fragment_size: Option<usize>) -> ClientConfig {
    ClientConfig {
        config: Arc::new(Config {
            fragment_size,
            ..big_config()
        }),
        ..Default::default()
    }
}

/// Send every message, then read every echo, checking order and content.
async fn exchange_with_our_client<R: Rt>(address: &str, fragment_size: Option<usize>) {
    let ws = bounded(
        "connect",
        connect_with::<R>(address, &client_config(fragment_size)),
    )
    .await
    .unwrap();
    let sent = messages();
    // Sending and receiving concurrently: the echoes of the large messages
    // come back while later ones are still being written.
    let (mut tx, mut rx) = ws.split();
    let sending = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for message in sent {
                tx.send(message).await.unwrap();
            }
            tx
        })
    };
    for (i, expected) in sent.iter().enumerate() {
        let got = bounded("echo", rx.next())
            .await
            .expect("stream ended early")
            .unwrap();
        assert_eq!(&got, expected, "message {i}");
    }
    let mut tx = sending.await.unwrap();
    tx.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(bounded("end of stream", rx.next()).await.is_none());
    let closed = rx.closed().expect("close recorded");
    assert_eq!(closed.code.0, 1000);
    assert!(closed.clean);
}

async fn our_client_against_our_server<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(big_config()).await;
    exchange_with_our_client::<R>(&url(addr), None).await;
    let closed = bounded("server end", ends.recv()).await.unwrap().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str(), closed.clean),
        (1000, "done", true)
    );
}

async fn fragmented_both_ways_between_our_peers<R: Rt>() {
    // The client sends in 1000-byte fragments, the server answers in
    // 4096-byte ones; both reassemble.
    let (addr, _ends, _server) = echo_server::<R>(Config {
        fragment_size: Some(4096),
        ..big_config()
    })
    .await;
    exchange_with_our_client::<R>(&url(addr), Some(1000)).await;
}

async fn our_client_against_tungstenite_server<R: Rt>() {
    let (addr, _server) = tungstenite_echo_server().await;
    exchange_with_our_client::<R>(&url(addr), None).await;
}

async fn our_fragmented_client_against_tungstenite_server<R: Rt>() {
    let (addr, _server) = tungstenite_echo_server().await;
    exchange_with_our_client::<R>(&url(addr), Some(777)).await;
}

fn to_tungstenite(message: &Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::text(text.clone()),
        Message::Binary(data) => tungstenite::Message::binary(data.clone()),
        _ => unreachable!(),
    }
}

async fn exchange_with_tungstenite_client<R: Rt>(server_config: Config) {
    let (addr, mut ends, _server) = echo_server::<R>(server_config).await;
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (ws, response) = bounded(
        "connect",
        tokio_tungstenite::connect_async_with_config(url(addr), Some(config), true),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    let (mut tx, mut rx) = ws.split();
    let sent = messages();
    let sending = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for message in &sent {
                tx.send(to_tungstenite(message)).await.unwrap();
            }
            tx
        })
    };
    for (i, expected) in sent.iter().enumerate() {
        let got = bounded("echo", rx.next())
            .await
            .expect("stream ended early")
            .unwrap();
        assert_eq!(got, to_tungstenite(expected), "message {i}");
    }
    let mut tx = sending.await.unwrap();
    let frame = tungstenite::protocol::CloseFrame {
        code: 4001.into(),
        reason: "bye now".into(),
    };
    tx.send(tungstenite::Message::Close(Some(frame)))
        .await
        .unwrap();
    // The server echoes the close code and ends the connection.
    match bounded("close echo", rx.next()).await {
        Some(Ok(tungstenite::Message::Close(Some(echo)))) => assert_eq!(u16::from(echo.code), 4001),
        other => panic!("expected a close echo, got {other:?}"),
    }
    let closed = bounded("server end", ends.recv()).await.unwrap().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str(), closed.clean),
        (4001, "bye now", true)
    );
}

async fn tungstenite_client_against_our_server<R: Rt>() {
    exchange_with_tungstenite_client::<R>(big_config()).await;
}

async fn tungstenite_client_reassembles_our_fragments<R: Rt>() {
    exchange_with_tungstenite_client::<R>(Config {
        fragment_size: Some(1500),
        ..big_config()
    })
    .await;
}

async fn many_small_messages_keep_their_order<R: Rt>() {
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    // Queue many without flushing in between: they leave in batched writes.
    for i in 0..2000 {
        ws.feed(format!("message {i}")).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..2000 {
        let got = bounded("echo", ws.recv()).await.unwrap().unwrap();
        assert_eq!(got, Message::Text(format!("message {i}")));
    }
    let closed = bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(closed.clean);
}

async fn oversized_message_closes_with_1009<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(Config {
        max_message_size: 1000,
        ..Config::default()
    })
    .await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    ws.send(Message::Binary(payload(1001, 1).into()))
        .await
        .unwrap();
    assert!(bounded("end", ws.recv()).await.is_none());
    assert_eq!(ws.closed().unwrap().code.0, 1009);
    let server_side = bounded("server end", ends.recv()).await.unwrap().unwrap();
    assert_eq!(server_side.code.0, 1009);
}

hubbub_tests::cross_runtime!(
    our_client_against_our_server,
    fragmented_both_ways_between_our_peers,
    our_client_against_tungstenite_server,
    our_fragmented_client_against_tungstenite_server,
    tungstenite_client_against_our_server,
    tungstenite_client_reassembles_our_fragments,
    many_small_messages_keep_their_order,
    oversized_message_closes_with_1009,
);

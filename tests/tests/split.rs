//! Split halves on different tasks.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bounded, echo_server, url};
use futures_util::{SinkExt, StreamExt};
use hubbub_tests::prelude::*;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

async fn pongs_flow_while_only_the_read_half_is_polled<R: Rt>() {
    // The server splits each connection: the read half runs in one task and
    // forwards messages to the write half's task, which only sends when
    // told. Pings from the peer are answered by the read half alone.
    let (listener, addr) = listen::<R>();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    tokio::spawn(
        Server::<R>::new(Config::default()).serve(listener, move |ws, _| {
            let ended_tx = ended_tx.clone();
            async move {
                let (mut tx, mut rx) = ws.split();
                let (to_writer, mut from_reader) = mpsc::channel::<Message>(16);
                // A task of the connection's runtime (the handler runs on `R`).
                let (writer_done, writer) = tokio::sync::oneshot::channel();
                R::spawn(async move {
                    while let Some(message) = from_reader.recv().await {
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    // Ignored: the handler awaits it below; it is gone only
                    // if the server dropped the handler.
                    let _ = writer_done.send(());
                });
                while let Some(message) = rx.next().await {
                    if let Ok(Message::Text(text)) = message {
                        // Ignored: fails once the writer stopped (the peer
                        // went away); the client asserts on the echoes.
                        let _ = to_writer.send(Message::Text(format!("echo: {text}"))).await;
                    }
                }
                drop(to_writer);
                writer.await.unwrap();
                // Ignored: the test may have stopped listening; it asserts
                // on what it receives.
                let _ = ended_tx.send(rx.closed());
            }
        }),
    );

    let (mut ws, _) = bounded("connect", tokio_tungstenite::connect_async(url(addr)))
        .await
        .unwrap();
    for i in 0..5u8 {
        ws.send(tungstenite::Message::Ping(Bytes::from(vec![i; 3])))
            .await
            .unwrap();
        match bounded("pong", ws.next()).await {
            Some(Ok(tungstenite::Message::Pong(payload))) => assert_eq!(&payload[..], &[i; 3]),
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    ws.send(tungstenite::Message::text("hi")).await.unwrap();
    match bounded("echo", ws.next()).await {
        Some(Ok(tungstenite::Message::Text(text))) => assert_eq!(text.as_str(), "echo: hi"),
        other => panic!("expected the echo, got {other:?}"),
    }
    // A close from the peer is echoed by the read half, which then ends.
    ws.send(tungstenite::Message::Close(Some(
        tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "done".into(),
        },
    )))
    .await
    .unwrap();
    match bounded("close echo", ws.next()).await {
        Some(Ok(tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1000)
        }
        other => panic!("expected a close echo, got {other:?}"),
    }
    drop(ws);
    let closed = bounded("server end", ended.recv()).await.unwrap().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str(), closed.clean),
        (1000, "done", true)
    );
}

async fn halves_on_two_tasks_send_and_receive_concurrently<R: Rt>() {
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    const N: usize = 500;
    let sender = tokio::spawn(async move {
        for i in 0..N {
            tx.send(Message::Text(format!("{i}"))).await.unwrap();
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tx
    });
    let receiver = tokio::spawn(async move {
        for i in 0..N {
            let got = rx.next().await.unwrap().unwrap();
            assert_eq!(got, Message::Text(format!("{i}")));
        }
        rx
    });
    let mut tx = bounded("sender", sender).await.unwrap();
    let mut rx = bounded("receiver", receiver).await.unwrap();
    // Closing through the sink; the read half sees the end.
    tx.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert!(!tx.is_open());
    assert!(bounded("end", rx.next()).await.is_none());
    assert!(rx.closed().unwrap().clean);
    assert!(matches!(tx.send("late").await, Err(Error::Closed)));
}

async fn cancelled_receives_lose_nothing<R: Rt>() {
    // next() raced against a short timer, over and over: every message still
    // arrives exactly once, in order.
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let mut ws = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    const N: usize = 200;
    for i in 0..N {
        ws.feed(format!("{i}")).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + common::LIMIT;
    while got.len() < N && tokio::time::Instant::now() < deadline {
        tokio::select! {
            message = ws.recv() => got.push(message.unwrap().unwrap()),
            () = tokio::time::sleep(Duration::from_micros(50)) => {}
        }
    }
    let expected: Vec<Message> = (0..N).map(|i| Message::Text(format!("{i}"))).collect();
    assert_eq!(got, expected);
}

hubbub_tests::cross_runtime!(
    pongs_flow_while_only_the_read_half_is_polled,
    halves_on_two_tasks_send_and_receive_concurrently,
    cancelled_receives_lose_nothing,
);

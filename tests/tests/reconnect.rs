//! The reconnecting client: a server restart, and giving up after a bounded
//! number of attempts.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{bounded, url};
use hubbub_tests::prelude::*;
use tokio::{net::TcpListener, task::JoinSet};

/// An echo server whose connections all live in `tasks`, so that dropping
/// the returned set (with the listener) stops the whole server.
async fn start_server<R: Rt>(addr: SocketAddr) -> JoinSet<()> {
    let listener = R::bind(addr, 1024).unwrap();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (stream, _) = R::accept(&listener).await.unwrap();
            connections.spawn(async move {
                let timer = R::Timer::default();
                let Ok(mut ws) = hubbub_ws::accept(stream, timer).await else {
                    return;
                };
                while let Some(message) = ws.recv().await {
                    if let Ok(message) = message {
                        // Ignored: the tests kill connections on purpose; the
                        // client asserts on the echoes it gets.
                        let _ = ws.feed(message).await;
                    }
                }
            });
        }
    });
    tasks
}

fn reconnecting(max_attempts: Option<u32>) -> ClientConfig {
    ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts,
            jitter: 0.5,
        }),
        connect_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    }
}

async fn echo_roundtrip<R: Rt>(client: &mut Client<R>, text: &str) {
    client.send(text).await.unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(got)))) => assert_eq!(got, text),
        other => panic!("expected the echo of {text:?}, got {other:?}"),
    }
}

async fn reconnects_after_the_server_restarts<R: Rt>() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start_server::<R>(addr).await;
    let mut client = bounded(
        "connect",
        Client::<R>::connect(&url(addr), reconnecting(None)),
    )
    .await
    .unwrap();
    echo_roundtrip::<R>(&mut client, "first life").await;

    // Stop the server: every connection dies with it.
    drop(server);
    match bounded("disconnect", client.next_event()).await {
        Some(Ok(ClientEvent::Disconnected(closed))) => assert_eq!(closed.unwrap().code.0, 1006),
        other => panic!("expected a disconnection, got {other:?}"),
    }
    assert!(matches!(
        client.send("while down").await,
        Err(Error::Closed)
    ));

    // Down for a while: several attempts fail, then the server is back.
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        start_server::<R>(addr).await
    });
    let attempts = match bounded("reconnect", client.next_event()).await {
        Some(Ok(ClientEvent::Reconnected { attempts })) => attempts,
        other => panic!("expected a reconnection, got {other:?}"),
    };
    assert!(
        attempts >= 2,
        "the first attempts hit a stopped server ({attempts})"
    );
    assert_eq!(client.reconnects(), 1);
    let _server = restart.await.unwrap();
    echo_roundtrip::<R>(&mut client, "second life").await;

    // Closing on purpose ends the client for good.
    let closed = bounded("close", client.close(CloseCode::NORMAL, ""))
        .await
        .unwrap()
        .unwrap();
    assert!(closed.clean);
    assert!(client.next_event().await.is_none());
}

async fn gives_up_after_bounded_attempts<R: Rt>() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start_server::<R>(addr).await;
    let mut client = bounded(
        "connect",
        Client::<R>::connect(&url(addr), reconnecting(Some(3))),
    )
    .await
    .unwrap();
    echo_roundtrip::<R>(&mut client, "hello").await;
    drop(server);
    assert!(matches!(
        bounded("disconnect", client.next_event()).await,
        Some(Ok(ClientEvent::Disconnected(_)))
    ));
    match bounded("give up", client.next_event()).await {
        Some(Err(Error::Connect(_))) => {}
        other => panic!("expected the last connect error, got {other:?}"),
    }
    assert!(client.next_event().await.is_none());
}

async fn without_reconnect_the_client_just_ends<R: Rt>() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start_server::<R>(addr).await;
    let mut client = bounded(
        "connect",
        Client::<R>::connect(&url(addr), ClientConfig::default()),
    )
    .await
    .unwrap();
    echo_roundtrip::<R>(&mut client, "hello").await;
    drop(server);
    assert!(bounded("end", client.next_event()).await.is_none());
}

#[test]
fn backoff_doubles_up_to_the_maximum_with_jitter() {
    let policy = Reconnect {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_attempts: None,
        jitter: 0.0,
    };
    let delays: Vec<u128> = (1..=6).map(|n| policy.delay(n).as_millis()).collect();
    assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    let jittered = Reconnect {
        jitter: 0.5,
        ..policy
    };
    for n in 1..=20 {
        let full = policy.delay(n);
        let delay = jittered.delay(n);
        assert!(
            delay <= full && delay >= full / 2,
            "attempt {n}: {delay:?} of {full:?}"
        );
    }
    // Jitter spreads the waits.
    let distinct: std::collections::HashSet<_> = (0..20).map(|_| jittered.delay(3)).collect();
    assert!(distinct.len() > 1);
    assert_eq!(policy.delay(1000), Duration::from_secs(1));
}

hubbub_tests::cross_runtime!(
    reconnects_after_the_server_restarts,
    gives_up_after_bounded_attempts,
    without_reconnect_the_client_just_ends,
);

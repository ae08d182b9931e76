//! Idle timeout and keep-alive, on tokio's paused clock: the connection
//! runs over an in-memory duplex pipe, so virtual time decides everything
//! and no test sleeps for real.

use std::{sync::Arc, time::Duration};

use hubbub_tokio::{accept_with, Accept, ClientRequest, Config, Initiator, Message, WebSocket};
use tokio::{
    io::DuplexStream,
    time::{timeout, Instant},
};

fn quiet() -> Config {
    Config {
        idle_timeout: None,
        ping_interval: None,
        pong_timeout: None,
        ..Config::default()
    }
}

async fn pair(
    server: Config,
    client: Config,
) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(64 << 10);
    let server = tokio::spawn(accept_with(a, Arc::new(server), |_| Ok(Accept::new())));
    let request = ClientRequest::from_url("ws://localhost/").unwrap();
    let (client, _) = hubbub_tokio::client(b, &request, Arc::new(client))
        .await
        .unwrap();
    (server.await.unwrap().unwrap(), client)
}

/// Run the server side's read loop, echoing, until it ends; returns the
/// connection for inspection and when its stream ended.
fn run_server(
    mut ws: WebSocket<DuplexStream>,
) -> tokio::task::JoinHandle<(WebSocket<DuplexStream>, Instant)> {
    tokio::spawn(async move {
        while let Some(message) = ws.recv().await {
            if let Ok(message) = message {
                // Ignored: the timer tests end connections on purpose; what
                // they check is how and when this loop ends.
                let _ = ws.feed(message).await;
            }
        }
        (ws, Instant::now())
    })
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_closed_after_idle_timeout() {
    let server = Config {
        idle_timeout: Some(Duration::from_secs(5)),
        ..quiet()
    };
    let (server, mut client) = pair(server, quiet()).await;
    let start = Instant::now();
    let server = run_server(server);
    assert!(timeout(Duration::from_secs(60), client.recv())
        .await
        .unwrap()
        .is_none());
    let closed = client.closed().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str()),
        (1001, "idle timeout")
    );
    assert_eq!(closed.initiator, Initiator::Remote);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    let (server, _) = server.await.unwrap();
    let closed = server.closed().unwrap();
    assert_eq!(
        (closed.code.0, closed.clean, closed.initiator),
        (1001, true, Initiator::Local)
    );
}

#[tokio::test(start_paused = true)]
async fn traffic_keeps_the_idle_timer_away() {
    let server = Config {
        idle_timeout: Some(Duration::from_secs(5)),
        ..quiet()
    };
    let (server, mut client) = pair(server, quiet()).await;
    let server = run_server(server);
    // A message every 3 s for 15 s: never 5 s of silence.
    for i in 0..5 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.send(format!("tick {i}")).await.unwrap();
        let echo = timeout(Duration::from_secs(1), client.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echo, Message::Text(format!("tick {i}")));
    }
    let last = Instant::now();
    assert!(timeout(Duration::from_secs(60), client.recv())
        .await
        .unwrap()
        .is_none());
    let waited = last.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert_eq!(client.closed().unwrap().code.0, 1001);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keep_alive_pings_are_answered_and_keep_the_connection() {
    // The server pings after 2 s of silence and wants a pong within 1 s; a
    // client that is polled answers by itself, for as long as it runs.
    let server = Config {
        ping_interval: Some(Duration::from_secs(2)),
        pong_timeout: Some(Duration::from_secs(1)),
        ..quiet()
    };
    let (server, mut client) = pair(server, quiet()).await;
    let server = tokio::spawn(async move {
        let mut server = server;
        let outcome = timeout(Duration::from_secs(30), server.recv()).await;
        (server, outcome.is_err())
    });
    assert!(
        timeout(Duration::from_secs(30), client.recv())
            .await
            .is_err(),
        "no message, no close"
    );
    assert!(client.is_open());
    let (server, still_waiting) = server.await.unwrap();
    assert!(still_waiting, "the server's stream did not end");
    assert!(server.is_open());
    assert_eq!(
        server.last_pong().map(|p| p.len()),
        Some(0),
        "keep-alive pong recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn unanswered_keep_alive_closes_the_connection() {
    let server = Config {
        ping_interval: Some(Duration::from_secs(2)),
        pong_timeout: Some(Duration::from_secs(1)),
        close_timeout: Duration::from_secs(1),
        ..quiet()
    };
    let (server, mut client) = pair(server, quiet()).await;
    let start = Instant::now();
    let server = run_server(server);
    // The client is not polled, so it answers nothing: ping at 2 s, no pong
    // by 3 s, close sent; no close answer by 4 s.
    let (server, ended) = server.await.unwrap();
    let waited = ended - start;
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    let closed = server.closed().unwrap();
    assert_eq!((closed.code.0, closed.clean), (1006, false));
    // What the client finds when it finally reads: the ping, then the close.
    assert!(timeout(Duration::from_secs(10), client.recv())
        .await
        .unwrap()
        .is_none());
    let closed = client.closed().unwrap();
    assert_eq!(
        (closed.code.0, closed.reason.as_str()),
        (1001, "ping timeout")
    );
}

#[tokio::test(start_paused = true)]
async fn client_keep_alive_pings() {
    let client = Config {
        ping_interval: Some(Duration::from_secs(1)),
        pong_timeout: Some(Duration::from_secs(1)),
        ..quiet()
    };
    let (server, mut client) = pair(quiet(), client).await;
    let _server = run_server(server);
    assert!(client.last_pong().is_none());
    assert!(timeout(Duration::from_secs(5), client.recv())
        .await
        .is_err());
    assert_eq!(client.last_pong().map(|p| p.len()), Some(0));
    assert!(client.is_open());
}

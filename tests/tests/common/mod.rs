//! Helpers shared by the integration tests: servers on loopback ports,
//! bounded waits.
#![allow(dead_code)]

pub(crate) mod certs;
pub(crate) mod http;
pub(crate) mod raw;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use hubbub_tests::prelude::*;
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};

/// Every wait in the tests is bounded by this.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Await `work`, failing the test if it takes longer than [`LIMIT`].
pub(crate) async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, work).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {LIMIT:?}"),
    }
}

/// A configuration with room for the large-message tests.
/// Wait (bounded by [`LIMIT`], polling every few ms) until `condition`
/// holds.
pub(crate) async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

pub(crate) fn big_config() -> Config {
    Config {
        max_message_size: 16 << 20,
        ..Config::default()
    }
}

/// A [`HubServer`] of runtime `R` for `hub` on a free loopback port, with
/// the default configuration.
pub(crate) async fn start_hub<R: Rt>(hub: Hub) -> HubHandle {
    HubServer::<R>::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap()
}

/// Our echo server on a free loopback port. Every connection's end is
/// reported on the returned channel.
pub(crate) async fn echo_server<R: Rt>(
    config: Config,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Option<Closed>>,
    JoinHandle<()>,
) {
    let (listener, addr) = listen::<R>();
    let (tx, rx) = mpsc::unbounded_channel();
    let serve = Server::<R>::new(config).serve(listener, move |ws, _| echo::<R>(ws, tx.clone()));
    // The accept loop runs in a tokio task; each connection, on `R`.
    let server = tokio::spawn(serve);
    (addr, rx, server)
}

/// Echo every message, then report how the connection ended.
pub(crate) async fn echo<R: Rt>(
    mut ws: RuntimeWebSocket<R>,
    done: mpsc::UnboundedSender<Option<Closed>>,
) {
    while let Some(message) = ws.recv().await {
        if let Ok(message) = message {
            // Ignored: a test may drop its peer mid-echo; the peer asserts
            // on the echoes it gets.
            let _ = ws.feed(message).await;
        }
    }
    // Ignored: tests that do not check how connections end drop `rx`.
    let _ = done.send(ws.closed().cloned());
}

/// An echo server written with tokio-tungstenite: the independent peer.
pub(crate) async fn tungstenite_echo_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(Some(64 << 20))
                    .max_frame_size(Some(64 << 20));
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (addr, server)
}

/// `ws://` URL for `addr`.
pub(crate) fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Shared config handle.
pub(crate) fn arc(config: Config) -> Arc<Config> {
    Arc::new(config)
}

/// A deterministic payload of `len` bytes.
pub(crate) fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

//! What the mio tests share: a tokio-tungstenite peer (a client we did not
//! write) and bounds on every wait.
#![allow(dead_code)]

use std::{future::Future, net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMessage;

/// A WebSocket client from tokio-tungstenite.
pub(crate) type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Every wait in these tests ends within this.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// `future`, or a panic naming `what` after [`BOUND`].
pub(crate) async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Connect to `addr` at `path`.
pub(crate) async fn peer(addr: SocketAddr, path: &str) -> Peer {
    let url = format!("ws://{addr}{path}");
    bounded("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .0
}

/// The next data message, or `close CODE` / `end` (pings and pongs skipped).
pub(crate) async fn next(peer: &mut Peer) -> String {
    loop {
        match bounded("a message", peer.next()).await {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Binary(data))) => return format!("binary {data:?}"),
            Some(Ok(TMessage::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return "end".into(),
        }
    }
}

/// Send `text`.
pub(crate) async fn send(peer: &mut Peer, text: &str) {
    bounded("a send", peer.send(TMessage::text(text)))
        .await
        .unwrap();
}

/// A current-thread tokio runtime for the clients.
pub(crate) fn clients() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Poll `check` every 5 ms until it holds; panics after [`BOUND`].
pub(crate) fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < BOUND, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

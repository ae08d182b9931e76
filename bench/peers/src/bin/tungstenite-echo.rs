//! tokio-tungstenite peer server, written as the crate's examples are.
//!
//! * echo mode follows `examples/echo-server.rs`: accept, split, and
//!   `read.forward(write)`;
//! * `--broadcast` follows the chat server of `examples/server.rs`: a shared
//!   peer map of unbounded channels, every message forwarded to every *other*
//!   peer. Unlike the example, only text and binary messages are forwarded
//!   (the example would also forward a leaving peer's close frame).
//!
//! With `--tls-cert PATH --tls-key PATH`, each connection is accepted with
//! tokio-rustls (ring provider, ALPN `http/1.1`) first, as its examples do.
//!
//! Single-threaded (`current_thread` runtime), TCP_NODELAY, 127.0.0.1 only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{future, pin_mut, StreamExt, TryStreamExt};
use peers::Args;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Every connected peer's outgoing channel, keyed by its address.
type PeerMap = Arc<Mutex<HashMap<SocketAddr, UnboundedSender<Message>>>>;

fn main() -> std::io::Result<()> {
    let args = Args::from_env();
    peers::current_thread_runtime().block_on(serve(args))
}

/// Accepts connections forever, one task per connection.
async fn serve(args: Args) -> std::io::Result<()> {
    let listener = peers::bind(&args, "tungstenite-echo").await?;
    let peers = PeerMap::default();
    let config = WebSocketConfig::default().max_message_size(Some(args.max_message));
    let tls = match &args.tls {
        Some((cert, key)) => Some(TlsAcceptor::from(peers::tls_config(cert, key)?)),
        None => None,
    };
    loop {
        let (stream, addr) = listener.accept().await?;
        stream.set_nodelay(true)?;
        match &tls {
            Some(tls) => {
                let accept = tls.accept(stream);
                let peers = peers.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = accept.await {
                        connection(peers, stream, addr, config, args.broadcast).await;
                    }
                });
            }
            None => {
                tokio::spawn(connection(
                    peers.clone(),
                    stream,
                    addr,
                    config,
                    args.broadcast,
                ));
            }
        }
    }
}

/// One connection, echoed or broadcast.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    peers: PeerMap,
    stream: S,
    addr: SocketAddr,
    config: WebSocketConfig,
    broadcast: bool,
) {
    if broadcast {
        broadcast_connection(peers, stream, addr, config).await;
    } else {
        echo_connection(stream, config).await;
    }
}

/// Echoes every message back to its sender (`echo-server.rs`).
async fn echo_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S, config: WebSocketConfig) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (write, read) = ws.split();
    // Errors (a peer vanishing mid-run) just end the connection.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

/// Forwards every message to every other peer (`server.rs`).
async fn broadcast_connection<S: AsyncRead + AsyncWrite + Unpin>(
    peers: PeerMap,
    stream: S,
    addr: SocketAddr,
    config: WebSocketConfig,
) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (tx, rx) = unbounded();
    peers.lock().unwrap().insert(addr, tx);

    let (outgoing, incoming) = ws.split();
    let broadcast_incoming = incoming.try_for_each(|msg| {
        if msg.is_text() || msg.is_binary() {
            let peers = peers.lock().unwrap();
            for (_, recipient) in peers.iter().filter(|(peer, _)| **peer != addr) {
                let _ = recipient.unbounded_send(msg.clone());
            }
        }
        future::ok(())
    });
    let receive_from_others = rx.map(Ok).forward(outgoing);

    pin_mut!(broadcast_incoming, receive_from_others);
    future::select(broadcast_incoming, receive_from_others).await;
    peers.lock().unwrap().remove(&addr);
}

//! yawc peer server, written as the crate's examples are.
//!
//! * echo mode follows yawc's `examples/echo_server.rs`: hyper's HTTP/1
//!   server with `WebSocket::upgrade_with_options`, one task per socket
//!   reading frames with `StreamExt::next` and answering text and binary
//!   frames with `SinkExt::send`;
//! * `--broadcast` applies tokio-tungstenite's chat-server pattern (as
//!   `tungstenite-echo` does) on top of yawc's `Stream`/`Sink`: a shared
//!   peer map of unbounded channels, the socket split into its halves, and
//!   every text or binary message forwarded to every *other* peer.
//!
//! Compression off (`Options::without_compression`: no permessage-deflate
//! is negotiated), largest message `--max-message` (16 MiB by default, as
//! the other peers). No TLS (`--tls-cert` is refused).
//!
//! Single-threaded (`current_thread` runtime), TCP_NODELAY, 127.0.0.1 only.

use std::sync::atomic::Ordering;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{future, pin_mut, SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use yawc::{Frame, OpCode, Options, UpgradeFut, WebSocket};

/// What every upgrade handler needs: the command line and the
/// `--broadcast` peers' channels.
type Shared = peers::Shared<UnboundedSender<Frame>>;

fn main() -> std::io::Result<()> {
    peers::run_upgrade_peer("yawc-echo", server_upgrade)
}

/// Answers the upgrade request and spawns the WebSocket task.
async fn server_upgrade(
    shared: Shared,
    mut req: Request<Incoming>,
) -> yawc::Result<Response<Empty<Bytes>>> {
    let options = Options::default()
        .without_compression()
        .with_max_payload_read(shared.args.max_message)
        .with_max_read_buffer(2 * shared.args.max_message);
    let (response, fut) = WebSocket::upgrade_with_options(&mut req, options)?;
    tokio::task::spawn(async move {
        // A peer closing its socket without a close frame is routine here.
        let _ = if shared.args.broadcast {
            broadcast_client(shared, fut).await
        } else {
            echo_client(fut).await
        };
    });
    Ok(response)
}

/// Echoes every text and binary message back (`echo_server.rs`).
async fn echo_client(fut: UpgradeFut) -> yawc::Result<()> {
    let mut ws = fut.await?;
    while let Some(frame) = ws.next().await {
        match frame.opcode() {
            OpCode::Text | OpCode::Binary => ws.send(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Forwards every text and binary message to every other peer.
async fn broadcast_client(shared: Shared, fut: UpgradeFut) -> yawc::Result<()> {
    let ws = fut.await?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = unbounded();
    shared.peers.lock().unwrap().insert(id, tx);

    let (outgoing, incoming) = ws.split();
    let broadcast_incoming = incoming.for_each(|frame| {
        if matches!(frame.opcode(), OpCode::Text | OpCode::Binary) {
            let peers = shared.peers.lock().unwrap();
            for (_, recipient) in peers.iter().filter(|(peer, _)| **peer != id) {
                let _ = recipient.unbounded_send(frame.clone());
            }
        }
        future::ready(())
    });
    let receive_from_others = rx.map(Ok).forward(outgoing);

    pin_mut!(broadcast_incoming, receive_from_others);
    future::select(broadcast_incoming, receive_from_others).await;
    shared.peers.lock().unwrap().remove(&id);
    Ok(())
}

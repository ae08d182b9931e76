//! fastwebsockets peer server, written as the crate's examples are.
//!
//! * echo mode follows `examples/echo_server.rs`: hyper's HTTP/1 server with
//!   `fastwebsockets::upgrade`, one task per socket running
//!   `FragmentCollector::read_frame` / `write_frame` inside
//!   `tokio::task::unconstrained`;
//! * `--broadcast` splits the socket as `examples/echo_server_split.rs` does
//!   and applies tokio-tungstenite's chat-server pattern on top: a shared
//!   peer map of unbounded channels, a writer task per peer, and every
//!   message forwarded to every *other* peer.
//!
//! Single-threaded (`current_thread` runtime), TCP_NODELAY, 127.0.0.1 only.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use fastwebsockets::{
    upgrade, FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError,
};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// What every upgrade handler needs: the command line and the
/// `--broadcast` peers' channels.
type Shared = peers::Shared<UnboundedSender<(OpCode, Bytes)>>;

fn main() -> std::io::Result<()> {
    peers::run_upgrade_peer("fastwebsockets-echo", server_upgrade)
}

/// Answers the upgrade request and spawns the WebSocket task.
async fn server_upgrade(
    shared: Shared,
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn(async move {
        let result = if shared.args.broadcast {
            tokio::task::unconstrained(broadcast_client(shared, fut)).await
        } else {
            tokio::task::unconstrained(echo_client(shared.args.max_message, fut)).await
        };
        // A peer closing its socket without a close frame is routine here.
        drop(result);
    });
    Ok(response)
}

/// Echoes every text and binary message back (`echo_server.rs`).
async fn echo_client(max_message: usize, fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_max_message_size(max_message);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Forwards every text and binary message to every other peer.
async fn broadcast_client(shared: Shared, fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_max_message_size(shared.args.max_message);
    let (read, mut write) = ws.split(tokio::io::split);
    let mut read = FragmentCollectorRead::new(read);

    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = unbounded_channel::<(OpCode, Bytes)>();
    shared.peers.lock().unwrap().insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some((opcode, payload)) = rx.recv().await {
            let frame = Frame::new(true, opcode, None, Payload::Borrowed(&payload));
            if write.write_frame(frame).await.is_err() {
                break;
            }
        }
    });

    let result = async {
        loop {
            // Obligated writes (pong, close reply) are dropped: the load
            // generator sends neither pings nor expects a close reply here.
            let frame = read
                .read_frame(&mut |_| async { Ok::<_, WebSocketError>(()) })
                .await?;
            match frame.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text | OpCode::Binary => {
                    let payload = Bytes::copy_from_slice(&frame.payload);
                    let peers = shared.peers.lock().unwrap();
                    for (_, recipient) in peers.iter().filter(|(peer, _)| **peer != id) {
                        let _ = recipient.send((frame.opcode, payload.clone()));
                    }
                }
                _ => {}
            }
        }
    }
    .await;
    shared.peers.lock().unwrap().remove(&id);
    writer.abort();
    result
}

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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastwebsockets::{
    upgrade, FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError,
};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use peers::Args;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Every connected peer's outgoing channel, keyed by a connection id.
type PeerMap = Arc<Mutex<HashMap<u64, UnboundedSender<(OpCode, Bytes)>>>>;

/// What every upgrade handler needs.
#[derive(Clone)]
struct Shared {
    args: Args,
    peers: PeerMap,
    next_id: Arc<AtomicU64>,
}

fn main() -> std::io::Result<()> {
    let args = Args::from_env();
    if args.tls.is_some() {
        return Err(std::io::Error::other("this peer has no TLS (--tls-cert)"));
    }
    peers::current_thread_runtime().block_on(serve(args))
}

/// Accepts connections forever; hyper serves each one with upgrades enabled.
async fn serve(args: Args) -> std::io::Result<()> {
    let listener = peers::bind(&args, "fastwebsockets-echo").await?;
    let shared = Shared {
        args,
        peers: PeerMap::default(),
        next_id: Arc::default(),
    };
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let service = service_fn(move |req| server_upgrade(shared.clone(), req));
            // Errors (a peer vanishing mid-handshake) just end the connection.
            let _ = http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
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

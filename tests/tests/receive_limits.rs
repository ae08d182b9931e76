//! Bounds on what a peer can make a server hold while a message arrives:
//! the per-message receive deadline (`Config::message_timeout`) and the
//! receive budget its connections share (`Config::receive_budget`).

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    bounded, echo_server,
    raw::{encode, Raw, CLOSE, TEXT},
};
use hubbub_core::{DeflateConfig, ReceiveBudget};
use hubbub_tests::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A peer that completes the handshake, then drips a frame a byte at a
/// time (every byte resets the idle and keep-alive timers) is cut with
/// 1008 once the message is not complete `message_timeout` after its first
/// byte; before that deadline, nothing closes.
async fn dripping_peer_is_cut_at_the_message_deadline<R: Rt>() {
    let config = Config {
        message_timeout: Some(Duration::from_millis(1500)),
        ..Config::default()
    };
    let (addr, mut ends, _server) = echo_server::<R>(config).await;
    let mut raw = Raw::connect(addr, "/").await;
    let frame = encode(true, TEXT, &[b'x'; 200], true);
    let started = std::time::Instant::now();
    let mut close = None;
    for byte in &frame {
        // Ignored: once the server has closed, the write may fail.
        let _ = raw.stream.write_all(&[*byte]).await;
        if let Ok(answer) = tokio::time::timeout(Duration::from_millis(100), raw.frame()).await {
            close = Some(answer);
            break;
        }
    }
    let elapsed = started.elapsed();
    let close = close
        .flatten()
        .expect("a close frame before the frame was whole");
    assert_eq!(close.opcode, CLOSE);
    assert_eq!(close.close_code(), 1008);
    assert_eq!(
        &close.payload[2..],
        b"message not completed within 1.5 s (Config::message_timeout)"
    );
    // Not before the deadline: at least 1.5 s of dripping.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "cut after {elapsed:?}"
    );
    let closed = bounded("server end", ends.recv()).await.flatten().unwrap();
    assert_eq!(closed.code, CloseCode::POLICY_VIOLATION);
}

/// Raw deflate of `data`, as permessage-deflate sends it (the final
/// `00 00 ff ff` removed).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    out.truncate(out.len() - 4);
    out
}

/// A connection that negotiated permessage-deflate (by hand, to send
/// what no client library sends: a message left unfinished).
async fn deflate_peer(addr: std::net::SocketAddr) -> Raw {
    let mut raw = Raw::tcp(addr).await;
    let request = "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    raw.stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        let mut byte = [0];
        assert_eq!(bounded("101", raw.stream.read(&mut byte)).await.unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("permessage-deflate"), "{head}");
    raw
}

/// 40 peers each send ~1 KiB of a compressed message that inflates to
/// 1 MiB, and leave it unfinished (under `max_message_size`, 16 MiB). The
/// server holds at most its receive budget (4 MiB here) for them: the
/// peers past it are closed with 1009, and a well-behaved client's
/// messages still pass once the others are gone.
async fn unfinished_compressed_messages_are_bounded_across_connections<R: Rt>() {
    let budget = Arc::new(ReceiveBudget::new(4 << 20));
    let config = Config {
        max_message_size: 16 << 20,
        deflate: Some(DeflateConfig::default()),
        receive_budget: Some(budget.clone()),
        ..Config::default()
    };
    let (addr, _ends, _server) = echo_server::<R>(config).await;
    let bomb = compress(&vec![0u8; 1 << 20]);
    // The whole frame but its last byte: the message stays unfinished.
    let mut frame = encode(true, TEXT, &bomb, true);
    frame[0] |= 0x40; // RSV1: compressed
    frame.pop();
    let mut peers = Vec::new();
    for _ in 0..40 {
        let mut peer = deflate_peer(addr).await;
        peer.stream.write_all(&frame).await.unwrap();
        peers.push(peer);
    }
    let mut cut = 0;
    for peer in &mut peers {
        match tokio::time::timeout(Duration::from_secs(1), peer.frame()).await {
            Ok(Some(close)) => {
                assert_eq!((close.opcode, close.close_code()), (CLOSE, 1009));
                cut += 1;
            }
            Ok(None) => panic!("ended without a close frame"),
            Err(_) => {} // still held: its message is within the budget
        }
        assert!(budget.used() <= budget.limit(), "{budget:?}");
    }
    // 1 MiB each: four fit in 4 MiB.
    assert_eq!(cut, 36);
    drop(peers);
    common::until("the budget released", || budget.used() == 0).await;
    let mut ws = bounded("connect", connect::<R>(&common::url(addr)))
        .await
        .unwrap();
    let text = "x".repeat(512 << 10);
    ws.send(Message::Text(text.clone())).await.unwrap();
    let echo = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echo, Message::Text(text));
}

hubbub_tests::cross_runtime!(
    dripping_peer_is_cut_at_the_message_deadline,
    unfinished_compressed_messages_are_bounded_across_connections,
);

//! What the echo servers (`echo`, `axum-echo`) share: the conformance
//! configuration and the echo loop.

use std::{future::Future, time::Duration};

use hubbub_core::{Config, DeflateConfig};
use hubbub_ws::{
    driver::{Timer, Transport},
    WebSocket,
};

/// A benchmark and conformance server's configuration: messages and frames
/// up to `max_message` bytes, no idle timeout, no pings, `deflate` when
/// given.
pub fn conformance_config(max_message: usize, deflate: Option<DeflateConfig>) -> Config {
    Config {
        max_message_size: max_message,
        max_frame_size: Some(max_message),
        idle_timeout: None,
        ping_interval: None,
        pong_timeout: None,
        handshake_timeout: Some(Duration::from_secs(10)),
        deflate,
        ..Config::default()
    }
}

/// Queue every message back; the stream writes the queued answers to one
/// read in one system call before it reads again.
///
/// (A plain function returning an `async move` block: an `async fn` would
/// keep its `WebSocket` argument twice in its future, and this future is
/// most of what an idle connection costs.)
#[allow(clippy::manual_async_fn)]
pub fn echo<T: Transport, K: Timer>(mut ws: WebSocket<T, K>) -> impl Future<Output = ()> {
    async move {
        loop {
            // The message moves into `feed`'s future before that is
            // awaited, so this future does not keep a slot for it too.
            let feeding = match ws.recv().await {
                Some(Ok(message)) => ws.feed(message),
                Some(Err(_)) => continue,
                None => break,
            };
            // After a close has started, sends fail; keep reading to the end.
            let _ = feeding.await;
        }
    }
}

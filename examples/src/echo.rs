//! What the echo servers (`echo`, `axum-echo`) share: the conformance
//! configuration and the echo loop.

use std::{
    future::{poll_fn, Future},
    time::Duration,
};

use futures_util::SinkExt;

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
/// most of what an idle connection costs. For the same reason the loop
/// waits for room to queue *before* it takes a message, and then queues
/// it at once through the `Sink` calls, so that no message is held
/// across a wait: the future is the `WebSocket` and a few words.)
#[allow(clippy::manual_async_fn)]
pub fn echo<T: Transport, K: Timer>(mut ws: WebSocket<T, K>) -> impl Future<Output = ()> {
    async move {
        loop {
            // Once a close has started this is an error: sends fail, and
            // the loop keeps reading to the end.
            let room = poll_fn(|cx| ws.poll_ready_unpin(cx)).await;
            match ws.recv().await {
                Some(Ok(message)) if room.is_ok() => {
                    let _ = ws.start_send_unpin(message);
                }
                Some(_) => continue,
                None => break,
            }
        }
    }
}

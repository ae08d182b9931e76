//! # hubbub-tokio
//!
//! [hubbub](hubbub_ws::hubbub_core) WebSockets on tokio: a [`WebSocket`] that is a
//! `Stream` of messages and a `Sink` for them, the server and client
//! handshakes, a TCP [`Server`], a [`Client`] that can reconnect, and the
//! realtime layer's [`Hub`] served by a [`HubServer`].
//!
//! Every protocol decision is made by the sans-IO core
//! ([`Connection`](hubbub_ws::hubbub_core::Connection)); this crate only moves bytes and keeps
//! time. One driver per connection ([`driver`]) reads into a buffer shared by
//! the thread, writes everything queued in one vectored write, and sleeps
//! until the core's next deadline (keep-alive ping, idle timeout, close
//! handshake).
//!
//! ## An echo server
//! ```no_run
//! use hubbub_tokio::{Config, Server};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     Server::new(Config::default())
//!         .serve(listener, |mut ws, _request| async move {
//!             // `feed` queues; the replies to one read leave in one write.
//!             while let Some(message) = ws.recv().await {
//!                 if let Ok(message) = message {
//!                     let _ = ws.feed(message).await;
//!                 }
//!             }
//!         })
//!         .await;
//!     Ok(())
//! }
//! ```
//!
//! ## A client
//! ```no_run
//! use hubbub_tokio::{CloseCode, Message};
//!
//! # async fn run() -> Result<(), hubbub_tokio::Error> {
//! let (mut ws, _response) = hubbub_tokio::connect("ws://127.0.0.1:9001/").await?;
//! ws.send("hello").await?;
//! if let Some(Ok(Message::Text(text))) = ws.recv().await {
//!     println!("{text}");
//! }
//! ws.close(CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```
//!
//! With `futures_util`, a [`WebSocket`] works with `StreamExt` and
//! `SinkExt`, and [`WebSocket::split`] gives halves for two tasks.
//!
//! ## A realtime server
//! [`HubServer`] serves a [`Hub`] (from `hubbub-realtime`): callbacks
//! (`on_open`, `on_message`, `on_binary`, `on_typed_message`, `on_close`,
//! `on_error`), [`Session`] handles whose sends never block, rooms,
//! encode-once broadcast, typed JSON [`Envelope`]s, slow-consumer policies
//! and a two-phase shutdown ([`ServerHandle::shutdown`]). The README has a
//! complete example.
//!
//! ## WebSockets over HTTP/2
//! With the `h2` feature, [`http2`] serves hub sessions (and the plain
//! [`Server`]'s WebSockets) over HTTP/2 streams opened by extended CONNECT
//! (RFC 8441), beside HTTP/1.1 on one TLS port chosen by ALPN.
//!
//! ## Clients: a stream, or callbacks
//! Two shapes, both with `send_json`:
//! - [`Client::connect`] and [`Client::next_event`]: a stream of
//!   [`ClientEvent`]s, for `async` code that awaits between messages or
//!   `select!`s over several sources (as [`WebSocket`] itself is).
//! - [`Client::builder`]: the server's callbacks on the client side, with a
//!   [`ClientHandle`] that is cheap to clone and whose sends only enqueue.
//!   Text that is an envelope reaches `on_typed_message` (after
//!   `on_message`), `on_open` runs on every (re)connection, `on_close` once
//!   per connection. This is the shape to choose for an event-driven client
//!   talking to a [`Hub`]: it mirrors the server, and typed events arrive
//!   parsed.
//!
//! ```no_run
//! use hubbub_tokio::{Client, ClientConfig, Reconnect};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("ws://127.0.0.1:9090/")
//!     .config(ClientConfig { reconnect: Some(Reconnect::default()), ..Default::default() })
//!     .on_open(|client| {
//!         let _ = client.send_json("room.join", json!({"room": "general"}));
//!     })
//!     .on_typed_message(|_, envelope| println!("{}: {}", envelope.event_type, envelope.payload))
//!     .on_close(|_, code, reason| println!("closed: {code} {reason}"))
//!     .connect()
//!     .await?;
//! client.send_json("chat.message", json!({"room": "general", "text": "hi"}))?;
//! client.closed().await; // until closed for good
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod rt;
#[cfg(feature = "signal")]
mod signal;

pub use rt::{Io, Tokio, TokioTimer};

hubbub_ws::runtime_front! {
    runtime: Tokio,
    timer: TokioTimer,
    io: Io,
    stream: tokio::net::TcpStream,
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

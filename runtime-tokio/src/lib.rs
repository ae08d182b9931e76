//! # hubbub-tokio
//!
//! [hubbub](hubbub_core) WebSockets on tokio: a [`WebSocket`] that is a
//! `Stream` of messages and a `Sink` for them, the server and client
//! handshakes, a TCP [`Server`], a [`Client`] that can reconnect, and the
//! realtime layer's [`Hub`] served by a [`HubServer`].
//!
//! Every protocol decision is made by the sans-IO core
//! ([`hubbub_core::Connection`]); this crate only moves bytes and keeps
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
//!         .serve(listener, |mut ws| async move {
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
//! let mut ws = hubbub_tokio::connect("ws://127.0.0.1:9001/").await?;
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
//!     .on_typed_message(|_, event_type, payload| println!("{event_type}: {payload}"))
//!     .on_close(|_, code, reason| println!("closed: {code} {reason}"))
//!     .connect()
//!     .await?;
//! client.send_json("chat.message", json!({"room": "general", "text": "hi"}))?;
//! client.closed().await; // until closed for good
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod rt;
mod signal;

use std::sync::Arc;

use hubbub_realtime::adapter;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

pub use hubbub_core::{
    Accept, ClientRequest, CloseCode, Closed, Config, DeflateConfig, HandshakeError, Initiator,
    Message, ProtocolError, Reject, Request, UsageError,
};
pub use hubbub_realtime::adapter::{
    ClientConfig, ClientEvent, ClientHandle, Error, Reconnect, ServerHandle, Step, DEFAULT_GRACE,
    LISTEN_BACKLOG,
};
pub use hubbub_realtime::{driver, http, store};
pub use hubbub_realtime::{
    Envelope, Hub, HubBuilder, OutboundLimit, SendError, Session, SessionError, SessionId,
    Settings, SettingsError, SlowConsumer,
};
pub use rt::{Io, Tokio, TokioTimer};
pub use signal::shutdown_signal;

/// A WebSocket over a tokio byte stream `S`: a `Stream` of messages and a
/// `Sink` for them (see [`adapter::WebSocket`]).
pub type WebSocket<S> = adapter::WebSocket<Io<S>, TokioTimer>;
/// The receiving half of a split [`WebSocket`].
pub type ReadHalf<S> = adapter::ReadHalf<Io<S>, TokioTimer>;
/// The sending half of a split [`WebSocket`].
pub type WriteHalf<S> = adapter::WriteHalf<Io<S>, TokioTimer>;
/// A TCP WebSocket server on tokio (see [`adapter::Server`]).
pub type Server = adapter::Server<Tokio>;
/// A client that can reconnect, on tokio (see [`adapter::Client`]).
pub type Client = adapter::Client<Tokio>;
/// Builds a callback-driven client on tokio (see [`adapter::ClientBuilder`]).
pub type ClientBuilder = adapter::ClientBuilder<Tokio>;
/// A [`Hub`] served on tokio (see [`adapter::HubServer`]).
pub type HubServer = adapter::HubServer<Tokio>;

/// Serve `app`'s HTTP routes on `listener` until this future is dropped (see
/// [`adapter::serve_http`]).
pub async fn serve_http(listener: tokio::net::TcpListener, app: http::HttpApp) {
    adapter::serve_http::<Tokio>(listener, app).await
}

/// Run the server side of the opening handshake on `stream` with the default
/// configuration, accepting any path and no subprotocol.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    adapter::accept(Io(stream), TokioTimer::default()).await
}

/// Run the server side of the opening handshake on `stream`; `decide`
/// accepts or rejects the upgrade request (see [`adapter::accept_with`]).
pub async fn accept_with<S, D>(
    stream: S,
    config: Arc<Config>,
    decide: D,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    adapter::accept_with(Io(stream), TokioTimer::default(), config, decide).await
}

/// Connect to a `ws://host[:port]/path` URL with the default
/// [`ClientConfig`].
pub async fn connect(url: &str) -> Result<WebSocket<TcpStream>, Error> {
    adapter::connect::<Tokio>(url).await
}

/// Connect to a `ws://` URL: resolve, connect (with `TCP_NODELAY`) and run
/// the opening handshake, each step within its timeout.
pub async fn connect_with(url: &str, config: &ClientConfig) -> Result<WebSocket<TcpStream>, Error> {
    adapter::connect_with::<Tokio>(url, config).await
}

/// Run the client side of the opening handshake over an already connected
/// `stream`, within `config.handshake_timeout`.
pub async fn client<S>(
    stream: S,
    request: &ClientRequest,
    config: Arc<Config>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    adapter::client(Io(stream), TokioTimer::default(), request, config).await
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

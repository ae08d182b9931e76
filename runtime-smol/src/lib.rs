//! # hubbub-smol
//!
//! [hubbub](hubbub_core) WebSockets on [smol](https://docs.rs/smol): the
//! same public surface as `hubbub-tokio` — a [`WebSocket`] that is a
//! `Stream` of messages and a `Sink` for them, [`accept`] and [`connect`],
//! a TCP [`Server`], a [`Client`] that can reconnect, the callback
//! [`Client::builder`], and a [`Hub`] served by a [`HubServer`] — because
//! it is the same code: everything lives in
//! [`hubbub_realtime::adapter`], and this crate only implements
//! [`Runtime`](hubbub_realtime::Runtime) for smol ([`Smol`]): async-io's
//! reactor and timers, async-net's sockets, smol's global executor, and
//! `async-signal` for Ctrl-C/SIGTERM.
//!
//! ## An echo server
//! ```no_run
//! use hubbub_smol::{Config, Server};
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let listener = smol::net::TcpListener::bind("127.0.0.1:9001").await?;
//!         Server::new(Config::default())
//!             .serve(listener, |mut ws| async move {
//!                 while let Some(Ok(message)) = ws.recv().await {
//!                     let _ = ws.feed(message).await;
//!                 }
//!             })
//!             .await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! ## A hub, until Ctrl-C
//! ```no_run
//! use hubbub_smol::{Config, Hub, HubServer};
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let hub = Hub::builder()
//!             .on_message(|session, text| {
//!                 let _ = session.send_text(text);
//!             })
//!             .build();
//!         HubServer::bind("127.0.0.1:9090", hub, Config::default().into())
//!             .await?
//!             .run()
//!             .await
//!     })
//! }
//! ```
//!
//! Tasks (one per connection, and each callback client's) run on smol's
//! global executor: set `SMOL_THREADS` for more than one thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod rt;
mod signal;

use std::sync::Arc;

use hubbub_realtime::adapter;
use smol::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

pub use hubbub_core::{
    Accept, ClientRequest, CloseCode, Closed, Config, HandshakeError, Initiator, Message,
    ProtocolError, Reject, Request, UsageError,
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
pub use rt::{Io, Smol, SmolTimer};
pub use signal::shutdown_signal;

/// A WebSocket over a `futures-io` byte stream `S` (a TCP stream by
/// default): a `Stream` of messages and a `Sink` for them (see
/// [`adapter::WebSocket`]).
pub type WebSocket<S = TcpStream> = adapter::WebSocket<Io<S>, SmolTimer>;
/// The receiving half of a split [`WebSocket`].
pub type ReadHalf<S = TcpStream> = adapter::ReadHalf<Io<S>, SmolTimer>;
/// The sending half of a split [`WebSocket`].
pub type WriteHalf<S = TcpStream> = adapter::WriteHalf<Io<S>, SmolTimer>;
/// A TCP WebSocket server on smol (see [`adapter::Server`]).
pub type Server = adapter::Server<Smol>;
/// A client that can reconnect, on smol (see [`adapter::Client`]).
pub type Client = adapter::Client<Smol>;
/// Builds a callback-driven client on smol (see [`adapter::ClientBuilder`]).
pub type ClientBuilder = adapter::ClientBuilder<Smol>;
/// A [`Hub`] served on smol (see [`adapter::HubServer`]).
pub type HubServer = adapter::HubServer<Smol>;

/// Serve `app`'s HTTP routes on `listener` until this future is dropped (see
/// [`adapter::serve_http`]).
pub async fn serve_http(listener: smol::net::TcpListener, app: http::HttpApp) {
    adapter::serve_http::<Smol>(listener, app).await
}

/// Run the server side of the opening handshake on `stream` with the default
/// configuration, accepting any path and no subprotocol.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    adapter::accept(Io::new(stream), SmolTimer::default()).await
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
    adapter::accept_with(Io::new(stream), SmolTimer::default(), config, decide).await
}

/// Connect to a `ws://host[:port]/path` URL with the default
/// [`ClientConfig`].
pub async fn connect(url: &str) -> Result<WebSocket, Error> {
    adapter::connect::<Smol>(url).await
}

/// Connect to a `ws://` URL: resolve, connect (with `TCP_NODELAY`) and run
/// the opening handshake, each step within its timeout.
pub async fn connect_with(url: &str, config: &ClientConfig) -> Result<WebSocket, Error> {
    adapter::connect_with::<Smol>(url, config).await
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
    adapter::client(Io::new(stream), SmolTimer::default(), request, config).await
}

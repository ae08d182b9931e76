//! # hubbub-mio
//!
//! hubbub on a hand-rolled [mio](https://docs.rs/mio) event loop: one
//! loop per thread, each a small async runtime (an executor and a
//! reactor), and a type, [`Connections`], to drive hubbub connections from
//! an application's own `mio::Poll` loop.
//!
//! [`Mio`] implements the shared layer's [`Runtime`](hubbub_realtime::Runtime)
//! on those loops, so this crate has the same public surface as
//! `hubbub-tokio` and `hubbub-smol` — a [`WebSocket`] `Stream`/`Sink`,
//! [`accept`] and [`connect`], a TCP [`Server`], a [`Client`], the callback
//! [`Client::builder`], a [`HubServer`], [`serve_http`] — written once in
//! [`hubbub_realtime::adapter`]; run them with [`block_on`] (tasks go to the
//! default loops), with [`block_on_local`] (everything on the calling
//! thread's own loop: a one-thread program) or inside a loop's task.
//! Besides, [`LoopServer`] serves a [`Hub`] on dedicated loop threads
//! without any future of the adapter layer.
//!
//! Nothing about WebSockets is decided here. Each connection runs the
//! realtime layer's [`run_session`](hubbub_realtime::run_session) over its
//! [`Driver`](hubbub_realtime::driver::Driver); this crate supplies the
//! driver's two traits — [`MioIo`] (a non-blocking `TcpStream`; on
//! `WouldBlock` the task's waker waits for the socket's next readiness
//! event) and [`LoopTimer`] (an entry, with its waker, in the loop's timer
//! heap) — and a tiny executor that polls a connection's future when
//! its socket is ready, its deadline passed, or its waker was called (by a
//! session send or a broadcast, from any thread, through the loop's
//! `mio::Waker`). Reads go through one 64 KiB buffer per thread.
//!
//! ## A hub on dedicated loops
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use hubbub_mio::{Config, Hub, LoopServer};
//!
//! # fn main() -> std::io::Result<()> {
//! let hub = Hub::builder()
//!     .on_message(|session, text| {
//!         let _ = session.send_text(text); // echo
//!     })
//!     .build();
//! let handle = LoopServer::new(hub, Arc::new(Config::default()))
//!     .threads(2)
//!     .bind("127.0.0.1:9090")?
//!     .start()?; // or .run(): until Ctrl-C or SIGTERM
//! println!("listening on {}", handle.local_addr());
//! handle.hub().broadcast_text("hello, everyone", None); // from any thread
//! handle.shutdown(Duration::from_secs(5)); // close 1001, wait, then drop
//! # Ok(()) }
//! ```
//!
//! ## Embedding
//! [`Connections`] is the loop's whole hubbub side; its documentation shows
//! an application's loop accepting connections and driving them. The
//! built-in [`LoopServer`] is that loop plus a listener and a stop request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connections;
mod io;
mod reactor;
mod rt;
mod server;
mod signal;
mod timers;

use std::sync::Arc;

use hubbub_realtime::adapter;

pub use connections::{Connections, MioDriver, Remote};
pub use hubbub_core::{
    Accept, ClientRequest, CloseCode, Closed, Config, Event, HandshakeError, Initiator, Message,
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
pub use io::MioIo;
/// The mio this crate is built on, for an embedding application's loop.
pub use mio;
pub use reactor::default_loops;
pub use rt::{block_on, block_on_local, Mio, MioListener};
pub use server::{BoundLoopServer, Handler, LoopServer, LoopServerHandle};
pub use signal::ShutdownSignal;
pub use timers::LoopTimer;

/// A WebSocket over a TCP stream of a loop: a `Stream` of messages and a
/// `Sink` for them (see [`adapter::WebSocket`]).
pub type WebSocket = adapter::WebSocket<MioIo, LoopTimer>;
/// The receiving half of a split [`WebSocket`].
pub type ReadHalf = adapter::ReadHalf<MioIo, LoopTimer>;
/// The sending half of a split [`WebSocket`].
pub type WriteHalf = adapter::WriteHalf<MioIo, LoopTimer>;
/// A TCP WebSocket server on the mio runtime (see [`adapter::Server`]).
pub type Server = adapter::Server<Mio>;
/// A client that can reconnect, on the mio runtime (see [`adapter::Client`]).
pub type Client = adapter::Client<Mio>;
/// Builds a callback-driven client on the mio runtime (see
/// [`adapter::ClientBuilder`]).
pub type ClientBuilder = adapter::ClientBuilder<Mio>;
/// A [`Hub`] served on the mio runtime (see [`adapter::HubServer`]).
pub type HubServer = adapter::HubServer<Mio>;

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (Unix). The handlers are
/// installed when this is *called*, so a signal that arrives before the
/// first poll is not lost; if they cannot be installed, it never resolves.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    <Mio as hubbub_realtime::Runtime>::shutdown_signal()
}

/// Serve `app`'s HTTP routes on `listener` until this future is dropped (see
/// [`adapter::serve_http`]).
pub async fn serve_http(listener: MioListener, app: http::HttpApp) {
    adapter::serve_http::<Mio>(listener, app).await
}

/// Run the server side of the opening handshake on `stream` with the default
/// configuration, accepting any path and no subprotocol.
pub async fn accept(stream: MioIo) -> Result<WebSocket, Error> {
    adapter::accept(stream, LoopTimer::default()).await
}

/// Run the server side of the opening handshake on `stream`; `decide`
/// accepts or rejects the upgrade request (see [`adapter::accept_with`]).
pub async fn accept_with<D>(
    stream: MioIo,
    config: Arc<Config>,
    decide: D,
) -> Result<WebSocket, Error>
where
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    adapter::accept_with(stream, LoopTimer::default(), config, decide).await
}

/// Connect to a `ws://host[:port]/path` URL with the default
/// [`ClientConfig`].
pub async fn connect(url: &str) -> Result<WebSocket, Error> {
    adapter::connect::<Mio>(url).await
}

/// Connect to a `ws://` URL: resolve, connect (with `TCP_NODELAY`) and run
/// the opening handshake, each step within its timeout.
pub async fn connect_with(url: &str, config: &ClientConfig) -> Result<WebSocket, Error> {
    adapter::connect_with::<Mio>(url, config).await
}

/// Run the client side of the opening handshake over an already connected
/// `stream`, within `config.handshake_timeout`.
pub async fn client(
    stream: MioIo,
    request: &ClientRequest,
    config: Arc<Config>,
) -> Result<WebSocket, Error> {
    adapter::client(stream, LoopTimer::default(), request, config).await
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

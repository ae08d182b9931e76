//! # hubbub-ws
//!
//! The async WebSocket layer of hubbub, written once for every runtime: a
//! [`WebSocket`] that is a `Stream` of messages and a `Sink` for them, the
//! server and client handshakes ([`accept`], [`connect`]), a TCP
//! [`Server`], and the accept loop with a two-phase shutdown that the
//! layers above serve their connections with ([`serving`]). With the
//! `tls` feature, the `tls` module runs rustls (ring provider) as one more
//! transport over any runtime's stream: servers take a `TlsAcceptor`,
//! `connect` speaks `wss://`, and [`MaybeTls`] lets one program serve and
//! connect with or without TLS through one type.
//!
//! Everything here is generic over two small traits that a runtime adapter
//! implements: the driver's [`Transport`](driver::Transport) and
//! [`Timer`](driver::Timer) (for a [`WebSocket`] and the handshakes), and
//! [`Runtime`] (what spawns, connects, listens and sleeps). The adapter
//! crates (hubbub-tokio, hubbub-smol, hubbub-mio) implement them and give
//! these types short names, so `hubbub_tokio::WebSocket` and
//! `hubbub_mio::WebSocket` are the same code. Every protocol decision is
//! made by the sans-IO core, [`hubbub_core::Connection`].
#![forbid(unsafe_code)]

mod connect;
pub mod driver;
mod error;
mod flag;
mod front;
#[cfg(feature = "h2")]
pub mod h2;
mod maybe_tls;
pub mod runtime;
mod server;
pub mod serving;
#[cfg(feature = "tls")]
pub mod tls;
mod websocket;

pub use connect::{
    client, connect, connect_with, timeout, ClientConfig, IntoClientRequest, Reconnect,
    RuntimeWebSocket,
};
pub use error::{Error, Step};
pub use flag::Flag;
/// The protocol core, for [`runtime_front!`].
pub use hubbub_core;
pub use maybe_tls::MaybeTls;
pub use runtime::{Runtime, RuntimeDriver, Signals};
pub use server::{accept, accept_with, Server};
pub use serving::{ServerHandle, Service, DEFAULT_GRACE};
pub use websocket::{ReadHalf, WebSocket, WriteHalf};

/// The listen backlog servers bind with: a burst of connections (clients
/// reconnecting after a restart, say) is queued rather than dropped and
/// retried a second later.
pub const LISTEN_BACKLOG: u32 = 1024;

//! The WebSocket adapter layer, written once for every async runtime.
//!
//! Generic over the driver's [`Transport`](crate::driver::Transport) and
//! [`Timer`](crate::driver::Timer) (a [`WebSocket`], the handshakes) or over
//! a [`Runtime`](crate::Runtime) (what spawns, connects, listens and sleeps:
//! [`Server`], [`Client`], [`ClientBuilder`], [`HubServer`]). An adapter
//! crate implements `Runtime` and re-exports these under short names, so
//! `hubbub_tokio::WebSocket<TcpStream>` and `hubbub_smol::WebSocket` are
//! the same code.

mod client;
mod client_builder;
mod error;
mod flag;
mod http_server;
mod hub_server;
mod server;
mod websocket;

pub use client::{
    client, connect, connect_with, timeout, Client, ClientConfig, ClientEvent, Reconnect,
    RuntimeWebSocket,
};
pub use client_builder::{ClientBuilder, ClientHandle};
pub use error::{Error, Step};
pub use http_server::serve_http;
pub use hub_server::{HubServer, ServerHandle, DEFAULT_GRACE, LISTEN_BACKLOG};
pub use server::{accept, accept_with, Server};
pub use websocket::{ReadHalf, WebSocket, WriteHalf};

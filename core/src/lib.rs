//! # hubbub-core
//!
//! A sans-IO WebSocket protocol engine (RFC 6455): the HTTP/1.1 upgrade
//! handshake for both roles, framing, masking, fragmentation, incremental
//! UTF-8 validation, ping/pong, keep-alive and idle timers, the close
//! handshake and size limits.
//!
//! Nothing here touches a socket, spawns a thread or reads a clock: bytes and
//! the current [`Instant`](std::time::Instant) go in, and [`Event`]s, bytes to
//! write and the next deadline come out. Runtime adapters (tokio, smol, mio)
//! drive a [`Connection`]; tests drive it directly.
//!
//! ```
//! use std::{sync::Arc, time::Instant};
//! use hubbub_core::{Accept, Config, Connection, Event};
//!
//! let now = Instant::now();
//! let mut server = Connection::server(Arc::new(Config::default()), now);
//! server.handle_input(now, b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\
//!     Upgrade: websocket\r\nConnection: Upgrade\r\n\
//!     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
//! assert!(matches!(server.poll_event(), Some(Event::Request)));
//! assert_eq!(server.request().unwrap().path(), "/chat");
//! server.accept(now, Accept::new()).unwrap();
//! assert!(matches!(server.poll_event(), Some(Event::Open(_))));
//! // The 101 response is now waiting in the transmit queue.
//! assert!(server.pending_bytes() > 0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod close;
mod config;
mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
mod error;
pub mod extension;
mod frame;
pub mod handshake;
mod inbox;
mod mask;
mod message;
mod outbox;
mod timers;
mod upgrade;
mod utf8;

pub use close::{CloseCode, Closed, Initiator};
pub use config::Config;
pub use connection::{Connection, Event, Opened, Role};
#[cfg(feature = "deflate")]
pub use deflate::DeflateConfig;
pub use error::{ProtocolError, UsageError};
pub use frame::{EncodedFrame, EncodedFrames, OpCode};
pub use handshake::{Accept, ClientRequest, HandshakeError, Reject, Request, Response};
pub use message::Message;
pub use upgrade::{Negotiated, Upgrade};

/// Internals re-exported for this crate's own benches and tests (feature
/// `internals`): not a stable API, may change in any release.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::mask::apply_mask;
}

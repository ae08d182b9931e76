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
//!
//! # A run loop
//!
//! A blocking echo server over `std::net`, one thread per connection,
//! driving each [`Connection`] in the documented order: feed input (bytes,
//! EOF or a timeout), take every event, write every byte, then wait for
//! input no longer than [`poll_timeout`](Connection::poll_timeout).
//!
//! ```no_run
//! use std::{
//!     io::{self, ErrorKind, IoSlice, Read, Write},
//!     net::{Shutdown, TcpListener, TcpStream},
//!     sync::Arc,
//!     time::{Duration, Instant},
//! };
//!
//! use hubbub_core::{Accept, Config, Connection, Event};
//!
//! fn main() -> io::Result<()> {
//!     let config = Arc::new(Config::default());
//!     for stream in TcpListener::bind("127.0.0.1:9001")?.incoming() {
//!         let (stream, config) = (stream?, config.clone());
//!         std::thread::spawn(move || serve(stream, config));
//!     }
//!     Ok(())
//! }
//!
//! fn serve(mut stream: TcpStream, config: Arc<Config>) -> io::Result<()> {
//!     let mut conn = Connection::server(config, Instant::now());
//!     let mut buf = vec![0; 16 << 10];
//!     let mut write_shut = false;
//!     loop {
//!         // 1. Every event, oldest first.
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 Event::Request => {
//!                     // Inspect `conn.request()` here; reject or accept.
//!                     conn.accept(Instant::now(), Accept::new())
//!                         .map_err(io::Error::other)?;
//!                 }
//!                 // Echo; fails harmlessly (NotOpen) once closing.
//!                 Event::Message(message) => drop(conn.send(message)),
//!                 Event::Closed(closed) => eprintln!("closed: {closed:?}"),
//!                 Event::HandshakeFailed(error) => eprintln!("handshake: {error}"),
//!                 _ => {}
//!             }
//!         }
//!         // 2. Every queued byte, one vectored write at a time.
//!         while conn.pending_bytes() > 0 {
//!             let mut slices = [IoSlice::new(&[]); 32];
//!             let n = conn.transmit_slices(&mut slices);
//!             let written = stream.write_vectored(&slices[..n])?;
//!             if written == 0 {
//!                 return Err(ErrorKind::WriteZero.into());
//!             }
//!             conn.advance_transmit(written);
//!         }
//!         if conn.is_finished() {
//!             return Ok(());
//!         }
//!         // Closed and flushed: end our half, read until the peer's EOF.
//!         if conn.is_closed() && !write_shut {
//!             stream.shutdown(Shutdown::Write)?;
//!             write_shut = true;
//!         }
//!         // 3. Wait for input, at most until the next deadline (`None`
//!         //    blocks; a zero timeout is an error, hence at least 1 ms).
//!         let wait = conn.poll_timeout().map(|deadline| {
//!             let left = deadline.saturating_duration_since(Instant::now());
//!             left.max(Duration::from_millis(1))
//!         });
//!         stream.set_read_timeout(wait)?;
//!         match stream.read(&mut buf) {
//!             Ok(0) => conn.handle_eof(Instant::now()),
//!             Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!             Err(e) if e.kind() == ErrorKind::Interrupted => {}
//!             Err(e) => return Err(e),
//!         }
//!         // Fire whatever timer is due (harmless when none is).
//!         conn.handle_timeout(Instant::now());
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod budget;
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

pub use budget::ReceiveBudget;
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

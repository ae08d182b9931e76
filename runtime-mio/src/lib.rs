//! # hubbub-mio
//!
//! [hubbub](hubbub_core)'s realtime [`Hub`] on a hand-rolled
//! [mio](https://docs.rs/mio) event loop: no async runtime, one loop per
//! thread, and a type, [`Connections`], to drive hubbub connections from an
//! application's own `mio::Poll` loop.
//!
//! Nothing about WebSockets is decided here. Each connection runs the
//! realtime layer's [`run_session`](hubbub_realtime::run_session) over its
//! [`Driver`](hubbub_realtime::driver::Driver); this crate supplies the
//! driver's two traits — [`MioIo`] (a non-blocking `TcpStream`, where
//! `WouldBlock` is `Pending`) and [`LoopTimer`] (an entry in the loop's
//! timer heap) — and a tiny executor that polls a connection's future when
//! its socket is ready, its deadline passed, or its waker was called (by a
//! session send or a broadcast, from any thread, through the loop's
//! `mio::Waker`). Reads go through one 64 KiB buffer per thread.
//!
//! ## A server
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use hubbub_mio::{Config, Hub, Server};
//!
//! # fn main() -> std::io::Result<()> {
//! let hub = Hub::builder()
//!     .on_message(|session, text| {
//!         let _ = session.send_text(text); // echo
//!     })
//!     .build();
//! let handle = Server::new(hub, Arc::new(Config::default()))
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
//! built-in [`Server`] is that loop plus a listener and a stop request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connections;
mod io;
mod server;
mod signal;
mod timers;

pub use connections::{Connections, MioDriver, Remote};
pub use hubbub_core::{Accept, CloseCode, Config, Event, Message};
pub use hubbub_realtime::driver;
pub use hubbub_realtime::{
    Envelope, Hub, HubBuilder, OutboundLimit, SendError, Session, SessionError, SessionId,
    Settings, SlowConsumer,
};
pub use io::MioIo;
/// The mio this crate is built on, for an embedding application's loop.
pub use mio;
pub use server::{BoundServer, Handler, Server, ServerHandle, DEFAULT_GRACE};
pub use signal::ShutdownSignal;
pub use timers::LoopTimer;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

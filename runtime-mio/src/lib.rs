//! # hubbub-mio
//!
//! hubbub on a hand-rolled [mio](https://docs.rs/mio) event loop: one
//! loop per thread, each a small async runtime (an executor and a
//! reactor), and a type, [`Connections`], to drive hubbub connections from
//! an application's own `mio::Poll` loop.
//!
//! [`Mio`] implements the shared layer's [`Runtime`](hubbub_ws::Runtime)
//! on those loops, so this crate has the same public surface as
//! `hubbub-tokio` and `hubbub-smol` — a [`WebSocket`] `Stream`/`Sink`,
//! [`accept`] and [`connect`], a TCP [`Server`], a [`Client`], the callback
//! [`Client::builder`], a [`HubServer`], [`serve_http`] — written once in
//! [`hubbub_ws`] and the layers above it; run them with [`block_on`] (tasks go to the
//! default loops), with [`block_on_local`] (everything on the calling
//! thread's own loop: a one-thread program) or inside a loop's task.
//! Besides, [`LoopServer`] serves a [`Hub`] on dedicated loop threads:
//! each a [`block_on_local`] loop running the shared [`HubServer`].
//!
//! Nothing about WebSockets is decided here. Each connection runs the
//! hub's [`run_session`](hubbub_hub::run_session) over its
//! [`Driver`](hubbub_ws::driver::Driver); this crate supplies the
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
//! an application's loop accepting connections and driving them, on the
//! same executor as [`block_on_local`]'s loops.
// The one exception, with its proof: a task's future and waker share an
// allocation (`task`).
#![deny(unsafe_code)]

#[cfg(feature = "hub")]
mod connections;
mod io;
mod reactor;
mod rt;
#[cfg(feature = "hub")]
mod server;
#[cfg(feature = "signal")]
mod signal;
#[allow(unsafe_code)]
mod task;
mod timers;

#[cfg(feature = "hub")]
pub use connections::{Connections, MioDriver, Remote};
pub use io::MioIo;
/// The mio this crate is built on, for an embedding application's loop.
pub use mio;
pub use reactor::default_loops;
pub use rt::{block_on, block_on_local, Mio, MioListener};
#[cfg(feature = "hub")]
pub use server::{BoundLoopServer, Handler, LoopServer, LoopServerHandle};
#[cfg(feature = "signal")]
pub use signal::ShutdownSignal;
pub use timers::LoopTimer;

/// A byte stream of a loop is a [`Transport`](hubbub_ws::driver::Transport)
/// already: the identity, for [`runtime_front!`](hubbub_ws::runtime_front).
pub type Io<S> = S;

hubbub_ws::runtime_front! {
    runtime: Mio,
    timer: LoopTimer,
    io: Io,
    stream: MioIo,
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! # hubbub-smol
//!
//! [hubbub](hubbub_ws::hubbub_core) WebSockets on [smol](https://docs.rs/smol): the
//! same public surface as `hubbub-tokio` — a [`WebSocket`] that is a
//! `Stream` of messages and a `Sink` for them, [`accept`] and [`connect`],
//! a TCP [`Server`], a [`Client`] that can reconnect, the callback
//! [`Client::builder`], and a [`Hub`] served by a [`HubServer`] — because
//! it is the same code: everything lives in [`hubbub_ws`] and the layers
//! above it, and this crate only implements
//! [`Runtime`](hubbub_ws::Runtime) for smol ([`Smol`]): async-io's
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
//!             .serve(listener, |mut ws, _request| async move {
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
//! global executor: set `SMOL_THREADS` for more than one thread. A server's
//! main future costs less under [`block_on`] than under `smol::block_on`:
//! the calling thread then leaves async-io's reactor to the executor's
//! thread, which handles the connections' events itself instead of being
//! woken for each of them.
#![forbid(unsafe_code)]

mod rt;
#[cfg(feature = "signal")]
mod signal;

pub use rt::{block_on, Io, Smol, SmolTimer};

hubbub_ws::runtime_front! {
    runtime: Smol,
    timer: SmolTimer,
    io: Io,
    stream: smol::net::TcpStream,
}

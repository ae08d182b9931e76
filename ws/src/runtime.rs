//! What the shared adapter code needs from an async runtime.
//!
//! The WebSocket, server, client and hub-server logic in this crate is
//! written once, generic over [`Runtime`]; an adapter crate (hubbub-tokio,
//! hubbub-smol) implements the trait for its runtime in a few lines and
//! re-exports the generic types under short aliases. Everything here is a
//! plain translation to the runtime's own calls: no protocol logic.
//! (hubbub-mio implements it on its hand-rolled loops.)

use std::{future::Future, io, net::SocketAddr, time::Duration, time::Instant};

use crate::driver::{Timer, Transport};

/// An async runtime, as the shared adapter code uses it.
///
/// Implemented on a zero-sized marker type (`hubbub_tokio::Tokio`,
/// `hubbub_smol::Smol`, `hubbub_mio::Mio`). Every future it returns must be `Send`, so that
/// the shared code's futures (a session, a client's task) are `Send` too.
pub trait Runtime: Send + Sync + 'static {
    /// A connected TCP stream, as the driver's [`Transport`].
    type Stream: Transport + Send + Unpin + 'static;
    /// The runtime's timer, as the driver's [`Timer`]. `Default` makes an
    /// unset timer (no allocation until the first deadline, ideally).
    type Timer: Timer + Default + Send + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;

    /// The current time on the runtime's clock (the one its timers and
    /// [`sleep`](Self::sleep) use).
    fn now() -> Instant;

    /// Sleep for `duration`.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;

    /// Run `future` on the runtime, detached: it runs to its end even if
    /// nobody waits for it. (Shutdown aborts it through the shared code's
    /// own abort handles, not through the runtime.)
    fn spawn<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Resolve `host:port` to socket addresses (system resolver; may use
    /// the runtime's blocking pool).
    fn resolve(host: &str, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;

    /// Open a TCP connection to `addr` and set `TCP_NODELAY` on it.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// The address of the peer of `stream`.
    fn peer_addr(stream: &Self::Stream) -> io::Result<SocketAddr>;

    /// Bind a listener on `addr` with `SO_REUSEADDR` (Unix) and a listen
    /// backlog of `backlog`.
    fn bind(addr: SocketAddr, backlog: u32) -> io::Result<Self::Listener>;

    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Accept the next connection on `listener`, with `TCP_NODELAY` set.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

/// A runtime that can wait for the process's shutdown signals (an adapter's
/// `signal` feature): what [`HubServer::run`] waits for.
///
/// [`HubServer::run`]: https://docs.rs/hubbub-hub/latest/hubbub_hub/struct.HubServer.html#method.run
pub trait Signals: Runtime {
    /// Resolves on Ctrl-C, or SIGTERM on Unix. The handlers are installed
    /// when this is *called*, not when it is first polled, so a signal that
    /// arrives in between is not lost.
    fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static;
}

/// The driver over a runtime's stream (under TLS or not) and timer.
pub type RuntimeDriver<R> =
    crate::driver::Driver<crate::MaybeTls<<R as Runtime>::Stream>, <R as Runtime>::Timer>;

//! [`Connections`]: hubbub connections driven from a `mio::Poll` loop.
//!
//! The loop's executor and reactor (see the `reactor` module) plus a
//! [`Hub`]: each accepted stream becomes a task running the realtime
//! layer's [`run_session`] (or any future built over a
//! [`Driver`](hubbub_ws::driver::Driver)). A task is polled when it
//! is woken: by a readiness event of its socket, by its timer's deadline in
//! the loop's heap, or by any thread (a `Session` send, a broadcast, a
//! shutdown), which puts it on the loop's ready list and interrupts the
//! poll through the loop's `mio::Waker`.
//!
//! The built-in loop ([`LoopServer`](crate::LoopServer)) and the [`Mio`]
//! runtime's loops use exactly this executor, so an embedding application
//! runs the same code path — and its tasks may use the runtime
//! ([`Mio::spawn`](hubbub_ws::Runtime::spawn), sockets, timers): they
//! join this loop.
//!
//! [`Mio`]: crate::Mio

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_core::{Config, Connection};
use hubbub_hub::{run_session, Hub};
use hubbub_ws::{driver::Driver, MaybeTls};
use mio::{event::Event, net::TcpStream, Registry, Token};

use crate::{io::MioIo, reactor::Executor, reactor::Shared, timers::LoopTimer};

/// The driver of a connection on a mio loop (under TLS or not: see
/// [`MaybeTls`]).
pub type MioDriver = Driver<MaybeTls<MioIo>, LoopTimer>;

/// Wakes a loop from any thread, so that its owner looks at state it
/// shares with other threads (the built-in server's stop request).
#[derive(Clone)]
pub struct Remote(Arc<Shared>);

impl Remote {
    /// Interrupt the loop's poll (or make its next one return at once):
    /// after this, the loop's owner sees what was shared before the call.
    pub fn wake(&self) {
        // Not `signal`: that skips the wake while the loop is processing,
        // and the owner's own state is not on the ready list.
        self.0.wake_loop();
    }

    /// Run `future` on the loop (from any thread).
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(future);
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

/// The hubbub connections of one `mio::Poll` loop, serving a [`Hub`].
///
/// It owns token `base` (its `mio::Waker`) and every token above it (one
/// per connection); the application keeps the tokens below `base` for its
/// own sources. mio allows one `Waker` per poll, and this is it: to wake
/// the loop from other threads for its own purposes, the application uses
/// [`remote`](Self::remote). One turn of the application's loop:
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
/// use hubbub_mio::{Config, Connections, Hub};
/// use mio::{net::TcpListener, Events, Interest, Poll, Token};
///
/// # fn main() -> std::io::Result<()> {
/// const LISTENER: Token = Token(0);
/// let mut poll = Poll::new()?;
/// let mut listener = TcpListener::bind("127.0.0.1:9001".parse().unwrap())?;
/// poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
/// let hub = Hub::builder().on_message(|s, text| { let _ = s.send_text(text); }).build();
/// let mut connections = Connections::new(poll.registry(), Token(1), hub, Arc::new(Config::default()))?;
/// let mut events = Events::with_capacity(256);
/// loop {
///     poll.poll(&mut events, connections.next_timeout())?;
///     for event in &events {
///         if event.token() == LISTENER {
///             while let Ok((stream, peer)) = listener.accept() {
///                 connections.accept(poll.registry(), stream, peer)?;
///             }
///         } else {
///             connections.handle_event(event); // false: not a hubbub token
///         }
///     }
///     connections.process(); // timers, wakeups, ready connections
/// }
/// # }
/// ```
pub struct Connections {
    executor: Executor,
    hub: Hub,
    config: Arc<Config>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("tasks", &self.executor.len())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Connections on `registry`'s poll serving `hub` with `config`; the
    /// loop's `mio::Waker` takes token `base`, sockets the tokens above.
    pub fn new(
        registry: &Registry,
        base: Token,
        hub: Hub,
        config: Arc<Config>,
    ) -> io::Result<Self> {
        Ok(Connections {
            executor: Executor::new(registry, base)?,
            hub,
            config,
        })
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A handle that wakes this loop, or spawns onto it, from another thread.
    pub fn remote(&self) -> Remote {
        Remote(self.executor.shared.clone())
    }

    /// Serve an accepted stream as a session of the hub: sets `TCP_NODELAY`,
    /// registers it and schedules its first poll.
    pub fn accept(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> io::Result<()> {
        let hub = self.hub.clone();
        self.accept_with(registry, stream, move |driver| {
            run_session(driver, hub, Some(peer))
        })
    }

    /// Serve an accepted stream with `serve` instead of as a hub session:
    /// it gets the server-side driver (this loop's `Config`), still to
    /// open (`Driver::open` runs the handshake). For plain WebSocket
    /// servers; sets `TCP_NODELAY` and registers the stream like
    /// [`accept`](Self::accept).
    pub fn accept_with<F>(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        serve: impl FnOnce(MioDriver) -> F,
    ) -> io::Result<()>
    where
        F: Future<Output = ()> + 'static,
    {
        let _ = stream.set_nodelay(true);
        let conn = Connection::server(self.config.clone(), Instant::now());
        self.spawn_stream(registry, stream, move |io, timer| {
            serve(Driver::new(conn, MaybeTls::Plain(io), timer))
        })
    }

    /// Run the future `make` builds over `stream` (registered with this
    /// loop for read and write readiness) and a timer of this loop: a
    /// client connection, say, driven with the realtime layer's
    /// `drive_session`. (`registry` is the loop's own; the stream is
    /// registered through the loop's clone of it.)
    pub fn spawn_stream<F>(
        &mut self,
        _registry: &Registry,
        stream: TcpStream,
        make: impl FnOnce(MioIo, LoopTimer) -> F,
    ) -> io::Result<()>
    where
        F: Future<Output = ()> + 'static,
    {
        let io = MioIo::register(stream, self.executor.shared.clone())?;
        self.spawn(|timer| make(io, timer));
        Ok(())
    }

    /// Run a future on this loop, with a timer of the loop; returns its
    /// task key. It is polled first on the next [`process`](Self::process).
    pub fn spawn<F>(&mut self, make: impl FnOnce(LoopTimer) -> F) -> usize
    where
        F: Future<Output = ()> + 'static,
    {
        let future = make(LoopTimer::on(self.executor.shared.clone()));
        self.executor.spawn(future)
    }

    /// Note a readiness event: wakes the task waiting for it. Returns
    /// false when the token is not one of this loop's (nor its waker's):
    /// the event belongs to the application.
    pub fn handle_event(&mut self, event: &Event) -> bool {
        self.executor.handle_event(event)
    }

    /// How long the loop may sleep: zero while tasks are scheduled, else
    /// until the earliest deadline (`None`: no deadline). Call it after
    /// [`process`](Self::process), right before polling.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.executor.next_timeout()
    }

    /// Fire due timers and poll every scheduled task (those with readiness
    /// events, woken from other threads, or due), a bounded number of
    /// rounds.
    pub fn process(&mut self) {
        self.executor.process();
    }

    /// Drop every connection at once (the end of a shutdown's grace
    /// period): each session still open gets `on_close` with 1006.
    pub fn abort_all(&mut self) {
        self.executor.abort_all();
    }

    /// Connections (tasks) running.
    pub fn len(&self) -> usize {
        self.executor.len()
    }

    /// No connection (task) is running.
    pub fn is_empty(&self) -> bool {
        self.executor.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection keeps inline: its session future (the
    /// driver, the core's `Connection`, the session's state) in one box,
    /// and a slab slot. (An `async fn` run_session made it 1440 bytes.)
    #[test]
    fn a_connection_task_is_small() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let conn = Connection::server(Arc::new(Config::default()), Instant::now());
        let poll = mio::Poll::new().unwrap();
        let executor = Executor::new(poll.registry(), Token(0)).unwrap();
        let timer = LoopTimer::on(executor.shared.clone());
        let io = MioIo::register(TcpStream::from_std(server), executor.shared.clone()).unwrap();
        let future = run_session(
            Driver::new(conn, io, timer),
            Hub::builder().build(),
            Some(peer),
        );
        let size = size_of_val(&future);
        assert!(size <= 1024, "{size} bytes");
    }
}

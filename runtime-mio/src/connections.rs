//! [`Connections`]: hubbub connections driven from a `mio::Poll` loop.
//!
//! A tiny single-threaded executor. Its tasks are the per-connection
//! futures of the realtime layer ([`run_session`], or any future built
//! over a [`Driver`](hubbub_realtime::driver::Driver)), kept in a slab; a
//! task's key is its mio token (after the loop's waker token). A task is
//! polled when it is *scheduled*: by a readiness event for its token, by its
//! deadline in the loop's timer heap, or by its [`Waker`] — which any thread
//! may call (a `Session` send, a broadcast, a shutdown): the key goes onto
//! the loop's ready list and the loop's `mio::Waker` interrupts its poll.
//!
//! The built-in loop ([`Server`](crate::Server)) uses exactly this type, so
//! an embedding application runs the same code path.

use std::{
    cell::RefCell,
    future::Future,
    io,
    net::SocketAddr,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex, MutexGuard,
    },
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

use hubbub_core::{Config, Connection};
use hubbub_realtime::{driver::Driver, run_session, Hub};
use mio::{event::Event, net::TcpStream, Interest, Registry, Token};
use slab::Slab;

use crate::{
    io::MioIo,
    timers::{LoopTimer, Timers},
};

/// The driver of a connection on a mio loop.
pub type MioDriver = Driver<MioIo, LoopTimer>;

/// Rounds of polling in one [`Connections::process`] before returning to
/// the poll (tasks that keep waking each other must not starve I/O).
const MAX_ROUNDS: usize = 64;

/// What every waker of the loop shares, across threads.
struct Shared {
    /// Keys of scheduled tasks.
    ready: Mutex<Vec<usize>>,
    /// The loop is awake or already signalled: a wake need not interrupt
    /// its poll.
    signalled: AtomicBool,
    waker: mio::Waker,
}

impl Shared {
    fn ready(&self) -> MutexGuard<'_, Vec<usize>> {
        // Pushing a key cannot leave the list inconsistent: ignore poison.
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn schedule(&self, key: usize) {
        self.ready().push(key);
        self.signal();
    }

    fn signal(&self) {
        if !self.signalled.swap(true, SeqCst) {
            // Only fails if the eventfd is gone, i.e. the loop is.
            let _ = self.waker.wake();
        }
    }
}

/// One task's waker: schedules its key at most once until it is polled.
struct TaskWaker {
    key: usize,
    scheduled: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, SeqCst) {
            self.shared.schedule(self.key);
        }
    }
}

impl TaskWaker {
    /// Schedule from the loop's own thread, outside `process`, which runs
    /// next anyway: no need to interrupt a poll.
    fn schedule_local(&self) {
        if !self.scheduled.swap(true, SeqCst) {
            self.shared.ready().push(self.key);
        }
    }
}

struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    waker: Arc<TaskWaker>,
}

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
        let _ = self.0.waker.wake();
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
    tasks: Slab<Task>,
    timers: Rc<RefCell<Timers>>,
    shared: Arc<Shared>,
    base: usize,
    hub: Hub,
    config: Arc<Config>,
    /// The ready list being worked on (swapped with the shared one, so
    /// both keep their capacity).
    batch: Vec<usize>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("tasks", &self.tasks.len())
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Connections on `registry`'s poll serving `hub` with `config`; the
    /// loop's `mio::Waker` takes token `base`, connections the tokens above.
    pub fn new(
        registry: &Registry,
        base: Token,
        hub: Hub,
        config: Arc<Config>,
    ) -> io::Result<Self> {
        let waker = mio::Waker::new(registry, base)?;
        Ok(Connections {
            tasks: Slab::new(),
            timers: Rc::default(),
            shared: Arc::new(Shared {
                ready: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                waker,
            }),
            base: base.0,
            hub,
            config,
            batch: Vec::new(),
        })
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A handle that wakes this loop from another thread.
    pub fn remote(&self) -> Remote {
        Remote(self.shared.clone())
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
            serve(Driver::new(conn, io, timer))
        })
    }

    /// Run the future `make` builds over `stream` (registered here for
    /// read and write readiness) and a timer of this loop: a client
    /// connection, say, driven with the realtime layer's `drive_session`.
    pub fn spawn_stream<F>(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        make: impl FnOnce(MioIo, LoopTimer) -> F,
    ) -> io::Result<()>
    where
        F: Future<Output = ()> + 'static,
    {
        let key = self.tasks.vacant_entry().key();
        registry.register(
            &mut stream,
            self.token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.spawn(|timer| make(MioIo::new(stream), timer));
        Ok(())
    }

    /// Run a future on this loop, with a timer of the loop; returns its
    /// task key. It is polled first on the next [`process`](Self::process).
    pub fn spawn<F>(&mut self, make: impl FnOnce(LoopTimer) -> F) -> usize
    where
        F: Future<Output = ()> + 'static,
    {
        let entry = self.tasks.vacant_entry();
        let key = entry.key();
        let future = make(LoopTimer::new(self.timers.clone(), key));
        let waker = Arc::new(TaskWaker {
            key,
            scheduled: AtomicBool::new(false),
            shared: self.shared.clone(),
        });
        waker.schedule_local();
        entry.insert(Task {
            future: Box::pin(future),
            waker,
        });
        key
    }

    /// Note a readiness event: schedules the connection it is for. Returns
    /// false when the token is not one of these connections' (nor the
    /// waker's): the event belongs to the application.
    pub fn handle_event(&mut self, event: &Event) -> bool {
        let token = event.token().0;
        if token < self.base {
            return false;
        }
        if let Some(task) = token
            .checked_sub(self.base + 1)
            .and_then(|key| self.tasks.get(key))
        {
            task.waker.schedule_local();
        }
        true
    }

    /// How long the loop may sleep: zero while tasks are scheduled, else
    /// until the earliest deadline (`None`: no deadline). Call it after
    /// [`process`](Self::process), right before polling.
    pub fn next_timeout(&self) -> Option<Duration> {
        if !self.shared.ready().is_empty() {
            return Some(Duration::ZERO);
        }
        let next = self.timers.borrow_mut().next()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    /// Fire due timers and poll every scheduled connection (those with
    /// readiness events, woken from other threads, or due), a bounded
    /// number of rounds.
    pub fn process(&mut self) {
        // Wakes from here on are seen by the loop below, or by
        // `next_timeout`: they need not interrupt a poll.
        self.shared.signalled.store(true, SeqCst);
        for _ in 0..MAX_ROUNDS {
            let tasks = &self.tasks;
            self.timers.borrow_mut().expire(Instant::now(), |key| {
                if let Some(task) = tasks.get(key) {
                    task.waker.wake_by_ref();
                }
            });
            std::mem::swap(&mut *self.shared.ready(), &mut self.batch);
            if self.batch.is_empty() {
                break;
            }
            let mut batch = std::mem::take(&mut self.batch);
            for key in batch.drain(..) {
                self.poll_task(key);
            }
            self.batch = batch;
        }
        // From here on, a wake must interrupt the coming poll; one that came
        // before is seen by `next_timeout`.
        self.shared.signalled.store(false, SeqCst);
    }

    fn poll_task(&mut self, key: usize) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        task.waker.scheduled.store(false, SeqCst);
        crate::io::next_poll();
        let waker = Waker::from(task.waker.clone());
        let mut cx = Context::from_waker(&waker);
        // A panicking callback ends its own connection, not the loop.
        let polled = catch_unwind(AssertUnwindSafe(|| task.future.as_mut().poll(&mut cx)));
        if !matches!(polled, Ok(Poll::Pending)) {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: usize) {
        // Dropping the task closes its socket (which leaves the poll) and,
        // for a session still registered, calls `on_close`.
        drop(self.tasks.remove(key));
        self.timers.borrow_mut().forget(key);
    }

    /// Drop every connection at once (the end of a shutdown's grace
    /// period): each session still open gets `on_close` with 1006.
    pub fn abort_all(&mut self) {
        for key in self.tasks.iter().map(|(key, _)| key).collect::<Vec<_>>() {
            self.remove(key);
        }
        self.shared.ready().clear();
    }

    /// Connections (tasks) running.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// No connection (task) is running.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn token(&self, key: usize) -> Token {
        Token(self.base + 1 + key)
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
        let timer = LoopTimer::new(Rc::default(), 0);
        let io = MioIo::new(TcpStream::from_std(server));
        let future = run_session(
            Driver::new(conn, io, timer),
            Hub::builder().build(),
            Some(peer),
        );
        let size = std::mem::size_of_val(&future);
        assert!(size <= 1024, "{size} bytes");
        assert!(std::mem::size_of::<Task>() <= 24);
    }
}

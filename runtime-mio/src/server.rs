//! The built-in server: one [`Connections`] loop per thread, each
//! accepting from its own clone of one listener, and a [`LoopServerHandle`]
//! that shuts them down from any thread.

use std::{
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    os::fd::OwnedFd,
    pin::Pin,
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use hubbub_core::Config;
use hubbub_hub::Hub;
use mio::{net::TcpListener, Events, Interest, Poll, Token};

use crate::{Connections, MioDriver, Remote};

use hubbub_ws::DEFAULT_GRACE;

/// The listener's token in the built-in loop; connections use the tokens
/// from [`CONNECTIONS`] on.
const LISTENER: Token = Token(0);
const CONNECTIONS: Token = Token(1);

/// How long a loop stops accepting after an accept error (out of file
/// descriptors, say) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// A [`Hub`] server on mio loops; [`bind`](Self::bind) it, then
/// [`run`](BoundLoopServer::run) or [`start`](BoundLoopServer::start).
///
/// ```no_run
/// use std::sync::Arc;
/// use hubbub_mio::{Config, Hub, LoopServer};
///
/// # fn main() -> std::io::Result<()> {
/// let hub = Hub::builder().on_message(|s, text| { let _ = s.send_text(text); }).build();
/// LoopServer::new(hub, Arc::new(Config::default()))
///     .threads(2)
///     .bind("127.0.0.1:9090")?
///     .run() // until Ctrl-C or SIGTERM
/// # }
/// ```
#[derive(Clone)]
pub struct LoopServer {
    hub: Hub,
    config: Arc<Config>,
    threads: usize,
    handler: Option<Handler>,
}

/// What [`LoopServer::handler`] runs for each connection.
pub type Handler = Arc<dyn Fn(MioDriver) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

impl std::fmt::Debug for LoopServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopServer")
            .field("threads", &self.threads)
            .field("handler", &self.handler.is_some())
            .finish_non_exhaustive()
    }
}

impl LoopServer {
    /// A server for `hub`, with `config` for every connection, on one thread.
    pub fn new(hub: Hub, config: Arc<Config>) -> Self {
        LoopServer {
            hub,
            config,
            threads: 1,
            handler: None,
        }
    }

    /// Serve every connection with `handler` (given the connection's
    /// driver, still to open) instead of as a session of the hub: a plain
    /// WebSocket server. Shutdown then stops accepting, waits up to its
    /// grace period for the connections to end, and drops the rest.
    pub fn handler<F>(mut self, handler: impl Fn(MioDriver) -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = ()> + 'static,
    {
        self.handler = Some(Arc::new(move |driver| Box::pin(handler(driver))));
        self
    }

    /// Run `n` event loops (threads), each accepting from the listener
    /// (at least one).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Bind `addr` (the first of its addresses that binds). mio's listener
    /// sets `SO_REUSEADDR` and a listen backlog of 1024.
    pub fn bind(self, addr: impl ToSocketAddrs) -> io::Result<BoundLoopServer> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match TcpListener::bind(addr) {
                Ok(listener) => return Ok(self.listener(OwnedFd::from(listener).into())),
                Err(error) => last = Some(error),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Serve on an already bound listener.
    pub fn listener(self, listener: std::net::TcpListener) -> BoundLoopServer {
        BoundLoopServer {
            server: self,
            listener,
        }
    }
}

/// A [`LoopServer`] with its listener.
#[derive(Debug)]
pub struct BoundLoopServer {
    server: LoopServer,
    listener: std::net::TcpListener,
}

impl BoundLoopServer {
    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Start the loops on their threads; returns once each one runs.
    pub fn start(self) -> io::Result<LoopServerHandle> {
        let addr = self.listener.local_addr()?;
        self.listener.set_nonblocking(true)?;
        let mut loops = Vec::new();
        for n in 0..self.server.threads {
            let listener = self.listener.try_clone()?;
            let (hub, config) = (self.server.hub.clone(), self.server.config.clone());
            let handler = self.server.handler.clone();
            let stop = Arc::new(Mutex::new(None));
            let (started, remote) = mpsc::channel();
            let stop_flag = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("hubbub-mio-{n}"))
                .spawn(move || serve(listener, hub, config, handler, &stop_flag, started))?;
            let error = match remote.recv() {
                Ok(Ok(remote)) => {
                    loops.push(Loop {
                        remote,
                        stop,
                        thread,
                    });
                    continue;
                }
                Ok(Err(error)) => error,
                Err(_) => io::Error::other("event loop thread failed to start"),
            };
            // Stop the loops already running (they serve no session yet:
            // the caller has no address) before reporting.
            let _ = thread.join();
            for done in stop_loops(&mut loops, Duration::ZERO) {
                let _ = done.join();
            }
            return Err(error);
        }
        Ok(LoopServerHandle {
            addr,
            hub: self.server.hub,
            loops,
        })
    }

    /// Serve until Ctrl-C or SIGTERM, then shut down gracefully (waiting
    /// up to [`DEFAULT_GRACE`]). The signal handlers are installed before
    /// the loops start (Unix only; elsewhere this serves until the process
    /// ends).
    pub fn run(self) -> io::Result<()> {
        let signal = crate::ShutdownSignal::install()?;
        let handle = self.start()?;
        signal.wait();
        handle.shutdown(DEFAULT_GRACE);
        Ok(())
    }
}

/// One running loop, seen from the handle.
struct Loop {
    remote: Remote,
    /// Set once: the grace period of the shutdown.
    stop: Arc<Mutex<Option<Duration>>>,
    thread: JoinHandle<()>,
}

/// A running server, usable from any thread.
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
pub struct LoopServerHandle {
    addr: SocketAddr,
    hub: Hub,
    loops: Vec<Loop>,
}

impl std::fmt::Debug for LoopServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopServerHandle")
            .field("addr", &self.addr)
            .field("threads", &self.loops.len())
            .finish_non_exhaustive()
    }
}

impl LoopServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Two-phase shutdown: stop accepting and send close 1001 to every
    /// session; then wait up to `grace` for them to finish, and drop the
    /// rest (their `on_close` sees 1006). When this returns, every loop has
    /// ended, every session has ended and the hub holds none.
    pub fn shutdown(mut self, grace: Duration) {
        for done in self.stop(grace) {
            let _ = done.join();
        }
    }

    /// Phase one, without waiting: returns the loops' threads.
    fn stop(&mut self, grace: Duration) -> Vec<JoinHandle<()>> {
        let threads = stop_loops(&mut self.loops, grace);
        self.hub.shutdown();
        threads
    }
}

impl Drop for LoopServerHandle {
    fn drop(&mut self) {
        if !self.loops.is_empty() {
            // Detached: the loops finish the shutdown on their own.
            self.stop(DEFAULT_GRACE);
        }
    }
}

/// Ask every loop to stop accepting and end within `grace`.
fn stop_loops(loops: &mut Vec<Loop>, grace: Duration) -> Vec<JoinHandle<()>> {
    for running in loops.iter() {
        *running.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(grace);
        running.remote.wake();
    }
    loops.drain(..).map(|running| running.thread).collect()
}

/// One loop's thread: accept, serve, and on a stop request, stop accepting
/// and give the sessions `grace` to finish.
fn serve(
    listener: std::net::TcpListener,
    hub: Hub,
    config: Arc<Config>,
    handler: Option<Handler>,
    stop: &Mutex<Option<Duration>>,
    started: mpsc::Sender<io::Result<Remote>>,
) {
    let setup = (|| {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let connections = Connections::new(poll.registry(), CONNECTIONS, hub, config)?;
        Ok((poll, listener, connections))
    })();
    let (mut poll, listener, mut connections) = match setup {
        Ok(ok) => ok,
        Err(error) => {
            let _ = started.send(Err(error));
            return;
        }
    };
    let _ = started.send(Ok(connections.remote()));
    let mut listener = Some(listener);
    let mut events = Events::with_capacity(1024);
    // When to try accepting again after an error.
    let mut backoff: Option<Instant> = None;
    // The end of the grace period, once stopping.
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = [
            connections.next_timeout(),
            backoff.map(until),
            deadline.map(until),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() != io::ErrorKind::Interrupted {
                break; // the loop cannot wait: end its sessions below
            }
        }
        let mut accept = backoff.is_some_and(|at| at <= Instant::now());
        for event in &events {
            if event.token() == LISTENER {
                accept = true;
            } else {
                connections.handle_event(event);
            }
        }
        if deadline.is_none() {
            if let Some(grace) = *stop.lock().unwrap_or_else(|e| e.into_inner()) {
                listener = None; // new connections are refused
                deadline = Some(Instant::now() + grace);
            }
        }
        if let (true, Some(listener)) = (accept, &listener) {
            backoff = accept_all(listener, &mut connections, poll.registry(), &handler);
        }
        connections.process();
        if deadline.is_some_and(|at| connections.is_empty() || at <= Instant::now()) {
            break;
        }
    }
    // Phase two's end: what is still running is dropped (on_close: 1006).
    connections.abort_all();
}

/// Accept until the listener would block; on an error, when to retry.
fn accept_all(
    listener: &TcpListener,
    connections: &mut Connections,
    registry: &mio::Registry,
    handler: &Option<Handler>,
) -> Option<Instant> {
    loop {
        match listener.accept() {
            // A stream that cannot be registered is dropped (closed).
            Ok((stream, peer)) => {
                let _ = match handler {
                    Some(handler) => connections.accept_with(registry, stream, &**handler),
                    None => connections.accept(registry, stream, peer),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(Instant::now() + ACCEPT_BACKOFF),
        }
    }
}

fn until(at: Instant) -> Duration {
    at.saturating_duration_since(Instant::now())
}

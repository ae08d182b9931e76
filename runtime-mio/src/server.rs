//! The built-in server: `n` threads, each running [`block_on_local`] over
//! the shared server of [`hubbub_ws::serving`] (the hub's
//! [`HubServer`](hubbub_hub::HubServer), or a [`Handler`]'s service) on its
//! own clone of one listener, so that the accept back-off and the two-phase
//! shutdown are the other servers'. A [`LoopServerHandle`] asks every loop
//! to shut its server down, from any thread.

use std::{
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    os::fd::OwnedFd,
    pin::Pin,
    sync::{mpsc, Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use hubbub_core::{Config, Connection};
use hubbub_hub::{Hub, HubHandle, HubServer};
use hubbub_ws::{
    driver::Driver,
    serving::{self, Acceptor, Service},
    Flag, MaybeTls, Runtime, ServerHandle, DEFAULT_GRACE,
};
use mio::net::TcpListener;

use crate::{block_on_local, LoopTimer, Mio, MioDriver, MioIo, MioListener};

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
    tls: Acceptor,
}

/// What [`LoopServer::handler`] runs for each connection. Its futures are
/// `Send`: each connection is a task of the shared server (it stays on the
/// loop that accepted it).
pub type Handler = Arc<dyn Fn(MioDriver) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

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
            tls: None,
        }
    }

    /// Serve `wss://` (feature `tls`): every accepted connection runs the
    /// TLS handshake with `acceptor` (within its deadline) before its
    /// session or handler; a failed or slow one drops that connection only.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: crate::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Serve every connection with `handler` (given the connection's
    /// driver, still to open) instead of as a session of the hub: a plain
    /// WebSocket server. Shutdown then stops accepting, waits up to its
    /// grace period for the connections to end, and drops the rest.
    pub fn handler<F>(mut self, handler: impl Fn(MioDriver) -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
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

    /// Start the shared server on the current loop, accepting from
    /// `listener`.
    fn start_here(&self, listener: std::net::TcpListener) -> io::Result<Running> {
        let listener = MioListener::from_std(listener)?;
        Ok(match &self.handler {
            None => {
                let server = HubServer::<Mio>::from_listener(
                    listener,
                    self.hub.clone(),
                    self.config.clone(),
                );
                Running::Hub(server.with_acceptor(self.tls.clone()).start()?)
            }
            Some(handler) => Running::Handler(serving::start_with::<Mio, _>(
                listener,
                HandlerService {
                    handler: handler.clone(),
                    config: self.config.clone(),
                },
                self.tls.clone(),
            )?),
        })
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

    /// Start the loops on their threads; returns once each one serves.
    pub fn start(self) -> io::Result<LoopServerHandle> {
        let addr = self.listener.local_addr()?;
        self.listener.set_nonblocking(true)?;
        let stop = Arc::new(Stop::default());
        let (started, reports) = mpsc::channel();
        let mut threads = Vec::new();
        let mut failed = None;
        for n in 0..self.server.threads {
            let spawned = self.listener.try_clone().and_then(|listener| {
                let (server, stop, started) = (self.server.clone(), stop.clone(), started.clone());
                std::thread::Builder::new()
                    .name(format!("hubbub-mio-{n}"))
                    .spawn(move || serve(listener, &server, &stop, started))
            });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        drop(started);
        // Each thread reports once (or ends without a word if it panics).
        for _ in 0..threads.len() {
            match reports.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    failed.get_or_insert(error);
                }
                Err(_) => {
                    failed.get_or_insert_with(|| io::Error::other("event loop thread failed"));
                    break;
                }
            }
        }
        let handle = LoopServerHandle {
            addr,
            hub: self.server.hub,
            stop,
            threads,
        };
        match failed {
            None => Ok(handle),
            Some(error) => {
                // The loops already serving have no session yet (the caller
                // has no address): stop them at once before reporting.
                handle.shutdown(Duration::ZERO);
                Err(error)
            }
        }
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

/// The stop request every loop waits for: set once, with the grace period.
#[derive(Default)]
struct Stop {
    grace: Mutex<Option<Duration>>,
    flag: Flag,
}

impl Stop {
    /// Ask every loop to shut down within `grace` (the first request wins).
    fn request(&self, grace: Duration) {
        self.grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(grace);
        self.flag.set();
    }

    fn grace(&self) -> Duration {
        self.grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or(DEFAULT_GRACE)
    }
}

/// A loop's shared server.
enum Running {
    Hub(HubHandle),
    Handler(ServerHandle),
}

impl Running {
    /// The shared two-phase shutdown: stop accepting, phase one (a hub's
    /// sessions get close 1001), wait up to `grace`, drop the rest.
    async fn shutdown(self, grace: Duration) {
        match self {
            Running::Hub(handle) => handle.shutdown(grace).await,
            Running::Handler(handle) => handle.shutdown(grace).await,
        }
    }
}

/// One loop's thread: its own loop, serving `listener` until the stop
/// request; reports once on `started` whether it serves.
fn serve(
    listener: std::net::TcpListener,
    server: &LoopServer,
    stop: &Stop,
    started: mpsc::Sender<io::Result<()>>,
) {
    let mut started = Some(started);
    let served = block_on_local(async {
        let running = server.start_here(listener)?;
        if let Some(started) = started.take() {
            let _ = started.send(Ok(()));
        }
        stop.flag.wait().await;
        running.shutdown(stop.grace()).await;
        Ok(())
    });
    if let (Err(error), Some(started)) = (served.and_then(|served| served), started) {
        let _ = started.send(Err(error));
    }
}

/// [`LoopServer::handler`]'s connections: the server-side driver, given to
/// the handler.
struct HandlerService {
    handler: Handler,
    config: Arc<Config>,
}

impl Service<Mio> for HandlerService {
    fn serve(
        &self,
        stream: MaybeTls<MioIo>,
        _peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let conn = Connection::server(self.config.clone(), Mio::now());
        (self.handler)(Driver::new(conn, stream, LoopTimer::default()))
    }
}

/// A running server, usable from any thread.
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
pub struct LoopServerHandle {
    addr: SocketAddr,
    hub: Hub,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LoopServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopServerHandle")
            .field("addr", &self.addr)
            .field("threads", &self.threads.len())
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
        self.stop.request(grace);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for LoopServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            // Detached: the loops finish the shutdown on their own.
            self.stop.request(DEFAULT_GRACE);
        }
    }
}

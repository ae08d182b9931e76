//! A realtime [`Hub`] served on any [`Runtime`]: an accept loop, one task
//! per session (running the shared [`run_session`]), and a two-phase
//! shutdown.

use std::{
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    pin::pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use event_listener::Event;
use futures_util::future::{select, Either};
use hubbub_core::{Config, Connection};

use super::{client::timeout, flag::Flag};
use crate::{
    driver::Driver,
    http::{serve_shared, HttpApp},
    run_session, Hub, Runtime,
};

/// The listen backlog of [`HubServer::bind`].
pub const LISTEN_BACKLOG: u32 = 1024;

/// How long [`HubServer::run`] waits for sessions to close on shutdown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A bound listener serving a [`Hub`] on runtime `R`. Adapters name it
/// `HubServer` (e.g. `hubbub_tokio::HubServer`).
pub struct HubServer<R: Runtime> {
    listener: R::Listener,
    hub: Hub,
    config: Arc<Config>,
    http: Option<HttpApp>,
}

impl<R: Runtime> std::fmt::Debug for HubServer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubServer")
            .field("local_addr", &R::local_addr(&self.listener).ok())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> HubServer<R> {
    /// Bind `addr` for `hub`, with `config` for every connection. The
    /// listen backlog is [`LISTEN_BACKLOG`] (the kernel may cap it), so a
    /// burst of connections (clients reconnecting after a restart, say) is
    /// queued rather than dropped and retried a second later; `SO_REUSEADDR`
    /// is set on Unix, so a restarted server can bind while old connections
    /// are in `TIME_WAIT`. Each address `addr` resolves to is tried in turn.
    pub async fn bind(addr: impl ToSocketAddrs, hub: Hub, config: Arc<Config>) -> io::Result<Self> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match R::bind(addr, LISTEN_BACKLOG) {
                Ok(listener) => return Ok(Self::from_listener(listener, hub, config)),
                Err(error) => last = Some(error),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Serve `hub` on an already bound listener.
    pub fn from_listener(listener: R::Listener, hub: Hub, config: Arc<Config>) -> Self {
        HubServer {
            listener,
            hub,
            config,
            http: None,
        }
    }

    /// Serve `app` on this listener too (one shared port): requests are
    /// HTTP until one asks for a WebSocket upgrade, which becomes a session.
    pub fn with_http(mut self, app: HttpApp) -> Self {
        self.http = Some(app);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        R::local_addr(&self.listener)
    }

    /// Start serving in a background task on the runtime.
    pub fn start(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let hub = self.hub.clone();
        let stop = Arc::new(Stop::default());
        let done = Arc::new(Flag::default());
        let finished = Finished(done.clone());
        R::spawn(accept_loop(self, stop.clone(), finished));
        Ok(ServerHandle {
            addr,
            hub,
            stop,
            done,
        })
    }

    /// Serve until Ctrl-C or SIGTERM, then shut down gracefully.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(R::shutdown_signal()).await
    }

    /// Serve until `signal` resolves, then shut down gracefully (with
    /// [`DEFAULT_GRACE`]).
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let handle = self.start()?;
        signal.await;
        handle.shutdown(DEFAULT_GRACE).await;
        Ok(())
    }
}

/// The stop request: set once, with the grace period.
#[derive(Default)]
struct Stop {
    grace: Mutex<Option<Duration>>,
    flag: Flag,
}

/// Sets the server's "done" flag when the accept loop ends (or is dropped
/// with its runtime).
struct Finished(Arc<Flag>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A running [`HubServer`].
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
pub struct ServerHandle {
    addr: SocketAddr,
    hub: Hub,
    stop: Arc<Stop>,
    done: Arc<Flag>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Two-phase shutdown: stop accepting (new connections are refused) and
    /// send close 1001 to every session; then wait up to `grace` for them to
    /// finish, and abort the rest (their `on_close` sees 1006). When this
    /// returns, every session has ended and the hub holds none.
    pub async fn shutdown(self, grace: Duration) {
        *self
            .stop
            .grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(grace);
        self.stop.flag.set();
        self.done.wait().await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.flag.set();
    }
}

/// The running sessions: how many, and the signal that aborts them.
#[derive(Default)]
struct Sessions {
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    ended: Event,
    abort: Flag,
}

impl Sessions {
    /// Resolves once no session is running.
    async fn idle(&self) {
        while self.live.load(Ordering::SeqCst) > 0 {
            let listener = self.ended.listen();
            if self.live.load(Ordering::SeqCst) == 0 {
                break;
            }
            listener.await;
        }
    }
}

/// Counts one running session; dropped when its task ends.
struct Running(Arc<Sessions>);

impl Running {
    fn new(sessions: &Arc<Sessions>) -> Self {
        sessions.live.fetch_add(1, Ordering::SeqCst);
        Running(sessions.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.ended.notify(usize::MAX);
        }
    }
}

async fn accept_loop<R: Runtime>(server: HubServer<R>, stop: Arc<Stop>, _finished: Finished) {
    let HubServer {
        listener,
        hub,
        config,
        http,
    } = server;
    let sessions = Arc::new(Sessions::default());
    // One wait for the stop request across all accepts.
    let mut stopped = pin!(stop.flag.wait());
    loop {
        let accepted = match select(stopped.as_mut(), pin!(R::accept(&listener))).await {
            Either::Left(((), _)) => break,
            Either::Right((accepted, _)) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let timer = R::Timer::default();
                let running = Running::new(&sessions);
                let (hub, config, http) = (hub.clone(), config.clone(), http.clone());
                R::spawn(async move {
                    {
                        let session = pin!(async move {
                            match http {
                                Some(app) => {
                                    serve_shared(stream, timer, &app, config, Some(peer)).await
                                }
                                None => {
                                    let conn = Connection::server(config, R::now());
                                    let driver = Driver::new(conn, stream, timer);
                                    run_session(driver, hub, Some(peer)).await
                                }
                            }
                        });
                        let _ = select(session, pin!(running.0.abort.wait())).await;
                        // Aborted: the session future is dropped here, which
                        // ends the session (1006) before `running` is.
                    }
                    drop(running);
                });
            }
            // Out of descriptors or similar: back off instead of spinning.
            Err(_) => R::sleep(Duration::from_millis(20)).await,
        }
    }
    drop(listener);
    hub.shutdown();
    let grace = stop
        .grace
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or(DEFAULT_GRACE);
    let _ = timeout::<R, _>(grace, sessions.idle()).await;
    // Phase two's end: sessions still running are aborted; each one's
    // `on_close` runs (1006) as its future is dropped, before we return.
    sessions.abort.set();
    sessions.idle().await;
}

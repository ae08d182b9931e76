//! A realtime [`Hub`] served on tokio: an accept loop, one task per session
//! (running the shared [`run_session`]), and a two-phase shutdown.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use hubbub_core::{Config, Connection};
use hubbub_realtime::{
    driver::Driver,
    http::{serve_shared, HttpApp},
    run_session, Hub,
};
use tokio::{
    net::{TcpListener, TcpSocket, ToSocketAddrs},
    sync::oneshot,
    task::{JoinHandle, JoinSet},
};

use crate::rt::{self, Io, TokioTimer};

/// The listen backlog of [`HubServer::bind`].
pub const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR` on Unix, as
/// std sets it, so a restarted server can bind while old connections are
/// in `TIME_WAIT`).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long [`HubServer::run`] waits for sessions to close on shutdown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A bound listener serving a [`Hub`].
///
/// ```no_run
/// use hubbub_tokio::{Config, Hub, HubServer};
/// # async fn run() -> std::io::Result<()> {
/// let hub = Hub::builder()
///     .on_message(|session, text| {
///         let _ = session.send_text(text); // echo
///     })
///     .build();
/// HubServer::bind("127.0.0.1:9090", hub, Config::default().into()).await?.run().await
/// # }
/// ```
pub struct HubServer {
    listener: TcpListener,
    hub: Hub,
    config: Arc<Config>,
    http: Option<HttpApp>,
}

impl HubServer {
    /// Bind `addr` for `hub`, with `config` for every connection. The
    /// listen backlog is [`LISTEN_BACKLOG`] (the kernel may cap it), so a burst of
    /// connections (clients reconnecting after a restart, say) is queued
    /// rather than dropped and retried a second later.
    pub async fn bind(addr: impl ToSocketAddrs, hub: Hub, config: Arc<Config>) -> io::Result<Self> {
        let mut last = None;
        for addr in tokio::net::lookup_host(addr).await? {
            match listen(addr) {
                Ok(listener) => return Ok(Self::from_listener(listener, hub, config)),
                Err(error) => last = Some(error),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Serve `hub` on an already bound listener.
    pub fn from_listener(listener: TcpListener, hub: Hub, config: Arc<Config>) -> Self {
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
        self.listener.local_addr()
    }

    /// Start serving in a background task on the current runtime.
    pub fn start(self) -> io::Result<ServerHandle> {
        let addr = self.listener.local_addr()?;
        let hub = self.hub.clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(self, stopped));
        Ok(ServerHandle {
            addr,
            hub,
            stop,
            task,
        })
    }

    /// Serve until Ctrl-C or SIGTERM, then shut down gracefully.
    pub async fn run(self) -> io::Result<()> {
        let signal = shutdown_signal();
        let handle = self.start()?;
        signal.await;
        handle.shutdown(DEFAULT_GRACE).await;
        Ok(())
    }
}

/// A running [`HubServer`].
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
pub struct ServerHandle {
    addr: SocketAddr,
    hub: Hub,
    stop: oneshot::Sender<Duration>,
    task: JoinHandle<()>,
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
        let _ = self.stop.send(grace);
        let _ = self.task.await;
    }
}

async fn accept_loop(server: HubServer, mut stop: oneshot::Receiver<Duration>) {
    let HubServer {
        listener,
        hub,
        config,
        http,
    } = server;
    let mut sessions = JoinSet::new();
    let grace = loop {
        tokio::select! {
            grace = &mut stop => break grace.unwrap_or(DEFAULT_GRACE),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (io, timer) = (Io(stream), TokioTimer::default());
                    if let Some(app) = http.clone() {
                        let config = config.clone();
                        sessions.spawn(async move {
                            serve_shared(io, timer, &app, config, Some(peer)).await;
                        });
                    } else {
                        let conn = Connection::server(config.clone(), rt::now());
                        let driver = Driver::new(conn, io, timer);
                        sessions.spawn(run_session(driver, hub.clone(), Some(peer)));
                    }
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    };
    drop(listener);
    hub.shutdown();
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    });
    let _ = drained.await;
    // Phase two's end: sessions still running are aborted; each one's
    // `on_close` runs (1006) as its task is dropped, before we return.
    sessions.abort_all();
    while sessions.join_next().await.is_some() {}
}

/// Resolves on Ctrl-C, or SIGTERM on Unix. The handlers are installed when
/// this is *called* (inside a tokio runtime), not when it is first polled, so
/// a signal that arrives in between — say, right after a "listening" line —
/// is not lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = next_signal(&mut term) => {}
            _ = next_signal(&mut interrupt) => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The next delivery of `signal`; never, if it could not be installed.
#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

//! A realtime [`Hub`] served on any [`Runtime`]: the shared accept loop of
//! [`hubbub_ws::serving`], each connection running [`run_session`], and a
//! shutdown that closes every session with 1001 before waiting for them.

use std::{
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use hubbub_core::{Config, Connection};
use hubbub_ws::{
    driver::Driver,
    serving::{self, Acceptor, Service},
    MaybeTls, Runtime, ServerHandle, Signals, DEFAULT_GRACE, LISTEN_BACKLOG,
};

use crate::{run_session, Hub};

/// A bound listener serving a [`Hub`] on runtime `R`. Adapters name it
/// `HubServer` (e.g. `hubbub_tokio::HubServer`).
pub struct HubServer<R: Runtime> {
    listener: R::Listener,
    hub: Hub,
    config: Arc<Config>,
    tls: Acceptor,
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
            tls: None,
        }
    }

    /// Serve `wss://` (feature `tls` of hubbub-ws, the adapters' `tls`):
    /// every accepted connection runs the TLS handshake with `acceptor`
    /// (within its deadline) before its session; a failed or slow one drops
    /// that connection only.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: hubbub_ws::tls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Serve under TLS with `tls` when it is an acceptor (the form of
    /// [`tls`](Self::tls) that compiles with the feature on or off).
    pub fn with_acceptor(mut self, tls: Acceptor) -> Self {
        self.tls = tls;
        self
    }

    /// The TLS acceptor set with `tls`, if any (for a server started with
    /// another [`Service`], with [`serving::start_with`]).
    pub fn tls_acceptor(&self) -> Acceptor {
        self.tls.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        R::local_addr(&self.listener)
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The parts: listener, hub and configuration (to serve them with
    /// another [`Service`], such as HTTP on a shared port).
    pub fn into_parts(self) -> (R::Listener, Hub, Arc<Config>) {
        (self.listener, self.hub, self.config)
    }

    /// Start serving in a background task on the runtime. Shutting the
    /// handle down sends close 1001 to every session, then waits for them
    /// ([`ServerHandle::shutdown`]; a session still open after the grace
    /// period ends with 1006).
    pub fn start(self) -> io::Result<HubHandle> {
        let hub = self.hub.clone();
        let service = SessionService {
            hub: self.hub,
            config: self.config,
        };
        let server = serving::start_with::<R, _>(self.listener, service, self.tls)?;
        Ok(HubHandle { server, hub })
    }

    /// Serve until Ctrl-C or SIGTERM, then shut down gracefully (the
    /// adapter's `signal` feature, on with `hub`).
    pub async fn run(self) -> io::Result<()>
    where
        R: Signals,
    {
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

/// A running [`HubServer`]: its [`ServerHandle`] and the hub it serves.
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
#[derive(Debug)]
pub struct HubHandle {
    server: ServerHandle,
    hub: Hub,
}

impl HubHandle {
    /// A running `server` that serves `hub` (for servers started with
    /// another [`Service`] that serves the hub's sessions).
    pub fn new(server: ServerHandle, hub: Hub) -> Self {
        HubHandle { server, hub }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Two-phase shutdown: stop accepting and send close 1001 to every
    /// session; then wait up to `grace` for them to finish, and abort the
    /// rest (their `on_close` sees 1006). When this returns, every session
    /// has ended and the hub holds none.
    pub async fn shutdown(self, grace: Duration) {
        self.server.shutdown(grace).await;
    }
}

/// Every connection a hub session.
struct SessionService {
    hub: Hub,
    config: Arc<Config>,
}

impl<R: Runtime> Service<R> for SessionService {
    fn serve(
        &self,
        stream: MaybeTls<R::Stream>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let conn = Connection::server(self.config.clone(), R::now());
        let driver = Driver::new(conn, stream, R::Timer::default());
        run_session(driver, self.hub.clone(), Some(peer))
    }

    fn shutdown(&self) {
        self.hub.shutdown();
    }
}

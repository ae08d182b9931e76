//! The server side: accepting upgrades on any stream, and a TCP server.

use std::{
    future::Future,
    marker::PhantomData,
    sync::{Arc, OnceLock},
};

use futures_util::future::{Either, FutureExt};
use hubbub_core::{Accept, Config, Connection, Reject, Request};

use crate::{
    driver::{Timer, Transport},
    serving,
    websocket::Core,
    Error, MaybeTls, Runtime, RuntimeWebSocket, WebSocket,
};

/// The configuration [`accept`] uses: [`Config::default`].
fn default_config() -> Arc<Config> {
    static DEFAULT: OnceLock<Arc<Config>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Config::default())).clone()
}

/// Run the server side of the opening handshake on `transport` with the
/// default configuration, accepting any path and no subprotocol.
pub async fn accept<T: Transport, K: Timer>(
    transport: T,
    timer: K,
) -> Result<WebSocket<T, K>, Error> {
    accept_with(transport, timer, default_config(), |_| Ok(Accept::new())).await
}

/// Run the server side of the opening handshake on `transport`. Once a valid
/// upgrade request has arrived, `decide` sees it (path, headers, origin,
/// offered subprotocols) and accepts or rejects it.
///
/// Malformed requests are answered by the core (400, 405, 426, 431) and
/// reported as [`Error::Handshake`]; so is a rejection, after the HTTP
/// response has been written. The handshake must finish within
/// `config.handshake_timeout` ([`Error::Timeout`] otherwise).
///
/// (A plain function returning an `async move` block: the connection is
/// built before the block, so the future holds it once rather than also
/// keeping the transport and timer it was built from. The handshake's own
/// state is boxed while it runs, so that this future is hardly larger than
/// the `WebSocket` it becomes: see `connection_task`.)
pub fn accept_with<T, K, D>(
    transport: T,
    timer: K,
    config: Arc<Config>,
    decide: D,
) -> impl Future<Output = Result<WebSocket<T, K>, Error>>
where
    T: Transport,
    K: Timer,
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let now = timer.now();
    let mut core = Core::new(Connection::server(config, now), transport, timer);
    async move {
        Box::pin(core.open(decide)).await?;
        Ok(WebSocket::from_core(core))
    }
}

/// [`accept_with`], keeping the upgrade request for the application: the
/// WebSocket and the request (path, query, headers) it was opened with.
fn accept_keeping_request<T, K, D>(
    transport: T,
    timer: K,
    config: Arc<Config>,
    decide: D,
) -> impl Future<Output = Result<(WebSocket<T, K>, Request), Error>>
where
    T: Transport,
    K: Timer,
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let now = timer.now();
    let mut core = Core::new(Connection::server(config, now), transport, timer);
    async move {
        // The copy waits in the boxed handshake's state, not in this
        // future's (which the connection's task keeps).
        let request = Box::pin(async {
            let mut seen = None;
            core.open(|request| {
                seen = Some(request.clone());
                decide(request)
            })
            .await?;
            seen.ok_or(Error::Closed)
        })
        .await?;
        Ok((WebSocket::from_core(core), request))
    }
}

type Decide = dyn Fn(&Request) -> Result<Accept, Reject> + Send + Sync;

/// A TCP WebSocket server on runtime `R`: accepts connections (with
/// `TCP_NODELAY`), runs each handshake in a task of its own, and hands every
/// accepted [`WebSocket`] to the application's handler in that task.
/// Adapters name it `Server` (e.g. `hubbub_tokio::Server`).
pub struct Server<R> {
    config: Arc<Config>,
    decide: Arc<Decide>,
    tls: serving::Acceptor,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            config: self.config.clone(),
            decide: self.decide.clone(),
            tls: self.tls.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Default for Server<R> {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl<R: Runtime> Server<R> {
    /// A server whose connections use `config` and accept every request.
    pub fn new(config: Config) -> Self {
        Server {
            config: Arc::new(config),
            decide: Arc::new(|_| Ok(Accept::new())),
            tls: None,
            runtime: PhantomData,
        }
    }

    /// Decide on each upgrade request: accept (with a subprotocol, extra
    /// headers) or reject with an HTTP status.
    pub fn decide<F>(mut self, decide: F) -> Self
    where
        F: Fn(&Request) -> Result<Accept, Reject> + Send + Sync + 'static,
    {
        self.decide = Arc::new(decide);
        self
    }

    /// Serve `wss://` (feature `tls`): every accepted connection runs the
    /// TLS handshake with `acceptor` (within its deadline) before the
    /// WebSocket handshake; a failed or slow one drops that connection only.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: crate::tls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// This server's answer to `request` (what [`decide`](Self::decide)
    /// set; every request is accepted by default): for a front that
    /// answers the opening itself, such as hubbub-tokio's WebSockets over
    /// HTTP/2, so that it accepts exactly what this server would.
    pub fn decision(&self, request: &Request) -> Result<Accept, Reject> {
        (self.decide)(request)
    }

    /// The configuration connections use.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Accept connections on `listener` until this future is dropped (the
    /// connection tasks already spawned go on). Each accepted WebSocket is
    /// passed to `handler` in a task of its own, with the upgrade
    /// [`Request`] it was opened with (path, query, headers; drop it if
    /// unused); failed handshakes are answered and dropped. A failing
    /// `accept` (e.g. out of file descriptors) pauses the loop briefly
    /// instead of ending it.
    pub async fn serve<H, F>(self, listener: R::Listener, handler: H)
    where
        H: Fn(RuntimeWebSocket<R>, Request) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let (stream, _) = serving::accept::<R>(&listener).await;
            let decide = self.decide.clone();
            let config = self.config.clone();
            let accepting = move |stream| {
                accept_keeping_request(stream, R::Timer::default(), config, {
                    move |request: &Request| decide(request)
                })
            };
            match &self.tls {
                None => R::spawn(connection_task(
                    accepting(MaybeTls::Plain(stream)),
                    handler.clone(),
                )),
                Some(acceptor) => {
                    let (acceptor, handler) = (acceptor.clone(), handler.clone());
                    R::spawn(async move {
                        if let Some(stream) = serving::handshake::<R>(&acceptor, stream).await {
                            connection_task(accepting(stream), handler).await;
                        }
                    });
                }
            }
        }
    }
}

/// One accepted connection's task: the handshake, then `handler`. The two
/// phases take turns in one place (`then`), so the task, which is most of
/// an idle connection's memory, is as large as the larger phase rather than
/// both together (an `async` block would also keep the `WebSocket` beside
/// the handler's future that owns it).
fn connection_task<T, K, H, F>(
    accepting: impl Future<Output = Result<(WebSocket<T, K>, Request), Error>>,
    handler: Arc<H>,
) -> impl Future<Output = ()>
where
    T: Transport,
    K: Timer,
    H: Fn(WebSocket<T, K>, Request) -> F,
    F: Future<Output = ()>,
{
    accepting.then(move |accepted| match accepted {
        Ok((ws, request)) => Either::Left(handler(ws, request)),
        Err(_) => Either::Right(std::future::ready(())),
    })
}

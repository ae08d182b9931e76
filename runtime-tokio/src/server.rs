//! The server side: accepting upgrades on any stream, and a TCP server.

use std::{
    future::Future,
    io,
    sync::{Arc, OnceLock},
    time::Duration,
};

use hubbub_core::{Accept, Config, Connection, Reject, Request};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};

use crate::{rt, websocket::Core, Error, WebSocket};

/// The configuration [`accept`] uses: [`Config::default`].
fn default_config() -> Arc<Config> {
    static DEFAULT: OnceLock<Arc<Config>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Config::default())).clone()
}

/// Run the server side of the opening handshake on `stream` with the default
/// configuration, accepting any path and no subprotocol.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, default_config(), |_| Ok(Accept::new())).await
}

/// Run the server side of the opening handshake on `stream`. Once a valid
/// upgrade request has arrived, `decide` sees it (path, headers, origin,
/// offered subprotocols) and accepts or rejects it.
///
/// Malformed requests are answered by the core (400, 405, 426, 431) and
/// reported as [`Error::Handshake`]; so is a rejection, after the HTTP
/// response has been written. The handshake must finish within
/// `config.handshake_timeout` ([`Error::Timeout`] otherwise).
pub async fn accept_with<S, D>(
    stream: S,
    config: Arc<Config>,
    decide: D,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut core = Core::new(Connection::server(config, rt::now()), stream);
    core.open(decide).await?;
    Ok(WebSocket::from_core(core))
}

type Decide = dyn Fn(&Request) -> Result<Accept, Reject> + Send + Sync;

/// A TCP WebSocket server: accepts connections, sets `TCP_NODELAY`, runs
/// each handshake in a task of its own, and hands every accepted
/// [`WebSocket`] to the application's handler in that task.
///
/// ```no_run
/// use hubbub_tokio::{Config, Reject, Server};
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// Server::new(Config::default())
///     .decide(|request| match request.path() {
///         "/chat" => Ok(Default::default()),
///         _ => Err(Reject::not_found()),
///     })
///     .serve(listener, |mut ws| async move {
///         while let Some(Ok(message)) = ws.recv().await {
///             let _ = ws.feed(message).await;
///         }
///     })
///     .await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    config: Arc<Config>,
    decide: Arc<Decide>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Server {
    /// A server whose connections use `config` and accept every request.
    pub fn new(config: Config) -> Self {
        Server {
            config: Arc::new(config),
            decide: Arc::new(|_| Ok(Accept::new())),
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

    /// The configuration connections use.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Accept connections on `listener` until this future is dropped (the
    /// connection tasks already spawned go on). Each accepted WebSocket is
    /// passed to `handler` in a task of its own; failed handshakes are
    /// answered and dropped. A failing `accept` (e.g. out of file
    /// descriptors) pauses the loop briefly instead of ending it.
    pub async fn serve<H, F>(self, listener: TcpListener, handler: H)
    where
        H: Fn(WebSocket<TcpStream>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    if is_fatal_accept_error(&error) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (config, decide, handler) =
                (self.config.clone(), self.decide.clone(), handler.clone());
            tokio::spawn(async move {
                if let Ok(ws) = accept_with(stream, config, |request| decide(request)).await {
                    handler(ws).await;
                }
            });
        }
    }
}

/// Errors that concern the listener rather than one connection; retrying
/// at once would spin.
fn is_fatal_accept_error(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

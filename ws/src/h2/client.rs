//! The client side: WebSockets over HTTP/2 (RFC 8441) to servers that
//! allow them, several to one origin sharing one connection, and HTTP/1.1
//! otherwise.
//!
//! [`H2Pool`] is an opt-in setting of [`ClientConfig`] (its `h2` field,
//! or [`ClientConfig::with_h2`]). With it, a `wss://` connect offers ALPN
//! `h2` and `http/1.1` (as browsers do) and:
//!
//! - **ALPN `h2` and the server's SETTINGS carry
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL`**: the WebSocket is an extended
//!   CONNECT (`:protocol websocket`, `sec-websocket-version: 13`, the same
//!   subprotocol and extension offers as the HTTP/1.1 request), and a
//!   `200` opens it over the stream ([`MaybeTls::H2`]). The connection
//!   stays in the pool: later WebSockets to the same origin (host, port)
//!   open streams on it, up to [`H2Pool::max_streams`] and the server's
//!   `SETTINGS_MAX_CONCURRENT_STREAMS`, then on a further connection.
//! - **ALPN `http/1.1`** (or none): the upgrade continues on that same
//!   TLS stream.
//! - **ALPN `h2` without the setting**: the pool remembers the origin as
//!   HTTP/1.1-only, and this and later connects open connections that
//!   offer `http/1.1` only.
//!
//! Any status but `200` fails as a refused HTTP/1.1 upgrade does
//! ([`HandshakeError::Status`]). `ws://` URLs never use HTTP/2.
//!
//! **Lifetime.** Each connection's future runs on the runtime
//! ([`Runtime::spawn`]). It ends when its last WebSocket is over: the
//! pool lets go of a connection as its last stream is dropped, and the
//! `h2` crate then sends GOAWAY and closes. A connection that fails or
//! receives GOAWAY leaves the pool; a later connect opens a new one.
//!
//! [`HandshakeError::Status`]: hubbub_core::HandshakeError::Status

use std::{
    collections::HashMap,
    fmt,
    future::poll_fn,
    io::{self, IoSlice},
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use h2::client::SendRequest;
use hubbub_core::{ClientRequest, Connection};

use super::stream::{h2_to_io, H2Stream, TransportIo};
use crate::{
    connect::{within, ClientConfig},
    driver::{Timer, Transport},
    error::Step,
    Error, MaybeTls, Runtime, WebSocket,
};

/// Each stream's receive window on a client connection (64 KiB).
const STREAM_WINDOW: u32 = 64 << 10;

/// Connects that try the pool's connections before giving up (a
/// connection may fail or go away between checkout and CONNECT).
const ATTEMPTS: usize = 4;

/// Most rounds of one connect: waiting for other connects to open
/// connections (each of which may fill up before this one gets a place).
const MAX_ROUNDS: usize = 4096;

/// A pool of HTTP/2 connections shared by the WebSockets of a
/// [`ClientConfig`] (and of its clones, and of the hub's reconnecting
/// `Client` built with it): one connection carries many WebSockets to one
/// origin (`wss://`, host, port). Cloning shares the pool. Connections
/// are found by host and port alone: use one pool per TLS configuration
/// (trusted roots, client certificate), as a connection is opened with the
/// configuration of the connect that opened it. One connection per origin
/// is being opened at a time: connects that find no room wait for it
/// (within the handshake timeout) rather than each opening their own.
///
/// ```
/// use hubbub_ws::{h2::H2Pool, ClientConfig};
///
/// let config = ClientConfig::default().with_h2(H2Pool::new());
/// // Up to 10 WebSockets per connection (and no more than the server allows).
/// let dense = ClientConfig::default().with_h2(H2Pool::new().max_streams(10));
/// # let _ = (config, dense);
/// ```
#[derive(Clone)]
pub struct H2Pool {
    inner: Arc<Pool>,
}

struct Pool {
    origins: Mutex<HashMap<Origin, OriginState>>,
    /// Notified whenever a connection attempt ends or a stream is freed.
    changed: event_listener::Event,
    max_streams: usize,
    next_id: AtomicU64,
}

/// `(host, port)`, the host in lower case: the scheme is always `wss`.
type Origin = (String, u16);

#[derive(Default)]
struct OriginState {
    connections: Vec<Pooled>,
    /// A connect to this origin is running: others wait for it.
    connecting: bool,
    /// The server speaks h2 but does not allow extended CONNECT.
    http1_only: bool,
}

struct Pooled {
    id: u64,
    send: SendRequest<Bytes>,
    /// The server's address on this connection.
    peer: Option<SocketAddr>,
    /// WebSockets open (or opening) on it.
    open: usize,
    /// The most it may carry: the pool's limit and the server's.
    limit: usize,
}

impl Default for H2Pool {
    fn default() -> Self {
        H2Pool::new()
    }
}

impl fmt::Debug for H2Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H2Pool")
            .field("max_streams", &self.inner.max_streams)
            .field("connections", &self.connections())
            .finish()
    }
}

impl H2Pool {
    /// An empty pool; at most 100 WebSockets per connection.
    pub fn new() -> Self {
        H2Pool {
            inner: Arc::new(Pool {
                origins: Mutex::new(HashMap::new()),
                changed: event_listener::Event::new(),
                max_streams: 100,
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// At most `max` WebSockets (at least 1) on one connection; further
    /// ones open another connection. The server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` bounds it too. A new pool: set it
    /// before sharing.
    pub fn max_streams(self, max: usize) -> Self {
        H2Pool {
            inner: Arc::new(Pool {
                origins: Mutex::new(HashMap::new()),
                changed: event_listener::Event::new(),
                max_streams: max.max(1),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// HTTP/2 connections in the pool, all origins together.
    pub fn connections(&self) -> usize {
        self.inner
            .lock()
            .values()
            .map(|state| state.connections.len())
            .sum()
    }

    /// Whether the pool remembers `host:port` as a server that speaks h2
    /// without allowing WebSockets over it (connects there offer
    /// `http/1.1` only).
    pub fn is_http1_only(&self, host: &str, port: u16) -> bool {
        self.inner
            .lock()
            .get(&(host.to_ascii_lowercase(), port))
            .is_some_and(|state| state.http1_only)
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<Origin, OriginState>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drop connection `id` of `origin` (failed, gone away, or unused).
    fn forget(&self, origin: &Origin, id: u64) {
        let mut origins = self.lock();
        if let Some(state) = origins.get_mut(origin) {
            state.connections.retain(|pooled| pooled.id != id);
        }
        drop(origins);
        self.changed.notify(usize::MAX);
    }
}

/// What a connect does next.
enum Checkout {
    /// Open a stream on this connection (a place on it is held).
    Stream(SendRequest<Bytes>, Lease, Option<SocketAddr>),
    /// Open a connection (others wait for it).
    Connect(Connecting),
    /// Another connect is opening a connection: wait for it.
    Wait(event_listener::EventListener),
    /// The origin does not allow WebSockets over HTTP/2.
    Http1,
}

impl H2Pool {
    fn checkout(&self, origin: &Origin) -> Checkout {
        let mut origins = self.inner.lock();
        let state = origins.entry(origin.clone()).or_default();
        if state.http1_only {
            return Checkout::Http1;
        }
        if let Some(pooled) = state
            .connections
            .iter_mut()
            .find(|pooled| pooled.open < pooled.limit)
        {
            pooled.open += 1;
            let lease = Lease {
                pool: self.inner.clone(),
                origin: origin.clone(),
                id: pooled.id,
            };
            return Checkout::Stream(pooled.send.clone(), lease, pooled.peer);
        }
        if state.connecting {
            return Checkout::Wait(self.inner.changed.listen());
        }
        state.connecting = true;
        Checkout::Connect(Connecting {
            pool: self.inner.clone(),
            origin: origin.clone(),
        })
    }
}

/// The right to open a connection to an origin; others wait until it is
/// dropped.
struct Connecting {
    pool: Arc<Pool>,
    origin: Origin,
}

impl Connecting {
    /// Add the connection to the pool, holding one place on it.
    fn pooled(self, send: SendRequest<Bytes>, limit: usize, peer: Option<SocketAddr>) -> Lease {
        let id = self.pool.next_id.fetch_add(1, Ordering::Relaxed);
        let mut origins = self.pool.lock();
        let state = origins.entry(self.origin.clone()).or_default();
        state.connections.push(Pooled {
            id,
            send,
            peer,
            open: 1,
            limit: limit.max(1),
        });
        drop(origins);
        Lease {
            pool: self.pool.clone(),
            origin: self.origin.clone(),
            id,
        }
    }

    /// Remember the origin as HTTP/1.1-only.
    fn http1_only(&self) {
        let mut origins = self.pool.lock();
        origins.entry(self.origin.clone()).or_default().http1_only = true;
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        if let Some(state) = self.pool.lock().get_mut(&self.origin) {
            state.connecting = false;
        }
        self.pool.changed.notify(usize::MAX);
    }
}

/// A place held on a pooled connection by one WebSocket: when the last
/// one is dropped, the pool lets go of the connection, which then ends.
struct Lease {
    pool: Arc<Pool>,
    origin: Origin,
    id: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut origins = self.pool.lock();
        if let Some(state) = origins.get_mut(&self.origin) {
            if let Some(at) = state.connections.iter().position(|p| p.id == self.id) {
                state.connections[at].open -= 1;
                if state.connections[at].open == 0 {
                    state.connections.swap_remove(at);
                }
            }
            if state.connections.is_empty() && !state.connecting && !state.http1_only {
                origins.remove(&self.origin);
            }
        }
        drop(origins);
        self.pool.changed.notify(usize::MAX);
    }
}

/// A WebSocket's HTTP/2 stream on a pooled client connection: the
/// [`H2Stream`] and its place in the [`H2Pool`] (released on drop).
pub struct H2ClientStream {
    stream: H2Stream,
    peer: Option<SocketAddr>,
    _lease: Lease,
}

impl fmt::Debug for H2ClientStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H2ClientStream")
            .field("stream", &self.stream)
            .field("peer", &self.peer)
            .finish()
    }
}

impl H2ClientStream {
    /// The stream.
    pub fn stream(&self) -> &H2Stream {
        &self.stream
    }

    /// The server's address on the connection that carries the stream.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
}

impl Transport for H2ClientStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_shutdown(cx)
    }

    fn ends_at_close(&self) -> bool {
        self.stream.ends_at_close()
    }
}

/// The WebSocket and response a connect returns.
type Connected<R> = (
    WebSocket<MaybeTls<<R as Runtime>::Stream>, <R as Runtime>::Timer>,
    hubbub_core::Response,
);

/// `connect_with` for a `wss://` request with an [`H2Pool`]: a stream on
/// a pooled connection, a new connection (h2 or HTTP/1.1 as ALPN and the
/// server's SETTINGS say), or HTTP/1.1 for an HTTP/1.1-only origin.
pub(crate) async fn connect<R: Runtime>(
    pool: &H2Pool,
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<Connected<R>, Error> {
    let origin = (request.host().to_ascii_lowercase(), request.port());
    let mut last = None;
    let mut failures = 0;
    // Bounded: each round waits for another connect (within the
    // handshake timeout) or fails (at most ATTEMPTS times).
    for _ in 0..MAX_ROUNDS {
        if failures == ATTEMPTS {
            break;
        }
        match pool.checkout(&origin) {
            Checkout::Http1 => return http1::<R>(request, config).await,
            Checkout::Stream(send, lease, peer) => {
                match open::<R>(send, lease, peer, request, config).await {
                    Ok(connected) => return Ok(connected),
                    // The connection failed under us: try another.
                    Err(Retry::Connection(error, id)) => {
                        pool.inner.forget(&origin, id);
                        last = Some(error);
                        failures += 1;
                    }
                    Err(Retry::No(error)) => return Err(error),
                }
            }
            Checkout::Wait(listener) => {
                within::<R, _>(config.config.handshake_timeout, Step::Handshake, async {
                    listener.await;
                    Ok(())
                })
                .await?;
            }
            Checkout::Connect(connecting) => {
                match new_connection::<R>(connecting, request, config).await? {
                    Opened::H2(send, lease, peer) => {
                        return open::<R>(send, lease, peer, request, config)
                            .await
                            .map_err(Retry::into_error)
                    }
                    Opened::Http1(stream) => {
                        let timer = R::Timer::default();
                        return crate::connect::client(
                            stream,
                            timer,
                            request,
                            config.config.clone(),
                        )
                        .await;
                    }
                    Opened::Http1Only => return http1::<R>(request, config).await,
                }
            }
        }
    }
    Err(last.unwrap_or(Error::Closed))
}

/// Why opening a stream failed: a connection error (another connection
/// may do), or an answer to give.
enum Retry {
    Connection(Error, u64),
    No(Error),
}

impl Retry {
    fn into_error(self) -> Error {
        match self {
            Retry::Connection(error, _) | Retry::No(error) => error,
        }
    }
}

/// What a new connection turned out to be.
enum Opened<S> {
    /// HTTP/2 with extended CONNECT, in the pool, a place held on it;
    /// the server's address.
    H2(SendRequest<Bytes>, Lease, Option<SocketAddr>),
    /// ALPN chose HTTP/1.1: upgrade on this stream.
    Http1(MaybeTls<S>),
    /// h2 without extended CONNECT: remembered; connect again with
    /// `http/1.1` only.
    Http1Only,
}

/// Resolve, connect, TLS with ALPN `h2` and `http/1.1`; for h2, the
/// HTTP/2 handshake, the connection spawned and the server's SETTINGS
/// read (a PING's answer comes after them).
async fn new_connection<R: Runtime>(
    connecting: Connecting,
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<Opened<R::Stream>, Error> {
    let alpn = vec![super::ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    let stream = crate::connect::tcp_tls::<R>(request, config, alpn).await?;
    let is_h2 = stream
        .tls()
        .and_then(|tls| tls.alpn_protocol())
        .is_some_and(|alpn| alpn == super::ALPN_H2);
    if !is_h2 {
        return Ok(Opened::Http1(stream));
    }
    let peer = stream.stream().and_then(|socket| R::peer_addr(socket).ok());
    let connections = u32::try_from(connecting.pool.max_streams).unwrap_or(u32::MAX);
    let window = (u64::from(connections) * u64::from(STREAM_WINDOW)).clamp(65_535, (1 << 31) - 1);
    let handshake = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(window as u32)
        .enable_push(false)
        .max_header_list_size(u32::try_from(config.config.max_head_size).unwrap_or(u32::MAX))
        .handshake::<_, Bytes>(TransportIo(stream));
    let (send, mut connection) =
        within::<R, _>(config.config.handshake_timeout, Step::Handshake, async {
            handshake.await.map_err(|e| Error::Io(h2_to_io(e)))
        })
        .await?;
    let ping = connection.ping_pong();
    // The connection runs on the runtime; when it ends (error, GOAWAY,
    // or no stream left and the pool let go of it) it leaves the pool.
    let (ended_tx, ended) = ended_signal();
    R::spawn(async move {
        let _ = connection.await;
        ended_tx.fire();
    });
    let Some(mut ping) = ping else {
        return Err(Error::Io(io::Error::other("HTTP/2 PING unavailable")));
    };
    within::<R, _>(config.config.handshake_timeout, Step::Handshake, async {
        ping.ping(h2::Ping::opaque())
            .await
            .map(|_| ())
            .map_err(|e| Error::Io(h2_to_io(e)))
    })
    .await?;
    if !send.is_extended_connect_protocol_enabled() {
        connecting.http1_only();
        drop(send);
        return Ok(Opened::Http1Only);
    }
    let limit = connecting
        .pool
        .max_streams
        .min(send.current_max_send_streams());
    let pool = connecting.pool.clone();
    let origin = connecting.origin.clone();
    let lease = connecting.pooled(send.clone(), limit, peer);
    let id = lease.id;
    R::spawn(async move {
        ended.await;
        pool.forget(&origin, id);
    });
    Ok(Opened::H2(send, lease, peer))
}

/// A one-shot signal from the connection's task: it ended.
fn ended_signal() -> (EndedTx, impl std::future::Future<Output = ()> + Send) {
    let event = Arc::new(event_listener::Event::new());
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tx = EndedTx {
        event: event.clone(),
        fired: fired.clone(),
    };
    let wait = async move {
        // Bounded: each round either sees the flag or waits for a notify
        // that comes after it is set.
        loop {
            if fired.load(Ordering::Acquire) {
                return;
            }
            let listener = event.listen();
            if fired.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    };
    (tx, wait)
}

struct EndedTx {
    event: Arc<event_listener::Event>,
    fired: Arc<std::sync::atomic::AtomicBool>,
}

impl EndedTx {
    fn fire(self) {
        self.fired.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }
}

/// An origin without WebSockets over HTTP/2: a new connection offering
/// `http/1.1` only.
async fn http1<R: Runtime>(
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<Connected<R>, Error> {
    let stream = crate::connect::tcp_tls::<R>(request, config, vec![b"http/1.1".to_vec()]).await?;
    crate::connect::client(stream, R::Timer::default(), request, config.config.clone()).await
}

/// The extended CONNECT on a pooled connection, its answer checked as a
/// `101` is: the WebSocket over the stream.
async fn open<R: Runtime>(
    send: SendRequest<Bytes>,
    lease: Lease,
    peer: Option<SocketAddr>,
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<Connected<R>, Retry> {
    let id = lease.id;
    let connection_error = |error: h2::Error| Retry::Connection(Error::Io(h2_to_io(error)), id);
    let head = connect_request(request, &config.config).map_err(Retry::No)?;
    let limit = config.config.handshake_timeout;
    let work = async {
        let mut send = send;
        poll_fn(|cx| send.poll_ready(cx))
            .await
            .map_err(connection_error)?;
        let (response, stream) = send.send_request(head, false).map_err(connection_error)?;
        let response = response.await.map_err(|error| {
            // Refused before it was processed (GOAWAY, REFUSED_STREAM):
            // another connection may take it.
            if error.is_go_away() || error.reason() == Some(h2::Reason::REFUSED_STREAM) {
                connection_error(error)
            } else {
                Retry::No(Error::Io(h2_to_io(error)))
            }
        })?;
        Ok((response, stream))
    };
    let (response, send) = match limit {
        Some(limit) => crate::connect::timeout::<R, _>(limit, work)
            .await
            .ok_or(Retry::No(Error::Timeout(Step::Handshake)))??,
        None => work.await?,
    };
    let (parts, recv) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| Retry::No(Error::Io(io::Error::other(error))))?;
    let timer = R::Timer::default();
    let conn = Connection::client_upgraded(
        config.config.clone(),
        timer.now(),
        request,
        parts.status.as_u16(),
        headers,
        seed,
    )
    .map_err(|error| Retry::No(Error::handshake(error)))?;
    let stream = H2ClientStream {
        stream: H2Stream::new(recv, send),
        peer,
        _lease: lease,
    };
    let ws = WebSocket::from_open_client(conn, MaybeTls::H2(Box::new(stream)), timer);
    let response = ws.response().ok_or(Retry::No(Error::Closed))?;
    Ok((ws, response))
}

/// The extended CONNECT for `request`: `:protocol websocket`, the
/// authority and path of the URL, the core's headers.
fn connect_request(
    request: &ClientRequest,
    config: &hubbub_core::Config,
) -> Result<http::Request<()>, Error> {
    let host = if request.host().contains(':') {
        format!("[{}]", request.host())
    } else {
        request.host().to_owned()
    };
    let authority = if request.port() == 443 {
        host
    } else {
        format!("{host}:{}", request.port())
    };
    let mut head = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("https://{authority}{}", request.path()));
    for (name, value) in request.extended_connect_headers(config) {
        head = head.header(name, value);
    }
    let mut head = head.body(()).map_err(|error| {
        Error::Handshake(hubbub_core::HandshakeError::InvalidUrl(error.to_string()))
    })?;
    head.extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    Ok(head)
}

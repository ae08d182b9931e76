//! WebSockets over HTTP/2 (RFC 8441, extended CONNECT) for hub sessions,
//! on tokio (feature `h2`).
//!
//! An HTTP/2 connection carries many WebSockets, one per stream. The
//! server announces `SETTINGS_ENABLE_CONNECT_PROTOCOL`; a client opens a
//! WebSocket with a `CONNECT` request whose `:protocol` is `websocket`
//! (no `Upgrade`, `Connection` or `Sec-WebSocket-Key`), the server answers
//! `200`, and the stream's DATA frames then carry the RFC 6455 frames,
//! masked by the client as over HTTP/1.1.
//!
//! - [`start`] (a [`HubServer`](crate::HubServer) with TLS) or
//!   [`serve_hub`]: a TLS server for a [`Hub`] offering ALPN `h2` and
//!   `http/1.1`; after the TLS handshake the ALPN protocol picks the path:
//!   `h2` runs [`serve_h2_connection`], anything else the HTTP/1.1
//!   upgrade exactly as [`HubServer`](crate::HubServer) does.
//! - [`serve_h2_connection`]: one HTTP/2 connection (over TLS or, with
//!   prior knowledge, plain TCP) whose WebSocket streams are hub sessions.
//! - [`serve_h2_websockets`]: the same for the plain
//!   [`Server`](crate::Server): its decision and configuration, a handler
//!   per [`H2WebSocket`].
//! - [`H2Stream`]: one stream as a [`Transport`], for the
//!   [`Driver`].
//!
//! Each `CONNECT` request goes through the same decision as an HTTP/1.1
//! upgrade (the hub's [`Hub::admit`]: path, origin list, authentication,
//! connection limits, `on_upgrade`; or the [`Server`](crate::Server)'s
//! `decide`) after [`Request::from_extended_connect`] checked it; a
//! refusal is answered with its status, headers and body. Other requests:
//!
//! - `:protocol` other than `websocket`: `501 Not Implemented`;
//! - `CONNECT` without `:protocol` (a proxy tunnel): `405`;
//! - any other method: `404`. Only WebSockets are served over HTTP/2 for
//!   now: HTTP routes (hubbub-http) still need HTTP/1.1.
//!
//! **Why the `h2` crate rather than hyper.** hyper's HTTP/2 server is
//! this same crate behind a service layer, an executor and body types,
//! and hands an accepted CONNECT over as a type-erased `Upgraded` I/O
//! through `hyper::upgrade::on`, to be run in a task of its own. Only
//! WebSocket streams are served here, so none of that layer is used; with
//! `h2` directly the stream's `RecvStream` and `SendStream` are ours
//! (flow-control capacity is released exactly as the driver consumes
//! bytes), every session of a connection runs in the connection's own
//! future (so the server loop's task count, grace period and abort cover
//! them), GOAWAY is ours to send, and fewer crates are pulled. Serving
//! HTTP routes over HTTP/2 later may be the reason to revisit this.
//!
//! **Flow control.** [`H2Stream`] releases a stream's receive capacity
//! only as the driver reads bytes: a session that stops reading (its
//! driver pauses over its write backlog) stops its peer through that
//! stream's window alone. The connection window is sized so that every
//! stream may hold its full window unread without blocking the others
//! ([`H2Config`]). Writes take send capacity granted by the peer and send
//! at most that much, so nothing is buffered beyond the peer's window.
//!
//! Limits of this first slice: server only (no HTTP/2 client); tokio
//! only; no HTTP routes over HTTP/2; no accept loop for the plain
//! [`Server`](crate::Server) (call [`serve_h2_websockets`] per
//! connection); an identity proved by the upgrade request's token is not
//! kept (as with hubbub-axum's `on_upgrade_hub`: the session
//! authenticates in band if the hub asks).

use std::{
    future::{poll_fn, Future},
    io::{self, IoSlice},
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::{
    server::{self, SendResponse},
    RecvStream, SendStream,
};
use hubbub_hub::{run_admitted_session, run_session, Hub, HubHandle, SessionInfo};
use hubbub_ws::{
    driver::{Driver, Transport},
    hubbub_core::{Accept, Config, Connection, Negotiated, Reject, Request},
    serving::{self, Service},
    tls::{rustls::ServerConfig, TlsAcceptor},
    MaybeTls,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
};

use crate::{Io, Tokio, TokioTimer};

/// The ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// Most requests taken from one connection in one poll before the other
/// work of the connection's task (its sessions) gets a turn.
const ACCEPTS_PER_POLL: usize = 32;

/// Most bytes asked for in one write (the peer's window bounds it too).
const MAX_WRITE: usize = 64 << 10;

/// HTTP/2 settings of [`serve_h2_connection`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct H2Config {
    /// Most WebSocket streams open at once on one connection (100).
    pub max_concurrent_streams: u32,
    /// Each stream's receive window, in bytes (64 KiB): the most a peer
    /// may send to a session that does not read.
    pub stream_window: u32,
    /// How long the client has to send the HTTP/2 preface and settings
    /// (10 s).
    pub handshake_timeout: Duration,
    /// A connection without a WebSocket open for this long is closed
    /// (GOAWAY; 10 s): as an HTTP/1.1 connection must upgrade within the
    /// handshake timeout and ends with its WebSocket.
    pub idle_timeout: Duration,
}

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            max_concurrent_streams: 100,
            stream_window: 64 << 10,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl H2Config {
    /// The connection's receive window: room for every stream's window, so
    /// that streams whose sessions stop reading never block the others.
    fn connection_window(&self) -> u32 {
        let total = u64::from(self.max_concurrent_streams) * u64::from(self.stream_window);
        // HTTP/2's largest window (2^31 - 1).
        total.clamp(65_535, (1 << 31) - 1) as u32
    }
}

/// A copy of `config` whose ALPN offers `h2` first, then `http/1.1`, for
/// the acceptor of [`serve_hub`]: with
/// [`TlsAcceptor::reload`] on an acceptor made from PEM files (whose
/// `reload_from_files` then keeps offering `h2`), or with
/// [`TlsAcceptor::from_config`].
///
/// ```no_run
/// use hubbub_tokio::{http2, TlsAcceptor};
/// # fn run() -> std::io::Result<()> {
/// let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
/// acceptor.reload(http2::offer_h2(&acceptor.config()));
/// # Ok(()) }
/// ```
pub fn offer_h2(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serve `hub` on `listener` over TLS with `acceptor`, whose ALPN must
/// offer `h2` (see [`offer_h2`]; an `InvalidInput` error otherwise). Each
/// connection's ALPN protocol picks the path: `h2` serves its WebSocket
/// streams as hub sessions ([`serve_h2_connection`]); anything else is an
/// HTTP/1.1 upgrade, served exactly as [`HubServer`](crate::HubServer)
/// serves it. The handle's `shutdown` is [`HubServer`](crate::HubServer)'s:
/// every session, on either protocol, is closed with 1001, then a bounded
/// wait.
pub fn serve_hub(
    listener: TcpListener,
    hub: Hub,
    config: Arc<Config>,
    h2: H2Config,
    acceptor: TlsAcceptor,
) -> io::Result<HubHandle> {
    let alpn = acceptor.config().alpn_protocols.clone();
    if !alpn.iter().any(|protocol| protocol == ALPN_H2) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the TLS acceptor does not offer ALPN h2 (see http2::offer_h2)",
        ));
    }
    let service = AlpnService {
        hub: hub.clone(),
        config,
        h2,
    };
    let server = serving::start_with::<Tokio, _>(listener, service, Some(acceptor))?;
    Ok(HubHandle::new(server, hub))
}

/// [`serve_hub`] for a [`HubServer`](crate::HubServer) built as usual
/// (`bind`, `tls`): its listener, hub, configuration and TLS acceptor,
/// whose ALPN must offer `h2` ([`offer_h2`]). A server without TLS is an
/// `InvalidInput` error: browsers speak HTTP/2 only under TLS.
///
/// ```no_run
/// use std::sync::Arc;
/// use hubbub_tokio::{http2, Config, Hub, HubServer, TlsAcceptor};
///
/// # async fn run(hub: Hub) -> std::io::Result<()> {
/// let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
/// acceptor.reload(http2::offer_h2(&acceptor.config()));
/// let server = HubServer::bind("127.0.0.1:9443", hub, Arc::new(Config::default()))
///     .await?
///     .tls(acceptor);
/// let handle = http2::start(server, http2::H2Config::default())?;
/// # let _ = handle; Ok(()) }
/// ```
pub fn start(server: crate::HubServer, h2: H2Config) -> io::Result<HubHandle> {
    let acceptor = server.tls_acceptor().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "HTTP/2 is served under TLS: give the hub server a TLS acceptor",
        )
    })?;
    let (listener, hub, config) = server.into_parts();
    serve_hub(listener, hub, config, h2, acceptor)
}

/// [`serve_hub`]'s service: a connection under TLS picks HTTP/2 or
/// HTTP/1.1 by its ALPN protocol.
struct AlpnService {
    hub: Hub,
    config: Arc<Config>,
    h2: H2Config,
}

impl Service<Tokio> for AlpnService {
    fn serve(
        &self,
        stream: MaybeTls<Io<tokio::net::TcpStream>>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let is_h2 = stream.tls().and_then(|tls| tls.alpn_protocol()) == Some(ALPN_H2);
        let (hub, config, h2) = (self.hub.clone(), self.config.clone(), self.h2);
        async move {
            if is_h2 {
                let _ = serve_h2_connection(TransportIo(stream), hub, config, h2, Some(peer)).await;
            } else {
                // HubServer's own path (hub/src/server.rs `SessionService`).
                let conn = Connection::server(config, <Tokio as hubbub_ws::Runtime>::now());
                let driver = Driver::new(conn, stream, TokioTimer::default());
                run_session(driver, hub, Some(peer)).await;
            }
        }
    }

    fn shutdown(&self) {
        self.hub.shutdown();
    }
}

/// One session's future, run by its connection's task.
type SessionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serve one HTTP/2 connection on `io` (under TLS with ALPN `h2`, or
/// plain TCP with prior knowledge): every WebSocket stream opened on it by
/// an extended CONNECT is a session of `hub`, until the connection ends.
/// The sessions run inside this future (dropping it ends them all, with
/// `on_close` 1006).
///
/// Returns the connection's error, if it ended with one (no preface
/// within [`H2Config::handshake_timeout`] is `TimedOut`).
pub async fn serve_h2_connection<I>(
    io: I,
    hub: Hub,
    config: Arc<Config>,
    h2: H2Config,
    peer: Option<SocketAddr>,
) -> io::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let draining = || !hub.is_accepting();
    drive(
        io,
        h2,
        config.max_head_size,
        draining,
        |request, respond| {
            let refused = |status| hub.metrics().handshakes_rejected.inc(status);
            let admit = |request: &Request| hub.admit(request, peer);
            let (request, upgrade, stream, slot) =
                open_stream(request, respond, &config, admit, refused)?;
            let mut info = SessionInfo::from_request(peer, &request);
            info.protocol = upgrade.protocol().map(str::to_owned);
            let now = <Tokio as hubbub_ws::Runtime>::now();
            let conn = Connection::upgraded(config.clone(), upgrade, now);
            let driver = Driver::new(conn, stream, TokioTimer::default());
            let session = run_admitted_session(driver, hub.clone(), info, slot);
            Some(Box::pin(session) as SessionFuture)
        },
    )
    .await
}

/// A WebSocket over one HTTP/2 stream, as [`serve_h2_websockets`] hands
/// it to its handler.
pub type H2WebSocket = hubbub_ws::WebSocket<H2Stream, TokioTimer>;

/// [`serve_h2_connection`] for the plain [`Server`](crate::Server): each
/// WebSocket stream is accepted as `server` would accept an HTTP/1.1
/// upgrade ([`Server::decision`](hubbub_ws::Server::decision), its
/// configuration) and handed to `handler` with its [`Request`]. The
/// handlers' futures run inside this one (dropping it ends them all).
pub async fn serve_h2_websockets<I, H, F>(
    io: I,
    server: crate::Server,
    h2: H2Config,
    handler: H,
) -> io::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin,
    H: Fn(H2WebSocket, Request) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let config = server.config().clone();
    drive(
        io,
        h2,
        config.max_head_size,
        || false,
        |request, respond| {
            let decide = |request: &Request| server.decision(request).map(|accept| (accept, ()));
            let (request, upgrade, stream, ()) =
                open_stream(request, respond, &config, decide, |_| {})?;
            let timer = TokioTimer::default();
            let ws = hubbub_ws::WebSocket::from_upgraded(stream, timer, config.clone(), upgrade);
            Some(Box::pin(handler(ws, request)) as SessionFuture)
        },
    )
    .await
}

/// Run one HTTP/2 connection: `answer` turns each request into a
/// session's future (having answered it) or answers it with an error;
/// the sessions run in this future, until the connection and they are
/// all over. Once `draining` (the hub shuts down), or idle for
/// [`H2Config::idle_timeout`], the connection sends GOAWAY and ends when
/// its last stream does. A request's headers are bounded by `max_head`
/// bytes (the HTTP/1.1 head's limit, [`Config::max_head_size`]).
async fn drive<I, D, A>(
    io: I,
    h2: H2Config,
    max_head: usize,
    draining: D,
    mut answer: A,
) -> io::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin,
    D: Fn() -> bool,
    A: FnMut(http::Request<RecvStream>, SendResponse<Bytes>) -> Option<SessionFuture>,
{
    let handshake = server::Builder::new()
        .enable_connect_protocol()
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_window_size(h2.stream_window.min((1 << 31) - 1))
        .initial_connection_window_size(h2.connection_window())
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX))
        .handshake::<_, Bytes>(io);
    let mut connection = match tokio::time::timeout(h2.handshake_timeout, handshake).await {
        Ok(connection) => connection.map_err(h2_to_io)?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    };
    let mut sessions = FuturesUnordered::<SessionFuture>::new();
    let mut accepting = true;
    let mut going_away = false;
    let mut failure = None;
    // Armed while no session runs.
    let mut idle = Box::pin(tokio::time::sleep(h2.idle_timeout));
    let mut idle_armed = true;
    poll_fn(|cx| {
        // The sessions first: each is polled only when woken.
        while let Poll::Ready(Some(())) = sessions.poll_next_unpin(cx) {}
        // Checked whenever the task wakes (a session closing with 1001
        // wakes it).
        if !going_away && draining() {
            going_away = true;
            connection.graceful_shutdown();
        }
        let mut accepted = 0;
        while accepting {
            if accepted == ACCEPTS_PER_POLL {
                cx.waker().wake_by_ref();
                break;
            }
            match connection.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    accepted += 1;
                    if let Some(session) = answer(request, respond) {
                        sessions.push(session);
                        // Polled once at once, to register its wakers.
                        cx.waker().wake_by_ref();
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    failure = Some(h2_to_io(error));
                    accepting = false;
                }
                Poll::Ready(None) => accepting = false,
                Poll::Pending => break,
            }
        }
        if !sessions.is_empty() {
            idle_armed = false;
        } else if !going_away {
            if !idle_armed {
                idle_armed = true;
                idle.as_mut()
                    .reset(tokio::time::Instant::now() + h2.idle_timeout);
            }
            if idle.as_mut().poll(cx).is_ready() {
                going_away = true;
                connection.graceful_shutdown();
                // Polled again for the GOAWAY to be sent.
                cx.waker().wake_by_ref();
            }
        }
        // Once the connection is over, its streams fail: the sessions end.
        if !accepting && sessions.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    failure.map_or(Ok(()), Err)
}

/// Open a WebSocket on one request, or answer it with an error: check it
/// (an extended CONNECT for `websocket`, [`Request::from_extended_connect`]),
/// `decide` (an [`Accept`] and what the caller keeps with it),
/// negotiate, answer `200`. A refusal's status goes to `refused` too.
fn open_stream<X>(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    config: &Config,
    decide: impl FnOnce(&Request) -> Result<(Accept, X), Reject>,
    refused: impl FnOnce(u16),
) -> Option<(Request, Negotiated, H2Stream, X)> {
    let (parts, recv) = request.into_parts();
    let checked = websocket_request(&parts).and_then(|request| {
        let (accept, kept) = decide(&request)?;
        let upgrade = request
            .negotiate(config, accept)
            .map_err(|error| Reject::new(500).with_body(error.to_string()))?;
        Ok((request, upgrade, kept))
    });
    let (request, upgrade, kept) = match checked {
        Ok(checked) => checked,
        Err(reject) => {
            refused(reject.status());
            refuse(&mut respond, &reject);
            return None;
        }
    };
    let mut response = http::Response::builder().status(200);
    for (name, value) in &upgrade.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let response = response.body(()).ok()?;
    let send = respond.send_response(response, false).ok()?;
    Some((request, upgrade.negotiated, H2Stream::new(recv, send), kept))
}

/// The core [`Request`] of an extended CONNECT for `websocket`, or the
/// answer refusing the request.
fn websocket_request(parts: &http::request::Parts) -> Result<Request, Reject> {
    if parts.method != http::Method::CONNECT {
        return Err(Reject::not_found()
            .with_body("Only WebSockets (extended CONNECT, RFC 8441) are served over HTTP/2."));
    }
    let Some(protocol) = parts.extensions.get::<h2::ext::Protocol>() else {
        return Err(
            Reject::new(405).with_body("CONNECT without :protocol: this server is not a proxy.")
        );
    };
    // Case-insensitive, as the HTTP/1.1 path reads `Upgrade: websocket`.
    if !protocol.as_str().eq_ignore_ascii_case("websocket") {
        return Err(Reject::new(501).with_body(format!(
            "The protocol {:?} is not supported; use websocket.",
            protocol.as_str()
        )));
    }
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = parts.uri.authority().map(|a| a.as_str());
    let host = (!parts.headers.contains_key(http::header::HOST))
        .then_some(authority)
        .flatten()
        .map(|authority| ("host", authority.as_bytes()));
    let headers = host.into_iter().chain(
        parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    Request::from_extended_connect(target, headers)
}

/// Answer `reject`'s status, headers and plain-text body.
fn refuse(respond: &mut SendResponse<Bytes>, reject: &Reject) {
    let mut response = http::Response::builder().status(reject.status());
    for (name, value) in reject.headers() {
        response = response.header(name, value);
    }
    let body = reject.body();
    if !body.is_empty() {
        response = response.header("content-type", "text/plain; charset=utf-8");
    }
    let Ok(response) = response.body(()) else {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return;
    };
    if let Ok(mut send) = respond.send_response(response, body.is_empty()) {
        if !body.is_empty() {
            // A few hundred bytes, queued by h2 within the stream's window.
            let _ = send.send_data(Bytes::copy_from_slice(body.as_bytes()), true);
        }
    }
}

/// One HTTP/2 stream as the driver's [`Transport`]: DATA frames in,
/// DATA frames out, END_STREAM for shutdown.
///
/// Reading hands out one received DATA chunk at a time and releases its
/// flow-control capacity as the driver takes the bytes, so the peer may
/// send no more than the stream's window to a session that stopped
/// reading. Writing asks for send capacity and sends at most what the
/// peer's windows grant: nothing is queued beyond them.
pub struct H2Stream {
    recv: RecvStream,
    send: SendStream<Bytes>,
    /// The rest of the DATA chunk being read.
    chunk: Bytes,
    /// END_STREAM sent.
    finished: bool,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream")
            .field("stream_id", &self.send.stream_id())
            .field("buffered", &self.chunk.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl H2Stream {
    /// A stream whose request was answered with `200`: `recv` is the
    /// request's body, `send` the response's.
    pub fn new(recv: RecvStream, send: SendStream<Bytes>) -> Self {
        H2Stream {
            recv,
            send,
            chunk: Bytes::new(),
            finished: false,
        }
    }

    /// Send capacity for up to `want` bytes: what is granted, or pending.
    fn poll_capacity(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        self.send.reserve_capacity(want.min(MAX_WRITE));
        // Bounded: `poll_capacity` is ready only when the capacity grew.
        for _ in 0..4 {
            let capacity = self.send.capacity();
            if capacity > 0 {
                return Poll::Ready(Ok(capacity.min(want)));
            }
            match self.send.poll_capacity(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(h2_to_io(error))),
                Poll::Ready(None) => return Poll::Ready(Err(self.reset_error(cx))),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The error for a stream that can no longer send.
    fn reset_error(&mut self, cx: &mut Context<'_>) -> io::Error {
        match self.send.poll_reset(cx) {
            Poll::Ready(Ok(reason)) => io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("HTTP/2 stream reset: {reason}"),
            ),
            Poll::Ready(Err(error)) => h2_to_io(error),
            Poll::Pending => io::ErrorKind::BrokenPipe.into(),
        }
    }
}

impl Transport for H2Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        while self.chunk.is_empty() {
            match self.recv.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(h2_to_io(error))),
                Poll::Ready(Some(Ok(chunk))) => self.chunk = chunk,
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        // Consumed: the peer may send this much more.
        if let Err(error) = self.recv.flow_control().release_capacity(n) {
            return Poll::Ready(Err(h2_to_io(error)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.finished {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = match self.poll_capacity(cx, want) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut data = BytesMut::with_capacity(n);
        for buf in bufs {
            let room = n - data.len();
            if room == 0 {
                break;
            }
            data.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        match self.send.send_data(data.freeze(), false) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(error) => Poll::Ready(Err(h2_to_io(error))),
        }
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !std::mem::replace(&mut self.finished, true) {
            // An error means the stream was reset already: nothing to end.
            let _ = self.send.send_data(Bytes::new(), true);
        }
        Poll::Ready(Ok(()))
    }
}

/// An h2 error as an `io::Error` (a stream reset is `ConnectionReset`).
fn h2_to_io(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::ErrorKind::Other.into());
    }
    let kind = if error.is_reset() || error.is_go_away() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, error)
}

/// A [`Transport`] (such as a [`MaybeTls`] stream after its TLS
/// handshake) as tokio's `AsyncRead` and `AsyncWrite`, for the `h2` crate.
#[derive(Debug)]
pub struct TransportIo<T>(pub T);

impl<T: Transport + Unpin> AsyncRead for TransportIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = match self.0.poll_read(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: Transport + Unpin> AsyncWrite for TransportIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_shutdown(cx)
    }
}

//! The server side of an HTTP/2 connection: its settings, the loop that
//! runs its streams, and the extended CONNECT that opens a WebSocket.

use std::{
    future::{poll_fn, Future},
    io,
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::{server::SendResponse, RecvStream};
use hubbub_core::{Accept, Config, Negotiated, Reject, Request};
use tokio::io::{AsyncRead, AsyncWrite};

use super::stream::{h2_to_io, H2Stream};
use crate::{driver::Timer, tls::rustls::ServerConfig, Runtime, Server, WebSocket};

/// The ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// Most requests taken from one connection in one poll before the other
/// work of the connection's task (its streams) gets a turn.
const ACCEPTS_PER_POLL: usize = 32;

/// HTTP/2 settings of a served connection.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct H2Config {
    /// Most streams (WebSockets, requests) open at once on one connection
    /// (100).
    pub max_concurrent_streams: u32,
    /// Each stream's receive window, in bytes (64 KiB): the most a peer
    /// may send to a session that does not read.
    pub stream_window: u32,
    /// How long the client has to send the HTTP/2 preface and settings
    /// (10 s).
    pub handshake_timeout: Duration,
    /// A connection without a stream open for this long is closed
    /// (GOAWAY; 10 s): as an idle HTTP/1.1 connection is.
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

/// A copy of `config` whose ALPN offers `h2` first, then `http/1.1`: for
/// a TLS acceptor serving both ([`TlsAcceptor::reload`] on an acceptor
/// made from PEM files, whose `reload_from_files` then keeps offering
/// `h2`, or [`TlsAcceptor::from_config`]).
///
/// [`TlsAcceptor::reload`]: crate::tls::TlsAcceptor::reload
/// [`TlsAcceptor::from_config`]: crate::tls::TlsAcceptor::from_config
pub fn offer_h2(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A request as the `h2` crate hands it over: its head and body.
pub type H2Request = http::Request<RecvStream>;

/// Where a request's response goes.
pub type H2Respond = SendResponse<Bytes>;

/// The byte stream an HTTP/2 connection runs on: tokio's I/O traits, as
/// the `h2` crate drives them ([`TransportIo`](super::TransportIo) gives
/// them to any runtime's stream).
pub trait H2Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> H2Io for T {}

/// One stream's future (a WebSocket session, an HTTP answer), run by its
/// connection's future.
pub type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serve one HTTP/2 connection on `io` (under TLS with ALPN `h2`, or
/// plain TCP with prior knowledge), with the timers of runtime `R`:
/// `answer` turns each request into its stream's future (having answered
/// it or being about to) or answers it at once (`None`); the streams'
/// futures run inside this one, until the connection and they are all
/// over (dropping it ends them all). Once `draining` (the server shuts
/// down), or with no stream open for [`H2Config::idle_timeout`], the
/// connection sends GOAWAY and ends when its last stream does. A
/// request's headers are bounded by `max_head` bytes.
///
/// Returns the connection's error, if it ended with one (no preface
/// within [`H2Config::handshake_timeout`] is `TimedOut`).
pub async fn serve_connection<R, I, D, A>(
    io: I,
    h2: H2Config,
    max_head: usize,
    draining: D,
    mut answer: A,
) -> io::Result<()>
where
    R: Runtime,
    I: H2Io,
    D: Fn() -> bool,
    A: FnMut(H2Request, H2Respond) -> Option<StreamFuture>,
{
    let mut handshake = h2::server::Builder::new()
        .enable_connect_protocol()
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_window_size(h2.stream_window.min((1 << 31) - 1))
        .initial_connection_window_size(h2.connection_window())
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX))
        .handshake::<_, Bytes>(io);
    let mut timer = R::Timer::default();
    timer.reset(R::now() + h2.handshake_timeout);
    let handshake = poll_fn(|cx| {
        if let Poll::Ready(done) = Pin::new(&mut handshake).poll(cx) {
            return Poll::Ready(done.map_err(h2_to_io));
        }
        timer.poll(cx).map(|()| Err(io::ErrorKind::TimedOut.into()))
    });
    let mut connection = handshake.await?;
    let mut streams = FuturesUnordered::<StreamFuture>::new();
    let mut accepting = true;
    let mut going_away = false;
    let mut failure = None;
    // The idle timer: armed while no stream runs.
    let mut idle_armed = false;
    poll_fn(|cx| {
        // The streams first: each is polled only when woken.
        while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {}
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
                    if let Some(stream) = answer(request, respond) {
                        streams.push(stream);
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
        if !streams.is_empty() {
            idle_armed = false;
        } else if !going_away {
            if !idle_armed {
                idle_armed = true;
                timer.reset(R::now() + h2.idle_timeout);
            }
            if timer.poll(cx).is_ready() {
                going_away = true;
                connection.graceful_shutdown();
                // Polled again for the GOAWAY to be sent.
                cx.waker().wake_by_ref();
            }
        }
        // Once the connection is over, its streams fail: they end.
        if !accepting && streams.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    failure.map_or(Ok(()), Err)
}

/// A WebSocket over one HTTP/2 stream on runtime `R`, as
/// [`serve_h2_websockets`] hands it to its handler.
pub type H2WebSocket<R> = WebSocket<H2Stream, <R as Runtime>::Timer>;

/// [`serve_connection`] for the plain [`Server`]: each WebSocket stream
/// is accepted as `server` would accept an HTTP/1.1 upgrade
/// ([`Server::decision`], its configuration) and handed to `handler` with
/// its [`Request`]; any other request is refused as [`websocket_request`]
/// says. The handlers' futures run inside this one (dropping it ends them
/// all).
pub async fn serve_h2_websockets<R, I, H, F>(
    io: I,
    server: Server<R>,
    h2: H2Config,
    handler: H,
) -> io::Result<()>
where
    R: Runtime,
    I: H2Io,
    H: Fn(H2WebSocket<R>, Request) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let config = server.config().clone();
    serve_connection::<R, _, _, _>(
        io,
        h2,
        config.max_head_size,
        || false,
        |request, respond| {
            let decide = |request: &Request| server.decision(request).map(|accept| (accept, ()));
            let (request, upgrade, stream, ()) =
                open_websocket(request, respond, &config, decide, |_| {})?;
            let timer = R::Timer::default();
            let ws = WebSocket::from_upgraded(stream, timer, config.clone(), upgrade);
            Some(Box::pin(handler(ws, request)) as StreamFuture)
        },
    )
    .await
}

/// Open a WebSocket on one request, or answer it with an error: check it
/// ([`websocket_request`]), `decide` (an [`Accept`] and what the caller
/// keeps with it), negotiate, answer `200`. A refusal's status goes to
/// `refused` too.
pub fn open_websocket<X>(
    request: H2Request,
    mut respond: H2Respond,
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

/// The core [`Request`] of an extended CONNECT for `websocket`
/// ([`Request::from_extended_connect`]), or the answer refusing it:
///
/// - `:protocol` other than `websocket`: `501 Not Implemented`;
/// - `CONNECT` without `:protocol` (a proxy tunnel): `405`;
/// - any other method: `404` (a server with HTTP routes answers those
///   before asking).
pub fn websocket_request(parts: &http::request::Parts) -> Result<Request, Reject> {
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
pub fn refuse(respond: &mut H2Respond, reject: &Reject) {
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

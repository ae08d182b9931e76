//! [`WebSocket`] and its halves.

use std::{
    future::{poll_fn, Future},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{ready, Context, Poll, Wake, Waker},
};

use crate::{
    driver::{Driver, Timer, Transport, BACKLOG_LIMIT},
    Error,
};
use bytes::Bytes;
use futures_core::{FusedStream, Stream};
use futures_sink::Sink;
use futures_util::task::AtomicWaker;
use hubbub_core::{
    Accept, CloseCode, Closed, Config, Connection, Event, Message, Negotiated, Opened, Reject,
    Request, Response,
};

/// Everything a connection owns; shared by the two halves after a split.
pub(crate) struct Core<T: Transport, K: Timer> {
    driver: Driver<T, K>,
    /// What is usually unset, in one box made when the first of it is set:
    /// an idle connection's memory is mostly this struct.
    extras: Option<Box<Extras>>,
    /// The stream has returned `None`.
    ended: bool,
}

/// A connection's rarely set state (see [`Core::extras`]).
#[derive(Default)]
struct Extras {
    /// How the connection ended, once it has.
    closed: Option<Closed>,
    /// The payload of the last pong received.
    last_pong: Option<Bytes>,
    /// The subprotocol and extension agreed in the handshake, if either was.
    opened: Option<Opened>,
}

impl<T: Transport, K: Timer> Core<T, K> {
    pub(crate) fn new(conn: Connection, transport: T, timer: K) -> Self {
        Core {
            driver: Driver::new(conn, transport, timer),
            extras: None,
            ended: false,
        }
    }

    /// Run the opening handshake until the connection is open. `decide`
    /// answers the upgrade request (server role).
    pub(crate) async fn open<D>(&mut self, decide: D) -> Result<(), Error>
    where
        D: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let opened = self.driver.open(decide).await?;
        self.set_opened(opened);
        Ok(())
    }

    /// Keep what the handshake agreed, if it agreed on anything.
    fn set_opened(&mut self, opened: Opened) {
        if opened.protocol.is_some() || opened.extensions.is_some() {
            self.extras_mut().opened = Some(opened);
        }
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    fn closed(&self) -> Option<&Closed> {
        self.extras.as_ref()?.closed.as_ref()
    }

    fn last_pong(&self) -> Option<&Bytes> {
        self.extras.as_ref()?.last_pong.as_ref()
    }

    fn opened(&self) -> Option<&Opened> {
        self.extras.as_ref()?.opened.as_ref()
    }

    /// The server's `101` response (client role, once open).
    pub(crate) fn response(&self) -> Option<Response> {
        self.driver.conn_ref().response().cloned()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        while !self.ended {
            let event = match ready!(self.driver.poll_event(cx)) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.ended = true;
                    break;
                }
                Err(error) => return Poll::Ready(Some(Err(Error::Io(error)))),
            };
            match event {
                Event::Message(message) => return Poll::Ready(Some(Ok(message))),
                Event::Pong(payload) => self.extras_mut().last_pong = Some(payload),
                Event::ProtocolError(error) => {
                    return Poll::Ready(Some(Err(Error::Protocol(error))))
                }
                Event::Closed(closed) => self.extras_mut().closed = Some(closed),
                Event::HandshakeFailed(error) => {
                    return Poll::Ready(Some(Err(Error::handshake(error))))
                }
                // Pings are answered by the core; nothing else is expected.
                _ => {}
            }
        }
        Poll::Ready(None)
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.driver.conn_ref().is_open() {
            return Poll::Ready(Err(Error::Closed));
        }
        if self.driver.conn_ref().pending_bytes() < BACKLOG_LIMIT {
            return Poll::Ready(Ok(()));
        }
        match self.driver.poll_flush(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(Error::Io(error))),
            _ if self.driver.conn_ref().pending_bytes() < BACKLOG_LIMIT => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        let conn = self.driver.conn();
        if !conn.is_open() {
            return Err(Error::Closed);
        }
        Ok(conn.send(message)?)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.driver.poll_flush(cx))?;
        match self.driver.conn_ref().pending_bytes() {
            0 => Poll::Ready(Ok(())),
            // The transport failed earlier: these bytes will never leave.
            _ => Poll::Ready(Err(Error::Closed)),
        }
    }

    fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        let conn = self.driver.conn();
        if !conn.is_open() {
            return Err(Error::Closed);
        }
        Ok(conn.ping(payload)?)
    }

    fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.driver.now();
        let conn = self.driver.conn();
        if !conn.is_open() {
            return Err(Error::Closed);
        }
        Ok(conn.close(now, code, reason)?)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.driver.conn_ref().is_open() {
            self.start_close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush(cx)
    }
}

/// A WebSocket connection over a transport `T` (a TCP stream, usually),
/// keeping time with the timer `K`. Each adapter names it for its runtime
/// (`hubbub_tokio::WebSocket<TcpStream>`, `hubbub_smol::WebSocket`).
///
/// Receive with [`Stream`] (`next()` from `futures_util::StreamExt`) or
/// [`recv`](Self::recv); send with [`Sink`] or [`send`](Self::send) /
/// [`feed`](Self::feed).
///
/// - **Control frames** are handled inside: pings are answered, pongs are
///   recorded ([`last_pong`](Self::last_pong)) and neither is a stream item,
///   so a read loop sees only data messages.
/// - **Errors**: a protocol violation by the peer is one `Err` item; the
///   core has queued the matching close frame, and the stream goes on to
///   `None` once the connection is over.
/// - **The end**: the stream returns `None` when the connection is over and
///   the socket can be dropped (close frames exchanged, write half shut
///   down, the peer's end of stream seen or the close timeout passed).
///   [`closed`](Self::closed) then tells how it ended. Keep reading until
///   `None` for a clean close: a socket dropped earlier may reach the peer
///   as a reset.
/// - **Progress**: reading, answering pings and firing timers (keep-alive,
///   idle, close deadlines) happen while the stream is polled; keep a
///   `recv()`/`next()` pending (or a [`ReadHalf`] polled) for as long as the
///   connection should live. Sending alone only writes.
/// - **Cancel safety**: every piece of state lives in this value, so a
///   pending `recv()` or `next()` may be dropped (e.g. in `select!`) without
///   losing a message. A message is queued whole or not at all: a `feed()`
///   dropped while waiting for room has not queued its message, and a
///   `send()` dropped while flushing has (it is written by the next poll).
/// - **Writes are batched**: the bytes of every queued frame leave in one
///   vectored write when the stream next polls or the sink is flushed.
pub struct WebSocket<T: Transport, K: Timer> {
    core: Core<T, K>,
}

impl<T: Transport, K: Timer> WebSocket<T, K> {
    pub(crate) fn from_core(core: Core<T, K>) -> Self {
        WebSocket { core }
    }

    /// A server WebSocket over `transport` whose upgrade another HTTP
    /// server (hyper, axum) has already answered with the headers of
    /// [`Request::negotiate`](hubbub_core::Request::negotiate): it starts
    /// open, with the negotiated subprotocol and extension (permessage-
    /// deflate included) and `config`'s limits and timers. Bytes the HTTP
    /// server read past the request head must be part of `transport`
    /// (hyper's upgraded IO replays them).
    pub fn from_upgraded(
        transport: T,
        timer: K,
        config: Arc<Config>,
        negotiated: Negotiated,
    ) -> Self {
        let conn = Connection::upgraded(config, negotiated, timer.now());
        Self::from_open(conn, transport, timer)
    }

    /// A client WebSocket whose connection started open
    /// ([`Connection::client_upgraded`], over HTTP/2).
    #[cfg(feature = "h2")]
    pub(crate) fn from_open_client(conn: Connection, transport: T, timer: K) -> Self {
        Self::from_open(conn, transport, timer)
    }

    /// The server's response (client role).
    #[cfg(feature = "h2")]
    pub(crate) fn response(&self) -> Option<Response> {
        self.core.response()
    }

    /// A WebSocket over a connection that started open: its
    /// [`Event::Open`] taken.
    fn from_open(mut conn: Connection, transport: T, timer: K) -> Self {
        let opened = match conn.poll_event() {
            Some(Event::Open(opened)) => Some(opened),
            _ => None,
        };
        let mut core = Core::new(conn, transport, timer);
        if let Some(opened) = opened {
            core.set_opened(opened);
        }
        WebSocket { core }
    }

    /// The next data message; `None` once the connection is over.
    ///
    /// (This and [`feed`](Self::feed) return their futures from plain
    /// functions: an `async fn` would keep its arguments twice, and these
    /// futures live in every connection's task.)
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<Message, Error>>> + '_ {
        poll_fn(|cx| self.core.poll_next(cx))
    }

    /// The driver and the agreed subprotocol, for a loop of its own (the
    /// hub's callback client runs the connection this way). Messages the
    /// driver had read ahead stay in its core.
    pub fn into_driver(self) -> (Driver<T, K>, Option<String>) {
        let protocol = self.core.extras.and_then(|extras| extras.opened?.protocol);
        (self.core.driver, protocol)
    }

    /// Queue a message and write everything queued.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queue a message without writing it yet (waiting first while more
    /// than 256 KiB are queued). It is written by the next
    /// [`flush`](Self::flush), `send`, or by the stream before it reads:
    /// an echo loop of `recv` and `feed` writes all its answers to one
    /// read in one system call.
    pub fn feed(
        &mut self,
        message: impl Into<Message>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        let mut message = Some(message.into());
        poll_fn(move |cx| {
            ready!(self.core.poll_ready(cx))?;
            match message.take() {
                Some(message) => Poll::Ready(self.core.start_send(message)),
                None => Poll::Ready(Ok(())),
            }
        })
    }

    /// Write everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_flush(cx)).await
    }

    /// Send a ping (at most 125 bytes). Its pong shows up in
    /// [`last_pong`](Self::last_pong) while the stream is polled.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.core.ping(payload)?;
        self.flush().await
    }

    /// Queue a close frame; the stream goes on delivering messages the peer
    /// sent before its close, and then `None`.
    pub fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.core.start_close(code, reason)
    }

    /// Close the connection and wait until the close handshake is over and
    /// the socket released. Messages arriving meanwhile are discarded (use
    /// [`start_close`](Self::start_close) and keep reading to get them).
    /// Returns how the connection ended. `code` must be one that may be sent
    /// (1000–1003, 1007–1014, 3000–4999) and `reason` at most 123 bytes.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        if self.core.driver.conn_ref().is_open() {
            self.core.start_close(code, reason)?;
        }
        while self.recv().await.is_some() {}
        self.core.closed().cloned().ok_or(Error::Closed)
    }

    /// True while messages may be sent.
    pub fn is_open(&self) -> bool {
        self.core.driver.conn_ref().is_open()
    }

    /// How the connection ended (set when the stream sees the close).
    pub fn closed(&self) -> Option<&Closed> {
        self.core.closed()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.core.opened()?.protocol.as_deref()
    }

    /// The negotiated extension as sent in `Sec-WebSocket-Extensions`
    /// (e.g. `permessage-deflate; server_no_context_takeover`), if any.
    pub fn extensions(&self) -> Option<&str> {
        self.core.opened()?.extensions.as_deref()
    }

    /// The payload of the last pong received.
    pub fn last_pong(&self) -> Option<&Bytes> {
        self.core.last_pong()
    }

    /// The underlying transport (e.g. for its peer address).
    pub fn get_ref(&self) -> &T {
        self.core.driver.transport()
    }

    /// Split into a sending and a receiving half that may be used from
    /// different tasks. Either half alone keeps the connection running:
    /// while only the read half is polled, pongs and close echoes are still
    /// written; while only the write half is, queued frames are written (but
    /// nothing is read).
    pub fn split(self) -> (WriteHalf<T, K>, ReadHalf<T, K>) {
        let wakers = Arc::new(Wakers::default());
        let shared = Arc::new(Shared {
            core: Mutex::new(self.core),
            waker: Waker::from(wakers.clone()),
            wakers,
        });
        (
            WriteHalf {
                shared: shared.clone(),
            },
            ReadHalf { shared },
        )
    }
}

// Nothing in a WebSocket is pinned: it is polled through `&mut` only.
impl<T: Transport, K: Timer> Unpin for WebSocket<T, K> {}

impl<T: Transport, K: Timer> std::fmt::Debug for WebSocket<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conn = self.core.driver.conn_ref();
        f.debug_struct("WebSocket")
            .field("role", &conn.role())
            .field("open", &conn.is_open())
            .field("pending_bytes", &conn.pending_bytes())
            .field("closed", &self.core.closed())
            .finish()
    }
}

impl<T: Transport, K: Timer> Stream for WebSocket<T, K> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().core.poll_next(cx)
    }
}

impl<T: Transport, K: Timer> FusedStream for WebSocket<T, K> {
    fn is_terminated(&self) -> bool {
        self.core.ended
    }
}

impl<T: Transport, K: Timer> Sink<Message> for WebSocket<T, K> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().core.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_flush(cx)
    }

    /// Sends a normal close (1000) and flushes it; the stream then ends
    /// when the peer answers.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_close(cx)
    }
}

/// The wakers of the tasks polling each half. Any readiness of the shared
/// transport or timer wakes both: whichever runs first does the I/O the
/// other one waited for.
#[derive(Default)]
struct Wakers {
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read.wake();
        self.write.wake();
    }
}

struct Shared<T: Transport, K: Timer> {
    /// Locked only inside a poll, never across an await.
    core: Mutex<Core<T, K>>,
    wakers: Arc<Wakers>,
    /// Wakes both halves; handed to the transport and the timer.
    waker: Waker,
}

impl<T: Transport, K: Timer> Shared<T, K> {
    fn lock(&self) -> MutexGuard<'_, Core<T, K>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f` on the core with a context that wakes both halves, after
    /// registering the caller's waker in its half's slot.
    fn poll<R>(
        &self,
        slot: &AtomicWaker,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Core<T, K>, &mut Context<'_>) -> R,
    ) -> R {
        slot.register(cx.waker());
        let mut cx = Context::from_waker(&self.waker);
        f(&mut self.lock(), &mut cx)
    }
}

/// The receiving half of a split [`WebSocket`]: a [`Stream`] of messages.
/// Polling it also writes what the core queued (pongs, close echoes, and
/// anything sent through the write half).
pub struct ReadHalf<T: Transport, K: Timer> {
    shared: Arc<Shared<T, K>>,
}

impl<T: Transport, K: Timer> std::fmt::Debug for ReadHalf<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<T: Transport, K: Timer> ReadHalf<T, K> {
    /// The next data message; `None` once the connection is over.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next_message(cx)).await
    }

    fn poll_next_message(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.shared
            .poll(&self.shared.wakers.read, cx, Core::poll_next)
    }

    /// How the connection ended (set when this half sees the close).
    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().closed().cloned()
    }

    /// The payload of the last pong received.
    pub fn last_pong(&self) -> Option<Bytes> {
        self.shared.lock().last_pong().cloned()
    }
}

impl<T: Transport, K: Timer> Stream for ReadHalf<T, K> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_message(cx)
    }
}

impl<T: Transport, K: Timer> FusedStream for ReadHalf<T, K> {
    fn is_terminated(&self) -> bool {
        self.shared.lock().ended
    }
}

/// The sending half of a split [`WebSocket`]: a [`Sink`] of messages.
pub struct WriteHalf<T: Transport, K: Timer> {
    shared: Arc<Shared<T, K>>,
}

impl<T: Transport, K: Timer> std::fmt::Debug for WriteHalf<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl<T: Transport, K: Timer> WriteHalf<T, K> {
    fn with<R>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Core<T, K>, &mut Context<'_>) -> R,
    ) -> R {
        self.shared.poll(&self.shared.wakers.write, cx, f)
    }

    /// Queue a message and write everything queued.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queue a message without writing it yet (waiting first while more
    /// than 256 KiB are queued).
    pub async fn feed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        poll_fn(|cx| self.with(cx, Core::poll_ready)).await?;
        self.shared.lock().start_send(message.into())
    }

    /// Write everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.with(cx, Core::poll_flush)).await
    }

    /// Send a ping (at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.shared.lock().ping(payload)?;
        self.flush().await
    }

    /// Send a close frame and write it. The read half then ends when the
    /// peer answers.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.lock().start_close(code, reason)?;
        self.flush().await
    }

    /// True while messages may be sent.
    pub fn is_open(&self) -> bool {
        self.shared.lock().driver.conn_ref().is_open()
    }
}

impl<T: Transport, K: Timer> Sink<Message> for WriteHalf<T, K> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, Core::poll_ready)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.shared.lock().start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, Core::poll_flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, Core::poll_close)
    }
}

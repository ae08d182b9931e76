//! A client driven by callbacks, mirroring the server's [`Hub`]: built with
//! [`Client::builder`](crate::Client::builder), run by a task of its own,
//! and reached through a cheap [`ClientHandle`] whose sends never block.
//!
//! Each connection runs through the same loop as a server session
//! ([`drive_session`]), with a detached [`Session`] as its bounded outbound
//! queue.
//!
//! [`Hub`]: crate::Hub

use std::{
    fmt,
    future::Future,
    io,
    marker::PhantomData,
    net::SocketAddr,
    pin::pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
};

use bytes::Bytes;
use futures_util::future::{select, Either};
use hubbub_core::{ClientRequest, CloseCode};
use serde_json::Value;

use hubbub_ws::{
    connect_with, ClientConfig, Error, Flag, Runtime, RuntimeDriver, RuntimeWebSocket,
};

use crate::{
    callbacks::{callback_setters, Callbacks},
    drive_session, Envelope, OutboundLimit, SendError, Session, SessionError, SessionEvent,
    SessionInfo, SlowConsumer,
};

/// Builds a callback-driven client on runtime `R`: see
/// [`Client::builder`](crate::Client::builder).
///
/// The callbacks are those of the server's `HubBuilder`, with a
/// [`ClientHandle`] in place of the session: `on_open` for every connection
/// (the first and each reconnection), `on_message` for every text message
/// and then `on_typed_message` when the text is an [`Envelope`],
/// `on_binary`, `on_close` once per connection, and `on_error` for protocol
/// and transport errors and failed reconnection attempts. They run on the
/// client's task and must not block; sending from them only enqueues.
pub struct ClientBuilder<R> {
    request: Result<ClientRequest, Error>,
    config: ClientConfig,
    limit: OutboundLimit,
    callbacks: Callbacks<ClientHandle, Error>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ClientBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("request", &self.request)
            .field("config", &self.config)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ClientBuilder<R> {
    pub(crate) fn new(request: Result<ClientRequest, Error>) -> Self {
        ClientBuilder {
            request,
            config: ClientConfig::default(),
            limit: OutboundLimit {
                policy: SlowConsumer::Drop,
                ..OutboundLimit::default()
            },
            callbacks: Callbacks::default(),
            runtime: PhantomData,
        }
    }

    /// How to connect: timeouts, protocol limits and pings, subprotocols,
    /// headers, and [`reconnect`](ClientConfig::reconnect) (off by default).
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Bound the outbound queue. The default is 4 MiB and 1024 messages
    /// with policy [`SlowConsumer::Drop`]: a send to a full queue fails with
    /// [`SendError::Full`] and the connection stays up. (With
    /// `SlowConsumer::Close`, a full queue closes the connection instead.)
    pub fn outbound_limit(mut self, limit: OutboundLimit) -> Self {
        self.limit = limit;
        self
    }

    callback_setters!(
        ClientHandle,
        Error,
        open: "Called when a connection opens: the first one and every reconnection (see [`ClientHandle::reconnects`]). A good place to join rooms, so that a reconnected client joins them again.",
        close: "Called once when a connection ends, with the close code and reason (1006 when it ended without a close handshake). Reconnection, if configured, follows.",
        error: "Called for a protocol error by the server ([`Error::Protocol`]: the connection then closes with its code), a transport error ([`Error::Io`]), and each failed reconnection attempt (the error of [`connect_with`])."
    );

    /// Connect, call `on_open`, and run the client on a task of the
    /// runtime. The first connection is not retried: its error is
    /// returned as is. The task runs until [`ClientHandle::close`], or until
    /// the connection ends with reconnection off (or given up).
    pub async fn connect(self) -> Result<ClientHandle, Error> {
        let request = self.request?;
        let (ws, _) = connect_with::<R>(&request, &self.config).await?;
        let handle = ClientHandle(Arc::new(Shared {
            request,
            current: Mutex::new(None),
            stopping: Flag::default(),
            reconnects: AtomicU64::new(0),
            finished: Arc::default(),
        }));
        let task = Task {
            handle: handle.clone(),
            callbacks: self.callbacks,
            config: self.config,
            limit: self.limit,
            runtime: PhantomData::<fn() -> R>,
        };
        // `on_open` runs before `connect` returns, so its sends go first.
        let first = task.open(ws);
        R::spawn(task.run(first));
        Ok(handle)
    }
}

struct Shared {
    request: ClientRequest,
    /// The open connection's outbound queue.
    current: Mutex<Option<Session>>,
    /// `close` was called: no reconnection (a reconnection wait ends).
    stopping: Flag,
    reconnects: AtomicU64,
    /// Set when the client's task has ended.
    finished: Arc<Flag>,
}

/// A handle on a running callback client: cheap to clone, `Send + Sync`.
/// Sending never blocks: it enqueues on the current connection's bounded
/// queue, and fails with [`SendError::Closed`] while there is none
/// (between a drop and a reconnection, or after the end).
#[derive(Clone)]
pub struct ClientHandle(Arc<Shared>);

impl fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandle")
            .field("request", &self.0.request)
            .field("connected", &self.is_connected())
            .field("reconnects", &self.reconnects())
            .finish()
    }
}

impl ClientHandle {
    fn current(&self) -> MutexGuard<'_, Option<Session>> {
        self.0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn with_session(
        &self,
        f: impl FnOnce(&Session) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        // Cloned out so that no lock is held while sending.
        let session = self.current().clone();
        session.map_or(Err(SendError::Closed), |s| f(&s))
    }

    /// Queue a text message.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), SendError> {
        self.with_session(|s| s.send_text(text))
    }

    /// Queue a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.with_session(|s| s.send_binary(data))
    }

    /// Queue the envelope `{"type": event_type, "payload": payload}`.
    pub fn send_json(&self, event_type: &str, payload: Value) -> Result<(), SendError> {
        self.with_session(|s| s.send_json(event_type, payload))
    }

    /// Queue an envelope (with its optional `id`, `kind`, `room`, `ts`).
    pub fn send_envelope(&self, envelope: &Envelope) -> Result<(), SendError> {
        self.with_session(|s| s.send_envelope(envelope))
    }

    /// Close for good: the close frame follows what is queued, `on_close`
    /// runs when the handshake is over, and there is no reconnection. Wait
    /// for the end with [`closed`](Self::closed). Invalid codes become 1000.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.0.stopping.set();
        if let Some(session) = self.current().clone() {
            session.close(code, reason);
        }
    }

    /// True while a connection is open and accepting sends.
    pub fn is_connected(&self) -> bool {
        self.current().as_ref().is_some_and(Session::is_open)
    }

    /// How many times the client has reconnected.
    pub fn reconnects(&self) -> u64 {
        self.0.reconnects.load(Ordering::SeqCst)
    }

    /// The server's address on the current connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.current().as_ref().and_then(Session::peer_addr)
    }

    /// The subprotocol agreed on the current connection.
    pub fn protocol(&self) -> Option<String> {
        self.current()
            .as_ref()
            .and_then(|s| s.protocol().map(str::to_owned))
    }

    /// The request the client connects (and reconnects) with.
    pub fn request(&self) -> &ClientRequest {
        &self.0.request
    }

    /// Wait until the client has ended for good: closed with
    /// [`close`](Self::close), or its connection ended with reconnection
    /// off or given up. Every `on_close` has run by then.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.finished.clone().wait_owned()
    }
}

/// The client's task: one connection after another.
struct Task<R> {
    handle: ClientHandle,
    callbacks: Callbacks<ClientHandle, Error>,
    config: ClientConfig,
    limit: OutboundLimit,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Drop for Task<R> {
    /// The task is over, by its end or by the runtime dropping it: wake
    /// [`ClientHandle::closed`].
    fn drop(&mut self) {
        self.handle.0.finished.set();
    }
}

/// An open connection and its queue.
type Open<R> = (RuntimeDriver<R>, Session);

impl<R: Runtime> Task<R> {
    /// Make `ws` the current connection and call `on_open`.
    fn open(&self, ws: RuntimeWebSocket<R>) -> Open<R> {
        let (driver, protocol) = ws.into_driver();
        let peer = driver.transport().peer_addr_by(R::peer_addr);
        let mut info = SessionInfo::new(peer, "", []);
        info.protocol = protocol;
        let session = Session::detached(info, self.limit);
        *self.handle.current() = Some(session.clone());
        if self.handle.0.stopping.is_set() {
            session.close(CloseCode::NORMAL, ""); // `close` raced the connect
        }
        if let Some(on_open) = &self.callbacks.open {
            on_open(&self.handle);
        }
        (driver, session)
    }

    async fn run(self, first: Open<R>) {
        let mut next = Some(first);
        while let Some((mut driver, session)) = next.take() {
            drive_session(&mut driver, &session, |event| self.dispatch(event)).await;
            drop(driver);
            next = self.reconnect().await.map(|ws| {
                self.handle.0.reconnects.fetch_add(1, Ordering::SeqCst);
                self.open(ws)
            });
        }
        *self.handle.current() = None;
    }

    fn dispatch(&self, event: SessionEvent) {
        let (handle, callbacks) = (&self.handle, &self.callbacks);
        match event {
            SessionEvent::Message(message) => callbacks.message(handle, &message),
            SessionEvent::Error(error) => callbacks.error(handle, &client_error(error)),
            SessionEvent::Closed(closed) => {
                // No sends to a connection that is over (the next one, if
                // any, is installed only after this one's loop has ended).
                *handle.current() = None;
                callbacks.close(handle, closed.code, &closed.reason);
            }
        }
    }

    /// The next connection, per the reconnection policy; `None` to stop.
    async fn reconnect(&self) -> Option<RuntimeWebSocket<R>> {
        let policy = self.config.reconnect.clone()?;
        let shared = &self.handle.0;
        for attempt in 1.. {
            if shared.stopping.is_set() {
                return None;
            }
            let attempt_once = async {
                R::sleep(policy.delay(attempt)).await;
                connect_with::<R>(&shared.request, &self.config).await
            };
            let result = match select(pin!(attempt_once), pin!(shared.stopping.wait())).await {
                Either::Left((result, _)) => result,
                Either::Right(((), _)) => return None,
            };
            match result {
                Ok((ws, _)) => return Some(ws),
                Err(error) => {
                    self.callbacks.error(&self.handle, &error);
                    if policy.max_attempts.is_some_and(|max| attempt >= max) {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// A session's error as this crate's error.
fn client_error(error: SessionError) -> Error {
    match error {
        SessionError::Protocol(error) => Error::Protocol(error),
        other => Error::Io(io::Error::other(other.to_string())),
    }
}

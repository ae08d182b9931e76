//! The hub: every open session, the rooms, broadcast, and the application's
//! callbacks. Written once; every runtime adapter drives it through
//! [`Hub::open`], [`Hub::deliver`] and [`Hub::closed`].

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
};

use bytes::Bytes;
use hubbub_core::{Accept, CloseCode, EncodedFrame, Message, ProtocolError, Reject, Request};
use serde_json::Value;

use crate::{
    session::{OutboundLimit, SessionInfo},
    Envelope, Metrics, Rooms, Session, SessionId,
};

/// An error reported to the `on_error` handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer broke the protocol (the session closes with its code).
    Protocol(ProtocolError),
    /// The transport failed.
    Io(String),
    /// The outbound queue overflowed and the policy closed the session.
    SlowConsumer,
    /// Raised by the application with [`Session::emit_error`].
    Application(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Protocol(e) => write!(f, "protocol error: {e}"),
            SessionError::Io(e) => write!(f, "transport error: {e}"),
            SessionError::SlowConsumer => f.write_str("slow consumer: outbound queue full"),
            SessionError::Application(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SessionError {}

type OnOpen = Box<dyn Fn(&Session) + Send + Sync>;
type OnText = Box<dyn Fn(&Session, &str) + Send + Sync>;
type OnBinary = Box<dyn Fn(&Session, &Bytes) + Send + Sync>;
type OnTyped = Box<dyn Fn(&Session, &str, &Value) + Send + Sync>;
type OnClose = Box<dyn Fn(&Session, CloseCode, &str) + Send + Sync>;
type OnError = Box<dyn Fn(&Session, &SessionError) + Send + Sync>;
type OnUpgrade = Box<dyn Fn(&Request) -> Result<Accept, Reject> + Send + Sync>;

/// The application's callbacks; each is optional.
#[derive(Default)]
struct Handlers {
    open: Option<OnOpen>,
    message: Option<OnText>,
    binary: Option<OnBinary>,
    typed: Option<OnTyped>,
    close: Option<OnClose>,
    error: Option<OnError>,
    upgrade: Option<OnUpgrade>,
}

pub(crate) struct HubInner {
    path: Option<String>,
    sessions: RwLock<HashMap<SessionId, Session>>,
    rooms: Mutex<Rooms>,
    handlers: Handlers,
    next_id: AtomicU64,
    limit: OutboundLimit,
    accepting: AtomicBool,
    pub(crate) metrics: Metrics,
}

/// Builds a [`Hub`]: callbacks and the outbound queue limit.
#[derive(Default)]
pub struct HubBuilder {
    path: Option<String>,
    handlers: Handlers,
    limit: OutboundLimit,
}

impl HubBuilder {
    /// Called when a session opens.
    pub fn on_open(mut self, f: impl Fn(&Session) + Send + Sync + 'static) -> Self {
        self.handlers.open = Some(Box::new(f));
        self
    }
    /// Called for every text message (before `on_typed_message`).
    pub fn on_message(mut self, f: impl Fn(&Session, &str) + Send + Sync + 'static) -> Self {
        self.handlers.message = Some(Box::new(f));
        self
    }
    /// Called for every binary message.
    pub fn on_binary(mut self, f: impl Fn(&Session, &Bytes) + Send + Sync + 'static) -> Self {
        self.handlers.binary = Some(Box::new(f));
        self
    }
    /// Called for text that is an envelope, with its type and payload.
    pub fn on_typed_message(
        mut self,
        f: impl Fn(&Session, &str, &Value) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.typed = Some(Box::new(f));
        self
    }
    /// Called once when a session ends, with the close code and reason.
    pub fn on_close(
        mut self,
        f: impl Fn(&Session, CloseCode, &str) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.close = Some(Box::new(f));
        self
    }
    /// Called for protocol, transport, slow-consumer and application errors.
    pub fn on_error(mut self, f: impl Fn(&Session, &SessionError) + Send + Sync + 'static) -> Self {
        self.handlers.error = Some(Box::new(f));
        self
    }
    /// Accept upgrades on this path only; others are answered 404.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    /// Decide on each upgrade request (after the path check): check the
    /// origin or credentials, choose a subprotocol.
    pub fn on_upgrade(
        mut self,
        f: impl Fn(&Request) -> Result<Accept, Reject> + Send + Sync + 'static,
    ) -> Self {
        self.handlers.upgrade = Some(Box::new(f));
        self
    }
    /// Bound every session's outbound queue.
    pub fn outbound_limit(mut self, limit: OutboundLimit) -> Self {
        self.limit = limit;
        self
    }
    /// The hub.
    pub fn build(self) -> Hub {
        Hub(Arc::new(HubInner {
            path: self.path,
            sessions: RwLock::default(),
            rooms: Mutex::default(),
            handlers: self.handlers,
            next_id: AtomicU64::new(1),
            limit: self.limit,
            accepting: AtomicBool::new(true),
            metrics: Metrics::default(),
        }))
    }
}

/// Every open session, the rooms and the callbacks. Cheap to clone.
///
/// Callbacks run on the connection's task with no lock held, so they may
/// call any hub or session method.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

/// Which sessions a broadcast reaches.
enum Audience<'a> {
    All,
    Room(&'a str),
}

impl Hub {
    /// Start building a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    pub(crate) fn from_inner(inner: Arc<HubInner>) -> Hub {
        Hub(inner)
    }

    // ----- sessions and rooms -------------------------------------------

    /// The open session with this id.
    pub fn session(&self, id: SessionId) -> Option<Session> {
        self.0.read_sessions().get(&id).cloned()
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.0.read_sessions().len()
    }

    /// Add `session` to `room` (joining twice is harmless).
    pub fn join(&self, session: &Session, room: &str) -> bool {
        self.0.lock_rooms().join(session.id(), room)
    }

    /// Remove `session` from `room` (an unknown room is a no-op).
    pub fn leave(&self, session: &Session, room: &str) -> bool {
        self.0.lock_rooms().leave(session.id(), room)
    }

    /// The ids of `room`'s members.
    pub fn members(&self, room: &str) -> Vec<SessionId> {
        self.0.lock_rooms().members(room).collect()
    }

    /// The rooms `session` is in.
    pub fn rooms_of(&self, session: &Session) -> Vec<String> {
        self.0
            .lock_rooms()
            .rooms_of(session.id())
            .map(str::to_owned)
            .collect()
    }

    /// Names of the rooms that have members.
    pub fn rooms(&self) -> Vec<String> {
        self.0.lock_rooms().names().map(str::to_owned).collect()
    }

    /// The library's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    // ----- broadcast ----------------------------------------------------

    /// Send `text` to every session (but `except`). The frame is encoded
    /// once; every recipient queues the same bytes. Returns the recipients.
    pub fn broadcast_text(&self, text: &str, except: Option<&Session>) -> usize {
        self.broadcast(Audience::All, &EncodedFrame::text(text), except)
    }

    /// Send binary `data` to every session (but `except`).
    pub fn broadcast_binary(&self, data: &[u8], except: Option<&Session>) -> usize {
        self.broadcast(Audience::All, &EncodedFrame::binary(data), except)
    }

    /// Send an envelope of `event_type` to every session (but `except`).
    pub fn broadcast_json(
        &self,
        event_type: &str,
        payload: Value,
        except: Option<&Session>,
    ) -> usize {
        self.broadcast_text(&Envelope::new(event_type, payload).to_json(), except)
    }

    /// Send `text` to the members of `room` (but `except`).
    pub fn room_text(&self, room: &str, text: &str, except: Option<&Session>) -> usize {
        self.broadcast(Audience::Room(room), &EncodedFrame::text(text), except)
    }

    /// Send binary `data` to the members of `room` (but `except`).
    pub fn room_binary(&self, room: &str, data: &[u8], except: Option<&Session>) -> usize {
        self.broadcast(Audience::Room(room), &EncodedFrame::binary(data), except)
    }

    /// Send an envelope to the members of `room` (but `except`).
    pub fn room_json(
        &self,
        room: &str,
        event_type: &str,
        payload: Value,
        except: Option<&Session>,
    ) -> usize {
        self.room_text(room, &Envelope::new(event_type, payload).to_json(), except)
    }

    fn broadcast(
        &self,
        audience: Audience<'_>,
        frame: &EncodedFrame,
        except: Option<&Session>,
    ) -> usize {
        let skip = except.map(Session::id);
        let recipients: Vec<Session> = {
            let sessions = self.0.read_sessions();
            match audience {
                Audience::All => sessions
                    .values()
                    .filter(|s| Some(s.id()) != skip)
                    .cloned()
                    .collect(),
                Audience::Room(room) => {
                    let rooms = self.0.lock_rooms();
                    rooms
                        .members(room)
                        .filter(|id| Some(*id) != skip)
                        .filter_map(|id| sessions.get(&id).cloned())
                        .collect()
                }
            }
        };
        // Locks released: a full queue may call back into the hub.
        let delivered = recipients
            .iter()
            .filter(|s| s.send_frame(frame).is_ok())
            .count();
        self.0.metrics.broadcast_deliveries.add(delivered as u64);
        delivered
    }

    // ----- lifecycle ----------------------------------------------------

    /// Stop accepting sessions and close every open one with 1001 (phase one
    /// of shutdown; adapters then wait, bounded, for the sessions to end).
    pub fn shutdown(&self) {
        self.0.accepting.store(false, Ordering::SeqCst);
        let sessions: Vec<Session> = self.0.read_sessions().values().cloned().collect();
        for session in sessions {
            session.close(CloseCode::GOING_AWAY, "server shutting down");
        }
    }

    /// False once [`shutdown`](Self::shutdown) began.
    pub fn is_accepting(&self) -> bool {
        self.0.accepting.load(Ordering::SeqCst)
    }

    // ----- adapter side -------------------------------------------------

    /// Answer an upgrade request: the path check, then `on_upgrade`.
    pub fn decide(&self, request: &Request) -> Result<Accept, Reject> {
        if self
            .0
            .path
            .as_deref()
            .is_some_and(|path| path != request.path())
        {
            return Err(Reject::not_found());
        }
        match &self.0.handlers.upgrade {
            Some(on_upgrade) => on_upgrade(request),
            None => Ok(Accept::new()),
        }
    }

    /// A connection opened: register its session and call `on_open`.
    /// `None` while shutting down (the adapter should close with 1001).
    pub fn open(&self, info: SessionInfo) -> Option<Session> {
        if !self.is_accepting() {
            return None;
        }
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(id, info, self.0.limit, Arc::downgrade(&self.0));
        self.0.write_sessions().insert(id, session.clone());
        self.0.metrics.connections_total.inc();
        self.0.metrics.connections_active.inc();
        if let Some(on_open) = &self.0.handlers.open {
            on_open(&session);
        }
        Some(session)
    }

    /// A message arrived: raw handler first, then the typed handler when the
    /// text is an envelope.
    pub fn deliver(&self, session: &Session, message: &Message) {
        let metrics = &self.0.metrics;
        metrics.messages_in.inc();
        metrics.bytes_in.add(message.len() as u64);
        let handlers = &self.0.handlers;
        match message {
            Message::Text(text) => {
                if let Some(on_message) = &handlers.message {
                    on_message(session, text);
                }
                if let Some(on_typed) = &handlers.typed {
                    if let Some(envelope) = Envelope::parse(text) {
                        on_typed(session, &envelope.event_type, &envelope.payload);
                    }
                }
            }
            Message::Binary(data) => {
                if let Some(on_binary) = &handlers.binary {
                    on_binary(session, data);
                }
            }
            _ => {}
        }
    }

    /// The connection ended: leave every room, forget the session, call
    /// `on_close` once.
    pub fn closed(&self, session: &Session, code: CloseCode, reason: &str) {
        session.mark_closed();
        if self.0.write_sessions().remove(&session.id()).is_none() {
            return; // already reported
        }
        self.0.lock_rooms().leave_all(session.id());
        self.0.metrics.connections_active.dec();
        self.0.metrics.count_close(code.0);
        if let Some(on_close) = &self.0.handlers.close {
            on_close(session, code, reason);
        }
    }

    /// Report an error on `session` to `on_error`.
    pub fn error(&self, session: &Session, error: &SessionError) {
        self.0.emit_error(session, error);
    }

    /// Count messages an adapter handed to a connection.
    pub fn count_sent(&self, messages: u64, bytes: u64) {
        self.0.metrics.messages_out.add(messages);
        self.0.metrics.bytes_out.add(bytes);
    }
}

impl HubInner {
    pub(crate) fn emit_error(&self, session: &Session, error: &SessionError) {
        self.metrics.errors.inc();
        if let Some(on_error) = &self.handlers.error {
            on_error(session, error);
        }
    }

    fn read_sessions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_sessions(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_rooms(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &self.session_count())
            .finish()
    }
}

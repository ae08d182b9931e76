//! A session: the application's handle on one open connection.
//!
//! Cheap to clone, `Send + Sync`. Sending never blocks: it appends to the
//! session's outbound queue, bounded in bytes and messages, and wakes the
//! connection's task, which moves the queue into the protocol core. What
//! happens when a slow consumer fills its queue is the configured
//! [`SlowConsumer`] policy.

use std::{
    collections::VecDeque,
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::Waker,
};

use bytes::Bytes;
use hubbub_core::{CloseCode, Connection, EncodedFrame, Message};
use serde_json::Value;

use crate::{hub::HubInner, Envelope, SessionId};

/// What to do when a session's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop the new message and count it; the session stays open.
    Drop,
    /// Close the session with this code (1008 or 1013 are usual).
    Close(CloseCode),
}

/// Bounds of a session's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimit {
    /// Most bytes queued (the reference closes at 4 MiB).
    pub max_bytes: usize,
    /// Most messages queued (the reference closes at 1024).
    pub max_messages: usize,
    /// What a full queue does to the next message.
    pub policy: SlowConsumer,
}

impl Default for OutboundLimit {
    fn default() -> Self {
        OutboundLimit {
            max_bytes: 4 << 20,
            max_messages: 1024,
            policy: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        }
    }
}

/// Why a send did not queue anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closing or closed.
    Closed,
    /// The queue was full: the message was dropped (policy `Drop`) or the
    /// session is now closing (policy `Close`).
    Full,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "session is closed",
            SendError::Full => "session outbound queue is full",
        })
    }
}

impl std::error::Error for SendError {}

/// What the upgrade request said, kept for the session's life.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// The request path (without query).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The request headers.
    pub headers: Vec<(String, String)>,
    /// The negotiated subprotocol.
    pub protocol: Option<String>,
}

impl SessionInfo {
    /// What a session keeps of its upgrade request.
    pub fn from_request(peer: Option<SocketAddr>, request: &hubbub_core::Request) -> Self {
        SessionInfo {
            peer,
            path: request.path().to_owned(),
            query: request.query().map(str::to_owned),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            protocol: None,
        }
    }
}

/// One item of the outbound queue.
#[derive(Debug)]
enum Outgoing {
    Message(Message),
    Frame(EncodedFrame),
    Close(CloseCode, String),
}

#[derive(Debug, Default)]
struct Outbound {
    items: VecDeque<Outgoing>,
    bytes: usize,
    /// A close is queued or the connection is gone: nothing more is taken.
    closing: bool,
    /// The connection's task, woken when something is queued.
    waker: Option<Waker>,
}

pub(crate) struct SessionInner {
    id: SessionId,
    info: SessionInfo,
    limit: OutboundLimit,
    outbound: Mutex<Outbound>,
    pub(crate) hub: Weak<HubInner>,
}

/// A handle on one open connection. See the module documentation.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionInner>);

impl Session {
    pub(crate) fn new(
        id: SessionId,
        info: SessionInfo,
        limit: OutboundLimit,
        hub: Weak<HubInner>,
    ) -> Session {
        Session(Arc::new(SessionInner {
            id,
            info,
            limit,
            outbound: Mutex::default(),
            hub,
        }))
    }

    /// The session's id, unique for the hub's lifetime.
    pub fn id(&self) -> SessionId {
        self.0.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.0.info.peer
    }

    /// The path of the upgrade request.
    pub fn path(&self) -> &str {
        &self.0.info.path
    }

    /// The query string of the upgrade request.
    pub fn query(&self) -> Option<&str> {
        self.0.info.query.as_deref()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .info
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of the upgrade request.
    pub fn headers(&self) -> &[(String, String)] {
        &self.0.info.headers
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.0.info.protocol.as_deref()
    }

    /// True until a close is queued or the connection ends.
    pub fn is_open(&self) -> bool {
        !self.lock().closing
    }

    /// Queue a text message.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), SendError> {
        self.enqueue(Outgoing::Message(Message::Text(text.into())))
    }

    /// Queue a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.enqueue(Outgoing::Message(Message::Binary(data.into())))
    }

    /// Queue the envelope `{"type": event_type, "payload": payload}`.
    pub fn send_json(&self, event_type: &str, payload: Value) -> Result<(), SendError> {
        self.send_envelope(&Envelope::new(event_type, payload))
    }

    /// Queue an envelope as a text message.
    pub fn send_envelope(&self, envelope: &Envelope) -> Result<(), SendError> {
        self.send_text(envelope.to_json())
    }

    /// Queue a frame encoded once for many sessions (broadcast).
    pub(crate) fn send_frame(&self, frame: &EncodedFrame) -> Result<(), SendError> {
        self.enqueue(Outgoing::Frame(frame.clone()))
    }

    /// Close the session after what is already queued. Invalid codes (not
    /// sendable on the wire) become 1000.
    pub fn close(&self, code: CloseCode, reason: &str) {
        let code = if code.is_valid_on_wire() {
            code
        } else {
            CloseCode::NORMAL
        };
        let reason = truncate_utf8(reason, 123).to_owned();
        let mut out = self.lock();
        if out.closing {
            return;
        }
        out.closing = true;
        out.items.push_back(Outgoing::Close(code, reason));
        wake(out);
    }

    /// The hub this session belongs to (`None` once the hub is gone): join
    /// rooms and broadcast from inside a callback.
    pub fn hub(&self) -> Option<crate::Hub> {
        self.0.hub.upgrade().map(crate::Hub::from_inner)
    }

    /// Report an application error on this session to the `on_error`
    /// handler.
    pub fn emit_error(&self, message: impl Into<String>) {
        if let Some(hub) = self.0.hub.upgrade() {
            hub.emit_error(self, &crate::SessionError::Application(message.into()));
        }
    }

    /// Bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn enqueue(&self, item: Outgoing) -> Result<(), SendError> {
        let len = match &item {
            Outgoing::Message(m) => m.len(),
            Outgoing::Frame(f) => f.as_bytes().len(),
            Outgoing::Close(..) => 0,
        };
        let mut out = self.lock();
        if out.closing {
            return Err(SendError::Closed);
        }
        let limit = &self.0.limit;
        if out.bytes + len > limit.max_bytes || out.items.len() >= limit.max_messages {
            drop(out);
            self.on_full();
            return Err(SendError::Full);
        }
        out.bytes += len;
        out.items.push_back(item);
        wake(out);
        Ok(())
    }

    fn on_full(&self) {
        let hub = self.0.hub.upgrade();
        match self.0.limit.policy {
            SlowConsumer::Drop => {
                if let Some(hub) = &hub {
                    hub.metrics.slow_consumer_drops.inc();
                }
            }
            SlowConsumer::Close(code) => {
                // Drop what is queued: the consumer is not reading it.
                let first = {
                    let mut out = self.lock();
                    let first = !out.closing;
                    out.items.clear();
                    out.bytes = 0;
                    first
                };
                if first {
                    self.close(code, "slow consumer");
                    if let Some(hub) = &hub {
                        hub.metrics.slow_consumer_closes.inc();
                        hub.emit_error(self, &crate::SessionError::SlowConsumer);
                    }
                }
            }
        }
    }

    /// Adapter side: move queued items into the protocol core, keeping at
    /// most about `high_water` bytes pending there, and register `waker` for
    /// more. Returns true when a close was handed to the core.
    pub fn drain_into(
        &self,
        conn: &mut Connection,
        now: std::time::Instant,
        high_water: usize,
        waker: &Waker,
    ) -> bool {
        let mut out = self.lock();
        let (mut messages, mut bytes) = (0, 0);
        while conn.pending_bytes() < high_water {
            let Some(item) = out.items.pop_front() else {
                break;
            };
            match item {
                Outgoing::Message(message) => {
                    out.bytes -= message.len();
                    (messages, bytes) = (messages + 1, bytes + message.len());
                    let _ = conn.send(message);
                }
                Outgoing::Frame(frame) => {
                    out.bytes -= frame.as_bytes().len();
                    (messages, bytes) = (messages + 1, bytes + frame.as_bytes().len());
                    let _ = conn.send_encoded(&frame);
                }
                Outgoing::Close(code, reason) => {
                    let _ = conn.close(now, code, &reason);
                    out.items.clear();
                    out.bytes = 0;
                    return true;
                }
            }
        }
        if out.items.is_empty() && out.items.capacity() > 0 {
            out.items = VecDeque::new(); // nothing held at rest
        }
        if !out.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            out.waker = Some(waker.clone());
        }
        drop(out);
        if messages > 0 {
            if let Some(hub) = self.0.hub.upgrade() {
                hub.metrics.messages_out.add(messages);
                hub.metrics.bytes_out.add(bytes as u64);
            }
        }
        false
    }

    /// Adapter side: the connection ended; refuse further sends.
    pub fn mark_closed(&self) {
        let mut out = self.lock();
        out.closing = true;
        out.items = VecDeque::new();
        out.bytes = 0;
        out.waker = None;
    }

    fn lock(&self) -> MutexGuard<'_, Outbound> {
        // A panic while holding this lock leaves the queue consistent
        // (every mutation is a single step), so poisoning is ignored.
        self.0
            .outbound
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn wake(mut out: MutexGuard<'_, Outbound>) {
    let waker = out.waker.take();
    drop(out);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The longest prefix of `text` of at most `max` bytes on a char boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.0.id)
            .field("path", &self.0.info.path)
            .finish()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Session {}

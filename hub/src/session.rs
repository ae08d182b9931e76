//! A session: the application's handle on one open connection.
//!
//! Cheap to clone, `Send + Sync`. Sending never blocks: it appends to the
//! session's outbound queue, bounded in bytes and messages, and wakes the
//! connection's task, which moves the queue into the protocol core. What
//! happens when a slow consumer fills its queue is the configured
//! [`SlowConsumer`] policy.

use std::{
    any::Any,
    collections::VecDeque,
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::Waker,
    time::Instant,
};

use bytes::Bytes;
use hubbub_core::{CloseCode, Connection, EncodedFrame, EncodedFrames, Message};
use serde_json::Value;

use crate::{
    auth::{AuthState, TOKEN_EXPIRED},
    hub::HubInner,
    limits::SessionLimits,
    Envelope, Identity, SessionId,
};

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
    /// Most bytes queued (the reference closes at 4 MiB): the payloads of
    /// direct sends, the whole frames (a few header bytes more) of
    /// broadcasts. Bytes already handed to the protocol core (at most
    /// about 64 KiB, see [`HIGH_WATER`](crate::HIGH_WATER)) are not counted.
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

/// What [`Session::drain_into`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Drained {
    /// A close was handed to the core.
    pub closed: bool,
    /// Items are still queued: the core is at its high-water mark.
    pub remaining: bool,
    /// The session's auth deadline (the auth message's, then the token's
    /// expiry), while it is open: once passed, call
    /// [`Session::deadline_passed`].
    pub deadline: Option<Instant>,
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
///
/// The path, query and headers share one string, read by the accessors:
/// one allocation per session rather than two per header (a session at
/// rest is mostly this; see ARCHITECTURE.md, memory at rest).
#[derive(Clone, Default)]
pub struct SessionInfo {
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// The negotiated subprotocol.
    pub protocol: Option<String>,
    /// The request target (`path[?query]`), then `\nname:value` per header.
    /// HTTP allows no line break in a target, name or value, nor a colon in
    /// a name (`new` leaves out what would break this).
    request: Box<str>,
}

impl SessionInfo {
    /// What a session keeps of its upgrade request.
    pub fn from_request(peer: Option<SocketAddr>, request: &hubbub_core::Request) -> Self {
        Self::new(peer, request.target(), request.headers())
    }

    /// From a request target (`/path?query`) and headers. A target is cut
    /// at a line break; a header whose name holds a colon or a line break,
    /// or whose value holds a line break, is left out (none is valid HTTP).
    pub fn new<'a>(
        peer: Option<SocketAddr>,
        target: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut request = String::from(target.split('\n').next().unwrap_or_default());
        for (name, value) in headers {
            if !name.contains([':', '\n']) && !value.contains('\n') {
                request.extend(["\n", name, ":", value]);
            }
        }
        SessionInfo {
            peer,
            protocol: None,
            request: request.into_boxed_str(),
        }
    }

    fn target(&self) -> &str {
        self.request.split('\n').next().unwrap_or_default()
    }

    /// The request path (without query).
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, query)| query)
    }

    /// Every request header as `(name, value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.request
            .split('\n')
            .skip(1)
            .filter_map(|line| line.split_once(':'))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("peer", &self.peer)
            .field("path", &self.path())
            .field("query", &self.query())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// Broadcast frames up to this size are gathered into one batch per session
/// (one copy each: no reference count or queue slot per frame), when the
/// connection has no extension that would compress them.
const BATCH_FRAME_LIMIT: usize = 1024;

/// A batch is closed at this size: the core is handed at most about this
/// much beyond its high-water mark.
const BATCH_LIMIT: usize = 16 << 10;

/// One item of the outbound queue.
#[derive(Debug)]
enum Outgoing {
    Message(Message),
    Frame(EncodedFrame),
    Frames(EncodedFrames),
    Close(CloseCode, String),
    /// Messages fed to the connection one by one as it drains
    /// ([`Session::send_paced`]); not counted in the queue's bytes.
    Paced(VecDeque<Message>),
}

#[derive(Debug, Default)]
struct Outbound {
    items: VecDeque<Outgoing>,
    bytes: usize,
    /// Messages queued (a batch of frames counts each of them; 32 bits keep
    /// the idle session small, the limit is capped to fit).
    messages: u32,
    /// A close is queued or the connection is gone: nothing more is taken.
    closing: bool,
    /// Broadcast frames may be batched: the connection compresses nothing.
    batching: bool,
    /// The connection's task, woken when something is queued.
    waker: Option<Waker>,
    /// The application's typed values ([`Session::set_data`]); boxed, as
    /// most sessions keep none.
    data: Option<Box<Data>>,
    /// Who the session is, when its hub authenticates (see
    /// [`auth`](crate::auth)); boxed, as most sessions have none.
    auth: Option<Box<AuthState>>,
}

/// Values of distinct types, kept with a session.
type Data = Vec<Arc<dyn Any + Send + Sync>>;

impl Outbound {
    /// Queue a broadcast frame, into the open batch when it may go there.
    fn push_frame(&mut self, frame: &EncodedFrame) {
        let len = frame.as_bytes().len();
        if !self.batching || len > BATCH_FRAME_LIMIT {
            self.items.push_back(Outgoing::Frame(frame.clone()));
            return;
        }
        match self.items.back_mut() {
            Some(Outgoing::Frames(batch)) if batch.len() < BATCH_LIMIT => batch.push(frame),
            _ => {
                let mut batch = EncodedFrames::default();
                batch.push(frame);
                self.items.push_back(Outgoing::Frames(batch));
            }
        }
    }
}

/// What a send did, before any callback ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    Closed,
    /// Full, policy `Drop`: dropped and counted.
    Dropped,
    /// Full, policy `Close`: the session is now closing; `on_error` is
    /// still to be told ([`Session::report_slow_consumer`]).
    ClosedSlow,
}

pub(crate) struct SessionInner {
    id: SessionId,
    info: SessionInfo,
    limit: OutboundLimit,
    outbound: Mutex<Outbound>,
    pub(crate) hub: Weak<HubInner>,
    /// Rate state and connection place, only when the hub sets limits.
    pub(crate) limits: Option<Box<SessionLimits>>,
}

/// A handle on one open connection. See the module documentation.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionInner>);

impl Session {
    pub(crate) fn new(
        id: SessionId,
        info: SessionInfo,
        limit: OutboundLimit,
        limits: Option<Box<SessionLimits>>,
        hub: Weak<HubInner>,
    ) -> Session {
        Session(Arc::new(SessionInner {
            id,
            info,
            limit,
            outbound: Mutex::default(),
            hub,
            limits,
        }))
    }

    /// A session that belongs to no hub: the same bounded outbound queue,
    /// for a connection driven by other code (a client, say). Its id is 0,
    /// [`hub`](Self::hub) is `None`, nothing is counted, and
    /// [`emit_error`](Self::emit_error) reaches no handler.
    pub fn detached(info: SessionInfo, limit: OutboundLimit) -> Session {
        Session::new(0, info, limit, None, Weak::new())
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
        self.0.info.path()
    }

    /// The query string of the upgrade request.
    pub fn query(&self) -> Option<&str> {
        self.0.info.query()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.info.header(name)
    }

    /// Every header of the upgrade request as `(name, value)`, in the
    /// order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.info.headers()
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
        self.enqueue(Message::Text(text.into()))
    }

    /// Queue a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.enqueue(Message::Binary(data.into()))
    }

    /// Queue the envelope `{"type": event_type, "payload": payload}`.
    pub fn send_json(&self, event_type: &str, payload: Value) -> Result<(), SendError> {
        self.send_envelope(&Envelope::new(event_type, payload))
    }

    /// Queue an envelope as a text message.
    pub fn send_envelope(&self, envelope: &Envelope) -> Result<(), SendError> {
        self.send_text(envelope.to_json())
    }

    /// Queue a frame encoded once for many sessions (broadcast). Runs no
    /// callback, so the caller may hold the hub's locks; on
    /// [`Pushed::ClosedSlow`] it calls
    /// [`report_slow_consumer`](Self::report_slow_consumer) once they are
    /// released.
    pub(crate) fn push_frame(&self, frame: &EncodedFrame) -> Pushed {
        self.push(frame.as_bytes().len(), |out| out.push_frame(frame))
    }

    /// Close the session after what is already queued. Invalid codes (not
    /// sendable on the wire) become 1000; the reason is cut to 123 bytes.
    pub fn close(&self, code: CloseCode, reason: &str) {
        let mut out = self.lock();
        if out.closing {
            return;
        }
        out.closing = true;
        out.items.push_back(close_item(code, reason));
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

    /// Keep `value` with this session, one value per type (as in
    /// `http::Extensions`): the authenticated user, say, set in `on_open`
    /// and read in every later callback, `on_close` included. Returns the
    /// value of the same type it replaces.
    pub fn set_data<T: Any + Send + Sync>(&self, value: T) -> Option<Arc<T>> {
        let previous = self.take_data::<T>();
        let mut out = self.lock();
        out.data
            .get_or_insert_with(Box::default)
            .push(Arc::new(value));
        previous
    }

    /// The value of type `T` kept with this session.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let out = self.lock();
        let data = out.data.as_deref()?;
        data.iter()
            .find_map(|value| value.clone().downcast::<T>().ok())
    }

    /// Take the value of type `T` away from this session.
    pub fn take_data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let mut out = self.lock();
        let data = out.data.as_mut()?;
        let index = data.iter().position(|value| value.is::<T>())?;
        data.swap_remove(index).downcast::<T>().ok()
    }

    /// Who the session is, once authenticated (see [`auth`](crate::auth)).
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.lock().auth.as_ref()?.identity.clone()
    }

    /// The authenticated user's id.
    pub fn user(&self) -> Option<String> {
        self.identity().map(|identity| identity.user().to_owned())
    }

    /// True while the session waits for its auth message.
    pub(crate) fn awaiting_auth(&self) -> bool {
        self.lock()
            .auth
            .as_ref()
            .is_some_and(|auth| auth.identity.is_none())
    }

    /// Set the session's auth state: waiting for its auth message until
    /// `deadline` (`identity` none), or authenticated.
    pub(crate) fn set_auth(&self, identity: Option<Identity>, deadline: Option<Instant>) {
        let mut out = self.lock();
        out.auth = Some(Box::new(AuthState {
            identity: identity.map(Arc::new),
            deadline,
        }));
        wake(out); // the task now waits on the new deadline
    }

    /// Adapter side: [`Drained::deadline`] has passed at `now`: a session
    /// still waiting for its auth message is closed with 1008, one whose
    /// token expired with 4001 ([`TOKEN_EXPIRED`]). A deadline moved later
    /// meanwhile (a refresh) does nothing.
    pub fn deadline_passed(&self, now: Instant) {
        let mut out = self.lock();
        let Some(auth) = out.auth.as_mut() else {
            return;
        };
        if auth.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        auth.deadline = None;
        let (code, reason, label) = match auth.identity {
            None => (
                CloseCode::POLICY_VIOLATION,
                "authentication timeout",
                "timeout",
            ),
            Some(_) => (TOKEN_EXPIRED, "token expired", "expired"),
        };
        drop(out);
        if let Some(hub) = self.0.hub.upgrade() {
            hub.metrics.auth_failures.inc(label);
        }
        self.close(code, reason);
    }

    /// Bytes waiting in the outbound queue (never more than the limit's
    /// `max_bytes`; what the core holds for writing is not counted).
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Messages waiting in the outbound queue.
    pub fn queued_messages(&self) -> usize {
        self.lock().messages as usize
    }

    /// Queue `messages` behind what is queued, to be handed to the
    /// connection one at a time as it writes, like a reply streamed in
    /// pieces: they do not count against the [`OutboundLimit`] (the caller
    /// already holds them and bounds how many), so a long reply (a history
    /// replay) never closes a reader that reads as a slow consumer, and
    /// what is queued after them still waits its turn. Messages sent
    /// afterwards count as usual, and the policy still applies to them.
    pub fn send_paced(&self, messages: impl IntoIterator<Item = Message>) -> Result<(), SendError> {
        let messages: VecDeque<Message> = messages.into_iter().collect();
        let mut out = self.lock();
        if out.closing {
            return Err(SendError::Closed);
        }
        if !messages.is_empty() {
            out.items.push_back(Outgoing::Paced(messages));
            wake(out);
        }
        Ok(())
    }

    fn enqueue(&self, message: Message) -> Result<(), SendError> {
        let len = message.len();
        match self.push(len, |out| out.items.push_back(Outgoing::Message(message))) {
            Pushed::Queued => Ok(()),
            Pushed::Closed => Err(SendError::Closed),
            Pushed::Dropped => Err(SendError::Full),
            Pushed::ClosedSlow => {
                self.report_slow_consumer();
                Err(SendError::Full)
            }
        }
    }

    /// Queue one message of `len` bytes with `insert`, within the limit;
    /// a full queue applies the slow-consumer policy.
    fn push(&self, len: usize, insert: impl FnOnce(&mut Outbound)) -> Pushed {
        let mut out = self.lock();
        if out.closing {
            return Pushed::Closed;
        }
        let limit = &self.0.limit;
        let max_messages = limit.max_messages.min(u32::MAX as usize);
        if out.bytes + len <= limit.max_bytes && (out.messages as usize) < max_messages {
            out.bytes += len;
            out.messages += 1;
            insert(&mut out);
            wake(out);
            return Pushed::Queued;
        }
        // Full. Decided under the lock, so concurrent senders agree on who
        // closed the session and it is counted once.
        match limit.policy {
            SlowConsumer::Drop => {
                drop(out);
                if let Some(hub) = self.0.hub.upgrade() {
                    hub.metrics.slow_consumer_drops.inc();
                }
                Pushed::Dropped
            }
            SlowConsumer::Close(code) => {
                // What is queued is dropped (the consumer is not reading it)
                // and the close goes first, past the core's high-water mark.
                out.items = VecDeque::new();
                out.bytes = 0;
                out.messages = 0;
                out.closing = true;
                out.items.push_back(close_item(code, "slow consumer"));
                wake(out);
                if let Some(hub) = self.0.hub.upgrade() {
                    hub.metrics.slow_consumer_closes.inc();
                }
                Pushed::ClosedSlow
            }
        }
    }

    /// Tell `on_error` that this session was closed as a slow consumer.
    pub(crate) fn report_slow_consumer(&self) {
        if let Some(hub) = self.0.hub.upgrade() {
            hub.emit_error(self, &crate::SessionError::SlowConsumer);
        }
    }

    /// Adapter side: move queued items into the protocol core, keeping at
    /// most about `high_water` bytes pending there (a queued close is handed
    /// over regardless), and register `waker` for more.
    ///
    /// When the result says items [`remain`](Drained::remaining), call again
    /// once the core has written some of its bytes: nothing else will wake
    /// the task for them.
    pub fn drain_into(
        &self,
        conn: &mut Connection,
        now: Instant,
        high_water: usize,
        waker: &Waker,
    ) -> Drained {
        let mut out = self.lock();
        out.batching = !conn.has_extension();
        let (mut messages, mut bytes) = (0, 0);
        let mut closed = false;
        loop {
            let room = conn.pending_bytes() < high_water;
            let item = match out.items.front() {
                Some(Outgoing::Close(..)) => out.items.pop_front(),
                Some(_) if room => out.items.pop_front(),
                _ => None,
            };
            let (count, len) = match item {
                None => break,
                Some(Outgoing::Paced(mut paced)) => {
                    // One at a time, each when the core has room; not in
                    // the queue's counts.
                    if let Some(message) = paced.pop_front() {
                        bytes += message.len();
                        messages += 1;
                        let _ = conn.send(message);
                    }
                    if !paced.is_empty() {
                        out.items.push_front(Outgoing::Paced(paced));
                    }
                    continue;
                }
                Some(Outgoing::Message(message)) => {
                    let len = message.len();
                    let _ = conn.send(message);
                    (1, len)
                }
                Some(Outgoing::Frame(frame)) => {
                    let _ = conn.send_encoded(&frame);
                    (1, frame.as_bytes().len())
                }
                Some(Outgoing::Frames(frames)) => {
                    let counted = (frames.count() as u32, frames.len());
                    let _ = conn.send_encoded_frames(frames);
                    counted
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = conn.close(now, code, &reason);
                    out.items.clear();
                    out.bytes = 0;
                    out.messages = 0;
                    closed = true;
                    break;
                }
            };
            out.bytes -= len;
            out.messages -= count;
            (messages, bytes) = (messages + u64::from(count), bytes + len);
        }
        let remaining = !out.items.is_empty();
        let deadline = match &out.auth {
            Some(auth) if !out.closing => auth.deadline,
            _ => None,
        };
        if !remaining && out.items.capacity() > 0 {
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
        Drained {
            closed,
            remaining,
            deadline,
        }
    }

    /// Adapter side: the connection ended; refuse further sends.
    pub fn mark_closed(&self) {
        {
            let mut out = self.lock();
            out.closing = true;
            out.items = VecDeque::new();
            out.bytes = 0;
            out.messages = 0;
            out.waker = None;
        }
        if let Some(limits) = &self.0.limits {
            limits.release();
        }
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

/// A close item with a code that may be sent and a reason that fits.
fn close_item(code: CloseCode, reason: &str) -> Outgoing {
    let code = if code.is_valid_on_wire() {
        code
    } else {
        CloseCode::NORMAL
    };
    Outgoing::Close(code, truncate_utf8(reason, 123).to_owned())
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
            .field("path", &self.0.info.path())
            .finish()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Session {}

/// A test's view of one queued item.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Queued {
    Text(String),
    Binary(Bytes),
    /// A broadcast frame: its shared wire bytes.
    Frame(Bytes),
    /// Broadcast frames batched: how many, and their wire bytes.
    Frames(usize, Bytes),
    Close(u16, String),
}

#[cfg(test)]
impl Session {
    /// What the outbound queue holds, in order.
    pub(crate) fn peek(&self) -> Vec<Queued> {
        self.lock()
            .items
            .iter()
            .flat_map(|item| match item {
                Outgoing::Message(Message::Text(text)) => vec![Queued::Text(text.clone())],
                Outgoing::Message(Message::Binary(data)) => vec![Queued::Binary(data.clone())],
                Outgoing::Message(other) => {
                    vec![Queued::Binary(Bytes::copy_from_slice(other.as_bytes()))]
                }
                Outgoing::Frame(frame) => vec![Queued::Frame(frame.as_bytes().clone())],
                Outgoing::Frames(frames) => vec![Queued::Frames(
                    frames.count(),
                    Bytes::copy_from_slice(frames.as_bytes()),
                )],
                Outgoing::Close(code, reason) => vec![Queued::Close(code.0, reason.clone())],
                Outgoing::Paced(paced) => paced
                    .iter()
                    .map(|m| match m {
                        Message::Text(text) => Queued::Text(text.clone()),
                        other => Queued::Binary(Bytes::copy_from_slice(other.as_bytes())),
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{sync::Arc, task::Waker, time::Instant};

    use hubbub_core::{Accept, Config, Connection, Event};

    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// An open server connection whose `101` has been written.
    pub(crate) fn open_connection() -> Connection {
        let now = Instant::now();
        let mut conn = Connection::server(Arc::new(Config::default()), now);
        conn.handle_input(now, REQUEST);
        assert!(matches!(conn.poll_event(), Some(Event::Request)));
        conn.accept(now, Accept::new()).unwrap();
        assert!(matches!(conn.poll_event(), Some(Event::Open(_))));
        conn.advance_transmit(conn.pending_bytes());
        conn
    }

    fn session(limit: OutboundLimit) -> Session {
        Session::detached(SessionInfo::default(), limit)
    }

    #[test]
    fn queue_is_bounded_in_messages_and_bytes() {
        let s = session(OutboundLimit {
            max_bytes: 100,
            max_messages: 3,
            policy: SlowConsumer::Drop,
        });
        assert_eq!(s.send_text("x".repeat(60)), Ok(()));
        assert_eq!(s.send_text("y".repeat(41)), Err(SendError::Full), "101 B");
        assert_eq!(s.send_text("y".repeat(40)), Ok(()), "exactly 100 B");
        assert_eq!(s.send_binary(Bytes::new()), Ok(()));
        assert_eq!(s.send_binary(Bytes::new()), Err(SendError::Full), "4th");
        assert_eq!((s.queued_bytes(), s.queued_messages()), (100, 3));
        assert!(s.is_open(), "Drop keeps the session open");
    }

    /// Paced messages pass a queue far smaller than they are, reach the
    /// core one at a time under the high-water mark, and keep their place:
    /// what is sent after them follows them.
    #[test]
    fn paced_messages_are_fed_as_the_connection_drains() {
        let s = session(OutboundLimit {
            max_bytes: 100,
            max_messages: 3,
            policy: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        });
        s.send_paced((0..20).map(|i| Message::Text(format!("{i:03}").repeat(20))))
            .unwrap();
        assert_eq!(s.send_text("after"), Ok(()));
        assert!(
            s.is_open(),
            "1.2 KB paced in a 100 B queue: not a slow consumer"
        );
        assert_eq!((s.queued_bytes(), s.queued_messages()), (5, 1));
        let mut conn = open_connection();
        let waker = Waker::noop();
        let mut texts = Vec::new();
        for _ in 0..100 {
            let drained = s.drain_into(&mut conn, Instant::now(), 100, waker);
            assert!(
                conn.pending_bytes() < 100 + 62,
                "one message past the mark at most"
            );
            let mut wire = vec![];
            let mut slices = [std::io::IoSlice::new(&[]); 8];
            let n = conn.transmit_slices(&mut slices);
            for slice in &slices[..n] {
                wire.extend_from_slice(slice);
            }
            conn.advance_transmit(wire.len());
            // Unmasked server frames of under 126 bytes: 2-byte headers.
            while wire.len() >= 2 {
                let len = wire[1] as usize;
                texts.push(String::from_utf8(wire[2..2 + len].to_vec()).unwrap());
                wire.drain(..2 + len);
            }
            if !drained.remaining {
                break;
            }
        }
        let mut expected: Vec<String> = (0..20).map(|i| format!("{i:03}").repeat(20)).collect();
        expected.push("after".into());
        assert_eq!(texts, expected);
        assert_eq!((s.queued_bytes(), s.queued_messages()), (0, 0));
    }

    #[test]
    fn slow_consumer_close_drops_the_queue_and_closes_first() {
        let s = session(OutboundLimit {
            max_bytes: 10,
            max_messages: 100,
            policy: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        });
        s.send_text("0123456789").unwrap();
        assert_eq!(s.send_text("!"), Err(SendError::Full));
        assert!(!s.is_open());
        assert_eq!(s.peek(), vec![Queued::Close(1013, "slow consumer".into())]);
        assert_eq!(s.queued_bytes(), 0);
        assert_eq!(s.send_text("late"), Err(SendError::Closed));
        s.close(CloseCode::NORMAL, "again");
        assert_eq!(s.peek().len(), 1, "a second close is ignored");
    }

    #[test]
    fn close_codes_and_reasons_are_made_sendable() {
        let s = session(OutboundLimit::default());
        s.close(CloseCode::ABNORMAL, &"é".repeat(100));
        let [Queued::Close(code, reason)] = &s.peek()[..] else {
            panic!("{:?}", s.peek())
        };
        assert_eq!(*code, 1000, "1006 may not be sent");
        assert_eq!(reason.len(), 122, "cut to 123 bytes on a char boundary");
    }

    #[test]
    fn drain_keeps_the_core_at_its_high_water_mark_but_passes_a_close() {
        let s = session(OutboundLimit::default());
        let mut conn = open_connection();
        let now = Instant::now();
        for _ in 0..10 {
            s.send_binary(vec![7u8; 1000]).unwrap();
        }
        let drained = s.drain_into(&mut conn, now, 2500, Waker::noop());
        assert!(drained.remaining && !drained.closed);
        assert_eq!(s.queued_messages(), 7, "three in the core (≥ 2500 B)");
        s.close(CloseCode::GOING_AWAY, "bye");
        // The close waits behind queued data...
        assert!(s.drain_into(&mut conn, now, 2500, Waker::noop()).remaining);
        conn.advance_transmit(conn.pending_bytes());
        let mut drained = Drained::default();
        for _ in 0..10 {
            drained = s.drain_into(&mut conn, now, 2500, Waker::noop());
            if drained.closed {
                break;
            }
            conn.advance_transmit(conn.pending_bytes());
        }
        assert!(drained.closed && !drained.remaining);
        assert!(!conn.is_open(), "the close reached the core");

        // ...but a close at the front passes a full core (a consumer that
        // does not read must still be closed).
        let s = session(OutboundLimit {
            max_bytes: 1000,
            max_messages: 100,
            policy: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        });
        let mut conn = open_connection();
        s.send_binary(vec![0u8; 1000]).unwrap();
        s.drain_into(&mut conn, now, 10, Waker::noop());
        s.send_binary(vec![0u8; 1000]).unwrap();
        assert_eq!(s.send_binary(vec![0u8; 1]), Err(SendError::Full));
        assert!(conn.pending_bytes() >= 10);
        let drained = s.drain_into(&mut conn, now, 10, Waker::noop());
        assert!(drained.closed);
        assert!(!conn.is_open());
    }

    #[test]
    fn a_send_wakes_the_task_once_registered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let s = session(OutboundLimit::default());
        let mut conn = open_connection();
        s.drain_into(&mut conn, Instant::now(), HIGH, &waker);
        s.send_text("a").unwrap();
        s.send_text("b").unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken once per drain");
        s.drain_into(&mut conn, Instant::now(), HIGH, &waker);
        s.close(CloseCode::NORMAL, "");
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "a close wakes too");
    }

    /// The wire bytes `conn` has to write, all of them.
    fn written(conn: &mut Connection) -> Vec<u8> {
        let mut slices = [std::io::IoSlice::new(&[]); 64];
        let n = conn.transmit_slices(&mut slices);
        let wire: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(wire.len(), conn.pending_bytes(), "one call returns it all");
        conn.advance_transmit(wire.len());
        wire
    }

    #[test]
    fn broadcasts_to_a_plain_connection_are_batched_in_order() {
        let s = session(OutboundLimit {
            max_bytes: 1 << 20,
            max_messages: 5,
            policy: SlowConsumer::Drop,
        });
        let mut conn = open_connection();
        let big = EncodedFrame::binary(&[9u8; BATCH_FRAME_LIMIT + 1]);
        let (a, b) = (EncodedFrame::text("a"), EncodedFrame::text("bb"));
        // Not batched until the task has seen that the connection
        // compresses nothing.
        assert_eq!(s.push_frame(&a), Pushed::Queued);
        s.drain_into(&mut conn, Instant::now(), HIGH, Waker::noop());
        written(&mut conn);
        for frame in [&a, &b] {
            assert_eq!(s.push_frame(frame), Pushed::Queued);
        }
        s.send_text("direct").unwrap();
        assert_eq!(s.push_frame(&big), Pushed::Queued, "too big to batch");
        assert_eq!(s.push_frame(&b), Pushed::Queued);
        assert_eq!(
            s.push_frame(&a),
            Pushed::Dropped,
            "a batch counts each frame"
        );
        let ab = [a.as_bytes().as_ref(), b.as_bytes()].concat();
        assert_eq!(
            s.peek(),
            vec![
                Queued::Frames(2, ab.clone().into()),
                Queued::Text("direct".into()),
                Queued::Frame(big.as_bytes().clone()),
                Queued::Frames(1, b.as_bytes().clone()),
            ]
        );
        assert_eq!(s.queued_messages(), 5);
        s.drain_into(&mut conn, Instant::now(), HIGH, Waker::noop());
        assert_eq!((s.queued_messages(), s.queued_bytes()), (0, 0));
        let direct = EncodedFrame::text("direct");
        let expected = [&ab[..], direct.as_bytes(), big.as_bytes(), b.as_bytes()].concat();
        assert_eq!(written(&mut conn), expected);
    }

    #[test]
    fn a_batch_is_closed_at_its_size_limit() {
        let s = session(OutboundLimit::default());
        let mut conn = open_connection();
        s.drain_into(&mut conn, Instant::now(), HIGH, Waker::noop());
        let frame = EncodedFrame::binary(&[1u8; 1000]);
        for _ in 0..40 {
            assert_eq!(s.push_frame(&frame), Pushed::Queued);
        }
        let sizes: Vec<usize> = s
            .peek()
            .iter()
            .map(|item| match item {
                Queued::Frames(count, _) => *count,
                other => panic!("{other:?}"),
            })
            .collect();
        // 1004 B frames: a batch takes frames while under 16 KiB.
        assert_eq!(sizes, vec![17, 17, 6]);
    }

    const HIGH: usize = 64 << 10;

    #[test]
    fn session_info_keeps_the_request_in_one_string() {
        let headers = [
            ("Host", "example.com"),
            ("X-Token", "a:b c"),
            ("bad:name", "x"),
            ("X-Bad", "line\nbreak"),
            ("x-token", "second"),
        ];
        let info = SessionInfo::new(None, "/chat?room=1?x", headers);
        assert_eq!((info.path(), info.query()), ("/chat", Some("room=1?x")));
        assert_eq!(info.header("x-TOKEN"), Some("a:b c"), "the first one");
        assert_eq!(
            info.headers().collect::<Vec<_>>(),
            [
                ("Host", "example.com"),
                ("X-Token", "a:b c"),
                ("x-token", "second")
            ]
        );
        let bare = SessionInfo::new(None, "/", []);
        assert_eq!(
            (bare.path(), bare.query(), bare.headers().count()),
            ("/", None, 0)
        );
        assert_eq!(SessionInfo::new(None, "/?", []).query(), Some(""));
        assert_eq!(SessionInfo::default().path(), "");
    }
}

//! The hub: every open session, the rooms, broadcast, and the application's
//! callbacks. Runtime-free: [`run_session`](crate::run_session) drives it
//! for every runtime through [`Hub::open`], [`Hub::deliver`] and
//! [`Hub::closed`], and layers beside it follow its broadcasts through a
//! [`BroadcastObserver`].

use std::{
    collections::HashMap,
    fmt,
    panic::{self, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError, RwLock, Weak,
    },
};

use hubbub_core::{Accept, CloseCode, EncodedFrame, Message, ProtocolError, Reject, Request};
use serde_json::Value;

use crate::{
    auth::Auth,
    callbacks::{callback_setters, Callbacks},
    engine::{EmbeddedEngine, RoomEngine},
    limits::{Admission, SessionLimits},
    session::{OutboundLimit, Pushed, SessionInfo},
    ConnectionSlot, Envelope, HubLimits, Identity, Metrics, Rooms, Session, SessionId, StoreError,
    StoreHandle, StoredMessage,
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
    /// The message store failed a request made for this session.
    Store(StoreError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Protocol(e) => write!(f, "protocol error: {e}"),
            SessionError::Io(e) => write!(f, "transport error: {e}"),
            SessionError::SlowConsumer => f.write_str("slow consumer: outbound queue full"),
            SessionError::Application(e) => f.write_str(e),
            SessionError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// Why [`Hub::try_join`] did not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The session has ended.
    Closed,
    /// The session may not use the room (room authorization); it was
    /// sent an error message naming the reason.
    Forbidden,
    /// The session is in this many rooms already, the most allowed.
    RoomLimit(usize),
    /// The room name is longer than this many bytes
    /// ([`HubLimits::max_room_name_bytes`]).
    RoomNameTooLong(usize),
    /// The room name is empty.
    EmptyRoomName,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Closed => f.write_str("session is closed"),
            JoinError::Forbidden => f.write_str("room not allowed"),
            JoinError::RoomLimit(n) => write!(f, "at most {n} rooms per session"),
            JoinError::RoomNameTooLong(n) => write!(f, "room name over {n} bytes"),
            JoinError::EmptyRoomName => f.write_str("empty room name"),
        }
    }
}

impl std::error::Error for JoinError {}

type OnUpgrade = Box<dyn Fn(&Request) -> Result<Accept, Reject> + Send + Sync>;
pub(crate) type RoomCheck =
    Box<dyn Fn(Option<&Identity>, &str) -> Result<(), String> + Send + Sync>;

pub(crate) struct HubInner {
    pub(crate) path: Option<String>,
    sessions: RwLock<HashMap<SessionId, Session>>,
    rooms: Mutex<Rooms>,
    callbacks: Callbacks<Session, SessionError>,
    upgrade: Option<OnUpgrade>,
    next_id: AtomicU64,
    limit: OutboundLimit,
    accepting: AtomicBool,
    pub(crate) metrics: Arc<Metrics>,
    observers: RwLock<Vec<Arc<dyn BroadcastObserver>>>,
    store: Option<StoreHandle>,
    pub(crate) auth: Option<Auth>,
    pub(crate) room_check: Option<RoomCheck>,
    pub(crate) limits: HubLimits,
    pub(crate) admission: Option<Arc<Admission>>,
    pub(crate) engine: Arc<dyn RoomEngine>,
    pub(crate) node_id: RwLock<String>,
    pub(crate) presence_events: bool,
    pub(crate) render: Render,
}

/// How a hub renders a stored room message for its members.
pub(crate) type Render = Box<dyn Fn(&StoredMessage) -> String + Send + Sync>;

/// Sees every text broadcast of a hub and its shutdown: how a layer beside
/// the hub follows its rooms (the HTTP layer's long polling mirrors them to
/// poll clients). Attached with [`Hub::observe`].
pub trait BroadcastObserver: Send + Sync {
    /// `text` was sent to the members of `room`, or to every session when
    /// `room` is `None`. Runs on the broadcasting thread, before the
    /// delivery: keep it short.
    fn broadcast(&self, room: Option<&str>, text: &str);

    /// The hub began its shutdown ([`Hub::shutdown`]).
    fn shutdown(&self) {}
}

/// Builds a [`Hub`]: callbacks and the outbound queue limit.
#[derive(Default)]
pub struct HubBuilder {
    path: Option<String>,
    callbacks: Callbacks<Session, SessionError>,
    upgrade: Option<OnUpgrade>,
    limit: OutboundLimit,
    store: Option<StoreHandle>,
    auth: Option<Auth>,
    room_check: Option<RoomCheck>,
    limits: HubLimits,
    engine: Option<Arc<dyn RoomEngine>>,
    node_id: Option<String>,
    presence_events: bool,
    render: Option<Render>,
}

impl HubBuilder {
    callback_setters!(
        Session,
        SessionError,
        open: "Called when a session opens.",
        close: "Called once when a session ends, with the close code and reason, while the session is still a member of its rooms ([`Hub::rooms_of`]) and holds its data; it receives no broadcast any more.",
        error: "Called for protocol, transport, slow-consumer and application errors."
    );

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
        self.upgrade = Some(Box::new(f));
        self
    }
    /// Bound every session's outbound queue.
    pub fn outbound_limit(mut self, limit: OutboundLimit) -> Self {
        self.limit = limit;
        self
    }
    /// Keep room history in this store (see [`Hub::publish`] and
    /// [`Hub::resume`]).
    pub fn store(mut self, store: StoreHandle) -> Self {
        self.store = Some(store);
        self
    }
    /// Authenticate every session (see [`auth`](crate::auth)): a token
    /// from the upgrade request or the first message, verified by `auth`.
    pub fn authenticate(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }
    /// Decide who may use which room: consulted, after the `rooms` claim
    /// rule, by [`Hub::join`], [`Hub::resume`], [`Hub::authorize`] and the
    /// HTTP layer's long polling and `/ws/send`, with the identity (none
    /// without authentication) and the room; `Err` names the reason.
    pub fn authorize_rooms(
        mut self,
        f: impl Fn(Option<&Identity>, &str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.room_check = Some(Box::new(f));
        self
    }
    /// Limit origins, rates, rooms and connections (all off by default).
    pub fn limits(mut self, limits: HubLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Publish, keep history and presence through `engine` (default: an
    /// [`EmbeddedEngine`], this process alone).
    pub fn engine(mut self, engine: impl RoomEngine) -> Self {
        self.engine = Some(Arc::new(engine));
        self
    }
    /// The name of this node in presence entries (default `local`; also
    /// [`Hub::set_node_id`]).
    pub fn node_id(mut self, node: impl Into<String>) -> Self {
        self.node_id = Some(node.into());
        self
    }
    /// Send `presence.join` and `presence.leave` to a room's members when a
    /// session joins or leaves it (off by default: with N members, N joins
    /// cost N² messages).
    pub fn presence_events(mut self, on: bool) -> Self {
        self.presence_events = on;
        self
    }
    /// Render each published room message into the text its members
    /// receive (default: its envelope with `id`, `room` and `ts`,
    /// [`StoredMessage::to_envelope`]). Every node renders the messages it
    /// delivers, so the function must depend on the message alone.
    pub fn render(
        mut self,
        render: impl Fn(&StoredMessage) -> String + Send + Sync + 'static,
    ) -> Self {
        self.render = Some(Box::new(render));
        self
    }
    /// The hub.
    pub fn build(self) -> Hub {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub(Arc::new(HubInner {
            observers: RwLock::default(),
            path: self.path,
            sessions: RwLock::default(),
            rooms: Mutex::default(),
            callbacks: self.callbacks,
            upgrade: self.upgrade,
            next_id: AtomicU64::new(1),
            limit: self.limit,
            accepting: AtomicBool::new(true),
            metrics,
            store: self.store,
            auth: self.auth,
            room_check: self.room_check,
            admission: Admission::new(&self.limits),
            limits: self.limits,
            engine: self
                .engine
                .unwrap_or_else(|| Arc::new(EmbeddedEngine::default())),
            node_id: RwLock::new(self.node_id.unwrap_or_else(|| "local".into())),
            presence_events: self.presence_events,
            render: self
                .render
                .unwrap_or_else(|| Box::new(|message| message.to_envelope().to_json())),
        }));
        hub.0.engine.attach(&hub);
        hub
    }
}

/// Every open session, the rooms and the callbacks. Cheap to clone.
///
/// Callbacks run with no lock held, so they may call any hub or session
/// method. Most run on the connection's task; `on_error` for a slow
/// consumer runs on the task whose send found the queue full, and
/// `on_close` for a session aborted at the end of a shutdown runs where its
/// task is dropped. Callbacks must not block.
#[derive(Clone)]
pub struct Hub(pub(crate) Arc<HubInner>);

/// A handle on a [`Hub`] that does not keep it alive ([`Hub::weak`]): how
/// a thread that outlives no hub (a room engine's) reaches it.
#[derive(Clone)]
pub struct WeakHub(Weak<HubInner>);

impl WeakHub {
    /// The hub, while it exists.
    pub fn upgrade(&self) -> Option<Hub> {
        self.0.upgrade().map(Hub)
    }
}

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

    pub(crate) fn inner(&self) -> &HubInner {
        &self.0
    }

    pub(crate) fn downgrade(&self) -> Weak<HubInner> {
        Arc::downgrade(&self.0)
    }

    /// A handle that does not keep the hub alive.
    pub fn weak(&self) -> WeakHub {
        WeakHub(self.downgrade())
    }

    /// The message store attached with [`HubBuilder::store`].
    pub fn store(&self) -> Option<&StoreHandle> {
        self.0.store.as_ref()
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

    /// Add `session` to `room` (joining twice is harmless). Returns true if
    /// it was not a member yet; false too for a session that has ended,
    /// which joins nothing (so no room keeps a member that will never
    /// leave), for a session denied the room (room authorization:
    /// [`HubBuilder::authorize_rooms`] or a `rooms` claim; it is sent
    /// `{"type":"error","payload":{"error":"forbidden","room":R,"message":..}}`),
    /// and for a join over the cap on rooms per session
    /// ([`try_join`](Self::try_join) tells which).
    pub fn join(&self, session: &Session, room: &str) -> bool {
        self.try_join(session, room).unwrap_or(false)
    }

    /// Like [`join`](Self::join), saying why a session did not join. A
    /// join over [`HubLimits::max_rooms_per_session`] is refused, and the
    /// session is sent `{"type":"error","payload":{"error":"room_limit",
    /// "room":..,"limit":..}}`. An empty room name, or one over
    /// [`HubLimits::max_room_name_bytes`], is refused with
    /// `{"type":"error","payload":{"error":"room_name_empty",..}}` or
    /// `{"type":"error","payload":{"error":"room_name_too_long","length":..,
    /// "limit":..,"message":..}}`.
    pub fn try_join(&self, session: &Session, room: &str) -> Result<bool, JoinError> {
        self.join_announced(session, room, true)
    }

    /// Join `session` to `room` as [`try_join`](Self::try_join) does, once
    /// this node follows the room ([`RoomEngine::follow`]), and call `done`
    /// with the outcome: a message published after `done` ran reaches the
    /// session, whatever node published it. With the embedded engine this
    /// is `try_join` and `done` runs at once; with an engine spanning
    /// processes, maybe later and on the engine's thread. Refusals (name,
    /// authorization, room cap) are answered at once, after the session was
    /// sent the error envelope.
    pub fn join_then(
        &self,
        session: &Session,
        room: &str,
        done: impl FnOnce(Result<bool, JoinError>) + Send + 'static,
    ) {
        if let Err(error) = self.check_room_name(session, room) {
            return done(Err(error));
        }
        if !self.admit_to_room(session, room) {
            return done(Err(JoinError::Forbidden));
        }
        if let Some(max) = self.room_cap_reached(session, room) {
            self.refuse_join(session, room, max);
            return done(Err(JoinError::RoomLimit(max)));
        }
        let (hub, joining, room_name) = (self.weak(), session.clone(), room.to_owned());
        let then = Box::new(move || {
            let joined = match hub.upgrade() {
                Some(hub) => hub.try_join(&joining, &room_name),
                None => Err(JoinError::Closed),
            };
            done(joined);
        });
        self.0.engine.follow(self, room, then);
    }

    /// [`try_join`](Self::try_join); the engine hears of the join only when
    /// `announce`.
    pub(crate) fn join_announced(
        &self,
        session: &Session,
        room: &str,
        announce: bool,
    ) -> Result<bool, JoinError> {
        self.check_room_name(session, room)?;
        if !self.admit_to_room(session, room) {
            return Err(JoinError::Forbidden);
        }
        let max = self.0.limits.max_rooms_per_session;
        {
            // Under the sessions lock: `closed` removes the session under
            // the write lock before it leaves every room, so a join either
            // lands before that (and is undone) or sees the session gone.
            let sessions = self.0.read_sessions();
            if !sessions.contains_key(&session.id()) {
                return Err(JoinError::Closed);
            }
            let mut rooms = self.0.lock_rooms();
            let at_cap = max > 0 && {
                let (count, member) = rooms
                    .rooms_of(session.id())
                    .fold((0, false), |(n, m), r| (n + 1, m || r == room));
                !member && count >= max
            };
            if !at_cap {
                let added = rooms.join(session.id(), room);
                drop((rooms, sessions));
                if added && announce {
                    self.0.engine.joined(self, room, session);
                }
                return Ok(added);
            }
        }
        self.refuse_join(session, room, max);
        Err(JoinError::RoomLimit(max))
    }

    /// Remove `session` from `room` (an unknown room is a no-op).
    pub fn leave(&self, session: &Session, room: &str) -> bool {
        let left = self.leave_quietly(session, room);
        if left {
            self.0.engine.left(self, room, session);
        }
        left
    }

    /// [`leave`](Self::leave) without telling the engine (a resume leaves
    /// and joins again: no presence change).
    pub(crate) fn leave_quietly(&self, session: &Session, room: &str) -> bool {
        self.0.lock_rooms().leave(session.id(), room)
    }

    /// The ids of `room`'s members.
    pub fn members(&self, room: &str) -> Vec<SessionId> {
        self.0.lock_rooms().members(room).collect()
    }

    /// This node's sessions in `room`, sorted by id, as presence shows
    /// them ([`presence`](Self::presence) asks the engine, which may know
    /// other nodes too).
    pub fn local_presence(&self, room: &str) -> Vec<crate::PresenceEntry> {
        let node = self.node_id();
        let mut entries: Vec<crate::PresenceEntry> = {
            let sessions = self.0.read_sessions();
            let rooms = self.0.lock_rooms();
            rooms
                .members(room)
                .filter_map(|id| sessions.get(&id))
                .map(|session| crate::PresenceEntry {
                    id: session.id(),
                    user: session.user(),
                    node: node.clone(),
                })
                .collect()
        };
        entries.sort_by_key(|entry| entry.id);
        entries
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

    /// Attach `observer`: from now on it sees every text broadcast and the
    /// hub's shutdown.
    pub fn observe(&self, observer: Arc<dyn BroadcastObserver>) {
        self.0
            .observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observer);
    }

    /// Tell the observers about a text broadcast.
    fn observe_broadcast(&self, room: Option<&str>, text: &str) {
        let observers = self
            .0
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for observer in observers.iter() {
            observer.broadcast(room, text);
        }
    }

    // ----- broadcast ----------------------------------------------------

    /// Send `text` to every session (but `except`). The frame is encoded
    /// once; every recipient queues the same bytes. Returns the recipients.
    pub fn broadcast_text(&self, text: &str, except: Option<&Session>) -> usize {
        self.observe_broadcast(None, text);
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
        self.observe_broadcast(Some(room), text);
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
        let (mut delivered, mut closed_slow) = (0, Vec::new());
        let mut push = |session: &Session| match session.push_frame(frame) {
            Pushed::Queued => delivered += 1,
            Pushed::ClosedSlow => closed_slow.push(session.clone()),
            Pushed::Closed | Pushed::Dropped => {}
        };
        {
            // Pushing runs no callback, so it may happen under the locks.
            let sessions = self.0.read_sessions();
            match audience {
                Audience::All => sessions
                    .values()
                    .filter(|s| Some(s.id()) != skip)
                    .for_each(&mut push),
                Audience::Room(room) => {
                    let rooms = self.0.lock_rooms();
                    rooms
                        .members(room)
                        .filter(|id| Some(*id) != skip)
                        .filter_map(|id| sessions.get(&id))
                        .for_each(&mut push);
                }
            }
        }
        // Locks released: `on_error` may call back into the hub.
        for session in closed_slow {
            session.report_slow_consumer();
        }
        self.0.metrics.broadcast_deliveries.add(delivered as u64);
        delivered
    }

    // ----- lifecycle ----------------------------------------------------

    /// Stop accepting sessions and close every open one with 1001 (phase one
    /// of shutdown; adapters then wait, bounded, for the sessions to end).
    /// Observers are told ([`BroadcastObserver::shutdown`]).
    pub fn shutdown(&self) {
        let sessions: Vec<Session> = {
            // Under the write lock, so that no session opens unseen: `open`
            // checks `accepting` under the same lock.
            let sessions = self.0.write_sessions();
            self.0.accepting.store(false, Ordering::SeqCst);
            sessions.values().cloned().collect()
        };
        for session in sessions {
            session.close(CloseCode::GOING_AWAY, "server shutting down");
        }
        let observers = self
            .0
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for observer in observers.iter() {
            observer.shutdown();
        }
    }

    /// False once [`shutdown`](Self::shutdown) began.
    pub fn is_accepting(&self) -> bool {
        self.0.accepting.load(Ordering::SeqCst)
    }

    // ----- adapter side -------------------------------------------------

    /// Answer an upgrade request: the path check, the origin check (403
    /// naming the origin), then `on_upgrade`, then, with authentication,
    /// the token of the request (a bad one: `401`). (Connection limits
    /// need the peer: [`admit`](Self::admit).)
    pub fn decide(&self, request: &Request) -> Result<Accept, Reject> {
        self.decide_as(request, &mut None)
    }

    /// [`decide`](Self::decide), keeping the identity the request's token
    /// proved for [`open_as`](Self::open_as).
    pub fn decide_as(
        &self,
        request: &Request,
        identity: &mut Option<Identity>,
    ) -> Result<Accept, Reject> {
        self.check_path_and_origin(request)?;
        self.answer_upgrade(request, identity)
    }

    /// 404 for another path, 403 for an origin not on the list.
    pub(crate) fn check_path_and_origin(&self, request: &Request) -> Result<(), Reject> {
        if self
            .0
            .path
            .as_deref()
            .is_some_and(|path| path != request.path())
        {
            return Err(Reject::not_found());
        }
        self.check_origin(request)
    }

    /// `on_upgrade`, then the request's token (see [`decide_as`](Self::decide_as)).
    pub(crate) fn answer_upgrade(
        &self,
        request: &Request,
        identity: &mut Option<Identity>,
    ) -> Result<Accept, Reject> {
        let accept = match &self.0.upgrade {
            Some(on_upgrade) => on_upgrade(request)?,
            None => Accept::new(),
        };
        *identity = self.authenticate_request(request)?;
        Ok(accept)
    }

    /// A connection opened: register its session and call `on_open`.
    /// `None` while shutting down (the adapter should close with 1001).
    ///
    /// The adapter must end the session with [`closed`](Self::closed)
    /// (or [`release`](Self::release) when unwinding from a panic in a
    /// callback); [`run_session`](crate::run_session) does.
    pub fn open(&self, info: SessionInfo) -> Option<Session> {
        self.open_with(info, None, ConnectionSlot::none())
    }

    /// [`open`](Self::open) with the identity [`decide_as`](Self::decide_as)
    /// found. With authentication and no identity, the session's token is
    /// looked for again in `info`, else it waits for its auth message:
    /// `on_open` runs once it is authenticated.
    pub fn open_as(&self, info: SessionInfo, identity: Option<Identity>) -> Option<Session> {
        self.open_with(info, identity, ConnectionSlot::none())
    }

    /// [`open_as`](Self::open_as) for a connection holding `slot` (from
    /// [`admit`](Self::admit)), given back when the session ends.
    pub(crate) fn open_with(
        &self,
        info: SessionInfo,
        identity: Option<Identity>,
        slot: ConnectionSlot,
    ) -> Option<Session> {
        let session = {
            let mut sessions = self.0.write_sessions();
            if !self.is_accepting() {
                return None;
            }
            let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
            let now = std::time::Instant::now();
            let limits = SessionLimits::new(&self.0.limits, slot, now);
            let session = Session::new(id, info, self.0.limit, limits, Arc::downgrade(&self.0));
            sessions.insert(id, session.clone());
            session
        };
        self.0.metrics.connections_total.inc();
        self.0.metrics.connections_active.inc();
        if !self.start_auth(&session, identity) {
            return Some(session); // opened once authenticated
        }
        self.call_on_open(&session);
        Some(session)
    }

    /// Call `on_open`.
    pub(crate) fn call_on_open(&self, session: &Session) {
        if let Some(on_open) = &self.0.callbacks.open {
            // A panicking `on_open` must not leave its session registered:
            // the caller has no session to end yet.
            let opened = panic::catch_unwind(AssertUnwindSafe(|| on_open(session)));
            if let Err(panicked) = opened {
                self.release(session, CloseCode::INTERNAL_ERROR);
                panic::resume_unwind(panicked);
            }
        }
    }

    /// A message arrived: raw handler first, then the typed handler when the
    /// text is an envelope. A message over the session's rates
    /// ([`HubLimits`]) reaches no handler (dropped with a notice, or the
    /// session closes with 1008).
    pub fn deliver(&self, session: &Session, message: &Message) {
        let metrics = &self.0.metrics;
        metrics.messages_in.inc();
        metrics.bytes_in.add(message.len() as u64);
        if matches!(message, Message::Text(_)) {
            metrics.text_in.inc();
        }
        if !self.within_rate(session, message) {
            return;
        }
        if self.0.auth.is_some() && self.auth_message(session, message) {
            return; // the auth message, or anything before it
        }
        self.0.callbacks.message(session, message);
    }

    /// The connection ended: forget the session, call `on_close` (the
    /// session still a member of its rooms), then leave every room. Only
    /// the first call for a session does anything, so `on_close` runs
    /// exactly once.
    pub fn closed(&self, session: &Session, code: CloseCode, reason: &str) {
        // A session that never authenticated never saw `on_open`.
        let opened = self.0.auth.is_none() || !session.awaiting_auth();
        if self.forget(session, code) {
            let _leave = LeaveRooms(self, session);
            if opened {
                self.0.callbacks.close(session, code, reason);
            }
        }
    }

    /// Like [`closed`](Self::closed) without calling `on_close`: for a
    /// session whose task is unwinding from a panic (a second panic in a
    /// callback would abort the process).
    pub fn release(&self, session: &Session, code: CloseCode) {
        if self.forget(session, code) {
            drop(LeaveRooms(self, session));
        }
    }

    /// Take `session` out of the hub's sessions (broadcasts no longer reach
    /// it) and count its end; false if that was done already.
    fn forget(&self, session: &Session, code: CloseCode) -> bool {
        session.mark_closed();
        if self.0.write_sessions().remove(&session.id()).is_none() {
            return false; // already reported
        }
        self.0.metrics.connections_active.dec();
        self.0.metrics.count_close(code.0);
        true
    }

    /// Report an error on `session` to `on_error`.
    pub fn error(&self, session: &Session, error: &SessionError) {
        self.0.emit_error(session, error);
    }
}

/// Leaves every room of a closed session when dropped: after its
/// `on_close`, even if that panics; then the engine hears of each.
struct LeaveRooms<'a>(&'a Hub, &'a Session);

impl Drop for LeaveRooms<'_> {
    fn drop(&mut self) {
        let rooms = self.0 .0.lock_rooms().leave_all(self.1.id());
        for room in rooms {
            self.0 .0.engine.left(self.0, &room, self.1);
        }
    }
}

impl HubInner {
    pub(crate) fn emit_error(&self, session: &Session, error: &SessionError) {
        self.metrics.errors.inc();
        self.callbacks.error(session, error);
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

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        sync::{atomic::AtomicUsize, mpsc},
        task::Waker,
        thread,
        time::{Duration, Instant},
    };

    use std::io::IoSlice;

    use serde_json::json;

    use super::*;
    use crate::{
        session::{tests::open_connection, Queued},
        SendError, SlowConsumer, HIGH_WATER,
    };
    use bytes::Bytes;

    /// Run `f` on a thread; fail if it takes more than five seconds (a
    /// deadlock shows up as a failure, not a hung test run).
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("finished within 5 s (no deadlock)")
    }

    fn info(path: &str) -> SessionInfo {
        SessionInfo::new(None, path, [])
    }

    type Log = Arc<Mutex<Vec<String>>>;

    fn logging_hub(log: &Log) -> Hub {
        let (l1, l2, l3, l4, l5, l6) = (
            log.clone(),
            log.clone(),
            log.clone(),
            log.clone(),
            log.clone(),
            log.clone(),
        );
        Hub::builder()
            .on_open(move |s| l1.lock().unwrap().push(format!("open {}", s.id())))
            .on_message(move |_, text| l2.lock().unwrap().push(format!("raw {text}")))
            .on_binary(move |_, data| l3.lock().unwrap().push(format!("binary {data:?}")))
            .on_typed_message(move |_, envelope| {
                let (kind, payload) = (&envelope.event_type, &envelope.payload);
                l4.lock().unwrap().push(format!("typed {kind} {payload}"))
            })
            .on_close(move |_, code, reason| {
                l5.lock().unwrap().push(format!("close {code} {reason}"))
            })
            .on_error(move |_, error| l6.lock().unwrap().push(format!("error {error:?}")))
            .build()
    }

    fn take(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    /// Texts (or frame payloads, for broadcasts) queued on `session`.
    pub(crate) fn texts(session: &Session) -> Vec<String> {
        session
            .peek()
            .into_iter()
            .map(|item| match item {
                Queued::Text(text) => text,
                Queued::Frame(bytes) => frame_payload(&bytes),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// The payload of an unmasked server frame, as text.
    fn frame_payload(bytes: &[u8]) -> String {
        let start = match bytes[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    #[test]
    fn callbacks_raw_then_typed_binary_and_close_once() {
        let log = Log::default();
        let hub = logging_hub(&log);
        let s = hub.open(info("/")).unwrap();
        let envelope = r#"{"type":"a.b","payload":{"x":{"y":[1,{"z":null}]}},"room":"r"}"#;
        let not_envelopes = [
            "[1]",
            r#"{"type":""}"#,
            r#"{"type":1}"#,
            "{oops",
            r#"{"payload":{}}"#,
        ];
        let mut inputs = vec!["plain", envelope];
        inputs.extend(not_envelopes);
        for text in &inputs {
            hub.deliver(&s, &Message::Text(text.to_string()));
        }
        hub.deliver(&s, &Message::Binary(Bytes::from_static(b"\x01\x02")));
        hub.closed(&s, CloseCode(4000), "done");
        hub.closed(&s, CloseCode::ABNORMAL, "again");
        hub.release(&s, CloseCode::ABNORMAL);
        assert_eq!(
            take(&log),
            vec![
                format!("open {}", s.id()),
                "raw plain".into(),
                r#"raw {"type":"a.b","payload":{"x":{"y":[1,{"z":null}]}},"room":"r"}"#.into(),
                r#"typed a.b {"x":{"y":[1,{"z":null}]}}"#.into(),
                "raw [1]".into(),
                r#"raw {"type":""}"#.into(),
                r#"raw {"type":1}"#.into(),
                "raw {oops".into(),
                r#"raw {"payload":{}}"#.into(),
                r#"binary b"\x01\x02""#.into(),
                "close 4000 done".into(),
            ]
        );
        let m = hub.metrics();
        assert_eq!(m.messages_in.get(), 8);
        let text_bytes: usize = inputs.iter().map(|t| t.len()).sum();
        assert_eq!(m.bytes_in.get(), (text_bytes + 2) as u64);
        assert_eq!(
            (m.connections_total.get(), m.connections_active.get()),
            (1, 0)
        );
        assert_eq!(m.closes_by_code().get("4xxx"), Some(&1));
        assert_eq!(m.closes_by_code().get("4000"), None);
        assert_eq!(s.send_text("late"), Err(SendError::Closed));
    }

    #[test]
    fn emit_error_reaches_on_error_and_is_counted() {
        let log = Log::default();
        let hub = logging_hub(&log);
        let s = hub.open(info("/")).unwrap();
        take(&log);
        s.emit_error("bad input");
        assert_eq!(take(&log), vec![r#"error Application("bad input")"#]);
        assert_eq!(hub.metrics().errors.get(), 1);
        assert_eq!(
            SessionError::Application("bad input".into()).to_string(),
            "bad input"
        );
    }

    #[test]
    fn release_forgets_without_on_close() {
        let log = Log::default();
        let hub = logging_hub(&log);
        let s = hub.open(info("/")).unwrap();
        hub.join(&s, "r");
        take(&log);
        hub.release(&s, CloseCode::ABNORMAL);
        hub.closed(&s, CloseCode::ABNORMAL, "");
        assert!(take(&log).is_empty());
        assert_eq!((hub.session_count(), hub.rooms().len()), (0, 0));
    }

    #[test]
    fn rooms_join_leave_members_and_vanishing() {
        let hub = Hub::builder().build();
        let [a, b, c] = [(); 3].map(|_| hub.open(info("/")).unwrap());
        assert!(hub.join(&a, "r1"));
        assert!(!hub.join(&a, "r1"), "joining twice is harmless");
        assert!(hub.join(&b, "r1") && hub.join(&b, "r2") && hub.join(&c, "r2"));
        let sorted = |mut v: Vec<SessionId>| {
            v.sort();
            v
        };
        assert_eq!(sorted(hub.members("r1")), vec![a.id(), b.id()]);
        let mut of_b = hub.rooms_of(&b);
        of_b.sort();
        assert_eq!(of_b, vec!["r1", "r2"]);
        assert!(hub.members("nowhere").is_empty());
        assert!(!hub.leave(&a, "nowhere"), "unknown room: no-op");
        assert_eq!(hub.room_text("nowhere", "x", None), 0);

        // Isolation: r1 reaches a and b only; `except` skips the sender.
        assert_eq!(hub.room_text("r1", "to r1", None), 2);
        assert_eq!(hub.room_text("r2", "to r2", Some(&c)), 1);
        assert_eq!(texts(&a), vec!["to r1"]);
        assert_eq!(texts(&b), vec!["to r1", "to r2"]);
        assert!(texts(&c).is_empty());

        // Leave; the empty room vanishes.
        assert!(hub.leave(&a, "r1") && hub.leave(&b, "r1"));
        assert!(!hub.leave(&b, "r1"));
        assert_eq!(hub.rooms(), vec!["r2"]);
        assert_eq!(hub.room_text("r1", "gone", None), 0);

        // Leave-all on close; a closed session joins nothing.
        hub.closed(&b, CloseCode::NORMAL, "");
        assert_eq!(hub.members("r2"), vec![c.id()]);
        assert!(hub.rooms_of(&b).is_empty());
        assert!(!hub.join(&b, "r3"), "a closed session joins nothing");
        assert_eq!(hub.rooms(), vec!["r2"], "no room kept for a dead member");
        hub.closed(&c, CloseCode::NORMAL, "");
        assert!(hub.rooms().is_empty());
        assert_eq!(hub.session(a.id()), Some(a.clone()));
        assert_eq!(hub.session(c.id()), None);
    }

    #[test]
    fn broadcast_reaches_everyone_but_except_and_binary_and_json() {
        let hub = Hub::builder().build();
        let [a, b] = [(); 2].map(|_| hub.open(info("/")).unwrap());
        assert_eq!(hub.broadcast_text("t", Some(&a)), 1);
        assert_eq!(
            hub.broadcast_json("e.v", json!({"n": [1, {"m": 2}]}), None),
            2
        );
        hub.join(&a, "r");
        assert_eq!(hub.room_json("r", "r.v", json!(null), None), 1);
        assert_eq!(hub.broadcast_binary(b"\x00\xff", None), 2);
        assert_eq!(hub.room_binary("r", b"\x01", Some(&a)), 0);
        assert_eq!(
            texts(&a)[..2],
            [
                r#"{"type":"e.v","payload":{"n":[1,{"m":2}]}}"#,
                r#"{"type":"r.v","payload":null}"#
            ]
        );
        assert_eq!(
            texts(&b)[..2],
            ["t", r#"{"type":"e.v","payload":{"n":[1,{"m":2}]}}"#]
        );
        let Some(Queued::Frame(frame)) = b.peek().pop() else {
            panic!()
        };
        assert_eq!(&frame[..], b"\x82\x02\x00\xff", "one binary frame");
        assert_eq!(hub.metrics().broadcast_deliveries.get(), 1 + 2 + 1 + 2);
    }

    #[test]
    fn broadcast_frames_are_encoded_once_and_shared_down_to_the_wire() {
        let hub = Hub::builder().build();
        let sessions: Vec<Session> = (0..3).map(|_| hub.open(info("/")).unwrap()).collect();
        // Above 1 KiB: smaller frames are copied into each connection's
        // batch, which costs less than sharing them.
        let text = "x".repeat(2000);
        assert_eq!(hub.broadcast_text(&text, None), 3);
        let frames: Vec<Bytes> = sessions
            .iter()
            .map(|s| match &s.peek()[..] {
                [Queued::Frame(bytes)] => bytes.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frame_payload(&frames[0]), text);
        for frame in &frames[1..] {
            assert_eq!(frame.as_ptr(), frames[0].as_ptr(), "one allocation, shared");
        }
        // In the protocol core too: each connection's transmit queue points
        // at those same bytes (no per-recipient copy on the way out).
        for session in &sessions {
            let mut conn = open_connection();
            session.drain_into(&mut conn, Instant::now(), HIGH_WATER, Waker::noop());
            let mut slices = [IoSlice::new(&[]); 8];
            let n = conn.transmit_slices(&mut slices);
            assert!(
                slices[..n].iter().any(|s| s.as_ptr() == frames[0].as_ptr()),
                "the frame is written from the shared allocation"
            );
            assert_eq!(conn.pending_bytes(), frames[0].len());
        }
    }

    /// permessage-deflate without server context takeover (the default):
    /// the broadcast frame is compressed once, by the first connection that
    /// drains it, and every other recipient writes those same bytes.
    #[test]
    fn compressed_broadcast_is_compressed_once() {
        let deflate_connection = || {
            let now = Instant::now();
            let config = hubbub_core::Config {
                deflate: Some(hubbub_core::DeflateConfig::default()),
                ..Default::default()
            };
            let mut conn = hubbub_core::Connection::server(Arc::new(config), now);
            conn.handle_input(
                now,
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            );
            assert!(conn.poll_event().is_some());
            conn.accept(now, Accept::new()).unwrap();
            assert!(matches!(
                conn.poll_event(),
                Some(hubbub_core::Event::Open(o)) if o.extensions.is_some()
            ));
            conn.advance_transmit(conn.pending_bytes());
            conn
        };
        let hub = Hub::builder().build();
        let sessions: Vec<Session> = (0..3).map(|_| hub.open(info("/")).unwrap()).collect();
        // Pseudo-random letters: still above 1 KiB compressed, so shared
        // rather than copied into each connection's buffer.
        let mut state = 7u32;
        let text: String = (0..3000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + (state >> 16) as u8 % 26)
            })
            .collect();
        assert_eq!(hub.broadcast_text(&text, None), 3);
        let mut conns: Vec<_> = sessions.iter().map(|_| deflate_connection()).collect();
        let mut written = Vec::new();
        for (session, conn) in sessions.iter().zip(&mut conns) {
            session.drain_into(conn, Instant::now(), HIGH_WATER, Waker::noop());
        }
        for conn in &conns {
            let mut slices = [IoSlice::new(&[]); 8];
            let n = conn.transmit_slices(&mut slices);
            assert_eq!(n, 1);
            written.push((slices[0].as_ptr(), slices[0].to_vec()));
        }
        let (first, bytes) = &written[0];
        assert_eq!(bytes[0], 0xc1, "FIN, RSV1, text");
        assert!(
            (1024..text.len() * 3 / 4).contains(&bytes.len()),
            "compressed to {}",
            bytes.len()
        );
        assert!(
            written.iter().all(|(ptr, _)| ptr == first),
            "one compression, shared"
        );
    }

    #[test]
    fn direct_sends_and_broadcasts_keep_their_order() {
        let hub = Hub::builder().build();
        let [a, b] = [(); 2].map(|_| hub.open(info("/")).unwrap());
        for i in 0..100 {
            if i % 3 == 0 {
                a.send_text(format!("{i}")).unwrap();
            } else {
                hub.broadcast_text(&format!("{i}"), None);
            }
        }
        let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(texts(&a), expected);
        let for_b: Vec<String> = (0..100)
            .filter(|i| i % 3 != 0)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(texts(&b), for_b);
    }

    #[test]
    fn slow_consumer_policies_are_counted_and_spare_the_others() {
        let errors = Arc::new(AtomicUsize::new(0));
        let e = errors.clone();
        let limit = OutboundLimit {
            max_bytes: 1000,
            max_messages: 10_000,
            policy: SlowConsumer::Drop,
        };
        let hub = Hub::builder().outbound_limit(limit).build();
        let [slow, fast] = [(); 2].map(|_| hub.open(info("/")).unwrap());
        // Frames of 100 bytes (2 of header): ten fit in 1000 bytes.
        for i in 0..50 {
            hub.broadcast_text(&format!("{i:0>98}"), None);
            assert!(slow.queued_bytes() <= 1000);
            if i % 5 == 0 {
                // `fast` reads: its queue is moved into a core.
                let mut conn = open_connection();
                fast.drain_into(&mut conn, Instant::now(), usize::MAX, Waker::noop());
            }
        }
        assert_eq!(
            hub.metrics().slow_consumer_drops.get(),
            40,
            "10 fit, 40 dropped"
        );
        assert_eq!(texts(&slow).len(), 10);
        assert!(slow.is_open());
        assert_eq!(hub.metrics().slow_consumer_closes.get(), 0);

        // Close: counted once and reported once, however many senders race.
        let hub = Hub::builder()
            .outbound_limit(OutboundLimit {
                policy: SlowConsumer::Close(CloseCode::POLICY_VIOLATION),
                ..limit
            })
            .on_error(move |_, error| {
                assert_eq!(error, &SessionError::SlowConsumer);
                e.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        let slow = hub.open(info("/")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let hub = hub.clone();
                thread::spawn(move || {
                    for _ in 0..100 {
                        hub.broadcast_text(&"y".repeat(99), None);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(hub.metrics().slow_consumer_closes.get(), 1);
        assert_eq!(errors.load(Ordering::SeqCst), 1);
        assert_eq!(
            slow.peek(),
            vec![Queued::Close(1008, "slow consumer".into())]
        );
    }

    #[test]
    fn shutdown_closes_everyone_with_1001_and_refuses_new_sessions() {
        let hub = Hub::builder().build();
        let sessions: Vec<Session> = (0..3).map(|_| hub.open(info("/")).unwrap()).collect();
        sessions[0].send_text("queued first").unwrap();
        hub.shutdown();
        assert!(!hub.is_accepting());
        assert!(hub.open(info("/")).is_none());
        assert_eq!(hub.metrics().connections_total.get(), 3);
        for s in &sessions {
            assert!(!s.is_open());
            assert_eq!(
                s.peek().last(),
                Some(&Queued::Close(1001, "server shutting down".into()))
            );
        }
        assert_eq!(sessions[0].peek()[0], Queued::Text("queued first".into()));
    }

    #[test]
    fn a_session_keeps_typed_data_from_on_open_to_on_close() {
        #[derive(Debug, PartialEq)]
        struct User(&'static str);
        let (tx, rx) = mpsc::channel();
        let hub = Hub::builder()
            .on_open(|s| {
                assert_eq!(s.set_data(User("ada")), None);
                assert_eq!(s.set_data(7u32), None);
            })
            .on_message(|s, text| {
                let user = s.data::<User>().unwrap();
                s.send_text(format!("{} says {text}", user.0)).unwrap();
                assert_eq!(s.set_data(User("bob")).as_deref(), Some(&User("ada")));
            })
            .on_close(move |s, _, _| {
                let seen = (s.data::<User>(), s.take_data::<u32>(), s.data::<u32>());
                tx.send(seen).unwrap();
            })
            .build();
        let s = hub.open(info("/")).unwrap();
        assert_eq!(s.data::<String>(), None, "no value of that type");
        hub.deliver(&s, &Message::Text("hi".into()));
        assert_eq!(texts(&s), ["ada says hi"]);
        hub.closed(&s, CloseCode::NORMAL, "");
        let (user, number, gone) = rx.recv().unwrap();
        assert_eq!(user.as_deref(), Some(&User("bob")));
        assert_eq!((number.as_deref(), gone), (Some(&7), None));
    }

    #[test]
    fn callbacks_may_call_any_hub_or_session_method() {
        within(|| {
            let log = Log::default();
            let (l1, l2) = (log.clone(), log.clone());
            let hub = Hub::builder()
                .on_open(|s| {
                    let hub = s.hub().unwrap();
                    s.send_text("welcome").unwrap();
                    hub.join(s, "lobby");
                    hub.room_text("lobby", &format!("{} joined", s.id()), Some(s));
                    assert!(hub.rooms_of(s).contains(&"lobby".to_string()));
                    let _ = (hub.session_count(), hub.members("lobby"), hub.rooms());
                })
                .on_message(|s, text| {
                    let hub = s.hub().unwrap();
                    match text {
                        "close" => s.close(CloseCode::NORMAL, "asked"),
                        "stop" => {
                            let me = hub.session(s.id()).unwrap();
                            let _ = (hub.metrics().messages_in.get(), me.is_open());
                            hub.shutdown();
                            assert!(!s.is_open() && !hub.is_accepting());
                        }
                        "shout" => {
                            hub.broadcast_json("shout", json!({"from": s.id()}), None);
                        }
                        room => {
                            hub.join(s, room);
                            hub.room_text(room, "hi", None);
                        }
                    }
                })
                .on_error(move |s, error| {
                    l1.lock().unwrap().push(format!("{error}"));
                    s.close(CloseCode::INTERNAL_ERROR, "");
                    let _ = s.hub().unwrap().session_count();
                })
                .on_close(move |s, _, _| {
                    let hub = s.hub().unwrap();
                    assert_eq!(s.send_text("to a closed session"), Err(SendError::Closed));
                    let rooms = hub.rooms_of(s);
                    assert!(
                        rooms.contains(&"lobby".into()),
                        "still in its rooms: {rooms:?}"
                    );
                    hub.broadcast_text(&format!("{} left", s.id()), None);
                    l2.lock().unwrap().push(format!("closed {}", s.id()));
                    s.emit_error("from on_close");
                })
                .build();
            let a = hub.open(info("/")).unwrap();
            let b = hub.open(info("/")).unwrap();
            hub.deliver(&a, &Message::Text("shout".into()));
            hub.deliver(&b, &Message::Text("r".into()));
            hub.deliver(&a, &Message::Text("close".into()));
            hub.closed(&a, CloseCode::NORMAL, "");
            assert!(hub.rooms_of(&a).is_empty(), "rooms left after on_close");
            assert_eq!(
                texts(&b),
                vec![
                    "welcome".to_string(),
                    format!(r#"{{"type":"shout","payload":{{"from":{}}}}}"#, a.id()),
                    "hi".into(),
                    format!("{} left", a.id()),
                ]
            );
            assert_eq!(
                *log.lock().unwrap(),
                vec![format!("closed {}", a.id()), "from on_close".into()]
            );
            hub.deliver(&b, &Message::Text("stop".into()));
            assert_eq!(
                b.peek().last(),
                Some(&Queued::Close(1001, "server shutting down".into()))
            );
        });
    }
}

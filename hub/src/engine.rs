//! The room engine: what a hub does with a room message beyond its own
//! sessions — append it to history, fan it out, acknowledge it, and who is
//! in a room (presence).
//!
//! A [`Hub`] asks its [`RoomEngine`] for these, and the engine answers with
//! the hub's local fan-out ([`Hub::room_text`]), which stays the one place
//! that touches sessions: encode once, push under the read lock. The
//! default, [`EmbeddedEngine`], is one process: history in the hub's
//! [`MessageStore`](crate::MessageStore) (if any), presence from the hub's
//! own rooms, duplicates of acknowledged publishes remembered in a bounded
//! table. An engine that spans processes (Redis) implements the same trait:
//! it appends to a shared log, fans out to every node's hub through its
//! `room_text`, and keeps presence where every node can read it.

use std::{
    collections::{hash_map::Entry, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;

use crate::{Hub, NewMessage, Session, SessionId, StoreError, StoredMessage};

/// Longest client message id, in characters (`id` of an acknowledged
/// publish).
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// How long an acknowledged publish's id is remembered: a retry with the
/// same id within this time is acknowledged again, not stored twice.
pub const DEDUPE_TTL: Duration = Duration::from_secs(300);
/// Ids remembered at most by an [`EmbeddedEngine`] (all senders together).
pub const DEDUPE_MAX_ENTRIES: usize = 65_536;
/// Retries of one id that may wait for its first publish to be durable;
/// more are answered `Busy` at once.
pub const DEDUPE_MAX_WAITING: usize = 16;

/// Check a client message id: 1 to [`MAX_CLIENT_ID_CHARS`] characters.
/// `Err` names the problem.
pub fn check_client_id(id: &str) -> Result<(), String> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_CLIENT_ID_CHARS {
        return Err(format!(
            "id: expected a string of 1 to {MAX_CLIENT_ID_CHARS} characters, got {chars}"
        ));
    }
    Ok(())
}

/// One session in a room, as presence shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceEntry {
    /// The session's id.
    pub id: SessionId,
    /// Its authenticated user, `null` without authentication.
    pub user: Option<String>,
    /// The node (process) it is connected to ([`Hub::node_id`]).
    pub node: String,
}

impl PresenceEntry {
    /// `session` on `hub`'s node.
    pub fn of(hub: &Hub, session: &Session) -> PresenceEntry {
        PresenceEntry {
            id: session.id(),
            user: session.user(),
            node: hub.node_id(),
        }
    }
}

/// Who sent an acknowledged publish: the user when authenticated (a retry
/// from another connection of the same user is a duplicate too), else the
/// session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An authenticated user.
    User(String),
    /// An anonymous session.
    Session(SessionId),
}

impl Sender {
    /// The sender behind `session`.
    pub fn of(session: &Session) -> Sender {
        match session.user() {
            Some(user) => Sender::User(user),
            None => Sender::Session(session.id()),
        }
    }
}

/// The answer to an acknowledged publish: the message's offset (its
/// history id) once durable, `None` when the hub keeps no history (the
/// message was handed to the room's members), or why it was not stored.
pub type Acked = Box<dyn FnOnce(Result<Option<u64>, StoreError>) + Send>;
/// The answer to a presence request.
pub type PresenceAnswer = Box<dyn FnOnce(Result<Vec<PresenceEntry>, StoreError>) + Send>;
/// The answer to a history request: the messages, oldest first.
pub type HistoryAnswer = Box<dyn FnOnce(Result<Vec<StoredMessage>, StoreError>) + Send>;
/// The second half of a resume ([`RoomEngine::resume`]): replays the
/// messages and joins the session.
pub type ResumeStep = Box<dyn FnOnce(Result<Resumed, StoreError>) + Send>;

/// What runs once a node follows a room ([`RoomEngine::follow`]).
pub type FollowStep = Box<dyn FnOnce() + Send>;

/// What a resume found: the messages after the client's id and whether
/// they are all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// The room's messages after the given id, oldest first.
    pub messages: Vec<StoredMessage>,
    /// False when some may be missing (the limit cut the replay, or
    /// retention removed some).
    pub complete: bool,
    /// The room's history epoch: it changes when the history was lost, so
    /// ids from another epoch mean nothing here.
    pub epoch: String,
}

/// An acknowledged publish: its sender and client id (the dedupe key), and
/// what to call with the outcome.
pub struct Ack {
    /// Who sent it.
    pub sender: Sender,
    /// The client's id for it ([`check_client_id`]).
    pub id: String,
    /// Called once with the outcome.
    pub done: Acked,
}

/// What a hub does with a room message and its membership. The hub calls
/// it from [`Hub::publish`] and [`Hub::publish_acked`] (`publish`),
/// [`Hub::resume`] (`resume`), [`Hub::history`] (`history`),
/// [`Hub::presence`] (`presence`), and on every change of a room's local
/// membership (`joined`, `left`: [`Hub::join`], [`Hub::leave`], a
/// session's end), always with no hub lock held. Its methods must not
/// block: an engine with I/O queues the work to a thread of its own and
/// answers from there. Members receive a message as [`Hub::deliver_stored`]
/// renders it, on every node.
pub trait RoomEngine: Send + Sync + 'static {
    /// The hub this engine serves, once, when it is built: an engine that
    /// delivers from a thread of its own keeps [`Hub::weak`].
    fn attach(&self, hub: &Hub);

    /// Store `message` (when the engine keeps history), then deliver it to
    /// the room's members ([`Hub::deliver_stored`] on every node), in one
    /// order per room. With `ack`, a retry of the same sender and id within
    /// [`DEDUPE_TTL`] is acknowledged with the first one's offset and
    /// neither stored nor delivered again. `Err`: nothing was queued (`ack`
    /// is not called).
    fn publish(&self, hub: &Hub, message: NewMessage, ack: Option<Ack>) -> Result<(), StoreError>;

    /// Read `room`'s messages after `since` (at most `limit`) and call
    /// `then` with them at a point of the room's order such that every
    /// later message is delivered after `then` returns (`then` joins the
    /// session): a resume misses nothing and repeats nothing. `Err`:
    /// nothing was queued.
    fn resume(
        &self,
        hub: &Hub,
        room: &str,
        since: u64,
        limit: usize,
        then: ResumeStep,
    ) -> Result<(), StoreError>;

    /// Make sure this node receives `room`'s messages, then call `then`
    /// (which joins a session): every message published after `then` ran
    /// reaches the room's members here. `then` is called exactly once; if
    /// the engine cannot follow the room now (its backend is away, its
    /// queue full), at once.
    fn follow(&self, hub: &Hub, room: &str, then: FollowStep);

    /// Keep receiving `room`'s messages on this node for at least `ttl`,
    /// members or not: a listener beside the hub's sessions (the HTTP
    /// layer's long polls, through a [`BroadcastObserver`](crate::BroadcastObserver))
    /// renews it while it listens.
    fn watch(&self, hub: &Hub, room: &str, ttl: Duration);

    /// The last `limit` messages of `room` below `before` (all, when
    /// `None`), oldest first. `Err`: nothing was queued.
    fn history(
        &self,
        hub: &Hub,
        room: &str,
        limit: usize,
        before: Option<u64>,
        answer: HistoryAnswer,
    ) -> Result<(), StoreError>;

    /// Every session in `room` (on every node), sorted by id.
    fn presence(&self, hub: &Hub, room: &str, answer: PresenceAnswer);

    /// `session` joined `room` on this hub.
    fn joined(&self, hub: &Hub, room: &str, session: &Session);

    /// `session` left `room` on this hub (or ended while in it).
    fn left(&self, hub: &Hub, room: &str, session: &Session);
}

/// The default engine: one process. History in the hub's store (messages
/// are delivered once appended, in id order), presence from the hub's
/// rooms, and a table of the acknowledged ids of the last [`DEDUPE_TTL`],
/// at most [`DEDUPE_MAX_ENTRIES`]: when full, the oldest id is forgotten
/// early (a retry of it would be stored again).
pub struct EmbeddedEngine {
    dedupe: Arc<Mutex<Dedupe>>,
}

impl Default for EmbeddedEngine {
    fn default() -> Self {
        EmbeddedEngine::with_dedupe(DEDUPE_TTL, DEDUPE_MAX_ENTRIES)
    }
}

impl EmbeddedEngine {
    /// An engine remembering acknowledged ids for `ttl`, at most
    /// `max_entries` of them (at least one).
    pub fn with_dedupe(ttl: Duration, max_entries: usize) -> Self {
        EmbeddedEngine {
            dedupe: Arc::new(Mutex::new(Dedupe {
                slots: HashMap::new(),
                order: VecDeque::new(),
                ttl,
                max: max_entries.max(1),
                next: 0,
            })),
        }
    }

    /// Ids remembered now.
    pub fn remembered(&self) -> usize {
        lock(&self.dedupe).slots.len()
    }
}

fn lock(dedupe: &Mutex<Dedupe>) -> MutexGuard<'_, Dedupe> {
    dedupe.lock().unwrap_or_else(PoisonError::into_inner)
}

type Key = (Sender, String);

struct Dedupe {
    slots: HashMap<Key, Slot>,
    /// Keys in the order remembered, with their time and generation.
    order: VecDeque<(Instant, u64, Key)>,
    ttl: Duration,
    max: usize,
    next: u64,
}

struct Slot {
    gen: u64,
    state: State,
}

enum State {
    /// Not durable yet: the retries waiting for its outcome.
    Waiting(Vec<Acked>),
    Done(Option<u64>),
}

/// What [`Dedupe::claim`] decided for an acknowledged publish.
enum Claim {
    /// A new id, remembered as generation `u64`: publish it.
    New(u64),
    /// A retry of a publish acknowledged with this offset.
    Done(Option<u64>),
    /// A retry of one in flight: it waits for that one's outcome.
    Waiting,
    /// A retry of one in flight that already has [`DEDUPE_MAX_WAITING`]
    /// retries waiting.
    Busy,
}

impl Dedupe {
    /// Forget expired ids, then claim `key` (a retry's `done` is kept, to
    /// answer when the first one's outcome is known). Also returns the
    /// retries waiting on ids forgotten early, to be told `Busy` once the
    /// lock is released.
    fn claim(&mut self, key: &Key, done: &mut Option<Acked>, now: Instant) -> (Claim, Vec<Acked>) {
        let mut orphans = Vec::new();
        while let Some((at, ..)) = self.order.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            orphans.extend(self.pop_oldest());
        }
        if let Some(slot) = self.slots.get_mut(key) {
            let claim = match &mut slot.state {
                State::Done(offset) => Claim::Done(*offset),
                State::Waiting(waiting) if waiting.len() >= DEDUPE_MAX_WAITING => Claim::Busy,
                State::Waiting(waiting) => {
                    waiting.extend(done.take());
                    Claim::Waiting
                }
            };
            return (claim, orphans);
        }
        // The FIFO holds every remembered id (and those forgotten after a
        // failure, until their turn): bounding it bounds both.
        while self.order.len() >= self.max {
            orphans.extend(self.pop_oldest());
        }
        let gen = self.next;
        self.next += 1;
        self.order.push_back((now, gen, key.clone()));
        let state = State::Waiting(Vec::new());
        self.slots.insert(key.clone(), Slot { gen, state });
        (Claim::New(gen), orphans)
    }

    /// Forget the oldest id; the retries that waited on it.
    fn pop_oldest(&mut self) -> Vec<Acked> {
        let Some((_, gen, key)) = self.order.pop_front() else {
            return Vec::new();
        };
        match self.slots.entry(key) {
            Entry::Occupied(slot) if slot.get().gen == gen => match slot.remove().state {
                State::Waiting(waiting) => waiting,
                State::Done(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The outcome of generation `gen` of `key`: remember its offset (or
    /// forget it after a failure, so a retry tries again); the retries
    /// that waited for it.
    fn settle(
        &mut self,
        key: &Key,
        gen: u64,
        outcome: &Result<Option<u64>, StoreError>,
    ) -> Vec<Acked> {
        let Some(slot) = self.slots.get_mut(key).filter(|slot| slot.gen == gen) else {
            return Vec::new(); // forgotten at the cap: its retries were told
        };
        let waiting = match outcome {
            Ok(offset) => std::mem::replace(&mut slot.state, State::Done(*offset)),
            Err(_) => match self.slots.remove(key) {
                Some(slot) => slot.state,
                None => return Vec::new(),
            },
        };
        match waiting {
            State::Waiting(waiting) => waiting,
            State::Done(_) => Vec::new(),
        }
    }
}

/// Answers an acknowledged publish and its retries, once.
struct Settle {
    dedupe: Arc<Mutex<Dedupe>>,
    key: Key,
    gen: u64,
    done: Acked,
}

impl Settle {
    fn finish(self, outcome: Result<Option<u64>, StoreError>) {
        let waiting = lock(&self.dedupe).settle(&self.key, self.gen, &outcome);
        for retry in waiting {
            retry(outcome.clone());
        }
        (self.done)(outcome);
    }
}

impl RoomEngine for EmbeddedEngine {
    fn attach(&self, hub: &Hub) {
        hub.metrics().engine.up.set(1); // in process: always reachable
    }

    fn publish(&self, hub: &Hub, message: NewMessage, ack: Option<Ack>) -> Result<(), StoreError> {
        let settle = match ack {
            None => None,
            Some(Ack { sender, id, done }) => {
                let key = (sender, id);
                let mut retry = Some(done);
                let (claim, orphans) = lock(&self.dedupe).claim(&key, &mut retry, Instant::now());
                for orphan in orphans {
                    orphan(Err(StoreError::Busy));
                }
                match claim {
                    Claim::Done(offset) => {
                        if let Some(done) = retry {
                            done(Ok(offset));
                        }
                        return Ok(());
                    }
                    Claim::Waiting => return Ok(()),
                    Claim::Busy => {
                        if let Some(done) = retry {
                            done(Err(StoreError::Busy));
                        }
                        return Ok(());
                    }
                    Claim::New(gen) => retry.map(|done| Settle {
                        dedupe: self.dedupe.clone(),
                        key,
                        gen,
                        done,
                    }),
                }
            }
        };
        let Some(store) = hub.store() else {
            // No history: a plain publish is refused (nothing could replay
            // it); an acknowledged one is handed to the members now and
            // acknowledged without an offset.
            let Some(settle) = settle else {
                return Err(StoreError::NoStore);
            };
            hub.metrics().engine.delivered.inc();
            hub.deliver_stored(&message.stored(0));
            settle.finish(Ok(None));
            return Ok(());
        };
        // If the append is not queued, the closure is dropped uncalled:
        // the id is forgotten here and its retries told.
        let forget = settle
            .as_ref()
            .map(|s| (s.dedupe.clone(), s.key.clone(), s.gen));
        let weak = hub.downgrade();
        let started = Instant::now();
        let queued = store.append(message, move |result| {
            let outcome = match weak.upgrade().map(Hub::from_inner) {
                Some(hub) => {
                    let metrics = hub.metrics();
                    match result {
                        Ok(stored) => {
                            metrics.store_appends.inc();
                            let micros =
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            metrics.store_append_latency_us.add(micros);
                            metrics.engine.delivered.inc();
                            hub.deliver_stored(&stored);
                            Ok(Some(stored.id))
                        }
                        Err(error) => {
                            metrics.store_append_errors.inc();
                            Err(error)
                        }
                    }
                }
                None => result.map(|stored| Some(stored.id)),
            };
            if let Some(settle) = settle {
                settle.finish(outcome);
            }
        });
        if let Err(error) = &queued {
            hub.metrics().store_append_errors.inc();
            if let Some((dedupe, key, gen)) = forget {
                let waiting = lock(&dedupe).settle(&key, gen, &Err(error.clone()));
                for retry in waiting {
                    retry(Err(error.clone()));
                }
            }
        }
        queued
    }

    fn resume(
        &self,
        hub: &Hub,
        room: &str,
        since: u64,
        limit: usize,
        then: ResumeStep,
    ) -> Result<(), StoreError> {
        let store = hub.store().ok_or(StoreError::NoStore)?;
        // On the store's thread, after every append queued before it and
        // before the deliveries of those queued after (they are delivered
        // from that thread too).
        let room = room.to_owned();
        store.call(move |store| {
            let resumed = store
                .replay_from(since, Some(&room), limit)
                .and_then(|replay| {
                    Ok(Resumed {
                        messages: replay.messages,
                        complete: replay.complete,
                        epoch: store.epoch()?,
                    })
                });
            then(resumed);
        })
    }

    fn follow(&self, _: &Hub, _: &str, then: FollowStep) {
        then(); // one process: every room is followed
    }

    fn watch(&self, _: &Hub, _: &str, _: Duration) {}

    fn history(
        &self,
        hub: &Hub,
        room: &str,
        limit: usize,
        before: Option<u64>,
        answer: HistoryAnswer,
    ) -> Result<(), StoreError> {
        let store = hub.store().ok_or(StoreError::NoStore)?;
        store.list_by_room(room, limit, before, answer)
    }

    fn presence(&self, hub: &Hub, room: &str, answer: PresenceAnswer) {
        answer(Ok(hub.local_presence(room)));
    }

    fn joined(&self, hub: &Hub, room: &str, session: &Session) {
        if hub.presence_events() {
            presence_event(hub, "presence.join", room, session);
        }
    }

    fn left(&self, hub: &Hub, room: &str, session: &Session) {
        if hub.presence_events() {
            presence_event(hub, "presence.leave", room, session);
        }
    }
}

/// Send `{"type":kind,"payload":{"room":R,"id":..,"user":..,"node":..}}`
/// about `session` to the other members of `room` (a session that joins
/// asks for the list instead: [`Hub::presence`]).
pub fn presence_event(hub: &Hub, kind: &str, room: &str, session: &Session) {
    let entry = PresenceEntry::of(hub, session);
    let payload = json!({"room": room, "id": entry.id, "user": entry.user, "node": entry.node});
    hub.room_json(room, kind, payload, Some(session));
}

impl Hub {
    /// Store `envelope` as a message of `room` and deliver it to its
    /// members, like [`publish`](Self::publish), and answer `ack.done` with the message's offset (its history id)
    /// once it is durable. The same sender and id again within
    /// [`DEDUPE_TTL`] is answered with the same offset (once the first is
    /// durable) and neither stored nor delivered again; after a failure
    /// the id is forgotten, so a retry tries again. Without a store the
    /// message is delivered at once and acknowledged with `None` (nothing
    /// is durable; duplicates are still dropped). `Err`: nothing was
    /// queued and `ack.done` is not called.
    pub fn publish_acked(
        &self,
        room: &str,
        envelope: crate::Envelope,
        ack: Ack,
    ) -> Result<(), StoreError> {
        let message = NewMessage::from_envelope(room, envelope);
        self.inner().engine.publish(self, message, Some(ack))
    }

    /// Who is in `room` (on every node the engine spans), sorted by id:
    /// `answer` is called once, maybe later and on another thread. Room
    /// authorization is the caller's ([`Hub::admit_to_room`]).
    pub fn presence(
        &self,
        room: &str,
        answer: impl FnOnce(Result<Vec<PresenceEntry>, StoreError>) + Send + 'static,
    ) {
        self.inner().engine.presence(self, room, Box::new(answer));
    }

    /// Keep this node receiving `room`'s messages for at least `ttl` even
    /// without members here ([`RoomEngine::watch`]): for listeners beside
    /// the sessions, such as long polls of `room:R`, which renew it.
    pub fn watch_room(&self, room: &str, ttl: Duration) {
        self.inner().engine.watch(self, room, ttl);
    }

    /// This node's name in presence ([`HubBuilder::node_id`](crate::HubBuilder::node_id)).
    pub fn node_id(&self) -> String {
        self.inner()
            .node_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rename this node (e.g. after binding, to its `host:port`).
    pub fn set_node_id(&self, node: impl Into<String>) {
        *self
            .inner()
            .node_id
            .write()
            .unwrap_or_else(PoisonError::into_inner) = node.into();
    }

    /// Whether members hear `presence.join` and `presence.leave`
    /// ([`HubBuilder::presence_events`](crate::HubBuilder::presence_events)).
    pub fn presence_events(&self) -> bool {
        self.inner().presence_events
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use hubbub_core::CloseCode;
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        hub::tests::texts,
        session::SessionInfo,
        store::{MemoryStore, WorkerConfig},
        Envelope, HubBuilder, MessageStore, Replay, StoreWorker,
    };

    const WAIT: Duration = Duration::from_secs(10);

    type Outcomes = mpsc::Receiver<Result<Option<u64>, StoreError>>;

    fn ack(session: &Session, id: &str) -> (Ack, Outcomes) {
        let (tx, rx) = mpsc::channel();
        let ack = Ack {
            sender: Sender::of(session),
            id: id.into(),
            done: Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        };
        (ack, rx)
    }

    fn send(hub: &Hub, session: &Session, id: &str, text: &str) -> Outcomes {
        let (ack, rx) = ack(session, id);
        let text = text.to_owned();
        hub.publish_acked("dev", Envelope::new("m", json!(text)), ack)
            .unwrap();
        rx
    }

    /// A hub whose members receive `ID: PAYLOAD`.
    fn builder() -> HubBuilder {
        Hub::builder().render(|m| format!("{}: {}", m.id, m.payload))
    }

    fn with_store(store: impl MessageStore) -> Hub {
        let handle = StoreWorker::spawn(store, WorkerConfig::default()).unwrap();
        builder().store(handle).build()
    }

    #[test]
    fn acked_publishes_answer_the_offset_once_durable_and_drop_retries() {
        let hub = with_store(MemoryStore::default());
        let [a, b] = [(); 2].map(|_| hub.open(SessionInfo::default()).unwrap());
        hub.join(&b, "dev");
        let first = send(&hub, &a, "m-1", "one");
        assert_eq!(first.recv_timeout(WAIT).unwrap(), Ok(Some(1)));
        assert_eq!(texts(&b), [r#"1: "one""#], "delivered before the ack");
        // A retry: the same offset, not stored or delivered again.
        let retry = send(&hub, &a, "m-1", "one");
        assert_eq!(retry.recv_timeout(WAIT).unwrap(), Ok(Some(1)));
        // Another id, and the same id from another session: new messages.
        assert_eq!(
            send(&hub, &a, "m-2", "two").recv_timeout(WAIT).unwrap(),
            Ok(Some(2))
        );
        assert_eq!(
            send(&hub, &b, "m-1", "three").recv_timeout(WAIT).unwrap(),
            Ok(Some(3))
        );
        assert_eq!(texts(&b), [r#"1: "one""#, r#"2: "two""#, r#"3: "three""#]);
        assert_eq!(hub.metrics().store_appends.get(), 3);
    }

    /// A store whose appends wait for the test.
    struct Gated(MemoryStore, mpsc::Receiver<()>);

    impl MessageStore for Gated {
        fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
            self.1.recv_timeout(WAIT).map_err(|_| StoreError::Closed)?;
            self.0.append(batch)
        }
        fn list_by_room(
            &mut self,
            room: &str,
            limit: usize,
            before: Option<u64>,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            self.0.list_by_room(room, limit, before)
        }
        fn replay_from(
            &mut self,
            after: u64,
            room: Option<&str>,
            limit: usize,
        ) -> Result<Replay, StoreError> {
            self.0.replay_from(after, room, limit)
        }
        fn epoch(&mut self) -> Result<String, StoreError> {
            self.0.epoch()
        }
    }

    #[test]
    fn a_retry_while_the_first_is_in_flight_waits_for_its_offset() {
        let (open, gate) = mpsc::channel();
        let hub = with_store(Gated(MemoryStore::default(), gate));
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.join(&a, "dev");
        let first = send(&hub, &a, "x", "one");
        let retry = send(&hub, &a, "x", "one");
        assert!(
            first.try_recv().is_err() && retry.try_recv().is_err(),
            "not durable yet"
        );
        let more: Vec<Outcomes> = (0..DEDUPE_MAX_WAITING)
            .map(|_| send(&hub, &a, "x", "one"))
            .collect();
        assert_eq!(
            more.last().unwrap().try_recv(),
            Ok(Err(StoreError::Busy)),
            "no more than {DEDUPE_MAX_WAITING} retries wait"
        );
        open.send(()).unwrap();
        assert_eq!(first.recv_timeout(WAIT).unwrap(), Ok(Some(1)));
        assert_eq!(retry.recv_timeout(WAIT).unwrap(), Ok(Some(1)));
        for waited in &more[..DEDUPE_MAX_WAITING - 1] {
            assert_eq!(waited.recv_timeout(WAIT).unwrap(), Ok(Some(1)));
        }
        assert_eq!(texts(&a), [r#"1: "one""#], "delivered once");
    }

    use crate::store::testing::Broken;

    #[test]
    fn a_failed_publish_is_reported_and_its_id_forgotten() {
        let hub = with_store(Broken);
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.join(&a, "dev");
        let failed = Err(StoreError::Backend("disk on fire".into()));
        assert_eq!(
            send(&hub, &a, "x", "one").recv_timeout(WAIT).unwrap(),
            failed
        );
        assert_eq!(
            send(&hub, &a, "x", "one").recv_timeout(WAIT).unwrap(),
            failed,
            "tried again"
        );
        assert!(texts(&a).is_empty());
        assert_eq!(hub.metrics().store_append_errors.get(), 2);
    }

    #[test]
    fn without_a_store_acked_publishes_are_delivered_at_once_without_an_offset() {
        let hub = builder().build();
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.join(&a, "dev");
        assert_eq!(send(&hub, &a, "x", "one").try_recv(), Ok(Ok(None)));
        assert_eq!(send(&hub, &a, "x", "one").try_recv(), Ok(Ok(None)));
        assert_eq!(texts(&a), [r#"0: "one""#], "delivered once");
        assert_eq!(
            hub.publish("dev", Envelope::new("m", Value::Null)),
            Err(StoreError::NoStore),
            "a plain publish still needs a store"
        );
    }

    #[test]
    fn join_then_on_the_embedded_engine_joins_and_answers_at_once() {
        let hub = builder().build();
        let a = hub.open(SessionInfo::default()).unwrap();
        let answer = |room: &str| {
            let (tx, rx) = mpsc::channel();
            hub.join_then(&a, room, move |joined| tx.send(joined).unwrap());
            rx.try_recv().expect("answered at once")
        };
        assert_eq!(answer("dev"), Ok(true));
        assert_eq!(answer("dev"), Ok(false), "already a member");
        assert_eq!(answer(""), Err(crate::JoinError::EmptyRoomName));
        assert_eq!(hub.members("dev"), [a.id()]);
    }

    #[test]
    fn the_dedupe_table_is_bounded_by_age_and_size() {
        let handle = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
        let hub = builder()
            .store(handle)
            .engine(EmbeddedEngine::with_dedupe(DEDUPE_TTL, 2))
            .build();
        let a = hub.open(SessionInfo::default()).unwrap();
        for (id, offset) in [("a", 1), ("b", 2), ("c", 3), ("a", 4), ("c", 3)] {
            let got = send(&hub, &a, id, id).recv_timeout(WAIT).unwrap();
            assert_eq!(
                got,
                Ok(Some(offset)),
                "{id}: at the cap the oldest is forgotten"
            );
        }
        let engine = EmbeddedEngine::with_dedupe(Duration::ZERO, 10);
        let hub = builder().engine(engine).build();
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.join(&a, "dev");
        send(&hub, &a, "x", "one");
        send(&hub, &a, "x", "one");
        assert_eq!(texts(&a).len(), 2, "expired at once: stored again");
        assert!(check_client_id(&"é".repeat(64)).is_ok());
        let error = check_client_id(&"x".repeat(65)).unwrap_err();
        assert!(
            error.starts_with("id: expected a string of 1 to 64 characters"),
            "{error}"
        );
        assert!(check_client_id("").is_err());
    }

    fn events(session: &Session) -> Vec<Value> {
        texts(session)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }

    #[test]
    fn presence_lists_the_room_sorted_and_events_follow_joins_and_leaves() {
        let hub = builder().node_id("n1").presence_events(true).build();
        let [a, b, c] = [(); 3].map(|_| hub.open(SessionInfo::default()).unwrap());
        hub.join(&c, "dev");
        hub.join(&a, "dev");
        hub.join(&b, "ops");
        let (tx, rx) = mpsc::channel();
        hub.presence("dev", move |list| tx.send(list).unwrap());
        let list = rx.recv_timeout(WAIT).unwrap().unwrap();
        let entry = |id| PresenceEntry {
            id,
            user: None,
            node: "n1".into(),
        };
        assert_eq!(list, [entry(a.id()), entry(c.id())]);
        assert_eq!(
            serde_json::to_value(&list[0]).unwrap(),
            json!({"id": a.id(), "user": null, "node": "n1"})
        );
        let event = |kind: &str, who: &Session| json!({"type": kind, "payload": {"room": "dev", "id": who.id(), "user": null, "node": "n1"}});
        assert_eq!(events(&c), [event("presence.join", &a)], "not its own");
        hub.leave(&a, "dev");
        hub.join(&b, "dev");
        hub.closed(&b, CloseCode::NORMAL, "");
        assert_eq!(
            events(&c)[1..],
            [
                event("presence.leave", &a),
                event("presence.join", &b),
                event("presence.leave", &b)
            ]
        );
        assert!(events(&a).is_empty(), "not a member after leaving");

        let quiet = builder().build();
        let [a, b] = [(); 2].map(|_| quiet.open(SessionInfo::default()).unwrap());
        quiet.join(&a, "dev");
        quiet.join(&b, "dev");
        quiet.leave(&b, "dev");
        assert!(texts(&a).is_empty(), "no events unless enabled");
        assert_eq!(
            quiet.local_presence("dev"),
            [PresenceEntry {
                id: a.id(),
                user: None,
                node: "local".into()
            }]
        );
    }

    #[test]
    fn a_resume_by_a_member_is_no_presence_change() {
        let handle = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
        let hub = builder().store(handle).presence_events(true).build();
        let [a, b] = [(); 2].map(|_| hub.open(SessionInfo::default()).unwrap());
        hub.join(&a, "dev");
        hub.join(&b, "dev");
        hub.resume(&b, "dev", 0, 10).unwrap();
        let (tx, rx) = mpsc::channel();
        hub.store()
            .unwrap()
            .call(move |_| tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap();
        let kinds: Vec<Value> = events(&a).iter().map(|e| e["type"].clone()).collect();
        assert_eq!(kinds, ["presence.join"], "b's join only, once");
        assert_eq!(hub.local_presence("dev").len(), 2);
    }
}

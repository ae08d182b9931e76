//! # hubbub-redis
//!
//! A [`RoomEngine`] that lets one room span many hubbub processes through
//! Redis: a message published on any node reaches the room's members on
//! every node, in one order per room; each room's history is a Redis stream
//! whose ids are the offsets clients see, so `room.join` with `since`
//! resumes on any node; presence lists every node's members; acknowledged
//! publishes are deduplicated in Redis.
//!
//! ```no_run
//! use hubbub_hub::Hub;
//! use hubbub_redis::{RedisConfig, RedisEngine};
//!
//! let engine = RedisEngine::start(RedisConfig::new("redis://127.0.0.1:6379")).unwrap();
//! let hub = Hub::builder().engine(engine).build();
//! # drop(hub);
//! ```
//!
//! The Redis client (redis-rs, over RESP3) runs on a thread of its own with
//! a current-thread tokio runtime, so nodes on tokio, smol or mio use it
//! alike; the hub reaches it through a bounded queue, and never waits for
//! it.
//!
//! - **Publish**: one Lua script per message, atomic: dedupe, `INCR` of the
//!   room's offset, `XADD` to its log (stream id `0-<offset>`, capped by
//!   length and age), `PUBLISH` on its channel. Delivery to the members of
//!   every node, the publisher's included, comes from the channel, so all
//!   nodes deliver in offset order.
//! - **Fan-out**: a node subscribes to a room's channel while it has local
//!   members. It keeps the last offset it delivered per room: a gap (a lost
//!   notification, a reconnect) is filled from the log before the next
//!   live message, and a duplicate is dropped.
//! - **Resume**: read the log after the client's id up to the last offset
//!   delivered here, then join: later messages arrive live.
//! - **Presence**: a sorted set per room, entries scored by their expiry
//!   and refreshed every third of [`RedisConfig::presence_ttl`], so a dead
//!   node's entries vanish within the TTL.
//! - **Epoch**: a random value per room, made with its keys; if Redis loses
//!   the room, the next one differs and resumes report it.
//! - **Failures**: while Redis is unreachable, publishes are refused at once
//!   with an error naming Redis (the hub's local rooms keep working for
//!   joins and direct sends); the client reconnects with backoff, then the
//!   node resubscribes and fills every room's gap from the log.
#![forbid(unsafe_code)]

mod keys;
mod node;
mod script;
mod wire;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, PoisonError,
    },
    time::{Duration, Instant},
};

use hubbub_hub::{
    engine::{FollowStep, HistoryAnswer, PresenceAnswer, ResumeStep, Sender},
    Ack, Hub, NewMessage, PresenceEntry, RoomEngine, Session, SessionId, StoreError, WeakHub,
};
use tokio::sync::{mpsc, Notify};

/// How a [`RedisEngine`] reaches Redis and keeps rooms there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]` (`rediss://` is not supported).
    pub url: String,
    /// Prefix of every key and channel (default `hubbub`): nodes that share
    /// rooms use the same one.
    pub prefix: String,
    /// Messages kept per room's log, about (default 10 000; Redis trims
    /// whole blocks, so a few more may stay).
    pub log_max_len: u64,
    /// Age after which a room's messages leave its log (default 24 hours;
    /// `None`: kept until the length cap).
    pub log_max_age: Option<Duration>,
    /// How long a node's presence entries outlive its last heartbeat
    /// (default 30 s): a node that died drops out of presence within this.
    pub presence_ttl: Duration,
    /// Requests that may wait for the engine's thread (default 4096); more
    /// are refused with [`StoreError::Busy`].
    pub queue: usize,
}

impl RedisConfig {
    /// The defaults, with `url`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            prefix: "hubbub".into(),
            log_max_len: 10_000,
            log_max_age: Some(Duration::from_secs(24 * 3600)),
            presence_ttl: Duration::from_secs(30),
            queue: 4096,
        }
    }
}

/// The Redis room engine (see the [crate] documentation). Dropping it (with
/// its hub) stops its thread.
pub struct RedisEngine {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    publishes: mpsc::Sender<Publish>,
    /// Told when the thread has withdrawn this node's presence and ended.
    stopped: Mutex<std::sync::mpsc::Receiver<()>>,
}

/// How long dropping the engine waits for its thread to withdraw this
/// node's presence entries (otherwise they expire with the TTL).
pub const STOP_WAIT: Duration = Duration::from_millis(500);

impl Drop for RedisEngine {
    /// Stop the thread: it removes this node's presence entries (a node
    /// that stops cleanly leaves presence at once) and ends; waits for that
    /// at most [`STOP_WAIT`].
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = stopped.recv_timeout(STOP_WAIT);
    }
}

/// What the engine's thread and the hub's threads share.
pub(crate) struct Shared {
    pub(crate) config: RedisConfig,
    pub(crate) hub: OnceLock<WeakHub>,
    /// Local members of each room (what presence and subscriptions
    /// follow), and the rooms changed since the thread last looked.
    pub(crate) membership: Mutex<Membership>,
    /// Wakes the thread when `membership` changed.
    pub(crate) wake: Notify,
    /// Redis answered the last request.
    pub(crate) up: AtomicBool,
    /// This process's random name (see [`sender_key`]).
    pub(crate) process: String,
    /// The engine was dropped: the thread withdraws presence and ends.
    pub(crate) closing: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Membership {
    pub(crate) rooms: HashMap<String, BTreeMap<SessionId, PresenceEntry>>,
    /// Rooms followed without members here, until when ([`RoomEngine::watch`]).
    pub(crate) watched: HashMap<String, Instant>,
    pub(crate) dirty: HashSet<String>,
}

impl Membership {
    /// Whether this node should follow `room` now.
    pub(crate) fn follows(&self, room: &str, now: Instant) -> bool {
        self.rooms.contains_key(room) || self.watched.get(room).is_some_and(|until| *until > now)
    }

    /// Forget the watches that ran out, marking their rooms changed.
    pub(crate) fn expire_watches(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .watched
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(room, _)| room.clone())
            .collect();
        for room in expired {
            self.watched.remove(&room);
            self.dirty.insert(room);
        }
    }
}

impl Shared {
    pub(crate) fn hub(&self) -> Option<Hub> {
        self.hub.get().and_then(WeakHub::upgrade)
    }

    pub(crate) fn membership(&self) -> MutexGuard<'_, Membership> {
        self.membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Mark `room` for the thread to look at again.
    pub(crate) fn touch(&self, room: &str) {
        self.membership().dirty.insert(room.to_owned());
        self.wake.notify_one();
    }

    /// Record whether Redis answered.
    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
        if let Some(hub) = self.hub() {
            hub.metrics().engine.up.set(u64::from(up));
        }
    }
}

/// A message to publish, with its sender's dedupe name and ack.
pub(crate) struct Publish {
    pub(crate) message: NewMessage,
    pub(crate) ack: Option<(String, Ack)>,
    pub(crate) queued: Instant,
}

/// A request for the engine's thread.
pub(crate) enum Command {
    Resume(String, u64, usize, ResumeStep),
    Follow(String, FollowStep),
    History(String, usize, Option<u64>, HistoryAnswer),
    Presence(String, PresenceAnswer),
}

impl RedisEngine {
    /// Start the engine's thread. Redis need not be reachable yet: the
    /// engine connects in the background and refuses publishes until it
    /// is. `Err`: the URL is not a Redis URL, or the thread could not
    /// start.
    pub fn start(config: RedisConfig) -> io::Result<RedisEngine> {
        let client = node::client(&config.url).map_err(io::Error::other)?;
        let (commands, queue) = mpsc::channel(config.queue.max(1));
        let (publishes, publish_queue) = mpsc::channel(config.queue.max(1));
        let shared = Arc::new(Shared {
            config,
            hub: OnceLock::new(),
            membership: Mutex::default(),
            wake: Notify::new(),
            up: AtomicBool::new(false),
            process: hubbub_hub::store::new_epoch(),
            closing: AtomicBool::new(false),
        });
        let (done, stopped) = std::sync::mpsc::channel();
        node::spawn(client, shared.clone(), queue, publish_queue, done)?;
        Ok(RedisEngine {
            shared,
            commands,
            publishes,
            stopped: Mutex::new(stopped),
        })
    }

    /// Whether Redis answered the engine's last request.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Relaxed)
    }

    /// Queue `command`; `Err` gives it back with the reason.
    fn queue(&self, hub: &Hub, command: Command) -> Result<(), (StoreError, Command)> {
        self.commands.try_send(command).map_err(refused)?;
        hub.metrics().engine.queued.inc();
        Ok(())
    }

    fn send(&self, hub: &Hub, command: Command) -> Result<(), StoreError> {
        self.queue(hub, command).map_err(|(error, _)| error)
    }

    /// `Err` naming Redis while it is unreachable.
    fn check_up(&self) -> Result<(), StoreError> {
        if self.is_up() {
            return Ok(());
        }
        Err(StoreError::Backend(format!(
            "Redis unreachable at {}",
            self.shared.config.url
        )))
    }
}

/// Why a queue refused, and what it refused: full is [`StoreError::Busy`],
/// closed (the thread ended) [`StoreError::Closed`].
fn refused<T>(error: mpsc::error::TrySendError<T>) -> (StoreError, T) {
    match error {
        mpsc::error::TrySendError::Full(item) => (StoreError::Busy, item),
        mpsc::error::TrySendError::Closed(item) => (StoreError::Closed, item),
    }
}

/// The dedupe name of a sender: users by name, sessions by node, process
/// and id (session ids restart with the process: a restarted node's
/// session 1 is not the one before).
fn sender_key(hub: &Hub, process: &str, sender: &Sender) -> String {
    match sender {
        Sender::User(user) => format!("user:{user}"),
        Sender::Session(id) => format!("session:{}:{process}:{id}", hub.node_id()),
    }
}

impl RoomEngine for RedisEngine {
    fn attach(&self, hub: &Hub) {
        let _ = self.shared.hub.set(hub.weak());
        let up = self.is_up();
        hub.metrics().engine.up.set(u64::from(up));
    }

    fn publish(&self, hub: &Hub, message: NewMessage, ack: Option<Ack>) -> Result<(), StoreError> {
        self.check_up()?;
        let process = &self.shared.process;
        let ack = ack.map(|ack| (sender_key(hub, process, &ack.sender), ack));
        let publish = Publish {
            message,
            ack,
            queued: Instant::now(),
        };
        self.publishes
            .try_send(publish)
            .map_err(|error| refused(error).0)?;
        hub.metrics().engine.queued.inc();
        Ok(())
    }

    fn resume(
        &self,
        hub: &Hub,
        room: &str,
        since: u64,
        limit: usize,
        then: ResumeStep,
    ) -> Result<(), StoreError> {
        self.check_up()?;
        self.send(hub, Command::Resume(room.to_owned(), since, limit, then))
    }

    fn follow(&self, hub: &Hub, room: &str, then: FollowStep) {
        if self.check_up().is_err() {
            return then(); // local only until Redis is back
        }
        let command = Command::Follow(room.to_owned(), then);
        if let Err((_, Command::Follow(_, then))) = self.queue(hub, command) {
            then();
        }
    }

    fn watch(&self, _: &Hub, room: &str, ttl: Duration) {
        let now = Instant::now();
        let mut membership = self.shared.membership();
        let was_followed = membership.follows(room, now);
        membership.watched.insert(room.to_owned(), now + ttl);
        if !was_followed {
            membership.dirty.insert(room.to_owned());
            drop(membership);
            self.shared.wake.notify_one();
        }
    }

    fn history(
        &self,
        hub: &Hub,
        room: &str,
        limit: usize,
        before: Option<u64>,
        answer: HistoryAnswer,
    ) -> Result<(), StoreError> {
        self.check_up()?;
        self.send(
            hub,
            Command::History(room.to_owned(), limit, before, answer),
        )
    }

    fn presence(&self, hub: &Hub, room: &str, answer: PresenceAnswer) {
        if let Err(error) = self.check_up() {
            return answer(Err(error));
        }
        let command = Command::Presence(room.to_owned(), answer);
        if let Err((error, Command::Presence(_, answer))) = self.queue(hub, command) {
            answer(Err(error));
        }
    }

    fn joined(&self, hub: &Hub, room: &str, session: &Session) {
        let entry = PresenceEntry::of(hub, session);
        let mut membership = self.shared.membership();
        let members = membership.rooms.entry(room.to_owned()).or_default();
        members.insert(session.id(), entry);
        membership.dirty.insert(room.to_owned());
        drop(membership);
        self.shared.wake.notify_one();
    }

    fn left(&self, _: &Hub, room: &str, session: &Session) {
        let mut membership = self.shared.membership();
        if let Some(members) = membership.rooms.get_mut(room) {
            members.remove(&session.id());
            if members.is_empty() {
                membership.rooms.remove(room);
            }
        }
        membership.dirty.insert(room.to_owned());
        drop(membership);
        self.shared.wake.notify_one();
    }
}

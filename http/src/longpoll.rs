//! Long-polling sessions: bounded FIFOs of envelopes that HTTP clients
//! drain with `GET /ws/poll`, held until a message arrives.
//!
//! A message pushed while polls of its session are held goes to every one
//! of them (each held poll has a mailbox), so several clients polling
//! `room:R` all see R's live messages; a message pushed while none is held
//! waits in the session's FIFO for the next poll.
//!
//! A queued message is its JSON, serialized once and shared ([`Message`]):
//! the session's FIFO and every held poll's mailbox hold the same bytes,
//! and a poll's answer is assembled from them. What is queued is bounded
//! by count ([`LongPollConfig::capacity`]) and by bytes, per session
//! ([`LongPollConfig::max_session_bytes`], also per held poll's mailbox)
//! and over all sessions ([`LongPollConfig::max_total_bytes`]: a message's
//! bytes count until its last copy is gone); one poll's answer carries at
//! most [`LongPollConfig::max_poll_bytes`] (and at least one message).
//!
//! A session is created by its first poll or its first message and expires
//! [`LongPollConfig::ttl`] after it was last polled (or created). Expired
//! sessions are swept on access, at most once a second (every push, poll
//! and `/metrics` scrape is an access), so no runtime-specific task is
//! needed. A held poll registers its task's [`Waker`]; a push wakes the
//! session's waiters, so nothing busy-polls.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::Waker,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use hubbub_hub::{ip_key, Envelope};

use crate::HttpMetrics;

/// Limits and timings of long polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPollConfig {
    /// Messages kept per session; the oldest is dropped (and counted) when
    /// a new one would exceed it.
    pub capacity: usize,
    /// A session not polled for this long is removed.
    pub ttl: Duration,
    /// How long a poll is held when `timeout` is not given.
    pub default_timeout: Duration,
    /// The longest hold a client may ask for.
    pub max_timeout: Duration,
    /// Messages per poll when `max` is not given.
    pub default_batch: usize,
    /// The largest `max` honoured.
    pub max_batch: usize,
    /// Most sessions at once. A new session beyond it takes the place of
    /// the least recently polled idle one (no poll held), whose messages
    /// are dropped (counted as `evicted`); only when every session holds a
    /// poll is it refused (503).
    pub max_sessions: usize,
    /// Private sessions (not `broadcast` nor `room:R`, which are shared)
    /// one client address (IPv6 by /64) may create and keep at once; 0:
    /// no limit. One more is refused with 429. A session counts for the
    /// address that created it until it expires or is evicted.
    pub max_sessions_per_ip: usize,
    /// Bytes of messages queued per session (and per held poll's
    /// mailbox); a mirrored broadcast drops the oldest to fit, an HTTP send
    /// to a full session is refused.
    pub max_session_bytes: usize,
    /// Bytes of messages queued over all sessions; a message beyond is
    /// refused (an HTTP send: 503), counted as dropped.
    pub max_total_bytes: usize,
    /// Bytes of messages in one poll's answer (the first message always
    /// goes out, whatever its size); the rest waits for the next poll.
    pub max_poll_bytes: usize,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        LongPollConfig {
            capacity: 256,
            ttl: Duration::from_secs(60),
            default_timeout: Duration::from_secs(25),
            max_timeout: Duration::from_secs(60),
            default_batch: 50,
            max_batch: 1000,
            max_sessions: 10_000,
            max_sessions_per_ip: 100,
            max_session_bytes: 1 << 20,
            max_total_bytes: 64 << 20,
            max_poll_bytes: 1 << 20,
        }
    }
}

/// The name of the poll session a message for `room` goes to:
/// `room:<room>`, or `broadcast` without a room.
pub fn session_for(room: Option<&str>) -> String {
    match room {
        Some(room) => format!("room:{room}"),
        None => "broadcast".to_owned(),
    }
}

/// A queued message: its JSON, serialized once. Clones share the bytes;
/// they count in the store's byte budget until the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Message(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    json: Box<str>,
    /// The store's count of queued bytes.
    budget: Arc<AtomicUsize>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.json.len(), Ordering::Relaxed);
    }
}

impl Message {
    /// The message's JSON (an object).
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.json.len()
    }

    /// Always false: a message is a JSON object.
    pub fn is_empty(&self) -> bool {
        self.0.json.is_empty()
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

/// The body of a poll's answer: a JSON array of `messages`.
pub fn json_array(messages: &[Message]) -> String {
    let len = messages.iter().map(|m| m.len() + 1).sum::<usize>() + 2;
    let mut out = String::with_capacity(len);
    out.push('[');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(message.json());
    }
    out.push(']');
    out
}

/// Messages in order with their total size.
#[derive(Debug, Default)]
struct Fifo {
    messages: VecDeque<Message>,
    bytes: usize,
}

impl Fifo {
    fn len(&self) -> usize {
        self.messages.len()
    }

    fn push_back(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    fn push_front(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_front(message);
    }

    fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Up to `max` messages and about `max_bytes` from the front (at least
    /// one, when there is one).
    fn take(&mut self, max: usize, max_bytes: usize) -> Vec<Message> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < max {
            let Some(next) = self.messages.front() else {
                break;
            };
            if !batch.is_empty() && bytes + next.len() > max_bytes {
                break;
            }
            bytes += next.len();
            batch.extend(self.pop_front());
        }
        batch
    }

    /// Room for `len` more bytes and one more message?
    fn fits(&self, len: usize, capacity: usize, max_bytes: usize) -> bool {
        self.len() < capacity && self.bytes + len <= max_bytes
    }
}

#[derive(Debug)]
struct PollSession {
    /// The client address ([`ip_key`]) that created it, counted in
    /// `State::per_ip` (shared sessions have none).
    owner: Option<IpAddr>,
    queue: Fifo,
    last_polled: Instant,
    waiters: Vec<Waiter>,
}

/// A held poll: its task's waker and what was pushed for it.
#[derive(Debug)]
struct Waiter {
    id: u64,
    waker: Waker,
    mailbox: Fifo,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session did not exist and no more may be created
    /// ([`LongPollConfig::max_sessions`]).
    Sessions,
    /// The session (or every held poll's mailbox) is full, by count or
    /// bytes.
    SessionFull,
    /// The bytes queued over all sessions are at
    /// [`LongPollConfig::max_total_bytes`].
    Memory,
    /// The client address has [`LongPollConfig::max_sessions_per_ip`]
    /// sessions (answered 429).
    PerClient,
}

impl Refused {
    /// A short name, the `reason` label of refusals in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Sessions => "sessions",
            Refused::SessionFull => "session_full",
            Refused::Memory => "memory",
            Refused::PerClient => "per_client",
        }
    }

    /// The answer's status: 429 for a per-client limit, else 503.
    pub fn status(self) -> u16 {
        match self {
            Refused::PerClient => 429,
            _ => 503,
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refused::Sessions => "too many long-poll sessions",
            Refused::SessionFull => "the long-poll session is full: poll it first",
            Refused::Memory => "long-poll queues are full",
            Refused::PerClient => "too many long-poll sessions from this client address",
        }
    }
}

/// What to do with a message that does not fit its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the session's oldest messages to make room (mirrored
    /// broadcasts: a room's recent messages matter most).
    DropOldest,
    /// Refuse the new message ([`Refused::SessionFull`]): an HTTP send is
    /// told it was not queued.
    Refuse,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<String, PollSession>,
    /// Private sessions per creating client address.
    per_ip: HashMap<IpAddr, usize>,
    last_sweep: Instant,
}

/// Every long-polling session of a hub.
#[derive(Debug)]
pub struct LongPoll {
    config: LongPollConfig,
    state: Mutex<State>,
    next_id: AtomicU64,
    next_waiter: AtomicU64,
    metrics: Arc<HttpMetrics>,
    /// Set by [`release_all`](Self::release_all): polls no longer wait.
    closing: AtomicBool,
    /// Bytes of messages alive (queued, in mailboxes or being answered).
    bytes: Arc<AtomicUsize>,
}

/// `broadcast` and `room:R` are shared by every client: no address owns them.
fn is_shared(id: &str) -> bool {
    id == "broadcast" || id.starts_with("room:")
}

/// A session of `owner` is gone.
fn release_owner(per_ip: &mut HashMap<IpAddr, usize>, owner: Option<IpAddr>) {
    if let Some(ip) = owner {
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

/// What a poll found.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// Messages (at least one, but while shutting down), oldest first.
    Messages(Vec<Message>),
    /// Nothing yet: the waker was registered under this waiter id.
    Waiting(u64),
    /// The session does not exist and no more may be created.
    Full,
}

impl LongPoll {
    /// An empty set of sessions, counting into `metrics`.
    pub fn new(config: LongPollConfig, metrics: Arc<HttpMetrics>) -> Self {
        LongPoll {
            config,
            state: Mutex::new(State {
                sessions: HashMap::new(),
                per_ip: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            next_id: AtomicU64::new(1),
            next_waiter: AtomicU64::new(1),
            metrics,
            closing: AtomicBool::new(false),
            bytes: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LongPollConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(state.last_sweep) >= Duration::from_secs(1).min(self.config.ttl) {
            state.last_sweep = now;
            self.sweep(&mut state, now);
        }
        state
    }

    fn sweep(&self, state: &mut State, now: Instant) {
        let ttl = self.config.ttl;
        let mut dropped = 0u64;
        let per_ip = &mut state.per_ip;
        state.sessions.retain(|_, s| {
            // A session with a held poll is in use.
            let live = !s.waiters.is_empty() || now.duration_since(s.last_polled) < ttl;
            if !live {
                dropped += s.queue.len() as u64;
                release_owner(per_ip, s.owner);
            }
            live
        });
        self.metrics.lp_messages_expired.add(dropped);
    }

    fn session<'s>(&self, state: &'s mut State, id: &str) -> Option<&'s mut PollSession> {
        if !state.sessions.contains_key(id) {
            self.create(state, id, None).ok()?;
        }
        state.sessions.get_mut(id)
    }

    /// Create session `id` for `owner` (a client address, for a private
    /// session), evicting the least recently polled idle session when all
    /// places are taken.
    fn create(&self, state: &mut State, id: &str, owner: Option<IpAddr>) -> Result<(), Refused> {
        let owner = owner.filter(|_| !is_shared(id) && self.config.max_sessions_per_ip > 0);
        if let Some(ip) = owner {
            if state.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.max_sessions_per_ip {
                return Err(Refused::PerClient);
            }
        }
        if state.sessions.len() >= self.config.max_sessions.max(1) {
            let idle = state
                .sessions
                .iter()
                .filter(|(_, s)| s.waiters.is_empty())
                .min_by_key(|(_, s)| s.last_polled)
                .map(|(id, _)| id.clone());
            let Some(evicted) = idle.and_then(|id| state.sessions.remove(&id)) else {
                return Err(Refused::Sessions);
            };
            release_owner(&mut state.per_ip, evicted.owner);
            self.metrics.lp_sessions_evicted.inc();
            self.metrics
                .lp_messages_evicted
                .add(evicted.queue.len() as u64);
        }
        if let Some(ip) = owner {
            *state.per_ip.entry(ip).or_default() += 1;
        }
        self.metrics.lp_sessions_total.inc();
        state.sessions.insert(
            id.to_owned(),
            PollSession {
                owner,
                queue: Fifo::default(),
                last_polled: Instant::now(),
                waiters: Vec::new(),
            },
        );
        Ok(())
    }

    /// Make sure session `id` exists, created for the client at `peer`
    /// (whose private sessions are counted against
    /// [`LongPollConfig::max_sessions_per_ip`]). A poll or a send with a
    /// session id opens it first.
    pub fn open(&self, id: &str, peer: Option<IpAddr>) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.sessions.contains_key(id) {
            return Ok(());
        }
        self.create(&mut state, id, peer.map(ip_key))
    }

    /// Queue `envelope` for session `id` with every field present (`id`,
    /// `kind` and `ts` filled in when missing), and wake its held polls;
    /// a message that does not fit the session is handled per `overflow`.
    /// A refused message is counted as dropped.
    pub fn push(&self, id: &str, envelope: &Envelope, overflow: Overflow) -> Result<(), Refused> {
        let json = self.complete(envelope).to_string();
        let result = self.push_json(id, json, overflow);
        if result.is_err() {
            self.metrics.lp_messages_dropped.inc();
        }
        result
    }

    /// Would a message of about `len` bytes be taken by session `id` now
    /// (with [`Overflow::Refuse`])? Creates nothing.
    pub fn admits(&self, id: &str, len: usize) -> Result<(), Refused> {
        self.admits_bytes(len)?;
        let config = &self.config;
        if len > config.max_session_bytes {
            return Err(Refused::SessionFull);
        }
        let state = self.lock();
        let capacity = config.capacity.max(1);
        let fits = |fifo: &Fifo| fifo.fits(len, capacity, config.max_session_bytes);
        match state.sessions.get(id) {
            None if state.sessions.len() >= config.max_sessions
                && state.sessions.values().all(|s| !s.waiters.is_empty()) =>
            {
                Err(Refused::Sessions)
            }
            None => Ok(()),
            Some(s) if s.waiters.is_empty() && fits(&s.queue) => Ok(()),
            Some(s) if s.waiters.iter().any(|w| fits(&w.mailbox)) => Ok(()),
            Some(_) => Err(Refused::SessionFull),
        }
    }

    /// Is there room for about `len` more bytes over all sessions?
    pub fn admits_bytes(&self, len: usize) -> Result<(), Refused> {
        if self.bytes.load(Ordering::Relaxed) + len > self.config.max_total_bytes {
            return Err(Refused::Memory);
        }
        Ok(())
    }

    fn push_json(&self, id: &str, json: String, overflow: Overflow) -> Result<(), Refused> {
        let len = json.len();
        let config = &self.config;
        let capacity = config.capacity.max(1);
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            if self.bytes.load(Ordering::Relaxed) + len > config.max_total_bytes {
                return Err(Refused::Memory);
            }
            if len > config.max_session_bytes {
                return Err(Refused::SessionFull);
            }
            let Some(session) = self.session(&mut state, id) else {
                return Err(Refused::Sessions);
            };
            let fits = |fifo: &Fifo| fifo.fits(len, capacity, config.max_session_bytes);
            let refuse = overflow == Overflow::Refuse;
            if refuse
                && (session.waiters.is_empty() && !fits(&session.queue)
                    || !session.waiters.is_empty()
                        && !session.waiters.iter().any(|w| fits(&w.mailbox)))
            {
                return Err(Refused::SessionFull);
            }
            self.bytes.fetch_add(len, Ordering::Relaxed);
            let message = Message(Arc::new(Shared {
                json: json.into_boxed_str(),
                budget: self.bytes.clone(),
            }));
            self.metrics.lp_messages_enqueued.inc();
            if session.waiters.is_empty() {
                while !fits(&session.queue) && session.queue.pop_front().is_some() {
                    self.metrics.lp_messages_dropped.inc();
                }
                session.queue.push_back(message);
                Vec::new()
            } else {
                for waiter in &mut session.waiters {
                    if fits(&waiter.mailbox) {
                        waiter.mailbox.push_back(message.clone());
                    } else {
                        self.metrics.lp_messages_dropped.inc();
                    }
                }
                session.waiters.iter().map(|w| w.waker.clone()).collect()
            }
        };
        for waker in wakers {
            waker.wake();
        }
        Ok(())
    }

    fn complete(&self, envelope: &Envelope) -> Value {
        let id = envelope
            .id
            .clone()
            .unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed).to_string());
        let ts = envelope.ts.clone().unwrap_or_else(|| {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            Value::from(ms)
        });
        serde_json::json!({
            "id": id,
            "kind": envelope.kind.as_deref().unwrap_or("event"),
            "room": envelope.room,
            "type": envelope.event_type,
            "ts": ts,
            "payload": envelope.payload,
        })
    }

    /// Take up to `max` messages of session `id` (creating it, and marking
    /// it polled). With none buffered, `waker` is registered (under
    /// `waiter`, if this poll already holds an id) and woken by the next push.
    pub fn take(&self, id: &str, max: usize, waker: &Waker, waiter: Option<u64>) -> Taken {
        let mut state = self.lock();
        let Some(session) = self.session(&mut state, id) else {
            return Taken::Full;
        };
        session.last_polled = Instant::now();
        let max = max.max(1);
        let max_bytes = self.config.max_poll_bytes;
        let mine = waiter.and_then(|id| session.waiters.iter().position(|w| w.id == id));
        if let Some(index) = mine.filter(|&i| session.waiters[i].mailbox.len() > 0) {
            let mut mailbox = session.waiters.swap_remove(index).mailbox;
            let batch = mailbox.take(max, max_bytes);
            // The rest waits for this client's next poll.
            while let Some(message) = mailbox.messages.pop_back() {
                session.queue.push_front(message);
            }
            self.metrics.lp_messages_drained.add(batch.len() as u64);
            return Taken::Messages(batch);
        }
        if session.queue.len() > 0 || self.closing.load(Ordering::SeqCst) {
            let batch = session.queue.take(max, max_bytes);
            self.metrics.lp_messages_drained.add(batch.len() as u64);
            if let Some(index) = mine {
                session.waiters.swap_remove(index);
            }
            return Taken::Messages(batch);
        }
        match mine {
            Some(index) => session.waiters[index].waker.clone_from(waker),
            None => {
                let id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
                session.waiters.push(Waiter {
                    id,
                    waker: waker.clone(),
                    mailbox: Fifo::default(),
                });
                return Taken::Waiting(id);
            }
        }
        Taken::Waiting(waiter.unwrap_or_default())
    }

    /// Shutting down: every held poll is answered now (with what its
    /// session holds, possibly nothing) and later polls do not wait.
    pub fn release_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let waiters: Vec<Waker> = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state
                .sessions
                .values_mut()
                .flat_map(|s| s.waiters.iter().map(|w| w.waker.clone()))
                .collect()
        };
        for waker in waiters {
            waker.wake();
        }
    }

    /// A held poll gave up (timed out or its connection went away).
    pub fn cancel(&self, id: &str, waiter: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = state.sessions.get_mut(id) {
            if let Some(index) = session.waiters.iter().position(|w| w.id == waiter) {
                // Messages pushed for it are kept for the next poll.
                let mut mailbox = session.waiters.swap_remove(index).mailbox;
                while let Some(message) = mailbox.messages.pop_back() {
                    session.queue.push_front(message);
                }
            }
            // Still polled just now: its TTL starts here.
            session.last_polled = Instant::now();
        }
    }

    /// Sessions that exist now (after sweeping the expired ones).
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Messages buffered across all sessions.
    pub fn buffered(&self) -> usize {
        self.lock().sessions.values().map(|s| s.queue.len()).sum()
    }

    /// Bytes of messages alive: queued, in held polls' mailboxes, or in
    /// answers being written (each message counted once, however many
    /// polls share it).
    pub fn buffered_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Wake, Waker};

    use serde_json::json;

    use super::*;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn store(config: LongPollConfig) -> (LongPoll, Arc<HttpMetrics>) {
        let metrics = Arc::new(HttpMetrics::default());
        (LongPoll::new(config, metrics.clone()), metrics)
    }

    fn messages(taken: Taken) -> Vec<Value> {
        match taken {
            Taken::Messages(m) => m
                .iter()
                .map(|m| serde_json::from_str(m.json()).unwrap())
                .collect(),
            other => panic!("expected messages, got {other:?}"),
        }
    }

    #[test]
    fn fifo_bounded_oldest_dropped_and_fields_filled() {
        let config = LongPollConfig {
            capacity: 3,
            ..LongPollConfig::default()
        };
        let (lp, metrics) = store(config);
        for i in 0..5 {
            let e = Envelope::new("t", json!({ "i": i })).with_room("a");
            assert!(lp.push("room:a", &e, Overflow::DropOldest).is_ok());
        }
        assert_eq!(lp.buffered(), 3);
        assert_eq!(metrics.lp_messages_dropped.get(), 2);
        let got = messages(lp.take("room:a", 2, Waker::noop(), None));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["payload"]["i"], 2);
        assert_eq!(got[1]["payload"]["i"], 3);
        assert_eq!(got[0]["kind"], "event");
        assert_eq!(got[0]["room"], "a");
        assert_eq!(got[0]["type"], "t");
        assert!(got[0]["ts"].as_u64().unwrap() > 0);
        assert_ne!(got[0]["id"], got[1]["id"]);
        assert_eq!(
            messages(lp.take("room:a", 50, Waker::noop(), None)).len(),
            1
        );
        assert_eq!(metrics.lp_messages_drained.get(), 3);
        assert_eq!(metrics.lp_messages_enqueued.get(), 5);
    }

    #[test]
    fn a_push_wakes_the_waiting_poll_once() {
        let (lp, _) = store(LongPollConfig::default());
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let Taken::Waiting(id) = lp.take("broadcast", 50, &waker, None) else {
            panic!("nothing was buffered")
        };
        // Polling again with the same id does not register twice.
        assert_eq!(
            lp.take("broadcast", 50, &waker, Some(id)),
            Taken::Waiting(id)
        );
        lp.push(
            "broadcast",
            &Envelope::new("x", Value::Null),
            Overflow::DropOldest,
        )
        .unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            messages(lp.take("broadcast", 50, &waker, Some(id))).len(),
            1
        );
        lp.push(
            "broadcast",
            &Envelope::new("y", Value::Null),
            Overflow::DropOldest,
        )
        .unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "no waiter is left");
    }

    #[test]
    fn a_push_reaches_every_held_poll_and_max_is_kept() {
        let (lp, metrics) = store(LongPollConfig::default());
        let ids: Vec<u64> = (0..3)
            .map(|_| match lp.take("room:a", 1, Waker::noop(), None) {
                Taken::Waiting(id) => id,
                other => panic!("{other:?}"),
            })
            .collect();
        lp.push(
            "room:a",
            &Envelope::new("one", Value::Null),
            Overflow::DropOldest,
        )
        .unwrap();
        lp.push(
            "room:a",
            &Envelope::new("two", Value::Null),
            Overflow::DropOldest,
        )
        .unwrap();
        for id in &ids[..2] {
            let got = messages(lp.take("room:a", 1, Waker::noop(), Some(*id)));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0]["type"], "one");
        }
        // The third gives up: what was pushed for it waits in the FIFO
        // (with the others' unread rest, oldest first).
        lp.cancel("room:a", ids[2]);
        let rest = messages(lp.take("room:a", 10, Waker::noop(), None));
        let types: Vec<&str> = rest.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["one", "two", "two", "two"]);
        assert_eq!(metrics.lp_messages_enqueued.get(), 2);
    }

    #[test]
    fn release_all_wakes_and_ends_waiting() {
        let (lp, _) = store(LongPollConfig::default());
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        assert!(matches!(lp.take("s", 5, &waker, None), Taken::Waiting(_)));
        lp.release_all();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(lp.take("s", 5, &waker, None), Taken::Messages(Vec::new()));
    }

    #[test]
    fn expired_sessions_are_swept() {
        let config = LongPollConfig {
            ttl: Duration::from_millis(30),
            ..LongPollConfig::default()
        };
        let (lp, metrics) = store(config);
        lp.push(
            "room:a",
            &Envelope::new("x", Value::Null),
            Overflow::DropOldest,
        )
        .unwrap();
        assert_eq!(lp.session_count(), 1);
        let start = Instant::now();
        while lp.session_count() > 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lp.session_count(), 0);
        assert_eq!(metrics.lp_messages_expired.get(), 1);
        assert_eq!(metrics.lp_sessions_total.get(), 1);
    }

    #[test]
    fn a_full_session_table_evicts_the_least_recently_polled_idle_session() {
        let config = LongPollConfig {
            max_sessions: 3,
            ..LongPollConfig::default()
        };
        let (lp, metrics) = store(config);
        let x = Envelope::new("x", Value::Null);
        lp.push("a", &x, Overflow::Refuse).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        lp.push("b", &x, Overflow::Refuse).unwrap();
        // `held` holds a poll: never evicted.
        assert!(matches!(
            lp.take("held", 1, Waker::noop(), None),
            Taken::Waiting(_)
        ));
        // A fourth session takes the place of `a`, the oldest idle one.
        lp.push("c", &x, Overflow::Refuse).unwrap();
        assert_eq!(lp.session_count(), 3);
        assert_eq!(metrics.lp_sessions_evicted.get(), 1);
        assert_eq!(metrics.lp_messages_evicted.get(), 1);
        assert_eq!(messages(lp.take("b", 5, Waker::noop(), None)).len(), 1);
        // Now `c` is the oldest idle one.
        assert!(matches!(
            lp.take("d", 1, Waker::noop(), None),
            Taken::Waiting(_)
        ));
        assert!(matches!(
            lp.take("e", 1, Waker::noop(), None),
            Taken::Waiting(_)
        ));
        // Every session holds a poll: a new one is refused.
        assert_eq!(lp.push("f", &x, Overflow::Refuse), Err(Refused::Sessions));
        assert_eq!(lp.take("f", 1, Waker::noop(), None), Taken::Full);
        assert_eq!(lp.open("f", None), Err(Refused::Sessions));
    }

    #[test]
    fn private_sessions_are_bounded_per_address_shared_ones_are_not() {
        let config = LongPollConfig {
            max_sessions_per_ip: 2,
            ..LongPollConfig::default()
        };
        let (lp, _) = store(config);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        lp.open("a", Some(one)).unwrap();
        lp.open("b", Some(one)).unwrap();
        lp.open("a", Some(one)).unwrap(); // exists: no new place
        assert_eq!(lp.open("c", Some(one)), Err(Refused::PerClient));
        assert_eq!(Refused::PerClient.status(), 429);
        lp.open("c", Some(other)).unwrap();
        lp.open("room:general", Some(one)).unwrap();
        lp.open("broadcast", Some(one)).unwrap();
        // Room sessions are open to every client.
        lp.open("room:lobby", Some(one)).unwrap();
    }

    #[test]
    fn bytes_are_bounded_per_session_per_answer_and_overall() {
        let config = LongPollConfig {
            max_session_bytes: 1000,
            max_poll_bytes: 700,
            max_total_bytes: 1250,
            ..LongPollConfig::default()
        };
        let (lp, metrics) = store(config);
        let big = |i: u32| Envelope::new("t", json!({ "i": i, "pad": "x".repeat(200) }));
        let size = lp.complete(&big(0)).to_string().len();
        assert!((251..=312).contains(&size), "{size}");
        // Three fit the session's 1000 bytes; a fourth is refused, or
        // drops the oldest.
        for i in 0..3 {
            lp.push("a", &big(i), Overflow::Refuse).unwrap();
        }
        assert_eq!(
            lp.push("a", &big(3), Overflow::Refuse),
            Err(Refused::SessionFull)
        );
        lp.push("a", &big(3), Overflow::DropOldest).unwrap();
        assert_eq!(lp.buffered(), 3);
        assert_eq!(lp.buffered_bytes(), 3 * size);
        // Over all sessions: 1250 bytes (four messages).
        lp.push("b", &big(9), Overflow::Refuse).unwrap();
        assert_eq!(
            lp.push("b", &big(10), Overflow::Refuse),
            Err(Refused::Memory)
        );
        assert_eq!(metrics.lp_messages_dropped.get(), 3);
        // An answer holds at most 700 bytes: two messages, then one.
        let first = messages(lp.take("a", 50, Waker::noop(), None));
        let ids: Vec<u64> = first
            .iter()
            .map(|m| m["payload"]["i"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(messages(lp.take("a", 50, Waker::noop(), None)).len(), 1);
        assert_eq!(lp.buffered_bytes(), size, "freed once taken");
    }
}

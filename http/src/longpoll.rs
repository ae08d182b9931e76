//! Long-polling sessions: bounded FIFOs of envelopes that HTTP clients
//! drain with `GET /ws/poll`, held until a message arrives.
//!
//! A message pushed while polls of its session are held goes to every one
//! of them (each held poll has a mailbox), so several clients polling
//! `room:R` all see R's live messages; a message pushed while none is held
//! waits in the session's FIFO for the next poll.
//!
//! A session is created by its first poll or its first message and expires
//! [`LongPollConfig::ttl`] after it was last polled (or created). Expired
//! sessions are swept on access, at most once a second (every push, poll
//! and `/metrics` scrape is an access), so no runtime-specific task is
//! needed. A held poll registers its task's [`Waker`]; a push wakes the
//! session's waiters, so nothing busy-polls.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::Waker,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use hubbub_hub::Envelope;

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
    /// Most sessions at once; a push or poll for a new session beyond it
    /// is refused (503 for a poll).
    pub max_sessions: usize,
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

#[derive(Debug)]
struct PollSession {
    queue: VecDeque<Value>,
    last_polled: Instant,
    waiters: Vec<Waiter>,
}

/// A held poll: its task's waker and what was pushed for it.
#[derive(Debug)]
struct Waiter {
    id: u64,
    waker: Waker,
    mailbox: Vec<Value>,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<String, PollSession>,
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
}

/// What a poll found.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// Messages (at least one), oldest first.
    Messages(Vec<Value>),
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
                last_sweep: Instant::now(),
            }),
            next_id: AtomicU64::new(1),
            next_waiter: AtomicU64::new(1),
            metrics,
            closing: AtomicBool::new(false),
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
        state.sessions.retain(|_, s| {
            // A session with a held poll is in use.
            let live = !s.waiters.is_empty() || now.duration_since(s.last_polled) < ttl;
            if !live {
                dropped += s.queue.len() as u64;
            }
            live
        });
        self.metrics.lp_messages_expired.add(dropped);
    }

    fn session<'s>(&self, state: &'s mut State, id: &str) -> Option<&'s mut PollSession> {
        if !state.sessions.contains_key(id) {
            if state.sessions.len() >= self.config.max_sessions {
                return None;
            }
            self.metrics.lp_sessions_total.inc();
            state.sessions.insert(
                id.to_owned(),
                PollSession {
                    queue: VecDeque::new(),
                    last_polled: Instant::now(),
                    waiters: Vec::new(),
                },
            );
        }
        state.sessions.get_mut(id)
    }

    /// Queue `envelope` for session `id` with every field present (`id`,
    /// `kind` and `ts` filled in when missing), and wake its held polls.
    /// Returns false when the session could not be created.
    pub fn push(&self, id: &str, envelope: &Envelope) -> bool {
        let value = self.complete(envelope);
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            let capacity = self.config.capacity.max(1);
            let Some(session) = self.session(&mut state, id) else {
                return false;
            };
            self.metrics.lp_messages_enqueued.inc();
            if session.waiters.is_empty() {
                while session.queue.len() >= capacity {
                    session.queue.pop_front();
                    self.metrics.lp_messages_dropped.inc();
                }
                session.queue.push_back(value);
                Vec::new()
            } else {
                for waiter in &mut session.waiters {
                    if waiter.mailbox.len() < capacity {
                        waiter.mailbox.push(value.clone());
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
        true
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
        let mine = waiter.and_then(|id| session.waiters.iter().position(|w| w.id == id));
        if let Some(index) = mine.filter(|&i| !session.waiters[i].mailbox.is_empty()) {
            let mut batch = session.waiters.swap_remove(index).mailbox;
            if batch.len() > max {
                // The rest waits for this client's next poll.
                for value in batch.split_off(max).into_iter().rev() {
                    session.queue.push_front(value);
                }
            }
            self.metrics.lp_messages_drained.add(batch.len() as u64);
            return Taken::Messages(batch);
        }
        if !session.queue.is_empty() || self.closing.load(Ordering::SeqCst) {
            let n = max.min(session.queue.len());
            let batch: Vec<Value> = session.queue.drain(..n).collect();
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
                    mailbox: Vec::new(),
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
                let mailbox = session.waiters.swap_remove(index).mailbox;
                for value in mailbox.into_iter().rev() {
                    session.queue.push_front(value);
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
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::AtomicUsize,
        task::{Wake, Waker},
    };

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
            Taken::Messages(m) => m,
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
            assert!(lp.push("room:a", &e));
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
        lp.push("broadcast", &Envelope::new("x", Value::Null));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            messages(lp.take("broadcast", 50, &waker, Some(id))).len(),
            1
        );
        lp.push("broadcast", &Envelope::new("y", Value::Null));
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
        lp.push("room:a", &Envelope::new("one", Value::Null));
        lp.push("room:a", &Envelope::new("two", Value::Null));
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
        lp.push("room:a", &Envelope::new("x", Value::Null));
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
    fn session_count_is_bounded() {
        let config = LongPollConfig {
            max_sessions: 2,
            ..LongPollConfig::default()
        };
        let (lp, _) = store(config);
        assert!(lp.push("a", &Envelope::new("x", Value::Null)));
        assert!(lp.push("b", &Envelope::new("x", Value::Null)));
        assert!(!lp.push("c", &Envelope::new("x", Value::Null)));
        assert_eq!(lp.take("d", 1, Waker::noop(), None), Taken::Full);
    }
}

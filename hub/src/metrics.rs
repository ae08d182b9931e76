//! Counters kept by the library itself (not by user code).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

/// A monotonically increasing (or, for gauges, adjustable) count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Subtract one (gauges only).
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a hub counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions opened since start.
    pub connections_total: Counter,
    /// Sessions open now.
    pub connections_active: Counter,
    /// Messages received (text and binary).
    pub messages_in: Counter,
    /// Payload bytes received.
    pub bytes_in: Counter,
    /// Messages handed to connections for sending.
    pub messages_out: Counter,
    /// Payload bytes handed to connections for sending.
    pub bytes_out: Counter,
    /// Errors reported to `on_error`.
    pub errors: Counter,
    /// Messages dropped because a queue was full (policy `Drop`).
    pub slow_consumer_drops: Counter,
    /// Sessions closed because their queue was full (policy `Close`).
    pub slow_consumer_closes: Counter,
    /// Frames queued by broadcasts, summed over recipients.
    pub broadcast_deliveries: Counter,
    /// Messages appended to the message store (acknowledged).
    pub store_appends: Counter,
    /// Appends the store failed or refused (busy, stopped, an I/O error).
    pub store_append_errors: Counter,
    /// Sum of the acknowledged appends' latencies, in microseconds, from
    /// `Hub::publish` to the store's acknowledgment (the mean is this over
    /// `store_appends`).
    pub store_append_latency_us: Counter,
    /// Text messages received (binary = `messages_in - text_in`).
    pub text_in: Counter,
    /// Upgrade requests refused, by HTTP status.
    pub handshakes_rejected: CounterMap,
    /// What the hub's limits refused ([`HubLimits`](crate::HubLimits)).
    pub limits: LimitMetrics,
    /// Authentications refused, by reason: `missing`, `invalid`,
    /// `expired` (a token refused, or a session's token running out),
    /// `timeout` (no auth message in time), `other_user` (a refresh for
    /// another user).
    pub auth_failures: Labeled<&'static str>,
    closes: CounterMap,
}

/// What a hub's limits refused, by reason.
#[derive(Debug, Default)]
pub struct LimitMetrics {
    /// Upgrades refused by a limit, by reason: `origin`,
    /// `max_connections`, `per_ip`, `per_ip_rate`, `ip_table_full`.
    pub connections_rejected: Labeled<&'static str>,
    /// Messages over a session's rate, by `(limit, policy)`: `messages` or
    /// `bytes`, `drop` or `close`.
    pub rate_limited: Labeled<(&'static str, &'static str)>,
    /// Joins refused for the cap on rooms per session.
    pub room_joins_refused: Counter,
}

/// Counts keyed by label values.
#[derive(Debug)]
pub struct Labeled<K>(Mutex<BTreeMap<K, u64>>);

impl<K> Default for Labeled<K> {
    fn default() -> Self {
        Labeled(Mutex::default())
    }
}

impl<K: Ord + Clone> Labeled<K> {
    /// Add one for `key`.
    pub fn inc(&self, key: K) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// Every key's count.
    pub fn snapshot(&self) -> BTreeMap<K, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Counts keyed by a status or close code.
#[derive(Debug, Default)]
pub struct CounterMap(Mutex<BTreeMap<u16, u64>>);

impl CounterMap {
    /// Add one for `key`.
    pub fn inc(&self, key: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// Every key's count.
    pub fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Metrics {
    /// Count a session that ended with `code`.
    pub fn count_close(&self, code: u16) {
        self.closes.inc(code);
    }

    /// Sessions ended, by close code.
    pub fn closes_by_code(&self) -> BTreeMap<u16, u64> {
        self.closes.snapshot()
    }
}

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
    /// Set the value (gauges only).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// Subtract `n` (gauges only).
    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
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
    /// Sessions opened over an HTTP/2 stream (RFC 8441); the others of
    /// `connections_total` came over HTTP/1.1.
    pub h2_sessions: Counter,
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
    /// The room engine's state and work ([`RoomEngine`](crate::RoomEngine)).
    pub engine: EngineMetrics,
    closes: Labeled<&'static str>,
}

/// What a room engine reports: whether its backend is reachable, and the
/// work between this node and it. The embedded engine is always up and
/// has no queue; an engine with a backend (Redis) fills in the rest.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    /// 1 while the engine's backend is reachable (gauge).
    pub up: Counter,
    /// Reconnections to the backend after it was lost.
    pub reconnects: Counter,
    /// Requests waiting for the engine's thread (gauge).
    pub queued: Counter,
    /// Room messages delivered on this node.
    pub delivered: Counter,
    /// Sum over delivered messages of the time from publish (`ts`) to
    /// delivery on this node, in milliseconds (the mean lag is this over
    /// `delivered`).
    pub lag_ms: Counter,
    /// Messages recovered from the log after a gap (a lost notification,
    /// a reconnect).
    pub recovered: Counter,
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
    /// Count a session that ended with `code`, under [`close_code_label`].
    pub fn count_close(&self, code: u16) {
        self.closes.inc(close_code_label(code));
    }

    /// Sessions ended, by [`close_code_label`].
    pub fn closes_by_code(&self) -> BTreeMap<&'static str, u64> {
        self.closes.snapshot()
    }
}

/// The `/metrics` label for a close code. The peer chooses its code, so only
/// a bounded set of labels exists: the codes of the IANA registry
/// (RFC 6455 section 7.4: 1000–1003, 1005–1015) and hubbub's own 4001
/// (token expired) as themselves; any other code as its range, `3xxx`
/// (registered libraries and frameworks) or `4xxx` (private use); and
/// anything else (not a valid close code) as `other`.
pub fn close_code_label(code: u16) -> &'static str {
    match code {
        1000 => "1000",
        1001 => "1001",
        1002 => "1002",
        1003 => "1003",
        1005 => "1005",
        1006 => "1006",
        1007 => "1007",
        1008 => "1008",
        1009 => "1009",
        1010 => "1010",
        1011 => "1011",
        1012 => "1012",
        1013 => "1013",
        1014 => "1014",
        1015 => "1015",
        4001 => "4001",
        3000..=3999 => "3xxx",
        4000..=4999 => "4xxx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_labels_are_bounded() {
        assert_eq!(close_code_label(1000), "1000");
        assert_eq!(close_code_label(1013), "1013");
        assert_eq!(close_code_label(4001), "4001");
        assert_eq!(close_code_label(4321), "4xxx");
        assert_eq!(close_code_label(3000), "3xxx");
        assert_eq!(close_code_label(1004), "other");
        assert_eq!(close_code_label(2999), "other");
        assert_eq!(close_code_label(5000), "other");
        let labels: std::collections::BTreeSet<_> = (0..=u16::MAX).map(close_code_label).collect();
        assert_eq!(labels.len(), 19);
        let m = Metrics::default();
        m.count_close(4321);
        m.count_close(4999);
        m.count_close(4001);
        let closes = m.closes_by_code();
        assert_eq!(closes.get("4xxx"), Some(&2));
        assert_eq!(closes.get("4001"), Some(&1));
        assert_eq!(closes.get("4321"), None);
    }
}

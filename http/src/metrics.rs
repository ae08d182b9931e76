//! The HTTP layer's own counters, beside the hub's [`Metrics`](hubbub_hub::Metrics).

use hubbub_hub::{Counter, CounterMap, Labeled};

/// Counters of HTTP requests and long polling, exposed at `/metrics`.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Long-poll sessions created.
    pub lp_sessions_total: Counter,
    /// Long polls received (held or answered at once).
    pub lp_polls_total: Counter,
    /// Messages queued into long-poll sessions.
    pub lp_messages_enqueued: Counter,
    /// Messages handed out by long polls.
    pub lp_messages_drained: Counter,
    /// Messages dropped from a full long-poll session (oldest first).
    pub lp_messages_dropped: Counter,
    /// Messages dropped with an expired long-poll session.
    pub lp_messages_expired: Counter,
    /// Idle long-poll sessions evicted to make room for a new one.
    pub lp_sessions_evicted: Counter,
    /// Messages dropped with an evicted long-poll session.
    pub lp_messages_evicted: Counter,
    /// HTTP requests answered, by status.
    pub http_requests: CounterMap,
    /// Requests refused (403) for an origin not on the allow-list.
    pub origin_rejected: Counter,
    /// Requests refused (429) by a per-address limit, by `(route,
    /// reason)`: reason `rate` (requests per second) or `polls` (held
    /// polls at once).
    pub rate_limited: Labeled<(&'static str, &'static str)>,
    /// `POST /ws/send` refused (503: not queued) by reason: a long-poll
    /// [`Refused`](crate::Refused) label, or a send hook's
    /// [`SendRefused`](crate::SendRefused) reason (`store_busy`, …).
    pub send_refused: Labeled<&'static str>,
}

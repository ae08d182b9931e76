//! `GET /metrics`: the hub's and the HTTP layer's counters in the
//! Prometheus text format, via `prometheus-client`. Values are read at
//! scrape time from [`Metrics`] and [`HttpMetrics`] (atomics the library
//! bumps as it works), so counting costs nothing extra. Adding a metric: a
//! field there and one line below.

use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::Registry,
};

use std::sync::Arc;

use hubbub_hub::{Hub, Metrics};

use crate::{bridge::Bridge, HttpMetrics};

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
}

/// A counter with one label, a sample per `(label value, count)`.
fn counters<L: ToString>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (key, value) in values {
        let labels = [(label, key.to_string())];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter with two labels, a sample per `((first, second), count)`.
fn counters2(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: (&str, &str),
    values: impl IntoIterator<Item = ((&'static str, &'static str), u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for ((a, b), value) in values {
        let pairs = [(labels.0, a), (labels.1, b)];
        ConstCounter::new(value).encode(family.encode_family(&pairs)?)?;
    }
    Ok(())
}

/// What the hub's and the HTTP side's limits refused.
fn limits(e: &mut DescriptorEncoder, m: &Metrics, h: &HttpMetrics) -> fmt::Result {
    let l = &m.limits;
    counters(
        e,
        "hubbub_ws_auth_failures",
        "Authentications refused, by reason",
        "reason",
        m.auth_failures.snapshot(),
    )?;
    counters(
        e,
        "hubbub_ws_connections_rejected",
        "Upgrades refused by a limit, by reason",
        "reason",
        l.connections_rejected.snapshot(),
    )?;
    counters2(
        e,
        "hubbub_ws_rate_limited",
        "Messages over a session's rate, by limit and policy",
        ("limit", "policy"),
        l.rate_limited.snapshot(),
    )?;
    counter(
        e,
        "hubbub_ws_room_joins_refused",
        "Joins refused for the cap on rooms per session",
        l.room_joins_refused.get(),
    )?;
    counter(
        e,
        "hubbub_http_origin_rejected",
        "HTTP requests refused for their origin",
        h.origin_rejected.get(),
    )?;
    counters2(
        e,
        "hubbub_http_rate_limited",
        "HTTP requests refused by a per-address limit, by route and reason",
        ("route", "reason"),
        h.rate_limited.snapshot(),
    )?;
    counters(
        e,
        "hubbub_http_send_refused",
        "POST /ws/send refused (503, not queued), by reason",
        "reason",
        h.send_refused.snapshot(),
    )
}

/// The history's appends and the room engine's state.
fn engine(e: &mut DescriptorEncoder, m: &Metrics) -> fmt::Result {
    let g = &m.engine;
    counter(
        e,
        "hubbub_store_appends",
        "Room messages stored (acknowledged by the history)",
        m.store_appends.get(),
    )?;
    counter(
        e,
        "hubbub_store_append_errors",
        "Room messages the history failed or refused to store",
        m.store_append_errors.get(),
    )?;
    counter(
        e,
        "hubbub_store_append_latency_us",
        "Sum of the stored messages' latencies from publish to acknowledgment, microseconds",
        m.store_append_latency_us.get(),
    )?;
    gauge(
        e,
        "hubbub_engine_up",
        "1 while the room engine's backend is reachable",
        g.up.get(),
    )?;
    counter(
        e,
        "hubbub_engine_reconnects",
        "Reconnections of the room engine to its backend",
        g.reconnects.get(),
    )?;
    gauge(
        e,
        "hubbub_engine_queued",
        "Requests waiting for the room engine",
        g.queued.get(),
    )?;
    counter(
        e,
        "hubbub_engine_delivered",
        "Room messages delivered on this node",
        g.delivered.get(),
    )?;
    counter(
        e,
        "hubbub_engine_lag_ms",
        "Sum of the delivered messages' times from publish to delivery here, milliseconds",
        g.lag_ms.get(),
    )?;
    counter(
        e,
        "hubbub_engine_recovered",
        "Room messages recovered from the log after a gap",
        g.recovered.get(),
    )
}

/// Reads a hub's [`Metrics`] and the HTTP layer's [`HttpMetrics`] on every
/// scrape.
struct HubCollector {
    hub: Hub,
    http: Arc<HttpMetrics>,
    bridge: Option<Arc<Bridge>>,
}

impl fmt::Debug for HubCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubCollector").finish_non_exhaustive()
    }
}

impl Collector for HubCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let hub = &self.hub;
        let m: &Metrics = hub.metrics();
        let h = &*self.http;
        let e = &mut enc;
        counter(
            e,
            "hubbub_ws_connections",
            "WebSocket sessions opened",
            m.connections_total.get(),
        )?;
        gauge(
            e,
            "hubbub_ws_connections_active",
            "WebSocket sessions open now",
            m.connections_active.get(),
        )?;
        counter(
            e,
            "hubbub_ws_connections_h2",
            "WebSocket sessions opened over HTTP/2 (RFC 8441), of all opened",
            m.h2_sessions.get(),
        )?;
        let rejected = m.handshakes_rejected.snapshot();
        counters(
            e,
            "hubbub_ws_handshakes_rejected",
            "Upgrade requests refused, by HTTP status",
            "status",
            rejected,
        )?;
        let (text_in, all_in) = (m.text_in.get(), m.messages_in.get());
        let by_kind = [
            ("text", text_in),
            ("binary", all_in.saturating_sub(text_in)),
        ];
        counters(
            e,
            "hubbub_ws_messages_in",
            "Messages received, by kind",
            "kind",
            by_kind,
        )?;
        counter(
            e,
            "hubbub_ws_bytes_in",
            "Payload bytes received",
            m.bytes_in.get(),
        )?;
        counter(
            e,
            "hubbub_ws_messages_out",
            "Messages handed to connections",
            m.messages_out.get(),
        )?;
        counter(
            e,
            "hubbub_ws_bytes_out",
            "Payload bytes handed to connections",
            m.bytes_out.get(),
        )?;
        counters(
            e,
            "hubbub_ws_closes",
            "Sessions ended, by close code",
            "code",
            m.closes_by_code(),
        )?;
        counter(
            e,
            "hubbub_ws_errors",
            "Errors reported to on_error",
            m.errors.get(),
        )?;
        counter(
            e,
            "hubbub_ws_slow_consumer_drops",
            "Messages dropped for a full queue",
            m.slow_consumer_drops.get(),
        )?;
        counter(
            e,
            "hubbub_ws_slow_consumer_closes",
            "Sessions closed for a full queue",
            m.slow_consumer_closes.get(),
        )?;
        counter(
            e,
            "hubbub_ws_broadcast_deliveries",
            "Frames queued by broadcasts, over recipients",
            m.broadcast_deliveries.get(),
        )?;
        let rooms = hub.rooms();
        let members: usize = rooms.iter().map(|r| hub.members(r).len()).sum();
        gauge(
            e,
            "hubbub_ws_rooms",
            "Rooms with members",
            rooms.len() as u64,
        )?;
        gauge(
            e,
            "hubbub_ws_room_members",
            "Room memberships, summed over rooms",
            members as u64,
        )?;
        if let Some(lp) = self.bridge.as_deref().map(|bridge| &bridge.long_poll) {
            counter(
                e,
                "hubbub_lp_sessions",
                "Long-poll sessions created",
                h.lp_sessions_total.get(),
            )?;
            gauge(
                e,
                "hubbub_lp_sessions_active",
                "Long-poll sessions alive",
                lp.session_count() as u64,
            )?;
            counter(
                e,
                "hubbub_lp_polls",
                "Long polls received",
                h.lp_polls_total.get(),
            )?;
            gauge(
                e,
                "hubbub_lp_messages_buffered",
                "Messages waiting in long-poll sessions",
                lp.buffered() as u64,
            )?;
            counter(
                e,
                "hubbub_lp_sessions_evicted",
                "Idle long-poll sessions evicted to make room for new ones",
                h.lp_sessions_evicted.get(),
            )?;
            gauge(
                e,
                "hubbub_lp_bytes_buffered",
                "Bytes of long-poll messages held (queued or being answered)",
                lp.buffered_bytes() as u64,
            )?;
            counter(
                e,
                "hubbub_lp_messages_enqueued",
                "Messages queued for long polls",
                h.lp_messages_enqueued.get(),
            )?;
            counter(
                e,
                "hubbub_lp_messages_drained",
                "Messages handed out by long polls",
                h.lp_messages_drained.get(),
            )?;
            let dropped = [
                ("full", h.lp_messages_dropped.get()),
                ("expired", h.lp_messages_expired.get()),
                ("evicted", h.lp_messages_evicted.get()),
            ];
            counters(
                e,
                "hubbub_lp_messages_dropped",
                "Long-poll messages dropped, by reason",
                "reason",
                dropped,
            )?;
        }
        limits(e, m, h)?;
        engine(e, m)?;
        counters(
            e,
            "hubbub_http_requests",
            "HTTP requests answered, by status",
            "status",
            h.http_requests.snapshot(),
        )
    }
}

/// A registry that reports `hub`'s and the HTTP layer's metrics.
pub(crate) fn registry(
    hub: &Hub,
    http: &Arc<HttpMetrics>,
    bridge: Option<Arc<Bridge>>,
) -> Registry {
    let mut registry = Registry::default();
    let collector = HubCollector {
        hub: hub.clone(),
        http: http.clone(),
        bridge,
    };
    registry.register_collector(Box::new(collector));
    registry
}

/// The text exposition of `registry`.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

//! What the HTTP side refuses before routing: a request from an origin the
//! hub's allow-list ([`HubLimits::origins`](hubbub_hub::HubLimits)) does
//! not name (403), and per client address ([`ip_key`](hubbub_hub::ip_key)):
//! `POST /ws/send` and `GET /ws/poll` over their request rates, and long
//! polls held at once over their cap (429). Every limit is off at 0, the
//! default. A request whose client address is unknown is not rate limited.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hubbub_hub::{Hub, IpRefusal, IpTable, IP_TABLE_ENTRIES};

use crate::{HttpMetrics, Request, Response};

/// Per-address limits of the long-polling routes; 0 turns one off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpRateLimits {
    /// `POST /ws/send` requests per second per client address.
    pub send_per_second: u32,
    /// `GET /ws/poll` requests per second per client address.
    pub poll_per_second: u32,
    /// Long polls held at once per client address (each waiting poll is
    /// one open request; a poll beyond gets 429 at once).
    pub polls_per_ip: usize,
}

/// The HTTP side's refusals, shared by every connection.
#[derive(Debug)]
pub(crate) struct Guard {
    send: Option<Mutex<IpTable>>,
    poll: Option<Mutex<IpTable>>,
    held: Option<Arc<Mutex<IpTable>>>,
}

fn table(per_second: u32, concurrent: usize) -> Option<Mutex<IpTable>> {
    (per_second > 0 || concurrent > 0)
        .then(|| Mutex::new(IpTable::new(per_second, concurrent, IP_TABLE_ENTRIES)))
}

fn lock(table: &Mutex<IpTable>) -> std::sync::MutexGuard<'_, IpTable> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// 429 naming the limit, with `Retry-After` when the wait is known.
fn too_many(what: String, wait: Option<Duration>) -> Response {
    let response = Response::json_error(429, &what);
    match wait {
        Some(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.with_header("Retry-After", secs.to_string())
        }
        None => response,
    }
}

impl Guard {
    pub(crate) fn new(limits: HttpRateLimits) -> Self {
        Guard {
            send: table(limits.send_per_second, 0),
            poll: table(limits.poll_per_second, 0),
            held: table(0, limits.polls_per_ip).map(Arc::new),
        }
    }

    /// The answer refusing `request`, if it is refused.
    pub(crate) fn refuse(
        &self,
        hub: &Hub,
        metrics: &HttpMetrics,
        request: &Request,
    ) -> Option<Response> {
        if let Some(refusal) = hub.limits().origins.refusal(request.header("origin")) {
            metrics.origin_rejected.inc();
            return Some(Response::json_error(403, &refusal));
        }
        let (route, table) = match request.path.as_str() {
            "/ws/send" => ("/ws/send", self.send.as_ref()?),
            "/ws/poll" => ("/ws/poll", self.poll.as_ref()?),
            _ => return None,
        };
        let ip = request.peer?.ip();
        match lock(table).try_request(ip, Instant::now()) {
            Ok(()) => None,
            Err(refusal) => {
                metrics.rate_limited.inc((route, "rate"));
                Some(match refusal {
                    IpRefusal::Rate(n, wait) => too_many(
                        format!("too many requests to {route}: at most {n} per second"),
                        Some(wait),
                    ),
                    _ => too_many("too many clients".into(), Some(Duration::from_secs(1))),
                })
            }
        }
    }

    /// A place for a long poll held for `peer`, given back when dropped.
    pub(crate) fn hold(
        &self,
        metrics: &HttpMetrics,
        peer: Option<IpAddr>,
    ) -> Result<HeldPoll, Response> {
        let (Some(table), Some(ip)) = (&self.held, peer) else {
            return Ok(HeldPoll(None));
        };
        match lock(table).try_open(ip, Instant::now()) {
            Ok(()) => Ok(HeldPoll(Some((table.clone(), ip)))),
            Err(refusal) => {
                metrics.rate_limited.inc(("/ws/poll", "polls"));
                Err(match refusal {
                    IpRefusal::Concurrent(n) => too_many(
                        format!("too many long polls from {}: at most {n} at once", ip),
                        None,
                    ),
                    _ => too_many("too many clients".into(), Some(Duration::from_secs(1))),
                })
            }
        }
    }
}

/// A held long poll's place under [`HttpRateLimits::polls_per_ip`].
pub(crate) struct HeldPoll(Option<(Arc<Mutex<IpTable>>, IpAddr)>);

impl Drop for HeldPoll {
    fn drop(&mut self) {
        if let Some((table, ip)) = &self.0 {
            lock(table).release(*ip);
        }
    }
}

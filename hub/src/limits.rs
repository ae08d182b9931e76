//! How much each may do: per-session message and byte rates (token
//! buckets), a cap on joined rooms, and connection limits — a global
//! maximum and, per client address, concurrent connections and new
//! connections per second. Every limit is off at 0, the default.
//!
//! The pieces are runtime-free: [`TokenBucket`] and [`IpTable`] take the
//! time as an argument (so tests need no sleeps), the hub checks messages
//! in [`Hub::deliver`](crate::Hub::deliver) and connections in
//! [`Hub::admit`](crate::Hub::admit), whose [`ConnectionSlot`] gives the
//! place back when dropped.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hubbub_core::{Accept, CloseCode, Message, Reject, Request};
use serde_json::json;

use crate::{Envelope, Hub, Identity, JoinError, Origins, Session};

/// What a session over its message or byte rate gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RatePolicy {
    /// Discard the message; tell the sender with an `error` envelope
    /// (`"error":"rate_limited"`), at most once a second.
    #[default]
    Drop,
    /// Close the session with 1008 and a reason naming the limit.
    Close,
}

impl RatePolicy {
    /// `drop` or `close` (the metrics label and setting value).
    pub fn as_str(self) -> &'static str {
        match self {
            RatePolicy::Drop => "drop",
            RatePolicy::Close => "close",
        }
    }
}

/// A hub's limits; `0` turns a limit off, and every one but the room name
/// length ([`DEFAULT_MAX_ROOM_NAME_BYTES`]) is off by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLimits {
    /// Origins allowed to upgrade (others get 403); empty allows any.
    pub origins: Origins,
    /// Messages per second per session (burst: one second's worth).
    pub messages_per_second: u32,
    /// Payload bytes per second per session (burst: one second's worth; a
    /// larger message passes on a full bucket and leaves it in debt).
    pub bytes_per_second: u32,
    /// What a session over either rate gets.
    pub rate_policy: RatePolicy,
    /// Rooms a session may be in at once; a join beyond is refused.
    pub max_rooms_per_session: usize,
    /// Longest room name, in bytes, a session may join (or resume); a
    /// longer one is refused. An empty name is always refused.
    pub max_room_name_bytes: usize,
    /// Sessions at once over all clients (503 beyond).
    pub max_connections: usize,
    /// Sessions at once from one client address (429 beyond).
    pub max_connections_per_ip: usize,
    /// New connections per second from one client address (429 beyond).
    pub connections_per_ip_per_second: u32,
}

/// The default [`HubLimits::max_room_name_bytes`].
pub const DEFAULT_MAX_ROOM_NAME_BYTES: usize = 128;

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            origins: Origins::default(),
            messages_per_second: 0,
            bytes_per_second: 0,
            rate_policy: RatePolicy::default(),
            max_rooms_per_session: 0,
            max_room_name_bytes: DEFAULT_MAX_ROOM_NAME_BYTES,
            max_connections: 0,
            max_connections_per_ip: 0,
            connections_per_ip_per_second: 0,
        }
    }
}

impl HubLimits {
    fn counts_connections(&self) -> bool {
        self.max_connections > 0
            || self.max_connections_per_ip > 0
            || self.connections_per_ip_per_second > 0
    }
}

// ----- token bucket ----------------------------------------------------

/// A token bucket: `rate` tokens a second, holding at most one second's
/// worth. Time is passed in.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens a second.
    pub fn per_second(rate: u32, now: Instant) -> Self {
        TokenBucket {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now.max(self.last);
    }

    /// Take `cost` tokens if there are that many. A cost above the bucket's
    /// size is taken from a full bucket, leaving it in debt.
    pub fn try_take(&mut self, now: Instant, cost: f64) -> bool {
        self.refill(now);
        if self.tokens >= cost.min(self.rate) {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// How long until one token is there (zero if it is now).
    pub fn wait(&self, now: Instant) -> Duration {
        let mut bucket = *self;
        bucket.refill(now);
        let missing = 1.0_f64.min(bucket.rate) - bucket.tokens;
        if missing <= 0.0 || bucket.rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / bucket.rate)
        }
    }

    /// True when the bucket is full again at `now`: forgetting it changes
    /// nothing.
    fn is_full(&self, now: Instant) -> bool {
        let mut bucket = *self;
        bucket.refill(now);
        bucket.tokens >= bucket.rate
    }
}

// ----- per-session rates -------------------------------------------------

/// A session's rate state, made only when a rate limit is set.
#[derive(Debug)]
pub(crate) struct SessionRate {
    messages: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    policy: RatePolicy,
    /// When the sender was last told it is rate limited.
    noticed: Option<Instant>,
}

/// What [`SessionRate::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    Pass,
    /// Over the limit named (`messages` or `bytes`, with its rate); tell
    /// the sender when `notify`.
    Drop {
        limit: &'static str,
        rate: u32,
        notify: bool,
    },
    Close {
        limit: &'static str,
        rate: u32,
    },
}

impl SessionRate {
    /// The state for a new session, if `limits` sets a rate.
    pub(crate) fn new(limits: &HubLimits, now: Instant) -> Option<SessionRate> {
        let bucket = |rate| (rate > 0).then(|| TokenBucket::per_second(rate, now));
        let rate = SessionRate {
            messages: bucket(limits.messages_per_second),
            bytes: bucket(limits.bytes_per_second),
            policy: limits.rate_policy,
            noticed: None,
        };
        (rate.messages.is_some() || rate.bytes.is_some()).then_some(rate)
    }

    /// Account for a message of `len` bytes at `now`.
    pub(crate) fn check(&mut self, now: Instant, len: usize) -> RateVerdict {
        let over = if self
            .messages
            .as_mut()
            .is_some_and(|b| !b.try_take(now, 1.0))
        {
            ("messages", self.messages.as_ref())
        } else if self
            .bytes
            .as_mut()
            .is_some_and(|b| !b.try_take(now, len as f64))
        {
            ("bytes", self.bytes.as_ref())
        } else {
            return RateVerdict::Pass;
        };
        let (limit, rate) = (over.0, over.1.map_or(0, |b| b.rate as u32));
        match self.policy {
            RatePolicy::Close => RateVerdict::Close { limit, rate },
            RatePolicy::Drop => {
                let notify = self
                    .noticed
                    .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
                if notify {
                    self.noticed = Some(now);
                }
                RateVerdict::Drop {
                    limit,
                    rate,
                    notify,
                }
            }
        }
    }
}

/// What a session keeps of the limits: made only when a rate or a
/// connection limit is set (a session without keeps one null pointer).
#[derive(Debug)]
pub(crate) struct SessionLimits {
    rate: Option<Mutex<SessionRate>>,
    /// The connection's place, given back when the session ends.
    slot: Mutex<ConnectionSlot>,
}

impl SessionLimits {
    pub(crate) fn new(
        limits: &HubLimits,
        slot: ConnectionSlot,
        now: Instant,
    ) -> Option<Box<SessionLimits>> {
        let rate = SessionRate::new(limits, now).map(Mutex::new);
        (rate.is_some() || slot.is_counted()).then(|| {
            Box::new(SessionLimits {
                rate,
                slot: Mutex::new(slot),
            })
        })
    }

    /// The session ended: give its connection's place back (once).
    pub(crate) fn release(&self) {
        drop(std::mem::take(
            &mut *self.slot.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }
}

// ----- per-address table ---------------------------------------------------

/// Entries an [`IpTable`] keeps at most by default: about 5 MiB at worst.
pub const IP_TABLE_ENTRIES: usize = 65_536;

/// The key of a client address: IPv4 whole, IPv6 by its /64 prefix (one
/// host usually has a whole /64, so counting single IPv6 addresses would
/// limit nothing). An IPv4-mapped IPv6 address counts as IPv4.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[derive(Debug)]
struct IpEntry {
    active: usize,
    bucket: Option<TokenBucket>,
}

/// Why an [`IpTable`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRefusal {
    /// The address has this many open already.
    Concurrent(usize),
    /// Over the rate (per second); the next is possible after the wait.
    Rate(u32, Duration),
    /// The table is full of addresses in use.
    Full,
}

/// Counts per client address ([`ip_key`]): what is open now and a token
/// bucket of new arrivals. Bounded: idle entries (nothing open, bucket
/// full again) are forgotten when room is needed, and a table full of
/// entries in use refuses new addresses rather than grow.
#[derive(Debug)]
pub struct IpTable {
    entries: HashMap<IpAddr, IpEntry>,
    per_second: u32,
    concurrent: usize,
    max_entries: usize,
    last_sweep: Option<Instant>,
}

impl IpTable {
    /// At most `concurrent` open and `per_second` new per address (0: no
    /// such limit), for at most `max_entries` addresses.
    pub fn new(per_second: u32, concurrent: usize, max_entries: usize) -> Self {
        IpTable {
            entries: HashMap::new(),
            per_second,
            concurrent,
            max_entries: max_entries.max(1),
            last_sweep: None,
        }
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Count a new arrival from `ip` that stays open until
    /// [`release`](Self::release) (a connection, a held poll).
    pub fn try_open(&mut self, ip: IpAddr, now: Instant) -> Result<(), IpRefusal> {
        self.arrive(ip, now, true)
    }

    /// Count a request from `ip` against the rate only.
    pub fn try_request(&mut self, ip: IpAddr, now: Instant) -> Result<(), IpRefusal> {
        self.arrive(ip, now, false)
    }

    /// Something opened by [`try_open`](Self::try_open) ended.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(entry) = self.entries.get_mut(&ip_key(ip)) {
            entry.active = entry.active.saturating_sub(1);
        }
    }

    fn arrive(&mut self, ip: IpAddr, now: Instant, opens: bool) -> Result<(), IpRefusal> {
        let key = ip_key(ip);
        if !self.entries.contains_key(&key) {
            if self.entries.len() >= self.max_entries {
                self.sweep(now);
            }
            if self.entries.len() >= self.max_entries {
                return Err(IpRefusal::Full);
            }
            let bucket =
                (self.per_second > 0).then(|| TokenBucket::per_second(self.per_second, now));
            self.entries.insert(key, IpEntry { active: 0, bucket });
        }
        let (concurrent, per_second) = (self.concurrent, self.per_second);
        let Some(entry) = self.entries.get_mut(&key) else {
            return Err(IpRefusal::Full);
        };
        if opens && concurrent > 0 && entry.active >= concurrent {
            return Err(IpRefusal::Concurrent(concurrent));
        }
        if let Some(bucket) = &mut entry.bucket {
            if !bucket.try_take(now, 1.0) {
                return Err(IpRefusal::Rate(per_second, bucket.wait(now)));
            }
        }
        if opens {
            entry.active += 1;
        }
        Ok(())
    }

    /// Forget idle entries; at most every 100 ms, so that a table full of
    /// entries in use is not walked on every arrival.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_millis(100))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.entries
            .retain(|_, e| e.active > 0 || e.bucket.is_some_and(|b| !b.is_full(now)));
    }
}

// ----- connection admission ----------------------------------------------

/// A hub's connection counts.
#[derive(Debug)]
pub(crate) struct Admission {
    max: usize,
    open: AtomicUsize,
    per_ip: Option<Mutex<IpTable>>,
}

impl Admission {
    pub(crate) fn new(limits: &HubLimits) -> Option<Arc<Admission>> {
        limits.counts_connections().then(|| {
            let per_ip =
                limits.max_connections_per_ip > 0 || limits.connections_per_ip_per_second > 0;
            Arc::new(Admission {
                max: limits.max_connections,
                open: AtomicUsize::new(0),
                per_ip: per_ip.then(|| {
                    Mutex::new(IpTable::new(
                        limits.connections_per_ip_per_second,
                        limits.max_connections_per_ip,
                        IP_TABLE_ENTRIES,
                    ))
                }),
            })
        })
    }

    /// Take a place for a connection from `ip`, or the answer refusing it
    /// (counted in `metrics`).
    #[cfg(test)]
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        metrics: &crate::Metrics,
    ) -> Result<ConnectionSlot, Reject> {
        self.reserve(ip).map_err(|(reason, reject)| {
            metrics.limits.connections_rejected.inc(reason);
            reject
        })
    }

    /// Take a place for a connection from `ip`, or the reason and answer
    /// refusing it (not counted yet: the answer may never be given).
    pub(crate) fn reserve(self: &Arc<Self>, ip: Option<IpAddr>) -> Reservation {
        let open = self.open.fetch_add(1, Ordering::SeqCst);
        let mut slot = SlotInner {
            admission: self.clone(),
            ip: None,
        };
        if self.max > 0 && open >= self.max {
            let reject = Reject::new(503)
                .with_header("Retry-After", "1")
                .with_body(format!("server full: at most {} connections", self.max));
            return Err(("max_connections", reject));
        }
        if let (Some(table), Some(ip)) = (&self.per_ip, ip) {
            let refused = table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_open(ip, Instant::now());
            let key = ip_key(ip);
            match refused {
                Ok(()) => slot.ip = Some(ip),
                Err(IpRefusal::Concurrent(n)) => {
                    let body = format!("too many connections from {key}: at most {n} at once");
                    return Err(("per_ip", Reject::new(429).with_body(body)));
                }
                Err(IpRefusal::Rate(n, wait)) => {
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    let body =
                        format!("too many new connections from {key}: at most {n} per second");
                    let reject = Reject::new(429)
                        .with_header("Retry-After", secs.to_string())
                        .with_body(body);
                    return Err(("per_ip_rate", reject));
                }
                Err(IpRefusal::Full) => {
                    let reject = Reject::new(503)
                        .with_header("Retry-After", "1")
                        .with_body("too many clients");
                    return Err(("ip_table_full", reject));
                }
            }
        }
        Ok(ConnectionSlot(Some(Box::new(slot))))
    }
}

/// A connection's place, or the reason (a metrics label) and the answer
/// refusing it.
pub(crate) type Reservation = Result<ConnectionSlot, (&'static str, Reject)>;

/// A connection's place under the hub's connection limits (from
/// [`Hub::admit`](crate::Hub::admit)): given back exactly once, when
/// dropped — at the session's end, after a failed handshake, or while
/// unwinding. Holds nothing when no connection limit is set.
#[derive(Debug, Default)]
pub struct ConnectionSlot(Option<Box<SlotInner>>);

#[derive(Debug)]
struct SlotInner {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::SeqCst);
        if let (Some(table), Some(ip)) = (&self.admission.per_ip, self.ip) {
            table.lock().unwrap_or_else(|p| p.into_inner()).release(ip);
        }
    }
}

impl ConnectionSlot {
    /// A slot that counts nothing.
    pub fn none() -> Self {
        ConnectionSlot(None)
    }

    /// True when the slot counts toward a connection limit.
    pub fn is_counted(&self) -> bool {
        self.0.is_some()
    }
}

// ----- the hub's checks ------------------------------------------------------

impl Hub {
    /// The limits the hub was built with.
    pub fn limits(&self) -> &HubLimits {
        &self.0.limits
    }

    /// Answer an upgrade request from `peer`: [`decide`](Self::decide)'s
    /// checks, then the connection limits (503 when the hub is full, 429
    /// for one address over its share). The slot holds the connection's
    /// place: keep it for the session's life (dropping it gives the place
    /// back). [`run_session`](crate::run_session) does this.
    pub fn admit(
        &self,
        request: &Request,
        peer: Option<SocketAddr>,
    ) -> Result<(Accept, ConnectionSlot), Reject> {
        self.admit_reserved(request, self.reserve(peer), &mut None)
    }

    /// Count a connection from `peer` from now on (its accept, before its
    /// request arrives): connections in their opening handshake count
    /// toward the limits too. The answer comes from
    /// [`admit_reserved`](Self::admit_reserved).
    pub(crate) fn reserve(&self, peer: Option<SocketAddr>) -> Reservation {
        match &self.0.admission {
            Some(admission) => admission.reserve(peer.map(|p| p.ip())),
            None => Ok(ConnectionSlot::none()),
        }
    }

    /// [`admit`](Self::admit) for a connection counted since its accept.
    /// The identity the request's token proved goes to `identity` (see
    /// [`decide_as`](Self::decide_as)).
    pub(crate) fn admit_reserved(
        &self,
        request: &Request,
        reserved: Reservation,
        identity: &mut Option<Identity>,
    ) -> Result<(Accept, ConnectionSlot), Reject> {
        self.check_path_and_origin(request)?;
        let slot = reserved.map_err(|(reason, reject)| {
            self.0.metrics.limits.connections_rejected.inc(reason);
            reject
        })?;
        Ok((self.answer_upgrade(request, identity)?, slot))
    }

    /// 403 naming the origin, for an `Origin` not on the list.
    pub(crate) fn check_origin(&self, request: &Request) -> Result<(), Reject> {
        match self.0.limits.origins.refusal(request.header("origin")) {
            None => Ok(()),
            Some(refusal) => {
                self.0.metrics.limits.connections_rejected.inc("origin");
                Err(Reject::forbidden().with_body(refusal))
            }
        }
    }

    /// Count `message` against the session's rates; false when it must
    /// not reach the callbacks (dropped, or the session is closing).
    pub(crate) fn within_rate(&self, session: &Session, message: &Message) -> bool {
        let Some(rate) = session.0.limits.as_ref().and_then(|l| l.rate.as_ref()) else {
            return true;
        };
        let verdict = rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(Instant::now(), message.len());
        let counts = &self.0.metrics.limits.rate_limited;
        match verdict {
            RateVerdict::Pass => true,
            RateVerdict::Drop {
                limit,
                rate,
                notify,
            } => {
                counts.inc((limit, "drop"));
                if notify {
                    let payload = json!({
                        "error": "rate_limited",
                        "limit": limit,
                        "per_second": rate,
                        "message": format!("over {rate} {limit} per second: messages dropped"),
                    });
                    let _ = session.send_text(Envelope::new("error", payload).to_json());
                }
                false
            }
            RateVerdict::Close { limit, rate } => {
                counts.inc((limit, "close"));
                session.close(
                    CloseCode::POLICY_VIOLATION,
                    &format!("rate limit: over {rate} {limit} per second"),
                );
                false
            }
        }
    }

    /// The cap on rooms, when `session` (not in `room`) is at it already.
    pub(crate) fn room_cap_reached(&self, session: &Session, room: &str) -> Option<usize> {
        let max = self.0.limits.max_rooms_per_session;
        let rooms = self.rooms_of(session);
        (max > 0 && rooms.len() >= max && !rooms.iter().any(|r| r == room)).then_some(max)
    }

    /// Refuse a join of an empty room name or one over
    /// [`HubLimits::max_room_name_bytes`], telling `session` with an error
    /// envelope (which does not repeat a long name).
    pub(crate) fn check_room_name(&self, session: &Session, room: &str) -> Result<(), JoinError> {
        let max = self.0.limits.max_room_name_bytes;
        let (error, payload) = if room.is_empty() {
            (
                JoinError::EmptyRoomName,
                json!({
                    "error": "room_name_empty",
                    "message": "join refused: the room name is empty",
                }),
            )
        } else if max > 0 && room.len() > max {
            (
                JoinError::RoomNameTooLong(max),
                json!({
                    "error": "room_name_too_long",
                    "length": room.len(),
                    "limit": max,
                    "message": format!(
                        "join refused: room name of {} bytes, at most {max}",
                        room.len()
                    ),
                }),
            )
        } else {
            return Ok(());
        };
        let _ = session.send_text(Envelope::new("error", payload).to_json());
        Err(error)
    }

    /// Tell `session` its join of `room` was refused for the room cap.
    pub(crate) fn refuse_join(&self, session: &Session, room: &str, max: usize) {
        self.0.metrics.limits.room_joins_refused.inc();
        let payload = json!({
            "error": "room_limit",
            "room": room,
            "limit": max,
            "message": format!("join refused: at most {max} rooms per session"),
        });
        let _ = session.send_text(Envelope::new("error", payload).to_json());
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{JoinError, Metrics};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_bucket_allows_one_seconds_worth_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_second(10, t0);
        assert_eq!((0..30).filter(|_| bucket.try_take(t0, 1.0)).count(), 10);
        assert_eq!(bucket.wait(t0), ms(100));
        assert!(!bucket.try_take(t0 + ms(50), 1.0));
        assert!(bucket.try_take(t0 + ms(100), 1.0));
        // Over 2 s at 10/s, offering 5 per 100 ms: 20 pass.
        let passed = (2..=21)
            .map(|i| {
                let now = t0 + ms(100 * i);
                (0..5).filter(|_| bucket.try_take(now, 1.0)).count()
            })
            .sum::<usize>();
        assert_eq!(passed, 20);
        // Idle for long: never more than one second's worth.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..30).filter(|_| bucket.try_take(later, 1.0)).count(), 10);
        assert!(!bucket.is_full(later));
        assert!(bucket.is_full(later + Duration::from_secs(1)));
        // A clock that goes back is harmless.
        assert!(!bucket.try_take(t0, 1.0));
    }

    #[test]
    fn a_big_cost_passes_on_a_full_bucket_and_leaves_debt() {
        let t0 = Instant::now();
        let mut bytes = TokenBucket::per_second(1000, t0);
        assert!(bytes.try_take(t0, 3000.0), "bigger than the bucket");
        assert!(!bytes.try_take(t0 + ms(1500), 1.0), "still in debt");
        assert!(!bytes.try_take(t0 + ms(2000), 1.0), "back to zero only");
        assert!(bytes.try_take(t0 + ms(2100), 1.0));
        assert!(!bytes.try_take(t0 + ms(2100), 3000.0), "not full");
    }

    #[test]
    fn session_rates_drop_with_a_notice_a_second_or_close() {
        let t0 = Instant::now();
        let limits = HubLimits {
            messages_per_second: 2,
            ..HubLimits::default()
        };
        assert!(
            SessionRate::new(&HubLimits::default(), t0).is_none(),
            "off: nothing made"
        );
        let mut rate = SessionRate::new(&limits, t0).unwrap();
        let verdicts: Vec<_> = (0..5).map(|i| rate.check(t0 + ms(i), 10)).collect();
        assert_eq!(verdicts[..2], [RateVerdict::Pass, RateVerdict::Pass]);
        let drop = |notify| RateVerdict::Drop {
            limit: "messages",
            rate: 2,
            notify,
        };
        assert_eq!(verdicts[2..], [drop(true), drop(false), drop(false)]);
        assert_eq!(rate.check(t0 + ms(600), 10), RateVerdict::Pass);
        assert_eq!(rate.check(t0 + ms(700), 10), drop(false));
        assert_eq!(rate.check(t0 + ms(1002), 10), RateVerdict::Pass);
        assert_eq!(rate.check(t0 + ms(1003), 10), drop(true));

        let limits = HubLimits {
            bytes_per_second: 100,
            rate_policy: RatePolicy::Close,
            ..HubLimits::default()
        };
        let mut rate = SessionRate::new(&limits, t0).unwrap();
        assert_eq!(rate.check(t0, 60), RateVerdict::Pass);
        assert_eq!(
            rate.check(t0, 60),
            RateVerdict::Close {
                limit: "bytes",
                rate: 100
            }
        );
    }

    #[test]
    fn the_ip_table_limits_concurrency_and_rate_per_address() {
        let t0 = Instant::now();
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let mut table = IpTable::new(0, 2, 100);
        assert_eq!(table.try_open(a, t0), Ok(()));
        assert_eq!(table.try_open(a, t0), Ok(()));
        assert_eq!(table.try_open(a, t0), Err(IpRefusal::Concurrent(2)));
        assert_eq!(table.try_open(b, t0), Ok(()), "another address");
        table.release(a);
        assert_eq!(table.try_open(a, t0), Ok(()));

        let mut table = IpTable::new(3, 0, 100);
        for _ in 0..3 {
            assert_eq!(table.try_request(a, t0), Ok(()));
        }
        assert!(matches!(
            table.try_request(a, t0),
            Err(IpRefusal::Rate(3, _))
        ));
        assert_eq!(table.try_request(b, t0), Ok(()));
        assert_eq!(table.try_request(a, t0 + ms(334)), Ok(()), "refilled");
    }

    #[test]
    fn ipv6_counts_by_64_prefix_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(ip_key(one), ip_key(two));
        assert_ne!(ip_key(one), ip_key("2001:db8:1:3::1".parse().unwrap()));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let mut table = IpTable::new(0, 1, 100);
        let t0 = Instant::now();
        assert_eq!(table.try_open(one, t0), Ok(()));
        assert_eq!(table.try_open(two, t0), Err(IpRefusal::Concurrent(1)));
    }

    #[test]
    fn rotating_addresses_cannot_grow_the_table_and_idle_entries_expire() {
        let t0 = Instant::now();
        let mut table = IpTable::new(5, 0, 1000);
        let ip = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..1000 {
            assert_eq!(table.try_request(ip(i), t0), Ok(()));
        }
        assert_eq!(table.len(), 1000);
        // Full of fresh entries (buckets not refilled): new ones refused.
        assert_eq!(table.try_request(ip(5000), t0), Err(IpRefusal::Full));
        // A second later every bucket is full again: idle, forgotten.
        let later = t0 + Duration::from_secs(1);
        for i in 0..100_000 {
            let now = later + ms(i / 1000 * 1000);
            let _ = table.try_request(ip(10_000 + i as u32), now);
            assert!(table.len() <= 1000);
        }
        // Entries with something open are kept.
        let mut table = IpTable::new(0, 1, 2);
        assert_eq!(table.try_open(ip(1), t0), Ok(()));
        assert_eq!(table.try_open(ip(2), t0), Ok(()));
        assert_eq!(table.try_open(ip(3), later), Err(IpRefusal::Full));
        table.release(ip(1));
        let much_later = later + Duration::from_secs(1);
        assert_eq!(table.try_open(ip(3), much_later), Ok(()));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_hub_drops_over_its_rate_and_caps_rooms() {
        use crate::hub::tests::texts;
        use crate::SessionInfo;
        use std::sync::atomic::AtomicUsize;
        let seen = Arc::new(AtomicUsize::new(0));
        let s2 = seen.clone();
        let hub = Hub::builder()
            .limits(HubLimits {
                messages_per_second: 3,
                max_rooms_per_session: 2,
                ..HubLimits::default()
            })
            .on_message(move |_, _| {
                s2.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        let [a, b] = [(); 2].map(|_| hub.open(SessionInfo::new(None, "/", [])).unwrap());
        for _ in 0..9 {
            hub.deliver(&a, &Message::Text("x".into()));
        }
        hub.deliver(&b, &Message::Text("x".into()));
        assert_eq!(seen.load(Ordering::SeqCst), 3 + 1, "3 of a's, b's own");
        let notices = texts(&a);
        assert_eq!(notices.len(), 1, "one notice a second: {notices:?}");
        assert!(notices[0].starts_with(r#"{"type":"error","payload":{"error":"rate_limited""#));
        assert!(a.is_open() && texts(&b).is_empty());
        let counts = hub.metrics().limits.rate_limited.snapshot();
        assert_eq!(counts.get(&("messages", "drop")), Some(&6));

        assert_eq!(hub.try_join(&b, "r1"), Ok(true));
        assert_eq!(hub.try_join(&b, "r2"), Ok(true));
        assert_eq!(hub.try_join(&b, "r1"), Ok(false), "a member already");
        assert_eq!(hub.try_join(&b, "r3"), Err(JoinError::RoomLimit(2)));
        assert!(!hub.join(&b, "r4"));
        assert_eq!(hub.rooms_of(&b).len(), 2);
        let refused = texts(&b);
        assert_eq!(refused.len(), 2);
        assert!(
            refused[0].contains(r#""error":"room_limit","limit":2"#),
            "{refused:?}"
        );
        assert_eq!(hub.metrics().limits.room_joins_refused.get(), 2);
        hub.leave(&b, "r1");
        assert_eq!(hub.try_join(&b, "r3"), Ok(true));
    }

    #[test]
    fn room_names_empty_or_over_the_limit_are_refused() {
        use crate::hub::tests::texts;
        use crate::SessionInfo;
        let hub = Hub::builder()
            .limits(HubLimits {
                max_room_name_bytes: 8,
                ..HubLimits::default()
            })
            .build();
        let a = hub.open(SessionInfo::new(None, "/", [])).unwrap();
        assert_eq!(hub.try_join(&a, "12345678"), Ok(true));
        assert_eq!(
            hub.try_join(&a, "123456789"),
            Err(JoinError::RoomNameTooLong(8))
        );
        assert_eq!(hub.try_join(&a, ""), Err(JoinError::EmptyRoomName));
        assert!(!hub.join(&a, &"x".repeat(65_536)));
        assert_eq!(hub.rooms_of(&a), ["12345678"]);
        let refused = texts(&a);
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(
            refused[0].starts_with(
                r#"{"type":"error","payload":{"error":"room_name_too_long","length":9,"limit":8"#
            ),
            "{refused:?}"
        );
        assert!(refused[1].contains(r#""error":"room_name_empty""#));
        assert!(refused[2].len() < 200, "the long name is not echoed");
        // The default is 128 bytes; 0 turns the length limit off.
        assert_eq!(HubLimits::default().max_room_name_bytes, 128);
        let open = Hub::builder()
            .limits(HubLimits {
                max_room_name_bytes: 0,
                ..HubLimits::default()
            })
            .build();
        let b = open.open(SessionInfo::new(None, "/", [])).unwrap();
        assert_eq!(open.try_join(&b, &"x".repeat(1000)), Ok(true));
        assert_eq!(open.try_join(&b, ""), Err(JoinError::EmptyRoomName));
    }

    #[test]
    fn connection_slots_give_their_place_back_once() {
        let metrics = Metrics::default();
        let limits = HubLimits {
            max_connections: 2,
            max_connections_per_ip: 1,
            ..HubLimits::default()
        };
        assert!(Admission::new(&HubLimits::default()).is_none());
        let admission = Admission::new(&limits).unwrap();
        let a = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let c = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
        let first = admission.admit(a, &metrics).unwrap();
        assert_eq!(admission.admit(a, &metrics).unwrap_err().status(), 429);
        let second = admission.admit(b, &metrics).unwrap();
        let full = admission.admit(c, &metrics).unwrap_err();
        assert_eq!(full.status(), 503);
        assert_eq!(full.body(), "server full: at most 2 connections");
        drop(first);
        assert_eq!(admission.open.load(Ordering::SeqCst), 1);
        let third = admission.admit(a, &metrics).unwrap();
        drop((second, third));
        assert_eq!(admission.open.load(Ordering::SeqCst), 0);
        let by_reason = metrics.limits.connections_rejected.snapshot();
        assert_eq!(by_reason.get("per_ip"), Some(&1));
        assert_eq!(by_reason.get("max_connections"), Some(&1));
    }
}

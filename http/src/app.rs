//! Routing: the application's routes, the built-in ones (`/api/health`,
//! `/metrics`, `/openapi.json`, `/ws/poll`, `/ws/send`) and static files.

use std::{fmt, net::IpAddr, sync::Arc, time::Duration};

use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value};

use hubbub_hub::{Envelope, Hub, Identity};

use crate::{
    bridge::{Bridge, BridgeParts, SendRefused},
    exposition,
    guard::{Guard, HeldPoll, HttpRateLimits},
    login,
    longpoll::{session_for, Overflow},
    openapi,
    request::{Limits, Request},
    HttpMetrics, LongPoll, LongPollConfig, Response, StaticFiles,
};

/// A route handler: a request in, a response out. Handlers run on the
/// connection's task and must not block.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    handler: Box<Handler>,
}

/// Timings of HTTP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// A keep-alive connection with no request in progress is closed after
    /// this long.
    pub idle: Duration,
    /// A request must arrive whole within this long of its first byte
    /// (else 408), and a response must be taken by the peer within it.
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            idle: Duration::from_secs(30),
            request: Duration::from_secs(10),
        }
    }
}

/// Builds an [`HttpApp`].
pub struct HttpAppBuilder {
    hub: Hub,
    routes: Vec<Route>,
    files: Option<StaticFiles>,
    service: String,
    limits: Limits,
    timeouts: HttpTimeouts,
    bridge: BridgeParts,
    rate_limits: HttpRateLimits,
}

impl HttpAppBuilder {
    /// Answer `GET` (and `HEAD`) on `path` with `handler`.
    pub fn get(
        self,
        path: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.route("GET", path, handler)
    }

    /// Answer `POST` on `path` with `handler`.
    pub fn post(
        self,
        path: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.route("POST", path, handler)
    }

    fn route(
        mut self,
        method: &'static str,
        path: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.routes.push(Route {
            method,
            path: path.to_owned(),
            handler: Box::new(handler),
        });
        self
    }

    /// Serve static files (after every route).
    pub fn static_files(mut self, files: StaticFiles) -> Self {
        self.files = Some(files);
        self
    }

    /// The `service` field of `GET /api/health` (`hubbub` by default).
    pub fn service_name(mut self, name: &str) -> Self {
        self.service = name.to_owned();
        self
    }

    /// Request size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Per-address limits of `/ws/send` and `/ws/poll` (off by default;
    /// the origin allow-list is the hub's, [`HubLimits`](hubbub_hub::HubLimits)).
    pub fn rate_limits(mut self, limits: HttpRateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Connection timeouts.
    pub fn timeouts(mut self, timeouts: HttpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Enable long polling (`GET /ws/poll`, `POST /ws/send`): every text
    /// broadcast of the hub is then mirrored into a poll session.
    pub fn long_polling(mut self, config: LongPollConfig) -> Self {
        self.bridge.config = Some(config);
        self
    }

    /// Decide what poll clients receive for a text broadcast to `room`
    /// (`None`: to everyone); returning `None` mirrors nothing. By default
    /// an envelope is mirrored as is, other text as a `message` envelope
    /// with payload `{"text": ..}`.
    pub fn mirror_with(
        mut self,
        f: impl Fn(Option<&str>, &str) -> Option<Envelope> + Send + Sync + 'static,
    ) -> Self {
        self.bridge.mirror = Some(Box::new(f));
        self
    }

    /// Decide how an envelope sent over HTTP reaches WebSocket sessions. By
    /// default its JSON goes to its room (or to everyone without one).
    pub fn on_http_send(mut self, f: impl Fn(&Hub, &Envelope) + Send + Sync + 'static) -> Self {
        self.bridge.send = Some(Box::new(move |hub, _, envelope| {
            f(hub, envelope);
            Ok(())
        }));
        self
    }

    /// [`on_http_send`](Self::on_http_send) with the sender's identity
    /// (from its `Authorization: Bearer` token when the hub authenticates;
    /// `None` otherwise).
    pub fn on_http_send_as(
        mut self,
        f: impl Fn(&Hub, Option<&Identity>, &Envelope) + Send + Sync + 'static,
    ) -> Self {
        self.bridge.send = Some(Box::new(move |hub, identity, envelope| {
            f(hub, identity, envelope);
            Ok(())
        }));
        self
    }

    /// [`on_http_send_as`](Self::on_http_send_as) for a hook that may
    /// refuse the envelope (a store whose queue is full: `Err(StoreError::Busy.into())`):
    /// `POST /ws/send` then answers 503 with `Retry-After` naming the
    /// reason, not 202.
    pub fn try_on_http_send_as(
        mut self,
        f: impl Fn(&Hub, Option<&Identity>, &Envelope) -> Result<(), SendRefused>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.bridge.send = Some(Box::new(f));
        self
    }

    /// The demo login: `GET /api/login` answers
    /// `{"auth_required": jwt.is_some()}`; with `jwt`, `POST /api/login`
    /// with `{"name": N}` (1 to 32 characters, no control characters or
    /// `:`) answers `{"token": <HS256 JWT for N, valid for ttl>, "user": N}`
    /// (400 naming the problem otherwise); without, 404.
    #[cfg(feature = "jwt")]
    pub fn demo_login(self, jwt: Option<hubbub_hub::JwtAuth>, ttl: Duration) -> Self {
        let required = json!({ "auth_required": jwt.is_some() }).to_string();
        self.get("/api/login", move |_| {
            Response::new(200)
                .with_body("application/json", required.clone())
                .with_header("Cache-Control", "no-cache")
        })
        .post("/api/login", move |request| match &jwt {
            Some(jwt) => login::login(jwt, ttl, request),
            None => Response::json_error(404, "authentication is off: no login needed"),
        })
    }

    /// The app. With long polling, its bridge starts following the hub's
    /// broadcasts now.
    pub fn build(self) -> HttpApp {
        let openapi = openapi::document(&self.service, &self.routes).to_string();
        let metrics = Arc::new(HttpMetrics::default());
        let bridge = self.bridge.build(metrics.clone()).map(Arc::new);
        if let Some(bridge) = &bridge {
            self.hub.observe(bridge.clone());
        }
        HttpApp(Arc::new(Inner {
            registry: exposition::registry(&self.hub, &metrics, bridge.clone()),
            metrics,
            bridge,
            hub: self.hub,
            routes: self.routes,
            files: self.files,
            health: json!({ "ok": true, "service": self.service }).to_string(),
            openapi,
            limits: self.limits,
            timeouts: self.timeouts,
            guard: Guard::new(self.rate_limits),
        }))
    }
}

struct Inner {
    hub: Hub,
    metrics: Arc<HttpMetrics>,
    bridge: Option<Arc<Bridge>>,
    routes: Vec<Route>,
    files: Option<StaticFiles>,
    health: String,
    openapi: String,
    registry: Registry,
    limits: Limits,
    timeouts: HttpTimeouts,
    guard: Guard,
}

/// Everything served over HTTP beside a [`Hub`]: cheap to clone, shared by
/// every connection.
#[derive(Clone)]
pub struct HttpApp(Arc<Inner>);

impl fmt::Debug for HttpApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpApp")
            .field("routes", &self.0.routes.len())
            .field("files", &self.0.files)
            .finish_non_exhaustive()
    }
}

/// How a request is answered.
#[derive(Debug)]
pub enum Reply {
    /// At once.
    Now(Response),
    /// A long poll: hold until a message or the timeout.
    Poll(PollRequest),
}

/// A validated `GET /ws/poll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    /// The poll session.
    pub session: String,
    /// Most messages to return.
    pub max: usize,
    /// How long to hold the request.
    pub timeout: Duration,
}

/// The built-in routes and their methods.
const BUILT_IN: &[(&str, &str)] = &[
    ("/api/health", "GET"),
    ("/metrics", "GET"),
    ("/openapi.json", "GET"),
    ("/ws/poll", "GET"),
    ("/ws/send", "POST"),
];

impl HttpApp {
    /// Start building the HTTP side of `hub`.
    pub fn builder(hub: Hub) -> HttpAppBuilder {
        HttpAppBuilder {
            hub,
            routes: Vec::new(),
            files: None,
            service: "hubbub".into(),
            limits: Limits::default(),
            timeouts: HttpTimeouts::default(),
            bridge: BridgeParts::default(),
            rate_limits: HttpRateLimits::default(),
        }
    }

    /// The hub served.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// The HTTP layer's counters.
    pub fn metrics(&self) -> &HttpMetrics {
        &self.0.metrics
    }

    /// The long-polling sessions, if [`HttpAppBuilder::long_polling`]
    /// enabled them.
    pub fn long_poll(&self) -> Option<&LongPoll> {
        self.0.bridge.as_deref().map(|bridge| &bridge.long_poll)
    }

    /// Request size limits.
    pub fn limits(&self) -> Limits {
        self.0.limits
    }

    /// Connection timeouts.
    pub fn timeouts(&self) -> HttpTimeouts {
        self.0.timeouts
    }

    /// Count an answered request.
    pub(crate) fn count(&self, status: u16) {
        self.0.metrics.http_requests.inc(status);
    }

    /// A place for a long poll held for `peer` (429 over the cap).
    pub(crate) fn hold_poll(&self, peer: Option<IpAddr>) -> Result<HeldPoll, Response> {
        self.0.guard.hold(&self.0.metrics, peer)
    }

    /// Route `request` (after the origin check and the per-address rates).
    pub fn handle(&self, request: &Request) -> Reply {
        if let Some(refused) = self.0.guard.refuse(&self.0.hub, &self.0.metrics, request) {
            return Reply::Now(refused);
        }
        let get = matches!(request.method.as_str(), "GET" | "HEAD");
        let method_is = |m: &str| request.method == m || (m == "GET" && get);
        let mut allowed: Vec<&str> = Vec::new();
        for route in self.0.routes.iter().filter(|r| r.path == request.path) {
            if method_is(route.method) {
                return Reply::Now((route.handler)(request));
            }
            allowed.push(route.method);
        }
        if let Some((_, method)) = BUILT_IN.iter().find(|(p, _)| *p == request.path) {
            if method_is(method) {
                return self.built_in(request);
            }
            allowed.push(method);
        }
        if !allowed.is_empty() {
            if allowed.contains(&"GET") {
                allowed.push("HEAD");
            }
            return Reply::Now(Response::error(405, "").with_header("Allow", allowed.join(", ")));
        }
        if let Some(files) = &self.0.files {
            if get {
                if let Some(response) = files.serve(request) {
                    return Reply::Now(response);
                }
            }
        }
        Reply::Now(Response::error(404, ""))
    }

    fn built_in(&self, request: &Request) -> Reply {
        let inner = &self.0;
        Reply::Now(match request.path.as_str() {
            "/api/health" => Response::new(200)
                .with_body("application/json", inner.health.clone())
                .with_header("Cache-Control", "no-cache"),
            "/metrics" => Response::new(200).with_body(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                exposition::encode(&inner.registry),
            ),
            "/openapi.json" => {
                Response::new(200).with_body("application/json", inner.openapi.clone())
            }
            // HEAD must not drain the session: the same headers, no body.
            "/ws/poll" if request.is_head() => Response::json(&Value::Array(Vec::new())),
            "/ws/poll" => match self.poll_request(request) {
                Ok(poll) => return Reply::Poll(poll),
                Err(response) => response,
            },
            _ => self.send(request),
        })
    }

    fn poll_request(&self, request: &Request) -> Result<PollRequest, Response> {
        let Some(long_poll) = self.long_poll() else {
            return Err(Response::json_error(503, "long polling is not enabled"));
        };
        let config = long_poll.config();
        let identity = login::authenticate(&self.0.hub, request)?;
        let session = request
            .query_param("session_id")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "broadcast".into());
        // A poll session of a room needs the right to the room.
        let room = session.strip_prefix("room:");
        login::authorize(&self.0.hub, identity.as_ref(), room)?;
        if let Some(room) = room {
            // With an engine spanning processes, this node must receive
            // the room's messages while its poll clients listen.
            self.0.hub.watch_room(room, config.ttl);
        }
        let max = match request.query_param("max") {
            None => config.default_batch,
            Some(max) => match max.parse::<usize>() {
                Ok(n) if n > 0 => n.min(config.max_batch),
                _ => return Err(Response::json_error(400, "max must be a positive integer")),
            },
        };
        let timeout = match request.query_param("timeout") {
            None => config.default_timeout,
            Some(t) => match t.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => {
                    Duration::from_secs_f64(s.min(config.max_timeout.as_secs_f64()))
                }
                _ => {
                    return Err(Response::json_error(
                        400,
                        "timeout must be a number of seconds",
                    ))
                }
            },
        };
        Ok(PollRequest {
            session,
            max,
            timeout,
        })
    }

    /// `status` (503, or 429 for a per-client limit) for a `POST /ws/send`
    /// that was not taken, counted by `reason`.
    fn refuse_send(&self, status: u16, reason: &'static str, message: &str) -> Response {
        self.0.metrics.send_refused.inc(reason);
        Response::json(&json!({ "error": message, "reason": reason }))
            .with_status(status)
            .with_header("Retry-After", "1")
    }

    fn send(&self, request: &Request) -> Response {
        let Some(bridge) = &self.0.bridge else {
            return Response::json_error(503, "long polling is not enabled");
        };
        let identity = match login::authenticate(&self.0.hub, request) {
            Ok(identity) => identity,
            Err(response) => return response,
        };
        let value: Value = match serde_json::from_slice(&request.body) {
            Ok(value) => value,
            Err(_) => return Response::json_error(400, "invalid JSON"),
        };
        let Value::Object(mut object) = value else {
            return Response::json_error(400, "body must be a JSON object");
        };
        if object
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Response::json_error(400, "missing type");
        }
        let explicit = match object.remove("session_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => return Response::json_error(400, "session_id must be a non-empty string"),
        };
        let envelope: Envelope = match serde_json::from_value(Value::Object(object)) {
            Ok(envelope) => envelope,
            Err(error) => return Response::json_error(400, &format!("invalid envelope: {error}")),
        };
        let derived = session_for(envelope.room_name());
        let explicit_room = explicit.as_deref().and_then(|s| s.strip_prefix("room:"));
        for room in [envelope.room_name(), explicit_room] {
            if let Err(response) = login::authorize(&self.0.hub, identity.as_ref(), room) {
                return response;
            }
        }
        // 202 only for what was taken: the queues are checked first, then
        // the hook (a store may be busy), then the explicit session.
        let long_poll = &bridge.long_poll;
        let explicit = explicit.filter(|explicit| *explicit != derived);
        let size = request.body.len();
        let peer = request.peer.map(|p| p.ip());
        let admitted = match &explicit {
            Some(explicit) => long_poll
                .open(explicit, peer)
                .and_then(|()| long_poll.admits(explicit, size)),
            None => long_poll.admits_bytes(size),
        };
        if let Err(refused) = admitted {
            return self.refuse_send(refused.status(), refused.label(), refused.message());
        }
        if let Err(refused) = bridge.send(&self.0.hub, identity.as_ref(), &envelope) {
            return self.refuse_send(503, refused.reason, &refused.message);
        }
        let session = match explicit {
            Some(explicit) => {
                if let Err(refused) = long_poll.push(&explicit, &envelope, Overflow::Refuse) {
                    return self.refuse_send(refused.status(), refused.label(), refused.message());
                }
                explicit
            }
            None => derived,
        };
        let mut body = Map::new();
        body.insert("session_id".into(), session.into());
        body.insert("status".into(), "queued".into());
        Response::json(&Value::Object(body)).with_status(202)
    }
}

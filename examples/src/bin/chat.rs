//! The chat demo (its contract: `examples/README.md`, "chat"): a web page
//! and a WebSocket chat with rooms.
//!
//! ```text
//! cd examples/chat && cargo run --release -p hubbub-examples --bin chat
//! ```
//!
//! Settings come from `.env` in the working directory and the environment
//! (the environment wins); an invalid value stops start-up with exit code 2.
//! HTTP on `SERVER_HOST:SERVER_PORT` (8080) serves, through hubbub's HTTP
//! layer, `GET /` (the page, `PUBLIC_PATH/PUBLIC_INDEX`), `GET /api/health`,
//! `GET /metrics`, `GET /openapi.json`, and the long-polling bridge
//! (`GET /ws/poll?session_id=room:R`, `POST /ws/send`); the WebSocket chat
//! listens on `WEBSOCKET_HOST:WEBSOCKET_PORT` (9090), path `/` (both on one
//! port when the two are equal):
//!
//! | client sends | server answers |
//! |---|---|
//! | (connects) | `welcome to hubbub chat` |
//! | `ping` | `pong` |
//! | `{"type":"room.join","payload":{"room":R}}` | `joined room: R` |
//! | `{"type":"room.leave","payload":{"room":R}}` | `left room: R` |
//! | `{"type":"chat.message","payload":{"room":R,"text":T}}` | every member of R: `room R: T` |
//! | the same with an empty text | the sender: `message rejected: empty text` |
//! | `{"type":"room.history","payload":{"room":R,"limit":N,"before":ID}}` | `{"type":"room.history","payload":{"room":R,"messages":[..],"more":B}}`: the last N (default 50, at most 500) of R (below ID, if given), oldest first, at most 256 KiB of them: `more` true, with `before`, when older ones were left out (ask again with that `before`) |
//! | `{"type":"room.join","payload":{"room":R,"since":ID}}` | `joined room: R`, then R's messages after ID, then `room.resumed` (README: history and recovery) |
//! | `{"type":"chat.message","id":ID,"payload":{"room":R,"text":T}}` | every member of R: `room R: T`; the sender, once stored: `{"type":"ack","id":ID,"payload":{"room":R,"offset":N}}` (a retry of ID within 5 minutes: the same ack, stored and delivered once) |
//! | `{"type":"room.presence","payload":{"room":R}}` | `{"type":"room.presence","payload":{"room":R,"members":[{"id":..,"user":..,"node":..}, ..]}}`, sorted by id |
//! | any other type T | `unknown message type: T` |
//!
//! With `PRESENCE_EVENTS=true` the other members of a room receive
//! `presence.join` and `presence.leave`; `NODE_ID` names the node
//! (default: the WebSocket listener's `host:port`).
//!
//! The room may also be the envelope's top-level `room`; none means
//! `general`. Port 0 binds any free port; the `listening` line shows the
//! ports bound. Every chat message is stored (with hubbub-sqlite) in
//! `STORE_PATH` (`chat.db` beside the `.env` by default; the newest
//! 100 000 messages are kept) before it is delivered. On SIGTERM or
//! Ctrl-C the history is checkpointed and closed before the program exits:
//! no `-wal` or `-shm` file is left beside it.
//!
//! With `AUTH_REQUIRED=true` (and `AUTH_JWT_SECRET`), `POST /api/login`
//! hands out HS256 tokens, a WebSocket client's first message must be
//! `{"type":"auth","payload":{"token":..}}` within `AUTH_TIMEOUT` (answered
//! `auth.ok`, then the welcome line), chat lines carry the sender's name
//! from the token (`room R: alice: T`), and `/ws/poll` and `/ws/send` need
//! `Authorization: Bearer`. `GET /api/login` says which mode is on.
//!
//! With `TLS_CERT_PATH` and `TLS_KEY_PATH` (PEM) both ports speak TLS
//! (`https://`, `wss://`; the `listening` line says so), and SIGHUP reloads
//! the certificate for new connections. Under TLS, ALPN offers HTTP/2 as
//! well unless `HTTP2=off`: the page, the routes and the WebSockets
//! (RFC 8441) then go over HTTP/2 with a browser that speaks it.

use std::{error::Error, path::PathBuf, process::ExitCode, time::Duration};

use hubbub_examples::{
    protocol::{envelope_text, room_of, text_of},
    tls::{schemes, start_hub},
    until, Main, Program, Rt, SHUTDOWN_GRACE,
};
use hubbub_http::{serve_http_with, HttpApp, SendRefused, Settings, StaticFiles};
use hubbub_hub::{
    engine::{check_client_id, Sender},
    store::{id_from_json, Retention, StoreHandle, StoreWorker, WorkerConfig},
    Ack, Auth, Envelope, Hub, HubBuilder, HubLimits, HubServer, Identity, JwtAuth, Session,
    StoreError, StoredMessage, TokenSource,
};
use hubbub_redis::{RedisConfig, RedisEngine};
use hubbub_sqlite::{SqliteConfig, SqliteStore};
use hubbub_ws::{tls::TlsAcceptor, LISTEN_BACKLOG};
use serde_json::{json, Value};

const PROGRAM: Program = Program {
    name: "chat",
    usage:
        "chat [--runtime tokio|smol|mio]   (settings: .env and environment, see examples/README.md)",
};

/// The `service` of `GET /api/health`.
const SERVICE: &str = "websocket-chat";

/// The history file when `STORE_PATH` is not set (relative to the working
/// directory, where the `.env` is read).
const DEFAULT_STORE: &str = "chat.db";
/// Messages `room.history` returns by default, and at most.
const HISTORY_DEFAULT: u64 = 50;
const HISTORY_MAX: u64 = 500;
/// Messages a resume replays at most (below the outbound queue's 1024).
const REPLAY_MAX: usize = 500;
/// Bytes of messages one `room.history` reply holds at most: a long
/// history comes in pages (`more`, `before`), never as one message larger
/// than the outbound queue (4 MiB) or a client's message limit.
const HISTORY_REPLY_BYTES: usize = 256 << 10;
/// How long a token of `POST /api/login` is valid.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long the program waits, once stopped, for the store's thread to
/// write the last appends and close the history.
const STORE_CLOSE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let _log = hubbub_examples::log::init();
    let (runtime, settings) = match PROGRAM.settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let tls = match PROGRAM.tls(&settings) {
        Ok(tls) => tls,
        Err(code) => return code,
    };
    let history = match History::open(&settings) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let sqlite = history.sqlite();
    let code = PROGRAM.run(runtime, Chat(settings, history, tls));
    if let Some((store, path)) = sqlite {
        close(&store, &path);
    }
    code
}

/// Where the chat keeps its rooms' history: a SQLite file (one process),
/// or Redis with `REDIS_URL` (rooms, history and presence shared by every
/// node on it).
enum History {
    Sqlite(StoreHandle, String),
    Redis(RedisEngine),
}

impl History {
    fn open(settings: &Settings) -> Result<History, ExitCode> {
        if let Some(url) = &settings.redis_url {
            let config = RedisConfig {
                prefix: settings.redis_prefix.clone(),
                log_max_len: settings.redis_log_max_len,
                log_max_age: settings.redis_log_max_age,
                presence_ttl: settings.presence_ttl,
                ..RedisConfig::new(url.clone())
            };
            return match RedisEngine::start(config) {
                Ok(engine) => Ok(History::Redis(engine)),
                Err(error) => Err(PROGRAM.exit(1, format_args!("REDIS_URL {url}: {error}"))),
            };
        }
        let path = settings
            .store_path
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE.to_owned());
        let config = SqliteConfig {
            retention: Retention {
                max_messages: Some(100_000),
                max_age: None,
            },
            ..SqliteConfig::default()
        };
        let store = match SqliteStore::open(&path, config) {
            Ok(store) => store,
            Err(error) => return Err(PROGRAM.exit(1, format_args!("history {path}: {error}"))),
        };
        match StoreWorker::spawn(store, WorkerConfig::default()) {
            Ok(store) => Ok(History::Sqlite(store, path)),
            Err(error) => Err(PROGRAM.exit(1, error)),
        }
    }

    /// The hub keeps its history here.
    fn attach(self, hub: HubBuilder) -> HubBuilder {
        match self {
            History::Sqlite(store, _) => hub.store(store),
            History::Redis(engine) => hub.engine(engine),
        }
    }

    /// The SQLite store and its path, to close at exit.
    fn sqlite(&self) -> Option<(StoreHandle, String)> {
        match self {
            History::Sqlite(store, path) => Some((store.clone(), path.clone())),
            History::Redis(_) => None,
        }
    }
}

/// Close the history file: the store's thread drains its queue and drops
/// the store, which checkpoints and closes the file; exiting before that
/// would cut the thread short and leave `-wal`/`-shm` beside the database.
fn close(store: &StoreHandle, path: &str) {
    if let Err(error) = store.close(STORE_CLOSE) {
        tracing::warn!("chat: warning: history {path} not closed within {STORE_CLOSE:?}: {error}");
    }
}

struct Chat(Settings, History, Option<TlsAcceptor>);

impl Main for Chat {
    async fn main<R: Rt>(self) -> Result<(), Box<dyn Error>> {
        Ok(serve::<R>(self.0, self.1, self.2).await?)
    }
}

async fn serve<R: Rt>(
    settings: Settings,
    history: History,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let index = PathBuf::from(&settings.public_path).join(&settings.public_index);
    if !index.is_file() {
        tracing::warn!(
            "chat: warning: {} not found (run from examples/chat/, or set PUBLIC_PATH)",
            index.display()
        );
    }
    let jwt = match (settings.auth_required, &settings.auth_jwt_secret) {
        (true, Some(secret)) => Some(JwtAuth::hs256(secret.as_bytes())),
        _ => None,
    };
    let auth = jwt.clone().map(|jwt| {
        Auth::new(jwt)
            .sources([TokenSource::Message])
            .timeout(settings.auth_timeout)
    });
    let named = auth.is_some();
    let hub = chat_hub(history, auth, settings.hub_limits())
        .node_id(settings.node_id.clone().unwrap_or_default())
        .presence_events(settings.presence_events)
        .build();
    let app = HttpApp::builder(hub.clone())
        .service_name(SERVICE)
        .static_files(StaticFiles::from_settings(&settings))
        .long_polling(settings.long_poll)
        .mirror_with(move |room, text| mirror(room, text, named))
        .try_on_http_send_as(http_send)
        .demo_login(jwt, TOKEN_TTL)
        .rate_limits(settings.http_rate_limits())
        .build();
    let ws = HubServer::<R>::bind(
        (settings.websocket_host.as_str(), settings.websocket_port),
        hub,
        settings.core_config(),
    )
    .await?
    .with_acceptor(tls.clone());
    let ws_addr = ws.local_addr()?;
    if settings.node_id.is_none() {
        ws.hub().set_node_id(ws_addr.to_string());
    }
    let (http_scheme, ws_scheme) = schemes(tls.as_ref());
    // Port 0 twice means two free ports, not one shared port.
    if settings.shared_port() && settings.server_port != 0 {
        // Under TLS, HTTPS and wss:// alike: the hub server's acceptor.
        let handle = app.start_shared(ws)?;
        let shutdown = PROGRAM.listening::<R>(format_args!(
            "{http_scheme}://{ws_addr} (page, /api/health, /ws/poll, /metrics) and {ws_scheme}://{ws_addr}/ (chat), one shared port"
        ))?;
        shutdown.await;
        handle.shutdown(SHUTDOWN_GRACE).await;
    } else {
        let http = bind_http::<R>(&settings)?;
        let http_addr = R::local_addr(&http)?;
        let handle = start_hub(ws)?;
        let shutdown = PROGRAM.listening::<R>(format_args!(
            "{http_scheme}://{http_addr} (page, /api/health, /ws/poll, /metrics) and {ws_scheme}://{ws_addr}/ (chat)"
        ))?;
        until(serve_http_with::<R>(http, app, tls), shutdown).await;
        handle.shutdown(SHUTDOWN_GRACE).await;
    }
    tracing::info!("chat: stopped");
    Ok(())
}

/// The HTTP listener on `SERVER_HOST:SERVER_PORT`.
fn bind_http<R: Rt>(settings: &Settings) -> std::io::Result<R::Listener> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (settings.server_host.as_str(), settings.server_port).to_socket_addrs()? {
        match R::bind(addr, LISTEN_BACKLOG) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("SERVER_HOST resolves to no address")))
}

/// The chat's callbacks; with `auth`, every session authenticates first.
fn chat_hub(history: History, auth: Option<Auth>, limits: HubLimits) -> HubBuilder {
    let builder = match auth {
        Some(auth) => Hub::builder().authenticate(auth),
        None => Hub::builder(),
    };
    history
        .attach(builder)
        .limits(limits)
        .path("/")
        .render(render)
        .on_open(|session| {
            let _ = session.send_text("welcome to hubbub chat");
            tracing::info!("chat: client {} connected", session.id());
        })
        .on_message(on_text)
        .on_close(|session, code, _| {
            tracing::info!("chat: client {} disconnected ({code})", session.id());
        })
        .on_error(|session, error| {
            tracing::warn!("chat: client {}: {error}", session.id());
        })
}
/// Raw `ping` first; then envelopes (read whole here, rather than in
/// `on_typed_message`, because the room may be the envelope's top-level
/// `room`).
fn on_text(session: &Session, text: &str) {
    if text == "ping" {
        let _ = session.send_text("pong");
        return;
    }
    let Some(envelope) = Envelope::parse(text) else {
        // Plain text other than `ping` means nothing here; a chat.message
        // whose `id` is not a string is told so.
        refuse_non_string_id(session, text);
        return;
    };
    let Some(hub) = session.hub() else { return };
    let room = room_of(&envelope);
    let reply = match envelope.event_type.as_str() {
        // Room authorization (none in the demo's tokens, but the hub's
        // rule applies): a denied session was sent an error envelope.
        "room.join" | "room.history" | "room.presence" if !hub.admit_to_room(session, room) => {
            return
        }
        "room.join" => {
            if let Some(since) = envelope.payload.get("since").and_then(id_from_json) {
                // The reply first: the replay comes from the engine's
                // thread, which joins the session after it.
                let _ = session.send_text(format!("joined room: {room}"));
                if let Err(error) = hub.resume(session, room, since, REPLAY_MAX) {
                    hub.join(session, room);
                    let _ = session.send_text(format!("history unavailable: {error}"));
                }
                return;
            }
            // The reply once the join is live on every node (with Redis:
            // once this node follows the room), so that a message sent
            // after it reaches the session. A refused join (over the room
            // cap, a bad name) was told by the hub.
            let (reply, room) = (session.clone(), room.to_owned());
            hub.join_then(session, &room.clone(), move |joined| {
                if joined.is_ok() {
                    let _ = reply.send_text(format!("joined room: {room}"));
                }
            });
            return;
        }
        "room.leave" => {
            hub.leave(session, room);
            format!("left room: {room}")
        }
        "chat.message" => {
            let text = text_of(&envelope.payload);
            if let Some(id) = &envelope.id {
                if let Err(problem) = check_client_id(id) {
                    send_invalid_id(session, &problem);
                    return;
                }
            }
            if let (Some(id), false) = (&envelope.id, text.is_empty()) {
                publish_acked(&hub, session, room, text, id);
                return;
            }
            if text.is_empty() {
                "message rejected: empty text".to_owned()
            } else {
                match publish(&hub, room, text, session.identity().as_deref()) {
                    Ok(()) => return,
                    Err(error) => format!("message rejected: {error}"),
                }
            }
        }
        "room.history" => {
            let limit = envelope.payload.get("limit").and_then(Value::as_u64);
            let limit = limit.unwrap_or(HISTORY_DEFAULT).min(HISTORY_MAX) as usize;
            let before = envelope.payload.get("before").and_then(id_from_json);
            send_history(&hub, session, room, limit, before);
            return;
        }
        "room.presence" => {
            send_presence(&hub, session, room);
            return;
        }
        other => format!("unknown message type: {other}"),
    };
    let _ = session.send_text(reply);
}

/// Answer `room.history`: one message with the last `limit` messages of
/// `room` below `before`, oldest first, read by the hub's engine; at
/// most [`HISTORY_REPLY_BYTES`] of them (the newest), with `more` and the
/// `before` to ask for the rest.
fn send_history(hub: &Hub, session: &Session, room: &str, limit: usize, before: Option<u64>) {
    let (session, room) = (session.clone(), room.to_owned());
    let reply = session.clone();
    let queued = hub.history(&room.clone(), limit, before, move |result| {
        let messages: Vec<Value> = match result {
            Ok(messages) => messages
                .iter()
                .map(|m| serde_json::to_value(m.to_envelope()).unwrap_or_default())
                .collect(),
            Err(error) => {
                session.emit_error(format!("room.history: {error}"));
                Vec::new()
            }
        };
        let page = newest_within(&messages, HISTORY_REPLY_BYTES);
        let more = page.len() < messages.len();
        let mut payload = vec![
            ("room", json!(room)),
            ("messages", Value::Array(page.to_vec())),
            ("more", json!(more)),
        ];
        if let (true, Some(oldest)) = (more, page.first()) {
            payload.push(("before", oldest["id"].clone()));
        }
        let _ = session.send_text(envelope_text("room.history", &payload));
    });
    if let Err(error) = queued {
        let _ = reply.send_text(format!("history unavailable: {error}"));
    }
}

/// The newest of `messages` (oldest first) whose JSON together takes at
/// most `max` bytes; at least the newest one.
fn newest_within(messages: &[Value], max: usize) -> &[Value] {
    let mut bytes = 0;
    let mut start = messages.len();
    while let Some(message) = start.checked_sub(1).map(|i| &messages[i]) {
        bytes += message.to_string().len() + 1;
        if bytes > max && start < messages.len() {
            break;
        }
        start -= 1;
    }
    &messages[start..]
}

/// Store a chat message of `room`; once the store acknowledged it, every
/// member receives `room R: T`, or `room R: alice: T` from an authenticated
/// `alice` (and the room's poll clients the mirrored envelope).
fn publish(hub: &Hub, room: &str, text: &str, sender: Option<&Identity>) -> Result<(), StoreError> {
    hub.publish(room, chat_message(room, text, sender))
}

/// A chat message with a client id: published as by [`publish`]; the
/// sender receives `{"type":"ack","id":ID,"payload":{"room":R,"offset":N}}`
/// once it is stored (a retry of the id within 5 minutes gets the same
/// answer and is not stored again), or, when it could not be stored,
/// `{"type":"error","id":ID,"payload":{"error":"not_stored","room":R,"message":..}}`.
fn publish_acked(hub: &Hub, session: &Session, room: &str, text: &str, id: &str) {
    let message = chat_message(room, text, session.identity().as_deref());
    let (answer, to) = ((room.to_owned(), id.to_owned()), session.clone());
    let done = Box::new(move |outcome: Result<Option<u64>, StoreError>| {
        let (room, id) = answer;
        let _ = to.send_text(ack_text(&room, &id, outcome));
    });
    let ack = Ack {
        sender: Sender::of(session),
        id: id.to_owned(),
        done,
    };
    if let Err(error) = hub.publish_acked(room, message, ack) {
        let _ = session.send_text(ack_text(room, id, Err(error)));
    }
}

/// The answer to an acknowledged chat message (see [`publish_acked`]).
fn ack_text(room: &str, id: &str, outcome: Result<Option<u64>, StoreError>) -> String {
    let envelope = match outcome {
        Ok(Some(offset)) => {
            json!({"type": "ack", "id": id, "payload": {"room": room, "offset": offset}})
        }
        Ok(None) => json!({"type": "ack", "id": id, "payload": {"room": room}}),
        Err(error) => json!({"type": "error", "id": id, "payload": {
            "error": "not_stored", "room": room, "message": error.to_string(),
        }}),
    };
    envelope.to_string()
}

/// `{"type":"error","payload":{"error":"invalid_id","message":..}}`: a
/// chat message's `id` is not a string of 1 to 64 characters.
fn send_invalid_id(session: &Session, problem: &str) {
    let payload = json!({"error": "invalid_id", "message": problem});
    let _ = session.send_text(json!({"type": "error", "payload": payload}).to_string());
}

/// A `chat.message` that is not an envelope because its `id` is not a
/// string (a number, an object, ...) is refused naming the id; anything
/// else that is not an envelope is ignored.
fn refuse_non_string_id(session: &Session, text: &str) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let is_chat = object.get("type").and_then(Value::as_str) == Some("chat.message");
    if let (true, Some(id)) = (is_chat, object.get("id")) {
        if !id.is_string() && !id.is_null() {
            send_invalid_id(session, "id: expected a string of 1 to 64 characters");
        }
    }
}

/// Answer `room.presence`: `{"type":"room.presence","payload":{"room":R,
/// "members":[{"id":..,"user":..,"node":..}, ..]}}`, sorted by id.
fn send_presence(hub: &Hub, session: &Session, room: &str) {
    let (session, room) = (session.clone(), room.to_owned());
    hub.presence(&room.clone(), move |members| match members {
        Ok(members) => {
            let members = serde_json::to_value(members).unwrap_or_default();
            let payload = [("room", json!(room)), ("members", members)];
            let _ = session.send_text(envelope_text("room.presence", &payload));
        }
        Err(error) => session.emit_error(format!("room.presence: {error}")),
    });
}

/// A chat message of `room` as stored: `{"room":R,"text":T}`, with
/// `"user"` from an authenticated sender.
fn chat_message(room: &str, text: &str, sender: Option<&Identity>) -> Envelope {
    let message = match sender.map(Identity::user) {
        Some(user) => json!({"room": room, "text": text, "user": user}),
        None => json!({"room": room, "text": text}),
    };
    Envelope::new("chat.message", message)
}

/// What members receive of a stored room message: a chat message as
/// `room R: T` (`room R: alice: T` from an authenticated `alice`), anything
/// else as its envelope. Every node renders what it delivers.
fn render(message: &StoredMessage) -> String {
    let payload = &message.payload;
    let text = payload.get("text").and_then(Value::as_str);
    let user = payload.get("user").and_then(Value::as_str);
    match (message.event_type.as_str(), text, user) {
        ("chat.message", Some(text), Some(user)) => {
            format!("room {}: {user}: {text}", message.room)
        }
        ("chat.message", Some(text), None) => format!("room {}: {text}", message.room),
        _ => message.to_envelope().to_json(),
    }
}

/// What poll clients of `room:R` see of a room message `room R: T`: a
/// `chat.message` envelope with payload `{room, text}`; with `named`
/// senders (auth mode), `room R: alice: T` gives `{room, text, user}`.
fn mirror(room: Option<&str>, text: &str, named: bool) -> Option<Envelope> {
    let room = room?;
    let text = text.strip_prefix(&format!("room {room}: "))?;
    let payload = match text.split_once(": ") {
        Some((user, text)) if named => json!({ "room": room, "text": text, "user": user }),
        _ => json!({ "room": room, "text": text }),
    };
    Some(Envelope::new("chat.message", payload).with_room(room))
}

/// `POST /ws/send` with a `chat.message`: stored, then the room's WebSocket
/// members receive `room R: T` (`room R: alice: T` with alice's token; and
/// its poll clients the mirrored envelope).
fn http_send(hub: &Hub, sender: Option<&Identity>, envelope: &Envelope) -> Result<(), SendRefused> {
    if envelope.event_type == "chat.message" {
        let text = text_of(&envelope.payload);
        if !text.is_empty() {
            // Not queued to the store (its queue is full): the sender is
            // told (503), not acknowledged.
            publish(hub, room_of(envelope), text, sender)?;
        }
    }
    Ok(())
}

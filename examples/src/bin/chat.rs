//! The chat demo (DESIGN.md §6): a web page and a WebSocket chat with
//! rooms.
//!
//! ```text
//! cd examples/chat && cargo run --release -p hubbub-examples --bin chat
//! ```
//!
//! Settings come from `.env` in the working directory and the environment
//! (the environment wins); an invalid value stops start-up with exit code 2.
//! HTTP on `SERVER_HOST:SERVER_PORT` (8080) serves `GET /` (the page,
//! `PUBLIC_PATH/PUBLIC_INDEX`) and `GET /api/health`; the WebSocket chat
//! listens on `WEBSOCKET_HOST:WEBSOCKET_PORT` (9090), path `/`:
//!
//! | client sends | server answers |
//! |---|---|
//! | (connects) | `welcome to hubbub chat` |
//! | `ping` | `pong` |
//! | `{"type":"room.join","payload":{"room":R}}` | `joined room: R` |
//! | `{"type":"room.leave","payload":{"room":R}}` | `left room: R` |
//! | `{"type":"chat.message","payload":{"room":R,"text":T}}` | every member of R: `room R: T` |
//! | the same with an empty text | the sender: `message rejected: empty text` |
//! | any other type T | `unknown message type: T` |
//!
//! The room may also be the envelope's top-level `room`; none means
//! `general`. Port 0 binds any free port; the `listening` line shows the
//! ports bound.

use std::{path::PathBuf, process::ExitCode};

use hubbub_examples::{
    protocol::{room_of, text_of},
    Program, SHUTDOWN_GRACE,
};
use hubbub_tokio::{
    http::{HttpApp, LongPollConfig, StaticFiles},
    serve_http, Envelope, Hub, HubServer, Session, Settings,
};
use serde_json::json;
use tokio::net::TcpListener;

const PROGRAM: Program = Program {
    name: "chat",
    usage: "chat [--runtime tokio|smol|mio]   (settings: .env and environment, see DESIGN.md §5)",
};

/// The `service` of `GET /api/health`.
const SERVICE: &str = "websocket-chat";

fn main() -> ExitCode {
    let settings = match PROGRAM.settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    PROGRAM.run(serve(settings))
}

async fn serve(settings: Settings) -> std::io::Result<()> {
    let index = PathBuf::from(&settings.public_path).join(&settings.public_index);
    if !index.is_file() {
        eprintln!(
            "chat: warning: {} not found (run from examples/chat/, or set PUBLIC_PATH)",
            index.display()
        );
    }
    let hub = chat_hub();
    let app = HttpApp::builder(hub.clone())
        .service_name(SERVICE)
        .static_files(StaticFiles::from_settings(&settings))
        .build();
    let ws = HubServer::bind(
        (settings.websocket_host.as_str(), settings.websocket_port),
        hub,
        settings.core_config(),
    )
    .await?;
    let ws_addr = ws.local_addr()?;
    // Port 0 twice means two free ports, not one shared port.
    if settings.shared_port() && settings.server_port != 0 {
        let handle = ws.with_http(app).start()?;
        let shutdown = PROGRAM.listening(format_args!(
            "http://{ws_addr} (page, /api/health, /ws/poll, /metrics) and ws://{ws_addr}/ (chat), one shared port"
        ))?;
        shutdown.await;
        handle.shutdown(SHUTDOWN_GRACE).await;
    } else {
        let http = TcpListener::bind((settings.server_host.as_str(), settings.server_port)).await?;
        let http_addr = http.local_addr()?;
        let handle = ws.start()?;
        let http_task = tokio::spawn(serve_http(http, app));
        let shutdown = PROGRAM.listening(format_args!(
            "http://{http_addr} (page, /api/health, /ws/poll, /metrics) and ws://{ws_addr}/ (chat)"
        ))?;
        shutdown.await;
        http_task.abort();
        handle.shutdown(SHUTDOWN_GRACE).await;
    }
    println!("chat: stopped");
    Ok(())
}

/// The chat's callbacks.
fn chat_hub() -> Hub {
    Hub::builder()
        .path("/")
        .long_polling(LongPollConfig::default())
        .mirror_with(mirror)
        .on_http_send(http_send)
        .on_open(|session| {
            let _ = session.send_text("welcome to hubbub chat");
            println!("chat: client {} connected", session.id());
        })
        .on_message(on_text)
        .on_close(|session, code, _| {
            println!("chat: client {} disconnected ({code})", session.id());
        })
        .on_error(|session, error| {
            eprintln!("chat: client {}: {error}", session.id());
        })
        .build()
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
        return; // plain text other than `ping` means nothing here
    };
    let Some(hub) = session.hub() else { return };
    let room = room_of(&envelope);
    let reply = match envelope.event_type.as_str() {
        "room.join" => {
            hub.join(session, room);
            format!("joined room: {room}")
        }
        "room.leave" => {
            hub.leave(session, room);
            format!("left room: {room}")
        }
        "chat.message" => {
            let text = text_of(&envelope.payload);
            if !text.is_empty() {
                hub.room_text(room, &format!("room {room}: {text}"), None);
                return;
            }
            "message rejected: empty text".to_owned()
        }
        other => format!("unknown message type: {other}"),
    };
    let _ = session.send_text(reply);
}

/// What poll clients of `room:R` see of a room message `room R: T`: a
/// `chat.message` envelope with payload `{room, text}`.
fn mirror(room: Option<&str>, text: &str) -> Option<Envelope> {
    let room = room?;
    let text = text.strip_prefix(&format!("room {room}: "))?;
    Some(Envelope::new("chat.message", json!({ "room": room, "text": text })).with_room(room))
}

/// `POST /ws/send` with a `chat.message`: the room's WebSocket members
/// receive `room R: T` (and its poll clients the mirrored envelope).
fn http_send(hub: &Hub, envelope: &Envelope) {
    if envelope.event_type == "chat.message" {
        let text = text_of(&envelope.payload);
        if !text.is_empty() {
            let room = room_of(envelope);
            hub.room_text(room, &format!("room {room}: {text}"), None);
        }
    }
}

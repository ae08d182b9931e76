//! The recommended typed event protocol (its contract: `examples/README.md`,
//! "events"), WebSocket only.
//!
//! ```text
//! events [--runtime tokio|smol|mio]
//! ```
//!
//! Listens on `WEBSOCKET_HOST:WEBSOCKET_PORT` (from `.env` and the
//! environment; 0.0.0.0:9090 by default), path `/`. Every message is an
//! envelope `{"type":..,"payload":{..}}`:
//!
//! | event | answer |
//! |---|---|
//! | a client connects | to everyone: `system.connected` `{"message":"A client connected"}` |
//! | `app.ping` | to everyone: `app.pong` `{"status":"ok","transport":"websocket"}` |
//! | `chat.message` with a non-empty `text` | to everyone: the message, unchanged |
//! | `chat.message` without text | to the sender: `chat.error` `{"error":"message_required","message":"Message text is required"}` |
//! | any other type T | to the sender: `app.unknown` `{"type":T,"message":"Unknown event type"}` |
//! | text that is not an envelope | to everyone: `echo.raw` `{"text":..}` |
//!
//! With `TLS_CERT_PATH` and `TLS_KEY_PATH` it serves `wss://` (SIGHUP
//! reloads the certificate).

use std::{error::Error, process::ExitCode};

use hubbub_examples::{
    protocol::{envelope_text, text_of},
    tls::{schemes, start_hub},
    Main, Program, Rt, SHUTDOWN_GRACE,
};
use hubbub_http::Settings;
use hubbub_hub::{Envelope, Hub, HubServer, Session};
use hubbub_ws::tls::TlsAcceptor;
use serde_json::json;

const PROGRAM: Program = Program {
    name: "events",
    usage: "events [--runtime tokio|smol|mio]   (settings: .env and environment, see examples/README.md)",
};

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
    PROGRAM.run(runtime, Events(settings, tls))
}

struct Events(Settings, Option<TlsAcceptor>);

impl Main for Events {
    async fn main<R: Rt>(self) -> Result<(), Box<dyn Error>> {
        Ok(serve::<R>(self.0, self.1).await?)
    }
}

async fn serve<R: Rt>(settings: Settings, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
    let hub = Hub::builder()
        .limits(settings.hub_limits())
        .path("/")
        .on_open(|session| {
            if let Some(hub) = session.hub() {
                let text = envelope_text(
                    "system.connected",
                    &[("message", json!("A client connected"))],
                );
                hub.broadcast_text(&text, None);
            }
        })
        .on_message(on_text)
        .on_error(|session, error| tracing::warn!("events: client {}: {error}", session.id()))
        .build();
    let server = HubServer::<R>::bind(
        (settings.websocket_host.as_str(), settings.websocket_port),
        hub,
        settings.core_config(),
    )
    .await?;
    let (_, scheme) = schemes(tls.as_ref());
    let handle = start_hub(server.with_acceptor(tls))?;
    let shutdown = PROGRAM.listening::<R>(format_args!("{scheme}://{}/", handle.local_addr()))?;
    shutdown.await;
    handle.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

/// Every text message. The envelope is parsed here (rather than in
/// `on_typed_message`) so a valid chat message is forwarded as the very
/// text the client sent.
fn on_text(session: &Session, text: &str) {
    let Some(hub) = session.hub() else { return };
    let Some(envelope) = Envelope::parse(text) else {
        hub.broadcast_text(&envelope_text("echo.raw", &[("text", json!(text))]), None);
        return;
    };
    match envelope.event_type.as_str() {
        "app.ping" => {
            let pong = envelope_text(
                "app.pong",
                &[("status", json!("ok")), ("transport", json!("websocket"))],
            );
            hub.broadcast_text(&pong, None);
        }
        "chat.message" if !text_of(&envelope.payload).is_empty() => {
            hub.broadcast_text(text, None);
        }
        "chat.message" => {
            let _ = session.send_text(envelope_text(
                "chat.error",
                &[
                    ("error", json!("message_required")),
                    ("message", json!("Message text is required")),
                ],
            ));
        }
        other => {
            let _ = session.send_text(envelope_text(
                "app.unknown",
                &[
                    ("type", json!(other)),
                    ("message", json!("Unknown event type")),
                ],
            ));
        }
    }
}

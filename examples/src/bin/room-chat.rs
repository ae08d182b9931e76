//! A chat room on one WebSocket path (its contract: `examples/README.md`,
//! "room-chat and chat-client").
//!
//! ```text
//! room-chat [PORT] [--runtime tokio|smol|mio]     (PORT: 9001 by default, 0 = any free port)
//! ```
//!
//! Listens on 0.0.0.0:PORT, path `/chat` (any other path is answered 404 at
//! the upgrade). Every message a participant sends goes to every
//! participant, the sender included, as `<session id>: <text>` (binary
//! messages likewise, as binary). Joins and leaves are printed with the
//! number online. Try it with `chat-client ws://127.0.0.1:9001/chat NICK`.
//! With `TLS_CERT_PATH` and `TLS_KEY_PATH` (environment or `.env`) it
//! serves `wss://` (SIGHUP reloads the certificate).

use std::{error::Error, process::ExitCode};

use hubbub_core::Config;
use hubbub_examples::{
    tls::{schemes, start_hub},
    Main, Program, Rt, Spec, SHUTDOWN_GRACE,
};
use hubbub_http::Settings;
use hubbub_hub::{Hub, HubLimits, HubServer};
use hubbub_ws::tls::TlsAcceptor;

const PROGRAM: Program = Program {
    name: "room-chat",
    usage: "room-chat [PORT] [--runtime tokio|smol|mio]",
};

const DEFAULT_PORT: u16 = 9001;

fn main() -> ExitCode {
    let _log = hubbub_examples::log::init();
    let options = match PROGRAM.options(Spec::default()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let port = match options.positional.as_slice() {
        [] => DEFAULT_PORT,
        [port] => match port.parse() {
            Ok(port) => port,
            Err(_) => return PROGRAM.usage_error(format_args!("invalid PORT {port:?}")),
        },
        [_, extra, ..] => {
            return PROGRAM.usage_error(format_args!("unexpected argument {extra:?}"))
        }
    };
    // The limit and TLS keys of the settings (.env and environment), all
    // off unset.
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return PROGRAM.exit(2, error),
    };
    let tls = match PROGRAM.tls(&settings) {
        Ok(tls) => tls,
        Err(code) => return code,
    };
    PROGRAM.run(options.runtime, RoomChat(port, settings.hub_limits(), tls))
}

struct RoomChat(u16, HubLimits, Option<TlsAcceptor>);

impl Main for RoomChat {
    async fn main<R: Rt>(self) -> Result<(), Box<dyn Error>> {
        Ok(serve::<R>(self.0, self.1, self.2).await?)
    }
}

async fn serve<R: Rt>(
    port: u16,
    limits: HubLimits,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let hub = Hub::builder()
        .limits(limits)
        .path("/chat")
        .on_open(|session| {
            let online = session.hub().map_or(0, |hub| hub.session_count());
            tracing::info!("[chat] join {} ({online} online)", session.id());
        })
        .on_close(|session, _, _| {
            let online = session.hub().map_or(0, |hub| hub.session_count());
            tracing::info!("[chat] leave {} ({online} online)", session.id());
        })
        .on_message(|session, text| {
            if let Some(hub) = session.hub() {
                hub.broadcast_text(&format!("{}: {text}", session.id()), None);
            }
        })
        .on_binary(|session, data| {
            if let Some(hub) = session.hub() {
                let mut message = format!("{}: ", session.id()).into_bytes();
                message.extend_from_slice(data);
                hub.broadcast_binary(&message, None);
            }
        })
        .build();
    let server = HubServer::<R>::bind(("0.0.0.0", port), hub, Config::default().into()).await?;
    let (_, scheme) = schemes(tls.as_ref());
    let handle = start_hub(server.with_acceptor(tls))?;
    let shutdown =
        PROGRAM.listening::<R>(format_args!("{scheme}://{}/chat", handle.local_addr()))?;
    shutdown.await;
    handle.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

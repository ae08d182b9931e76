//! The echo server used for conformance runs and benchmarks.
//!
//! ```text
//! echo --port P [--max-message BYTES] [--receive-budget BYTES]
//!      [--deflate | --deflate-takeover] [--broadcast]
//!      [--tls-cert PATH --tls-key PATH [--h2]] [--runtime tokio|smol|mio]
//! ```
//!
//! Binds 127.0.0.1:P, sets TCP_NODELAY, and sends every text and binary
//! message back to its sender, same opcode, in order. With `--broadcast` it
//! sends every message to every *other* connected client instead, in order,
//! through a realtime [`Hub`]'s broadcast (each frame encoded once). Runs on
//! one thread (tokio); on smol, connections run on smol's executor thread.
//! With `--tls-cert` and `--tls-key` (PEM certificate chain and key) it
//! speaks `wss://` instead of `ws://`; a missing or bad file exits with
//! code 2 and a message naming it. `--receive-budget` bounds what the
//! unfinished incoming messages of all connections hold together (default
//! the core's, 256 MiB; a connection that would pass it is closed 1009).
//! With `--h2` (TLS only) a hub echoes instead, served by `http2::start`:
//! ALPN `h2` (WebSockets over HTTP/2, RFC 8441, many on one connection)
//! and `http/1.1` on the same port (bench/h2.sh compares the two).

use std::{error::Error, net::SocketAddr, process::ExitCode, sync::Arc};

use hubbub_core::{CloseCode, Config, DeflateConfig, ReceiveBudget};
use hubbub_examples::{
    echo::{conformance_config, echo},
    until, Main, Program, Rt, Spec, SHUTDOWN_GRACE,
};
use hubbub_hub::{http2, Hub, HubServer, OutboundLimit, SlowConsumer};
use hubbub_ws::{
    h2::{offer_h2, H2Config},
    tls::TlsAcceptor,
    Server, LISTEN_BACKLOG,
};

const PROGRAM: Program = Program {
    name: "echo",
    usage:
        "echo --port P [--max-message BYTES] [--receive-budget BYTES] [--deflate | --deflate-takeover] [--broadcast] [--tls-cert PATH --tls-key PATH [--h2]] [--runtime tokio|smol|mio]",
};

/// Default `--max-message`: 16 MiB.
const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

struct Args {
    port: u16,
    max_message: usize,
    /// `--receive-budget`, when given.
    receive_budget: Option<Arc<ReceiveBudget>>,
    broadcast: bool,
    /// `--h2`: a hub served with HTTP/2 and HTTP/1.1 by ALPN.
    h2: bool,
    /// `--deflate` (the default settings: no context takeover on our side)
    /// or `--deflate-takeover` (context takeover both ways).
    deflate: Option<DeflateConfig>,
    /// `--tls-cert` and `--tls-key`, loaded: serve `wss://`.
    tls: Option<TlsAcceptor>,
}

fn main() -> ExitCode {
    let _log = hubbub_examples::log::init();
    let options = match PROGRAM.options(Spec {
        values: &[
            "--port",
            "--max-message",
            "--receive-budget",
            "--tls-cert",
            "--tls-key",
        ],
        switches: &["--deflate", "--deflate-takeover", "--broadcast", "--h2"],
    }) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let parsed = (|| {
        if let Some(extra) = options.positional.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let port = options
            .parsed("--port", "a port number")?
            .ok_or("--port is required")?;
        let max_message = options
            .parsed::<usize>("--max-message", "a positive number of bytes")?
            .unwrap_or(DEFAULT_MAX_MESSAGE);
        if max_message == 0 {
            return Err("invalid --max-message \"0\": expected a positive number of bytes".into());
        }
        let receive_budget = options
            .parsed::<usize>("--receive-budget", "a number of bytes")?
            .map(|limit| Arc::new(ReceiveBudget::new(limit)));
        let tls = match (options.value("--tls-cert"), options.value("--tls-key")) {
            (Some(cert), Some(key)) => {
                Some(TlsAcceptor::from_pem_files(cert, key).map_err(|error| error.to_string())?)
            }
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let h2 = options.switch("--h2");
        if h2 && tls.is_none() {
            return Err("--h2 needs --tls-cert and --tls-key (HTTP/2 is served under TLS)".into());
        }
        if h2 && options.switch("--broadcast") {
            return Err("--h2 and --broadcast exclude each other".into());
        }
        Ok(Args {
            h2,
            tls,
            port,
            max_message,
            receive_budget,
            broadcast: options.switch("--broadcast"),
            deflate: match (
                options.switch("--deflate"),
                options.switch("--deflate-takeover"),
            ) {
                (true, true) => {
                    return Err("--deflate and --deflate-takeover exclude each other".into())
                }
                (true, false) => Some(DeflateConfig::default()),
                (false, true) => Some(DeflateConfig {
                    server_no_context_takeover: false,
                    ..DeflateConfig::default()
                }),
                (false, false) => None,
            },
        })
    })();
    let args = match parsed {
        Ok(args) => args,
        Err(message) => return PROGRAM.usage_error(message),
    };
    PROGRAM.run(options.runtime, Echo(args))
}

struct Echo(Args);

impl Main for Echo {
    async fn main<R: Rt>(self) -> Result<(), Box<dyn Error>> {
        Ok(serve::<R>(self.0).await?)
    }
}

async fn serve<R: Rt>(args: Args) -> std::io::Result<()> {
    let listener = R::bind(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        LISTEN_BACKLOG,
    )?;
    let mut config = conformance_config(args.max_message, args.deflate);
    if let Some(budget) = args.receive_budget {
        config.receive_budget = Some(budget);
    }
    if args.broadcast {
        return broadcast::<R>(listener, config, args.max_message, args.tls).await;
    }
    if let (true, Some(tls)) = (args.h2, args.tls.clone()) {
        return h2_echo::<R>(listener, config, tls).await;
    }
    let addr = R::local_addr(&listener)?;
    // The plain line as it always was; TLS adds a mark.
    let place = match args.tls {
        Some(_) => format!("{addr} (wss://)"),
        None => addr.to_string(),
    };
    let shutdown = PROGRAM.listening::<R>(place)?;
    let mut server = Server::<R>::new(config);
    if let Some(acceptor) = args.tls {
        server = server.tls(acceptor);
    }
    until(server.serve(listener, |ws, _| echo(ws)), shutdown).await;
    Ok(())
}

/// `--h2`: a hub that echoes every message to its sender, served with
/// HTTP/2 (ALPN `h2`, extended CONNECT) and HTTP/1.1 on one TLS port.
async fn h2_echo<R: Rt>(
    listener: R::Listener,
    config: Config,
    tls: TlsAcceptor,
) -> std::io::Result<()> {
    let hub = Hub::builder()
        .on_message(|session, text| {
            let _ = session.send_text(text);
        })
        .on_binary(|session, data| {
            let _ = session.send_binary(data.to_vec());
        })
        .build();
    tls.reload(offer_h2(&tls.config()));
    let server = HubServer::<R>::from_listener(listener, hub, Arc::new(config)).tls(tls);
    let handle = http2::start(server, H2Config::default())?;
    let shutdown = PROGRAM.listening::<R>(format_args!("{} (wss://, h2)", handle.local_addr()))?;
    shutdown.await;
    handle.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

/// `--broadcast`: a hub that forwards every message to every other session.
async fn broadcast<R: Rt>(
    listener: R::Listener,
    config: Config,
    max_message: usize,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let hub = Hub::builder()
        .on_message(|session, text| {
            if let Some(hub) = session.hub() {
                hub.broadcast_text(text, Some(session));
            }
        })
        .on_binary(|session, data| {
            if let Some(hub) = session.hub() {
                hub.broadcast_binary(data, Some(session));
            }
        })
        // A publisher may outrun its subscribers by a burst: room for 65 536
        // messages or two of the largest, then the laggard is closed (1013).
        .outbound_limit(OutboundLimit {
            max_bytes: max_message.saturating_mul(2).max(4 << 20),
            max_messages: 1 << 16,
            policy: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        })
        .build();
    let mut server = HubServer::<R>::from_listener(listener, hub, Arc::new(config));
    let mark = if tls.is_some() { "wss://, " } else { "" };
    server = server.with_acceptor(tls);
    let handle = server.start()?;
    let shutdown =
        PROGRAM.listening::<R>(format_args!("{} ({mark}broadcast)", handle.local_addr()))?;
    shutdown.await;
    handle.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

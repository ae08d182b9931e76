//! The echo server used for conformance runs and benchmarks.
//!
//! ```text
//! echo --port P [--max-message BYTES] [--deflate] [--broadcast] [--runtime tokio|smol|mio]
//! ```
//!
//! Binds 127.0.0.1:P, sets TCP_NODELAY, and sends every text and binary
//! message back to its sender, same opcode, in order. With `--broadcast` it
//! sends every message to every *other* connected client instead, in order,
//! through a realtime [`Hub`]'s broadcast (each frame encoded once). Runs on
//! one thread. On `--runtime mio` it runs one hubbub-mio loop: the echo
//! over each connection's driver, the broadcast through the same hub.

use std::{process::ExitCode, sync::Arc, time::Duration};

use hubbub_examples::{Program, Runtime, Spec, SHUTDOWN_GRACE};
use hubbub_tokio::{
    CloseCode, Config, Hub, HubServer, OutboundLimit, Server, SlowConsumer, WebSocket,
};
use tokio::net::{TcpListener, TcpStream};

const PROGRAM: Program = Program {
    name: "echo",
    usage:
        "echo --port P [--max-message BYTES] [--deflate] [--broadcast] [--runtime tokio|smol|mio]",
};

/// Default `--max-message`: 16 MiB.
const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

struct Args {
    port: u16,
    max_message: usize,
    broadcast: bool,
}

fn main() -> ExitCode {
    let spec = Spec {
        values: &["--port", "--max-message"],
        switches: &["--deflate", "--broadcast"],
    };
    let options = match PROGRAM.options_on(spec, &[Runtime::Tokio, Runtime::Mio]) {
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
        Ok(Args {
            port,
            max_message,
            broadcast: options.switch("--broadcast"),
        })
    })();
    let args = match parsed {
        Ok(args) => args,
        Err(message) => return PROGRAM.usage_error(message),
    };
    if options.switch("--deflate") {
        eprintln!("echo: note: permessage-deflate is not available yet; --deflate is ignored");
    }
    if options.runtime == Runtime::Mio {
        return match serve_mio(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => PROGRAM.exit(1, error),
        };
    }
    PROGRAM.run(serve(args))
}

/// A benchmark and conformance server: no idle timeout, no pings.
fn config(max_message: usize) -> Config {
    Config {
        max_message_size: max_message,
        max_frame_size: Some(max_message),
        idle_timeout: None,
        ping_interval: None,
        pong_timeout: None,
        handshake_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let config = config(args.max_message);
    if args.broadcast {
        return broadcast(listener, config, args.max_message).await;
    }
    let shutdown = PROGRAM.listening(listener.local_addr()?)?;
    tokio::select! {
        () = Server::new(config).serve(listener, echo) => {}
        () = shutdown => {}
    }
    Ok(())
}

/// Queue every message back; the stream writes the queued answers to one
/// read in one system call before it reads again.
async fn echo(mut ws: WebSocket<TcpStream>) {
    while let Some(message) = ws.recv().await {
        if let Ok(message) = message {
            // After a close has started, sends fail; keep reading to the end.
            let _ = ws.feed(message).await;
        }
    }
}

/// `--broadcast`: a hub that forwards every message to every other session.
async fn broadcast(
    listener: TcpListener,
    config: Config,
    max_message: usize,
) -> std::io::Result<()> {
    let hub = broadcast_hub(max_message);
    let server = HubServer::from_listener(listener, hub, Arc::new(config));
    let handle = server.start()?;
    let shutdown = PROGRAM.listening(format_args!("{} (broadcast)", handle.local_addr()))?;
    shutdown.await;
    handle.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

/// A hub forwarding every message to every other session.
fn broadcast_hub(max_message: usize) -> Hub {
    Hub::builder()
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
        .build()
}

/// The echo on mio: every message goes back into the connection's core;
/// the driver writes the answers to one read in one system call before it
/// reads again (as `feed` does on tokio).
async fn echo_mio(mut driver: hubbub_mio::MioDriver) {
    use std::task::Poll;
    if driver
        .open(|_| Ok(hubbub_mio::Accept::new()))
        .await
        .is_err()
    {
        return;
    }
    std::future::poll_fn(|cx| loop {
        match driver.poll_event(cx) {
            Poll::Ready(Ok(Some(hubbub_mio::Event::Message(message)))) => {
                // After a close has started, sends fail; read on to the end.
                let _ = driver.conn().send(message);
            }
            Poll::Ready(Ok(None)) => return Poll::Ready(()),
            Poll::Ready(_) => {}
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

/// `--runtime mio`: echo (or the broadcast hub) on one mio event loop,
/// until SIGTERM or Ctrl-C.
fn serve_mio(args: Args) -> std::io::Result<()> {
    let config = Arc::new(config(args.max_message));
    let server = match args.broadcast {
        true => hubbub_mio::Server::new(broadcast_hub(args.max_message), config),
        false => hubbub_mio::Server::new(Hub::builder().build(), config).handler(echo_mio),
    }
    .bind(("127.0.0.1", args.port))?;
    // Installed before the `listening` line, so no signal is missed.
    let signal = hubbub_mio::ShutdownSignal::install()?;
    let handle = server.start()?;
    let mode = if args.broadcast { " (broadcast)" } else { "" };
    PROGRAM.announce(format_args!("{}{mode}", handle.local_addr()), Runtime::Mio);
    signal.wait();
    handle.shutdown(SHUTDOWN_GRACE);
    Ok(())
}

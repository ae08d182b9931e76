//! The echo server used for conformance runs and benchmarks.
//!
//! ```text
//! echo --port P [--max-message BYTES] [--deflate] [--broadcast] [--runtime tokio|smol|mio]
//! ```
//!
//! Binds 127.0.0.1:P, sets TCP_NODELAY, and sends every text and binary
//! message back to its sender, same opcode, in order. Runs on one thread.

use std::{process::ExitCode, time::Duration};

use hubbub_examples::{shutdown_signal, Runtime};
use hubbub_tokio::{Config, Server, WebSocket};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str =
    "usage: echo --port P [--max-message BYTES] [--deflate] [--broadcast] [--runtime tokio|smol|mio]";

struct Args {
    port: u16,
    max_message: usize,
    deflate: bool,
    broadcast: bool,
    runtime: Runtime,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        max_message: 16 << 20,
        deflate: false,
        broadcast: false,
        runtime: Runtime::Tokio,
    };
    let mut port = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                port = Some(v.parse().map_err(|_| format!("invalid --port {v:?}"))?);
            }
            "--max-message" => {
                let v = value("--max-message")?;
                args.max_message = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("invalid --max-message {v:?}: expected a positive number of bytes")
                })?;
            }
            "--runtime" => args.runtime = Runtime::parse(&value("--runtime")?)?,
            "--deflate" => args.deflate = true,
            "--broadcast" => args.broadcast = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.port = port.ok_or("--port is required")?;
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("echo: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !args.runtime.is_available() {
        eprintln!("echo: runtime {} is not available yet", args.runtime);
        return ExitCode::from(2);
    }
    if args.broadcast {
        eprintln!("echo: --broadcast is not available yet (it comes with the realtime layer)");
        return ExitCode::from(2);
    }
    if args.deflate {
        eprintln!("echo: note: permessage-deflate is not available yet; --deflate is ignored");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime.and_then(|rt| rt.block_on(serve(args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let config = Config {
        max_message_size: args.max_message,
        max_frame_size: Some(args.max_message),
        // A benchmark and conformance server: no idle timeout, no pings.
        idle_timeout: None,
        ping_interval: None,
        pong_timeout: None,
        handshake_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    println!(
        "echo: listening on {} (runtime tokio)",
        listener.local_addr()?
    );
    tokio::select! {
        () = Server::new(config).serve(listener, echo) => {}
        () = shutdown_signal() => {}
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

//! A command-line chat client, on hubbub's own client (its contract:
//! `examples/README.md`, "room-chat and chat-client").
//!
//! ```text
//! chat-client URL NICK [LINE...] [--runtime tokio|smol|mio]
//! ```
//!
//! Connects to `URL` (e.g. `ws://127.0.0.1:9001/chat`, a `room-chat`
//! server) and prints every message it receives as `[NICK] message`. It
//! sends each `LINE` given on the command line, or else each line read from
//! standard input. Once the lines are sent (or standard input ends) it waits
//! for replies until none has arrived for 0.5 s (5 s at most), then closes
//! the connection (1000) and exits 0. Put `--` before lines that start with
//! `--`. While the connection is quiet it sends a keep-alive ping every
//! 15 s (and gives up on a server that answers none within 20 s). SIGTERM or
//! Ctrl-C closes the connection and exits 0; a connection the server ends
//! exits 0 too, a failure 1.

use std::{
    error::Error,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_core::{CloseCode, Config, Message};
use hubbub_examples::{Main, Program, Rt, Spec};
use hubbub_ws::{connect_with, timeout, ClientConfig};
// tokio's channel and `select!` work under any executor.
use tokio::sync::mpsc;

const PROGRAM: Program = Program {
    name: "chat-client",
    usage: "chat-client URL NICK [LINE...] [--runtime tokio|smol|mio]",
};

/// Keep-alive pings after this long without traffic.
const PING_EVERY: Duration = Duration::from_secs(15);
/// After the input ends: stop once no reply came for this long...
const QUIET: Duration = Duration::from_millis(500);
/// ...or this long after the input ended, whichever is first.
const MAX_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let _log = hubbub_examples::log::init();
    let options = match PROGRAM.options(Spec::default()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let (url, nick, lines) = match options.positional.as_slice() {
        [url, nick, lines @ ..] => (url.clone(), nick.clone(), lines.to_vec()),
        _ => return PROGRAM.usage_error("URL and NICK are required"),
    };
    PROGRAM.run(options.runtime, ChatClient { url, nick, lines })
}

struct ChatClient {
    url: String,
    nick: String,
    lines: Vec<String>,
}

impl Main for ChatClient {
    async fn main<R: Rt>(self) -> Result<(), Box<dyn Error>> {
        chat::<R>(self.url, self.nick, self.lines).await
    }
}

/// The lines to send: the given ones, or standard input's, read by a
/// thread of its own (reading stdin blocks).
fn input(lines: Vec<String>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(lines.len().max(64));
    if lines.is_empty() {
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    } else {
        for line in lines {
            // Room for every line: the channel was sized for them.
            let _ = tx.try_send(line);
        }
    }
    rx
}

async fn chat<R: Rt>(url: String, nick: String, lines: Vec<String>) -> Result<(), Box<dyn Error>> {
    let config = ClientConfig {
        config: Arc::new(Config {
            max_message_size: 16 << 20,
            ping_interval: Some(PING_EVERY),
            pong_timeout: Some(Duration::from_secs(20)),
            // The pings keep the connection alive; a silent chat is fine.
            idle_timeout: None,
            ..Config::default()
        }),
        ..ClientConfig::default()
    };
    let (mut ws, _) = connect_with::<R>(&url, &config).await?;
    let mut shutdown = PROGRAM.listening::<R>(format_args!("{url} as {nick}"))?;
    let mut input = input(lines);
    let mut input_open = true;
    // Set once the input ended: when to stop waiting for replies.
    let mut stop_at: Option<(Instant, Instant)> = None; // (quiet deadline, hard deadline)
    loop {
        let deadline = stop_at.map(|(quiet, hard)| quiet.min(hard));
        tokio::select! {
            message = ws.recv() => match message {
                Some(Ok(message)) => {
                    tracing::info!("[{nick}] {}", show(&message));
                    if let Some((quiet, _)) = &mut stop_at {
                        *quiet = R::now() + QUIET;
                    }
                }
                Some(Err(error)) => tracing::warn!("[{nick}] error: {error}"),
                None => {
                    match ws.closed() {
                        Some(closed) => tracing::info!("[{nick}] connection closed: {} {}", closed.code, closed.reason),
                        None => tracing::info!("[{nick}] connection closed"),
                    }
                    return Ok(());
                }
            },
            line = input.recv(), if input_open => match line {
                Some(line) => ws.send(line).await?,
                None => {
                    input_open = false;
                    let now = R::now();
                    stop_at = Some((now + QUIET, now + MAX_WAIT));
                }
            },
            () = R::sleep(deadline.map_or(Duration::ZERO, |at| at.saturating_duration_since(R::now()))), if deadline.is_some() => break,
            () = &mut shutdown => break,
        }
    }
    // Bounded even if the server never answers the close.
    let _ = timeout::<R, _>(Duration::from_secs(6), ws.close(CloseCode::NORMAL, "bye")).await;
    Ok(())
}

/// A received message as one line of output.
fn show(message: &Message) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        Message::Binary(data) => String::from_utf8_lossy(data).into_owned(),
        other => format!("{other:?}"),
    }
}

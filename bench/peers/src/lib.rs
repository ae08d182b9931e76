//! Shared plumbing of the peer echo servers used by `bench/run.sh`.
//!
//! Each binary in `src/bin/` is written the way its crate's own examples are
//! (tokio-tungstenite's `echo-server.rs` / `server.rs`, fastwebsockets'
//! `echo_server.rs` with the hyper upgrade); this module only holds what all
//! of them share: the command line of hubbub's `echo` binary
//! (`examples/README.md`, "echo"), binding, and the single-threaded runtime
//! used to keep the comparison fair.

use std::net::{Ipv4Addr, SocketAddr};

/// Command line shared with hubbub's `echo`: `--port P [--max-message BYTES]
/// [--broadcast]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// TCP port to bind on 127.0.0.1.
    pub port: u16,
    /// Largest message accepted, in bytes (default 16 MiB, as hubbub's echo).
    pub max_message: usize,
    /// Forward every message to every *other* client instead of echoing it.
    pub broadcast: bool,
}

/// Default largest message, the same as hubbub's `echo`.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

impl Args {
    /// Parses the process arguments, exiting with status 2 and a usage line
    /// on any error.
    pub fn from_env() -> Args {
        match Args::parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(msg) => {
                let name = std::env::args().next().unwrap_or_default();
                eprintln!("{name}: {msg}");
                eprintln!("usage: {name} --port P [--max-message BYTES] [--broadcast]");
                std::process::exit(2);
            }
        }
    }

    /// Parses an argument list (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut port = None;
        let mut max_message = DEFAULT_MAX_MESSAGE;
        let mut broadcast = false;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--port" => {
                    let v = value("--port")?;
                    port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
                }
                "--max-message" => {
                    let v = value("--max-message")?;
                    max_message = v.parse().map_err(|_| format!("bad size {v:?}"))?;
                }
                "--broadcast" => broadcast = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Args {
            port: port.ok_or("--port is required")?,
            max_message,
            broadcast,
        })
    }

    /// The loopback address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// Builds the single-threaded runtime every peer runs on (one core, as the
/// benchmark pins each server to CPU 0).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("failed to build the tokio runtime")
}

/// Binds the listener and prints the `listening` line the benchmark script
/// waits for.
pub async fn bind(args: &Args, name: &str) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(args.addr()).await?;
    let mode = if args.broadcast { "broadcast" } else { "echo" };
    println!("{name} ({mode}) listening on {}", listener.local_addr()?);
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_the_echo_command_line() {
        assert_eq!(
            parse("--port 9001 --broadcast --max-message 1024"),
            Ok(Args {
                port: 9001,
                max_message: 1024,
                broadcast: true
            })
        );
        assert_eq!(parse("--port 1").unwrap().max_message, DEFAULT_MAX_MESSAGE);
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert!(parse("").is_err());
        assert!(parse("--port").is_err());
        assert!(parse("--port x").is_err());
        assert!(parse("--port 1 --frobnicate").is_err());
    }
}

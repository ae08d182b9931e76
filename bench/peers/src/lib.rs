//! Shared plumbing of the peer echo servers used by `bench/run.sh`.
//!
//! Each binary in `src/bin/` is written the way its crate's own examples are
//! (tokio-tungstenite's `echo-server.rs` / `server.rs`, fastwebsockets'
//! and yawc's `echo_server.rs` with the hyper upgrade); this module only holds what all
//! of them share: the command line of hubbub's `echo` binary
//! (`examples/README.md`, "echo"), binding, and the single-threaded runtime
//! used to keep the comparison fair.

use std::{
    collections::HashMap,
    future::Future,
    net::{Ipv4Addr, SocketAddr},
    sync::{atomic::AtomicU64, Arc, Mutex},
};

use http_body_util::Empty;
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
    Request, Response,
};
use hyper_util::rt::TokioIo;

use tokio_rustls::rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ServerConfig,
};

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
    /// `--tls-cert PATH --tls-key PATH`: speak TLS with this PEM
    /// certificate chain and key (the peers that support it).
    pub tls: Option<(String, String)>,
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
                eprintln!(
                    "usage: {name} --port P [--max-message BYTES] [--broadcast] [--tls-cert PATH --tls-key PATH]"
                );
                std::process::exit(2);
            }
        }
    }

    /// Parses an argument list (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut port = None;
        let mut max_message = DEFAULT_MAX_MESSAGE;
        let mut broadcast = false;
        let (mut cert, mut key) = (None, None);
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
                "--tls-cert" => cert = Some(value("--tls-cert")?),
                "--tls-key" => key = Some(value("--tls-key")?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        Ok(Args {
            port: port.ok_or("--port is required")?,
            max_message,
            broadcast,
            tls,
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

/// The TLS server configuration of `--tls-cert`/`--tls-key` (ring
/// provider, ALPN `http/1.1`), for tokio-rustls.
pub fn tls_config(cert: &str, key: &str) -> std::io::Result<std::sync::Arc<ServerConfig>> {
    let bad = |path: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{path}: {e}"))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(cert, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// Every connected peer's outgoing channel `T`, keyed by a connection id:
/// tokio-tungstenite's chat-server pattern, which the `--broadcast` peers
/// follow.
pub type PeerMap<T> = Arc<Mutex<HashMap<u64, T>>>;

/// What every upgrade handler of a hyper-based peer needs.
pub struct Shared<T> {
    /// The command line.
    pub args: Args,
    /// The `--broadcast` peers' channels.
    pub peers: PeerMap<T>,
    /// The next connection id.
    pub next_id: Arc<AtomicU64>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            args: self.args.clone(),
            peers: self.peers.clone(),
            next_id: self.next_id.clone(),
        }
    }
}

/// The main of a peer built on hyper's HTTP/1 upgrade (fastwebsockets,
/// yawc, as their `echo_server.rs` examples are): no TLS (`--tls-cert` is
/// refused), the single-threaded runtime, and every accepted connection
/// (TCP_NODELAY) served by hyper with upgrades, `upgrade` answering each
/// request.
pub fn run_upgrade_peer<T, U, F, E>(name: &str, upgrade: U) -> std::io::Result<()>
where
    T: Send + 'static,
    U: Fn(Shared<T>, Request<Incoming>) -> F + Copy + Send + 'static,
    F: Future<Output = Result<Response<Empty<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let args = Args::from_env();
    if args.tls.is_some() {
        return Err(std::io::Error::other("this peer has no TLS (--tls-cert)"));
    }
    current_thread_runtime().block_on(async move {
        let listener = bind(&args, name).await?;
        let shared = Shared {
            args,
            peers: PeerMap::default(),
            next_id: Arc::default(),
        };
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let shared = shared.clone();
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let service = service_fn(move |req| upgrade(shared.clone(), req));
                // Errors (a peer vanishing mid-handshake) just end the connection.
                let _ = http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await;
            });
        }
    })
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
                broadcast: true,
                tls: None,
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
        assert!(parse("--port 1 --tls-cert c.pem").is_err());
    }
}

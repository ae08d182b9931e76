//! Shared plumbing of the peer echo servers used by `bench/run.sh`.
//!
//! Each binary in `src/bin/` is written the way its crate's own examples are
//! (tokio-tungstenite's `echo-server.rs` / `server.rs`, fastwebsockets'
//! and yawc's `echo_server.rs` with the hyper upgrade); this module only holds what all
//! of them share: the command line of hubbub's `echo` binary
//! (`examples/README.md`, "echo"), binding, and the single-threaded runtime
//! used to keep the comparison fair.

use std::net::{Ipv4Addr, SocketAddr};

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

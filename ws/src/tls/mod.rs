//! TLS (`wss://`, `https://`) with rustls and its ring provider (feature
//! `tls`).
//!
//! rustls is sans-IO, so TLS is one more [`Transport`] over a transport:
//! [`TlsStream`] runs rustls over any runtime's stream, and everything that
//! runs over a transport (a [`WebSocket`], a hub session, the HTTP server,
//! the client) runs over it unchanged, on tokio, smol and mio alike.
//! Servers take a [`TlsAcceptor`] (certificate from PEM files or a
//! [`rustls::ServerConfig`], reloadable, with a handshake deadline) and
//! wrap each accepted stream in a [`MaybeTls`] before serving it; the
//! client runs TLS under `wss://` URLs, verifying the server with the
//! webpki roots ([`default_client_config`]) or the configuration in
//! [`ClientConfig::tls`].
//!
//! [`Transport`]: crate::driver::Transport
//! [`WebSocket`]: crate::WebSocket
//! [`MaybeTls`]: crate::MaybeTls
//! [`ClientConfig::tls`]: crate::ClientConfig::tls

mod acceptor;
mod client;
mod stream;

pub use acceptor::{server_config_from_pem_files, TlsAcceptor, DEFAULT_TLS_HANDSHAKE_TIMEOUT};
pub use client::{client_config_with_ca_file, client_config_with_roots, default_client_config};
/// rustls itself, for whole configurations.
pub use rustls;
pub use stream::TlsStream;

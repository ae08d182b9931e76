//! The client side's rustls configurations: webpki roots by default, or a
//! CA of one's own.

use std::{
    io,
    path::Path,
    sync::{Arc, OnceLock},
};

use rustls::{crypto::ring, ClientConfig, RootCertStore};

use super::acceptor::load_certs;

/// The configuration `wss://` connections use unless
/// [`ClientConfig::tls`](crate::ClientConfig::tls) says otherwise: the
/// Mozilla roots of `webpki-roots`, ALPN `http/1.1`.
pub fn default_client_config() -> io::Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = client_config_with_roots(roots)?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// A configuration that trusts `roots` only, with ALPN `http/1.1`.
pub fn client_config_with_roots(roots: RootCertStore) -> io::Result<Arc<ClientConfig>> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A configuration that trusts the CA certificates in the PEM file at
/// `path` (and no others), with ALPN `http/1.1`. The error names the file
/// and the problem.
pub fn client_config_with_ca_file(path: impl AsRef<Path>) -> io::Result<Arc<ClientConfig>> {
    let path = path.as_ref();
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS CA file {}: {e}", path.display()),
            )
        })?;
    }
    client_config_with_roots(roots)
}

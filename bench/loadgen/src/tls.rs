//! `--tls-ca PATH`: connections speak TLS (rustls, ring provider) and trust
//! the CA certificate(s) in the PEM file. The server name is the target's IP
//! address (certificates for the benchmark carry `127.0.0.1` and `::1`).
//!
//! rustls is sans-IO, so a TLS connection is the same non-blocking socket
//! with a `ClientConnection` beside it: [`Conn`](crate::conn::Conn) writes
//! plaintext into it and moves records to and from the socket.

use std::{net::IpAddr, path::Path, sync::Arc};

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, ServerName},
    ClientConfig, ClientConnection, RootCertStore,
};

/// What every TLS connection of a run shares.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Trust the certificates of the PEM file `ca`.
    pub fn from_ca_file(ca: &Path) -> Result<Tls, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("--tls-ca {}: no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// A client connection to the server at `ip`.
    pub fn connect(&self, ip: IpAddr) -> std::io::Result<ClientConnection> {
        let mut conn = ClientConnection::new(self.config.clone(), ServerName::IpAddress(ip.into()))
            .map_err(std::io::Error::other)?;
        // The upgrade request is written before the handshake ends.
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

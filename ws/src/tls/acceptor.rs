//! [`TlsAcceptor`]: the server side's certificate, reloadable, and the
//! handshake with its deadline.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, PoisonError, RwLock,
    },
    time::Duration,
};

use rustls::{
    crypto::ring,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ServerConfig,
};

use super::TlsStream;
use crate::{connect::timeout, driver::Transport, Runtime};

/// How long a client has for the TLS handshake by default.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a server needs to speak TLS: its certificate and key (a
/// [`rustls::ServerConfig`] with ALPN `http/1.1`) and a handshake
/// deadline. Cheap to clone; clones share the certificate, so
/// [`reload_from_files`](Self::reload_from_files) on one changes it for
/// every server using a clone — for new connections only: connections
/// already open keep theirs.
///
/// ```no_run
/// # fn run() -> std::io::Result<()> {
/// let acceptor = hubbub_ws::tls::TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
/// // later, after the files were renewed (on SIGHUP, say):
/// acceptor.reload_from_files()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    shared: Arc<Shared>,
    handshake_timeout: Duration,
}

struct Shared {
    config: RwLock<Arc<ServerConfig>>,
    /// The PEM files it was loaded from, for `reload_from_files`.
    files: Option<(PathBuf, PathBuf)>,
    failed: AtomicU64,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("files", &self.shared.files)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor for the certificate chain in `cert_chain` (PEM, the
    /// server's certificate first) and the private key in `key` (PEM:
    /// PKCS#8, PKCS#1 or SEC1). The error names the file and the problem:
    /// missing, not PEM, no certificate, no or an unsupported key, a key
    /// that does not match the certificate.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let config = server_config_from_pem_files(cert_chain, key)?;
        Ok(Self::with_files(
            config,
            Some((cert_chain.to_owned(), key.to_owned())),
        ))
    }

    /// An acceptor with a whole rustls configuration (its ALPN protocols
    /// are used as they are: set `http/1.1` for browsers).
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self::with_files(config, None)
    }

    fn with_files(config: Arc<ServerConfig>, files: Option<(PathBuf, PathBuf)>) -> Self {
        TlsAcceptor {
            shared: Arc::new(Shared {
                config: RwLock::new(config),
                files,
                failed: AtomicU64::new(0),
            }),
            handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }

    /// The time a client has for the TLS handshake (10 s by default); a
    /// slower one is dropped.
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = limit;
        self
    }

    /// Read the PEM files this acceptor was made from again, and use them
    /// for new connections, with the ALPN protocols of the configuration
    /// in use (so one set with [`reload`](Self::reload), e.g. offering
    /// `h2`, stays). On error (named as by
    /// [`from_pem_files`](Self::from_pem_files)) the certificate in use
    /// stays.
    pub fn reload_from_files(&self) -> io::Result<()> {
        let Some((cert_chain, key)) = &self.shared.files else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this TLS acceptor was not made from PEM files",
            ));
        };
        let mut config = Arc::unwrap_or_clone(server_config_from_pem_files(cert_chain, key)?);
        config.alpn_protocols = self.config().alpn_protocols.clone();
        self.reload(Arc::new(config));
        Ok(())
    }

    /// Use `config` for new connections.
    pub fn reload(&self, config: Arc<ServerConfig>) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.shared
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many TLS handshakes failed or timed out so far.
    pub fn failed_handshakes(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Run the server side of the TLS handshake on `io` within the
    /// handshake deadline on `R`'s clock. The error names the problem
    /// (a timeout is [`io::ErrorKind::TimedOut`]); it is counted in
    /// [`failed_handshakes`](Self::failed_handshakes).
    pub async fn accept<R: Runtime, T: Transport>(&self, io: T) -> io::Result<TlsStream<T>> {
        let failed = || self.shared.failed.fetch_add(1, Ordering::Relaxed);
        let mut stream = TlsStream::server(io, self.config()).inspect_err(|_| {
            failed();
        })?;
        let error = match timeout::<R, _>(self.handshake_timeout, stream.handshake()).await {
            Some(Ok(())) => return Ok(stream),
            Some(Err(error)) => error,
            None => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the TLS handshake took longer than {:?}",
                    self.handshake_timeout
                ),
            ),
        };
        // Counted before the connection is dropped (with `stream`).
        failed();
        Err(error)
    }
}

/// A rustls server configuration (ring, TLS 1.2 and 1.3, ALPN `http/1.1`)
/// from a PEM certificate chain and a PEM private key; the error names the
/// file and the problem.
pub fn server_config_from_pem_files(
    cert_chain: &Path,
    key: &Path,
) -> io::Result<Arc<ServerConfig>> {
    let certs = load_certs(cert_chain)?;
    let key_der = load_key(key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => invalid(format!(
                "TLS key {} does not match the certificate in {}",
                key.display(),
                cert_chain.display()
            )),
            other => invalid(format!("TLS key {}: {other}", key.display())),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path` (at least one).
pub(crate) fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(format!(
                "TLS certificate file {}: not valid PEM ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "TLS certificate file {}: no certificate in it (expected PEM \
             \"-----BEGIN CERTIFICATE-----\")",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    let bytes = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(format!(
            "TLS key file {}: no private key in it (expected PEM PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )),
        e => invalid(format!(
            "TLS key file {}: not valid PEM ({e})",
            path.display()
        )),
    })
}

fn read(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("TLS {what} file {}: {e}", path.display())))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

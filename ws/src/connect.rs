//! The client side: a `ws://` URL or a [`ClientRequest`] (headers,
//! subprotocols), timeouts for every step, and the reconnection policy the
//! hub's clients follow.

use std::{future::Future, io, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use futures_util::future::{select, Either};
use hubbub_core::{Accept, ClientRequest, Config, Connection, Response};

use crate::{
    driver::{Timer, Transport},
    error::Step,
    websocket::Core,
    Error, MaybeTls, Runtime, WebSocket,
};

/// The WebSocket a client on runtime `R` gets, and the one a server on `R`
/// serves: over the runtime's TCP stream, under TLS or not.
pub type RuntimeWebSocket<R> = WebSocket<MaybeTls<<R as Runtime>::Stream>, <R as Runtime>::Timer>;

/// What a client connects to: a `ws://host[:port]/path` or `wss://…` URL (`&str`,
/// `String`), or a [`ClientRequest`] with headers and subprotocols to
/// offer.
///
/// ```
/// use hubbub_core::ClientRequest;
/// use hubbub_ws::IntoClientRequest;
///
/// let request = ClientRequest::from_url("ws://127.0.0.1:9001/chat")
///     .unwrap()
///     .protocol("chat")
///     .header("Authorization", "Bearer abc");
/// assert_eq!(request.clone().into_client_request().unwrap().path(), "/chat");
/// assert!("http://example.com/".into_client_request().is_err());
/// ```
pub trait IntoClientRequest {
    /// The request; an invalid URL is an [`Error::Handshake`].
    fn into_client_request(self) -> Result<ClientRequest, Error>;
}

impl IntoClientRequest for ClientRequest {
    fn into_client_request(self) -> Result<ClientRequest, Error> {
        Ok(self)
    }
}

impl IntoClientRequest for &ClientRequest {
    fn into_client_request(self) -> Result<ClientRequest, Error> {
        Ok(self.clone())
    }
}

impl IntoClientRequest for &str {
    fn into_client_request(self) -> Result<ClientRequest, Error> {
        ClientRequest::from_url(self).map_err(Error::Handshake)
    }
}

impl IntoClientRequest for &String {
    fn into_client_request(self) -> Result<ClientRequest, Error> {
        self.as_str().into_client_request()
    }
}

impl IntoClientRequest for String {
    fn into_client_request(self) -> Result<ClientRequest, Error> {
        self.as_str().into_client_request()
    }
}

/// How a client connects: timeouts, protocol settings, reconnection.
///
/// ```
/// let config = hubbub_ws::ClientConfig {
///     reconnect: Some(hubbub_ws::Reconnect::default()),
///     ..Default::default()
/// };
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Protocol settings: limits, keep-alive pings (`ping_interval`,
    /// `pong_timeout`), `idle_timeout`, and the opening handshake's
    /// `handshake_timeout`.
    pub config: Arc<Config>,
    /// Time allowed to resolve the host name.
    pub dns_timeout: Option<Duration>,
    /// Time allowed to open the TCP connection (all addresses together).
    pub connect_timeout: Option<Duration>,
    /// Reconnect when the connection drops (the hub's reconnecting
    /// clients only); off by default.
    pub reconnect: Option<Reconnect>,
    /// The TLS configuration of `wss://` connections (feature `tls`):
    /// `None` verifies the server with the webpki roots
    /// ([`tls::default_client_config`](crate::tls::default_client_config));
    /// [`trust_pem_ca`](Self::trust_pem_ca) trusts a CA of one's own.
    /// Set ALPN `http/1.1` in a configuration of one's own.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// WebSockets over HTTP/2 (RFC 8441) for `wss://` (feature `h2`):
    /// with a pool, a connect offers ALPN `h2` and `http/1.1`, opens the
    /// WebSocket as an extended CONNECT where the server allows it, and
    /// shares one connection among the WebSockets to one origin; HTTP/1.1
    /// otherwise (see [`h2::H2Pool`](crate::h2::H2Pool)). `None` (the
    /// default): HTTP/1.1 only, with the ALPN of [`tls`](Self::tls).
    #[cfg(feature = "h2")]
    pub h2: Option<crate::h2::H2Pool>,
}

#[cfg(feature = "h2")]
impl ClientConfig {
    /// Open `wss://` WebSockets over HTTP/2 where servers allow it,
    /// sharing the connections of `pool` (see
    /// [`h2::H2Pool`](crate::h2::H2Pool)); clones of this configuration
    /// share it.
    pub fn with_h2(mut self, pool: crate::h2::H2Pool) -> Self {
        self.h2 = Some(pool);
        self
    }
}

#[cfg(feature = "tls")]
impl ClientConfig {
    /// Verify `wss://` servers with the CA certificates in the PEM file at
    /// `path` (instead of the webpki roots). The error names the file and
    /// the problem.
    pub fn trust_pem_ca(mut self, path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        self.tls = Some(crate::tls::client_config_with_ca_file(path)?);
        Ok(self)
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            config: Arc::new(Config::default()),
            dns_timeout: Some(Duration::from_secs(5)),
            connect_timeout: Some(Duration::from_secs(10)),
            reconnect: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "h2")]
            h2: None,
        }
    }
}

/// When and how often a reconnecting client (the hub's `Client` and
/// `Client::builder`) reconnects: exponential backoff with
/// jitter. Attempt `n` (from 1) waits `min(max_delay, initial_delay ×
/// 2^(n-1))`, less a random fraction of up to `jitter` of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    /// Wait before the first attempt.
    pub initial_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` never gives up.
    pub max_attempts: Option<u32>,
    /// The fraction of each wait (0.0–1.0) that is random.
    pub jitter: f64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            jitter: 0.5,
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubling = 2f64.powi(attempt.saturating_sub(1).min(62) as i32);
        let full = self.max_delay.min(self.initial_delay.mul_f64(doubling));
        let random = getrandom::u64().unwrap_or(0) as f64 / u64::MAX as f64;
        full.mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * random)
    }
}

/// Connect to `request` (a `ws://` or `wss://` URL or a [`ClientRequest`]) with the
/// default [`ClientConfig`]. Returns the WebSocket and the server's `101`
/// response (its headers, the chosen subprotocol and extensions).
pub async fn connect<R: Runtime>(
    request: impl IntoClientRequest,
) -> Result<(RuntimeWebSocket<R>, Response), Error> {
    connect_with::<R>(request, &ClientConfig::default()).await
}

/// Connect to `request`: resolve the host, open a TCP connection (with
/// `TCP_NODELAY`), for `wss://` run the TLS handshake (SNI and certificate
/// verification for the URL's host, within `config.handshake_timeout`),
/// and run the opening handshake, each step within its timeout. With
/// `ClientConfig::h2` set (feature `h2`), a `wss://` WebSocket goes over
/// HTTP/2 where the server allows it (`MaybeTls::H2`; see `h2::H2Pool`).
/// The error
/// names the step that failed and, for the handshakes, the check
/// ([`Error::Tls`] names the TLS problem: an expired certificate, one for
/// another host…).
pub async fn connect_with<R: Runtime>(
    request: impl IntoClientRequest,
    config: &ClientConfig,
) -> Result<(RuntimeWebSocket<R>, Response), Error> {
    let request = request.into_client_request()?;
    #[cfg(not(feature = "tls"))]
    if request.is_secure() {
        return Err(wss_needs_tls());
    }
    #[cfg(feature = "h2")]
    if let (true, Some(pool)) = (request.is_secure(), &config.h2) {
        return crate::h2::client::connect::<R>(pool, &request, config).await;
    }
    let stream = open_tcp::<R>(&request, config).await?;
    let stream = if request.is_secure() {
        secure::<R>(stream, &request, config).await?
    } else {
        MaybeTls::Plain(stream)
    };
    client(stream, R::Timer::default(), &request, config.config.clone()).await
}

/// Resolve, connect and run the TLS handshake offering `alpn` (HTTP/2's
/// connects).
#[cfg(feature = "h2")]
pub(crate) async fn tcp_tls<R: Runtime>(
    request: &ClientRequest,
    config: &ClientConfig,
    alpn: Vec<Vec<u8>>,
) -> Result<MaybeTls<R::Stream>, Error> {
    let stream = open_tcp::<R>(request, config).await?;
    let mut tls = Arc::unwrap_or_clone(tls_config(config)?);
    tls.alpn_protocols = alpn;
    secure_with::<R>(stream, request, config, Arc::new(tls)).await
}

/// Resolve `request`'s host and connect to one of its addresses, each
/// step within its timeout.
async fn open_tcp<R: Runtime>(
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<R::Stream, Error> {
    let addrs = within::<R, _>(
        config.dns_timeout,
        Step::Dns,
        resolve::<R>(request.host(), request.port()),
    )
    .await?;
    within::<R, _>(
        config.connect_timeout,
        Step::Connect,
        connect_any::<R>(&addrs),
    )
    .await
}

/// The TLS configuration of `wss://` connections: the configured one, or
/// the webpki roots'.
#[cfg(feature = "tls")]
fn tls_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>, Error> {
    match &config.tls {
        Some(tls) => Ok(tls.clone()),
        None => crate::tls::default_client_config().map_err(Error::Tls),
    }
}

/// The TLS handshake of a `wss://` connection.
#[cfg(feature = "tls")]
async fn secure<R: Runtime>(
    stream: R::Stream,
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<MaybeTls<R::Stream>, Error> {
    secure_with::<R>(stream, request, config, tls_config(config)?).await
}

/// The TLS handshake of a `wss://` connection with the configuration `tls`.
#[cfg(feature = "tls")]
async fn secure_with<R: Runtime>(
    stream: R::Stream,
    request: &ClientRequest,
    config: &ClientConfig,
    tls: Arc<rustls::ClientConfig>,
) -> Result<MaybeTls<R::Stream>, Error> {
    use rustls::pki_types::ServerName;

    let name = ServerName::try_from(request.host().to_owned()).map_err(|e| {
        Error::Tls(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} is not a valid TLS server name: {e}", request.host()),
        ))
    })?;
    let mut stream = crate::tls::TlsStream::client(stream, tls, name).map_err(Error::Tls)?;
    within::<R, _>(config.config.handshake_timeout, Step::Tls, async {
        stream.handshake().await.map_err(Error::Tls)
    })
    .await?;
    Ok(MaybeTls::Tls(Box::new(stream)))
}

/// Without the `tls` feature, `wss://` is refused.
#[cfg(not(feature = "tls"))]
async fn secure<R: Runtime>(
    _stream: R::Stream,
    _request: &ClientRequest,
    _config: &ClientConfig,
) -> Result<MaybeTls<R::Stream>, Error> {
    Err(wss_needs_tls())
}

#[cfg(not(feature = "tls"))]
fn wss_needs_tls() -> Error {
    Error::Handshake(hubbub_core::HandshakeError::InvalidUrl(
        "wss:// needs the `tls` feature of hubbub (hubbub-tokio, -smol or -mio)".into(),
    ))
}

/// Run the client side of the opening handshake over an already connected
/// `transport`, within `config.handshake_timeout`. Returns the WebSocket
/// and the server's `101` response.
pub async fn client<T: Transport, K: Timer>(
    transport: T,
    timer: K,
    request: &ClientRequest,
    config: Arc<Config>,
) -> Result<(WebSocket<T, K>, Response), Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| Error::Io(io::Error::other(error)))?;
    let conn = Connection::client(config, timer.now(), request, seed);
    let mut core = Core::new(conn, transport, timer);
    core.open(|_| Ok(Accept::new())).await?;
    let response = core.response().ok_or(Error::Closed)?;
    Ok((WebSocket::from_core(core), response))
}

/// `work`, or `None` if it takes longer than `limit` on `R`'s clock.
pub async fn timeout<R: Runtime, T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    match select(pin!(work), pin!(R::sleep(limit))).await {
        Either::Left((done, _)) => Some(done),
        Either::Right(((), _)) => None,
    }
}

/// `work` within `limit` (if any); past it, [`Error::Timeout`] of `step`.
pub(crate) async fn within<R: Runtime, T>(
    limit: Option<Duration>,
    step: Step,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match limit {
        Some(limit) => timeout::<R, _>(limit, work)
            .await
            .ok_or(Error::Timeout(step))?,
        None => work.await,
    }
}

async fn resolve<R: Runtime>(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let addrs = R::resolve(host, port).await.map_err(Error::Dns)?;
    if addrs.is_empty() {
        let message = format!("no address found for {host}");
        return Err(Error::Dns(io::Error::new(io::ErrorKind::NotFound, message)));
    }
    Ok(addrs)
}

/// Try each address in turn; the error names the last one tried.
async fn connect_any<R: Runtime>(addrs: &[SocketAddr]) -> Result<R::Stream, Error> {
    let mut last = None;
    for addr in addrs {
        match R::connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(io::Error::new(error.kind(), format!("{addr}: {error}"))),
        }
    }
    Err(Error::Connect(
        last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
    ))
}

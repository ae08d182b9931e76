//! A [`Hub`]'s sessions over HTTP/2 (RFC 8441, extended CONNECT), on any
//! [`Runtime`] (feature `h2`).
//!
//! - [`start`]: a [`HubServer`] under TLS served with ALPN `h2` and
//!   `http/1.1`: after the TLS handshake the ALPN protocol picks the path,
//!   `h2` runs [`serve_h2_connection`], anything else the HTTP/1.1 upgrade
//!   exactly as [`HubServer::start`] does;
//! - [`serve_h2_connection`]: one HTTP/2 connection (over TLS or, with
//!   prior knowledge, plain TCP) whose WebSocket streams are hub sessions.
//!
//! Each extended CONNECT goes through the same decision as an HTTP/1.1
//! upgrade (path, origin list, authentication with the request's token,
//! connection limits, `on_upgrade`); the identity a token proves is the
//! session's, as over HTTP/1.1. Refusals are answered with their status,
//! headers and body; other requests as
//! [`websocket_request`](hubbub_ws::h2::websocket_request) says (hubbub-http
//! serves its routes over HTTP/2 too). The connection, its streams and
//! GOAWAY: see [`hubbub_ws::h2`].

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use crate::{run_session, runner, Hub, HubHandle, HubServer, SessionInfo};
use hubbub_core::{Config, Connection, Request};
use hubbub_ws::{
    driver::Driver,
    h2::{self as ws_h2, H2Config, StreamFuture, TransportIo, ALPN_H2},
    serving::{self, Service},
    tls::TlsAcceptor,
    MaybeTls, Runtime,
};

/// Serve `server` (built as usual: `bind`, `tls`) with HTTP/2 and
/// HTTP/1.1 by ALPN: its TLS acceptor's ALPN must offer `h2`
/// ([`offer_h2`](hubbub_ws::h2::offer_h2)), and a server without TLS is
/// refused (`InvalidInput`): browsers speak HTTP/2 only under TLS. The
/// handle's `shutdown` is [`HubServer::start`]'s: every session, on either
/// protocol, is closed with 1001, HTTP/2 connections get GOAWAY, then a
/// bounded wait.
pub fn start<R: Runtime>(server: HubServer<R>, h2: H2Config) -> io::Result<HubHandle> {
    let acceptor = h2_acceptor(server.tls_acceptor())?;
    let (listener, hub, config) = server.into_parts();
    let service = AlpnService {
        hub: hub.clone(),
        config,
        h2,
    };
    let server = serving::start_with::<R, _>(listener, service, Some(acceptor))?;
    Ok(HubHandle::new(server, hub))
}

/// `acceptor`, if it is one and its ALPN offers `h2`; else the error
/// saying what is missing.
pub fn h2_acceptor(acceptor: Option<TlsAcceptor>) -> io::Result<TlsAcceptor> {
    let acceptor = acceptor.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "HTTP/2 is served under TLS: give the server a TLS acceptor",
        )
    })?;
    if !acceptor
        .config()
        .alpn_protocols
        .iter()
        .any(|p| p == ALPN_H2)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the TLS acceptor does not offer ALPN h2 (see h2::offer_h2)",
        ));
    }
    Ok(acceptor)
}

/// Whether `stream`'s TLS handshake chose HTTP/2 by ALPN.
pub fn is_h2<T>(stream: &MaybeTls<T>) -> bool {
    stream.tls().and_then(|tls| tls.alpn_protocol()) == Some(ALPN_H2)
}

/// [`start`]'s service: a connection under TLS picks HTTP/2 or HTTP/1.1
/// by its ALPN protocol.
struct AlpnService {
    hub: Hub,
    config: Arc<Config>,
    h2: H2Config,
}

impl<R: Runtime> Service<R> for AlpnService {
    fn serve(
        &self,
        stream: MaybeTls<R::Stream>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let h2 = is_h2(&stream);
        let (hub, config, settings) = (self.hub.clone(), self.config.clone(), self.h2);
        async move {
            if h2 {
                let io = TransportIo(stream);
                let _ = serve_h2_connection::<R, _>(io, hub, config, settings, Some(peer)).await;
            } else {
                // HubServer's own path.
                let conn = Connection::server(config, R::now());
                let driver = Driver::new(conn, stream, R::Timer::default());
                run_session(driver, hub, Some(peer)).await;
            }
        }
    }

    fn shutdown(&self) {
        self.hub.shutdown();
    }
}

/// Serve one HTTP/2 connection on `io` with runtime `R`'s timers: every
/// WebSocket stream opened on it by an extended CONNECT is a session of
/// `hub` ([`open_h2_session`]), until the connection ends. The sessions
/// run inside this future (dropping it ends them all, with `on_close`
/// 1006); once the hub shuts down the connection sends GOAWAY.
///
/// Returns the connection's error, if it ended with one.
pub async fn serve_h2_connection<R, I>(
    io: I,
    hub: Hub,
    config: Arc<Config>,
    h2: H2Config,
    peer: Option<SocketAddr>,
) -> io::Result<()>
where
    R: Runtime,
    I: ws_h2::H2Io,
{
    let draining = || !hub.is_accepting();
    ws_h2::serve_connection::<R, _, _, _>(
        io,
        h2,
        config.max_head_size,
        draining,
        |request, respond| open_h2_session::<R>(&hub, &config, peer, request, respond),
    )
    .await
}

/// One extended CONNECT as a session of `hub`: decided as an HTTP/1.1
/// upgrade is (the identity its token proves kept for the session),
/// answered `200` and the session's future returned; or refused (counted
/// in the hub's rejected handshakes) and `None`.
pub fn open_h2_session<R: Runtime>(
    hub: &Hub,
    config: &Arc<Config>,
    peer: Option<SocketAddr>,
    request: ws_h2::H2Request,
    respond: ws_h2::H2Respond,
) -> Option<StreamFuture> {
    let refused = |status| hub.metrics().handshakes_rejected.inc(status);
    let mut identity = None;
    let admit = |request: &Request| hub.admit_reserved(request, hub.reserve(peer), &mut identity);
    let (request, upgrade, stream, slot) =
        ws_h2::open_websocket(request, respond, config, admit, refused)?;
    let mut info = SessionInfo::from_request(peer, &request);
    info.protocol = upgrade.protocol().map(str::to_owned);
    hub.metrics().h2_sessions.inc();
    let conn = Connection::upgraded(config.clone(), upgrade, R::now());
    let driver = Driver::new(conn, stream, R::Timer::default());
    let session = runner::run_admitted(driver, hub.clone(), info, identity, slot);
    Some(Box::pin(session))
}

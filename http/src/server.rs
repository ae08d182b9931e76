//! Listeners served with HTTP on any [`Runtime`]: an HTTP-only port
//! ([`serve_http`]), and HTTP beside a hub's WebSockets on one shared port
//! ([`HttpApp::start_shared`]).

use std::{future::Future, io, net::SocketAddr, pin::pin, sync::Arc};

use futures_util::future::select;
use hubbub_core::Config;
use hubbub_hub::{HubHandle, HubServer};
use hubbub_ws::{
    serving::{self, Acceptor, Service},
    Flag, MaybeTls, Runtime,
};

use crate::{serve_connection_from, serve_shared, HttpApp};

/// Serve `app` on `listener` (routes only: an upgrade request is an
/// ordinary request here) until this future is dropped, which also ends
/// every connection it serves.
pub async fn serve_http<R: Runtime>(listener: R::Listener, app: HttpApp) {
    serve_http_with::<R>(listener, app, None).await
}

/// [`serve_http`], over TLS (`https://`) when `tls` is an acceptor
/// (feature `tls`): each connection runs the TLS handshake within the
/// acceptor's deadline first; a failed or slow one drops that connection
/// only.
///
/// With feature `h2`, a connection whose TLS handshake chose `h2` by ALPN
/// (the acceptor offers it: [`offer_h2`](hubbub_ws::h2::offer_h2)) is
/// served with HTTP/2: every request, each on its stream, answered by the
/// app's routes as over HTTP/1.1 (no WebSockets on this port).
pub async fn serve_http_with<R: Runtime>(listener: R::Listener, app: HttpApp, tls: Acceptor) {
    let stop = Stopped(Arc::new(Flag::default()));
    loop {
        let (stream, peer) = serving::accept::<R>(&listener).await;
        let (app, stop) = (app.clone(), stop.0.clone());
        match &tls {
            None => R::spawn(async move {
                let stream = MaybeTls::Plain(stream);
                let timer = R::Timer::default();
                let served = pin!(serve_connection_from(
                    stream,
                    timer,
                    &app,
                    false,
                    Some(peer)
                ));
                let _ = select(served, pin!(stop.wait())).await;
            }),
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                R::spawn(async move {
                    let served = pin!(async {
                        if let Some(stream) = serving::handshake::<R>(&acceptor, stream).await {
                            #[cfg(feature = "h2")]
                            if hubbub_hub::http2::is_h2(&stream) {
                                let io = hubbub_ws::h2::TransportIo(stream);
                                let h2 = H2::for_app(&app).config;
                                let served =
                                    crate::h2::serve_h2::<R, _>(io, app, None, h2, Some(peer));
                                return Box::pin(served).await;
                            }
                            let timer = R::Timer::default();
                            serve_connection_from(stream, timer, &app, false, Some(peer)).await;
                        }
                    });
                    let _ = select(served, pin!(stop.wait())).await;
                });
            }
        }
    }
}

/// Ends the connections of a [`serve_http`] when its future is dropped.
struct Stopped(Arc<Flag>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.set();
    }
}

impl HttpApp {
    /// Serve this app on `server`'s listener too (one shared port):
    /// requests are HTTP until one asks for a WebSocket upgrade, which
    /// becomes a session of the app's hub with `server`'s configuration.
    /// The handle's shutdown is the hub server's: close 1001 to every
    /// session, held long polls answered, then a bounded wait.
    ///
    /// **HTTP/2** (feature `h2`): when `server`'s TLS acceptor offers ALPN
    /// `h2` ([`offer_h2`](hubbub_ws::h2::offer_h2)), a connection whose
    /// TLS handshake chose `h2` is served with HTTP/2 (see
    /// [`start_shared_h2`](Self::start_shared_h2) for its settings): each
    /// extended CONNECT
    /// (RFC 8441) is a session of the hub, decided as an upgrade is, and
    /// every other request is answered by the app's routes as over
    /// HTTP/1.1 (same routing, guard, limits, long polls, files streamed
    /// within the stream's window). Shutdown sends those connections
    /// GOAWAY. Connections that chose `http/1.1` (or none), and acceptors
    /// that do not offer `h2`, are served exactly as without the feature.
    pub fn start_shared<R: Runtime>(&self, server: HubServer<R>) -> io::Result<HubHandle> {
        self.start_shared_inner(server, H2::for_app(self))
    }

    /// [`start_shared`](Self::start_shared) with the HTTP/2 settings `h2`
    /// for the connections that choose HTTP/2 (feature `h2`). Without
    /// it, the defaults but for the idle timeout, which is the app's
    /// ([`HttpTimeouts::idle`](crate::HttpTimeouts)), as over HTTP/1.1.
    #[cfg(feature = "h2")]
    pub fn start_shared_h2<R: Runtime>(
        &self,
        server: HubServer<R>,
        h2: hubbub_ws::h2::H2Config,
    ) -> io::Result<HubHandle> {
        self.start_shared_inner(server, H2 { config: h2 })
    }

    fn start_shared_inner<R: Runtime>(
        &self,
        server: HubServer<R>,
        h2: H2,
    ) -> io::Result<HubHandle> {
        let tls = server.tls_acceptor();
        let (listener, hub, config) = server.into_parts();
        let service = SharedPort {
            app: self.clone(),
            config,
            h2,
        };
        let server = serving::start_with::<R, _>(listener, service, tls)?;
        Ok(HubHandle::new(server, hub))
    }
}

/// The HTTP/2 settings of a shared port (nothing without feature `h2`).
#[derive(Clone, Copy)]
struct H2 {
    #[cfg(feature = "h2")]
    config: hubbub_ws::h2::H2Config,
}

impl H2 {
    /// The defaults, but for the idle timeout: `app`'s, as for an idle
    /// HTTP/1.1 connection.
    #[cfg_attr(not(feature = "h2"), allow(unused_variables))]
    fn for_app(app: &HttpApp) -> Self {
        #[cfg(feature = "h2")]
        {
            let mut config = hubbub_ws::h2::H2Config::default();
            config.idle_timeout = app.timeouts().idle;
            H2 { config }
        }
        #[cfg(not(feature = "h2"))]
        H2 {}
    }
}

/// HTTP and WebSocket upgrades on one port (and HTTP/2, by ALPN).
struct SharedPort {
    app: HttpApp,
    config: Arc<Config>,
    #[cfg_attr(not(feature = "h2"), allow(dead_code))]
    h2: H2,
}

impl<R: Runtime> Service<R> for SharedPort {
    fn serve(
        &self,
        stream: MaybeTls<R::Stream>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (app, config) = (self.app.clone(), self.config.clone());
        #[cfg(feature = "h2")]
        let h2 = self.h2.config;
        async move {
            // Only a TLS handshake that chose `h2` by ALPN (so an acceptor
            // that offers it) leads here. Boxed: an HTTP/1.1 connection's
            // future keeps no room for HTTP/2's state.
            #[cfg(feature = "h2")]
            if hubbub_hub::http2::is_h2(&stream) {
                let io = hubbub_ws::h2::TransportIo(stream);
                let websockets = Some(config);
                let served = crate::h2::serve_h2::<R, _>(io, app, websockets, h2, Some(peer));
                return Box::pin(served).await;
            }
            serve_shared(stream, R::Timer::default(), &app, config, Some(peer)).await
        }
    }

    fn shutdown(&self) {
        self.app.hub().shutdown();
    }
}

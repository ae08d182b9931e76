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
    pub fn start_shared<R: Runtime>(&self, server: HubServer<R>) -> io::Result<HubHandle> {
        let tls = server.tls_acceptor();
        let (listener, hub, config) = server.into_parts();
        let service = SharedPort {
            app: self.clone(),
            config,
        };
        let server = serving::start_with::<R, _>(listener, service, tls)?;
        Ok(HubHandle::new(server, hub))
    }
}

/// HTTP and WebSocket upgrades on one port.
struct SharedPort {
    app: HttpApp,
    config: Arc<Config>,
}

impl<R: Runtime> Service<R> for SharedPort {
    fn serve(
        &self,
        stream: MaybeTls<R::Stream>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (app, config) = (self.app.clone(), self.config.clone());
        async move { serve_shared(stream, R::Timer::default(), &app, config, Some(peer)).await }
    }

    fn shutdown(&self) {
        self.app.hub().shutdown();
    }
}

//! # hubbub-axum
//!
//! hubbub WebSockets in an [axum](https://docs.rs/axum) application: the
//! [`WebSocketUpgrade`] extractor validates the upgrade request with the
//! hubbub core, lets the handler look at it ([`WebSocketUpgrade::request`])
//! and answers `101 Switching Protocols`; the upgraded connection then runs
//! either as a plain [`WebSocket`] (a `Stream` and `Sink` of messages,
//! [`WebSocketUpgrade::on_upgrade`]) or as a session of a hubbub [`Hub`],
//! with its callbacks, rooms and broadcast
//! ([`WebSocketUpgrade::on_upgrade_hub`]). One axum app serves its own
//! routes and hubbub rooms on one port.
//!
//! A bad upgrade request is answered by the extractor's rejection
//! ([`UpgradeRejection`]) with the status and text of the core's
//! [`Reject`]: 400, 405 or 426.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use hubbub_axum::{Config, DeflateConfig, Hub, WebSocketUpgrade};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     // Every text message goes to every session.
//!     let hub = Hub::builder()
//!         .on_message(|session, text| {
//!             if let Some(hub) = session.hub() {
//!                 hub.broadcast_text(text, None);
//!             }
//!         })
//!         .build();
//!     let app = Router::new()
//!         .route("/health", get(|| async { "ok" }))
//!         .route("/echo", get(echo))
//!         .route("/rooms", get(rooms))
//!         .with_state(hub);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await
//! }
//!
//! /// A plain socket: every message back to its sender.
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     let config = Config {
//!         deflate: Some(DeflateConfig::default()),
//!         ..Config::default()
//!     };
//!     ws.config(Arc::new(config))
//!         .protocols(["echo.v1"])
//!         .on_upgrade(|mut socket| async move {
//!             while let Some(message) = socket.recv().await {
//!                 if let Ok(message) = message {
//!                     let _ = socket.send(message).await;
//!                 }
//!             }
//!         })
//! }
//!
//! /// A session of the hub; the hub's `on_upgrade` and path check decide.
//! async fn rooms(ws: WebSocketUpgrade, State(hub): State<Hub>) -> Response {
//!     ws.on_upgrade_hub(hub)
//! }
//! ```
#![forbid(unsafe_code)]

use std::{fmt, future::Future, net::SocketAddr, sync::Arc};

use axum::{
    body::Body,
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts, HeaderName, HeaderValue, Method, StatusCode, Version},
    response::{IntoResponse, Response},
};
use hubbub_hub::{run_admitted_session, SessionInfo};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

#[cfg(feature = "deflate")]
pub use hubbub_core::DeflateConfig;
pub use hubbub_core::{Accept, CloseCode, Config, Message, Reject, Request};
pub use hubbub_hub::Hub;

/// The server WebSocket of an upgraded axum connection: a `Stream` of
/// messages and a `Sink` for them (see [`hubbub_tokio::WebSocket`]).
pub type WebSocket = hubbub_tokio::WebSocket<TokioIo<Upgraded>>;

/// Extracts a WebSocket upgrade request, validated by the hubbub core
/// ([`Request::from_parts`]); answer it with
/// [`on_upgrade`](Self::on_upgrade) or [`on_upgrade_hub`](Self::on_upgrade_hub).
///
/// Only HTTP/1.1 `GET` upgrades are accepted. The peer's address is known
/// when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    request: Request,
    peer: Option<SocketAddr>,
    on_upgrade: OnUpgrade,
    config: Arc<Config>,
    protocols: Vec<String>,
    accept: Option<Accept>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(Reject::new(405)
                .with_header("Allow", "GET")
                .with_body(format!(
                    "Method {} is not allowed; a WebSocket upgrade uses GET.",
                    parts.method
                ))
                .into());
        }
        if parts.version != Version::HTTP_11 {
            return Err(Reject::new(400)
                .with_body("HTTP/1.1 is required for a WebSocket upgrade.")
                .into());
        }
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str());
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let request = Request::from_parts(target, headers)?;
        // Taken only from a valid request, so that a rejected one leaves the
        // connection to hyper.
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            Reject::new(426).with_body(
                "The connection cannot be upgraded: the server gave no upgrade handle for it.",
            )
        })?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(WebSocketUpgrade {
            request,
            peer,
            on_upgrade,
            config: Arc::default(),
            protocols: Vec::new(),
            accept: None,
        })
    }
}

impl WebSocketUpgrade {
    /// The validated upgrade request: path, query, headers, origin, offered
    /// subprotocols and extensions.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The peer's address, when the app was served with `ConnectInfo`.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The connection's configuration (default [`Config::default`]:
    /// permessage-deflate off). Set `Config::deflate` (feature `deflate`,
    /// on by default) to negotiate it.
    pub fn config(mut self, config: Arc<Config>) -> Self {
        self.config = config;
        self
    }

    /// The subprotocols this server speaks: the first of the client's
    /// offers that is among them is chosen; none if there is no match.
    /// Replaced by [`accept`](Self::accept).
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Accept with exactly this [`Accept`] (subprotocol, extra headers);
    /// [`protocols`](Self::protocols) then does not apply.
    pub fn accept(mut self, accept: Accept) -> Self {
        self.accept = Some(accept);
        self
    }

    /// Answer `101 Switching Protocols` and, once hyper hands over the
    /// connection, run `callback` with the [`WebSocket`] on a task of its
    /// own. Answers 500 if [`accept`](Self::accept) chose a subprotocol the
    /// client did not offer.
    pub fn on_upgrade<F, Fut>(mut self, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = match self.accept.take() {
            Some(accept) => accept,
            None => self.chosen_protocol(),
        };
        self.answer(accept, callback)
    }

    /// Answer the upgrade for `hub` and run the connection as one of its
    /// sessions (its callbacks, rooms and broadcast) on a task of its own.
    ///
    /// The hub decides ([`Hub::admit`]: its path check, origin list,
    /// connection limits with the peer from `ConnectInfo`, then its
    /// `on_upgrade`) before anything is answered: a rejection becomes this
    /// response, with its status, headers and body. The hub's choice of
    /// subprotocol replaces [`protocols`](Self::protocols) and
    /// [`accept`](Self::accept). A hub that is shutting down closes the
    /// connection at once with 1001.
    pub fn on_upgrade_hub(self, hub: Hub) -> Response {
        let (accept, slot) = match hub.admit(&self.request, self.peer) {
            Ok(admitted) => admitted,
            Err(reject) => {
                hub.metrics().handshakes_rejected.inc(reject.status());
                return UpgradeRejection(reject).into_response();
            }
        };
        let mut info = SessionInfo::from_request(self.peer, &self.request);
        self.answer(accept, move |socket| {
            let (driver, protocol) = socket.into_driver();
            info.protocol = protocol;
            run_admitted_session(driver, hub, info, slot)
        })
    }

    /// An [`Accept`] with the subprotocol chosen by [`protocols`](Self::protocols).
    fn chosen_protocol(&self) -> Accept {
        let chosen = self
            .request
            .protocols()
            .iter()
            .find(|offered| self.protocols.contains(offered));
        match chosen {
            Some(protocol) => Accept::new().protocol(protocol.as_str()),
            None => Accept::new(),
        }
    }

    /// Negotiate with `accept`, answer 101, and run `callback` on the
    /// upgraded connection.
    fn answer<F, Fut>(self, accept: Accept, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let upgrade = match self.request.negotiate(&self.config, accept) {
            Ok(upgrade) => upgrade,
            Err(error) => {
                return UpgradeRejection(Reject::new(500).with_body(error.to_string()))
                    .into_response()
            }
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        append_headers(response.headers_mut(), upgrade.headers);
        let (config, on_upgrade) = (self.config, self.on_upgrade);
        let negotiated = upgrade.negotiated;
        tokio::spawn(async move {
            // An error here means the client went away before the switch.
            if let Ok(upgraded) = on_upgrade.await {
                let socket =
                    hubbub_tokio::from_upgraded(TokioIo::new(upgraded), config, negotiated);
                callback(socket).await;
            }
        });
        response
    }
}

/// Add `headers` to `map`, in order. (The core only produces valid names
/// and values; anything else would be left out rather than panic.)
fn append_headers<N: AsRef<str>, V: AsRef<str>>(
    map: &mut axum::http::HeaderMap,
    headers: impl IntoIterator<Item = (N, V)>,
) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_ref()),
            HeaderValue::try_from(value.as_ref()),
        ) {
            map.append(name, value);
        }
    }
}

/// Why an upgrade was refused: the core's (or the hub's) [`Reject`],
/// answered with its status, headers and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRejection(
    /// The refusal: status, extra headers, body.
    pub Reject,
);

impl From<Reject> for UpgradeRejection {
    fn from(reject: Reject) -> Self {
        UpgradeRejection(reject)
    }
}

impl fmt::Display for UpgradeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0.status(), self.0.body())
    }
}

impl std::error::Error for UpgradeRejection {}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let reject = self.0;
        let mut response = Response::new(Body::from(reject.body().to_owned()));
        *response.status_mut() =
            StatusCode::from_u16(reject.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        append_headers(response.headers_mut(), reject.headers());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

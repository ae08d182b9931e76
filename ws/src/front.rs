//! The public front of a runtime adapter, written once: every adapter
//! crate invokes [`runtime_front!`](crate::runtime_front) with its runtime
//! and gets the same names with the same shapes.

/// Declares a runtime adapter's public front in the invoking crate: the
/// core's and this crate's types re-exported, [`WebSocket`](crate::WebSocket)
/// and its halves named for the runtime's byte streams, [`Server`](crate::Server),
/// `accept`, `accept_with`, `from_upgraded`, `connect`, `connect_with`,
/// `client`; with the
/// invoking crate's `hub` feature the hub's types, `Client`, `ClientBuilder`
/// and `HubServer`; with `signal`, `shutdown_signal`; with `http`, the
/// `http` module, `Settings` and `serve_http`.
///
/// - `runtime`: the type implementing [`Runtime`](crate::Runtime);
/// - `timer`: its timer;
/// - `io`: a type constructor `Io<S>` that turns a byte stream `S` of the
///   runtime into a [`Transport`](crate::driver::Transport), with
///   `From<S>` (an alias `type Io<S> = S;` when streams are transports
///   already);
/// - `stream`: the default byte stream (the runtime's TCP stream), so that
///   `Io<stream>` is the runtime's `Stream`.
#[macro_export]
macro_rules! runtime_front {
    (runtime: $rt:ty, timer: $timer:ty, io: $io:ident, stream: $stream:ty $(,)?) => {
        #[cfg(feature = "deflate")]
        pub use $crate::hubbub_core::DeflateConfig;
        pub use $crate::hubbub_core::{
            Accept, ClientRequest, CloseCode, Closed, Config, Event, HandshakeError, Initiator,
            Message, Negotiated, Opened, ProtocolError, Reject, Request, Response, Upgrade,
            UsageError,
        };
        /// TLS: [`TlsAcceptor`](hubbub_ws::tls::TlsAcceptor) for servers,
        /// configurations for `wss://` clients (see [`hubbub_ws::tls`]).
        #[cfg(feature = "tls")]
        pub use $crate::tls;
        #[cfg(feature = "tls")]
        pub use $crate::tls::TlsAcceptor;
        pub use $crate::{
            driver, ClientConfig, Error, IntoClientRequest, MaybeTls, Reconnect, ServerHandle,
            Step, DEFAULT_GRACE, LISTEN_BACKLOG,
        };

        /// A WebSocket over a byte stream `S` of this runtime (its TCP
        /// stream by default): a `Stream` of messages and a `Sink` for them
        /// (see [`hubbub_ws::WebSocket`]).
        /// Under TLS or not: see [`MaybeTls`](hubbub_ws::MaybeTls).
        pub type WebSocket<S = $stream> = $crate::WebSocket<$crate::MaybeTls<$io<S>>, $timer>;
        /// The receiving half of a split [`WebSocket`].
        pub type ReadHalf<S = $stream> = $crate::ReadHalf<$crate::MaybeTls<$io<S>>, $timer>;
        /// The sending half of a split [`WebSocket`].
        pub type WriteHalf<S = $stream> = $crate::WriteHalf<$crate::MaybeTls<$io<S>>, $timer>;
        /// A TCP WebSocket server on this runtime (see
        /// [`hubbub_ws::Server`]).
        pub type Server = $crate::Server<$rt>;

        /// Run the server side of the opening handshake on `stream` with
        /// the default configuration, accepting any path and no
        /// subprotocol.
        pub async fn accept<S>(stream: S) -> ::std::result::Result<WebSocket<S>, Error>
        where
            $io<S>: $crate::driver::Transport + From<S>,
        {
            $crate::accept(
                $crate::MaybeTls::Plain(<$io<S>>::from(stream)),
                <$timer>::default(),
            )
            .await
        }

        /// Run the server side of the opening handshake on `stream`;
        /// `decide` accepts or rejects the upgrade request (see
        /// [`hubbub_ws::accept_with`]).
        pub async fn accept_with<S, D>(
            stream: S,
            config: ::std::sync::Arc<Config>,
            decide: D,
        ) -> ::std::result::Result<WebSocket<S>, Error>
        where
            $io<S>: $crate::driver::Transport + From<S>,
            D: FnOnce(&Request) -> ::std::result::Result<Accept, Reject>,
        {
            $crate::accept_with(
                $crate::MaybeTls::Plain(<$io<S>>::from(stream)),
                <$timer>::default(),
                config,
                decide,
            )
            .await
        }

        /// A server WebSocket over `stream` whose upgrade another HTTP
        /// server (hyper, axum) already answered with the headers of
        /// [`Request::negotiate`] (see [`hubbub_ws::WebSocket::from_upgraded`]).
        pub fn from_upgraded<S>(
            stream: S,
            config: ::std::sync::Arc<Config>,
            negotiated: Negotiated,
        ) -> WebSocket<S>
        where
            $io<S>: $crate::driver::Transport + From<S>,
        {
            $crate::WebSocket::from_upgraded(
                $crate::MaybeTls::Plain(<$io<S>>::from(stream)),
                <$timer>::default(),
                config,
                negotiated,
            )
        }

        /// Connect to `request` (a `ws://` or `wss://` URL or a [`ClientRequest`]) with
        /// the default [`ClientConfig`]: the WebSocket and the server's
        /// `101` [`Response`].
        pub async fn connect(
            request: impl $crate::IntoClientRequest,
        ) -> ::std::result::Result<(WebSocket, Response), Error> {
            $crate::connect::<$rt>(request).await
        }

        /// Connect to `request`: resolve, connect (with `TCP_NODELAY`) and
        /// run the opening handshake, each step within its timeout.
        pub async fn connect_with(
            request: impl $crate::IntoClientRequest,
            config: &ClientConfig,
        ) -> ::std::result::Result<(WebSocket, Response), Error> {
            $crate::connect_with::<$rt>(request, config).await
        }

        /// Run the client side of the opening handshake over an already
        /// connected `stream`, within `config.handshake_timeout`.
        pub async fn client<S>(
            stream: S,
            request: &ClientRequest,
            config: ::std::sync::Arc<Config>,
        ) -> ::std::result::Result<(WebSocket<S>, Response), Error>
        where
            $io<S>: $crate::driver::Transport + From<S>,
        {
            $crate::client(
                $crate::MaybeTls::Plain(<$io<S>>::from(stream)),
                <$timer>::default(),
                request,
                config,
            )
            .await
        }

        /// Resolves on Ctrl-C (SIGINT) or SIGTERM (Unix). The handlers are
        /// installed when this is *called*, so a signal that arrives before
        /// the first poll is not lost.
        #[cfg(feature = "signal")]
        pub fn shutdown_signal() -> impl ::std::future::Future<Output = ()> + Send + 'static {
            <$rt as $crate::Signals>::shutdown_signal()
        }

        /// Authentication and room authorization (see [`hubbub_hub::auth`]).
        #[cfg(feature = "hub")]
        pub use ::hubbub_hub::{auth, Auth, AuthError, Authenticator, Identity, TokenSource};
        #[cfg(feature = "hub")]
        pub use ::hubbub_hub::{
            engine, store, ClientEvent, ClientHandle, Envelope, Hub, HubBuilder, HubHandle,
            OutboundLimit, SendError, Session, SessionError, SessionId, SlowConsumer,
        };
        #[cfg(feature = "hub")]
        pub use ::hubbub_hub::{HubLimits, Origins, RatePolicy};
        /// JSON Web Tokens (see [`hubbub_hub::JwtAuth`]).
        #[cfg(feature = "jwt")]
        pub use ::hubbub_hub::{JwtAuth, KeyError};
        /// A client that can reconnect, on this runtime (see
        /// [`hubbub_hub::Client`]).
        #[cfg(feature = "hub")]
        pub type Client = ::hubbub_hub::Client<$rt>;
        /// Builds a callback-driven client on this runtime (see
        /// [`hubbub_hub::ClientBuilder`]).
        #[cfg(feature = "hub")]
        pub type ClientBuilder = ::hubbub_hub::ClientBuilder<$rt>;
        /// A [`Hub`] served on this runtime (see [`hubbub_hub::HubServer`]).
        #[cfg(feature = "hub")]
        pub type HubServer = ::hubbub_hub::HubServer<$rt>;

        /// WebSockets over HTTP/2 (RFC 8441) on this runtime (feature
        /// `h2`; see [`hubbub_ws::h2`] and [`hubbub_hub::http2`]).
        #[cfg(feature = "h2")]
        pub mod http2 {
            // The runtime's and the front's names.
            use super::*;

            pub use ::hubbub_hub::http2::{h2_acceptor, is_h2, start};
            pub use $crate::h2::{
                offer_h2, serve_connection, H2ClientStream, H2Config, H2Io, H2Pool, H2Stream,
                TransportIo, ALPN_H2,
            };

            /// A WebSocket over one HTTP/2 stream, as [`serve_h2_websockets`]
            /// hands it to its handler.
            pub type H2WebSocket = $crate::h2::H2WebSocket<$rt>;

            /// Serve one HTTP/2 connection on `io` (under TLS with ALPN `h2`,
            /// or plain TCP with prior knowledge): each WebSocket stream is
            /// a session of `hub` (see [`hubbub_hub::http2::serve_h2_connection`]).
            pub async fn serve_h2_connection<I: H2Io>(
                io: I,
                hub: Hub,
                config: ::std::sync::Arc<Config>,
                h2: H2Config,
                peer: ::std::option::Option<::std::net::SocketAddr>,
            ) -> ::std::io::Result<()> {
                ::hubbub_hub::http2::serve_h2_connection::<$rt, I>(io, hub, config, h2, peer).await
            }

            /// Serve one HTTP/2 connection on `io` for the plain
            /// [`Server`](super::Server): its decision and configuration,
            /// `handler` per WebSocket (see [`hubbub_ws::h2::serve_h2_websockets`]).
            pub async fn serve_h2_websockets<I, H, F>(
                io: I,
                server: Server,
                h2: H2Config,
                handler: H,
            ) -> ::std::io::Result<()>
            where
                I: H2Io,
                H: Fn(H2WebSocket, Request) -> F,
                F: ::std::future::Future<Output = ()> + Send + 'static,
            {
                $crate::h2::serve_h2_websockets::<$rt, I, H, F>(io, server, h2, handler).await
            }
        }

        /// HTTP beside the WebSocket (see [`hubbub_http`]).
        #[cfg(feature = "http")]
        pub use ::hubbub_http as http;
        #[cfg(feature = "http")]
        pub use ::hubbub_http::{Settings, SettingsError};

        /// Serve `app`'s HTTP routes on `listener` until this future is
        /// dropped (see [`hubbub_http::serve_http`]).
        #[cfg(feature = "http")]
        pub async fn serve_http(
            listener: <$rt as $crate::Runtime>::Listener,
            app: ::hubbub_http::HttpApp,
        ) {
            ::hubbub_http::serve_http::<$rt>(listener, app).await
        }

        /// Serve `app`'s HTTP routes over TLS (`https://`) on `listener`
        /// until this future is dropped (see
        /// [`hubbub_http::serve_http_with`]).
        #[cfg(all(feature = "http", feature = "tls"))]
        pub async fn serve_https(
            listener: <$rt as $crate::Runtime>::Listener,
            app: ::hubbub_http::HttpApp,
            acceptor: $crate::tls::TlsAcceptor,
        ) {
            ::hubbub_http::serve_http_with::<$rt>(listener, app, Some(acceptor)).await
        }
    };
}

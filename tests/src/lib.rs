//! # hubbub-tests
//!
//! The cross-runtime integration suite. Each test in `tests/` is an `async
//! fn name<R: Rt>()` written once against the generic adapter layer
//! ([`hubbub_ws`], [`hubbub_hub`]), and [`cross_runtime!`] instantiates it for
//! every runtime in the list there (`RUNTIMES`): `on_tokio::name`,
//! `on_smol::name`, `on_mio::name`. Adding a runtime is one line in that macro and one
//! [`Rt`] impl.
//!
//! Every test body runs inside a tokio runtime ([`run`]), because the
//! independent peers (tokio-tungstenite, raw tokio sockets) need one. The
//! hubbub side runs on `R`: under `on_smol`, servers and clients spawn on
//! smol's executor and their sockets and timers live in async-io's reactor,
//! which needs no executor of its own, so nothing of tokio drives them.
#![warn(missing_docs)]

use std::{future::Future, io, net::SocketAddr, sync::Arc};

pub use hubbub_mio::Mio;
pub use hubbub_smol::Smol;
pub use hubbub_tokio::Tokio;

/// Everything a test names, whatever the runtime.
pub mod prelude {
    pub use super::{accept, accept_with, connect, connect_with, listen, Rt};
    pub use hubbub_core::{
        Accept, ClientRequest, CloseCode, Closed, Config, HandshakeError, Initiator, Message,
        ProtocolError, Reject, Request, UsageError,
    };
    pub use hubbub_hub::{
        Client, ClientBuilder, ClientEvent, ClientHandle, Envelope, Hub, HubBuilder, HubHandle,
        HubServer, OutboundLimit, SendError, Session, SessionError, SessionId, SlowConsumer,
    };
    pub use hubbub_ws::{
        ClientConfig, Error, Reconnect, RuntimeWebSocket, Server, ServerHandle, Step,
    };
}

use hubbub_core::{Accept, Config, Reject, Request};
use hubbub_ws::{
    ClientConfig, Error, IntoClientRequest, MaybeTls, Runtime, RuntimeWebSocket, LISTEN_BACKLOG,
};

/// A runtime the suite runs on.
pub trait Rt: Runtime {
    /// The local address of a connected stream.
    fn stream_local_addr(stream: &Self::Stream) -> io::Result<SocketAddr>;
}

impl Rt for Tokio {
    fn stream_local_addr(stream: &Self::Stream) -> io::Result<SocketAddr> {
        stream.local_addr()
    }
}

impl Rt for Smol {
    fn stream_local_addr(stream: &Self::Stream) -> io::Result<SocketAddr> {
        stream.local_addr()
    }
}

impl Rt for Mio {
    fn stream_local_addr(stream: &Self::Stream) -> io::Result<SocketAddr> {
        stream.stream().local_addr()
    }
}

/// Instantiate the listed `async fn name<R: Rt>()` tests once per runtime:
/// this is the suite's `RUNTIMES` list.
#[macro_export]
macro_rules! cross_runtime {
    ($($test:ident),* $(,)?) => {
        /// The tests on hubbub-tokio.
        mod on_tokio {
            $( #[test] fn $test() { $crate::run(super::$test::<$crate::Tokio>()) } )*
        }
        /// The tests on hubbub-smol.
        mod on_smol {
            $( #[test] fn $test() { $crate::run(super::$test::<$crate::Smol>()) } )*
        }
        /// The tests on hubbub-mio.
        mod on_mio {
            $( #[test] fn $test() { $crate::run(super::$test::<$crate::Mio>()) } )*
        }
    };
}

/// Run a test body to completion in a two-thread tokio runtime (where its
/// peers live).
pub fn run<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test)
}

/// A listener of runtime `R` on a free loopback port, and its address.
pub fn listen<R: Rt>() -> (R::Listener, SocketAddr) {
    let listener = R::bind(([127, 0, 0, 1], 0).into(), LISTEN_BACKLOG).expect("bind loopback");
    let addr = R::local_addr(&listener).expect("local address");
    (listener, addr)
}

/// Connect on runtime `R` with the default client configuration (the
/// WebSocket without the server's response).
pub async fn connect<R: Rt>(url: &str) -> Result<RuntimeWebSocket<R>, Error> {
    Ok(hubbub_ws::connect::<R>(url).await?.0)
}

/// Connect on runtime `R` (the WebSocket without the server's response).
pub async fn connect_with<R: Rt>(
    request: impl IntoClientRequest,
    config: &ClientConfig,
) -> Result<RuntimeWebSocket<R>, Error> {
    Ok(hubbub_ws::connect_with::<R>(request, config).await?.0)
}

/// Accept one connection on `listener` and run the server handshake with
/// the default configuration.
pub async fn accept<R: Rt>(listener: &R::Listener) -> Result<RuntimeWebSocket<R>, Error> {
    accept_with::<R, _>(listener, Arc::new(Config::default()), |_| Ok(Accept::new())).await
}

/// Accept one connection on `listener` and run the server handshake.
pub async fn accept_with<R: Rt, D>(
    listener: &R::Listener,
    config: Arc<Config>,
    decide: D,
) -> Result<RuntimeWebSocket<R>, Error>
where
    D: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let (stream, _) = R::accept(listener).await?;
    hubbub_ws::accept_with(MaybeTls::Plain(stream), R::Timer::default(), config, decide).await
}

//! WebSockets over HTTP/2 (RFC 8441, extended CONNECT), written once for
//! every runtime (feature `h2`).
//!
//! An HTTP/2 connection carries many WebSockets, one per stream. The
//! server announces `SETTINGS_ENABLE_CONNECT_PROTOCOL`; a client opens a
//! WebSocket with a `CONNECT` request whose `:protocol` is `websocket`
//! (no `Upgrade`, `Connection` or `Sec-WebSocket-Key`), the server answers
//! `200`, and the stream's DATA frames then carry the RFC 6455 frames,
//! masked by the client as over HTTP/1.1.
//!
//! - [`serve_connection`]: one HTTP/2 connection whose requests a caller
//!   answers, each with a future run inside the connection's own (the
//!   hub's sessions in hubbub-hub, HTTP routes in hubbub-http);
//! - [`open_websocket`]: check an extended CONNECT, decide, negotiate and
//!   answer `200`: the stream as an [`H2Stream`];
//! - [`serve_h2_websockets`]: the plain [`Server`](crate::Server)'s
//!   decision and configuration over HTTP/2, a handler per
//!   [`H2WebSocket`];
//! - [`H2Pool`]: the client side, an opt-in setting of
//!   [`ClientConfig`](crate::ClientConfig): `wss://` WebSockets as
//!   extended CONNECTs where the server allows them, several to one
//!   origin on one connection, HTTP/1.1 otherwise;
//! - [`H2Stream`]: one stream as a [`Transport`](crate::driver::Transport),
//!   for the [`Driver`](crate::driver::Driver); [`TransportIo`]: a
//!   transport (TCP or TLS of any runtime) as the I/O the `h2` crate
//!   drives.
//!
//! **Every runtime.** The `h2` crate is bound to tokio's `AsyncRead` and
//! `AsyncWrite` *traits* only, not to its runtime: [`TransportIo`] gives
//! those traits to the byte stream of any [`Runtime`](crate::Runtime)
//! (tokio, smol, mio), and the connection's timers are the runtime's own.
//!
//! **Why the `h2` crate rather than hyper.** hyper's HTTP/2 server is
//! this same crate behind a service layer, an executor and body types,
//! and hands an accepted CONNECT over as a type-erased `Upgraded` I/O to
//! be run in a task of its own. With `h2` directly the stream's
//! `RecvStream` and `SendStream` are ours (flow-control capacity is
//! released exactly as the driver consumes bytes), every stream of a
//! connection runs in the connection's own future (so a server loop's
//! task count, grace period and abort cover them), GOAWAY is ours to send,
//! and no executor is needed: the same code runs on every runtime.
//!
//! **Flow control.** [`H2Stream`] releases a stream's receive capacity
//! only as the driver reads bytes: a session that stops reading stops its
//! peer through that stream's window alone. The connection window is
//! sized so that every stream may hold its full window unread without
//! blocking the others ([`H2Config`]). Writes take send capacity granted
//! by the peer and send at most that much, so nothing is buffered beyond
//! the peer's window.

pub(crate) mod client;
mod server;
mod stream;

pub use client::{H2ClientStream, H2Pool};
pub use server::{
    offer_h2, open_websocket, refuse, serve_connection, serve_h2_websockets, websocket_request,
    H2Config, H2Io, H2Request, H2Respond, H2WebSocket, StreamFuture, ALPN_H2,
};
pub use stream::{H2Stream, TransportIo};

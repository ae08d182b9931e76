//! # hubbub-hub
//!
//! The realtime layer of hubbub, written once and free of any runtime: a
//! [`Hub`] of sessions with the application's callbacks, rooms, encode-once
//! broadcast, typed JSON [`Envelope`]s, bounded outbound queues with a
//! slow-consumer policy, limits ([`HubLimits`]: origins, message and byte
//! rates, rooms per session, connections), room history in a [`MessageStore`] with replay
//! after reconnect ([`Hub::publish`], [`Hub::resume`]), the library's
//! [`Metrics`], the [`RoomEngine`] seam (publish, acknowledged publishes,
//! presence), and the loop that runs a connection as a session
//! ([`run_session`], [`drive_session`]).
//!
//! On a runtime (through [`hubbub_ws::Runtime`]): [`HubServer`] serves a
//! hub on a listener, [`Client`] is a client that reconnects, and
//! [`Client::builder`] a client driven by the same callbacks as the hub.
//! The runtime adapters (hubbub-tokio, hubbub-smol, hubbub-mio) re-export
//! all of it with their `hub` feature.
//!
//! Who is connecting ([`auth`]): [`HubBuilder::authenticate`] demands a
//! token of every session (from the upgrade request or an `auth` message;
//! [`Session::identity`] then carries the user and claims, and an expired
//! token closes the session with 4001), and [`HubBuilder::authorize_rooms`]
//! plus a token's `rooms` claim decide who may join which room. With the
//! `jwt` feature, [`JwtAuth`] verifies JSON Web Tokens with `jsonwebtoken`
//! 9 (built on `ring`, the crypto crate rustls uses with its ring
//! provider: one crypto library for TLS and tokens; jsonwebtoken 10 asks
//! for aws-lc-rs or the RustCrypto stack instead).
//!
//! The hub knows nothing of HTTP: layers beside it follow its broadcasts
//! through a [`BroadcastObserver`].
#![forbid(unsafe_code)]

pub mod auth;
mod callbacks;
mod client;
mod client_builder;
pub mod engine;
mod envelope;
mod history;
#[cfg(feature = "h2")]
pub mod http2;
mod hub;
#[cfg(feature = "jwt")]
mod jwt;
mod limits;
mod metrics;
mod origin;
mod rooms;
mod runner;
mod server;
mod session;
pub mod store;

pub use auth::{Auth, AuthError, Authenticator, Identity, TokenSource};
pub use client::{Client, ClientEvent};
pub use client_builder::{ClientBuilder, ClientHandle};
pub use engine::{Ack, EmbeddedEngine, PresenceEntry, Resumed, RoomEngine};
pub use envelope::Envelope;
pub use history::RESUMED;
pub use hub::{BroadcastObserver, Hub, HubBuilder, JoinError, SessionError, WeakHub};
#[cfg(feature = "jwt")]
pub use jwt::{JwtAuth, KeyError};
pub use limits::{
    ip_key, ConnectionSlot, HubLimits, IpRefusal, IpTable, RatePolicy, TokenBucket,
    DEFAULT_MAX_ROOM_NAME_BYTES, IP_TABLE_ENTRIES,
};
pub use metrics::{
    close_code_label, Counter, CounterMap, EngineMetrics, Labeled, LimitMetrics, Metrics,
};
pub use origin::{BadOrigin, Origins};
pub use rooms::{Rooms, SessionId};
pub use runner::{
    drive_session, run_admitted_session, run_session, run_upgraded_session, SessionEvent,
    HIGH_WATER,
};
pub use server::{HubHandle, HubServer};
pub use session::{Drained, OutboundLimit, SendError, Session, SessionInfo, SlowConsumer};
pub use store::{
    MessageStore, NewMessage, Replay, Retention, StoreError, StoreHandle, StoreWorker,
    StoredMessage,
};

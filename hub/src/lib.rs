//! # hubbub-hub
//!
//! The realtime layer of hubbub, written once and free of any runtime: a
//! [`Hub`] of sessions with the application's callbacks, rooms, encode-once
//! broadcast, typed JSON [`Envelope`]s, bounded outbound queues with a
//! slow-consumer policy, limits ([`HubLimits`]: origins, message and byte
//! rates, rooms per session, connections), room history in a [`MessageStore`] with replay
//! after reconnect ([`Hub::publish`], [`Hub::resume`]), the library's
//! [`Metrics`], and the loop that runs a connection as a session
//! ([`run_session`], [`drive_session`]).
//!
//! On a runtime (through [`hubbub_ws::Runtime`]): [`HubServer`] serves a
//! hub on a listener, [`Client`] is a client that reconnects, and
//! [`Client::builder`] a client driven by the same callbacks as the hub.
//! The runtime adapters (hubbub-tokio, hubbub-smol, hubbub-mio) re-export
//! all of it with their `hub` feature.
//!
//! The hub knows nothing of HTTP: layers beside it follow its broadcasts
//! through a [`BroadcastObserver`].
#![forbid(unsafe_code)]

mod callbacks;
mod client;
mod client_builder;
mod envelope;
mod history;
mod hub;
mod limits;
mod metrics;
mod origin;
mod rooms;
mod runner;
mod server;
mod session;
pub mod store;

pub use client::{Client, ClientEvent};
pub use client_builder::{ClientBuilder, ClientHandle};
pub use envelope::Envelope;
pub use history::RESUMED;
pub use hub::{BroadcastObserver, Hub, HubBuilder, JoinError, SessionError};
pub use limits::{
    ip_key, ConnectionSlot, HubLimits, IpRefusal, IpTable, RatePolicy, TokenBucket,
    IP_TABLE_ENTRIES,
};
pub use metrics::{Counter, CounterMap, Labeled, LimitMetrics, Metrics};
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

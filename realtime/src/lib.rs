//! # hubbub-realtime
//!
//! The application layer of hubbub, written once and free of any runtime:
//! settings from the environment, the typed event envelope, rooms,
//! sessions with bounded outbound queues, encode-once broadcast, and the
//! loop that runs a connection as a session ([`run_session`],
//! [`drive_session`]). Every runtime adapter exposes it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapter;
pub mod driver;
mod envelope;
mod history;
pub mod http;
mod hub;
mod metrics;
mod rooms;
mod runner;
pub mod runtime;
mod session;
mod settings;
pub mod store;

pub use envelope::Envelope;
pub use history::RESUMED;
pub use hub::{Hub, HubBuilder, SessionError};
pub use metrics::{Counter, CounterMap, Metrics};
pub use rooms::{Rooms, SessionId};
pub use runner::{drive_session, run_session, SessionEvent, HIGH_WATER};
pub use runtime::{Runtime, RuntimeDriver};
pub use session::{Drained, OutboundLimit, SendError, Session, SessionInfo, SlowConsumer};
pub use settings::{Settings, SettingsError};
pub use store::{
    MessageStore, NewMessage, Replay, Retention, StoreError, StoreHandle, StoreWorker,
    StoredMessage,
};

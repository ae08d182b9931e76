//! # hubbub-realtime
//!
//! The application layer of hubbub, written once and free of any runtime:
//! settings from the environment, the typed event envelope, rooms, and (in
//! progress) sessions and broadcast. Every runtime adapter exposes it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
mod envelope;
mod hub;
mod metrics;
mod rooms;
mod runner;
mod session;
mod settings;

pub use envelope::Envelope;
pub use hub::{Hub, HubBuilder, SessionError};
pub use metrics::{Counter, Metrics};
pub use rooms::{Rooms, SessionId};
pub use runner::run_session;
pub use session::{OutboundLimit, SendError, Session, SessionInfo, SlowConsumer};
pub use settings::{Settings, SettingsError};

//! # hubbub-realtime
//!
//! The application layer of hubbub, written once and free of any runtime:
//! settings from the environment, the typed event envelope, rooms, and (in
//! progress) sessions and broadcast. Every runtime adapter exposes it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod envelope;
mod rooms;
mod settings;

pub use envelope::Envelope;
pub use rooms::{Rooms, SessionId};
pub use settings::{Settings, SettingsError};

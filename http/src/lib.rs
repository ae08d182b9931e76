//! # hubbub-http
//!
//! HTTP/1.1 beside hubbub's WebSockets, written once for every runtime:
//! routes, static files, `GET /metrics` (Prometheus), `GET /openapi.json`,
//! `GET /api/health`, the long-polling fallback (`GET /ws/poll`,
//! `POST /ws/send`) bridged to a [`Hub`](hubbub_hub::Hub)'s rooms, and the
//! server [`Settings`] read from `.env` and the environment.
//!
//! The request reader and the response writer are sans-IO
//! ([`RequestReader`], [`Response::write_to`]); [`serve_connection`] runs
//! them over the driver's [`Transport`](hubbub_ws::driver::Transport) and
//! [`Timer`](hubbub_ws::driver::Timer). [`serve_http`] serves an HTTP-only
//! listener; [`HttpApp::start_shared`] serves HTTP and the hub's WebSocket
//! upgrades on one port.
//!
//! The hub does not know about this crate: long polling follows the hub's
//! broadcasts as a [`BroadcastObserver`](hubbub_hub::BroadcastObserver).
#![forbid(unsafe_code)]

mod app;
mod bridge;
mod exposition;
mod files;
mod guard;
#[cfg(feature = "h2")]
mod h2;
mod limit_settings;
mod login;
mod longpoll;
mod longpoll_settings;
mod metrics;
mod openapi;
mod request;
mod response;
mod serve;
mod server;
mod settings;

pub use app::{Handler, HttpApp, HttpAppBuilder, HttpTimeouts, PollRequest, Reply};
pub use bridge::{MirrorFn, SendAsFn, SendFn, SendRefused, TrySendAsFn};
pub use files::{StaticFiles, FILE_CHUNK};
pub use guard::HttpRateLimits;
pub use limit_settings::LimitSettings;
pub use longpoll::{
    json_array, session_for, LongPoll, LongPollConfig, Message, Overflow, Refused, Taken,
};
pub use metrics::HttpMetrics;
pub use request::{HttpError, Limits, Next, Request, RequestReader};
pub use response::{reason, Response};
pub use serve::{serve_connection, serve_connection_from, serve_shared, Served};
pub use server::{serve_http, serve_http_with};
pub use settings::{Settings, SettingsError, TlsFiles};

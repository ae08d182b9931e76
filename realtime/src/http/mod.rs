//! HTTP/1.1 beside the WebSocket, written once for every runtime: routes,
//! static files, `GET /metrics`, `GET /openapi.json`, `GET /api/health`
//! and the long-polling fallback (`GET /ws/poll`, `POST /ws/send`).
//!
//! The request reader and the response writer are sans-IO
//! ([`RequestReader`], [`Response::write_to`]); [`serve_connection`] runs
//! them over the driver's [`Transport`](crate::driver::Transport) and
//! [`Timer`](crate::driver::Timer), and [`serve_shared`] hands a WebSocket
//! upgrade on a shared port to [`run_session`](crate::run_session).

mod app;
pub(crate) mod bridge;
mod exposition;
mod files;
mod longpoll;
mod openapi;
mod request;
mod response;
mod serve;

pub use app::{Handler, HttpApp, HttpAppBuilder, HttpTimeouts, PollRequest, Reply};
pub use bridge::{MirrorFn, SendFn};
pub use files::StaticFiles;
pub use longpoll::{session_for, LongPoll, LongPollConfig, Taken};
pub use request::{HttpError, Limits, Next, Request, RequestReader};
pub use response::{reason, Response};
pub use serve::{serve_connection, serve_shared, Served};

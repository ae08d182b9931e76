//! The bridge between the hub's broadcasts and long-polling sessions:
//! every text broadcast is mirrored into a poll session (`room:<room>`,
//! else `broadcast`), and an HTTP send enters the hub's broadcast path.
//! Both directions have a hook for the application to decide how.

use std::{fmt, sync::Arc};

use serde_json::json;

use hubbub_hub::{BroadcastObserver, Envelope, Hub, Identity, StoreError};

use crate::{
    longpoll::{session_for, LongPoll, LongPollConfig, Overflow},
    HttpMetrics,
};

/// Turns a broadcast (`room`, or `None` for everyone, and its text) into
/// the envelope poll clients receive; `None` mirrors nothing.
pub type MirrorFn = dyn Fn(Option<&str>, &str) -> Option<Envelope> + Send + Sync;
/// Delivers an envelope sent over HTTP (`POST /ws/send`) to WebSocket
/// sessions.
pub type SendFn = dyn Fn(&Hub, &Envelope) + Send + Sync;
/// [`SendFn`] with the sender's identity, when the hub authenticates.
pub type SendAsFn = dyn Fn(&Hub, Option<&Identity>, &Envelope) + Send + Sync;
/// [`SendAsFn`] that may refuse the envelope: `POST /ws/send` then answers
/// 503 naming the reason instead of 202.
pub type TrySendAsFn =
    dyn Fn(&Hub, Option<&Identity>, &Envelope) -> Result<(), SendRefused> + Send + Sync;

/// Why an envelope sent over HTTP was not taken (answered 503 with
/// `Retry-After: 1` and `{"error": message, "reason": reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRefused {
    /// A short name, the `reason` label of `hubbub_http_send_refused` in
    /// `/metrics`.
    pub reason: &'static str,
    /// What the client is told.
    pub message: String,
}

impl From<StoreError> for SendRefused {
    fn from(error: StoreError) -> Self {
        let reason = match error {
            StoreError::Busy => "store_busy",
            StoreError::Closed => "store_closed",
            StoreError::NoStore => "no_store",
            _ => "store_error",
        };
        SendRefused {
            reason,
            message: format!("not stored: {error}"),
        }
    }
}

/// Long polling as a hub holds it.
pub(crate) struct Bridge {
    pub(crate) long_poll: LongPoll,
    mirror: Option<Box<MirrorFn>>,
    send: Option<Box<TrySendAsFn>>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("long_poll", &self.long_poll)
            .finish_non_exhaustive()
    }
}

/// The parts of a bridge an [`HttpAppBuilder`](crate::HttpAppBuilder) collects.
#[derive(Default)]
pub(crate) struct BridgeParts {
    pub(crate) config: Option<LongPollConfig>,
    pub(crate) mirror: Option<Box<MirrorFn>>,
    pub(crate) send: Option<Box<TrySendAsFn>>,
}

impl BridgeParts {
    /// The bridge, if long polling was enabled.
    pub(crate) fn build(self, metrics: Arc<HttpMetrics>) -> Option<Bridge> {
        Some(Bridge {
            long_poll: LongPoll::new(self.config?, metrics),
            mirror: self.mirror,
            send: self.send,
        })
    }
}

impl Bridge {
    /// Mirror a text broadcast into the matching poll session.
    pub(crate) fn mirror(&self, room: Option<&str>, text: &str) {
        let envelope = match &self.mirror {
            Some(mirror) => mirror(room, text),
            None => Some(default_mirror(room, text)),
        };
        if let Some(envelope) = envelope {
            let room = envelope.room.as_deref().or(room);
            // A refusal is counted (dropped); the broadcast went out.
            let _ = self
                .long_poll
                .push(&session_for(room), &envelope, Overflow::DropOldest);
        }
    }

    /// Deliver an HTTP-sent envelope through the hub (the hook may
    /// refuse it).
    pub(crate) fn send(
        &self,
        hub: &Hub,
        identity: Option<&Identity>,
        envelope: &Envelope,
    ) -> Result<(), SendRefused> {
        match &self.send {
            Some(send) => send(hub, identity, envelope),
            None => {
                match envelope.room_name() {
                    Some(room) => hub.room_text(room, &envelope.to_json(), None),
                    None => hub.broadcast_text(&envelope.to_json(), None),
                };
                Ok(())
            }
        }
    }
}

impl BroadcastObserver for Bridge {
    fn broadcast(&self, room: Option<&str>, text: &str) {
        self.mirror(room, text);
    }

    /// Held long polls answer now instead of holding the shutdown.
    fn shutdown(&self) {
        self.long_poll.release_all();
    }
}

/// An envelope stays itself (its room set to the broadcast's); other text
/// becomes a `message` envelope with payload `{"text": ..}`.
fn default_mirror(room: Option<&str>, text: &str) -> Envelope {
    let mut envelope =
        Envelope::parse(text).unwrap_or_else(|| Envelope::new("message", json!({ "text": text })));
    if envelope.room.is_none() {
        envelope.room = room.map(str::to_owned);
    }
    envelope
}

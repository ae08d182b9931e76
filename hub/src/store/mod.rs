//! Message history: the [`MessageStore`] trait, the stored-message type, an
//! in-memory store ([`MemoryStore`]) and the [`StoreWorker`] that runs any
//! store on its own thread so that no hub callback ever blocks on it.
//!
//! Ids are `u64`, assigned by the store, strictly increasing and never
//! reused (not even after retention removed every message), so a client
//! can say "the last id I saw" and mean exactly one point in the history.

mod memory;
#[cfg(any(test, feature = "store-testing"))]
pub mod testing;
mod worker;

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::Envelope;

pub use memory::MemoryStore;
pub use worker::{StoreHandle, StoreWorker, WorkerConfig};

/// A message to append: everything but the id, which the store assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The room it was published to.
    pub room: String,
    /// Its event type (the envelope's `type`).
    pub event_type: String,
    /// Its kind (the envelope's `kind`), if any.
    pub kind: Option<String>,
    /// Its payload, any JSON value.
    pub payload: Value,
    /// When it was published, in milliseconds since the Unix epoch
    /// (retention by age compares against it).
    pub ts: u64,
}

impl NewMessage {
    /// A message of `event_type` in `room`, stamped now.
    pub fn new(room: impl Into<String>, event_type: impl Into<String>, payload: Value) -> Self {
        NewMessage {
            room: room.into(),
            event_type: event_type.into(),
            kind: None,
            payload,
            ts: now_ms(),
        }
    }

    /// `envelope` published to `room`, stamped now (the envelope's own
    /// `id`, `room` and `ts` are not kept: the store assigns the id, and
    /// the server's clock dates the message).
    pub fn from_envelope(room: impl Into<String>, envelope: Envelope) -> Self {
        NewMessage {
            kind: envelope.kind,
            ..NewMessage::new(room, envelope.event_type, envelope.payload)
        }
    }

    /// The stored message this becomes under `id`.
    pub fn stored(self, id: u64) -> StoredMessage {
        StoredMessage {
            id,
            room: self.room,
            event_type: self.event_type,
            kind: self.kind,
            payload: self.payload,
            ts: self.ts,
        }
    }
}

/// A message in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Its id: increasing in the order of appends, never reused.
    pub id: u64,
    /// The room it was published to.
    pub room: String,
    /// Its event type.
    pub event_type: String,
    /// Its kind, if any.
    pub kind: Option<String>,
    /// Its payload.
    pub payload: Value,
    /// When it was published, in milliseconds since the Unix epoch.
    pub ts: u64,
}

impl StoredMessage {
    /// The message as an envelope: `id` (as a decimal string, the
    /// envelope's id type), `room`, `type`, `kind`, `ts` (a number of
    /// milliseconds) and `payload`.
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            id: Some(self.id.to_string()),
            kind: self.kind.clone(),
            room: Some(self.room.clone()),
            ts: Some(Value::from(self.ts)),
        }
    }

    /// An envelope carrying a store id back (`id` a decimal string and a
    /// `room`), e.g. one a client received; `None` when it has neither.
    pub fn from_envelope(envelope: &Envelope) -> Option<StoredMessage> {
        let id = envelope.id.as_deref()?.parse().ok()?;
        let room = envelope.room.clone()?;
        Some(StoredMessage {
            id,
            room,
            event_type: envelope.event_type.clone(),
            kind: envelope.kind.clone(),
            payload: envelope.payload.clone(),
            ts: envelope.ts.as_ref().and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// What [`MessageStore::replay_from`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Replay {
    /// The messages after the given id, oldest first.
    pub messages: Vec<StoredMessage>,
    /// False when some messages after the given id may be missing: the
    /// limit cut the replay, retention removed messages after that id (of
    /// the room asked for), or the id is one this store never issued (a
    /// client of another store).
    pub complete: bool,
}

/// How much history a store keeps. Retention removes the oldest messages
/// first, a bounded number per append, so its cost stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep at most this many messages (all rooms together).
    pub max_messages: Option<u64>,
    /// Remove messages older than this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Keep everything.
    pub const UNLIMITED: Retention = Retention {
        max_messages: None,
        max_age: None,
    };

    /// The oldest `ts` kept at `now_ms`; older messages are removed.
    pub fn min_ts(&self, now_ms: u64) -> Option<u64> {
        let age = u64::try_from(self.max_age?.as_millis()).unwrap_or(u64::MAX);
        Some(now_ms.saturating_sub(age))
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The worker's request queue is full (the store is slower than the
    /// publishers); nothing was queued.
    Busy,
    /// The worker has stopped.
    Closed,
    /// The hub has no store attached.
    NoStore,
    /// The store itself failed (I/O, a corrupt file, …).
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Busy => f.write_str("message store busy: request queue full"),
            StoreError::Closed => f.write_str("message store stopped"),
            StoreError::NoStore => f.write_str("no message store attached"),
            StoreError::Backend(e) => write!(f, "message store: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A message history. Calls are synchronous and may block (a disk store
/// does I/O): run a store through a [`StoreWorker`], never on an event
/// loop.
pub trait MessageStore: Send + 'static {
    /// Append `batch` in order, all or nothing, and return the ids given,
    /// which increase and are greater than every id given before. When
    /// this returns `Ok`, the messages are as durable as the store
    /// promises (for hubbub-sqlite: they survive a crash of the process).
    fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError>;

    /// The last `limit` messages of `room` with an id below `before` (all,
    /// when `None`), oldest first.
    fn list_by_room(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Up to `limit` messages with an id greater than `after`, in `room`
    /// (any room when `None`), oldest first, and whether that is all of
    /// them ([`Replay::complete`]).
    fn replay_from(
        &mut self,
        after: u64,
        room: Option<&str>,
        limit: usize,
    ) -> Result<Replay, StoreError>;

    /// This history's epoch: a name that stays while its ids mean the same
    /// messages and changes when the history is lost (a new store, a
    /// deleted file), so an id from another epoch is known to mean nothing
    /// here.
    fn epoch(&mut self) -> Result<String, StoreError>;
}

impl<S: MessageStore + ?Sized> MessageStore for Box<S> {
    fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
        (**self).append(batch)
    }
    fn list_by_room(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        (**self).list_by_room(room, limit, before)
    }
    fn replay_from(
        &mut self,
        after: u64,
        room: Option<&str>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        (**self).replay_from(after, room, limit)
    }
    fn epoch(&mut self) -> Result<String, StoreError> {
        (**self).epoch()
    }
}

/// A new random epoch ([`MessageStore::epoch`]): 16 hex digits.
pub fn new_epoch() -> String {
    // Without an entropy source the clock still tells stores apart.
    let random = getrandom::u64().unwrap_or_else(|_| now_ms());
    format!("{random:016x}")
}

/// A store id sent back by a client: a JSON number or a decimal string
/// (envelopes carry ids as strings). `None` for anything else.
pub fn id_from_json(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_messages_round_trip_through_envelopes() {
        let mut envelope = Envelope::new("chat.message", json!({"text": "hi", "n": [1, {}]}));
        envelope.kind = Some("event".into());
        envelope.id = Some("client-id".into());
        let new = NewMessage::from_envelope("dev", envelope);
        assert_eq!(
            (new.room.as_str(), new.kind.as_deref()),
            ("dev", Some("event"))
        );
        assert!(new.ts > 1_600_000_000_000, "stamped now, in ms");
        let stored = new.clone().stored(42);
        let envelope = stored.to_envelope();
        assert_eq!(envelope.id.as_deref(), Some("42"));
        assert_eq!(envelope.room.as_deref(), Some("dev"));
        assert_eq!(envelope.ts, Some(json!(new.ts)));
        let text = envelope.to_json();
        let back = StoredMessage::from_envelope(&Envelope::parse(&text).unwrap());
        assert_eq!(back, Some(stored));
        assert_eq!(
            StoredMessage::from_envelope(&Envelope::new("x", Value::Null)),
            None
        );
    }

    #[test]
    fn ids_from_json_numbers_and_strings() {
        assert_eq!(id_from_json(&json!(42)), Some(42));
        assert_eq!(id_from_json(&json!("42")), Some(42));
        for bad in [
            json!(-1),
            json!(1.5),
            json!("x"),
            json!(" 4"),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(id_from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn retention_min_ts() {
        let r = Retention {
            max_messages: None,
            max_age: Some(Duration::from_secs(2)),
        };
        assert_eq!(r.min_ts(10_000), Some(8_000));
        assert_eq!(r.min_ts(1_000), Some(0));
        assert_eq!(Retention::UNLIMITED.min_ts(10_000), None);
    }
}

//! The typed event envelope: `{"type": ..., "payload": ...}` with optional
//! `id`, `kind`, `room` and `ts`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A typed event. The payload is any JSON value, nested values kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event type, e.g. `chat.message`: never empty.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's data (`null` when absent).
    #[serde(default)]
    pub payload: Value,
    /// An identifier (message ids in history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The kind of message (`event` when unset, as in the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The room the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// A timestamp, in whatever form the sender chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Value>,
}

impl Envelope {
    /// An envelope of `event_type` carrying `payload`.
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Envelope {
            event_type: event_type.into(),
            payload,
            id: None,
            kind: None,
            room: None,
            ts: None,
        }
    }

    /// Parse text as an envelope: a JSON object whose `type` is a non-empty
    /// string. Anything else is `None` (plain text for the raw handler).
    pub fn parse(text: &str) -> Option<Envelope> {
        // Cheap rejection of what cannot be an object.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Envelope>(text)
            .ok()
            .filter(|e| !e.event_type.is_empty())
    }

    /// Set the room.
    pub fn with_room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and `Value`s cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The room named by the envelope or its payload (`payload.room`).
    pub fn room_name(&self) -> Option<&str> {
        self.room
            .as_deref()
            .or_else(|| self.payload.get("room").and_then(Value::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_envelopes_and_keeps_nested_payloads() {
        let e = Envelope::parse(r#"{"type":"chat.message","payload":{"text":"hi","meta":{"tags":[1,2]}},"room":"r1","ts":17}"#).unwrap();
        assert_eq!(e.event_type, "chat.message");
        assert_eq!(e.payload["meta"]["tags"], json!([1, 2]));
        assert_eq!((e.room.as_deref(), e.ts), (Some("r1"), Some(json!(17))));
        let e = Envelope::parse(r#"{"type":"app.ping"}"#).unwrap();
        assert_eq!(e.payload, Value::Null);
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        for text in [
            "ping",
            "",
            "[1]",
            "{}",
            r#"{"type":""}"#,
            r#"{"type":3}"#,
            r#"{"payload":{}}"#,
            "{not json",
        ] {
            assert_eq!(Envelope::parse(text), None, "{text}");
        }
    }

    #[test]
    fn serializes_without_absent_fields() {
        let text = Envelope::new("app.pong", json!({"status": "ok"})).to_json();
        assert_eq!(text, r#"{"type":"app.pong","payload":{"status":"ok"}}"#);
        let e = Envelope::new("x", Value::Null).with_room("lobby");
        assert_eq!(Envelope::parse(&e.to_json()), Some(e));
    }

    #[test]
    fn room_from_envelope_or_payload() {
        let e = Envelope::parse(r#"{"type":"room.join","payload":{"room":"dev"}}"#).unwrap();
        assert_eq!(e.room_name(), Some("dev"));
        let e = Envelope::parse(r#"{"type":"chat.message","room":"ops","payload":{"room":"dev"}}"#)
            .unwrap();
        assert_eq!(e.room_name(), Some("ops"));
    }
}

//! Small helpers the demo protocols share (`examples/README.md` states the
//! protocols).

use hubbub_tokio::Envelope;
use serde_json::Value;

/// The room a message is about when it names none.
pub const DEFAULT_ROOM: &str = "general";

/// The room an envelope names, from its top-level `room` or
/// `payload.room`; [`DEFAULT_ROOM`] when it names none (or an empty one).
pub fn room_of(envelope: &Envelope) -> &str {
    envelope
        .room_name()
        .filter(|room| !room.is_empty())
        .unwrap_or(DEFAULT_ROOM)
}

/// `payload.text` when it is a string; `""` otherwise.
pub fn text_of(payload: &Value) -> &str {
    payload.get("text").and_then(Value::as_str).unwrap_or("")
}

/// The envelope `{"type":event_type,"payload":{..fields}}` as compact JSON,
/// with the payload's fields in the order given (a `serde_json` map would
/// sort them).
pub fn envelope_text(event_type: &str, fields: &[(&str, Value)]) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"type\":");
    out.push_str(&Value::from(event_type).to_string());
    out.push_str(",\"payload\":{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(*key).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_fields_keep_their_order() {
        let text = envelope_text(
            "app.unknown",
            &[
                ("type", json!("x\"y")),
                ("message", json!("Unknown event type")),
            ],
        );
        assert_eq!(
            text,
            r#"{"type":"app.unknown","payload":{"type":"x\"y","message":"Unknown event type"}}"#
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["payload"]["type"], "x\"y");
        assert_eq!(envelope_text("a", &[]), r#"{"type":"a","payload":{}}"#);
    }

    #[test]
    fn rooms_and_texts() {
        let e = |text| Envelope::parse(text).unwrap();
        assert_eq!(
            room_of(&e(r#"{"type":"t","payload":{"room":"dev"}}"#)),
            "dev"
        );
        assert_eq!(
            room_of(&e(r#"{"type":"t","room":"ops","payload":{}}"#)),
            "ops"
        );
        assert_eq!(
            room_of(&e(r#"{"type":"t","payload":{"room":""}}"#)),
            "general"
        );
        assert_eq!(
            room_of(&e(r#"{"type":"t","payload":{"room":7}}"#)),
            "general"
        );
        assert_eq!(room_of(&e(r#"{"type":"t"}"#)), "general");
        assert_eq!(text_of(&json!({"text": "hi"})), "hi");
        assert_eq!(text_of(&json!({"text": 5})), "");
        assert_eq!(text_of(&Value::Null), "");
    }
}

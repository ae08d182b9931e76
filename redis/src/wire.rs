//! What travels on a room's channel: `m <offset> <epoch> <message>` for a
//! stored message (the message as JSON: type, kind, payload, ts), and
//! `p <event>` for a presence event (JSON: type, id, user, node), and
//! `l <entry>` for the leave of an entry that expired (its node died).

use hubbub_hub::{Envelope, NewMessage, PresenceEntry, StoredMessage};
use serde_json::{json, Value};

/// A stored message without its room and id: the log's and the channel's
/// form.
pub(crate) fn encode_message(message: &NewMessage) -> String {
    json!({
        "type": message.event_type,
        "kind": message.kind,
        "payload": message.payload,
        "ts": message.ts,
    })
    .to_string()
}

/// The message of `room` at `offset` from its [`encode_message`] form.
pub(crate) fn decode_message(room: &str, offset: u64, text: &str) -> Option<StoredMessage> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    Some(StoredMessage {
        id: offset,
        room: room.to_owned(),
        event_type: value.get("type")?.as_str()?.to_owned(),
        kind: value.get("kind").and_then(Value::as_str).map(str::to_owned),
        payload: value
            .get_mut("payload")
            .map(Value::take)
            .unwrap_or(Value::Null),
        ts: value.get("ts").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// One notification of a room's channel.
#[derive(Debug, PartialEq)]
pub(crate) enum Notice<'a> {
    /// A stored message: its offset, the room's epoch, the message.
    Message(u64, &'a str, &'a str),
    /// A presence event: `presence.join` or `presence.leave` and who.
    Presence(&'static str, PresenceEntry),
}

pub(crate) fn presence_notice(kind: &str, entry: &PresenceEntry) -> String {
    let event = json!({"type": kind, "id": entry.id, "user": entry.user, "node": entry.node});
    format!("p {event}")
}

pub(crate) fn decode_notice(text: &str) -> Option<Notice<'_>> {
    if let Some(rest) = text.strip_prefix("m ") {
        let (offset, rest) = rest.split_once(' ')?;
        let (epoch, message) = rest.split_once(' ')?;
        return Some(Notice::Message(offset.parse().ok()?, epoch, message));
    }
    if let Some(entry) = text.strip_prefix("l ") {
        let entry = serde_json::from_str(entry).ok()?;
        return Some(Notice::Presence("presence.leave", entry_from_json(&entry)?));
    }
    let event: Value = serde_json::from_str(text.strip_prefix("p ")?).ok()?;
    let kind = match event.get("type")?.as_str()? {
        "presence.join" => "presence.join",
        "presence.leave" => "presence.leave",
        _ => return None,
    };
    Some(Notice::Presence(kind, entry_from_json(&event)?))
}

/// A presence entry from its JSON (`id`, `user`, `node`).
pub(crate) fn entry_from_json(value: &Value) -> Option<PresenceEntry> {
    Some(PresenceEntry {
        id: value.get("id")?.as_u64()?,
        user: value.get("user").and_then(Value::as_str).map(str::to_owned),
        node: value.get("node")?.as_str()?.to_owned(),
    })
}

/// A presence entry as stored in the room's sorted set.
pub(crate) fn entry_to_json(entry: &PresenceEntry) -> String {
    json!({"id": entry.id, "user": entry.user, "node": entry.node}).to_string()
}

/// The envelope members receive for a presence event.
pub(crate) fn presence_envelope(kind: &str, room: &str, entry: &PresenceEntry) -> Envelope {
    let payload = json!({"room": room, "id": entry.id, "user": entry.user, "node": entry.node});
    Envelope::new(kind, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_presence_events_round_trip() {
        let message = NewMessage {
            room: "dev".into(),
            event_type: "chat.message".into(),
            kind: None,
            payload: json!({"text": "a b c"}),
            ts: 7,
        };
        let text = format!("m 12 e1 {}", encode_message(&message));
        let Some(Notice::Message(12, "e1", body)) = decode_notice(&text) else {
            panic!("{text}");
        };
        let stored = decode_message("dev", 12, body).unwrap();
        assert_eq!(stored, message.stored(12));
        let entry = PresenceEntry {
            id: 3,
            user: Some("ann".into()),
            node: "n1".into(),
        };
        let text = presence_notice("presence.leave", &entry);
        assert_eq!(
            decode_notice(&text),
            Some(Notice::Presence("presence.leave", entry.clone()))
        );
        let expired = format!("l {}", entry_to_json(&entry));
        assert_eq!(
            decode_notice(&expired),
            Some(Notice::Presence("presence.leave", entry.clone()))
        );
        assert_eq!(decode_notice("m x e {}"), None);
        assert_eq!(decode_notice("p {\"type\":\"other\"}"), None);
    }
}

//! Where a room lives in Redis. Every key of a room carries the room in a
//! hash tag (`{room}`), so one room's keys share a Redis Cluster slot and
//! its publish script runs on one shard.

/// The keys and channel of one room under a prefix.
pub(crate) struct RoomKeys {
    /// `INCR`ed for each message: the last offset given.
    pub seq: String,
    /// The room's history: a stream with ids `0-<offset>`.
    pub log: String,
    /// The history's epoch: random, set when the room's keys are made.
    pub epoch: String,
    /// Presence: a sorted set of entries scored by their expiry (ms).
    pub presence: String,
    /// The channel its messages and presence events are published on.
    pub channel: String,
    base: String,
}

impl RoomKeys {
    pub(crate) fn new(prefix: &str, room: &str) -> RoomKeys {
        let base = format!("{prefix}:{{{room}}}");
        RoomKeys {
            seq: format!("{base}:seq"),
            log: format!("{base}:log"),
            epoch: format!("{base}:epoch"),
            presence: format!("{base}:presence"),
            channel: format!("{base}:messages"),
            base,
        }
    }

    /// The dedupe key of an acknowledged publish by `sender` with `id`.
    /// Both are hex-encoded: client text never puts `}:` or `:` in the
    /// key, so no sender and id can name another key (say, another room's
    /// `seq`) or another sender's id.
    pub(crate) fn ack(&self, sender: &str, id: &str) -> String {
        format!("{}:ack:{}:{}", self.base, hex(sender), hex(id))
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The room a channel of [`RoomKeys::channel`] belongs to.
pub(crate) fn room_of_channel<'a>(prefix: &str, channel: &'a str) -> Option<&'a str> {
    channel
        .strip_prefix(prefix)?
        .strip_prefix(":{")?
        .strip_suffix("}:messages")
}

/// A stream id of an offset, and back.
pub(crate) fn stream_id(offset: u64) -> String {
    format!("0-{offset}")
}

pub(crate) fn offset_of(stream_id: &str) -> Option<u64> {
    stream_id.strip_prefix("0-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_round_trips_through_its_channel_even_with_braces() {
        for room in ["dev", "a}b", "{x}", ""] {
            let keys = RoomKeys::new("hb", room);
            assert_eq!(room_of_channel("hb", &keys.channel), Some(room));
            assert!(keys
                .ack("user:ann", "m1")
                .starts_with(&format!("hb:{{{room}}}:")));
        }
        assert_eq!(room_of_channel("hb", "other:{dev}:messages"), None);
        // A crafted id cannot name another room's key, nor another sender's.
        let victim = RoomKeys::new("hb", "a}:ack:x:y");
        let crafted = RoomKeys::new("hb", "a").ack("x", "y}:seq");
        assert_ne!(crafted, victim.seq);
        assert!(!crafted.contains("}:seq"));
        let keys = RoomKeys::new("hb", "r");
        assert_ne!(keys.ack("user:a:b", "c"), keys.ack("user:a", "b:c"));
        assert_eq!(offset_of(&stream_id(42)), Some(42));
        assert_eq!(offset_of("1700000000000-0"), None);
    }
}

//! The behaviour every [`MessageStore`] must show, as one suite that each
//! implementation's tests run against it (feature `store-testing`).
//! Each check panics with a message on failure.

use std::time::Duration;

use serde_json::json;

use super::{now_ms, MessageStore, NewMessage, Replay, Retention, StoreError, StoredMessage};

/// A `chat.message` in `room` whose payload holds the room and the text
/// `m<n>`, stamped now.
pub fn message(room: &str, n: u64) -> NewMessage {
    NewMessage::new(
        room,
        "chat.message",
        json!({"room": room, "text": format!("m{n}")}),
    )
}

/// The texts (`payload.text`) of `messages`.
pub fn texts(messages: &[StoredMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.payload["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Run every check; `open` makes a new, empty store with that retention.
pub fn run_all<S: MessageStore>(mut open: impl FnMut(Retention) -> Result<S, StoreError>) {
    epoch_is_named_and_stable(open(Retention::UNLIMITED).expect("open"));
    round_trip(open(Retention::UNLIMITED).expect("open"));
    ids_increase_and_batches_are_in_order(open(Retention::UNLIMITED).expect("open"));
    retention_by_count(
        open(Retention {
            max_messages: Some(5),
            max_age: None,
        })
        .expect("open"),
    );
    retention_by_age_never_reuses_ids(
        open(Retention {
            max_messages: None,
            max_age: Some(Duration::from_secs(3600)),
        })
        .expect("open"),
    );
}

/// A store has an epoch, not empty, which appends do not change.
pub fn epoch_is_named_and_stable(mut store: impl MessageStore) {
    let epoch = store.epoch().expect("epoch");
    assert!(!epoch.is_empty(), "an epoch names the history");
    store.append(&[message("dev", 1)]).expect("append");
    assert_eq!(
        store.epoch().expect("epoch"),
        epoch,
        "stable across appends"
    );
}

/// Appended messages come back whole: by room (the last N, oldest first,
/// before an id) and by replay (after an id, in a room or all, limited).
pub fn round_trip(mut store: impl MessageStore) {
    let mut special = NewMessage::new(
        "ops",
        "deploy.done",
        json!({"nested": {"list": [1, "two", null, {"x": 1.5}]}, "text": "é ✓"}),
    );
    special.kind = Some("event".into());
    let mut batch = Vec::new();
    for n in 0..6 {
        batch.push(message(if n % 2 == 0 { "dev" } else { "ops" }, n));
    }
    batch.push(special.clone());
    let ids = store.append(&batch).expect("append");
    assert_eq!(ids.len(), 7);

    // By room: oldest first, the last `limit`, strictly before `before`.
    let dev = store.list_by_room("dev", 10, None).unwrap();
    assert_eq!(texts(&dev), ["m0", "m2", "m4"]);
    assert!(dev.iter().all(|m| m.room == "dev"));
    assert_eq!(
        dev.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[0], ids[2], ids[4]]
    );
    assert_eq!(
        texts(&store.list_by_room("dev", 2, None).unwrap()),
        ["m2", "m4"]
    );
    assert_eq!(
        texts(&store.list_by_room("dev", 10, Some(ids[4])).unwrap()),
        ["m0", "m2"]
    );
    assert_eq!(
        texts(&store.list_by_room("dev", 1, Some(ids[4])).unwrap()),
        ["m2"]
    );
    assert!(store.list_by_room("dev", 0, None).unwrap().is_empty());
    assert!(store.list_by_room("nowhere", 10, None).unwrap().is_empty());
    let ops = store.list_by_room("ops", 10, None).unwrap();
    let last = ops.last().unwrap();
    assert_eq!(last, &special.clone().stored(ids[6]), "every field kept");

    // Replay: after an id, exclusive, ascending; complete unless cut.
    let replay = store.replay_from(ids[1], None, 100).unwrap();
    assert_eq!(
        replay.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[2..]
    );
    assert!(replay.complete);
    let replay = store.replay_from(ids[1], Some("dev"), 100).unwrap();
    assert_eq!(texts(&replay.messages), ["m2", "m4"]);
    assert!(replay.complete);
    let replay = store.replay_from(0, Some("ops"), 2).unwrap();
    assert_eq!(texts(&replay.messages), ["m1", "m3"]);
    assert!(!replay.complete, "the limit cut it");
    let replay = store.replay_from(0, Some("ops"), 4).unwrap();
    assert_eq!(replay.messages.len(), 4);
    assert!(replay.complete, "exactly the limit is all of it");
    let replay = store.replay_from(ids[6], None, 100).unwrap();
    assert!(replay.messages.is_empty() && replay.complete, "up to date");
    let replay = store.replay_from(ids[6] + 1000, None, 100).unwrap();
    assert!(
        replay.messages.is_empty() && !replay.complete,
        "an id this store never issued"
    );
}

/// Ids increase across appends, within a batch in order; an empty batch
/// appends nothing.
pub fn ids_increase_and_batches_are_in_order(mut store: impl MessageStore) {
    let mut all = Vec::new();
    for round in 0..20 {
        let batch: Vec<NewMessage> = (0..round % 4).map(|n| message("r", n)).collect();
        let ids = store.append(&batch).expect("append");
        assert_eq!(ids.len(), batch.len());
        all.extend(ids);
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let stored = store.list_by_room("r", 1000, None).unwrap();
    assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), all);
}

/// At most `max_messages` (5) are kept, the newest; a replay from before
/// what was removed says it is not complete.
pub fn retention_by_count(mut store: impl MessageStore) {
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.extend(
            store
                .append(&[message(if n == 7 { "b" } else { "a" }, n)])
                .unwrap(),
        );
    }
    let a = store.list_by_room("a", 100, None).unwrap();
    assert_eq!(texts(&a), ["m3", "m4", "m5", "m6"]);
    assert_eq!(store.list_by_room("b", 100, None).unwrap().len(), 1);
    let replay = store.replay_from(0, Some("a"), 100).unwrap();
    assert_eq!(texts(&replay.messages), ["m3", "m4", "m5", "m6"]);
    assert!(!replay.complete, "m0..m2 were removed");
    let replay = store.replay_from(ids[2], Some("a"), 100).unwrap();
    assert!(replay.complete, "nothing after {} was removed", ids[2]);
    let replay = store.replay_from(ids[1], Some("a"), 100).unwrap();
    assert!(!replay.complete, "{} was removed", ids[2]);
    // Retention is tracked per room: b lost nothing.
    let replay = store.replay_from(0, Some("b"), 100).unwrap();
    assert_eq!(texts(&replay.messages), ["m7"]);
    assert!(replay.complete, "nothing of b was removed");
    assert!(!store.replay_from(0, None, 100).unwrap().complete);
}

/// Messages older than `max_age` (1 h) are removed on a later append; once
/// every message is gone, ids still go on increasing (never reused).
pub fn retention_by_age_never_reuses_ids(mut store: impl MessageStore) {
    let old = now_ms() - 2 * 3600 * 1000;
    let batch: Vec<NewMessage> = (0..3)
        .map(|n| NewMessage {
            ts: old,
            ..message("r", n)
        })
        .collect();
    let old_ids = store.append(&batch).unwrap();
    // The old messages went at the latest with the next append.
    let new = store.append(&[message("r", 3)]).unwrap();
    assert!(
        new[0] > old_ids[2],
        "ids never reused: {new:?} after {old_ids:?}"
    );
    let kept = store.list_by_room("r", 100, None).unwrap();
    assert_eq!(texts(&kept), ["m3"]);
    let replay = store.replay_from(0, Some("r"), 100).unwrap();
    assert_eq!(texts(&replay.messages), ["m3"]);
    assert!(!replay.complete, "the old ones were removed");
    assert!(
        store
            .replay_from(old_ids[2], Some("r"), 100)
            .unwrap()
            .complete
    );
}

/// A store whose every call fails with `Backend("disk on fire")`: for
/// tests of what failures do.
#[derive(Debug, Default)]
pub struct Broken;

impl Broken {
    /// The error every call returns.
    pub fn error() -> StoreError {
        StoreError::Backend("disk on fire".into())
    }
}

impl MessageStore for Broken {
    fn append(&mut self, _: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
        Err(Broken::error())
    }
    fn list_by_room(
        &mut self,
        _: &str,
        _: usize,
        _: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Err(Broken::error())
    }
    fn replay_from(&mut self, _: u64, _: Option<&str>, _: usize) -> Result<Replay, StoreError> {
        Err(Broken::error())
    }
    fn epoch(&mut self) -> Result<String, StoreError> {
        Err(Broken::error())
    }
}

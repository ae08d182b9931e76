//! Room history through the hub: [`Hub::publish`] stores a room message
//! and then delivers it with its id; [`Hub::resume`] replays what a
//! reconnecting client missed, then lets live messages follow;
//! [`Hub::history`] reads a room's last messages. All go through the hub's
//! [`RoomEngine`](crate::RoomEngine).
//!
//! The engine runs a resume's second half at one point of the room's
//! order (the embedded engine: on the store's worker thread, where
//! publishes are delivered from too): it reads the replay, sends it and
//! joins the room in one step. So no publish can be delivered between the
//! replay's read and the join (it would be lost) nor be read by the replay
//! and delivered live as well (a duplicate): the race is excluded by
//! construction.

use serde_json::json;

use crate::{
    engine::Resumed, Envelope, Hub, NewMessage, Session, SessionError, StoreError, StoredMessage,
};

/// The type of the envelope that ends a replay.
pub const RESUMED: &str = "room.resumed";

impl Hub {
    /// Store `envelope` as a message of `room`, then deliver it to the
    /// room's members as [`deliver_stored`](Self::deliver_stored) renders
    /// it (by default an envelope carrying its store id: `id`, `room`, `ts`
    /// set by the store).
    ///
    /// Never blocks: the append is queued to the engine. Members receive
    /// published messages in id order. `Err` means nothing was queued
    /// ([`StoreError::NoStore`] without a store, `Busy` when the store's
    /// queue is full); a later failure of the store is counted in
    /// `store_append_errors` and the message is not delivered (what is
    /// delivered is what a replay can find).
    pub fn publish(&self, room: &str, envelope: Envelope) -> Result<(), StoreError> {
        let message = NewMessage::from_envelope(room, envelope);
        self.inner().engine.publish(self, message, None)
    }

    /// Send a stored message to its room's members as the hub renders it
    /// ([`HubBuilder::render`](crate::HubBuilder::render)): how an engine
    /// delivers a published message on this node.
    pub fn deliver_stored(&self, message: &StoredMessage) -> usize {
        let text = (self.inner().render)(message);
        self.room_text(&message.room, &text, None)
    }

    /// The last `limit` messages of `room` below the id `before` (all, when
    /// `None`), oldest first, from the engine's history: `answer` is called
    /// once, maybe later and on another thread. `Err`: nothing was queued.
    pub fn history(
        &self,
        room: &str,
        limit: usize,
        before: Option<u64>,
        answer: impl FnOnce(Result<Vec<StoredMessage>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let engine = &self.inner().engine;
        engine.history(self, room, limit, before, Box::new(answer))
    }

    /// Bring `session` back into `room` after a reconnect: send it, each as
    /// its own text message, the room's stored messages with an id above
    /// `since` (the last id it saw; 0 for all), at most `limit` of them,
    /// oldest first; then join it to the room and send
    /// `{"type":"room.resumed","payload":{"room":R,"since":S,"last_id":L,
    /// "replayed":N,"complete":B,"epoch":E}}`, after which live messages
    /// follow with no gap and no duplicate. `complete` is false when
    /// messages may be missing (the limit cut the replay, retention removed
    /// some, or `since` is an id this history never gave); `epoch` names
    /// the room's history, and changes when it was lost: a client that saw
    /// another epoch before cannot resume from its id.
    ///
    /// A session already in `room` leaves it at once and joins again after
    /// the replay, so a message it would otherwise get live as well as in
    /// the replay comes once. Never blocks (the work is queued to the
    /// engine); `Err` means nothing was queued. The replay is fed to the
    /// connection as it drains ([`Session::send_paced`]), outside the
    /// outbound queue's bound: it holds at most `limit` stored messages. A
    /// failure of the history is reported to `on_error`
    /// ([`SessionError::Store`]); the session still joins and gets
    /// `complete: false`. Room authorization, the room cap and the room
    /// name rules apply as to [`try_join`](Self::try_join), checked first:
    /// a refused session is sent the error envelope and no replay.
    pub fn resume(
        &self,
        session: &Session,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<(), StoreError> {
        if self.check_room_name(session, room).is_err() || !self.admit_to_room(session, room) {
            return Ok(()); // refused: told with an error envelope
        }
        if let Some(max) = self.room_cap_reached(session, room) {
            self.refuse_join(session, room, max);
            return Ok(());
        }
        let was_member = self.leave_quietly(session, room);
        let (hub, resumed_session, resumed_room) =
            (self.downgrade(), session.clone(), room.to_owned());
        let then = Box::new(move |resumed: Result<Resumed, StoreError>| {
            let Some(hub) = hub.upgrade().map(Hub::from_inner) else {
                return;
            };
            let (session, room) = (resumed_session, resumed_room);
            let Resumed {
                messages,
                complete,
                epoch,
            } = resumed.unwrap_or_else(|error| {
                hub.error(&session, &SessionError::Store(error));
                Resumed {
                    messages: Vec::new(),
                    complete: false,
                    epoch: String::new(),
                }
            });
            let texts = messages.iter().map(|m| m.to_envelope().to_json().into());
            let _ = session.send_paced(texts);
            let _ = hub.join_announced(&session, &room, !was_member);
            let last_id = messages.last().map_or(since, |m| m.id);
            let resumed = json!({
                "room": room,
                "since": since,
                "last_id": last_id,
                "replayed": messages.len(),
                "complete": complete,
                "epoch": epoch,
            });
            let _ = session.send_envelope(&Envelope::new(RESUMED, resumed));
        });
        let queued = self.inner().engine.resume(self, room, since, limit, then);
        if queued.is_err() && was_member {
            self.join_announced(session, room, false).ok();
        }
        queued
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{mpsc, Arc, Barrier},
        time::Duration,
    };

    use serde_json::Value;

    use super::*;
    use crate::{
        hub::tests::texts,
        session::SessionInfo,
        store::{MemoryStore, WorkerConfig},
        MessageStore, Replay, Retention, StoreWorker,
    };

    const WAIT: Duration = Duration::from_secs(10);

    /// Wait until the worker has handled everything queued so far.
    fn settle(hub: &Hub) {
        let (tx, rx) = mpsc::channel();
        hub.store()
            .unwrap()
            .call(move |_| tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap();
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn hub_with(store: impl MessageStore) -> Hub {
        let handle = StoreWorker::spawn(store, WorkerConfig::default()).unwrap();
        Hub::builder().store(handle).build()
    }

    #[test]
    fn a_resume_over_the_room_cap_is_refused_without_a_replay() {
        let handle = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
        let limits = crate::HubLimits {
            max_rooms_per_session: 1,
            ..crate::HubLimits::default()
        };
        let hub = Hub::builder().store(handle).limits(limits).build();
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.publish("dev", Envelope::new("chat.message", Value::Null))
            .unwrap();
        hub.join(&a, "ops");
        hub.resume(&a, "dev", 0, 10).unwrap();
        settle(&hub);
        let got = texts(&a);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(json(&got[0])["payload"]["error"], "room_limit");
        assert_eq!(hub.rooms_of(&a), ["ops"]);
        // In its one room already: resuming it is no join beyond the cap.
        hub.resume(&a, "ops", 0, 10).unwrap();
        settle(&hub);
        assert_eq!(json(&texts(&a)[1])["type"], RESUMED);
    }

    #[test]
    fn a_resume_of_an_overlong_room_name_is_refused_without_a_replay() {
        let hub = hub_with(MemoryStore::default());
        let a = hub.open(SessionInfo::default()).unwrap();
        let long = "r".repeat(129);
        hub.publish(&long, Envelope::new("chat.message", Value::Null))
            .unwrap();
        hub.resume(&a, &long, 0, 10).unwrap();
        hub.resume(&a, "", 0, 10).unwrap();
        settle(&hub);
        let got = texts(&a);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(json(&got[0])["payload"]["error"], "room_name_too_long");
        assert_eq!(json(&got[1])["payload"]["error"], "room_name_empty");
        assert!(hub.rooms_of(&a).is_empty());
    }

    #[test]
    fn publish_stores_then_delivers_with_ids_in_order_and_counts() {
        let hub = hub_with(MemoryStore::default());
        let [a, b] = [(); 2].map(|_| hub.open(SessionInfo::default()).unwrap());
        hub.join(&a, "dev");
        for n in 0..3 {
            let e = Envelope::new("chat.message", serde_json::json!({"text": n}));
            hub.publish("dev", e).unwrap();
        }
        hub.publish("dev", Envelope::new("x", Value::Null)).unwrap();
        settle(&hub);
        let got = texts(&a);
        assert_eq!(got.len(), 4);
        for (n, text) in got[..3].iter().enumerate() {
            let e = json(text);
            assert_eq!(e["id"], (n + 1).to_string());
            assert_eq!(
                (e["room"].as_str(), e["type"].as_str()),
                (Some("dev"), Some("chat.message"))
            );
            assert_eq!(e["payload"]["text"], n);
            assert!(e["ts"].as_u64().is_some());
        }
        assert_eq!(json(&got[3])["type"], "x");
        assert!(texts(&b).is_empty(), "not a member");
        let m = hub.metrics();
        assert_eq!((m.store_appends.get(), m.store_append_errors.get()), (4, 0));
        assert!(m.store_append_latency_us.get() > 0);
        let stored = hub_history(&hub, "dev");
        assert_eq!(stored.len(), 4);

        let no_store = Hub::builder().build();
        assert_eq!(
            no_store.publish("dev", Envelope::new("x", Value::Null)),
            Err(StoreError::NoStore)
        );
        let s = no_store.open(SessionInfo::default()).unwrap();
        assert_eq!(no_store.resume(&s, "dev", 0, 10), Err(StoreError::NoStore));
    }

    #[test]
    fn the_hub_renders_what_members_receive() {
        let handle = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
        let hub = Hub::builder()
            .store(handle)
            .render(|m| format!("#{} in {}: {}", m.id, m.room, m.event_type))
            .build();
        let a = hub.open(SessionInfo::default()).unwrap();
        hub.join(&a, "dev");
        hub.publish("dev", Envelope::new("x", Value::Null)).unwrap();
        settle(&hub);
        assert_eq!(texts(&a), ["#1 in dev: x"]);
    }

    fn hub_history(hub: &Hub, room: &str) -> Vec<StoredMessage> {
        let (tx, rx) = mpsc::channel();
        hub.store()
            .unwrap()
            .list_by_room(room, 100, None, move |r| tx.send(r).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap().unwrap()
    }

    #[test]
    fn resume_replays_what_was_missed_then_marks_the_end_then_live() {
        let hub = hub_with(MemoryStore::new(Retention::UNLIMITED));
        for n in 0..5 {
            hub.publish(
                if n == 2 { "ops" } else { "dev" },
                Envelope::new("m", n.into()),
            )
            .unwrap();
        }
        let s = hub.open(SessionInfo::default()).unwrap();
        hub.resume(&s, "dev", 1, 100).unwrap();
        hub.publish("dev", Envelope::new("m", 5.into())).unwrap();
        settle(&hub);
        let got: Vec<Value> = texts(&s).iter().map(|t| json(t)).collect();
        let ids: Vec<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
        assert_eq!(ids, ["2", "4", "5", "6"], "replay (2, 4, 5), then live 6");
        assert_eq!(got[3]["type"], RESUMED);
        let epoch = got[3]["payload"]["epoch"].as_str().unwrap().to_owned();
        assert_eq!(epoch.len(), 16, "the store's epoch");
        assert_eq!(
            got[3]["payload"],
            serde_json::json!({"room": "dev", "since": 1, "last_id": 5, "replayed": 3, "complete": true, "epoch": epoch})
        );
        assert_eq!(hub.members("dev"), vec![s.id()]);

        // Resuming while a member: a message published just before (its
        // delivery not yet done) comes once, in the replay.
        let gate = Arc::new(Barrier::new(2));
        let worker_gate = gate.clone();
        let hold = move |_: &mut dyn MessageStore| {
            worker_gate.wait();
        };
        hub.store().unwrap().call(hold).unwrap(); // the worker waits
        hub.publish("dev", Envelope::new("m", 6.into())).unwrap();
        hub.resume(&s, "dev", 6, 100).unwrap();
        gate.wait();
        settle(&hub);
        let got: Vec<Value> = texts(&s)[5..].iter().map(|t| json(t)).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            (got[0]["id"].as_str(), &got[1]["type"]),
            (Some("7"), &json!(RESUMED))
        );

        // A limit that cuts: not complete.
        let t = hub.open(SessionInfo::default()).unwrap();
        hub.resume(&t, "dev", 0, 2).unwrap();
        settle(&hub);
        let got: Vec<Value> = texts(&t).iter().map(|t| json(t)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2]["payload"]["complete"], false);
        assert_eq!(got[2]["payload"]["last_id"], 2);
    }

    /// A store whose replay waits, so a publish arrives while it is read.
    struct SlowReplay(MemoryStore, Arc<Barrier>);

    impl MessageStore for SlowReplay {
        fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
            self.0.append(batch)
        }
        fn list_by_room(
            &mut self,
            room: &str,
            limit: usize,
            before: Option<u64>,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            self.0.list_by_room(room, limit, before)
        }
        fn replay_from(
            &mut self,
            after: u64,
            room: Option<&str>,
            limit: usize,
        ) -> Result<Replay, StoreError> {
            self.1.wait(); // the replay has started
            self.1.wait(); // the test has published meanwhile
            self.0.replay_from(after, room, limit)
        }
        fn epoch(&mut self) -> Result<String, StoreError> {
            self.0.epoch()
        }
    }

    #[test]
    fn a_message_published_while_the_replay_is_read_comes_once_after_it() {
        let gate = Arc::new(Barrier::new(2));
        let hub = hub_with(SlowReplay(MemoryStore::default(), gate.clone()));
        hub.publish("dev", Envelope::new("m", 1.into())).unwrap();
        let s = hub.open(SessionInfo::default()).unwrap();
        hub.resume(&s, "dev", 0, 100).unwrap();
        gate.wait(); // the worker is inside replay_from
        hub.publish("dev", Envelope::new("m", 2.into())).unwrap();
        // A member that joined long ago gets it too, once.
        let other = hub.open(SessionInfo::default()).unwrap();
        hub.join(&other, "dev");
        gate.wait();
        settle(&hub);
        let got: Vec<Value> = texts(&s).iter().map(|t| json(t)).collect();
        let kinds: Vec<String> = got
            .iter()
            .map(|e| match e["id"].as_str() {
                Some(id) => format!("msg {id}"),
                None => format!(
                    "{} {}",
                    e["type"].as_str().unwrap(),
                    e["payload"]["last_id"]
                ),
            })
            .collect();
        assert_eq!(kinds, ["msg 1", "room.resumed 1", "msg 2"]);
        assert_eq!(texts(&other).len(), 1);
    }

    use crate::store::testing::Broken;

    #[test]
    fn store_failures_are_counted_reported_and_deliver_nothing() {
        let (tx, rx) = mpsc::channel();
        let handle = StoreWorker::spawn(Broken, WorkerConfig::default()).unwrap();
        let hub = Hub::builder()
            .store(handle)
            .on_error(move |_, error| tx.send(error.to_string()).unwrap())
            .build();
        let s = hub.open(SessionInfo::default()).unwrap();
        hub.join(&s, "dev");
        hub.publish("dev", Envelope::new("m", Value::Null)).unwrap();
        let t = hub.open(SessionInfo::default()).unwrap();
        hub.resume(&t, "dev", 3, 10).unwrap();
        settle(&hub);
        assert!(
            texts(&s).is_empty(),
            "a message not stored is not delivered"
        );
        assert_eq!(hub.metrics().store_append_errors.get(), 1);
        assert_eq!(
            rx.recv_timeout(WAIT).unwrap(),
            "message store: disk on fire"
        );
        let resumed = json(&texts(&t)[0]);
        assert_eq!(resumed["payload"]["complete"], false);
        assert_eq!(resumed["payload"]["last_id"], 3);
        assert!(hub.members("dev").contains(&t.id()), "joined anyway");
    }
}

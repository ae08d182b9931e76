//! Room history over real WebSockets: messages published through the hub
//! carry their store id; a client that reconnects with the last id it saw
//! gets what it missed, then live messages — no gap, no duplicate — while
//! messages keep being published during its replays.

mod common;

use std::{thread, time::Duration};

use common::{bounded, start_hub};
use futures_util::{SinkExt, StreamExt};
use hubbub_hub::store::{MemoryStore, StoreWorker, WorkerConfig};
use hubbub_tests::prelude::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as TMessage;

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Messages the publisher sends: even `n` to `dev`, odd to `ops`; the
/// store gives message `n` the id `n + 1`.
const PUBLISHED: u64 = 600;

/// A hub with history whose clients resume with
/// `{"type":"room.join","payload":{"room":R,"since":ID}}`.
fn history_hub() -> Hub {
    let store = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
    Hub::builder()
        .store(store)
        .on_typed_message(|session, envelope| {
            let payload = &envelope.payload;
            if envelope.event_type == "room.join" {
                let room = payload["room"].as_str().unwrap_or("general");
                let since = payload["since"].as_u64().unwrap_or(0);
                let hub = session.hub().unwrap();
                hub.resume(session, room, since, 10_000).unwrap();
            }
        })
        .build()
}

async fn join(handle: &HubHandle, room: &str, since: u64) -> Peer {
    let url = format!("ws://{}/", handle.local_addr());
    let (mut peer, _) = bounded("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    let join = json!({"type": "room.join", "payload": {"room": room, "since": since}});
    peer.send(TMessage::text(join.to_string())).await.unwrap();
    peer
}

async fn next_json(peer: &mut Peer) -> Value {
    loop {
        match bounded("a message", peer.next()).await {
            Some(Ok(TMessage::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(TMessage::Ping(_) | TMessage::Pong(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Publish [`PUBLISHED`] messages from a plain thread, a few at a time.
fn publish_all(hub: Hub) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for n in 0..PUBLISHED {
            let room = if n % 2 == 0 { "dev" } else { "ops" };
            let envelope = Envelope::new("chat.message", json!({"room": room, "n": n}));
            hub.publish(room, envelope).unwrap();
            if n % 8 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

/// The store id of a published message, checked against its payload.
fn id_of(message: &Value) -> u64 {
    let id: u64 = message["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(message["payload"]["n"], id - 1, "{message}");
    assert_eq!(message["room"], "dev", "{message}");
    id
}

async fn reconnecting_clients_miss_nothing_and_see_nothing_twice<R: Rt>() {
    let hub = history_hub();
    let server = start_hub::<R>(hub.clone()).await;
    let dev_ids: Vec<u64> = (0..PUBLISHED).step_by(2).map(|n| n + 1).collect();
    let last = *dev_ids.last().unwrap();

    // A member that stays, for comparison.
    let mut stayer = join(&server, "dev", 0).await;
    let resumed = next_json(&mut stayer).await;
    assert_eq!(resumed["type"], "room.resumed");
    assert_eq!(resumed["payload"]["replayed"], 0);

    let publisher = publish_all(hub.clone());

    // A client that drops its connection every few messages and comes
    // back with the last id it saw, while the publisher goes on.
    let mut seen = Vec::new();
    let mut connections = 0;
    while seen.last() != Some(&last) {
        connections += 1;
        assert!(connections < 500, "bounded");
        let since = seen.last().copied().unwrap_or(0);
        let mut peer = join(&server, "dev", since).await;
        let mut resumed = false;
        for _ in 0..(7 + connections % 23) {
            let message = next_json(&mut peer).await;
            if message["type"] == "room.resumed" {
                let p = &message["payload"];
                assert_eq!(p["since"], since);
                assert_eq!(p["last_id"], seen.last().copied().unwrap_or(since));
                assert_eq!(p["complete"], true, "{message}");
                assert_eq!(p["room"], "dev");
                resumed = true;
                continue;
            }
            seen.push(id_of(&message));
            if seen.last() == Some(&last) {
                break;
            }
        }
        if !resumed {
            // Stopped inside the replay: that is a reconnect too. Ignored:
            // how the close handshake ends does not matter here, only that
            // the next connection gets every message once.
            let _ = peer.close(None).await;
        } else {
            drop(peer); // vanish without a close frame
        }
    }
    assert_eq!(seen, dev_ids, "every dev message once, in order");
    assert!(connections > 5, "the test reconnected ({connections})");

    let mut live = Vec::new();
    while live.last() != Some(&last) {
        live.push(id_of(&next_json(&mut stayer).await));
    }
    assert_eq!(live, dev_ids);
    publisher.join().unwrap();
    assert_eq!(hub.metrics().store_appends.get(), PUBLISHED);
    server.shutdown(Duration::from_secs(1)).await;
}

async fn a_resume_from_an_id_the_store_never_gave_is_not_complete<R: Rt>() {
    let hub = history_hub();
    let server = start_hub::<R>(hub.clone()).await;
    for n in 0..5 {
        hub.publish(
            "dev",
            Envelope::new("chat.message", json!({"room": "dev", "n": n})),
        )
        .unwrap();
    }
    let mut peer = join(&server, "dev", 4).await;
    assert_eq!(id_of(&next_json(&mut peer).await), 5);
    let resumed = next_json(&mut peer).await;
    assert_eq!(resumed["payload"]["complete"], true);
    let mut peer = join(&server, "dev", 99).await;
    let resumed = next_json(&mut peer).await;
    assert_eq!(resumed["type"], "room.resumed");
    assert_eq!(resumed["payload"]["complete"], false, "an id never given");
    server.shutdown(Duration::from_secs(1)).await;
}

/// A replay larger than the outbound queue's bound (4 MiB by default) and
/// than what the kernel's socket buffers absorb: 200 messages of 60 KB. A client that reads gets all of it, then
/// `room.resumed`, then live messages, and is never closed 1013 as a slow
/// consumer (the replay is fed to the connection as it drains).
async fn a_replay_larger_than_the_queue_reaches_a_reader<R: Rt>() {
    let hub = history_hub();
    let server = start_hub::<R>(hub.clone()).await;
    const MESSAGES: u64 = 200;
    let text = "y".repeat(60_000);
    for n in 0..MESSAGES {
        let envelope = Envelope::new("chat.message", json!({"room": "big", "n": n, "text": text}));
        hub.publish("big", envelope).unwrap();
    }
    // The store's worker runs in order: after this call, all are stored.
    let (tx, rx) = std::sync::mpsc::channel();
    let stored = move |_: &mut dyn hubbub_hub::MessageStore| tx.send(()).unwrap();
    hub.store().unwrap().call(stored).unwrap();
    rx.recv_timeout(common::LIMIT).expect("stored");
    // A reader with a small receive buffer that starts reading a little
    // late: the replay cannot all be written at once.
    let mut peer = common::raw::Raw::connect_with(server.local_addr(), "/", Some(16 << 10)).await;
    let join = json!({"type": "room.join", "payload": {"room": "big", "since": 0}});
    peer.send_text(&join.to_string()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut next = async || -> Value {
        let text = bounded("a message", peer.text()).await;
        serde_json::from_str(&text.expect("a message, not a close")).unwrap()
    };
    for n in 0..MESSAGES {
        let message = next().await;
        assert_eq!(message["payload"]["n"], n, "replayed in order");
    }
    let resumed = next().await;
    assert_eq!(resumed["type"], "room.resumed");
    assert_eq!(resumed["payload"]["replayed"], MESSAGES);
    let live = json!({"room": "big", "n": MESSAGES});
    hub.publish("big", Envelope::new("chat.message", live))
        .unwrap();
    assert_eq!(next().await["payload"]["n"], MESSAGES, "then live");
}

hubbub_tests::cross_runtime!(
    reconnecting_clients_miss_nothing_and_see_nothing_twice,
    a_resume_from_an_id_the_store_never_gave_is_not_complete,
    a_replay_larger_than_the_queue_reaches_a_reader,
);

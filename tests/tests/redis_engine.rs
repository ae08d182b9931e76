//! The Redis room engine with a real `redis-server` (started here on a free
//! loopback port, AOF on; scripts/test.sh installs it): two nodes — two
//! hubs with their own engines, as two processes would have — share rooms.
//! A message published on either reaches the members of both in one order;
//! a client resumes on the other node with no gap and no duplicate;
//! acknowledged publishes are deduplicated; presence spans nodes; a Redis
//! restart is survived.

mod common;

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{bounded, start_hub, until};
use futures_util::{SinkExt, StreamExt};
use hubbub_hub::{
    engine::{Ack, Sender},
    PresenceEntry, StoreError,
};
use hubbub_redis::{RedisConfig, RedisEngine};
use hubbub_tests::prelude::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as TMessage;

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `redis-server` of this test: killed when dropped.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("hubbub-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = spawn_redis(port, &dir);
        Redis { port, dir, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it (as a crash would) and start it again on its files.
    fn restart(&mut self, down_for: Duration) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(down_for);
        self.child = spawn_redis(self.port, &self.dir);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_redis(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server; scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// A node: a hub on the Redis engine whose clients join with
/// `{"type":"room.join","payload":{"room":R,"since":ID}}` and publish with
/// `{"type":"say","payload":{"room":R,"n":N}}`.
fn node(redis: &Redis, name: &str, ttl: Duration) -> Hub {
    node_with(redis, name, ttl, false)
}

/// [`node`], with presence events on or off.
fn node_with(redis: &Redis, name: &str, ttl: Duration, events: bool) -> Hub {
    let mut config = RedisConfig::new(redis.url());
    config.prefix = format!("t{}", redis.port);
    config.presence_ttl = ttl;
    let engine = RedisEngine::start(config).unwrap();
    Hub::builder()
        .engine(engine)
        .node_id(name)
        .presence_events(events)
        .on_typed_message(|session, envelope| {
            let hub = session.hub().unwrap();
            let room = envelope.payload["room"].as_str().unwrap_or("r").to_owned();
            match envelope.event_type.as_str() {
                "room.join" => match envelope.payload["since"].as_u64() {
                    Some(since) => hub.resume(session, &room, since, 10_000).unwrap(),
                    None => {
                        let reply = session.clone();
                        hub.join_then(session, &room.clone(), move |joined| {
                            let joined = json!({"type": "joined", "payload": joined.is_ok()});
                            let _ = reply.send_text(joined.to_string());
                        });
                    }
                },
                "say" => {
                    let message = Envelope::new("said", envelope.payload.clone());
                    hub.publish(&room, message).unwrap();
                }
                _ => {}
            }
        })
        .build()
}

/// Nodes `a` and `b` on `redis`, once both reach it.
async fn two_nodes(redis: &Redis) -> (Hub, Hub) {
    let ttl = Duration::from_secs(30);
    let (a, b) = (node(redis, "a", ttl), node(redis, "b", ttl));
    up(&a).await;
    up(&b).await;
    (a, b)
}

/// A server for each of `a` and `b` (kept in the third value), and a
/// client connected to each.
async fn one_client_each<R: Rt>(a: &Hub, b: &Hub) -> (Peer, Peer, [HubHandle; 2]) {
    let servers = [
        start_hub::<R>(a.clone()).await,
        start_hub::<R>(b.clone()).await,
    ];
    let (on_a, on_b) = (connect(&servers[0]).await, connect(&servers[1]).await);
    (on_a, on_b, servers)
}

/// Wait until the node's engine reaches Redis.
async fn up(hub: &Hub) {
    until("the engine is up", || hub.metrics().engine.up.get() == 1).await;
}

async fn connect(handle: &HubHandle) -> Peer {
    let url = format!("ws://{}/", handle.local_addr());
    let (peer, _) = bounded("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    peer
}

async fn send(peer: &mut Peer, value: Value) {
    peer.send(TMessage::text(value.to_string())).await.unwrap();
}

async fn join(peer: &mut Peer, room: &str, since: u64) -> Value {
    send(
        peer,
        json!({"type": "room.join", "payload": {"room": room, "since": since}}),
    )
    .await;
    next_json(peer).await
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

fn id_of(message: &Value) -> u64 {
    message["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap()
}

/// Publishers on both nodes at once: every member on both nodes gets all
/// messages in the same order, offsets 1.. without a gap.
async fn one_order_on_every_node<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut on_a, mut on_b, _servers) = one_client_each::<R>(&a, &b).await;
    for peer in [&mut on_a, &mut on_b] {
        assert_eq!(join(peer, "r", 0).await["type"], "room.resumed");
    }
    const EACH: u64 = 100;
    let publish = |hub: Hub, from: &'static str| {
        std::thread::spawn(move || {
            for n in 0..EACH {
                let message = Envelope::new("said", json!({"from": from, "n": n}));
                hub.publish("r", message).unwrap();
            }
        })
    };
    let (pa, pb) = (publish(a.clone(), "a"), publish(b.clone(), "b"));
    pa.join().unwrap();
    pb.join().unwrap();
    let mut seen = Vec::new();
    for peer in [&mut on_a, &mut on_b] {
        let mut got = Vec::new();
        for _ in 0..2 * EACH {
            let message = next_json(peer).await;
            got.push((id_of(&message), message["payload"].clone()));
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "the same order on both nodes");
    let ids: Vec<u64> = seen[0].iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=2 * EACH).collect::<Vec<_>>(),
        "offsets without a gap"
    );
    for from in ["a", "b"] {
        let ns: Vec<u64> = seen[0]
            .iter()
            .filter(|(_, p)| p["from"] == from)
            .map(|(_, p)| p["n"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ns,
            (0..EACH).collect::<Vec<_>>(),
            "each publisher's order kept"
        );
    }
    // Nothing was stored twice: the next message is offset 201 everywhere.
    a.publish("r", Envelope::new("said", json!({"from": "end"})))
        .unwrap();
    for peer in [&mut on_a, &mut on_b] {
        assert_eq!(id_of(&next_json(peer).await), 2 * EACH + 1);
    }
}

/// A client that saw up to offset 4 on node A resumes on node B: exactly
/// 5..=10, then `room.resumed` (complete, with the epoch), then live.
async fn a_client_resumes_on_another_node<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut first = connect(&server_b).await;
    assert_eq!(join(&mut first, "h", 0).await["payload"]["complete"], true);
    for n in 1..=10 {
        a.publish("h", Envelope::new("said", json!({"n": n})))
            .unwrap();
    }
    for n in 1..=10 {
        assert_eq!(id_of(&next_json(&mut first).await), n, "live on b");
    }
    let mut peer = connect(&server_b).await;
    let mut replayed = Vec::new();
    send(
        &mut peer,
        json!({"type": "room.join", "payload": {"room": "h", "since": 4}}),
    )
    .await;
    let resumed = loop {
        let message = next_json(&mut peer).await;
        if message["type"] == "room.resumed" {
            break message;
        }
        replayed.push(id_of(&message));
    };
    assert_eq!(replayed, (5..=10).collect::<Vec<_>>());
    let payload = &resumed["payload"];
    assert_eq!(
        (payload["complete"].clone(), payload["last_id"].clone()),
        (json!(true), json!(10))
    );
    let epoch = payload["epoch"].as_str().unwrap().to_owned();
    assert_eq!(epoch.len(), 16, "the room's epoch");
    a.publish("h", Envelope::new("said", json!({"n": 11})))
        .unwrap();
    assert_eq!(id_of(&next_json(&mut peer).await), 11, "then live");
    // The history reads the shared log, on either node.
    let (tx, rx) = mpsc::channel();
    a.history("h", 3, Some(10), move |r| tx.send(r).unwrap())
        .unwrap();
    let page = rx.recv_timeout(common::LIMIT).unwrap().unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [7, 8, 9]);
    // From an id the room never gave: not complete.
    let mut late = connect(&server_b).await;
    let resumed = join(&mut late, "h", 99).await;
    assert_eq!(resumed["payload"]["complete"], false);
    assert_eq!(resumed["payload"]["epoch"], epoch.as_str());
}

/// An acknowledged publish answers its offset; a retry of its id from the
/// same user, on another node, answers the same and is not delivered again.
async fn acked_publishes_are_deduplicated_across_nodes<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server = start_hub::<R>(a.clone()).await;
    let mut member = connect(&server).await;
    join(&mut member, "d", 0).await;
    let ack = |hub: &Hub, id: &str, n: u64| {
        let (tx, rx) = mpsc::channel();
        let done = Box::new(move |outcome| tx.send(outcome).unwrap());
        let ack = Ack {
            sender: Sender::User("ann".into()),
            id: id.into(),
            done,
        };
        let message = Envelope::new("said", json!({"n": n}));
        hub.publish_acked("d", message, ack).unwrap();
        rx.recv_timeout(common::LIMIT).unwrap()
    };
    assert_eq!(ack(&a, "m1", 1), Ok(Some(1)));
    assert_eq!(ack(&b, "m1", 1), Ok(Some(1)), "a retry on another node");
    assert_eq!(ack(&b, "m2", 2), Ok(Some(2)));
    let ids = [
        id_of(&next_json(&mut member).await),
        id_of(&next_json(&mut member).await),
    ];
    assert_eq!(ids, [1, 2], "the retry was not delivered");
    assert_eq!(
        a.metrics().store_appends.get() + b.metrics().store_appends.get(),
        2
    );
}

/// A plain join answered on node B is live: a message published on node A
/// right after the answer reaches the member, in rooms B never followed.
async fn a_join_is_live_once_answered<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut member = connect(&server_b).await;
    for n in 0..20 {
        let room = format!("fresh-{n}");
        send(
            &mut member,
            json!({"type": "room.join", "payload": {"room": room}}),
        )
        .await;
        assert_eq!(
            next_json(&mut member).await,
            json!({"type": "joined", "payload": true})
        );
        a.publish(&room, Envelope::new("said", json!({"n": n})))
            .unwrap();
        let message = next_json(&mut member).await;
        assert_eq!(
            (message["room"].as_str(), id_of(&message)),
            (Some(room.as_str()), 1)
        );
    }
}

/// A node with no WebSocket member in a room still serves the room's long
/// polls (`GET /ws/poll?session_id=room:R`): each poll keeps the node
/// following the room, so a message published on another node reaches the
/// poll client.
async fn long_polls_of_a_room_hear_other_nodes<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let app = hubbub_http::HttpApp::builder(b.clone())
        .long_polling(hubbub_http::LongPollConfig::default())
        .build();
    let server = HubServer::<R>::bind("127.0.0.1:0", b.clone(), Default::default())
        .await
        .unwrap();
    let handle = app.start_shared(server).unwrap();
    let addr = handle.local_addr();
    let publisher = a.clone();
    let heard = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + common::LIMIT;
        loop {
            assert!(Instant::now() < deadline, "the poll hears node a's message");
            let message = Envelope::new("said", json!({"from": "a"}));
            publisher.publish("w", message).unwrap();
            let polled = common::http::get(addr, "/ws/poll?session_id=room:w&timeout=0.5");
            if let Some(first) = polled.json().as_array().and_then(|m| m.first().cloned()) {
                return first;
            }
        }
    });
    let first = bounded("a poll answer", heard).await.unwrap();
    assert_eq!(first["payload"]["from"], "a");
    assert!(b.members("w").is_empty(), "no WebSocket member on b");
    // The engine's state in /metrics.
    let metrics = tokio::task::spawn_blocking(move || common::http::get(addr, "/metrics").text());
    let metrics = bounded("/metrics", metrics).await.unwrap();
    for line in [
        "hubbub_engine_up 1",
        "hubbub_engine_queued 0",
        "hubbub_engine_reconnects_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let delivered = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hubbub_engine_delivered_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(delivered >= Some(1), "deliveries counted: {delivered:?}");
}

/// The entries of a node that died (refreshed no more) expire, and the
/// room's members hear `presence.leave` for each, once.
async fn a_dead_nodes_members_leave<R: Rt>() {
    let redis = Redis::start();
    let a = node_with(&redis, "a", Duration::from_millis(600), true);
    up(&a).await;
    let server = start_hub::<R>(a.clone()).await;
    let mut member = connect(&server).await;
    send(
        &mut member,
        json!({"type": "room.join", "payload": {"room": "p"}}),
    )
    .await;
    assert_eq!(next_json(&mut member).await["type"], "joined");
    // A session of a node that died: its entry, never refreshed.
    let expiry = hubbub_hub::store::now_ms() + 300;
    let entry = r#"{"id":99,"node":"dead","user":null}"#;
    let key = format!("t{}:{{p}}:presence", redis.port);
    let added = redis_cli(&redis, &["ZADD", &key, &expiry.to_string(), entry]);
    assert_eq!(added, "1");
    let leave = next_json(&mut member).await;
    let payload = json!({"room": "p", "id": 99, "user": null, "node": "dead"});
    assert_eq!(leave, json!({"type": "presence.leave", "payload": payload}));
}

/// Redis loses everything (`FLUSHALL`): the room starts a new epoch at
/// offset 1, members keep receiving, and a resume reports the new epoch.
async fn a_lost_history_starts_a_new_epoch<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut member = connect(&server_b).await;
    let first = join(&mut member, "e", 0).await["payload"]["epoch"].clone();
    for n in 1..=3 {
        a.publish("e", Envelope::new("said", json!({"n": n})))
            .unwrap();
        assert_eq!(id_of(&next_json(&mut member).await), n);
    }
    assert_eq!(redis_cli(&redis, &["FLUSHALL"]), "OK");
    a.publish("e", Envelope::new("said", json!({"n": "new"})))
        .unwrap();
    let message = next_json(&mut member).await;
    assert_eq!(
        (id_of(&message), &message["payload"]["n"]),
        (1, &json!("new"))
    );
    let mut late = connect(&server_b).await;
    // Id 3 of the old epoch is above the new one's last offset.
    let resumed = join(&mut late, "e", 3).await;
    assert_eq!(resumed["type"], "room.resumed");
    assert_eq!(resumed["payload"]["complete"], false);
    assert_ne!(resumed["payload"]["epoch"], first, "a new epoch");
}

/// A client resumes on a node that is behind it (two messages stored
/// without their notification, as a lost one would leave it): the node
/// catches up before answering, so the client gets neither a false
/// "incomplete" nor the two messages again, live.
async fn a_resume_ahead_of_the_node_catches_it_up<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut member = connect(&server_b).await;
    join(&mut member, "g", 0).await;
    for n in 1..=2 {
        a.publish("g", Envelope::new("said", json!({"n": n})))
            .unwrap();
        assert_eq!(id_of(&next_json(&mut member).await), n);
    }
    // Offsets 3 and 4 stored (the layout of ARCHITECTURE §19), not announced.
    let prefix = format!("t{}:{{g}}", redis.port);
    for n in 3..=4u64 {
        let body = json!({"type": "said", "kind": null, "payload": {"n": n}, "ts": 1});
        redis_cli(&redis, &["INCR", &format!("{prefix}:seq")]);
        let id = format!("0-{n}");
        let body = body.to_string();
        redis_cli(
            &redis,
            &["XADD", &format!("{prefix}:log"), &id, "ts", "1", "m", &body],
        );
    }
    let mut client = connect(&server_b).await;
    let resumed = join(&mut client, "g", 4).await;
    assert_eq!(resumed["type"], "room.resumed");
    assert_eq!(
        (
            &resumed["payload"]["complete"],
            &resumed["payload"]["last_id"]
        ),
        (&json!(true), &json!(4))
    );
    for n in 3..=4 {
        assert_eq!(
            id_of(&next_json(&mut member).await),
            n,
            "the member catches up"
        );
    }
    a.publish("g", Envelope::new("said", json!({"n": 5})))
        .unwrap();
    assert_eq!(id_of(&next_json(&mut client).await), 5, "only what is new");
}

/// Run `redis-cli` against `redis`; its answer.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (package redis-tools, with redis-server)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A node that stops cleanly (its hub dropped) withdraws its presence
/// entries at once, long before their TTL.
async fn a_stopped_node_leaves_presence_at_once<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut on_b = connect(&server_b).await;
    send(
        &mut on_b,
        json!({"type": "room.join", "payload": {"room": "q"}}),
    )
    .await;
    assert_eq!(next_json(&mut on_b).await["type"], "joined");
    let nodes_in_q = |hub: &Hub| {
        let (tx, rx) = mpsc::channel();
        hub.presence("q", move |r| tx.send(r).unwrap());
        let entries = rx.recv_timeout(common::LIMIT).unwrap().unwrap();
        entries.into_iter().map(|e| e.node).collect::<Vec<_>>()
    };
    until("b's member is listed", || nodes_in_q(&a) == ["b"]).await;
    server_b.shutdown(Duration::from_secs(1)).await;
    drop((on_b, b));
    // The TTL is 30 s: only the withdrawal explains a prompt departure.
    until("b's member is gone", || nodes_in_q(&a).is_empty()).await;
}

/// Presence lists the members of every node, sorted by id then node; a
/// session that leaves drops out.
async fn presence_spans_nodes<R: Rt>() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut on_a, mut on_b, _servers) = one_client_each::<R>(&a, &b).await;
    join(&mut on_a, "p", 0).await;
    join(&mut on_b, "p", 0).await;
    let presence = |hub: &Hub| {
        let (tx, rx) = mpsc::channel();
        hub.presence("p", move |r| tx.send(r).unwrap());
        rx.recv_timeout(common::LIMIT).unwrap()
    };
    let nodes = |entries: Result<Vec<PresenceEntry>, StoreError>| -> Vec<String> {
        entries.unwrap().into_iter().map(|e| e.node).collect()
    };
    let deadline = Instant::now() + common::LIMIT;
    while nodes(presence(&b)) != ["a", "b"] {
        assert!(Instant::now() < deadline, "both nodes' members listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    on_b.close(None).await.unwrap();
    while nodes(presence(&a)) != ["a"] {
        assert!(Instant::now() < deadline, "the member that left is gone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis killed and restarted: publishes are refused at once with an error
/// naming Redis while it is away; then the node reconnects, resubscribes,
/// and live delivery and resumes work again, with nothing acknowledged
/// lost.
async fn a_redis_restart_is_survived<R: Rt>() {
    let mut redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let server_b = start_hub::<R>(b.clone()).await;
    let mut member = connect(&server_b).await;
    join(&mut member, "x", 0).await;
    a.publish("x", Envelope::new("said", json!({"n": 1})))
        .unwrap();
    assert_eq!(id_of(&next_json(&mut member).await), 1);
    redis.restart(Duration::from_millis(1500));
    // While it was away (or still reconnecting), publishes were refused or
    // failed; once back up, they are delivered to b's member again.
    until("a reconnects", || a.metrics().engine.up.get() == 1).await;
    until("b reconnects", || b.metrics().engine.up.get() == 1).await;
    assert!(
        a.metrics().engine.reconnects.get() >= 1,
        "the reconnect is counted"
    );
    let deadline = Instant::now() + common::LIMIT;
    loop {
        match a.publish("x", Envelope::new("said", json!({"n": 2}))) {
            Ok(()) => break,
            Err(StoreError::Backend(message)) => assert!(message.contains("Redis"), "{message}"),
            Err(other) => panic!("{other}"),
        }
        assert!(Instant::now() < deadline, "publishes work again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = next_json(&mut member).await;
    assert_eq!(
        (id_of(&message), message["payload"]["n"].clone()),
        (2, json!(2))
    );
    // The log survived (AOF): a resume from 0 on b replays both.
    let mut peer = connect(&server_b).await;
    send(
        &mut peer,
        json!({"type": "room.join", "payload": {"room": "x", "since": 0}}),
    )
    .await;
    let ids = [
        id_of(&next_json(&mut peer).await),
        id_of(&next_json(&mut peer).await),
    ];
    assert_eq!(ids, [1, 2]);
    assert_eq!(next_json(&mut peer).await["payload"]["complete"], true);
}

hubbub_tests::cross_runtime!(
    one_order_on_every_node,
    a_client_resumes_on_another_node,
    acked_publishes_are_deduplicated_across_nodes,
    presence_spans_nodes,
    a_join_is_live_once_answered,
    long_polls_of_a_room_hear_other_nodes,
    a_dead_nodes_members_leave,
    a_lost_history_starts_a_new_epoch,
    a_resume_ahead_of_the_node_catches_it_up,
    a_stopped_node_leaves_presence_at_once,
    a_redis_restart_is_survived,
);

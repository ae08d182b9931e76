//! The chat demo's acknowledged publishes (`chat.message` with an `id`)
//! and presence (`room.presence`, `presence.join`/`presence.leave`).

mod common;

use std::{path::PathBuf, time::Duration};

use common::{
    close, connect, each_runtime, next, next_json, runtime, send, start, temp_dir, Peer, Running,
};
use serde_json::{json, Value};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// `chat` from `examples/chat/` on free ports, a fresh history, `env`
/// added; the WebSocket URL.
fn start_chat(name: &str, env: &[(&str, &str)]) -> (Running, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chat");
    let store = temp_dir(name).join("chat.db");
    let mut all = vec![
        ("SERVER_PORT", "0"),
        ("WEBSOCKET_PORT", "0"),
        ("STORE_PATH", store.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    let server = start(CHAT, &[], Some(&dir), &all);
    let url = format!("ws://127.0.0.1:{}/", server.ports()[1]);
    (server, url)
}

async fn client(url: &str) -> Peer {
    let mut peer = connect(url).await;
    assert_eq!(next(&mut peer).await, "welcome to hubbub chat");
    peer
}

async fn join(peer: &mut Peer, room: &str) {
    send(
        peer,
        &json!({"type": "room.join", "payload": {"room": room}}).to_string(),
    )
    .await;
    assert_eq!(next(peer).await, format!("joined room: {room}"));
}

async fn say_with_id(peer: &mut Peer, id: Value, text: &str) {
    let message =
        json!({"type": "chat.message", "id": id, "payload": {"room": "dev", "text": text}});
    send(peer, &message.to_string()).await;
}

async fn presence(peer: &mut Peer, room: &str) -> Vec<Value> {
    send(
        peer,
        &json!({"type": "room.presence", "payload": {"room": room}}).to_string(),
    )
    .await;
    let reply = next_json(peer).await;
    assert_eq!(reply["type"], "room.presence", "{reply}");
    assert_eq!(reply["payload"]["room"], room);
    reply["payload"]["members"].as_array().unwrap().clone()
}

#[test]
fn acked_messages_get_their_offset_once_stored_and_retries_are_not_stored_twice() {
    each_runtime(acked_messages_once);
}

fn acked_messages_once() {
    let (server, url) = start_chat("chat-acks", &[]);
    runtime().block_on(async {
        let (mut a, mut b) = (client(&url).await, client(&url).await);
        join(&mut a, "dev").await;
        join(&mut b, "dev").await;
        say_with_id(&mut a, json!("m-1"), "hello").await;
        assert_eq!(next(&mut a).await, "room dev: hello");
        let ack = next_json(&mut a).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["id"], "m-1");
        assert_eq!(ack["payload"]["room"], "dev");
        let offset = ack["payload"]["offset"].as_u64().expect("a numeric offset");
        assert_eq!(next(&mut b).await, "room dev: hello");

        // The offset is the history id.
        send(
            &mut a,
            r#"{"type":"room.history","payload":{"room":"dev"}}"#,
        )
        .await;
        let history = next_json(&mut a).await;
        let messages = history["payload"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["id"], offset.to_string());

        // The same id again: the same answer, not stored or delivered again.
        say_with_id(&mut a, json!("m-1"), "hello").await;
        assert_eq!(
            next_json(&mut a).await,
            ack,
            "acked again with the same offset"
        );
        // Refused ids: too long, not a string; nothing stored.
        for bad in [json!("x".repeat(65)), json!(7), json!({"n": 1})] {
            say_with_id(&mut a, bad.clone(), "bad").await;
            let error = next_json(&mut a).await;
            assert_eq!(error["type"], "error", "{bad}: {error}");
            assert_eq!(error["payload"]["error"], "invalid_id");
            let message = error["payload"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("id: expected a string of 1 to 64 characters"),
                "{message}"
            );
        }
        // A 64-character id is fine; the same id from another (anonymous)
        // session is another message.
        let long = "é".repeat(64);
        say_with_id(&mut a, json!(long), "second").await;
        assert_eq!(next(&mut a).await, "room dev: second");
        assert_eq!(next_json(&mut a).await["payload"]["offset"], offset + 1);
        say_with_id(&mut b, json!("m-1"), "third").await;
        assert_eq!(
            next(&mut b).await,
            "room dev: second",
            "b got the retry of m-1 never"
        );
        assert_eq!(next(&mut b).await, "room dev: third");
        assert_eq!(next_json(&mut b).await["payload"]["offset"], offset + 2);
        assert_eq!(next(&mut a).await, "room dev: third");
        // Without an id: as before, no ack.
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"plain"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room dev: plain");
        send(&mut a, "ping").await;
        assert_eq!(
            next(&mut a).await,
            "pong",
            "no ack for a message without id"
        );
        close(a).await;
        close(b).await;
    });
    drop(server);
}

#[test]
fn presence_lists_a_room_and_events_follow_joins_leaves_and_disconnects() {
    each_runtime(presence_once);
}

fn presence_once() {
    let (server, url) = start_chat(
        "chat-presence",
        &[("PRESENCE_EVENTS", "true"), ("NODE_ID", "node-a")],
    );
    runtime().block_on(async {
        let (mut a, mut b, mut c) = (client(&url).await, client(&url).await, client(&url).await);
        join(&mut a, "dev").await;
        let members = presence(&mut a, "dev").await;
        assert_eq!(members.len(), 1);
        let a_id = members[0]["id"].as_u64().unwrap();
        assert_eq!(members[0], json!({"id": a_id, "user": null, "node": "node-a"}));
        join(&mut b, "dev").await;
        join(&mut c, "dev").await;
        let members = presence(&mut c, "dev").await;
        let ids: Vec<u64> = members.iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id: {ids:?}");
        let (b_id, c_id) = (ids[1], ids[2]);
        assert_eq!(ids[0], a_id);
        let event = |kind: &str, id: u64| {
            json!({"type": kind, "payload": {"room": "dev", "id": id, "user": null, "node": "node-a"}})
        };
        assert_eq!(next_json(&mut a).await, event("presence.join", b_id));
        assert_eq!(next_json(&mut a).await, event("presence.join", c_id));
        assert_eq!(next_json(&mut b).await, event("presence.join", c_id));
        // Leave, then a disconnect.
        send(&mut b, r#"{"type":"room.leave","payload":{"room":"dev"}}"#).await;
        assert_eq!(next(&mut b).await, "left room: dev");
        assert_eq!(next_json(&mut a).await, event("presence.leave", b_id));
        assert_eq!(next_json(&mut c).await, event("presence.leave", b_id));
        close(c).await;
        assert_eq!(next_json(&mut a).await, event("presence.leave", c_id));
        let members = presence(&mut a, "dev").await;
        assert_eq!(members, [json!({"id": a_id, "user": null, "node": "node-a"})]);
        assert!(presence(&mut b, "empty").await.is_empty());
        close(a).await;
        close(b).await;
    });
    drop(server);
}

#[test]
fn presence_events_are_off_by_default_and_the_node_is_the_listener() {
    each_runtime(no_events_once);
}

fn no_events_once() {
    let (server, url) = start_chat("chat-presence-off", &[]);
    let port = server.ports()[1];
    runtime().block_on(async {
        let (mut a, mut b) = (client(&url).await, client(&url).await);
        join(&mut a, "dev").await;
        join(&mut b, "dev").await;
        send(&mut b, r#"{"type":"room.leave","payload":{"room":"dev"}}"#).await;
        assert_eq!(next(&mut b).await, "left room: dev");
        close(b).await;
        // The next thing a receives is the list: no event came before it.
        let members = presence(&mut a, "dev").await;
        assert_eq!(members.len(), 1);
        let node = members[0]["node"].as_str().unwrap();
        assert!(node.ends_with(&format!(":{port}")), "{node}");
        close(a).await;
    });
    drop(server);
}

#[test]
fn presence_needs_the_room_and_acks_are_per_user_in_auth_mode() {
    let secret = "presence-test-secret";
    let (server, url) = start_chat(
        "chat-presence-auth",
        &[("AUTH_REQUIRED", "true"), ("AUTH_JWT_SECRET", secret)],
    );
    let jwt = hubbub_hub::JwtAuth::hs256(secret.as_bytes());
    let token = jwt
        .issue("alice", Duration::from_secs(600), json!({"rooms": ["dev"]}))
        .unwrap();
    runtime().block_on(async {
        let login = async |url: &str| {
            let mut peer = connect(url).await;
            let auth = json!({"type": "auth", "payload": {"token": token}});
            send(&mut peer, &auth.to_string()).await;
            assert_eq!(next_json(&mut peer).await["type"], "auth.ok");
            assert_eq!(next(&mut peer).await, "welcome to hubbub chat");
            peer
        };
        let (mut a, mut b) = (login(&url).await, login(&url).await);
        join(&mut a, "dev").await;
        send(
            &mut a,
            r#"{"type":"room.presence","payload":{"room":"secret"}}"#,
        )
        .await;
        let refused = next_json(&mut a).await;
        assert_eq!(refused["type"], "error");
        assert_eq!(refused["payload"]["error"], "forbidden");
        assert_eq!(refused["payload"]["room"], "secret");
        let members = presence(&mut a, "dev").await;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["user"], "alice");
        // The same user's retry from another connection: acked, not stored
        // again.
        say_with_id(&mut a, json!("u-1"), "once").await;
        assert_eq!(next(&mut a).await, "room dev: alice: once");
        let ack = next_json(&mut a).await;
        assert_eq!(ack["type"], "ack");
        say_with_id(&mut b, json!("u-1"), "once").await;
        assert_eq!(next_json(&mut b).await, ack);
        send(&mut a, "ping").await;
        assert_eq!(next(&mut a).await, "pong", "delivered once");
        close(a).await;
        close(b).await;
    });
    drop(server);
}

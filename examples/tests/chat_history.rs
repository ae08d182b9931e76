//! The chat demo's history: `room.history`, the store surviving `kill -9`
//! of the server, and `room.join` with `since` after a reconnect.

mod common;

use std::path::{Path, PathBuf};

use common::{
    close, connect, each_runtime, next, next_json, runtime, send, start, temp_dir, Peer, Running,
};
use serde_json::Value;

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// `chat` from `examples/chat/` on free ports with its history in `store`;
/// the WebSocket URL.
fn start_chat(store: &Path) -> (Running, String) {
    start_chat_with(store, &[])
}

/// [`start_chat`] with `args`.
fn start_chat_with(store: &Path, args: &[&str]) -> (Running, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chat");
    let server = start(
        CHAT,
        args,
        Some(&dir),
        &[
            ("SERVER_PORT", "0"),
            ("WEBSOCKET_PORT", "0"),
            ("STORE_PATH", store.to_str().unwrap()),
        ],
    );
    let url = format!("ws://127.0.0.1:{}/", server.ports()[1]);
    (server, url)
}

async fn client(url: &str) -> Peer {
    let mut peer = connect(url).await;
    assert_eq!(next(&mut peer).await, "welcome to hubbub chat");
    peer
}

async fn say(peer: &mut Peer, room: &str, text: &str) {
    let message =
        format!(r#"{{"type":"chat.message","payload":{{"room":"{room}","text":"{text}"}}}}"#);
    send(peer, &message).await;
}

/// Join `room` (and see it confirmed).
async fn join(peer: &mut Peer, room: &str) {
    let join = format!(r#"{{"type":"room.join","payload":{{"room":"{room}"}}}}"#);
    send(peer, &join).await;
    assert_eq!(next(peer).await, format!("joined room: {room}"));
}

/// Say `text` in `room`, a member of it: the message comes back once
/// stored (the acknowledgment).
async fn said(peer: &mut Peer, room: &str, text: &str) {
    say(peer, room, text).await;
    assert_eq!(next(peer).await, format!("room {room}: {text}"));
}

/// Ask for `room`'s history; the texts and ids of the messages returned.
async fn history(peer: &mut Peer, room: &str, limit: Option<u64>) -> Vec<(String, u64)> {
    let limit = limit.map_or(String::new(), |l| format!(r#","limit":{l}"#));
    let ask = format!(r#"{{"type":"room.history","payload":{{"room":"{room}"{limit}}}}}"#);
    send(peer, &ask).await;
    let reply = next_json(peer).await;
    assert_eq!(reply["type"], "room.history");
    assert_eq!(reply["payload"]["room"], room);
    let messages = reply["payload"]["messages"].as_array().unwrap();
    messages
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "chat.message", "{m}");
            assert_eq!(m["payload"]["room"], room, "{m}");
            assert_eq!(m["room"], room, "{m}");
            assert!(m["ts"].as_u64().is_some(), "{m}");
            let id = m["id"].as_str().unwrap().parse().unwrap();
            (m["payload"]["text"].as_str().unwrap().to_owned(), id)
        })
        .collect()
}

/// A history larger than the session's outbound queue (4 MiB): 80
/// messages of 60 KB. `room.history` answers it in pages of at most
/// 256 KiB (`more`, `before`), and a client that reads them all is never
/// closed as a slow consumer (one 4.8 MB reply was closed 1013).
#[test]
fn a_large_history_comes_in_pages() {
    each_runtime(a_large_history_comes_in_pages_once);
}

fn a_large_history_comes_in_pages_once() {
    let store = temp_dir("chat-history-pages").join("chat.db");
    let (server, url) = start_chat(&store);
    runtime().block_on(async {
        let mut a = client(&url).await;
        join(&mut a, "big").await;
        let text = |n: usize| format!("{n:02}{}", "z".repeat(60_000));
        for n in 0..80 {
            said(&mut a, "big", &text(n)).await;
        }
        let mut pages = 0;
        let mut got: Vec<String> = Vec::new();
        let mut before = String::new();
        loop {
            pages += 1;
            assert!(pages <= 80, "bounded");
            let ask = format!(
                r#"{{"type":"room.history","payload":{{"room":"big","limit":80{before}}}}}"#
            );
            send(&mut a, &ask).await;
            let reply = next_json(&mut a).await;
            assert_eq!(reply["type"], "room.history", "{}", reply["type"]);
            let payload = &reply["payload"];
            assert!(payload.to_string().len() <= 300 << 10, "a page is bounded");
            let page = payload["messages"].as_array().unwrap();
            let mut texts: Vec<String> = page
                .iter()
                .map(|m| m["payload"]["text"].as_str().unwrap().to_owned())
                .collect();
            texts.append(&mut got);
            got = texts;
            if payload["more"] == false {
                break;
            }
            assert_eq!(payload["more"], true);
            assert_eq!(payload["before"], page[0]["id"]);
            before = format!(r#","before":{}"#, payload["before"]);
        }
        let expected: Vec<String> = (0..80).map(text).collect();
        assert_eq!(got, expected, "every message once, in order");
        assert!(pages > 10, "{pages} pages");
        close(a).await;
    });
    drop(server);
}

fn texts(found: &[(String, u64)]) -> Vec<&str> {
    found.iter().map(|(text, _)| text.as_str()).collect()
}

#[test]
fn history_is_served_survives_kill_9_and_replays_after_a_reconnect() {
    each_runtime(history_is_served_survives_kill_9_and_replays_after_a_reconnect_once);
}

fn history_is_served_survives_kill_9_and_replays_after_a_reconnect_once() {
    let store = temp_dir("chat-history").join("chat.db");
    let (server, url) = start_chat(&store);
    let before = runtime().block_on(async {
        let mut a = client(&url).await;
        join(&mut a, "dev").await;
        for text in ["one", "two", "three"] {
            // Delivered only once stored: this is the acknowledgment.
            said(&mut a, "dev", text).await;
        }
        say(&mut a, "ops", "elsewhere").await;

        let last_two = history(&mut a, "dev", Some(2)).await;
        assert_eq!(
            texts(&last_two),
            ["two", "three"],
            "the last N, oldest first"
        );
        let all = history(&mut a, "dev", None).await;
        assert_eq!(texts(&all), ["one", "two", "three"]);
        assert!(all.windows(2).all(|w| w[0].1 < w[1].1), "{all:?}");
        assert_eq!(all[1..], last_two[..]);
        assert_eq!(texts(&history(&mut a, "ops", None).await), ["elsewhere"]);
        assert!(history(&mut a, "dev", Some(0)).await.is_empty());
        assert!(history(&mut a, "nowhere", None).await.is_empty());
        close(a).await;
        all
    });

    // SIGKILL (dropping `Running` kills the process): no shutdown code runs.
    drop(server);
    let (server, url) = start_chat(&store);
    runtime().block_on(async {
        let mut b = client(&url).await;
        assert_eq!(
            history(&mut b, "dev", None).await,
            before,
            "kept across kill -9"
        );
        join(&mut b, "dev").await;
        said(&mut b, "dev", "four").await;

        // A client that saw "one" comes back: it gets what it missed, the
        // end of the replay, then live messages.
        let mut c = client(&url).await;
        let since = before[0].1;
        // The id as the envelopes carry it (a string); a number works too.
        let resume =
            format!(r#"{{"type":"room.join","payload":{{"room":"dev","since":"{since}"}}}}"#);
        send(&mut c, &resume).await;
        assert_eq!(next(&mut c).await, "joined room: dev");
        let mut missed = Vec::new();
        let resumed: Value = loop {
            let message = next_json(&mut c).await;
            if message["type"] == "room.resumed" {
                break message;
            }
            missed.push(message["payload"]["text"].as_str().unwrap().to_owned());
        };
        assert_eq!(missed, ["two", "three", "four"]);
        assert_eq!(resumed["payload"]["complete"], true);
        assert_eq!(resumed["payload"]["since"], since);
        say(&mut b, "dev", "five").await;
        assert_eq!(next(&mut c).await, "room dev: five");
        let ids: Vec<u64> = history(&mut c, "dev", None)
            .await
            .iter()
            .map(|m| m.1)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[3] > before[2].1, "ids go on after the restart");
        close(b).await;
        close(c).await;
    });
    assert!(server.terminate().success());
}

/// The store outlives a graceful restart (SIGTERM) too, and is the same
/// file whichever runtime serves it: what one runtime stored, the other
/// serves as `room.history`, and ids go on from there.
#[test]
fn history_survives_a_restart_on_another_runtime() {
    for (first, then) in [("tokio", "smol"), ("smol", "tokio")] {
        let store = temp_dir(&format!("chat-history-{first}-{then}")).join("chat.db");
        let (server, url) = start_chat_with(&store, &["--runtime", first]);
        let before = runtime().block_on(async {
            let mut a = client(&url).await;
            join(&mut a, "dev").await;
            for text in ["one", "two"] {
                said(&mut a, "dev", text).await;
            }
            let before = history(&mut a, "dev", None).await;
            close(a).await;
            before
        });
        assert_eq!(texts(&before), ["one", "two"]);
        assert!(server.terminate().success(), "{first} exits 0");

        let (server, url) = start_chat_with(&store, &["--runtime", then]);
        runtime().block_on(async {
            let mut b = client(&url).await;
            assert_eq!(
                history(&mut b, "dev", None).await,
                before,
                "{first} -> {then}"
            );
            join(&mut b, "dev").await;
            said(&mut b, "dev", "three").await;
            let after = history(&mut b, "dev", None).await;
            assert_eq!(texts(&after), ["one", "two", "three"]);
            assert!(after[2].1 > before[1].1, "ids go on after the restart");
            close(b).await;
        });
        assert!(server.terminate().success(), "{then} exits 0");
    }
}

/// A clean stop (SIGTERM) closes the history: the WAL is checkpointed into
/// the database file and no `-wal` or `-shm` file is left beside it, even
/// with a client still connected when the signal comes.
#[test]
fn sigterm_closes_the_history_leaving_no_wal_or_shm_file() {
    each_runtime(sigterm_closes_the_history_leaving_no_wal_or_shm_file_once);
}

fn sigterm_closes_the_history_leaving_no_wal_or_shm_file_once() {
    let store = temp_dir("chat-close").join("chat.db");
    let beside = |suffix: &str| {
        let mut name = store.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name).exists()
    };
    let (mut server, url) = start_chat(&store);
    runtime().block_on(async {
        let mut a = client(&url).await;
        join(&mut a, "dev").await;
        said(&mut a, "dev", "kept").await;
        assert!(
            beside("-wal") && beside("-shm"),
            "the history is open, in WAL mode"
        );
        server.sigterm();
        assert_eq!(next(&mut a).await, "close 1001");
        close(a).await;
    });
    assert!(server.wait().success(), "exits 0");
    assert!(
        !beside("-wal") && !beside("-shm"),
        "-wal {} / -shm {} left after SIGTERM",
        beside("-wal"),
        beside("-shm")
    );
    // The message is in the database file itself.
    let reopened = hubbub_sqlite::SqliteStore::open(&store, Default::default()).unwrap();
    assert_eq!(reopened.len().unwrap(), 1);
}

//! `room-chat` driven by tokio-tungstenite, and `chat-client` against it
//! (`examples/README.md`, "room-chat and chat-client").

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use common::{
    close, connect, each_runtime, next, run_to_end, runtime, runtime_args, send, send_binary,
    spawn, start, Running,
};

const ROOM_CHAT: &str = env!("CARGO_BIN_EXE_room-chat");
const CHAT_CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");

fn start_room_chat() -> (Running, String) {
    let server = start(ROOM_CHAT, &["0"], None, &[]);
    let port = server.ports()[0];
    assert!(server.listening.contains("/chat"), "{}", server.listening);
    (server, format!("ws://127.0.0.1:{port}/chat"))
}

/// `"<id>: <text>"` split at the first `": "`.
fn split(line: &str) -> (&str, &str) {
    line.split_once(": ")
        .unwrap_or_else(|| panic!("{line:?} is not `<id>: <text>`"))
}

#[test]
fn broadcasts_to_everyone_with_the_sender_id() {
    each_runtime(broadcasts_to_everyone_with_the_sender_id_once);
}

fn broadcasts_to_everyone_with_the_sender_id_once() {
    let (server, url) = start_room_chat();
    runtime().block_on(async {
        let mut a = connect(&url).await;
        server.wait_for_line("a's join", |l| l.contains("(1 online)"));
        let mut b = connect(&url).await;
        server.wait_for_line("b's join", |l| l.contains("(2 online)"));

        send(&mut a, "hello").await;
        let seen_by_a = next(&mut a).await;
        assert_eq!(next(&mut b).await, seen_by_a);
        let (a_id, text) = split(&seen_by_a);
        assert_eq!(text, "hello");

        send(&mut b, "hi: there").await;
        let seen_by_b = next(&mut b).await;
        assert_eq!(next(&mut a).await, seen_by_b);
        let (b_id, text) = split(&seen_by_b);
        assert_eq!(text, "hi: there");
        assert_ne!(a_id, b_id);

        // Binary messages likewise, as binary.
        send_binary(&mut a, b"bytes").await;
        let expected = format!("binary:{a_id}: bytes");
        assert_eq!(next(&mut a).await, expected);
        assert_eq!(next(&mut b).await, expected);

        // Joins and leaves are printed with the number online.
        assert!(server
            .stdout()
            .contains(&format!("[chat] join {a_id} (1 online)")));
        assert!(server
            .stdout()
            .contains(&format!("[chat] join {b_id} (2 online)")));
        close(a).await;
        server.wait_for_line("a's leave", |l| {
            l == format!("[chat] leave {a_id} (1 online)")
        });
        send(&mut b, "alone").await;
        assert_eq!(next(&mut b).await, format!("{b_id}: alone"));
        close(b).await;
        server.wait_for_line("b's leave", |l| {
            l == format!("[chat] leave {b_id} (0 online)")
        });
    });
    assert!(server.terminate().success());
}

#[test]
fn other_paths_are_404_at_the_upgrade() {
    each_runtime(other_paths_are_404_at_the_upgrade_once);
}

fn other_paths_are_404_at_the_upgrade_once() {
    let (server, url) = start_room_chat();
    runtime().block_on(async {
        for path in ["/", "/chat/", "/chatroom", "/other"] {
            let other = url.replace("/chat", path);
            match common::try_connect(&other).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 404, "{path}")
                }
                other => panic!("{path}: expected a 404, got {other:?}"),
            }
        }
        // The query string is not part of the path.
        let mut peer = connect(&format!("{url}?nick=x")).await;
        send(&mut peer, "q").await;
        assert!(next(&mut peer).await.ends_with(": q"));
        close(peer).await;
    });
    assert!(server.terminate().success());
}

#[test]
fn chat_client_sends_lines_and_prints_replies() {
    each_runtime(chat_client_sends_lines_and_prints_replies_once);
}

fn chat_client_sends_lines_and_prints_replies_once() {
    let (server, url) = start_room_chat();
    runtime().block_on(async {
        // A listener that sees what the client sends.
        let mut watcher = connect(&url).await;
        server.wait_for_line("the watcher", |l| l.contains("(1 online)"));

        let (code, stdout, stderr) = run_to_end(
            CHAT_CLIENT,
            &[
                &url,
                "alice",
                "hello chat",
                "anyone here?",
                "--",
                "--not-a-flag",
            ],
            None,
            &[],
        );
        assert_eq!(code, Some(0), "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].contains("listening"), "{stdout}");
        let received: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("[alice] "))
            .collect();
        assert_eq!(received.len(), 3, "{stdout}");
        let (id, _) = split(received[0]);
        assert_eq!(
            received,
            [
                format!("{id}: hello chat"),
                format!("{id}: anyone here?"),
                format!("{id}: --not-a-flag")
            ]
        );
        for text in ["hello chat", "anyone here?", "--not-a-flag"] {
            assert_eq!(next(&mut watcher).await, format!("{id}: {text}"));
        }

        // Lines from standard input, up to its end.
        let mut command = Command::new(CHAT_CLIENT);
        command
            .args(runtime_args())
            .args([url.as_str(), "bob"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut client = spawn(command);
        let bob = client.listening.clone();
        assert!(bob.contains(&url) && bob.contains("bob"), "{bob}");
        // What the watcher says reaches bob too.
        send(&mut watcher, "welcome bob").await;
        let from_watcher = next(&mut watcher).await;
        client.wait_for_line("the watcher's line", |l| {
            l == format!("[bob] {from_watcher}")
        });
        let mut stdin = client.take_stdin();
        stdin.write_all(b"first line\nsecond line\n").unwrap();
        drop(stdin); // EOF
        let first = next(&mut watcher).await;
        let (bob_id, text) = split(&first);
        assert_eq!(text, "first line");
        assert_eq!(next(&mut watcher).await, format!("{bob_id}: second line"));
        assert!(client.wait().success(), "{}", client.stderr());
        client.wait_for_line("bob's own line", |l| {
            l == format!("[bob] {bob_id}: second line")
        });
        close(watcher).await;
    });
    assert!(server.terminate().success());
}

#[test]
fn chat_client_exits_on_sigterm_and_reports_errors() {
    each_runtime(chat_client_exits_on_sigterm_and_reports_errors_once);
}

fn chat_client_exits_on_sigterm_and_reports_errors_once() {
    let (server, url) = start_room_chat();
    let mut command = Command::new(CHAT_CLIENT);
    command
        .args(runtime_args())
        .args([url.as_str(), "carol"])
        .stdin(Stdio::piped()) // kept open: the client waits
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let client = spawn(command);
    server.wait_for_line("carol's join", |l| l.contains("(1 online)"));
    assert!(client.terminate().success());
    server.wait_for_line("carol's leave", |l| l.contains("(0 online)"));
    assert!(server.terminate().success());

    // Nothing listening: a clear error, exit 1.
    let (code, _, stderr) = run_to_end(CHAT_CLIENT, &[&url, "dave", "hi"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("chat-client: "), "{stderr}");
    let (code, _, stderr) = run_to_end(CHAT_CLIENT, &["ws://127.0.0.1:1/"], None, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("URL and NICK are required"), "{stderr}");
    let (code, _, stderr) = run_to_end(ROOM_CHAT, &["port"], None, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid PORT \"port\""), "{stderr}");
}

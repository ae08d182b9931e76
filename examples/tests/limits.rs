//! The limit settings of the hub programs as `examples/README.md` states
//! them (`ALLOWED_ORIGINS`, `WEBSOCKET_RATE_LIMIT`, `WEBSOCKET_RATE_POLICY`,
//! `MAX_CONNECTIONS`, `MAX_CONNECTIONS_PER_IP`, `HTTP_SEND_RATE_LIMIT`):
//! each program started with them on every runtime, its refusals read as
//! raw bytes.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use common::{
    close, connect, each_runtime, next, next_json, run_to_end, runtime, send, start, temp_dir, WAIT,
};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");
const EVENTS: &str = env!("CARGO_BIN_EXE_events");
const ROOM_CHAT: &str = env!("CARGO_BIN_EXE_room-chat");

/// Send `request` on a fresh connection; the whole answer (the server
/// closes after a refusal), or its head for a `101`.
fn exchange(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed inside the head");
        answer.push(byte[0]);
    }
    if !answer.starts_with(b"HTTP/1.1 101 ") {
        let length = String::from_utf8_lossy(&answer)
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: ").map(str::to_owned))
            .map_or(0, |n| n.parse().unwrap());
        let mut body = vec![0; length];
        stream.read_exact(&mut body).unwrap();
        answer.extend(body);
    }
    String::from_utf8(answer).unwrap()
}

fn upgrade(port: u16, path: &str, extra: &str) -> String {
    exchange(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        ),
    )
}

#[test]
fn chat_applies_its_limit_settings() {
    each_runtime(chat_applies_its_limit_settings_once);
}

fn chat_applies_its_limit_settings_once() {
    let dir = temp_dir("chat-limits");
    let store = dir.join("chat.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = start(
        CHAT,
        &[],
        Some(&dir),
        &[
            ("SERVER_PORT", port.as_str()),
            ("WEBSOCKET_PORT", port.as_str()),
            ("STORE_PATH", store.to_str().unwrap()),
            ("ALLOWED_ORIGINS", "https://chat.example"),
            ("WEBSOCKET_RATE_LIMIT", "3"),
            ("MAX_CONNECTIONS", "2"),
            ("HTTP_SEND_RATE_LIMIT", "1"),
        ],
    );
    let port: u16 = port.parse().unwrap();
    let refused = upgrade(port, "/", "Origin: https://evil.example\r\n");
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{refused}"
    );
    assert!(
        refused.ends_with("\r\n\r\norigin not allowed: https://evil.example"),
        "{refused}"
    );
    let health = "GET /api/health HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n";
    assert!(exchange(port, health).starts_with("HTTP/1.1 403 Forbidden\r\n"));
    let body = r#"{"type":"chat.message","room":"lobby","payload":{"text":"hi"}}"#;
    let post = format!(
        "POST /ws/send HTTP/1.1\r\nHost: x\r\nOrigin: https://chat.example\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert!(exchange(port, &post).starts_with("HTTP/1.1 202 "));
    let limited = exchange(port, &post);
    assert!(
        limited.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{limited}"
    );
    runtime().block_on(async {
        let url = format!("ws://127.0.0.1:{port}/");
        let mut a = connect(&url).await;
        assert_eq!(next(&mut a).await, "welcome to hubbub chat");
        for _ in 0..9 {
            send(&mut a, "ping").await;
        }
        let mut pongs = 0;
        let notice = loop {
            match next(&mut a).await.as_str() {
                "pong" => pongs += 1,
                other => break serde_json::from_str::<serde_json::Value>(other).unwrap(),
            }
        };
        assert!((1..=4).contains(&pongs), "{pongs} pongs at 3/s");
        assert_eq!(notice["type"], "error");
        assert_eq!(notice["payload"]["error"], "rate_limited");
        let mut b = connect(&url).await;
        assert_eq!(next(&mut b).await, "welcome to hubbub chat");
        let full = upgrade(port, "/", "");
        assert!(
            full.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{full}"
        );
        assert!(
            full.ends_with("server full: at most 2 connections"),
            "{full}"
        );
        close(a).await;
        close(b).await;
    });
    let metrics = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    for line in [
        "hubbub_ws_connections_rejected_total{reason=\"origin\"} 1\n",
        "hubbub_ws_connections_rejected_total{reason=\"max_connections\"} 1\n",
        "hubbub_http_origin_rejected_total 1\n",
        "hubbub_http_rate_limited_total{route=\"/ws/send\",reason=\"rate\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(metrics.contains("hubbub_ws_rate_limited_total{limit=\"messages\",policy=\"drop\"}"));
    assert!(server.terminate().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn events_and_room_chat_apply_their_limit_settings() {
    each_runtime(events_and_room_chat_apply_their_limit_settings_once);
}

fn events_and_room_chat_apply_their_limit_settings_once() {
    let dir = temp_dir("events-limits");
    let events = start(
        EVENTS,
        &[],
        Some(&dir),
        &[
            ("WEBSOCKET_PORT", "0"),
            ("WEBSOCKET_RATE_LIMIT", "1"),
            ("WEBSOCKET_RATE_POLICY", "close"),
        ],
    );
    let room_chat = start(
        ROOM_CHAT,
        &["0"],
        Some(&dir),
        &[("MAX_CONNECTIONS_PER_IP", "1")],
    );
    let (events_port, room_port) = (events.ports()[0], room_chat.ports()[0]);
    runtime().block_on(async {
        let mut a = connect(&format!("ws://127.0.0.1:{events_port}/")).await;
        assert_eq!(next_json(&mut a).await["type"], "system.connected");
        send(&mut a, "one").await;
        send(&mut a, "two").await;
        assert_eq!(next_json(&mut a).await["type"], "echo.raw");
        assert_eq!(next(&mut a).await, "close 1008");

        let _b = connect(&format!("ws://127.0.0.1:{room_port}/chat")).await;
        let refused = upgrade(room_port, "/chat", "");
        assert!(
            refused.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{refused}"
        );
        assert!(
            refused.ends_with("too many connections from 127.0.0.1: at most 1 at once"),
            "{refused}"
        );
    });
    assert!(events.terminate().success());
    assert!(room_chat.terminate().success());
    // A bad limit stops the program, naming key and value.
    for (key, value) in [
        ("WEBSOCKET_RATE_POLICY", "ignore"),
        ("MAX_CONNECTIONS", "-1"),
    ] {
        let (code, _, stderr) = run_to_end(
            EVENTS,
            &[],
            Some(&dir),
            &[("WEBSOCKET_PORT", "0"), (key, value)],
        );
        assert_eq!(code, Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(key) && stderr.contains(value), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

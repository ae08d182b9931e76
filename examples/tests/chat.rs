//! The `chat` demo as `examples/README.md` states it: its HTTP routes through raw
//! TCP, its WebSocket protocol through tokio-tungstenite, its settings, and
//! SIGTERM. Each test starts the real binary on free ports (port 0; the
//! `listening` line tells which).

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
};

use common::{
    close, connect, each_runtime, next, run_to_end, runtime, send, start, temp_dir, Peer, Running,
};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

fn chat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chat")
}

/// `chat` run from `examples/chat/` on free ports, with its history in a
/// fresh temporary file.
fn start_chat() -> (Running, u16, u16) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let store = temp_dir(&format!("chat-store-{run}")).join("chat.db");
    let server = start(
        CHAT,
        &[],
        Some(&chat_dir()),
        &[
            ("SERVER_PORT", "0"),
            ("WEBSOCKET_PORT", "0"),
            ("STORE_PATH", store.to_str().unwrap()),
        ],
    );
    let ports = server.ports();
    assert_eq!(ports.len(), 2, "{}", server.listening);
    (server, ports[0], ports[1])
}

/// One raw HTTP exchange on a fresh connection: the status line, the
/// headers (lower-cased names) and the body (`Content-Length` bytes, none
/// for `HEAD`).
fn http(port: u16, request: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream, request.starts_with("HEAD "))
}

/// Read one response from a (possibly kept-alive) connection.
fn read_response(
    stream: &mut TcpStream,
    head_only: bool,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a complete head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.trim_end().split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length = header(&headers, "content-length").parse::<usize>().unwrap();
    let mut body = vec![0; if head_only { 0 } else { length }];
    stream.read_exact(&mut body).unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

#[test]
fn http_routes() {
    each_runtime(http_routes_once);
}

fn http_routes_once() {
    let (server, http_port, _) = start_chat();
    let get = |path: &str| {
        http(
            http_port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
    };

    let (status, headers, body) = get("/api/health");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(body, br#"{"ok":true,"service":"websocket-chat"}"#);

    let page = std::fs::read(chat_dir().join("public/index.html")).unwrap();
    let (status, headers, body) = get("/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(body, page);
    let text = String::from_utf8(body).unwrap();
    for id in ["room", "join", "message", "send", "log"] {
        assert!(text.contains(&format!("id=\"{id}\"")), "no element #{id}");
    }
    // No external resources.
    assert!(!text.contains("http://") && !text.contains("https://"));
    assert_eq!(get("/?from=test").2, page);
    assert_eq!(get("/index.html").2, page);

    let (status, _, body) = http(http_port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status.as_str(), body.len()), ("HTTP/1.1 200 OK", 0));
    let (status, headers, _) = http(
        http_port,
        "POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
    );
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&headers, "allow"), "GET, HEAD");
    assert_eq!(get("/missing").0, "HTTP/1.1 404 Not Found");
    assert_eq!(get("/api/health/x").0, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(http_port, "NOT HTTP\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // A head sent in pieces is read whole.
    let mut stream = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(b"GET /api/hea").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    stream
        .write_all(b"lth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with(r#"{"ok":true,"service":"websocket-chat"}"#));

    assert!(server.terminate().success());
}

async fn joined(peer: &mut Peer, room: &str) {
    send(
        peer,
        &format!(r#"{{"type":"room.join","payload":{{"room":"{room}"}}}}"#),
    )
    .await;
    assert_eq!(next(peer).await, format!("joined room: {room}"));
}

/// `ping` answered `pong`: everything sent to `peer` before it has arrived.
async fn fence(peer: &mut Peer) {
    send(peer, "ping").await;
    assert_eq!(next(peer).await, "pong");
}

#[test]
fn websocket_protocol() {
    each_runtime(websocket_protocol_once);
}

fn websocket_protocol_once() {
    let (server, _, ws_port) = start_chat();
    runtime().block_on(async {
        let url = format!("ws://127.0.0.1:{ws_port}/");
        let (mut a, mut b, mut c) = (
            connect(&url).await,
            connect(&url).await,
            connect(&url).await,
        );
        for peer in [&mut a, &mut b, &mut c] {
            assert_eq!(next(peer).await, "welcome to hubbub chat");
        }
        fence(&mut a).await;

        // a and b in dev, c in ops.
        joined(&mut a, "dev").await;
        joined(&mut b, "dev").await;
        joined(&mut c, "ops").await;
        // Joining twice is harmless.
        joined(&mut b, "dev").await;

        // Every member of the room, the sender included; nobody else.
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"hello dev"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room dev: hello dev");
        assert_eq!(next(&mut b).await, "room dev: hello dev");
        // The room may be the envelope's top-level `room`.
        send(
            &mut c,
            r#"{"type":"chat.message","room":"ops","payload":{"text":"hi ops"}}"#,
        )
        .await;
        assert_eq!(next(&mut c).await, "room ops: hi ops");
        // A message to a room the sender is not in reaches its members only.
        send(
            &mut c,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"from outside"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room dev: from outside");
        assert_eq!(next(&mut b).await, "room dev: from outside");
        fence(&mut c).await; // c received nothing of dev's

        // Empty text: to the sender only.
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev","text":""}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "message rejected: empty text");
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "message rejected: empty text");
        fence(&mut b).await;

        // Unknown types, to the sender only.
        send(&mut b, r#"{"type":"room.kick","payload":{"room":"dev"}}"#).await;
        assert_eq!(next(&mut b).await, "unknown message type: room.kick");
        send(&mut b, r#"{"type":"dance"}"#).await;
        assert_eq!(next(&mut b).await, "unknown message type: dance");
        fence(&mut a).await;

        // No room means `general`.
        send(&mut a, r#"{"type":"room.join","payload":{}}"#).await;
        assert_eq!(next(&mut a).await, "joined room: general");
        send(&mut c, r#"{"type":"room.join"}"#).await;
        assert_eq!(next(&mut c).await, "joined room: general");
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"text":"to general"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room general: to general");
        assert_eq!(next(&mut c).await, "room general: to general");
        fence(&mut b).await; // b is not in general

        // Leaving: the reply, then no more of the room.
        send(&mut b, r#"{"type":"room.leave","payload":{"room":"dev"}}"#).await;
        assert_eq!(next(&mut b).await, "left room: dev");
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"b left"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room dev: b left");
        fence(&mut b).await;
        send(&mut c, r#"{"type":"room.leave"}"#).await;
        assert_eq!(next(&mut c).await, "left room: general");

        // Plain text other than `ping` gets no answer.
        send(&mut a, "hello?").await;
        fence(&mut a).await;

        // A client that disconnects leaves its rooms; the others go on.
        close(a).await;
        send(&mut c, r#"{"type":"room.join","payload":{"room":"dev"}}"#).await;
        assert_eq!(next(&mut c).await, "joined room: dev");
        send(
            &mut c,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"still here"}}"#,
        )
        .await;
        assert_eq!(next(&mut c).await, "room dev: still here");
        fence(&mut b).await;
        close(b).await;
        close(c).await;
    });
    assert!(server.terminate().success());
}

#[test]
fn websocket_on_other_paths_is_refused() {
    each_runtime(websocket_on_other_paths_is_refused_once);
}

fn websocket_on_other_paths_is_refused_once() {
    let (server, _, ws_port) = start_chat();
    runtime().block_on(async {
        match common::try_connect(&format!("ws://127.0.0.1:{ws_port}/other")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404)
            }
            other => panic!("expected a 404, got {other:?}"),
        }
    });
    assert!(server.terminate().success());
}

#[test]
fn shutdown_closes_sessions_with_1001_and_exits_0() {
    each_runtime(shutdown_closes_sessions_with_1001_and_exits_0_once);
}

fn shutdown_closes_sessions_with_1001_and_exits_0_once() {
    let (server, _, ws_port) = start_chat();
    let rt = runtime();
    let mut peer = rt.block_on(async {
        let mut peer = connect(&format!("ws://127.0.0.1:{ws_port}/")).await;
        assert_eq!(next(&mut peer).await, "welcome to hubbub chat");
        peer
    });
    server.sigterm();
    rt.block_on(async { assert_eq!(next(&mut peer).await, "close 1001") });
    drop(peer);
    let mut server = server;
    assert!(server.wait().success());
    server.wait_for_line("chat: stopped", |l| l == "chat: stopped");
}

#[test]
fn invalid_settings_exit_2_naming_the_key() {
    // From the environment.
    for (key, value) in [
        ("WEBSOCKET_PORT", "80"),
        ("SERVER_PORT", "http"),
        ("WEBSOCKET_IDLE_TIMEOUT", "soon"),
        ("WEBSOCKET_ENABLE_DEFLATE", "maybe"),
    ] {
        let (code, _, stderr) = run_to_end(CHAT, &[], Some(&chat_dir()), &[(key, value)]);
        assert_eq!(code, Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(key) && stderr.contains(value), "{stderr}");
    }
    // From `.env`, where the environment wins.
    let dir = temp_dir("chat-env");
    std::fs::write(
        dir.join(".env"),
        "SERVER_PORT=0\nWEBSOCKET_MAX_MESSAGE_SIZE=12\n",
    )
    .unwrap();
    let (code, _, stderr) = run_to_end(CHAT, &[], Some(&dir), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("WEBSOCKET_MAX_MESSAGE_SIZE"), "{stderr}");
    let server = start(
        CHAT,
        &[],
        Some(&dir),
        &[
            ("WEBSOCKET_MAX_MESSAGE_SIZE", "2048"),
            ("WEBSOCKET_PORT", "0"),
        ],
    );
    // Started from a directory without public/: it says so.
    server.wait_for_stderr("index.html not found");
    assert!(server.terminate().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn one_shared_port_serves_http_and_websocket() {
    each_runtime(one_shared_port_serves_http_and_websocket_once);
}

/// With `SERVER_PORT == WEBSOCKET_PORT`, one listener serves the routes,
/// the bridge and the chat: an HTTP send reaches a WebSocket member, and a
/// WebSocket message reaches the room's poll session.
fn one_shared_port_serves_http_and_websocket_once() {
    let port = free_port().to_string();
    let server = start(
        CHAT,
        &[],
        Some(&chat_dir()),
        &[
            ("SERVER_PORT", port.as_str()),
            ("WEBSOCKET_PORT", port.as_str()),
        ],
    );
    let port: u16 = port.parse().unwrap();
    assert!(
        server.listening.contains("one shared port"),
        "{}",
        server.listening
    );
    let (status, _, body) = http(port, "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, br#"{"ok":true,"service":"websocket-chat"}"#);
    runtime().block_on(async {
        let mut peer = connect(&format!("ws://127.0.0.1:{port}/")).await;
        assert_eq!(next(&mut peer).await, "welcome to hubbub chat");
        joined(&mut peer, "lobby").await;
        let (status, _, _) = post_send(
            port,
            r#"{"type":"chat.message","room":"lobby","payload":{"text":"over http"}}"#,
        );
        assert_eq!(status, "HTTP/1.1 202 Accepted");
        assert_eq!(next(&mut peer).await, "room lobby: over http");
        let polled = poll(port, "lobby");
        assert_eq!(polled.as_array().map(Vec::len), Some(1), "{polled}");
        assert_eq!(polled[0]["type"], "chat.message");
        assert_eq!(polled[0]["payload"]["text"], "over http");
        fence(&mut peer).await;
        close(peer).await;
    });
    let (status, _, body) = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let metrics = String::from_utf8(body).unwrap();
    assert!(
        metrics.contains("hubbub_ws_connections_total 1\n"),
        "{metrics}"
    );
    let (status, _, body) = http(port, "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let openapi: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(openapi["paths"]["/ws/send"]["post"].is_object());
    assert!(server.terminate().success());
}

/// `POST /ws/send` with `body`.
fn post_send(port: u16, body: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    http(
        port,
        &format!(
            "POST /ws/send HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Take what room `room`'s poll session holds (without waiting).
fn poll(port: u16, room: &str) -> serde_json::Value {
    let (status, _, body) = http(
        port,
        &format!("GET /ws/poll?session_id=room:{room}&timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn http_clients_take_part_through_long_polling() {
    each_runtime(http_clients_take_part_through_long_polling_once);
}

fn http_clients_take_part_through_long_polling_once() {
    let (server, http_port, ws_port) = start_chat();
    let post = |body: &str| post_send(http_port, body);
    let poll = |room: &str| poll(http_port, room);
    runtime().block_on(async {
        let mut a = connect(&format!("ws://127.0.0.1:{ws_port}/")).await;
        assert_eq!(next(&mut a).await, "welcome to hubbub chat");
        joined(&mut a, "dev").await;
        let (status, _, body) =
            post(r#"{"type":"chat.message","room":"dev","payload":{"text":"from http"}}"#);
        assert_eq!(status, "HTTP/1.1 202 Accepted");
        assert_eq!(body, br#"{"session_id":"room:dev","status":"queued"}"#);
        assert_eq!(next(&mut a).await, "room dev: from http");
        send(
            &mut a,
            r#"{"type":"chat.message","payload":{"room":"dev","text":"from ws"}}"#,
        )
        .await;
        assert_eq!(next(&mut a).await, "room dev: from ws");
        let messages = poll("dev");
        let messages = messages.as_array().unwrap();
        assert_eq!(messages.len(), 2, "{messages:?}");
        for (m, text) in messages.iter().zip(["from http", "from ws"]) {
            assert_eq!(m["type"], "chat.message");
            assert_eq!(m["room"], "dev");
            assert_eq!(
                m["payload"],
                serde_json::json!({"room": "dev", "text": text})
            );
        }
        // Another room's poll session holds none of dev's messages.
        assert_eq!(poll("ops"), serde_json::json!([]));
        let (status, _, body) = post(r#"{"room":"dev"}"#);
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert_eq!(body, br#"{"error":"missing type"}"#);
        close(a).await;
    });
    let (status, _, body) = http(http_port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let metrics = String::from_utf8(body).unwrap();
    assert!(
        metrics.contains("hubbub_ws_connections_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hubbub_lp_messages_drained_total 2\n"),
        "{metrics}"
    );
    let (status, _, body) = http(http_port, "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let openapi: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(openapi["paths"]["/ws/poll"]["get"].is_object());
    assert!(server.terminate().success());
}

#[test]
fn runtime_flag() {
    let (code, _, stderr) = run_to_end(CHAT, &["--runtime", "uv"], Some(&chat_dir()), &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown runtime \"uv\""), "{stderr}");
}

//! The hub programs over TLS (`examples/README.md`, Settings: `TLS_CERT_PATH`
//! and `TLS_KEY_PATH`), on every runtime: `chat` on one shared port and on
//! two (`GET /api/health` over HTTPS, a `wss://` chat session with a client
//! trusting the test CA, plaintext refused), its certificate reloaded on
//! SIGHUP (open connections untouched, new ones see the new certificate, a
//! bad file keeps the old one), one of the two keys alone or a missing
//! file (exit 2 naming it), and `events` and `room-chat` over `wss://`.
//! Certificates are made by rcgen (the tests crate's `certs` helper).

#[allow(dead_code)] // the TLS tests of the tests crate use more of it
#[path = "../../tests/tests/common/certs.rs"]
mod certs;
mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
};

use certs::{ServerFiles, TestPki};
use common::{each_runtime, run_to_end, runtime, start, temp_dir, Running, WAIT};
use hubbub_tokio::{ClientConfig, Error, Message, WebSocket};
use hubbub_ws::tls::{client_config_with_ca_file, rustls};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");
const EVENTS: &str = env!("CARGO_BIN_EXE_events");
const ROOM_CHAT: &str = env!("CARGO_BIN_EXE_room-chat");

/// A port free right now on 127.0.0.1 (for the shared port, which cannot
/// be 0).
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `chat` in `dir` with TLS from `files`, on `http` and `ws` ports.
fn chat(dir: &Path, files: &ServerFiles, http: &str, ws: &str) -> Running {
    let store = dir.join("chat.db");
    start(
        CHAT,
        &[],
        Some(dir),
        &[
            ("SERVER_HOST", "127.0.0.1"),
            ("WEBSOCKET_HOST", "127.0.0.1"),
            ("SERVER_PORT", http),
            ("WEBSOCKET_PORT", ws),
            ("STORE_PATH", path(&store)),
            ("TLS_CERT_PATH", path(&files.cert)),
            ("TLS_KEY_PATH", path(&files.key)),
        ],
    )
}

/// One HTTP/1.1 request over TLS trusting `ca` (blocking, rustls's own
/// stream): the whole answer, read to the end.
fn https(port: u16, ca: &Path, request: &str) -> String {
    let config = client_config_with_ca_file(ca).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // Ignored: a TLS close without close_notify ends the answer too; what
    // was read is checked by the caller.
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

const HEALTH: &str = "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Plain HTTP to a TLS port: no HTTP answer, the connection is closed.
fn plaintext_refused(port: u16) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(HEALTH.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // Ignored: a reset is as good as a close here; nothing HTTP may come.
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext answered: {}",
        String::from_utf8_lossy(&answer)
    );
}

fn trusting(ca: &Path) -> ClientConfig {
    ClientConfig::default().trust_pem_ca(ca).unwrap()
}

async fn wss(url: &str, ca: &Path) -> Result<WebSocket, Error> {
    let config = trusting(ca);
    tokio::time::timeout(WAIT, hubbub_tokio::connect_with(url, &config))
        .await
        .unwrap_or_else(|_| panic!("no answer from {url} within {WAIT:?}"))
        .map(|(ws, _)| ws)
}

async fn recv(ws: &mut WebSocket) -> String {
    let message = tokio::time::timeout(WAIT, ws.recv()).await;
    match message.expect("a message in time") {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn send(ws: &mut WebSocket, text: &str) {
    ws.send(text).await.unwrap();
}

/// A chat session over `wss://` on `port`: welcome, join, a message.
async fn chat_session(port: u16, ca: &Path, room: &str) -> WebSocket {
    let mut ws = wss(&format!("wss://127.0.0.1:{port}/"), ca).await.unwrap();
    assert!(ws.get_ref().is_tls());
    assert_eq!(recv(&mut ws).await, "welcome to hubbub chat");
    let join = format!(r#"{{"type":"room.join","payload":{{"room":"{room}"}}}}"#);
    send(&mut ws, &join).await;
    assert_eq!(recv(&mut ws).await, format!("joined room: {room}"));
    let message =
        format!(r#"{{"type":"chat.message","payload":{{"room":"{room}","text":"over TLS"}}}}"#);
    send(&mut ws, &message).await;
    assert_eq!(recv(&mut ws).await, format!("room {room}: over TLS"));
    ws
}

/// The listening line names https:// and wss://, never http:// or ws://.
fn assert_tls_line(server: &Running) {
    let line = &server.listening;
    assert!(
        line.contains("https://") && line.contains("wss://"),
        "{line}"
    );
    assert!(
        !line.contains("http://") && !line.contains(" ws://"),
        "{line}"
    );
}

#[test]
fn chat_on_two_ports_over_tls() {
    each_runtime(|| {
        let dir = temp_dir("chat-tls-two");
        let pki = TestPki::new("chat-two");
        let server = chat(&dir, &pki.server("server"), "0", "0");
        assert_tls_line(&server);
        let [http, ws] = server.ports()[..] else {
            panic!("{}", server.listening)
        };
        let health = https(http, &pki.ca, HEALTH);
        assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
        assert!(
            health.ends_with(r#"{"ok":true,"service":"websocket-chat"}"#),
            "{health}"
        );
        plaintext_refused(http);
        plaintext_refused(ws);
        runtime().block_on(async {
            let mut a = chat_session(ws, &pki.ca, "lobby").await;
            let refused = hubbub_tokio::connect(format!("ws://127.0.0.1:{ws}/")).await;
            assert!(refused.is_err());
            send(&mut a, "ping").await;
            assert_eq!(recv(&mut a).await, "pong");
            a.close(hubbub_core::CloseCode::NORMAL, "").await.unwrap();
        });
        assert!(server.terminate().success());
    });
}

#[test]
fn chat_on_one_shared_port_over_tls_reloads_on_sighup() {
    each_runtime(|| {
        let dir = temp_dir("chat-tls-shared");
        let (old_ca, new_ca) = (TestPki::new("chat-old"), TestPki::new("chat-new"));
        let files = old_ca.server("server");
        let port = free_port();
        let server = chat(&dir, &files, &port, &port);
        assert_tls_line(&server);
        assert!(server.listening.contains("one shared port"));
        let port: u16 = port.parse().unwrap();
        let health = https(port, &old_ca.ca, HEALTH);
        assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
        plaintext_refused(port);
        runtime().block_on(async {
            let mut before = chat_session(port, &old_ca.ca, "general").await;

            // Renewed files, from another CA; SIGHUP.
            let renewed = new_ca.server("server");
            std::fs::copy(&renewed.cert, &files.cert).unwrap();
            std::fs::copy(&renewed.key, &files.key).unwrap();
            server.signal("HUP");
            server.wait_for_line("reloaded", |l| {
                l == "chat: SIGHUP: TLS certificate reloaded"
            });
            // The connection opened before goes on.
            send(&mut before, "ping").await;
            assert_eq!(recv(&mut before).await, "pong");
            // New ones get the new certificate.
            let old = wss(&format!("wss://127.0.0.1:{port}/"), &old_ca.ca).await;
            assert!(matches!(old, Err(Error::Tls(_))), "{:?}", old.err());
            let mut after = chat_session(port, &new_ca.ca, "general").await;
            assert_eq!(recv(&mut before).await, "room general: over TLS");
            let health = https(port, &new_ca.ca, HEALTH);
            assert!(health.starts_with("HTTP/1.1 200 "), "{health}");

            // A bad file on SIGHUP: a warning naming it, the new one stays.
            std::fs::write(&files.cert, "not a certificate\n").unwrap();
            server.signal("HUP");
            server.wait_for_stderr("TLS certificate not reloaded");
            assert!(
                server.stderr().contains(path(&files.cert)),
                "{}",
                server.stderr()
            );
            let mut again = chat_session(port, &new_ca.ca, "other").await;
            for ws in [&mut before, &mut after, &mut again] {
                send(ws, "ping").await;
                assert_eq!(recv(ws).await, "pong");
            }
        });
        assert!(server.terminate().success());
    });
}

#[test]
fn one_tls_key_alone_or_a_missing_file_exits_2_naming_it() {
    let dir = temp_dir("chat-tls-bad");
    let pki = TestPki::new("chat-bad");
    let files = pki.server("server");
    let store = dir.join("chat.db");
    let store = ("STORE_PATH", path(&store));
    for (program, env, named) in [
        (CHAT, ("TLS_CERT_PATH", path(&files.cert)), "TLS_KEY_PATH"),
        (CHAT, ("TLS_KEY_PATH", path(&files.key)), "TLS_CERT_PATH"),
        (EVENTS, ("TLS_CERT_PATH", path(&files.cert)), "TLS_KEY_PATH"),
        (
            ROOM_CHAT,
            ("TLS_KEY_PATH", path(&files.key)),
            "TLS_CERT_PATH",
        ),
    ] {
        let (code, _, stderr) = run_to_end(program, &[], Some(&dir), &[env, store]);
        assert_eq!(code, Some(2), "{program}: {stderr}");
        assert!(stderr.contains(named), "{program}: {stderr}");
    }
    let missing = dir.join("missing.pem");
    let (code, _, stderr) = run_to_end(
        CHAT,
        &[],
        Some(&dir),
        &[
            ("TLS_CERT_PATH", path(&missing)),
            ("TLS_KEY_PATH", path(&files.key)),
            store,
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(path(&missing)), "{stderr}");
    // Stopped before the history was opened.
    assert!(!dir.join("chat.db").exists());
}

#[test]
fn events_and_room_chat_over_wss() {
    each_runtime(|| {
        let dir = temp_dir("events-tls");
        let pki = TestPki::new("events");
        let files = pki.server("server");
        let tls = [
            ("TLS_CERT_PATH", path(&files.cert)),
            ("TLS_KEY_PATH", path(&files.key)),
        ];
        let env = [
            ("WEBSOCKET_HOST", "127.0.0.1"),
            ("WEBSOCKET_PORT", "0"),
            tls[0],
            tls[1],
        ];
        let events = start(EVENTS, &[], Some(&dir), &env);
        let room_chat = start(ROOM_CHAT, &["0"], Some(&dir), &tls);
        for server in [&events, &room_chat] {
            assert!(server.listening.contains("wss://"), "{}", server.listening);
            assert!(!server.listening.contains("ws://"), "{}", server.listening);
        }
        runtime().block_on(async {
            let url = format!("wss://127.0.0.1:{}/", events.ports()[0]);
            let mut ws = wss(&url, &pki.ca).await.unwrap();
            assert!(recv(&mut ws).await.contains("system.connected"));
            send(&mut ws, r#"{"type":"app.ping","payload":{}}"#).await;
            let pong: serde_json::Value = serde_json::from_str(&recv(&mut ws).await).unwrap();
            assert_eq!(pong["type"], "app.pong");

            let url = format!("wss://127.0.0.1:{}/chat", room_chat.ports()[0]);
            let mut ws = wss(&url, &pki.ca).await.unwrap();
            send(&mut ws, "hello over TLS").await;
            let echoed = recv(&mut ws).await;
            assert!(echoed.ends_with(": hello over TLS"), "{echoed}");
            assert!(hubbub_tokio::connect(url.replace("wss://", "ws://"))
                .await
                .is_err());
        });
        assert!(events.terminate().success());
        assert!(room_chat.terminate().success());
    });
}

/// The ALPN protocol a TLS handshake with the server on `port` chooses
/// when the client offers `h2` and `http/1.1`.
fn alpn_chosen(port: u16, ca: &Path) -> Option<Vec<u8>> {
    let mut config = std::sync::Arc::unwrap_or_clone(client_config_with_ca_file(ca).unwrap());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    // Bounded: each round trip moves the handshake on or fails.
    for _ in 0..10 {
        if !conn.is_handshaking() {
            break;
        }
        conn.complete_io(&mut tcp).unwrap();
    }
    assert!(!conn.is_handshaking(), "the TLS handshake did not finish");
    conn.alpn_protocol().map(<[u8]>::to_vec)
}

#[test]
fn http2_is_offered_under_tls_unless_turned_off() {
    let dir = temp_dir("chat-tls-h2");
    let pki = TestPki::new("chat-h2");
    let files = pki.server("server");
    let tls = [
        ("TLS_CERT_PATH", path(&files.cert)),
        ("TLS_KEY_PATH", path(&files.key)),
    ];
    // chat on one shared port and on two, events and room-chat: h2.
    let port = free_port();
    let shared = chat(&dir, &files, &port, &port);
    let two = chat(&dir, &files, "0", "0");
    let ws_env = [("WEBSOCKET_HOST", "127.0.0.1"), ("WEBSOCKET_PORT", "0")];
    let events = start(
        EVENTS,
        &[],
        Some(&dir),
        &[ws_env[0], ws_env[1], tls[0], tls[1]],
    );
    let room_chat = start(ROOM_CHAT, &["0"], Some(&dir), &tls);
    let mut ports = shared.ports();
    ports.extend(two.ports());
    ports.extend(events.ports());
    ports.extend(room_chat.ports());
    for port in ports {
        assert_eq!(alpn_chosen(port, &pki.ca).as_deref(), Some(&b"h2"[..]));
    }
    // HTTP2=off: http/1.1 only, and the routes answer over it.
    let store = dir.join("off.db");
    let off = start(
        CHAT,
        &[],
        Some(&dir),
        &[
            ("SERVER_HOST", "127.0.0.1"),
            ("WEBSOCKET_HOST", "127.0.0.1"),
            ("SERVER_PORT", "0"),
            ("WEBSOCKET_PORT", "0"),
            ("STORE_PATH", path(&store)),
            tls[0],
            tls[1],
            ("HTTP2", "off"),
        ],
    );
    for port in off.ports() {
        let chosen = alpn_chosen(port, &pki.ca);
        assert_eq!(chosen.as_deref(), Some(&b"http/1.1"[..]));
    }
    let health = https(off.ports()[0], &pki.ca, HEALTH);
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
    for server in [shared, two, events, room_chat, off] {
        assert!(server.terminate().success());
    }
}

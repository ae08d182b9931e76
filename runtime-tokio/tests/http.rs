//! HTTP beside the WebSocket, over real sockets: routes and statuses,
//! keep-alive, pipelining, limits, static files, long polling and the
//! bridge, metrics.

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    sync::mpsc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use hubbub_tokio::{
    http::{HttpApp, HttpAppBuilder, HttpTimeouts, Limits, LongPollConfig, Response, StaticFiles},
    Config, Envelope, Hub, HubBuilder, HubServer,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A server on a shared port (HTTP and WebSocket), on its own thread.
fn start(
    hub: HubBuilder,
    app: impl FnOnce(HttpAppBuilder) -> HttpAppBuilder + Send + 'static,
) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let hub = hub.build();
            let app = app(HttpApp::builder(hub.clone())).build();
            let server = HubServer::bind("127.0.0.1:0", hub, Config::default().into())
                .await
                .unwrap()
                .with_http(app);
            tx.send(server.local_addr().unwrap()).unwrap();
            let _handle = server.start().unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv_timeout(WAIT).unwrap()
}

/// A hub with long polling whose WebSocket clients join the room they send
/// and broadcast `room_text` into it.
fn chat_hub(config: LongPollConfig) -> HubBuilder {
    Hub::builder()
        .long_polling(config)
        .on_message(|session, text| {
            let hub = session.hub().unwrap();
            if let Some(room) = text.strip_prefix("join ") {
                hub.join(session, room);
                let _ = session.send_text("joined");
            } else if let Some((room, text)) = text.split_once(": ") {
                hub.room_text(room, text, None);
            }
        })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// Read one response (bodies sized by Content-Length; none for HEAD/304).
fn read_answer(stream: &mut TcpStream, head_only: bool) -> Answer {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("response head");
        assert_eq!(
            n,
            1,
            "connection closed inside a head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
        assert!(head.len() < 64 << 10);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = answer
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    if !head_only && status != 304 {
        answer.body = vec![0; len];
        stream.read_exact(&mut answer.body).unwrap();
    }
    answer
}

fn request(addr: SocketAddr, raw: &str) -> Answer {
    let mut stream = connect(addr);
    stream.write_all(raw.as_bytes()).unwrap();
    read_answer(&mut stream, raw.starts_with("HEAD"))
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The server closed the connection (EOF within the wait).
fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "unexpected bytes: {}",
        String::from_utf8_lossy(&rest)
    );
}

fn metric(addr: SocketAddr, line_start: &str) -> u64 {
    let text = get(addr, "/metrics").text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

fn plain() -> SocketAddr {
    start(
        Hub::builder().long_polling(LongPollConfig::default()),
        |app| {
            app.service_name("test-service")
                .get("/hello", |req| {
                    Response::text(format!(
                        "hi {}",
                        req.query_param("name").unwrap_or_default()
                    ))
                })
                .post("/echo", |req| {
                    Response::new(200).with_body("application/octet-stream", req.body.clone())
                })
        },
    )
}

#[test]
fn built_in_and_user_routes_and_their_statuses() {
    let addr = plain();
    let health = get(addr, "/api/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(
        health.json(),
        json!({"ok": true, "service": "test-service"})
    );
    let hello = get(addr, "/hello?name=a%20b");
    assert_eq!((hello.status, hello.text().as_str()), (200, "hi a b"));
    assert_eq!(post(addr, "/echo", "xyz").text(), "xyz");
    let openapi = get(addr, "/openapi.json").json();
    assert_eq!(openapi["openapi"], "3.0.3");
    for path in [
        "/api/health",
        "/metrics",
        "/ws/poll",
        "/ws/send",
        "/hello",
        "/echo",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} missing");
    }
    assert!(openapi["paths"]["/ws/send"]["post"].is_object());
    let missing = get(addr, "/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.text().starts_with("404 Not Found"));
    let wrong = post(addr, "/api/health", "");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert_eq!(get(addr, "/ws/send").header("allow"), Some("POST"));
    assert_eq!(get(addr, "/echo").header("allow"), Some("POST"));
    let head = request(addr, "HEAD /api/health HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("36"));
    let metrics = get(addr, "/metrics");
    assert!(
        metrics
            .text()
            .contains("# TYPE hubbub_http_requests counter"),
        "{}",
        metrics.text()
    );
    assert!(
        metrics.text().contains("hubbub_lp_sessions_active"),
        "{}",
        metrics.text()
    );
}

#[test]
fn keep_alive_pipelining_and_connection_close() {
    let addr = plain();
    let mut stream = connect(addr);
    // Three pipelined requests in one write; answers come in order.
    stream
        .write_all(b"GET /hello?name=1 HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n22GET /hello?name=3 HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut stream, false).text(), "hi 1");
    assert_eq!(read_answer(&mut stream, false).text(), "22");
    assert_eq!(read_answer(&mut stream, false).text(), "hi 3");
    // Still open: a fourth, sent byte by byte.
    for byte in b"GET /hello?name=4 HTTP/1.1\r\nConnection: close\r\n\r\n" {
        stream.write_all(&[*byte]).unwrap();
    }
    let last = read_answer(&mut stream, false);
    assert_eq!(last.text(), "hi 4");
    assert_eq!(last.header("connection"), Some("close"));
    assert_closed(&mut stream);
    // HTTP/1.0 closes unless asked to keep alive.
    let mut old = connect(addr);
    old.write_all(b"GET /api/health HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut old, false).status, 200);
    assert_closed(&mut old);
    let mut kept = connect(addr);
    kept.write_all(b"GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut kept, false).header("connection"), None);
    kept.write_all(b"GET /api/health HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut kept, false).status, 200);
}

#[test]
fn bad_requests_are_refused_and_closed() {
    let addr = start(
        Hub::builder().long_polling(LongPollConfig::default()),
        |app| {
            app.limits(Limits {
                max_body: 100,
                ..Limits::default()
            })
        },
    );
    let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    let big_body = format!(
        "POST /ws/send HTTP/1.1\r\nContent-Length: 101\r\n\r\n{}",
        "a".repeat(101)
    );
    let cases = [
        ("GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(), 400),
        ("BLAH\r\n\r\n".to_owned(), 400),
        (
            "POST /ws/send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned(),
            501,
        ),
        (big_body, 413),
        (big_head, 431),
    ];
    for (raw, status) in cases {
        let mut stream = connect(addr);
        stream.write_all(raw.as_bytes()).unwrap();
        let answer = read_answer(&mut stream, false);
        assert_eq!(answer.status, status, "{}", &raw[..20]);
        assert_eq!(answer.header("connection"), Some("close"));
        assert_closed(&mut stream);
    }
    assert!(metric(addr, "hubbub_http_requests_total{status=\"400\"}") >= 2);
    assert_eq!(
        metric(addr, "hubbub_http_requests_total{status=\"501\"}"),
        1
    );
}

#[test]
fn idle_and_slow_requests_time_out() {
    let addr = start(Hub::builder(), |app| {
        app.timeouts(HttpTimeouts {
            idle: Duration::from_millis(200),
            request: Duration::from_millis(300),
        })
    });
    let mut idle = connect(addr);
    idle.write_all(b"GET /api/health HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut idle, false).status, 200);
    let start = Instant::now();
    assert_closed(&mut idle);
    assert!(start.elapsed() < WAIT);
    let mut slow = connect(addr);
    slow.write_all(b"GET /api/health HTTP/1.1\r\n").unwrap();
    assert_eq!(read_answer(&mut slow, false).status, 408);
    assert_closed(&mut slow);
    // A head trickled in byte by byte, each byte well within the timeout,
    // is still cut off: the deadline runs from the request's first byte.
    let mut trickle = connect(addr);
    trickle.write_all(b"GET /api/health HTTP/1.1\r\n").unwrap();
    let sender = trickle.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut sender = sender;
        for _ in 0..100 {
            if sender.write_all(b"X-Slow: 1\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(read_answer(&mut trickle, false).status, 408);
    writer.join().unwrap();
}

fn public_dir() -> PathBuf {
    let base = std::env::temp_dir().join(format!(
        "hubbub-http-test-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let root = base.join("public");
    fs::create_dir_all(root.join("css")).unwrap();
    fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    fs::write(root.join("css/site.css"), "body{}").unwrap();
    fs::write(base.join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape.txt")).unwrap();
    root
}

#[test]
fn static_files_with_validators_and_no_escape() {
    let root = public_dir();
    let files = StaticFiles::new(&root).cache_control("max-age=60");
    let addr = start(Hub::builder(), move |app| app.static_files(files));
    let index = get(addr, "/");
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>home</h1>");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("max-age=60"));
    assert_eq!(get(addr, "/index.html").text(), "<h1>home</h1>");
    let css = get(addr, "/css/site.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let etag = css.header("etag").unwrap().to_owned();
    let modified = css.header("last-modified").unwrap().to_owned();
    let again = request(
        addr,
        &format!("GET /css/site.css HTTP/1.1\r\nIf-None-Match: {etag}\r\n\r\n"),
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let since = request(
        addr,
        &format!("GET /css/site.css HTTP/1.1\r\nIf-Modified-Since: {modified}\r\n\r\n"),
    );
    assert_eq!(since.status, 304);
    let stale = request(
        addr,
        "GET /css/site.css HTTP/1.1\r\nIf-None-Match: \"other\"\r\n\r\n",
    );
    assert_eq!(stale.status, 200);
    let head = request(addr, "HEAD /css/site.css HTTP/1.1\r\n\r\n");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("6"))
    );
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/css/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/index.html%00",
        "/escape.txt",
        "/missing.txt",
    ] {
        assert_eq!(get(addr, path).status, 404, "{path}");
    }
    assert_eq!(post(addr, "/index.html", "").status, 404);
}

#[test]
fn spa_fallback_and_mount() {
    let root = public_dir();
    let files = StaticFiles::new(&root).mount("/app").spa_fallback(true);
    let addr = start(Hub::builder(), move |app| app.static_files(files));
    assert_eq!(get(addr, "/app/css/site.css").text(), "body{}");
    assert_eq!(get(addr, "/app/some/route").text(), "<h1>home</h1>");
    assert_eq!(get(addr, "/app").text(), "<h1>home</h1>");
    assert_eq!(get(addr, "/css/site.css").status, 404);
    assert_eq!(get(addr, "/application").status, 404);
}

#[test]
fn send_validates_and_queues_for_polls() {
    let addr = start(chat_hub(LongPollConfig::default()), |app| {
        app.limits(Limits {
            max_body: 1024,
            ..Limits::default()
        })
    });
    for (body, message) in [
        ("{not json", "invalid JSON"),
        ("[1,2]", "body must be a JSON object"),
        ("{\"payload\":{}}", "missing type"),
        ("{\"type\":\"\"}", "missing type"),
    ] {
        let answer = post(addr, "/ws/send", body);
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["error"], message);
    }
    assert_eq!(post(addr, "/ws/send", &"x".repeat(1025)).status, 413);
    let queued = post(
        addr,
        "/ws/send",
        r#"{"type":"note","room":"r1","payload":{"n":1}}"#,
    );
    assert_eq!(queued.status, 202);
    assert_eq!(
        queued.json(),
        json!({"session_id": "room:r1", "status": "queued"})
    );
    let direct = post(addr, "/ws/send", r#"{"type":"dm","session_id":"me"}"#);
    assert_eq!(
        direct.json(),
        json!({"session_id": "me", "status": "queued"})
    );
    // HEAD answers like GET without taking anything.
    let head = request(addr, "HEAD /ws/poll?session_id=room:r1 HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    let polled = get(addr, "/ws/poll?session_id=room:r1&timeout=0").json();
    let messages = polled.as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        (m["type"].as_str(), m["room"].as_str(), m["kind"].as_str()),
        (Some("note"), Some("r1"), Some("event"))
    );
    assert_eq!(m["payload"], json!({"n": 1}));
    assert!(m["id"].is_string() && m["ts"].is_number());
    assert_eq!(
        get(addr, "/ws/poll?session_id=me&timeout=0").json()[0]["type"],
        "dm"
    );
    // Nothing left: an empty array after the timeout.
    assert_eq!(
        get(addr, "/ws/poll?session_id=room:r1&timeout=0").json(),
        json!([])
    );
    assert_eq!(get(addr, "/ws/poll?max=0").status, 400);
    assert_eq!(get(addr, "/ws/poll?timeout=abc").status, 400);
}

#[test]
fn long_polling_is_off_without_the_bridge() {
    let addr = start(Hub::builder(), |app| app);
    assert_eq!(get(addr, "/ws/poll").status, 503);
    assert_eq!(post(addr, "/ws/send", r#"{"type":"x"}"#).status, 503);
}

#[test]
fn a_held_poll_is_released_by_a_websocket_broadcast_on_the_shared_port() {
    let addr = start(chat_hub(LongPollConfig::default()), |app| app);
    let polls: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let answer = get(addr, "/ws/poll?session_id=room:lobby&timeout=20");
                (answer.json(), start.elapsed())
            })
        })
        .collect();
    // Let the polls be held (they find nothing buffered).
    let deadline = Instant::now() + WAIT;
    while metric(addr, "hubbub_lp_polls_total") < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .unwrap();
        ws.send("join lobby".into()).await.unwrap();
        let joined = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(joined.into_text().unwrap().as_str(), "joined");
        // One broadcast releases every held poll of the room's session.
        ws.send("lobby: hello".into()).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), "hello");
    });
    for poll in polls {
        let (answer, elapsed) = poll.join().unwrap();
        assert!(elapsed < Duration::from_secs(15), "held until the timeout");
        let messages = answer.as_array().unwrap();
        assert_eq!(messages.len(), 1, "{answer}");
        let m = &messages[0];
        assert_eq!(m["type"], "message");
        assert_eq!(m["room"], "lobby");
        assert_eq!(m["payload"], json!({"text": "hello"}));
    }
    assert_eq!(metric(addr, "hubbub_lp_messages_enqueued_total"), 1);
    assert_eq!(metric(addr, "hubbub_lp_messages_drained_total"), 3);
}

#[test]
fn an_http_send_reaches_websocket_room_members() {
    let addr = start(chat_hub(LongPollConfig::default()), |app| app);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .unwrap();
        ws.send("join r".into()).await.unwrap();
        let joined = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(joined.into_text().unwrap().as_str(), "joined");
        let answer = tokio::task::spawn_blocking(move || {
            post(
                addr,
                "/ws/send",
                r#"{"type":"note","room":"r","payload":{"x":1}}"#,
            )
        })
        .await
        .unwrap();
        assert_eq!(answer.status, 202);
        let got = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let envelope = Envelope::parse(got.to_text().unwrap()).unwrap();
        assert_eq!(envelope.event_type, "note");
        assert_eq!(envelope.payload, json!({"x": 1}));
    });
}

#[test]
fn poll_sessions_expire_after_their_ttl() {
    let config = LongPollConfig {
        ttl: Duration::from_millis(200),
        ..LongPollConfig::default()
    };
    let addr = start(chat_hub(config), |app| app);
    assert_eq!(
        post(addr, "/ws/send", r#"{"type":"a","room":"x"}"#).status,
        202
    );
    assert_eq!(metric(addr, "hubbub_lp_sessions_active"), 1);
    assert_eq!(metric(addr, "hubbub_lp_messages_buffered"), 1);
    let deadline = Instant::now() + WAIT;
    while metric(addr, "hubbub_lp_sessions_active") > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(addr, "hubbub_lp_sessions_active"), 0);
    assert_eq!(
        metric(addr, "hubbub_lp_messages_dropped_total{reason=\"expired\"}"),
        1
    );
    assert_eq!(
        get(addr, "/ws/poll?session_id=room:x&timeout=0").json(),
        json!([])
    );
}

#[test]
fn metrics_move_with_traffic() {
    let addr = start(chat_hub(LongPollConfig::default()), |app| app);
    let before = metric(addr, "hubbub_http_requests_total{status=\"404\"}");
    get(addr, "/nope");
    get(addr, "/nope");
    assert_eq!(
        metric(addr, "hubbub_http_requests_total{status=\"404\"}"),
        before + 2
    );
    // An upgrade the core refuses (wrong version) on the shared port.
    let refused = request(
        addr,
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(refused.status, 426);
    let rejected = "hubbub_ws_handshakes_rejected_total{status=\"426\"}";
    let deadline = Instant::now() + WAIT;
    while metric(addr, rejected) < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric(addr, rejected), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .unwrap();
        ws.send("join m".into()).await.unwrap();
        tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = tokio::task::spawn_blocking(move || get(addr, "/metrics").text())
            .await
            .unwrap();
        assert!(text.contains("hubbub_ws_connections_total 1\n"), "{text}");
        assert!(text.contains("hubbub_ws_connections_active 1\n"), "{text}");
        assert!(
            text.contains("hubbub_ws_messages_in_total{kind=\"text\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("hubbub_ws_rooms 1\n"), "{text}");
        assert!(text.contains("hubbub_ws_room_members 1\n"), "{text}");
        let normal = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        ws.close(Some(normal)).await.unwrap();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
    });
    let deadline = Instant::now() + WAIT;
    while metric(addr, "hubbub_ws_closes_total{code=\"1000\"}") < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric(addr, "hubbub_ws_connections_active"), 0);
    assert_eq!(metric(addr, "hubbub_ws_closes_total{code=\"1000\"}"), 1);
}

#[test]
fn expect_continue_and_date() {
    let addr = plain();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .unwrap();
    let interim = read_answer(&mut stream, true);
    assert_eq!(interim.status, 100);
    stream.write_all(b"abc").unwrap();
    let answer = read_answer(&mut stream, false);
    assert_eq!((answer.status, answer.text().as_str()), (200, "abc"));
    let date = answer.header("date").expect("a Date header");
    assert!(httpdate_like(date), "{date}");
}

/// `Fri, 27 Nov 2026 14:49:10 GMT`
fn httpdate_like(date: &str) -> bool {
    date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b','
}

#[test]
fn shutdown_answers_held_polls() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let hub = Hub::builder()
            .long_polling(LongPollConfig::default())
            .build();
        let app = HttpApp::builder(hub.clone()).build();
        let server = HubServer::bind("127.0.0.1:0", hub.clone(), Config::default().into())
            .await
            .unwrap()
            .with_http(app);
        let addr = server.local_addr().unwrap();
        let handle = server.start().unwrap();
        let poll = tokio::task::spawn_blocking(move || get(addr, "/ws/poll?timeout=30"));
        let deadline = Instant::now() + WAIT;
        while hub.metrics().lp_polls_total.get() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(hub.metrics().lp_polls_total.get(), 1);
        handle.shutdown(Duration::from_secs(5)).await;
        let answer = poll.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json(), json!([]));
    });
}

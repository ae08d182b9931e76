//! HTTP beside the WebSocket, over real sockets, on every runtime: routes
//! and statuses, keep-alive, pipelining, limits, static files, long polling
//! and the bridge, metrics, shutdown. The requests come from a blocking std
//! client (common/http.rs) on tokio's blocking pool, so the server's runtime
//! is never blocked by them.

mod common;

use std::{
    fs,
    io::Write,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{
    bounded,
    http::{assert_closed, connect, get, metric, post, read_answer, request, WAIT},
};
use futures_util::{SinkExt, StreamExt};
use hubbub_http::{
    HttpApp, HttpAppBuilder, HttpTimeouts, Limits, LongPollConfig, Response, StaticFiles,
};
use hubbub_tests::prelude::*;
use serde_json::json;

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server of runtime `R` on a shared port (HTTP and WebSocket); it runs
/// until the handle is dropped.
async fn start<R: Rt>(
    hub: HubBuilder,
    app: impl FnOnce(HttpAppBuilder) -> HttpAppBuilder,
) -> (SocketAddr, HubHandle) {
    let hub = hub.build();
    let app = app(HttpApp::builder(hub.clone())).build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Config::default().into())
        .await
        .unwrap();
    let handle = app.start_shared(server).unwrap();
    (handle.local_addr(), handle)
}

/// [`start`], with long polling.
async fn start_lp<R: Rt>(
    hub: HubBuilder,
    config: LongPollConfig,
    app: impl FnOnce(HttpAppBuilder) -> HttpAppBuilder,
) -> (SocketAddr, HubHandle) {
    start::<R>(hub, move |builder| app(builder).long_polling(config)).await
}

/// Run blocking client code on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    bounded("blocking client", tokio::task::spawn_blocking(work))
        .await
        .unwrap()
}

/// A hub with long polling whose WebSocket clients join the room they send
/// and broadcast `room_text` into it.
fn chat_hub() -> HubBuilder {
    Hub::builder().on_message(|session, text| {
        let hub = session.hub().unwrap();
        if let Some(room) = text.strip_prefix("join ") {
            hub.join(session, room);
            session
                .send_text("joined")
                .expect("reply to an open session");
        } else if let Some((room, text)) = text.split_once(": ") {
            hub.room_text(room, text, None);
        }
    })
}

/// A WebSocket peer that has joined `room` (and seen "joined").
async fn join(addr: SocketAddr, room: &str) -> Peer {
    let (mut ws, _) = bounded(
        "connect",
        tokio_tungstenite::connect_async(format!("ws://{addr}/")),
    )
    .await
    .unwrap();
    ws.send(format!("join {room}").into()).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "joined");
    ws
}

/// The next message's text.
async fn next_text(ws: &mut Peer) -> String {
    let message = bounded("a message", ws.next()).await.unwrap().unwrap();
    message.into_text().unwrap().as_str().to_owned()
}

/// Poll `/metrics` until `line_start`'s value reaches `at_least` (bounded).
async fn wait_metric(addr: SocketAddr, line_start: &'static str, at_least: u64) -> u64 {
    blocking(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = metric(addr, line_start);
            if value >= at_least || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
}

fn plain_app(app: HttpAppBuilder) -> HttpAppBuilder {
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
}

async fn plain<R: Rt>() -> (SocketAddr, HubHandle) {
    start_lp::<R>(Hub::builder(), LongPollConfig::default(), plain_app).await
}

async fn built_in_and_user_routes_and_their_statuses<R: Rt>() {
    let (addr, _server) = plain::<R>().await;
    blocking(move || {
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
    })
    .await;
}

async fn keep_alive_pipelining_and_connection_close<R: Rt>() {
    let (addr, _server) = plain::<R>().await;
    blocking(move || {
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
    })
    .await;
}

async fn bad_requests_are_refused_and_closed<R: Rt>() {
    let (addr, _server) = start_lp::<R>(Hub::builder(), LongPollConfig::default(), |app| {
        app.limits(Limits {
            max_body: 100,
            ..Limits::default()
        })
    })
    .await;
    blocking(move || {
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
    })
    .await;
}

async fn idle_and_slow_requests_time_out<R: Rt>() {
    let (addr, _server) = start::<R>(Hub::builder(), |app| {
        app.timeouts(HttpTimeouts {
            idle: Duration::from_millis(200),
            request: Duration::from_millis(300),
        })
    })
    .await;
    blocking(move || {
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
    })
    .await;
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

async fn static_files_with_validators_and_no_escape<R: Rt>() {
    let root = public_dir();
    let files = StaticFiles::new(&root).cache_control("max-age=60");
    let (addr, _server) = start::<R>(Hub::builder(), move |app| app.static_files(files)).await;
    blocking(move || {
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
    })
    .await;
}

/// A client pipelines requests for a 256 KiB file (and numbered small
/// answers between them) and does not read: the server answers only what
/// the socket takes plus a bounded batch, serves other connections
/// meanwhile, and delivers every answer in order once the client reads.
async fn pipelined_answers_wait_for_the_client_to_read<R: Rt>() {
    const PAIRS: usize = 100;
    const BIG: usize = 256 << 10;
    let root = public_dir();
    fs::write(root.join("big.bin"), vec![b'b'; BIG]).unwrap();
    let files = StaticFiles::new(&root);
    let (addr, _server) = start::<R>(Hub::builder(), move |app| {
        plain_app(app).static_files(files)
    })
    .await;
    blocking(move || {
        let ok = "hubbub_http_requests_total{status=\"200\"}";
        let before = metric(addr, ok);
        let mut pipelined = connect(addr);
        let mut requests = String::new();
        for i in 0..PAIRS {
            requests.push_str(&format!(
                "GET /big.bin HTTP/1.1\r\n\r\nGET /hello?name={i} HTTP/1.1\r\n\r\n"
            ));
        }
        pipelined.write_all(requests.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // Another connection is served meanwhile.
        assert_eq!(get(addr, "/api/health").status, 200);
        // Answered so far: what the socket buffers took (a few MiB at
        // most), not every pipelined request (+2: the first /metrics and
        // the health check).
        let answered = metric(addr, ok) - before - 2;
        assert!(
            answered < PAIRS as u64,
            "{answered} of {} pipelined requests answered for a client that does not read",
            2 * PAIRS
        );
        for i in 0..PAIRS {
            let big = read_answer(&mut pipelined, false);
            assert_eq!((big.status, big.body.len()), (200, BIG), "answer {i}");
            assert_eq!(read_answer(&mut pipelined, false).text(), format!("hi {i}"));
        }
    })
    .await;
}

async fn spa_fallback_and_mount<R: Rt>() {
    let root = public_dir();
    let files = StaticFiles::new(&root).mount("/app").spa_fallback(true);
    let (addr, _server) = start::<R>(Hub::builder(), move |app| app.static_files(files)).await;
    blocking(move || {
        assert_eq!(get(addr, "/app/css/site.css").text(), "body{}");
        assert_eq!(get(addr, "/app/some/route").text(), "<h1>home</h1>");
        assert_eq!(get(addr, "/app").text(), "<h1>home</h1>");
        assert_eq!(get(addr, "/css/site.css").status, 404);
        assert_eq!(get(addr, "/application").status, 404);
    })
    .await;
}

async fn send_validates_and_queues_for_polls<R: Rt>() {
    let (addr, _server) = start_lp::<R>(chat_hub(), LongPollConfig::default(), |app| {
        app.limits(Limits {
            max_body: 1024,
            ..Limits::default()
        })
    })
    .await;
    blocking(move || {
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
    })
    .await;
}

async fn long_polling_is_off_without_the_bridge<R: Rt>() {
    let (addr, _server) = start::<R>(Hub::builder(), |app| app).await;
    blocking(move || {
        assert_eq!(get(addr, "/ws/poll").status, 503);
        assert_eq!(post(addr, "/ws/send", r#"{"type":"x"}"#).status, 503);
    })
    .await;
}

async fn a_held_poll_is_released_by_a_websocket_broadcast_on_the_shared_port<R: Rt>() {
    let (addr, _server) = start_lp::<R>(chat_hub(), LongPollConfig::default(), |app| app).await;
    let polls: Vec<_> = (0..3)
        .map(|_| {
            tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let answer = get(addr, "/ws/poll?session_id=room:lobby&timeout=20");
                (answer.json(), start.elapsed())
            })
        })
        .collect();
    // Let the polls be held (they find nothing buffered).
    assert_eq!(wait_metric(addr, "hubbub_lp_polls_total", 3).await, 3);
    let mut ws = join(addr, "lobby").await;
    // One broadcast releases every held poll of the room's session.
    ws.send("lobby: hello".into()).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hello");
    for poll in polls {
        let (answer, elapsed) = bounded("a poll", poll).await.unwrap();
        assert!(elapsed < Duration::from_secs(15), "held until the timeout");
        let messages = answer.as_array().unwrap();
        assert_eq!(messages.len(), 1, "{answer}");
        let m = &messages[0];
        assert_eq!(m["type"], "message");
        assert_eq!(m["room"], "lobby");
        assert_eq!(m["payload"], json!({"text": "hello"}));
    }
    blocking(move || {
        assert_eq!(metric(addr, "hubbub_lp_messages_enqueued_total"), 1);
        assert_eq!(metric(addr, "hubbub_lp_messages_drained_total"), 3);
    })
    .await;
}

async fn an_http_send_reaches_websocket_room_members<R: Rt>() {
    let (addr, _server) = start_lp::<R>(chat_hub(), LongPollConfig::default(), |app| app).await;
    let mut ws = join(addr, "r").await;
    let answer = blocking(move || {
        post(
            addr,
            "/ws/send",
            r#"{"type":"note","room":"r","payload":{"x":1}}"#,
        )
    })
    .await;
    assert_eq!(answer.status, 202);
    let envelope = Envelope::parse(&next_text(&mut ws).await).unwrap();
    assert_eq!(envelope.event_type, "note");
    assert_eq!(envelope.payload, json!({"x": 1}));
}

async fn poll_sessions_expire_after_their_ttl<R: Rt>() {
    let config = LongPollConfig {
        ttl: Duration::from_millis(200),
        ..LongPollConfig::default()
    };
    let (addr, _server) = start_lp::<R>(chat_hub(), config, |app| app).await;
    blocking(move || {
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
    })
    .await;
}

/// A full long-poll session table locks no one out: a new session takes
/// an idle one's place, room sessions stay open, and one address's private
/// sessions are bounded (429).
async fn a_full_session_table_locks_no_one_out<R: Rt>() {
    let config = LongPollConfig {
        max_sessions: 20,
        max_sessions_per_ip: 10,
        ..LongPollConfig::default()
    };
    let (addr, _server) = start_lp::<R>(chat_hub(), config, |app| app).await;
    blocking(move || {
        let poll = |session: &str| get(addr, &format!("/ws/poll?session_id={session}&timeout=0"));
        // Shared room sessions fill the table.
        for i in 0..20 {
            assert_eq!(poll(&format!("room:r{i}")).status, 200, "room:r{i}");
        }
        assert_eq!(metric(addr, "hubbub_lp_sessions_active"), 20);
        // New sessions still get in: each takes the oldest idle one's place.
        for i in 0..10 {
            assert_eq!(poll(&format!("s{i}")).status, 200, "s{i}");
        }
        assert_eq!(poll("room:general").status, 200);
        assert_eq!(metric(addr, "hubbub_lp_sessions_evicted_total"), 11);
        // This address has its 10 private sessions: one more is 429.
        let refused = poll("s10");
        assert_eq!(refused.status, 429);
        assert!(refused.text().contains("too many long-poll sessions"));
        let sent = post(addr, "/ws/send", r#"{"type":"t","session_id":"s11"}"#);
        assert_eq!(sent.status, 429);
        // ...but its existing ones and the rooms still work.
        assert_eq!(poll("s3").status, 200);
        assert_eq!(poll("room:lobby").status, 200);
    })
    .await;
}

async fn metrics_move_with_traffic<R: Rt>() {
    let (addr, _server) = start_lp::<R>(chat_hub(), LongPollConfig::default(), |app| app).await;
    blocking(move || {
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
    })
    .await;
    let rejected = "hubbub_ws_handshakes_rejected_total{status=\"426\"}";
    assert_eq!(wait_metric(addr, rejected, 1).await, 1);
    let mut ws = join(addr, "m").await;
    let text = blocking(move || get(addr, "/metrics").text()).await;
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
    let closes = "hubbub_ws_closes_total{code=\"1000\"}";
    assert_eq!(wait_metric(addr, closes, 1).await, 1);
    blocking(move || assert_eq!(metric(addr, "hubbub_ws_connections_active"), 0)).await;
    // A code the peer picks is counted under its range, not as itself.
    let mut ws = join(addr, "m").await;
    let private = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 4321.into(),
        reason: "".into(),
    };
    ws.close(Some(private)).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
    let bucket = "hubbub_ws_closes_total{code=\"4xxx\"}";
    assert_eq!(wait_metric(addr, bucket, 1).await, 1);
    let text = blocking(move || get(addr, "/metrics").text()).await;
    assert!(!text.contains("code=\"4321\""), "{text}");
}

async fn expect_continue_and_date<R: Rt>() {
    let (addr, _server) = plain::<R>().await;
    blocking(move || {
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
    })
    .await;
}

/// `Fri, 27 Nov 2026 14:49:10 GMT`
fn httpdate_like(date: &str) -> bool {
    date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b','
}

async fn shutdown_answers_held_polls<R: Rt>() {
    let hub = Hub::builder().build();
    let app = HttpApp::builder(hub.clone())
        .long_polling(LongPollConfig::default())
        .build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Config::default().into())
        .await
        .unwrap();
    let server = app.start_shared(server).unwrap();
    let addr = server.local_addr();
    let poll = tokio::task::spawn_blocking(move || get(addr, "/ws/poll?timeout=30"));
    let deadline = Instant::now() + WAIT;
    while app.metrics().lp_polls_total.get() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.metrics().lp_polls_total.get(), 1);
    bounded("shutdown", server.shutdown(Duration::from_secs(5))).await;
    let answer = bounded("the held poll", poll).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!([]));
}

/// An HTTP-only port ([`hubbub_http::serve_http`]) beside a hub: routes are
/// served, an upgrade request is an ordinary request (no WebSocket here),
/// and dropping the serving future ends its connections.
async fn an_http_only_port_serves_routes_and_no_upgrade<R: Rt>() {
    let hub = Hub::builder().build();
    let app = plain_app(HttpApp::builder(hub))
        .long_polling(LongPollConfig::default())
        .build();
    let listener = R::bind(([127, 0, 0, 1], 0).into(), hubbub_ws::LISTEN_BACKLOG).unwrap();
    let addr = R::local_addr(&listener).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    R::spawn(async move {
        let serve = std::pin::pin!(hubbub_http::serve_http::<R>(listener, app));
        futures_util::future::select(serve, stopped).await;
    });
    let kept = blocking(move || {
        assert_eq!(get(addr, "/hello?name=x").text(), "hi x");
        assert_eq!(get(addr, "/api/health").status, 200);
        let upgrade = request(
            addr,
            "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        assert_eq!(upgrade.status, 404);
        // A kept-alive connection, answered once, stays open...
        let mut kept = connect(addr);
        kept.write_all(b"GET /api/health HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_answer(&mut kept, false).status, 200);
        kept
    })
    .await;
    // ...until the server stops.
    drop(stop);
    blocking(move || {
        let mut kept = kept;
        assert_closed(&mut kept);
    })
    .await;
}

/// An independent HTTP client library (`ureq`) against the routes: it must
/// parse our answers, keep its pooled connection alive across requests and
/// see the statuses the routes promise.
async fn an_independent_client_sees_every_route<R: Rt>() {
    let root = public_dir();
    let files = StaticFiles::new(&root);
    let (addr, _server) = start_lp::<R>(chat_hub(), LongPollConfig::default(), move |app| {
        app.service_name("ureq-test")
            .static_files(files)
            .get("/api/hello", |req| {
                Response::json(&json!({ "hello": req.query_param("name") }))
            })
    })
    .await;
    blocking(move || {
        let base = format!("http://{addr}");
        let agent = ureq::AgentBuilder::new().timeout(WAIT).build();
        let text = |path: &str| {
            let answer = agent.get(&format!("{base}{path}")).call().unwrap();
            (answer.status(), answer.into_string().unwrap())
        };
        let (status, health) = text("/api/health");
        assert_eq!(status, 200);
        let health: serde_json::Value = serde_json::from_str(&health).unwrap();
        assert_eq!(health, json!({"ok": true, "service": "ureq-test"}));
        assert_eq!(
            text("/api/hello?name=ureq"),
            (200, r#"{"hello":"ureq"}"#.into())
        );
        assert_eq!(text("/"), (200, "<h1>home</h1>".into()));
        assert_eq!(text("/css/site.css").1, "body{}");
        let openapi: serde_json::Value = serde_json::from_str(&text("/openapi.json").1).unwrap();
        assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
        assert!(text("/metrics").1.contains("hubbub_http_requests_total"));
        match agent.get(&format!("{base}/nowhere")).call() {
            Err(ureq::Error::Status(404, _)) => {}
            other => panic!("/nowhere: {other:?}"),
        }
        match agent.get(&format!("{base}/../secret.txt")).call() {
            Err(ureq::Error::Status(400 | 403 | 404, _)) => {}
            other => panic!("traversal: {other:?}"),
        }
        let sent = agent
            .post(&format!("{base}/ws/send"))
            .set("Content-Type", "application/json")
            .send_string(r#"{"type":"note","room":"lobby","payload":{"n":1}}"#)
            .unwrap();
        assert_eq!(sent.status(), 202);
        match agent
            .post(&format!("{base}/ws/send"))
            .send_string(r#"{"payload":{}}"#)
        {
            Err(ureq::Error::Status(400, answer)) => {
                assert!(answer.into_string().unwrap().contains("type"));
            }
            other => panic!("missing type: {other:?}"),
        }
        let polled = text("/ws/poll?session_id=room:lobby&timeout=1");
        assert_eq!(polled.0, 200);
        let polled: serde_json::Value = serde_json::from_str(&polled.1).unwrap();
        assert_eq!(polled[0]["type"], "note", "{polled}");
        assert_eq!(polled[0]["payload"]["n"], 1, "{polled}");
    })
    .await;
}

hubbub_tests::cross_runtime!(
    an_independent_client_sees_every_route,
    built_in_and_user_routes_and_their_statuses,
    keep_alive_pipelining_and_connection_close,
    bad_requests_are_refused_and_closed,
    idle_and_slow_requests_time_out,
    static_files_with_validators_and_no_escape,
    spa_fallback_and_mount,
    pipelined_answers_wait_for_the_client_to_read,
    send_validates_and_queues_for_polls,
    long_polling_is_off_without_the_bridge,
    a_held_poll_is_released_by_a_websocket_broadcast_on_the_shared_port,
    an_http_send_reaches_websocket_room_members,
    poll_sessions_expire_after_their_ttl,
    a_full_session_table_locks_no_one_out,
    metrics_move_with_traffic,
    expect_continue_and_date,
    shutdown_answers_held_polls,
    an_http_only_port_serves_routes_and_no_upgrade,
);

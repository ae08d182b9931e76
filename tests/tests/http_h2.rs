//! hubbub-http's routes over HTTP/2 on every runtime: a shared TLS port
//! whose acceptor offers ALPN `h2` (`HttpApp::start_shared`) answers the
//! routes, static files, `/metrics`, long polls and refusals over HTTP/2
//! as over HTTP/1.1, opens hub sessions by extended CONNECT (RFC 8441),
//! and still serves HTTP/1.1; an HTTP-only port (`serve_http_with`) serves
//! its routes over HTTP/2 too. The client is the `h2` crate's, on tokio,
//! over hubbub's TLS client stream.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use common::{bounded, certs::TestPki, http::https_request};
use h2::{client::SendRequest, RecvStream};
use hubbub_http::{
    HttpApp, HttpAppBuilder, HttpRateLimits, HttpTimeouts, Limits, LongPollConfig, Response,
    StaticFiles,
};
use hubbub_tests::prelude::*;
use hubbub_ws::{
    h2::{offer_h2, TransportIo},
    tls::{client_config_with_ca_file, rustls::pki_types::ServerName, TlsAcceptor},
};
use serde_json::{json, Value};

/// The size of the static file: well past a stream's 64 KiB window.
const BIG: usize = 1 << 20;

/// A shared TLS port of runtime `R` whose ALPN offers `h2` and
/// `http/1.1`, serving `app` (built on `hub`) and the hub's WebSockets.
struct Served {
    handle: HubHandle,
    /// The CA, and the static files in its directory (removed with it).
    pki: TestPki,
}

impl Served {
    async fn start<R: Rt>(hub: Hub, app: impl FnOnce(HttpAppBuilder) -> HttpAppBuilder) -> Self {
        let pki = TestPki::new("http-h2");
        let files = pki.server("server");
        let dir = pki.ca.parent().unwrap().join("public");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), big_file()).unwrap();
        let app = app(HttpApp::builder(hub.clone()).static_files(StaticFiles::new(&dir))).build();
        let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap();
        acceptor.reload(offer_h2(&acceptor.config()));
        let server = HubServer::<R>::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
            .await
            .unwrap()
            .tls(acceptor);
        let handle = app.start_shared(server).unwrap();
        Served { handle, pki }
    }

    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// An HTTP/2 client connection (TLS, ALPN `h2`).
    async fn client(&self) -> SendRequest<Bytes> {
        h2_client(self.addr(), &self.pki.ca).await
    }
}

/// An HTTP/2 client connection to `addr` (TLS trusting `ca`, ALPN `h2`).
async fn h2_client(addr: SocketAddr, ca: &std::path::Path) -> SendRequest<Bytes> {
    let mut config = Arc::unwrap_or_clone(client_config_with_ca_file(ca).unwrap());
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls =
        hubbub_tokio::tls::TlsStream::client(hubbub_tokio::Io(tcp), Arc::new(config), name)
            .unwrap();
    bounded("TLS handshake", tls.handshake()).await.unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
    let (client, connection) = bounded("h2 handshake", h2::client::handshake(TransportIo(tls)))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The static file's bytes: a pattern that shows any byte out of place.
fn big_file() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// An answer over HTTP/2: its head and whole body.
struct Answer {
    head: http::response::Parts,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send `method path` with `body` on `client`; the whole answer.
async fn request(
    client: &SendRequest<Bytes>,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Answer {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    if let Some(body) = &body {
        builder = builder.header("content-length", body.len());
    }
    let request = builder.body(()).unwrap();
    let mut ready = bounded("ready", client.clone().ready()).await.unwrap();
    let empty = body.as_ref().is_none_or(Bytes::is_empty);
    let (response, mut send) = ready.send_request(request, empty).unwrap();
    if let Some(body) = body {
        // Within the windows the server grants.
        let mut body = body;
        while !body.is_empty() {
            send.reserve_capacity(body.len());
            let granted = bounded(
                "capacity",
                std::future::poll_fn(|cx| send.poll_capacity(cx)),
            )
            .await;
            let Some(Ok(granted)) = granted else { break };
            let piece = body.split_to(granted.min(body.len()));
            if send.send_data(piece, body.is_empty()).is_err() {
                break;
            }
        }
    }
    let response = bounded("response", response).await.unwrap();
    let (head, recv) = response.into_parts();
    let body = read_body(recv).await;
    Answer { head, body }
}

/// Every byte of a response body, releasing its window as it is read.
async fn read_body(mut recv: RecvStream) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..100_000 {
        match bounded("body", recv.data()).await {
            Some(chunk) => {
                let chunk = chunk.unwrap();
                let _ = recv.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
            None => return body,
        }
    }
    panic!("a body without end");
}

/// The value of the metric line starting with `name ` in `/metrics`.
fn metric(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn static_files_and_routes_over_h2<R: Rt>() {
    let served = Served::start::<R>(Hub::builder().build(), |app| {
        app.get("/hello", |req| {
            Response::text(format!(
                "hi {}",
                req.query_param("name").unwrap_or_default()
            ))
            .with_header("Connection", "close")
            .with_header("Keep-Alive", "timeout=5")
        })
        .long_polling(LongPollConfig::default())
        .limits(Limits {
            max_body: 1024,
            ..Limits::default()
        })
    })
    .await;
    let client = served.client().await;
    // A file much larger than a stream's window arrives whole.
    let file = request(&client, "GET", "/big.bin", None).await;
    assert_eq!(file.head.status, 200);
    assert_eq!(file.header("content-length"), Some("1048576"));
    assert_eq!(file.body.len(), BIG);
    assert!(file.body == big_file(), "the file's bytes differ");
    // Twice at once on one connection.
    let (one, two) = tokio::join!(
        request(&client, "GET", "/big.bin", None),
        request(&client, "GET", "/big.bin", None)
    );
    assert!(one.body == file.body && two.body == file.body);
    let head = request(&client, "HEAD", "/big.bin", None).await;
    assert_eq!(head.head.status, 200);
    assert_eq!(head.header("content-length"), Some("1048576"));
    assert!(head.body.is_empty());
    // Routes, their statuses and headers (minus the connection-specific).
    let health = request(&client, "GET", "/api/health", None).await;
    assert_eq!(health.head.status, 200);
    assert_eq!(health.json()["ok"], true);
    assert!(health.header("date").is_some());
    let hello = request(&client, "GET", "/hello?name=h2", None).await;
    assert_eq!(hello.text(), "hi h2");
    assert_eq!(hello.header("connection"), None);
    assert_eq!(hello.header("keep-alive"), None);
    let missing = request(&client, "GET", "/missing", None).await;
    assert_eq!(missing.head.status, 404);
    let wrong = request(&client, "POST", "/api/health", Some(Bytes::new())).await;
    assert_eq!(wrong.head.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    let poll_post = request(&client, "DELETE", "/ws/send", None).await;
    assert_eq!(poll_post.head.status, 405);
    assert_eq!(poll_post.header("allow"), Some("POST"));
    // The body limit: 413, by its length or by what arrives.
    let large = Bytes::from(vec![b'x'; 1025]);
    let refused = request(&client, "POST", "/ws/send", Some(large)).await;
    assert_eq!(refused.head.status, 413);
    let larger = Bytes::from(vec![b'x'; 200_000]);
    let refused = request(&client, "POST", "/ws/send", Some(larger)).await;
    assert_eq!(refused.head.status, 413);
    let bad = request(&client, "POST", "/ws/send", Some(Bytes::from("[1]"))).await;
    assert_eq!(bad.head.status, 400);
    assert_eq!(bad.json()["error"], "body must be a JSON object");
    // The connection still serves after the refusals.
    let again = request(&client, "GET", "/api/health", None).await;
    assert_eq!(again.head.status, 200);
    // HTTP/1.1 on the same port.
    let (addr, ca) = (served.addr(), served.pki.ca.clone());
    let answer = bounded(
        "HTTP/1.1",
        tokio::task::spawn_blocking(move || {
            https_request(
                addr,
                &ca,
                "GET /hello?name=one HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
        }),
    )
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("hi one"), "{answer}");
    // Every answer was counted by status, over either protocol.
    let metrics = request(&client, "GET", "/metrics", None).await.text();
    // The file thrice, HEAD, health, hello, health again, HTTP/1.1 hello.
    let ok = metric(&metrics, "hubbub_http_requests_total{status=\"200\"}");
    assert_eq!(ok, Some(8), "{metrics}");
    let too_large = metric(&metrics, "hubbub_http_requests_total{status=\"413\"}");
    assert_eq!(too_large, Some(2), "{metrics}");
    served.handle.shutdown(Duration::from_secs(1)).await;
}

async fn websocket_over_h2_is_counted_in_metrics<R: Rt>() {
    let hub = Hub::builder()
        .on_message(|session, text| {
            let _ = session.send_text(format!("echo: {text}"));
        })
        .build();
    let served = Served::start::<R>(hub.clone(), |app| app).await;
    let client = served.client().await;
    let mut client = bounded("ready", client.ready()).await.unwrap();
    for _ in 0..200 {
        if client.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        client = bounded("ready", client.ready()).await.unwrap();
    }
    assert!(client.is_extended_connect_protocol_enabled());
    let mut connect = http::Request::builder()
        .method("CONNECT")
        .uri("https://localhost/")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    connect
        .extensions_mut()
        .insert(h2::ext::Protocol::from("websocket"));
    let (response, mut send) = client.send_request(connect, false).unwrap();
    let response = bounded("CONNECT", response).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut recv = response.into_body();
    // A masked text frame "hi"; the echo comes back unmasked.
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x82];
    frame.extend_from_slice(&key);
    frame.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    send.send_data(Bytes::from(frame), false).unwrap();
    let echoed = bounded("echo", recv.data()).await.unwrap().unwrap();
    assert_eq!(&echoed[..], b"\x81\x08echo: hi");
    // The routes share the connection with the WebSocket.
    let metrics = request(&client, "GET", "/metrics", None).await;
    assert_eq!(metrics.head.status, 200);
    let text = metrics.text();
    assert_eq!(
        metric(&text, "hubbub_ws_connections_h2_total"),
        Some(1),
        "{text}"
    );
    assert_eq!(
        metric(&text, "hubbub_ws_connections_active"),
        Some(1),
        "{text}"
    );
    // A WebSocket over HTTP/1.1 on the same port is not counted as h2.
    let url = format!("wss://localhost:{}/", served.addr().port());
    let config = ClientConfig::default()
        .trust_pem_ca(&served.pki.ca)
        .unwrap();
    let mut ws = bounded("connect", connect_with::<R>(url, &config))
        .await
        .unwrap();
    ws.send(Message::text("one")).await.unwrap();
    let echo = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text("echo: one"));
    let text = request(&client, "GET", "/metrics", None).await.text();
    assert_eq!(
        metric(&text, "hubbub_ws_connections_total"),
        Some(2),
        "{text}"
    );
    assert_eq!(
        metric(&text, "hubbub_ws_connections_h2_total"),
        Some(1),
        "{text}"
    );
    served.handle.shutdown(Duration::from_secs(1)).await;
}

async fn long_polls_over_h2_are_held_answered_and_cancelled<R: Rt>() {
    let served = Served::start::<R>(Hub::builder().build(), |app| {
        app.long_polling(LongPollConfig::default())
            .rate_limits(HttpRateLimits {
                polls_per_ip: 1,
                ..HttpRateLimits::default()
            })
    })
    .await;
    let client = served.client().await;
    // A poll held, then answered by a send on the same connection.
    let poll = tokio::spawn({
        let client = client.clone();
        async move { request(&client, "GET", "/ws/poll?session_id=me&timeout=20", None).await }
    });
    wait_polls(&client, 1).await;
    // It holds this address's one place: another poll is refused.
    let second = request(&client, "GET", "/ws/poll?session_id=other&timeout=0", None).await;
    assert_eq!(second.head.status, 429);
    let body = Bytes::from(r#"{"type":"dm","session_id":"me","payload":{"n":1}}"#);
    let sent = request(&client, "POST", "/ws/send", Some(body)).await;
    assert_eq!(sent.head.status, 202);
    assert_eq!(sent.json(), json!({"session_id": "me", "status": "queued"}));
    let answer = bounded("the poll", poll).await.unwrap();
    assert_eq!(answer.head.status, 200);
    let messages = answer.json();
    assert_eq!(messages[0]["type"], "dm", "{messages}");
    assert_eq!(messages[0]["payload"], json!({"n": 1}));
    // A poll whose stream the client resets is cancelled: its place is
    // free again.
    let request_head = http::Request::builder()
        .uri("https://localhost/ws/poll?session_id=me&timeout=20")
        .body(())
        .unwrap();
    let mut ready = bounded("ready", client.clone().ready()).await.unwrap();
    let (response, mut send) = ready.send_request(request_head, true).unwrap();
    wait_polls(&client, 2).await;
    let second = request(&client, "GET", "/ws/poll?session_id=other&timeout=0", None).await;
    assert_eq!(second.head.status, 429);
    send.send_reset(h2::Reason::CANCEL);
    drop(response);
    let mut freed = false;
    for _ in 0..400 {
        let next = request(&client, "GET", "/ws/poll?session_id=other&timeout=0", None).await;
        if next.head.status == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(freed, "the reset poll still holds its place");
    served.handle.shutdown(Duration::from_secs(1)).await;
}

/// Wait (bounded) until `/metrics` counts `polls` long polls held.
async fn wait_polls(client: &SendRequest<Bytes>, polls: u64) {
    for _ in 0..400 {
        let metrics = request(client, "GET", "/metrics", None).await.text();
        if metric(&metrics, "hubbub_lp_polls_total") == Some(polls) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{polls} polls were not held");
}

async fn shutdown_answers_a_held_poll_and_sends_goaway<R: Rt>() {
    let served = Served::start::<R>(Hub::builder().build(), |app| {
        app.long_polling(LongPollConfig::default())
    })
    .await;
    let client = served.client().await;
    let poll = tokio::spawn({
        let client = client.clone();
        async move { request(&client, "GET", "/ws/poll?session_id=me&timeout=20", None).await }
    });
    wait_polls(&client, 1).await;
    let started = std::time::Instant::now();
    bounded("shutdown", served.handle.shutdown(Duration::from_secs(5))).await;
    let answer = bounded("the poll", poll).await.unwrap();
    assert_eq!(answer.head.status, 200);
    assert_eq!(answer.json(), json!([]));
    assert!(started.elapsed() < Duration::from_secs(5));
    // No new request is taken on the connection (GOAWAY).
    let mut ready = bounded("ready", client.clone().ready()).await;
    if let Ok(ready) = ready.as_mut() {
        let late = http::Request::builder()
            .uri("https://localhost/api/health")
            .body(())
            .unwrap();
        if let Ok((response, _)) = ready.send_request(late, true) {
            assert!(bounded("late", response).await.is_err());
        }
    }
}

async fn an_http_only_port_over_h2_and_a_stalled_body<R: Rt>() {
    let pki = TestPki::new("http-only-h2");
    let files = pki.server("server");
    let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap();
    acceptor.reload(offer_h2(&acceptor.config()));
    let app = HttpApp::builder(Hub::builder().build())
        .timeouts(HttpTimeouts {
            request: Duration::from_millis(300),
            ..HttpTimeouts::default()
        })
        .post("/echo", |req| {
            Response::new(200).with_body("application/octet-stream", req.body.clone())
        })
        .build();
    let (listener, addr) = listen::<R>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    R::spawn(async move {
        let serve = std::pin::pin!(hubbub_http::serve_http_with::<R>(
            listener,
            app,
            Some(acceptor)
        ));
        futures_util::future::select(serve, stopped).await;
    });
    let client = h2_client(addr, &pki.ca).await;
    let health = request(&client, "GET", "/api/health", None).await;
    assert_eq!(health.head.status, 200);
    let echo = request(&client, "POST", "/echo", Some(Bytes::from("body"))).await;
    assert_eq!(echo.text(), "body");
    // A body that stops half way: 408 after the request timeout.
    let head = http::Request::builder()
        .method("POST")
        .uri("https://localhost/echo")
        .header("content-length", "10")
        .body(())
        .unwrap();
    let mut ready = bounded("ready", client.clone().ready()).await.unwrap();
    let (response, mut send) = ready.send_request(head, false).unwrap();
    send.send_data(Bytes::from("12345"), false).unwrap();
    let started = std::time::Instant::now();
    let response = bounded("408", response).await.unwrap();
    assert_eq!(response.status(), 408);
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The connection still serves.
    let again = request(&client, "GET", "/api/health", None).await;
    assert_eq!(again.head.status, 200);
    drop(stop);
}

hubbub_tests::cross_runtime!(
    an_http_only_port_over_h2_and_a_stalled_body,
    static_files_and_routes_over_h2,
    websocket_over_h2_is_counted_in_metrics,
    long_polls_over_h2_are_held_answered_and_cancelled,
    shutdown_answers_a_held_poll_and_sends_goaway,
);

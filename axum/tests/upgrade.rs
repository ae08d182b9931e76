//! `hubbub-axum` in an axum router beside ordinary routes, driven by
//! tokio-tungstenite: hub sessions in a room, the hub's rejections as HTTP
//! answers, the plain socket's subprotocol choice, and the extractor's own
//! refusals.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, response::Response, routing::get, Router};
use futures_util::{SinkExt, StreamExt};
use hubbub_axum::{Accept, Hub, Reject, WebSocketUpgrade};
use tokio::time::timeout;
use tokio_tungstenite::{
    tungstenite::{self, client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

const WAIT: Duration = Duration::from_secs(10);

type Peer = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub at `/rooms`: every session joins `lobby`; a text message goes to
/// the whole room as `PEER-KNOWN PROTOCOL: TEXT`. It refuses the origin
/// `https://evil.example` (403) and speaks `chat.v1` when offered.
fn lobby(closes: Arc<Mutex<Vec<u16>>>) -> Hub {
    Hub::builder()
        .path("/rooms")
        .on_upgrade(|request| {
            if request.origin() == Some("https://evil.example") {
                return Err(Reject::forbidden().with_body("Unknown origin."));
            }
            let chat = request.protocols().iter().any(|p| p == "chat.v1");
            Ok(if chat {
                Accept::new().protocol("chat.v1")
            } else {
                Accept::new()
            })
        })
        .on_open(|session| {
            if let Some(hub) = session.hub() {
                hub.join(session, "lobby");
            }
        })
        .on_message(|session, text| {
            if let Some(hub) = session.hub() {
                let line = format!(
                    "{} {}: {text}",
                    session.peer_addr().is_some(),
                    session.protocol().unwrap_or("-")
                );
                hub.room_text("lobby", &line, None);
            }
        })
        .on_close(move |_, code, _| closes.lock().unwrap().push(code.0))
        .build()
}

async fn rooms(State(hub): State<Hub>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade_hub(hub)
}

/// Echo with the subprotocol `b` or `a`, whichever the client offers first.
async fn plain(ws: WebSocketUpgrade) -> Response {
    ws.protocols(["b", "a"])
        .on_upgrade(|mut socket| async move {
            while let Some(Ok(message)) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        })
}

/// Accepts with a subprotocol no client offers: an application mistake.
async fn unoffered(ws: WebSocketUpgrade) -> Response {
    ws.accept(Accept::new().protocol("never-offered"))
        .on_upgrade(|_| async {})
}

/// Serve `hub`'s app on a free port, with the peers' addresses.
async fn serve(hub: Hub) -> SocketAddr {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/rooms", get(rooms))
        .route("/elsewhere", get(rooms))
        .route("/plain", get(plain))
        .route("/unoffered", get(unoffered))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Connect to `url` with extra request headers; the peer and the answered
/// subprotocol, or the error.
async fn connect(
    url: &str,
    headers: &[(&'static str, &'static str)],
) -> Result<(Peer, Option<String>), tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    let (peer, response) = timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer in time")?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((peer, protocol))
}

/// The next text message.
async fn next_text(peer: &mut Peer) -> String {
    loop {
        match timeout(WAIT, peer.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Wait until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    timeout(WAIT, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within {WAIT:?}: {what}"));
}

/// The status and body of a refused upgrade.
fn refused(error: tungstenite::Error) -> (u16, String) {
    match error {
        tungstenite::Error::Http(response) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn hub_sessions_share_a_room_beside_ordinary_routes() {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let hub = lobby(closes.clone());
    let addr = serve(hub.clone()).await;

    // The ordinary route answers on the same port.
    let health = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = http_get(health, "/health").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with("ok"), "{body}");

    let url = format!("ws://{addr}/rooms");
    let offer = [("sec-websocket-protocol", "other, chat.v1")];
    let (mut a, protocol) = connect(&url, &offer).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("chat.v1"));
    let (mut b, protocol) = connect(&url, &[]).await.unwrap();
    assert_eq!(protocol, None);
    eventually("both in the lobby", || hub.members("lobby").len() == 2).await;

    a.send(Message::text("hi from a")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "true chat.v1: hi from a");
    assert_eq!(next_text(&mut b).await, "true chat.v1: hi from a");
    b.send(Message::text("hi from b")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "true -: hi from b");
    assert_eq!(next_text(&mut b).await, "true -: hi from b");

    // A broadcast from the application reaches both too.
    assert_eq!(hub.room_text("lobby", "from the app", None), 2);
    assert_eq!(next_text(&mut a).await, "from the app");
    assert_eq!(next_text(&mut b).await, "from the app");

    // A clean close ends the session with its code; the other stays.
    a.close(None).await.unwrap();
    eventually("a's session ended", || hub.session_count() == 1).await;
    assert_eq!(*closes.lock().unwrap(), [1005]);
    assert_eq!(hub.room_text("lobby", "still here", None), 1);
    assert_eq!(next_text(&mut b).await, "still here");
}

#[tokio::test]
async fn the_hubs_rejections_are_the_http_answers() {
    let hub = lobby(Arc::default());
    let addr = serve(hub.clone()).await;

    let error = connect(
        &format!("ws://{addr}/rooms"),
        &[("origin", "https://evil.example")],
    )
    .await
    .expect_err("refused");
    assert_eq!(refused(error), (403, "Unknown origin.".to_owned()));

    // The hub serves /rooms only: its path check answers 404 elsewhere.
    let error = connect(&format!("ws://{addr}/elsewhere"), &[])
        .await
        .expect_err("refused");
    assert_eq!(refused(error).0, 404);

    assert_eq!(hub.session_count(), 0);
    let rejected = hub.metrics().handshakes_rejected.snapshot();
    assert_eq!(rejected.get(&403), Some(&1));
    assert_eq!(rejected.get(&404), Some(&1));
}

#[tokio::test]
async fn a_hub_that_is_shutting_down_closes_new_sessions_with_1001() {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let hub = lobby(closes.clone());
    let addr = serve(hub.clone()).await;
    hub.shutdown();
    let (mut peer, _) = connect(&format!("ws://{addr}/rooms"), &[]).await.unwrap();
    match timeout(WAIT, peer.next()).await.expect("a close in time") {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(hub.session_count(), 0);
    assert!(closes.lock().unwrap().is_empty(), "no session was opened");
}

#[tokio::test]
async fn a_plain_socket_takes_the_clients_first_supported_protocol() {
    let addr = serve(lobby(Arc::default())).await;
    let url = format!("ws://{addr}/plain");
    let offer = [("sec-websocket-protocol", "c, a, b")];
    let (mut peer, protocol) = connect(&url, &offer).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("a"));
    peer.send(Message::text("echo")).await.unwrap();
    assert_eq!(next_text(&mut peer).await, "echo");
    // No match: answered without a subprotocol (raw: tungstenite refuses
    // that answer).
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = http_get_with(
        stream,
        "/plain",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: c\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    assert!(!head.contains("sec-websocket-protocol"), "{head}");

    // An `Accept` with a subprotocol the client did not offer: 500.
    let error = connect(&format!("ws://{addr}/unoffered"), &[])
        .await
        .expect_err("refused");
    let (status, body) = refused(error);
    assert_eq!(status, 500);
    assert!(body.contains("never-offered"), "{body}");
}

#[tokio::test]
async fn a_request_that_is_no_upgrade_is_refused_by_the_extractor() {
    let addr = serve(lobby(Arc::default())).await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let response = http_get(stream, "/plain").await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.ends_with("The request is missing Upgrade: websocket."),
        "{response}"
    );
}

/// A `GET path` that asks to close; the whole response.
async fn http_get(stream: tokio::net::TcpStream, path: &str) -> String {
    http_get_with(stream, path, "Connection: close\r\n").await
}

/// A `GET path` with `headers` (each ending in CRLF); everything read
/// until the server closes (the head only, for an upgrade: the socket is
/// dropped when the test is over).
async fn http_get_with(mut stream: tokio::net::TcpStream, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0; 1024];
    while !response.ends_with(b"\r\n\r\n") || !response.starts_with(b"HTTP/1.1 101") {
        let n = timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(response).unwrap()
}

/// Run the extractor on a request built here (no server: no upgrade
/// handle); the refusal's status and body.
async fn extract(method: &str, version: axum::http::Version) -> (u16, String) {
    use axum::extract::FromRequestParts;
    let request = axum::http::Request::builder()
        .method(method)
        .version(version)
        .uri("/ws")
        .header("host", "x")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let (mut parts, ()) = request.into_parts();
    let rejection = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .expect_err("refused");
    (rejection.0.status(), rejection.0.body().to_owned())
}

#[tokio::test]
async fn the_extractor_needs_get_http_1_1_and_an_upgrade_handle() {
    use axum::http::Version;
    let (status, body) = extract("GET", Version::HTTP_11).await;
    assert_eq!(status, 426);
    assert!(body.contains("cannot be upgraded"), "{body}");
    let (status, body) = extract("POST", Version::HTTP_11).await;
    assert_eq!(status, 405);
    assert!(body.contains("Method POST is not allowed"), "{body}");
    let (status, body) = extract("GET", Version::HTTP_10).await;
    assert_eq!(status, 400);
    assert!(body.contains("HTTP/1.1 is required"), "{body}");
}

/// The hub's limits hold behind axum too: its origin list answers 403
/// naming the origin, and a connection's place under
/// `max_connections_per_ip` is held for the session's life (the peer from
/// `ConnectInfo`) and given back when it ends.
#[tokio::test]
async fn the_hubs_limits_hold_behind_axum() {
    let hub = Hub::builder()
        .path("/rooms")
        .limits(hubbub_hub::HubLimits {
            origins: hubbub_hub::Origins::parse("https://chat.example").unwrap(),
            max_connections_per_ip: 1,
            ..Default::default()
        })
        .build();
    let addr = serve(hub.clone()).await;
    let url = format!("ws://{addr}/rooms");
    let error = connect(&url, &[("origin", "https://evil.example")])
        .await
        .expect_err("refused");
    assert_eq!(
        refused(error),
        (403, "origin not allowed: https://evil.example".to_owned())
    );
    let (mut first, _) = connect(&url, &[("origin", "https://chat.example")])
        .await
        .unwrap();
    eventually("the first session", || hub.session_count() == 1).await;
    let error = connect(&url, &[]).await.expect_err("refused");
    assert_eq!(
        refused(error),
        (
            429,
            "too many connections from 127.0.0.1: at most 1 at once".to_owned()
        )
    );
    first.close(None).await.unwrap();
    while let Some(Ok(_)) = timeout(WAIT, first.next()).await.expect("the end") {}
    eventually("the first session's end", || hub.session_count() == 0).await;
    let mut next = None;
    for _ in 0..100 {
        match connect(&url, &[]).await {
            Ok((peer, _)) => {
                next = Some(peer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(next.is_some(), "the place came back");
    let by_reason = hub.metrics().limits.connections_rejected.snapshot();
    assert_eq!(by_reason.get("origin"), Some(&1));
    assert!(by_reason.get("per_ip").is_some_and(|n| *n >= 1));
}

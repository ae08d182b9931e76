//! The opening handshake over loopback: malformed requests answered with
//! the right HTTP status, the application's decision, subprotocols and
//! headers, and client errors that name the failed step.

mod common;

use std::{sync::Arc, time::Duration};

use common::{bounded, echo, url};
use hubbub_tests::prelude::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

async fn server<R: Rt>(config: Config) -> std::net::SocketAddr {
    let (listener, addr) = listen::<R>();
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = Server::<R>::new(config).decide(|request| match request.path() {
        "/" | "/chat" => {
            let accept =
                Accept::new().header("X-Seen-Token", request.header("x-token").unwrap_or("none"));
            match request.protocols().iter().find(|p| *p == "superchat") {
                Some(protocol) => Ok(accept.protocol(protocol.as_str())),
                None => Ok(accept),
            }
        }
        "/forbidden" => Err(Reject::forbidden()),
        _ => Err(Reject::not_found()),
    });
    tokio::spawn(server.serve(listener, move |ws, _| echo::<R>(ws, tx.clone())));
    addr
}

/// Send `request` on a raw socket and return the response head and body
/// (everything until the server closes).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    bounded("response", stream.read_to_end(&mut response))
        .await
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn upgrade(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

async fn valid_request_gets_101<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&upgrade("GET", "/chat", "Sec-WebSocket-Version: 13\r\n"))
        .await
        .unwrap();
    let mut buf = vec![0; 1024];
    let n = bounded("101", stream.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status(&head), 101, "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

async fn post_is_405<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let response = raw_exchange(
        addr,
        &upgrade("POST", "/chat", "Sec-WebSocket-Version: 13\r\n"),
    )
    .await;
    assert_eq!(status(&response), 405, "{response}");
}

async fn missing_key_is_400<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let request =
        b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Version: 13\r\n\r\n";
    let response = raw_exchange(addr, request).await;
    assert_eq!(status(&response), 400, "{response}");
}

async fn an_upgrade_with_a_body_is_400<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    // The head alone: the server answers before any body byte.
    for (header, named) in [
        ("Content-Length: 5", "(Content-Length)"),
        ("Transfer-Encoding: chunked", "(Transfer-Encoding)"),
    ] {
        let extra = format!("Sec-WebSocket-Version: 13\r\n{header}\r\n");
        let response = raw_exchange(addr, &upgrade("GET", "/chat", &extra)).await;
        assert_eq!(status(&response), 400, "{response}");
        assert!(response.contains("must not carry a body"), "{response}");
        assert!(response.contains(named), "{response}");
    }
}

async fn garbage_is_400<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let response = raw_exchange(addr, b"HELLO THERE\r\n\r\n").await;
    assert_eq!(status(&response), 400, "{response}");
}

async fn other_version_is_426_with_version_13<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let response = raw_exchange(
        addr,
        &upgrade("GET", "/chat", "Sec-WebSocket-Version: 8\r\n"),
    )
    .await;
    assert_eq!(status(&response), 426, "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{response}"
    );
}

async fn oversized_head_is_431<R: Rt>() {
    let addr = server::<R>(Config {
        max_head_size: 4096,
        ..Config::default()
    })
    .await;
    let padding = format!("X-Padding: {}\r\n", "p".repeat(8000));
    let response = raw_exchange(
        addr,
        &upgrade(
            "GET",
            "/chat",
            &format!("Sec-WebSocket-Version: 13\r\n{padding}"),
        ),
    )
    .await;
    assert_eq!(status(&response), 431, "{response}");
}

async fn application_rejections<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    let response = raw_exchange(
        addr,
        &upgrade("GET", "/elsewhere", "Sec-WebSocket-Version: 13\r\n"),
    )
    .await;
    assert_eq!(status(&response), 404, "{response}");
    // Our client reports the status it got.
    let error = connect_with::<R>(&format!("ws://{addr}/forbidden"), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::Status(403))),
        "{error}"
    );
}

async fn subprotocol_and_headers<R: Rt>() {
    let addr = server::<R>(Config::default()).await;
    // Headers and subprotocols go in a request value; the server's 101
    // comes back beside the socket.
    let request = ClientRequest::from_url(&format!("ws://{addr}/chat"))
        .unwrap()
        .protocol("chat")
        .protocol("superchat")
        .header("X-Token", "secret");
    let (ws, response) = bounded("connect", hubbub_ws::connect::<R>(request))
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("superchat"));
    assert_eq!(response.status(), 101);
    assert_eq!(response.protocol(), Some("superchat"));
    assert_eq!(response.header("x-seen-token"), Some("secret"));
    assert!(response.header("sec-websocket-accept").is_some());
    // No subprotocol offered: none chosen.
    let ws = bounded(
        "connect",
        connect_with::<R>(&format!("ws://{addr}/chat"), &ClientConfig::default()),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), None);
}

/// `Server::serve`'s handler gets the upgrade request beside the socket.
async fn the_handler_sees_the_request<R: Rt>() {
    let (listener, addr) = listen::<R>();
    let server = Server::<R>::new(Config::default());
    tokio::spawn(server.serve(listener, |mut ws, request| async move {
        let seen = format!(
            "{} {:?} {:?}",
            request.path(),
            request.query(),
            request.header("x-token")
        );
        ws.send(seen).await.unwrap();
        while let Some(Ok(_)) = ws.recv().await {}
    }));
    let request = ClientRequest::from_url(&format!("ws://{addr}/room/7?since=3"))
        .unwrap()
        .header("X-Token", "t0k");
    let mut ws = bounded(
        "connect",
        connect_with::<R>(request, &ClientConfig::default()),
    )
    .await
    .unwrap();
    let seen = bounded("the handler's message", ws.recv()).await;
    assert!(
        matches!(&seen, Some(Ok(Message::Text(t))) if t == r#"/room/7 Some("since=3") Some("t0k")"#),
        "{seen:?}"
    );
}

async fn decide_sees_the_request_headers<R: Rt>() {
    // The server copies X-Token into X-Seen-Token; a raw client reads it.
    let addr = server::<R>(Config::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&upgrade(
            "GET",
            "/chat",
            "Sec-WebSocket-Version: 13\r\nX-Token: abc123\r\n",
        ))
        .await
        .unwrap();
    let mut buf = vec![0; 1024];
    let n = bounded("101", stream.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(head.contains("x-seen-token: abc123"), "{head}");
}

async fn connect_refused_names_the_connect_step<R: Rt>() {
    // Bind then drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = connect_with::<R>(&format!("ws://127.0.0.1:{port}/"), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    match &error {
        Error::Connect(io) => assert!(
            io.to_string().contains(&format!("127.0.0.1:{port}")),
            "{io}"
        ),
        other => panic!("expected a connect error, got {other}"),
    }
}

async fn unresolvable_host_names_the_dns_step<R: Rt>() {
    let config = ClientConfig {
        dns_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let error = bounded(
        "dns",
        connect_with::<R>("ws://no-such-host.invalid/", &config),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(error, Error::Dns(_) | Error::Timeout(Step::Dns)),
        "{error}"
    );
}

async fn bad_urls_are_refused<R: Rt>() {
    for url in ["http://localhost/", "localhost:80"] {
        let error = connect_with::<R>(url, &ClientConfig::default())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error, Error::Handshake(HandshakeError::InvalidUrl(_))),
            "{url}: {error}"
        );
    }
}

async fn silent_server_times_out_the_handshake<R: Rt>() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let config = ClientConfig {
        config: Arc::new(Config {
            handshake_timeout: Some(Duration::from_millis(200)),
            ..Config::default()
        }),
        ..Default::default()
    };
    let error = bounded("handshake", connect_with::<R>(&url(addr), &config))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, Error::Timeout(Step::Handshake)), "{error}");
    assert_eq!(error.to_string(), "opening handshake timed out");
    hold.abort();
}

/// A server answering every request with `response`.
async fn fake_server(response: &'static str) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0; 4096];
            // Ignored: a fake server answering whatever comes; the client
            // under test may give up and hang up at any point, and what it
            // makes of the answer is asserted on its side.
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    addr
}

async fn client_names_the_failed_response_check<R: Rt>() {
    let addr = fake_server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n").await;
    let error = connect_with::<R>(&url(addr), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::BadAccept)),
        "{error}"
    );

    let addr = fake_server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let error = connect_with::<R>(&url(addr), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::Status(200))),
        "{error}"
    );
}

async fn server_handshake_deadline<R: Rt>() {
    // A client that connects and sends half a request is dropped after the
    // handshake timeout, with nothing but the close of the socket.
    let addr = server::<R>(Config {
        handshake_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    bounded("server gives up", stream.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

hubbub_tests::cross_runtime!(
    valid_request_gets_101,
    post_is_405,
    missing_key_is_400,
    an_upgrade_with_a_body_is_400,
    garbage_is_400,
    other_version_is_426_with_version_13,
    oversized_head_is_431,
    application_rejections,
    subprotocol_and_headers,
    decide_sees_the_request_headers,
    the_handler_sees_the_request,
    connect_refused_names_the_connect_step,
    unresolvable_host_names_the_dns_step,
    bad_urls_are_refused,
    silent_server_times_out_the_handshake,
    client_names_the_failed_response_check,
    server_handshake_deadline,
);

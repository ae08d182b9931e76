//! The opening handshake over loopback: malformed requests answered with
//! the right HTTP status, the application's decision, subprotocols and
//! headers, and client errors that name the failed step.

mod common;

use std::{sync::Arc, time::Duration};

use common::{bounded, echo, url};
use hubbub_tokio::{
    connect_with, Accept, ClientConfig, Config, Error, HandshakeError, Reject, Server, Step,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

async fn server(config: Config) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = Server::new(config).decide(|request| match request.path() {
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
    tokio::spawn(server.serve(listener, move |ws| echo(ws, tx.clone())));
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

#[tokio::test]
async fn valid_request_gets_101() {
    let addr = server(Config::default()).await;
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

#[tokio::test]
async fn post_is_405() {
    let addr = server(Config::default()).await;
    let response = raw_exchange(
        addr,
        &upgrade("POST", "/chat", "Sec-WebSocket-Version: 13\r\n"),
    )
    .await;
    assert_eq!(status(&response), 405, "{response}");
}

#[tokio::test]
async fn missing_key_is_400() {
    let addr = server(Config::default()).await;
    let request =
        b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Version: 13\r\n\r\n";
    let response = raw_exchange(addr, request).await;
    assert_eq!(status(&response), 400, "{response}");
}

#[tokio::test]
async fn garbage_is_400() {
    let addr = server(Config::default()).await;
    let response = raw_exchange(addr, b"HELLO THERE\r\n\r\n").await;
    assert_eq!(status(&response), 400, "{response}");
}

#[tokio::test]
async fn other_version_is_426_with_version_13() {
    let addr = server(Config::default()).await;
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

#[tokio::test]
async fn oversized_head_is_431() {
    let addr = server(Config {
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

#[tokio::test]
async fn application_rejections() {
    let addr = server(Config::default()).await;
    let response = raw_exchange(
        addr,
        &upgrade("GET", "/elsewhere", "Sec-WebSocket-Version: 13\r\n"),
    )
    .await;
    assert_eq!(status(&response), 404, "{response}");
    // Our client reports the status it got.
    let error = connect_with(&format!("ws://{addr}/forbidden"), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::Status(403))),
        "{error}"
    );
}

#[tokio::test]
async fn subprotocol_and_headers() {
    let addr = server(Config::default()).await;
    let config = ClientConfig {
        protocols: vec!["chat".into(), "superchat".into()],
        headers: vec![("X-Token".into(), "secret".into())],
        ..Default::default()
    };
    let ws = bounded(
        "connect",
        connect_with(&format!("ws://{addr}/chat"), &config),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), Some("superchat"));
    // No subprotocol offered: none chosen.
    let ws = bounded(
        "connect",
        connect_with(&format!("ws://{addr}/chat"), &ClientConfig::default()),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), None);
}

#[tokio::test]
async fn decide_sees_the_request_headers() {
    // The server copies X-Token into X-Seen-Token; a raw client reads it.
    let addr = server(Config::default()).await;
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

#[tokio::test]
async fn connect_refused_names_the_connect_step() {
    // Bind then drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = connect_with(&format!("ws://127.0.0.1:{port}/"), &ClientConfig::default())
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

#[tokio::test]
async fn unresolvable_host_names_the_dns_step() {
    let config = ClientConfig {
        dns_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let error = bounded("dns", connect_with("ws://no-such-host.invalid/", &config))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Dns(_) | Error::Timeout(Step::Dns)),
        "{error}"
    );
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["http://localhost/", "wss://localhost/", "localhost:80"] {
        let error = connect_with(url, &ClientConfig::default())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error, Error::Handshake(HandshakeError::InvalidUrl(_))),
            "{url}: {error}"
        );
    }
}

#[tokio::test]
async fn silent_server_times_out_the_handshake() {
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
    let error = bounded("handshake", connect_with(&url(addr), &config))
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
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test]
async fn client_names_the_failed_response_check() {
    let addr = fake_server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n").await;
    let error = connect_with(&url(addr), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::BadAccept)),
        "{error}"
    );

    let addr = fake_server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let error = connect_with(&url(addr), &ClientConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::Status(200))),
        "{error}"
    );
}

#[tokio::test]
async fn server_handshake_deadline() {
    // A client that connects and sends half a request is dropped after the
    // handshake timeout, with nothing but the close of the socket.
    let addr = server(Config {
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

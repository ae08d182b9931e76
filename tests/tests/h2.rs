//! WebSockets over HTTP/2 (RFC 8441, feature `h2`) on every runtime: hub
//! sessions and the plain `Server`'s WebSockets on extended CONNECT
//! streams, driven by the `h2` crate's *client* on tokio (an HTTP/2 peer
//! independent of the server code under test) writing and reading RFC 6455
//! frames by hand; and, over TLS with ALPN, the Python `h2` package
//! (`python_h2_client`, run by scripts/interop-python.sh).
//!
//! `cargo test -p hubbub-tests --test h2`

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use common::{bounded, certs::TestPki, until};
use h2::{client::SendRequest, RecvStream, SendStream};
use hubbub_core::DeflateConfig;
use hubbub_hub::{http2, Auth, JwtAuth, TokenSource};
use hubbub_tests::prelude::*;
use hubbub_ws::{
    h2::{serve_h2_websockets, H2Config, H2WebSocket, TransportIo},
    tls::TlsAcceptor,
};
use tokio::net::TcpStream;

/// A hub that echoes text on `/chat`, picks subprotocol `chat` when
/// offered, and counts closed sessions.
fn echo_hub(closed: Arc<AtomicUsize>) -> Hub {
    Hub::builder()
        .path("/chat")
        .on_upgrade(|request| {
            Ok(match request.protocols().iter().any(|p| p == "chat") {
                true => Accept::new().protocol("chat"),
                false => Accept::new(),
            })
        })
        .on_message(|session, text| {
            let _ = session.send_text(format!("echo: {text}"));
        })
        .on_close(move |_, _, _| {
            closed.fetch_add(1, Ordering::SeqCst);
        })
        .build()
}

fn config() -> Arc<Config> {
    Arc::new(Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    })
}

/// A plain-TCP HTTP/2 server (prior knowledge) serving `hub` on runtime
/// `R`.
async fn h2c_server<R: Rt>(hub: Hub) -> SocketAddr {
    h2c_server_with::<R>(hub, H2Config::default()).await
}

/// [`h2c_server`] with settings.
async fn h2c_server_with<R: Rt>(hub: Hub, h2: H2Config) -> SocketAddr {
    let (listener, addr) = listen::<R>();
    tokio::spawn(async move {
        // Ends with the test's runtime.
        loop {
            let Ok((stream, peer)) = R::accept(&listener).await else {
                return;
            };
            let io = TransportIo(stream);
            let serve =
                http2::serve_h2_connection::<R, _>(io, hub.clone(), config(), h2, Some(peer));
            tokio::spawn(async move {
                let _ = serve.await;
            });
        }
    });
    addr
}

/// The plain `Server` of runtime `R` over HTTP/2 on one accepted
/// connection, `handler` per WebSocket.
fn h2c_plain_server<R, H, F>(server: Server<R>, handler: H) -> SocketAddr
where
    R: Rt,
    H: Fn(H2WebSocket<R>, Request) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = listen::<R>();
    tokio::spawn(async move {
        let (stream, _) = R::accept(&listener).await.unwrap();
        let io = TransportIo(stream);
        let _ = serve_h2_websockets(io, server, H2Config::default(), handler).await;
    });
    addr
}

/// An HTTP/2 client connection, once the server's SETTINGS allowed
/// extended CONNECT.
async fn h2_client(addr: SocketAddr) -> SendRequest<Bytes> {
    h2_over(TcpStream::connect(addr).await.unwrap()).await
}

/// An HTTP/2 client connection over `io`, once the server's SETTINGS
/// allowed extended CONNECT.
async fn h2_over<T>(io: T) -> SendRequest<Bytes>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = bounded("h2 handshake", h2::client::handshake(io))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = bounded("ready", client.ready()).await.unwrap();
    for _ in 0..200 {
        if client.is_extended_connect_protocol_enabled() {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        client = bounded("ready", client.ready()).await.unwrap();
    }
    panic!("the server did not enable extended CONNECT");
}

/// A CONNECT request for `path` with `:protocol` (if any) and `headers`.
fn connect_request(
    method: &str,
    path: &str,
    protocol: Option<&str>,
    headers: &[(&str, &str)],
) -> http::Request<()> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    if let Some(protocol) = protocol {
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from(protocol));
    }
    request
}

/// Send `request`; the response head and the two halves of the stream.
async fn open(
    client: &mut SendRequest<Bytes>,
    request: http::Request<()>,
) -> (http::response::Parts, RecvStream, SendStream<Bytes>) {
    let mut ready = bounded("ready", client.clone().ready()).await.unwrap();
    let (response, send) = ready.send_request(request, false).unwrap();
    let response = bounded("response", response).await.unwrap();
    let (parts, recv) = response.into_parts();
    (parts, recv, send)
}

/// A WebSocket over one stream: the client's side, framed by hand.
struct Ws {
    recv: RecvStream,
    send: SendStream<Bytes>,
    buf: BytesMut,
}

impl Ws {
    async fn open(
        client: &mut SendRequest<Bytes>,
        headers: &[(&str, &str)],
    ) -> (Ws, http::response::Parts) {
        Ws::open_at(client, "/chat", headers).await
    }

    async fn open_at(
        client: &mut SendRequest<Bytes>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Ws, http::response::Parts) {
        let mut all = vec![("sec-websocket-version", "13")];
        all.extend_from_slice(headers);
        let (parts, recv, send) = open(
            client,
            connect_request("CONNECT", path, Some("websocket"), &all),
        )
        .await;
        assert_eq!(parts.status, 200, "{parts:?}");
        let buf = BytesMut::new();
        (Ws { recv, send, buf }, parts)
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send.send_data(masked(opcode, payload), false).unwrap();
    }

    /// The next frame from the server (unmasked, final): opcode and payload.
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if let Some(frame) = parse_frame(&mut self.buf) {
                return frame;
            }
            let chunk = bounded("data", self.recv.data())
                .await
                .expect("stream ended")
                .unwrap();
            let _ = self.recv.flow_control().release_capacity(chunk.len());
            self.buf.extend_from_slice(&chunk);
        }
    }

    async fn echo(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes());
        let (opcode, payload) = self.frame().await;
        assert_eq!(opcode, 0x1);
        assert_eq!(String::from_utf8(payload).unwrap(), format!("echo: {text}"));
    }
}

/// A final, masked client frame.
fn masked(opcode: u8, payload: &[u8]) -> Bytes {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    Bytes::from(frame)
}

/// One whole unmasked frame from the front of `buf`, if there is one.
fn parse_frame(buf: &mut BytesMut) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "a server frame is not masked");
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < header + len {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    buf.advance(header);
    Some((opcode, buf.split_to(len).to_vec()))
}

async fn several_websockets_on_one_connection<R: Rt>() {
    let closed = Arc::new(AtomicUsize::new(0));
    let hub = echo_hub(closed.clone());
    let addr = h2c_server::<R>(hub.clone()).await;
    let mut client = h2_client(addr).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(Ws::open(&mut client, &[]).await.0);
    }
    for round in 0..3 {
        for (n, ws) in sockets.iter_mut().enumerate() {
            ws.echo(&format!("{n}/{round}")).await;
        }
    }
    // A long message, over several DATA frames and flow-control windows.
    let long = "x".repeat(200_000);
    sockets[1].echo(&long).await;
    assert_eq!(hub.session_count(), 3);
    // A clean close of one: the close echoed, END_STREAM, the others go on.
    let mut first = sockets.remove(0);
    first.send_frame(0x8, &1000u16.to_be_bytes());
    let (opcode, payload) = first.frame().await;
    assert_eq!((opcode, &payload[..2]), (0x8, &1000u16.to_be_bytes()[..]));
    // END_STREAM (an empty DATA frame carries it): nothing more.
    while let Some(data) = bounded("end", first.recv.data()).await {
        assert!(data.unwrap().is_empty());
    }
    for _ in 0..200 {
        if closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    for ws in &mut sockets {
        ws.echo("still here").await;
    }
    assert_eq!(hub.session_count(), 2);
}

async fn subprotocol_and_deflate_are_negotiated<R: Rt>() {
    let addr = h2c_server::<R>(echo_hub(Arc::default())).await;
    let mut client = h2_client(addr).await;
    let (mut ws, parts) = Ws::open(
        &mut client,
        &[
            ("sec-websocket-protocol", "other, chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ],
    )
    .await;
    assert_eq!(parts.headers["sec-websocket-protocol"], "chat");
    let extensions = parts.headers["sec-websocket-extensions"].to_str().unwrap();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    // Nothing of the HTTP/1.1 handshake (HTTP/2 forbids them).
    for name in ["upgrade", "connection", "sec-websocket-accept"] {
        assert!(!parts.headers.contains_key(name), "{name}");
    }
    // An uncompressed message is still a message (the answer may be
    // compressed: only its opcode is checked).
    ws.send_frame(0x1, b"hi");
    assert_eq!(ws.frame().await.0, 0x1);
}

async fn malformed_and_refused_requests_get_errors<R: Rt>() {
    let closed = Arc::new(AtomicUsize::new(0));
    let hub = echo_hub(closed.clone());
    let addr = h2c_server::<R>(hub.clone()).await;
    let mut client = h2_client(addr).await;
    let v13 = [("sec-websocket-version", "13")];
    let version = |v: &'static str| [("sec-websocket-version", v)];
    // (request, status, whether the answer names version 13)
    let cases: [(http::Request<()>, u16, bool); 6] = [
        // Not a WebSocket: HTTP routes are not served over HTTP/2.
        (connect_request("GET", "/chat", None, &[]), 404, false),
        // Unknown :protocol.
        (
            connect_request("CONNECT", "/chat", Some("foo"), &v13),
            501,
            false,
        ),
        // Wrong and missing version.
        (
            connect_request("CONNECT", "/chat", Some("websocket"), &version("8")),
            400,
            true,
        ),
        (
            connect_request("CONNECT", "/chat", Some("websocket"), &[]),
            400,
            true,
        ),
        // The hub's decision: another path.
        (
            connect_request("CONNECT", "/other", Some("websocket"), &v13),
            404,
            false,
        ),
        // Subprotocols that are not tokens.
        (
            connect_request(
                "CONNECT",
                "/chat",
                Some("websocket"),
                &[
                    ("sec-websocket-version", "13"),
                    ("sec-websocket-protocol", "a b"),
                ],
            ),
            400,
            false,
        ),
    ];
    for (request, status, names_version) in cases {
        let what = format!(
            "{} {} {:?}",
            request.method(),
            request.uri(),
            request.headers()
        );
        let (parts, _recv, _send) = open(&mut client, request).await;
        assert_eq!(parts.status, status, "{what}");
        if names_version {
            assert_eq!(parts.headers["sec-websocket-version"], "13", "{what}");
        }
    }
    // A plain CONNECT (authority form, no :protocol): not a proxy.
    let plain = http::Request::builder()
        .method("CONNECT")
        .uri("localhost:443")
        .body(())
        .unwrap();
    let (parts, _recv, _send) = open(&mut client, plain).await;
    assert_eq!(parts.status, 405);
    // The connection is still good for WebSockets.
    Ws::open(&mut client, &[])
        .await
        .0
        .echo("after the errors")
        .await;
    assert_eq!(closed.load(Ordering::SeqCst), 0);
}

async fn a_stream_reset_mid_message_ends_only_its_session<R: Rt>() {
    let closed = Arc::new(AtomicUsize::new(0));
    let hub = echo_hub(closed.clone());
    let addr = h2c_server::<R>(hub.clone()).await;
    let mut client = h2_client(addr).await;
    let (mut doomed, _) = Ws::open(&mut client, &[]).await;
    let (mut other, _) = Ws::open(&mut client, &[]).await;
    doomed.echo("before").await;
    // Half a frame, then RST_STREAM.
    let frame = masked(0x1, "half of this message".as_bytes());
    doomed.send.send_data(frame.slice(..9), false).unwrap();
    doomed.send.send_reset(h2::Reason::CANCEL);
    for _ in 0..500 {
        if closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 1, "the reset session ended");
    assert_eq!(hub.session_count(), 1);
    other.echo("unaffected").await;
    Ws::open(&mut client, &[]).await.0.echo("a new one").await;
}

/// A TLS server offering ALPN `h2` and `http/1.1` (`http2::serve_hub`):
/// our own HTTP/1.1 client takes the HTTP/1.1 path, unchanged.
async fn http1_still_served_beside_h2_on_the_tls_port<R: Rt>() {
    let pki = TestPki::new("h2-http1");
    let handle = tls_hub::<R>(&pki, echo_hub(Arc::default())).await;
    let url = format!("wss://localhost:{}/chat", handle.local_addr().port());
    let config = ClientConfig::default().trust_pem_ca(&pki.ca).unwrap();
    let (mut ws, _) = bounded(
        "connect",
        hubbub_ws::connect_with::<R>(url.as_str(), &config),
    )
    .await
    .unwrap();
    assert_eq!(
        ws.get_ref().tls().unwrap().alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    ws.send(Message::text("one")).await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("echo: one"));
    handle.shutdown(Duration::from_secs(1)).await;
}

/// The plain `Server` over HTTP/2: its `decide` (origin check, subprotocol)
/// and a handler per WebSocket, several on one connection.
async fn plain_server_decides_and_echoes<R: Rt>() {
    let server = Server::<R>::new(Config::default()).decide(|request| {
        if request.origin() == Some("https://evil.example") {
            return Err(Reject::forbidden());
        }
        Ok(Accept::new().protocol("echo"))
    });
    let handler = |mut ws: H2WebSocket<R>, request: Request| async move {
        assert!(request.is_extended_connect());
        while let Some(Ok(message)) = ws.recv().await {
            let Message::Text(text) = message else {
                continue;
            };
            let reply = format!("echo: {text}");
            if ws.send(Message::text(reply)).await.is_err() {
                break;
            }
        }
    };
    let addr = h2c_plain_server(server, handler);
    let mut client = h2_client(addr).await;
    let offer = [("sec-websocket-protocol", "echo")];
    let (mut one, parts) = Ws::open(&mut client, &offer).await;
    assert_eq!(parts.headers["sec-websocket-protocol"], "echo");
    let (mut two, _) = Ws::open(&mut client, &offer).await;
    one.echo("a").await;
    two.echo("b").await;
    let evil = connect_request(
        "CONNECT",
        "/chat",
        Some("websocket"),
        &[
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "echo"),
            ("origin", "https://evil.example"),
        ],
    );
    let (parts, _recv, _send) = open(&mut client, evil).await;
    assert_eq!(parts.status, 403);
    one.echo("c").await;
}

/// A WebSocket whose handler does not read holds its peer to the stream's
/// window (64 KiB) through flow control, while another WebSocket on the
/// same connection goes on; once the handler reads, the window reopens.
async fn a_session_that_does_not_read_stops_only_its_stream<R: Rt>() {
    let go = Arc::new(tokio::sync::Notify::new());
    let notified = go.clone();
    let handler = move |mut ws: H2WebSocket<R>, request: Request| {
        let go = notified.clone();
        async move {
            if request.path() == "/stall" {
                go.notified().await;
            }
            while let Some(Ok(message)) = ws.recv().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if ws
                    .send(Message::text(format!("echo: {text}")))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    };
    let addr = h2c_plain_server(Server::<R>::new(Config::default()), handler);
    let mut client = h2_client(addr).await;
    let v13 = [("sec-websocket-version", "13")];
    let (parts, recv, send) = open(
        &mut client,
        connect_request("CONNECT", "/stall", Some("websocket"), &v13),
    )
    .await;
    assert_eq!(parts.status, 200);
    let mut stalled = Ws {
        recv,
        send,
        buf: BytesMut::new(),
    };
    let (mut other, _) = Ws::open(&mut client, &[]).await;
    // A binary message larger than the window; the window's worth first.
    let big = masked(0x2, &vec![7; 100_000]);
    let window = H2Config::default().stream_window as usize;
    stalled.send.reserve_capacity(big.len());
    let capacity = bounded("capacity", async {
        loop {
            let capacity = stalled.send.capacity();
            if capacity >= window {
                return capacity;
            }
            std::future::poll_fn(|cx| stalled.send.poll_capacity(cx)).await;
        }
    })
    .await;
    assert_eq!(capacity, window, "the stream's window");
    stalled.send.send_data(big.slice(..window), false).unwrap();
    // Nobody reads it: no more capacity, while the other stream echoes.
    for n in 0..5 {
        other.echo(&format!("meanwhile {n}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            stalled.send.capacity(),
            0,
            "the peer is held by flow control"
        );
    }
    // The handler reads: the window reopens, the rest goes, and it answers.
    go.notify_one();
    let mut rest = big.slice(window..);
    while !rest.is_empty() {
        let capacity = bounded("capacity after reading", async {
            loop {
                let capacity = stalled.send.capacity();
                if capacity > 0 {
                    return capacity;
                }
                std::future::poll_fn(|cx| stalled.send.poll_capacity(cx)).await;
            }
        })
        .await;
        let n = capacity.min(rest.len());
        stalled.send.send_data(rest.split_to(n), false).unwrap();
    }
    stalled.echo("done").await;
}

/// `serve_hub`'s shutdown closes the sessions on HTTP/2 streams with 1001
/// too, waits for them, and ends the connection with GOAWAY.
async fn shutdown_closes_h2_sessions_with_1001<R: Rt>() {
    let pki = TestPki::new("h2-shutdown");
    let closed = Arc::new(AtomicUsize::new(0));
    let hub = echo_hub(closed.clone());
    let handle = tls_hub::<R>(&pki, hub.clone()).await;
    let mut client = h2_tls_client(handle.local_addr(), &pki.ca).await;
    let (mut one, _) = Ws::open(&mut client, &[]).await;
    let (mut two, _) = Ws::open(&mut client, &[]).await;
    one.echo("over TLS").await;
    two.echo("and ALPN h2").await;
    let shutdown = tokio::spawn(handle.shutdown(Duration::from_secs(5)));
    for ws in [&mut one, &mut two] {
        let (opcode, payload) = ws.frame().await;
        assert_eq!((opcode, &payload[..2]), (0x8, &1001u16.to_be_bytes()[..]));
        ws.send_frame(0x8, &1001u16.to_be_bytes());
        // As a TCP client closes its side: END_STREAM.
        ws.send.send_data(Bytes::new(), true).unwrap();
    }
    let started = std::time::Instant::now();
    bounded("shutdown", shutdown).await.unwrap();
    // Not the grace period: the connection went away (GOAWAY) once its
    // sessions had ended.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(closed.load(Ordering::SeqCst), 2);
}

/// A connection without a WebSocket is closed after `idle_timeout`; one
/// with a WebSocket open is not.
async fn idle_connections_are_closed<R: Rt>() {
    let mut h2 = H2Config::default();
    h2.idle_timeout = Duration::from_millis(400);
    let addr = h2c_server_with::<R>(echo_hub(Arc::default()), h2).await;
    // No stream at all: GOAWAY, then the connection ends.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (_client, connection) = bounded("h2 handshake", h2::client::handshake(tcp))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let _ = bounded("idle close", connection).await;
    assert!(started.elapsed() >= Duration::from_millis(350));
    // A WebSocket open past the idle timeout keeps its connection.
    let mut client = h2_client(addr).await;
    let (mut ws, _) = Ws::open(&mut client, &[]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ws.echo("still open").await;
}

/// A `HubServer` of runtime `R` under TLS served by `http2::start` (ALPN
/// h2, http/1.1).
async fn tls_hub<R: Rt>(pki: &TestPki, hub: Hub) -> HubHandle {
    let files = pki.server("server");
    let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key).unwrap();
    let bind = || HubServer::<R>::bind("127.0.0.1:0", hub.clone(), config());
    // Without TLS, or without h2 in its ALPN: refused.
    let error = http2::start(bind().await.unwrap(), H2Config::default())
        .err()
        .unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let server = bind().await.unwrap().tls(acceptor.clone());
    let error = http2::start(server, H2Config::default()).err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    acceptor.reload(hubbub_ws::h2::offer_h2(&acceptor.config()));
    // A reload from the files keeps offering h2.
    acceptor.reload_from_files().unwrap();
    assert_eq!(
        acceptor.config().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let server = bind().await.unwrap().tls(acceptor);
    http2::start(server, H2Config::default()).unwrap()
}

/// An HTTP/2 client over TLS with ALPN `h2` (hubbub's TLS stream on the
/// client side, the `h2` crate's client above it).
async fn h2_tls_client(addr: SocketAddr, ca: &std::path::Path) -> SendRequest<Bytes> {
    use hubbub_ws::tls::{client_config_with_ca_file, rustls::pki_types::ServerName, TlsStream};
    let mut config = Arc::unwrap_or_clone(client_config_with_ca_file(ca).unwrap());
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = hubbub_tokio::Io(TcpStream::connect(addr).await.unwrap());
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsStream::client(tcp, Arc::new(config), name).unwrap();
    bounded("TLS handshake", tls.handshake()).await.unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
    h2_over(TransportIo(tls)).await
}

const SECRET: &[u8] = b"h2 test secret";

/// An HS256 token for `user`, valid for an hour.
fn token(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"sub": user, "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// The identity a CONNECT request's token proves is the session's (as
/// over HTTP/1.1): no auth message needed; a missing or forged token is
/// refused with 401 and no session opens.
async fn the_connect_token_authenticates_the_session<R: Rt>() {
    let users = Arc::new(Mutex::new(Vec::new()));
    let seen = users.clone();
    let hub = Hub::builder()
        .authenticate(Auth::new(JwtAuth::hs256(SECRET)).sources([TokenSource::Header]))
        .on_open(move |session| {
            let user = session.user().unwrap_or_default().to_owned();
            seen.lock().unwrap().push(user.clone());
            let _ = session.send_text(format!("hello {user}"));
        })
        .build();
    let addr = h2c_server::<R>(hub.clone()).await;
    let mut client = h2_client(addr).await;
    let bearer = format!("Bearer {}", token("ada"));
    let (mut ws, _) = Ws::open_at(&mut client, "/", &[("authorization", &bearer)]).await;
    let (opcode, payload) = ws.frame().await;
    assert_eq!((opcode, payload), (0x1, b"hello ada".to_vec()));
    assert_eq!(*users.lock().unwrap(), ["ada"]);
    assert_eq!(hub.metrics().h2_sessions.get(), 1);
    let forged = format!("Bearer {}x", token("bo"));
    for headers in [
        vec![("sec-websocket-version", "13")],
        vec![("sec-websocket-version", "13"), ("authorization", &forged)],
    ] {
        let request = connect_request("CONNECT", "/", Some("websocket"), &headers);
        let (parts, _recv, _send) = open(&mut client, request).await;
        assert_eq!(parts.status, 401, "{headers:?}");
    }
    assert_eq!(*users.lock().unwrap(), ["ada"]);
    assert_eq!(hub.metrics().h2_sessions.get(), 1);
}

/// The Python `h2` package over TLS with ALPN `h2`
/// (interop/python/h2_websocket.py) against a hub on every runtime.
#[test]
#[ignore = "needs Python's h2 package: run scripts/interop-python.sh"]
fn python_h2_client() {
    hubbub_tests::run(python_h2_client_on::<hubbub_tests::Tokio>());
    hubbub_tests::run(python_h2_client_on::<hubbub_tests::Smol>());
    hubbub_tests::run(python_h2_client_on::<hubbub_tests::Mio>());
}

async fn python_h2_client_on<R: Rt>() {
    let python = std::env::var("HUBBUB_PYTHON").unwrap_or_else(|_| "python3".into());
    let pki = TestPki::new("h2-python");
    let closed = Arc::new(AtomicUsize::new(0));
    let hub = echo_hub(closed.clone());
    let handle = tls_hub::<R>(&pki, hub.clone()).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/python/h2_websocket.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg(handle.local_addr().port().to_string())
        .arg(&pki.ca)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = bounded("python", child.wait()).await.unwrap();
    assert!(status.success(), "h2_websocket.py: {status}");
    // Every session it opened has ended (closed, reset, or its connection gone).
    until("sessions ended", || hub.session_count() == 0).await;
    assert!(closed.load(Ordering::SeqCst) >= 4);
    handle.shutdown(Duration::from_secs(1)).await;
}

hubbub_tests::cross_runtime!(
    several_websockets_on_one_connection,
    subprotocol_and_deflate_are_negotiated,
    malformed_and_refused_requests_get_errors,
    a_stream_reset_mid_message_ends_only_its_session,
    http1_still_served_beside_h2_on_the_tls_port,
    plain_server_decides_and_echoes,
    a_session_that_does_not_read_stops_only_its_stream,
    shutdown_closes_h2_sessions_with_1001,
    idle_connections_are_closed,
    the_connect_token_authenticates_the_session,
);

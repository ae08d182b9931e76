//! The `axum-echo` binary (an axum app serving a hubbub echo through
//! `hubbub-axum`), driven by tokio-tungstenite and by raw sockets.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use common::{close, connect, next, run_to_end, runtime, send, send_binary, start, Running};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

const AXUM_ECHO: &str = env!("CARGO_BIN_EXE_axum-echo");

/// The empty deflate block that ends every compressed message (RFC 7692).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

#[test]
fn bad_arguments_are_clear_errors() {
    for (args, expected) in [
        (&[][..], "--port is required"),
        (&["--port", "x"], "invalid --port \"x\""),
        (&["--port", "1", "--runtime", "smol"], "axum runs on tokio"),
        (&["--port", "1", "--loud"], "unknown argument \"--loud\""),
    ] {
        let (code, _, stderr) = run_to_end(AXUM_ECHO, args, None, &[]);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: axum-echo --port P"), "{stderr}");
    }
}

#[test]
fn echoes_in_order_serves_http_and_exits_on_sigterm() {
    let server = start(AXUM_ECHO, &["--port", "0"], None, &[]);
    let port = port(&server);
    let (head, body) = http(
        port,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok");
    let (head, body) = http(
        port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("new WebSocket"), "{body}");
    runtime().block_on(async {
        let mut ws = connect(&format!("ws://127.0.0.1:{port}/ws")).await;
        send(&mut ws, "hello").await;
        send_binary(&mut ws, &[1, 2, 3]).await;
        send(&mut ws, "").await;
        let big: String = (0..1 << 20)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        send(&mut ws, &big).await;
        send_binary(&mut ws, &[b'x'; 1 << 20]).await;
        assert_eq!(next(&mut ws).await, "hello");
        assert_eq!(next(&mut ws).await, "binary:\u{1}\u{2}\u{3}");
        assert_eq!(next(&mut ws).await, "");
        assert_eq!(next(&mut ws).await, big);
        assert_eq!(
            next(&mut ws).await,
            format!("binary:{}", "x".repeat(1 << 20))
        );
        // Without --deflate, an offer of it is declined.
        assert_eq!(extension_answer(port), None);
        // SIGTERM with a WebSocket still open: a clean exit.
        server.sigterm();
        let mut server = server;
        assert!(server.wait().success());
        close(ws).await;
    });
}

#[test]
fn bad_upgrades_are_refused_with_the_cores_status() {
    let server = start(AXUM_ECHO, &["--port", "0"], None, &[]);
    let port = port(&server);
    let upgrade = |extra: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             {extra}Connection: close\r\n\r\n"
        )
    };
    for (request, status, text) in [
        (
            upgrade("Sec-WebSocket-Version: 13\r\n"),
            "400",
            "missing a Sec-WebSocket-Key",
        ),
        (
            upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"),
            "426",
            "version 8 is not supported",
        ),
        (
            upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
            "426",
            "missing Sec-WebSocket-Version: 13",
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            "400",
            "missing Upgrade: websocket",
        ),
    ] {
        let (head, body) = http(port, &request);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request}: {head}"
        );
        assert!(body.contains(text), "{request}: {body}");
    }
    // The server is unharmed.
    runtime().block_on(async {
        let mut ws = connect(&format!("ws://127.0.0.1:{port}/ws")).await;
        send(&mut ws, "still here").await;
        assert_eq!(next(&mut ws).await, "still here");
        close(ws).await;
    });
    assert!(server.terminate().success());
}

#[test]
fn deflate_is_negotiated_and_compressed_messages_round_trip() {
    let server = start(AXUM_ECHO, &["--port", "0", "--deflate"], None, &[]);
    let port = port(&server);
    let (mut stream, extensions) = raw_upgrade(port);
    assert_eq!(
        extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let text = "compress me, ".repeat(200);
    let mut compressor = Compress::new(Compression::default(), false);
    let mut payload = Vec::with_capacity(text.len() + 64);
    compressor
        .compress_vec(text.as_bytes(), &mut payload, FlushCompress::Sync)
        .unwrap();
    assert!(payload.ends_with(&TAIL) && payload.len() < text.len() / 4);
    payload.truncate(payload.len() - TAIL.len());
    // FIN, RSV1 (compressed), text.
    write_frame(&mut stream, 0xC1, &payload);
    let (first, mut reply) = read_frame(&mut stream);
    assert_eq!(first, 0xC1, "a compressed text frame");
    assert!(reply.len() < text.len() / 4, "{} bytes", reply.len());
    reply.extend_from_slice(&TAIL);
    let mut inflated = Vec::with_capacity(text.len() + 64);
    Decompress::new(false)
        .decompress_vec(&reply, &mut inflated, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(String::from_utf8(inflated).unwrap(), text);
    // An uncompressed message is answered too (short: sent uncompressed).
    write_frame(&mut stream, 0x81, b"plain");
    assert_eq!(read_frame(&mut stream), (0x81, b"plain".to_vec()));
    assert!(server.terminate().success());
}

/// The port of `axum-echo: listening on 127.0.0.1:PORT ...`.
fn port(server: &Running) -> u16 {
    server
        .listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("127.0.0.1:"))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no address in {:?}", server.listening))
}

/// A blocking connection whose reads time out.
fn stream(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Send `request` (which asks to close) and read the response to its end:
/// the head and the body.
fn http(port: u16, request: &str) -> (String, String) {
    let mut stream = stream(port);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {response:?}"));
    (head.to_owned(), body.to_owned())
}

/// The response head of an upgrade request sent on `stream`.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Upgrade at `/ws` offering permessage-deflate: the open connection and
/// the `Sec-WebSocket-Extensions` answer.
fn raw_upgrade(port: u16) -> (TcpStream, Option<String>) {
    let mut stream = stream(port);
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        header(&head, "Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    let extensions = header(&head, "Sec-WebSocket-Extensions").map(str::to_owned);
    (stream, extensions)
}

/// The value of header `name` (case-insensitive) in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The extension the server accepts when offered permessage-deflate.
fn extension_answer(port: u16) -> Option<String> {
    raw_upgrade(port).1
}

/// Write one masked client frame whose first byte is `first`.
fn write_frame(stream: &mut TcpStream, first: u8, payload: &[u8]) {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
}

/// Read one unmasked server frame: its first byte and payload.
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[1] & 0x80, 0, "server frames are not masked");
    let len = match header[1] & 0x7f {
        126 => {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            u64::from(u16::from_be_bytes(len))
        }
        127 => {
            let mut len = [0u8; 8];
            stream.read_exact(&mut len).unwrap();
            u64::from_be_bytes(len)
        }
        len => u64::from(len),
    };
    let mut payload = vec![0; usize::try_from(len).unwrap()];
    stream.read_exact(&mut payload).unwrap();
    (header[0], payload)
}

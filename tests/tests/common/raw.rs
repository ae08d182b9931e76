//! A minimal WebSocket client over a raw tokio socket, written from RFC 6455
//! for the tests: it can break the protocol on purpose, stop reading, and
//! costs little per connection.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// Opcodes.
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame (1005 if it has none).
    pub(crate) fn close_code(&self) -> u16 {
        match self.payload[..] {
            [a, b, ..] => u16::from_be_bytes([a, b]),
            _ => 1005,
        }
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8")
    }
}

pub(crate) struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect and complete the opening handshake for `path`.
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Raw {
        Self::connect_with(addr, path, None).await
    }

    /// Like [`connect`](Self::connect), with a receive buffer of `rcvbuf`
    /// bytes (a small one makes a consumer that stops reading fill up fast).
    pub(crate) async fn connect_with(addr: SocketAddr, path: &str, rcvbuf: Option<u32>) -> Raw {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        raw.handshake(path).await;
        raw
    }

    /// A TCP connection on which nothing has been sent yet.
    pub(crate) async fn tcp(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub(crate) async fn handshake(&mut self, path: &str) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(self.fill().await, "EOF during the handshake");
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        self.buf.drain(..end);
    }

    /// Read more bytes into the buffer; false at end of stream (or reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 << 10];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next frame; `None` at end of stream.
    pub(crate) async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next data frame's payload as text, skipping pings; `None` at a
    /// close frame or end of stream.
    pub(crate) async fn text(&mut self) -> Option<String> {
        loop {
            let frame = self.frame().await?;
            match frame.opcode {
                TEXT => return Some(frame.text().to_owned()),
                CLOSE => return None,
                _ => {}
            }
        }
    }

    /// Read until a close frame; its code (`None` if the stream ended
    /// without one).
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = self.frame().await?;
            if frame.opcode == CLOSE {
                return Some(frame.close_code());
            }
        }
    }

    /// Send one frame, masked as a client must (unless `masked` is false).
    pub(crate) async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        let bytes = encode(fin, opcode, payload, masked);
        self.stream.write_all(&bytes).await.unwrap();
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes(), true).await;
    }

    /// Send a close frame with `code` and `reason`.
    pub(crate) async fn send_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send_frame(true, CLOSE, &payload, true).await;
    }
}

/// Encode a frame (masked with a fixed key when `masked`).
pub(crate) fn encode(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Parse one unmasked (server) frame from the front of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "a server frame is not masked");
    let (len, head) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < head + len {
        return None;
    }
    let frame = Frame {
        fin: buf[0] & 0x80 != 0,
        opcode: buf[0] & 0x0f,
        payload: buf[head..head + len].to_vec(),
    };
    Some((frame, head + len))
}

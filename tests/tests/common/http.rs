//! A blocking HTTP/1.1 client over std sockets, for the HTTP tests: one
//! request per call or raw bytes on a kept-alive stream, answers parsed
//! just enough to assert on (bodies sized by Content-Length).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use serde_json::Value;

/// How long a read waits before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A connection with reads bounded by [`WAIT`].
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// One parsed response.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header called `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (the test fails if it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// Read one response (bodies sized by Content-Length; none for HEAD/304).
pub(crate) fn read_answer(stream: &mut TcpStream, head_only: bool) -> Answer {
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

/// Send `raw` on a new connection and read the answer.
pub(crate) fn request(addr: SocketAddr, raw: &str) -> Answer {
    let mut stream = connect(addr);
    stream.write_all(raw.as_bytes()).unwrap();
    read_answer(&mut stream, raw.starts_with("HEAD"))
}

/// `GET path`.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
}

/// `POST path` with `body`.
pub(crate) fn post(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The server closed the connection (EOF within the wait).
pub(crate) fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        // EOF; or a reset, when the server closed with our bytes unread.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    assert!(
        rest.is_empty(),
        "unexpected bytes: {}",
        String::from_utf8_lossy(&rest)
    );
}

/// The value of the first `/metrics` line starting with `line_start` (0 if
/// none).
pub(crate) fn metric(addr: SocketAddr, line_start: &str) -> u64 {
    let text = get(addr, "/metrics").text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

/// One HTTP/1.1 request over TLS (ALPN `http/1.1`, blocking, with
/// rustls's own stream, trusting the CA in `ca`): the whole answer, read
/// to the end.
pub(crate) fn https_request(addr: SocketAddr, ca: &std::path::Path, request: &str) -> String {
    use hubbub_ws::tls::{client_config_with_ca_file, rustls};
    let mut config = std::sync::Arc::unwrap_or_clone(client_config_with_ca_file(ca).unwrap());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(addr));
    tls.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

//! A deliberately small HTTP/1.1 server for the demos' few routes, until
//! hubbub's own HTTP layer exists: one request per connection (answered
//! with `Connection: close`), heads parsed by `httparse`, bodies sized by
//! `Content-Length`, `HEAD` answered like `GET` without the body.

use std::{
    future::poll_fn,
    io::{self, IoSlice},
    net::ToSocketAddrs,
    sync::Arc,
    time::Duration,
};

use hubbub_realtime::{
    adapter::{timeout, LISTEN_BACKLOG},
    driver::Transport,
    Runtime,
};

/// Largest request head accepted; a larger one is answered 431.
const MAX_HEAD: usize = 8 << 10;
/// Most headers in a request.
const MAX_HEADERS: usize = 64;
/// Time a client has to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After answering, unread request bytes are drained for at most this long
/// (and this many bytes) so closing does not reset the connection before
/// the client has read the response.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 10;

/// What a route sees of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of type `content_type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
        }
    }

    /// `200 OK` with a JSON body.
    pub fn json(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, "application/json", body)
    }

    /// A plain-text error page for `status`.
    pub fn error(status: u16) -> Response {
        let text = format!("{} {}\n", status, reason(status));
        Response::new(status, "text/plain; charset=utf-8", text)
    }

    /// `405 Method Not Allowed`, allowing `allow`.
    pub fn method_not_allowed(allow: &str) -> Response {
        Response::error(405).with_header("Allow", allow)
    }

    /// Add a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire; without the body for a `HEAD` request.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "",
    }
}

/// What became of the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A request; its head is `head_len` bytes, its body `body_len`.
    Complete {
        request: Request,
        head_len: usize,
        body_len: usize,
    },
    /// Answer this and close.
    Error(u16),
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD => return Parsed::Error(431),
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(431),
        Err(_) => return Parsed::Error(400),
    };
    if head_len > MAX_HEAD {
        return Parsed::Error(431);
    }
    let mut body_len = 0;
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).ok().map(str::trim);
            match value.and_then(|v| v.parse::<usize>().ok()) {
                // Two different lengths are a malformed request (RFC 9112 §6.3).
                Some(n) if body_len == 0 || body_len == n => body_len = n,
                _ => return Parsed::Error(400),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not needed by any route here.
            return Parsed::Error(400);
        }
    }
    let target = req.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    Parsed::Complete {
        request: Request {
            method: req.method.unwrap_or("").to_owned(),
            path,
        },
        head_len,
        body_len,
    }
}

/// A listener on runtime `R` bound to the first address of `addr` that
/// binds.
pub fn bind<R: Runtime>(addr: impl ToSocketAddrs) -> io::Result<R::Listener> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match R::bind(addr, LISTEN_BACKLOG) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

/// Accept connections on `listener` forever, answering each request with
/// `route`. Drop the future to stop accepting (the connections already
/// accepted finish on their own tasks).
pub async fn serve<R, F>(listener: R::Listener, route: F)
where
    R: Runtime,
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let route = Arc::new(route);
    loop {
        match R::accept(&listener).await {
            Ok((stream, _)) => {
                let route = route.clone();
                R::spawn(async move {
                    let _ = handle::<R, _>(stream, &*route).await;
                });
            }
            // Out of descriptors or similar: back off instead of spinning.
            Err(_) => R::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One read from `stream`; 0 at its end.
async fn read(stream: &mut impl Transport, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| stream.poll_read(cx, buf)).await
}

/// Write all of `bytes` to `stream`, then shut down its write half.
async fn write_and_shutdown(stream: &mut impl Transport, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| stream.poll_write_vectored(cx, &[IoSlice::new(bytes)])).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| stream.poll_flush(cx)).await?;
    poll_fn(|cx| stream.poll_shutdown(cx)).await
}

async fn handle<R, F>(mut stream: R::Stream, route: &F) -> io::Result<()>
where
    R: Runtime,
    F: Fn(&Request) -> Response,
{
    let mut buf = Vec::with_capacity(1024);
    let read_head = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = read(&mut stream, &mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse(&buf) {
                Parsed::Partial => continue,
                parsed => return Ok(Some(parsed)),
            }
        }
    };
    let (response, head_only, unread) = match timeout::<R, _>(READ_TIMEOUT, read_head).await {
        None => (Response::error(408), false, 0),
        Some(Err(error)) => return Err(error),
        Some(Ok(None)) => return Ok(()), // closed before a whole request
        Some(Ok(Some(Parsed::Error(status)))) => (Response::error(status), false, 0),
        Some(Ok(Some(Parsed::Complete {
            request,
            head_len,
            body_len,
        }))) => {
            let unread = (head_len + body_len).saturating_sub(buf.len());
            (route(&request), request.method == "HEAD", unread)
        }
        Some(Ok(Some(Parsed::Partial))) => unreachable!("the loop reads on"),
    };
    write_and_shutdown(&mut stream, &response.to_bytes(head_only)).await?;
    // Read (and discard) what the client may still send, so our close is
    // not a reset that could destroy the response in flight.
    let drain = async {
        let mut left = unread.max(LINGER_BYTES);
        let mut chunk = [0u8; 4096];
        while left > 0 {
            match read(&mut stream, &mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout::<R, _>(LINGER, drain).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial);
        assert_eq!(
            parse(b"GET /api/health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Complete {
                request: Request {
                    method: "GET".into(),
                    path: "/api/health".into()
                },
                head_len: 41,
                body_len: 0
            }
        );
        let post = b"POST /x HTTP/1.1\r\ncontent-length: 5\r\n\r\nab";
        assert!(matches!(
            parse(post),
            Parsed::Complete {
                body_len: 5,
                head_len: 39,
                ..
            }
        ));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
            Parsed::Error(400)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Error(400)
        );
        assert_eq!(parse(&[b'a'; MAX_HEAD]), Parsed::Error(431));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&long), Parsed::Error(431));
    }

    #[test]
    fn writes_responses() {
        let r = Response::json(r#"{"ok":true}"#);
        assert_eq!(
            String::from_utf8(r.to_bytes(false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\
             Connection: close\r\n\r\n{\"ok\":true}"
        );
        let head =
            String::from_utf8(Response::method_not_allowed("GET, HEAD").to_bytes(true)).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Allow: GET, HEAD\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
    }
}

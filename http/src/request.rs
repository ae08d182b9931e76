//! Sans-IO HTTP/1.1 request reading: bytes in, complete requests (or the
//! status that refuses them) out, pipelined requests one after the other.
//!
//! Heads are parsed with `httparse`, as the core parses the upgrade
//! request. Bodies are sized by `Content-Length` only: a request with
//! `Transfer-Encoding` is refused with 501 (RFC 9112 §6.1 lets a server
//! refuse a transfer coding it does not implement; none of hubbub's routes
//! needs chunked uploads, and refusing keeps request smuggling out).

use std::{fmt, net::SocketAddr, str};

use bytes::{Buf, Bytes, BytesMut};
use hubbub_core::handshake::HeadScan;

/// Limits on what one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers); larger is 431.
    pub max_head: usize,
    /// Most header lines; more is 431.
    pub max_headers: usize,
    /// Largest `Content-Length` body; larger is 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 8 << 10,
            max_headers: 64,
            max_body: 64 << 10,
        }
    }
}

/// A request that cannot be served: answered with `status`, then the
/// connection closes (the rest of the stream cannot be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status to answer with (400, 413, 431, 501).
    pub status: u16,
    /// What was wrong, for the response body.
    pub message: &'static str,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

const fn refuse(status: u16, message: &'static str) -> HttpError {
    HttpError { status, message }
}

/// One complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path of the target, still percent-encoded, without the query.
    pub path: String,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Bytes,
    /// The client's address, when the server knows it.
    pub peer: Option<SocketAddr>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query parameter `name`, percent-decoded (`+` as a space); the
    /// first one when repeated.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key) == name).then(|| decode_component(value))
        })
    }

    /// Whether the connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let connection = |token: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.version == 0 {
            connection("keep-alive")
        } else {
            !connection("close")
        }
    }

    /// Whether this is `HEAD` (answered like `GET`, without the body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Percent-decode a query component (`+` is a space); invalid UTF-8 is
/// replaced rather than refused.
fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a head asks for a WebSocket upgrade (`Upgrade: websocket`).
fn wants_websocket(headers: &[httparse::Header<'_>]) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && str::from_utf8(h.value).is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
            })
    })
}

/// What [`RequestReader::next_request`] found in the bytes fed so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// More bytes are needed.
    Incomplete,
    /// A complete request (consumed from the buffer).
    Request(Request),
    /// The head asks `Expect: 100-continue` and its body has not arrived:
    /// answer `100 Continue` (reported once per request), then read on.
    Continue,
    /// A WebSocket upgrade request (only when upgrades are enabled). Nothing
    /// was consumed: [`RequestReader::into_buffered`] hands the request and
    /// whatever follows it to the WebSocket path.
    Upgrade,
    /// The request is refused: answer, then close.
    Error(HttpError),
}

/// Reads pipelined requests from a byte stream.
///
/// Feed it what the transport read, then take requests with
/// [`next_request`](Self::next_request) until it says [`Next::Incomplete`]. It never buffers
/// more than one request's head and body limits (plus what one read added):
/// the caller reads again only after `Incomplete`.
#[derive(Debug)]
pub struct RequestReader {
    buf: BytesMut,
    limits: Limits,
    upgrades: bool,
    failed: bool,
    /// `100 Continue` was reported for the request being read.
    continued: bool,
    /// How far the head being read has been scanned for its end.
    scan: HeadScan,
    /// Where the head being read ends, once found.
    head_end: Option<usize>,
    /// Bytes the buffer must hold before the request (head and body) is
    /// whole: nothing is parsed again until they have arrived.
    need: usize,
}

impl RequestReader {
    /// A reader with `limits`; with `upgrades`, a WebSocket upgrade request
    /// is reported as [`Next::Upgrade`] instead of served as HTTP.
    pub fn new(limits: Limits, upgrades: bool) -> Self {
        RequestReader {
            buf: BytesMut::new(),
            limits,
            upgrades,
            failed: false,
            continued: false,
            scan: HeadScan::default(),
            head_end: None,
            need: 0,
        }
    }

    /// Add bytes read from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether part of a request is buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// How many bytes are buffered.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Release the buffer's room when nothing is buffered, so a reader kept
    /// for an idle connection holds no memory grown by earlier requests.
    pub fn release_idle(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// The buffered bytes, for the WebSocket path after [`Next::Upgrade`].
    pub fn into_buffered(self) -> BytesMut {
        self.buf
    }

    /// The next complete request, if the buffer holds one. After an
    /// [`Next::Error`] the reader stays failed.
    pub fn next_request(&mut self) -> Next {
        if self.failed {
            return Next::Error(refuse(400, "bad request"));
        }
        match self.parse() {
            Ok(next) => next,
            Err(error) => {
                self.failed = true;
                Next::Error(error)
            }
        }
    }

    /// Forget the scan of a head that was taken or skipped.
    fn start_next(&mut self) {
        self.scan = HeadScan::default();
        self.head_end = None;
        self.need = 0;
    }

    /// Where the head at the start of the buffer ends: each byte is looked
    /// at once however the head arrives, and lines must end with CRLF (as
    /// in the upgrade request, see `hubbub_core::handshake::HeadScan`).
    fn head_end(&mut self) -> Result<Option<usize>, HttpError> {
        if let Some(end) = self.head_end {
            return Ok(Some(end));
        }
        match self.scan.feed(&self.buf) {
            Err(_) => Err(refuse(400, "bare LF line ending; lines end with CRLF")),
            Ok(Some(n)) if n > self.limits.max_head => Err(refuse(431, "request head too large")),
            Ok(None) if self.buf.len() > self.limits.max_head => {
                Err(refuse(431, "request head too large"))
            }
            Ok(end) => {
                self.head_end = end;
                Ok(end)
            }
        }
    }

    fn parse(&mut self) -> Result<Next, HttpError> {
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        while self.buf.starts_with(b"\r\n") {
            self.buf.advance(2);
            self.start_next();
        }
        if self.buf.is_empty() || self.buf.len() < self.need {
            return Ok(Next::Incomplete);
        }
        let Some(end) = self.head_end()? else {
            return Ok(Next::Incomplete);
        };
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut head = httparse::Request::new(&mut headers);
        let head_len = match head.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err(refuse(400, "malformed request")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(refuse(431, "too many header fields"))
            }
            Err(_) => return Err(refuse(400, "malformed request")),
        };
        let mut body_len: Option<usize> = None;
        for header in head.headers.iter() {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(refuse(501, "transfer-encoding is not supported"));
            }
            if header.name.eq_ignore_ascii_case("content-length") {
                let digits = str::from_utf8(header.value)
                    .map(str::trim)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
                let Some(digits) = digits else {
                    return Err(refuse(400, "invalid content-length"));
                };
                // Too many digits for a usize is certainly over the limit.
                let n = digits.parse::<usize>().unwrap_or(usize::MAX);
                if body_len.is_some_and(|m| m != n) {
                    // Repeated lengths must agree (RFC 9112 §6.3).
                    return Err(refuse(400, "invalid content-length"));
                }
                body_len = Some(n);
            }
        }
        let body_len = body_len.unwrap_or(0);
        if body_len > self.limits.max_body {
            return Err(refuse(413, "request body too large"));
        }
        if self.upgrades && wants_websocket(head.headers) {
            return Ok(Next::Upgrade);
        }
        if self.buf.len() < head_len + body_len {
            self.need = head_len + body_len;
            let expects = head.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("expect")
                    && h.value.eq_ignore_ascii_case(b"100-continue")
            });
            if expects && head.version == Some(1) && !std::mem::replace(&mut self.continued, true) {
                return Ok(Next::Continue);
            }
            return Ok(Next::Incomplete);
        }
        self.continued = false;
        let target = head.path.unwrap_or("/");
        if !target.starts_with('/') && target != "*" {
            return Err(refuse(400, "unsupported request target"));
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (target, None),
        };
        let request = Request {
            method: head.method.unwrap_or_default().to_owned(),
            path: path.to_owned(),
            query,
            version: head.version.unwrap_or(1),
            peer: None,
            headers: head
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: Bytes::new(),
        };
        self.start_next();
        self.buf.advance(head_len);
        let body = self.buf.split_to(body_len).freeze();
        Ok(Next::Request(Request { body, ..request }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> RequestReader {
        RequestReader::new(Limits::default(), false)
    }

    fn request(next: Next) -> Request {
        match next {
            Next::Request(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn status(next: Next) -> u16 {
        match next {
            Next::Error(error) => error.status,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    const POST: &[u8] = b"POST /ws/send?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn whole_request_with_body_and_query() {
        let mut r = reader();
        r.feed(POST);
        let req = request(r.next_request());
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/ws/send");
        assert_eq!(req.query_param("x").as_deref(), Some("1"));
        assert_eq!(req.header("host"), Some("a"));
        assert_eq!(&req.body[..], b"hello");
        assert!(req.keep_alive());
        assert_eq!(r.next_request(), Next::Incomplete);
        assert!(!r.has_partial());
    }

    #[test]
    fn byte_by_byte_gives_the_same_request_once() {
        let mut whole = reader();
        whole.feed(POST);
        let expected = request(whole.next_request());
        let mut r = reader();
        for (i, byte) in POST.iter().enumerate() {
            r.feed(&[*byte]);
            let next = r.next_request();
            if i + 1 < POST.len() {
                assert_eq!(next, Next::Incomplete, "after {} bytes", i + 1);
            } else {
                assert_eq!(request(next), expected);
            }
        }
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let mut r = reader();
        let mut bytes = b"GET /a HTTP/1.1\r\n\r\n".to_vec();
        bytes.extend_from_slice(POST);
        bytes.extend_from_slice(b"\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\nGET /d");
        r.feed(&bytes);
        assert_eq!(request(r.next_request()).path, "/a");
        assert_eq!(&request(r.next_request()).body[..], b"hello");
        let third = request(r.next_request());
        assert_eq!(third.path, "/c");
        assert!(!third.keep_alive());
        assert_eq!(r.next_request(), Next::Incomplete);
        assert!(r.has_partial());
    }

    #[test]
    fn keep_alive_rules_of_both_versions() {
        let mut r = reader();
        r.feed(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!request(r.next_request()).keep_alive());
        assert!(request(r.next_request()).keep_alive());
        r.feed(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n");
        assert!(!request(r.next_request()).keep_alive());
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
            (b"GET\0 / HTTP/1.1\r\n\r\n", 400),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                413,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\n\n", 400),
        ];
        for (bytes, expected) in cases {
            let mut r = reader();
            r.feed(bytes);
            assert_eq!(
                status(r.next_request()),
                *expected,
                "{}",
                String::from_utf8_lossy(bytes)
            );
            // A failed stream stays failed.
            assert_eq!(status(r.next_request()), 400);
        }
    }

    #[test]
    fn head_limits_are_431() {
        let mut r = reader();
        r.feed(b"GET / HTTP/1.1\r\nX: ");
        r.feed(&vec![b'a'; 9000]);
        assert_eq!(status(r.next_request()), 431);
        let mut r = reader();
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        r.feed(&many);
        assert_eq!(status(r.next_request()), 431);
    }

    #[test]
    fn upgrade_requests_are_left_in_the_buffer() {
        let bytes = b"GET /chat HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n\x81";
        let mut r = RequestReader::new(Limits::default(), true);
        r.feed(bytes);
        assert_eq!(r.next_request(), Next::Upgrade);
        assert_eq!(&r.into_buffered()[..], bytes);
        // Without upgrades it is an ordinary request.
        let mut r = reader();
        r.feed(bytes);
        assert_eq!(request(r.next_request()).path, "/chat");
    }

    #[test]
    fn expect_continue_is_reported_once() {
        let mut r = reader();
        r.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(r.next_request(), Next::Continue);
        assert_eq!(r.next_request(), Next::Incomplete);
        r.feed(b"ok");
        assert_eq!(&request(r.next_request()).body[..], b"ok");
        // Over the limit: 413 at once, no 100.
        r.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(status(r.next_request()), 413);
    }

    #[test]
    fn an_emptied_buffer_is_released_and_a_partial_one_kept() {
        let mut r = reader();
        let mut bytes = b"POST / HTTP/1.1\r\nContent-Length: 60000\r\n\r\n".to_vec();
        bytes.resize(bytes.len() + 60_000, b'a');
        r.feed(&bytes);
        r.feed(b"GET /next");
        assert_eq!(request(r.next_request()).body.len(), 60_000);
        r.release_idle();
        assert_eq!(&r.buf[..], b"GET /next", "a partial request stays");
        r.feed(b" HTTP/1.1\r\n\r\n");
        assert_eq!(request(r.next_request()).path, "/next");
        r.release_idle();
        assert_eq!(r.buf.capacity(), 0);
    }

    #[test]
    fn query_params_are_decoded() {
        let mut r = reader();
        r.feed(b"GET /p?session_id=room%3Aa+b&max=5&flag HTTP/1.1\r\n\r\n");
        let req = request(r.next_request());
        assert_eq!(req.query_param("session_id").as_deref(), Some("room:a b"));
        assert_eq!(req.query_param("max").as_deref(), Some("5"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("nope"), None);
    }
}

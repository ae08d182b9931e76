//! Server role: parse and validate the upgrade request, answer it.

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::{
    has_token, is_token, parse_extensions, push_header, raw_pairs, trim_ows, write_header,
    HandshakeError, HeaderList, MAX_HEADERS,
};
use crate::{extension::Offer, Config, Negotiated, UsageError};

/// A parsed, validated upgrade request, shown to the application before it
/// accepts or rejects the connection.
#[derive(Debug, Clone)]
pub struct Request {
    /// The target (the lead) and the header fields.
    headers: HeaderList,
    /// The index of the `Sec-WebSocket-Key` field (none over HTTP/2).
    key: Option<usize>,
    pub(crate) protocols: Vec<String>,
    pub(crate) extensions: Vec<Offer>,
    /// Opened by an extended CONNECT (RFC 8441, HTTP/2) rather than an
    /// HTTP/1.1 `GET` with `Upgrade`: no key, and the answer is a `200`
    /// without `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
    pub(crate) extended_connect: bool,
}

impl Request {
    /// The request target as sent, e.g. `/chat?room=1`.
    pub fn target(&self) -> &str {
        self.headers.lead()
    }
    /// The path, without the query, e.g. `/chat`.
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }
    /// The query after `?`, if any, e.g. `room=1`.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, query)| query)
    }
    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    /// Every header as `(name, value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter()
    }
    /// The `Origin` header, sent by browsers; check it to refuse
    /// cross-site connections.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }
    /// The `Host` header (always present in a valid request).
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or_default()
    }
    /// Offered subprotocols, in the client's order of preference, gathered
    /// from every `Sec-WebSocket-Protocol` header.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }
    /// Extension offers, in the client's order of preference.
    pub fn extensions(&self) -> &[Offer] {
        &self.extensions
    }
    /// The `Sec-WebSocket-Key` (validated: 16 bytes, base64-encoded);
    /// empty for a request from [`from_extended_connect`](Self::from_extended_connect),
    /// which has none.
    pub fn key(&self) -> &str {
        self.key
            .and_then(|index| self.headers.value(index))
            .unwrap_or_default()
    }
    /// True for a request from [`from_extended_connect`](Self::from_extended_connect)
    /// (a WebSocket over HTTP/2, RFC 8441).
    pub fn is_extended_connect(&self) -> bool {
        self.extended_connect
    }
}

/// Parse an upgrade request from everything received so far.
///
/// Returns `Ok(None)` while the head is incomplete, and
/// `Ok(Some((request, len)))` once it is complete and valid, `len` being
/// the size of the head: bytes after it are not part of the request. Errors
/// are ready-made HTTP answers: 400 for malformed or incomplete upgrade
/// requests, 405 for methods other than GET, 426 for versions other than
/// 13 and 431 for heads larger than `max_head_size` or with too many headers.
pub fn parse_request(buf: &[u8], max_head_size: usize) -> Result<Option<(Request, usize)>, Reject> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut raw);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head_size => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head_size => return Ok(None),
        Ok(_) => return Err(Reject::new(431).with_body("The request head is too large.")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Reject::new(431).with_body("The request has too many headers."))
        }
        Err(e) => return Err(bad_request(format!("Malformed HTTP request: {e}."))),
    };
    let method = parsed.method.unwrap_or_default();
    if method != "GET" {
        return Err(Reject::new(405)
            .with_header("Allow", "GET")
            .with_body(format!(
                "Method {method} is not allowed; a WebSocket upgrade uses GET."
            )));
    }
    if parsed.version != Some(1) {
        return Err(bad_request("HTTP/1.1 is required for a WebSocket upgrade."));
    }
    // The fields' text is shorter than the head: one allocation.
    let target = parsed.path.unwrap_or_default();
    let headers = HeaderList::collect(target, raw_pairs(parsed.headers), len)
        .map_err(|name| bad_request(format!("The {name} header is not printable text.")))?;
    let request = validate(headers)?;
    Ok(Some((request, len)))
}

impl Request {
    /// Validate an upgrade request that an HTTP server (hyper, axum, ...)
    /// already parsed: its target (e.g. `/chat?room=1`) and headers as
    /// `(name, value)` pairs, such as an `http::HeaderMap`'s. The checks
    /// and the [`Reject`]s (400, 426) are those of [`parse_request`]; the
    /// caller has checked that the method is GET over HTTP/1.1. Then choose
    /// an [`Accept`] and call [`negotiate`](Self::negotiate).
    pub fn from_parts<N: AsRef<str>, V: AsRef<[u8]>>(
        target: &str,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Request, Reject> {
        validate(collect(target, headers)?)
    }
}

impl Request {
    /// Validate an extended CONNECT (RFC 8441 §5: a WebSocket over an
    /// HTTP/2 stream) that an HTTP/2 server already parsed: the caller has
    /// checked `:method` CONNECT and `:protocol` `websocket`, and passes the
    /// target from `:path` and the regular headers, with `host` from
    /// `:authority` (as an HTTP/2 to HTTP/1.1 translation would add it).
    ///
    /// There is no `Upgrade`, `Connection` or `Sec-WebSocket-Key` to check
    /// (HTTP/2 forbids the first two, RFC 8441 drops the key); the rest is
    /// [`from_parts`](Self::from_parts)'s: `Sec-WebSocket-Version` must be
    /// `13`, subprotocols must be tokens, extension offers are parsed the
    /// same way. A wrong or missing version is a `400` with
    /// `Sec-WebSocket-Version: 13` (not the `426` of HTTP/1.1, which would
    /// need an `Upgrade` header HTTP/2 forbids). [`negotiate`](Self::negotiate)
    /// then gives only the `200`'s `Sec-WebSocket-Protocol`,
    /// `Sec-WebSocket-Extensions` and the [`Accept`]'s extra headers.
    ///
    /// ```
    /// use hubbub_core::{Accept, Config, Request};
    ///
    /// let headers = [
    ///     ("host", "example.com"),
    ///     ("sec-websocket-version", "13"),
    ///     ("sec-websocket-protocol", "chat"),
    /// ];
    /// let request = Request::from_extended_connect("/chat", headers).unwrap();
    /// let upgrade = request
    ///     .negotiate(&Config::default(), Accept::new().protocol("chat"))
    ///     .unwrap();
    /// assert_eq!(upgrade.headers, [("Sec-WebSocket-Protocol".into(), "chat".into())]);
    /// ```
    pub fn from_extended_connect<N: AsRef<str>, V: AsRef<[u8]>>(
        target: &str,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Request, Reject> {
        let headers = collect(target, headers)?;
        match single(&headers, "Sec-WebSocket-Version")? {
            Some("13") => {}
            other => {
                let body = match other {
                    Some(version) => {
                        format!("WebSocket version {version} is not supported; use 13.")
                    }
                    None => "The request is missing Sec-WebSocket-Version: 13.".to_owned(),
                };
                return Err(bad_request(body).with_header("Sec-WebSocket-Version", "13"));
            }
        }
        let (protocols, extensions) = offers(&headers)?;
        Ok(Request {
            key: None,
            headers,
            protocols,
            extensions,
            extended_connect: true,
        })
    }
}

/// `target` and `headers` as a [`HeaderList`], or a 400 naming a header
/// that is not printable text.
fn collect<N: AsRef<str>, V: AsRef<[u8]>>(
    target: &str,
    headers: impl IntoIterator<Item = (N, V)>,
) -> Result<HeaderList, Reject> {
    HeaderList::collect(target, headers, 256)
        .map_err(|name| bad_request(format!("The {name} header is not printable text.")))
}

/// The offered subprotocols (tokens, or a 400) and extension offers (a
/// value that is not an extension list is skipped).
fn offers(headers: &HeaderList) -> Result<(Vec<String>, Vec<Offer>), Reject> {
    let protocols = headers
        .values("sec-websocket-protocol")
        .flat_map(|value| value.split(','))
        .map(trim_ows)
        .filter(|protocol| !protocol.is_empty())
        .map(|protocol| is_token(protocol).then(|| protocol.to_owned()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad_request("The Sec-WebSocket-Protocol header is not a list of tokens."))?;
    // A value that is not an extension list offers nothing we could
    // accept: it is skipped, so its extensions are declined and the
    // handshake goes on (RFC 7692 §5: decline, never fail).
    let extensions = headers
        .values("sec-websocket-extensions")
        .filter_map(|value| parse_extensions(value).ok())
        .flatten()
        .collect();
    Ok((protocols, extensions))
}

/// The checks of RFC 6455 §4.2.1 on a syntactically valid GET request.
fn validate(headers: HeaderList) -> Result<Request, Reject> {
    if single(&headers, "Host")?.is_none() {
        return Err(bad_request("The request is missing a Host header."));
    }
    if !has_token(headers.values("upgrade"), "websocket") {
        return Err(bad_request("The request is missing Upgrade: websocket."));
    }
    if !has_token(headers.values("connection"), "upgrade") {
        return Err(bad_request("The request is missing Connection: Upgrade."));
    }
    // The bytes after the head are the WebSocket's: a body would be read
    // as frames (RFC 6455 §4.1: the handshake is a GET without one).
    if headers.get("transfer-encoding").is_some() {
        return Err(bad_request(
            "An upgrade request must not carry a body (Transfer-Encoding).",
        ));
    }
    if single(&headers, "Content-Length")?.is_some_and(|length| trim_ows(length) != "0") {
        return Err(bad_request(
            "An upgrade request must not carry a body (Content-Length).",
        ));
    }
    match single(&headers, "Sec-WebSocket-Version")? {
        Some("13") => {}
        Some(version) => {
            return Err(upgrade_required(format!(
                "WebSocket version {version} is not supported; use 13."
            )))
        }
        None => {
            return Err(upgrade_required(
                "The request is missing Sec-WebSocket-Version: 13.",
            ))
        }
    }
    let key = single(&headers, "Sec-WebSocket-Key")?
        .ok_or_else(|| bad_request("The request is missing a Sec-WebSocket-Key header."))?;
    let mut decoded = [0; 18];
    if STANDARD.decode_slice(key, &mut decoded) != Ok(16) {
        return Err(bad_request(
            "The Sec-WebSocket-Key header is not 16 base64-encoded bytes.",
        ));
    }
    let (protocols, extensions) = offers(&headers)?;
    let key = headers.positions("Sec-WebSocket-Key").next();
    Ok(Request {
        key,
        headers,
        protocols,
        extensions,
        extended_connect: false,
    })
}

/// The value of a header that must not be repeated.
fn single<'a>(headers: &'a HeaderList, name: &'static str) -> Result<Option<&'a str>, Reject> {
    let mut values = headers.values(name);
    match (values.next(), values.next()) {
        (value, None) => Ok(value),
        _ => Err(bad_request(format!(
            "The request has more than one {name} header."
        ))),
    }
}

fn bad_request(body: impl Into<String>) -> Reject {
    Reject::new(400).with_body(body)
}

fn upgrade_required(body: impl Into<String>) -> Reject {
    Reject::new(426)
        .with_header("Sec-WebSocket-Version", "13")
        .with_body(body)
}

/// The application's acceptance: optional subprotocol and extra headers.
///
/// ```
/// let accept = hubbub_core::Accept::new()
///     .protocol("chat")
///     .header("Set-Cookie", "session=1");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Accept {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }
    /// Choose a subprotocol; it should be one of [`Request::protocols`].
    /// A value that is not an HTTP token is ignored.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        let protocol = protocol.into();
        self.protocol = is_token(&protocol).then_some(protocol);
        self
    }
    /// Add a header to the `101` response. A header whose name is not a
    /// token or whose value holds control characters (CR, LF…) is ignored,
    /// so that it cannot split the response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        push_header(&mut self.headers, name.into(), value.into());
        self
    }
}

/// An HTTP error response refusing the upgrade.
///
/// ```
/// # fn check(req: &hubbub_core::Request) -> Result<(), hubbub_core::Reject> {
/// use hubbub_core::Reject;
/// if req.path() != "/chat" {
///     return Err(Reject::not_found());
/// }
/// if req.origin() != Some("https://example.com") {
///     return Err(Reject::forbidden().with_body("Unknown origin."));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reject {
    /// A response with `status` (a 3xx, 4xx or 5xx code) and its reason
    /// phrase as the body, e.g. `404` → `Not Found`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: reason_phrase(status).to_owned(),
        }
    }
    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Self::new(404)
    }
    /// `403 Forbidden`.
    pub fn forbidden() -> Self {
        Self::new(403)
    }
    /// Add a header. A header whose name is not a token or whose value holds
    /// control characters (CR, LF…) is ignored, so that it cannot split the
    /// response.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        push_header(&mut self.headers, name.into(), value.into());
        self
    }
    /// Replace the plain-text body.
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The body text.
    pub fn body(&self) -> &str {
        &self.body
    }
    /// The extra headers, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
    /// Serialize as an HTTP/1.1 response that closes the connection.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let status = self.status.to_string();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            write_header(out, name, value);
        }
        write_header(out, "Content-Type", "text/plain; charset=utf-8");
        write_header(out, "Content-Length", &self.body.len().to_string());
        write_header(out, "Connection", "close");
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body.as_bytes());
    }
}

impl From<Reject> for HandshakeError {
    fn from(reject: Reject) -> Self {
        HandshakeError::Rejected {
            status: reject.status,
            reason: reject.body,
        }
    }
}

/// The canonical reason phrase of an HTTP status (RFC 9110 §15); for a
/// status it does not know, the name of its class (`Client Error`, ...).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Successful",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// The `101 Switching Protocols` response accepting `request` with
/// `accept` (RFC 6455 §4.2.2; its headers are [`Request::negotiate`]'s,
/// written as they are settled), and what the connection starts with.
pub(crate) fn switching_protocols(
    request: &Request,
    config: &Config,
    accept: Accept,
) -> Result<(Vec<u8>, Negotiated), UsageError> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    let negotiated = request.negotiate_with(config, accept, |name, value| {
        write_header(&mut head, name, value)
    })?;
    head.extend_from_slice(b"\r\n");
    Ok((head, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 4096;

    /// A valid request's headers; tests replace or drop single lines.
    const VALID: [&str; 5] = [
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ];

    use super::super::test_head as head;

    /// The valid request with the header `name` replaced by `line`, or
    /// dropped when `line` is `None`.
    fn valid_with(name: &str, line: Option<&str>) -> Vec<u8> {
        let headers: Vec<&str> = VALID
            .iter()
            .filter_map(|h| if h.starts_with(name) { line } else { Some(*h) })
            .collect();
        head("GET /chat HTTP/1.1", &headers)
    }

    fn parse(bytes: &[u8]) -> Request {
        let (request, len) = parse_request(bytes, LIMIT).unwrap().unwrap();
        assert_eq!(len, bytes.len());
        request
    }

    fn reject(bytes: &[u8]) -> Reject {
        parse_request(bytes, LIMIT).unwrap_err()
    }

    fn assert_rejected(bytes: &[u8], status: u16, body_mentions: &str) -> Reject {
        let reject = reject(bytes);
        assert_eq!(reject.status(), status, "{reject:?}");
        assert!(
            reject.body().contains(body_mentions),
            "body {:?} should mention {body_mentions:?}",
            reject.body()
        );
        reject
    }

    // RFC 6455 §1.3 / §4.1: the example opening handshake, both halves.
    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn reason_phrases_for_known_and_unknown_statuses() {
        let known = [
            (100, "Continue"),
            (200, "OK"),
            (202, "Accepted"),
            (304, "Not Modified"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (503, "Service Unavailable"),
        ];
        for (status, phrase) in known {
            assert_eq!(reason_phrase(status), phrase);
        }
        let classes = [
            (199, "Informational"),
            (299, "Successful"),
            (399, "Redirection"),
            (499, "Client Error"),
            (599, "Server Error"),
        ];
        for (status, phrase) in classes {
            assert_eq!(reason_phrase(status), phrase);
        }
    }

    #[test]
    fn rfc_example_exchange() {
        let request = parse(RFC_REQUEST.as_bytes());
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.host(), "server.example.com");
        assert_eq!(request.origin(), Some("http://example.com"));
        assert_eq!(request.protocols(), ["chat", "superchat"]);
        assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(request.extensions().is_empty());

        assert_eq!(
            answer(&request, Accept::new().protocol("chat")),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    /// The `101` for `request` accepted with `accept`, default config.
    fn answer(request: &Request, accept: Accept) -> String {
        let (out, _) = switching_protocols(request, &Config::default(), accept).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unsafe_accept_headers_and_protocols_are_left_out() {
        let request = parse(RFC_REQUEST.as_bytes());
        let accept = Accept::new()
            .header("Set-Cookie", "a=1")
            .header("X-Bad", "split\r\nInjected: 1")
            .protocol("not a token");
        assert_eq!(
            answer(&request, accept),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Set-Cookie: a=1\r\n\r\n"
        );
    }

    // Incremental parsing: whole, byte by byte, with trailing frame bytes.
    #[test]
    fn byte_at_a_time_needs_more_until_the_last_byte() {
        let bytes = RFC_REQUEST.as_bytes();
        for end in 0..bytes.len() {
            assert!(
                parse_request(&bytes[..end], LIMIT).unwrap().is_none(),
                "at {end}"
            );
        }
        assert!(parse_request(bytes, LIMIT).unwrap().is_some());
    }

    #[test]
    fn trailing_bytes_are_not_consumed() {
        let mut bytes = RFC_REQUEST.as_bytes().to_vec();
        bytes.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
        let (_, len) = parse_request(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!(len, RFC_REQUEST.len());
    }

    #[test]
    fn target_path_and_query() {
        let request = parse(&head("GET /chat?room=1&x HTTP/1.1", &VALID));
        assert_eq!(request.target(), "/chat?room=1&x");
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.query(), Some("room=1&x"));
        let request = parse(&head("GET / HTTP/1.1", &VALID));
        assert_eq!((request.path(), request.query()), ("/", None));
    }

    #[test]
    fn headers_are_kept_in_order_and_looked_up_case_insensitively() {
        let request = parse(&head(
            "GET /chat HTTP/1.1",
            &[
                "hOsT: h",
                "UPGRADE: WebSocket",
                "connection: UPGRADE",
                "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
                "SEC-WEBSOCKET-VERSION: 13",
                "X-Custom:   spaced value  ",
            ],
        ));
        assert_eq!(request.host(), "h");
        assert_eq!(request.header("x-custom"), Some("spaced value"));
        assert_eq!(
            request.header("Sec-WebSocket-Key"),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(request.headers().count(), 6);
        assert_eq!(request.headers().next(), Some(("hOsT", "h")));
        assert_eq!(request.origin(), None);
    }

    // §4.2.1 items 3 and 4: token lists.
    #[test]
    fn upgrade_and_connection_are_token_lists() {
        parse(&valid_with(
            "Connection",
            Some("Connection: keep-alive, Upgrade"),
        ));
        parse(&valid_with("Upgrade", Some("Upgrade: h2c, WebSocket")));
    }

    // §4.2.1 item 8 and §11.3.4: subprotocols across headers.
    #[test]
    fn multiple_protocol_headers_concatenate() {
        let mut headers = VALID.to_vec();
        headers.extend([
            "Sec-WebSocket-Protocol: chat, superchat",
            "sec-websocket-protocol: v2,,",
        ]);
        let request = parse(&head("GET /chat HTTP/1.1", &headers));
        assert_eq!(request.protocols(), ["chat", "superchat", "v2"]);
    }

    // §4.2.1 item 9 and §9.1: extension offers.
    #[test]
    fn extensions_are_parsed_with_quoted_params() {
        let mut headers = VALID.to_vec();
        headers.extend([
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\"",
            "Sec-WebSocket-Extensions: x-foo, permessage-deflate",
        ]);
        let request = parse(&head("GET /chat HTTP/1.1", &headers));
        let names: Vec<_> = request
            .extensions()
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["permessage-deflate", "x-foo", "permessage-deflate"]);
        assert_eq!(
            request.extensions()[0].param("client_max_window_bits"),
            Some(Some("10"))
        );
    }

    // §4.2.1 item 1: GET.
    #[test]
    fn non_get_is_405_with_allow() {
        let reject = assert_rejected(&head("POST /chat HTTP/1.1", &VALID), 405, "POST");
        assert_eq!(reject.headers().collect::<Vec<_>>(), [("Allow", "GET")]);
    }

    // §4.2.1 item 1: HTTP/1.1 or higher.
    #[test]
    fn http_1_0_is_400() {
        assert_rejected(&head("GET /chat HTTP/1.0", &VALID), 400, "HTTP/1.1");
    }

    #[test]
    fn malformed_http_is_400() {
        assert_rejected(
            b"GET /chat HTTP/1.1\r\nBad Header\r\n\r\n",
            400,
            "Malformed HTTP",
        );
        assert_rejected(b"\x00\x01garbage\r\n\r\n", 400, "Malformed HTTP");
        assert_rejected(&head("GET /chat HTTP/2.0", &VALID), 400, "Malformed HTTP");
    }

    // §4.2.1 item 2: Host.
    #[test]
    fn missing_host_is_400() {
        assert_rejected(&valid_with("Host", None), 400, "Host");
        let mut headers = VALID.to_vec();
        headers.push("Host: other");
        assert_rejected(
            &head("GET /chat HTTP/1.1", &headers),
            400,
            "more than one Host",
        );
    }

    // §4.1: the handshake is a GET without a body.
    #[test]
    fn an_upgrade_with_a_body_is_400() {
        let with = |line: &str| {
            let mut headers = VALID.to_vec();
            headers.push(line);
            head("GET /chat HTTP/1.1", &headers)
        };
        assert_rejected(
            &with("Content-Length: 5"),
            400,
            "must not carry a body (Content-Length)",
        );
        assert_rejected(&with("Content-Length: x"), 400, "(Content-Length)");
        assert_rejected(
            &with("Transfer-Encoding: chunked"),
            400,
            "(Transfer-Encoding)",
        );
        let mut twice = VALID.to_vec();
        twice.extend(["Content-Length: 0", "Content-Length: 0"]);
        assert_rejected(
            &head("GET /chat HTTP/1.1", &twice),
            400,
            "more than one Content-Length",
        );
        // An empty body said out loud is no body.
        parse(&with("Content-Length: 0"));
        let headers = [
            ("Host", "h"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Content-Length", "3"),
        ];
        let reject = Request::from_parts("/", headers).unwrap_err();
        assert_eq!(reject.status(), 400);
    }

    // §4.2.1 item 3: Upgrade.
    #[test]
    fn missing_upgrade_is_400() {
        assert_rejected(&valid_with("Upgrade", None), 400, "Upgrade: websocket");
        assert_rejected(
            &valid_with("Upgrade", Some("Upgrade: h2c")),
            400,
            "Upgrade: websocket",
        );
    }

    // §4.2.1 item 4: Connection.
    #[test]
    fn missing_connection_upgrade_is_400() {
        assert_rejected(&valid_with("Connection", None), 400, "Connection: Upgrade");
        let line = Some("Connection: keep-alive");
        assert_rejected(&valid_with("Connection", line), 400, "Connection: Upgrade");
    }

    // §4.2.1 item 6 and §4.4: version.
    #[test]
    fn wrong_version_is_426_with_supported_version() {
        let line = Some("Sec-WebSocket-Version: 8");
        let reject = assert_rejected(&valid_with("Sec-WebSocket-Version", line), 426, "8");
        assert_eq!(
            reject.headers().collect::<Vec<_>>(),
            [("Sec-WebSocket-Version", "13")]
        );
        assert_rejected(
            &valid_with("Sec-WebSocket-Version", None),
            426,
            "Sec-WebSocket-Version",
        );
    }

    // §4.2.1 item 5: key.
    #[test]
    fn missing_or_invalid_key_is_400() {
        assert_rejected(
            &valid_with("Sec-WebSocket-Key", None),
            400,
            "Sec-WebSocket-Key",
        );
        for bad in [
            "Sec-WebSocket-Key: not base64!",
            "Sec-WebSocket-Key: c2hvcnQ=",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSBsb25nZXI=",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",
            "Sec-WebSocket-Key:",
        ] {
            assert_rejected(
                &valid_with("Sec-WebSocket-Key", Some(bad)),
                400,
                "16 base64",
            );
        }
    }

    #[test]
    fn header_values_must_be_printable_text() {
        let mut bytes = valid_with("Host", Some("Host: caf\u{e9}.example"));
        parse(&bytes);
        let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes[at] = 0xff;
        assert_rejected(&bytes, 400, "Host header is not printable");
    }

    #[test]
    fn malformed_protocol_is_400_malformed_extensions_are_declined() {
        let mut headers = VALID.to_vec();
        headers.push("Sec-WebSocket-Protocol: chat, \"quoted\"");
        assert_rejected(
            &head("GET / HTTP/1.1", &headers),
            400,
            "Sec-WebSocket-Protocol",
        );
        // The malformed value offers nothing; the well-formed one still does.
        let mut headers = VALID.to_vec();
        headers.push("Sec-WebSocket-Extensions: permessage-deflate; =1");
        headers.push("Sec-WebSocket-Extensions: x-foo");
        let bytes = head("GET / HTTP/1.1", &headers);
        let (request, _) = parse_request(&bytes, 1 << 16).unwrap().unwrap();
        let names: Vec<&str> = request
            .extensions()
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["x-foo"]);
    }

    #[test]
    fn oversized_head_is_431() {
        let bytes = RFC_REQUEST.as_bytes();
        // Incomplete and already over the limit.
        let reject = parse_request(&bytes[..100], 99).unwrap_err();
        assert_eq!(
            (reject.status(), reject.body()),
            (431, "The request head is too large.")
        );
        // Incomplete, at the limit: wait.
        assert!(parse_request(&bytes[..100], 100).unwrap().is_none());
        // Complete but over the limit.
        assert_eq!(
            parse_request(bytes, bytes.len() - 1).unwrap_err().status(),
            431
        );
        assert!(parse_request(bytes, bytes.len()).unwrap().is_some());
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut headers = VALID.to_vec();
        headers.extend(std::iter::repeat_n("X-Filler: 1", MAX_HEADERS));
        let bytes = head("GET /chat HTTP/1.1", &headers);
        assert_rejected(&bytes, 431, "too many headers");
    }

    #[test]
    fn reject_constructors() {
        let reject = Reject::not_found();
        assert_eq!((reject.status(), reject.body()), (404, "Not Found"));
        assert_eq!(Reject::forbidden().body(), "Forbidden");
        assert_eq!(Reject::new(426).body(), "Upgrade Required");
        assert_eq!(Reject::new(499).body(), "Client Error");
        let reject = Reject::new(401)
            .with_header("WWW-Authenticate", "Bearer")
            .with_body("Log in first.");
        assert_eq!(reject.body(), "Log in first.");
        assert_eq!(
            HandshakeError::from(reject),
            HandshakeError::Rejected {
                status: 401,
                reason: "Log in first.".into()
            }
        );
    }

    #[test]
    fn reject_serializes_as_closing_plain_text_response() {
        let mut out = Vec::new();
        Reject::new(403)
            .with_header("X-Why", "origin")
            .with_body("Unknown origin.")
            .write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 403 Forbidden\r\n\
             X-Why: origin\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 15\r\n\
             Connection: close\r\n\r\n\
             Unknown origin."
        );
    }

    #[test]
    fn extended_connect_needs_version_13_and_no_key() {
        let request = Request::from_extended_connect(
            "/chat?room=1",
            [
                ("host", "example.com"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-protocol", "a, b"),
                (
                    "sec-websocket-extensions",
                    "permessage-deflate; client_max_window_bits",
                ),
                ("origin", "https://example.com"),
            ],
        )
        .unwrap();
        assert!(request.is_extended_connect());
        assert_eq!((request.path(), request.query()), ("/chat", Some("room=1")));
        assert_eq!(request.protocols(), ["a", "b"]);
        assert_eq!(request.extensions().len(), 1);
        assert_eq!(request.origin(), Some("https://example.com"));
        assert_eq!(request.key(), "");
        let upgrade = request
            .negotiate(
                &Config::default(),
                Accept::new().protocol("b").header("x-a", "1"),
            )
            .unwrap();
        assert_eq!(
            upgrade.headers,
            [
                ("Sec-WebSocket-Protocol".to_owned(), "b".to_owned()),
                ("x-a".to_owned(), "1".to_owned())
            ]
        );
        for version in [None, Some("8"), Some("13, 13")] {
            let headers = version.map(|v| ("sec-websocket-version", v));
            let reject = Request::from_extended_connect("/", headers).unwrap_err();
            assert_eq!(reject.status(), 400, "{version:?}");
            assert!(reject
                .headers()
                .any(|h| h == ("Sec-WebSocket-Version", "13")));
        }
        let reject = Request::from_extended_connect(
            "/",
            [
                ("sec-websocket-version", "13"),
                ("sec-websocket-protocol", "a b"),
            ],
        )
        .unwrap_err();
        assert_eq!(reject.status(), 400);
        // The HTTP/1.1 path is unchanged: not extended, with its key.
        assert!(!parse(RFC_REQUEST.as_bytes()).is_extended_connect());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&bytes, 256);
        }

        #[test]
        fn valid_prefix_then_arbitrary_bytes_never_panic(
            cut in 0..RFC_REQUEST.len(),
            tail in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut bytes = RFC_REQUEST.as_bytes()[..cut].to_vec();
            bytes.extend(tail);
            if let Ok(Some((_, len))) = parse_request(&bytes, LIMIT) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}

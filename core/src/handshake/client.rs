//! Client role: build the upgrade request, validate the response.

use std::net::Ipv6Addr;

use super::{
    accept_key, format_extensions, has_token, is_token, parse_extensions, push_header, raw_pairs,
    write_header, HandshakeError, HeaderList, MAX_HEADERS,
};
use crate::{extension::Offer, Config};

/// What a client asks for: where to connect and what to offer.
///
/// ```
/// use hubbub_core::ClientRequest;
/// let request = ClientRequest::from_url("ws://example.com:8080/chat?room=1")?
///     .protocol("chat")
///     .header("Authorization", "Bearer abc");
/// assert_eq!((request.host(), request.port()), ("example.com", 8080));
/// assert_eq!(request.path(), "/chat?room=1");
/// # Ok::<(), hubbub_core::HandshakeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) secure: bool,
}

impl ClientRequest {
    /// A request for `path` (the request target, query included) on `host`,
    /// port 80. An IPv6 address is given without brackets. An empty path
    /// means `/`.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if path.is_empty() {
            path.push('/');
        }
        Self {
            host: host.into(),
            port: 80,
            path,
            protocols: Vec::new(),
            headers: Vec::new(),
            secure: false,
        }
    }

    /// Parse `ws://host[:port][/path][?query]` (port 80 by default) or
    /// `wss://…` (TLS, port 443 by default); IPv6 hosts are bracketed
    /// (`ws://[::1]:9001/`). The core only remembers that the request is
    /// [`secure`](Self::is_secure): the client that opens the connection
    /// runs TLS under it.
    pub fn from_url(url: &str) -> Result<Self, HandshakeError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid_url(format!("{url:?} does not start with ws://")))?;
        let secure = if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.eq_ignore_ascii_case("ws") {
            false
        } else {
            return Err(invalid_url(format!(
                "unsupported scheme {scheme}://, expected ws:// or wss://"
            )));
        };
        if rest.contains('#') {
            return Err(invalid_url("a WebSocket URL cannot have a #fragment"));
        }
        let (authority, resource) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = parse_authority(authority, default_port)?;
        if !resource.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid_url(
                "the path has spaces, control or non-ASCII characters; percent-encode them",
            ));
        }
        let path = if resource.starts_with('?') {
            format!("/{resource}")
        } else {
            resource.to_owned()
        };
        Ok(Self::new(host, path).with_port(port).secure(secure))
    }

    /// Run the connection over TLS (`wss://`) or not. Does not change the
    /// port.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }
    /// Whether the connection runs over TLS (a `wss://` URL).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Connect to `port` instead of the default (80, or 443 for `wss://`).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Offer a subprotocol (call again to offer more, most preferred first).
    /// A value that is not an HTTP token is ignored.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        let protocol = protocol.into();
        if is_token(&protocol) {
            self.protocols.push(protocol);
        }
        self
    }
    /// Add a header to the request. A header whose name is not a token or
    /// whose value holds control characters (CR, LF…) is ignored, so that it
    /// cannot split the request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        push_header(&mut self.headers, name.into(), value.into());
        self
    }
    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The request target: path and query.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The subprotocols offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }
    /// The extra headers, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The headers of this request sent as an extended CONNECT over
    /// HTTP/2 (RFC 8441 §5), in order: `sec-websocket-version: 13`, the
    /// subprotocols and the extensions `config` offers (as the HTTP/1.1
    /// request offers them), then the extra headers, except the ones
    /// HTTP/2 forbids or carries in pseudo-headers (`Host`, `Connection`,
    /// `Upgrade`, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`,
    /// `TE`). Names are lower case. The caller sends them with `:method
    /// CONNECT`, `:protocol websocket`, `:scheme`, `:authority` and
    /// `:path` ([`path`](Self::path)), and hands the answer to
    /// [`Connection::client_upgraded`](crate::Connection::client_upgraded).
    ///
    /// ```
    /// use hubbub_core::{ClientRequest, Config};
    /// let request = ClientRequest::from_url("wss://example.com/chat")?
    ///     .protocol("chat")
    ///     .header("Origin", "https://example.com")
    ///     .header("Connection", "keep-alive");
    /// let headers = request.extended_connect_headers(&Config::default());
    /// assert_eq!(headers[0], ("sec-websocket-version".into(), "13".into()));
    /// assert!(headers.contains(&("sec-websocket-protocol".into(), "chat".into())));
    /// assert!(headers.contains(&("origin".into(), "https://example.com".into())));
    /// assert!(!headers.iter().any(|(name, _)| name == "connection"));
    /// # Ok::<(), hubbub_core::HandshakeError>(())
    /// ```
    pub fn extended_connect_headers(&self, config: &Config) -> Vec<(String, String)> {
        let offers: Vec<Offer> = config.factories().flat_map(|f| f.client_offers()).collect();
        let mut headers = vec![("sec-websocket-version".to_owned(), "13".to_owned())];
        if !self.protocols.is_empty() {
            headers.push(("sec-websocket-protocol".into(), self.protocols.join(", ")));
        }
        if !offers.is_empty() {
            headers.push((
                "sec-websocket-extensions".into(),
                format_extensions(&offers),
            ));
        }
        const NOT_IN_H2: [&str; 7] = [
            "host",
            "connection",
            "upgrade",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "te",
        ];
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            if !NOT_IN_H2.contains(&name.as_str()) {
                headers.push((name, value.clone()));
            }
        }
        headers
    }

    /// Serialize the request with `key` and the extension offers.
    pub(crate) fn write_to(&self, key: &str, extensions: &[Offer], out: &mut Vec<u8>) {
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        if self.host.contains(':') {
            out.push(b'[');
            out.extend_from_slice(self.host.as_bytes());
            out.push(b']');
        } else {
            out.extend_from_slice(self.host.as_bytes());
        }
        if self.port != if self.secure { 443 } else { 80 } {
            out.push(b':');
            out.extend_from_slice(self.port.to_string().as_bytes());
        }
        out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        write_header(out, "Sec-WebSocket-Key", key);
        write_header(out, "Sec-WebSocket-Version", "13");
        if !self.protocols.is_empty() {
            write_header(out, "Sec-WebSocket-Protocol", &self.protocols.join(", "));
        }
        if !extensions.is_empty() {
            write_header(
                out,
                "Sec-WebSocket-Extensions",
                &format_extensions(extensions),
            );
        }
        for (name, value) in &self.headers {
            write_header(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn invalid_url(why: impl Into<String>) -> HandshakeError {
    HandshakeError::InvalidUrl(why.into())
}

/// `host[:port]` or `[ipv6][:port]`; the port defaults to `default_port`.
fn parse_authority(authority: &str, default_port: u16) -> Result<(&str, u16), HandshakeError> {
    if authority.contains('@') {
        return Err(invalid_url(
            "user names and passwords in the URL are not supported",
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid_url("the IPv6 address has no closing ]"))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(invalid_url(format!("{host:?} is not an IPv6 address")));
            }
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => {
                    return Err(invalid_url(format!(
                        "unexpected {after:?} after the IPv6 address"
                    )))
                }
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(invalid_url("the URL has no host"));
    }
    if !host.bytes().all(is_host_byte) {
        return Err(invalid_url(format!(
            "the host {host:?} has invalid characters"
        )));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(digits) => digits
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0 && digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| invalid_url(format!("invalid port {digits:?}")))?,
    };
    Ok((host, port))
}

/// Characters of a registered name or IP address (RFC 3986 §3.2.2); `:`
/// only reaches here inside an IPv6 address.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b)
}

/// A validated `101 Switching Protocols` response, or the `200` that
/// opens a WebSocket over HTTP/2 (RFC 8441).
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: HeaderList,
    pub(crate) protocol: Option<String>,
    pub(crate) extensions: Vec<Offer>,
}

impl Response {
    /// The status code: 101 over HTTP/1.1, 200 for an extended CONNECT
    /// over HTTP/2: the only ones accepted.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    /// Every header as `(name, value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter()
    }
    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
    /// Extensions the server accepted.
    pub fn extensions(&self) -> &[Offer] {
        &self.extensions
    }
}

/// Parse and validate the server's response from everything received so far.
/// `offered_extensions` are the extension names the client offered.
pub(crate) fn parse_response(
    buf: &[u8],
    max_head_size: usize,
    key: &str,
    offered_protocols: &[String],
    offered_extensions: &[&str],
) -> Result<Option<(Response, usize)>, HandshakeError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut raw);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head_size => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head_size => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::HeadTooLarge),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    match parsed.code {
        Some(101) => {}
        code => return Err(HandshakeError::Status(code.unwrap_or_default())),
    }
    if parsed.version != Some(1) {
        return Err(HandshakeError::Malformed(
            "the response is not HTTP/1.1".to_owned(),
        ));
    }
    let headers = HeaderList::collect("", raw_pairs(parsed.headers), len).map_err(|name| {
        HandshakeError::Malformed(format!("the {name} header is not printable text"))
    })?;
    // RFC 6455 §4.1, the client's checks on the server's handshake.
    if !has_token(headers.values("upgrade"), "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !has_token(headers.values("connection"), "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if !accept_matches(&headers, key) {
        return Err(HandshakeError::BadAccept);
    }
    let protocol = chosen_protocol(&headers, offered_protocols)?;
    let extensions = accepted_extensions(&headers, offered_extensions)?;
    Ok(Some((
        Response {
            status: 101,
            headers,
            protocol,
            extensions,
        },
        len,
    )))
}

/// Validate the server's answer to an extended CONNECT (RFC 8441 §5):
/// status `200`, then the same subprotocol and extension checks as a
/// `101`'s (there is no `Upgrade`, `Connection` or `Sec-WebSocket-Accept`
/// to check over HTTP/2). `headers` are the response's, names in any case.
pub(crate) fn check_connect_response(
    status: u16,
    headers: HeaderList,
    offered_protocols: &[String],
    offered_extensions: &[&str],
) -> Result<Response, HandshakeError> {
    if status != 200 {
        return Err(HandshakeError::Status(status));
    }
    let protocol = chosen_protocol(&headers, offered_protocols)?;
    let extensions = accepted_extensions(&headers, offered_extensions)?;
    Ok(Response {
        status,
        headers,
        protocol,
        extensions,
    })
}

/// Whether there is exactly one `Sec-WebSocket-Accept`, and it answers `key`.
fn accept_matches(headers: &HeaderList, key: &str) -> bool {
    let mut values = headers.values("sec-websocket-accept");
    values.next() == Some(accept_key(key.as_bytes()).as_str()) && values.next().is_none()
}

/// The subprotocol the server chose: at most one, and one we offered.
fn chosen_protocol(
    headers: &HeaderList,
    offered: &[String],
) -> Result<Option<String>, HandshakeError> {
    let mut values = headers.values("sec-websocket-protocol");
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(protocol), None) if offered.iter().any(|p| p == protocol) => {
            Ok(Some(protocol.to_owned()))
        }
        (Some(protocol), None) => Err(HandshakeError::UnofferedProtocol(protocol.to_owned())),
        (Some(first), Some(second)) => Err(HandshakeError::UnofferedProtocol(format!(
            "{first}, {second}"
        ))),
    }
}

/// The extensions the server accepted: each offered, none twice.
fn accepted_extensions(
    headers: &HeaderList,
    offered: &[&str],
) -> Result<Vec<Offer>, HandshakeError> {
    let mut accepted: Vec<Offer> = Vec::new();
    for value in headers.values("sec-websocket-extensions") {
        let offers = parse_extensions(value).map_err(|e| {
            HandshakeError::BadExtension(format!("malformed Sec-WebSocket-Extensions: {e}"))
        })?;
        for offer in offers {
            if !offered
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&offer.name))
            {
                return Err(HandshakeError::BadExtension(format!(
                    "{} was not offered",
                    offer.name
                )));
            }
            if accepted.iter().any(|a| a.name == offer.name) {
                return Err(HandshakeError::BadExtension(format!(
                    "{} was accepted twice",
                    offer.name
                )));
            }
            accepted.push(offer);
        }
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 4096;
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    // RFC 6455 §1.3: the server's half of the example exchange.
    const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";

    /// A valid response's headers; tests replace or drop single lines.
    const VALID: [&str; 3] = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    ];

    use super::super::test_head as head;

    fn valid_plus(extra: &[&str]) -> Vec<u8> {
        let mut headers = VALID.to_vec();
        headers.extend(extra);
        head("HTTP/1.1 101 Switching Protocols", &headers)
    }

    /// The valid response with the header `name` replaced by `line`, or
    /// dropped when `line` is `None`.
    fn valid_with(name: &str, line: Option<&str>) -> Vec<u8> {
        let headers: Vec<&str> = VALID
            .iter()
            .filter_map(|h| if h.starts_with(name) { line } else { Some(*h) })
            .collect();
        head("HTTP/1.1 101 Switching Protocols", &headers)
    }

    fn protocols() -> Vec<String> {
        vec!["chat".to_owned(), "superchat".to_owned()]
    }

    fn parse(bytes: &[u8]) -> Result<Option<(Response, usize)>, HandshakeError> {
        parse_response(bytes, LIMIT, KEY, &protocols(), &["permessage-deflate"])
    }

    fn error(bytes: &[u8]) -> HandshakeError {
        parse(bytes).unwrap_err()
    }

    fn written(request: &ClientRequest, extensions: &[Offer]) -> String {
        let mut out = Vec::new();
        request.write_to(KEY, extensions, &mut out);
        String::from_utf8(out).unwrap()
    }

    // §1.3 and §4.1: the example exchange from the client's side.
    #[test]
    fn rfc_example_exchange() {
        let request = ClientRequest::new("server.example.com", "/chat")
            .protocol("chat")
            .protocol("superchat");
        assert_eq!(
            written(&request, &[]),
            "GET /chat HTTP/1.1\r\n\
             Host: server.example.com\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\r\n"
        );
        let (response, len) = parse(RFC_RESPONSE.as_bytes()).unwrap().unwrap();
        assert_eq!(len, RFC_RESPONSE.len());
        assert_eq!(response.status(), 101);
        assert_eq!(response.protocol(), Some("chat"));
        assert!(response.extensions().is_empty());
        assert_eq!(
            response.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(response.headers().count(), 4);
    }

    // §4.1: Host carries the port unless it is the default; IPv6 in brackets.
    #[test]
    fn request_host_port_extensions_and_headers() {
        let request = ClientRequest::new("::1", "")
            .with_port(9001)
            .header("Origin", "http://localhost")
            .header("Bad", "a\nb");
        let offers = [
            Offer {
                name: "permessage-deflate".into(),
                params: vec![("client_max_window_bits".into(), None)],
            },
            Offer {
                name: "x-foo".into(),
                params: vec![],
            },
        ];
        assert_eq!(
            written(&request, &offers),
            "GET / HTTP/1.1\r\n\
             Host: [::1]:9001\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
             Origin: http://localhost\r\n\r\n"
        );
        assert!(written(&ClientRequest::new("h", "/").with_port(80), &[]).contains("Host: h\r\n"));
        assert!(ClientRequest::new("h", "/")
            .protocol("not a token")
            .protocols()
            .is_empty());
    }

    // Incremental parsing: whole, byte by byte, with trailing frame bytes.
    #[test]
    fn byte_at_a_time_needs_more_until_the_last_byte() {
        let bytes = RFC_RESPONSE.as_bytes();
        for end in 0..bytes.len() {
            assert!(parse(&bytes[..end]).unwrap().is_none(), "at {end}");
        }
        assert!(parse(bytes).unwrap().is_some());
    }

    #[test]
    fn trailing_bytes_are_not_consumed() {
        let mut bytes = RFC_RESPONSE.as_bytes().to_vec();
        bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let (_, len) = parse(&bytes).unwrap().unwrap();
        assert_eq!(len, RFC_RESPONSE.len());
    }

    #[test]
    fn headers_are_case_insensitive_token_lists() {
        let bytes = head(
            "HTTP/1.1 101 Switching Protocols",
            &[
                "UPGRADE: WebSocket",
                "connection: keep-alive, Upgrade",
                "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ],
        );
        let (response, _) = parse(&bytes).unwrap().unwrap();
        assert_eq!(response.protocol(), None);
    }

    // §4.1 client check 1: the status.
    #[test]
    fn status_other_than_101_fails() {
        let bytes = head("HTTP/1.1 404 Not Found", &["Content-Length: 0"]);
        assert_eq!(error(&bytes), HandshakeError::Status(404));
        let bytes = head("HTTP/1.1 200 OK", &VALID);
        assert_eq!(error(&bytes), HandshakeError::Status(200));
    }

    // §4.1 client check 2: Upgrade.
    #[test]
    fn missing_upgrade_fails() {
        assert_eq!(
            error(&valid_with("Upgrade", None)),
            HandshakeError::MissingUpgrade
        );
        let line = Some("Upgrade: h2c");
        assert_eq!(
            error(&valid_with("Upgrade", line)),
            HandshakeError::MissingUpgrade
        );
    }

    // §4.1 client check 3: Connection.
    #[test]
    fn missing_connection_upgrade_fails() {
        let expected = HandshakeError::MissingConnectionUpgrade;
        assert_eq!(error(&valid_with("Connection", None)), expected);
        assert_eq!(
            error(&valid_with("Connection", Some("Connection: close"))),
            expected
        );
    }

    // §4.1 client check 4: Sec-WebSocket-Accept.
    #[test]
    fn wrong_or_missing_accept_fails() {
        let name = "Sec-WebSocket-Accept";
        assert_eq!(error(&valid_with(name, None)), HandshakeError::BadAccept);
        let wrong = Some("Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(error(&valid_with(name, wrong)), HandshakeError::BadAccept);
        let twice = valid_plus(&["Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]);
        assert_eq!(error(&twice), HandshakeError::BadAccept);
    }

    // §4.1 client check 6: the subprotocol must have been offered.
    #[test]
    fn unoffered_or_multiple_protocols_fail() {
        let bytes = valid_plus(&["Sec-WebSocket-Protocol: superchat"]);
        assert_eq!(
            parse(&bytes).unwrap().unwrap().0.protocol(),
            Some("superchat")
        );
        let bytes = valid_plus(&["Sec-WebSocket-Protocol: other"]);
        assert_eq!(
            error(&bytes),
            HandshakeError::UnofferedProtocol("other".into())
        );
        let bytes = valid_plus(&["Sec-WebSocket-Protocol: chat, superchat"]);
        assert_eq!(
            error(&bytes),
            HandshakeError::UnofferedProtocol("chat, superchat".into())
        );
        let bytes = valid_plus(&[
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Protocol: chat",
        ]);
        assert_eq!(
            error(&bytes),
            HandshakeError::UnofferedProtocol("chat, chat".into())
        );
    }

    // §4.1 client check 5 and §9.1: accepted extensions.
    #[test]
    fn extensions_must_have_been_offered_once() {
        let bytes = valid_plus(&[
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"10\"",
        ]);
        let (response, _) = parse(&bytes).unwrap().unwrap();
        assert_eq!(
            response.extensions()[0].param("server_max_window_bits"),
            Some(Some("10"))
        );

        let bytes = valid_plus(&["Sec-WebSocket-Extensions: x-foo"]);
        assert_eq!(
            error(&bytes),
            HandshakeError::BadExtension("x-foo was not offered".into())
        );
        let bytes = valid_plus(&[
            "Sec-WebSocket-Extensions: permessage-deflate",
            "Sec-WebSocket-Extensions: permessage-deflate",
        ]);
        assert!(matches!(error(&bytes), HandshakeError::BadExtension(e) if e.contains("twice")));
        let bytes = valid_plus(&["Sec-WebSocket-Extensions: permessage-deflate; ="]);
        assert!(
            matches!(error(&bytes), HandshakeError::BadExtension(e) if e.contains("malformed"))
        );
    }

    #[test]
    fn oversized_head_fails() {
        let bytes = RFC_RESPONSE.as_bytes();
        let too_large =
            |buf: &[u8], limit| parse_response(buf, limit, KEY, &protocols(), &[]).unwrap_err();
        assert_eq!(too_large(&bytes[..50], 49), HandshakeError::HeadTooLarge);
        assert_eq!(
            too_large(bytes, bytes.len() - 1),
            HandshakeError::HeadTooLarge
        );
        let filler = vec!["X-Filler: 1"; MAX_HEADERS];
        assert_eq!(error(&valid_plus(&filler)), HandshakeError::HeadTooLarge);
    }

    #[test]
    fn malformed_head_fails() {
        assert!(matches!(
            error(b"garbage\r\n\r\n"),
            HandshakeError::Malformed(_)
        ));
        let bytes = head("HTTP/1.0 101 Switching Protocols", &VALID);
        assert_eq!(
            error(&bytes),
            HandshakeError::Malformed("the response is not HTTP/1.1".into())
        );
        let mut bytes = valid_plus(&["X-Text: caf\u{e9}"]);
        parse(&bytes).unwrap().unwrap();
        let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes[at] = 0xff;
        assert!(matches!(error(&bytes), HandshakeError::Malformed(e) if e.contains("X-Text")));
    }

    #[test]
    fn urls() {
        let ok = |url: &str| {
            let r = ClientRequest::from_url(url).unwrap();
            (r.host().to_owned(), r.port(), r.path().to_owned())
        };
        let expect = |host: &str, port, path: &str| (host.to_owned(), port, path.to_owned());
        assert_eq!(ok("ws://example.com"), expect("example.com", 80, "/"));
        assert_eq!(ok("ws://example.com/"), expect("example.com", 80, "/"));
        assert_eq!(
            ok("WS://example.com:9001/chat"),
            expect("example.com", 9001, "/chat")
        );
        assert_eq!(ok("ws://h:8080/a/b?x=1&y"), expect("h", 8080, "/a/b?x=1&y"));
        assert_eq!(ok("ws://h?x=1"), expect("h", 80, "/?x=1"));
        assert_eq!(ok("ws://h:/p"), expect("h", 80, "/p"));
        assert_eq!(ok("ws://127.0.0.1:1/"), expect("127.0.0.1", 1, "/"));
        assert_eq!(ok("ws://[::1]:9001/x"), expect("::1", 9001, "/x"));
        assert_eq!(ok("ws://[2001:db8::7]"), expect("2001:db8::7", 80, "/"));
        assert_eq!(ok("wss://example.com/x"), expect("example.com", 443, "/x"));
        assert_eq!(ok("WSS://h:8443"), expect("h", 8443, "/"));
        assert!(ClientRequest::from_url("wss://h/").unwrap().is_secure());
        assert!(!ClientRequest::from_url("ws://h/").unwrap().is_secure());
    }

    #[test]
    fn invalid_urls_name_the_problem() {
        let why = |url: &str| match ClientRequest::from_url(url) {
            Err(HandshakeError::InvalidUrl(why)) => why,
            other => panic!("{url}: {other:?}"),
        };
        assert!(why("http://example.com/").contains("http://"));
        assert!(why("example.com/chat").contains("ws://"));
        assert!(why("ws:///chat").contains("no host"));
        assert!(why("ws://h:99999/").contains("port"));
        assert!(why("ws://h:0/").contains("port"));
        assert!(why("ws://h:+80/").contains("port"));
        assert!(why("ws://h:x/").contains("port"));
        assert!(why("ws://h/#frag").contains("fragment"));
        assert!(why("ws://user:pw@h/").contains("password"));
        assert!(why("ws://[::1/").contains("]"));
        assert!(why("ws://[nope]/").contains("IPv6"));
        assert!(why("ws://[::1]x/").contains("after the IPv6"));
        assert!(why("ws://h o/").contains("invalid characters"));
        assert!(why("ws://h/a b").contains("percent-encode"));
        assert!(why("ws://h/caf\u{e9}").contains("percent-encode"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_response(&bytes, 256, KEY, &protocols(), &["permessage-deflate"]);
        }

        #[test]
        fn valid_prefix_then_arbitrary_bytes_never_panic(
            cut in 0..RFC_RESPONSE.len(),
            tail in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut bytes = RFC_RESPONSE.as_bytes()[..cut].to_vec();
            bytes.extend(tail);
            if let Ok(Some((_, len))) = parse(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_urls_never_panic(url in "(ws|wss|http)://[a-z0-9:@\\[\\]/?#. ]{0,30}") {
            let _ = ClientRequest::from_url(&url);
        }
    }
}

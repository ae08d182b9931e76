//! HTTP responses and their bytes on the wire.

use std::{
    fmt::Write as _,
    fs::File,
    io::{self, Read},
    sync::Arc,
};

use bytes::Bytes;
use serde_json::Value;

use crate::files::FILE_CHUNK;

/// A complete response: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers besides `Content-Length`, `Connection` and `Date` (written
    /// by the server).
    pub headers: Vec<(String, String)>,
    /// The body (not sent for `HEAD` and 304, but still sized). Empty
    /// when the body is a file streamed from disk (see [`Response::file_len`]).
    pub body: Bytes,
    /// A body streamed from a file instead of `body`.
    file: Option<FileBody>,
}

/// A body read from an open file in bounded chunks as it is written
/// (large static files), `len` bytes long.
#[derive(Debug, Clone)]
pub(crate) struct FileBody {
    pub(crate) file: Arc<File>,
    pub(crate) len: u64,
}

impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.len == other.len
    }
}

impl Eq for FileBody {}

impl FileBody {
    /// Append the file's next chunk (at most [`FILE_CHUNK`] bytes of the
    /// `left` still to send) to `out`, and count it off `left`. A file
    /// shorter than its stated length is `UnexpectedEof`: that length was
    /// promised in the head. Shared by both protocols' streaming.
    pub(crate) fn read_chunk(&self, left: &mut u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut reader = &*self.file;
        let start = out.len();
        let chunk = FILE_CHUNK.min(usize::try_from(*left).unwrap_or(FILE_CHUNK));
        out.resize(start + chunk, 0);
        let mut filled = start;
        while filled < out.len() {
            match reader.read(&mut out[filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        *left -= chunk as u64;
        Ok(())
    }
}

impl Response {
    /// `status` with an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            file: None,
        }
    }

    /// The body is `file`, `len` bytes, streamed in chunks when written.
    pub(crate) fn with_file(mut self, content_type: &str, file: File, len: u64) -> Self {
        self = self.with_body(content_type, Bytes::new());
        self.file = Some(FileBody {
            file: Arc::new(file),
            len,
        });
        self
    }

    /// The length of a body streamed from a file (`None` when the body is
    /// [`Response::body`]).
    pub fn file_len(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.len)
    }

    /// The file to stream after the head [`write_to`](Self::write_to)
    /// wrote, if the answer has a body and it is a file.
    pub(crate) fn streamed(&self, head_only: bool) -> Option<&FileBody> {
        let no_body = head_only || self.content_length().is_none();
        self.file.as_ref().filter(|_| !no_body)
    }

    /// `200` with a JSON body.
    pub fn json(value: &Value) -> Self {
        Response::new(200).with_body("application/json", value.to_string())
    }

    /// `200` with a plain-text body.
    pub fn text(text: impl Into<String>) -> Self {
        Response::new(200).with_body("text/plain; charset=utf-8", text.into())
    }

    /// `status` with a short plain-text body: the reason phrase, then
    /// `detail` if given.
    pub fn error(status: u16, detail: &str) -> Self {
        let mut text = format!("{status} {}", reason(status));
        if !detail.is_empty() {
            let _ = write!(text, ": {detail}");
        }
        text.push('\n');
        Response::text(text).with_status(status)
    }

    /// `status` with a JSON body `{"error": message}`.
    pub fn json_error(status: u16, message: &str) -> Self {
        Response::json(&serde_json::json!({ "error": message })).with_status(status)
    }

    /// Change the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Set the body and its `Content-Type`.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".into(), content_type.to_owned()));
        self.body = body.into();
        self
    }

    /// Add a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Append the response to `out`: without the body for `HEAD` (and for
    /// 1xx/204/304, which have none), with `Connection: close` unless
    /// `keep_alive`. A body streamed from a file is not appended (only its
    /// `Content-Length`): the server writes it after the head.
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, keep_alive: bool) {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in self.head_fields() {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some(len) = self.content_length() {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !head_only && self.content_length().is_some() {
            out.extend_from_slice(&self.body);
        }
    }

    /// The `Content-Length` the head states: the body's or file's length,
    /// `None` for the statuses that have no body (1xx, 204, 304), whatever
    /// the method (`HEAD` states the length of the body it does not get).
    pub(crate) fn content_length(&self) -> Option<u64> {
        let no_body = matches!(self.status, 100..=199 | 204 | 304);
        (!no_body).then(|| self.file_len().unwrap_or(self.body.len() as u64))
    }

    /// The route's headers as written in a head, over either protocol:
    /// values never split the head (CR and LF become spaces).
    pub(crate) fn head_fields(&self) -> impl Iterator<Item = (&str, String)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.replace(['\r', '\n'], " ")))
    }
}

/// The reason phrase of `status` (the core's table, also used for
/// handshake refusals).
pub use hubbub_core::handshake::reason_phrase as reason;

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Response, head_only: bool, keep_alive: bool) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, head_only, keep_alive);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_with_length_and_keep_alive() {
        let r = Response::json(&serde_json::json!({"ok": true}));
        assert_eq!(
            wire(&r, false, true),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
        );
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let r = Response::text("hello");
        let text = wire(&r, true, false);
        assert!(text.contains("Content-Length: 5\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
    }

    #[test]
    fn not_modified_has_no_body_and_no_length() {
        let r = Response::text("x").with_status(304);
        let text = wire(&r, false, true);
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn errors_and_header_injection() {
        let r = Response::error(405, "").with_header("Allow", "GET\r\nX: y");
        let text = wire(&r, false, true);
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("Allow: GET  X: y\r\n"), "{text}");
        assert!(text.ends_with("405 Method Not Allowed\n"), "{text}");
    }
}

//! The app's routes over HTTP/2 (feature `h2`): one connection whose
//! extended CONNECTs are hub sessions (RFC 8441) and whose other requests
//! are answered by [`HttpApp::handle`] exactly as over HTTP/1.1.
//!
//! Only the conversion lives here; the decisions are HTTP/1.1's: the same
//! routing, origin guard and per-address rates ([`HttpApp::handle`]), the
//! same long-poll hold (`serve::hold`, watching the stream for a reset
//! instead of the connection for its end), the same file chunks
//! ([`FILE_CHUNK`](crate::FILE_CHUNK), read one at a time), the same
//! `Date` and status counting. What differs is HTTP/2's framing:
//!
//! - the request's body arrives as DATA frames, read up to
//!   [`Limits::max_body`](crate::Limits) (more is 413, as a larger
//!   `Content-Length` is at once) within [`HttpTimeouts::request`]
//!   (else 408), its flow-control capacity released as it is read;
//! - the answer's head drops the fields HTTP/2 forbids (`Connection`,
//!   `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, `Proxy-Connection`);
//! - its body is sent within the send capacity the peer's windows grant,
//!   so at most one file chunk is held for a peer that does not read, and
//!   a peer that takes none of it within [`HttpTimeouts::request`] gets
//!   its stream reset.
//!
//! [`HttpTimeouts::request`]: crate::HttpTimeouts

use std::{
    future::poll_fn,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use h2::{server::SendResponse, Reason, RecvStream, SendStream};
use hubbub_core::Config;
use hubbub_hub::http2::open_h2_session;
use hubbub_ws::{
    driver::Timer,
    h2::{serve_connection, H2Config, H2Io, H2Request, H2Respond, StreamFuture},
    Runtime,
};

use crate::{
    app::{HttpApp, Reply},
    serve::{dated, hold},
    Request, Response,
};

/// Response fields that are connection-specific: forbidden in HTTP/2
/// (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Serve one HTTP/2 connection on `io` with runtime `R`'s timers: with
/// `websockets` (a shared port), an extended CONNECT is a session of the
/// app's hub with that configuration ([`open_h2_session`]); every other
/// request (every request, on an HTTP-only port) is answered by the app's
/// routes. Once the hub shuts down the connection sends GOAWAY, its
/// streams (sessions, held polls) closing as the hub closes them.
pub(crate) async fn serve_h2<R: Runtime, I: H2Io>(
    io: I,
    app: HttpApp,
    websockets: Option<Arc<Config>>,
    h2: H2Config,
    peer: Option<SocketAddr>,
) {
    // The head limit fits both kinds of request.
    let max_head = websockets
        .as_ref()
        .map_or(0, |config| config.max_head_size)
        .max(app.limits().max_head);
    let hub = app.hub().clone();
    let draining = || !hub.is_accepting();
    let answer = |request: H2Request, respond: H2Respond| {
        if let Some(config) = &websockets {
            if request.method() == http::Method::CONNECT {
                // Extended CONNECT (a plain one is refused there, 405).
                return open_h2_session::<R>(app.hub(), config, peer, request, respond);
            }
        }
        let app = app.clone();
        Some(Box::pin(answer_request::<R>(app, request, respond, peer)) as StreamFuture)
    };
    let _ = serve_connection::<R, _, _, _>(io, h2, max_head, draining, answer).await;
}

/// Answer one request on its stream as HTTP/1.1 would.
async fn answer_request<R: Runtime>(
    app: HttpApp,
    request: H2Request,
    mut respond: H2Respond,
    peer: Option<SocketAddr>,
) {
    let mut timer = R::Timer::default();
    // The request's body stays open until the answer is sent (a refused
    // body is not reset before its answer).
    let (parts, mut body) = request.into_parts();
    let head_only = parts.method == http::Method::HEAD;
    let response = match read_request(&app, &mut timer, &parts, &mut body, &mut respond, peer).await
    {
        Ok(request) => match app.handle(&request) {
            Reply::Now(response) => response,
            Reply::Poll(poll) => {
                // A reset stream (or a connection gone) cancels the poll.
                let gone = |cx: &mut Context<'_>| respond.poll_reset(cx).map(|_| ());
                match hold(&mut timer, &app, &poll, peer, gone).await {
                    Some(response) => response,
                    None => return,
                }
            }
        },
        Err(Some(response)) => response,
        Err(None) => return, // the client reset the stream
    };
    app.count(response.status);
    send(&app, &mut timer, respond, &dated(response), head_only).await;
}

/// The request as the routes see it, its body read within the app's
/// limits; or the answer refusing it (`None`: the stream is gone).
async fn read_request<K: Timer>(
    app: &HttpApp,
    timer: &mut K,
    parts: &http::request::Parts,
    body: &mut RecvStream,
    respond: &mut H2Respond,
    peer: Option<SocketAddr>,
) -> Result<Request, Option<Response>> {
    let limits = app.limits();
    let error = |status, message| Some(Response::error(status, message));
    // Sized as an HTTP/1.1 head would be: `name: value` lines.
    let head_size: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if parts.headers.len() > limits.max_headers {
        return Err(error(431, "too many header fields"));
    }
    if head_size > limits.max_head {
        return Err(error(431, "request head too large"));
    }
    // The h2 crate checked that a `Content-Length` is a number and that
    // the DATA frames add up to it.
    let length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    if length.is_some_and(|n| n > limits.max_body as u64) {
        return Err(error(413, "request body too large"));
    }
    let mut received = BytesMut::new();
    if !body.is_end_stream() {
        let expects = parts
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if expects {
            let mut continued = http::Response::new(());
            *continued.status_mut() = http::StatusCode::CONTINUE;
            let _ = respond.send_informational(continued);
        }
        timer.reset(timer.now() + app.timeouts().request);
        let read = poll_fn(|cx| loop {
            match body.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    if received.len() + data.len() > limits.max_body {
                        return Poll::Ready(Err(error(413, "request body too large")));
                    }
                    received.extend_from_slice(&data);
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(None)),
                Poll::Pending => return timer.poll(cx).map(|()| Err(error(408, ""))),
            }
        });
        read.await?;
    }
    Ok(request_from(parts, received.freeze(), peer))
}

/// The core of [`read_request`]: an HTTP/2 head as a [`Request`]
/// (version 2, header names in lower case, `:authority` as `Host` when
/// there is none).
fn request_from(parts: &http::request::Parts, body: Bytes, peer: Option<SocketAddr>) -> Request {
    let host = parts
        .uri
        .authority()
        .filter(|_| !parts.headers.contains_key(http::header::HOST))
        .map(|authority| ("host".to_owned(), authority.as_str().to_owned()));
    let headers = host
        .into_iter()
        .chain(parts.headers.iter().map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        }));
    let path = parts.uri.path();
    Request {
        method: parts.method.as_str().to_owned(),
        path: if path.is_empty() { "/" } else { path }.to_owned(),
        query: parts.uri.query().map(str::to_owned),
        version: 2,
        headers: headers.collect(),
        body,
        peer,
    }
}

/// `response` as an HTTP/2 head: its status, the route's fields but the
/// connection-specific ones, `content-length` as over HTTP/1.1.
fn head_of(response: &Response) -> Option<http::Response<()>> {
    let mut head = http::Response::builder().status(response.status);
    for (name, value) in response.head_fields() {
        let name = name.to_ascii_lowercase();
        if CONNECTION_SPECIFIC.contains(&name.as_str()) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = http::HeaderValue::from_str(&value);
        if let (Ok(name), Ok(value)) = (name, value) {
            head = head.header(name, value);
        }
    }
    if let Some(length) = response.content_length() {
        head = head.header(http::header::CONTENT_LENGTH, length);
    }
    head.body(()).ok()
}

/// Send `response` (without its body when `head_only`): the body, or the
/// file it streams chunk by chunk, within the peer's windows.
async fn send<K: Timer>(
    app: &HttpApp,
    timer: &mut K,
    mut respond: SendResponse<Bytes>,
    response: &Response,
    head_only: bool,
) {
    let Some(head) = head_of(response) else {
        respond.send_reset(Reason::INTERNAL_ERROR);
        return;
    };
    let has_body = !head_only && response.content_length().is_some_and(|n| n > 0);
    let Ok(mut stream) = respond.send_response(head, !has_body) else {
        return;
    };
    if !has_body {
        return;
    }
    let limit = app.timeouts().request;
    let sent = match response.streamed(head_only) {
        None => send_data(&mut stream, timer, response.body.clone(), true, limit).await,
        Some(file) => {
            let mut left = file.len;
            let mut sent = Ok(());
            while left > 0 && sent.is_ok() {
                // One chunk at a time, read once the one before was sent.
                let mut chunk = Vec::new();
                if file.read_chunk(&mut left, &mut chunk).is_err() {
                    // Its length was promised in the head.
                    sent = Err(Reason::INTERNAL_ERROR);
                    break;
                }
                sent = send_data(&mut stream, timer, chunk.into(), left == 0, limit).await;
            }
            sent
        }
    };
    if let Err(reason) = sent {
        stream.send_reset(reason);
    }
}

/// Send `data` (ending the stream after it with `end`) in pieces the
/// peer's windows have room for: nothing is queued beyond them. A peer
/// that grants no room for `limit` is an error (the reason to reset the
/// stream with).
async fn send_data<K: Timer>(
    stream: &mut SendStream<Bytes>,
    timer: &mut K,
    mut data: Bytes,
    end: bool,
    limit: Duration,
) -> Result<(), Reason> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        timer.reset(timer.now() + limit);
        let granted = poll_fn(|cx| {
            let capacity = stream.capacity();
            if capacity > 0 {
                return Poll::Ready(Ok(capacity));
            }
            match stream.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => {
                    // Read again next turn (it may have been taken).
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Some(Err(_)) | None) => Poll::Ready(Err(Reason::CANCEL)),
                Poll::Pending => timer.poll(cx).map(|()| Err(Reason::CANCEL)),
            }
        })
        .await?;
        let piece = data.split_to(granted.min(data.len()));
        stream
            .send_data(piece, end && data.is_empty())
            .map_err(|_| Reason::CANCEL)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_drop_connection_specific_fields_and_keep_the_length() {
        let response = Response::text("hello")
            .with_header("Connection", "close")
            .with_header("Keep-Alive", "timeout=5")
            .with_header("Upgrade", "h2c")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("X-Test", "a\r\nb");
        let head = head_of(&response).unwrap();
        assert_eq!(head.status(), 200);
        let fields = head.headers();
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert_eq!(fields["content-type"], "text/plain; charset=utf-8");
        assert_eq!(fields["content-length"], "5");
        assert_eq!(fields["x-test"], "a  b");
        let not_modified = head_of(&Response::text("x").with_status(304)).unwrap();
        assert!(!not_modified.headers().contains_key("content-length"));
    }

    #[test]
    fn requests_keep_their_target_headers_and_authority() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("https://example.test:8443/ws/send?a=1")
            .header("origin", "https://example.test:8443")
            .body(())
            .unwrap()
            .into_parts();
        let request = request_from(&parts, Bytes::from_static(b"{}"), None);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/ws/send");
        assert_eq!(request.query.as_deref(), Some("a=1"));
        assert_eq!(request.header("Host"), Some("example.test:8443"));
        assert_eq!(request.header("Origin"), Some("https://example.test:8443"));
        assert_eq!(&request.body[..], b"{}");
    }
}

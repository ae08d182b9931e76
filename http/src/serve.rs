//! Serving one HTTP connection over the driver's [`Transport`] and
//! [`Timer`]: written once, run by every runtime adapter (only the accept
//! loops differ).
//!
//! Requests are answered in order (pipelined ones too; answers to a batch
//! go out in one write, up to 64 KiB: then the batch is written before more
//! requests are taken, so a client that does not read cannot make the
//! server hold its answers without bound). An idle connection releases
//! buffers grown by large answers. A long poll holds its connection's later
//! requests until it is answered; meanwhile the connection is still read,
//! so a client that goes away cancels its poll instead of taking messages
//! to a dead socket.

use std::{
    future::{poll_fn, Future},
    io,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use bytes::BytesMut;
use hubbub_core::{Config, Connection};

use hubbub_hub::run_session;
use hubbub_ws::driver::{Driver, Timer, Transport};

use crate::{
    app::{HttpApp, PollRequest, Reply},
    longpoll::{json_array, LongPoll, Taken},
    request::{Next, RequestReader},
    response::FileBody,
    Response,
};

/// Bytes read at a time.
const READ_CHUNK: usize = 8 << 10;
/// After a final answer, unread request bytes are drained for at most this
/// long and this many bytes, so the close does not reset the connection
/// before the peer has read the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 10;
/// Answers to pipelined requests are gathered into one write up to about
/// this many bytes; past it the gathered answers are written (the peer must
/// take them within the request timeout) before the next buffered request
/// is answered. A client that pipelines many requests and does not read
/// then holds this much of the server's memory (plus one answer), not
/// every answer; small answers still go out many to a write.
const OUT_BATCH: usize = 64 << 10;
/// An idle keep-alive connection keeps an answer buffer of at most this
/// capacity: one grown by a large answer or a long batch is released
/// before waiting for the next request.
const IDLE_KEEP: usize = 4 << 10;

/// How [`serve_connection`] ended.
#[derive(Debug)]
pub enum Served<T, K> {
    /// The connection is finished: drop the transport.
    Done,
    /// A WebSocket upgrade request arrived (with upgrades enabled): the
    /// transport, the timer and the bytes read so far, starting with the
    /// request, for a server [`Connection`].
    Upgrade {
        /// The transport.
        io: T,
        /// The timer.
        timer: K,
        /// The upgrade request and whatever followed it.
        buffered: BytesMut,
    },
}

/// Serve HTTP requests on `io` with `app` until the connection ends. With
/// `upgrades`, a WebSocket upgrade request ends HTTP serving and is handed
/// back as [`Served::Upgrade`]. (The client's address unknown: see
/// [`serve_connection_from`].)
pub async fn serve_connection<T: Transport, K: Timer>(
    io: T,
    timer: K,
    app: &HttpApp,
    upgrades: bool,
) -> Served<T, K> {
    serve_connection_from(io, timer, app, upgrades, None).await
}

/// [`serve_connection`] for a client at `peer` ([`Request::peer`](crate::Request::peer),
/// which the per-address limits count by).
pub async fn serve_connection_from<T: Transport, K: Timer>(
    mut io: T,
    mut timer: K,
    app: &HttpApp,
    upgrades: bool,
    peer: Option<SocketAddr>,
) -> Served<T, K> {
    let mut reader = RequestReader::new(app.limits(), upgrades);
    let timeouts = app.timeouts();
    let mut out = Vec::new();
    let mut buf = vec![0; READ_CHUNK];
    // When the first byte of the request being read arrived: the whole
    // request must follow within `timeouts.request` (no slow trickle).
    let mut started: Option<Instant> = None;
    loop {
        loop {
            // Back-pressure: a long batch goes out before more requests are
            // taken (and none are read meanwhile).
            if out.len() >= OUT_BATCH
                && write_all(&mut io, &mut timer, &mut out, timeouts.request)
                    .await
                    .is_err()
            {
                return Served::Done;
            }
            let request = match reader.next_request() {
                Next::Incomplete => break,
                Next::Continue => {
                    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    break;
                }
                Next::Upgrade => {
                    if write_all(&mut io, &mut timer, &mut out, timeouts.request)
                        .await
                        .is_err()
                    {
                        return Served::Done;
                    }
                    return Served::Upgrade {
                        io,
                        timer,
                        buffered: reader.into_buffered(),
                    };
                }
                Next::Error(error) => {
                    app.count(error.status);
                    dated(Response::error(error.status, error.message))
                        .write_to(&mut out, false, false);
                    finish(&mut io, &mut timer, &mut out, timeouts.request).await;
                    return Served::Done;
                }
                Next::Request(request) => crate::Request { peer, ..request },
            };
            started = None;
            // While shutting down, every answer is the connection's last.
            let keep_alive = request.keep_alive() && app.hub().is_accepting();
            let response = match app.handle(&request) {
                Reply::Now(response) => response,
                Reply::Poll(poll) => {
                    // Earlier pipelined answers go out before the hold.
                    if write_all(&mut io, &mut timer, &mut out, timeouts.request)
                        .await
                        .is_err()
                    {
                        return Served::Done;
                    }
                    release_idle(&mut out, &mut reader);
                    // The connection is watched meanwhile: pipelined bytes
                    // are kept (bounded), the end of the stream cancels the
                    // poll.
                    let limits = app.limits();
                    let room = limits.max_head + limits.max_body;
                    let mut buf = [0u8; 512];
                    let gone = |cx: &mut Context<'_>| {
                        while reader.buffered_len() < room {
                            match io.poll_read(cx, &mut buf) {
                                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                                Poll::Ready(Ok(n)) => reader.feed(&buf[..n]),
                                Poll::Pending => break,
                            }
                        }
                        Poll::Pending
                    };
                    let held = hold(&mut timer, app, &poll, peer, gone);
                    match held.await {
                        Some(response) => response,
                        None => return Served::Done,
                    }
                }
            };
            app.count(response.status);
            let response = dated(response);
            response.write_to(&mut out, request.is_head(), keep_alive);
            if let Some(file) = response.streamed(request.is_head()) {
                // A file that cannot be read to its length ends the
                // connection: its length was promised in the head.
                if stream_file(&mut io, &mut timer, &mut out, file, timeouts.request)
                    .await
                    .is_err()
                {
                    return Served::Done;
                }
            }
            if !keep_alive {
                finish(&mut io, &mut timer, &mut out, timeouts.request).await;
                return Served::Done;
            }
        }
        if write_all(&mut io, &mut timer, &mut out, timeouts.request)
            .await
            .is_err()
        {
            return Served::Done;
        }
        let partial = reader.has_partial();
        let deadline = if partial {
            *started.get_or_insert_with(|| timer.now()) + timeouts.request
        } else {
            release_idle(&mut out, &mut reader);
            timer.now() + timeouts.idle
        };
        match read_until(&mut io, &mut timer, &mut buf, deadline).await {
            Some(Ok(n)) if n > 0 => reader.feed(&buf[..n]),
            Some(_) => return Served::Done, // end of stream or error
            None if partial => {
                app.count(408);
                dated(Response::error(408, "")).write_to(&mut out, false, false);
                finish(&mut io, &mut timer, &mut out, timeouts.request).await;
                return Served::Done;
            }
            None => {
                // Idle keep-alive connection: close quietly.
                finish(&mut io, &mut timer, &mut out, timeouts.request).await;
                return Served::Done;
            }
        }
    }
}

/// Serve a connection on a shared port: HTTP until a WebSocket upgrade
/// request, which then runs as a session of the app's hub, configured by
/// `config`.
///
/// The HTTP phase runs boxed: its state is several KiB (buffers included),
/// and a future is as large as its largest state, so a WebSocket session
/// that follows would otherwise keep that room for its whole life (see
/// ARCHITECTURE.md §13, memory at rest).
pub fn serve_shared<'a, T: Transport + 'a, K: Timer + 'a>(
    io: T,
    timer: K,
    app: &'a HttpApp,
    config: Arc<Config>,
    peer: Option<SocketAddr>,
) -> impl Future<Output = ()> + 'a {
    let http = Box::pin(serve_connection_from(io, timer, app, true, peer));
    async move {
        // Built in a scope of its own: the parts it is made of take no room
        // beside the running session.
        let session = match http.await {
            Served::Upgrade {
                io,
                timer,
                buffered,
            } => {
                let now = timer.now();
                let mut conn = Connection::server(config, now);
                conn.handle_input(now, &buffered);
                run_session(Driver::new(conn, io, timer), app.hub().clone(), peer)
            }
            _ => return,
        };
        session.await;
    }
}

/// Between requests, drop buffer room an idle connection need not keep.
fn release_idle(out: &mut Vec<u8>, reader: &mut RequestReader) {
    if out.capacity() > IDLE_KEEP {
        *out = Vec::new();
    }
    reader.release_idle();
}

/// `response` with the `Date` header an origin server sends (RFC 9110
/// §6.6.1).
pub(crate) fn dated(response: Response) -> Response {
    response.with_header("Date", httpdate::fmt_http_date(SystemTime::now()))
}

/// Cancels a held poll whose future is dropped (its task aborted).
struct Waiting<'a> {
    long_poll: &'a LongPoll,
    session: &'a str,
    waiter: Option<u64>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter {
            self.long_poll.cancel(self.session, waiter);
        }
    }
}

/// Hold a long poll until messages arrive or its timeout passes; `None`
/// when the client went away: `gone` is ready once it has (HTTP/1.1: the
/// connection ended or sent bytes past the limits; HTTP/2: the stream
/// was reset). Shared by both protocols.
pub(crate) async fn hold<K: Timer>(
    timer: &mut K,
    app: &HttpApp,
    poll: &PollRequest,
    peer: Option<SocketAddr>,
    mut gone: impl FnMut(&mut Context<'_>) -> Poll<()>,
) -> Option<Response> {
    let long_poll = app.long_poll()?;
    if let Err(refused) = long_poll.open(&poll.session, peer.map(|p| p.ip())) {
        return Some(
            Response::json_error(refused.status(), refused.message())
                .with_header("Retry-After", "1"),
        );
    }
    let _held = match app.hold_poll(peer.map(|p| p.ip())) {
        Ok(held) => held,
        Err(refused) => return Some(refused),
    };
    app.metrics().lp_polls_total.inc();
    timer.reset(timer.now() + poll.timeout);
    let mut waiting = Waiting {
        long_poll,
        session: &poll.session,
        waiter: None,
    };
    let messages = poll_fn(|cx: &mut Context<'_>| {
        match long_poll.take(&poll.session, poll.max, cx.waker(), waiting.waiter) {
            Taken::Messages(messages) => {
                waiting.waiter = None;
                return Poll::Ready(Some(Ok(messages)));
            }
            Taken::Full => return Poll::Ready(Some(Err(()))),
            Taken::Waiting(id) => waiting.waiter = Some(id),
        }
        if timer.poll(cx).is_ready() {
            return Poll::Ready(Some(Ok(Vec::new())));
        }
        gone(cx).map(|()| None)
    })
    .await;
    match messages? {
        Ok(messages) => {
            Some(Response::new(200).with_body("application/json", json_array(&messages)))
        }
        Err(()) => Some(
            Response::json_error(503, "too many long-poll sessions")
                .with_header("Retry-After", "1"),
        ),
    }
}

/// Read once, unless `deadline` passes first (`None`).
async fn read_until<T: Transport, K: Timer>(
    io: &mut T,
    timer: &mut K,
    buf: &mut [u8],
    deadline: Instant,
) -> Option<io::Result<usize>> {
    timer.reset(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(result) = io.poll_read(cx, buf) {
            return Poll::Ready(Some(result));
        }
        match timer.poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Write and flush all of `out` (then clear it), giving up after `limit`.
async fn write_all<T: Transport, K: Timer>(
    io: &mut T,
    timer: &mut K,
    out: &mut Vec<u8>,
    limit: Duration,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    timer.reset(timer.now() + limit);
    let mut written = 0;
    let result = poll_fn(|cx| {
        while written < out.len() {
            match io.poll_write(cx, &out[written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    return match timer.poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
        }
        match io.poll_flush(cx) {
            Poll::Pending if timer.poll(cx).is_ready() => {
                Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
            }
            other => other,
        }
    })
    .await;
    out.clear();
    result
}

/// Write what `out` holds, then `file` in chunks of [`FILE_CHUNK`](crate::FILE_CHUNK), each
/// read once the one before was written (so at most one chunk, plus the
/// answers gathered before, is held for a peer that does not read).
async fn stream_file<T: Transport, K: Timer>(
    io: &mut T,
    timer: &mut K,
    out: &mut Vec<u8>,
    file: &FileBody,
    limit: Duration,
) -> io::Result<()> {
    let mut left = file.len;
    while left > 0 {
        file.read_chunk(&mut left, out)?;
        write_all(io, timer, out, limit).await?;
    }
    Ok(())
}

/// The last answer: write it, send FIN, then read and discard what the peer
/// still sends (bounded in bytes and time) so our close is not a reset.
async fn finish<T: Transport, K: Timer>(
    io: &mut T,
    timer: &mut K,
    out: &mut Vec<u8>,
    limit: Duration,
) {
    if write_all(io, timer, out, limit).await.is_err() {
        return;
    }
    if poll_fn(|cx| io.poll_shutdown(cx)).await.is_err() {
        return;
    }
    let deadline = timer.now() + LINGER;
    let mut left = LINGER_BYTES;
    let mut buf = [0u8; 4096];
    while left > 0 {
        match read_until(io, timer, &mut buf, deadline).await {
            Some(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        cell::RefCell,
        future::Future,
        pin::pin,
        rc::Rc,
        task::{Context, Poll, Waker},
    };

    use hubbub_hub::Hub;

    use super::*;
    use crate::Limits;
    use crate::FILE_CHUNK;

    /// The peer's side of an in-memory connection: bytes it sent (then, at
    /// their end, end of stream), and a receive window it opens by reading.
    #[derive(Default)]
    struct Peer {
        sent: Vec<u8>,
        read_at: usize,
        /// How many more bytes the server may write before it must wait.
        window: usize,
        received: Vec<u8>,
        /// Writes the server made.
        writes: usize,
        /// The largest slice the server offered to one write.
        largest_write: usize,
    }

    struct Memory(Rc<RefCell<Peer>>);

    impl Transport for Memory {
        fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut peer = self.0.borrow_mut();
            let at = peer.read_at;
            let n = buf.len().min(peer.sent.len() - at);
            buf[..n].copy_from_slice(&peer.sent[at..at + n]);
            peer.read_at += n;
            Poll::Ready(Ok(n))
        }

        fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let mut peer = self.0.borrow_mut();
            peer.largest_write = peer.largest_write.max(buf.len());
            let n = buf.len().min(peer.window);
            if n == 0 {
                return Poll::Pending;
            }
            peer.window -= n;
            peer.writes += 1;
            peer.received.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A timer that never fires (the test drives every step).
    struct Never;

    impl Timer for Never {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn reset(&mut self, _: Instant) {}
        fn poll(&mut self, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    /// Each answer's body: the request's number, padded to about 1 KiB.
    fn numbered_app() -> HttpApp {
        HttpApp::builder(Hub::builder().build())
            .get("/n", |req| {
                let n = req.query_param("i").unwrap_or_default();
                Response::text(format!("{n:>1000}"))
            })
            .build()
    }

    /// The bodies of the complete answers in `bytes`, in order.
    fn bodies(mut bytes: &[u8]) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut answer = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(head)) = answer.parse(bytes) else {
                return bodies;
            };
            assert_eq!(answer.code, Some(200));
            let len: usize = answer
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .expect("a content-length");
            if bytes.len() < head + len {
                return bodies;
            }
            bodies.push(
                String::from_utf8_lossy(&bytes[head..head + len])
                    .trim()
                    .to_owned(),
            );
            bytes = &bytes[head + len..];
        }
    }

    /// A directory with a 1 MiB file `big.bin` of the byte pattern
    /// `i % 251`, served by an app.
    fn big_file_app() -> (HttpApp, std::path::PathBuf, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!(
            "hubbub-serve-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("big.bin"), &big).unwrap();
        let app = HttpApp::builder(Hub::builder().build())
            .static_files(crate::StaticFiles::new(&dir))
            .build();
        (app, dir, big)
    }

    #[test]
    fn a_large_file_is_streamed_in_chunks_to_a_peer_that_does_not_read() {
        let (app, dir, big) = big_file_app();
        let peer = Rc::new(RefCell::new(Peer {
            window: 16 << 10,
            ..Peer::default()
        }));
        // 8 KiB of pipelined requests for the 1 MiB file.
        let request = b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
        let requests = (8 << 10) / request.len();
        for _ in 0..requests {
            peer.borrow_mut().sent.extend_from_slice(request);
        }
        let mut served = pin!(serve_connection(Memory(peer.clone()), Never, &app, false));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(served.as_mut().poll(&mut cx).is_pending());
        assert!(served.as_mut().poll(&mut cx).is_pending());
        // Held for the peer: one chunk and a head, not the file (before:
        // the whole answer, 1 MiB, was built and offered in one write).
        let largest = peer.borrow().largest_write;
        assert!(
            largest <= FILE_CHUNK + 1024,
            "{largest} bytes offered in one write to a peer that does not read"
        );
        // The peer reads two answers: each is the whole file.
        let mut rounds = 0;
        while peer.borrow().received.len() < 2 * (big.len() + 1024) {
            assert!(served.as_mut().poll(&mut cx).is_pending());
            rounds += 1;
            assert!(rounds < 1000, "the server stalled");
            peer.borrow_mut().window += 64 << 10;
        }
        let received = peer.borrow().received.clone();
        let mut rest = &received[..];
        for _ in 0..2 {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut answer = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(head)) = answer.parse(rest) else {
                panic!("no complete head");
            };
            assert_eq!(answer.code, Some(200));
            let length = answer
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| h.value);
            assert_eq!(length, Some(&b"1048576"[..]));
            assert!(rest[head..head + big.len()] == big[..], "the body differs");
            rest = &rest[head + big.len()..];
        }
        assert!(peer.borrow().largest_write <= FILE_CHUNK + 1024);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn head_of_a_large_file_has_its_length_and_no_body() {
        let (app, dir, _) = big_file_app();
        let peer = Rc::new(RefCell::new(Peer {
            window: 1 << 20,
            ..Peer::default()
        }));
        peer.borrow_mut()
            .sent
            .extend_from_slice(b"HEAD /big.bin HTTP/1.1\r\nConnection: close\r\n\r\n");
        let mut served = pin!(serve_connection(Memory(peer.clone()), Never, &app, false));
        let mut cx = Context::from_waker(Waker::noop());
        let mut rounds = 0;
        while served.as_mut().poll(&mut cx).is_pending() {
            rounds += 1;
            assert!(rounds < 100, "the server stalled");
        }
        let text = String::from_utf8(peer.borrow().received.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 1048576\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn idle_connections_release_grown_buffers() {
        let mut reader = RequestReader::new(Limits::default(), false);
        let mut out = Vec::with_capacity(16);
        release_idle(&mut out, &mut reader);
        assert_eq!(out.capacity(), 16, "a small buffer is kept");
        out.resize(1 << 20, b'x');
        out.clear();
        release_idle(&mut out, &mut reader);
        assert!(out.capacity() <= IDLE_KEEP, "{}", out.capacity());
    }

    #[test]
    fn pipelined_answers_wait_for_a_peer_that_does_not_read() {
        const REQUESTS: usize = 2000;
        let app = numbered_app();
        let peer = Rc::new(RefCell::new(Peer {
            window: 16 << 10, // what the socket buffers would take
            ..Peer::default()
        }));
        for i in 0..REQUESTS {
            let request = format!("GET /n?i={i} HTTP/1.1\r\nHost: t\r\n\r\n");
            peer.borrow_mut().sent.extend_from_slice(request.as_bytes());
        }
        let mut served = pin!(serve_connection(Memory(peer.clone()), Never, &app, false));
        let mut cx = Context::from_waker(Waker::noop());
        // The peer does not read: the server waits with a bounded batch.
        assert!(served.as_mut().poll(&mut cx).is_pending());
        assert!(served.as_mut().poll(&mut cx).is_pending());
        let largest = peer.borrow().largest_write;
        assert!(
            largest <= OUT_BATCH + 2048,
            "{largest} bytes of answers held for a peer that does not read"
        );
        // It stopped taking requests: most of them are still unread.
        assert!(peer.borrow().read_at < peer.borrow().sent.len() / 2);
        // The peer reads: every answer arrives, in order, batched.
        let mut rounds = 0;
        while served.as_mut().poll(&mut cx).is_pending() {
            rounds += 1;
            assert!(rounds < 10_000, "the server stalled");
            peer.borrow_mut().window += 64 << 10;
        }
        let got = bodies(&peer.borrow().received);
        let expected: Vec<String> = (0..REQUESTS).map(|i| i.to_string()).collect();
        assert_eq!(got, expected);
        assert!(peer.borrow().largest_write <= OUT_BATCH + 2048);
        let writes = peer.borrow().writes;
        assert!(
            writes < REQUESTS / 10,
            "small answers are batched: {writes} writes"
        );
    }
}

//! The connection driver: moves bytes between a transport and a
//! [`Connection`], and sleeps until the core's next deadline.
//!
//! It depends only on the two small traits below, [`Transport`] and
//! [`Timer`], so any runtime can reuse it: each adapter crate implements
//! them (hubbub-tokio, hubbub-smol, hubbub-mio). The driver makes no
//! protocol decision; it follows the polling order documented on
//! [`Connection`]:
//!
//! 1. hand out the core's events;
//! 2. write everything pending with one vectored write;
//! 3. once the core is closed and flushed, shut down the write half (a
//!    client does so only once the server has closed its own);
//! 4. fire the core's timer when its deadline passes;
//! 5. read into a buffer shared by every connection on the thread and feed
//!    it to the core, then start over.
//!
//! A connection at rest holds no read or write buffer of its own: reads go
//! through a 64 KiB thread-local buffer, and bytes to write stay in the core.

use std::{
    cell::RefCell,
    fmt,
    future::{poll_fn, Future},
    io::{self, IoSlice},
    task::{ready, Context, Poll, Waker},
    time::Instant,
};

use hubbub_core::{
    Accept, Connection, Event, HandshakeError, Opened, Reject, Request, Role, UsageError,
};

/// The byte stream a connection runs over (a TCP socket, usually).
pub trait Transport {
    /// Read into `buf`; `Ok(0)` means end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Write from `buf`; returns how many bytes were written.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Write from `bufs` in order; returns how many bytes were written. By
    /// default the first non-empty slice alone, as `std::io::Write` does:
    /// a transport with a real vectored write should override it.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.poll_write(cx, first)
    }
    /// Flush buffered writes, if the transport buffers (by default it does
    /// not: ready at once).
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Shut down the write half (TCP: send FIN).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Whether a client ends its write half as soon as the close handshake
    /// is done, as a server does, instead of waiting for the server's end
    /// first. RFC 6455 §7.1.1's wait leaves TCP's TIME_WAIT with the
    /// server; an HTTP/2 stream (RFC 8441) has none, and servers there may
    /// wait for the client's END_STREAM. `false` by default (TCP, TLS).
    fn ends_at_close(&self) -> bool {
        false
    }
}

/// One resettable timer and the clock it runs on.
pub trait Timer {
    /// The current time on the timer's clock.
    fn now(&self) -> Instant;
    /// Fire at `deadline` (replacing any earlier setting).
    fn reset(&mut self, deadline: Instant);
    /// Ready once the deadline set by [`reset`](Self::reset) has passed.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// No deadline is needed any more (the connection has none): a timer
    /// that holds something while set may release it. Does nothing by
    /// default; [`reset`](Self::reset) sets it again.
    fn cancel(&mut self) {}
}

/// Most slices handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Size of the per-thread read buffer.
const READ_BUFFER: usize = 64 << 10;

/// Reading stops while more than this many bytes wait to be written and the
/// transport does not accept them: a peer that does not read cannot make us
/// queue unbounded replies (pongs, close echoes, the application's answers).
pub const BACKLOG_LIMIT: usize = 256 << 10;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Why [`Driver::open`] could not open the connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The handshake failed; a server's HTTP error answer was written first.
    Handshake(HandshakeError),
    /// The transport failed.
    Io(io::Error),
    /// The core refused the application's answer (e.g. a subprotocol the
    /// client did not offer).
    Usage(UsageError),
    /// The connection ended before opening.
    Closed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Handshake(e) => write!(f, "handshake failed: {e}"),
            OpenError::Io(e) => write!(f, "transport error: {e}"),
            OpenError::Usage(e) => write!(f, "{e}"),
            OpenError::Closed => f.write_str("connection ended before opening"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Owns a [`Connection`], its transport and its timer, and drives them.
pub struct Driver<T: Transport, K: Timer> {
    conn: Connection,
    io: T,
    timer: K,
    /// The deadline the timer is set to, if it is set.
    armed: Option<Instant>,
    /// End of stream (or a read error) seen: no more reads.
    read_closed: bool,
    /// The write half is shut down.
    shut_down: bool,
    /// Bytes were written since the last successful flush.
    unflushed: bool,
    /// The transport failed: nothing more is written or read.
    dead: bool,
    /// An I/O error not yet reported.
    error: Option<io::Error>,
}

impl<T: Transport, K: Timer> fmt::Debug for Driver<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("pending_bytes", &self.conn.pending_bytes())
            .field("armed", &self.armed)
            .field("read_closed", &self.read_closed)
            .field("shut_down", &self.shut_down)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl<T: Transport, K: Timer> Driver<T, K> {
    /// Drive `conn` over `io`, sleeping with `timer`.
    pub fn new(conn: Connection, io: T, timer: K) -> Self {
        Driver {
            conn,
            io,
            timer,
            armed: None,
            read_closed: false,
            shut_down: false,
            unflushed: false,
            dead: false,
            error: None,
        }
    }

    /// The connection, to issue commands (`send`, `close`, ...).
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, read-only.
    pub fn conn_ref(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.io
    }

    /// The current time on the timer's clock: pass it to commands.
    pub fn now(&self) -> Instant {
        self.timer.now()
    }

    /// Run the opening handshake until the connection is open, and write
    /// the server's `101` before returning (the application may not poll
    /// again for a while). `decide` answers a server's upgrade request; a
    /// client never calls it.
    ///
    /// (A plain function returning an `async` block, which keeps `decide`
    /// once: the handshake's future is part of every connection's task.)
    pub fn open<'a, D>(
        &'a mut self,
        decide: D,
    ) -> impl Future<Output = Result<Opened, OpenError>> + 'a
    where
        D: FnOnce(&Request) -> Result<Accept, Reject> + 'a,
    {
        let mut decide = Some(decide);
        async move {
            let mut failure = None;
            let opened = poll_fn(|cx| self.poll_open(cx, &mut decide, &mut failure)).await?;
            poll_fn(|cx| self.poll_flush(cx))
                .await
                .map_err(OpenError::Io)?;
            Ok(opened)
        }
    }

    fn poll_open<D>(
        &mut self,
        cx: &mut Context<'_>,
        decide: &mut Option<D>,
        failure: &mut Option<HandshakeError>,
    ) -> Poll<Result<Opened, OpenError>>
    where
        D: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        loop {
            let event = match ready!(self.poll_event(cx)) {
                Ok(Some(event)) => event,
                // Finished after a failed handshake: the HTTP answer is out.
                Ok(None) => {
                    return Poll::Ready(Err(failure
                        .take()
                        .map_or(OpenError::Closed, OpenError::Handshake)))
                }
                Err(error) => return Poll::Ready(Err(OpenError::Io(error))),
            };
            match event {
                Event::Request => {
                    let now = self.now();
                    let answer = match (decide.take(), self.conn.request()) {
                        (Some(decide), Some(request)) => decide(request),
                        _ => Ok(Accept::new()),
                    };
                    let done = match answer {
                        Ok(accept) => self.conn.accept(now, accept),
                        Err(reject) => self.conn.reject(now, reject),
                    };
                    done.map_err(OpenError::Usage)?;
                }
                Event::Open(opened) => return Poll::Ready(Ok(opened)),
                Event::HandshakeFailed(error) => {
                    if self.conn.pending_bytes() == 0 {
                        return Poll::Ready(Err(OpenError::Handshake(error)));
                    }
                    // Deliver the HTTP error response before giving up.
                    *failure = Some(error);
                }
                _ => {}
            }
        }
    }

    /// Drive the connection until the core has an event, the connection is
    /// finished (`Ready(Ok(None))`: drop the transport), or nothing can
    /// progress (`Pending`: the waker is registered for input, output and
    /// the deadline). An I/O error is reported once; the connection then
    /// ends with a `Closed` event (code 1006).
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Event>>> {
        self.poll_event_until(cx, None)
    }

    /// [`poll_event`](Self::poll_event) with one more deadline of the
    /// caller's (a session's authentication, say) on the same timer: once
    /// `deadline` has passed this returns `Pending` without waiting, and
    /// the caller acts on it before polling again (with a later deadline
    /// or none; polling again with the passed one returns at once).
    pub fn poll_event_until(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Option<Instant>,
    ) -> Poll<io::Result<Option<Event>>> {
        loop {
            if let Some(error) = self.error.take() {
                return Poll::Ready(Err(error));
            }
            if let Some(event) = self.conn.poll_event() {
                return Poll::Ready(Ok(Some(event)));
            }
            let write_blocked = self.poll_write(cx).is_pending();
            if self.error.is_some() {
                continue;
            }
            // Our last frame is out. A server sends FIN, then waits for the
            // peer's; a client waits for the server to close first (RFC 6455
            // §7.1.1) so that the server holds TIME_WAIT, and shuts down below
            // (over an HTTP/2 stream, at once: `ends_at_close`).
            let server = self.conn.role() == Role::Server || self.io.ends_at_close();
            if server && self.conn.is_closed() && !write_blocked && !self.shut_down && !self.dead {
                if let Poll::Ready(result) = self.io.poll_shutdown(cx) {
                    self.shut_down = true;
                    if result.is_err() {
                        self.dead = true;
                    }
                }
            }
            // Once finished, one last write attempt was made above (a close
            // echo to a peer that half-closed); what it could not take is
            // given up rather than waited for.
            if self.conn.is_finished() {
                if !self.shut_down && !self.dead {
                    // A client's turn to send FIN, now that the server's came
                    // (or the wait for it ended); no waiting for it though.
                    self.shut_down = true;
                    let _ = self.io.poll_shutdown(cx);
                }
                return Poll::Ready(Ok(None));
            }
            if self.poll_timer(cx, deadline).is_ready() {
                if deadline.is_some_and(|deadline| deadline <= self.timer.now()) {
                    return Poll::Pending;
                }
                continue;
            }
            if self.read_closed || write_blocked && self.conn.pending_bytes() > BACKLOG_LIMIT {
                return Poll::Pending;
            }
            match self.poll_read(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Write and flush everything pending. `Ready(Ok)` once nothing is left;
    /// an I/O error is returned here (once) and ends the connection.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let written = self.poll_write(cx);
        if let Some(error) = self.error.take() {
            return Poll::Ready(Err(error));
        }
        written.map(Ok)
    }

    /// Best effort, without waiting: write what the transport takes now.
    /// Used when the connection is dropped, so a queued close frame still
    /// has its chance to leave.
    pub fn try_flush(&mut self) {
        let _ = self.poll_write(&mut Context::from_waker(Waker::noop()));
    }

    /// Write all pending bytes (one write per call, vectored when they are
    /// in several slices, unless the transport takes only part), then
    /// flush the transport. (A TCP `send` costs the kernel a little less
    /// than a one-slice `writev`: 4 % of a 20-byte echo's server CPU.)
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.dead && self.conn.pending_bytes() > 0 {
            let result = {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                match self.conn.transmit_slices(&mut slices) {
                    1 => self.io.poll_write(cx, &slices[0]),
                    n => self.io.poll_write_vectored(cx, &slices[..n]),
                }
            };
            match result {
                Poll::Ready(Ok(0)) => self.fail(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.conn.advance_transmit(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(error)) => self.fail(error),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.unflushed && !self.dead {
            match self.io.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(error)) => self.fail(error),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    /// Keep the timer set to the core's deadline; `Ready` when it fired (and
    /// the core was told).
    ///
    /// The core moves its idle and keep-alive deadlines later on every read.
    /// Resetting the runtime's timer each time would cost more than the
    /// read, so the timer is only moved *earlier*; when it fires before the
    /// core's deadline, it is simply set again.
    ///
    /// When the core has no deadline left (the handshake's passed, and no
    /// idle or keep-alive timer configured), the timer is cancelled rather
    /// than left to fire for nothing: an idle connection then holds no timer.
    fn poll_timer(&mut self, cx: &mut Context<'_>, extra: Option<Instant>) -> Poll<()> {
        let deadline = match (self.conn.poll_timeout(), extra) {
            (Some(core), Some(extra)) => Some(core.min(extra)),
            (core, extra) => core.or(extra),
        };
        let Some(deadline) = deadline else {
            if self.armed.take().is_some() {
                self.timer.cancel();
            }
            return Poll::Pending;
        };
        if self.armed.is_none_or(|armed| deadline < armed) {
            self.timer.reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.poll(cx) {
            Poll::Ready(()) => {
                self.armed = None;
                self.conn.handle_timeout(self.timer.now());
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// One read into the thread's buffer, handed to the core.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = READ_BUF
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .ok()
                    .map(|mut buf| self.read_into(cx, &mut buf))
            })
            .ok()
            .flatten();
        // `None` only if a transport drives another connection from inside
        // its own read, or during thread teardown: use a temporary buffer.
        let read = shared.unwrap_or_else(|| self.read_into(cx, &mut vec![0; READ_BUFFER]));
        match read {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => self.fail(error),
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(())
    }

    fn read_into(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<()>> {
        let n = match self.io.poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        };
        let now = self.timer.now();
        if n == 0 {
            self.read_closed = true;
            self.conn.handle_eof(now);
        } else {
            self.conn.handle_input(now, &buf[..n]);
        }
        Poll::Ready(Ok(()))
    }

    /// The transport failed: report the error once and end the connection.
    fn fail(&mut self, error: io::Error) {
        self.dead = true;
        self.read_closed = true;
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.conn.handle_eof(self.timer.now());
    }
}

impl<T: Transport, K: Timer> Drop for Driver<T, K> {
    /// A connection dropped early still gets its queued bytes (a close
    /// frame, say) written, if the transport takes them at once.
    fn drop(&mut self) {
        self.try_flush();
    }
}

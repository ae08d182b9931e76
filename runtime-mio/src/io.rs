//! The driver's [`Transport`] over a non-blocking [`mio::net::TcpStream`]
//! registered with a loop (an accepted one: with the loop of the task that
//! first polls it).
//!
//! mio's readiness is edge-triggered: an operation that would block stores
//! the polling task's waker with the stream's registration, and the next
//! readiness event wakes it. Polled from another thread than the stream's
//! loop, an event could come between the `WouldBlock` and the waker being
//! stored, so the operation is tried once more after storing it.
//!
//! A read that returns less than the buffer holds has emptied the socket's
//! receive queue, so any later data raises a new edge: on the stream's own
//! loop, the next read in the *same* poll of the task is answered `Pending`
//! without the system call that would only say `WouldBlock` (a poll is
//! numbered by the loop's executor; across polls every read is real, since
//! an event may have been consumed in between).

use std::{
    cell::Cell,
    io::{self, IoSlice, Read, Write},
    net::Shutdown,
    sync::Arc,
    task::{Context, Poll},
};

use hubbub_ws::driver::Transport;
use mio::{net::TcpStream, Interest};

use crate::reactor::{pick, Direction, Registration, Shared};

thread_local! {
    /// The number of the task poll in progress on this thread (0: none).
    static POLL: Cell<u64> = const { Cell::new(0) };
}

/// Number the task poll that starts now.
pub(crate) fn next_poll() {
    POLL.with(|poll| poll.set(poll.get().wrapping_add(1).max(1)));
}

/// A mio TCP stream registered with a loop, as a [`Transport`].
#[derive(Debug)]
pub struct MioIo {
    stream: TcpStream,
    /// Taken when the stream first would block, if not at creation.
    registration: Option<Registration>,
    /// The poll in which a short read emptied the receive queue.
    drained_in: u64,
}

impl MioIo {
    /// Register `stream` with `shared`'s loop for read and write readiness.
    pub(crate) fn register(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<Self> {
        let registration =
            Registration::new(shared, &mut stream, Interest::READABLE | Interest::WRITABLE)?;
        Ok(MioIo {
            stream,
            registration: Some(registration),
            drained_in: 0,
        })
    }

    /// `stream`, registered with the loop of the task that first finds it
    /// would block (an accepted stream joins the loop its session runs on;
    /// epoll reports the readiness it already has on registration).
    pub(crate) fn unregistered(stream: TcpStream) -> Self {
        MioIo {
            stream,
            registration: None,
            drained_in: 0,
        }
    }

    fn registration(&mut self) -> io::Result<&Registration> {
        match self.registration {
            Some(ref registration) => Ok(registration),
            None => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                let registration = Registration::new(pick(), &mut self.stream, interest)?;
                Ok(self.registration.insert(registration))
            }
        }
    }

    fn on_its_loop(&self) -> bool {
        self.registration
            .as_ref()
            .is_some_and(Registration::on_its_loop)
    }

    /// The stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Run `op` until it does not block; when it would, have `direction`'s
    /// next readiness wake the task.
    fn poll_op<T>(
        &mut self,
        cx: &Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(result) = ready(|| op(&mut self.stream)) {
            return Poll::Ready(result);
        }
        match self.registration() {
            Ok(registration) => registration.set_waker(direction, cx.waker()),
            Err(error) => return Poll::Ready(Err(error)),
        }
        if self.on_its_loop() {
            return Poll::Pending;
        }
        ready(|| op(&mut self.stream))
    }

    /// Wait until a connection started with `TcpStream::connect` is
    /// established (or failed).
    pub(crate) fn poll_connected(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        for attempt in 0..2 {
            if let Some(error) = self.stream.take_error()? {
                return Poll::Ready(Err(error));
            }
            match self.stream.peer_addr() {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    if attempt == 0 {
                        // Store first, check again: no event is lost.
                        self.registration()?.set_waker(Direction::Write, cx.waker());
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Pending
    }
}

/// `WouldBlock` is `Pending`; `Interrupted` is retried.
pub(crate) fn ready<T>(mut op: impl FnMut() -> io::Result<T>) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return Poll::Ready(result),
        }
    }
}

impl Transport for MioIo {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let poll = POLL.with(Cell::get);
        if poll != 0 && self.drained_in == poll && self.on_its_loop() {
            if let Some(registration) = &self.registration {
                registration.set_waker(Direction::Read, cx.waker());
            }
            return Poll::Pending;
        }
        let read = self.poll_op(cx, Direction::Read, |stream| stream.read(buf));
        if let Poll::Ready(Ok(n)) = read {
            if n > 0 && n < buf.len() {
                self.drained_in = poll;
            }
        }
        read
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, |stream| stream.write(buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, |stream| stream.write_vectored(bufs))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // a TCP stream does not buffer
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream.shutdown(Shutdown::Write) {
            // Already reset or disconnected: nothing left to shut down.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{task::Waker, time::Duration};

    /// Poll reads (each in a new task poll) until one is ready.
    fn read_ready(io: &mut MioIo, buf: &mut [u8]) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            next_poll();
            if let Poll::Ready(n) = io.poll_read(&mut cx, buf) {
                return n.unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no data within a second");
    }

    #[test]
    fn a_short_read_skips_the_next_read_of_the_same_poll_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        // Polled as on the stream's own loop.
        let poll = mio::Poll::new().unwrap();
        let executor = crate::reactor::Executor::new(poll.registry(), mio::Token(0)).unwrap();
        let _enter = crate::reactor::Enter::new(&executor.shared);
        let mut io = MioIo::register(TcpStream::from_std(server), executor.shared.clone()).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 64];
        client.write_all(b"hello").unwrap();
        assert_eq!(read_ready(&mut io, &mut buf), 5);
        // Same poll: the queue was emptied, no system call.
        client.write_all(b"more").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(io.poll_read(&mut cx, &mut buf).is_pending());
        // The next poll reads for real.
        next_poll();
        assert!(matches!(
            io.poll_read(&mut cx, &mut buf),
            Poll::Ready(Ok(4))
        ));
        // A full buffer says nothing about the queue: the next read is real.
        client.write_all(&[7; 100]).unwrap();
        let mut small = [0u8; 10];
        assert_eq!(read_ready(&mut io, &mut small), 10);
        assert!(matches!(
            io.poll_read(&mut cx, &mut small),
            Poll::Ready(Ok(10))
        ));
    }
}

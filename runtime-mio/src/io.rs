//! The driver's [`Transport`] over a non-blocking [`mio::net::TcpStream`].
//!
//! mio's readiness is edge-triggered and registered once, when the stream
//! joins a loop: an operation that would block is `Pending`, and the next
//! readiness event for the stream's token polls its task again. The
//! [`Context`] is therefore not needed here.
//!
//! A read that returns less than the buffer holds has emptied the socket's
//! receive queue, so any later data raises a new edge: the next read in the
//! *same* poll of the task is answered `Pending` without the system call
//! that would only say `WouldBlock` (a poll is numbered by
//! [`Connections`](crate::Connections); across polls every read is real,
//! since an event may have been consumed in between).

use std::{
    cell::Cell,
    io::{self, IoSlice, Read, Write},
    net::Shutdown,
    task::{Context, Poll},
};

use hubbub_realtime::driver::Transport;
use mio::net::TcpStream;

thread_local! {
    /// The number of the task poll in progress on this thread (0: none).
    static POLL: Cell<u64> = const { Cell::new(0) };
}

/// Number the task poll that starts now.
pub(crate) fn next_poll() {
    POLL.with(|poll| poll.set(poll.get().wrapping_add(1).max(1)));
}

/// A registered mio TCP stream as a [`Transport`].
#[derive(Debug)]
pub struct MioIo {
    stream: TcpStream,
    /// The poll in which a short read emptied the receive queue.
    drained_in: u64,
}

impl MioIo {
    /// Wrap a stream registered with the loop for read and write readiness.
    pub fn new(stream: TcpStream) -> Self {
        MioIo {
            stream,
            drained_in: 0,
        }
    }

    /// The stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// `WouldBlock` is `Pending`; `Interrupted` is retried.
fn ready<T>(mut op: impl FnMut() -> io::Result<T>) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return Poll::Ready(result),
        }
    }
}

impl Transport for MioIo {
    fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let poll = POLL.with(Cell::get);
        if poll != 0 && self.drained_in == poll {
            return Poll::Pending;
        }
        let read = ready(|| self.stream.read(buf));
        if let Poll::Ready(Ok(n)) = read {
            if n > 0 && n < buf.len() {
                self.drained_in = poll;
            }
        }
        read
    }

    fn poll_write_vectored(
        &mut self,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready(|| self.stream.write_vectored(bufs))
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
        let mut io = MioIo::new(TcpStream::from_std(server));
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

//! The driver's [`Transport`] over a non-blocking [`mio::net::TcpStream`].
//!
//! mio's readiness is edge-triggered and registered once, when the stream
//! joins a loop: an operation that would block is `Pending`, and the next
//! readiness event for the stream's token polls its task again. The
//! [`Context`] is therefore not needed here.

use std::{
    io::{self, IoSlice, Read, Write},
    net::Shutdown,
    task::{Context, Poll},
};

use hubbub_realtime::driver::Transport;
use mio::net::TcpStream;

/// A registered mio TCP stream as a [`Transport`].
#[derive(Debug)]
pub struct MioIo(pub TcpStream);

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
        ready(|| self.0.read(buf))
    }

    fn poll_write_vectored(
        &mut self,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready(|| self.0.write_vectored(bufs))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // a TCP stream does not buffer
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.shutdown(Shutdown::Write) {
            // Already reset or disconnected: nothing left to shut down.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

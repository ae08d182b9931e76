//! One HTTP/2 stream as the driver's transport, and a transport as the
//! tokio I/O traits the `h2` crate drives.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::driver::Transport;

/// Most bytes asked for in one write (the peer's window bounds it too).
const MAX_WRITE: usize = 64 << 10;

/// One HTTP/2 stream as the driver's [`Transport`]: DATA frames in,
/// DATA frames out, END_STREAM for shutdown.
///
/// Reading hands out one received DATA chunk at a time and releases its
/// flow-control capacity as the driver takes the bytes, so the peer may
/// send no more than the stream's window to a session that stopped
/// reading. Writing asks for send capacity and sends at most what the
/// peer's windows grant: nothing is queued beyond them.
pub struct H2Stream {
    recv: RecvStream,
    send: SendStream<Bytes>,
    /// The rest of the DATA chunk being read.
    chunk: Bytes,
    /// END_STREAM sent.
    finished: bool,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream")
            .field("stream_id", &self.send.stream_id())
            .field("buffered", &self.chunk.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl H2Stream {
    /// A stream whose request was answered with `200`: `recv` is the
    /// request's body, `send` the response's.
    pub fn new(recv: RecvStream, send: SendStream<Bytes>) -> Self {
        H2Stream {
            recv,
            send,
            chunk: Bytes::new(),
            finished: false,
        }
    }

    /// Send capacity for up to `want` bytes: what is granted, or pending.
    fn poll_capacity(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        self.send.reserve_capacity(want.min(MAX_WRITE));
        // Bounded: `poll_capacity` is ready only when the capacity grew.
        for _ in 0..4 {
            let capacity = self.send.capacity();
            if capacity > 0 {
                return Poll::Ready(Ok(capacity.min(want)));
            }
            match self.send.poll_capacity(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(h2_to_io(error))),
                Poll::Ready(None) => return Poll::Ready(Err(self.reset_error(cx))),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The error for a stream that can no longer send.
    fn reset_error(&mut self, cx: &mut Context<'_>) -> io::Error {
        match self.send.poll_reset(cx) {
            Poll::Ready(Ok(reason)) => io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("HTTP/2 stream reset: {reason}"),
            ),
            Poll::Ready(Err(error)) => h2_to_io(error),
            Poll::Pending => io::ErrorKind::BrokenPipe.into(),
        }
    }
}

impl Transport for H2Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        while self.chunk.is_empty() {
            match self.recv.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(h2_to_io(error))),
                Poll::Ready(Some(Ok(chunk))) => self.chunk = chunk,
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        // Consumed: the peer may send this much more.
        if let Err(error) = self.recv.flow_control().release_capacity(n) {
            return Poll::Ready(Err(h2_to_io(error)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.finished {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = match self.poll_capacity(cx, want) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut data = BytesMut::with_capacity(n);
        for buf in bufs {
            let room = n - data.len();
            if room == 0 {
                break;
            }
            data.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        match self.send.send_data(data.freeze(), false) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(error) => Poll::Ready(Err(h2_to_io(error))),
        }
    }

    /// END_STREAM right after the close handshake, on either side: a
    /// stream has no TIME_WAIT to leave with the server.
    fn ends_at_close(&self) -> bool {
        true
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !std::mem::replace(&mut self.finished, true) {
            // An error means the stream was reset already: nothing to end.
            let _ = self.send.send_data(Bytes::new(), true);
        }
        Poll::Ready(Ok(()))
    }
}

/// An h2 error as an `io::Error` (a stream reset is `ConnectionReset`).
pub(crate) fn h2_to_io(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::ErrorKind::Other.into());
    }
    let kind = if error.is_reset() || error.is_go_away() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, error)
}

/// A [`Transport`] (such as a [`MaybeTls`](crate::MaybeTls) stream after its TLS
/// handshake) as tokio's `AsyncRead` and `AsyncWrite`, for the `h2` crate.
#[derive(Debug)]
pub struct TransportIo<T>(pub T);

impl<T: Transport + Unpin> AsyncRead for TransportIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = match self.0.poll_read(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: Transport + Unpin> AsyncWrite for TransportIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_shutdown(cx)
    }
}

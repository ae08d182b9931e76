//! The driver's two traits and the shared layer's [`Runtime`] implemented
//! for tokio.

use std::{
    future::Future,
    io::{self, IoSlice},
    net::SocketAddr,
    ops::Deref,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hubbub_ws::Runtime;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpSocket, TcpStream},
    time::Sleep,
};

use hubbub_ws::driver::{Timer, Transport};

/// Any tokio byte stream as a [`Transport`].
#[derive(Debug)]
pub struct Io<S>(pub S);

impl<S> From<S> for Io<S> {
    fn from(stream: S) -> Self {
        Io(stream)
    }
}

/// The stream, so that `ws.get_ref().peer_addr()` reads as before.
impl<S> Deref for Io<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Io<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A [`Timer`] on tokio's clock (so tests may pause and advance it). The
/// `Sleep` is allocated the first time a deadline is set.
#[derive(Debug, Default)]
pub struct TokioTimer(Option<Pin<Box<Sleep>>>);

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn reset(&mut self, deadline: Instant) {
        let deadline = tokio::time::Instant::from_std(deadline);
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }

    fn cancel(&mut self) {
        self.0 = None; // its allocation and its entry in tokio's wheel
    }
}

/// The tokio runtime (the current one, of whichever flavour), for the
/// generic types of [`hubbub_ws`] and the layers above it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Stream = Io<TcpStream>;
    type Timer = TokioTimer;
    type Listener = TcpListener;

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    fn spawn<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }

    async fn connect(addr: SocketAddr) -> io::Result<Io<TcpStream>> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true); // best effort, as on accept
        Ok(Io(stream))
    }

    fn peer_addr(stream: &Io<TcpStream>) -> io::Result<SocketAddr> {
        stream.0.peer_addr()
    }

    fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(backlog)
    }

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &TcpListener) -> io::Result<(Io<TcpStream>, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((Io(stream), peer))
    }
}

#[cfg(feature = "signal")]
impl hubbub_ws::Signals for Tokio {
    fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
        crate::signal::shutdown_signal()
    }
}

//! The driver's two traits and the shared layer's [`Runtime`] implemented
//! for smol (async-io's reactor and timers, async-net's sockets, smol's
//! global executor).

use std::{
    future::Future,
    io::{self, IoSlice},
    net::SocketAddr,
    ops::Deref,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hubbub_realtime::Runtime;
use smol::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};
use socket2::{Domain, Socket, Type};

use crate::driver::{Timer, Transport};

/// Any `futures-io` byte stream as a [`Transport`].
#[derive(Debug)]
pub struct Io<S>(pub S);

/// The stream, so that `ws.get_ref().peer_addr()` reads naturally.
impl<S> Deref for Io<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Io<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
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

    /// `futures-io` names it `poll_close`; on a TCP stream it shuts down
    /// the write half.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// A [`Timer`] on async-io's timers. An unset timer never fires and is not
/// registered with the reactor.
#[derive(Debug)]
pub struct SmolTimer(smol::Timer);

impl Default for SmolTimer {
    fn default() -> Self {
        SmolTimer(smol::Timer::never())
    }
}

impl Timer for SmolTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }

    fn cancel(&mut self) {
        self.0 = smol::Timer::never(); // out of the reactor's timers
    }
}

/// The smol runtime: tasks go to smol's global executor (its thread count
/// is `SMOL_THREADS`, 1 by default), I/O and timers to async-io's reactor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Stream = Io<TcpStream>;
    type Timer = SmolTimer;
    type Listener = TcpListener;

    fn now() -> Instant {
        Instant::now()
    }

    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }

    fn spawn<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve((host, port)).await
    }

    fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
        crate::signal::shutdown_signal()
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
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::try_from(std::net::TcpListener::from(socket))
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

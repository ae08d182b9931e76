//! The driver's two traits and the shared layer's [`Runtime`] implemented
//! for smol (async-io's reactor and timers, async-net's sockets, smol's
//! global executor).

use std::{
    future::Future,
    io::{self, IoSlice},
    net::SocketAddr,
    ops::Deref,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::{Duration, Instant},
};

use hubbub_ws::Runtime;
use smol::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    Async,
};
use socket2::{Domain, Socket, Type};

use hubbub_ws::driver::{Timer, Transport};

/// Any `futures-io` byte stream as a [`Transport`].
///
/// The runtime's own TCP streams also carry async-io's readiness handle:
/// a read that returns less than the buffer holds has emptied the socket,
/// so the next read waits for readability first instead of making the
/// system call that could only say `WouldBlock` (async-io re-arms its
/// interest either way). A stream wrapped with [`Io::new`] reads plainly.
#[derive(Debug)]
pub struct Io<S> {
    stream: S,
    readiness: Option<Arc<Async<std::net::TcpStream>>>,
    /// The last read emptied the socket (only with `readiness`).
    drained: bool,
}

impl<S> Io<S> {
    /// Wrap `stream`.
    pub fn new(stream: S) -> Self {
        Io {
            stream,
            readiness: None,
            drained: false,
        }
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S> From<S> for Io<S> {
    fn from(stream: S) -> Self {
        Io::new(stream)
    }
}

impl Io<TcpStream> {
    /// A TCP stream, with its readiness handle.
    fn tcp(stream: TcpStream) -> Self {
        Io {
            readiness: Some(stream.clone().into()),
            stream,
            drained: false,
        }
    }
}

/// The stream, so that `ws.get_ref().peer_addr()` reads naturally.
impl<S> Deref for Io<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Io<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if let Some(readiness) = &self.readiness {
            if self.drained {
                ready!(readiness.poll_readable(cx))?;
                self.drained = false;
            }
        }
        let n = ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        self.drained = self.readiness.is_some() && n > 0 && n < buf.len();
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// `futures-io` names it `poll_close`; on a TCP stream it shuts down
    /// the write half.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
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

    async fn connect(addr: SocketAddr) -> io::Result<Io<TcpStream>> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true); // best effort, as on accept
        Ok(Io::tcp(stream))
    }

    fn peer_addr(stream: &Io<TcpStream>) -> io::Result<SocketAddr> {
        stream.peer_addr()
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
        let (stream, peer) = accept_nonblocking(listener).await?;
        let _ = stream.set_nodelay(true);
        Ok((Io::tcp(stream), peer))
    }
}

/// Accept a connection that is non-blocking from the start: `accept4` with
/// `SOCK_NONBLOCK` and a registration with async-io that skips its own
/// `ioctl(FIONBIO)` (async-net's `accept` makes one per connection: a
/// system call in ~30 per WebSocket handshake).
#[cfg(any(target_os = "linux", target_os = "android"))]
async fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    // The listener's own readiness handle (a reference count, not a socket).
    let listener = Arc::<Async<std::net::TcpListener>>::from(listener.clone());
    let (socket, peer) = listener
        .read_with(|listener| {
            socket2::SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })
        .await?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::other("accepted a connection without an IP address"))?;
    let stream = Async::new_nonblocking(std::net::TcpStream::from(socket))?;
    Ok((stream.into(), peer))
}

/// Elsewhere, async-net's `accept` (which then sets `O_NONBLOCK`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
async fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    listener.accept().await
}

/// Run `future` to completion on the calling thread, which only polls it
/// and sleeps in between: it never waits on async-io's reactor itself.
///
/// `smol::block_on` makes the calling thread one more candidate for the
/// reactor: while it waits there in `epoll_wait`, every I/O event of the
/// tasks on smol's executor is handed over to the executor's thread
/// (a futex wake, a context switch). Here the reactor is left to the
/// executor's thread when it is idle (async-io's own thread steps in while
/// the executor is busy), so connections' events are handled where their
/// tasks run. For a server whose accept loop runs in `future`, that is a
/// quarter to a third fewer system calls per WebSocket handshake (measured
/// under strace, clients handshaking in a loop, server on one CPU: 26 to
/// 16.5 with 10 clients, 20.5 to 15 with 50; with 10, `epoll_wait` 1.5 to
/// 0.3 and futex 1.9 to 1.1 per handshake). The
/// future itself still does I/O and timers normally, but each of its wakes
/// now comes from the thread that drives the reactor: a future that does
/// most of the program's I/O itself (a lone client, say) is better off
/// under `smol::block_on`.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    smol::future::block_on(future)
}

#[cfg(feature = "signal")]
impl hubbub_ws::Signals for Smol {
    fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
        crate::signal::shutdown_signal()
    }
}

#[cfg(test)]
mod tests {
    use std::{future::poll_fn, task::Waker, time::Duration};

    use smol::io::AsyncWriteExt;

    use super::*;

    /// A connected pair: the runtime's side (`Io::tcp`) and the peer's.
    async fn pair() -> (Io<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        (Io::tcp(ours), peer)
    }

    #[test]
    fn a_short_read_makes_the_next_one_wait_for_readiness_not_a_system_call() {
        smol::block_on(async {
            let (mut io, mut peer) = pair().await;
            let mut buf = [0u8; 64];
            peer.write_all(b"hello").await.unwrap();
            let n = poll_fn(|cx| io.poll_read(cx, &mut buf)).await.unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert!(io.drained, "5 of 64 bytes: the socket is empty");

            // More data is already in the socket, but the first poll only
            // registers interest (no read) and the reactor's event brings
            // the data.
            peer.write_all(b"world").await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            let mut cx = Context::from_waker(Waker::noop());
            assert!(io.poll_read(&mut cx, &mut buf).is_pending());
            let n = smol::future::or(poll_fn(|cx| io.poll_read(cx, &mut buf)), async {
                smol::Timer::after(Duration::from_secs(10)).await;
                panic!("the data never came")
            })
            .await
            .unwrap();
            assert_eq!(&buf[..n], b"world");

            // A full buffer may leave more behind: read again at once.
            peer.write_all(&[7u8; 100]).await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            let n = poll_fn(|cx| io.poll_read(cx, &mut buf)).await.unwrap();
            assert_eq!(n, 64);
            assert!(!io.drained);
            let n = io.poll_read(&mut cx, &mut buf);
            assert!(matches!(n, Poll::Ready(Ok(36))), "{n:?}");
        })
    }

    #[test]
    fn accepted_connections_are_non_blocking_with_nodelay_and_carry_data() {
        smol::block_on(async {
            let listener = Smol::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
            let addr = Smol::local_addr(&listener).unwrap();
            for round in 0..3u8 {
                let mut peer = TcpStream::connect(addr).await.unwrap();
                let (mut io, from) = Smol::accept(&listener).await.unwrap();
                assert_eq!(from, peer.local_addr().unwrap());
                assert_eq!(Smol::peer_addr(&io).unwrap(), from);
                #[cfg(any(target_os = "linux", target_os = "android"))]
                {
                    let socket = socket2::SockRef::from(&*io);
                    assert!(socket.nonblocking().unwrap(), "accept4(SOCK_NONBLOCK)");
                    assert!(socket.tcp_nodelay().unwrap());
                }

                // Nothing to read yet: a blocking socket would hang here.
                let mut buf = [0u8; 16];
                let mut cx = Context::from_waker(Waker::noop());
                assert!(io.poll_read(&mut cx, &mut buf).is_pending());

                // Both ways, through the reactor.
                peer.write_all(&[round; 3]).await.unwrap();
                let n = smol::future::or(poll_fn(|cx| io.poll_read(cx, &mut buf)), async {
                    smol::Timer::after(Duration::from_secs(10)).await;
                    panic!("the data never came")
                })
                .await
                .unwrap();
                assert_eq!(&buf[..n], &[round; 3]);
                let n = poll_fn(|cx| io.poll_write(cx, b"back")).await.unwrap();
                assert_eq!(n, 4);
                let mut back = [0u8; 4];
                smol::io::AsyncReadExt::read_exact(&mut peer, &mut back)
                    .await
                    .unwrap();
                assert_eq!(&back, b"back");
            }
        })
    }

    #[test]
    fn block_on_serves_connections_while_another_thread_drives_the_reactor() {
        let started = Instant::now();
        let echoed = block_on(async {
            let listener = Smol::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
            let addr = Smol::local_addr(&listener).unwrap();
            let mut peers = Vec::new();
            for round in 0..3u8 {
                let mut peer = TcpStream::connect(addr).await.unwrap();
                let (mut io, _) = Smol::accept(&listener).await.unwrap();
                // The connection's task on the executor: echo one read.
                Smol::spawn(async move {
                    let mut buf = [0u8; 16];
                    let n = poll_fn(|cx| io.poll_read(cx, &mut buf)).await.unwrap();
                    poll_fn(|cx| io.poll_write(cx, &buf[..n])).await.unwrap();
                });
                Smol::sleep(Duration::from_millis(5)).await;
                peer.write_all(&[round; 2]).await.unwrap();
                peers.push(peer);
            }
            let mut echoed = Vec::new();
            for peer in &mut peers {
                let mut back = [0u8; 2];
                let read = smol::io::AsyncReadExt::read_exact(peer, &mut back);
                smol::future::or(read, async {
                    smol::Timer::after(Duration::from_secs(10)).await;
                    panic!("no echo")
                })
                .await
                .unwrap();
                echoed.push(back);
            }
            echoed
        });
        assert_eq!(echoed, [[0, 0], [1, 1], [2, 2]]);
        assert!(
            started.elapsed() >= Duration::from_millis(15),
            "the timers ran"
        );
    }

    #[test]
    fn a_wrapped_stream_reads_plainly() {
        smol::block_on(async {
            let (io, mut peer) = pair().await;
            let mut io = Io::new(io.into_inner());
            let mut buf = [0u8; 64];
            peer.write_all(b"a").await.unwrap();
            poll_fn(|cx| io.poll_read(cx, &mut buf)).await.unwrap();
            peer.write_all(b"b").await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(
                io.poll_read(&mut cx, &mut buf),
                Poll::Ready(Ok(1))
            ));
        })
    }
}

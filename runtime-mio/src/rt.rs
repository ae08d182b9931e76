//! The shared layer's [`Runtime`] implemented on the mio loops: a task is
//! any `Send` future, polled on a loop's thread; its sockets and timers
//! wake it through the loop's reactor.
//!
//! Where things run: [`spawn`](Runtime::spawn) puts the task on one of the
//! *default loops*, chosen round-robin — also when called from a default
//! loop's task, so that a server's accept task spreads its connections over
//! the threads — except inside a loop of the application's own
//! ([`Connections`](crate::Connections), or [`block_on_local`]'s), which
//! keeps its tasks. The default loops are started on first use, one thread
//! each, as many as [`default_loops`](crate::default_loops)
//! (`HUBBUB_MIO_THREADS`, default: the number of CPUs). Sockets and timers
//! join the loop of the thread that creates them (the current loop, else a
//! default one), and may be polled from any thread. The shutdown signal is
//! a source of a loop too; only `resolve` runs on a thread of its own.

use std::{
    future::{poll_fn, Future},
    io,
    net::{SocketAddr, ToSocketAddrs},
    pin::pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Wake, Waker},
    thread::Thread,
    time::{Duration, Instant},
};

use hubbub_ws::{driver::Timer, Runtime};
use mio::{net::TcpListener, Events, Interest, Token};
use socket2::{Domain, Socket, Type};

use crate::{
    io::{ready, MioIo},
    reactor::{
        lock, pick, pick_for_task, wait, Direction, Enter, Executor, Registration, TaskWaker,
    },
    timers::LoopTimer,
};

/// The mio runtime: hubbub-mio's loops as an async runtime. A spawned
/// task goes to a default loop (round-robin over `HUBBUB_MIO_THREADS`
/// threads, default: the number of CPUs, started on first use), unless it
/// is spawned inside an application's own loop, where it stays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mio;

/// A TCP listener registered with a loop.
#[derive(Debug)]
pub struct MioListener {
    listener: TcpListener,
    registration: Registration,
}

impl MioListener {
    /// `listener` (made non-blocking) registered with the current loop, or
    /// a default one off the loops.
    pub(crate) fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let registration = Registration::new(pick(), &mut listener, Interest::READABLE)?;
        Ok(MioListener {
            listener,
            registration,
        })
    }

    /// Wait for the next connection.
    fn poll_accept(&self, cx: &Context<'_>) -> Poll<io::Result<(MioIo, SocketAddr)>> {
        self.registration
            .poll_ready(Direction::Read, cx, || ready(|| self.listener.accept()))
            .map_ok(|(stream, peer)| {
                let _ = stream.set_nodelay(true);
                (MioIo::unregistered(stream), peer)
            })
    }
}

impl Runtime for Mio {
    type Stream = MioIo;
    type Timer = LoopTimer;
    type Listener = MioListener;

    fn now() -> Instant {
        Instant::now()
    }

    async fn sleep(duration: Duration) {
        let mut timer = LoopTimer::default();
        timer.reset(Instant::now() + duration);
        poll_fn(|cx| timer.poll(cx)).await;
    }

    fn spawn<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        pick_for_task().spawn(future);
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let host = host.to_owned();
        on_a_thread(move || (host.as_str(), port).to_socket_addrs().map(Vec::from_iter)).await?
    }

    async fn connect(addr: SocketAddr) -> io::Result<MioIo> {
        let mut io = MioIo::register(mio::net::TcpStream::connect(addr)?, pick())?;
        poll_fn(|cx| io.poll_connected(cx)).await?;
        let _ = io.stream().set_nodelay(true); // best effort, as on accept
        Ok(io)
    }

    fn peer_addr(stream: &MioIo) -> io::Result<SocketAddr> {
        stream.stream().peer_addr()
    }

    fn bind(addr: SocketAddr, backlog: u32) -> io::Result<MioListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        MioListener::from_std(socket.into())
    }

    fn local_addr(listener: &MioListener) -> io::Result<SocketAddr> {
        listener.listener.local_addr()
    }

    async fn accept(listener: &MioListener) -> io::Result<(MioIo, SocketAddr)> {
        poll_fn(|cx| listener.poll_accept(cx)).await
    }
}

/// A value another thread delivers, and the waker of the task awaiting it.
type Slot<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;

/// Run blocking `work` on a thread of its own; resolves to its result
/// (an error if the thread cannot start).
fn on_a_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = io::Result<T>> + Send {
    let slot: Slot<T> = Arc::default();
    let sender = slot.clone();
    let started = std::thread::Builder::new()
        .name("hubbub-mio-blocking".into())
        .spawn(move || {
            let value = work();
            let waker = {
                let mut slot = lock(&sender);
                slot.0 = Some(value);
                slot.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
    async move {
        started?;
        Ok(poll_fn(|cx| {
            let mut slot = lock(&slot);
            match slot.0.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await)
    }
}

/// Run `future` to completion on a loop of the calling thread's own, with
/// everything it starts: the tasks it spawns (and theirs), its sockets
/// and timers, and the signals of [`shutdown_signal`](crate::shutdown_signal)
/// all live on this thread — a one-thread process, like tokio's
/// current-thread runtime. (Tasks spawned from other threads still go to
/// the default loops.)
///
/// When `future` completes, the tasks still running are dropped, and the
/// sockets and timers left over from the loop never become ready again.
/// Fails if the loop's poll cannot be created, or fails.
pub fn block_on_local<F: Future>(future: F) -> io::Result<F::Output> {
    let mut poll = mio::Poll::new()?;
    let mut executor = Executor::new(poll.registry(), Token(0))?;
    let main = TaskWaker::outside(executor.shared.clone());
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut events = Events::with_capacity(1024);
    loop {
        if main.take_woken() {
            // What the future spawns or wakes is processed right after.
            executor.awake();
            let _enter = Enter::new(&executor.shared);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                executor.abort_all();
                return Ok(output);
            }
        }
        executor.process();
        let busy = main.is_woken();
        wait(&mut poll, &mut events, &mut executor, busy)?;
    }
}

/// Wakes a thread blocked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Run `future` to completion on this thread (parked while it waits); the
/// tasks it spawns, its sockets and its timers live on the default loops.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(feature = "signal")]
impl hubbub_ws::Signals for Mio {
    fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
        let signals = crate::signal::LoopSignals::install();
        async move {
            match signals {
                Ok(mut signals) => poll_fn(|cx| signals.poll_signal(cx)).await,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

//! A listener served on any [`Runtime`] by a [`Service`]: the accept loop
//! (with back-off when accepting fails), one task per connection, and a
//! two-phase shutdown ([`ServerHandle::shutdown`]). The hub's server, the
//! HTTP server and hubbub-mio's loop server are this loop with their own
//! service.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use event_listener::Event;
use futures_util::future::{select, Either};
use pin_project_lite::pin_project;

use crate::{connect::timeout, flag::Flag, MaybeTls, Runtime};

/// What runs a server's TLS handshakes: [`TlsAcceptor`](crate::tls::TlsAcceptor)
/// with the `tls` feature.
#[cfg(feature = "tls")]
pub type AcceptorKind = crate::tls::TlsAcceptor;
/// What runs a server's TLS handshakes: nothing without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub type AcceptorKind = NoTls;

/// No TLS acceptor can exist without the `tls` feature (a type that
/// cannot be made).
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub struct NoTls(());

/// The TLS acceptor of a server, if it has one (always `None` without the
/// `tls` feature). Code of other crates handles it with [`handshake`],
/// which compiles with the feature on or off.
pub type Acceptor = Option<AcceptorKind>;

/// Run `acceptor`'s TLS handshake on `stream` within its deadline: the
/// stream under TLS, or `None` when the handshake failed or took too long
/// (the acceptor counts it).
pub async fn handshake<R: Runtime>(
    acceptor: &AcceptorKind,
    stream: R::Stream,
) -> Option<MaybeTls<R::Stream>> {
    #[cfg(feature = "tls")]
    {
        let tls = acceptor.accept::<R, _>(stream).await.ok()?;
        Some(MaybeTls::Tls(Box::new(tls)))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (acceptor, stream);
        None
    }
}

/// How long [`ServerHandle::shutdown`] waits by default (the grace period of
/// a server stopped by a signal or by dropping its handle).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// What a server does with each accepted connection.
pub trait Service<R: Runtime>: Send + Sync + 'static {
    /// Serve one accepted connection to its end (under TLS once its
    /// handshake is done, when the server has a TLS acceptor). The future
    /// is dropped if the shutdown's grace period runs out first.
    fn serve(
        &self,
        stream: MaybeTls<R::Stream>,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static;

    /// Phase one of a graceful shutdown, once nothing more is accepted: ask
    /// the running connections to end (a hub sends close 1001). Does
    /// nothing by default.
    fn shutdown(&self) {}
}

/// Serve `listener` with `service` in a background task on `R` until the
/// returned handle shuts it down (or is dropped).
pub fn start<R: Runtime, S: Service<R>>(
    listener: R::Listener,
    service: S,
) -> io::Result<ServerHandle> {
    start_with::<R, S>(listener, service, None)
}

/// [`start`], under TLS when `tls` is an acceptor (feature `tls`): each
/// accepted connection runs the TLS handshake in its own task, within the
/// acceptor's deadline, before `service` gets it; a failed or slow
/// handshake drops that connection only (counted by the acceptor).
pub fn start_with<R: Runtime, S: Service<R>>(
    listener: R::Listener,
    service: S,
    tls: Acceptor,
) -> io::Result<ServerHandle> {
    let addr = R::local_addr(&listener)?;
    let stop = Arc::new(Stop::default());
    let done = Arc::new(Flag::default());
    let finished = Finished(done.clone());
    R::spawn(accept_loop::<R, S>(
        listener,
        Arc::new(service),
        tls,
        stop.clone(),
        finished,
    ));
    Ok(ServerHandle { addr, stop, done })
}

/// The stop request: set once, with the grace period.
#[derive(Default)]
struct Stop {
    grace: Mutex<Option<Duration>>,
    flag: Flag,
}

/// Sets the server's "done" flag when the accept loop ends (or is dropped
/// with its runtime).
struct Finished(Arc<Flag>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A running server (see [`start`]).
///
/// Dropping the handle starts the shutdown too (without waiting for it):
/// keep the handle for as long as the server should run.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<Stop>,
    done: Arc<Flag>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Two-phase shutdown: stop accepting (new connections are refused) and
    /// ask the service to end its connections ([`Service::shutdown`]); then
    /// wait up to `grace` for them to finish, and drop the rest. When this
    /// returns, every connection's task has ended.
    pub async fn shutdown(self, grace: Duration) {
        *self
            .stop
            .grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(grace);
        self.stop.flag.set();
        self.done.wait().await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.flag.set();
    }
}

/// The running connections: how many, and the abort of phase two's end.
#[derive(Default)]
struct Connections {
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    ended: Event,
    aborted: AtomicBool,
    /// One slot per running connection: the waker of its task, woken by
    /// [`abort`](Self::abort). (A slot rather than an event listener per
    /// task: a listener is an allocation that every idle connection would
    /// keep.)
    wakers: Mutex<WakerSlots>,
}

#[derive(Default)]
struct WakerSlots {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Connections {
    /// Resolves once no connection is running.
    async fn idle(&self) {
        while self.live.load(Ordering::SeqCst) > 0 {
            let listener = self.ended.listen();
            if self.live.load(Ordering::SeqCst) == 0 {
                break;
            }
            listener.await;
        }
    }

    fn wakers(&self) -> MutexGuard<'_, WakerSlots> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drop every running connection's future: wake their tasks, which
    /// see [`aborted`](Self::aborted) and end.
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut self.wakers().slots);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// Counts one running connection and holds its waker slot; dropped when
/// its task ends.
struct Running {
    connections: Arc<Connections>,
    slot: usize,
    /// The waker last put in the slot, to skip the lock when it is the
    /// same.
    registered: Option<Waker>,
}

impl Running {
    fn new(connections: &Arc<Connections>) -> Self {
        connections.live.fetch_add(1, Ordering::SeqCst);
        let slot = {
            let mut wakers = connections.wakers();
            match wakers.free.pop() {
                Some(slot) => slot,
                None => {
                    wakers.slots.push(None);
                    wakers.slots.len() - 1
                }
            }
        };
        Running {
            connections: connections.clone(),
            slot,
            registered: None,
        }
    }

    /// Keep `waker` in the slot, for [`Connections::abort`]; false once
    /// aborted.
    fn watch(&mut self, waker: &Waker) -> bool {
        if !self.registered.as_ref().is_some_and(|w| w.will_wake(waker)) {
            if let Some(slot) = self.connections.wakers().slots.get_mut(self.slot) {
                *slot = Some(waker.clone());
            }
            self.registered = Some(waker.clone());
        }
        !self.connections.aborted()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        {
            let mut wakers = self.connections.wakers();
            if let Some(slot) = wakers.slots.get_mut(self.slot) {
                *slot = None;
                wakers.free.push(self.slot);
            }
        }
        if self.connections.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.connections.ended.notify(usize::MAX);
        }
    }
}

pin_project! {
    /// One connection's task: its service's future until that ends or the
    /// server aborts it, which drops the future (a hub session ends with
    /// 1006) before the connection stops being counted. (A struct rather
    /// than an `async` block, which would keep the service's future twice:
    /// once as captured, once pinned; this task is most of an idle
    /// connection's memory.)
    struct Task<F> {
        #[pin]
        serving: Option<F>,
        running: Option<Running>,
    }
}

impl<F: Future<Output = ()>> Future for Task<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(running) = this.running.as_mut() else {
            return Poll::Ready(());
        };
        if let Some(serving) = this.serving.as_mut().as_pin_mut() {
            if !running.connections.aborted()
                && serving.poll(cx).is_pending()
                && running.watch(cx.waker())
            {
                return Poll::Pending;
            }
        }
        this.serving.set(None);
        this.running.take();
        Poll::Ready(())
    }
}

/// How long accepting pauses after an error that concerns the listener.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// The next connection on `listener`. An error that concerns one connection
/// (reset or aborted before it was accepted) is skipped; one that concerns
/// the listener (out of file descriptors, say) pauses accepting for a moment
/// instead of spinning. Every server's accept loop goes through this.
pub async fn accept<R: Runtime>(listener: &R::Listener) -> (R::Stream, SocketAddr) {
    loop {
        match R::accept(listener).await {
            Ok(accepted) => return accepted,
            Err(error) if is_fatal_accept_error(&error) => R::sleep(ACCEPT_BACKOFF).await,
            Err(_) => {}
        }
    }
}

/// Errors that concern the listener rather than one connection; retrying
/// at once would spin.
fn is_fatal_accept_error(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

async fn accept_loop<R: Runtime, S: Service<R>>(
    listener: R::Listener,
    service: Arc<S>,
    tls: Acceptor,
    stop: Arc<Stop>,
    _finished: Finished,
) {
    let connections = Arc::new(Connections::default());
    // One wait for the stop request across all accepts.
    let mut stopped = pin!(stop.flag.wait());
    loop {
        let (stream, peer) = match select(stopped.as_mut(), pin!(accept::<R>(&listener))).await {
            Either::Left(((), _)) => break,
            Either::Right((accepted, _)) => accepted,
        };
        let running = Some(Running::new(&connections));
        match &tls {
            None => R::spawn(Task {
                serving: Some(service.serve(MaybeTls::Plain(stream), peer)),
                running,
            }),
            Some(acceptor) => R::spawn(Task {
                serving: Some(serve_tls::<R, S>(
                    acceptor.clone(),
                    service.clone(),
                    stream,
                    peer,
                )),
                running,
            }),
        }
    }
    drop(listener);
    service.shutdown();
    let grace = stop
        .grace
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or(DEFAULT_GRACE);
    let _ = timeout::<R, _>(grace, connections.idle()).await;
    // Phase two's end: connections still running are dropped, before we
    // return.
    connections.abort();
    connections.idle().await;
}

/// A TLS connection's task: the handshake within the acceptor's deadline,
/// then the service; a failed handshake ends the task (the acceptor counts
/// it).
async fn serve_tls<R: Runtime, S: Service<R>>(
    acceptor: AcceptorKind,
    service: Arc<S>,
    stream: R::Stream,
    peer: SocketAddr,
) {
    if let Some(stream) = handshake::<R>(&acceptor, stream).await {
        service.serve(stream, peer).await;
    }
}

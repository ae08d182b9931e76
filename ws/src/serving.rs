//! A listener served on any [`Runtime`] by a [`Service`]: the accept loop
//! (with back-off when accepting fails), one task per connection, and a
//! two-phase shutdown ([`ServerHandle::shutdown`]). The hub's server, the
//! HTTP server and hubbub-mio's loop server are this loop with their own
//! service.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use event_listener::Event;
use futures_util::future::{select, Either};

use crate::{connect::timeout, flag::Flag, server::is_fatal_accept_error, Runtime};

/// How long [`ServerHandle::shutdown`] waits by default (the grace period of
/// a server stopped by a signal or by dropping its handle).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// What a server does with each accepted connection.
pub trait Service<R: Runtime>: Send + Sync + 'static {
    /// Serve one accepted connection to its end. The future is dropped if
    /// the shutdown's grace period runs out first.
    fn serve(
        &self,
        stream: R::Stream,
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
    let addr = R::local_addr(&listener)?;
    let stop = Arc::new(Stop::default());
    let done = Arc::new(Flag::default());
    let finished = Finished(done.clone());
    R::spawn(accept_loop::<R, S>(
        listener,
        service,
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

/// The running connections: how many, and the signal that aborts them.
#[derive(Default)]
struct Connections {
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    ended: Event,
    abort: Flag,
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
}

/// Counts one running connection; dropped when its task ends.
struct Running(Arc<Connections>);

impl Running {
    fn new(connections: &Arc<Connections>) -> Self {
        connections.live.fetch_add(1, Ordering::SeqCst);
        Running(connections.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.ended.notify(usize::MAX);
        }
    }
}

async fn accept_loop<R: Runtime, S: Service<R>>(
    listener: R::Listener,
    service: S,
    stop: Arc<Stop>,
    _finished: Finished,
) {
    let connections = Arc::new(Connections::default());
    // One wait for the stop request across all accepts.
    let mut stopped = pin!(stop.flag.wait());
    loop {
        let accepted = match select(stopped.as_mut(), pin!(R::accept(&listener))).await {
            Either::Left(((), _)) => break,
            Either::Right((accepted, _)) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let running = Running::new(&connections);
                let serving = service.serve(stream, peer);
                R::spawn(async move {
                    {
                        let serving = pin!(serving);
                        let _ = select(serving, pin!(running.0.abort.wait())).await;
                        // Aborted: the connection's future is dropped here
                        // (a hub session ends with 1006) before `running` is.
                    }
                    drop(running);
                });
            }
            // Out of descriptors or similar: back off instead of spinning.
            Err(error) if is_fatal_accept_error(&error) => {
                R::sleep(Duration::from_millis(20)).await
            }
            Err(_) => {}
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
    connections.abort.set();
    connections.idle().await;
}

//! Runs one accepted connection as a hub session: the opening handshake
//! (routing by the hub), then messages to callbacks and the session's
//! outbound queue to the wire, until the connection ends. Written once over
//! the [`Driver`]; every async adapter only supplies the transport and timer.
//!
//! [`drive_session`] is the loop itself, without the hub: a client adapter
//! runs its connections through it too.

use std::{
    future::{poll_fn, Future},
    net::SocketAddr,
    task::{Context, Poll},
};

use hubbub_core::{CloseCode, Closed, Event, HandshakeError, Initiator, Message};

use hubbub_ws::driver::{Driver, OpenError, Timer, Transport};

use crate::{ConnectionSlot, Hub, Identity, Session, SessionError, SessionInfo};

/// At most this many bytes wait in the protocol core; the rest of a
/// session's sends wait in its bounded queue, where the slow-consumer policy
/// sees them.
pub const HIGH_WATER: usize = 64 << 10;

/// What [`drive_session`] reports, in the order it happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A data message arrived.
    Message(Message),
    /// The peer broke the protocol (the core is closing with the error's
    /// code) or the transport failed.
    Error(SessionError),
    /// The connection ended: reported exactly once, and last. The session
    /// refuses sends from here on.
    Closed(Closed),
}

/// Run an open connection: move `session`'s outbound queue into the core
/// (at most [`HIGH_WATER`] bytes at a time) and report what arrives to
/// `on_event`, until the connection is over and the transport may be
/// dropped.
///
/// (A plain function returning its future, which then holds its arguments
/// once; an `async fn` keeps them twice.)
pub fn drive_session<'a, T: Transport, K: Timer>(
    driver: &'a mut Driver<T, K>,
    session: &'a Session,
    mut on_event: impl FnMut(SessionEvent) + 'a,
) -> impl Future<Output = ()> + 'a {
    let mut closed = false;
    poll_fn(move |cx| poll_session(driver, session, &mut closed, &mut on_event, cx))
}

fn poll_session<T: Transport, K: Timer>(
    driver: &mut Driver<T, K>,
    session: &Session,
    closed: &mut bool,
    on_event: &mut impl FnMut(SessionEvent),
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        let now = driver.now();
        let drained = session.drain_into(driver.conn(), now, HIGH_WATER, cx.waker());
        let event = match driver.poll_event_until(cx, drained.deadline) {
            Poll::Pending => {
                // The session's auth deadline passed: it closes (or, moved
                // meanwhile, waits again).
                if drained.deadline.is_some_and(|d| d <= driver.now()) {
                    session.deadline_passed(driver.now());
                    continue;
                }
                // The driver wrote what the core held and now waits for the
                // peer; the queue's rest must follow without another wake.
                if drained.remaining && driver.conn_ref().pending_bytes() < HIGH_WATER {
                    continue;
                }
                return Poll::Pending;
            }
            Poll::Ready(Ok(Some(event))) => event,
            Poll::Ready(Ok(None)) => {
                if !std::mem::replace(closed, true) {
                    // The core reports one terminal event; should a transport
                    // end without it, the session still ends exactly once.
                    session.mark_closed();
                    on_event(SessionEvent::Closed(Closed {
                        code: CloseCode::ABNORMAL,
                        reason: "connection lost".into(),
                        clean: false,
                        initiator: Initiator::Remote,
                    }));
                }
                return Poll::Ready(());
            }
            Poll::Ready(Err(error)) => {
                on_event(SessionEvent::Error(SessionError::Io(error.to_string())));
                continue;
            }
        };
        match event {
            Event::Message(message) => on_event(SessionEvent::Message(message)),
            Event::ProtocolError(error) => {
                on_event(SessionEvent::Error(SessionError::Protocol(error)))
            }
            Event::Closed(end) if !std::mem::replace(closed, true) => {
                session.mark_closed();
                on_event(SessionEvent::Closed(end));
            }
            _ => {}
        }
    }
}

/// Serve one connection as a session of `hub` until it ends.
///
/// If this future is dropped before the connection ends (the adapter
/// aborted the task after the shutdown's grace period), the session is
/// still forgotten and `on_close` called, with 1006.
///
/// (A plain function returning an `async move` block rather than an `async
/// fn`: an `async fn` keeps its arguments twice in its future — once as
/// passed, once moved into the body — and this future is most of a
/// session's memory at rest. For the same reason the handshake runs in a
/// boxed future of its own (`open_session`): a future is as large as its
/// largest state, and the handshake's is several times the running
/// session's; boxed, it is freed once the session runs.)
#[allow(clippy::manual_async_fn)]
pub fn run_session<T: Transport, K: Timer>(
    mut driver: Driver<T, K>,
    hub: Hub,
    peer: Option<SocketAddr>,
) -> impl Future<Output = ()> {
    async move {
        match Box::pin(open_session(&mut driver, &hub, peer)).await {
            Opening::Open(session) => serve_open(&mut driver, &hub, session).await,
            Opening::Refused => refuse(&mut driver).await,
            Opening::Failed => {}
        }
    }
}

/// Serve a connection whose upgrade another HTTP server (hyper, axum)
/// already answered, as a session of `hub` until it ends: `driver` holds a
/// [`Connection::upgraded`](hubbub_core::Connection::upgraded), `info` the
/// request (with [`SessionInfo::protocol`] as negotiated). The caller has
/// asked [`Hub::decide`] (with [`Hub::admit`], use
/// [`run_admitted_session`]); while the hub shuts down the connection is closed
/// with 1001. Otherwise as [`run_session`].
pub fn run_upgraded_session<T: Transport, K: Timer>(
    driver: Driver<T, K>,
    hub: Hub,
    info: SessionInfo,
) -> impl Future<Output = ()> {
    run_admitted_session(driver, hub, info, ConnectionSlot::none())
}

/// [`run_upgraded_session`] for a connection admitted with
/// [`Hub::admit`]: the session holds `slot` and gives the place back when
/// it ends.
pub fn run_admitted_session<T: Transport, K: Timer>(
    driver: Driver<T, K>,
    hub: Hub,
    info: SessionInfo,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> {
    run_admitted(driver, hub, info, None, slot)
}

/// [`run_admitted_session`] with the `identity` the upgrade request's
/// token proved (the session starts authenticated as it).
#[allow(clippy::manual_async_fn)]
pub(crate) fn run_admitted<T: Transport, K: Timer>(
    mut driver: Driver<T, K>,
    hub: Hub,
    info: SessionInfo,
    identity: Option<Identity>,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> {
    async move {
        match hub.open_with(info, identity, slot) {
            Some(session) => serve_open(&mut driver, &hub, session).await,
            None => refuse(&mut driver).await,
        }
    }
}

/// Run a registered session until its connection ends.
async fn serve_open<T: Transport, K: Timer>(
    driver: &mut Driver<T, K>,
    hub: &Hub,
    session: Session,
) {
    let guard = Registered { hub, session };
    let session = &guard.session;
    drive_session(driver, session, |event| match event {
        SessionEvent::Message(message) => hub.deliver(session, &message),
        SessionEvent::Error(error) => hub.error(session, &error),
        SessionEvent::Closed(end) => hub.closed(session, end.code, &end.reason),
    })
    .await;
}

/// Shutting down: refuse politely, then finish the close.
async fn refuse<T: Transport, K: Timer>(driver: &mut Driver<T, K>) {
    let now = driver.now();
    let _ = driver
        .conn()
        .close(now, CloseCode::GOING_AWAY, "server shutting down");
    poll_fn(|cx| poll_until_finished(driver, cx)).await;
}

/// How [`open_session`] ended.
enum Opening {
    /// Open and registered with the hub (holding its place under the
    /// connection limits until it ends).
    Open(Session),
    /// Open, but the hub is shutting down.
    Refused,
    /// The handshake failed (answered and counted) or the transport did.
    Failed,
}

/// The handshake, routed by the hub, then the session's registration.
async fn open_session<T: Transport, K: Timer>(
    driver: &mut Driver<T, K>,
    hub: &Hub,
    peer: Option<SocketAddr>,
) -> Opening {
    let mut info = SessionInfo::new(peer, "", []);
    let mut identity = None;
    // Counted from the accept: connections still in their handshake count
    // toward the connection limits.
    let reserved = hub.reserve(peer);
    let mut slot = ConnectionSlot::none();
    let opened = driver
        .open(|request| {
            info = SessionInfo::from_request(peer, request);
            let (accept, admitted) = hub.admit_reserved(request, reserved, &mut identity)?;
            slot = admitted;
            Ok(accept)
        })
        .await;
    match opened {
        Ok(opened) => {
            info.protocol = opened.protocol;
            hub.open_with(info, identity, slot)
                .map_or(Opening::Refused, Opening::Open)
        }
        Err(OpenError::Handshake(error)) => {
            if let Some(status) = rejected_status(&error) {
                hub.metrics().handshakes_rejected.inc(status);
            }
            Opening::Failed
        }
        Err(_) => Opening::Failed,
    }
}

/// The HTTP status a failed server handshake was answered with.
fn rejected_status(error: &HandshakeError) -> Option<u16> {
    match error {
        HandshakeError::Rejected { status, .. } => Some(*status),
        HandshakeError::HeadTooLarge => Some(431),
        HandshakeError::Malformed(_) => Some(400),
        _ => None,
    }
}

/// Ends a session that is still registered when its task goes away.
struct Registered<'a> {
    hub: &'a Hub,
    session: Session,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.hub.release(&self.session, CloseCode::ABNORMAL);
        } else {
            // A no-op when the connection already ended.
            self.hub
                .closed(&self.session, CloseCode::ABNORMAL, "session task ended");
        }
    }
}

fn poll_until_finished<T: Transport, K: Timer>(
    driver: &mut Driver<T, K>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        match driver.poll_event(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(None)) => return Poll::Ready(()),
            Poll::Ready(_) => {}
        }
    }
}

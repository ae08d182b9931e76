//! Runs one accepted connection as a hub session: the opening handshake
//! (routing by the hub), then messages to callbacks and the session's
//! outbound queue to the wire, until the connection ends. Written once over
//! the [`Driver`]; every async adapter only supplies the transport and timer.

use std::{
    future::poll_fn,
    net::SocketAddr,
    task::{Context, Poll},
};

use hubbub_core::{CloseCode, Event};

use crate::{
    driver::{Driver, Timer, Transport},
    Hub, Session, SessionError, SessionInfo,
};

/// At most this many bytes wait in the protocol core; the rest of a
/// session's sends wait in its bounded queue, where the slow-consumer policy
/// sees them.
const HIGH_WATER: usize = 64 << 10;

/// Serve one connection as a session of `hub` until it ends.
pub async fn run_session<T: Transport, K: Timer>(
    mut driver: Driver<T, K>,
    hub: Hub,
    peer: Option<SocketAddr>,
) {
    let mut info = SessionInfo {
        peer,
        ..SessionInfo::default()
    };
    let opened = driver
        .open(|request| {
            info = SessionInfo::from_request(peer, request);
            hub.decide(request)
        })
        .await;
    let Ok(opened) = opened else { return };
    info.protocol = opened.protocol;
    match hub.open(info) {
        Some(session) => poll_fn(|cx| poll_session(&mut driver, &hub, &session, cx)).await,
        None => {
            // Shutting down: refuse politely, then finish the close.
            let now = driver.now();
            let _ = driver
                .conn()
                .close(now, CloseCode::GOING_AWAY, "server shutting down");
            poll_fn(|cx| poll_until_finished(&mut driver, cx)).await;
        }
    }
}

fn poll_session<T: Transport, K: Timer>(
    driver: &mut Driver<T, K>,
    hub: &Hub,
    session: &Session,
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        let now = driver.now();
        session.drain_into(driver.conn(), now, HIGH_WATER, cx.waker());
        let event = match driver.poll_event(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Some(event))) => event,
            Poll::Ready(Ok(None)) => {
                // Finished; reports nothing if `Closed` was already seen.
                hub.closed(session, CloseCode::ABNORMAL, "connection lost");
                return Poll::Ready(());
            }
            Poll::Ready(Err(error)) => {
                hub.error(session, &SessionError::Io(error.to_string()));
                continue;
            }
        };
        match event {
            Event::Message(message) => hub.deliver(session, &message),
            Event::ProtocolError(error) => hub.error(session, &SessionError::Protocol(error)),
            Event::Closed(closed) => hub.closed(session, closed.code, &closed.reason),
            _ => {}
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

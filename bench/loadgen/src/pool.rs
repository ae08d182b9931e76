//! The event loop's bookkeeping: a slab of connections registered with one
//! `mio::Poll`, and opening many connections at a bounded concurrency.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::conn::{Conn, ConnEvent};
use crate::handshake;
use crate::rng::Rng;
use crate::sys;
use crate::tls::Tls;

/// Size of the shared read buffer.
const SCRATCH: usize = 256 * 1024;

/// All connections of a run.
pub struct Pool {
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Connections to service again without waiting for an event.
    again: Vec<usize>,
    /// Per slot: the last event reported the peer's FIN or an error.
    hangup: Vec<bool>,
    scratch: Vec<u8>,
    target: SocketAddr,
    path: String,
    /// Connections opened so far (picks the source address).
    opened: usize,
    pub rng: Rng,
    /// Offer permessage-deflate and require it (set before opening).
    pub deflate: bool,
    /// Speak TLS (set before opening).
    pub tls: Option<Tls>,
}

impl Pool {
    /// An empty pool for connections to `target`, upgrading on `path`.
    pub fn new(target: SocketAddr, path: &str) -> io::Result<Pool> {
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            free: Vec::new(),
            again: Vec::new(),
            hangup: Vec::new(),
            scratch: vec![0; SCRATCH],
            target,
            path: path.to_owned(),
            opened: 0,
            rng: Rng::from_entropy(),
            deflate: false,
            tls: None,
        })
    }

    /// Points the connections opened from now on at `target` (those
    /// already open stay where they are).
    pub fn set_target(&mut self, target: SocketAddr) {
        self.target = target;
    }

    /// Starts a connection; the upgrade request goes out once connected.
    pub fn open(&mut self) -> io::Result<usize> {
        let stream = sys::connect(self.target, self.opened)?;
        self.opened += 1;
        let request = handshake::request(self.target, &self.path, self.deflate, &mut self.rng);
        let tls = match &self.tls {
            Some(tls) => Some(tls.connect(self.target.ip())?),
            None => None,
        };
        let mut conn = Conn::new(stream, request, self.deflate, tls);
        conn.flush()?;
        let id = self.free.pop().unwrap_or(self.conns.len());
        self.poll.registry().register(
            conn.stream_mut(),
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        if id == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[id] = Some(conn);
        }
        Ok(id)
    }

    /// Closes a connection (drops the socket) and frees its slot. Closing
    /// the only descriptor of a socket removes it from epoll, so there is no
    /// `deregister` (one system call less per connection).
    pub fn close(&mut self, id: usize) {
        if self.conns.get_mut(id).and_then(Option::take).is_some() {
            if let Some(h) = self.hangup.get_mut(id) {
                *h = false;
            }
            self.free.push(id);
        }
    }

    /// The connection in slot `id`, if open.
    pub fn get(&mut self, id: usize) -> Option<&mut Conn> {
        self.conns.get_mut(id).and_then(Option::as_mut)
    }

    /// Waits at most `timeout` for readiness and lists the connections to
    /// service in `ready` (replacing its contents).
    pub fn wait(&mut self, timeout: Duration, ready: &mut Vec<usize>) -> io::Result<()> {
        ready.clear();
        ready.append(&mut self.again);
        let timeout = if ready.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            let id = event.token().0;
            ready.push(id);
            if event.is_read_closed() || event.is_error() {
                if id >= self.hangup.len() {
                    self.hangup.resize(id + 1, false);
                }
                self.hangup[id] = true;
            }
        }
        Ok(())
    }

    /// Services connection `id` (see [`Conn::service`]); a connection that
    /// still has input is queued to be serviced again. Unknown ids (already
    /// closed) are ignored.
    pub fn service(&mut self, id: usize, on: &mut impl FnMut(ConnEvent<'_>)) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return Ok(());
        };
        let hangup = self.hangup.get_mut(id).is_some_and(std::mem::take);
        if conn.service(&mut self.scratch, hangup, on)? {
            self.again.push(id);
        }
        Ok(())
    }
}

/// The outcome of opening many connections.
#[derive(Debug, Default)]
pub struct Established {
    /// Upgraded connections, in the order they completed.
    pub ids: Vec<usize>,
    /// Connections that failed (connect error, refusal, timeout).
    pub failed: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Opens `n` connections, at most `concurrency` handshakes at a time, and
/// waits until all are upgraded or `deadline` passes (stragglers count as
/// failed and are closed). Frames arriving meanwhile are ignored.
pub fn establish(pool: &mut Pool, n: usize, concurrency: usize, deadline: Instant) -> Established {
    let start = Instant::now();
    let mut out = Established::default();
    let mut pending: Vec<usize> = Vec::new();
    let mut started = 0;
    let mut ready = Vec::new();
    let fail = |out: &mut Established, e: io::Error| {
        out.failed += 1;
        out.first_error.get_or_insert_with(|| e.to_string());
    };
    while out.ids.len() + out.failed < n && Instant::now() < deadline {
        while started < n && pending.len() < concurrency {
            started += 1;
            match pool.open() {
                Ok(id) => pending.push(id),
                Err(e) => fail(&mut out, e),
            }
        }
        if let Err(e) = pool.wait(Duration::from_millis(10), &mut ready) {
            fail(&mut out, e);
            break;
        }
        for &id in &ready {
            if !pending.contains(&id) {
                continue;
            }
            let mut upgraded = false;
            let mut eof = false;
            let result = pool.service(id, &mut |e| match e {
                ConnEvent::Upgraded => upgraded = true,
                ConnEvent::Eof => eof = true,
                ConnEvent::Frame(_) => {}
            });
            let result = match result {
                Ok(()) if eof => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the upgrade",
                )),
                other => other,
            };
            match result {
                Err(e) => {
                    fail(&mut out, e);
                    pool.close(id);
                    pending.retain(|&p| p != id);
                }
                Ok(()) if upgraded => {
                    pending.retain(|&p| p != id);
                    out.ids.push(id);
                }
                Ok(()) => {}
            }
        }
    }
    for id in pending {
        pool.close(id);
        fail(
            &mut out,
            io::Error::new(
                io::ErrorKind::TimedOut,
                "upgrade not completed before the deadline",
            ),
        );
    }
    out.failed = n - out.ids.len();
    out.elapsed = start.elapsed();
    out
}

//! One client connection: non-blocking connect, upgrade, then raw frames.
//! The connection only moves bytes; what to send and what the frames mean
//! is up to the workload, which sees them through [`ConnEvent`]s.
//!
//! The upgrade request is written as soon as the socket exists: on loopback
//! the TCP handshake has usually completed inside `connect()`, and if not,
//! the write says `EAGAIN` and is retried when the socket becomes writable
//! (a failed connect surfaces as the write's error). This saves the wake-up
//! and the `SO_ERROR`/`getpeername` checks a connect-then-write would cost.

use std::io::{self, ErrorKind, Read, Write};

use mio::net::TcpStream;
use rustls::ClientConnection;

use crate::frame::{Event, Parser};
use crate::handshake::{parse_response, Response};

/// Reads done for one readiness event before yielding to other
/// connections; the connection is then serviced again on the next turn.
const MAX_READS_PER_TURN: usize = 16;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Upgrade request queued or sent (the TCP connect may still be in
    /// progress), waiting for `101`.
    Handshaking,
    /// Upgraded: frames flow.
    Open,
    /// The server closed the TCP connection.
    Closed,
}

/// What servicing a connection found.
#[derive(Debug)]
pub enum ConnEvent<'a> {
    /// The server answered `101`.
    Upgraded,
    /// A frame or message from the server.
    Frame(Event<'a>),
    /// The server closed the TCP connection.
    Eof,
}

/// A client connection and its buffers.
pub struct Conn {
    stream: TcpStream,
    state: State,
    /// Bytes queued for the server, sent from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Response head received so far (freed once upgraded).
    head: Vec<u8>,
    parser: Parser,
    /// permessage-deflate was offered and must be accepted.
    deflate: bool,
    /// TLS, when the run speaks it: `out` is plaintext written into it,
    /// and reads go through it.
    tls: Option<Box<ClientConnection>>,
}

impl Conn {
    /// Wraps a connecting stream; `request` goes out on the first
    /// [`Conn::flush`] that finds the connection established.
    pub fn new(
        stream: TcpStream,
        request: Vec<u8>,
        deflate: bool,
        tls: Option<ClientConnection>,
    ) -> Conn {
        Conn {
            stream,
            state: State::Handshaking,
            out: request,
            out_pos: 0,
            head: Vec::new(),
            parser: Parser::default(),
            deflate,
            tls: tls.map(Box::new),
        }
    }

    /// The underlying stream (to register it with the poller).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The output queue: append frames, then call [`Conn::flush`].
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Handles readiness: writes what is queued and
    /// reads what has arrived, reporting through `on`. `hangup` says the
    /// readiness event reported the peer's FIN or an error: then reading goes
    /// on until EOF instead of stopping at the first short read. Returns
    /// `true` when reading stopped early and the connection must be serviced
    /// again.
    pub fn service(
        &mut self,
        scratch: &mut [u8],
        hangup: bool,
        on: &mut impl FnMut(ConnEvent<'_>),
    ) -> io::Result<bool> {
        self.flush()?;
        for _ in 0..MAX_READS_PER_TURN {
            if self.state == State::Closed {
                return Ok(false);
            }
            if self.tls.is_some() {
                // A short read of plaintext says nothing about the socket:
                // read until it says EAGAIN.
                if !self.service_tls(scratch, on)? {
                    return Ok(false);
                }
                continue;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.state = State::Closed;
                    on(ConnEvent::Eof);
                }
                Ok(n) => {
                    self.ingest(&scratch[..n], on)?;
                    // A short read drained the socket; with edge-triggered
                    // readiness new data (or a FIN) raises a new event, so
                    // skip the read that would only say EAGAIN: one syscall
                    // less per message.
                    if n < scratch.len() && !hangup {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// One TLS read: records from the socket, then every byte of
    /// plaintext they held, then the records rustls wants to send (its
    /// handshake). False once the socket said EAGAIN (or EOF).
    fn service_tls(
        &mut self,
        scratch: &mut [u8],
        on: &mut impl FnMut(ConnEvent<'_>),
    ) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(false);
        };
        let more = match tls.read_tls(&mut self.stream) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        let state = tls
            .process_new_packets()
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        let mut closed = !more || state.peer_has_closed();
        while let Some(tls) = self.tls.as_mut() {
            match tls.reader().read(scratch) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.ingest(&scratch[..n], on)?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    closed = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if closed {
            self.state = State::Closed;
            on(ConnEvent::Eof);
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Writes queued bytes until done or the kernel pushes back.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            if self.out_pos < self.out.len() {
                // Unlimited buffer: rustls takes all of it.
                self.out_pos += tls.writer().write(&self.out[self.out_pos..])?;
            }
            self.out.clear();
            self.out_pos = 0;
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        // Each turn sends at least one byte or stops: bounded by the queue.
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= 1 << 16 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Makes the next close send a reset instead of a FIN (`SO_LINGER` 0):
    /// neither side keeps the connection in TIME_WAIT.
    pub fn reset_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(&self.stream).set_linger(Some(std::time::Duration::ZERO))
    }

    /// Interprets received bytes according to the state.
    fn ingest(&mut self, data: &[u8], on: &mut impl FnMut(ConnEvent<'_>)) -> io::Result<()> {
        let frames = if self.state == State::Handshaking {
            self.head.extend_from_slice(data);
            match parse_response(&self.head) {
                Response::Partial => return Ok(()),
                Response::Refused(status) => {
                    return Err(io::Error::new(
                        ErrorKind::ConnectionRefused,
                        format!("upgrade refused: {status}"),
                    ));
                }
                Response::Upgraded(at) => {
                    if self.deflate {
                        let reset = crate::handshake::deflate_answer(&self.head[..at]).ok_or_else(
                            || io::Error::other("the server did not negotiate permessage-deflate"),
                        )?;
                        self.parser.inflate(reset);
                    }
                    self.state = State::Open;
                    on(ConnEvent::Upgraded);
                    let head = std::mem::take(&mut self.head);
                    self.parser
                        .feed(&head[at..], &mut |e| on(ConnEvent::Frame(e)))
                }
            }
        } else {
            self.parser.feed(data, &mut |e| on(ConnEvent::Frame(e)))
        };
        frames.map_err(|e| io::Error::new(ErrorKind::InvalidData, e.0))
    }
}

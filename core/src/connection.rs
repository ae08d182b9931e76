//! The connection state machine; see [`Connection`] for how to drive it.

use std::{collections::VecDeque, io::IoSlice, sync::Arc, time::Instant};

use bytes::Bytes;
use chacha20::{
    rand_core::{Rng, SeedableRng},
    ChaCha8Rng,
};

use crate::{
    close::Initiator,
    extension::{Extension, Offer},
    frame::Header,
    handshake::{
        self, parse_request, switching_protocols, Accept, BareLf, ClientRequest, HandshakeError,
        HeadScan, Reject, Request, Response,
    },
    inbox::{Context, Inbound, Inbox},
    outbox::{Outbox, COALESCE_LIMIT},
    timers::{Timer, TimerTable},
    upgrade::Negotiated,
    CloseCode, Closed, Config, EncodedFrame, EncodedFrames, Message, OpCode, ProtocolError,
    UsageError,
};

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts upgrade requests; sends unmasked frames.
    Server,
    /// Sends the upgrade request; masks every frame.
    Client,
}

/// What the handshake settled, reported by [`Event::Open`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opened {
    /// The chosen subprotocol.
    pub protocol: Option<String>,
    /// The negotiated extension, as sent in `Sec-WebSocket-Extensions`.
    pub extensions: Option<String>,
}

/// Something the application should know about.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Server role: a valid upgrade request arrived. Inspect it with
    /// [`Connection::request`], then answer with [`Connection::accept`] or
    /// [`Connection::reject`].
    Request,
    /// The handshake completed; messages may flow.
    Open(Opened),
    /// A complete data message.
    Message(Message),
    /// A ping arrived (already answered when `auto_pong` is on).
    Ping(Bytes),
    /// A pong arrived.
    Pong(Bytes),
    /// The peer broke the protocol; a close frame carrying
    /// [`ProtocolError::close_code`] is queued and [`Event::Closed`] follows.
    ProtocolError(ProtocolError),
    /// The opening handshake failed (terminal: no `Closed` follows). On the
    /// server an HTTP error response is queued.
    HandshakeFailed(HandshakeError),
    /// The connection is over (terminal).
    Closed(Closed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Server: reading the upgrade request.
    ReadingRequest,
    /// Server: request parsed, waiting for `accept` or `reject`.
    AwaitingDecision,
    /// Client: request sent, reading the response.
    ReadingResponse,
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Nothing more is sent or delivered; waiting for EOF or the linger timer.
    Closed,
}

/// Once drained, the event queue of a connection that has carried data
/// messages keeps its allocation if its capacity is at most this many
/// entries (the size of its first allocation), so a connection receiving a
/// message per read does not allocate a queue per read. Larger queues,
/// grown by a burst, are released, and so is the queue of a connection that
/// only did its handshake.
const EVENTS_KEEP: usize = 4;

/// An event, or the end of the input side, queued in the order the input
/// produced them. An ending takes effect only when the application reaches
/// it in [`Connection::poll_event`]: messages that arrived before a close
/// frame or a protocol error can still be answered, and the answers go out
/// before our close frame.
enum Queued {
    Event(Event),
    End(Ending, Instant),
}

/// How the input side ended.
enum Ending {
    /// A valid close frame arrived.
    PeerClose(CloseCode, String),
    /// The peer broke the protocol: _Fail the WebSocket Connection_ (§7.1.7).
    Fail(ProtocolError),
    /// The transport ended without a close frame.
    Eof,
}

/// Handshake data, dropped once the connection opens.
enum Handshake {
    Server {
        buf: Vec<u8>,
        /// How far `buf` was searched for the head's end.
        scan: HeadScan,
    },
    Decision {
        request: Request,
        after_head: Vec<u8>,
    },
    Client {
        key: String,
        buf: Vec<u8>,
        scan: HeadScan,
        protocols: Vec<String>,
    },
}

/// One WebSocket connection, server or client role.
///
/// # Driving a connection
///
/// A connection is fed three kinds of input and produces three kinds of
/// output. After any input or command, drain the outputs in this order:
///
/// 1. **Events** — call [`poll_event`](Self::poll_event) until `None`
///    and act on each (answer [`Event::Request`] with `accept`/`reject`,
///    deliver messages, ...). Acting may queue more output.
/// 2. **Bytes** — while [`pending_bytes`](Self::pending_bytes) is not
///    zero, fill an `IoSlice` array with
///    [`transmit_slices`](Self::transmit_slices), write it with one
///    vectored write, and report how much was written with
///    [`advance_transmit`](Self::advance_transmit).
/// 3. **Deadline** — sleep until [`poll_timeout`](Self::poll_timeout)
///    (or until input arrives), then call
///    [`handle_timeout`](Self::handle_timeout). A spurious or early
///    call is harmless.
///
/// Inputs are [`handle_input`](Self::handle_input) (bytes read),
/// [`handle_eof`](Self::handle_eof) (the peer closed its half) and
/// `handle_timeout`; commands are `accept`, `reject`, `send`,
/// `send_encoded`, `ping` and `close`.
///
/// Events come out in input order, and so do the changes of state that
/// input causes: a close frame, a protocol error or EOF takes effect when the
/// application reaches it in `poll_event`, not when it is parsed. A message
/// that arrived just before a close frame can therefore still be answered,
/// and the answer goes out before our close frame.
///
/// When [`Event::Closed`] or [`Event::HandshakeFailed`] has been reported and
/// the bytes are flushed, shut down the write half of the transport and keep
/// feeding reads until [`is_finished`](Self::is_finished): the peer
/// then gets our last frame before the socket goes away, instead of a reset.
///
/// The crate documentation has a complete run loop over a `TcpStream`.
pub struct Connection {
    config: Arc<Config>,
    role: Role,
    state: State,
    finished: bool,
    /// A close frame, protocol error or EOF ended the input (its `Ending` is
    /// queued): later input is ignored.
    input_ended: bool,
    /// A data message has passed, either way: from then on the event queue
    /// and the outbox keep their small buffers at rest, for reuse. (An
    /// idle connection that only did its handshake keeps none.)
    warm: bool,
    inbox: Inbox,
    outbox: Outbox,
    events: VecDeque<Queued>,
    timers: TimerTable,
    handshake: Option<Box<Handshake>>,
    extension: Option<Box<dyn Extension>>,
    /// Client only: frame masks come from here.
    rng: Option<Box<ChaCha8Rng>>,
    response: Option<Box<Response>>,
}

impl Connection {
    /// A server-side connection waiting for the upgrade request.
    pub fn server(config: Arc<Config>, now: Instant) -> Self {
        let mut conn = Self::new(config, Role::Server, now);
        conn.state = State::ReadingRequest;
        conn.handshake = Some(Box::new(Handshake::Server {
            buf: Vec::new(),
            scan: HeadScan::default(),
        }));
        conn
    }

    /// A client-side connection; the upgrade request is queued at once.
    /// `seed` feeds the CSPRNG for the handshake key and the frame masks:
    /// pass 32 bytes from the operating system's generator.
    pub fn client(
        config: Arc<Config>,
        now: Instant,
        request: &ClientRequest,
        seed: [u8; 32],
    ) -> Self {
        let mut conn = Self::new(config, Role::Client, now);
        let mut rng = ChaCha8Rng::from_seed(seed);
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = handshake::key_from_nonce(nonce);
        let offers: Vec<Offer> = conn
            .config
            .factories()
            .flat_map(|f| f.client_offers())
            .collect();
        let mut head = Vec::with_capacity(256);
        request.write_to(&key, &offers, &mut head);
        conn.outbox.push_owned(head.into());
        conn.rng = Some(Box::new(rng));
        conn.state = State::ReadingResponse;
        conn.handshake = Some(Box::new(Handshake::Client {
            key,
            buf: Vec::new(),
            scan: HeadScan::default(),
            protocols: request.protocols().to_vec(),
        }));
        conn
    }

    /// A server-side connection whose upgrade an HTTP server (hyper, axum,
    /// ...) already answered with the headers of [`Request::negotiate`]:
    /// it starts open, with the negotiated subprotocol and extension. No
    /// handshake bytes go in or out and there is no [`Event::Request`];
    /// the first event is the same [`Event::Open`] that
    /// [`accept`](Self::accept) reports. Feed it the bytes that follow the
    /// request head.
    pub fn upgraded(config: Arc<Config>, negotiated: Negotiated, now: Instant) -> Self {
        let mut conn = Self::new(config, Role::Server, now);
        conn.open_negotiated(now, negotiated);
        conn
    }

    /// A client-side connection whose opening handshake ran over HTTP/2
    /// (RFC 8441): `request` was sent as an extended CONNECT with the
    /// headers of [`ClientRequest::extended_connect_headers`] for this
    /// `config`, and the server answered `status` with `headers`. A `200`
    /// is checked as a `101` is (the subprotocol and the extension must
    /// have been offered, the extension's parameters honoured) and the
    /// connection starts open, its first event the same [`Event::Open`]
    /// as after a `101`, [`response`](Self::response) the `200`; any other
    /// status is [`HandshakeError::Status`]. No handshake bytes go in or
    /// out: the stream's bytes are frames from the start. `seed` feeds the
    /// frame masks, as in [`client`](Self::client).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use hubbub_core::{ClientRequest, Config, Connection, Event, HandshakeError};
    ///
    /// let config = Arc::new(Config::default());
    /// let request = ClientRequest::from_url("wss://example.com/chat")?.protocol("chat");
    /// let _headers = request.extended_connect_headers(&config);
    /// // ... sent as an extended CONNECT; the server answers 200:
    /// let answer = [("sec-websocket-protocol", "chat")];
    /// let mut conn =
    ///     Connection::client_upgraded(config.clone(), Instant::now(), &request, 200, answer, [7; 32])?;
    /// assert!(matches!(conn.poll_event(), Some(Event::Open(opened)) if opened.protocol.as_deref() == Some("chat")));
    /// assert_eq!(conn.response().map(|r| r.status()), Some(200));
    /// let refused = Connection::client_upgraded(config, Instant::now(), &request, 403, [("a", "b")], [7; 32]);
    /// assert_eq!(refused.err(), Some(HandshakeError::Status(403)));
    /// # Ok::<(), hubbub_core::HandshakeError>(())
    /// ```
    pub fn client_upgraded<N: AsRef<str>, V: AsRef<[u8]>>(
        config: Arc<Config>,
        now: Instant,
        request: &ClientRequest,
        status: u16,
        headers: impl IntoIterator<Item = (N, V)>,
        seed: [u8; 32],
    ) -> Result<Self, HandshakeError> {
        let headers = handshake::HeaderList::collect("", headers, 256).map_err(|name| {
            HandshakeError::Malformed(format!("the {name} header is not printable text"))
        })?;
        let offered: Vec<&str> = config.factories().map(|f| f.name()).collect();
        let response =
            handshake::check_connect_response(status, headers, request.protocols(), &offered)?;
        let mut conn = Self::new(config, Role::Client, now);
        conn.rng = Some(Box::new(ChaCha8Rng::from_seed(seed)));
        conn.state = State::ReadingResponse;
        if conn.open_client(now, response) {
            return Ok(conn);
        }
        match conn.poll_event() {
            Some(Event::HandshakeFailed(error)) => Err(error),
            _ => Err(HandshakeError::BadExtension(
                "the extension was refused".into(),
            )),
        }
    }

    fn new(config: Arc<Config>, role: Role, now: Instant) -> Self {
        let mut timers = TimerTable::new(now);
        timers.set(Timer::Handshake, config.handshake_timeout.map(|t| now + t));
        Connection {
            config,
            role,
            state: State::ReadingRequest,
            finished: false,
            input_ended: false,
            warm: false,
            inbox: Inbox::default(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            timers,
            handshake: None,
            extension: None,
            rng: None,
            response: None,
        }
    }

    // ----- inputs -------------------------------------------------------

    /// Bytes received from the transport, in order. Every byte is consumed
    /// (partial frames are kept), so the caller may reuse its buffer.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        match self.state {
            State::ReadingRequest => self.read_request(now, data),
            State::AwaitingDecision => self.buffer_early_frames(data),
            State::ReadingResponse => self.read_response(now, data),
            State::Open | State::CloseSent if !self.input_ended => {
                self.note_activity(now);
                self.read_frames(now, data);
            }
            State::Open | State::CloseSent => {}
            State::Closed => {}
        }
    }

    /// The transport reached end of stream (the peer closed its half).
    pub fn handle_eof(&mut self, now: Instant) {
        match self.state {
            State::ReadingRequest | State::AwaitingDecision | State::ReadingResponse => {
                self.fail_handshake(now, HandshakeError::Eof);
            }
            State::Open | State::CloseSent => self.end_input(now, Ending::Eof),
            State::Closed => {}
        }
        self.finished = true;
        self.timers.clear_all();
    }

    /// Fire every timer whose deadline is at or before `now`. Calling it
    /// early, late or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match timer {
                Timer::Handshake => self.fail_handshake(now, HandshakeError::Timeout),
                Timer::Idle => self.local_close(now, CloseCode::GOING_AWAY, "idle timeout"),
                Timer::KeepAlive => {
                    if self.state == State::Open {
                        self.push_control(OpCode::Ping, b"");
                        self.arm(Timer::KeepAlive, now, self.config.ping_interval);
                        if self.timers.get(Timer::PongDeadline).is_none() {
                            self.arm(Timer::PongDeadline, now, self.config.pong_timeout);
                        }
                    }
                }
                Timer::PongDeadline => self.local_close(now, CloseCode::GOING_AWAY, "ping timeout"),
                Timer::CloseHandshake => {
                    // A queued ending closes the connection when reached.
                    if self.state == State::CloseSent && !self.input_ended {
                        self.finish(
                            now,
                            CloseCode::ABNORMAL,
                            "close handshake timed out".into(),
                            false,
                            Initiator::Local,
                        );
                    }
                }
                Timer::Linger => self.finished = true,
                Timer::Message => {
                    if let Some(limit) = self.config.message_timeout {
                        self.fail(now, ProtocolError::MessageTimeout { limit });
                    }
                }
            }
        }
    }

    // ----- commands -----------------------------------------------------

    /// The pending upgrade request (server role, after [`Event::Request`],
    /// until `accept` or `reject`).
    pub fn request(&self) -> Option<&Request> {
        match self.handshake.as_deref() {
            Some(Handshake::Decision { request, .. }) => Some(request),
            _ => None,
        }
    }

    /// Accept the pending upgrade request: queue the `101` response,
    /// negotiate extensions, and open the connection. Frames that arrived
    /// early are processed now.
    pub fn accept(&mut self, now: Instant, accept: Accept) -> Result<(), UsageError> {
        let Some(request) = self.request() else {
            return Err(UsageError::NoPendingRequest);
        };
        let (head, negotiated) = switching_protocols(request, &self.config, accept)?;
        let Some(Handshake::Decision { after_head, .. }) = self.take_decision() else {
            return Err(UsageError::NoPendingRequest);
        };
        self.outbox.push_owned(head.into());
        self.open_negotiated(now, negotiated);
        if !after_head.is_empty() {
            self.read_frames(now, &after_head);
        }
        Ok(())
    }

    /// Refuse the pending upgrade request with an HTTP error response.
    pub fn reject(&mut self, now: Instant, reject: Reject) -> Result<(), UsageError> {
        if self.take_decision().is_none() {
            return Err(UsageError::NoPendingRequest);
        }
        self.send_rejection(now, reject);
        Ok(())
    }

    /// Queue a data message (fragmented per `Config::fragment_size`).
    pub fn send(&mut self, message: Message) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::NotOpen);
        }
        self.warm = true;
        let text = message.is_text();
        let encoded = self
            .extension
            .as_mut()
            .and_then(|e| e.encode(message.as_bytes(), text));
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        match encoded {
            Some((rsv, encoded)) => self.push_message(opcode, rsv, Payload::Shared(encoded.into())),
            // Copied into the outbox anyway (masked, or small): encode
            // straight from the message, without making it `Bytes` first.
            None if self.role == Role::Client || message.len() <= COALESCE_LIMIT => {
                self.push_message(opcode, 0, Payload::Borrowed(message.as_bytes()))
            }
            None => self.push_message(opcode, 0, Payload::Shared(message.into_data())),
        }
        Ok(())
    }

    /// Queue a data message as frames of at most `Config::fragment_size`.
    fn push_message(&mut self, mut opcode: OpCode, mut rsv: u8, mut rest: Payload<'_>) {
        let fragment = self.config.fragment_size.unwrap_or(usize::MAX).max(1);
        loop {
            let piece = rest.split_to(fragment.min(rest.len()));
            let fin = rest.len() == 0;
            let header = Header {
                fin,
                rsv,
                opcode,
                mask: self.next_mask(),
                len: piece.len() as u64,
            };
            match piece {
                Payload::Borrowed(piece) => self.outbox.push_copy(header, piece),
                Payload::Shared(piece) => self.outbox.push_data(header, piece),
            }
            if fin {
                return;
            }
            opcode = OpCode::Continuation;
            rsv = 0;
        }
    }

    /// Whether an extension (permessage-deflate) was negotiated.
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }

    /// Queue pre-encoded server frames gathered in one batch, sent as they
    /// are: uncompressed even when an extension was negotiated (legal for
    /// permessage-deflate, whose compression is per message; a caller that
    /// wants its broadcasts compressed sends them one by one with
    /// [`send_encoded`](Self::send_encoded)).
    pub fn send_encoded_frames(&mut self, frames: EncodedFrames) -> Result<(), UsageError> {
        if self.role == Role::Client {
            return Err(UsageError::EncodedFrameOnClient);
        }
        if self.state != State::Open {
            return Err(UsageError::NotOpen);
        }
        self.outbox.push_owned(frames.into_bytes());
        Ok(())
    }

    /// Queue a pre-encoded server frame; its bytes are shared, not copied.
    pub fn send_encoded(&mut self, frame: &EncodedFrame) -> Result<(), UsageError> {
        if self.role == Role::Client {
            return Err(UsageError::EncodedFrameOnClient);
        }
        if self.state != State::Open {
            return Err(UsageError::NotOpen);
        }
        self.warm = true;
        let Some(ext) = self.extension.as_mut() else {
            self.outbox.push_encoded(frame.as_bytes());
            return Ok(());
        };
        let (opcode, payload) = frame.message();
        let text = opcode == OpCode::Text;
        match ext.shared_encoding() {
            // Encoded once per key, shared by every connection with it.
            Some(key) => {
                let bytes = frame.variant(key, || match ext.encode(payload, text) {
                    Some((rsv, encoded)) => EncodedFrame::frame_bytes(opcode, rsv, &encoded),
                    None => frame.as_bytes().clone(),
                });
                self.outbox.push_encoded(&bytes);
            }
            None => match ext.encode(payload, text) {
                Some((rsv, encoded)) => {
                    self.push_message(opcode, rsv, Payload::Shared(encoded.into()))
                }
                None => self.outbox.push_encoded(frame.as_bytes()),
            },
        }
        Ok(())
    }

    /// Queue a ping (ahead of queued data). At most 125 bytes.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        if payload.len() > 125 {
            return Err(UsageError::ControlPayloadTooLong);
        }
        if self.state != State::Open {
            return Err(UsageError::NotOpen);
        }
        self.push_control(OpCode::Ping, payload);
        Ok(())
    }

    /// Start the close handshake: the close frame goes after the data
    /// already queued, and no data may be sent after it. `code` must be one
    /// a peer may receive (1000–1003, 1007–1014, 3000–4999).
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        if reason.len() > 123 {
            return Err(UsageError::CloseReasonTooLong);
        }
        if self.state != State::Open {
            return Err(UsageError::NotOpen);
        }
        self.local_close(now, code, reason);
        Ok(())
    }

    // ----- outputs ------------------------------------------------------

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = loop {
            match self.events.pop_front() {
                Some(Queued::Event(event)) => break Some(event),
                Some(Queued::End(ending, at)) => {
                    if let Some(event) = self.apply_ending(ending, at) {
                        break Some(event);
                    }
                }
                None => break None,
            }
        };
        if self.events.is_empty() && (!self.warm || self.events.capacity() > EVENTS_KEEP) {
            // A burst's queue is released; a small one is kept for reuse
            // once data flows.
            self.events = VecDeque::new();
        }
        event
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fill `dst` with the bytes waiting to be written, in wire order, for
    /// one vectored write; returns the number of slices filled. Large and
    /// broadcast payloads appear by reference, never copied.
    #[must_use]
    pub fn transmit_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.outbox.slices(dst)
    }

    /// Report that the first `n` bytes of the transmit queue were written.
    ///
    /// # Panics
    /// If `n` exceeds [`pending_bytes`](Self::pending_bytes): a caller bug.
    pub fn advance_transmit(&mut self, n: usize) {
        self.outbox.advance(n, self.warm);
    }

    /// Bytes waiting to be written.
    #[must_use]
    pub fn pending_bytes(&self) -> usize {
        self.outbox.len()
    }

    /// True while data messages may be sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True once the connection ended (closed or handshake failed): nothing
    /// more will be delivered or queued.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True when the transport can be dropped: closed, transmit queue
    /// flushed, and the peer's EOF seen or the linger time passed.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed
            && (self.finished || self.outbox.is_empty() && self.timers.next().is_none())
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The validated `101` response (client role, once open).
    pub fn response(&self) -> Option<&Response> {
        self.response.as_deref()
    }

    // ----- handshake ----------------------------------------------------

    fn read_request(&mut self, now: Instant, data: &[u8]) {
        let Some(Handshake::Server { buf, scan }) = self.handshake.as_deref_mut() else {
            return;
        };
        buf.extend_from_slice(data);
        // Parsed once the blank line is in (or the head outgrew the limit,
        // for the 431): a head arriving in pieces is scanned once.
        match scan.feed(buf) {
            Ok(None) if buf.len() <= self.config.max_head_size => return,
            Ok(_) => {}
            Err(BareLf) => {
                let reject = Reject::new(400).with_body(
                    "Malformed HTTP request: a line ends with a bare LF; \
                     lines end with CRLF (RFC 9112 section 2.2).",
                );
                return self.send_rejection(now, reject);
            }
        }
        match parse_request(buf, self.config.max_head_size) {
            Ok(None) => {}
            Ok(Some((request, head_len))) => {
                let after_head = buf.split_off(head_len);
                self.handshake = Some(Box::new(Handshake::Decision {
                    request,
                    after_head,
                }));
                self.state = State::AwaitingDecision;
                self.push_event(Event::Request);
            }
            Err(reject) => self.send_rejection(now, reject),
        }
    }

    /// Frames that arrive before the application decided are kept (up to
    /// the head limit) and processed on `accept`.
    fn buffer_early_frames(&mut self, data: &[u8]) {
        if let Some(Handshake::Decision { after_head, .. }) = self.handshake.as_deref_mut() {
            if after_head.len() + data.len() <= self.config.max_head_size {
                after_head.extend_from_slice(data);
            }
        }
    }

    fn take_decision(&mut self) -> Option<Handshake> {
        if self.state != State::AwaitingDecision {
            return None;
        }
        self.handshake.take().map(|h| *h)
    }

    fn send_rejection(&mut self, now: Instant, reject: Reject) {
        let mut head = Vec::with_capacity(128);
        reject.write_to(&mut head);
        self.outbox.push_owned(head.into());
        let error = HandshakeError::Rejected {
            status: reject.status(),
            reason: reject.body().to_owned(),
        };
        self.fail_handshake(now, error);
    }

    fn read_response(&mut self, now: Instant, data: &[u8]) {
        let Some(Handshake::Client {
            key,
            buf,
            scan,
            protocols,
        }) = self.handshake.as_deref_mut()
        else {
            return;
        };
        buf.extend_from_slice(data);
        match scan.feed(buf) {
            Ok(None) if buf.len() <= self.config.max_head_size => return,
            Ok(_) => {}
            Err(BareLf) => {
                let why = "a line of the response ends with a bare LF, not CRLF".to_owned();
                return self.fail_handshake(now, HandshakeError::Malformed(why));
            }
        }
        let offered: Vec<&str> = self.config.factories().map(|f| f.name()).collect();
        let (response, head_len) = match handshake::parse_response(
            buf,
            self.config.max_head_size,
            key,
            protocols,
            &offered,
        ) {
            Ok(None) => return,
            Ok(Some(parsed)) => parsed,
            Err(error) => return self.fail_handshake(now, error),
        };
        let after_head = buf.split_off(head_len);
        if self.open_client(now, response) && !after_head.is_empty() {
            self.read_frames(now, &after_head);
        }
    }

    /// Client: take up the extension the server accepted and open; `false`
    /// (the handshake failed) if it cannot be honoured.
    fn open_client(&mut self, now: Instant, response: Response) -> bool {
        let mut accepted = response.extensions().iter();
        let negotiated = match (accepted.next(), accepted.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                let error = HandshakeError::BadExtension("more than one extension accepted".into());
                self.fail_handshake(now, error);
                return false;
            }
            (Some(offer), None) => {
                let factory = self.config.factories().find(|f| f.name() == offer.name);
                match factory.map(|f| f.accept_response(offer)) {
                    Some(Ok(state)) => {
                        self.extension = Some(state);
                        Some(offer.to_string())
                    }
                    Some(Err(why)) => {
                        self.fail_handshake(now, HandshakeError::BadExtension(why));
                        return false;
                    }
                    None => {
                        let error = HandshakeError::BadExtension(offer.name.clone());
                        self.fail_handshake(now, error);
                        return false;
                    }
                }
            }
        };
        let opened = Opened {
            protocol: response.protocol().map(str::to_owned),
            extensions: negotiated,
        };
        self.response = Some(Box::new(response));
        self.open(now, opened);
        true
    }

    /// Server: open with what [`Request::negotiate`] settled.
    fn open_negotiated(&mut self, now: Instant, negotiated: Negotiated) {
        let Negotiated {
            protocol,
            extension,
        } = negotiated;
        let extensions = extension.map(|(value, state)| {
            self.extension = Some(state);
            value
        });
        self.open(
            now,
            Opened {
                protocol,
                extensions,
            },
        );
    }

    fn open(&mut self, now: Instant, opened: Opened) {
        self.handshake = None;
        self.state = State::Open;
        self.timers.set(Timer::Handshake, None);
        self.note_activity(now);
        self.push_event(Event::Open(opened));
    }

    fn fail_handshake(&mut self, now: Instant, error: HandshakeError) {
        if !matches!(
            self.state,
            State::ReadingRequest | State::AwaitingDecision | State::ReadingResponse
        ) {
            return;
        }
        self.handshake = None;
        self.push_event(Event::HandshakeFailed(error));
        self.enter_closed(now);
    }

    // ----- frames -------------------------------------------------------

    fn read_frames(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() && !self.input_ended {
            let mut cx = Context {
                role: self.role,
                config: &self.config,
                extension: self
                    .extension
                    .as_mut()
                    .map(|e| &mut **e as &mut dyn Extension),
            };
            match self.inbox.step(&mut data, &mut cx) {
                Ok(None) => {}
                Ok(Some(inbound)) => self.on_inbound(now, inbound),
                Err(error) => return self.fail(now, error),
            }
        }
        if self.inbox.busy() || self.timers.is_armed(Timer::Message) {
            self.update_message_timer(now);
        }
    }

    /// After an input: keep [`Timer::Message`] armed exactly while a frame
    /// or message is partly received, from its first byte on (re-armed
    /// when what is partial now began in this input). Called only when
    /// something is partial or the timer is armed: messages that arrive
    /// whole cost nothing here.
    #[inline(never)]
    fn update_message_timer(&mut self, now: Instant) {
        let began = self.inbox.take_began();
        let Some(limit) = self.config.message_timeout else {
            return;
        };
        if !self.inbox.busy() || self.input_ended {
            self.timers.set(Timer::Message, None);
        } else if began || !self.timers.is_armed(Timer::Message) {
            self.timers.set(Timer::Message, Some(now + limit));
        }
    }

    fn on_inbound(&mut self, now: Instant, inbound: Inbound) {
        match inbound {
            Inbound::Message(message) => self.push_event(Event::Message(message)),
            Inbound::Ping(payload) if self.state == State::Open => {
                if self.config.auto_pong {
                    self.push_control(OpCode::Pong, &payload);
                }
                self.push_event(Event::Ping(payload.into()));
            }
            Inbound::Pong(payload) if self.state == State::Open => {
                self.push_event(Event::Pong(payload.into()))
            }
            Inbound::Close(code, reason) => self.end_input(now, Ending::PeerClose(code, reason)),
            Inbound::Ping(_) | Inbound::Pong(_) => {}
        }
    }

    /// Stop reading; the ending takes effect when the application reaches
    /// it in the event order.
    fn end_input(&mut self, now: Instant, ending: Ending) {
        if self.input_ended {
            return;
        }
        self.input_ended = true;
        self.inbox = Inbox::default();
        self.events.push_back(Queued::End(ending, now));
    }

    fn fail(&mut self, now: Instant, error: ProtocolError) {
        self.end_input(now, Ending::Fail(error));
    }

    /// Carry out a queued ending; `None` if the connection already ended
    /// another way (a timer) in the meantime.
    fn apply_ending(&mut self, ending: Ending, at: Instant) -> Option<Event> {
        let initiator = match self.state {
            State::Open => Initiator::Remote,
            State::CloseSent => Initiator::Local,
            _ => return None,
        };
        let was_open = self.state == State::Open;
        let event = match ending {
            Ending::PeerClose(code, reason) => {
                if was_open {
                    // Echo the code (§5.5.1); a close without one is echoed empty.
                    let echo = match code {
                        CloseCode::NO_STATUS => Vec::new(),
                        code => code.0.to_be_bytes().to_vec(),
                    };
                    self.push_close_frame(&echo);
                }
                Event::Closed(Closed {
                    code,
                    reason,
                    clean: true,
                    initiator,
                })
            }
            Ending::Fail(error) => {
                let (code, reason) = (error.close_code(), error.close_reason());
                if was_open {
                    self.push_close_frame(&close_payload(code, &reason));
                }
                let closed = Closed {
                    code,
                    reason: reason.into_owned(),
                    clean: false,
                    initiator: Initiator::Local,
                };
                self.events.push_front(Queued::Event(Event::Closed(closed)));
                Event::ProtocolError(error)
            }
            Ending::Eof => Event::Closed(Closed {
                code: CloseCode::ABNORMAL,
                reason: "connection ended without a close frame".into(),
                clean: false,
                initiator,
            }),
        };
        self.enter_closed(at);
        Some(event)
    }

    /// A close started by us: the application, the idle timer or the pong
    /// deadline.
    fn local_close(&mut self, now: Instant, code: CloseCode, reason: &str) {
        if self.state != State::Open {
            return;
        }
        self.push_close_frame(&close_payload(code, reason));
        self.state = State::CloseSent;
        for timer in [Timer::Idle, Timer::KeepAlive, Timer::PongDeadline] {
            self.timers.set(timer, None);
        }
        self.arm(Timer::CloseHandshake, now, Some(self.config.close_timeout));
    }

    fn finish(
        &mut self,
        now: Instant,
        code: CloseCode,
        reason: String,
        clean: bool,
        initiator: Initiator,
    ) {
        self.push_event(Event::Closed(Closed {
            code,
            reason,
            clean,
            initiator,
        }));
        self.enter_closed(now);
    }

    fn enter_closed(&mut self, now: Instant) {
        self.state = State::Closed;
        self.inbox = Inbox::default();
        self.timers.clear_all();
        if !self.finished {
            self.arm(Timer::Linger, now, Some(self.config.close_timeout));
        }
    }

    // ----- helpers ------------------------------------------------------

    fn push_event(&mut self, event: Event) {
        self.warm |= matches!(event, Event::Message(_));
        self.events.push_back(Queued::Event(event));
    }

    fn note_activity(&mut self, now: Instant) {
        if self.state == State::Open {
            self.arm(Timer::Idle, now, self.config.idle_timeout);
            self.arm(Timer::KeepAlive, now, self.config.ping_interval);
            self.timers.set(Timer::PongDeadline, None);
        }
    }

    fn arm(&mut self, timer: Timer, now: Instant, after: Option<std::time::Duration>) {
        self.timers.set(timer, after.map(|d| now + d));
    }

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        self.rng.as_mut().map(|rng| rng.next_u32().to_ne_bytes())
    }

    fn push_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let header = Header {
            fin: true,
            rsv: 0,
            opcode,
            mask: self.next_mask(),
            len: payload.len() as u64,
        };
        self.outbox.push_control(header, payload);
    }

    /// Close frames go after queued data, never ahead of it.
    fn push_close_frame(&mut self, payload: &[u8]) {
        let header = Header {
            fin: true,
            rsv: 0,
            opcode: OpCode::Close,
            mask: self.next_mask(),
            len: payload.len() as u64,
        };
        self.outbox.push_copy(header, payload);
    }
}

/// An outgoing payload: borrowed when the outbox copies it anyway, shared
/// when it is queued by reference.
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        match self {
            Payload::Borrowed(bytes) => bytes.len(),
            Payload::Shared(bytes) => bytes.len(),
        }
    }

    /// The first `n` bytes; `self` keeps the rest.
    fn split_to(&mut self, n: usize) -> Self {
        match self {
            Payload::Borrowed(bytes) => {
                let (head, rest) = bytes.split_at(n);
                *bytes = rest;
                Payload::Borrowed(head)
            }
            Payload::Shared(bytes) if n == bytes.len() => Payload::Shared(std::mem::take(bytes)),
            Payload::Shared(bytes) => Payload::Shared(bytes.split_to(n)),
        }
    }
}

fn close_payload(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.0.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload
}

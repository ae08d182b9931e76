//! The connection state machine.
//!
//! # Driving a connection
//!
//! A [`Connection`] is fed three kinds of input and produces three kinds of
//! output. After any input or command, drain the outputs in this order:
//!
//! 1. **Events** — call [`poll_event`](Connection::poll_event) until `None`
//!    and act on each (answer [`Event::Request`] with `accept`/`reject`,
//!    deliver messages, ...). Acting may queue more output.
//! 2. **Bytes** — while [`pending_bytes`](Connection::pending_bytes) is not
//!    zero, fill an `IoSlice` array with
//!    [`transmit_slices`](Connection::transmit_slices), write it with one
//!    vectored write, and report how much was written with
//!    [`advance_transmit`](Connection::advance_transmit).
//! 3. **Deadline** — sleep until [`poll_timeout`](Connection::poll_timeout)
//!    (or until input arrives), then call
//!    [`handle_timeout`](Connection::handle_timeout). A spurious or early
//!    call is harmless.
//!
//! Inputs are [`handle_input`](Connection::handle_input) (bytes read),
//! [`handle_eof`](Connection::handle_eof) (the peer closed its half) and
//! `handle_timeout`; commands are `accept`, `reject`, `send`,
//! `send_encoded`, `ping` and `close`.
//!
//! Events come out in input order, and so do the changes of state that
//! input causes: a close frame, a protocol error or EOF takes effect when the
//! application reaches it in `poll_event`, not when it is parsed. A message
//! that arrived just before a close frame can therefore still be answered,
//! and the answer goes out before our close frame.
//!
//! When [`Event::Closed`] or [`Event::HandshakeFailed`] has been reported and
//! the bytes are flushed, shut down the write half of the transport and keep
//! feeding reads until [`is_finished`](Connection::is_finished): the peer
//! then gets our last frame before the socket goes away, instead of a reset.

use std::{collections::VecDeque, io::IoSlice, sync::Arc, time::Instant};

use bytes::Bytes;
use rand_chacha::{
    rand_core::{Rng, SeedableRng},
    ChaCha8Rng,
};

use crate::{
    close::Initiator,
    extension::{DecodeError, Extension, Offer},
    frame::{Header, MAX_HEADER},
    handshake::{
        self, parse_request, write_switching_protocols, Accept, ClientRequest, HandshakeError,
        Reject, Request, Response,
    },
    mask::apply_mask_at,
    outbox::{Outbox, COALESCE_LIMIT},
    timers::{Timer, TimerTable},
    utf8::{self, InvalidUtf8, Utf8Validator},
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
    },
    Decision {
        request: Request,
        after_head: Vec<u8>,
    },
    Client {
        key: String,
        buf: Vec<u8>,
        protocols: Vec<String>,
    },
}

/// A data message being reassembled.
struct Partial {
    text: bool,
    /// The first frame carried the extension's RSV bits: the payload is
    /// decoded by the extension before it lands in `body`.
    compressed: bool,
    body: Body,
    /// Text: the validation state (an unfinished character carried over).
    utf8: Utf8Validator,
}

/// The bytes of a message being reassembled.
enum Body {
    /// Uncompressed binary.
    Binary(Vec<u8>),
    /// Text, validated as it arrives (after decoding, for a compressed
    /// message): every byte once, so the finished `String` needs no second
    /// pass.
    Text(String),
}

impl Partial {
    fn compressed(&self) -> bool {
        self.compressed
    }

    /// Payload bytes received so far (decoded, for a compressed message).
    fn received(&self) -> usize {
        match &self.body {
            Body::Binary(data) => data.len(),
            Body::Text(text) => text.len() + self.utf8.carried(),
        }
    }
}

/// Room reserved for a frame's payload when a piece of it arrives: the rest
/// of the frame (its length already passed the limits), but at most this
/// much beyond the piece. A frame up to 1 MiB therefore lands in a buffer
/// of the right size at once; a header alone reserves nothing.
const RESERVE_AHEAD: usize = 1 << 20;

/// Uncompressed text arriving in pieces is unmasked through a stack buffer
/// of this size, validated there (simdutf8) and appended to the message's
/// `String`. (2 KiB measured best, 64 KiB messages in callgrind: 1 KiB
/// 168,888 instructions/message, 2 KiB 159,385, 4 KiB 162,838.)
const TEXT_STAGE: usize = 2 << 10;

/// A whole text message this long or longer is validated by simdutf8 (in a
/// stack buffer when masked, see [`staged_text`]) and copied into a
/// `String` of its size; a shorter one is unmasked into one `Vec` and
/// converted by std's `String::from_utf8`. simdutf8 hands inputs under 64
/// bytes to std's validator, so below this staging is pure overhead.
/// Measured (callgrind, instructions/message, the benches' mixed text):
/// 63 B 1,124 one `Vec` vs 1,186 simdutf8; 64 B 1,095 vs 827; 256 B 3,040
/// vs 1,438; 1 KiB 9,777 vs 3,396. Pure ASCII, where std has a fast path,
/// costs 2-9% more from 64 to 512 B (64 B 713 vs 780) and less from 768 B
/// (1 KiB 2,782 vs 2,670).
const STAGED_TEXT_MIN: usize = 64;

/// Frame-decoding state between reads.
#[derive(Default)]
struct Reader {
    /// Bytes of a header split across reads.
    head: [u8; MAX_HEADER],
    head_len: u8,
    /// The frame whose payload is arriving, and how much of it has.
    frame: Option<(Header, u64)>,
    /// The fragmented (or partly received) data message, boxed: a whole
    /// unfragmented, uncompressed message in one read never gets here, and
    /// an idle connection should not carry its room.
    message: Option<Box<Partial>>,
    /// A control frame's payload split across reads.
    control: Vec<u8>,
}

/// One WebSocket connection, server or client role. See the module
/// documentation for the polling order.
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
    reader: Reader,
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
        conn.handshake = Some(Box::new(Handshake::Server { buf: Vec::new() }));
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
            protocols: request.protocols().to_vec(),
        }));
        conn
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
            reader: Reader::default(),
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
        if let Some(chosen) = &accept.protocol {
            if !request.protocols().contains(chosen) {
                return Err(UsageError::UnofferedProtocol(chosen.clone()));
            }
        }
        let Some(Handshake::Decision {
            request,
            after_head,
        }) = self.take_decision()
        else {
            return Err(UsageError::NoPendingRequest);
        };
        let mut negotiated = None;
        for factory in self.config.factories() {
            let offers: Vec<&Offer> = request
                .extensions()
                .iter()
                .filter(|o| o.name == factory.name())
                .collect();
            if offers.is_empty() {
                continue;
            }
            if let Some((response, state)) = factory.accept_offer(&offers) {
                negotiated = Some(response.to_string());
                self.extension = Some(state);
                break;
            }
        }
        let mut head = Vec::with_capacity(160);
        write_switching_protocols(&request, &accept, negotiated.as_deref(), &mut head);
        self.outbox.push_owned(head.into());
        self.open(
            now,
            Opened {
                protocol: accept.protocol,
                extensions: negotiated,
            },
        );
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
        let text = matches!(message, Message::Text(_));
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
            None => {
                let payload = match message {
                    Message::Text(text) => Bytes::from(text),
                    Message::Binary(data) => data,
                };
                self.push_message(opcode, 0, Payload::Shared(payload))
            }
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
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The deadline of one named timer.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// Fill `dst` with the bytes waiting to be written, in wire order, for
    /// one vectored write; returns the number of slices filled. Large and
    /// broadcast payloads appear by reference, never copied.
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
        let Some(Handshake::Server { buf }) = self.handshake.as_deref_mut() else {
            return;
        };
        buf.extend_from_slice(data);
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
            protocols,
        }) = self.handshake.as_deref_mut()
        else {
            return;
        };
        buf.extend_from_slice(data);
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
        let mut accepted = response.extensions().iter();
        let negotiated = match (accepted.next(), accepted.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                let error = HandshakeError::BadExtension("more than one extension accepted".into());
                return self.fail_handshake(now, error);
            }
            (Some(offer), None) => {
                let factory = self.config.factories().find(|f| f.name() == offer.name);
                match factory.map(|f| f.accept_response(offer)) {
                    Some(Ok(state)) => {
                        self.extension = Some(state);
                        Some(offer.to_string())
                    }
                    Some(Err(why)) => {
                        return self.fail_handshake(now, HandshakeError::BadExtension(why))
                    }
                    None => {
                        return self
                            .fail_handshake(now, HandshakeError::BadExtension(offer.name.clone()))
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
        if !after_head.is_empty() {
            self.read_frames(now, &after_head);
        }
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
            let step = match self.reader.frame {
                Some((header, received)) => {
                    let take = (header.len - received).min(data.len() as u64) as usize;
                    self.on_payload(now, header, received, &data[..take]);
                    Ok(take)
                }
                None => self.read_header(now, data),
            };
            match step {
                Ok(used) => data = &data[used..],
                Err(error) => return self.fail(now, error),
            }
        }
    }

    /// Parse (or continue parsing) a frame header; returns the bytes of
    /// `data` used.
    fn read_header(&mut self, now: Instant, data: &[u8]) -> Result<usize, ProtocolError> {
        let stashed = self.reader.head_len as usize;
        let parsed = if stashed == 0 {
            Header::parse(data)?
        } else {
            let take = (MAX_HEADER - stashed).min(data.len());
            self.reader.head[stashed..stashed + take].copy_from_slice(&data[..take]);
            Header::parse(&self.reader.head[..stashed + take])?
        };
        let Some((header, head_len)) = parsed else {
            // Incomplete: keep what we have (less than a header's worth).
            let take = (MAX_HEADER - stashed).min(data.len());
            self.reader.head[stashed..stashed + take].copy_from_slice(&data[..take]);
            self.reader.head_len += take as u8;
            return Ok(take);
        };
        self.reader.head_len = 0;
        let used = head_len - stashed;
        self.check_frame(&header)?;
        let payload = &data[used..];
        if header.len > payload.len() as u64 {
            self.start_frame(header);
            return Ok(used);
        }
        let len = header.len as usize;
        let payload = &payload[..len];
        let starts_message = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if starts_message && header.fin && header.rsv == 0 {
            // The common case: a whole unfragmented, uncompressed message
            // (check_frame made sure no other message is in progress).
            self.on_whole_message(now, header, payload);
        } else {
            self.start_frame(header);
            self.on_payload(now, header, 0, payload);
        }
        Ok(used + len)
    }

    /// Validate a header against RFC 6455 §5 and the limits.
    fn check_frame(&self, header: &Header) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let starts_message = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let allowed_rsv = match (&self.extension, starts_message) {
            (Some(ext), true) => ext.rsv_bits(),
            _ => 0,
        };
        if header.rsv & !allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            return Ok(());
        }
        let message = &self.reader.message;
        match (header.opcode, message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        if header.len > self.config.frame_limit() as u64 {
            return Err(ProtocolError::FrameTooLarge);
        }
        let (received, compressed) = match message {
            Some(m) => (m.received(), m.compressed()),
            None => (0, header.rsv != 0),
        };
        if !compressed && received as u64 + header.len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge);
        }
        Ok(())
    }

    /// Set up the reception of a checked frame's payload.
    fn start_frame(&mut self, header: Header) {
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            let text = header.opcode == OpCode::Text;
            self.reader.message = Some(Box::new(Partial {
                text,
                compressed: header.rsv != 0,
                body: if text {
                    Body::Text(String::new())
                } else {
                    Body::Binary(Vec::new())
                },
                utf8: Utf8Validator::new(),
            }));
        }
        self.reader.frame = Some((header, 0));
    }

    /// A checked, unfragmented, uncompressed data frame whose whole payload
    /// is in `payload`: the message is built directly, validated once.
    fn on_whole_message(&mut self, now: Instant, header: Header, payload: &[u8]) {
        let text = header.opcode == OpCode::Text;
        let message = if text && payload.len() >= STAGED_TEXT_MIN {
            match staged_text(payload, header.mask) {
                Ok(text) => Message::Text(text),
                Err(_) => return self.fail(now, ProtocolError::InvalidUtf8),
            }
        } else {
            let mut data = payload.to_vec();
            apply_mask_at(&mut data, header.mask.unwrap_or([0; 4]), 0);
            if text {
                match String::from_utf8(data) {
                    Ok(text) => Message::Text(text),
                    Err(_) => return self.fail(now, ProtocolError::InvalidUtf8),
                }
            } else {
                Message::Binary(data.into())
            }
        };
        self.push_event(Event::Message(message));
    }

    /// A piece of the current frame's payload (`received` bytes of it came
    /// before).
    fn on_payload(&mut self, now: Instant, header: Header, received: u64, chunk: &[u8]) {
        let done = received + chunk.len() as u64 == header.len;
        self.reader.frame = if done {
            None
        } else {
            Some((header, received + chunk.len() as u64))
        };
        let mask = header.mask.unwrap_or([0; 4]);
        let offset = received as usize;
        if header.opcode.is_control() {
            let start = self.reader.control.len();
            self.reader.control.extend_from_slice(chunk);
            apply_mask_at(&mut self.reader.control[start..], mask, offset);
            if done {
                let payload = std::mem::take(&mut self.reader.control);
                self.on_control(now, header.opcode, payload);
            }
            return;
        }
        if let Err(error) = self.on_data(header, offset, chunk, done, mask) {
            self.fail(now, error);
        }
    }

    fn on_data(
        &mut self,
        header: Header,
        offset: usize,
        chunk: &[u8],
        done: bool,
        mask: [u8; 4],
    ) -> Result<(), ProtocolError> {
        let limit = self.config.max_message_size;
        let Some(message) = self.reader.message.as_mut() else {
            return Ok(());
        };
        let last = done && header.fin;
        let frame_rest = (header.len - offset as u64) as usize;
        let ahead = frame_rest.min(chunk.len().saturating_add(RESERVE_AHEAD));
        let whole = last && offset == 0 && message.received() == 0;
        match &mut message.body {
            _ if message.compressed => {
                let ext = self.extension.as_mut().ok_or(ProtocolError::ReservedBits)?;
                decode_chunk(ext.as_mut(), message, chunk, mask, offset, last, limit)?;
            }
            Body::Binary(data) => {
                data.reserve(ahead);
                let start = data.len();
                data.extend_from_slice(chunk);
                apply_mask_at(&mut data[start..], mask, offset);
            }
            // The whole message in one piece: validated once, as in
            // `on_whole_message`.
            Body::Text(_) if whole => {
                let text = if chunk.len() >= STAGED_TEXT_MIN {
                    staged_text(chunk, header.mask).map_err(|_| ProtocolError::InvalidUtf8)?
                } else {
                    let mut data = chunk.to_vec();
                    apply_mask_at(&mut data, mask, 0);
                    String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?
                };
                message.body = Body::Text(text);
            }
            // In pieces: validated as it comes, to fail fast.
            Body::Text(text) => {
                text.reserve(ahead);
                push_text(&mut message.utf8, chunk, header.mask, offset, text)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if !last {
            return Ok(());
        }
        let Some(message) = self.reader.message.take() else {
            return Ok(());
        };
        let Partial {
            text, body, utf8, ..
        } = *message;
        if text {
            utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        let message = match body {
            Body::Text(text) => Message::Text(text),
            Body::Binary(data) => Message::Binary(data.into()),
        };
        self.push_event(Event::Message(message));
        Ok(())
    }

    fn on_control(&mut self, now: Instant, opcode: OpCode, payload: Vec<u8>) {
        match opcode {
            OpCode::Ping if self.state == State::Open => {
                if self.config.auto_pong {
                    self.push_control(OpCode::Pong, &payload);
                }
                self.push_event(Event::Ping(payload.into()));
            }
            OpCode::Pong if self.state == State::Open => {
                self.push_event(Event::Pong(payload.into()))
            }
            OpCode::Close => match parse_close(&payload) {
                Ok((code, reason)) => self.end_input(now, Ending::PeerClose(code, reason)),
                Err(error) => self.fail(now, error),
            },
            _ => {}
        }
    }

    /// Stop reading; the ending takes effect when the application reaches
    /// it in the event order.
    fn end_input(&mut self, now: Instant, ending: Ending) {
        if self.input_ended {
            return;
        }
        self.input_ended = true;
        self.reader = Reader::default();
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
                    self.push_close_frame(&close_payload(code, reason));
                }
                let closed = Closed {
                    code,
                    reason: reason.into(),
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
        self.reader = Reader::default();
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

/// Decode a piece of a compressed message's payload (masked with `mask`,
/// starting at payload `offset`) through the extension into the message:
/// unmasked into a stack buffer [`TEXT_STAGE`] bytes at a time, the decoded
/// bytes checked against `limit` before they are stored (a decompression
/// bomb fails before memory grows) and text validated once, as it comes.
fn decode_chunk(
    ext: &mut dyn Extension,
    message: &mut Partial,
    chunk: &[u8],
    mask: [u8; 4],
    mut offset: usize,
    last: bool,
    limit: usize,
) -> Result<(), ProtocolError> {
    let mut invalid_utf8 = false;
    let Partial { body, utf8, .. } = message;
    let mut sink = |piece: &[u8]| -> Result<(), DecodeError> {
        let received = match body {
            Body::Binary(data) => data.len(),
            Body::Text(text) => text.len() + utf8.carried(),
        };
        if received.saturating_add(piece.len()) > limit {
            return Err(DecodeError::TooLarge);
        }
        match body {
            Body::Binary(data) => data.extend_from_slice(piece),
            Body::Text(text) => utf8.push_valid(piece, text).map_err(|_| {
                invalid_utf8 = true;
                DecodeError::Invalid("invalid UTF-8".into())
            })?,
        }
        Ok(())
    };
    let mut stage = [0u8; TEXT_STAGE];
    let mut pieces = chunk.chunks(TEXT_STAGE).peekable();
    let result = if pieces.peek().is_none() {
        ext.decode(&[], last, &mut sink)
    } else {
        let mut result = Ok(());
        while let Some(piece) = pieces.next() {
            let stage = &mut stage[..piece.len()];
            stage.copy_from_slice(piece);
            apply_mask_at(stage, mask, offset);
            offset += piece.len();
            result = ext.decode(stage, last && pieces.peek().is_none(), &mut sink);
            if result.is_err() {
                break;
            }
        }
        result
    };
    result.map_err(|e| match e {
        _ if invalid_utf8 => ProtocolError::InvalidUtf8,
        DecodeError::TooLarge => ProtocolError::MessageTooLarge,
        DecodeError::Invalid(why) => ProtocolError::Extension(why),
    })
}

/// Validate a piece of text payload (masked with `mask`, starting at payload
/// `offset`) and append it to `out`. Masked bytes are unmasked into a stack
/// buffer first, [`TEXT_STAGE`] bytes at a time: each byte is validated
/// once, and the `String` is built without a second validation.
fn push_text(
    utf8: &mut Utf8Validator,
    chunk: &[u8],
    mask: Option<[u8; 4]>,
    mut offset: usize,
    out: &mut String,
) -> Result<(), InvalidUtf8> {
    let Some(mask) = mask else {
        return utf8.push_valid(chunk, out);
    };
    let mut stage = [0u8; TEXT_STAGE];
    for piece in chunk.chunks(TEXT_STAGE) {
        let stage = &mut stage[..piece.len()];
        stage.copy_from_slice(piece);
        apply_mask_at(stage, mask, offset);
        utf8.push_valid(stage, out)?;
        offset += piece.len();
    }
    Ok(())
}

/// A whole text message's payload (at least [`STAGED_TEXT_MIN`] bytes) as
/// a `String`, validated once by simdutf8: unmasked into a stack buffer
/// sized to it (256 B, 1 KiB or [`TEXT_STAGE`]), validated there and copied
/// into a `String` of exactly its length; longer, through [`push_text`]
/// into a `String` reserved to the full length. Unmasked, validated where
/// it lies.
fn staged_text(payload: &[u8], mask: Option<[u8; 4]>) -> Result<String, InvalidUtf8> {
    let Some(mask) = mask else {
        return utf8::validate(payload).map(String::from);
    };
    match payload.len() {
        0..=256 => staged_once::<256>(payload, mask),
        257..=1024 => staged_once::<1024>(payload, mask),
        1025..=TEXT_STAGE => staged_once::<TEXT_STAGE>(payload, mask),
        len => {
            let mut text = String::with_capacity(len);
            let mut validator = Utf8Validator::new();
            push_text(&mut validator, payload, Some(mask), 0, &mut text)?;
            validator.finish()?;
            Ok(text)
        }
    }
}

/// [`staged_text`] for a masked payload of at most `N` bytes: one stack
/// buffer of `N` bytes (zeroed, hence the sizes), one validation.
fn staged_once<const N: usize>(payload: &[u8], mask: [u8; 4]) -> Result<String, InvalidUtf8> {
    let mut stage = [0u8; N];
    let stage = &mut stage[..payload.len()];
    stage.copy_from_slice(payload);
    apply_mask_at(stage, mask, 0);
    utf8::validate(stage).map(String::from)
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

/// Decode a close frame payload (§5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<(CloseCode, String), ProtocolError> {
    match payload {
        [] => Ok((CloseCode::NO_STATUS, String::new())),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok((code, reason.to_owned()))
        }
    }
}

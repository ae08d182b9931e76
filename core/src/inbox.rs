//! The receive path: frame headers, payload unmasking, reassembly of
//! fragmented messages, UTF-8 validation and close-frame parsing. The
//! connection feeds it bytes and acts on what comes out.

use std::sync::Arc;

use crate::{
    budget::{Charge, Exhausted, ReceiveBudget},
    extension::{DecodeError, Extension},
    frame::{Header, MAX_HEADER},
    mask::apply_mask_at,
    utf8::{self, InvalidUtf8, Utf8Validator},
    CloseCode, Config, Message, OpCode, ProtocolError, Role,
};

/// A complete unit of input: a data message or a control frame.
pub(crate) enum Inbound {
    /// A whole data message, reassembled and (for text) validated.
    Message(Message),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// A valid close frame: its code (1005 when it had none) and reason.
    Close(CloseCode, String),
}

/// What the receive path needs from the connection.
pub(crate) struct Context<'a> {
    /// Our role: a server expects masked frames, a client unmasked ones.
    pub role: Role,
    /// The size limits.
    pub config: &'a Config,
    /// The negotiated extension, if any.
    pub extension: Option<&'a mut dyn Extension>,
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
    /// What `body`'s buffer holds of the shared receive budget.
    charge: Charge,
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
pub(crate) struct Inbox {
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
    /// A frame or message began, not whole, since [`take_began`](Self::take_began):
    /// the receive deadline starts from this input.
    began: bool,
}

impl Inbox {
    /// True while a frame or a data message is partly received: between
    /// the first byte of a frame (outside a message) or of a message and
    /// the end of it. Control frames inside a fragmented message leave it
    /// busy.
    #[inline]
    pub(crate) fn busy(&self) -> bool {
        self.frame.is_some() || self.head_len != 0 || self.message.is_some()
    }

    /// Whether a frame or message that is not yet whole began since the
    /// last call (set only on the partial paths, never for a whole message).
    pub(crate) fn take_began(&mut self) -> bool {
        std::mem::take(&mut self.began)
    }

    /// Consume the next piece of `data` (a frame header, or a run of the
    /// current frame's payload) and advance `data` past it. Returns what the
    /// piece completed, if anything; an error fails the connection.
    #[inline]
    pub(crate) fn step(
        &mut self,
        data: &mut &[u8],
        cx: &mut Context<'_>,
    ) -> Result<Option<Inbound>, ProtocolError> {
        let (used, inbound) = match self.frame {
            Some((header, received)) => {
                let take = (header.len - received).min(data.len() as u64) as usize;
                (take, self.on_payload(cx, header, received, &data[..take])?)
            }
            None => self.read_header(cx, data)?,
        };
        *data = &data[used..];
        Ok(inbound)
    }

    /// Parse (or continue parsing) a frame header; returns the bytes of
    /// `data` used and what they completed.
    #[inline]
    fn read_header(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Result<(usize, Option<Inbound>), ProtocolError> {
        let stashed = self.head_len as usize;
        let parsed = if stashed == 0 {
            Header::parse(data)?
        } else {
            let take = (MAX_HEADER - stashed).min(data.len());
            self.head[stashed..stashed + take].copy_from_slice(&data[..take]);
            Header::parse(&self.head[..stashed + take])?
        };
        let Some((header, head_len)) = parsed else {
            self.began |= self.fresh(stashed);
            // Incomplete: keep what we have (less than a header's worth).
            let take = (MAX_HEADER - stashed).min(data.len());
            self.head[stashed..stashed + take].copy_from_slice(&data[..take]);
            self.head_len += take as u8;
            return Ok((take, None));
        };
        self.head_len = 0;
        let used = head_len - stashed;
        self.check_frame(cx, &header)?;
        let payload = &data[used..];
        if header.len > payload.len() as u64 {
            self.began |= self.fresh(stashed);
            self.start_frame(header, cx.config.receive_budget.as_ref());
            return Ok((used, None));
        }
        let len = header.len as usize;
        let payload = &payload[..len];
        let starts_message = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let inbound = if starts_message && header.fin && header.rsv == 0 {
            // The common case: a whole unfragmented, uncompressed message
            // (check_frame made sure no other message is in progress).
            Some(Inbound::Message(whole_message(header, payload)?))
        } else {
            self.began |= self.fresh(stashed);
            self.start_frame(header, cx.config.receive_budget.as_ref());
            self.on_payload(cx, header, 0, payload)?
        };
        Ok((used + len, inbound))
    }

    /// A header outside a message, none of it (`stashed` bytes) from an
    /// earlier read: if it is not whole, a new unit for the receive
    /// deadline. Asked on the partial paths only.
    fn fresh(&self, stashed: usize) -> bool {
        stashed == 0 && self.message.is_none()
    }

    /// Validate a header against RFC 6455 §5 and the limits.
    #[inline]
    fn check_frame(&self, cx: &Context<'_>, header: &Header) -> Result<(), ProtocolError> {
        match (cx.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let starts_message = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let allowed_rsv = match (&cx.extension, starts_message) {
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
        let message = &self.message;
        match (header.opcode, message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        let config = cx.config;
        if header.len > config.frame_limit() as u64 {
            return Err(match config.max_frame_size {
                Some(limit) if limit < config.max_message_size => {
                    ProtocolError::FrameTooLarge { limit }
                }
                _ => ProtocolError::MessageTooLarge {
                    limit: config.max_message_size,
                },
            });
        }
        let (received, compressed) = match message {
            Some(m) => (m.received(), m.compressed()),
            None => (0, header.rsv != 0),
        };
        if !compressed && received as u64 + header.len > config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                limit: config.max_message_size,
            });
        }
        Ok(())
    }

    /// Set up the reception of a checked frame's payload.
    fn start_frame(&mut self, header: Header, budget: Option<&Arc<ReceiveBudget>>) {
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            let text = header.opcode == OpCode::Text;
            self.message = Some(Box::new(Partial {
                text,
                compressed: header.rsv != 0,
                body: if text {
                    Body::Text(String::new())
                } else {
                    Body::Binary(Vec::new())
                },
                utf8: Utf8Validator::new(),
                charge: Charge::new(budget),
            }));
        }
        self.frame = Some((header, 0));
    }

    /// A piece of the current frame's payload (`received` bytes of it came
    /// before).
    fn on_payload(
        &mut self,
        cx: &mut Context<'_>,
        header: Header,
        received: u64,
        chunk: &[u8],
    ) -> Result<Option<Inbound>, ProtocolError> {
        let done = received + chunk.len() as u64 == header.len;
        self.frame = if done {
            None
        } else {
            Some((header, received + chunk.len() as u64))
        };
        let mask = header.mask.unwrap_or([0; 4]);
        let offset = received as usize;
        if header.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            apply_mask_at(&mut self.control[start..], mask, offset);
            if !done {
                return Ok(None);
            }
            let payload = std::mem::take(&mut self.control);
            return Ok(Some(match header.opcode {
                OpCode::Ping => Inbound::Ping(payload),
                OpCode::Pong => Inbound::Pong(payload),
                _ => {
                    let (code, reason) = parse_close(&payload)?;
                    Inbound::Close(code, reason)
                }
            }));
        }
        let message = self.on_data(cx, header, offset, chunk, done, mask)?;
        Ok(message.map(Inbound::Message))
    }

    fn on_data(
        &mut self,
        cx: &mut Context<'_>,
        header: Header,
        offset: usize,
        chunk: &[u8],
        done: bool,
        mask: [u8; 4],
    ) -> Result<Option<Message>, ProtocolError> {
        let limit = cx.config.max_message_size;
        let Some(message) = self.message.as_mut() else {
            return Ok(None);
        };
        let last = done && header.fin;
        let frame_rest = (header.len - offset as u64) as usize;
        let ahead = frame_rest.min(chunk.len().saturating_add(RESERVE_AHEAD));
        let whole = last && offset == 0 && message.received() == 0;
        match &mut message.body {
            _ if message.compressed => {
                let ext = cx.extension.as_mut().ok_or(ProtocolError::ReservedBits)?;
                decode_chunk(&mut **ext, message, chunk, mask, offset, last, limit)?;
            }
            Body::Binary(data) => {
                message.charge.cover(data.len() + ahead)?;
                data.reserve(ahead);
                let start = data.len();
                data.extend_from_slice(chunk);
                apply_mask_at(&mut data[start..], mask, offset);
                message.charge.cover(data.capacity())?;
            }
            // The whole message in one piece: validated once, as in
            // `whole_message`.
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
                message.charge.cover(text.len() + ahead)?;
                text.reserve(ahead);
                push_text(&mut message.utf8, chunk, header.mask, offset, text)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
                message.charge.cover(text.capacity())?;
            }
        }
        if !last {
            return Ok(None);
        }
        let Some(message) = self.message.take() else {
            return Ok(None);
        };
        let Partial {
            text, body, utf8, ..
        } = *message;
        if text {
            utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Some(match body {
            Body::Text(text) => Message::Text(text),
            Body::Binary(data) => Message::Binary(data.into()),
        }))
    }
}

/// A checked, unfragmented, uncompressed data frame whose whole payload
/// is in `payload`: the message is built directly, validated once.
#[inline]
fn whole_message(header: Header, payload: &[u8]) -> Result<Message, ProtocolError> {
    let text = header.opcode == OpCode::Text;
    if text && payload.len() >= STAGED_TEXT_MIN {
        return staged_text(payload, header.mask)
            .map(Message::Text)
            .map_err(|_| ProtocolError::InvalidUtf8);
    }
    let mut data = payload.to_vec();
    apply_mask_at(&mut data, header.mask.unwrap_or([0; 4]), 0);
    if text {
        String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| ProtocolError::InvalidUtf8)
    } else {
        Ok(Message::Binary(data.into()))
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
    let (mut invalid_utf8, mut over_limit, mut over_budget) = (false, false, None);
    let Partial {
        body, utf8, charge, ..
    } = message;
    let mut sink = |piece: &[u8]| -> Result<(), DecodeError> {
        let received = match body {
            Body::Binary(data) => data.len(),
            Body::Text(text) => text.len() + utf8.carried(),
        };
        if received.saturating_add(piece.len()) > limit {
            over_limit = true;
            return Err(DecodeError::TooLarge);
        }
        // Charged before the buffer grows: a bomb stops at the budget.
        if let Err(Exhausted(budget)) = charge.cover(received + piece.len()) {
            over_budget = Some(budget);
            return Err(DecodeError::TooLarge);
        }
        let capacity = match body {
            Body::Binary(data) => {
                data.extend_from_slice(piece);
                data.capacity()
            }
            Body::Text(text) => {
                utf8.push_valid(piece, text).map_err(|_| {
                    invalid_utf8 = true;
                    DecodeError::Invalid("invalid UTF-8".into())
                })?;
                text.capacity()
            }
        };
        if let Err(Exhausted(budget)) = charge.cover(capacity) {
            over_budget = Some(budget);
            return Err(DecodeError::TooLarge);
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
    if let (Err(_), Some(budget)) = (&result, over_budget) {
        return Err(ProtocolError::ReceiveBudget { limit: budget });
    }
    result.map_err(|e| match e {
        _ if invalid_utf8 => ProtocolError::InvalidUtf8,
        _ if over_limit => ProtocolError::MessageTooLarge { limit },
        DecodeError::TooLarge => ProtocolError::ExtensionLimit,
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
/// buffer of `N` bytes (zeroed, hence the sizes), one validation. Kept
/// out of line: inlined into the receive loop, its buffer was zeroed at a
/// cost of about 50 instructions more per 1 KiB message (callgrind).
#[inline(never)]
fn staged_once<const N: usize>(payload: &[u8], mask: [u8; 4]) -> Result<String, InvalidUtf8> {
    let mut stage = [0u8; N];
    let stage = &mut stage[..payload.len()];
    stage.copy_from_slice(payload);
    apply_mask_at(stage, mask, 0);
    utf8::validate(stage).map(String::from)
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

impl From<Exhausted> for ProtocolError {
    fn from(Exhausted(limit): Exhausted) -> Self {
        ProtocolError::ReceiveBudget { limit }
    }
}

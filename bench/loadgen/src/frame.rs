//! WebSocket framing as a client needs it (RFC 6455 §5): building masked
//! client frames cheaply, and a streaming parser of server frames that
//! skips payloads instead of buffering them.

use crate::rng::Rng;

/// Opcodes used here.
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Bytes of each message's payload the parser keeps (enough for the
/// broadcast sequence number and timestamp, binary or as text).
pub const PREFIX: usize = 96;

/// XORs `data` with `key`, where `data` starts at payload offset `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let k8: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([k8[0], k8[1], k8[2], k8[3], k8[0], k8[1], k8[2], k8[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().unwrap()) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k8[i % 4];
    }
}

/// RSV1: the first frame of a permessage-deflate compressed message.
pub const RSV1: u8 = 0x40;

/// The empty stored block a sync flush ends with (RFC 7692 §7.2.1).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// JSON-like text of `size` bytes (compressible as chat traffic is).
pub fn json_like(size: usize) -> Vec<u8> {
    let unit = br#"{"type":"chat.message","payload":{"room":"lobby","user":"user-4711","text":"hello everyone, how is it going today?","ts":1732700000123}},"#;
    unit.iter().copied().cycle().take(size).collect()
}

/// Appends one masked, final frame carrying `payload` to `out`.
pub fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    push_header(out, opcode, payload.len(), key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

/// Appends one masked, final permessage-deflate frame (RSV1) whose payload
/// is `message` compressed with `compressor` (reset first: every message is
/// a fresh DEFLATE stream, valid with or without context takeover).
pub fn push_deflated(
    out: &mut Vec<u8>,
    opcode: u8,
    message: &[u8],
    compressor: &mut flate2::Compress,
    key: [u8; 4],
) {
    compressor.reset();
    let mut payload = Vec::with_capacity(message.len() + 64);
    compressor
        .compress_vec(message, &mut payload, flate2::FlushCompress::Sync)
        .expect("deflate");
    assert!(
        payload.len() < payload.capacity(),
        "deflate output buffer too small"
    );
    payload.truncate(payload.len().saturating_sub(4)); // 00 00 ff ff
    push_header(out, opcode | RSV1, payload.len(), key);
    let start = out.len();
    out.extend_from_slice(&payload);
    apply_mask(&mut out[start..], key, 0);
}

/// Appends the header of a masked, final frame (mask key included).
fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize, key: [u8; 4]) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
}

/// Appends a masked close frame with status 1000 (normal closure).
pub fn push_close(out: &mut Vec<u8>, key: [u8; 4]) {
    push_frame(out, opcode::CLOSE, &1000u16.to_be_bytes(), key);
}

/// Ready-made masked frames of one size whose payload is all zero bytes.
///
/// A zero payload masked with key K is K repeated, so building a template is
/// trivial and sending a message is one `memcpy`; a handful of templates
/// with different keys are used in turn so the keys still vary.
pub struct Templates {
    frames: Vec<Vec<u8>>,
    /// Offset of the payload within each frame.
    header_len: usize,
    next: usize,
}

impl Templates {
    /// Builds `count` templates of a `size`-byte message with `opcode`.
    pub fn new(opcode: u8, size: usize, count: usize, rng: &mut Rng) -> Templates {
        let zeros = vec![0u8; size];
        let frames: Vec<Vec<u8>> = (0..count.max(1))
            .map(|_| {
                let mut f = Vec::with_capacity(size + 14);
                push_frame(&mut f, opcode, &zeros, rng.mask_key());
                f
            })
            .collect();
        let header_len = frames[0].len() - size;
        Templates {
            frames,
            header_len,
            next: 0,
        }
    }

    /// Builds `count` templates of `message` sent compressed (RSV1), each a
    /// fresh DEFLATE stream (valid with or without context takeover).
    pub fn deflated(opcode: u8, message: &[u8], count: usize, rng: &mut Rng) -> Templates {
        let mut compressor = flate2::Compress::new(flate2::Compression::default(), false);
        let frames: Vec<Vec<u8>> = (0..count.max(1))
            .map(|_| {
                let mut f = Vec::new();
                push_deflated(&mut f, opcode, message, &mut compressor, rng.mask_key());
                f
            })
            .collect();
        Templates {
            frames,
            header_len: 0, // no prefix writes into compressed templates
            next: 0,
        }
    }

    /// Appends the next template to `out`.
    pub fn push(&mut self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&self.frames[self.next]);
        self.next = (self.next + 1) % self.frames.len();
        start
    }

    /// Appends the next template with its payload starting with `prefix`
    /// (masked in place).
    pub fn push_with_prefix(&mut self, out: &mut Vec<u8>, prefix: &[u8]) {
        let start = self.push(out);
        let key_at = start + self.header_len - 4;
        let key: [u8; 4] = out[key_at..key_at + 4].try_into().unwrap();
        let payload = start + self.header_len;
        let dst = &mut out[payload..payload + prefix.len()];
        dst.copy_from_slice(prefix);
        apply_mask(dst, key, 0);
    }
}

/// Something the server sent, as the parser reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text or binary message: its opcode, total length, and
    /// its first [`PREFIX`] bytes (fewer if it is shorter).
    Message {
        opcode: u8,
        len: u64,
        prefix: &'a [u8],
    },
    /// A close frame.
    Close,
    /// A ping or pong (ignored by every workload).
    Control,
}

/// A protocol violation by the server.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// Streaming parser of server frames. It consumes every byte it is given,
/// keeping only a header in progress and each message's prefix.
#[derive(Debug)]
pub struct Parser {
    header: [u8; 14],
    header_len: usize,
    /// Inside a frame's payload: bytes of it still to come.
    remaining: Option<u64>,
    frame_opcode: u8,
    frame_fin: bool,
    frame_len: u64,
    /// The message being assembled (data opcode of its first frame, or
    /// `None` between messages).
    message: Option<u8>,
    message_len: u64,
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// permessage-deflate, once negotiated.
    inflater: Option<Box<Inflater>>,
    /// The current message is compressed (RSV1 on its first frame).
    compressed: bool,
}

/// Inflates compressed messages; only their length and prefix are kept.
#[derive(Debug)]
struct Inflater {
    stream: flate2::Decompress,
    /// The server keeps no context: a fresh stream per message.
    reset: bool,
    /// Inflated bytes of the current message.
    len: u64,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser {
            header: [0; 14],
            header_len: 0,
            remaining: None,
            frame_opcode: 0,
            frame_fin: false,
            frame_len: 0,
            message: None,
            message_len: 0,
            prefix: [0; PREFIX],
            prefix_len: 0,
            inflater: None,
            compressed: false,
        }
    }
}

impl Parser {
    /// permessage-deflate was negotiated; `reset`: the server keeps no
    /// context between messages.
    pub fn inflate(&mut self, reset: bool) {
        self.inflater = Some(Box::new(Inflater {
            stream: flate2::Decompress::new(false),
            reset,
            len: 0,
        }));
    }

    /// Inflates compressed payload bytes, keeping the message's prefix.
    fn inflate_chunk(&mut self, mut data: &[u8]) -> Result<(), ProtocolError> {
        let inflater = self
            .inflater
            .as_mut()
            .ok_or(ProtocolError("RSV1 without permessage-deflate"))?;
        let mut buf = [0u8; 16 << 10];
        // Each turn consumes input or fills the buffer: bounded.
        loop {
            let (before_in, before_out) = (inflater.stream.total_in(), inflater.stream.total_out());
            inflater
                .stream
                .decompress(data, &mut buf, flate2::FlushDecompress::Sync)
                .map_err(|_| ProtocolError("invalid DEFLATE data"))?;
            let used = (inflater.stream.total_in() - before_in) as usize;
            let made = (inflater.stream.total_out() - before_out) as usize;
            data = &data[used..];
            inflater.len += made as u64;
            let k = made.min(PREFIX - self.prefix_len);
            self.prefix[self.prefix_len..self.prefix_len + k].copy_from_slice(&buf[..k]);
            self.prefix_len += k;
            if data.is_empty() && made < buf.len() {
                return Ok(());
            }
            if used == 0 && made == 0 {
                return Err(ProtocolError("DEFLATE data after the end of the stream"));
            }
        }
    }

    /// Feeds bytes, calling `on_event` for every complete message or
    /// control frame. The number of iterations is bounded by `data.len()`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        while !data.is_empty() {
            match self.remaining {
                None => {
                    let taken = self.take_header(data)?;
                    data = &data[taken..];
                }
                Some(remaining) => {
                    let n = remaining.min(data.len() as u64) as usize;
                    if self.frame_opcode < 0x8 && self.compressed {
                        self.inflate_chunk(&data[..n])?;
                    } else if self.frame_opcode < 0x8 && self.prefix_len < PREFIX {
                        let k = n.min(PREFIX - self.prefix_len);
                        self.prefix[self.prefix_len..self.prefix_len + k]
                            .copy_from_slice(&data[..k]);
                        self.prefix_len += k;
                    }
                    data = &data[n..];
                    self.remaining = Some(remaining - n as u64);
                }
            }
            if self.remaining == Some(0) {
                self.finish_frame(on_event)?;
            }
        }
        Ok(())
    }

    /// Copies header bytes from `data`; once the header is complete, starts
    /// the payload. Returns how many bytes were taken.
    fn take_header(&mut self, data: &[u8]) -> Result<usize, ProtocolError> {
        let mut taken = 0;
        loop {
            let need = self.header_needed();
            if self.header_len == need {
                break;
            }
            let k = (need - self.header_len).min(data.len() - taken);
            if k == 0 {
                return Ok(taken);
            }
            self.header[self.header_len..self.header_len + k]
                .copy_from_slice(&data[taken..taken + k]);
            self.header_len += k;
            taken += k;
        }
        self.start_frame()?;
        Ok(taken)
    }

    /// Header length implied by the bytes seen so far (2 until the second
    /// byte is known).
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Interprets a complete header.
    fn start_frame(&mut self) -> Result<(), ProtocolError> {
        let (b0, b1) = (self.header[0], self.header[1]);
        if b1 & 0x80 != 0 {
            return Err(ProtocolError("server frame is masked"));
        }
        let len = match b1 & 0x7F {
            126 => u16::from_be_bytes([self.header[2], self.header[3]]) as u64,
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap()),
            n => n as u64,
        };
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0F);
        match op {
            opcode::TEXT | opcode::BINARY => {
                if self.message.is_some() {
                    return Err(ProtocolError("new message inside a fragmented one"));
                }
                self.message = Some(op);
                self.message_len = 0;
                self.prefix_len = 0;
                self.compressed = b0 & RSV1 != 0;
            }
            opcode::CONTINUATION if self.message.is_none() => {
                return Err(ProtocolError("continuation without a message"));
            }
            opcode::CONTINUATION => {}
            opcode::CLOSE | opcode::PING | opcode::PONG if !fin || len > 125 => {
                return Err(ProtocolError("bad control frame"));
            }
            opcode::CLOSE | opcode::PING | opcode::PONG => {}
            _ => return Err(ProtocolError("reserved opcode")),
        }
        self.frame_opcode = op;
        self.frame_fin = fin;
        self.frame_len = len;
        self.header_len = 0;
        self.remaining = Some(len);
        Ok(())
    }

    /// Reports the frame just completed.
    fn finish_frame(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<(), ProtocolError> {
        self.remaining = None;
        match self.frame_opcode {
            opcode::CLOSE => on_event(Event::Close),
            opcode::PING | opcode::PONG => on_event(Event::Control),
            _ => {
                self.message_len += self.frame_len;
                if self.frame_fin && self.compressed {
                    // The inflated length is the message's length.
                    self.inflate_chunk(&DEFLATE_TAIL)?;
                    if let Some(inflater) = self.inflater.as_mut() {
                        self.message_len = std::mem::take(&mut inflater.len);
                        if inflater.reset {
                            inflater.stream.reset(false);
                        }
                    }
                }
                if self.frame_fin {
                    let opcode = self.message.take().unwrap_or(opcode::BINARY);
                    on_event(Event::Message {
                        opcode,
                        len: self.message_len,
                        prefix: &self.prefix[..self.prefix_len],
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked (server) frame.
    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | op];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xFFFF => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `bytes` in chunks of `chunk`, collecting (opcode, len, prefix).
    fn parse_chunked(bytes: &[u8], chunk: usize) -> Vec<(u8, u64, Vec<u8>)> {
        let mut p = Parser::default();
        let mut seen = Vec::new();
        for c in bytes.chunks(chunk) {
            p.feed(c, &mut |e| match e {
                Event::Message {
                    opcode,
                    len,
                    prefix,
                } => seen.push((opcode, len, prefix.to_vec())),
                Event::Close => seen.push((opcode::CLOSE, 0, vec![])),
                Event::Control => seen.push((opcode::PING, 0, vec![])),
            })
            .unwrap();
        }
        seen
    }

    #[test]
    fn parses_any_split_of_a_stream() {
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let mut stream = server_frame(true, opcode::BINARY, b"hello");
        stream.extend(server_frame(false, opcode::TEXT, b"ab"));
        stream.extend(server_frame(true, opcode::PING, b"p"));
        stream.extend(server_frame(true, opcode::CONTINUATION, b"cd"));
        stream.extend(server_frame(true, opcode::BINARY, &big[..300]));
        stream.extend(server_frame(true, opcode::BINARY, &big));
        stream.extend(server_frame(true, opcode::BINARY, b""));
        stream.extend(server_frame(true, opcode::CLOSE, &[3, 232]));
        for chunk in [1, 2, 3, 7, 100, 4096, stream.len()] {
            let seen = parse_chunked(&stream, chunk);
            assert_eq!(seen.len(), 7, "chunk {chunk}");
            assert_eq!(seen[0], (opcode::BINARY, 5, b"hello".to_vec()));
            assert_eq!(seen[1].0, opcode::PING);
            assert_eq!(seen[2], (opcode::TEXT, 4, b"abcd".to_vec()));
            assert_eq!(seen[3], (opcode::BINARY, 300, big[..PREFIX].to_vec()));
            assert_eq!(seen[4], (opcode::BINARY, 70_000, big[..PREFIX].to_vec()));
            assert_eq!(seen[5], (opcode::BINARY, 0, vec![]));
            assert_eq!(seen[6].0, opcode::CLOSE);
        }
    }

    #[test]
    fn rejects_bad_server_frames() {
        let mut p = Parser::default();
        let bad = [
            vec![0x82, 0x81, 1, 2, 3, 4, 0],
            vec![0x80, 0],
            vec![0x83, 0],
            vec![0x09, 0],
        ];
        for b in bad {
            assert!(Parser::default().feed(&b, &mut |_| {}).is_err(), "{b:?}");
        }
        p.feed(&[0x01, 0], &mut |_| {}).unwrap();
        assert!(p.feed(&[0x81, 0], &mut |_| {}).is_err());
    }

    /// Unmasks a client frame the way a server would.
    fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
        assert_eq!(frame[1] & 0x80, 0x80, "client frames are masked");
        let (len, at) = match frame[1] & 0x7F {
            126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let key: [u8; 4] = frame[at..at + 4].try_into().unwrap();
        let mut payload = frame[at + 4..].to_vec();
        assert_eq!(payload.len(), len);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        (frame[0], payload)
    }

    #[test]
    fn client_frames_are_masked_per_rfc() {
        let mut rng = Rng::new(7);
        for size in [0, 1, 13, 125, 126, 1024, 65_535, 65_536] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
            let mut out = Vec::new();
            push_frame(&mut out, opcode::BINARY, &payload, rng.mask_key());
            assert_eq!(unmask(&out), (0x82, payload));
        }
        let mut out = Vec::new();
        push_close(&mut out, rng.mask_key());
        assert_eq!(unmask(&out), (0x88, vec![3, 232]));
    }

    #[test]
    fn templates_carry_zeros_or_a_prefix() {
        let mut rng = Rng::new(9);
        let mut t = Templates::new(opcode::BINARY, 64, 3, &mut rng);
        for _ in 0..4 {
            let mut out = Vec::new();
            t.push(&mut out);
            assert_eq!(unmask(&out), (0x82, vec![0; 64]));
            let mut out = Vec::new();
            t.push_with_prefix(&mut out, b"0123456789abcdefg");
            let mut want = b"0123456789abcdefg".to_vec();
            want.resize(64, 0);
            assert_eq!(unmask(&out), (0x82, want));
        }
    }

    // Compressed server messages (RFC 7692 §7.2.3.1 and §7.2.3.2): the
    // inflated length and prefix are reported, across any split and with
    // the window shared between messages.
    #[test]
    fn inflates_compressed_messages() {
        let mut wire = vec![0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        wire.extend_from_slice(&[0x41, 0x03, 0xf2, 0x00, 0x11, 0x80, 0x02, 0x00, 0x00]);
        for chunk in 1..=wire.len() {
            let mut p = Parser::default();
            p.inflate(false);
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                p.feed(c, &mut |e| {
                    if let Event::Message {
                        opcode,
                        len,
                        prefix,
                    } = e
                    {
                        got.push((opcode, len, prefix.to_vec()));
                    }
                })
                .unwrap();
            }
            let hello = (opcode::TEXT, 5, b"Hello".to_vec());
            assert_eq!(got, vec![hello.clone(), hello], "chunk {chunk}");
        }
        // A message compressed by push_deflated comes back whole.
        let message = json_like(3000);
        let mut out = Vec::new();
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        push_deflated(&mut out, opcode::TEXT, &message, &mut c, [0; 4]);
        let (b0, payload) = unmask(&out);
        assert_eq!(b0, 0x80 | RSV1 | opcode::TEXT);
        let mut server = vec![b0];
        server.extend_from_slice(&server_frame(true, 1, &payload)[1..]);
        let mut p = Parser::default();
        p.inflate(true);
        let mut got = None;
        p.feed(&server, &mut |e| {
            if let Event::Message { len, prefix, .. } = e {
                got = Some((len, prefix.to_vec()));
            }
        })
        .unwrap();
        assert_eq!(got, Some((3000, message[..PREFIX].to_vec())));
        // RSV1 without the extension is an error.
        assert!(Parser::default().feed(&server, &mut |_| {}).is_err());
    }

    #[test]
    fn mask_handles_offsets() {
        let key = [1, 2, 3, 4];
        let mut whole = [0u8; 23];
        apply_mask(&mut whole, key, 0);
        let mut tail = [0u8; 20];
        apply_mask(&mut tail, key, 3);
        assert_eq!(&whole[3..], &tail[..]);
    }
}

//! Frame headers (RFC 6455 §5.2) and pre-encoded frames for broadcast.

use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};

use crate::ProtocolError;

/// Frame opcodes (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decode the 4-bit opcode; reserved values are a protocol error.
    pub fn from_bits(bits: u8) -> Result<OpCode, ProtocolError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        }
    }

    /// Close, ping and pong are control frames.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// The largest frame header: 2 + 8 (length) + 4 (mask).
pub(crate) const MAX_HEADER: usize = 14;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
}

impl Header {
    /// Parse a header from the start of `buf`: `Ok(None)` if incomplete,
    /// else the header and its length in bytes.
    pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let opcode = OpCode::from_bits(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(b);
                    let len = u64::from_be_bytes(word);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            short => (short as u64, 2),
        };
        let mask = if masked {
            let Some(b) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([b[0], b[1], b[2], b[3]])
        } else {
            None
        };
        let header = Header {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode,
            mask,
            len,
        };
        Ok(Some((header, at)))
    }

    /// Encode into `out`, returning the number of bytes written.
    pub(crate) fn encode(&self, out: &mut [u8; MAX_HEADER]) -> usize {
        out[0] = (self.fin as u8) << 7 | (self.rsv & 0x7) << 4 | self.opcode.bits();
        let mask_bit = (self.mask.is_some() as u8) << 7;
        let mut at = match self.len {
            0..=125 => {
                out[1] = mask_bit | self.len as u8;
                2
            }
            126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.len.to_be_bytes());
                10
            }
        };
        if let Some(mask) = self.mask {
            out[at..at + 4].copy_from_slice(&mask);
            at += 4;
        }
        at
    }
}

/// A server frame encoded once, whose bytes are shared (not copied) by every
/// connection it is sent to with
/// [`Connection::send_encoded`](crate::Connection::send_encoded): the
/// building block of broadcast.
///
/// Connections whose extension encodes statelessly (permessage-deflate
/// without context takeover on the server side) share encoded variants:
/// the first such connection encodes the message, the others with the same
/// parameters reuse those bytes (compress once, send to many).
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    bytes: Bytes,
    /// Encoded variants by [`Extension::shared_encoding`](crate::extension::Extension::shared_encoding) key.
    variants: Arc<Mutex<Vec<(u64, Bytes)>>>,
}

impl PartialEq for EncodedFrame {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for EncodedFrame {}

impl EncodedFrame {
    /// A whole unmasked text message in one frame.
    pub fn text(text: &str) -> Self {
        Self::new(OpCode::Text, text.as_bytes())
    }

    /// A whole unmasked binary message in one frame.
    pub fn binary(data: &[u8]) -> Self {
        Self::new(OpCode::Binary, data)
    }

    fn new(opcode: OpCode, payload: &[u8]) -> Self {
        EncodedFrame {
            bytes: Self::frame_bytes(opcode, 0, payload),
            variants: Arc::default(),
        }
    }

    /// The wire bytes of a whole unmasked message in one frame.
    pub(crate) fn frame_bytes(opcode: OpCode, rsv: u8, payload: &[u8]) -> Bytes {
        let header = Header {
            fin: true,
            rsv,
            opcode,
            mask: None,
            len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER];
        let head_len = header.encode(&mut head);
        let mut bytes = BytesMut::with_capacity(head_len + payload.len());
        bytes.put_slice(&head[..head_len]);
        bytes.put_slice(payload);
        bytes.freeze()
    }

    /// The message's opcode and payload.
    pub(crate) fn message(&self) -> (OpCode, &[u8]) {
        let opcode = OpCode::from_bits(self.bytes[0] & 0x0f).unwrap_or(OpCode::Binary);
        let head_len = match self.bytes[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        (opcode, &self.bytes[head_len..])
    }

    /// The variant encoded for `key`, made by `encode` on first use (under
    /// a lock, so that it is made once).
    pub(crate) fn variant(&self, key: u64, encode: impl FnOnce() -> Bytes) -> Bytes {
        let mut variants = self.variants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bytes)) = variants.iter().find(|(k, _)| *k == key) {
            return bytes.clone();
        }
        let bytes = encode();
        variants.push((key, bytes.clone()));
        bytes
    }

    /// The frame's wire bytes (header and payload).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Uncompressed [`EncodedFrame`]s back to back: a connection's queued
/// broadcasts, gathered with one copy each and handed to the core in one
/// piece by [`Connection::send_encoded_frames`](crate::Connection::send_encoded_frames).
/// It only ever holds whole frames.
#[derive(Debug, Default)]
pub struct EncodedFrames {
    bytes: BytesMut,
    count: usize,
}

impl EncodedFrames {
    /// Append `frame`'s wire bytes (its uncompressed form).
    pub fn push(&mut self, frame: &EncodedFrame) {
        self.bytes.extend_from_slice(&frame.bytes);
        self.count += 1;
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when no frame was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frames pushed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The frames' wire bytes, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        self.bytes.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(len: u64, mask: Option<[u8; 4]>) -> Header {
        Header {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask,
            len,
        }
    }

    // §5.2: the three length encodings, at their boundaries.
    #[test]
    fn length_encodings() {
        for (len, size) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let mut out = [0u8; MAX_HEADER];
            let n = header(len, None).encode(&mut out);
            assert_eq!(n, size, "len {len}");
            assert_eq!(
                Header::parse(&out[..n]).unwrap(),
                Some((header(len, None), n))
            );
            // Fed one byte short: incomplete.
            assert_eq!(Header::parse(&out[..n - 1]).unwrap(), None);
        }
    }

    // §5.7: a masked "Hello" from the client.
    #[test]
    fn rfc_5_7_masked_hello() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = Header::parse(&wire).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(h.opcode, OpCode::Text);
        assert!(h.fin);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.len, 5);
    }

    #[test]
    fn reserved_opcodes_and_msb_length() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                Header::parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
        let mut wire = vec![0x82, 127];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(Header::parse(&wire), Err(ProtocolError::InvalidLength));
    }

    #[test]
    fn encoded_frame_is_unmasked_single_frame() {
        let frame = EncodedFrame::text("hi");
        assert_eq!(&frame.as_bytes()[..], &[0x81, 0x02, b'h', b'i']);
    }

    proptest! {
        #[test]
        fn round_trip(fin: bool, rsv in 0u8..8, op in prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
                      len in prop_oneof![0u64..200, 0u64..70000, 0u64..(1 << 63)], mask: Option<[u8; 4]>,
                      trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
            let h = Header { fin, rsv, opcode: OpCode::from_bits(op).unwrap(), mask, len };
            let mut out = [0u8; MAX_HEADER];
            let n = h.encode(&mut out);
            let mut wire = out[..n].to_vec();
            wire.extend_from_slice(&trailing);
            prop_assert_eq!(Header::parse(&wire).unwrap(), Some((h, n)));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = Header::parse(&bytes);
        }
    }
}

//! The transmit queue, shaped for one vectored write per wake-up.
//!
//! Small frames (and every frame header) are coalesced into one contiguous
//! buffer; large payloads and pre-encoded broadcast frames are kept as shared
//! `Bytes` and never copied. Control frames (ping, pong) jump ahead of queued
//! data, but only at a frame boundary: every queued chunk ends on one.

use std::{collections::VecDeque, io::IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{
    frame::{Header, MAX_HEADER},
    mask::apply_mask_at,
};

/// Payloads up to this size are copied next to their header; larger ones are
/// queued by reference.
const COALESCE_LIMIT: usize = 1024;

/// Whole frames: `head` (coalesced frames and/or a header) then `body`
/// (a shared payload, possibly empty).
#[derive(Debug)]
struct Chunk {
    head: Bytes,
    body: Bytes,
}

impl Chunk {
    fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    fn advance(&mut self, n: usize) {
        let from_head = n.min(self.head.len());
        self.head.advance(from_head);
        self.body.advance(n - from_head);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Whole control frames, written before any data not yet started.
    control: BytesMut,
    /// Data chunks in order; the front one may be partly written.
    queue: VecDeque<Chunk>,
    front_started: bool,
    /// Small data frames appended after `queue`.
    tail: BytesMut,
    len: usize,
}

impl Outbox {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue a control frame ahead of data.
    pub fn push_control(&mut self, header: Header, payload: &[u8]) {
        Self::encode_into(&mut self.control, header, payload);
        self.len += frame_len(&header, payload.len());
    }

    /// Queue a data (or close) frame after everything already queued.
    /// Masked or small payloads are copied; large unmasked ones are shared.
    pub fn push_data(&mut self, header: Header, payload: Bytes) {
        self.len += frame_len(&header, payload.len());
        if header.mask.is_some() || payload.len() <= COALESCE_LIMIT {
            Self::encode_into(&mut self.tail, header, &payload);
        } else {
            let mut head = [0u8; MAX_HEADER];
            let n = header.encode(&mut head);
            self.tail.put_slice(&head[..n]);
            self.push_chunk(payload);
        }
    }

    /// Queue bytes that are already on-the-wire form (an HTTP head, a
    /// pre-encoded frame), shared rather than copied.
    pub fn push_encoded(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        self.push_chunk(bytes);
    }

    fn push_chunk(&mut self, body: Bytes) {
        let head = self.tail.split().freeze();
        self.queue.push_back(Chunk { head, body });
    }

    fn encode_into(buf: &mut BytesMut, header: Header, payload: &[u8]) {
        let mut head = [0u8; MAX_HEADER];
        let n = header.encode(&mut head);
        buf.reserve(n + payload.len());
        buf.put_slice(&head[..n]);
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(mask) = header.mask {
            apply_mask_at(&mut buf[start..], mask, 0);
        }
    }

    /// Fill `dst` with the pending bytes in wire order; returns how many
    /// slices were filled.
    pub fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let (started, rest) = match self.front_started {
            true => (self.queue.front(), self.queue.range(1..)),
            false => (None, self.queue.range(..)),
        };
        let pieces = started
            .into_iter()
            .flat_map(|c| [&c.head[..], &c.body[..]])
            .chain([&self.control[..]])
            .chain(rest.flat_map(|c| [&c.head[..], &c.body[..]]))
            .chain([&self.tail[..]])
            .filter(|piece| !piece.is_empty());
        let mut filled = 0;
        for (slot, piece) in dst.iter_mut().zip(pieces) {
            *slot = IoSlice::new(piece);
            filled += 1;
        }
        filled
    }

    /// `n` bytes from the front (in [`slices`](Self::slices) order) were written.
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advanced past the end of the transmit queue");
        self.len -= n;
        if self.front_started {
            n = self.advance_front(n);
        }
        let from_control = n.min(self.control.len());
        self.control.advance(from_control);
        n -= from_control;
        if self.control.is_empty() {
            self.control = BytesMut::new();
        }
        while n > 0 && !self.queue.is_empty() {
            self.front_started = true;
            n = self.advance_front(n);
        }
        if n > 0 {
            let mut rest = self.tail.split().freeze();
            rest.advance(n);
            if !rest.is_empty() {
                self.queue.push_back(Chunk {
                    head: rest,
                    body: Bytes::new(),
                });
                self.front_started = true;
            }
        }
        // Nothing held at rest.
        if self.tail.is_empty() {
            self.tail = BytesMut::new();
        }
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }

    /// Advance within the started front chunk; returns what is left of `n`.
    fn advance_front(&mut self, n: usize) -> usize {
        let Some(front) = self.queue.front_mut() else {
            return n;
        };
        let len = front.len();
        if n < len {
            front.advance(n);
            return 0;
        }
        self.queue.pop_front();
        self.front_started = false;
        n - len
    }
}

fn frame_len(header: &Header, payload: usize) -> usize {
    let mut scratch = [0u8; MAX_HEADER];
    header.encode(&mut scratch) + payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpCode;

    fn header(opcode: OpCode, len: usize) -> Header {
        Header {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            len: len as u64,
        }
    }

    fn drain(outbox: &mut Outbox, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while !outbox.is_empty() {
            let mut slots = [IoSlice::new(&[]); 8];
            let n = outbox.slices(&mut slots);
            let mut chunk: Vec<u8> = slots[..n].iter().flat_map(|s| s.iter().copied()).collect();
            chunk.truncate(step);
            wire.extend_from_slice(&chunk);
            outbox.advance(chunk.len());
        }
        wire
    }

    fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        Outbox::encode_into(&mut out, header(opcode, payload.len()), payload);
        out.to_vec()
    }

    #[test]
    fn keeps_order_and_shares_large_payloads() {
        let big = Bytes::from(vec![7u8; 5000]);
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 2), Bytes::from_static(b"hi"));
        outbox.push_data(header(OpCode::Binary, big.len()), big.clone());
        outbox.push_data(header(OpCode::Text, 3), Bytes::from_static(b"bye"));
        let mut slots = [IoSlice::new(&[]); 8];
        let n = outbox.slices(&mut slots);
        // [small frame + big header], [big payload, by reference], [small frame]
        assert_eq!(n, 3);
        assert_eq!(slots[1].as_ptr(), big.as_ptr());
        let expected = [
            frame(OpCode::Text, b"hi"),
            frame(OpCode::Binary, &big),
            frame(OpCode::Text, b"bye"),
        ]
        .concat();
        for step in [1, 3, 1000, usize::MAX] {
            let mut o = Outbox::default();
            o.push_data(header(OpCode::Text, 2), Bytes::from_static(b"hi"));
            o.push_data(header(OpCode::Binary, big.len()), big.clone());
            o.push_data(header(OpCode::Text, 3), Bytes::from_static(b"bye"));
            assert_eq!(drain(&mut o, step), expected, "step {step}");
        }
    }

    #[test]
    fn control_waits_for_frame_boundary() {
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 5), Bytes::from_static(b"hello"));
        outbox.push_data(header(OpCode::Text, 5), Bytes::from_static(b"world"));
        // Write 3 bytes: the first frame is started.
        let mut slots = [IoSlice::new(&[]); 8];
        outbox.slices(&mut slots);
        outbox.advance(3);
        outbox.push_control(header(OpCode::Pong, 1), b"p");
        let wire = drain(&mut outbox, usize::MAX);
        let expected = [
            &frame(OpCode::Text, b"hello")[3..],
            &frame(OpCode::Text, b"world")[..],
            &frame(OpCode::Pong, b"p")[..],
        ]
        .concat();
        // The started coalesced chunk (both small frames) finishes first.
        assert_eq!(wire, expected);

        // Not started: the pong goes first.
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 5), Bytes::from_static(b"hello"));
        outbox.push_control(header(OpCode::Pong, 1), b"p");
        let wire = drain(&mut outbox, usize::MAX);
        assert_eq!(
            wire,
            [frame(OpCode::Pong, b"p"), frame(OpCode::Text, b"hello")].concat()
        );
    }

    #[test]
    fn holds_no_buffer_when_drained() {
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 5), Bytes::from_static(b"hello"));
        outbox.push_control(header(OpCode::Ping, 0), b"");
        drain(&mut outbox, 2);
        assert_eq!(outbox.tail.capacity(), 0);
        assert_eq!(outbox.control.capacity(), 0);
        assert!(outbox.queue.is_empty());
    }
}

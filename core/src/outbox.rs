//! The transmit queue, shaped for one vectored write per wake-up.
//!
//! Small frames (and every frame header) are coalesced into one contiguous
//! buffer; large payloads and pre-encoded broadcast frames are kept as shared
//! `Bytes` and never copied. Control frames (ping, pong) jump ahead of queued
//! data, but only at a frame boundary: every queued chunk ends on one.
//!
//! At rest (everything written) the outbox holds at most the coalescing
//! buffer, only if the caller asks to keep it (the connection does once
//! data messages have passed: a connection that only did its handshake
//! keeps nothing) and only if its capacity is at most [`TAIL_KEEP`] bytes:
//! a connection that sends small messages reuses one small buffer instead
//! of allocating and freeing one per write; a larger buffer is released.

use std::{collections::VecDeque, io::IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{
    frame::{Header, MAX_HEADER},
    mask::apply_mask_at,
};

/// Payloads up to this size are copied next to their header; larger ones are
/// queued by reference.
pub(crate) const COALESCE_LIMIT: usize = 1024;

/// The coalescing buffer may be kept, emptied, after a write that consumed
/// all of it if its capacity is at most this; larger buffers are freed.
/// This is the outbox's whole footprint at rest.
pub(crate) const TAIL_KEEP: usize = 512;

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

/// The transmit queue. Nothing at all (no allocation) while it is empty
/// and keeps no buffer: the queues are boxed, made by the first frame and
/// dropped once written unless the coalescing buffer is kept, so an idle
/// connection that only did its handshake holds none of them.
#[derive(Debug, Default)]
pub(crate) struct Outbox(Option<Box<Queues>>);

impl Outbox {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queues| queues.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn queues(&mut self) -> &mut Queues {
        self.0.get_or_insert_with(Box::default)
    }

    /// Queue a control frame ahead of data.
    pub(crate) fn push_control(&mut self, header: Header, payload: &[u8]) {
        self.queues().push_control(header, payload);
    }

    /// Queue a data (or close) frame after everything already queued.
    /// Masked or small payloads are copied; large unmasked ones are shared.
    pub(crate) fn push_data(&mut self, header: Header, payload: Bytes) {
        self.queues().push_data(header, payload);
    }

    /// Queue a data frame whose payload is copied next to its header, from
    /// a slice: the caller need not make it `Bytes` first.
    pub(crate) fn push_copy(&mut self, header: Header, payload: &[u8]) {
        self.queues().push_copy(header, payload);
    }

    /// Queue bytes that are already on-the-wire form and owned (an HTTP
    /// head), shared rather than copied.
    pub(crate) fn push_owned(&mut self, bytes: Bytes) {
        self.queues().push_owned(bytes);
    }

    /// Queue whole frames already in wire form (a pre-encoded broadcast):
    /// small ones coalesced, larger ones shared.
    pub(crate) fn push_encoded(&mut self, bytes: &Bytes) {
        self.queues().push_encoded(bytes);
    }

    /// Fill `dst` with the pending bytes in wire order; returns how many
    /// slices were filled.
    pub(crate) fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.0.as_ref().map_or(0, |queues| queues.slices(dst))
    }

    /// `n` bytes from the front (in [`slices`](Self::slices) order) were
    /// written. `keep`: if that emptied a small coalescing buffer, keep it
    /// for the next frames; otherwise an emptied outbox holds nothing.
    pub(crate) fn advance(&mut self, n: usize, keep: bool) {
        let Some(queues) = self.0.as_mut() else {
            assert_eq!(n, 0, "advanced past the end of the transmit queue");
            return;
        };
        queues.advance(n, keep);
        if queues.len == 0 && queues.tail.capacity() == 0 {
            self.0 = None;
        }
    }
}

/// The queues of a non-empty [`Outbox`].
#[derive(Debug, Default)]
struct Queues {
    /// Whole control frames, written before any data not yet started.
    control: BytesMut,
    /// Data chunks in order; the front one may be partly written.
    queue: VecDeque<Chunk>,
    front_started: bool,
    /// Small data frames appended after `queue`.
    tail: BytesMut,
    len: usize,
}

impl Queues {
    fn push_control(&mut self, header: Header, payload: &[u8]) {
        self.len += Self::encode_into(&mut self.control, header, payload);
    }

    /// Queue a data (or close) frame after everything already queued.
    /// Masked or small payloads are copied; large unmasked ones are shared.
    fn push_data(&mut self, header: Header, payload: Bytes) {
        if copies(&header) {
            self.push_copy(header, &payload);
        } else {
            let mut head = [0u8; MAX_HEADER];
            let n = header.encode(&mut head);
            self.tail.put_slice(&head[..n]);
            self.len += n + payload.len();
            self.push_chunk(payload);
        }
    }

    /// Queue a data frame whose payload is copied next to its header (what
    /// [`push_data`](Self::push_data) does when [`copies`] says so), from a
    /// slice: the caller need not make it `Bytes` first.
    fn push_copy(&mut self, header: Header, payload: &[u8]) {
        self.len += Self::encode_into(&mut self.tail, header, payload);
    }

    /// Queue bytes that are already on-the-wire form and owned (an HTTP
    /// head), shared rather than copied.
    fn push_owned(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        self.push_chunk(bytes);
    }

    /// Queue whole frames already in wire form (a pre-encoded broadcast):
    /// small ones are copied into the coalescing buffer, so that a burst of
    /// them leaves in one contiguous write; larger ones are shared.
    fn push_encoded(&mut self, bytes: &Bytes) {
        if bytes.len() <= COALESCE_LIMIT {
            self.len += bytes.len();
            self.tail.extend_from_slice(bytes);
        } else {
            self.push_owned(bytes.clone());
        }
    }

    fn push_chunk(&mut self, body: Bytes) {
        let head = self.take_tail();
        self.queue.push_back(Chunk { head, body });
    }

    /// The coalesced bytes as shared `Bytes`, leaving `tail` empty. A small
    /// buffer (one that would be kept at rest) is copied out and kept
    /// exclusively owned, so it is reused; a large one is handed over.
    fn take_tail(&mut self) -> Bytes {
        if self.tail.is_empty() {
            Bytes::new()
        } else if self.tail.capacity() <= TAIL_KEEP {
            let head = Bytes::copy_from_slice(&self.tail);
            self.tail.clear();
            head
        } else {
            std::mem::take(&mut self.tail).freeze()
        }
    }

    /// Append the frame to `buf`; returns its length on the wire.
    fn encode_into(buf: &mut BytesMut, header: Header, payload: &[u8]) -> usize {
        let mut head = [0u8; MAX_HEADER];
        let n = header.encode(&mut head);
        buf.reserve(n + payload.len());
        buf.put_slice(&head[..n]);
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(mask) = header.mask {
            apply_mask_at(&mut buf[start..], mask, 0);
        }
        n + payload.len()
    }

    /// Fill `dst` with the pending bytes in wire order; returns how many
    /// slices were filled.
    fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut out = Slots { dst, filled: 0 };
        let mut rest = self.queue.iter();
        if self.front_started {
            if let Some(front) = rest.next() {
                out.chunk(front);
            }
        }
        out.put(&self.control);
        for chunk in rest {
            if out.is_full() {
                break;
            }
            out.chunk(chunk);
        }
        out.put(&self.tail);
        out.filled
    }

    /// `n` bytes from the front (in [`slices`](Self::slices) order) were
    /// written. `keep`: if that emptied a small coalescing buffer, keep it
    /// for the next frames.
    fn advance(&mut self, mut n: usize, keep: bool) {
        assert!(n <= self.len, "advanced past the end of the transmit queue");
        self.len -= n;
        if self.front_started {
            n = self.advance_front(n);
        }
        if !self.control.is_empty() {
            let from_control = n.min(self.control.len());
            self.control.advance(from_control);
            n -= from_control;
            if self.control.is_empty() {
                self.control = BytesMut::new();
            }
        }
        while n > 0 && !self.queue.is_empty() {
            self.front_started = true;
            n = self.advance_front(n);
        }
        if n == 0 {
            return;
        }
        if n == self.tail.len() {
            // All written: keep a small buffer for the next frames.
            if keep && self.tail.capacity() <= TAIL_KEEP {
                self.tail.clear();
            } else {
                self.tail = BytesMut::new();
            }
        } else {
            // The write stopped inside the tail: the rest becomes a started
            // chunk, so control frames wait for its frame boundary.
            let mut rest = self.take_tail();
            rest.advance(n);
            self.queue.push_back(Chunk {
                head: rest,
                body: Bytes::new(),
            });
            self.front_started = true;
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
        if self.queue.is_empty() {
            self.queue = VecDeque::new(); // no chunk queue held at rest
        }
        n - len
    }
}

/// `IoSlice` slots being filled, skipping empty pieces.
struct Slots<'s, 'a> {
    dst: &'s mut [IoSlice<'a>],
    filled: usize,
}

impl<'a> Slots<'_, 'a> {
    fn is_full(&self) -> bool {
        self.filled == self.dst.len()
    }

    fn put(&mut self, piece: &'a [u8]) {
        if !piece.is_empty() {
            if let Some(slot) = self.dst.get_mut(self.filled) {
                *slot = IoSlice::new(piece);
                self.filled += 1;
            }
        }
    }

    fn chunk(&mut self, chunk: &'a Chunk) {
        self.put(&chunk.head);
        self.put(&chunk.body);
    }
}

/// Whether a data frame's payload is copied into the outbox rather than
/// shared: masked payloads (masking needs a copy) and small ones.
fn copies(header: &Header) -> bool {
    header.mask.is_some() || header.len <= COALESCE_LIMIT as u64
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
            outbox.advance(chunk.len(), true);
        }
        wire
    }

    fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        Queues::encode_into(&mut out, header(opcode, payload.len()), payload);
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
        outbox.advance(3, true);
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

    /// The capacities of the coalescing buffer, the control buffer and the
    /// chunk queue (none at all without the queues).
    fn caps(outbox: &Outbox) -> (usize, usize, usize) {
        outbox.0.as_ref().map_or((0, 0, 0), |queues| {
            (
                queues.tail.capacity(),
                queues.control.capacity(),
                queues.queue.capacity(),
            )
        })
    }

    #[test]
    fn holds_at_most_a_small_buffer_when_drained() {
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 5), Bytes::from_static(b"hello"));
        outbox.push_control(header(OpCode::Ping, 0), b"");
        drain(&mut outbox, 2);
        // A small coalescing buffer is kept for reuse, nothing else.
        assert!(caps(&outbox).0 <= TAIL_KEEP);
        assert_eq!(caps(&outbox).1, 0);
        assert_eq!(caps(&outbox).2, 0);

        // A large one is released, whether written at once or in pieces.
        for step in [usize::MAX, 700] {
            let mut outbox = Outbox::default();
            outbox.push_data(header(OpCode::Binary, 1000), Bytes::from(vec![1u8; 1000]));
            assert!(caps(&outbox).0 > TAIL_KEEP);
            drain(&mut outbox, step);
            assert_eq!(caps(&outbox).0, 0, "step {step}");
            assert_eq!(caps(&outbox).2, 0, "step {step}");
        }

        // A large payload shared by reference: its header is copied out of
        // the kept buffer, which stays small and exclusively owned.
        let mut outbox = Outbox::default();
        outbox.push_data(header(OpCode::Text, 2), Bytes::from_static(b"hi"));
        outbox.push_data(header(OpCode::Binary, 5000), Bytes::from(vec![7u8; 5000]));
        drain(&mut outbox, usize::MAX);
        assert!(caps(&outbox).0 <= TAIL_KEEP);
        assert_eq!(caps(&outbox).2, 0);

        // Not asked to keep it: nothing is held.
        let mut outbox = Outbox::default();
        outbox.push_owned(Bytes::from_static(
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ));
        let mut slots = [IoSlice::new(&[]); 8];
        outbox.slices(&mut slots);
        outbox.advance(outbox.len(), false);
        assert!(outbox.0.is_none(), "an emptied outbox holds nothing");
    }
}

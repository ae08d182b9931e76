//! The per-connection permessage-deflate codec (RFC 7692 §7.2): raw
//! DEFLATE with a sync flush per message, the trailing `00 00 ff ff`
//! stripped on send and appended on receive.
//!
//! zlib state is created on first use. Without context takeover on our
//! side, messages are compressed by a compressor shared by the thread (reset
//! before each message); without it on the peer's side, the inflater is
//! dropped after every message. Such a side holds nothing at rest.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::RATIO_FLOOR;
use crate::extension::{DecodeError, Extension, Sink};

/// The empty stored block that ends every sync flush (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflated bytes are handed to the sink in pieces of at most this size.
const CHUNK: usize = 8 << 10;

/// What a connection's codec was negotiated and configured with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    /// Our compressor's window; below 9 we never compress (zlib cannot).
    pub send_bits: u8,
    /// No context takeover on our side: reset after every message.
    pub send_reset: bool,
    /// The peer's window (the inflater needs at least 9).
    pub recv_bits: u8,
    /// The peer resets after every message: so may we.
    pub recv_reset: bool,
    pub level: u32,
    pub min_compress_size: usize,
    pub max_ratio: Option<u32>,
}

/// The negotiated permessage-deflate state of one connection.
pub(super) struct Deflate {
    settings: Settings,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
    /// Compressed bytes consumed and bytes inflated for the current message.
    message_in: u64,
    message_out: u64,
    /// The current message's DEFLATE data had a final block: nothing may
    /// follow it, and the next message starts a fresh stream.
    stream_ended: bool,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("settings", &self.settings)
            .field("compressor", &self.compressor.is_some())
            .field("decompressor", &self.decompressor.is_some())
            .finish()
    }
}

impl Deflate {
    pub(super) fn new(settings: Settings) -> Self {
        Deflate {
            settings,
            compressor: None,
            decompressor: None,
            message_in: 0,
            message_out: 0,
            stream_ended: false,
        }
    }

    fn inflate(&mut self, mut data: &[u8], sink: Sink<'_>) -> Result<(), DecodeError> {
        let bits = self.settings.recv_bits.max(9);
        let inflater = self
            .decompressor
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut buf = [0u8; CHUNK];
        loop {
            // After a final block (BFINAL) the rest of the message is
            // ignored, as zlib does (RFC 7692 §7.2.3.4 has a byte after it).
            if self.stream_ended {
                return Ok(());
            }
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(data, &mut buf, FlushDecompress::Sync)
                .map_err(|e| DecodeError::Invalid(format!("inflate: {e}")))?;
            let used = (inflater.total_in() - in_before) as usize;
            let made = (inflater.total_out() - out_before) as usize;
            data = &data[used..];
            self.message_in += used as u64;
            self.message_out += made as u64;
            if let Some(ratio) = self.settings.max_ratio {
                if self.message_out > RATIO_FLOOR as u64
                    && self.message_out > self.message_in.saturating_mul(ratio.into())
                {
                    return Err(DecodeError::TooLarge);
                }
            }
            if made > 0 {
                sink(&buf[..made])?;
            }
            if status == Status::StreamEnd {
                self.stream_ended = true;
            } else if data.is_empty() && made < buf.len() {
                // All input taken and no output pending.
                return Ok(());
            } else if used == 0 && made == 0 {
                return Err(DecodeError::Invalid("inflate made no progress".into()));
            }
        }
    }

    /// Compress one message. Without context takeover on our side the
    /// thread's shared compressor for these settings is reset and used:
    /// no compressor per connection, no allocation per message.
    fn deflate(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let Settings {
            send_bits,
            send_reset,
            level,
            ..
        } = self.settings;
        let fresh = || Compress::new_with_window_bits(Compression::new(level), false, send_bits);
        if send_reset {
            let shared = SHARED_COMPRESSORS.try_with(|shared| {
                let mut shared = shared.try_borrow_mut().ok()?;
                let at = match shared
                    .iter()
                    .position(|(b, l, _)| (*b, *l) == (send_bits, level))
                {
                    Some(at) => at,
                    None => {
                        shared.push((send_bits, level, fresh()));
                        shared.len() - 1
                    }
                };
                let compressor = &mut shared[at].2;
                compressor.reset();
                let out = compress_message(compressor, payload);
                if out.is_none() {
                    shared.swap_remove(at);
                }
                Some(out)
            });
            return match shared {
                Ok(Some(out)) => out,
                // The thread is exiting or (never) re-entered: a one-off.
                _ => compress_message(&mut fresh(), payload),
            };
        }
        let compressor = self.compressor.get_or_insert_with(fresh);
        let out = compress_message(compressor, payload);
        if out.is_none() {
            self.compressor = None;
        }
        out
    }
}

thread_local! {
    /// Compressors for messages without context takeover, one per (window
    /// bits, level) used on this thread, reset before each message: such a
    /// message depends on nothing before it, so any connection may use any
    /// of them.
    static SHARED_COMPRESSORS: RefCell<Vec<(u8, u32, Compress)>> = const { RefCell::new(Vec::new()) };
}

/// `payload` compressed with a sync flush, the trailing `00 00 ff ff` cut.
fn compress_message(compressor: &mut Compress, payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let mut input = payload;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity());
        }
        let before = compressor.total_in();
        compressor
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .ok()?;
        input = &input[(compressor.total_in() - before) as usize..];
        // The flush is complete once zlib stops with room to spare.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    Some(out)
}

impl Extension for Deflate {
    fn rsv_bits(&self) -> u8 {
        0b100
    }

    fn decode(&mut self, input: &[u8], last: bool, sink: Sink<'_>) -> Result<(), DecodeError> {
        let mut result = self.inflate(input, &mut *sink);
        if last && result.is_ok() && !self.stream_ended {
            result = self.inflate(&TAIL, sink);
        }
        if last || result.is_err() {
            if self.settings.recv_reset || self.stream_ended || result.is_err() {
                self.decompressor = None;
            }
            self.message_in = 0;
            self.message_out = 0;
            self.stream_ended = false;
        }
        result
    }

    fn encode(&mut self, payload: &[u8], _is_text: bool) -> Option<(u8, Vec<u8>)> {
        if payload.len() < self.settings.min_compress_size || self.settings.send_bits < 9 {
            return None;
        }
        let compressed = self.deflate(payload);
        if !self.settings.send_reset {
            // The peer's window must see every compressed message: no
            // falling back to the plain payload with context takeover.
            return compressed.map(|c| (0b100, c));
        }
        compressed
            .filter(|c| c.len() < payload.len())
            .map(|c| (0b100, c))
    }

    fn shared_encoding(&self) -> Option<u64> {
        let s = &self.settings;
        s.send_reset.then(|| {
            u64::from(s.send_bits)
                | u64::from(s.level) << 4
                | (s.min_compress_size as u64).min(u64::MAX >> 8) << 8
        })
    }
}

//! permessage-deflate (RFC 7692): negotiation for both roles and the
//! per-connection codec, plugged into the extension point
//! ([`crate::extension`]). Enable it with [`Config::deflate`](crate::Config).
//!
//! Negotiation rules (ARCHITECTURE.md, "permessage-deflate"):
//! - Server: the first acceptable offer wins; an offer with an unknown,
//!   repeated or malformed parameter is declined and the next one tried;
//!   with none acceptable the connection opens without the extension.
//! - zlib cannot compress with an 8-bit window: a server declines an offer
//!   with `server_max_window_bits=8` (the next offer is tried); a client
//!   told `client_max_window_bits=8` keeps the extension but sends every
//!   message uncompressed (RFC 7692 §6 allows it) while still inflating.
//! - Client: one offer built from [`DeflateConfig`]; a response that breaks
//!   §7 (a parameter we did not offer, a window larger than asked, a missing
//!   answer to a request) fails the handshake.

mod codec;
mod params;

use crate::extension::{Extension, ExtensionFactory, Offer};

use codec::Deflate;
use params::DeflateParams;

/// The extension token.
pub const NAME: &str = "permessage-deflate";

/// permessage-deflate settings, shared by every connection of a
/// [`Config`](crate::Config). Defaults: `server_no_context_takeover` (a
/// server keeps no compressor between messages: about 47 KiB per active
/// connection instead of about 420 KiB, and broadcasts are compressed once),
/// 15-bit windows, level 6, messages under 128 bytes sent uncompressed, no
/// ratio cap: `max_message_size`, checked while inflating, bounds each
/// connection's memory and [`Config::receive_budget`](crate::Config::receive_budget)
/// all of them together, while a ratio low enough to matter (100) would
/// refuse ordinary repetitive JSON (a 1 MiB array of similar objects
/// deflates about 290:1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Server: always reply `server_no_context_takeover` (our compressor is
    /// reset after every message, keeps no state at rest, and broadcasts
    /// are compressed once for all recipients). Client: request it.
    pub server_no_context_takeover: bool,
    /// Server: always reply `client_no_context_takeover` (the client resets;
    /// our decompressor keeps no state at rest). Client: announce it.
    pub client_no_context_takeover: bool,
    /// Server: the largest window (9–15) our compressor uses; replied when
    /// below 15. Client: requested as `server_max_window_bits` (8–15).
    pub server_max_window_bits: Option<u8>,
    /// Server: asked of clients that support `client_max_window_bits`
    /// (8–15). Client: offered as `client_max_window_bits` with this value
    /// (without a value when `None`).
    pub client_max_window_bits: Option<u8>,
    /// zlib compression level, 0–9.
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed.
    pub min_compress_size: usize,
    /// Largest inflated/compressed size ratio accepted for a message once
    /// its inflated size passes [`RATIO_FLOOR`]; beyond it the connection
    /// closes with 1009. `None`: only `max_message_size` applies.
    pub max_ratio: Option<u32>,
}

/// Inflated bytes of a message below which the ratio cap is not checked.
pub const RATIO_FLOOR: usize = 64 << 10;

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 6,
            min_compress_size: 128,
            max_ratio: None,
        }
    }
}

impl DeflateConfig {
    fn codec(&self, send_bits: u8, send_reset: bool, recv_bits: u8, recv_reset: bool) -> Deflate {
        Deflate::new(codec::Settings {
            send_bits,
            send_reset,
            recv_bits,
            recv_reset,
            level: self.level.min(9),
            min_compress_size: self.min_compress_size,
            max_ratio: self.max_ratio,
        })
    }
}

impl ExtensionFactory for DeflateConfig {
    fn name(&self) -> &str {
        NAME
    }

    fn accept_offer(&self, offers: &[&Offer]) -> Option<(Offer, Box<dyn Extension>)> {
        offers.iter().find_map(|offer| {
            let params = params::Written::parse(offer).ok()?;
            let (response, agreed) = params.answer(self)?;
            let codec = self.codec(
                agreed.server_max_window_bits,
                agreed.server_no_context_takeover,
                agreed.client_max_window_bits,
                agreed.client_no_context_takeover,
            );
            Some((response, Box::new(codec) as Box<dyn Extension>))
        })
    }

    fn client_offers(&self) -> Vec<Offer> {
        vec![DeflateParams::offer(self)]
    }

    fn accept_response(&self, response: &Offer) -> Result<Box<dyn Extension>, String> {
        let agreed = DeflateParams::from_response(response, self)?;
        Ok(Box::new(self.codec(
            agreed.client_max_window_bits,
            agreed.client_no_context_takeover,
            agreed.server_max_window_bits,
            agreed.server_no_context_takeover,
        )))
    }
}

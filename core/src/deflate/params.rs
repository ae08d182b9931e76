//! RFC 7692 §7.1: the four parameters, parsed from offers and responses,
//! and the server's answer to an offer.

use super::{DeflateConfig, NAME};
use crate::extension::Offer;

const SERVER_NCT: &str = "server_no_context_takeover";
const CLIENT_NCT: &str = "client_no_context_takeover";
const SERVER_BITS: &str = "server_max_window_bits";
const CLIENT_BITS: &str = "client_max_window_bits";

/// The parameters both ends settled on. Window bits are 15 when the
/// parameter was absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (as bits, 8–15) the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window (as bits, 8–15) the client compresses with.
    pub client_max_window_bits: u8,
}

/// One offer or response, as written (before negotiation).
#[derive(Debug, Default)]
pub(super) struct Written {
    server_nct: bool,
    client_nct: bool,
    server_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_bits: Option<Option<u8>>,
}

impl Written {
    /// Parse the parameters; any unknown, repeated or malformed one is an
    /// error (§7: the offer is declined, the response fails the handshake).
    pub(super) fn parse(offer: &Offer) -> Result<Written, String> {
        let mut w = Written::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &offer.params {
            if seen.contains(&key.as_str()) {
                return Err(format!("{key} appears twice"));
            }
            seen.push(key);
            let value = value.as_deref();
            match key.as_str() {
                SERVER_NCT | CLIENT_NCT if value.is_some() => {
                    return Err(format!("{key} takes no value"))
                }
                SERVER_NCT => w.server_nct = true,
                CLIENT_NCT => w.client_nct = true,
                SERVER_BITS => {
                    let value = value.ok_or_else(|| format!("{SERVER_BITS} needs a value"))?;
                    w.server_bits = Some(window_bits(value)?);
                }
                CLIENT_BITS => w.client_bits = Some(value.map(window_bits).transpose()?),
                _ => return Err(format!("unknown parameter {key}")),
            }
        }
        Ok(w)
    }
}

/// A window-bits value: a decimal 8–15 without leading zeros (§7.1.2).
fn window_bits(value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if !value.starts_with('0') && !value.starts_with('+') => Ok(bits),
        _ => Err(format!("window bits {value:?} not in 8..15")),
    }
}

/// Our own compressor's window limit from configuration: 9–15 (zlib
/// cannot compress with 8).
fn own_bits(configured: Option<u8>) -> u8 {
    configured.unwrap_or(15).clamp(9, 15)
}

fn flag(params: &mut Vec<(String, Option<String>)>, on: bool, name: &str) {
    if on {
        params.push((name.into(), None));
    }
}

fn bits(params: &mut Vec<(String, Option<String>)>, value: Option<u8>, name: &str) {
    if let Some(value) = value {
        params.push((name.into(), Some(value.to_string())));
    }
}

impl DeflateParams {
    /// Client: the offer to send for `config`.
    pub(super) fn offer(config: &DeflateConfig) -> Offer {
        let mut params = Vec::new();
        flag(&mut params, config.server_no_context_takeover, SERVER_NCT);
        flag(&mut params, config.client_no_context_takeover, CLIENT_NCT);
        bits(
            &mut params,
            config.server_max_window_bits.map(|b| b.clamp(8, 15)),
            SERVER_BITS,
        );
        // Always offered: we can honour any limit the server sets.
        let client_bits = config.client_max_window_bits.map(|b| own_bits(Some(b)));
        params.push((CLIENT_BITS.into(), client_bits.map(|b| b.to_string())));
        Offer {
            name: NAME.into(),
            params,
        }
    }

    /// Client: check the server's response against what `config` offered
    /// (§7.1) and return the agreed parameters.
    pub(super) fn from_response(
        response: &Offer,
        config: &DeflateConfig,
    ) -> Result<DeflateParams, String> {
        let w = Written::parse(response).map_err(|e| format!("{NAME} response: {e}"))?;
        if config.server_no_context_takeover && !w.server_nct {
            return Err(format!(
                "{NAME} response: {SERVER_NCT} requested but not accepted"
            ));
        }
        let asked = config.server_max_window_bits.map(|b| b.clamp(8, 15));
        let server_bits = match (w.server_bits, asked) {
            (Some(got), Some(asked)) if got > asked => {
                return Err(format!(
                    "{NAME} response: {SERVER_BITS}={got} above the requested {asked}"
                ))
            }
            (None, Some(asked)) => {
                return Err(format!(
                    "{NAME} response: {SERVER_BITS}={asked} requested but not accepted"
                ))
            }
            (got, _) => got.unwrap_or(15),
        };
        let offered_client_bits = own_bits(config.client_max_window_bits);
        let client_bits = match w.client_bits {
            None => offered_client_bits,
            Some(None) => return Err(format!("{NAME} response: {CLIENT_BITS} needs a value")),
            Some(Some(got)) => got.min(offered_client_bits),
        };
        Ok(DeflateParams {
            server_no_context_takeover: w.server_nct,
            client_no_context_takeover: w.client_nct || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    }
}

impl Written {
    /// Server: the response to this offer under `config`, and the agreed
    /// parameters (§7.1.1, §7.1.2); `None` declines an offer that limits
    /// our window to 8 bits (zlib cannot compress with it).
    pub(super) fn answer(&self, config: &DeflateConfig) -> Option<(Offer, DeflateParams)> {
        let w = self;
        let server_nct = w.server_nct || config.server_no_context_takeover;
        let client_nct = w.client_nct || config.client_no_context_takeover;
        let ours = own_bits(config.server_max_window_bits);
        // Requested by the client: answered, with the same or a smaller
        // value. Not requested: announced when we use a smaller window.
        let (server_bits, server_reply) = match w.server_bits {
            Some(asked) => (asked.min(ours), Some(asked.min(ours))),
            None => (ours, (ours < 15).then_some(ours)),
        };
        if server_bits < 9 {
            return None;
        }
        // Only when the client said it supports the parameter.
        let (client_bits, client_reply) = match (w.client_bits, config.client_max_window_bits) {
            (Some(hint), Some(want)) => {
                let bits = hint.unwrap_or(15).min(want.clamp(8, 15));
                (bits, Some(bits))
            }
            _ => (15, None),
        };
        let mut params = Vec::new();
        flag(&mut params, server_nct, SERVER_NCT);
        flag(&mut params, client_nct, CLIENT_NCT);
        bits(&mut params, server_reply, SERVER_BITS);
        bits(&mut params, client_reply, CLIENT_BITS);
        let agreed = DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        Some((
            Offer {
                name: NAME.into(),
                params,
            },
            agreed,
        ))
    }
}

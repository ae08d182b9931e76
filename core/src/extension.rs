//! The extension point: negotiation in the handshake and per-message
//! transforms on the frames (RFC 6455 §9). permessage-deflate (RFC 7692)
//! plugs in here.

use std::fmt;

/// One extension offered or accepted in a `Sec-WebSocket-Extensions` header:
/// a name and its parameters (`name; p1; p2=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Extension token, lower-cased (e.g. `permessage-deflate`).
    pub name: String,
    /// Parameters in order; quoted values are unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl Offer {
    /// The value of parameter `name`, if present (`Some(None)` when it has no value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref())
    }
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (key, value) in &self.params {
            match value {
                Some(value) => write!(f, "; {key}={value}")?,
                None => write!(f, "; {key}")?,
            }
        }
        Ok(())
    }
}

/// Negotiates one extension during the handshake and creates its
/// per-connection state. Configured in [`Config::extensions`](crate::Config).
pub trait ExtensionFactory: Send + Sync {
    /// The extension token, e.g. `permessage-deflate`.
    fn name(&self) -> &str;
    /// Server: choose among the client's offers of this extension (in the
    /// client's order of preference). Return the response parameters and the
    /// state, or `None` to decline (the handshake goes on without it).
    fn accept_offer(&self, offers: &[&Offer]) -> Option<(Offer, Box<dyn Extension>)>;
    /// Client: the offers to send, most preferred first.
    fn client_offers(&self) -> Vec<Offer>;
    /// Client: the server accepted with `response`; build the state or say
    /// why the response is unacceptable (the handshake then fails).
    fn accept_response(&self, response: &Offer) -> Result<Box<dyn Extension>, String>;
}

/// Per-connection state of a negotiated extension: transforms whole messages.
pub trait Extension: Send {
    /// The RSV bits (`0b100` = RSV1, `0b010` = RSV2, `0b001` = RSV3) this
    /// extension may set on the first frame of a message.
    fn rsv_bits(&self) -> u8;
    /// Decode part of a message whose first frame carried this extension's
    /// RSV bits. `input` is the next slice of unmasked payload, `last` says
    /// whether it ends the message. Hand the plain bytes to `sink` in
    /// pieces as they are produced (it enforces the message size limit and
    /// validates text) and stop at its first error.
    fn decode(&mut self, input: &[u8], last: bool, sink: Sink<'_>) -> Result<(), DecodeError>;
    /// Encode an outgoing message. Return the RSV bits to set on its first
    /// frame and the transformed payload, or `None` to send it unchanged.
    fn encode(&mut self, payload: &[u8], is_text: bool) -> Option<(u8, Vec<u8>)>;
    /// `Some(key)` when [`encode`](Self::encode) is currently a pure
    /// function of the message (no state carried between messages): every
    /// connection with the same key would produce the same bytes, so a
    /// broadcast frame is encoded once per key and shared. Default `None`.
    fn shared_encoding(&self) -> Option<u64> {
        None
    }
}

/// Receives decoded bytes from [`Extension::decode`].
pub type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), DecodeError>;

/// Why an extension could not decode a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The decoded message would exceed a limit: the sink's
    /// (`max_message_size`) or the extension's own (close 1009).
    TooLarge,
    /// The payload is not valid for this extension (close 1002).
    Invalid(String),
}

//! The two kinds of error: the peer breaking the protocol, and the local
//! application misusing the API.

use std::{borrow::Cow, fmt};

use crate::CloseCode;

/// The peer violated RFC 6455 (or a configured limit). The connection fails:
/// a close frame with [`close_code`](Self::close_code) is queued and the
/// connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent a frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// RSV bits set that no negotiated extension claims (§5.2).
    ReservedBits,
    /// An opcode reserved for future use (§5.2).
    ReservedOpcode(u8),
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong,
    /// A control frame without the FIN bit (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message to continue (§5.4).
    UnexpectedContinuation,
    /// A new data frame while a fragmented message was still open (§5.4).
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    InvalidLength,
    /// Text that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close frame with a code not allowed on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A frame larger than [`Config::max_frame_size`](crate::Config::max_frame_size)
    /// (when that is below the message limit).
    FrameTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A message (or a single frame of it) larger than
    /// [`Config::max_message_size`](crate::Config::max_message_size).
    MessageTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A negotiated extension refused to decode a message further under
    /// its own limit (e.g. permessage-deflate's `max_ratio`).
    ExtensionLimit,
    /// A negotiated extension could not decode a message.
    Extension(String),
    /// A partly received message would pass the memory budget shared by
    /// the connections of its [`Config`](crate::Config)
    /// ([`Config::receive_budget`](crate::Config::receive_budget)).
    ReceiveBudget {
        /// The budget, in bytes.
        limit: usize,
    },
    /// A message (or control frame) did not arrive whole within
    /// [`Config::message_timeout`](crate::Config::message_timeout) of its
    /// first byte.
    MessageTimeout {
        /// The limit.
        limit: std::time::Duration,
    },
}

impl ProtocolError {
    /// The close code this error fails the connection with: the one table
    /// from errors to close codes.
    pub fn close_code(&self) -> CloseCode {
        use ProtocolError::*;
        match self {
            InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            FrameTooLarge { .. }
            | MessageTooLarge { .. }
            | ExtensionLimit
            | ReceiveBudget { .. } => CloseCode::MESSAGE_TOO_BIG,
            UnmaskedFrame
            | MaskedFrame
            | ReservedBits
            | ReservedOpcode(_)
            | ControlFrameTooLong
            | FragmentedControlFrame
            | UnexpectedContinuation
            | ExpectedContinuation
            | InvalidLength
            | InvalidClosePayload
            | InvalidCloseCode(_)
            | Extension(_) => CloseCode::PROTOCOL_ERROR,
            // Not a breach of RFC 6455 but of our policy (§7.4.1).
            MessageTimeout { .. } => CloseCode::POLICY_VIOLATION,
        }
    }

    /// The reason sent in the close frame (at most 123 bytes): short,
    /// never internal detail. A size limit is named with its value and
    /// setting, e.g. `message too big: more than 1048576 bytes
    /// (Config::max_message_size)`, so that the peer can tell what to change.
    pub fn close_reason(&self) -> Cow<'static, str> {
        use ProtocolError::*;
        match self {
            MessageTooLarge { limit } => {
                format!("message too big: more than {limit} bytes (Config::max_message_size)")
                    .into()
            }
            FrameTooLarge { limit } => {
                format!("frame too big: more than {limit} bytes (Config::max_frame_size)").into()
            }
            ExtensionLimit => "message too big: extension limit".into(),
            ReceiveBudget { limit } => format!(
                "message too big: receive budget of {limit} bytes in use (Config::receive_budget)"
            )
            .into(),
            InvalidUtf8 => "invalid utf-8".into(),
            MessageTimeout { limit } => format!(
                "message not completed within {} s (Config::message_timeout)",
                limit.as_secs_f64()
            )
            .into(),
            _ => "protocol error".into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolError::*;
        match self {
            UnmaskedFrame => f.write_str("client frame is not masked"),
            MaskedFrame => f.write_str("server frame is masked"),
            ReservedBits => f.write_str("reserved bits set without a negotiated extension"),
            ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            FragmentedControlFrame => f.write_str("fragmented control frame"),
            UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue")
            }
            ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            InvalidLength => f.write_str("payload length has its most significant bit set"),
            InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            InvalidClosePayload => f.write_str("close frame payload of one byte"),
            InvalidCloseCode(code) => write!(f, "close code {code} is not allowed"),
            FrameTooLarge { limit } => write!(
                f,
                "frame exceeds the limit of {limit} bytes (Config::max_frame_size)"
            ),
            MessageTooLarge { limit } => write!(
                f,
                "message exceeds the limit of {limit} bytes (Config::max_message_size)"
            ),
            ExtensionLimit => f.write_str("message exceeds the extension's decoding limit"),
            Extension(what) => write!(f, "extension error: {what}"),
            ReceiveBudget { limit } => write!(
                f,
                "unfinished messages would pass the receive budget of {limit} bytes (Config::receive_budget)"
            ),
            MessageTimeout { limit } => write!(
                f,
                "message not completed within {} s of its first byte (Config::message_timeout)",
                limit.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The local application called the API in a way the protocol forbids; the
/// call had no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// The connection is not open (handshake pending, or closing/closed).
    NotOpen,
    /// `accept` or `reject` without a pending upgrade request.
    NoPendingRequest,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent (e.g. 1005, 1006, 1015, < 1000).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong,
    /// A pre-encoded server frame sent on a client connection.
    EncodedFrameOnClient,
    /// `Accept` chose a subprotocol the client did not offer.
    UnofferedProtocol(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UsageError::*;
        match self {
            NotOpen => f.write_str("connection is not open"),
            NoPendingRequest => f.write_str("no upgrade request is waiting for a decision"),
            ControlPayloadTooLong => f.write_str("control frame payload over 125 bytes"),
            InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            CloseReasonTooLong => f.write_str("close reason over 123 bytes"),
            EncodedFrameOnClient => {
                f.write_str("pre-encoded server frames cannot be sent by a client")
            }
            UnofferedProtocol(p) => write!(f, "subprotocol {p:?} was not offered by the client"),
        }
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §5.5: a close payload is at most 125 bytes, so its reason at
    // most 123, even for the largest limit.
    #[test]
    fn size_limit_reasons_fit_a_close_frame() {
        for error in [
            ProtocolError::MessageTooLarge { limit: usize::MAX },
            ProtocolError::FrameTooLarge { limit: usize::MAX },
            ProtocolError::ReceiveBudget { limit: usize::MAX },
        ] {
            assert_eq!(error.close_code(), CloseCode::MESSAGE_TOO_BIG);
            assert!(
                error.close_reason().len() <= 123,
                "{}",
                error.close_reason()
            );
        }
        assert_eq!(
            ProtocolError::MessageTooLarge { limit: 1 << 20 }.close_reason(),
            "message too big: more than 1048576 bytes (Config::max_message_size)"
        );
    }
}

//! Close codes (RFC 6455 §7.4) and the close frame payload.

use std::fmt;

/// A WebSocket close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, idle timeout).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame (never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message was not valid UTF-8, or data was inconsistent.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (e.g. the server is overloaded).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether this code may appear in a close frame received from a peer:
    /// 1000–1003, 1007–1014 and 3000–4999.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

/// Who started the close handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Initiator {
    /// This endpoint (the application, a timer or a protocol error).
    Local,
    /// The peer.
    Remote,
}

/// How a connection ended: reported once, by [`Event::Closed`](crate::Event::Closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// After a close handshake, the code of the peer's close frame (1005
    /// if it had none). When we failed the connection because the peer broke
    /// the protocol, the code of that failure, as sent in our close frame
    /// (unless ours had gone already): 1002, 1007 or 1009 ([`ProtocolError::close_code`](crate::ProtocolError::close_code)).
    /// 1006 when the connection ended without a close handshake (EOF, or
    /// no answer to our close frame in time).
    pub code: CloseCode,
    /// The reason that goes with `code`: the peer's, the one we sent with a
    /// protocol failure, or a short local description for 1006.
    pub reason: String,
    /// True when both close frames were exchanged.
    pub clean: bool,
    /// Who sent the first close frame.
    pub initiator: Initiator,
}

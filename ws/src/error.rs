//! The one error type of the WebSocket adapters.

use std::{fmt, io};

use hubbub_core::{HandshakeError, ProtocolError, UsageError};

/// A step of opening a connection, named by [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Resolving the host name.
    Dns,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (`wss://`).
    Tls,
    /// The WebSocket opening handshake.
    Handshake,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dns => "DNS lookup",
            Step::Connect => "TCP connect",
            Step::Tls => "TLS handshake",
            Step::Handshake => "opening handshake",
        })
    }
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed while the connection was in use.
    Io(io::Error),
    /// Client: the host name could not be resolved.
    Dns(io::Error),
    /// Client: no TCP connection could be opened (the message names the
    /// address).
    Connect(io::Error),
    /// A step of opening the connection took longer than allowed.
    Timeout(Step),
    /// Client: the TLS handshake failed (`wss://`); the message names the
    /// problem (an expired certificate, one for another host, an unknown
    /// issuer…).
    Tls(io::Error),
    /// The opening handshake failed; the variant names the check.
    Handshake(HandshakeError),
    /// The peer broke the protocol; the connection is closing with the
    /// matching close code.
    Protocol(ProtocolError),
    /// The call is not allowed now (e.g. a close code that may not be sent).
    Usage(UsageError),
    /// The connection is closed (or closing): nothing more can be sent.
    Closed,
}

impl From<crate::driver::OpenError> for Error {
    fn from(error: crate::driver::OpenError) -> Self {
        use crate::driver::OpenError;
        match error {
            OpenError::Handshake(error) => Error::handshake(error),
            OpenError::Io(error) => Error::Io(error),
            OpenError::Usage(error) => Error::Usage(error),
            _ => Error::Closed,
        }
    }
}

impl Error {
    /// Map a failed handshake, naming a timeout as such.
    pub fn handshake(error: HandshakeError) -> Self {
        match error {
            HandshakeError::Timeout => Error::Timeout(Step::Handshake),
            error => Error::Handshake(error),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "I/O error: {error}"),
            Error::Dns(error) => write!(f, "DNS lookup failed: {error}"),
            Error::Connect(error) => write!(f, "TCP connect failed: {error}"),
            Error::Tls(error) => write!(f, "TLS handshake failed: {error}"),
            Error::Timeout(step) => write!(f, "{step} timed out"),
            Error::Handshake(error) => write!(f, "WebSocket handshake failed: {error}"),
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            Error::Usage(error) => write!(f, "{error}"),
            Error::Closed => f.write_str("the WebSocket connection is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) | Error::Dns(error) | Error::Connect(error) | Error::Tls(error) => {
                Some(error)
            }
            Error::Handshake(error) => Some(error),
            Error::Protocol(error) => Some(error),
            Error::Usage(error) => Some(error),
            Error::Timeout(_) | Error::Closed => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}

impl From<UsageError> for Error {
    fn from(error: UsageError) -> Self {
        Error::Usage(error)
    }
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        Error::Protocol(error)
    }
}

impl From<HandshakeError> for Error {
    fn from(error: HandshakeError) -> Self {
        Error::handshake(error)
    }
}

//! [`MaybeTls`]: a plain stream or a TLS one, as one [`Transport`] type.

use std::{
    io::{self, IoSlice},
    ops::Deref,
    task::{Context, Poll},
};

use crate::driver::Transport;

/// A stream `S` as it is (`ws://`, `http://`) or under TLS (`wss://`,
/// `https://`; feature `tls`): what servers serve and clients connect
/// with, so that one program handles both with one type. The TLS side is
/// boxed, so a plain connection does not pay for its size.
///
/// It dereferences to the socket underneath (for `peer_addr`, say).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<S> {
    /// No TLS.
    Plain(S),
    /// TLS over the stream.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<S>>),
}

impl<S> MaybeTls<S> {
    /// The stream underneath (the socket, below any TLS).
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeTls::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.get_ref(),
        }
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// The TLS session, if there is one (its ALPN protocol, the peer's
    /// certificates, the SNI name).
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsStream<S>> {
        match self {
            MaybeTls::Tls(tls) => Some(tls),
            MaybeTls::Plain(_) => None,
        }
    }
}

impl<S> From<S> for MaybeTls<S> {
    fn from(stream: S) -> Self {
        MaybeTls::Plain(stream)
    }
}

impl<S> Deref for MaybeTls<S> {
    type Target = S;

    fn deref(&self) -> &S {
        self.get_ref()
    }
}

impl<S: Transport> Transport for MaybeTls<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_flush(cx),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_shutdown(cx),
        }
    }
}

//! [`MaybeTls`]: a plain stream or a TLS one, as one [`Transport`] type.

use std::{
    io::{self, IoSlice},
    net::SocketAddr,
    ops::Deref,
    task::{Context, Poll},
};

use crate::driver::Transport;

/// A stream `S` as it is (`ws://`, `http://`) or under TLS (`wss://`,
/// `https://`; feature `tls`): what servers serve and clients connect
/// with, so that one program handles both with one type. The TLS side is
/// boxed, so a plain connection does not pay for its size.
///
/// With feature `h2`, a client's `wss://` WebSocket may also run over one
/// stream of a shared HTTP/2 connection (`H2`; see `h2::H2Pool`). It is
/// a variant here rather than a
/// transport type of its own so that `connect_with` and the hub's
/// reconnecting `Client` keep returning the one WebSocket type whichever
/// protocol the server allowed.
///
/// It dereferences to the socket underneath (for `peer_addr`, say), which
/// an HTTP/2 stream does not own: see [`get_ref`](Self::get_ref) and
/// [`stream`](Self::stream).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<S> {
    /// No TLS.
    Plain(S),
    /// TLS over the stream.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<S>>),
    /// One stream of an HTTP/2 connection under TLS (client side, RFC
    /// 8441): the connection, its socket and TLS session belong to the
    /// pool's connection task.
    #[cfg(feature = "h2")]
    H2(Box<crate::h2::H2ClientStream>),
}

impl<S> MaybeTls<S> {
    /// The stream underneath (the socket, below any TLS).
    ///
    /// # Panics
    ///
    /// On an HTTP/2 stream (`H2`, feature `h2`), which owns no socket: use
    /// [`stream`](Self::stream) where a client may use HTTP/2.
    pub fn get_ref(&self) -> &S {
        match self.stream() {
            Some(stream) => stream,
            None => panic!("a WebSocket over HTTP/2 has no socket of its own"),
        }
    }

    /// The stream underneath (the socket, below any TLS); `None` for an
    /// HTTP/2 stream, whose socket belongs to its connection.
    pub fn stream(&self) -> Option<&S> {
        match self {
            MaybeTls::Plain(stream) => Some(stream),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => Some(tls.get_ref()),
            #[cfg(feature = "h2")]
            MaybeTls::H2(_) => None,
        }
    }

    /// The peer's address: `peer_of` the socket underneath (the runtime's
    /// `peer_addr`), or for an HTTP/2 stream the server's address on its
    /// connection, noted when it was opened. Never panics.
    pub fn peer_addr_by(
        &self,
        peer_of: impl FnOnce(&S) -> io::Result<SocketAddr>,
    ) -> Option<SocketAddr> {
        match self {
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.peer_addr(),
            _ => self.stream().and_then(|stream| peer_of(stream).ok()),
        }
    }

    /// Whether the connection runs over TLS (an HTTP/2 stream always
    /// does).
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// Whether this is a stream of an HTTP/2 connection (RFC 8441).
    pub fn is_h2(&self) -> bool {
        #[cfg(feature = "h2")]
        if let MaybeTls::H2(_) = self {
            return true;
        }
        false
    }

    /// The TLS session, if this stream has one of its own (its ALPN
    /// protocol, the peer's certificates, the SNI name); `None` for an
    /// HTTP/2 stream too.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsStream<S>> {
        match self {
            MaybeTls::Tls(tls) => Some(tls),
            _ => None,
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
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_write(cx, buf),
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.poll_write(cx, buf),
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
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_flush(cx),
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.poll_flush(cx),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(stream) => stream.poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(tls) => tls.poll_shutdown(cx),
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.poll_shutdown(cx),
        }
    }

    fn ends_at_close(&self) -> bool {
        match self {
            MaybeTls::Plain(stream) => stream.ends_at_close(),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(_) => false,
            #[cfg(feature = "h2")]
            MaybeTls::H2(h2) => h2.ends_at_close(),
        }
    }
}

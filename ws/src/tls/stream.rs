//! [`TlsStream`]: rustls's sans-IO connection over any [`Transport`], as a
//! [`Transport`] itself.

use std::{
    fmt,
    future::poll_fn,
    io::{self, IoSlice, Read, Write},
    sync::Arc,
    task::{ready, Context, Poll},
};

use rustls::{
    pki_types::{CertificateDer, ServerName},
    ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection,
};

use crate::driver::Transport;

/// Most transport reads or writes in one call before yielding: every loop
/// here is bounded.
const MAX_ROUNDS: usize = 64;

/// Bytes of plaintext rustls may hold before it is encrypted and written,
/// and of ciphertext waiting for the transport: a peer that does not read
/// cannot make a connection buffer more than this.
const BUFFER_LIMIT: usize = 64 << 10;

/// A TLS connection (server or client side) over the transport `T`.
///
/// rustls is sans-IO: this type moves its records to and from `T` through
/// the driver's [`Transport`] calls, so it works over any runtime's stream
/// and is itself a [`Transport`] that a [`WebSocket`](crate::WebSocket), a
/// hub session or the HTTP server runs over. Buffering is bounded: rustls
/// keeps at most 64 KiB of outgoing data, and records are read only once
/// the reader has taken every decrypted byte (rustls holds at most 16 KiB
/// of those). A TLS error (a bad record, a failed verification) sends the
/// alert and comes back as an [`io::Error`] whose message names it;
/// [`poll_shutdown`](Transport::poll_shutdown) sends `close_notify` before
/// shutting the transport down.
pub struct TlsStream<T> {
    io: T,
    conn: Connection,
    /// `close_notify` was queued.
    closing: bool,
}

impl<T> fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.conn.is_handshaking())
            .field("server", &matches!(self.conn, Connection::Server(_)))
            .finish_non_exhaustive()
    }
}

impl<T> TlsStream<T> {
    /// The transport underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport underneath, mutably (reading or writing it directly
    /// breaks the TLS session).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The application protocol agreed with ALPN (`http/1.1`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The certificates the peer presented (the server's chain, on a
    /// client), once the handshake has got that far.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The host name the client asked for (SNI), on a server.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(conn) => conn.server_name(),
            Connection::Client(_) => None,
        }
    }
}

impl<T: Transport> TlsStream<T> {
    /// The server side of a TLS connection over `io`; the handshake runs
    /// in [`handshake`](Self::handshake) (or with the first reads and
    /// writes).
    pub fn server(io: T, config: Arc<ServerConfig>) -> io::Result<Self> {
        let conn = ServerConnection::new(config).map_err(tls_error)?;
        Ok(Self::new(io, conn.into()))
    }

    /// The client side of a TLS connection to `name` (the SNI sent, and
    /// the name the server's certificate must be valid for) over `io`.
    pub fn client(io: T, config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<Self> {
        let conn = ClientConnection::new(config, name).map_err(tls_error)?;
        Ok(Self::new(io, conn.into()))
    }

    fn new(io: T, mut conn: Connection) -> Self {
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        TlsStream {
            io,
            conn,
            closing: false,
        }
    }

    /// Run the TLS handshake to its end. The error's message names the
    /// TLS problem (e.g. `invalid peer certificate: Expired`); the peer
    /// was sent the matching alert.
    pub async fn handshake(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        for _ in 0..MAX_ROUNDS {
            if self.conn.wants_write() {
                ready!(self.poll_write_tls(cx))?;
                continue;
            }
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_read_tls(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Read records from the transport into rustls and process them:
    /// `Ok(0)` at the transport's end. A TLS error queues the alert, which
    /// is flushed (as far as the transport takes it) before returning.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let read = self.conn.read_tls(&mut Reading {
            io: &mut self.io,
            cx,
        });
        let read = match read {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            other => other?,
        };
        if let Err(error) = self.conn.process_new_packets() {
            // The alert is queued: send what the transport takes now.
            for _ in 0..MAX_ROUNDS {
                if !self.conn.wants_write() {
                    break;
                }
                match self.poll_write_tls(cx) {
                    Poll::Ready(Ok(_)) => {}
                    _ => break,
                }
            }
            return Poll::Ready(Err(tls_error(error)));
        }
        Poll::Ready(Ok(read))
    }

    /// Write queued records to the transport once.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self.conn.write_tls(&mut Writing {
            io: &mut self.io,
            cx,
        }) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Ok(0) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            other => Poll::Ready(other),
        }
    }

    /// Write every queued record.
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        for _ in 0..MAX_ROUNDS {
            if !self.conn.wants_write() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_write_tls(cx))?;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Transport> Transport for TlsStream<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        for _ in 0..MAX_ROUNDS {
            match self.conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                // The transport ended without close_notify: the end of
                // stream all the same (the WebSocket's own close handshake
                // tells a clean end from a cut).
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Poll::Ready(Ok(0))
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
            // Handshake messages, key updates, alerts: out first, as far
            // as the transport takes them (a write that waits does not
            // stop reading).
            if self.conn.wants_write() {
                if let Poll::Ready(Err(error)) = self.poll_flush_tls(cx) {
                    return Poll::Ready(Err(error));
                }
            }
            if !self.conn.wants_read() {
                // Waiting for our own records to leave first.
                ready!(self.poll_flush_tls(cx))?;
                if !self.conn.wants_read() {
                    continue;
                }
            }
            ready!(self.poll_read_tls(cx))?;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        for _ in 0..MAX_ROUNDS {
            // rustls takes what fits under its buffer limit, all slices
            // into the same records (a frame's header and payload, and
            // the frames of a batch, are not a record each).
            let taken = self.conn.writer().write_vectored(bufs)?;
            // Encrypted records out, as far as the transport takes them.
            while self.conn.wants_write() {
                match self.poll_write_tls(cx) {
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending if taken == 0 => return Poll::Pending,
                    Poll::Pending => break,
                }
            }
            if taken > 0 {
                return Poll::Ready(Ok(taken));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush_tls(cx))?;
        self.io.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
        }
        ready!(self.poll_flush_tls(cx))?;
        self.io.poll_shutdown(cx)
    }
}

/// A rustls error as an [`io::Error`] whose message names it.
pub(crate) fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS error: {error}"))
}

/// The transport as [`io::Read`] for rustls: `WouldBlock` when it would
/// wait (the task is woken when it can go on).
struct Reading<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: Transport> Read for Reading<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.io.poll_read(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The transport as [`io::Write`] for rustls.
struct Writing<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: Transport> Write for Writing<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.io.poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.io.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{
        cell::RefCell,
        collections::VecDeque,
        rc::Rc,
        task::{Context, Poll, Waker},
    };

    use rustls::{pki_types::PrivateKeyDer, RootCertStore};

    use super::*;

    /// One direction of an in-memory connection, holding at most `CAP`
    /// bytes: a peer that does not read fills it.
    type Pipe = Rc<RefCell<VecDeque<u8>>>;
    const CAP: usize = 32 << 10;

    struct End {
        read: Pipe,
        write: Pipe,
    }

    fn pair() -> (End, End) {
        let (a, b) = (Pipe::default(), Pipe::default());
        (
            End {
                read: a.clone(),
                write: b.clone(),
            },
            End { read: b, write: a },
        )
    }

    impl Transport for End {
        fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut pipe = self.read.borrow_mut();
            if pipe.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(pipe.len());
            for (slot, byte) in buf.iter_mut().zip(pipe.drain(..n)) {
                *slot = byte;
            }
            Poll::Ready(Ok(n))
        }

        fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let mut pipe = self.write.borrow_mut();
            let n = buf.len().min(CAP - pipe.len());
            if n == 0 {
                return Poll::Pending;
            }
            pipe.extend(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A server with a self-signed certificate for localhost, and a client
    /// that trusts it.
    fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    fn connected(name: &'static str) -> (TlsStream<End>, TlsStream<End>) {
        let (server_config, client_config) = configs();
        let (a, b) = pair();
        let mut server = TlsStream::server(a, server_config).unwrap();
        let name = ServerName::try_from(name).unwrap();
        let mut client = TlsStream::client(b, client_config, name).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..20 {
            let s = server.poll_handshake(&mut cx);
            let c = client.poll_handshake(&mut cx);
            if let (Poll::Ready(s), Poll::Ready(c)) = (&s, &c) {
                assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
                return (server, client);
            }
            if let Poll::Ready(Err(e)) = c {
                panic!("client: {e}");
            }
        }
        panic!("no handshake");
    }

    #[test]
    fn writes_stop_at_a_bound_when_the_peer_does_not_read() {
        let (_server, mut client) = connected("localhost");
        let mut cx = Context::from_waker(Waker::noop());
        let chunk = vec![7u8; 100_000];
        let mut taken = 0;
        for _ in 0..1000 {
            match client.poll_write(&mut cx, &chunk) {
                Poll::Ready(Ok(n)) => taken += n,
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => break,
            }
        }
        // What the pipe holds plus what rustls buffers, no more.
        assert!(taken > 0 && taken <= CAP + BUFFER_LIMIT, "{taken}");
        assert!(client.poll_write(&mut cx, &chunk).is_pending());
    }

    #[test]
    fn data_and_close_notify_cross() {
        let (mut server, mut client) = connected("localhost");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            client.poll_write(&mut cx, b"hello"),
            Poll::Ready(Ok(5))
        ));
        let mut buf = [0u8; 16];
        assert!(matches!(
            server.poll_read(&mut cx, &mut buf),
            Poll::Ready(Ok(5))
        ));
        assert_eq!(&buf[..5], b"hello");
        assert!(client.poll_shutdown(&mut cx).is_ready());
        assert!(matches!(
            server.poll_read(&mut cx, &mut buf),
            Poll::Ready(Ok(0))
        ));
    }

    #[test]
    fn garbage_is_an_error_naming_tls_and_gets_an_alert() {
        let (server_config, _) = configs();
        let (a, b) = pair();
        let mut server = TlsStream::server(a, server_config).unwrap();
        b.write
            .borrow_mut()
            .extend(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Err(error)) = server.poll_handshake(&mut cx) else {
            panic!("no error");
        };
        assert!(error.to_string().starts_with("TLS error: "), "{error}");
        // The alert record (content type 21) was sent.
        assert_eq!(b.read.borrow().front(), Some(&21));
    }

    #[test]
    fn a_wrong_host_fails_the_handshake_with_the_reason() {
        let (server_config, client_config) = configs();
        let (a, b) = pair();
        let mut server = TlsStream::server(a, server_config).unwrap();
        let name = ServerName::try_from("elsewhere.example").unwrap();
        let mut client = TlsStream::client(b, client_config, name).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..20 {
            let _ = server.poll_handshake(&mut cx);
            if let Poll::Ready(result) = client.poll_handshake(&mut cx) {
                let error = result.unwrap_err().to_string();
                assert!(error.contains("not valid for name"), "{error}");
                return;
            }
        }
        panic!("no handshake result");
    }
}

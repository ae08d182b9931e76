//! TLS for the hub programs: the acceptor from the settings'
//! `TLS_CERT_PATH` / `TLS_KEY_PATH` (offering HTTP/2 unless `HTTP2=off`),
//! its reload on SIGHUP, and a hub server started with HTTP/2 when its
//! acceptor offers it.

use std::io;

use hubbub_http::Settings;
use hubbub_hub::{http2, HubHandle, HubServer};
use hubbub_ws::{
    h2::{offer_h2, H2Config},
    tls::TlsAcceptor,
    Runtime,
};
use signal_hook::{consts::SIGHUP, iterator::Signals};

/// The acceptor of `settings.tls`, if set; a missing or bad file is an
/// error naming it.
/// With `settings.http2` (`HTTP2`, on by default) its ALPN offers `h2`
/// then `http/1.1` (kept across reloads from the files), else `http/1.1`
/// only.
pub fn acceptor(settings: &Settings) -> io::Result<Option<TlsAcceptor>> {
    let Some(files) = &settings.tls else {
        return Ok(None);
    };
    let acceptor = TlsAcceptor::from_pem_files(&files.cert, &files.key)?;
    if settings.http2 {
        acceptor.reload(offer_h2(&acceptor.config()));
    }
    Ok(Some(acceptor))
}

/// Start `server`: with HTTP/2 beside HTTP/1.1 when its TLS acceptor
/// offers ALPN `h2` ([`http2::start`]), else as usual.
pub fn start_hub<R: Runtime>(server: HubServer<R>) -> io::Result<HubHandle> {
    if http2::h2_acceptor(server.tls_acceptor()).is_ok() {
        http2::start(server, H2Config::default())
    } else {
        server.start()
    }
}

/// On every SIGHUP from now on, read `acceptor`'s files again
/// ([`TlsAcceptor::reload_from_files`]): new connections get the new
/// certificate, open ones keep theirs. Prints `NAME: SIGHUP: TLS
/// certificate reloaded` on success; on failure, a warning naming the file
/// on stderr, and the certificate in use stays. The handler is installed
/// before this returns; a background thread (independent of the async
/// runtime) waits for the signal for the rest of the process.
pub fn reload_on_sighup(name: &'static str, acceptor: TlsAcceptor) -> io::Result<()> {
    let mut signals = Signals::new([SIGHUP])?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                match acceptor.reload_from_files() {
                    Ok(()) => tracing::info!("{name}: SIGHUP: TLS certificate reloaded"),
                    Err(error) => tracing::warn!(
                        "{name}: warning: SIGHUP: TLS certificate not reloaded, the one in use stays: {error}"
                    ),
                }
            }
        })?;
    Ok(())
}

/// The URL schemes a program serves: `("https", "wss")` under TLS,
/// `("http", "ws")` otherwise.
pub fn schemes(tls: Option<&TlsAcceptor>) -> (&'static str, &'static str) {
    match tls {
        Some(_) => ("https", "wss"),
        None => ("http", "ws"),
    }
}

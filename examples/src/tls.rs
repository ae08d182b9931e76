//! TLS for the hub programs: the acceptor from the settings'
//! `TLS_CERT_PATH` / `TLS_KEY_PATH`, and its reload on SIGHUP.

use std::io;

use hubbub_http::Settings;
use hubbub_ws::tls::TlsAcceptor;
use signal_hook::{consts::SIGHUP, iterator::Signals};

/// The acceptor of `settings.tls`, if set; a missing or bad file is an
/// error naming it.
pub fn acceptor(settings: &Settings) -> io::Result<Option<TlsAcceptor>> {
    settings
        .tls
        .as_ref()
        .map(|files| TlsAcceptor::from_pem_files(&files.cert, &files.key))
        .transpose()
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

//! The programs' log: [`tracing`] events written by a background thread, so
//! that a slow or unread stdout/stderr pipe never blocks an event loop.
//!
//! `info!` lines go to stdout, `warn!` and `error!` lines to stderr, as the
//! message alone (no time, level or target), so every line reads as it did
//! when the programs printed directly (`chat: listening on ...`). Each
//! stream has a bounded queue of [`QUEUED_LINES`]; when the reader falls that
//! far behind, further lines are dropped (lossy) rather than waited for.
//! What is queued is written out when the [`Logging`] guard drops at the
//! end of `main`.

use std::io;

use tracing::Level;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Lines queued per stream before further ones are dropped.
pub const QUEUED_LINES: usize = 16 << 10;

/// Keeps the log writers running; dropping it writes out what is queued.
#[must_use = "the log is flushed when this drops: hold it until the end of main"]
pub struct Logging {
    _stdout: WorkerGuard,
    _stderr: WorkerGuard,
}

fn writer<W: io::Write + Send + 'static>(to: W, name: &str) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name(name)
        .finish(to)
}

/// Install the log for the process (first thing in `main`). If another
/// subscriber is already installed, that one stays.
pub fn init() -> Logging {
    let (stdout, out_guard) = writer(io::stdout(), "log-stdout");
    let (stderr, err_guard) = writer(io::stderr(), "log-stderr");
    let make_writer = stdout
        .with_filter(|meta: &tracing::Metadata<'_>| *meta.level() >= Level::INFO)
        .and(stderr.with_max_level(Level::WARN));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(make_writer)
        .with_max_level(Level::INFO)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .finish();
    // Err only when a subscriber is already set: that one keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Logging {
        _stdout: out_guard,
        _stderr: err_guard,
    }
}

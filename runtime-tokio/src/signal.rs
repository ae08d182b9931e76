//! Ctrl-C and SIGTERM on tokio.

/// Resolves on Ctrl-C, or SIGTERM on Unix. The handlers are installed when
/// this is *called* (inside a tokio runtime), not when it is first polled, so
/// a signal that arrives in between — say, right after a "listening" line —
/// is not lost.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = next_signal(&mut term) => {}
            _ = next_signal(&mut interrupt) => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The next delivery of `signal`; never, if it could not be installed.
#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

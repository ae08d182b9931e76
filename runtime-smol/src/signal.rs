//! Ctrl-C and SIGTERM on smol, through `async-signal` (the smol project's
//! signal crate: a self-pipe registered with async-io's reactor on Unix,
//! the console handler on Windows).

use std::future::Future;

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

/// Resolves on Ctrl-C (SIGINT), or SIGTERM on Unix. The handlers are
/// installed when this is *called*, not when it is first polled, so a
/// signal that arrives in between — say, right after a "listening" line —
/// is not lost. If they cannot be installed, it never resolves.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = Signals::new([Signal::Term, Signal::Int]);
    #[cfg(not(unix))]
    let signals = Signals::new([Signal::Int]);
    async move {
        match signals {
            Ok(mut signals) => {
                signals.next().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
}

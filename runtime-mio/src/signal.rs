//! Waiting for Ctrl-C or SIGTERM without an async runtime.

use std::io;

/// SIGINT and SIGTERM caught from [`install`](Self::install) on (Unix;
/// elsewhere [`wait`](Self::wait) never returns): a signal that arrives
/// between the two calls is not lost.
#[derive(Debug)]
pub struct ShutdownSignal {
    #[cfg(unix)]
    signals: signal_hook::iterator::Signals,
}

impl ShutdownSignal {
    /// Install the handlers (signal-hook's self-pipe; the default action of
    /// these signals is replaced until the process ends).
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
            Ok(ShutdownSignal { signals })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Block until one of the signals arrives.
    pub fn wait(mut self) {
        #[cfg(unix)]
        {
            let _ = self.signals.forever().next();
        }
        #[cfg(not(unix))]
        loop {
            std::thread::park();
        }
    }
}

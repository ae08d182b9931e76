//! Waiting for Ctrl-C or SIGTERM: blocking ([`ShutdownSignal`]), or as a
//! source of a loop ([`LoopSignals`], no thread waits).

use std::{
    io,
    task::{Context, Poll},
};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::reactor::{pick, Direction, Registration};

/// What a shutdown waits for: Ctrl-C and SIGTERM.
const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// SIGINT and SIGTERM caught from [`install`](Self::install) on: a signal
/// that arrives between the two calls is not lost.
#[derive(Debug)]
pub struct ShutdownSignal {
    signals: signal_hook::iterator::Signals,
}

impl ShutdownSignal {
    /// Install the handlers (signal-hook's self-pipe; the default action of
    /// these signals is replaced until the process ends).
    pub fn install() -> io::Result<Self> {
        let signals = signal_hook::iterator::Signals::new(SIGNALS)?;
        Ok(ShutdownSignal { signals })
    }

    /// Block until one of the signals arrives.
    pub fn wait(mut self) {
        let _ = self.signals.forever().next();
    }
}

/// SIGINT and SIGTERM caught from [`install`](Self::install) on, awaited
/// on a loop: signal-hook's self-pipe is registered with the loop of the
/// thread that first polls it (else a default loop), whose readiness event
/// wakes the waiting task.
pub(crate) struct LoopSignals {
    signals: signal_hook_mio::v1_0::Signals,
    registration: Option<Registration>,
}

impl LoopSignals {
    /// Install the handlers (the default action of these signals is
    /// replaced until the process ends).
    pub(crate) fn install() -> io::Result<Self> {
        Ok(LoopSignals {
            signals: signal_hook_mio::v1_0::Signals::new(SIGNALS)?,
            registration: None,
        })
    }

    /// Ready once a signal has arrived; an error registering the pipe
    /// leaves it pending for ever. The pipe is read only when it may hold
    /// something: first, and after a readiness event (a server's main
    /// future polls this at every accept).
    pub(crate) fn poll_signal(&mut self, cx: &Context<'_>) -> Poll<()> {
        let registration = match &mut self.registration {
            Some(registration) if registration.still_waiting(Direction::Read, cx.waker()) => {
                return Poll::Pending;
            }
            Some(registration) => registration,
            empty => match Registration::new(pick(), &mut self.signals, mio::Interest::READABLE) {
                Ok(registration) => empty.insert(registration),
                Err(_) => return Poll::Pending,
            },
        };
        let signals = &mut self.signals;
        registration.poll_ready(Direction::Read, cx, || match signals.pending().next() {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        })
    }
}

//! A one-way flag that tasks can wait on, independent of any runtime.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use event_listener::Event;

/// Set once, never cleared; any number of tasks may wait for it.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    set: AtomicBool,
    event: Event,
}

impl Flag {
    /// Set the flag and wake every waiter.
    pub(crate) fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Resolves once the flag is set (at once if it is).
    pub(crate) async fn wait(&self) {
        while !self.is_set() {
            let listener = self.event.listen();
            // Set between the check and `listen`: the listener missed it.
            if self.is_set() {
                break;
            }
            listener.await;
        }
    }

    /// [`wait`](Self::wait) on a shared flag, as an owned future.
    pub(crate) async fn wait_owned(self: Arc<Self>) {
        self.wait().await
    }
}

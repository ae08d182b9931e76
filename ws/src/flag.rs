//! A one-way flag that tasks can wait on, independent of any runtime.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use event_listener::Event;

/// Set once, never cleared; any number of tasks may wait for it.
#[derive(Debug, Default)]
pub struct Flag {
    set: AtomicBool,
    event: Event,
}

impl Flag {
    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Resolves once the flag is set (at once if it is).
    pub async fn wait(&self) {
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
    pub async fn wait_owned(self: Arc<Self>) {
        self.wait().await
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::pin,
        sync::Arc,
        task::{Context, Poll, Waker},
        time::Duration,
    };

    use super::Flag;

    #[test]
    fn wait_is_pending_until_set_and_then_ready() {
        let flag = Flag::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut wait = pin!(flag.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert!(!flag.is_set());
        flag.set();
        assert!(flag.is_set());
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(()));
        // Once set, every later wait is ready at once.
        assert_eq!(pin!(flag.wait()).poll(&mut cx), Poll::Ready(()));
    }

    #[test]
    fn a_set_from_another_thread_wakes_a_blocked_waiter() {
        let flag = Arc::new(Flag::default());
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                flag.set();
            })
        };
        // `block_on` parks for up to 5 s between polls: returning well before
        // that shows `set` woke the listener.
        let started = std::time::Instant::now();
        block_on(flag.clone().wait_owned());
        assert!(flag.is_set());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "not woken by set"
        );
        setter.join().unwrap();
    }

    /// A minimal `block_on`: poll, park until woken (5 s at most), repeat;
    /// at most three rounds.
    fn block_on(future: impl Future<Output = ()>) {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        for _ in 0..3 {
            if future.as_mut().poll(&mut cx).is_ready() {
                return;
            }
            std::thread::park_timeout(Duration::from_secs(5));
        }
        panic!("still pending after three rounds");
    }
}
